//! The consumer-group APIs, one file each, over the [`GroupCoordinator`].
//!
//! [`GroupCoordinator`]: crate::group::GroupCoordinator

pub mod commit_answers;
pub mod delete;
pub mod describe;
pub mod heartbeat;
pub mod join;
pub mod leave;
pub mod list;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod sync;
