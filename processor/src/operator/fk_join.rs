//! The foreign-key table join (KIP-213), as Kafka Streams' `KTable#join(other,
//! foreignKeyExtractor, joiner)` runs it: four operators around two internal topics.
//!
//! The left table is partitioned by its own key, the right one by the foreign key, so no
//! task holds both rows of a pair. Updates travel between the two:
//!
//! 1. [`SubscriptionSender`] (left side): for each left update, a subscription keyed by the
//!    foreign key goes to `<name>-subscription-repartition`, co-partitioned with the right
//!    table. It carries the left key, the hash of the left value's bytes, the left task's
//!    partition and an [`Instruction`]. When a row's foreign key changes, the old foreign
//!    key gets a deletion. Riffle's tables carry no old values, so the sender keeps each
//!    left key's current foreign key in its own store.
//! 2. [`SubscriptionReceiver`] (right side): records the subscription in the subscription
//!    store (foreign key ‖ left key) and answers with the right row, if the instruction
//!    asks for an answer, on `<name>-response-repartition`, to the left task's partition.
//! 3. [`ForeignTableUpdates`] (right side): a right update answers every subscription of
//!    its key.
//! 4. [`ResponseJoin`] (left side): joins a response with the left table's *current* row,
//!    only if the hash the response carries is that row's hash. A response to an older left
//!    value (its subscription overtaken by a newer one, possibly on another partition of
//!    the subscription topic) is dropped, so results never go back in time.

use std::sync::Arc;

use crate::graph::{Ctx, DropReason, Msg, Operator, Payload};
use crate::record::Headers;
use crate::serdes::{Serde, SerdeError, SharedSerde};
use crate::store::KeyValueStore;

/// The hash of a left value's bytes, which responses carry back: xxh3, 128 bits, as Kafka
/// Streams uses a 128-bit murmur3 (a collision would let a stale response through).
pub(crate) type ValueHash = u128;

/// The hash of `bytes`.
pub(crate) fn value_hash(bytes: &[u8]) -> ValueHash {
    xxhash_rust::xxh3::xxh3_128(bytes)
}

/// What the right side does with a subscription (Kafka Streams'
/// `SubscriptionWrapper.Instruction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Instruction {
    /// Forget the subscription, answer nothing: the left row moved to another foreign key,
    /// whose answer replaces the result.
    DeleteNoPropagate = 0,
    /// Forget the subscription and answer with no right row: the left row was deleted.
    DeleteAndPropagate = 1,
    /// Subscribe and answer, with no right row if there is none (left joins, and any join
    /// whose row changed foreign key, so that an old result is retracted).
    PropagateNullIfMissing = 2,
    /// Subscribe and answer only if the right row exists (inner joins).
    PropagateOnlyIfPresent = 3,
}

impl Instruction {
    fn from_byte(byte: u8) -> Option<Instruction> {
        Some(match byte {
            0 => Instruction::DeleteNoPropagate,
            1 => Instruction::DeleteAndPropagate,
            2 => Instruction::PropagateNullIfMissing,
            3 => Instruction::PropagateOnlyIfPresent,
            _ => return None,
        })
    }
}

/// A left row's subscription to a foreign key, the value of a subscription record (keyed
/// by the foreign key's bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subscription {
    pub instruction: Instruction,
    /// Hash of the left value's bytes; `None` for a deleted row.
    pub hash: Option<ValueHash>,
    /// The left task's partition, where the response goes.
    pub partition: i32,
    pub left_key: Vec<u8>,
}

/// The right row for one subscription, the value of a response record (keyed by the left
/// key's bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    /// The hash of the subscription it answers.
    pub hash: Option<ValueHash>,
    /// The right row's bytes, `None` if there is none.
    pub right_value: Option<Vec<u8>>,
    /// The left task's partition.
    pub partition: i32,
}

/// Format version of the wire layouts below, their first byte.
const WIRE_VERSION: u8 = 0;

fn put_hash(bytes: &mut Vec<u8>, hash: Option<ValueHash>) {
    match hash {
        Some(hash) => {
            bytes.push(1);
            bytes.extend_from_slice(&hash.to_be_bytes());
        }
        None => bytes.push(0),
    }
}

