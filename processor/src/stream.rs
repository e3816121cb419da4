//! `KStream`: a typed handle on a stream of records, and its operators.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::builder::{Data, Graph};
use crate::graph::{Ctx, DropReason, Msg, NodeId, OperatorFactory, PassThrough};
use crate::grouped::{Grouped, KGroupedStream};
use crate::materialized::{StoreOptions, require_serde};
use crate::operator::aggregate::WindowClock;
use crate::operator::outer_stream_join::{JoinInput, OuterJoiner, OuterStreamJoin, UnmatchedSides};
use crate::operator::sink::{Partitioner, Sink};
use crate::operator::source::StreamDecoder;
use crate::operator::stateless::{Stateless, StatelessFn};
use crate::operator::stream_join::{JoinSide, StreamJoiner, StreamStreamJoin};
use crate::operator::table_join::{StreamTableJoin, TableJoiner};
use crate::record::OutputKind;
use crate::serdes::{Serde, SharedSerde};
use crate::store::{StoreBacking, StoreKind};
use crate::table::KTable;
use crate::topology::TopologyError;
use crate::window::JoinWindows;

/// A stream of keyed records. Cheap to clone: a handle on a node of the builder's graph;
/// every operator called on it adds a child node, so one stream can feed several.
pub struct KStream<K, V> {
    pub(crate) graph: Graph,
    pub(crate) node: NodeId,
    /// An upstream operator may have changed the key: key-based state needs a repartition.
    pub(crate) key_changed: bool,
    /// The serdes of the records, where the stream knows them: from its source topic or
    /// repartition, kept by operators that change neither key nor value type. They are
    /// the defaults of groupings and stores.
    pub(crate) key_serde: Option<SharedSerde<K>>,
    pub(crate) value_serde: Option<SharedSerde<V>>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        KStream {
            graph: self.graph.clone(),
            node: self.node,
            key_changed: self.key_changed,
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            _types: PhantomData,
        }
    }
}

/// A branch condition for [`BranchedKStream::branch`].
pub type Predicate<K, V> = Box<dyn Fn(&K, &V) -> bool + Send + Sync>;

/// Serdes and a name for a windowed stream-stream join; the name prefixes its stores.
pub struct StreamJoined<K, V, V2> {
    key_serde: SharedSerde<K>,
    left_serde: SharedSerde<V>,
    right_serde: SharedSerde<V2>,
    name: String,
    options: StoreOptions,
}

impl<K, V, V2> StreamJoined<K, V, V2> {
    /// Serdes for the key and both sides' values; `name` names the join stores
    /// (`<name>-this-join-store`, `<name>-other-join-store`) and any repartition topics.
    pub fn new(
        name: &str,
        key_serde: impl Serde<K>,
        left_serde: impl Serde<V>,
        right_serde: impl Serde<V2>,
    ) -> Self {
        StreamJoined {
            key_serde: Arc::new(key_serde),
            left_serde: Arc::new(left_serde),
            right_serde: Arc::new(right_serde),
            name: name.to_string(),
            options: StoreOptions::default(),
        }
    }

    /// Keeps the join stores in memory (they are on disk by default).
    pub fn in_memory(mut self) -> Self {
        self.options.backing = Some(StoreBacking::InMemory);
        self
    }

    /// No changelogs for the join stores: a restart starts them empty.
    pub fn with_logging_disabled(mut self) -> Self {
        self.options.logging_disabled = true;
        self
    }

