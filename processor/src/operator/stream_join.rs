//! Windowed stream-stream inner join.
//!
//! Each side keeps its records in a window store (duplicates kept, keyed by timestamp).
//! A record is stored, then the other side's store is searched for partners with
//! `left.ts - before <= right.ts <= left.ts + after`; the joiner runs once per partner and
//! the result carries the larger timestamp. Records older than the store keeps are dropped
//! and counted by the store.

use std::sync::Arc;

use super::aggregate::{key_and_value, store_key};
use crate::graph::{Ctx, DropReason, Msg, Operator};
use crate::serdes::SharedSerde;
use crate::store::WindowStore;
use crate::window::JoinWindows;

/// Which side of the join an operator instance serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinSide {
    Left,
    Right,
}

/// The joiner, always called as `(key, left, right)`.
pub(crate) type StreamJoiner<K, L, R, O> = Arc<dyn Fn(&K, &L, &R) -> O + Send + Sync>;

/// One side of a windowed stream-stream join.
pub(crate) struct StreamStreamJoin<K, L, R, O> {
    pub side: JoinSide,
    pub store_name: String,
    pub this_store: WindowStore,
    pub other_store: WindowStore,
    pub windows: JoinWindows,
    pub key_serde: SharedSerde<K>,
    pub left_serde: SharedSerde<L>,
    pub right_serde: SharedSerde<R>,
    pub joiner: StreamJoiner<K, L, R, O>,
}

impl<K, L, R, O> Operator for StreamStreamJoin<K, L, R, O>
where
    K: Send + Sync + 'static,
    L: Send + Sync + 'static,
    R: Send + Sync + 'static,
    O: Send + Sync + 'static,
{
    fn process(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        let name = self.store_name.as_str();
        match self.side {
            JoinSide::Left => self.process_side(
                ctx,
                msg,
                |left: &L| self.left_serde.serialize(name, left).ok(),
                |key, left, right_bytes| {
                    let right = self.right_serde.deserialize(name, right_bytes).ok()?;
                    Some((self.joiner)(key, left, &right))
                },
            ),
            JoinSide::Right => self.process_side(
                ctx,
                msg,
                |right: &R| self.right_serde.serialize(name, right).ok(),
                |key, right, left_bytes| {
                    let left = self.left_serde.deserialize(name, left_bytes).ok()?;
                    Some((self.joiner)(key, &left, right))
                },
            ),
        }
    }
}

impl<K, L, R, O> StreamStreamJoin<K, L, R, O>
where
    K: Send + Sync + 'static,
    O: Send + Sync + 'static,
{
    /// Stores a record of this side (`T`), then joins it with each partner in the other
    /// side's store: `serialize` gives the bytes this side stores, `join` runs the joiner
    /// on a partner's stored bytes (`None` when they cannot be read).
    fn process_side<T: 'static>(
        &self,
        ctx: &mut Ctx<'_>,
        msg: Msg,
        serialize: impl Fn(&T) -> Option<Vec<u8>>,
        join: impl Fn(&K, &T, &[u8]) -> Option<O>,
    ) {
        let Some((key, value)) = key_and_value::<K, T>(ctx, &msg) else {
            return;
        };
        let Some(key_bytes) = store_key(ctx, &self.key_serde, &self.store_name, key) else {
            return;
        };
        let Some(value_bytes) = serialize(value) else {
            ctx.drop_record(DropReason::Deserialization);
            return;
        };
        let timestamp_ms = msg.timestamp_ms;
        if !self.this_store.put(
            ctx.outputs,
            &key_bytes,
            timestamp_ms,
            Some(value_bytes),
            timestamp_ms,
        ) {
            ctx.drop_record(DropReason::Expired);
            return;
        }
        let (from_ms, to_ms) = match self.side {
            JoinSide::Left => (
                timestamp_ms.saturating_sub(self.windows.before_ms),
                timestamp_ms.saturating_add(self.windows.after_ms),
            ),
            JoinSide::Right => (
                timestamp_ms.saturating_sub(self.windows.after_ms),
                timestamp_ms.saturating_add(self.windows.before_ms),
            ),
        };
        for (other_ms, stored) in self.other_store.fetch_range(&key_bytes, from_ms, to_ms) {
            let Some(joined) = join(key, value, &stored.value) else {
                ctx.drop_record(DropReason::Deserialization);
                continue;
            };
            let joined_ms = timestamp_ms.max(other_ms);
            ctx.forward(Msg {
                key: msg.key.clone(),
                value: Some(Arc::new(joined)),
                timestamp_ms: joined_ms,
                headers: msg.headers.clone(),
            });
        }
    }
}
