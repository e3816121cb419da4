//! Sources: raw records from a topic become typed records, and tables are materialized.

use std::sync::Arc;

use crate::graph::{Ctx, DropReason, Msg, Operator, Payload, SourceDecoder};
use crate::record::InputRecord;
use crate::serdes::{SerdeError, SharedSerde};
use crate::store::KeyValueStore;

/// Extracts event time from a typed record and the record's own timestamp.
pub(crate) type TimestampExtractor<K, V> = Arc<dyn Fn(&K, &V, i64) -> i64 + Send + Sync>;

/// Decodes a stream source: null keys and values are dropped unless the serde gives a
/// value for null.
pub(crate) struct StreamDecoder<K, V> {
    pub key_serde: SharedSerde<K>,
    pub value_serde: SharedSerde<V>,
    pub extractor: Option<TimestampExtractor<K, V>>,
}

fn decode_or_null<T: 'static>(
    serde: &SharedSerde<T>,
    topic: &str,
    bytes: Option<&[u8]>,
) -> Result<Option<T>, SerdeError> {
    match bytes {
        Some(bytes) => serde.deserialize(topic, bytes).map(Some),
        None => Ok(serde.null_value()),
    }
}

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> SourceDecoder for StreamDecoder<K, V> {
    fn decode(&self, record: &InputRecord) -> Result<Option<Msg>, SerdeError> {
        let topic = record.topic.as_str();
        let key = decode_or_null(&self.key_serde, topic, record.key.as_deref())?;
        let value = decode_or_null(&self.value_serde, topic, record.value.as_deref())?;
        let (Some(key), Some(value)) = (key, value) else {
            return Ok(None);
        };
        let timestamp_ms = match &self.extractor {
            Some(extractor) => extractor(&key, &value, record.timestamp_ms),
            None => record.timestamp_ms,
        };
        Ok(Some(Msg::new(
            key,
            value,
            timestamp_ms,
            record.headers.clone(),
        )))
    }
}

/// A table update as the table source operator receives it: typed, plus the raw bytes it
/// stores (so the store holds exactly what the topic holds, and the topic can restore it).
/// The typed value is already a payload, so forwarding it shares it instead of cloning.
pub(crate) struct TableRow {
    pub key_bytes: Vec<u8>,
    pub value_bytes: Option<Vec<u8>>,
    pub value: Option<Payload>,
}

/// Decodes a table source: a null key is dropped, a null value is a deletion.
pub(crate) struct TableDecoder<K, V> {
    pub key_serde: SharedSerde<K>,
    pub value_serde: SharedSerde<V>,
}

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> SourceDecoder for TableDecoder<K, V> {
    fn decode(&self, record: &InputRecord) -> Result<Option<Msg>, SerdeError> {
        let topic = record.topic.as_str();
        let Some(key_bytes) = record.key.clone() else {
            return Ok(None);
        };
        let key = self.key_serde.deserialize(topic, &key_bytes)?;
        let value = decode_or_null(&self.value_serde, topic, record.value.as_deref())?;
        let row = TableRow {
            key_bytes,
            value_bytes: record.value.clone(),
            value: value.map(|value| Arc::new(value) as Payload),
        };
        Ok(Some(Msg::new(
            key,
            row,
            record.timestamp_ms,
            record.headers.clone(),
        )))
    }
}

/// Materializes a table topic into its store and forwards each update (None = deleted).
///
/// The store's changelog is the source topic itself (Kafka Streams' source-topic
/// optimization), so the write is not logged again: restoring replays the topic.
pub(crate) struct TableSource<K> {
    pub store: KeyValueStore,
    pub _key_type: std::marker::PhantomData<fn() -> K>,
}

impl<K: Send + Sync + 'static> Operator for TableSource<K> {
    fn process(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        let (Some(_), Some(row)) = (msg.key::<K>(), msg.value::<TableRow>()) else {
            ctx.drop_record(DropReason::NullKeyOrValue);
            return;
        };
        self.store
            .restore(&row.key_bytes, row.value_bytes.as_deref(), msg.timestamp_ms);
        let update = Msg {
            key: msg.key.clone(),
            value: row.value.clone(),
            timestamp_ms: msg.timestamp_ms,
            headers: msg.headers.clone(),
        };
        ctx.forward(update);
    }
}
