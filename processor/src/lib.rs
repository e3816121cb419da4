//! Riffle's stream processor: a Rust topology DSL, state stores, event-time windows and
//! joins, run co-located in the broker or as a separate process.
//!
//! # Design
//!
//! A [`StreamsBuilder`] records a graph of operators; [`StreamsBuilder::build`] freezes it
//! into a [`Topology`], split into sub-topologies at repartition topics. A sub-topology
//! runs as one [`internals::Task`] per partition of its source topics. A task is a state machine
//! without I/O (records in, output records out, as quinn-proto does for QUIC), so the
//! [`TestDriver`] and the runtimes are thin shells around it:
//!
//! - [`TestDriver`]: no broker; pipes records through the whole topology synchronously,
//!   like Kafka Streams' TopologyTestDriver.
//! - [`runtime`]: the loop that joins the consumer group, restores stores from their
//!   changelogs, feeds tasks and commits, over a small [`runtime::Backend`] trait. The
//!   remote backend speaks to any Kafka-compatible broker; the broker crate implements the
//!   embedded one in process.
//!
//! Semantics follow Kafka Streams (see `../shared/processor.md` in the design notes):
//! stream time per task, windows closing at `end + grace`, late records dropped and
//! counted, one output per input per updated aggregate, changelogs named
//! `<application>-<store>-changelog`, at-least-once commits (flush outputs, then commit)
//! or exactly-once ones (one transaction per commit, read_committed reads).
//!
//! Operators the DSL lacks are written as a [`Processor`] and added with
//! [`KStream::process`] (or [`KStream::process_values`], which keeps keys): forwarding,
//! typed key-value, window and session stores, record metadata and punctuations on stream
//! time or wall-clock time (`processor_api.rs`, `processor_stores.rs`). Foreign-key table
//! joins are in `fk_join.rs`, `cogroup` in `cogroup.rs`.
//! [`Topology::describe`] shows the built graph, as data and as Kafka Streams prints it.
//! [`observe`] shows running applications to their host: summaries, stores read by name
//! as JSON, the `/apps` HTTP routes, and Prometheus metrics. [`upgrade`] runs a new version
//! of a topology as a shadow of the live one and diffs their outputs (safe upgrades).
//!
//! Stateful operations take a [`Materialized`] (store name, serdes, in memory or on disk,
//! changelog, retention, caching); a store name alone converts into one.
//!
//! The crate root is the user API; [`internals`] holds what runtimes and tools built on
//! the crate use (tasks, partition plans, commit metadata).
//!
//! Where to start: [`StreamsBuilder`], [`KStream`], then `task.rs`.

mod builder;
mod cogroup;
mod describe;
mod fk_join;
mod graph;
mod grouped;
mod lock_policy;
mod materialized;
pub mod observe;
mod operator;
mod process_values;
mod processor_api;
mod processor_stores;
mod record;
pub mod runtime;
mod serdes;
mod store;
mod stream;
mod stream_process;
mod suppressed;
mod table;
mod task;
mod test_driver;
mod topology;
pub mod upgrade;
mod window;

pub use builder::{Data, StreamsBuilder};
pub use cogroup::{
    CogroupedKStream, SessionWindowedCogroupedKStream, TimeWindowedCogroupedKStream,
};
pub use describe::{
    NodeDescription, NodeKind, RepartitionTopicDescription, StoreDescription, StoreType,
    SubtopologyDescription, TopologyDescription,
};
pub use graph::DropReason;
pub use grouped::{Grouped, KGroupedStream, SessionWindowedKStream, TimeWindowedKStream, Windows};
pub use materialized::Materialized;
pub use process_values::{FixedKeyProcessor, FixedKeyProcessorContext};
pub use processor_api::{
    Cancellable, Processor, ProcessorContext, ProcessorKeyValueStore, PunctuationType, Punctuator,
    Record, RecordMetadata,
};
pub use processor_stores::{ProcessorSessionStore, ProcessorWindowStore};
pub use record::{
    Headers, InputRecord, OutputKind, OutputPartition, OutputRecord, TopicPartition, headers_of,
    murmur2, murmur2_partition,
};
pub use serdes::{
    BytesSerde, F64Serde, I32Serde, I64Serde, JsonSerde, Serde, SerdeError, SharedSerde,
    StringSerde, U64Serde, UnitSerde, WindowedSerde,
};
pub use store::engine::StateError;
pub use store::json_query::{
    JsonEntry, JsonQueryError, JsonRange, JsonStores, JsonWindow, RANGE_LIMIT_DEFAULT,
    RANGE_LIMIT_MAX,
};
pub use store::query::{
    KeyValueStoreHandle, KeyValueView, QueryError, SessionStoreHandle, SessionView, StoreRegistry,
    WindowStoreHandle, WindowView,
};
pub use store::{StoreBacking, StoreKind, StoreSpec, StoredValue};
pub use stream::{BranchedKStream, KStream, Predicate, StreamJoined};
pub use suppressed::{BufferConfig, BufferFull, Suppressed, SuppressedKTable};
pub use table::{KTable, SessionKTable, WindowedKTable};
pub use task::TaskMetrics;
pub use test_driver::{
    DriverCommit, TestDriver, TestDriverConfig, TestInputTopic, TestOutputTopic, TestRecord,
};
pub use topology::{Topology, TopologyError};
pub use window::{Emit, JoinWindows, SessionWindows, SlidingWindows, TimeWindows, Windowed};

/// Runtime internals: what the runtimes (the embedded one in the broker, the remote one,
/// the test driver) and tools built on the crate use to run a [`Topology`]. A topology's
/// author needs none of it; it may change with the runtimes.
pub mod internals {
    pub use crate::task::{CommitMetadata, OperatorProgress, Task, TaskId};
    pub use crate::topology::{InternalTopic, PartitionPlan, SubTopology};
}
