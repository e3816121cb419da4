//! `KTable::join_foreign_key` and `left_join_foreign_key`: the foreign-key table join
//! (KIP-213), wired as in Kafka Streams (see `operator/fk_join.rs` for how it runs).
//!
//! For a join named `n` (`KTABLE-FK-JOIN-<node number>`):
//!
//! - left table ─ `n`-SUBSCRIPTION-SEND (store `n-foreign-key-store`) ─▶
//!   `<application>-n-subscription-repartition`, partitioned like the right table;
//! - that topic ─ `n`-SUBSCRIPTION-RECEIVE (store `n-subscription-store`, reads the right
//!   table's) and right table ─ `n`-FOREIGN-UPDATES ─▶
//!   `<application>-n-response-repartition`, to the left row's partition;
//! - that topic ─ `n`-RESPONSE-JOIN (reads the left table's store) ─▶ the joined table.

use std::sync::Arc;

use crate::builder::Data;
use crate::graph::{NodeId, OperatorFactory, PassThrough};
use crate::operator::fk_join::{
    ForeignKeyExtractor, ForeignKeyJoinKind, ForeignKeyJoiner, ForeignTableUpdates, Response,
    ResponseJoin, ResponseSerde, Subscription, SubscriptionReceiver, SubscriptionSender,
    SubscriptionSerde,
};
use crate::operator::sink::Partitioner;
use crate::operator::source::StreamDecoder;
use crate::record::OutputKind;
use crate::serdes::{BytesSerde, Serde, SharedSerde};
use crate::store::StoreKind;
use crate::stream::KStream;
use crate::table::KTable;

impl<K: Data, V: Data> KTable<K, V> {
    /// Joins each row with the row of `other` whose key `foreign_key(value)` names (Kafka
    /// Streams' `join(other, foreignKeyExtractor, joiner)`): `joiner(left, right)` while
    /// both rows exist, a deletion once either is deleted or the row's new foreign key has
    /// no right row. An update on either side updates every joined row it touches; the
    /// result is keyed like this table and stamped with the later of both rows'
    /// timestamps.
    ///
    /// The tables need not be co-partitioned: each left update subscribes to its foreign
    /// key through `<application>-<name>-subscription-repartition` (partitioned like
    /// `other`), and answers come back through `<application>-<name>-response-repartition`.
    /// Both tables need a store; the result has none (materialize it with
    /// `map_values_materialized`). `value_serde` serves the operators after it.
    pub fn join_foreign_key<KO: Data, VO: Data, R: Data>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: impl Fn(&V) -> KO + Send + Sync + 'static,
        joiner: impl Fn(&V, &VO) -> R + Send + Sync + 'static,
        value_serde: impl Serde<R>,
    ) -> KTable<K, R> {
        let joiner: ForeignKeyJoiner<V, VO, R> =
            Arc::new(move |left, right| right.map(|right| joiner(left, right)));
        let extractor: ForeignKeyExtractor<V, KO> = Arc::new(foreign_key);
        let kind = ForeignKeyJoinKind::Inner;
        self.foreign_key_join(kind, other, extractor, joiner, Arc::new(value_serde))
    }

    /// Left foreign-key join: like [`KTable::join_foreign_key`], but every left row gives
    /// `joiner(left, right or None)`, and only a left deletion deletes the joined row.
    pub fn left_join_foreign_key<KO: Data, VO: Data, R: Data>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: impl Fn(&V) -> KO + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VO>) -> R + Send + Sync + 'static,
        value_serde: impl Serde<R>,
    ) -> KTable<K, R> {
        let joiner: ForeignKeyJoiner<V, VO, R> =
            Arc::new(move |left, right| Some(joiner(left, right)));
        let extractor: ForeignKeyExtractor<V, KO> = Arc::new(foreign_key);
        let kind = ForeignKeyJoinKind::Left;
        self.foreign_key_join(kind, other, extractor, joiner, Arc::new(value_serde))
    }

    fn foreign_key_join<KO: Data, VO: Data, R: Data>(
        &self,
        kind: ForeignKeyJoinKind,
        other: &KTable<KO, VO>,
        extractor: ForeignKeyExtractor<V, KO>,
        joiner: ForeignKeyJoiner<V, VO, R>,
        value_serde: SharedSerde<R>,
    ) -> KTable<K, R> {
        let left_store = self.require_store("a foreign-key join");
        let right_store = other.require_store("a foreign-key join");
        let name = format!("KTABLE-FK-JOIN-{:010}", self.graph.borrow().nodes.len());
        let foreign_key_store = format!("{name}-foreign-key-store");
        let subscription_store = format!("{name}-subscription-store");

        // Left side: subscriptions out.
        let sender = {
            let (left_key_serde, foreign_key_serde) =
                (self.key_serde.clone(), other.key_serde.clone());
            let (left_name, fk_name) = (left_store.clone(), foreign_key_store.clone());
            let factory: OperatorFactory = Arc::new(move |stores| {
                Box::new(SubscriptionSender {
                    kind,
                    extractor: extractor.clone(),
                    left_key_serde: left_key_serde.clone(),
                    foreign_key_serde: foreign_key_serde.clone(),
                    left_store_name: left_name.clone(),
                    left_store: stores.key_value(&left_name),
                    foreign_key_store: stores.key_value(&fk_name),
                    partition: stores.partition,
                })
            });
            let stores = vec![left_store.clone(), foreign_key_store.clone()];
            let mut graph = self.graph.borrow_mut();
            let node = graph.add_node(
                "KTABLE-FK-JOIN-SUBSCRIPTION-SEND",
                &[self.node],
                factory,
                stores,
            );
            graph.add_store(&foreign_key_store, StoreKind::KeyValue, node);
            node
        };
        let subscriptions: KStream<Vec<u8>, Subscription> =
            KStream::new(self.graph.clone(), sender, false);
        let subscriptions = through_internal_topic(
            &subscriptions,
            &format!("{name}-subscription"),
            Arc::new(SubscriptionSerde),
            None,
        );

        // Right side: subscriptions in, answers out.
        let receiver = {
            let (sub_name, right_name) = (subscription_store.clone(), right_store.clone());
            let factory: OperatorFactory = Arc::new(move |stores| {
                Box::new(SubscriptionReceiver {
                    subscription_store: stores.key_value(&sub_name),
                    right_store: stores.key_value(&right_name),
                })
            });
            let stores = vec![subscription_store.clone(), right_store.clone()];
            let mut graph = self.graph.borrow_mut();
            let node = graph.add_node(
                "KTABLE-FK-JOIN-SUBSCRIPTION-RECEIVE",
                &[subscriptions.node],
                factory,
                stores,
            );
            graph.add_store(&subscription_store, StoreKind::KeyValue, node);
            node
        };
        let updates = {
            let foreign_key_serde = other.key_serde.clone();
            let (sub_name, right_name) = (subscription_store.clone(), right_store.clone());
            let factory: OperatorFactory = Arc::new(move |stores| {
                Box::new(ForeignTableUpdates {
                    foreign_key_serde: foreign_key_serde.clone(),
                    right_store_name: right_name.clone(),
                    right_store: stores.key_value(&right_name),
                    subscription_store: stores.key_value(&sub_name),
                })
            });
            let stores = vec![subscription_store.clone(), right_store.clone()];
            self.graph.borrow_mut().add_node(
                "KTABLE-FK-JOIN-FOREIGN-UPDATES",
                &[other.node],
                factory,
                stores,
            )
        };
        let responses = merge(&self.graph, &[receiver, updates]);
        // Each answer goes back to the partition of the task that subscribed.
        let to_subscriber: Partitioner<Vec<u8>, Response> =
            Arc::new(|_, response: &Response, _| response.partition);
        let responses = through_internal_topic(
            &responses,
            &format!("{name}-response"),
            Arc::new(ResponseSerde),
            Some(to_subscriber),
        );

        // Left side: answers joined with the current left row.
        let (left_key_serde, left_value_serde) = (self.key_serde.clone(), self.value_serde.clone());
        let right_value_serde = other.value_serde.clone();
        let left_name = left_store.clone();
        let factory: OperatorFactory = Arc::new(move |stores| {
            Box::new(ResponseJoin {
                left_key_serde: left_key_serde.clone(),
                left_value_serde: left_value_serde.clone(),
                right_value_serde: right_value_serde.clone(),
                left_store_name: left_name.clone(),
                left_store: stores.key_value(&left_name),
                joiner: joiner.clone(),
            })
        });
        let node = self.graph.borrow_mut().add_node(
            "KTABLE-FK-JOIN-RESPONSE-JOIN",
            &[responses.node],
            factory,
            vec![left_store],
        );
        KTable {
            graph: self.graph.clone(),
            node,
            key_serde: self.key_serde.clone(),
            value_serde,
            store_name: None,
        }
    }
}

