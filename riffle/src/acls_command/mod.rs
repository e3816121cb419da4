//! `riffle acls add|list|remove`: ACLs over the wire (CreateAcls, DescribeAcls, DeleteAcls),
//! with the options of Kafka's `kafka-acls.sh` and its output.
//!
//! Start with [`run`]. The options are in [`options`]; [`plan`] turns them into the ACLs to
//! add or the filters to list or remove (pure, unit-tested); [`output`] prints what came
//! back. The connection (`--bootstrap`, `--command-config`) is
//! [`crate::client_config::ConnectionArgs`].

pub mod options;
pub mod output;
pub mod plan;
mod run;

pub use options::AclsArgs;
pub use run::{AclFailure, AclsCommandError, run};
