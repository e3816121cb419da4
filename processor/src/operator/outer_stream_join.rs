//! Windowed stream-stream left and outer joins, with Kafka Streams 3.x's fix for spurious
//! results (KAFKA-10847): a record without a partner is not joined with `None` at once but
//! kept in a shared "outer" store until its window has closed.
//!
//! Both sides reach one operator instance (each record tagged with its side), so they
//! share one stream time, committed with the offsets. Per record:
//!
//! 1. stream time moves; if the record is at stream time, every unmatched record whose
//!    window has closed (`stream time > ts + after + grace` for a left record,
//!    `ts + before + grace` for a right one) is emitted as `joiner(l, None)` or
//!    `joiner(None, r)` with its own timestamp, and leaves the outer store;
//! 2. the record goes into its side's window store (as in the inner join);
//! 3. each partner in the other side's store gives `joiner(l, r)` at once, stamped with the
//!    later timestamp, and the partner's entry leaves the outer store;
//! 4. a record of an outer side without partners is emitted with `None` at once if its
//!    window is already over, otherwise it is put in the outer store.
//!
//! The outer store is a key-value store keyed `timestamp (i64 BE) ‖ side (1 byte) ‖ key`,
//! so a closed prefix is one range scan, holding the list of values with that key
//! (`u32 BE length ‖ bytes`, repeated), as Kafka Streams' list-value store does.

use std::sync::Arc;

use super::aggregate::{WindowClock, store_key};
use super::stream_join::JoinSide;
use crate::graph::{Ctx, DropReason, Msg, Operator, Payload, downcast};
use crate::record::Headers;
use crate::serdes::SharedSerde;
use crate::store::{KeyValueStore, WindowStore};
use crate::task::OperatorProgress;
use crate::window::JoinWindows;

/// The joiner of a left or outer join, always called as `(key, left, right)` with at
/// least one side present; `None` when this join emits nothing for that combination.
pub(crate) type OuterJoiner<K, L, R, O> =
    Arc<dyn Fn(&K, Option<&L>, Option<&R>) -> Option<O> + Send + Sync>;

/// Whose unmatched records a join emits with `None` for the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnmatchedSides {
    /// The left side's only: a left join.
    Left,
    /// Both sides': an outer join.
    Both,
}

/// A record on its way into the join, tagged with the side it comes from.
pub(crate) struct JoinInput {
    pub side: JoinSide,
    pub value: Payload,
}

/// Left or outer windowed stream-stream join of both sides' records.
pub(crate) struct OuterStreamJoin<K, L, R, O> {
    /// The left side's window store, named for errors and serdes.
    pub left_store_name: String,
    pub left_store: WindowStore,
    pub right_store: WindowStore,
    pub outer_store: KeyValueStore,
    pub windows: JoinWindows,
    pub unmatched: UnmatchedSides,
    pub key_serde: SharedSerde<K>,
    pub left_serde: SharedSerde<L>,
    pub right_serde: SharedSerde<R>,
    pub joiner: OuterJoiner<K, L, R, O>,
    /// The stream time both sides share.
    pub clock: WindowClock,
}

const SIDE_LEFT: u8 = 0;
const SIDE_RIGHT: u8 = 1;
const TIMESTAMP_BYTES: usize = 8;

/// One record of one side, serialized, as the join handles it.
struct SideRecord<'m, K> {
    side: JoinSide,
    key: &'m K,
    key_bytes: Vec<u8>,
    value: &'m Payload,
    value_bytes: Vec<u8>,
    msg: &'m Msg,
}

