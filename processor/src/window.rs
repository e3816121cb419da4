//! Window definitions: tumbling and hopping time windows, session windows, join windows.
//!
//! Semantics follow Kafka Streams (see the crate doc): time windows are `[start, end)` aligned
//! to epoch 0; sessions are `[start, end]` inclusive; a window closes once stream time passes
//! its last included millisecond plus the grace period (plus the gap for sessions). Every
//! window takes an explicit grace: there is no hidden 24-hour default.

use std::time::Duration;

/// A key together with the window it was aggregated in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Windowed<K> {
    /// The record key.
    pub key: K,
    /// First millisecond of the window (inclusive).
    pub start_ms: i64,
    /// End of the window: exclusive for time windows, inclusive for sliding windows and
    /// sessions.
    pub end_ms: i64,
}

/// When a windowed aggregation forwards its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Emit {
    /// Every update, as it happens (Kafka Streams' default).
    #[default]
    OnUpdate,
    /// Once per window, with its final value, when stream time closes it (KIP-825).
    OnWindowClose,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Tumbling (`advance == size`) or hopping (`advance < size`) windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    /// Window length.
    pub size_ms: i64,
    /// Distance between window starts.
    pub advance_ms: i64,
    /// How long after its end a window still accepts records.
    pub grace_ms: i64,
}

impl TimeWindows {
    /// Non-overlapping windows of `size`, with no grace until [`TimeWindows::grace`].
    ///
    /// # Panics
    /// If `size` is zero: a programming error in the topology.
    pub fn tumbling(size: Duration) -> TimeWindows {
        let size_ms = millis(size);
        assert!(size_ms > 0, "a window needs a size of at least 1 ms");
        TimeWindows {
            size_ms,
            advance_ms: size_ms,
            grace_ms: 0,
        }
    }

    /// Overlapping windows of `size` starting every `advance`.
    ///
    /// # Panics
    /// Unless `0 < advance <= size`.
    pub fn hopping(size: Duration, advance: Duration) -> TimeWindows {
        let mut windows = TimeWindows::tumbling(size);
        let advance_ms = millis(advance);
        assert!(
            advance_ms > 0,
            "a hopping window must advance by at least 1 ms"
        );
        assert!(
            advance_ms <= windows.size_ms,
            "advance must not exceed the size"
        );
        windows.advance_ms = advance_ms;
        windows
    }

    /// The grace period: records up to `grace` after a window's end still count.
    pub fn grace(mut self, grace: Duration) -> TimeWindows {
        self.grace_ms = millis(grace);
        self
    }

    /// Starts of every window that contains `timestamp_ms`, oldest first; none start before 0.
    pub fn window_starts(&self, timestamp_ms: i64) -> impl Iterator<Item = i64> + use<> {
        let advance_ms = self.advance_ms;
        let lowest = (timestamp_ms - self.size_ms + advance_ms).max(0);
        let first_start_ms = lowest - lowest.rem_euclid(advance_ms);
        let last_start_ms = timestamp_ms;
        (0..)
            .map(move |step| first_start_ms + step * advance_ms)
            .take_while(move |start_ms| *start_ms <= last_start_ms)
    }

    /// How long the store keeps a window: its size plus grace.
    pub fn retention_ms(&self) -> i64 {
        self.size_ms.saturating_add(self.grace_ms)
    }
}

/// Session windows: records of one key closer than `gap` apart share a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    /// Inactivity gap; records exactly `gap` apart share a session.
    pub gap_ms: i64,
    /// How long after a session could last be extended it still accepts records.
    pub grace_ms: i64,
}

impl SessionWindows {
    /// Sessions split by `gap` of inactivity, with no grace until [`SessionWindows::grace`].
    ///
    /// # Panics
    /// If `gap` is zero.
    pub fn with_inactivity_gap(gap: Duration) -> SessionWindows {
        let gap_ms = millis(gap);
        assert!(gap_ms > 0, "a session gap must be at least 1 ms");
        SessionWindows {
            gap_ms,
            grace_ms: 0,
        }
    }

