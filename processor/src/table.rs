//! Tables: the latest value per key (from a compacted topic or an aggregation), and the
//! windowed and session tables that windowed aggregations produce.

use std::sync::Arc;

use crate::builder::{Data, Graph};
use crate::graph::{Ctx, Msg, NodeId, OperatorFactory};
use crate::materialized::{Materialized, require_serde};
use crate::operator::stateless::Stateless;
use crate::operator::stream_join::JoinSide;
use crate::operator::suppress::BufferTime;
use crate::operator::table_table_join::{
    JoinedTable, TableJoinInput, TableJoinKind, TableTableJoin, TableTableJoiner,
};
use crate::operator::table_transform::{TableMaterialization, TableTransform, TableTransformFn};
use crate::record::OutputKind;
use crate::serdes::{Serde, SharedSerde};
use crate::serdes::{WindowedLayout, WindowedSerde};
use crate::store::StoreKind;
use crate::store::codec::StoreCodec;
use crate::store::query::{KeyValueStoreHandle, SessionStoreHandle, WindowStoreHandle};
use crate::stream::KStream;
use crate::suppressed::{SuppressInput, Suppressed, SuppressedKTable, add_suppress};
use crate::topology::TopologyError;
use crate::window::Windowed;

/// Adds a node that forwards only updates with a value (tombstones stop here).
pub(crate) fn drop_tombstones<K: Data, V: Data>(graph: &Graph, node: NodeId) -> KStream<K, V> {
    let logic = Arc::new(|ctx: &mut Ctx<'_>, msg: Msg| {
        if msg.value.is_some() {
            ctx.forward(msg);
        }
    });
    let factory: OperatorFactory = Arc::new(move |_| {
        Box::new(Stateless {
            logic: logic.clone(),
        })
    });
    let node = graph
        .borrow_mut()
        .add_node("TOSTREAM", &[node], factory, Vec::new());
    KStream::new(graph.clone(), node, false)
}

/// Writes every update of a table to `topic`, deletions as tombstones.
pub(crate) fn table_sink<K: Data, V: Data>(
    graph: &Graph,
    node: NodeId,
    topic: &str,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
) {
    let all_updates: KStream<K, V> = KStream::new(graph.clone(), node, false);
    all_updates.sink(topic, key_serde, value_serde, None, OutputKind::Sink);
}

/// Adds a node that tags each update of the table at `node` with `side`, so one join
/// operator can take both tables' updates.
fn tag_table_side(graph: &Graph, node: NodeId, side: JoinSide) -> NodeId {
    let logic = Arc::new(move |ctx: &mut Ctx<'_>, msg: Msg| {
        let input = TableJoinInput {
            side,
            value: msg.value.clone(),
        };
        ctx.forward(Msg {
            value: Some(Arc::new(input)),
            ..msg
        });
    });
    let factory: OperatorFactory = Arc::new(move |_| {
        Box::new(Stateless {
            logic: logic.clone(),
        })
    });
    let kind = match side {
        JoinSide::Left => "KTABLE-JOINTHIS",
        JoinSide::Right => "KTABLE-JOINOTHER",
    };
    graph
        .borrow_mut()
        .add_node(kind, &[node], factory, Vec::new())
}

/// A filter as a transform: the value when `predicate` holds, otherwise a deletion.
fn filter_transform<K, V: Clone + 'static>(
    predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
) -> TableTransformFn<K, V, V> {
    Arc::new(move |key, value| predicate(key, value).then(|| value.clone()))
}

/// The latest value per key.
pub struct KTable<K, V> {
    pub(crate) graph: Graph,
    pub(crate) node: NodeId,
    pub(crate) key_serde: SharedSerde<K>,
    pub(crate) value_serde: SharedSerde<V>,
    /// `None` for a table computed from another without a store of its own.
    pub(crate) store_name: Option<String>,
}

impl<K: Data, V: Data> KTable<K, V> {
    pub(crate) fn new(
        graph: Graph,
        node: NodeId,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        store_name: &str,
    ) -> Self {
        let codec = StoreCodec::new(key_serde.clone(), value_serde.clone());
        graph.borrow_mut().set_store_codec(store_name, codec);
        KTable {
            graph,
            node,
            key_serde,
            value_serde,
            store_name: Some(store_name.to_string()),
        }
    }