/// Reads bytes off the front of a wire record; `None` when it is too short.
struct Reader<'b>(&'b [u8]);

impl<'b> Reader<'b> {
    fn take(&mut self, count: usize) -> Option<&'b [u8]> {
        if self.0.len() < count {
            return None;
        }
        let (head, tail) = self.0.split_at(count);
        self.0 = tail;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|bytes| bytes[0])
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn hash(&mut self) -> Option<Option<ValueHash>> {
        match self.byte()? {
            0 => Some(None),
            1 => Some(Some(u128::from_be_bytes(self.take(16)?.try_into().ok()?))),
            _ => None,
        }
    }

    fn rest(self) -> &'b [u8] {
        self.0
    }
}

/// Subscriptions on the wire: `version ‖ instruction ‖ hash ‖ partition (i32 BE) ‖ left
/// key`, the hash as `0` or `1 ‖ 16 bytes BE`.
pub(crate) struct SubscriptionSerde;

impl Serde<Subscription> for SubscriptionSerde {
    fn serialize(&self, _topic: &str, value: &Subscription) -> Result<Vec<u8>, SerdeError> {
        let mut bytes = Vec::with_capacity(23 + value.left_key.len());
        bytes.push(WIRE_VERSION);
        bytes.push(value.instruction as u8);
        put_hash(&mut bytes, value.hash);
        bytes.extend_from_slice(&value.partition.to_be_bytes());
        bytes.extend_from_slice(&value.left_key);
        Ok(bytes)
    }

    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<Subscription, SerdeError> {
        let mut reader = Reader(bytes);
        let read = (|| {
            if reader.byte()? != WIRE_VERSION {
                return None;
            }
            let instruction = Instruction::from_byte(reader.byte()?)?;
            let hash = reader.hash()?;
            let partition = reader.i32()?;
            Some((instruction, hash, partition))
        })();
        let Some((instruction, hash, partition)) = read else {
            return Err(SerdeError::new(
                topic,
                "not a foreign-key join subscription",
            ));
        };
        Ok(Subscription {
            instruction,
            hash,
            partition,
            left_key: reader.rest().to_vec(),
        })
    }
}

/// Responses on the wire: `version ‖ hash ‖ partition (i32 BE) ‖ present (0 or 1) ‖ right
/// value`.
pub(crate) struct ResponseSerde;

impl Serde<Response> for ResponseSerde {
    fn serialize(&self, _topic: &str, value: &Response) -> Result<Vec<u8>, SerdeError> {
        let right_len = value.right_value.as_ref().map_or(0, Vec::len);
        let mut bytes = Vec::with_capacity(23 + right_len);
        bytes.push(WIRE_VERSION);
        put_hash(&mut bytes, value.hash);
        bytes.extend_from_slice(&value.partition.to_be_bytes());
        match &value.right_value {
            Some(right) => {
                bytes.push(1);
                bytes.extend_from_slice(right);
            }
            None => bytes.push(0),
        }
        Ok(bytes)
    }

    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<Response, SerdeError> {
        let mut reader = Reader(bytes);
        let read = (|| {
            if reader.byte()? != WIRE_VERSION {
                return None;
            }
            let hash = reader.hash()?;
            let partition = reader.i32()?;
            let present = reader.byte()?;
            Some((hash, partition, present))
        })();
        let (hash, partition, right_value) = match read {
            Some((hash, partition, 0)) => (hash, partition, None),
            Some((hash, partition, 1)) => (hash, partition, Some(reader.rest().to_vec())),
            _ => return Err(SerdeError::new(topic, "not a foreign-key join response")),
        };
        Ok(Response {
            hash,
            right_value,
            partition,
        })
    }
}

/// The subscription store's key: `foreign key length (u32 BE) ‖ foreign key ‖ left key`,
/// so one foreign key's subscriptions are one range of keys whatever the key lengths.
fn subscription_prefix(foreign_key: &[u8]) -> Vec<u8> {
    let length = u32::try_from(foreign_key.len()).unwrap_or(u32::MAX);
    let mut prefix = Vec::with_capacity(4 + foreign_key.len());
    prefix.extend_from_slice(&length.to_be_bytes());
    prefix.extend_from_slice(foreign_key);
    prefix
}

