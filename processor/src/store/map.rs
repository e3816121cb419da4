//! An ordered map of bytes, in memory or in a keyspace of the engine: what every store is
//! built on.
//!
//! A persistent map buffers the writes since its last flush in memory ([`Pending`]) and
//! reads through them. Writes reach the engine only at a flush, which the runtime does
//! after a commit: so the engine always holds a prefix of the changelog, never writes
//! whose changelog records may be lost, and a crash leaves a store that replaying its
//! changelog tail brings exactly to the committed state.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use super::engine::{StateEngine, StateError};

/// Entries in key order, `(key, value)`.
pub(crate) type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// One ordered map of a store.
#[derive(Debug)]
pub(crate) enum OrderedMap {
    /// Entirely in memory, lost with the process.
    Memory(BTreeMap<Vec<u8>, Vec<u8>>),
    /// In a keyspace, with unflushed writes in memory.
    Persistent(PersistentMap),
}

/// A keyspace and the writes not yet flushed to it.
pub(crate) struct PersistentMap {
    engine: Arc<StateEngine>,
    keyspace: fjall::Keyspace,
    /// Writes since the last flush, by key; `None` deletes.
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Key and value bytes in `pending`: the memory a commit gives back.
    pending_bytes: usize,
}

impl std::fmt::Debug for PersistentMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentMap")
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl OrderedMap {
    /// A map over the keyspace `name` of `engine`, with what it already holds.
    pub fn persistent(engine: &Arc<StateEngine>, name: &str) -> Result<OrderedMap, StateError> {
        let keyspace = engine.keyspace(name)?;
        Ok(OrderedMap::Persistent(PersistentMap {
            engine: engine.clone(),
            keyspace,
            pending: BTreeMap::new(),
            pending_bytes: 0,
        }))
    }

    /// The value at `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self {
            OrderedMap::Memory(map) => Ok(map.get(key).cloned()),
            OrderedMap::Persistent(map) => {
                if let Some(pending) = map.pending.get(key) {
                    return Ok(pending.clone());
                }
                let found = map
                    .keyspace
                    .get(key)
                    .map_err(|error| StateError::engine("get", error))?;
                Ok(found.map(|value| value.to_vec()))
            }
        }
    }

    /// Writes `value` at `key`, or with `None` deletes it.
    pub fn put(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        match self {
            OrderedMap::Memory(map) => match value {
                Some(value) => {
                    map.insert(key, value);
                }
                None => {
                    map.remove(&key);
                }
            },
            OrderedMap::Persistent(map) => {
                map.write_pending(key, value);
            }
        }
    }

    /// Writes `value` at `key`; true when it replaced a value this map holds in memory (a
    /// persistent map: among its unflushed writes), false when `key` had none there (it
    /// may have one on disk).
    pub fn replace(&mut self, key: Vec<u8>, value: Vec<u8>) -> bool {
        match self {
            OrderedMap::Memory(map) => map.insert(key, value).is_some(),
            OrderedMap::Persistent(map) => {
                matches!(map.write_pending(key, Some(value)), Some(Some(_)))
            }
        }
    }

    /// Entries with keys within `(lower, upper)`, in key order.
    pub fn range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<Entries, StateError> {
        match self {
            OrderedMap::Memory(map) => Ok(map
                .range::<[u8], _>((lower, upper))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()),
            OrderedMap::Persistent(map) => map.range(lower, upper),
        }
    }

    /// At most `limit` entries with keys within `(lower, upper)`, in key order: what a
    /// query reads while it holds the store's lock, so a large store cannot hold up
    /// processing for long.
    pub fn range_limited(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Entries, StateError> {
        match self {
            OrderedMap::Memory(map) => Ok(map
                .range::<[u8], _>((lower, upper))
                .take(limit)
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()),
            OrderedMap::Persistent(map) => map.range_limited(lower, upper, limit),
        }
    }

    /// About how many entries the map holds: exact in memory; on disk the engine's
    /// estimate (deletions not yet compacted away count) plus the unflushed writes.
    pub fn approximate_len(&self) -> usize {
        match self {
            OrderedMap::Memory(map) => map.len(),
            OrderedMap::Persistent(map) => {
                let written = map.pending.values().filter(|value| value.is_some()).count();
                map.keyspace.approximate_len().saturating_add(written)
            }
        }
    }

    /// Bytes of unflushed writes.
    pub fn pending_bytes(&self) -> usize {
        match self {
            OrderedMap::Memory(_) => 0,
            OrderedMap::Persistent(map) => map.pending_bytes,
        }
    }

    /// Moves unflushed writes into `batch`; [`StateEngine::commit`] applies them.
    pub fn flush_into(&mut self, batch: &mut fjall::OwnedWriteBatch) {
        let OrderedMap::Persistent(map) = self else {
            return;
        };
        for (key, value) in std::mem::take(&mut map.pending) {
            match value {
                Some(value) => batch.insert(&map.keyspace, key, value),
                None => batch.remove(&map.keyspace, key),
            }
        }
        map.pending_bytes = 0;
    }

    /// Deletes everything, on disk too (at once: only for wiping a store before a restore).
    pub fn clear(&mut self) -> Result<(), StateError> {
        match self {
            OrderedMap::Memory(map) => map.clear(),
            OrderedMap::Persistent(map) => {
                map.pending.clear();
                map.pending_bytes = 0;
                map.keyspace
                    .clear()
                    .map_err(|error| StateError::engine("clear keyspace", error))?;
            }
        }
        Ok(())
    }

    /// The keyspace, for deleting it; `None` in memory.
    pub fn into_keyspace(self) -> Option<(Arc<StateEngine>, fjall::Keyspace)> {
        match self {
            OrderedMap::Memory(_) => None,
            OrderedMap::Persistent(map) => Some((map.engine, map.keyspace)),
        }
    }
}

