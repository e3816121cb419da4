//! Aggregation over session windows.
//!
//! A record at `t` starts the session `[t, t]` and merges with every session of its key
//! that ends at or after `t - gap` and starts at or before `t + gap`. On update the merged
//! sessions are forwarded as deletions (`None`), then the new session. A session closes
//! once stream time passes `end + gap + grace`.

use std::sync::Arc;

use super::aggregate::{AggregateLogic, Merger, WindowClock, key_and_value, store_key};
use crate::graph::{Ctx, DropReason, Msg, Operator};
use crate::record::Headers;
use crate::store::SessionStore;
use crate::task::OperatorProgress;
use crate::window::{Emit, SessionWindows, Windowed};

/// Aggregates per key and session.
pub(crate) struct SessionAggregate<K, V, A> {
    pub store_name: String,
    pub store: SessionStore,
    pub windows: SessionWindows,
    pub emit: Emit,
    pub logic: AggregateLogic<K, V, A>,
    pub merger: Merger<K, A>,
    pub clock: WindowClock,
}

/// A session found in the store that the new record merges with.
struct OldSession {
    start_ms: i64,
    end_ms: i64,
}

impl<K, V, A> Operator for SessionAggregate<K, V, A>
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
        let timestamp_ms = msg.timestamp_ms;
        self.clock.observe(timestamp_ms);
        let gap_ms = self.windows.gap_ms;
        // Closed: the session ended before stream time minus gap minus grace.
        let close_ms = self
            .clock
            .observed_ms
            .saturating_sub(self.windows.grace_ms)
            .saturating_sub(gap_ms);
        if self.emit == Emit::OnWindowClose {
            self.emit_closed(ctx, close_ms);
        }
        let found = self.store.find_overlapping(
            &key_bytes,
            timestamp_ms.saturating_sub(gap_ms),
            timestamp_ms.saturating_add(gap_ms),
        );
        let mut start_ms = timestamp_ms;
        let mut end_ms = timestamp_ms;
        let mut latest_ms = timestamp_ms;
        let mut merged: Option<A> = None;
        let mut old_sessions = Vec::with_capacity(found.len());
        for (old_start_ms, old_end_ms, stored) in found {
            start_ms = start_ms.min(old_start_ms);
            end_ms = end_ms.max(old_end_ms);
            latest_ms = latest_ms.max(stored.timestamp_ms);
            let old = self.logic.read(&self.store_name, Some(&stored.value));
            if let Some(old) = old {
                merged = Some(match merged {
                    None => old,
                    Some(merged) => (self.merger)(key, merged, old),
                });
            }
            old_sessions.push(OldSession {
                start_ms: old_start_ms,
                end_ms: old_end_ms,
            });
        }
        if end_ms < close_ms {
            ctx.drop_record(DropReason::Late);
            return;
        }
        let aggregate = (self.logic.aggregator)(key, value, merged);
        self.replace_sessions(
            ctx,
            key,
            &key_bytes,
            old_sessions,
            (start_ms, end_ms),
            latest_ms,
            aggregate,
            &msg.headers,
        );
    }
}

impl<K, V, A> SessionAggregate<K, V, A>
where
    K: Clone + Send + Sync + 'static,
    V: Send + Sync + 'static,
    A: Send + Sync + 'static,
{
    #[allow(clippy::too_many_arguments)]
    fn replace_sessions(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &K,
        key_bytes: &[u8],
        old_sessions: Vec<OldSession>,
        (start_ms, end_ms): (i64, i64),
        timestamp_ms: i64,
        aggregate: A,
        headers: &Headers,
    ) {
        let Some(bytes) = self.logic.serialize(ctx, &self.store_name, &aggregate) else {
            return;
        };
        for old in old_sessions {
            self.store.put(
                ctx.outputs,
                key_bytes,
                old.start_ms,
                old.end_ms,
                None,
                timestamp_ms,
            );
            if self.emit == Emit::OnUpdate {
                let windowed = Windowed {
                    key: key.clone(),
                    start_ms: old.start_ms,
                    end_ms: old.end_ms,
                };
                ctx.forward(Msg {
                    key: Some(Arc::new(windowed)),
                    value: None,
                    timestamp_ms,
                    headers: headers.clone(),
                });
            }
        }
        self.store.put(
            ctx.outputs,
            key_bytes,
            start_ms,
            end_ms,
            Some(bytes),
            timestamp_ms,
        );
        if self.emit == Emit::OnUpdate {
            let windowed = Windowed {
                key: key.clone(),
                start_ms,
                end_ms,
            };
            ctx.forward(Msg::new(windowed, aggregate, timestamp_ms, headers.clone()));
        }
    }

    /// Forwards, once each, the sessions that closed since the last call.
    fn emit_closed(&mut self, ctx: &mut Ctx<'_>, close_ms: i64) {
        // Sessions ending strictly before close_ms are closed.
        let through_ms = close_ms.saturating_sub(1);
        if through_ms <= self.clock.emitted_through_ms {
            return;
        }
        for (key_bytes, start_ms, end_ms, stored) in self
            .store
            .ending_between(self.clock.emitted_through_ms, through_ms)
        {
            let window = (start_ms, end_ms);
            let name = &self.store_name;
            self.logic
                .forward_closed(ctx, name, &key_bytes, window, &stored);
        }
        self.clock.emitted_through_ms = through_ms;
    }
}
