//! The window store: values per key and window start, expired by stream time.
//!
//! Changelog key layout (Kafka Streams' `WindowKeySchema`): `key ‖ start (i64 BE) ‖ seq
//! (i32 BE)`, where seq is 0 except in stores that keep duplicates (join buffers).

use std::sync::{Arc, RwLock};

use super::engine::StateError;
use super::segments::Segments;
use super::{Changelog, Failures, StoredValue, read_i32, read_i64, read_lock, write_lock};
use crate::record::OutputRecord;

const SUFFIX_BYTES: usize = 8 + 4;

/// The data of one task's window store, shared with host-program queries.
#[derive(Debug)]
pub(crate) struct WindowData {
    /// By key bytes, window start and duplicate number.
    entries: Segments<i32>,
    retention_ms: i64,
    /// The largest window start written: the store's notion of stream time.
    observed_start_ms: i64,
    next_seq: i32,
}

/// A task's handle on one window store.
#[derive(Debug, Clone)]
pub(crate) struct WindowStore {
    changelog: Changelog,
    keep_duplicates: bool,
    failures: Failures,
    pub data: Arc<RwLock<WindowData>>,
}

impl WindowStore {
    /// A store over `entries` (with what they already hold), keeping windows
    /// `retention_ms` behind the latest start.
    pub fn new(
        changelog: Changelog,
        entries: Segments<i32>,
        retention_ms: i64,
        keep_duplicates: bool,
        failures: Failures,
    ) -> Result<WindowStore, StateError> {
        let observed_start_ms = entries.latest_time_ms()?.unwrap_or(i64::MIN);
        let data = WindowData {
            entries,
            retention_ms,
            observed_start_ms,
            next_seq: 0,
        };
        Ok(WindowStore {
            changelog,
            keep_duplicates,
            failures,
            data: Arc::new(RwLock::new(data)),
        })
    }

