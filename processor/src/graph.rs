//! The topology graph as the builder records it and tasks run it.
//!
//! Between operators a record is a [`Msg`]: key and value as shared, type-erased payloads.
//! The typed DSL guarantees that each operator downcasts to the types it was built with,
//! so a failed downcast is a bug in this crate, not bad input.

use std::any::Any;
use std::sync::Arc;

use crate::processor_api::PunctuationType;
use crate::record::{Headers, InputRecord, OutputRecord};
use crate::serdes::SerdeError;
use crate::store::TaskStores;
use crate::task::{OperatorProgress, TaskMetrics};

/// A key or value travelling between operators.
pub(crate) type Payload = Arc<dyn Any + Send + Sync>;

/// One record between two operators.
#[derive(Clone)]
pub(crate) struct Msg {
    pub key: Option<Payload>,
    /// `None` only on table updates, where it is a deletion.
    pub value: Option<Payload>,
    pub timestamp_ms: i64,
    pub headers: Headers,
}

impl Msg {
    /// A record with a key and a value.
    pub fn new<K: Send + Sync + 'static, V: Send + Sync + 'static>(
        key: K,
        value: V,
        timestamp_ms: i64,
        headers: Headers,
    ) -> Msg {
        Msg {
            key: Some(Arc::new(key)),
            value: Some(Arc::new(value)),
            timestamp_ms,
            headers,
        }
    }

    /// The key as a `K`; `None` for a null key.
    pub fn key<K: 'static>(&self) -> Option<&K> {
        self.key.as_ref().map(|key| downcast(key.as_ref()))
    }

    /// The value as a `V`; `None` for a null value.
    pub fn value<V: 'static>(&self) -> Option<&V> {
        self.value.as_ref().map(|value| downcast(value.as_ref()))
    }
}

/// Downcasts a payload to the type the DSL built this operator with.
///
/// # Panics
/// When the types disagree, which the typed builder makes impossible.
pub(crate) fn downcast<T: 'static>(payload: &(dyn Any + Send + Sync)) -> &T {
    payload
        .downcast_ref::<T>()
        .expect("the typed builder wires operators of matching types")
}

/// What an operator sees of its task while it handles one record.
pub(crate) struct Ctx<'a> {
    /// Records for topics: sinks, changelogs and repartition topics, in processing order.
    pub outputs: &'a mut Vec<OutputRecord>,
    /// Dropped-record counts and the like.
    pub metrics: &'a mut TaskMetrics,
    /// Records for this operator's children, in the order they were forwarded.
    pub(crate) forwards: Vec<Forward>,
    /// The input record being processed (topic, partition, offset); `None` while a
    /// processor initializes or punctuates.
    pub source: Option<&'a InputRecord>,
    /// The task's stream time.
    pub stream_time_ms: i64,
    /// The wall-clock time the runtime (or the test driver) last gave the task.
    pub wall_clock_ms: i64,
}

/// A forwarded record: to every child, or to one (branches).
pub(crate) struct Forward {
    pub child_index: Option<usize>,
    pub msg: Msg,
}

impl Ctx<'_> {
    /// Passes `msg` to every child.
    pub fn forward(&mut self, msg: Msg) {
        self.forwards.push(Forward {
            child_index: None,
            msg,
        });
    }

    /// Passes `msg` to the child at `child_index` only.
    pub fn forward_to(&mut self, child_index: usize, msg: Msg) {
        self.forwards.push(Forward {
            child_index: Some(child_index),
            msg,
        });
    }

    /// Counts a record this operator dropped (late, null key, expired, bad bytes).
    pub fn drop_record(&mut self, reason: DropReason) {
        self.metrics.record_dropped(reason);
    }
}

/// Why a record was dropped; counted per task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Arrived after its window closed (stream time past end plus grace).
    Late,
    /// Null key or value where the operator needs both.
    NullKeyOrValue,
    /// Key or value bytes the source serde could not read.
    Deserialization,
    /// A timestamp below zero.
    NegativeTimestamp,
    /// A write older than the store keeps.
    Expired,
}

impl DropReason {
    /// Every reason, in order.
    pub const ALL: [DropReason; 5] = [
        DropReason::Late,
        DropReason::NullKeyOrValue,
        DropReason::Deserialization,
        DropReason::NegativeTimestamp,
        DropReason::Expired,
    ];

    /// The reason as metrics label it: `late`, `null_key_or_value`, ...
    pub fn label(self) -> &'static str {
        match self {
            DropReason::Late => "late",
            DropReason::NullKeyOrValue => "null_key_or_value",
            DropReason::Deserialization => "deserialization",
            DropReason::NegativeTimestamp => "negative_timestamp",
            DropReason::Expired => "expired",
        }
    }
}

/// An operator instance inside one task.
pub(crate) trait Operator: Send {
    /// Handles one record, forwarding results through `ctx`.
    fn process(&mut self, ctx: &mut Ctx<'_>, msg: Msg);

    /// A windowed operator's clock, committed with the offsets; `None` for the others.
    fn progress(&self) -> Option<OperatorProgress> {
        None
    }

    /// Takes back the clock committed before a restart.
    fn resume(&mut self, _progress: OperatorProgress) {}

    /// Whether this operator keeps a record cache (see `store::cache`), which the task
    /// flushes at every commit through [`Operator::flush_cache`].
    fn has_cache(&self) -> bool {
        false
    }

    /// Writes every dirty entry of the record cache through to the store (and its
    /// changelog) and forwards it, in the cache's order; returns whether there was any.
    fn flush_cache(&mut self, _ctx: &mut Ctx<'_>) -> bool {
        false
    }

    /// Whether this operator may schedule punctuations (a user processor): the task asks
    /// only these to [`Operator::init`] and [`Operator::punctuate`].
    fn may_punctuate(&self) -> bool {
        false
    }

    /// Called once before the first record, after the task's stores were restored.
    fn init(&mut self, _ctx: &mut Ctx<'_>) {}

    /// Runs the punctuations of `kind` due at `time_ms`; returns whether any ran.
    fn punctuate(&mut self, _ctx: &mut Ctx<'_>, _kind: PunctuationType, _time_ms: i64) -> bool {
        false
    }
}

/// Builds a task's instance of an operator, with that task's stores.
pub(crate) type OperatorFactory = Arc<dyn Fn(&TaskStores) -> Box<dyn Operator> + Send + Sync>;

/// Turns a raw record read from a source topic into the first [`Msg`].
pub(crate) trait SourceDecoder: Send + Sync {
    /// The decoded record, or `Ok(None)` when it is to be dropped (null key or value).
    fn decode(&self, record: &InputRecord) -> Result<Option<Msg>, SerdeError>;
}

/// Index of a node in the topology.
pub(crate) type NodeId = usize;

/// One node of the graph.
pub(crate) struct NodeSpec {
    /// Generated, stable name, e.g. `KSTREAM-FILTER-0000000003`.
    pub name: String,
    pub factory: OperatorFactory,
    pub children: Vec<NodeId>,
    /// Stores this node reads or writes; nodes sharing a store run in one task.
    pub stores: Vec<String>,
    /// Topics this node reads, when it is a source.
    pub source_topics: Vec<String>,
    /// Topics this node writes, when it is a sink.
    pub sink_topics: Vec<String>,
    pub decoder: Option<Arc<dyn SourceDecoder>>,
}

/// An operator that passes every record on unchanged (merge points, sources).
pub(crate) struct PassThrough;

impl Operator for PassThrough {
    fn process(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        ctx.forward(msg);
    }
}
