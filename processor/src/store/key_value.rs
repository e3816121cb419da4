//! The key-value store: latest value per key.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock};

use super::{Changelog, StoredValue, read_lock, write_lock};
use crate::record::OutputRecord;

/// The data of one task's key-value store, shared with host-program queries.
#[derive(Debug, Default)]
pub(crate) struct KeyValueData {
    pub entries: BTreeMap<Vec<u8>, StoredValue>,
}

/// A task's handle on one key-value store.
#[derive(Debug, Clone)]
pub(crate) struct KeyValueStore {
    changelog: Changelog,
    // A std lock: held only for a map operation, never across an await; host queries and the
    // task's operator are the only users.
    pub data: Arc<RwLock<KeyValueData>>,
}

impl KeyValueStore {
    pub fn new(changelog: Changelog) -> KeyValueStore {
        KeyValueStore {
            changelog,
            data: Arc::default(),
        }
    }

    pub fn changelog_topic(&self) -> &str {
        &self.changelog.topic
    }

    pub fn get(&self, key: &[u8]) -> Option<StoredValue> {
        let data = read_lock(&self.data);
        data.entries.get(key).cloned()
    }

    /// Writes `value` under `key` and logs the write to the changelog.
    pub fn put(
        &self,
        outputs: &mut Vec<OutputRecord>,
        key: Vec<u8>,
        value: Vec<u8>,
        timestamp_ms: i64,
    ) {
        outputs.push(
            self.changelog
                .record(key.clone(), Some(value.clone()), timestamp_ms),
        );
        let stored = StoredValue {
            value,
            timestamp_ms,
        };
        write_lock(&self.data).entries.insert(key, stored);
    }

    /// Applies a write without logging it (changelog replay).
    pub fn restore(&self, key: &[u8], value: Option<&[u8]>, timestamp_ms: i64) {
        let mut data = write_lock(&self.data);
        match value {
            Some(value) => {
                let stored = StoredValue {
                    value: value.to_vec(),
                    timestamp_ms,
                };
                data.entries.insert(key.to_vec(), stored);
            }
            None => {
                data.entries.remove(key);
            }
        }
    }
}

impl KeyValueData {
    /// Entries with keys in `[from, to)` (unbounded where `None`), in key order.
    pub fn range(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
    ) -> impl Iterator<Item = (&Vec<u8>, &StoredValue)> {
        let lower = from.map_or(Bound::Unbounded, |key| Bound::Included(key.to_vec()));
        let upper = to.map_or(Bound::Unbounded, |key| Bound::Excluded(key.to_vec()));
        self.entries.range((lower, upper))
    }
}
