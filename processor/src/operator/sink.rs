//! Sinks: typed records become output records for a topic.

use std::sync::Arc;

use crate::graph::{Ctx, DropReason, Msg, Operator};
use crate::record::{OutputKind, OutputPartition, OutputRecord};
use crate::serdes::SharedSerde;

/// A user partitioner: key, value and partition count to a partition.
pub(crate) type Partitioner<K, V> = Arc<dyn Fn(&K, &V, i32) -> i32 + Send + Sync>;

/// Writes every record to `topic`; a `None` value (table deletion) becomes a tombstone.
pub(crate) struct Sink<K, V> {
    pub topic: String,
    pub key_serde: SharedSerde<K>,
    pub value_serde: SharedSerde<V>,
    pub partitioner: Option<Partitioner<K, V>>,
    pub kind: OutputKind,
}

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Operator for Sink<K, V> {
    fn process(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        let Some(key) = msg.key::<K>() else {
            ctx.drop_record(DropReason::NullKeyOrValue);
            return;
        };
        let key_bytes = match self.key_serde.serialize_nullable(&self.topic, key) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(%error, "a sink could not serialize a key; record dropped");
                ctx.drop_record(DropReason::Deserialization);
                return;
            }
        };
        let value = msg.value::<V>();
        let value_bytes = match value.map(|v| self.value_serde.serialize(&self.topic, v)) {
            None => None,
            Some(Ok(bytes)) => Some(bytes),
            Some(Err(error)) => {
                tracing::warn!(%error, "a sink could not serialize a value; record dropped");
                ctx.drop_record(DropReason::Deserialization);
                return;
            }
        };
        let partition = match (&self.partitioner, msg.key.clone(), msg.value.clone()) {
            (Some(partitioner), Some(key), Some(value)) => {
                let partitioner = partitioner.clone();
                OutputPartition::Custom(Arc::new(move |count| {
                    partitioner(
                        crate::graph::downcast::<K>(key.as_ref()),
                        crate::graph::downcast::<V>(value.as_ref()),
                        count,
                    )
                }))
            }
            _ => OutputPartition::ByKey,
        };
        ctx.outputs.push(OutputRecord {
            topic: self.topic.clone(),
            partition,
            key: key_bytes,
            value: value_bytes,
            timestamp_ms: msg.timestamp_ms,
            headers: msg.headers,
            kind: self.kind,
        });
    }
}
