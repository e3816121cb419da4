//! Grouped streams and their aggregations: plain, time-windowed (tumbling, hopping and
//! sliding windows) and session-windowed.

use std::sync::Arc;

use crate::builder::Data;
use crate::graph::{NodeId, OperatorFactory};
use crate::materialized::{Materialized, require_serde};
use crate::operator::aggregate::{
    AggregateLogic, Aggregator, KeyValueAggregate, Merger, WindowClock,
};
use crate::operator::session_aggregate::SessionAggregate;
use crate::operator::sliding_aggregate::SlidingAggregate;
use crate::operator::window_aggregate::WindowAggregate;
use crate::serdes::{I64Serde, Serde, SharedSerde};
use crate::store::StoreKind;
use crate::stream::KStream;
use crate::table::{KTable, SessionKTable, WindowedKTable};
use crate::window::{Emit, SessionWindows, SlidingWindows, TimeWindows};

/// Serdes for a grouping (its repartition topic and stores) and an optional name.
///
/// Only a grouping that repartitions needs both serdes; a store needs the key serde.
/// Where the stream knows its serdes (read from a topic, or through a repartition, and
/// not re-keyed or re-valued since), they are the defaults.
pub struct Grouped<K, V> {
    pub(crate) key_serde: Option<SharedSerde<K>>,
    pub(crate) value_serde: Option<SharedSerde<V>>,
    pub(crate) name: Option<String>,
}

impl<K, V> Default for Grouped<K, V> {
    fn default() -> Self {
        Grouped {
            key_serde: None,
            value_serde: None,
            name: None,
        }
    }
}

impl<K, V> Grouped<K, V> {
    /// Serdes for the grouped key and value.
    pub fn new(key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        Grouped::key_serde(key_serde).with_value_serde(value_serde)
    }

    /// A serde for the grouped key only: enough when nothing repartitions.
    pub fn key_serde(key_serde: impl Serde<K>) -> Self {
        Grouped {
            key_serde: Some(Arc::new(key_serde)),
            ..Grouped::default()
        }
    }

    /// The serde of the values, for the repartition topic.
    pub fn with_value_serde(mut self, value_serde: impl Serde<V>) -> Self {
        self.value_serde = Some(Arc::new(value_serde));
        self
    }

    /// Names the repartition topic `<application>-<name>-repartition`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    pub(crate) fn repartition_name(&self, graph: &crate::builder::Graph) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("KSTREAM-AGGREGATE-{:010}", graph.borrow().nodes.len()),
        }
    }
}

/// A stream grouped by key, ready to aggregate.
pub struct KGroupedStream<K, V> {
    pub(crate) stream: KStream<K, V>,
    /// The grouping's key serde, where known: stores may name their own.
    pub(crate) key_serde: Option<SharedSerde<K>>,
    /// The values' serde, where known: `reduce` stores values.
    pub(crate) value_serde: Option<SharedSerde<V>>,
}

/// What an aggregation's store is, after its `Materialized` and the grouping's serdes.
pub(crate) struct ResolvedStore<K, A> {
    pub name: String,
    pub key_serde: SharedSerde<K>,
    pub value_serde: SharedSerde<A>,
    pub materialized: Materialized<K, A>,
}

/// An aggregation's store: its name (given or generated) and serdes (the `Materialized`'s,
/// else the defaults; a missing one fails `build`).
pub(crate) fn resolve_store<K: 'static, V, A: 'static>(
    stream: &KStream<K, V>,
    materialized: Materialized<K, A>,
    default_key_serde: Option<SharedSerde<K>>,
    default_value_serde: Option<SharedSerde<A>>,
    operator: &str,
) -> ResolvedStore<K, A> {
    let name = materialized.resolve_name(&stream.graph.borrow(), operator);
    let key_serde = materialized.key_serde.clone().or(default_key_serde);
    let key_serde = require_serde(&stream.graph, key_serde, || {
        format!(
            "store {name:?} needs a key serde: give one with group_by_key_with(Grouped::key_serde(..)) or Materialized::with_key_serde"
        )
    });
    let value_serde = materialized.value_serde.clone().or(default_value_serde);
    let value_serde = require_serde(&stream.graph, value_serde, || {
        format!("store {name:?} needs a value serde: give one with Materialized::with_value_serde")
    });
    ResolvedStore {
        name,
        key_serde,
        value_serde,
        materialized,
    }
}