    /// A topic config for the join stores' changelogs, over the defaults.
    pub fn with_changelog_config(mut self, name: &str, value: &str) -> Self {
        let config = (name.to_string(), value.to_string());
        self.options.changelog_configs.push(config);
        self
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    pub(crate) fn new(graph: Graph, node: NodeId, key_changed: bool) -> Self {
        KStream {
            graph,
            node,
            key_changed,
            key_serde: None,
            value_serde: None,
            _types: PhantomData,
        }
    }

    /// This stream, knowing its serdes.
    pub(crate) fn with_serdes(
        mut self,
        key_serde: Option<SharedSerde<K>>,
        value_serde: Option<SharedSerde<V>>,
    ) -> Self {
        self.key_serde = key_serde;
        self.value_serde = value_serde;
        self
    }

    /// A stream below `node` with this one's key and value types and serdes.
    fn same_types(&self, node: NodeId, key_changed: bool) -> Self {
        KStream::new(self.graph.clone(), node, key_changed)
            .with_serdes(self.key_serde.clone(), self.value_serde.clone())
    }

    fn stateless<K2: Data, V2: Data>(
        &self,
        kind: &str,
        key_changed: bool,
        logic: impl Fn(&mut Ctx<'_>, Msg) + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let logic: StatelessFn = Arc::new(logic);
        let factory: OperatorFactory = Arc::new(move |_| {
            Box::new(Stateless {
                logic: logic.clone(),
            })
        });
        let node = self
            .graph
            .borrow_mut()
            .add_node(kind, &[self.node], factory, Vec::new());
        KStream::new(self.graph.clone(), node, self.key_changed || key_changed)
    }

    /// Keeps the records for which `predicate` is true.
    pub fn filter(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        let filtered: Self = self.stateless("FILTER", false, move |ctx, msg| {
            if let (Some(key), Some(value)) = (msg.key::<K>(), msg.value::<V>())
                && predicate(key, value)
            {
                ctx.forward(msg);
            }
        });
        self.same_types(filtered.node, filtered.key_changed)
    }

    /// Keeps the records for which `predicate` is false.
    pub fn filter_not(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        self.filter(move |key, value| !predicate(key, value))
    }

    /// A new value for each record; the key stays, so no repartition follows.
    pub fn map_values<V2: Data>(
        &self,
        mapper: impl Fn(&V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        self.map_values_with_key(move |_, value| mapper(value))
    }

    /// A new value for each record, computed from key and value.
    pub fn map_values_with_key<V2: Data>(
        &self,
        mapper: impl Fn(&K, &V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        let mapped: KStream<K, V2> = self.stateless("MAPVALUES", false, move |ctx, msg| {
            if let (Some(key), Some(value)) = (msg.key::<K>(), msg.value::<V>()) {
                let mapped = mapper(key, value);
                ctx.forward(Msg {
                    value: Some(Arc::new(mapped)),
                    ..msg
                });
            }
        });
        mapped.with_serdes(self.key_serde.clone(), None)
    }

    /// A new key and value for each record; key-based state downstream repartitions.
    pub fn map<K2: Data, V2: Data>(
        &self,
        mapper: impl Fn(&K, &V) -> (K2, V2) + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        self.stateless("MAP", true, move |ctx, msg| {
            if let (Some(key), Some(value)) = (msg.key::<K>(), msg.value::<V>()) {
                let (new_key, new_value) = mapper(key, value);
                ctx.forward(Msg::new(
                    new_key,
                    new_value,
                    msg.timestamp_ms,
                    msg.headers.clone(),
                ));
            }
        })
    }

    /// Zero or more records for each record; key-based state downstream repartitions.
    pub fn flat_map<K2: Data, V2: Data, I>(
        &self,
        mapper: impl Fn(&K, &V) -> I + Send + Sync + 'static,
    ) -> KStream<K2, V2>
    where
        I: IntoIterator<Item = (K2, V2)>,
    {
        self.stateless("FLATMAP", true, move |ctx, msg| {
            if let (Some(key), Some(value)) = (msg.key::<K>(), msg.value::<V>()) {
                for (new_key, new_value) in mapper(key, value) {
                    ctx.forward(Msg::new(
                        new_key,
                        new_value,
                        msg.timestamp_ms,
                        msg.headers.clone(),
                    ));
                }
            }
        })
    }

    /// Zero or more values for each record, each with the record's key.
    pub fn flat_map_values<V2: Data, I>(
        &self,
        mapper: impl Fn(&V) -> I + Send + Sync + 'static,
    ) -> KStream<K, V2>
    where
        I: IntoIterator<Item = V2>,
    {
        self.stateless("FLATMAPVALUES", false, move |ctx, msg| {
            if let Some(value) = msg.value::<V>() {
                for new_value in mapper(value) {
                    ctx.forward(Msg {
                        value: Some(Arc::new(new_value)),
                        ..msg.clone()
                    });
                }
            }
        })
    }

    /// A new key for each record; key-based state downstream repartitions.
    pub fn select_key<K2: Data>(
        &self,
        selector: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> KStream<K2, V> {
        let rekeyed: KStream<K2, V> = self.stateless("KEY-SELECT", true, move |ctx, msg| {
            if let (Some(key), Some(value)) = (msg.key::<K>(), msg.value::<V>()) {
                let new_key = selector(key, value);
                ctx.forward(Msg {
                    key: Some(Arc::new(new_key)),
                    ..msg
                });
            }
        });
        rekeyed.with_serdes(None, self.value_serde.clone())
    }

    /// Calls `action` on each record and passes it on unchanged.
    pub fn peek(&self, action: impl Fn(&K, &V) + Send + Sync + 'static) -> Self {
        let peeked: Self = self.stateless("PEEK", false, move |ctx, msg| {
            if let (Some(key), Some(value)) = (msg.key::<K>(), msg.value::<V>()) {
                action(key, value);
            }
            ctx.forward(msg);
        });
        self.same_types(peeked.node, peeked.key_changed)
    }

    /// Calls `action` on each record; the end of this branch.
    pub fn foreach(&self, action: impl Fn(&K, &V) + Send + Sync + 'static) {
        let _: KStream<K, V> = self.stateless("FOREACH", false, move |_ctx, msg| {
            if let (Some(key), Some(value)) = (msg.key::<K>(), msg.value::<V>()) {
                action(key, value);
            }
        });
    }

    /// Splits the stream (Kafka Streams' `split`): each record goes to the first branch
    /// whose predicate holds, else to the default branch, if any.
    ///
    /// ```
    /// use riffle_processor::{I64Serde, StreamsBuilder, StringSerde};
    ///
    /// let builder = StreamsBuilder::new("payments");
    /// let mut branches = builder
    ///     .stream("payments", StringSerde, I64Serde)
    ///     .split()
    ///     .branch("large", |_, amount| *amount >= 1_000)
    ///     .branch("refunds", |_, amount| *amount < 0)
    ///     .default_branch("other");
    /// branches["large"].to("large-payments", StringSerde, I64Serde);
    /// branches["other"].to("other-payments", StringSerde, I64Serde);
    /// # assert_eq!(branches.len(), 3);
    /// ```
    pub fn split(&self) -> BranchedKStream<K, V> {
        BranchedKStream {
            stream: self.clone(),
            branches: Vec::new(),
        }
    }

    /// Adds the node that routes each record to one of `predicates`' branches (index in
    /// order) and one child per branch, plus one for `default` records.
    fn add_branches(&self, predicates: Vec<Predicate<K, V>>, default: bool) -> Vec<KStream<K, V>> {
        let count = predicates.len() + usize::from(default);
        let branch: KStream<K, V> = self.stateless("BRANCH", false, move |ctx, msg| {
            let (Some(key), Some(value)) = (msg.key::<K>(), msg.value::<V>()) else {
                return;
            };
            match predicates.iter().position(|p| p(key, value)) {
                Some(index) => ctx.forward_to(index, msg),
                None if default => ctx.forward_to(predicates.len(), msg),
                None => {}
            }
        });
        let mut graph = self.graph.borrow_mut();
        let children: Vec<NodeId> = (0..count)
            .map(|_| {
                let factory: OperatorFactory = Arc::new(|_| Box::new(PassThrough));
                graph.add_node("BRANCH-CHILD", &[branch.node], factory, Vec::new())
            })
            .collect();
        drop(graph);
        children
            .into_iter()
            .map(|node| self.same_types(node, self.key_changed))
            .collect()
    }

    /// One stream with the records of both.
    pub fn merge(&self, other: &KStream<K, V>) -> Self {
        let factory: OperatorFactory = Arc::new(|_| Box::new(PassThrough));
        let node = self.graph.borrow_mut().add_node(
            "MERGE",
            &[self.node, other.node],
            factory,
            Vec::new(),
        );
        self.same_types(node, self.key_changed || other.key_changed)
    }

    /// Writes every record to `topic`, partitioned by murmur2 of the key bytes as Kafka's
    /// Java producer does (keyless records are spread by the runtime).
    pub fn to(&self, topic: &str, key_serde: impl Serde<K>, value_serde: impl Serde<V>) {
        self.sink(
            topic,
            Arc::new(key_serde),
            Arc::new(value_serde),
            None,
            OutputKind::Sink,
        );
    }

    /// Writes every record to `topic`, at `partitioner(key, value, partition_count)`.
    pub fn to_with_partitioner(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        partitioner: impl Fn(&K, &V, i32) -> i32 + Send + Sync + 'static,
    ) {
        let partitioner: Partitioner<K, V> = Arc::new(partitioner);
        let (key_serde, value_serde) = (Arc::new(key_serde), Arc::new(value_serde));
        self.sink(
            topic,
            key_serde,
            value_serde,
            Some(partitioner),
            OutputKind::Sink,
        );
    }

    pub(crate) fn sink(
        &self,
        topic: &str,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        partitioner: Option<Partitioner<K, V>>,
        kind: OutputKind,
    ) -> NodeId {
        let topic_name = topic.to_string();
        let factory: OperatorFactory = Arc::new(move |_| {
            Box::new(Sink {
                topic: topic_name.clone(),
                key_serde: key_serde.clone(),
                value_serde: value_serde.clone(),
                partitioner: partitioner.clone(),
                kind,
            })
        });
        let mut graph = self.graph.borrow_mut();
        let node = graph.add_node("SINK", &[self.node], factory, Vec::new());
        graph.nodes[node].sink_topics.push(topic.to_string());
        node
    }

    /// Writes the stream through the internal topic `<application>-<name>-repartition` and
    /// reads it back, so records are partitioned by their current key.
    pub fn repartition(
        &self,
        name: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> Self {
        self.repartition_shared(name, Arc::new(key_serde), Arc::new(value_serde))
    }

    pub(crate) fn repartition_shared(
        &self,
        name: &str,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
    ) -> Self {
        let topic = format!("{}-{name}-repartition", self.graph.borrow().application_id);
        let kind = OutputKind::Repartition;
        self.sink(&topic, key_serde.clone(), value_serde.clone(), None, kind);
        let decoder_serdes = (key_serde.clone(), value_serde.clone());
        let decoder = StreamDecoder {
            key_serde,
            value_serde,
            extractor: None,
        };
        let factory: OperatorFactory = Arc::new(|_| Box::new(PassThrough));
        let mut graph = self.graph.borrow_mut();
        graph.repartition_topics.insert(topic.clone());
        let node = graph.add_source("SOURCE", &topic, Arc::new(decoder), factory, Vec::new());
        drop(graph);
        KStream::new(self.graph.clone(), node, false)
            .with_serdes(Some(decoder_serdes.0), Some(decoder_serdes.1))
    }

    /// Groups by the current key, for aggregation, with the serdes the stream knows
    /// (from its source topic or repartition). Repartitions first (through
    /// `<application>-KSTREAM-AGGREGATE-<n>-repartition`) if an upstream operator changed
    /// the key; that needs serdes the stream no longer knows, so after a key change use
    /// [`KStream::group_by_key_with`].
    pub fn group_by_key(&self) -> KGroupedStream<K, V> {
        self.group_by_key_with(Grouped::default())
    }

    /// Groups by the current key with `grouped`'s serdes (over the stream's) and
    /// repartition topic name. Only a repartition needs the value serde; stores need the
    /// key serde, here or in their `Materialized`.
    pub fn group_by_key_with(&self, grouped: Grouped<K, V>) -> KGroupedStream<K, V> {
        let key_serde = grouped.key_serde.clone().or(self.key_serde.clone());
        let value_serde = grouped.value_serde.clone().or(self.value_serde.clone());
        if !self.key_changed {
            return KGroupedStream::new(self.clone(), key_serde, value_serde);
        }
        let name = grouped.repartition_name(&self.graph);
        let missing = |what: &str| {
            format!(
                "grouping after a key change repartitions through {name:?} and needs a {what} serde: give it in Grouped"
            )
        };
        let key_serde = require_serde(&self.graph, key_serde, || missing("key"));
        let value_serde = require_serde(&self.graph, value_serde, || missing("value"));
        let stream = self.repartition_shared(&name, key_serde, value_serde);
        let (key_serde, value_serde) = (stream.key_serde.clone(), stream.value_serde.clone());
        KGroupedStream::new(stream, key_serde, value_serde)
    }

    /// This stream, or when an upstream operator changed the key, the stream read back
    /// through the repartition topic `name`.
    fn partitioned_by_key(
        &self,
        name: &str,
        key_serde: &SharedSerde<K>,
        value_serde: &SharedSerde<V>,
    ) -> Self {
        if self.key_changed {
            self.repartition_shared(name, key_serde.clone(), value_serde.clone())
        } else {
            self.clone()
        }
    }

    /// Both sides of a stream-stream join, each read back through its own repartition
    /// topic (`<name>-left`, `<name>-right`) if its key changed.
    fn join_sides_partitioned<V2: Data>(
        &self,
        other: &KStream<K, V2>,
        joined: &StreamJoined<K, V, V2>,
    ) -> (KStream<K, V>, KStream<K, V2>) {
        let name = &joined.name;
        let left = self.partitioned_by_key(
            &format!("{name}-left"),
            &joined.key_serde,
            &joined.left_serde,
        );
        let right = other.partitioned_by_key(
            &format!("{name}-right"),
            &joined.key_serde,
            &joined.right_serde,
        );
        (left, right)
    }

    /// Groups by a new key computed from each record; always repartitions, so it needs
    /// the new key's serde, and the value serde unless the stream knows it.
    pub fn group_by<K2: Data>(
        &self,
        selector: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
        grouped: Grouped<K2, V>,
    ) -> KGroupedStream<K2, V> {
        self.select_key(selector).group_by_key_with(grouped)
    }

    fn check_partitioned(&self, operation: &str) {
        if self.key_changed {
            let message = format!(
                "{operation} after a key change needs repartition(name, key_serde, value_serde) first"
            );
            self.graph
                .borrow_mut()
                .fail(TopologyError::NeedsRepartition(message));
        }
    }

    /// Inner stream-table join: each record with a table row for its key becomes
    /// `joiner(key, value, row)`; records without one are dropped.
    pub fn join_table<T: Data, R: Data>(
        &self,
        table: &KTable<K, T>,
        joiner: impl Fn(&K, &V, &T) -> R + Send + Sync + 'static,
    ) -> KStream<K, R> {
        let joiner: TableJoiner<K, V, T, R> =
            Arc::new(move |key, value, row| row.map(|row| joiner(key, value, row)));
        self.table_join("JOIN", table, joiner)
    }

    /// Left stream-table join: every record becomes `joiner(key, value, row or None)`.
    pub fn left_join_table<T: Data, R: Data>(
        &self,
        table: &KTable<K, T>,
        joiner: impl Fn(&K, &V, Option<&T>) -> R + Send + Sync + 'static,
    ) -> KStream<K, R> {
        let joiner: TableJoiner<K, V, T, R> =
            Arc::new(move |key, value, row| Some(joiner(key, value, row)));
        self.table_join("LEFTJOIN", table, joiner)
    }

    fn table_join<T: Data, R: Data>(
        &self,
        kind: &str,
        table: &KTable<K, T>,
        joiner: TableJoiner<K, V, T, R>,
    ) -> KStream<K, R> {
        self.check_partitioned("a stream-table join");
        let store_name = table.require_store("a stream-table join");
        let key_serde = table.key_serde.clone();
        let table_value_serde = table.value_serde.clone();
        let factory: OperatorFactory = Arc::new(move |stores| {
            Box::new(StreamTableJoin {
                table_store_name: store_name.clone(),
                table_store: stores.key_value(&store_name),
                key_serde: key_serde.clone(),
                table_value_serde: table_value_serde.clone(),
                joiner: joiner.clone(),
            })
        });
        let stores = vec![table.require_store("a stream-table join")];
        let node = self
            .graph
            .borrow_mut()
            .add_node(kind, &[self.node], factory, stores);
        KStream::new(self.graph.clone(), node, false)
    }

    /// Windowed inner join with another stream: each pair of records with the same key and
    /// timestamps within `windows` becomes `joiner(key, left, right)`, stamped with the
    /// later timestamp. Either side repartitions first if its key changed.
    pub fn join<V2: Data, R: Data>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&K, &V, &V2) -> R + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, V2>,
    ) -> KStream<K, R> {
        let name = &joined.name;
        let (left, right) = self.join_sides_partitioned(other, &joined);
        let this_store = format!("{name}-this-join-store");
        let other_store = format!("{name}-other-join-store");
        let joiner: StreamJoiner<K, V, V2, R> = Arc::new(joiner);
        let left_node = left.join_side(
            JoinSide::Left,
            &this_store,
            &other_store,
            windows,
            &joined,
            joiner.clone(),
        );
        let right_node = right.join_side(
            JoinSide::Right,
            &other_store,
            &this_store,
            windows,
            &joined,
            joiner,
        );
        let kind = StoreKind::Window {
            retention_ms: windows.retention_ms(),
            keep_duplicates: true,
        };
        let factory: OperatorFactory = Arc::new(|_| Box::new(PassThrough));
        let mut graph = self.graph.borrow_mut();
        graph.add_store(&this_store, kind, left_node);
        graph.add_store(&other_store, kind, left_node);
        graph.configure_store(&this_store, &joined.options);
        graph.configure_store(&other_store, &joined.options);
        let merged = graph.add_node("JOIN-MERGE", &[left_node, right_node], factory, Vec::new());
        drop(graph);
        KStream::new(self.graph.clone(), merged, false)
    }

    /// Windowed left join with another stream: each pair within `windows` becomes
    /// `joiner(key, left, Some(right))` at once; a left record that found no partner
    /// becomes `joiner(key, left, None)` only once its window has closed (stream time past
    /// `ts + after + grace`), stamped with its own timestamp. Until then it waits in the
    /// store `<name>-outer-shared-join-store`.
    pub fn left_join<V2: Data, R: Data>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&K, &V, Option<&V2>) -> R + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, V2>,
    ) -> KStream<K, R> {
        let joiner: OuterJoiner<K, V, V2, R> =
            Arc::new(move |key, left, right| left.map(|left| joiner(key, left, right)));
        self.outer_join_with(UnmatchedSides::Left, other, joiner, windows, joined)
    }

    /// Windowed outer join with another stream: like [`KStream::left_join`], and a right
    /// record that found no partner becomes `joiner(key, None, Some(right))` once its
    /// window has closed (stream time past `ts + before + grace`).
    pub fn outer_join<V2: Data, R: Data>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&K, Option<&V>, Option<&V2>) -> R + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, V2>,
    ) -> KStream<K, R> {
        let joiner: OuterJoiner<K, V, V2, R> =
            Arc::new(move |key, left, right| Some(joiner(key, left, right)));
        self.outer_join_with(UnmatchedSides::Both, other, joiner, windows, joined)
    }