/// A node forwarding whatever `parents` forward.
fn merge<K: Data, V: Data>(graph: &crate::builder::Graph, parents: &[NodeId]) -> KStream<K, V> {
    let factory: OperatorFactory = Arc::new(|_| Box::new(PassThrough));
    let node = graph
        .borrow_mut()
        .add_node("KTABLE-FK-JOIN-MERGE", parents, factory, Vec::new());
    KStream::new(graph.clone(), node, false)
}

/// Writes `stream` (keyed by raw bytes) to `<application>-<name>-repartition`, at
/// `partitioner`'s partition or by key, and reads it back in the sub-topology that reads
/// that topic.
fn through_internal_topic<V: Data>(
    stream: &KStream<Vec<u8>, V>,
    name: &str,
    value_serde: SharedSerde<V>,
    partitioner: Option<Partitioner<Vec<u8>, V>>,
) -> KStream<Vec<u8>, V> {
    let graph = stream.graph.clone();
    let topic = format!("{}-{name}-repartition", graph.borrow().application_id);
    let key_serde: SharedSerde<Vec<u8>> = Arc::new(BytesSerde);
    let kind = OutputKind::Repartition;
    stream.sink(
        &topic,
        key_serde.clone(),
        value_serde.clone(),
        partitioner,
        kind,
    );
    let decoder = StreamDecoder {
        key_serde,
        value_serde,
        extractor: None,
    };
    let factory: OperatorFactory = Arc::new(|_| Box::new(PassThrough));
    let mut builder = graph.borrow_mut();
    builder.repartition_topics.insert(topic.clone());
    let node = builder.add_source("SOURCE", &topic, Arc::new(decoder), factory, Vec::new());
    drop(builder);
    KStream::new(graph, node, false)
}