/// The first key past every key starting with `prefix`; `None` if there is none (all
/// `0xff`).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A stored subscription's value: `hash ‖ partition (i32 BE)`.
fn subscription_entry(hash: Option<ValueHash>, partition: i32) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(21);
    put_hash(&mut bytes, hash);
    bytes.extend_from_slice(&partition.to_be_bytes());
    bytes
}

fn read_subscription_entry(bytes: &[u8]) -> Option<(Option<ValueHash>, i32)> {
    let mut reader = Reader(bytes);
    Some((reader.hash()?, reader.i32()?))
}

/// Which foreign-key join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForeignKeyJoinKind {
    Inner,
    Left,
}

/// Maps a left value to the key of its right row.
pub(crate) type ForeignKeyExtractor<V, KO> = Arc<dyn Fn(&V) -> KO + Send + Sync>;

/// Left side, step 1: turns left updates into subscriptions.
pub(crate) struct SubscriptionSender<K, V, KO> {
    pub kind: ForeignKeyJoinKind,
    pub extractor: ForeignKeyExtractor<V, KO>,
    pub left_key_serde: SharedSerde<K>,
    pub foreign_key_serde: SharedSerde<KO>,
    /// The left table's store, whose bytes are hashed.
    pub left_store_name: String,
    pub left_store: KeyValueStore,
    /// Left key to its current foreign key's bytes.
    pub foreign_key_store: KeyValueStore,
    /// This task's partition, where responses come back.
    pub partition: i32,
}

impl<K, V, KO> SubscriptionSender<K, V, KO> {
    fn send(&self, ctx: &mut Ctx<'_>, foreign_key: Vec<u8>, subscription: Subscription, msg: &Msg) {
        ctx.forward(Msg::new(
            foreign_key,
            subscription,
            msg.timestamp_ms,
            msg.headers.clone(),
        ));
    }
}

impl<K, V, KO> Operator for SubscriptionSender<K, V, KO>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
    KO: Send + Sync + 'static,
{
    fn process(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        let Some(key) = msg.key::<K>() else {
            ctx.drop_record(DropReason::NullKeyOrValue);
            return;
        };
        let Ok(left_key) = self.left_key_serde.serialize(&self.left_store_name, key) else {
            ctx.drop_record(DropReason::Deserialization);
            return;
        };
        let old_foreign_key = self.foreign_key_store.get(&left_key).map(|old| old.value);
        let had_foreign_key = old_foreign_key.is_some();
        let subscription = |instruction, hash| Subscription {
            instruction,
            hash,
            partition: self.partition,
            left_key: left_key.clone(),
        };
        let Some(value) = msg.value::<V>() else {
            // A deleted row: its old foreign key forgets it and retracts the result.
            if let Some(old) = old_foreign_key {
                let deletion = subscription(Instruction::DeleteAndPropagate, None);
                self.send(ctx, old, deletion, &msg);
                self.foreign_key_store
                    .delete(ctx.outputs, left_key.clone(), msg.timestamp_ms);
            }
            return;
        };
        let foreign_key = (self.extractor)(value);
        let Ok(foreign_key) = self
            .foreign_key_serde
            .serialize(&self.left_store_name, &foreign_key)
        else {
            ctx.drop_record(DropReason::Deserialization);
            return;
        };
        // The store holds the bytes the table holds, which the response side hashes too.
        let hash = self
            .left_store
            .get(&left_key)
            .map(|stored| value_hash(&stored.value));
        let moved = old_foreign_key
            .as_ref()
            .is_some_and(|old| *old != foreign_key);
        if let Some(old) = old_foreign_key.filter(|_| moved) {
            let deletion = subscription(Instruction::DeleteNoPropagate, hash);
            self.send(ctx, old, deletion, &msg);
        }
        // A moved row needs an answer even without a right row, to retract its old result.
        let instruction = match self.kind {
            ForeignKeyJoinKind::Inner if !moved => Instruction::PropagateOnlyIfPresent,
            _ => Instruction::PropagateNullIfMissing,
        };
        let registration = subscription(instruction, hash);
        self.send(ctx, foreign_key.clone(), registration, &msg);
        if !had_foreign_key || moved {
            self.foreign_key_store
                .put(ctx.outputs, left_key, foreign_key, msg.timestamp_ms);
        }
    }
}

