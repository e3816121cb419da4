//! Grouped streams and their aggregations: plain, time-windowed and session-windowed.

use std::sync::Arc;

use crate::builder::{Data, Graph};
use crate::graph::{NodeId, OperatorFactory};
use crate::operator::aggregate::{
    AggregateLogic, Aggregator, KeyValueAggregate, Merger, WindowClock,
};
use crate::operator::session_aggregate::SessionAggregate;
use crate::operator::sliding_aggregate::SlidingAggregate;
use crate::operator::window_aggregate::WindowAggregate;
use crate::serdes::{I64Serde, Serde, SharedSerde};
use crate::store::StoreKind;
use crate::stream::KStream;
use crate::table::{KTable, SessionTable, WindowedTable};
use crate::window::{Emit, SessionWindows, SlidingWindows, TimeWindows};

/// Serdes for a grouping (its repartition topic and stores) and an optional name.
pub struct Grouped<K, V> {
    pub(crate) key_serde: SharedSerde<K>,
    pub(crate) value_serde: SharedSerde<V>,
    pub(crate) name: Option<String>,
}

impl<K, V> Grouped<K, V> {
    /// Serdes for the grouped key and value.
    pub fn new(key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        Grouped {
            key_serde: Arc::new(key_serde),
            value_serde: Arc::new(value_serde),
            name: None,
        }
    }

    /// Names the repartition topic `<application>-<name>-repartition`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    pub(crate) fn repartition_name(&self, graph: &Graph) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("KSTREAM-AGGREGATE-{:010}", graph.borrow().nodes.len()),
        }
    }
}

/// A stream grouped by key, ready to aggregate.
pub struct KGroupedStream<K, V> {
    pub(crate) stream: KStream<K, V>,
    pub(crate) key_serde: SharedSerde<K>,
}

impl<K: Data, V: Data> KGroupedStream<K, V> {
    pub(crate) fn new(stream: KStream<K, V>, grouped: Grouped<K, V>) -> Self {
        KGroupedStream {
            stream,
            key_serde: grouped.key_serde,
        }
    }

    /// Records per key, in the store `store_name`.
    pub fn count(&self, store_name: &str) -> KTable<K, i64> {
        self.aggregate_with(store_name, Arc::new(I64Serde), count_aggregator())
    }

    /// Combines the values of each key with `reducer(aggregate, value)`; the first value is
    /// the first aggregate.
    pub fn reduce(
        &self,
        reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static,
        store_name: &str,
        value_serde: impl Serde<V>,
    ) -> KTable<K, V>
    where
        V: Clone,
    {
        self.aggregate_with(
            store_name,
            Arc::new(value_serde),
            reduce_aggregator(reducer),
        )
    }

    /// Folds the values of each key into `aggregator(key, value, aggregate)`, starting from
    /// `initializer()`.
    pub fn aggregate<A: Data>(
        &self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        store_name: &str,
        aggregate_serde: impl Serde<A>,
    ) -> KTable<K, A> {
        let aggregator = fold_aggregator(initializer, aggregator);
        self.aggregate_with(store_name, Arc::new(aggregate_serde), aggregator)
    }

    fn aggregate_with<A: Data>(
        &self,
        store_name: &str,
        aggregate_serde: SharedSerde<A>,
        aggregator: Aggregator<K, V, A>,
    ) -> KTable<K, A> {
        let logic = AggregateLogic {
            key_serde: self.key_serde.clone(),
            aggregate_serde: aggregate_serde.clone(),
            aggregator,
        };
        let name = store_name.to_string();
        let factory: OperatorFactory = Arc::new(move |stores| {
            Box::new(KeyValueAggregate {
                store_name: name.clone(),
                store: stores.key_value(&name),
                logic: logic.clone(),
                cache: stores.cache(&name),
            })
        });
        let kind = StoreKind::KeyValue;
        let node = add_aggregate_node(&self.stream, "AGGREGATE", store_name, kind, factory);
        KTable::new(
            self.stream.graph.clone(),
            node,
            self.key_serde.clone(),
            aggregate_serde,
            store_name,
        )
    }

    /// Aggregates per key and time window.
    pub fn windowed_by(&self, windows: TimeWindows) -> TimeWindowedStream<K, V> {
        TimeWindowedStream {
            stream: self.stream.clone(),
            key_serde: self.key_serde.clone(),
            windows,
            emit: Emit::OnUpdate,
        }
    }

    /// Aggregates per key and sliding window (KIP-450).
    pub fn sliding_windowed_by(&self, windows: SlidingWindows) -> SlidingWindowedStream<K, V> {
        SlidingWindowedStream {
            stream: self.stream.clone(),
            key_serde: self.key_serde.clone(),
            windows,
            emit: Emit::OnUpdate,
        }
    }