    /// The grace period.
    pub fn grace(mut self, grace: Duration) -> SessionWindows {
        self.grace_ms = millis(grace);
        self
    }
}

/// Sliding windows (KIP-450): windows `[start, start + difference]`, both ends inclusive,
/// that exist only where records make them: each record at `t` has its left window
/// `[t - difference, t]` and, once a later record falls within `difference + 1` of it, its
/// right window `[t + 1, t + 1 + difference]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindows {
    /// The largest distance between two records of one window.
    pub time_difference_ms: i64,
    /// How long after its end a window still accepts records.
    pub grace_ms: i64,
}

impl SlidingWindows {
    /// Windows of records at most `difference` apart, accepting records up to `grace`
    /// after a window's end (Kafka Streams' `SlidingWindows.ofTimeDifferenceAndGrace`).
    ///
    /// # Panics
    /// If `difference` is zero.
    pub fn of_time_difference_and_grace(difference: Duration, grace: Duration) -> SlidingWindows {
        let time_difference_ms = millis(difference);
        assert!(
            time_difference_ms > 0,
            "a sliding window needs a time difference of at least 1 ms"
        );
        SlidingWindows {
            time_difference_ms,
            grace_ms: millis(grace),
        }
    }

    /// How long the store keeps a window after the latest start: twice the difference
    /// (a record reads windows back to `t - 2 * difference`) plus grace, plus the one
    /// millisecond by which a right window starts after its record.
    pub fn retention_ms(&self) -> i64 {
        self.time_difference_ms
            .saturating_mul(2)
            .saturating_add(self.grace_ms)
            .saturating_add(1)
    }
}

/// Which records of two streams join: `left.ts - before <= right.ts <= left.ts + after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindows {
    /// How far a right record may precede the left one.
    pub before_ms: i64,
    /// How far a right record may follow the left one.
    pub after_ms: i64,
    /// How long records are kept past the window for late partners.
    pub grace_ms: i64,
}

impl JoinWindows {
    /// Records at most `difference` apart, either way, join.
    pub fn of_time_difference(difference: Duration) -> JoinWindows {
        let difference_ms = millis(difference);
        JoinWindows {
            before_ms: difference_ms,
            after_ms: difference_ms,
            grace_ms: 0,
        }
    }

    /// The grace period.
    pub fn grace(mut self, grace: Duration) -> JoinWindows {
        self.grace_ms = millis(grace);
        self
    }

    /// How far a right record may precede the left one (`left.ts - before <= right.ts`).
    pub fn before(mut self, before: Duration) -> JoinWindows {
        self.before_ms = millis(before);
        self
    }

    /// How far a right record may follow the left one (`right.ts <= left.ts + after`).
    pub fn after(mut self, after: Duration) -> JoinWindows {
        self.after_ms = millis(after);
        self
    }

    /// How long each side's store keeps a record.
    pub fn retention_ms(&self) -> i64 {
        self.before_ms
            .saturating_add(self.after_ms)
            .saturating_add(self.grace_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(windows: TimeWindows, timestamp_ms: i64) -> Vec<i64> {
        windows.window_starts(timestamp_ms).collect()
    }

    /// Tumbling windows align to epoch 0, not to the first record.
    #[test]
    fn tumbling_windows_align_to_epoch() {
        let windows = TimeWindows::tumbling(Duration::from_secs(60));
        assert_eq!(starts(windows, 0), vec![0]);
        assert_eq!(starts(windows, 59_999), vec![0]);
        assert_eq!(starts(windows, 60_000), vec![60_000]);
    }

    /// A hopping record belongs to size/advance windows, fewer near 0 (no negative starts).
    #[test]
    fn hopping_windows_cover_each_record_size_over_advance_times() {
        let windows = TimeWindows::hopping(Duration::from_secs(10), Duration::from_secs(5));
        assert_eq!(starts(windows, 12_000), vec![5_000, 10_000]);
        assert_eq!(starts(windows, 3_000), vec![0]);
        assert_eq!(starts(windows, 10_000), vec![5_000, 10_000]);
    }
}