    /// The table's store, for an operation that reads it by key; a table without one
    /// makes `build` fail (and gives an empty name meanwhile).
    pub(crate) fn require_store(&self, operation: &str) -> String {
        if let Some(name) = &self.store_name {
            return name.clone();
        }
        let message = format!(
            "{operation} needs a materialized table: use filter_materialized or map_values_materialized"
        );
        let mut graph = self.graph.borrow_mut();
        graph.fail(TopologyError::NotMaterialized(message));
        String::new()
    }

    /// The rows for which `predicate` holds; an update that fails it deletes its key
    /// downstream. Not materialized: it cannot be joined or queried.
    pub fn filter(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self
    where
        V: Clone,
    {
        let transform = filter_transform(predicate);
        self.transform("TABLE-FILTER", transform, self.value_serde.clone(), None)
    }

    /// The rows for which `predicate` is false; not materialized.
    pub fn filter_not(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self
    where
        V: Clone,
    {
        self.filter(move |key, value| !predicate(key, value))
    }

    /// [`KTable::filter`] into the store `materialized` names, so the result can be joined
    /// and queried; only keys the store held are deleted downstream. The store's serdes
    /// default to this table's.
    pub fn filter_materialized(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        materialized: impl Into<Materialized<K, V>>,
    ) -> Self
    where
        V: Clone,
    {
        let transform = filter_transform(predicate);
        let materialized = materialized.into();
        let value_serde = materialized.value_serde.clone();
        let value_serde = value_serde.unwrap_or_else(|| self.value_serde.clone());
        self.transform("TABLE-FILTER", transform, value_serde, Some(materialized))
    }

    /// A new value for each row; deletions stay deletions. `value_serde` serves later
    /// stateful operators (suppress). Not materialized: it cannot be joined or queried.
    pub fn map_values<V2: Data>(
        &self,
        mapper: impl Fn(&V) -> V2 + Send + Sync + 'static,
        value_serde: impl Serde<V2>,
    ) -> KTable<K, V2> {
        let transform: TableTransformFn<K, V, V2> = Arc::new(move |_, value| Some(mapper(value)));
        self.transform("TABLE-MAPVALUES", transform, Arc::new(value_serde), None)
    }

    /// [`KTable::map_values`] into the store `materialized` names, so the result can be
    /// joined and queried; `materialized` needs the new values' serde
    /// ([`Materialized::with_value_serde`]).
    pub fn map_values_materialized<V2: Data>(
        &self,
        mapper: impl Fn(&V) -> V2 + Send + Sync + 'static,
        materialized: impl Into<Materialized<K, V2>>,
    ) -> KTable<K, V2> {
        let transform: TableTransformFn<K, V, V2> = Arc::new(move |_, value| Some(mapper(value)));
        let materialized = materialized.into();
        let value_serde = require_serde(&self.graph, materialized.value_serde.clone(), || {
            "a materialized map_values needs Materialized::with_value_serde".to_string()
        });
        self.transform(
            "TABLE-MAPVALUES",
            transform,
            value_serde,
            Some(materialized),
        )
    }

    /// Adds a table transform node, with its store when `materialized` is given.
    fn transform<V2: Data>(
        &self,
        kind: &str,
        transform: TableTransformFn<K, V, V2>,
        value_serde: SharedSerde<V2>,
        materialized: Option<Materialized<K, V2>>,
    ) -> KTable<K, V2> {
        let store_name = materialized
            .as_ref()
            .map(|m| m.resolve_name(&self.graph.borrow(), kind));
        let key_serde = materialized.as_ref().and_then(|m| m.key_serde.clone());
        // The result's key serde is its store's, which joins and queries read with.
        let table_key_serde = key_serde.unwrap_or_else(|| self.key_serde.clone());
        let (name, key_serde) = (store_name.clone(), table_key_serde.clone());
        let serde = value_serde.clone();
        let factory: OperatorFactory = Arc::new(move |stores| {
            let materialization = name.as_ref().map(|name| TableMaterialization {
                store_name: name.clone(),
                store: stores.key_value(name),
                key_serde: key_serde.clone(),
                value_serde: serde.clone(),
            });
            Box::new(TableTransform {
                transform: transform.clone(),
                materialization,
            })
        });
        let stores: Vec<String> = store_name.iter().cloned().collect();
        let mut graph = self.graph.borrow_mut();
        let node = graph.add_node(kind, &[self.node], factory, stores);
        if let (Some(name), Some(materialized)) = (&store_name, &materialized) {
            graph.add_store(name, StoreKind::KeyValue, node);
            graph.configure_store(name, &materialized.options);
            let codec = StoreCodec::new(table_key_serde.clone(), value_serde.clone());
            graph.set_store_codec(name, codec);
        }
        drop(graph);
        KTable {
            graph: self.graph.clone(),
            node,
            key_serde: table_key_serde,
            value_serde,
            store_name,
        }
    }

    /// Inner join with another table of the same key: a row `joiner(key, left, right)`
    /// while both sides have one, a deletion when an update deletes one of them. Both
    /// tables need a store; `value_serde` serves the operators after it. The result has
    /// no store of its own.
    pub fn join<V2: Data, R: Data>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(&K, &V, &V2) -> R + Send + Sync + 'static,
        value_serde: impl Serde<R>,
    ) -> KTable<K, R> {
        let joiner: TableTableJoiner<K, V, V2, R> =
            Arc::new(move |key, left, right| Some(joiner(key, left?, right?)));
        self.table_join(TableJoinKind::Inner, other, joiner, Arc::new(value_serde))
    }

    /// Left join with another table: every left row gives `joiner(key, left, right or
    /// None)`; right updates only change rows whose left side exists.
    pub fn left_join<V2: Data, R: Data>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(&K, &V, Option<&V2>) -> R + Send + Sync + 'static,
        value_serde: impl Serde<R>,
    ) -> KTable<K, R> {
        let joiner: TableTableJoiner<K, V, V2, R> =
            Arc::new(move |key, left, right| Some(joiner(key, left?, right)));
        self.table_join(TableJoinKind::Left, other, joiner, Arc::new(value_serde))
    }