/// Right side, step 2: records subscriptions and answers them with the right row.
pub(crate) struct SubscriptionReceiver {
    pub subscription_store: KeyValueStore,
    pub right_store: KeyValueStore,
}

impl Operator for SubscriptionReceiver {
    fn process(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        let (Some(foreign_key), Some(subscription)) =
            (msg.key::<Vec<u8>>(), msg.value::<Subscription>())
        else {
            ctx.drop_record(DropReason::NullKeyOrValue);
            return;
        };
        let mut store_key = subscription_prefix(foreign_key);
        store_key.extend_from_slice(&subscription.left_key);
        let right_value = self.right_store.get(foreign_key);
        let answer = match subscription.instruction {
            Instruction::DeleteNoPropagate | Instruction::DeleteAndPropagate => {
                self.subscription_store
                    .delete(ctx.outputs, store_key, msg.timestamp_ms);
                subscription.instruction == Instruction::DeleteAndPropagate
            }
            Instruction::PropagateNullIfMissing | Instruction::PropagateOnlyIfPresent => {
                let entry = subscription_entry(subscription.hash, subscription.partition);
                self.subscription_store
                    .put(ctx.outputs, store_key, entry, msg.timestamp_ms);
                subscription.instruction == Instruction::PropagateNullIfMissing
                    || right_value.is_some()
            }
        };
        if !answer {
            return;
        }
        // A deleted left row's retraction carries no right row.
        let right_value = match subscription.instruction {
            Instruction::DeleteAndPropagate => None,
            _ => right_value,
        };
        // Stamped with the later of both rows, as table-table joins are.
        let timestamp_ms = right_value.as_ref().map_or(msg.timestamp_ms, |right| {
            right.timestamp_ms.max(msg.timestamp_ms)
        });
        forward_response(
            ctx,
            subscription.left_key.clone(),
            (subscription.hash, subscription.partition),
            right_value.map(|stored| stored.value),
            timestamp_ms,
            &msg.headers,
        );
    }
}

/// Forwards the response for one subscription, to the left task's partition (the sink
/// after this node partitions by [`Response::partition`]).
fn forward_response(
    ctx: &mut Ctx<'_>,
    left_key: Vec<u8>,
    (hash, partition): (Option<ValueHash>, i32),
    right_value: Option<Vec<u8>>,
    timestamp_ms: i64,
    headers: &Headers,
) {
    let response = Response {
        hash,
        right_value,
        partition,
    };
    ctx.forward(Msg::new(left_key, response, timestamp_ms, headers.clone()));
}

/// Right side, step 3: a right update answers every subscription of its key.
pub(crate) struct ForeignTableUpdates<KO> {
    pub foreign_key_serde: SharedSerde<KO>,
    pub right_store_name: String,
    pub right_store: KeyValueStore,
    pub subscription_store: KeyValueStore,
}

impl<KO: Send + Sync + 'static> Operator for ForeignTableUpdates<KO> {
    fn process(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        let Some(foreign_key) = msg.key::<KO>() else {
            ctx.drop_record(DropReason::NullKeyOrValue);
            return;
        };
        let Ok(foreign_key) = self
            .foreign_key_serde
            .serialize(&self.right_store_name, foreign_key)
        else {
            ctx.drop_record(DropReason::Deserialization);
            return;
        };
        // The table wrote its store before forwarding: its bytes are the row's.
        let right_value = match msg.value {
            Some(_) => self
                .right_store
                .get(&foreign_key)
                .map(|stored| stored.value),
            None => None,
        };
        let prefix = subscription_prefix(&foreign_key);
        let end = prefix_end(&prefix);
        for (store_key, stored) in self.subscription_store.range(Some(&prefix), end.as_deref()) {
            let Some(entry) = read_subscription_entry(&stored.value) else {
                ctx.drop_record(DropReason::Deserialization);
                continue;
            };
            let left_key = store_key[prefix.len()..].to_vec();
            let right_value = right_value.clone();
            forward_response(
                ctx,
                left_key,
                entry,
                right_value,
                msg.timestamp_ms,
                &msg.headers,
            );
        }
    }
}

