//! The session store: values per key and session `[start, end]`.
//!
//! Changelog key layout (Kafka Streams' `SessionKeySchema`): `key ‖ end (i64 BE) ‖ start
//! (i64 BE)`.

use std::sync::{Arc, RwLock};

use super::time_index::TimeIndexed;
use super::{Changelog, StoredValue, read_i64, read_lock, write_lock};
use crate::record::OutputRecord;

const SUFFIX_BYTES: usize = 16;

/// The data of one task's session store, shared with host-program queries.
#[derive(Debug, Default)]
pub(crate) struct SessionData {
    /// By key bytes, session end and session start.
    pub entries: TimeIndexed<i64>,
    observed_end_ms: i64,
}

/// A task's handle on one session store.
#[derive(Debug, Clone)]
pub(crate) struct SessionStore {
    changelog: Changelog,
    retention_ms: i64,
    pub data: Arc<RwLock<SessionData>>,
}

impl SessionStore {
    pub fn new(changelog: Changelog, retention_ms: i64) -> SessionStore {
        let data = SessionData {
            observed_end_ms: i64::MIN,
            ..SessionData::default()
        };
        SessionStore {
            changelog,
            retention_ms,
            data: Arc::new(RwLock::new(data)),
        }
    }

    pub fn changelog_topic(&self) -> &str {
        &self.changelog.topic
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, SessionData> {
        read_lock(&self.data)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, SessionData> {
        write_lock(&self.data)
    }

    /// Sessions of `key` with `end >= earliest_end_ms` and `start <= latest_start_ms`.
    pub fn find_overlapping(
        &self,
        key: &[u8],
        earliest_end_ms: i64,
        latest_start_ms: i64,
    ) -> Vec<(i64, i64, StoredValue)> {
        let data = self.read();
        let lower = (key.to_vec(), earliest_end_ms, i64::MIN);
        let upper = (key.to_vec(), i64::MAX, i64::MAX);
        data.entries
            .by_key
            .range(lower..=upper)
            .filter(|((_, _, start_ms), _)| *start_ms <= latest_start_ms)
            .map(|((_, end_ms, start_ms), stored)| (*start_ms, *end_ms, stored.clone()))
            .collect()
    }

    /// Sessions whose end lies within `(after_ms, through_ms]`, by end then key.
    pub fn ending_between(
        &self,
        after_ms: i64,
        through_ms: i64,
    ) -> impl Iterator<Item = (Vec<u8>, i64, i64, StoredValue)> + use<> {
        let found = self.read().entries.between(after_ms, through_ms);
        found
            .into_iter()
            .map(|(key, end_ms, start_ms, stored)| (key, start_ms, end_ms, stored))
    }

    /// Writes (or with `None` removes) the session `[start_ms, end_ms]` of `key`.
    pub fn put(
        &self,
        outputs: &mut Vec<OutputRecord>,
        key: &[u8],
        start_ms: i64,
        end_ms: i64,
        value: Option<Vec<u8>>,
        timestamp_ms: i64,
    ) {
        let mut changelog_key = key.to_vec();
        changelog_key.extend_from_slice(&end_ms.to_be_bytes());
        changelog_key.extend_from_slice(&start_ms.to_be_bytes());
        outputs.push(
            self.changelog
                .record(changelog_key, value.clone(), timestamp_ms),
        );
        self.apply(key.to_vec(), start_ms, end_ms, value, timestamp_ms);
    }

    /// Applies a changelog record without logging it; malformed keys are skipped.
    pub fn restore(&self, changelog_key: &[u8], value: Option<&[u8]>, timestamp_ms: i64) {
        let Some(key_bytes) = changelog_key.len().checked_sub(SUFFIX_BYTES) else {
            return;
        };
        let (Some(end_ms), Some(start_ms)) = (
            read_i64(changelog_key, key_bytes),
            read_i64(changelog_key, key_bytes + 8),
        ) else {
            return;
        };
        let key = changelog_key[..key_bytes].to_vec();
        self.apply(
            key,
            start_ms,
            end_ms,
            value.map(<[u8]>::to_vec),
            timestamp_ms,
        );
    }

    fn apply(
        &self,
        key: Vec<u8>,
        start_ms: i64,
        end_ms: i64,
        value: Option<Vec<u8>>,
        timestamp_ms: i64,
    ) {
        let mut data = self.write();
        let stored = value.map(|value| StoredValue {
            value,
            timestamp_ms,
        });
        data.entries.write(key, end_ms, start_ms, stored);
        if end_ms > data.observed_end_ms {
            data.observed_end_ms = end_ms;
            let cutoff_ms = end_ms.saturating_sub(self.retention_ms);
            data.entries.expire_while(|end_ms| end_ms < cutoff_ms);
        }
    }
}