    /// Outer join with another table: `joiner(key, left, right)` while either side has a
    /// row, a deletion once both are gone.
    pub fn outer_join<V2: Data, R: Data>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(&K, Option<&V>, Option<&V2>) -> R + Send + Sync + 'static,
        value_serde: impl Serde<R>,
    ) -> KTable<K, R> {
        let joiner: TableTableJoiner<K, V, V2, R> =
            Arc::new(move |key, left, right| Some(joiner(key, left, right)));
        self.table_join(TableJoinKind::Outer, other, joiner, Arc::new(value_serde))
    }

    fn table_join<V2: Data, R: Data>(
        &self,
        kind: TableJoinKind,
        other: &KTable<K, V2>,
        joiner: TableTableJoiner<K, V, V2, R>,
        value_serde: SharedSerde<R>,
    ) -> KTable<K, R> {
        let left_store = self.require_store("a table-table join");
        let right_store = other.require_store("a table-table join");
        let (key_serde, left_serde) = (self.key_serde.clone(), self.value_serde.clone());
        let right_serde = other.value_serde.clone();
        let (left_name, right_name) = (left_store.clone(), right_store.clone());
        let factory: OperatorFactory = Arc::new(move |stores| {
            Box::new(TableTableJoin {
                kind,
                key_serde: key_serde.clone(),
                left: JoinedTable {
                    store_name: left_name.clone(),
                    store: stores.key_value(&left_name),
                    value_serde: left_serde.clone(),
                },
                right: JoinedTable {
                    store_name: right_name.clone(),
                    store: stores.key_value(&right_name),
                    value_serde: right_serde.clone(),
                },
                joiner: joiner.clone(),
            })
        });
        let parents = [
            tag_table_side(&self.graph, self.node, JoinSide::Left),
            tag_table_side(&self.graph, other.node, JoinSide::Right),
        ];
        let name = match kind {
            TableJoinKind::Inner => "KTABLE-JOIN",
            TableJoinKind::Left => "KTABLE-LEFTJOIN",
            TableJoinKind::Outer => "KTABLE-OUTERJOIN",
        };
        let stores = vec![left_store, right_store];
        let node = self
            .graph
            .borrow_mut()
            .add_node(name, &parents, factory, stores);
        KTable {
            graph: self.graph.clone(),
            node,
            key_serde: self.key_serde.clone(),
            value_serde,
            store_name: None,
        }
    }

    /// The stream of this table's updates; deletions are left out.
    pub fn to_stream(&self) -> KStream<K, V> {
        let serdes = (Some(self.key_serde.clone()), Some(self.value_serde.clone()));
        drop_tombstones(&self.graph, self.node).with_serdes(serdes.0, serdes.1)
    }

    /// Writes every update to `topic`, deletions as tombstones.
    pub fn to(&self, topic: &str, key_serde: impl Serde<K>, value_serde: impl Serde<V>) {
        table_sink(
            &self.graph,
            self.node,
            topic,
            Arc::new(key_serde),
            Arc::new(value_serde),
        );
    }

    /// Holds updates back as `suppressed` says: with
    /// [`Suppressed::until_time_limit`], each key's latest value at most once per time
    /// limit of stream time.
    pub fn suppress(&self, suppressed: Suppressed) -> SuppressedKTable<K, V> {
        let input = SuppressInput {
            graph: self.graph.clone(),
            parent: self.node,
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            windows: None,
        };
        add_suppress(input, suppressed)
    }

    /// A handle for reading the table's store from the host program; a table without a
    /// store (an unmaterialized `filter` or `map_values`) makes `build` fail.
    pub fn store(&self) -> KeyValueStoreHandle<K, V> {
        KeyValueStoreHandle {
            name: self.require_store("a store query"),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
        }
    }
}