impl<K, L, R, O> Operator for OuterStreamJoin<K, L, R, O>
where
    K: Send + Sync + 'static,
    L: Send + Sync + 'static,
    R: Send + Sync + 'static,
    O: Send + Sync + 'static,
{
    fn progress(&self) -> Option<OperatorProgress> {
        Some(self.clock.progress())
    }

    fn resume(&mut self, progress: OperatorProgress) {
        self.clock.resume(progress);
    }

    fn process(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        let (Some(key), Some(input)) = (msg.key::<K>(), msg.value::<JoinInput>()) else {
            ctx.drop_record(DropReason::NullKeyOrValue);
            return;
        };
        self.clock.observe(msg.timestamp_ms);
        if msg.timestamp_ms == self.clock.observed_ms {
            self.emit_closed(ctx);
        }
        let Some(record) = self.side_record(ctx, key, input, &msg) else {
            return;
        };
        let right_outer = self.unmatched == UnmatchedSides::Both;
        let (this_store, partners_outer) = match record.side {
            JoinSide::Left => (&self.left_store, right_outer),
            JoinSide::Right => (&self.right_store, true),
        };
        let timestamp_ms = msg.timestamp_ms;
        let value_bytes = Some(record.value_bytes.clone());
        if !this_store.put(
            ctx.outputs,
            &record.key_bytes,
            timestamp_ms,
            value_bytes,
            timestamp_ms,
        ) {
            ctx.drop_record(DropReason::Expired);
            return;
        }
        let matched = self.join_partners(ctx, &record, partners_outer);
        let this_outer = record.side == JoinSide::Left || right_outer;
        if !matched && this_outer {
            self.hold_unmatched(ctx, &record);
        }
    }
}

