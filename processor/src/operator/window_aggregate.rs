//! Aggregation over tumbling and hopping time windows.
//!
//! Each record updates every window that contains it and is still open. A window
//! `[start, end)` closes once the operator's stream time reaches `end + grace`; a record
//! for a closed window is dropped and counted. With `Emit::OnWindowClose` updates are only
//! stored, and each window is forwarded once, with its final value, when it closes.
//!
//! With a record cache (`Emit::OnUpdate` only, as in Kafka Streams, where emit-final
//! stores are never cached), updates to a window coalesce in the cache and the latest
//! one is written to the store and forwarded when the cache flushes (at commit) or
//! evicts it.

use super::aggregate::{AggregateLogic, WindowClock, key_and_value, store_key};
use crate::graph::{Ctx, DropReason, Msg, Operator};
use crate::store::cache::{CachedValue, Flushed, RecordCache};
use crate::store::{StoredValue, WindowStore};
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
    /// Keyed by the store key and the window start (big-endian), holding the record to
    /// forward; `None` writes through.
    pub cache: Option<RecordCache<Msg>>,
}

impl<K, V, A> WindowAggregate<K, V, A> {
    pub fn new(
        store_name: String,
        store: WindowStore,
        windows: TimeWindows,
        emit: Emit,
        logic: AggregateLogic<K, V, A>,
        cache: Option<RecordCache<Msg>>,
    ) -> Self {
        WindowAggregate {
            store_name,
            store,
            windows,
            emit,
            logic,
            clock: WindowClock::default(),
            cache: cache.filter(|_| emit == Emit::OnUpdate),
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

    fn has_cache(&self) -> bool {
        self.cache.is_some()
    }

    fn flush_cache(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let Some(cache) = &mut self.cache else {
            return false;
        };
        let flushed = cache.flush();
        let any = !flushed.is_empty();
        self.write_through(ctx, flushed);
        any
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
        let cache_key = self.cache.as_ref().map(|_| cache_key(key_bytes, start_ms));
        let old = match (&mut self.cache, &cache_key) {
            (Some(cache), Some(cache_key)) => match cache.get(cache_key) {
                Some(cached) => cached.value.clone().map(|value| StoredValue {
                    value,
                    timestamp_ms: cached.timestamp_ms,
                }),
                None => self.store.fetch(key_bytes, start_ms),
            },
            _ => self.store.fetch(key_bytes, start_ms),
        };
        let record = (key, value, msg.timestamp_ms);
        let Some(folded) = self.logic.fold(ctx, &self.store_name, record, old) else {
            return;
        };
        let (aggregate, bytes, timestamp_ms) =
            (folded.aggregate, folded.bytes, folded.timestamp_ms);
        let window = (start_ms, start_ms.saturating_add(self.windows.size_ms));
        let forward = (self.emit == Emit::OnUpdate)
            .then(|| windowed_update(key, window, aggregate, timestamp_ms, msg));
        // A cache exists only with `Emit::OnUpdate`, so there is a record to forward.
        let (forward, bytes) = match (&mut self.cache, cache_key, forward) {
            (Some(cache), Some(cache_key), Some(forward)) => {
                let cached = CachedValue {
                    value: Some(bytes),
                    timestamp_ms,
                };
                let evicted = cache.put(&cache_key, cached, forward);
                self.write_through(ctx, evicted);
                return;
            }
            (_, _, forward) => (forward, bytes),
        };
        if !self
            .store
            .put(ctx.outputs, key_bytes, start_ms, Some(bytes), timestamp_ms)
        {
            ctx.drop_record(DropReason::Expired);
            return;
        }
        if let Some(forward) = forward {
            ctx.forward(forward);
        }
    }

    /// Writes entries that left the cache to the store (and changelog), and forwards
    /// each one the store took.
    fn write_through(&mut self, ctx: &mut Ctx<'_>, flushed: Vec<Flushed<Msg>>) {
        for entry in flushed {
            let Some((key_bytes, start_ms)) = split_cache_key(&entry.key) else {
                continue;
            };
            let (value, timestamp_ms) = (entry.value, entry.timestamp_ms);
            if !self
                .store
                .put(ctx.outputs, key_bytes, start_ms, value, timestamp_ms)
            {
                ctx.drop_record(DropReason::Expired);
                continue;
            }
            ctx.forward(entry.record);
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

/// The cache key of a window: the store key, then the window start (big-endian).
fn cache_key(key_bytes: &[u8], start_ms: i64) -> Vec<u8> {
    let mut cache_key = Vec::with_capacity(key_bytes.len() + 8);
    cache_key.extend_from_slice(key_bytes);
    cache_key.extend_from_slice(&start_ms.to_be_bytes());
    cache_key
}

/// The store key and window start of a cache key built by [`cache_key`].
fn split_cache_key(cache_key: &[u8]) -> Option<(&[u8], i64)> {
    let split = cache_key.len().checked_sub(8)?;
    let (key_bytes, start) = cache_key.split_at(split);
    let start: [u8; 8] = start.try_into().ok()?;
    Some((key_bytes, i64::from_be_bytes(start)))
}

/// The update of window `(start_ms, end_ms)` of `key` to forward.
fn windowed_update<K: Clone + Send + Sync + 'static, A: Send + Sync + 'static>(
    key: &K,
    (start_ms, end_ms): (i64, i64),
    aggregate: A,
    timestamp_ms: i64,
    msg: &Msg,
) -> Msg {
    let windowed = Windowed {
        key: key.clone(),
        start_ms,
        end_ms,
    };
    Msg::new(windowed, aggregate, timestamp_ms, msg.headers.clone())
}
