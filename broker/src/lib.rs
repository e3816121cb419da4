//! riffle-broker: the Kafka-compatible server over `riffle-storage`.
//!
//! Follow a request: [`server::run`] accepts a connection on one of the [`listener`]s and
//! hands it to [`connection::serve`], whose reader frames and decodes requests and whose writer runs
//! [`handler::dispatch`] and writes responses in order. Handlers (one file per API under
//! [`handler`]) work on the shared [`cluster::Cluster`]: topics, partitions and their logs.
//!
//! [`http`] serves Prometheus [`metrics`], health checks and the web console on `--http-listen`.
//!
//! [`embedded`] runs stream-processor topologies inside the broker:
//! `embedded::Broker::builder(config).processor(topology).run()`.

pub mod acls_command;
pub mod admin_client;
pub mod background;
pub mod broker_config;
pub mod check_command;
pub mod cli;
pub mod cli_support;
pub mod client_config;
pub mod cluster;
pub mod cluster_command;
pub mod compaction;
pub mod config;
pub mod config_file;
pub mod connection;
pub mod connection_limits;
pub mod consume_command;
pub mod embedded;
pub mod fetch_session;
pub mod group;
pub mod groups_command;
pub mod handler;
pub mod http;
pub mod listener;
pub mod metadata_log;
pub mod metrics;
pub mod partition;
pub mod produce_command;
pub mod producer_state;
pub mod properties;
pub mod security;
mod sendfile;
pub mod server;
pub mod shutdown;
#[cfg(test)]
mod testing;
pub mod topic_config;
pub mod topics_command;
pub mod transaction;
pub mod users_command;