impl<K, L, R, O> OuterStreamJoin<K, L, R, O>
where
    K: Send + Sync + 'static,
    L: Send + Sync + 'static,
    R: Send + Sync + 'static,
    O: Send + Sync + 'static,
{
    /// The record with its key and value serialized; `None` (counted) when a serde fails.
    fn side_record<'m>(
        &self,
        ctx: &mut Ctx<'_>,
        key: &'m K,
        input: &'m JoinInput,
        msg: &'m Msg,
    ) -> Option<SideRecord<'m, K>> {
        let name = self.left_store_name.as_str();
        let key_bytes = store_key(ctx, &self.key_serde, name, key)?;
        let serialized = match input.side {
            JoinSide::Left => self
                .left_serde
                .serialize(name, downcast::<L>(input.value.as_ref())),
            JoinSide::Right => self
                .right_serde
                .serialize(name, downcast::<R>(input.value.as_ref())),
        };
        let Ok(value_bytes) = serialized else {
            ctx.drop_record(DropReason::Deserialization);
            return None;
        };
        Some(SideRecord {
            side: input.side,
            key,
            key_bytes,
            value: &input.value,
            value_bytes,
            msg,
        })
    }

    /// How far after a record of `side` a partner may come: its window ends there.
    fn look_ahead_ms(&self, side: JoinSide) -> i64 {
        match side {
            JoinSide::Left => self.windows.after_ms,
            JoinSide::Right => self.windows.before_ms,
        }
    }

    /// Joins the record with every partner in the other side's store, removing partners
    /// from the outer store when they wait there; returns whether there was any.
    fn join_partners(
        &self,
        ctx: &mut Ctx<'_>,
        record: &SideRecord<'_, K>,
        partners_outer: bool,
    ) -> bool {
        let timestamp_ms = record.msg.timestamp_ms;
        let (other_store, other_side) = match record.side {
            JoinSide::Left => (&self.right_store, JoinSide::Right),
            JoinSide::Right => (&self.left_store, JoinSide::Left),
        };
        let from_ms = timestamp_ms.saturating_sub(self.look_ahead_ms(other_side));
        let to_ms = timestamp_ms.saturating_add(self.look_ahead_ms(record.side));
        let partners = other_store.fetch_range(&record.key_bytes, from_ms, to_ms);
        for (other_ms, stored) in &partners {
            if partners_outer {
                let outer_key = outer_key(*other_ms, other_side, &record.key_bytes);
                if self.outer_store.get(&outer_key).is_some() {
                    self.outer_store.delete(ctx.outputs, outer_key, *other_ms);
                }
            }
            let joined = self.join_with_stored(record, &stored.value);
            let Some(joined) = joined else {
                ctx.drop_record(DropReason::Deserialization);
                continue;
            };
            ctx.forward(Msg {
                key: record.msg.key.clone(),
                value: Some(Arc::new(joined)),
                timestamp_ms: timestamp_ms.max(*other_ms),
                headers: record.msg.headers.clone(),
            });
        }
        !partners.is_empty()
    }

    /// `joiner(l, r)` for the record and a partner's stored bytes; `None` when they cannot
    /// be read.
    fn join_with_stored(&self, record: &SideRecord<'_, K>, partner: &[u8]) -> Option<O> {
        let name = self.left_store_name.as_str();
        match record.side {
            JoinSide::Left => {
                let left = downcast::<L>(record.value.as_ref());
                let right = self.right_serde.deserialize(name, partner).ok()?;
                (self.joiner)(record.key, Some(left), Some(&right))
            }
            JoinSide::Right => {
                let left = self.left_serde.deserialize(name, partner).ok()?;
                let right = downcast::<R>(record.value.as_ref());
                (self.joiner)(record.key, Some(&left), Some(right))
            }
        }
    }

    /// A record without partners: emitted with `None` at once when its window is already
    /// over (an out-of-order record), otherwise kept in the outer store until it closes.
    fn hold_unmatched(&self, ctx: &mut Ctx<'_>, record: &SideRecord<'_, K>) {
        let timestamp_ms = record.msg.timestamp_ms;
        let window_end_ms = timestamp_ms.saturating_add(self.look_ahead_ms(record.side));
        if window_end_ms < self.clock.observed_ms {
            let value = record.value.as_ref();
            let unmatched = match record.side {
                JoinSide::Left => (self.joiner)(record.key, Some(downcast::<L>(value)), None),
                JoinSide::Right => (self.joiner)(record.key, None, Some(downcast::<R>(value))),
            };
            if let Some(unmatched) = unmatched {
                ctx.forward(Msg {
                    key: record.msg.key.clone(),
                    value: Some(Arc::new(unmatched)),
                    timestamp_ms,
                    headers: record.msg.headers.clone(),
                });
            }
            return;
        }
        let key = outer_key(timestamp_ms, record.side, &record.key_bytes);
        let mut values = self
            .outer_store
            .get(&key)
            .map(|stored| stored.value)
            .unwrap_or_default();
        append_value(&mut values, &record.value_bytes);
        self.outer_store.put(ctx.outputs, key, values, timestamp_ms);
    }

    /// Emits, with `None` for the missing side, every record of the outer store whose
    /// window has closed, and removes it from the store.
    fn emit_closed(&self, ctx: &mut Ctx<'_>) {
        let grace_ms = self.windows.grace_ms;
        let shortest_ms = self.windows.after_ms.min(self.windows.before_ms);
        // No entry at or after this timestamp can have closed.
        let bound_ms = self
            .clock
            .observed_ms
            .saturating_sub(shortest_ms)
            .saturating_sub(grace_ms);
        if bound_ms <= 0 {
            return;
        }
        for (outer_key, stored) in self.outer_store.range(None, Some(&bound_ms.to_be_bytes())) {
            let Some((timestamp_ms, side, key_bytes)) = parse_outer_key(&outer_key) else {
                continue;
            };
            let closes_ms = timestamp_ms
                .saturating_add(self.look_ahead_ms(side))
                .saturating_add(grace_ms);
            if self.clock.observed_ms <= closes_ms {
                continue;
            }
            self.emit_unmatched(ctx, (timestamp_ms, side, key_bytes), &stored.value);
            self.outer_store
                .delete(ctx.outputs, outer_key, timestamp_ms);
        }
    }

    /// Forwards `joiner` with `None` for the other side for each value of one outer entry.
    fn emit_unmatched(
        &self,
        ctx: &mut Ctx<'_>,
        (timestamp_ms, side, key_bytes): (i64, JoinSide, &[u8]),
        values: &[u8],
    ) {
        let name = self.left_store_name.as_str();
        let Ok(key) = self.key_serde.deserialize(name, key_bytes) else {
            ctx.drop_record(DropReason::Deserialization);
            return;
        };
        let key = Arc::new(key);
        for bytes in ListValues(values) {
            let unmatched = match side {
                JoinSide::Left => self
                    .left_serde
                    .deserialize(name, bytes)
                    .map(|left| (self.joiner)(&key, Some(&left), None)),
                JoinSide::Right => self
                    .right_serde
                    .deserialize(name, bytes)
                    .map(|right| (self.joiner)(&key, None, Some(&right))),
            };
            match unmatched {
                Ok(Some(unmatched)) => ctx.forward(Msg {
                    key: Some(key.clone()),
                    value: Some(Arc::new(unmatched)),
                    timestamp_ms,
                    headers: Headers::default(),
                }),
                Ok(None) => {}
                Err(_) => ctx.drop_record(DropReason::Deserialization),
            }
        }
    }
}

