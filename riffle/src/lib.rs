//! riffle-broker: the `riffle` binary over the `riffle-server` library. [`cli`] is its
//! command line: `riffle serve`, the client commands (`topics`, `produce`, `consume`,
//! `groups`, `acls`, `cluster`) over [`admin_client`], and the offline `users` and `check`.
//!
//! [`embedded`] runs stream-processor topologies inside the broker:
//! `embedded::Broker::builder(config).processor(topology).run()`. The server's [`config`]
//! is re-exported, so an embedding program needs only this crate.

pub mod acls_command;
pub mod admin_client;
pub mod apps_command;
pub mod check_command;
pub mod cli;
pub mod cli_support;
pub mod client_config;
pub mod cluster_command;
pub mod consume_command;
pub mod embedded;
pub mod groups_command;
pub mod produce_command;
pub mod topics_command;
pub mod users_command;

pub use riffle_server::config;
