//! Tables: the latest value per key (from a compacted topic or an aggregation), and the
//! windowed and session tables that windowed aggregations produce.

use std::sync::Arc;

use crate::builder::{Data, Graph};
use crate::graph::{Ctx, Msg, NodeId, OperatorFactory};
use crate::operator::stateless::Stateless;
use crate::operator::suppress::BufferTime;
use crate::record::OutputKind;
use crate::serdes::WindowedSerde;
use crate::serdes::{Serde, SharedSerde};
use crate::store::query::{KeyValueStoreHandle, SessionStoreHandle, WindowStoreHandle};
use crate::stream::KStream;
use crate::suppressed::{SuppressInput, Suppressed, SuppressedTable, add_suppress};
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

/// The latest value per key.
pub struct KTable<K, V> {
    pub(crate) graph: Graph,
    pub(crate) node: NodeId,
    pub(crate) key_serde: SharedSerde<K>,
    pub(crate) value_serde: SharedSerde<V>,
    pub(crate) store_name: String,
}

impl<K: Data, V: Data> KTable<K, V> {
    pub(crate) fn new(
        graph: Graph,
        node: NodeId,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        store_name: &str,
    ) -> Self {
        KTable {
            graph,
            node,
            key_serde,
            value_serde,
            store_name: store_name.to_string(),
        }
    }

    /// The stream of this table's updates; deletions are left out.
    pub fn to_stream(&self) -> KStream<K, V> {
        drop_tombstones(&self.graph, self.node)
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
    pub fn suppress(&self, suppressed: Suppressed) -> SuppressedTable<K, V> {
        let input = SuppressInput {
            graph: self.graph.clone(),
            parent: self.node,
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            windows: None,
        };
        add_suppress(input, suppressed)
    }

    /// A handle for reading the table's store from the host program.
    pub fn store(&self) -> KeyValueStoreHandle<K, V> {
        KeyValueStoreHandle {
            name: self.store_name.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
        }
    }
}

/// The aggregate per key and time window.
pub struct WindowedTable<K, V> {
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

impl<K: Data + Clone, V: Data> WindowedTable<K, V> {
    pub(crate) fn new(
        graph: Graph,
        node: NodeId,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        store_name: &str,
        size_ms: i64,
        close_delay_ms: i64,
    ) -> Self {
        WindowedTable {
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
    pub fn suppress(&self, suppressed: Suppressed) -> SuppressedTable<Windowed<K>, V> {
        let window_end: BufferTime<Windowed<K>> =
            Arc::new(|window: &Windowed<K>, _timestamp_ms: i64| window.end_ms);
        let key_serde = WindowedSerde::time(self.key_serde.clone(), self.size_ms);
        let input = SuppressInput {
            graph: self.graph.clone(),
            parent: self.node,
            key_serde: Arc::new(key_serde),
            value_serde: self.value_serde.clone(),
            windows: Some((window_end, self.close_delay_ms)),
        };
        add_suppress(input, suppressed)
    }

    /// The stream of window updates (or final results, with `Emit::OnWindowClose`).
    pub fn to_stream(&self) -> KStream<Windowed<K>, V> {
        drop_tombstones(&self.graph, self.node)
    }

    /// Writes every window update to `topic` (with a [`crate::WindowedSerde`] key).
    pub fn to(&self, topic: &str, key_serde: impl Serde<Windowed<K>>, value_serde: impl Serde<V>) {
        let (key_serde, value_serde) = (Arc::new(key_serde), Arc::new(value_serde));
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
pub struct SessionTable<K, V> {
    graph: Graph,
    node: NodeId,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
    store_name: String,
}

impl<K: Data + Clone, V: Data> SessionTable<K, V> {
    pub(crate) fn new(
        graph: Graph,
        node: NodeId,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        store_name: &str,
    ) -> Self {
        SessionTable {
            graph,
            node,
            key_serde,
            value_serde,
            store_name: store_name.to_string(),
        }
    }

    /// The stream of session updates; the deletions of merged sessions are left out.
    pub fn to_stream(&self) -> KStream<Windowed<K>, V> {
        drop_tombstones(&self.graph, self.node)
    }

    /// Writes every session update to `topic`, merged-away sessions as tombstones.
    pub fn to(&self, topic: &str, key_serde: impl Serde<Windowed<K>>, value_serde: impl Serde<V>) {
        table_sink(
            &self.graph,
            self.node,
            topic,
            Arc::new(key_serde),
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