/// `timestamp ‖ side ‖ key`: ordered by timestamp, since timestamps are never negative.
fn outer_key(timestamp_ms: i64, side: JoinSide, key_bytes: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(TIMESTAMP_BYTES + 1 + key_bytes.len());
    key.extend_from_slice(&timestamp_ms.to_be_bytes());
    key.push(match side {
        JoinSide::Left => SIDE_LEFT,
        JoinSide::Right => SIDE_RIGHT,
    });
    key.extend_from_slice(key_bytes);
    key
}

/// The parts of an outer store key; `None` for bytes this layout did not write.
fn parse_outer_key(outer_key: &[u8]) -> Option<(i64, JoinSide, &[u8])> {
    let timestamp: [u8; TIMESTAMP_BYTES] = outer_key.get(..TIMESTAMP_BYTES)?.try_into().ok()?;
    let side = match *outer_key.get(TIMESTAMP_BYTES)? {
        SIDE_LEFT => JoinSide::Left,
        SIDE_RIGHT => JoinSide::Right,
        _ => return None,
    };
    let key_bytes = outer_key.get(TIMESTAMP_BYTES + 1..)?;
    Some((i64::from_be_bytes(timestamp), side, key_bytes))
}

/// Appends one value to a list of values.
fn append_value(values: &mut Vec<u8>, value: &[u8]) {
    let length = u32::try_from(value.len()).expect("a value a serde produced fits in 4 GiB");
    values.extend_from_slice(&length.to_be_bytes());
    values.extend_from_slice(value);
}

/// The values of a list written by [`append_value`]; stops at bytes that do not frame.
struct ListValues<'a>(&'a [u8]);

impl<'a> Iterator for ListValues<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let length: [u8; 4] = self.0.get(..4)?.try_into().ok()?;
        let length = usize::try_from(u32::from_be_bytes(length)).ok()?;
        let end = 4usize.checked_add(length)?;
        let value = self.0.get(4..end)?;
        self.0 = self.0.get(end..)?;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outer keys parse back to what built them, and lists keep every value in order.
    #[test]
    fn outer_keys_and_value_lists_round_trip() {
        let key = outer_key(1_234, JoinSide::Right, b"user");
        assert_eq!(
            parse_outer_key(&key),
            Some((1_234, JoinSide::Right, &b"user"[..]))
        );
        assert_eq!(parse_outer_key(&key[..8]), None, "no side byte");
        let mut values = Vec::new();
        append_value(&mut values, b"a");
        append_value(&mut values, b"");
        append_value(&mut values, b"ccc");
        let read: Vec<&[u8]> = ListValues(&values).collect();
        assert_eq!(read, vec![&b"a"[..], &b""[..], &b"ccc"[..]]);
        assert_eq!(
            ListValues(&values[..6]).count(),
            1,
            "a torn value stops the list"
        );
    }
}