    pub fn changelog_topic(&self) -> &str {
        &self.changelog.topic
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, WindowData> {
        read_lock(&self.data)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, WindowData> {
        write_lock(&self.data)
    }

    /// The value of `key` in the window starting at `start_ms` (seq 0).
    pub fn fetch(&self, key: &[u8], start_ms: i64) -> Option<StoredValue> {
        let data = self.read();
        if data.is_expired(start_ms) {
            return None;
        }
        let found = data.entries.get(key, start_ms, 0);
        self.failures.note(found).flatten()
    }

    /// Every value of `key` in windows starting within `[from_ms, to_ms]`, by start.
    pub fn fetch_range(&self, key: &[u8], from_ms: i64, to_ms: i64) -> Vec<(i64, StoredValue)> {
        let found = self.read().fetch_range(key, from_ms, to_ms);
        self.failures.note(found).unwrap_or_default()
    }

    /// Every entry whose window starts within `(after_ms, through_ms]`, by start then key.
    pub fn starting_between(
        &self,
        after_ms: i64,
        through_ms: i64,
    ) -> impl Iterator<Item = (Vec<u8>, i64, StoredValue)> + use<> {
        let found = {
            let data = self.read();
            let after_ms = after_ms.max(data.cutoff_ms());
            data.entries.between(after_ms, through_ms)
        };
        let found = self.failures.note(found).unwrap_or_default();
        found
            .into_iter()
            .map(|(key, start_ms, _, stored)| (key, start_ms, stored))
    }

    /// Writes (or with `None` deletes) `key` in the window at `start_ms`; false when the
    /// window is older than the store keeps, in which case nothing is written.
    pub fn put(
        &self,
        outputs: &mut Vec<OutputRecord>,
        key: &[u8],
        start_ms: i64,
        value: Option<Vec<u8>>,
        timestamp_ms: i64,
    ) -> bool {
        let seq = {
            let mut data = self.write();
            if data.is_expired(start_ms) {
                return false;
            }
            if self.keep_duplicates {
                data.next_seq = (data.next_seq.wrapping_add(1)) & 0x7fff_ffff;
                data.next_seq
            } else {
                0
            }
        };
        let mut changelog_key = key.to_vec();
        changelog_key.extend_from_slice(&start_ms.to_be_bytes());
        changelog_key.extend_from_slice(&seq.to_be_bytes());
        let stored = value.as_ref().map(|value| StoredValue {
            value: value.clone(),
            timestamp_ms,
        });
        self.changelog
            .log(outputs, changelog_key, value, timestamp_ms);
        self.apply(key, start_ms, seq, stored.as_ref());
        true
    }

    /// Applies a changelog record without logging it; malformed keys are skipped.
    pub fn restore(&self, changelog_key: &[u8], value: Option<&[u8]>, timestamp_ms: i64) {
        let Some(key_bytes) = changelog_key.len().checked_sub(SUFFIX_BYTES) else {
            return;
        };
        let (Some(start_ms), Some(seq)) = (
            read_i64(changelog_key, key_bytes),
            read_i32(changelog_key, key_bytes + 8),
        ) else {
            return;
        };
        let stored = value.map(|value| StoredValue {
            value: value.to_vec(),
            timestamp_ms,
        });
        self.apply(&changelog_key[..key_bytes], start_ms, seq, stored.as_ref());
    }

    fn apply(&self, key: &[u8], start_ms: i64, seq: i32, stored: Option<&StoredValue>) {
        let mut data = self.write();
        let written = data.entries.write(key, start_ms, seq, stored);
        self.failures.note(written);
        if start_ms > data.observed_start_ms {
            data.observed_start_ms = start_ms;
            // Windows that fell out of retention; the changelog's own retention drops them
            // there, as in Kafka Streams.
            let cutoff_ms = data.cutoff_ms();
            data.entries.expire_through(cutoff_ms);
        }
    }
}

impl WindowData {
    /// Windows starting at or before this are expired.
    fn cutoff_ms(&self) -> i64 {
        if self.observed_start_ms == i64::MIN {
            return i64::MIN;
        }
        self.observed_start_ms.saturating_sub(self.retention_ms)
    }

    fn is_expired(&self, start_ms: i64) -> bool {
        self.observed_start_ms != i64::MIN && start_ms <= self.cutoff_ms()
    }

    /// Every live value of `key` in windows starting within `[from_ms, to_ms]`, by start.
    pub fn fetch_range(
        &self,
        key: &[u8],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, StoredValue)>, StateError> {
        let found = self.entries.key_range(key, from_ms, to_ms)?;
        Ok(found
            .into_iter()
            .filter(|(_, start_ms, _, _)| !self.is_expired(*start_ms))
            .map(|(_, start_ms, _, stored)| (start_ms, stored))
            .collect())
    }

    /// Every live entry, by key then start: `(key, start, value)`.
    pub fn all(&self) -> Result<Vec<(Vec<u8>, i64, StoredValue)>, StateError> {
        let found = self.entries.all()?;
        Ok(found
            .into_iter()
            .filter(|(_, start_ms, _, _)| !self.is_expired(*start_ms))
            .map(|(key, start_ms, _, stored)| (key, start_ms, stored))
            .collect())
    }

    pub(crate) fn entries_mut(&mut self) -> &mut Segments<i32> {
        &mut self.entries
    }

    /// Bytes of writes not yet flushed to disk.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.entries.pending_bytes()
    }

    /// About how many entries the store holds, expired ones not yet dropped included.
    pub(crate) fn approximate_len(&self) -> usize {
        self.entries.approximate_len()
    }

    /// Whether the entries live on disk.
    pub(crate) fn is_persistent(&self) -> bool {
        self.entries.is_persistent()
    }

    /// Removes every entry, on disk too.
    pub(crate) fn clear(&mut self) -> Result<(), StateError> {
        self.observed_start_ms = i64::MIN;
        self.entries.clear()
    }
}