    /// Left or outer join, as `unmatched` says: both sides, tagged, feed one operator.
    fn outer_join_with<V2: Data, R: Data>(
        &self,
        unmatched: UnmatchedSides,
        other: &KStream<K, V2>,
        joiner: OuterJoiner<K, V, V2, R>,
        windows: JoinWindows,
        joined: StreamJoined<K, V, V2>,
    ) -> KStream<K, R> {
        let name = &joined.name;
        let (left, right) = self.join_sides_partitioned(other, &joined);
        let stores = [
            format!("{name}-this-join-store"),
            format!("{name}-other-join-store"),
            format!("{name}-outer-shared-join-store"),
        ];
        let kind = match unmatched {
            UnmatchedSides::Left => "LEFTJOIN",
            UnmatchedSides::Both => "OUTERJOIN",
        };
        let (key_serde, left_serde) = (joined.key_serde.clone(), joined.left_serde.clone());
        let right_serde = joined.right_serde.clone();
        let names = stores.clone();
        let factory: OperatorFactory = Arc::new(move |task_stores| {
            Box::new(OuterStreamJoin {
                left_store_name: names[0].clone(),
                left_store: task_stores.window(&names[0]),
                right_store: task_stores.window(&names[1]),
                outer_store: task_stores.key_value(&names[2]),
                windows,
                unmatched,
                key_serde: key_serde.clone(),
                left_serde: left_serde.clone(),
                right_serde: right_serde.clone(),
                joiner: joiner.clone(),
                clock: WindowClock::default(),
            })
        });
        let parents = [
            left.tag_side(JoinSide::Left),
            right.tag_side(JoinSide::Right),
        ];
        let window_kind = StoreKind::Window {
            retention_ms: windows.retention_ms(),
            keep_duplicates: true,
        };
        let mut graph = self.graph.borrow_mut();
        let node = graph.add_node(kind, &parents, factory, stores.to_vec());
        graph.add_store(&stores[0], window_kind, node);
        graph.add_store(&stores[1], window_kind, node);
        graph.add_store(&stores[2], StoreKind::KeyValue, node);
        for store in &stores {
            graph.configure_store(store, &joined.options);
        }
        drop(graph);
        KStream::new(self.graph.clone(), node, false)
    }

