//! The embedded stream-processor runtime: topologies running inside the broker process.
//!
//! Start with [`Broker::builder`], which a user program calls with its topologies. Each
//! topology runs `riffle_processor`'s generic [`riffle_processor::runtime::Runner`] over an
//! [`EmbeddedBackend`], which reaches the cluster without sockets:
//!
//! - `membership`: the consumer group through the group handlers (JoinGroup with the
//!   consumer protocol, SyncGroup with the range assignment, Heartbeat, OffsetCommit,
//!   LeaveGroup), so the application is a consumer group like any other.
//!   Subscriptions, assignments and the range assignor are
//!   [`riffle_server::group::consumer_protocol`]'s, shared with remote instances that use librdkafka.
//! - `reader`: reading assigned partitions from their logs, with long polls.
//! - `writer`: output batches appended through the Produce handler with acks=all.
//! - `transaction`: under exactly-once, the transactional producer those batches belong
//!   to, through the transaction handlers (InitProducerId, AddPartitionsToTxn,
//!   AddOffsetsToTxn, EndTxn); the offsets go in through `membership` (TxnOffsetCommit).
//! - `apps`: the applications' `/apps` routes (summaries, state queries) and metrics on
//!   the HTTP listener; [`serve_http`] gives a remote application's program the same.

mod apps;
mod backend;
mod broker;
mod membership;
mod reader;
mod refusal;
mod transaction;
mod writer;

pub use apps::serve_http;
pub use backend::{EmbeddedBackend, EmbeddedConfig};
pub use broker::{
    Broker, BrokerBuilder, ListenerAddress, Processor, RunningBroker, ShutdownError, StartError,
};
pub use membership::GroupTimeouts;
/// The allocator of the `riffle` binary, for programs that embed the broker: jemalloc keeps
/// freed pages for reuse where glibc's malloc returns large buffers to the kernel and
/// faults them in again. Declare it in the program's `main.rs`:
/// `#[global_allocator] static ALLOCATOR: riffle_broker::embedded::Jemalloc = riffle_broker::embedded::Jemalloc;`
pub use tikv_jemallocator::Jemalloc;
