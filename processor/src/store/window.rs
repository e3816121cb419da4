//! The window store: values per key and window start, expired by stream time.
//!
//! Changelog key layout (Kafka Streams' `WindowKeySchema`): `key ‖ start (i64 BE) ‖ seq
//! (i32 BE)`, where seq is 0 except in stores that keep duplicates (join buffers).

use std::sync::{Arc, RwLock};

use super::time_index::TimeIndexed;
use super::{Changelog, StoredValue, read_i32, read_i64, read_lock, write_lock};
use crate::record::OutputRecord;

const SUFFIX_BYTES: usize = 8 + 4;

/// The data of one task's window store, shared with host-program queries.
#[derive(Debug, Default)]
pub(crate) struct WindowData {
    /// By key bytes, window start and duplicate number.
    pub entries: TimeIndexed<i32>,
    /// The largest window start written: the store's notion of stream time.
    observed_start_ms: i64,
    next_seq: i32,
}

/// A task's handle on one window store.
#[derive(Debug, Clone)]
pub(crate) struct WindowStore {
    changelog: Changelog,
    retention_ms: i64,
    keep_duplicates: bool,
    pub data: Arc<RwLock<WindowData>>,
}

impl WindowStore {
    pub fn new(changelog: Changelog, retention_ms: i64, keep_duplicates: bool) -> WindowStore {
        let data = WindowData {
            observed_start_ms: i64::MIN,
            ..WindowData::default()
        };
        WindowStore {
            changelog,
            retention_ms,
            keep_duplicates,
            data: Arc::new(RwLock::new(data)),
        }
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
        self.read()
            .entries
            .by_key
            .get(&(key.to_vec(), start_ms, 0))
            .cloned()
    }

    /// Every value of `key` in windows starting within `[from_ms, to_ms]`, by start.
    pub fn fetch_range(&self, key: &[u8], from_ms: i64, to_ms: i64) -> Vec<(i64, StoredValue)> {
        let data = self.read();
        let lower = (key.to_vec(), from_ms, i32::MIN);
        let upper = (key.to_vec(), to_ms, i32::MAX);
        data.entries
            .by_key
            .range(lower..=upper)
            .map(|((_, start_ms, _), stored)| (*start_ms, stored.clone()))
            .collect()
    }

    /// Every entry whose window starts within `(after_ms, through_ms]`, by start then key.
    pub fn starting_between(
        &self,
        after_ms: i64,
        through_ms: i64,
    ) -> impl Iterator<Item = (Vec<u8>, i64, StoredValue)> + use<> {
        let found = self.read().entries.between(after_ms, through_ms);
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
            if self.is_expired(&data, start_ms) {
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
        outputs.push(
            self.changelog
                .record(changelog_key, value.clone(), timestamp_ms),
        );
        self.apply(key.to_vec(), start_ms, seq, value, timestamp_ms);
        true
    }

    fn is_expired(&self, data: &WindowData, start_ms: i64) -> bool {
        data.observed_start_ms != i64::MIN
            && start_ms <= data.observed_start_ms.saturating_sub(self.retention_ms)
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
        let key = changelog_key[..key_bytes].to_vec();
        self.apply(key, start_ms, seq, value.map(<[u8]>::to_vec), timestamp_ms);
    }

    fn apply(
        &self,
        key: Vec<u8>,
        start_ms: i64,
        seq: i32,
        value: Option<Vec<u8>>,
        timestamp_ms: i64,
    ) {
        let mut data = self.write();
        let stored = value.map(|value| StoredValue {
            value,
            timestamp_ms,
        });
        data.entries.write(key, start_ms, seq, stored);
        if start_ms > data.observed_start_ms {
            data.observed_start_ms = start_ms;
            // Windows that fell out of retention; the changelog's own retention drops them
            // there, as in Kafka Streams.
            let cutoff_ms = start_ms.saturating_sub(self.retention_ms);
            data.entries.expire_while(|start_ms| start_ms <= cutoff_ms);
        }
    }
}