impl<K: Data, V: Data> KGroupedStream<K, V> {
    pub(crate) fn new(
        stream: KStream<K, V>,
        key_serde: Option<SharedSerde<K>>,
        value_serde: Option<SharedSerde<V>>,
    ) -> Self {
        KGroupedStream {
            stream,
            key_serde,
            value_serde,
        }
    }

    /// Records per key, in the store `materialized` names (or a generated one).
    pub fn count(&self, materialized: impl Into<Materialized<K, i64>>) -> KTable<K, i64> {
        let default_serde: SharedSerde<i64> = Arc::new(I64Serde);
        self.aggregate_with(materialized.into(), Some(default_serde), count_aggregator())
    }

    /// Combines the values of each key with `reducer(aggregate, value)`; the first value is
    /// the first aggregate. The store's value serde defaults to the grouping's.
    pub fn reduce(
        &self,
        reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static,
        materialized: impl Into<Materialized<K, V>>,
    ) -> KTable<K, V>
    where
        V: Clone,
    {
        let default_serde = self.value_serde.clone();
        let aggregator = reduce_aggregator(reducer);
        self.aggregate_with(materialized.into(), default_serde, aggregator)
    }

    /// Folds the values of each key into `aggregator(key, value, aggregate)`, starting from
    /// `initializer()`. `materialized` needs the aggregate's serde
    /// ([`Materialized::with_value_serde`]).
    pub fn aggregate<A: Data>(
        &self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        materialized: impl Into<Materialized<K, A>>,
    ) -> KTable<K, A> {
        let aggregator = fold_aggregator(initializer, aggregator);
        self.aggregate_with(materialized.into(), None, aggregator)
    }

    fn aggregate_with<A: Data>(
        &self,
        materialized: Materialized<K, A>,
        default_value_serde: Option<SharedSerde<A>>,
        aggregator: Aggregator<K, V, A>,
    ) -> KTable<K, A> {
        let store = resolve_store(
            &self.stream,
            materialized,
            self.key_serde.clone(),
            default_value_serde,
            "AGGREGATE",
        );
        let logic = AggregateLogic {
            key_serde: store.key_serde.clone(),
            aggregate_serde: store.value_serde.clone(),
            aggregator,
        };
        let name = store.name.clone();
        let factory: OperatorFactory = Arc::new(move |stores| {
            Box::new(KeyValueAggregate {
                store_name: name.clone(),
                store: stores.key_value(&name),
                logic: logic.clone(),
                cache: stores.cache(&name),
            })
        });
        let kind = StoreKind::KeyValue;
        let node = add_aggregate_node(&self.stream, "AGGREGATE", &store, kind, factory);
        KTable::new(
            self.stream.graph.clone(),
            node,
            store.key_serde,
            store.value_serde,
            &store.name,
        )
    }

    /// Aggregates per key and window: tumbling or hopping ([`TimeWindows`]) or sliding
    /// ([`SlidingWindows`], KIP-450).
    pub fn windowed_by<W: Windows>(&self, windows: W) -> TimeWindowedKStream<K, V, W> {
        TimeWindowedKStream {
            grouped: self.clone_grouping(),
            windows,
            emit: Emit::OnUpdate,
        }
    }

    /// Aggregates per key and session.
    pub fn session_windowed_by(&self, windows: SessionWindows) -> SessionWindowedKStream<K, V> {
        SessionWindowedKStream {
            grouped: self.clone_grouping(),
            windows,
            emit: Emit::OnUpdate,
        }
    }

    fn clone_grouping(&self) -> KGroupedStream<K, V> {
        KGroupedStream {
            stream: self.stream.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
        }
    }
}

