//! Consumer groups: the coordinator, each group's state machine, and the records that
//! keep them in `__consumer_offsets`.
//!
//! Start with [`GroupCoordinator`]; the rules of joining, syncing and leaving are in
//! [`state`].

pub mod consumer_protocol;
pub mod coordinator;
pub mod member;
pub mod records;
pub mod state;

pub use coordinator::{ConsumedTopics, GroupCoordinator, GroupDescription, OFFSETS_TOPIC};
pub use state::{GroupLimits, GroupState, JoinRequest, JoinResult, SyncResult};
