//! The entries of a window or session store, in time segments.
//!
//! Both stores key an entry by `(key bytes, time, tiebreak)`: a window store by window
//! start and duplicate number, a session store by session end and start. Each entry lives
//! in the segment of its time (Kafka Streams' segmented stores: `max(retention / 2, 60 s)`
//! wide), once under its key and once in a time-first index (see `layout`), so one key's
//! lookups and "everything that closed" scans are both ranges. Expiry drops whole
//! segments; a persistent segment is a keyspace, deleted at the next flush. Reads skip
//! entries past retention that a live segment still holds, so in-memory and persistent
//! stores answer alike.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use super::StoredValue;
use super::engine::{StateEngine, StateError};
use super::layout::{
    self, Tiebreak, decode_value, encode_value, entry_key, index_key, index_start, parse_index_key,
};
use super::map::OrderedMap;

/// The narrowest segment, as in Kafka Streams.
const MIN_SEGMENT_INTERVAL_MS: i64 = 60_000;

/// Where a store's segments live.
#[derive(Debug, Clone)]
pub(crate) enum SegmentHome {
    /// In memory.
    Memory,
    /// One keyspace each, named after the task and store.
    Persistent {
        /// The instance's engine.
        engine: Arc<StateEngine>,
        /// The task, as in keyspace names.
        task: String,
        /// The store.
        store: String,
    },
}

/// A found entry: key bytes, time, tiebreak and value.
pub(crate) type Found<T> = (Vec<u8>, i64, T, StoredValue);

/// The segments of one store of one task.
#[derive(Debug)]
pub(crate) struct Segments<T> {
    home: SegmentHome,
    interval_ms: i64,
    by_id: BTreeMap<i64, OrderedMap>,
    /// Expired persistent segments, deleted from disk at the next flush: until the commit
    /// that covers their expiry, a crash must still find them.
    expired: Vec<(i64, OrderedMap)>,
    _tiebreak: std::marker::PhantomData<T>,
}

impl<T: Tiebreak> Segments<T> {
    /// The segments of a store keeping `retention_ms`, with those already on disk.
    pub fn open(home: SegmentHome, retention_ms: i64) -> Result<Segments<T>, StateError> {
        let interval_ms = (retention_ms / 2).max(MIN_SEGMENT_INTERVAL_MS);
        let mut by_id = BTreeMap::new();
        if let SegmentHome::Persistent {
            engine,
            task,
            store,
        } = &home
        {
            for name in engine.keyspace_names() {
                if let Some(id) = layout::parse_segment_keyspace(&name, task, store) {
                    by_id.insert(id, OrderedMap::persistent(engine, &name)?);
                }
            }
        }
        Ok(Segments {
            home,
            interval_ms,
            by_id,
            expired: Vec::new(),
            _tiebreak: std::marker::PhantomData,
        })
    }

    fn segment_id(&self, time_ms: i64) -> i64 {
        time_ms.div_euclid(self.interval_ms)
    }

    /// The first time of segment `id`.
    fn segment_start_ms(&self, id: i64) -> i64 {
        id.saturating_mul(self.interval_ms)
    }

