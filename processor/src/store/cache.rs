//! The record cache (Kafka Streams' `statestore.cache.max.bytes`): coalesces updates to a
//! key before they are forwarded and written to the store and its changelog.
//!
//! One [`RecordCache`] per cached store of a task, owned by the operator that writes the
//! store. Writes land in the cache as dirty entries; reads look in the cache first. Dirty
//! entries leave, in the order they were last written, when the runtime commits
//! ([`RecordCache::flush`]) or when a write takes the instance's [`CacheBudget`] over its
//! limit: the least recently used entry is evicted, and if it was dirty it goes first and
//! the least recently written dirty entries of that cache with it, up to
//! [`EVICTION_FLUSH_MAX_ENTRIES`]. Kafka Streams' `NamedCache` flushes every dirty entry
//! there; a bounded batch keeps each eviction's burst of store writes and outputs (and so
//! the process's peak memory) within a limit that does not grow with the cache or the
//! input. A flushed entry stays in the cache, clean, so the next read of its key is a hit.
//!
//! A slab of entries with two intrusive lists (recency and dirtiness): every operation is
//! a hash lookup and a few index swaps, which matters on a path taken once per record.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What an entry costs beyond its key and value bytes, as allocated: the slab slot with
/// its list links (120 bytes, slab growth included about 160), the index entry (about 50
/// with the table's spare room) and the record kept for forwarding (its key and value
/// behind two `Arc`s, about 100). Measured on a windowed count; counting less would let
/// the cache hold twice the memory its budget says.
pub(crate) const CACHE_ENTRY_OVERHEAD_BYTES: usize = 288;

/// Dirty entries one eviction writes out at most, the evicted one included: a bounded
/// burst of store writes and outputs, while still writing in batches rather than one
/// entry per eviction.
pub(crate) const EVICTION_FLUSH_MAX_ENTRIES: usize = 512;

/// No entry: the end of a list.
const NONE: u32 = u32::MAX;

/// The bytes every record cache of one runtime instance may hold together (Kafka Streams
/// sizes each thread's cache from the total; one shared budget does the same for every
/// thread at once). Disabled at 0: operators then write through, one update per record.
#[derive(Debug, Clone, Default)]
pub(crate) struct CacheBudget(Option<Arc<Budget>>);

#[derive(Debug)]
struct Budget {
    max_bytes: usize,
    used_bytes: AtomicUsize,
}

impl CacheBudget {
    /// A budget of `max_bytes` over every cache; 0 turns caching off.
    pub fn new(max_bytes: usize) -> CacheBudget {
        if max_bytes == 0 {
            return CacheBudget(None);
        }
        CacheBudget(Some(Arc::new(Budget {
            max_bytes,
            used_bytes: AtomicUsize::new(0),
        })))
    }

    /// No caching.
    pub fn disabled() -> CacheBudget {
        CacheBudget(None)
    }

    /// Whether caches exist at all (a budget above 0).
    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    /// A cache drawing on this budget, or `None` when caching is off.
    pub fn cache<T>(&self) -> Option<RecordCache<T>> {
        let budget = self.0.clone()?;
        Some(RecordCache {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::default(),
            last_read: NONE,
            recent: List::default(),
            dirty: List::default(),
            bytes: 0,
            budget,
        })
    }

    /// Bytes held by every cache on this budget now.
    #[cfg(test)]
    pub fn used_bytes(&self) -> usize {
        self.0
            .as_ref()
            .map_or(0, |budget| budget.used_bytes.load(Ordering::Relaxed))
    }
}

/// A cached value: `None` is a deletion not yet written through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CachedValue {
    pub value: Option<Vec<u8>>,
    pub timestamp_ms: i64,
}

/// A dirty entry leaving the cache: to write to the store (and changelog), then forward.
#[derive(Debug)]
pub(crate) struct Flushed<T> {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    pub timestamp_ms: i64,
    /// What the operator forwards for this key: the record of its latest update.
    pub record: T,
}

/// One store's record cache. `T` is what the operator forwards when an entry is flushed.
pub(crate) struct RecordCache<T> {
    slots: Vec<Slot<T>>,
    /// Slots of evicted entries, for reuse.
    free: Vec<u32>,
    /// FxHash, not SipHash: keys come from the application's own input, and a lookup
    /// per record is a large part of the record's cost.
    index: HashMap<Vec<u8>, u32, BuildHasherDefault<rustc_hash::FxHasher>>,
    /// The slot the last `get` hit: an operator reads a key and then writes it, so `put`
    /// checks this slot's key before hashing again.
    last_read: u32,
    /// Most recently used at the head; eviction takes the tail.
    recent: List,
    /// Dirty entries, least recently written at the head: the flush order.
    dirty: List,
    /// Bytes this cache holds, also counted in `budget`.
    bytes: usize,
    budget: Arc<Budget>,
}