    /// Aggregates per key and session.
    pub fn session_windowed_by(&self, windows: SessionWindows) -> SessionWindowedStream<K, V> {
        SessionWindowedStream {
            stream: self.stream.clone(),
            key_serde: self.key_serde.clone(),
            windows,
            emit: Emit::OnUpdate,
        }
    }
}

/// Adds an aggregation node below `stream`, owning the store `store_name` it declares.
fn add_aggregate_node<K, V>(
    stream: &KStream<K, V>,
    operator: &str,
    store_name: &str,
    store: StoreKind,
    factory: OperatorFactory,
) -> NodeId {
    let mut builder = stream.graph.borrow_mut();
    let stores = vec![store_name.to_string()];
    let node = builder.add_node(operator, &[stream.node], factory, stores);
    builder.add_store(store_name, store, node);
    node
}

fn count_aggregator<K, V>() -> Aggregator<K, V, i64> {
    Arc::new(|_, _, count: Option<i64>| count.unwrap_or(0) + 1)
}

fn reduce_aggregator<K, V: Clone + 'static>(
    reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static,
) -> Aggregator<K, V, V> {
    Arc::new(move |_, value, aggregate: Option<V>| match aggregate {
        None => value.clone(),
        Some(aggregate) => reducer(&aggregate, value),
    })
}

pub(crate) fn fold_aggregator<K, V, A: 'static>(
    initializer: impl Fn() -> A + Send + Sync + 'static,
    aggregator: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
) -> Aggregator<K, V, A> {
    Arc::new(move |key, value, aggregate: Option<A>| {
        aggregator(key, value, aggregate.unwrap_or_else(&initializer))
    })
}

/// A grouped stream cut into time windows.
pub struct TimeWindowedStream<K, V> {
    stream: KStream<K, V>,
    key_serde: SharedSerde<K>,
    windows: TimeWindows,
    emit: Emit,
}

impl<K: Data + Clone, V: Data> TimeWindowedStream<K, V> {
    /// Emit every update (the default) or only final results when a window closes.
    pub fn emit(mut self, emit: Emit) -> Self {
        self.emit = emit;
        self
    }

    /// Records per key and window.
    pub fn count(&self, store_name: &str) -> WindowedTable<K, i64> {
        self.aggregate_with(store_name, Arc::new(I64Serde), count_aggregator())
    }

    /// Reduces values per key and window.
    pub fn reduce(
        &self,
        reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static,
        store_name: &str,
        value_serde: impl Serde<V>,
    ) -> WindowedTable<K, V>
    where
        V: Clone,
    {
        self.aggregate_with(
            store_name,
            Arc::new(value_serde),
            reduce_aggregator(reducer),
        )
    }

    /// Folds values per key and window, each window starting from `initializer()`.
    pub fn aggregate<A: Data>(
        &self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        store_name: &str,
        aggregate_serde: impl Serde<A>,
    ) -> WindowedTable<K, A> {
        let aggregator = fold_aggregator(initializer, aggregator);
        self.aggregate_with(store_name, Arc::new(aggregate_serde), aggregator)
    }

    fn aggregate_with<A: Data>(
        &self,
        store_name: &str,
        aggregate_serde: SharedSerde<A>,
        aggregator: Aggregator<K, V, A>,
    ) -> WindowedTable<K, A> {
        let logic = AggregateLogic {
            key_serde: self.key_serde.clone(),
            aggregate_serde: aggregate_serde.clone(),
            aggregator,
        };
        let (name, windows, emit) = (store_name.to_string(), self.windows, self.emit);
        let factory: OperatorFactory = Arc::new(move |stores| {
            let store = stores.window(&name);
            Box::new(WindowAggregate::new(
                name.clone(),
                store,
                windows,
                emit,
                logic.clone(),
                stores.cache(&name),
            ))
        });
        let kind = StoreKind::Window {
            retention_ms: windows.retention_ms(),
            keep_duplicates: false,
        };
        let node = add_aggregate_node(&self.stream, "WINDOW-AGGREGATE", store_name, kind, factory);
        WindowedTable::new(
            self.stream.graph.clone(),
            node,
            self.key_serde.clone(),
            aggregate_serde,
            store_name,
            windows.size_ms,
            windows.grace_ms,
        )
    }
}

/// A grouped stream cut into sliding windows: `[start, start + difference]`, both ends
/// inclusive, where records make them.
pub struct SlidingWindowedStream<K, V> {
    stream: KStream<K, V>,
    key_serde: SharedSerde<K>,
    windows: SlidingWindows,
    emit: Emit,
}

impl<K: Data + Clone, V: Data> SlidingWindowedStream<K, V> {
    /// Emit every update (the default) or only final results when a window closes.
    pub fn emit(mut self, emit: Emit) -> Self {
        self.emit = emit;
        self
    }