/// Builds the joined row from the left row and the right row, if any; `None` for no row.
pub(crate) type ForeignKeyJoiner<V, VO, R> =
    Arc<dyn Fn(&V, Option<&VO>) -> Option<R> + Send + Sync>;

/// Left side, step 4: joins responses with the left table's current row.
pub(crate) struct ResponseJoin<K, V, VO, R> {
    pub left_key_serde: SharedSerde<K>,
    pub left_value_serde: SharedSerde<V>,
    pub right_value_serde: SharedSerde<VO>,
    pub left_store_name: String,
    pub left_store: KeyValueStore,
    pub joiner: ForeignKeyJoiner<V, VO, R>,
}

impl<K, V, VO, R> Operator for ResponseJoin<K, V, VO, R>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
    VO: Send + Sync + 'static,
    R: Send + Sync + 'static,
{
    fn process(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        let (Some(left_key), Some(response)) = (msg.key::<Vec<u8>>(), msg.value::<Response>())
        else {
            ctx.drop_record(DropReason::NullKeyOrValue);
            return;
        };
        let left = self.left_store.get(left_key);
        let current_hash = left.as_ref().map(|stored| value_hash(&stored.value));
        if current_hash != response.hash {
            // An answer to an older left value: a newer subscription's answer is due.
            return;
        }
        let name = self.left_store_name.as_str();
        let Ok(key) = self.left_key_serde.deserialize(name, left_key) else {
            ctx.drop_record(DropReason::Deserialization);
            return;
        };
        let timestamp_ms = left.as_ref().map_or(msg.timestamp_ms, |stored| {
            stored.timestamp_ms.max(msg.timestamp_ms)
        });
        let joined = match &left {
            None => Ok(None),
            Some(stored) => self.join(stored.value.as_slice(), response.right_value.as_deref()),
        };
        let Ok(joined) = joined else {
            ctx.drop_record(DropReason::Deserialization);
            return;
        };
        ctx.forward(Msg {
            key: Some(Arc::new(key)),
            value: joined.map(|row| Arc::new(row) as Payload),
            timestamp_ms,
            headers: msg.headers.clone(),
        });
    }
}

impl<K, V: 'static, VO: 'static, R> ResponseJoin<K, V, VO, R> {
    /// The joined row of the left row's bytes and the right row's; `None` where the join
    /// has no row (an inner join without a right row).
    fn join(&self, left: &[u8], right: Option<&[u8]>) -> Result<Option<R>, SerdeError> {
        let name = self.left_store_name.as_str();
        let left = self.left_value_serde.deserialize(name, left)?;
        let right = right
            .map(|bytes| self.right_value_serde.deserialize(name, bytes))
            .transpose()?;
        Ok((self.joiner)(&left, right.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_formats_round_trip() {
        let subscription = Subscription {
            instruction: Instruction::PropagateOnlyIfPresent,
            hash: Some(value_hash(b"left")),
            partition: 3,
            left_key: b"k1".to_vec(),
        };
        let bytes = SubscriptionSerde.serialize("t", &subscription).unwrap();
        assert_eq!(
            SubscriptionSerde.deserialize("t", &bytes).unwrap(),
            subscription
        );
        for right_value in [None, Some(Vec::new()), Some(b"r".to_vec())] {
            let response = Response {
                hash: None,
                right_value,
                partition: 7,
            };
            let bytes = ResponseSerde.serialize("t", &response).unwrap();
            assert_eq!(ResponseSerde.deserialize("t", &bytes).unwrap(), response);
        }
    }

    #[test]
    fn malformed_wire_records_are_errors() {
        for bytes in [
            &[][..],
            &[9][..],
            &[0, 7, 0, 0, 0, 0, 1][..],
            &[0, 2, 1, 5][..],
        ] {
            assert!(SubscriptionSerde.deserialize("t", bytes).is_err());
            assert!(ResponseSerde.deserialize("t", bytes).is_err());
        }
    }

    #[test]
    fn subscription_keys_of_one_foreign_key_form_one_range() {
        let short = subscription_prefix(b"ab");
        let long = subscription_prefix(b"abc");
        let end = prefix_end(&short).unwrap();
        let mut in_range = short.clone();
        in_range.extend_from_slice(b"\xff\xffleft");
        assert!(in_range < end);
        assert!(!(long >= short && long < end));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
    }
}
