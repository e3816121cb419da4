//! Suppression of table updates (KIP-328): buffer the latest value per key, forward it
//! later.
//!
//! Each key is buffered with a *buffer time* taken when it enters the buffer (a window's
//! end, or the record's timestamp) and kept while the key is updated, so the latest value
//! leaves once the operator's stream time reaches `buffer time + delay`: once per window
//! for final results, at most once per time limit otherwise. A buffer over its limits
//! either emits its oldest entries early or stops the task with an error.
//!
//! The buffer is a changelogged key-value store (`key → buffer time (i64 BE) ‖ present
//! (1 byte) ‖ value`, the record timestamp as the store's), so it survives restarts; the
//! operator keeps an index by buffer time in memory, rebuilt from the store on first use.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::aggregate::WindowClock;
use crate::graph::{Ctx, DropReason, Msg, Operator};
use crate::serdes::SharedSerde;
use crate::store::engine::StateError;
use crate::store::{KeyValueStore, StoredValue};
use crate::suppressed::{BufferConfig, BufferFull};
use crate::task::OperatorProgress;

/// When a buffered key becomes due: `buffer time + delay_ms <= stream time`.
pub(crate) type BufferTime<K> = Arc<dyn Fn(&K, i64) -> i64 + Send + Sync>;

/// Buffers table updates and forwards them when due.
pub(crate) struct Suppress<K, V> {
    pub store_name: String,
    pub store: KeyValueStore,
    pub key_serde: SharedSerde<K>,
    pub value_serde: SharedSerde<V>,
    /// The buffer time of a key entering the buffer, from the key and record timestamp.
    pub buffer_time: BufferTime<K>,
    pub delay_ms: i64,
    /// Deletions replace a key's buffered value but are not forwarded (final results: a
    /// session merged into another has no final result of its own).
    pub drop_tombstones: bool,
    pub buffer: BufferConfig,
    pub clock: WindowClock,
    /// The buffer's entries by buffer time; `None` until loaded from the store.
    pub index: Option<BufferIndex>,
}

/// The buffered keys, by buffer time, and their sizes.
#[derive(Default)]
pub(crate) struct BufferIndex {
    by_time: BTreeSet<(i64, Vec<u8>)>,
    /// Per key: its buffer time and its size in bytes (key plus value).
    entries: HashMap<Vec<u8>, (i64, u64)>,
    bytes: u64,
}

impl BufferIndex {
    fn insert(&mut self, key: Vec<u8>, buffer_time_ms: i64, size_bytes: u64) {
        self.remove(&key);
        self.by_time.insert((buffer_time_ms, key.clone()));
        self.entries.insert(key, (buffer_time_ms, size_bytes));
        self.bytes += size_bytes;
    }

    fn remove(&mut self, key: &[u8]) {
        if let Some((buffer_time_ms, size_bytes)) = self.entries.remove(key) {
            self.by_time.remove(&(buffer_time_ms, key.to_vec()));
            self.bytes -= size_bytes;
        }
    }

    fn oldest(&self) -> Option<&(i64, Vec<u8>)> {
        self.by_time.first()
    }
}

/// A buffered entry as the store holds it.
struct Buffered {
    buffer_time_ms: i64,
    value: Option<Vec<u8>>,
}

const BUFFER_TIME_BYTES: usize = 8;

fn encode_entry(buffer_time_ms: i64, value: Option<&[u8]>) -> Vec<u8> {
    let length = value.map_or(0, <[u8]>::len);
    let mut bytes = Vec::with_capacity(BUFFER_TIME_BYTES + 1 + length);
    bytes.extend_from_slice(&buffer_time_ms.to_be_bytes());
    match value {
        Some(value) => {
            bytes.push(1);
            bytes.extend_from_slice(value);
        }
        None => bytes.push(0),
    }
    bytes
}

fn decode_entry(bytes: &[u8]) -> Option<Buffered> {
    let time: [u8; BUFFER_TIME_BYTES] = bytes.get(..BUFFER_TIME_BYTES)?.try_into().ok()?;
    let value = match bytes.get(BUFFER_TIME_BYTES)? {
        0 => None,
        1 => Some(bytes.get(BUFFER_TIME_BYTES + 1..)?.to_vec()),
        _ => return None,
    };
    Some(Buffered {
        buffer_time_ms: i64::from_be_bytes(time),
        value,
    })
}

fn entry_size_bytes(key: &[u8], value: Option<&[u8]>) -> u64 {
    let size = key.len() + value.map_or(0, <[u8]>::len);
    u64::try_from(size).unwrap_or(u64::MAX)
}

impl<K, V> Operator for Suppress<K, V>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    fn progress(&self) -> Option<OperatorProgress> {
        Some(self.clock.progress())
    }

    fn resume(&mut self, progress: OperatorProgress) {
        self.clock.resume(progress);
    }

    fn process(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        let Some(key) = msg.key::<K>() else {
            ctx.drop_record(DropReason::NullKeyOrValue);
            return;
        };
        self.clock.observe(msg.timestamp_ms);
        let name = self.store_name.as_str();
        let key_bytes = self.key_serde.serialize(name, key);
        let value_bytes = msg
            .value::<V>()
            .map(|value| self.value_serde.serialize(name, value))
            .transpose();
        let (Ok(key_bytes), Ok(value_bytes)) = (key_bytes, value_bytes) else {
            ctx.drop_record(DropReason::Deserialization);
            return;
        };
        let buffer_time_ms = (self.buffer_time)(key, msg.timestamp_ms);
        self.buffer(
            ctx,
            key_bytes,
            value_bytes,
            buffer_time_ms,
            msg.timestamp_ms,
        );
        self.emit_due(ctx);
        self.enforce_limits(ctx);
    }
}