    /// Records per key and sliding window.
    pub fn count(&self, store_name: &str) -> WindowedTable<K, i64> {
        self.aggregate_with(store_name, Arc::new(I64Serde), count_aggregator())
    }

    /// Reduces values per key and sliding window.
    pub fn reduce(
        &self,
        reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static,
        store_name: &str,
        value_serde: impl Serde<V>,
    ) -> WindowedTable<K, V>
    where
        V: Clone,
    {
        self.aggregate_with(
            store_name,
            Arc::new(value_serde),
            reduce_aggregator(reducer),
        )
    }

    /// Folds values per key and sliding window, each window starting from `initializer()`.
    pub fn aggregate<A: Data>(
        &self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        store_name: &str,
        aggregate_serde: impl Serde<A>,
    ) -> WindowedTable<K, A> {
        let aggregator = fold_aggregator(initializer, aggregator);
        self.aggregate_with(store_name, Arc::new(aggregate_serde), aggregator)
    }

    fn aggregate_with<A: Data>(
        &self,
        store_name: &str,
        aggregate_serde: SharedSerde<A>,
        aggregator: Aggregator<K, V, A>,
    ) -> WindowedTable<K, A> {
        let logic = AggregateLogic {
            key_serde: self.key_serde.clone(),
            aggregate_serde: aggregate_serde.clone(),
            aggregator,
        };
        let (name, windows, emit) = (store_name.to_string(), self.windows, self.emit);
        let factory: OperatorFactory = Arc::new(move |stores| {
            Box::new(SlidingAggregate {
                store_name: name.clone(),
                store: stores.window(&name),
                windows,
                emit,
                logic: logic.clone(),
                clock: WindowClock::default(),
            })
        });
        let kind = StoreKind::Window {
            retention_ms: windows.retention_ms(),
            keep_duplicates: false,
        };
        let node = add_aggregate_node(&self.stream, "SLIDING-AGGREGATE", store_name, kind, factory);
        WindowedTable::new(
            self.stream.graph.clone(),
            node,
            self.key_serde.clone(),
            aggregate_serde,
            store_name,
            windows.time_difference_ms,
            windows.grace_ms.saturating_add(1),
        )
    }
}

/// A grouped stream cut into sessions.
pub struct SessionWindowedStream<K, V> {
    stream: KStream<K, V>,
    key_serde: SharedSerde<K>,
    windows: SessionWindows,
    emit: Emit,
}

impl<K: Data + Clone, V: Data> SessionWindowedStream<K, V> {
    /// Emit every update (the default) or only final results when a session closes.
    pub fn emit(mut self, emit: Emit) -> Self {
        self.emit = emit;
        self
    }

    /// Records per key and session.
    pub fn count(&self, store_name: &str) -> SessionTable<K, i64> {
        let merger: Merger<K, i64> = Arc::new(|_, a, b| a + b);
        self.aggregate_with(store_name, Arc::new(I64Serde), count_aggregator(), merger)
    }

    /// Folds values per key and session; `merger` combines two sessions' aggregates when a
    /// record bridges them.
    pub fn aggregate<A: Data>(
        &self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        merger: impl Fn(&K, A, A) -> A + Send + Sync + 'static,
        store_name: &str,
        aggregate_serde: impl Serde<A>,
    ) -> SessionTable<K, A> {
        let aggregator = fold_aggregator(initializer, aggregator);
        self.aggregate_with(
            store_name,
            Arc::new(aggregate_serde),
            aggregator,
            Arc::new(merger),
        )
    }

    fn aggregate_with<A: Data>(
        &self,
        store_name: &str,
        aggregate_serde: SharedSerde<A>,
        aggregator: Aggregator<K, V, A>,
        merger: Merger<K, A>,
    ) -> SessionTable<K, A> {
        let logic = AggregateLogic {
            key_serde: self.key_serde.clone(),
            aggregate_serde: aggregate_serde.clone(),
            aggregator,
        };
        let (name, windows, emit) = (store_name.to_string(), self.windows, self.emit);
        let factory: OperatorFactory = Arc::new(move |stores| {
            Box::new(SessionAggregate {
                store_name: name.clone(),
                store: stores.session(&name),
                windows,
                emit,
                logic: logic.clone(),
                merger: merger.clone(),
                clock: WindowClock::default(),
            })
        });
        let kind = StoreKind::Session {
            retention_ms: windows.gap_ms.saturating_add(windows.grace_ms),
        };
        let node = add_aggregate_node(&self.stream, "SESSION-AGGREGATE", store_name, kind, factory);
        // A session closes once stream time passes its inclusive end plus gap plus grace.
        let close_delay_ms = windows
            .gap_ms
            .saturating_add(windows.grace_ms)
            .saturating_add(1);
        SessionTable::new(
            self.stream.graph.clone(),
            node,
            self.key_serde.clone(),
            aggregate_serde,
            store_name,
            close_delay_ms,
        )
    }
}
