//! Table-table joins: inner, left and outer, as Kafka Streams' `KTableKTable*Join`.
//!
//! Both tables keep their own stores; an update on either side (tagged with its side on
//! the way in) looks up the other side's current row and forwards the joined row, stamped
//! with the later of the two timestamps:
//!
//! - inner: nothing while the other side is missing; a deletion becomes a deletion;
//! - left: a left update always gives `joiner(l, Option<r>)` (a deletion, a deletion); a
//!   right update only while the left row exists, as `joiner(l, Option<r>)`;
//! - outer: `joiner(Option<l>, Option<r>)` while either side exists, a deletion once both
//!   are gone.
//!
//! Without old values (Riffle's tables do not carry them) a deletion is forwarded even
//! when the joined row never existed downstream; deleting a missing row is harmless.

use std::sync::Arc;

use super::stream_join::JoinSide;
use crate::graph::{Ctx, DropReason, Msg, Operator, Payload, downcast};
use crate::serdes::SharedSerde;
use crate::store::KeyValueStore;

/// Which table-table join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableJoinKind {
    Inner,
    Left,
    Outer,
}

/// A table update on its way into the join, tagged with its side; `None` deletes.
pub(crate) struct TableJoinInput {
    pub side: JoinSide,
    pub value: Option<Payload>,
}

/// The joiner, called as `(key, left, right)` with the sides the join kind allows;
/// `None` for a combination the join never makes (a deletion, should it happen).
pub(crate) type TableTableJoiner<K, L, R, O> =
    Arc<dyn Fn(&K, Option<&L>, Option<&R>) -> Option<O> + Send + Sync>;

/// One side's table store and value serde.
pub(crate) struct JoinedTable<T> {
    pub store_name: String,
    pub store: KeyValueStore,
    pub value_serde: SharedSerde<T>,
}

impl<T: 'static> JoinedTable<T> {
    /// The current row of `key_bytes` and its timestamp; `Err` when it cannot be read.
    fn row(&self, key_bytes: &[u8]) -> Result<Option<(T, i64)>, ()> {
        let Some(stored) = self.store.get(key_bytes) else {
            return Ok(None);
        };
        let value = self
            .value_serde
            .deserialize(&self.store_name, &stored.value)
            .map_err(|_| ())?;
        Ok(Some((value, stored.timestamp_ms)))
    }
}

/// Joins the updates of two tables.
pub(crate) struct TableTableJoin<K, L, R, O> {
    pub kind: TableJoinKind,
    pub key_serde: SharedSerde<K>,
    pub left: JoinedTable<L>,
    pub right: JoinedTable<R>,
    pub joiner: TableTableJoiner<K, L, R, O>,
}

impl<K, L, R, O> Operator for TableTableJoin<K, L, R, O>
where
    K: Send + Sync + 'static,
    L: Send + Sync + 'static,
    R: Send + Sync + 'static,
    O: Send + Sync + 'static,
{
    fn process(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        let (Some(key), Some(input)) = (msg.key::<K>(), msg.value::<TableJoinInput>()) else {
            ctx.drop_record(DropReason::NullKeyOrValue);
            return;
        };
        let Ok(key_bytes) = self.key_serde.serialize(&self.left.store_name, key) else {
            ctx.drop_record(DropReason::Deserialization);
            return;
        };
        let this = input.value.as_ref().map(|value| value.as_ref());
        let joined = match input.side {
            JoinSide::Left => self.right.row(&key_bytes).map(|other| {
                let left = this.map(downcast::<L>);
                let right = other.as_ref().map(|(right, _)| right);
                let other_ms = other.as_ref().map(|(_, timestamp_ms)| *timestamp_ms);
                (self.join(JoinSide::Left, key, left, right), other_ms)
            }),
            JoinSide::Right => self.left.row(&key_bytes).map(|other| {
                let right = this.map(downcast::<R>);
                let left = other.as_ref().map(|(left, _)| left);
                let other_ms = other.as_ref().map(|(_, timestamp_ms)| *timestamp_ms);
                (self.join(JoinSide::Right, key, left, right), other_ms)
            }),
        };
        let Ok((result, other_ms)) = joined else {
            ctx.drop_record(DropReason::Deserialization);
            return;
        };
        let Some(value) = result else {
            return;
        };
        ctx.forward(Msg {
            key: msg.key.clone(),
            value: value.map(|value| Arc::new(value) as Payload),
            timestamp_ms: other_ms.map_or(msg.timestamp_ms, |other| other.max(msg.timestamp_ms)),
            headers: msg.headers.clone(),
        });
    }
}

impl<K, L, R, O> TableTableJoin<K, L, R, O> {
    /// What an update of `side` forwards, given both sides' rows after it: `None` for
    /// nothing, `Some(None)` for a deletion, `Some(Some(row))` for a joined row.
    fn join(
        &self,
        side: JoinSide,
        key: &K,
        left: Option<&L>,
        right: Option<&R>,
    ) -> Option<Option<O>> {
        let (this_present, other_present) = match side {
            JoinSide::Left => (left.is_some(), right.is_some()),
            JoinSide::Right => (right.is_some(), left.is_some()),
        };
        let forwards = match (self.kind, side) {
            (TableJoinKind::Inner, _) => other_present,
            (TableJoinKind::Left, JoinSide::Left) => true,
            (TableJoinKind::Left, JoinSide::Right) => left.is_some(),
            (TableJoinKind::Outer, _) => true,
        };
        if !forwards {
            return None;
        }
        let row = match self.kind {
            TableJoinKind::Inner if this_present => (self.joiner)(key, left, right),
            TableJoinKind::Left if left.is_some() => (self.joiner)(key, left, right),
            TableJoinKind::Outer if this_present || other_present => {
                (self.joiner)(key, left, right)
            }
            _ => None,
        };
        Some(row)
    }
}
