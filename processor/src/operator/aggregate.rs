//! Aggregation of a grouped stream into a table: count, reduce and aggregate.
//!
//! Without a record cache (as Kafka Streams' TopologyTestDriver runs): one output per
//! input, the key with its new aggregate, stamped with the largest timestamp folded into
//! it. With one, updates to a key coalesce in the cache, and the latest is written to the
//! store and forwarded when the cache flushes (at commit) or evicts it.

use std::sync::Arc;

use crate::graph::{Ctx, DropReason, Msg, Operator};
use crate::serdes::SharedSerde;
use crate::store::cache::{CachedValue, Flushed, RecordCache};
use crate::store::{KeyValueStore, StoredValue};
use crate::task::OperatorProgress;
use crate::window::Windowed;

/// Folds a value into the aggregate so far (`None` for the first value of a key or window).
pub(crate) type Aggregator<K, V, A> = Arc<dyn Fn(&K, &V, Option<A>) -> A + Send + Sync>;

/// Combines two session aggregates when a record bridges their sessions.
pub(crate) type Merger<K, A> = Arc<dyn Fn(&K, A, A) -> A + Send + Sync>;

/// The serdes and folding logic every aggregation operator needs.
pub(crate) struct AggregateLogic<K, V, A> {
    pub key_serde: SharedSerde<K>,
    pub aggregate_serde: SharedSerde<A>,
    pub aggregator: Aggregator<K, V, A>,
}

impl<K, V, A> Clone for AggregateLogic<K, V, A> {
    fn clone(&self) -> Self {
        AggregateLogic {
            key_serde: self.key_serde.clone(),
            aggregate_serde: self.aggregate_serde.clone(),
            aggregator: self.aggregator.clone(),
        }
    }
}

/// An aggregate after folding one record in: the value, its bytes, and its timestamp.
pub(crate) struct Folded<A> {
    pub aggregate: A,
    pub bytes: Vec<u8>,
    pub timestamp_ms: i64,
}

impl<K: Send + Sync + 'static, V: 'static, A: Send + Sync + 'static> AggregateLogic<K, V, A> {
    /// Folds `value` into the stored aggregate `old`; the result carries the larger of the
    /// two timestamps. `None` (counted as dropped) when the aggregate cannot be serialized.
    pub fn fold(
        &self,
        ctx: &mut Ctx<'_>,
        store_name: &str,
        (key, value, timestamp_ms): (&K, &V, i64),
        old: Option<StoredValue>,
    ) -> Option<Folded<A>> {
        let timestamp_ms = old
            .as_ref()
            .map_or(timestamp_ms, |old| old.timestamp_ms.max(timestamp_ms));
        let previous = self.read(store_name, old.as_ref().map(|old| old.value.as_slice()));
        let aggregate = (self.aggregator)(key, value, previous);
        let bytes = self.serialize(ctx, store_name, &aggregate)?;
        Some(Folded {
            aggregate,
            bytes,
            timestamp_ms,
        })
    }

    /// The bytes of `aggregate`, or `None` (counted as dropped) when the serde fails.
    pub fn serialize(&self, ctx: &mut Ctx<'_>, store_name: &str, aggregate: &A) -> Option<Vec<u8>> {
        match self.aggregate_serde.serialize(store_name, aggregate) {
            Ok(bytes) => Some(bytes),
            Err(error) => {
                tracing::warn!(%error, "an aggregate could not be serialized; record dropped");
                ctx.drop_record(DropReason::Deserialization);
                None
            }
        }
    }

    /// Forwards the final result of the closed window `[start_ms, end_ms]` of the stored
    /// `key_bytes`, with the stored timestamp; counts it as dropped when the key or the
    /// aggregate cannot be read back.
    pub fn forward_closed(
        &self,
        ctx: &mut Ctx<'_>,
        store_name: &str,
        key_bytes: &[u8],
        (start_ms, end_ms): (i64, i64),
        stored: &StoredValue,
    ) {
        let (Ok(key), Ok(aggregate)) = (
            self.key_serde.deserialize(store_name, key_bytes),
            self.aggregate_serde.deserialize(store_name, &stored.value),
        ) else {
            ctx.drop_record(DropReason::Deserialization);
            return;
        };
        let windowed = Windowed {
            key,
            start_ms,
            end_ms,
        };
        let headers = Default::default();
        ctx.forward(Msg::new(windowed, aggregate, stored.timestamp_ms, headers));
    }

    /// The aggregate stored as `bytes`; a value this serde cannot read starts afresh.
    pub fn read(&self, store_name: &str, bytes: Option<&[u8]>) -> Option<A> {
        let bytes = bytes?;
        match self.aggregate_serde.deserialize(store_name, bytes) {
            Ok(aggregate) => Some(aggregate),
            Err(error) => {
                tracing::warn!(%error, "stored aggregate unreadable; starting it again");
                None
            }
        }
    }
}

