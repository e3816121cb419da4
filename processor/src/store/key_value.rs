//! The key-value store: latest value per key.

use std::ops::Bound;
use std::sync::{Arc, RwLock};

use super::engine::StateError;
use super::layout::{decode_value, encode_value};
use super::map::OrderedMap;
use super::{Changelog, Failures, StoredValue, read_lock, write_lock};
use crate::record::OutputRecord;

/// The data of one task's key-value store, shared with host-program queries.
#[derive(Debug)]
pub(crate) struct KeyValueData {
    pub map: OrderedMap,
}

/// A task's handle on one key-value store.
#[derive(Debug, Clone)]
pub(crate) struct KeyValueStore {
    changelog: Changelog,
    failures: Failures,
    // A std lock: held only for a map operation, never across an await; host queries and the
    // task's operator are the only users.
    pub data: Arc<RwLock<KeyValueData>>,
}

impl KeyValueStore {
    pub fn new(changelog: Changelog, map: OrderedMap, failures: Failures) -> KeyValueStore {
        KeyValueStore {
            changelog,
            failures,
            data: Arc::new(RwLock::new(KeyValueData { map })),
        }
    }

    pub fn changelog_topic(&self) -> &str {
        &self.changelog.topic
    }

    /// The value at `key`; `None` also when the engine failed (the task then stops, see
    /// [`Failures`]).
    pub fn get(&self, key: &[u8]) -> Option<StoredValue> {
        let found = read_lock(&self.data).get(key);
        self.failures.note(found).flatten()
    }

    /// Writes `value` under `key` and logs the write to the changelog.
    pub fn put(
        &self,
        outputs: &mut Vec<OutputRecord>,
        key: Vec<u8>,
        value: Vec<u8>,
        timestamp_ms: i64,
    ) {
        let stored = encode_value(&value, timestamp_ms);
        self.changelog
            .log(outputs, key.clone(), Some(value), timestamp_ms);
        write_lock(&self.data).map.put(key, Some(stored));
    }

    /// Deletes `key` and logs the deletion (a tombstone) to the changelog.
    pub fn delete(&self, outputs: &mut Vec<OutputRecord>, key: Vec<u8>, timestamp_ms: i64) {
        self.changelog.log(outputs, key.clone(), None, timestamp_ms);
        write_lock(&self.data).map.put(key, None);
    }

    /// Entries with keys in `[from, to)` (unbounded where `None`), in key order; empty
    /// also when the engine failed (the task then stops, see [`Failures`]).
    pub fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Vec<(Vec<u8>, StoredValue)> {
        let found = read_lock(&self.data).range(from, to);
        self.failures.note(found).unwrap_or_default()
    }

    /// Stops the task with `error` (see [`Failures`]): for an operator that cannot go on.
    pub fn fail(&self, error: StateError) {
        self.failures.note::<()>(Err(error));
    }

    /// Applies a write without logging it (changelog replay).
    pub fn restore(&self, key: &[u8], value: Option<&[u8]>, timestamp_ms: i64) {
        let stored = value.map(|value| encode_value(value, timestamp_ms));
        write_lock(&self.data).map.put(key.to_vec(), stored);
    }
}

impl KeyValueData {
    /// The value at `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<StoredValue>, StateError> {
        Ok(self.map.get(key)?.as_deref().and_then(decode_value))
    }

    /// Entries with keys in `[from, to)` (unbounded where `None`), in key order.
    pub fn range(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, StoredValue)>, StateError> {
        let lower = from.map_or(Bound::Unbounded, Bound::Included);
        let upper = to.map_or(Bound::Unbounded, Bound::Excluded);
        let entries = self.map.range(lower, upper)?;
        Ok(entries
            .into_iter()
            .filter_map(|(key, value)| Some((key, decode_value(&value)?)))
            .collect())
    }

    /// At most `limit` entries with keys in `[from, to)`, in key order.
    pub fn range_limited(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, StoredValue)>, StateError> {
        let lower = from.map_or(Bound::Unbounded, Bound::Included);
        let upper = to.map_or(Bound::Unbounded, Bound::Excluded);
        let entries = self.map.range_limited(lower, upper, limit)?;
        Ok(entries
            .into_iter()
            .filter_map(|(key, value)| Some((key, decode_value(&value)?)))
            .collect())
    }

    /// About how many entries the store holds.
    pub fn approximate_len(&self) -> usize {
        self.map.approximate_len()
    }
}