/// Adds an aggregation node below `stream`, owning the store it declares and configures.
fn add_aggregate_node<K, V, A>(
    stream: &KStream<K, V>,
    operator: &str,
    store: &ResolvedStore<K, A>,
    kind: StoreKind,
    factory: OperatorFactory,
) -> NodeId {
    let mut builder = stream.graph.borrow_mut();
    let stores = vec![store.name.clone()];
    let node = builder.add_node(operator, &[stream.node], factory, stores);
    builder.add_store(&store.name, kind, node);
    builder.configure_store(&store.name, &store.materialized.options);
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

mod sealed {
    use crate::window::{SlidingWindows, TimeWindows};

    /// Keeps [`super::Windows`] to the window kinds the crate has operators for.
    pub trait Sealed {
        fn window_kind(&self) -> WindowKind;
    }

    /// One of the window kinds, for the operator that aggregates in it.
    #[derive(Clone, Copy)]
    pub enum WindowKind {
        Time(TimeWindows),
        Sliding(SlidingWindows),
    }
}

use sealed::WindowKind;

/// The windows a [`TimeWindowedKStream`] aggregates in: [`TimeWindows`] (tumbling or
/// hopping) or [`SlidingWindows`].
pub trait Windows: sealed::Sealed + Copy + Send + Sync + 'static {}

impl Windows for TimeWindows {}
impl Windows for SlidingWindows {}

impl sealed::Sealed for TimeWindows {
    fn window_kind(&self) -> WindowKind {
        WindowKind::Time(*self)
    }
}

impl sealed::Sealed for SlidingWindows {
    fn window_kind(&self) -> WindowKind {
        WindowKind::Sliding(*self)
    }
}

impl WindowKind {
    fn retention_ms(self) -> i64 {
        match self {
            WindowKind::Time(windows) => windows.retention_ms(),
            WindowKind::Sliding(windows) => windows.retention_ms(),
        }
    }

    /// The window length, as window keys carry it.
    fn size_ms(self) -> i64 {
        match self {
            WindowKind::Time(windows) => windows.size_ms,
            WindowKind::Sliding(windows) => windows.time_difference_ms,
        }
    }

    /// How long after a window's end it closes: grace, plus 1 ms where the end is
    /// inclusive (sliding windows).
    fn close_delay_ms(self) -> i64 {
        match self {
            WindowKind::Time(windows) => windows.grace_ms,
            WindowKind::Sliding(windows) => windows.grace_ms.saturating_add(1),
        }
    }

    fn operator(self) -> &'static str {
        match self {
            WindowKind::Time(_) => "WINDOW-AGGREGATE",
            WindowKind::Sliding(_) => "SLIDING-AGGREGATE",
        }
    }
}

/// A grouped stream cut into time windows: tumbling, hopping or sliding, as `W` says.
pub struct TimeWindowedKStream<K, V, W = TimeWindows> {
    grouped: KGroupedStream<K, V>,
    windows: W,
    emit: Emit,
}

impl<K: Data + Clone, V: Data, W: Windows> TimeWindowedKStream<K, V, W> {
    /// Emit every update (the default) or only final results when a window closes.
    pub fn emit(mut self, emit: Emit) -> Self {
        self.emit = emit;
        self
    }

    /// Records per key and window.
    pub fn count(&self, materialized: impl Into<Materialized<K, i64>>) -> WindowedKTable<K, i64> {
        let default_serde: SharedSerde<i64> = Arc::new(I64Serde);
        self.aggregate_with(materialized.into(), Some(default_serde), count_aggregator())
    }

    /// Reduces values per key and window; the store's value serde defaults to the
    /// grouping's.
    pub fn reduce(
        &self,
        reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static,
        materialized: impl Into<Materialized<K, V>>,
    ) -> WindowedKTable<K, V>
    where
        V: Clone,
    {
        let default_serde = self.grouped.value_serde.clone();
        let aggregator = reduce_aggregator(reducer);
        self.aggregate_with(materialized.into(), default_serde, aggregator)
    }

    /// Folds values per key and window, each window starting from `initializer()`;
    /// `materialized` needs the aggregate's serde.
    pub fn aggregate<A: Data>(
        &self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        materialized: impl Into<Materialized<K, A>>,
    ) -> WindowedKTable<K, A> {
        let aggregator = fold_aggregator(initializer, aggregator);
        self.aggregate_with(materialized.into(), None, aggregator)
    }