    fn segment(&mut self, time_ms: i64) -> Result<&mut OrderedMap, StateError> {
        let id = self.segment_id(time_ms);
        match self.by_id.entry(id) {
            std::collections::btree_map::Entry::Occupied(entry) => Ok(entry.into_mut()),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let map = match &self.home {
                    SegmentHome::Memory => OrderedMap::Memory(BTreeMap::new()),
                    SegmentHome::Persistent {
                        engine,
                        task,
                        store,
                    } => {
                        let name = layout::segment_keyspace(task, store, id);
                        OrderedMap::persistent(engine, &name)?
                    }
                };
                Ok(entry.insert(map))
            }
        }
    }

    /// The segments that may hold times within `[from_ms, to_ms]`, oldest first.
    fn overlapping(&self, from_ms: i64, to_ms: i64) -> impl Iterator<Item = &OrderedMap> {
        let (first, last) = (self.segment_id(from_ms), self.segment_id(to_ms));
        self.by_id
            .range(first..=last.max(first))
            .map(|(_, map)| map)
    }

    /// The value at `(key, time_ms, tiebreak)`.
    pub fn get(
        &self,
        key: &[u8],
        time_ms: i64,
        tiebreak: T,
    ) -> Result<Option<StoredValue>, StateError> {
        let Some(map) = self.by_id.get(&self.segment_id(time_ms)) else {
            return Ok(None);
        };
        let found = map.get(&entry_key(key, time_ms, tiebreak))?;
        Ok(found.as_deref().and_then(decode_value))
    }

    /// Stores `value` at `(key, time_ms, tiebreak)`, or with `None` removes what is there.
    pub fn write(
        &mut self,
        key: &[u8],
        time_ms: i64,
        tiebreak: T,
        value: Option<&StoredValue>,
    ) -> Result<(), StateError> {
        let map = self.segment(time_ms)?;
        let entry = entry_key(key, time_ms, tiebreak);
        match value {
            // An update of an entry the map holds in memory replaces it in place: its
            // index entry is there already (an entry and its index entry are written
            // and deleted together).
            Some(stored) => {
                let encoded = encode_value(&stored.value, stored.timestamp_ms);
                if !map.replace(entry, encoded) {
                    map.put(index_key(key, time_ms, tiebreak), Some(Vec::new()));
                }
            }
            None => {
                map.put(entry, None);
                map.put(index_key(key, time_ms, tiebreak), None);
            }
        }
        Ok(())
    }

    /// Entries of `key` with times within `[from_ms, to_ms]`, by time then tiebreak.
    pub fn key_range(
        &self,
        key: &[u8],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Found<T>>, StateError> {
        let lower = entry_key(key, from_ms, T::MIN);
        let upper = entry_key(key, to_ms, T::MAX);
        let mut found = Vec::new();
        for map in self.overlapping(from_ms, to_ms) {
            let entries = map.range(Bound::Included(&lower), Bound::Included(&upper))?;
            for (entry, value) in entries {
                let parsed = layout::parse_entry_key::<T>(&entry);
                if let (Some((key, time_ms, tiebreak)), Some(stored)) =
                    (parsed, decode_value(&value))
                {
                    found.push((key, time_ms, tiebreak, stored));
                }
            }
        }
        Ok(found)
    }

    /// Entries whose time lies within `(after_ms, through_ms]`, by time then key.
    pub fn between(&self, after_ms: i64, through_ms: i64) -> Result<Vec<Found<T>>, StateError> {
        if through_ms <= after_ms {
            return Ok(Vec::new());
        }
        let from_ms = after_ms.saturating_add(1);
        let lower = index_start(from_ms);
        let upper = through_ms.checked_add(1).map(index_start);
        let upper = match &upper {
            Some(upper) => Bound::Excluded(upper.as_slice()),
            None => Bound::Excluded(&[layout::INDEX_PREFIX + 1][..]),
        };
        let mut found = Vec::new();
        for map in self.overlapping(from_ms, through_ms) {
            for (index, _) in map.range(Bound::Included(&lower), upper)? {
                let Some((key, time_ms, tiebreak)) = parse_index_key::<T>(&index) else {
                    continue;
                };
                let value = map.get(&entry_key(&key, time_ms, tiebreak))?;
                if let Some(stored) = value.as_deref().and_then(decode_value) {
                    found.push((key, time_ms, tiebreak, stored));
                }
            }
        }
        Ok(found)
    }

    /// Every entry, by key then time then tiebreak.
    pub fn all(&self) -> Result<Vec<Found<T>>, StateError> {
        let mut found = self.between(i64::MIN, i64::MAX)?;
        found.sort_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));
        Ok(found)
    }

    /// The latest time any entry has, if any.
    pub fn latest_time_ms(&self) -> Result<Option<i64>, StateError> {
        for map in self.by_id.values().rev() {
            let lower = index_start(i64::MIN);
            let upper = [layout::INDEX_PREFIX + 1];
            let entries = map.range(Bound::Included(&lower), Bound::Excluded(&upper))?;
            if let Some((index, _)) = entries.last()
                && let Some((_, time_ms, _)) = parse_index_key::<T>(index)
            {
                return Ok(Some(time_ms));
            }
        }
        Ok(None)
    }

    /// Drops the segments whose every time is at or before `cutoff_ms`.
    pub fn expire_through(&mut self, cutoff_ms: i64) {
        // Segment `id` covers `[start(id), start(id + 1))`.
        let first_live = self.segment_id(cutoff_ms.saturating_add(1));
        let live = self.by_id.split_off(&first_live);
        let expired = std::mem::replace(&mut self.by_id, live);
        for (id, map) in expired {
            debug_assert!(
                self.segment_start_ms(id.saturating_add(1)) <= cutoff_ms.saturating_add(1)
            );
            if matches!(map, OrderedMap::Persistent(_)) {
                self.expired.push((id, map));
            }
        }
    }

    /// About how many entries the segments hold (see [`OrderedMap::approximate_len`]).
    pub fn approximate_len(&self) -> usize {
        // Each entry is stored twice: under its key and in the time index.
        let stored: usize = self.by_id.values().map(OrderedMap::approximate_len).sum();
        stored / 2
    }

    /// Whether the segments live on disk.
    pub fn is_persistent(&self) -> bool {
        matches!(self.home, SegmentHome::Persistent { .. })
    }

    /// Bytes of unflushed writes.
    pub fn pending_bytes(&self) -> usize {
        self.by_id.values().map(OrderedMap::pending_bytes).sum()
    }

    /// Moves unflushed writes into `batch`; returns the expired segments to delete once
    /// it is committed.
    pub fn flush_into(&mut self, batch: &mut fjall::OwnedWriteBatch) -> Vec<OrderedMap> {
        for map in self.by_id.values_mut() {
            map.flush_into(batch);
        }
        std::mem::take(&mut self.expired)
            .into_iter()
            .map(|(_, map)| map)
            .collect()
    }

    /// Deletes every segment, on disk too.
    pub fn clear(&mut self) -> Result<(), StateError> {
        let all = std::mem::take(&mut self.by_id);
        let expired = std::mem::take(&mut self.expired);
        delete_segments(
            all.into_values()
                .chain(expired.into_iter().map(|(_, map)| map)),
        )
    }
}

