//! Aggregation over tumbling and hopping time windows.
//!
//! Each record updates every window that contains it and is still open. A window
//! `[start, end)` closes once the operator's stream time reaches `end + grace`; a record
//! for a closed window is dropped and counted. With `Emit::OnWindowClose` updates are only
//! stored, and each window is forwarded once, with its final value, when it closes.

use super::aggregate::{AggregateLogic, WindowClock, key_and_value, store_key};
use crate::graph::{Ctx, DropReason, Msg, Operator};
use crate::store::WindowStore;
use crate::task::OperatorProgress;
use crate::window::{Emit, TimeWindows, Windowed};

/// Aggregates per key and time window.
pub(crate) struct WindowAggregate<K, V, A> {
    pub store_name: String,
    pub store: WindowStore,
    pub windows: TimeWindows,
    pub emit: Emit,
    pub logic: AggregateLogic<K, V, A>,
    pub clock: WindowClock,
}

impl<K, V, A> WindowAggregate<K, V, A> {
    pub fn new(
        store_name: String,
        store: WindowStore,
        windows: TimeWindows,
        emit: Emit,
        logic: AggregateLogic<K, V, A>,
    ) -> Self {
        WindowAggregate {
            store_name,
            store,
            windows,
            emit,
            logic,
            clock: WindowClock::default(),
        }
    }
}

impl<K, V, A> Operator for WindowAggregate<K, V, A>
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
        // Windows this record closes are emitted before its own writes can expire them.
        if self.emit == Emit::OnWindowClose {
            self.emit_closed(ctx, close_ms);
        }
        for start_ms in self.windows.window_starts(msg.timestamp_ms) {
            let end_ms = start_ms.saturating_add(self.windows.size_ms);
            if end_ms <= close_ms {
                ctx.drop_record(DropReason::Late);
                continue;
            }
            self.update(ctx, &msg, key, value, &key_bytes, start_ms);
        }
    }
}

impl<K, V, A> WindowAggregate<K, V, A>
where
    K: Clone + Send + Sync + 'static,
    V: Send + Sync + 'static,
    A: Send + Sync + 'static,
{
    fn update(
        &mut self,
        ctx: &mut Ctx<'_>,
        msg: &Msg,
        key: &K,
        value: &V,
        key_bytes: &[u8],
        start_ms: i64,
    ) {
        let old = self.store.fetch(key_bytes, start_ms);
        let record = (key, value, msg.timestamp_ms);
        let Some(folded) = self.logic.fold(ctx, &self.store_name, record, old) else {
            return;
        };
        let (aggregate, bytes, timestamp_ms) =
            (folded.aggregate, folded.bytes, folded.timestamp_ms);
        if !self
            .store
            .put(ctx.outputs, key_bytes, start_ms, Some(bytes), timestamp_ms)
        {
            ctx.drop_record(DropReason::Expired);
            return;
        }
        if self.emit == Emit::OnUpdate {
            let windowed = Windowed {
                key: key.clone(),
                start_ms,
                end_ms: start_ms.saturating_add(self.windows.size_ms),
            };
            ctx.forward(Msg::new(
                windowed,
                aggregate,
                timestamp_ms,
                msg.headers.clone(),
            ));
        }
    }

    /// Forwards, once each, the windows that closed since the last call: those ending in
    /// `(emitted_through_ms, close_ms]`.
    fn emit_closed(&mut self, ctx: &mut Ctx<'_>, close_ms: i64) {
        if close_ms <= self.clock.emitted_through_ms {
            return;
        }
        let size_ms = self.windows.size_ms;
        let after_start_ms = self.clock.emitted_through_ms.saturating_sub(size_ms);
        let through_start_ms = close_ms.saturating_sub(size_ms);
        for (key_bytes, start_ms, stored) in self
            .store
            .starting_between(after_start_ms, through_start_ms)
        {
            let window = (start_ms, start_ms.saturating_add(size_ms));
            let name = &self.store_name;
            self.logic
                .forward_closed(ctx, name, &key_bytes, window, &stored);
        }
        self.clock.emitted_through_ms = close_ms;
    }
}