/// The aggregate per key and time window.
pub struct WindowedKTable<K, V> {
    graph: Graph,
    node: NodeId,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
    store_name: String,
    size_ms: i64,
    /// How long after a window's end it closes: grace, plus 1 ms where the end is
    /// inclusive (sliding windows).
    close_delay_ms: i64,
}

impl<K: Data + Clone, V: Data> WindowedKTable<K, V> {
    pub(crate) fn new(
        graph: Graph,
        node: NodeId,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        store_name: &str,
        size_ms: i64,
        close_delay_ms: i64,
    ) -> Self {
        let codec = StoreCodec::windowed(key_serde.clone(), value_serde.clone(), size_ms);
        graph.borrow_mut().set_store_codec(store_name, codec);
        WindowedKTable {
            graph,
            node,
            key_serde,
            value_serde,
            store_name: store_name.to_string(),
            size_ms,
            close_delay_ms,
        }
    }

    /// Holds updates back as `suppressed` says: with [`Suppressed::until_window_closes`],
    /// each window's final result once, when stream time reaches its end plus grace (past
    /// it, for sliding windows, whose end is inclusive).
    pub fn suppress(&self, suppressed: Suppressed) -> SuppressedKTable<Windowed<K>, V> {
        let window_end: BufferTime<Windowed<K>> =
            Arc::new(|window: &Windowed<K>, _timestamp_ms: i64| window.end_ms);
        let input = SuppressInput {
            graph: self.graph.clone(),
            parent: self.node,
            key_serde: Arc::new(self.windowed_key_serde(self.key_serde.clone())),
            value_serde: self.value_serde.clone(),
            windows: Some((window_end, self.close_delay_ms)),
        };
        let mut table = add_suppress(input, suppressed);
        table.windowed_layout = Some(WindowedLayout::Time {
            size_ms: self.size_ms,
        });
        table
    }

    /// The stream of window updates (or final results, with `Emit::OnWindowClose`). It
    /// knows its serdes: the windowed key serde of this table's key serde and window size.
    pub fn to_stream(&self) -> KStream<Windowed<K>, V> {
        let key_serde: SharedSerde<Windowed<K>> =
            Arc::new(self.windowed_key_serde(self.key_serde.clone()));
        drop_tombstones(&self.graph, self.node)
            .with_serdes(Some(key_serde), Some(self.value_serde.clone()))
    }