struct Slot<T> {
    key: Vec<u8>,
    value: CachedValue,
    /// The record to forward; `Some` exactly while the entry is dirty.
    record: Option<T>,
    recent: Links,
    dirty: Links,
}

#[derive(Debug, Clone, Copy)]
struct Links {
    previous: u32,
    next: u32,
}

impl Default for Links {
    fn default() -> Self {
        Links {
            previous: NONE,
            next: NONE,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

impl Default for List {
    fn default() -> Self {
        List {
            head: NONE,
            tail: NONE,
        }
    }
}

/// Which of a slot's two lists.
#[derive(Clone, Copy)]
enum Which {
    Recent,
    Dirty,
}

impl<T> RecordCache<T> {
    /// The cached value of `key`, marking it recently used; `None` on a miss (read the
    /// store then).
    pub fn get(&mut self, key: &[u8]) -> Option<&CachedValue> {
        let slot = *self.index.get(key)?;
        self.last_read = slot;
        self.unlink(Which::Recent, slot);
        self.push_head(Which::Recent, slot);
        Some(&self.slots[slot as usize].value)
    }

    /// Writes `value` for `key` as a dirty entry whose flush forwards `record`. Returns
    /// what the write evicted to stay within the budget (empty mostly): write those
    /// through and forward them now.
    pub fn put(&mut self, key: &[u8], value: CachedValue, record: T) -> Vec<Flushed<T>> {
        let value_bytes = value.value.as_ref().map_or(0, Vec::len);
        let last_read = std::mem::replace(&mut self.last_read, NONE);
        let hit = match self.slots.get(last_read as usize) {
            Some(entry) if entry.key == key => Some(last_read),
            _ => self.index.get(key).copied(),
        };
        match hit {
            Some(slot) => {
                let entry = &mut self.slots[slot as usize];
                let old_bytes = entry.value.value.as_ref().map_or(0, Vec::len);
                let was_dirty = entry.record.is_some();
                entry.value = value;
                entry.record = Some(record);
                self.resize(old_bytes, value_bytes);
                self.unlink(Which::Recent, slot);
                self.push_head(Which::Recent, slot);
                if was_dirty {
                    self.unlink(Which::Dirty, slot);
                }
                self.push_tail(Which::Dirty, slot);
            }
            None => {
                let slot = self.insert(key.to_vec(), value, record);
                self.resize(0, entry_bytes(key.len(), value_bytes));
                self.push_head(Which::Recent, slot);
                self.push_tail(Which::Dirty, slot);
            }
        }
        self.evict_over_budget()
    }

    /// Every dirty entry, in the order they were last written; they stay cached, clean
    /// (deletions leave the cache: the store answers for them once written).
    pub fn flush(&mut self) -> Vec<Flushed<T>> {
        let mut flushed = Vec::new();
        self.flush_into(&mut flushed, usize::MAX);
        flushed
    }

    /// Moves up to `max_entries` dirty entries, least recently written first, into
    /// `flushed`.
    fn flush_into(&mut self, flushed: &mut Vec<Flushed<T>>, max_entries: usize) {
        let mut taken = 0;
        while self.dirty.head != NONE && taken < max_entries {
            taken += 1;
            let slot = self.dirty.head;
            self.unlink(Which::Dirty, slot);
            let entry = &mut self.slots[slot as usize];
            let Some(record) = entry.record.take() else {
                continue;
            };
            flushed.push(Flushed {
                key: entry.key.clone(),
                value: entry.value.value.clone(),
                timestamp_ms: entry.value.timestamp_ms,
                record,
            });
            if entry.value.value.is_none() {
                self.remove(slot);
            }
        }
    }

    /// Entries cached now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Evicts least recently used entries while the budget is exceeded and this cache
    /// holds any (a write here cannot free another store's cache, as in Kafka Streams).
    fn evict_over_budget(&mut self) -> Vec<Flushed<T>> {
        let mut flushed = Vec::new();
        while self.over_budget() && self.recent.tail != NONE {
            let slot = self.recent.tail;
            let entry = &mut self.slots[slot as usize];
            let (record, timestamp_ms) = (entry.record.take(), entry.value.timestamp_ms);
            if record.is_some() {
                self.unlink(Which::Dirty, slot);
            }
            let (key, value) = self.remove(slot);
            if let Some(record) = record {
                // The evicted entry first, then the least recently written dirty ones.
                flushed.push(Flushed {
                    key,
                    value,
                    timestamp_ms,
                    record,
                });
                self.flush_into(&mut flushed, EVICTION_FLUSH_MAX_ENTRIES - 1);
            }
        }
        flushed
    }

    fn over_budget(&self) -> bool {
        self.budget.used_bytes.load(Ordering::Relaxed) > self.budget.max_bytes
    }

    fn insert(&mut self, key: Vec<u8>, value: CachedValue, record: T) -> u32 {
        let entry = Slot {
            key: key.clone(),
            value,
            record: Some(record),
            recent: Links::default(),
            dirty: Links::default(),
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = entry;
                slot
            }
            None => {
                self.slots.push(entry);
                u32::try_from(self.slots.len() - 1).expect("fewer than 4G cached entries")
            }
        };
        self.index.insert(key, slot);
        slot
    }

    /// Drops the entry at `slot` (already off the dirty list), gives back its bytes, and
    /// returns its key and value.
    fn remove(&mut self, slot: u32) -> (Vec<u8>, Option<Vec<u8>>) {
        self.last_read = NONE;
        self.unlink(Which::Recent, slot);
        let entry = &mut self.slots[slot as usize];
        let key = std::mem::take(&mut entry.key);
        let value = entry.value.value.take();
        entry.record = None;
        self.index.remove(&key);
        self.free.push(slot);
        let value_bytes = value.as_ref().map_or(0, Vec::len);
        self.resize(entry_bytes(key.len(), value_bytes), 0);
        (key, value)
    }

    fn resize(&mut self, old_bytes: usize, new_bytes: usize) {
        self.bytes = self.bytes + new_bytes - old_bytes;
        if new_bytes >= old_bytes {
            let grown = new_bytes - old_bytes;
            self.budget.used_bytes.fetch_add(grown, Ordering::Relaxed);
        } else {
            let shrunk = old_bytes - new_bytes;
            self.budget.used_bytes.fetch_sub(shrunk, Ordering::Relaxed);
        }
    }

    fn links(&mut self, which: Which, slot: u32) -> &mut Links {
        let entry = &mut self.slots[slot as usize];
        match which {
            Which::Recent => &mut entry.recent,
            Which::Dirty => &mut entry.dirty,
        }
    }

    fn list(&mut self, which: Which) -> &mut List {
        match which {
            Which::Recent => &mut self.recent,
            Which::Dirty => &mut self.dirty,
        }
    }

    fn unlink(&mut self, which: Which, slot: u32) {
        let Links { previous, next } = *self.links(which, slot);
        match previous {
            NONE => self.list(which).head = next,
            previous => self.links(which, previous).next = next,
        }
        match next {
            NONE => self.list(which).tail = previous,
            next => self.links(which, next).previous = previous,
        }
        *self.links(which, slot) = Links::default();
    }

    fn push_head(&mut self, which: Which, slot: u32) {
        let head = self.list(which).head;
        *self.links(which, slot) = Links {
            previous: NONE,
            next: head,
        };
        match head {
            NONE => self.list(which).tail = slot,
            head => self.links(which, head).previous = slot,
        }
        self.list(which).head = slot;
    }

    fn push_tail(&mut self, which: Which, slot: u32) {
        let tail = self.list(which).tail;
        *self.links(which, slot) = Links {
            previous: tail,
            next: NONE,
        };
        match tail {
            NONE => self.list(which).head = slot,
            tail => self.links(which, tail).next = slot,
        }
        self.list(which).tail = slot;
    }
}

impl<T> Drop for RecordCache<T> {
    fn drop(&mut self) {
        self.budget
            .used_bytes
            .fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// What an entry of this size counts against the budget (its key is held twice: in the
/// index and in its slot).
fn entry_bytes(key_bytes: usize, value_bytes: usize) -> usize {
    2 * key_bytes + value_bytes + CACHE_ENTRY_OVERHEAD_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(byte: u8, timestamp_ms: i64) -> CachedValue {
        CachedValue {
            value: Some(vec![byte]),
            timestamp_ms,
        }
    }

    fn keys(flushed: &[Flushed<u32>]) -> Vec<Vec<u8>> {
        flushed.iter().map(|entry| entry.key.clone()).collect()
    }

    /// A write after a read of another key, or of a key evicted since, still finds its
    /// own entry (the write reuses the read's slot only when the keys match).
    #[test]
    fn a_write_after_a_read_of_another_key_keeps_both() {
        let mut cache = CacheBudget::new(1 << 20).cache::<u32>().unwrap();
        assert!(cache.put(b"a", value(1, 10), 1).is_empty());
        assert_eq!(cache.get(b"a"), Some(&value(1, 10)));
        assert!(cache.put(b"b", value(2, 20), 2).is_empty());
        assert_eq!(cache.get(b"a"), Some(&value(1, 10)));
        assert_eq!(cache.get(b"b"), Some(&value(2, 20)));
        assert!(cache.put(b"b", value(3, 30), 3).is_empty());
        assert_eq!(cache.len(), 2);
        let flushed = cache.flush();
        assert_eq!(keys(&flushed), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(flushed[1].value, Some(vec![3]));
    }

    /// Repeated writes to a key coalesce into one flushed entry with the latest value and
    /// timestamp; flush order is the order of each key's last write; reads hit afterwards.
    #[test]
    fn writes_coalesce_and_flush_in_last_write_order() {
        let mut cache = CacheBudget::new(1 << 20).cache::<u32>().unwrap();
        assert!(cache.put(b"a", value(1, 10), 1).is_empty());
        assert!(cache.put(b"b", value(2, 20), 2).is_empty());
        assert!(cache.put(b"a", value(3, 30), 3).is_empty());
        let flushed = cache.flush();
        assert_eq!(keys(&flushed), vec![b"b".to_vec(), b"a".to_vec()]);
        assert_eq!(flushed[1].value, Some(vec![3]));
        assert_eq!((flushed[1].timestamp_ms, flushed[1].record), (30, 3));
        assert!(cache.flush().is_empty(), "flushed entries are clean");
        assert_eq!(cache.get(b"a"), Some(&value(3, 30)));
    }

    /// Over budget, the least recently used entry is evicted; a dirty one takes every
    /// other dirty entry with it, evicted first; a clean one goes silently.
    #[test]
    fn eviction_takes_the_least_recently_used_and_flushes_dirty_ones() {
        let one_entry = entry_bytes(1, 1);
        let budget = CacheBudget::new(3 * one_entry);
        let mut cache = budget.cache::<u32>().unwrap();
        cache.put(b"a", value(1, 1), 1);
        cache.put(b"b", value(2, 2), 2);
        cache.put(b"c", value(3, 3), 3);
        assert_eq!(budget.used_bytes(), 3 * one_entry);
        // A read makes "a" recent: "b" is now the eldest.
        cache.get(b"a");
        let flushed = cache.put(b"d", value(4, 4), 4);
        let expected = [b"b", b"a", b"c", b"d"].map(|key| key.to_vec());
        assert_eq!(keys(&flushed), expected);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(b"b"), None);
        // Everything is clean now: the next eviction flushes nothing.
        assert!(cache.put(b"e", value(5, 5), 5).is_empty());
        assert_eq!(cache.get(b"c"), None, "the eldest clean entry went");
        drop(cache);
        assert_eq!(
            budget.used_bytes(),
            0,
            "a dropped cache gives its bytes back"
        );
    }

    /// One eviction writes out a bounded batch: the evicted entry and the least recently
    /// written dirty ones, not every dirty entry of a large cache.
    #[test]
    fn an_eviction_flushes_a_bounded_batch() {
        let entries = 2 * EVICTION_FLUSH_MAX_ENTRIES;
        let budget = CacheBudget::new(entries * entry_bytes(4, 1));
        let mut cache = budget.cache::<u32>().unwrap();
        for key in 0..entries as u32 {
            assert!(cache.put(&key.to_be_bytes(), value(1, 1), key).is_empty());
        }
        let flushed = cache.put(&u32::MAX.to_be_bytes(), value(2, 2), 0);
        assert_eq!(flushed.len(), EVICTION_FLUSH_MAX_ENTRIES);
        assert_eq!(
            flushed[0].key,
            0u32.to_be_bytes().to_vec(),
            "the evicted one first"
        );
        assert_eq!(
            cache.flush().len(),
            entries - EVICTION_FLUSH_MAX_ENTRIES + 1
        );
    }

    /// A flushed deletion leaves the cache; 0 bytes turns caching off.
    #[test]
    fn deletions_leave_on_flush_and_zero_disables() {
        let mut cache = CacheBudget::new(1 << 20).cache::<u32>().unwrap();
        let deletion = CachedValue {
            value: None,
            timestamp_ms: 5,
        };
        cache.put(b"a", deletion, 1);
        assert_eq!(cache.get(b"a").map(|v| v.value.clone()), Some(None));
        assert_eq!(cache.flush().len(), 1);
        assert_eq!(cache.get(b"a"), None);
        assert!(CacheBudget::new(0).cache::<u32>().is_none());
    }
}
