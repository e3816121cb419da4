//! Entries of a window or session store, ordered two ways.
//!
//! Both stores key an entry by `(key bytes, time, tiebreak)`: a window store by window
//! start and duplicate number, a session store by session end and start. Lookups for one
//! key range over that order; expiry and emitting closed windows walk the same entries by
//! time first, through a second index.

use std::collections::{BTreeMap, BTreeSet};

use super::StoredValue;

/// The entries of one task's window or session store.
#[derive(Debug)]
pub(crate) struct TimeIndexed<T> {
    pub by_key: BTreeMap<(Vec<u8>, i64, T), StoredValue>,
    by_time: BTreeSet<(i64, Vec<u8>, T)>,
}

impl<T> Default for TimeIndexed<T> {
    fn default() -> Self {
        TimeIndexed {
            by_key: BTreeMap::new(),
            by_time: BTreeSet::new(),
        }
    }
}

impl<T: Ord + Copy> TimeIndexed<T> {
    /// Stores `value` at `(key, time_ms, tiebreak)`, or with `None` removes what is there.
    pub fn write(&mut self, key: Vec<u8>, time_ms: i64, tiebreak: T, value: Option<StoredValue>) {
        match value {
            Some(value) => {
                self.by_time.insert((time_ms, key.clone(), tiebreak));
                self.by_key.insert((key, time_ms, tiebreak), value);
            }
            None => {
                self.by_time.remove(&(time_ms, key.clone(), tiebreak));
                self.by_key.remove(&(key, time_ms, tiebreak));
            }
        }
    }

    /// Removes entries in time order while `expired(time_ms)` holds.
    pub fn expire_while(&mut self, expired: impl Fn(i64) -> bool) {
        while let Some(first) = self.by_time.first() {
            if !expired(first.0) {
                break;
            }
            let Some((time_ms, key, tiebreak)) = self.by_time.pop_first() else {
                break;
            };
            self.by_key.remove(&(key, time_ms, tiebreak));
        }
    }

    /// Entries whose time lies within `(after_ms, through_ms]`, by time then key.
    pub fn between(&self, after_ms: i64, through_ms: i64) -> Vec<(Vec<u8>, i64, T, StoredValue)>
    where
        T: Bounded,
    {
        if through_ms <= after_ms {
            return Vec::new();
        }
        let lower = (after_ms.saturating_add(1), Vec::new(), T::MIN);
        let mut found = Vec::new();
        for (time_ms, key, tiebreak) in self.by_time.range(lower..) {
            if *time_ms > through_ms {
                break;
            }
            if let Some(stored) = self.by_key.get(&(key.clone(), *time_ms, *tiebreak)) {
                found.push((key.clone(), *time_ms, *tiebreak, stored.clone()));
            }
        }
        found
    }
}

/// A tiebreak's smallest value, where a range over the time index starts.
pub(crate) trait Bounded {
    const MIN: Self;
}

impl Bounded for i32 {
    const MIN: i32 = i32::MIN;
}

impl Bounded for i64 {
    const MIN: i64 = i64::MIN;
}