impl PersistentMap {
    /// Adds a write to the pending ones; returns the pending write it replaced, if any,
    /// whose bytes no longer count.
    fn write_pending(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) -> Option<Option<Vec<u8>>> {
        let (key_bytes, value_bytes) = (key.len(), value.as_ref().map_or(0, Vec::len));
        let replaced = self.pending.insert(key, value);
        match &replaced {
            Some(old) => {
                let old_bytes = old.as_ref().map_or(0, Vec::len);
                self.pending_bytes = self.pending_bytes + value_bytes - old_bytes;
            }
            None => self.pending_bytes += key_bytes + value_bytes,
        }
        replaced
    }

    /// The first `limit` entries in range, the pending writes laid over the engine's: both
    /// are walked in key order together, so no more is read than the answer needs (plus
    /// the pending deletions it skips).
    fn range_limited(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Entries, StateError> {
        let bounds = (lower.map(<[u8]>::to_vec), upper.map(<[u8]>::to_vec));
        let mut engine = self.keyspace.range(bounds).map(|guard| {
            let (key, value) = guard
                .into_inner()
                .map_err(|error| StateError::engine("range", error))?;
            Ok::<_, StateError>((key.to_vec(), value.to_vec()))
        });
        let mut pending = self.pending.range::<[u8], _>((lower, upper)).peekable();
        let mut next_engine = engine.next().transpose()?;
        let mut entries = Vec::new();
        while entries.len() < limit {
            let pending_first = match (&next_engine, pending.peek()) {
                (None, None) => break,
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (Some((engine_key, _)), Some((pending_key, _))) => *pending_key <= engine_key,
            };
            if pending_first {
                let Some((key, value)) = pending.next() else {
                    break;
                };
                // A pending write replaces the engine's entry at the same key.
                if next_engine
                    .as_ref()
                    .is_some_and(|(engine_key, _)| engine_key == key)
                {
                    next_engine = engine.next().transpose()?;
                }
                if let Some(value) = value {
                    entries.push((key.clone(), value.clone()));
                }
            } else if let Some(entry) = next_engine.take() {
                entries.push(entry);
                next_engine = engine.next().transpose()?;
            }
        }
        Ok(entries)
    }

    /// The engine's entries in range with the pending writes laid over them.
    fn range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<Entries, StateError> {
        let bounds = (lower.map(<[u8]>::to_vec), upper.map(<[u8]>::to_vec));
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for guard in self.keyspace.range(bounds) {
            let (key, value) = guard
                .into_inner()
                .map_err(|error| StateError::engine("range", error))?;
            merged.insert(key.to_vec(), value.to_vec());
        }
        for (key, value) in self.pending.range::<[u8], _>((lower, upper)) {
            match value {
                Some(value) => merged.insert(key.clone(), value.clone()),
                None => merged.remove(key),
            };
        }
        Ok(merged.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A limited range reads the pending writes laid over the engine's entries, in key
    /// order: a pending update wins, a pending deletion hides, and it stops at the limit.
    #[test]
    fn limited_ranges_merge_pending_writes_over_the_engine() {
        let dir =
            std::env::temp_dir().join(format!("riffle-map-limited-ranges-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let engine = Arc::new(StateEngine::open(&dir).expect("engine"));
        let mut map = OrderedMap::persistent(&engine, "store").expect("keyspace");
        for key in [b"a", b"c", b"e", b"g"] {
            map.put(key.to_vec(), Some(b"disk".to_vec()));
        }
        let mut batch = engine.batch();
        map.flush_into(&mut batch);
        engine.commit(batch).expect("commit");
        map.put(b"b".to_vec(), Some(b"new".to_vec()));
        map.put(b"c".to_vec(), Some(b"updated".to_vec()));
        map.put(b"e".to_vec(), None);
        let all = |limit| {
            let found = map.range_limited(Bound::Unbounded, Bound::Unbounded, limit);
            found.expect("range")
        };
        let entry = |key: &[u8], value: &[u8]| (key.to_vec(), value.to_vec());
        assert_eq!(
            all(10),
            vec![
                entry(b"a", b"disk"),
                entry(b"b", b"new"),
                entry(b"c", b"updated"),
                entry(b"g", b"disk"),
            ]
        );
        assert_eq!(all(2), all(10)[..2].to_vec());
        assert_eq!(
            all(10),
            map.range(Bound::Unbounded, Bound::Unbounded).unwrap()
        );
        let from_c = map.range_limited(Bound::Included(b"c"), Bound::Excluded(b"g"), 10);
        assert_eq!(from_c.unwrap(), vec![entry(b"c", b"updated")]);
        // Four on disk, two pending writes (the deletion does not count).
        assert_eq!(map.approximate_len(), 6);
        drop(map);
        drop(engine);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
