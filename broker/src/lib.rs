//! riffle-server: the Kafka-compatible server over `riffle-storage`, as a library. The
//! `riffle` binary, its command line and the embedded stream processor are in the
//! `riffle-broker` crate (`riffle/`), built on this one.
//!
//! Follow a request: [`startup::open`] binds the [`listener`]s and opens the
//! [`cluster::Cluster`]; [`server::run`] accepts connections and hands each to
//! [`connection::serve`], whose reader frames and decodes requests and whose writer runs
//! [`handler::dispatch`] and writes responses in order. Handlers (one file per API under
//! [`handler`]) work on the shared cluster: topics, partitions and their logs.
//!
//! [`http`] serves Prometheus [`metrics`] and health checks on `--http-listen`.

pub mod background;
pub mod broker_config;
pub mod cluster;
pub mod compaction;
pub mod config;
pub mod config_file;
pub mod connection;
pub mod connection_limits;
pub mod fetch_session;
pub mod group;
pub mod handler;
pub mod http;
pub mod listener;
pub mod metadata_log;
pub mod metrics;
pub mod partition;
pub mod producer_state;
pub mod properties;
pub mod security;
mod sendfile;
pub mod server;
pub mod shutdown;
pub mod startup;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod topic_config;
pub mod transaction;
