//! The session store: values per key and session `[start, end]`.
//!
//! Changelog key layout (Kafka Streams' `SessionKeySchema`): `key ‖ end (i64 BE) ‖ start
//! (i64 BE)`.

use std::sync::{Arc, RwLock};

use super::engine::StateError;
use super::segments::Segments;
use super::{Changelog, Failures, StoredValue, read_i64, read_lock, write_lock};
use crate::record::OutputRecord;

const SUFFIX_BYTES: usize = 16;

/// The data of one task's session store, shared with host-program queries.
#[derive(Debug)]
pub(crate) struct SessionData {
    /// By key bytes, session end and session start.
    entries: Segments<i64>,
    retention_ms: i64,
    observed_end_ms: i64,
}

/// A task's handle on one session store.
#[derive(Debug, Clone)]
pub(crate) struct SessionStore {
    changelog: Changelog,
    failures: Failures,
    pub data: Arc<RwLock<SessionData>>,
}

impl SessionStore {
    /// A store over `entries` (with what they already hold), keeping sessions
    /// `retention_ms` past their end.
    pub fn new(
        changelog: Changelog,
        entries: Segments<i64>,
        retention_ms: i64,
        failures: Failures,
    ) -> Result<SessionStore, StateError> {
        let observed_end_ms = entries.latest_time_ms()?.unwrap_or(i64::MIN);
        let data = SessionData {
            entries,
            retention_ms,
            observed_end_ms,
        };
        Ok(SessionStore {
            changelog,
            failures,
            data: Arc::new(RwLock::new(data)),
        })
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
        let found = {
            let data = self.read();
            let earliest_end_ms = earliest_end_ms.max(data.cutoff_ms());
            data.entries.key_range(key, earliest_end_ms, i64::MAX)
        };
        let found = self.failures.note(found).unwrap_or_default();
        found
            .into_iter()
            .filter(|(_, _, start_ms, _)| *start_ms <= latest_start_ms)
            .map(|(_, end_ms, start_ms, stored)| (start_ms, end_ms, stored))
            .collect()
    }

    /// Sessions whose end lies within `(after_ms, through_ms]`, by end then key.
    pub fn ending_between(
        &self,
        after_ms: i64,
        through_ms: i64,
    ) -> impl Iterator<Item = (Vec<u8>, i64, i64, StoredValue)> + use<> {
        let found = {
            let data = self.read();
            let after_ms = after_ms.max(data.cutoff_ms().saturating_sub(1));
            data.entries.between(after_ms, through_ms)
        };
        let found = self.failures.note(found).unwrap_or_default();
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
        let stored = value.as_ref().map(|value| StoredValue {
            value: value.clone(),
            timestamp_ms,
        });
        self.changelog
            .log(outputs, changelog_key, value, timestamp_ms);
        self.apply(key, start_ms, end_ms, stored.as_ref());
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
        let stored = value.map(|value| StoredValue {
            value: value.to_vec(),
            timestamp_ms,
        });
        self.apply(
            &changelog_key[..key_bytes],
            start_ms,
            end_ms,
            stored.as_ref(),
        );
    }

    fn apply(&self, key: &[u8], start_ms: i64, end_ms: i64, stored: Option<&StoredValue>) {
        let mut data = self.write();
        let written = data.entries.write(key, end_ms, start_ms, stored);
        self.failures.note(written);
        if end_ms > data.observed_end_ms {
            data.observed_end_ms = end_ms;
            // Sessions ending before the cutoff are gone.
            let cutoff_ms = data.cutoff_ms();
            data.entries.expire_through(cutoff_ms.saturating_sub(1));
        }
    }
}

impl SessionData {
    /// Sessions ending before this are expired.
    fn cutoff_ms(&self) -> i64 {
        if self.observed_end_ms == i64::MIN {
            return i64::MIN;
        }
        self.observed_end_ms.saturating_sub(self.retention_ms)
    }

    /// Every live session of `key`, by end then start: `(start, end, value)`.
    pub fn fetch(&self, key: &[u8]) -> Result<Vec<(i64, i64, StoredValue)>, StateError> {
        let found = self.entries.key_range(key, self.cutoff_ms(), i64::MAX)?;
        Ok(found
            .into_iter()
            .map(|(_, end_ms, start_ms, stored)| (start_ms, end_ms, stored))
            .collect())
    }

    pub(crate) fn entries_mut(&mut self) -> &mut Segments<i64> {
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
        self.observed_end_ms = i64::MIN;
        self.entries.clear()
    }
}