/// Key and value of a record an aggregation takes; counts and drops records without both.
pub(crate) fn key_and_value<'m, K: 'static, V: 'static>(
    ctx: &mut Ctx<'_>,
    msg: &'m Msg,
) -> Option<(&'m K, &'m V)> {
    match (msg.key::<K>(), msg.value::<V>()) {
        (Some(key), Some(value)) => Some((key, value)),
        _ => {
            ctx.drop_record(DropReason::NullKeyOrValue);
            None
        }
    }
}

/// Serializes a key for a store, or counts the record as dropped.
pub(crate) fn store_key<K: 'static>(
    ctx: &mut Ctx<'_>,
    serde: &SharedSerde<K>,
    store_name: &str,
    key: &K,
) -> Option<Vec<u8>> {
    match serde.serialize(store_name, key) {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            tracing::warn!(%error, "a key could not be serialized for its store; record dropped");
            ctx.drop_record(DropReason::Deserialization);
            None
        }
    }
}

/// A windowed operator's own clock: the largest timestamp it has seen (-1 before the
/// first, as in Kafka Streams) and how far it has emitted final results. Committed with
/// the offsets, so a restart neither repeats nor skips a final result.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowClock {
    pub observed_ms: i64,
    pub emitted_through_ms: i64,
}

impl Default for WindowClock {
    fn default() -> Self {
        WindowClock {
            observed_ms: -1,
            emitted_through_ms: i64::MIN,
        }
    }
}

impl WindowClock {
    /// Moves the clock to `timestamp_ms` if it is later.
    pub fn observe(&mut self, timestamp_ms: i64) {
        self.observed_ms = self.observed_ms.max(timestamp_ms);
    }

    pub fn progress(&self) -> OperatorProgress {
        OperatorProgress {
            observed_ms: self.observed_ms,
            emitted_through_ms: self.emitted_through_ms,
        }
    }

    pub fn resume(&mut self, progress: OperatorProgress) {
        self.observed_ms = self.observed_ms.max(progress.observed_ms);
        self.emitted_through_ms = self.emitted_through_ms.max(progress.emitted_through_ms);
    }
}

/// Keeps the latest aggregate per key.
pub(crate) struct KeyValueAggregate<K, V, A> {
    pub store_name: String,
    pub store: KeyValueStore,
    pub logic: AggregateLogic<K, V, A>,
    /// Keyed by the store key, holding the record to forward; `None` writes through.
    pub cache: Option<RecordCache<Msg>>,
}

impl<K, V, A> Operator for KeyValueAggregate<K, V, A>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
    A: Send + Sync + 'static,
{
    fn process(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        let Some((key, value)) = key_and_value::<K, V>(ctx, &msg) else {
            return;
        };
        let Some(key_bytes) = store_key(ctx, &self.logic.key_serde, &self.store_name, key) else {
            return;
        };
        let cached = self.cache.as_mut().and_then(|cache| cache.get(&key_bytes));
        let old = match cached {
            Some(cached) => cached.value.clone().map(|value| StoredValue {
                value,
                timestamp_ms: cached.timestamp_ms,
            }),
            None => self.store.get(&key_bytes),
        };
        let record = (key, value, msg.timestamp_ms);
        let Some(folded) = self.logic.fold(ctx, &self.store_name, record, old) else {
            return;
        };
        let timestamp_ms = folded.timestamp_ms;
        let update = Msg {
            key: msg.key.clone(),
            value: Some(Arc::new(folded.aggregate)),
            timestamp_ms,
            headers: msg.headers.clone(),
        };
        if let Some(cache) = &mut self.cache {
            let cached = CachedValue {
                value: Some(folded.bytes),
                timestamp_ms,
            };
            let evicted = cache.put(&key_bytes, cached, update);
            self.write_through(ctx, evicted);
            return;
        }
        self.store
            .put(ctx.outputs, key_bytes, folded.bytes, timestamp_ms);
        ctx.forward(update);
    }

    fn has_cache(&self) -> bool {
        self.cache.is_some()
    }

    fn flush_cache(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let Some(cache) = &mut self.cache else {
            return false;
        };
        let flushed = cache.flush();
        let any = !flushed.is_empty();
        self.write_through(ctx, flushed);
        any
    }
}

impl<K, V, A> KeyValueAggregate<K, V, A> {
    /// Writes entries that left the cache to the store (and changelog), then forwards them.
    fn write_through(&mut self, ctx: &mut Ctx<'_>, flushed: Vec<Flushed<Msg>>) {
        for entry in flushed {
            match entry.value {
                Some(value) => self
                    .store
                    .put(ctx.outputs, entry.key, value, entry.timestamp_ms),
                None => self
                    .store
                    .delete(ctx.outputs, entry.key, entry.timestamp_ms),
            }
            ctx.forward(entry.record);
        }
    }
}