impl<K, V> Suppress<K, V>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// The index, loaded from the store (restored from its changelog) on first use.
    fn index(&mut self) -> &mut BufferIndex {
        let store = &self.store;
        self.index.get_or_insert_with(|| {
            let mut index = BufferIndex::default();
            for (key, stored) in store.range(None, None) {
                if let Some(entry) = decode_entry(&stored.value) {
                    let size_bytes = entry_size_bytes(&key, entry.value.as_deref());
                    index.insert(key, entry.buffer_time_ms, size_bytes);
                }
            }
            index
        })
    }

    /// Buffers the latest value of a key; a key already buffered keeps its buffer time.
    fn buffer(
        &mut self,
        ctx: &mut Ctx<'_>,
        key_bytes: Vec<u8>,
        value_bytes: Option<Vec<u8>>,
        buffer_time_ms: i64,
        timestamp_ms: i64,
    ) {
        let index = self.index();
        let buffer_time_ms = index
            .entries
            .get(&key_bytes)
            .map_or(buffer_time_ms, |(time_ms, _)| *time_ms);
        let size_bytes = entry_size_bytes(&key_bytes, value_bytes.as_deref());
        index.insert(key_bytes.clone(), buffer_time_ms, size_bytes);
        let entry = encode_entry(buffer_time_ms, value_bytes.as_deref());
        self.store.put(ctx.outputs, key_bytes, entry, timestamp_ms);
    }

    /// Forwards every entry whose buffer time plus delay stream time has reached.
    fn emit_due(&mut self, ctx: &mut Ctx<'_>) {
        let due_through_ms = self.clock.observed_ms.saturating_sub(self.delay_ms);
        while let Some((buffer_time_ms, key)) = self.index().oldest().cloned() {
            if buffer_time_ms > due_through_ms {
                break;
            }
            self.emit(ctx, key);
        }
    }

    /// Emits the oldest entries early while the buffer is over a limit, or stops the
    /// task when it is to shut down when full.
    fn enforce_limits(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(limit) = self.exceeded_limit() {
            if self.buffer.when_full == BufferFull::ShutDown {
                self.store.fail(StateError::SuppressionBufferFull {
                    store: self.store_name.clone(),
                    limit,
                });
                return;
            }
            let Some((_, key)) = self.index().oldest().cloned() else {
                return;
            };
            self.emit(ctx, key);
        }
    }

    /// The limit the buffer is over, described, if any.
    fn exceeded_limit(&mut self) -> Option<String> {
        let (max_records, max_bytes) = (self.buffer.max_records, self.buffer.max_bytes);
        let index = self.index();
        let records = u64::try_from(index.entries.len()).unwrap_or(u64::MAX);
        if let Some(max_records) = max_records.filter(|max| records > *max) {
            return Some(format!("max {max_records} records"));
        }
        if let Some(max_bytes) = max_bytes.filter(|max| index.bytes > *max) {
            return Some(format!("max {max_bytes} bytes"));
        }
        None
    }

    /// Forwards the buffered entry of `key` and removes it from the buffer.
    fn emit(&mut self, ctx: &mut Ctx<'_>, key: Vec<u8>) {
        self.index().remove(&key);
        // The index mirrors the store; only a failed engine (which stops the task) differs.
        let Some(stored) = self.store.get(&key) else {
            return;
        };
        self.store
            .delete(ctx.outputs, key.clone(), stored.timestamp_ms);
        match self.read_entry(&key, stored) {
            Some(msg) if msg.value.is_none() && self.drop_tombstones => {}
            Some(msg) => ctx.forward(msg),
            None => ctx.drop_record(DropReason::Deserialization),
        }
    }

    /// The record a buffered entry forwards; `None` when its bytes cannot be read.
    fn read_entry(&self, key_bytes: &[u8], stored: StoredValue) -> Option<Msg> {
        let entry = decode_entry(&stored.value)?;
        let name = self.store_name.as_str();
        let key = self.key_serde.deserialize(name, key_bytes).ok()?;
        let value = match entry.value {
            Some(bytes) => Some(self.value_serde.deserialize(name, &bytes).ok()?),
            None => None,
        };
        Some(Msg {
            key: Some(Arc::new(key)),
            value: value.map(|value| Arc::new(value) as crate::graph::Payload),
            timestamp_ms: stored.timestamp_ms,
            headers: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries keep buffer time, presence and value through the bytes.
    #[test]
    fn buffered_entries_round_trip() {
        let entry = decode_entry(&encode_entry(42, Some(b"v"))).unwrap();
        assert_eq!(
            (entry.buffer_time_ms, entry.value),
            (42, Some(b"v".to_vec()))
        );
        let empty = decode_entry(&encode_entry(7, Some(b""))).unwrap();
        assert_eq!(
            empty.value,
            Some(Vec::new()),
            "an empty value is not a deletion"
        );
        let deletion = decode_entry(&encode_entry(7, None)).unwrap();
        assert_eq!(deletion.value, None);
        assert!(decode_entry(&[0; 8]).is_none(), "no presence byte");
    }
}
