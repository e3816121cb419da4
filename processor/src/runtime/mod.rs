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
//! [`RuntimeConfig::processing_guarantee`] chooses between two guarantees; both keep a
//! task's state consistent with its committed input position wherever it restarts.
//!
//! - [`ProcessingGuarantee::AtLeastOnce`] (the default). A commit first flushes every
//!   output, changelog and repartition record sent so far, and only then commits the
//!   input offsets, with [`CommitMetadata`] naming the changelog offsets the commit
//!   covers. A restarted task restores its stores only up to those offsets and
//!   reprocesses the input from the committed position, so its state and final window
//!   results match an uninterrupted run; outputs after the last commit may repeat.
//! - [`ProcessingGuarantee::ExactlyOnce`], Kafka Streams' `exactly_once_v2`. Everything a
//!   commit interval writes (outputs, changelog and repartition records) and the input
//!   offsets that produced it form one transaction of the instance's transactional
//!   producer ([`Backend::init_transactions`], [`Backend::commit_transaction`]), sent
//!   with the member's group generation so a zombie the group has moved past is refused.
//!   Every read is read_committed, restores included, so a restored store holds exactly
//!   the committed transactions' writes, the state the committed offsets imply. A failed
//!   write or commit aborts the transaction ([`Backend::abort_transaction`]); every task
//!   is then rebuilt from the committed changelogs and reads again from the committed
//!   offsets ([`Backend::rewind`]), and processing goes on: a fenced producer is
//!   replaced, not fatal. Readers with `isolation.level=read_committed` see each output
//!   exactly once, when its transaction commits, which is why the default commit
//!   interval drops to 100 ms ([`RuntimeConfig::for_guarantee`]).

mod backend;
mod config;
#[cfg(test)]
mod punctuation_tests;
mod restore;
mod runner;
mod standby;
#[cfg(test)]
pub(crate) mod testing;

#[cfg(feature = "remote")]
pub mod remote;

pub use backend::{
    Backend, BackendError, BackendEvent, CommittedOffset, GroupMembers, RestoreChunk,
};
pub use config::{DEFAULT_CACHE_MAX_BYTES, ProcessingGuarantee, RuntimeConfig, UnknownGuarantee};
pub use runner::{Runner, RuntimeError, RuntimeState, RuntimeStatus, StreamThreadStatus};

pub use crate::task::CommitMetadata;