    /// A node that wraps each value as a [`JoinInput`] of `side`, so one join operator
    /// can take both sides.
    fn tag_side(&self, side: JoinSide) -> NodeId {
        let kind = match side {
            JoinSide::Left => "JOINTHIS",
            JoinSide::Right => "JOINOTHER",
        };
        let tagged: KStream<K, JoinInput> = self.stateless(kind, false, move |ctx, msg| {
            let Some(value) = msg.value.clone() else {
                ctx.drop_record(DropReason::NullKeyOrValue);
                return;
            };
            ctx.forward(Msg {
                value: Some(Arc::new(JoinInput { side, value })),
                ..msg
            });
        });
        tagged.node
    }

    #[allow(clippy::too_many_arguments)]
    fn join_side<L: Data, R: Data, O: Data>(
        &self,
        side: JoinSide,
        this_store: &str,
        other_store: &str,
        windows: JoinWindows,
        joined: &StreamJoined<K, L, R>,
        joiner: StreamJoiner<K, L, R, O>,
    ) -> NodeId {
        let (this_name, other_name) = (this_store.to_string(), other_store.to_string());
        let key_serde = joined.key_serde.clone();
        let left_serde = joined.left_serde.clone();
        let right_serde = joined.right_serde.clone();
        let factory: OperatorFactory = Arc::new(move |stores| {
            Box::new(StreamStreamJoin {
                side,
                store_name: this_name.clone(),
                this_store: stores.window(&this_name),
                other_store: stores.window(&other_name),
                windows,
                key_serde: key_serde.clone(),
                left_serde: left_serde.clone(),
                right_serde: right_serde.clone(),
                joiner: joiner.clone(),
            })
        });
        let stores = vec![this_store.to_string(), other_store.to_string()];
        self.graph
            .borrow_mut()
            .add_node("JOIN-SIDE", &[self.node], factory, stores)
    }
}

