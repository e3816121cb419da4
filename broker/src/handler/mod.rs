//! One module per API: each takes the decoded request and the shared [`Cluster`] and
//! returns the response. Handlers never see the socket, so tests call them directly.
//!
//! Start with [`dispatch`], the one place that maps an API to its handler.
//!
//! [`Cluster`]: crate::cluster::Cluster

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod alter_user_scram_credentials;
pub mod api_versions;
mod context;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod group;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
pub mod produce;
pub mod txn_offset_commit;

mod dispatch;

#[cfg(test)]
mod authorization_tests;

pub use context::{AUTHORIZED_OPERATIONS_OMITTED, Access, RequestContext};
pub use dispatch::dispatch;