    /// A serde for this table's windowed keys, writing keys with `key_serde` and reading
    /// window ends with this table's window size: for `to` after `to_stream`.
    pub fn windowed_key_serde(&self, key_serde: impl Serde<K>) -> WindowedSerde<K> {
        WindowedSerde::time_ms(key_serde, self.size_ms)
    }

    /// Writes every window update to `topic`: keys with `key_serde` and the window (see
    /// [`WindowedSerde`]), values with `value_serde`.
    pub fn to(&self, topic: &str, key_serde: impl Serde<K>, value_serde: impl Serde<V>) {
        let key_serde = Arc::new(self.windowed_key_serde(key_serde));
        let value_serde = Arc::new(value_serde);
        table_sink(&self.graph, self.node, topic, key_serde, value_serde);
    }

    /// A handle for reading the window store from the host program.
    pub fn store(&self) -> WindowStoreHandle<K, V> {
        WindowStoreHandle {
            name: self.store_name.clone(),
            size_ms: self.size_ms,
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
        }
    }
}

/// The aggregate per key and session.
pub struct SessionKTable<K, V> {
    graph: Graph,
    node: NodeId,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
    store_name: String,
    /// How long after a session's end it closes: gap plus grace plus 1 ms (the end is
    /// inclusive).
    close_delay_ms: i64,
}

impl<K: Data + Clone, V: Data> SessionKTable<K, V> {
    pub(crate) fn new(
        graph: Graph,
        node: NodeId,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        store_name: &str,
        close_delay_ms: i64,
    ) -> Self {
        let codec = StoreCodec::new(key_serde.clone(), value_serde.clone());
        graph.borrow_mut().set_store_codec(store_name, codec);
        SessionKTable {
            graph,
            node,
            key_serde,
            value_serde,
            store_name: store_name.to_string(),
            close_delay_ms,
        }
    }

    /// Holds updates back as `suppressed` says: with [`Suppressed::until_window_closes`],
    /// each session's final result once, when stream time passes its end plus gap plus
    /// grace; sessions merged into others are not emitted.
    pub fn suppress(&self, suppressed: Suppressed) -> SuppressedKTable<Windowed<K>, V> {
        let session_end: BufferTime<Windowed<K>> =
            Arc::new(|session: &Windowed<K>, _timestamp_ms: i64| session.end_ms);
        let key_serde = WindowedSerde::session(self.key_serde.clone());
        let input = SuppressInput {
            graph: self.graph.clone(),
            parent: self.node,
            key_serde: Arc::new(key_serde),
            value_serde: self.value_serde.clone(),
            windows: Some((session_end, self.close_delay_ms)),
        };
        let mut table = add_suppress(input, suppressed);
        table.windowed_layout = Some(WindowedLayout::Session);
        table
    }

    /// The stream of session updates; the deletions of merged sessions are left out. It
    /// knows its serdes: the session key serde of this table's key serde.
    pub fn to_stream(&self) -> KStream<Windowed<K>, V> {
        let key_serde: SharedSerde<Windowed<K>> =
            Arc::new(WindowedSerde::session(self.key_serde.clone()));
        drop_tombstones(&self.graph, self.node)
            .with_serdes(Some(key_serde), Some(self.value_serde.clone()))
    }

    /// Writes every session update to `topic`, merged-away sessions as tombstones: keys
    /// with `key_serde` and the session (see [`WindowedSerde::session`]), values with
    /// `value_serde`.
    pub fn to(&self, topic: &str, key_serde: impl Serde<K>, value_serde: impl Serde<V>) {
        table_sink(
            &self.graph,
            self.node,
            topic,
            Arc::new(WindowedSerde::session(key_serde)),
            Arc::new(value_serde),
        );
    }

    /// A handle for reading the session store from the host program.
    pub fn store(&self) -> SessionStoreHandle<K, V> {
        SessionStoreHandle {
            name: self.store_name.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
        }
    }
}
