//! Aggregation over sliding windows (KIP-450), as Kafka Streams'
//! `KStreamSlidingWindowAggregate` does it.
//!
//! A window `[start, start + d]` (both ends inclusive) exists only where records put it:
//! a record at `t` updates every stored window containing it, creates its left window
//! `[t - d, t]` (seeded with the aggregate of the earlier records within `d`), its right
//! window `[t + 1, t + 1 + d]` when later records fall in it, and the right window of the
//! record before it when `t` falls in that one. Right windows hold only records after
//! their record, so a window's aggregate never has to be taken apart. Records before `d`
//! (which would make negative starts) share the window `[0, d]`.
//!
//! A window closes once the operator's stream time passes `end + grace` (end inclusive);
//! a record whose right window would already be closed is dropped as late, and each
//! update of an already closed window is dropped and counted the same way.

use std::collections::BTreeSet;

use super::aggregate::{AggregateLogic, WindowClock, key_and_value, store_key};
use crate::graph::{Ctx, DropReason, Msg, Operator};
use crate::store::{StoredValue, WindowStore};
use crate::task::OperatorProgress;
use crate::window::{Emit, SlidingWindows, Windowed};

/// Aggregates per key and sliding window.
pub(crate) struct SlidingAggregate<K, V, A> {
    pub store_name: String,
    pub store: WindowStore,
    pub windows: SlidingWindows,
    pub emit: Emit,
    pub logic: AggregateLogic<K, V, A>,
    pub clock: WindowClock,
}

/// The record being aggregated, with what every window update needs.
struct Input<'m, K, V> {
    key: &'m K,
    value: &'m V,
    key_bytes: Vec<u8>,
    msg: &'m Msg,
    /// Windows ending before this are closed.
    close_ms: i64,
}

impl<K, V> Input<'_, K, V> {
    fn timestamp_ms(&self) -> i64 {
        self.msg.timestamp_ms
    }
}

/// What the windows near a record say about its neighbours.
#[derive(Default)]
struct Neighbours {
    /// Starts of every window read.
    starts: BTreeSet<i64>,
    /// The aggregate of the records within `d` before the record (a window ending before it).
    left_aggregate: Option<StoredValue>,
    /// A window holding the records after the record that its right window takes.
    right_aggregate: Option<StoredValue>,
    left_window_exists: bool,
    right_window_exists: bool,
    /// The latest record before this one, if its right window may need creating.
    previous_ms: Option<i64>,
}

impl<K, V, A> Operator for SlidingAggregate<K, V, A>
where
    K: Clone + Send + Sync + 'static,
    V: Send + Sync + 'static,
    A: Send + Sync + 'static,
{
    fn progress(&self) -> Option<OperatorProgress> {
        Some(self.clock.progress())
    }

    fn resume(&mut self, progress: OperatorProgress) {
        self.clock.resume(progress);
    }

    fn process(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        let Some((key, value)) = key_and_value::<K, V>(ctx, &msg) else {
            return;
        };
        let Some(key_bytes) = store_key(ctx, &self.logic.key_serde, &self.store_name, key) else {
            return;
        };
        self.clock.observe(msg.timestamp_ms);
        let close_ms = self.clock.observed_ms.saturating_sub(self.windows.grace_ms);
        if self.emit == Emit::OnWindowClose {
            self.emit_closed(ctx, close_ms);
        }
        let difference_ms = self.windows.time_difference_ms;
        let timestamp_ms = msg.timestamp_ms;
        // Even the record's right window, the last one it could create, is closed.
        if timestamp_ms.saturating_add(1).saturating_add(difference_ms) <= close_ms {
            ctx.drop_record(DropReason::Late);
            return;
        }
        let input = Input {
            key,
            value,
            key_bytes,
            msg: &msg,
            close_ms,
        };
        if timestamp_ms < difference_ms {
            self.process_early(ctx, &input);
        } else {
            self.process_in_order(ctx, &input);
        }
    }
}

