//! Aggregation of a grouped stream into a table: count, reduce and aggregate.
//!
//! Without a cache (as Kafka Streams' TopologyTestDriver runs): one output per input, the
//! key with its new aggregate, stamped with the largest timestamp folded into it.

use std::sync::Arc;

use crate::graph::{Ctx, DropReason, Msg, Operator};
use crate::serdes::SharedSerde;
use crate::store::KeyValueStore;

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

impl<K: 'static, V: 'static, A: 'static> AggregateLogic<K, V, A> {
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

/// Keeps the latest aggregate per key.
pub(crate) struct KeyValueAggregate<K, V, A> {
    pub store_name: String,
    pub store: KeyValueStore,
    pub logic: AggregateLogic<K, V, A>,
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
        let old = self.store.get(&key_bytes);
        let timestamp_ms = old.as_ref().map_or(msg.timestamp_ms, |old| {
            old.timestamp_ms.max(msg.timestamp_ms)
        });
        let previous = self.logic.read(
            &self.store_name,
            old.as_ref().map(|old| old.value.as_slice()),
        );
        let aggregate = (self.logic.aggregator)(key, value, previous);
        let Ok(bytes) = self
            .logic
            .aggregate_serde
            .serialize(&self.store_name, &aggregate)
        else {
            ctx.drop_record(DropReason::Deserialization);
            return;
        };
        self.store.put(ctx.outputs, key_bytes, bytes, timestamp_ms);
        ctx.forward(Msg {
            key: msg.key.clone(),
            value: Some(Arc::new(aggregate)),
            timestamp_ms,
            headers: msg.headers.clone(),
        });
    }
}
