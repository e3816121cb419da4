//! The compaction map: for each key in the dirty part of a log, the offset of its latest
//! record.
//!
//! Like Kafka's `SkimpyOffsetMap`, it stores a hash of each key rather than the key, so its
//! size depends on the number of keys only. The hash is 128 bits (two SipHash-1-3 hashes
//! under independent random keys), against Kafka's 128-bit MD5: with `n` keys the chance of
//! any collision is about `n² / 2¹²⁹`, some 10⁻²⁶ for a billion keys. A collision would make
//! the older of two keys' latest records look superseded, so the map is sized by entries and
//! never by a shorter hash.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

/// A key's 128-bit hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct KeyHash([u64; 2]);

/// Key hash to latest offset, with at most `max_entries` entries (but see `has_room_for`).
pub(crate) struct KeyMap {
    /// Two independently keyed hashers, one per half of the hash; fixed for the map's life,
    /// so a key always hashes the same within one pass.
    hashers: [RandomState; 2],
    latest_offsets: HashMap<KeyHash, i64>,
    /// `CleanerConfig::max_compaction_map_entries`.
    max_entries: usize,
}

impl KeyMap {
    /// An empty map that takes up to `max_entries` keys.
    pub fn new(max_entries: usize) -> KeyMap {
        KeyMap {
            hashers: [RandomState::new(), RandomState::new()],
            latest_offsets: HashMap::new(),
            max_entries,
        }
    }

    /// Whether `keys_count` more keys surely fit. An empty map takes any batch, so every
    /// pass makes progress; the limit can then be passed by one batch's keys.
    pub fn has_room_for(&self, keys_count: usize) -> bool {
        self.latest_offsets.is_empty()
            || self.latest_offsets.len().saturating_add(keys_count) <= self.max_entries
    }

    /// Records that `key`'s record at `offset` is its latest so far. Offsets come in
    /// ascending order, but the larger is kept regardless.
    pub fn insert(&mut self, key: &[u8], offset: i64) {
        let latest = self.latest_offsets.entry(self.hash(key)).or_insert(offset);
        *latest = (*latest).max(offset);
    }

    /// The offset of `key`'s latest mapped record, `None` if the key was not mapped.
    pub fn latest_offset(&self, key: &[u8]) -> Option<i64> {
        self.latest_offsets.get(&self.hash(key)).copied()
    }

    /// Keys mapped.
    pub fn len(&self) -> usize {
        self.latest_offsets.len()
    }

    fn hash(&self, key: &[u8]) -> KeyHash {
        let [low, high] = &self.hashers;
        KeyHash([low.hash_one(key), high.hash_one(key)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The map keeps each key's largest offset, tells keys apart, and reports room as the
    /// limit says, always taking a first batch.
    #[test]
    fn key_map_keeps_latest_offsets_within_its_limit() {
        let mut map = KeyMap::new(3);
        assert!(map.has_room_for(100), "an empty map takes any batch");
        map.insert(b"a", 1);
        map.insert(b"b", 2);
        map.insert(b"a", 5);
        map.insert(b"a", 4);
        assert_eq!(map.latest_offset(b"a"), Some(5));
        assert_eq!(map.latest_offset(b"b"), Some(2));
        assert_eq!(map.latest_offset(b"c"), None);
        assert_eq!(map.latest_offset(b""), None);
        assert_eq!(map.len(), 2);
        assert!(map.has_room_for(1));
        assert!(!map.has_room_for(2));
    }
}
