//! Runtimes: the loop that runs a topology's tasks against a cluster.
//!
//! [`Runner`] is the same for every deployment: it creates internal topics, joins the
//! application's consumer group, restores each assigned task's stores from their
//! changelogs, feeds tasks the records it polls, sends their outputs, and commits. What
//! differs is the [`Backend`]: the remote one (`remote` module, feature `remote`) speaks to
//! any Kafka-compatible broker through rdkafka; the broker crate implements an embedded
//! one that calls its own log and coordinator in process.
//!
//! # Delivery
//!
//! At-least-once. A commit first flushes every output, changelog and repartition record
//! sent so far, and only then commits the input offsets, with [`CommitMetadata`] naming the
//! changelog offsets the commit covers. A restarted task restores its stores only up to
//! those offsets and reprocesses the input from the committed position, so its state and
//! final window results match an uninterrupted run; outputs after the last commit may
//! repeat.

mod backend;
mod runner;

#[cfg(feature = "remote")]
pub mod remote;

pub use backend::{Backend, BackendError, BackendEvent, CommittedOffset};
pub use runner::{Runner, RuntimeConfig, RuntimeError, RuntimeStatus};

pub use crate::task::CommitMetadata;