impl<K, V, A> SlidingAggregate<K, V, A>
where
    K: Clone + Send + Sync + 'static,
    V: Send + Sync + 'static,
    A: Send + Sync + 'static,
{
    /// A record at `t >= d`: reads the windows starting in `[t - 2d, t + 1]`, latest first,
    /// updating those that contain it, then creates the windows it is missing.
    fn process_in_order(&mut self, ctx: &mut Ctx<'_>, input: &Input<'_, K, V>) {
        let difference_ms = self.windows.time_difference_ms;
        let timestamp_ms = input.timestamp_ms();
        let from_ms = timestamp_ms
            .saturating_sub(difference_ms.saturating_mul(2))
            .max(0);
        let found =
            self.store
                .fetch_range(&input.key_bytes, from_ms, timestamp_ms.saturating_add(1));
        let mut neighbours = Neighbours::default();
        for (start_ms, stored) in found.into_iter().rev() {
            neighbours.starts.insert(start_ms);
            let end_ms = start_ms.saturating_add(difference_ms);
            let latest_ms = stored.timestamp_ms;
            if start_ms == timestamp_ms.saturating_add(1) {
                neighbours.right_window_exists = true;
            } else if end_ms > timestamp_ms {
                // The latest window containing the record: its later records are exactly
                // those of the record's right window.
                if neighbours.right_aggregate.is_none() {
                    neighbours.right_aggregate = Some(stored.clone());
                }
                self.update(ctx, input, start_ms, Some(stored));
            } else if end_ms == timestamp_ms {
                neighbours.left_window_exists = true;
                self.update(ctx, input, start_ms, Some(stored));
                if latest_ms >= timestamp_ms {
                    // A record at this very timestamp made every window already.
                    return;
                }
                neighbours.previous_ms = Some(latest_ms);
            } else {
                neighbours.left_aggregate = Some(stored);
                neighbours.previous_ms = Some(latest_ms);
                break;
            }
        }
        self.create_windows(ctx, input, neighbours);
    }

    /// Creates the previous record's right window, the record's left window and its right
    /// window, where they are missing and not empty.
    fn create_windows(&mut self, ctx: &mut Ctx<'_>, input: &Input<'_, K, V>, found: Neighbours) {
        let difference_ms = self.windows.time_difference_ms;
        let timestamp_ms = input.timestamp_ms();
        if let Some(previous_ms) = found.previous_ms {
            let start_ms = previous_ms.saturating_add(1);
            let reaches_record = start_ms.saturating_add(difference_ms) >= timestamp_ms;
            if !found.starts.contains(&start_ms) && reaches_record {
                self.update(ctx, input, start_ms, None);
            }
        }
        if !found.left_window_exists {
            let left_start_ms = timestamp_ms.saturating_sub(difference_ms);
            let seed = match (found.previous_ms, found.left_aggregate) {
                (Some(previous_ms), Some(left)) if previous_ms >= left_start_ms => {
                    Some(StoredValue {
                        value: left.value,
                        timestamp_ms,
                    })
                }
                _ => None,
            };
            self.update(ctx, input, left_start_ms, seed);
        }
        if !found.right_window_exists {
            self.create_right_window(ctx, input, found.right_aggregate);
        }
    }

    /// A record at `t < d`: the records before `d` share the window `[0, d]` instead of
    /// left windows with negative starts.
    fn process_early(&mut self, ctx: &mut Ctx<'_>, input: &Input<'_, K, V>) {
        let timestamp_ms = input.timestamp_ms();
        let found = self
            .store
            .fetch_range(&input.key_bytes, 0, timestamp_ms.saturating_add(1));
        let mut neighbours = Neighbours::default();
        let mut combined: Option<StoredValue> = None;
        for (start_ms, stored) in found {
            neighbours.starts.insert(start_ms);
            if start_ms == 0 {
                if stored.timestamp_ms < timestamp_ms {
                    neighbours.previous_ms = Some(stored.timestamp_ms);
                }
                combined = Some(stored);
            } else if start_ms <= timestamp_ms {
                neighbours.right_aggregate = Some(stored.clone());
                self.update(ctx, input, start_ms, Some(stored));
            } else {
                neighbours.right_window_exists = true;
            }
        }
        // Without a window after the record, the shared window's later records are its
        // right window's.
        if neighbours.right_aggregate.is_none() {
            neighbours.right_aggregate = combined
                .clone()
                .filter(|stored| stored.timestamp_ms > timestamp_ms);
        }
        if !neighbours.right_window_exists {
            self.create_right_window(ctx, input, neighbours.right_aggregate);
        }
        if let Some(previous_ms) = neighbours.previous_ms {
            let start_ms = previous_ms.saturating_add(1);
            if !neighbours.starts.contains(&start_ms) {
                self.update(ctx, input, start_ms, None);
            }
        }
        self.update(ctx, input, 0, combined);
    }

    /// Creates the window `[t + 1, t + 1 + d]` as a copy of `right`, when `right` holds
    /// records after the record (otherwise the window would be empty).
    fn create_right_window(
        &mut self,
        ctx: &mut Ctx<'_>,
        input: &Input<'_, K, V>,
        right: Option<StoredValue>,
    ) {
        let timestamp_ms = input.timestamp_ms();
        let Some(right) = right.filter(|right| right.timestamp_ms > timestamp_ms) else {
            return;
        };
        let start_ms = timestamp_ms.saturating_add(1);
        let name = self.store_name.as_str();
        let Some(aggregate) = self.logic.read(name, Some(&right.value)) else {
            ctx.drop_record(DropReason::Deserialization);
            return;
        };
        let written = self.store.put(
            ctx.outputs,
            &input.key_bytes,
            start_ms,
            Some(right.value),
            right.timestamp_ms,
        );
        if !written {
            ctx.drop_record(DropReason::Expired);
            return;
        }
        self.forward_update(ctx, input, start_ms, aggregate, right.timestamp_ms);
    }

    /// Folds the record into the window starting at `start_ms` (whose aggregate so far is
    /// `old`), stores and forwards it; a closed window drops the update as late.
    fn update(
        &mut self,
        ctx: &mut Ctx<'_>,
        input: &Input<'_, K, V>,
        start_ms: i64,
        old: Option<StoredValue>,
    ) {
        let end_ms = start_ms.saturating_add(self.windows.time_difference_ms);
        if end_ms < input.close_ms {
            ctx.drop_record(DropReason::Late);
            return;
        }
        let record = (input.key, input.value, input.timestamp_ms());
        let Some(folded) = self.logic.fold(ctx, &self.store_name, record, old) else {
            return;
        };
        let written = self.store.put(
            ctx.outputs,
            &input.key_bytes,
            start_ms,
            Some(folded.bytes),
            folded.timestamp_ms,
        );
        if !written {
            ctx.drop_record(DropReason::Expired);
            return;
        }
        self.forward_update(ctx, input, start_ms, folded.aggregate, folded.timestamp_ms);
    }

    fn forward_update(
        &self,
        ctx: &mut Ctx<'_>,
        input: &Input<'_, K, V>,
        start_ms: i64,
        aggregate: A,
        timestamp_ms: i64,
    ) {
        if self.emit != Emit::OnUpdate {
            return;
        }
        let windowed = Windowed {
            key: input.key.clone(),
            start_ms,
            end_ms: start_ms.saturating_add(self.windows.time_difference_ms),
        };
        let headers = input.msg.headers.clone();
        ctx.forward(Msg::new(windowed, aggregate, timestamp_ms, headers));
    }

    /// Forwards, once each, the windows that closed since the last call: those ending in
    /// `(emitted_through_ms, close_ms)`, closed because no later record can reach them.
    fn emit_closed(&mut self, ctx: &mut Ctx<'_>, close_ms: i64) {
        let closed_through_ms = close_ms.saturating_sub(1);
        if closed_through_ms <= self.clock.emitted_through_ms {
            return;
        }
        let difference_ms = self.windows.time_difference_ms;
        let after_start_ms = self.clock.emitted_through_ms.saturating_sub(difference_ms);
        let through_start_ms = closed_through_ms.saturating_sub(difference_ms);
        for (key_bytes, start_ms, stored) in self
            .store
            .starting_between(after_start_ms, through_start_ms)
        {
            let window = (start_ms, start_ms.saturating_add(difference_ms));
            let name = &self.store_name;
            self.logic
                .forward_closed(ctx, name, &key_bytes, window, &stored);
        }
        self.clock.emitted_through_ms = closed_through_ms;
    }
}