/// A stream being split into named branches: [`KStream::split`], then
/// [`BranchedKStream::branch`] once per branch, then [`BranchedKStream::default_branch`]
/// or [`BranchedKStream::no_default_branch`] for the branches by name.
pub struct BranchedKStream<K, V> {
    stream: KStream<K, V>,
    branches: Vec<(String, Predicate<K, V>)>,
}

impl<K: Data, V: Data> BranchedKStream<K, V> {
    /// A branch `name` for the records `predicate` holds for, of those no earlier branch
    /// took. Names must differ within one split.
    pub fn branch(
        mut self,
        name: &str,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.branches.push((name.to_string(), Box::new(predicate)));
        self
    }

    /// The branches by name, and `name` for the records no branch took.
    pub fn default_branch(self, name: &str) -> BTreeMap<String, KStream<K, V>> {
        self.finish(Some(name))
    }

    /// The branches by name; records no branch took are dropped.
    pub fn no_default_branch(self) -> BTreeMap<String, KStream<K, V>> {
        self.finish(None)
    }

    /// The branches by name; a name used twice fails `build`.
    fn finish(self, default: Option<&str>) -> BTreeMap<String, KStream<K, V>> {
        let (mut names, predicates): (Vec<String>, Vec<Predicate<K, V>>) =
            self.branches.into_iter().unzip();
        names.extend(default.map(str::to_string));
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = names.iter().find(|name| !seen.insert(name.as_str())) {
            let error = TopologyError::DuplicateBranch(twice.clone());
            self.stream.graph.borrow_mut().fail(error);
        }
        let streams = self.stream.add_branches(predicates, default.is_some());
        names.into_iter().zip(streams).collect()
    }
}