    fn aggregate_with<A: Data>(
        &self,
        materialized: Materialized<K, A>,
        default_value_serde: Option<SharedSerde<A>>,
        aggregator: Aggregator<K, V, A>,
    ) -> WindowedKTable<K, A> {
        let kind = self.windows.window_kind();
        let stream = &self.grouped.stream;
        let key_serde = self.grouped.key_serde.clone();
        let operator = kind.operator();
        let store = resolve_store(
            stream,
            materialized,
            key_serde,
            default_value_serde,
            operator,
        );
        let logic = AggregateLogic {
            key_serde: store.key_serde.clone(),
            aggregate_serde: store.value_serde.clone(),
            aggregator,
        };
        let (name, emit) = (store.name.clone(), self.emit);
        let factory: OperatorFactory = match kind {
            WindowKind::Time(windows) => Arc::new(move |stores| {
                let store = stores.window(&name);
                Box::new(WindowAggregate::new(
                    name.clone(),
                    store,
                    windows,
                    emit,
                    logic.clone(),
                    stores.cache(&name),
                ))
            }),
            WindowKind::Sliding(windows) => Arc::new(move |stores| {
                Box::new(SlidingAggregate {
                    store_name: name.clone(),
                    store: stores.window(&name),
                    windows,
                    emit,
                    logic: logic.clone(),
                    clock: WindowClock::default(),
                })
            }),
        };
        let store_kind = StoreKind::Window {
            retention_ms: kind.retention_ms(),
            keep_duplicates: false,
        };
        let node = add_aggregate_node(stream, operator, &store, store_kind, factory);
        WindowedKTable::new(
            stream.graph.clone(),
            node,
            store.key_serde,
            store.value_serde,
            &store.name,
            kind.size_ms(),
            kind.close_delay_ms(),
        )
    }
}

/// A grouped stream cut into sessions.
pub struct SessionWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SessionWindows,
    emit: Emit,
}

impl<K: Data + Clone, V: Data> SessionWindowedKStream<K, V> {
    /// Emit every update (the default) or only final results when a session closes.
    pub fn emit(mut self, emit: Emit) -> Self {
        self.emit = emit;
        self
    }

    /// Records per key and session.
    pub fn count(&self, materialized: impl Into<Materialized<K, i64>>) -> SessionKTable<K, i64> {
        let merger: Merger<K, i64> = Arc::new(|_, a, b| a + b);
        let default_serde: SharedSerde<i64> = Arc::new(I64Serde);
        let aggregator = count_aggregator();
        self.aggregate_with(materialized.into(), Some(default_serde), aggregator, merger)
    }

    /// Combines the values of each session with `reducer(aggregate, value)`; when a record
    /// bridges two sessions, `reducer` combines their aggregates too. The store's value
    /// serde defaults to the grouping's.
    pub fn reduce(
        &self,
        reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static,
        materialized: impl Into<Materialized<K, V>>,
    ) -> SessionKTable<K, V>
    where
        V: Clone,
    {
        let reducer = Arc::new(reducer);
        let merging = reducer.clone();
        let merger: Merger<K, V> = Arc::new(move |_, older, newer| merging(&older, &newer));
        let aggregator =
            reduce_aggregator(move |aggregate: &V, value: &V| reducer(aggregate, value));
        let default_serde = self.grouped.value_serde.clone();
        self.aggregate_with(materialized.into(), default_serde, aggregator, merger)
    }

    /// Folds values per key and session; `merger` combines two sessions' aggregates when a
    /// record bridges them. `materialized` needs the aggregate's serde.
    pub fn aggregate<A: Data>(
        &self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        merger: impl Fn(&K, A, A) -> A + Send + Sync + 'static,
        materialized: impl Into<Materialized<K, A>>,
    ) -> SessionKTable<K, A> {
        let aggregator = fold_aggregator(initializer, aggregator);
        self.aggregate_with(materialized.into(), None, aggregator, Arc::new(merger))
    }

    fn aggregate_with<A: Data>(
        &self,
        materialized: Materialized<K, A>,
        default_value_serde: Option<SharedSerde<A>>,
        aggregator: Aggregator<K, V, A>,
        merger: Merger<K, A>,
    ) -> SessionKTable<K, A> {
        let stream = &self.grouped.stream;
        let key_serde = self.grouped.key_serde.clone();
        let operator = "SESSION-AGGREGATE";
        let store = resolve_store(
            stream,
            materialized,
            key_serde,
            default_value_serde,
            operator,
        );
        let logic = AggregateLogic {
            key_serde: store.key_serde.clone(),
            aggregate_serde: store.value_serde.clone(),
            aggregator,
        };
        let (name, windows, emit) = (store.name.clone(), self.windows, self.emit);
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
        let node = add_aggregate_node(stream, operator, &store, kind, factory);
        // A session closes once stream time passes its inclusive end plus gap plus grace.
        let close_delay_ms = windows
            .gap_ms
            .saturating_add(windows.grace_ms)
            .saturating_add(1);
        SessionKTable::new(
            stream.graph.clone(),
            node,
            store.key_serde,
            store.value_serde,
            &store.name,
            close_delay_ms,
        )
    }
}