/// Deletes the keyspaces of persistent segments.
pub(crate) fn delete_segments(
    segments: impl IntoIterator<Item = OrderedMap>,
) -> Result<(), StateError> {
    for map in segments {
        if let Some((engine, keyspace)) = map.into_keyspace() {
            engine.delete_keyspace(keyspace)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(value: &[u8], timestamp_ms: i64) -> StoredValue {
        StoredValue {
            value: value.to_vec(),
            timestamp_ms,
        }
    }

    /// Updates in place, a delete and a re-insert, checked through both ways of reading
    /// (by key, and the time-first index), and the pending bytes they leave.
    fn updates_keep_entries_and_index_together(segments: &mut Segments<i32>) {
        for count in 0..5u8 {
            let value = stored(&[count], 100 + i64::from(count));
            segments.write(b"k", 1_000, 0, Some(&value)).expect("write");
        }
        segments
            .write(b"j", 1_000, 0, Some(&stored(b"j", 7)))
            .expect("write");
        let by_index = segments.between(0, 2_000).expect("scan");
        let by_index: Vec<_> = by_index.into_iter().map(|(k, t, _, v)| (k, t, v)).collect();
        assert_eq!(
            by_index,
            vec![
                (b"j".to_vec(), 1_000, stored(b"j", 7)),
                (b"k".to_vec(), 1_000, stored(&[4], 104)),
            ]
        );
        assert_eq!(
            segments.get(b"k", 1_000, 0).expect("get"),
            Some(stored(&[4], 104))
        );
        segments.write(b"k", 1_000, 0, None).expect("delete");
        assert_eq!(segments.get(b"k", 1_000, 0).expect("get"), None);
        assert_eq!(segments.between(0, 2_000).expect("scan").len(), 1);
        segments
            .write(b"k", 1_000, 0, Some(&stored(b"again", 9)))
            .expect("write");
        assert_eq!(segments.between(0, 2_000).expect("scan").len(), 2);
    }

    #[test]
    fn in_memory_updates_replace_in_place_and_keep_the_index() {
        // Proves an update that skips rewriting the index leaves lookups and scans right.
        let mut segments = Segments::<i32>::open(SegmentHome::Memory, 60_000).expect("open");
        updates_keep_entries_and_index_together(&mut segments);
    }

    #[test]
    fn persistent_updates_replace_in_place_and_count_pending_bytes_once() {
        // Proves the same on disk-backed segments, before and after a flush, and that a
        // replaced pending write no longer counts towards the bytes waiting for a commit.
        let dir = tempfile_dir("persistent_updates_replace_in_place");
        let engine = Arc::new(StateEngine::open(&dir).expect("engine"));
        let home = SegmentHome::Persistent {
            engine: engine.clone(),
            task: "0_0".into(),
            store: "counts".into(),
        };
        let mut segments = Segments::<i32>::open(home, 60_000).expect("open");
        let value = stored(b"12345678", 1);
        segments.write(b"k", 1_000, 0, Some(&value)).expect("write");
        let once = segments.pending_bytes();
        for _ in 0..10 {
            segments.write(b"k", 1_000, 0, Some(&value)).expect("write");
        }
        assert_eq!(segments.pending_bytes(), once);
        let mut batch = engine.batch();
        segments.flush_into(&mut batch);
        engine.commit(batch).expect("commit");
        assert_eq!(segments.pending_bytes(), 0);
        updates_keep_entries_and_index_together(&mut segments);
        drop(segments);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("riffle-segments-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}
