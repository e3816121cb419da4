//! `cogroup` (KIP-150): several grouped streams, each with its own aggregator, folded
//! into one aggregate per key (or per key and window) in one store with one changelog.
//!
//! As Kafka Streams' `CogroupedStreamAggregateBuilder` does, each input gets its own
//! aggregation node, all writing the one store (which puts them in one sub-topology, so
//! the inputs must be co-partitioned: each grouped stream repartitioned if its key
//! changed), and a merge node after them is the resulting table. Every input record gives
//! one update, as `aggregate` does. A store several nodes write has no record cache.

use std::sync::Arc;

use crate::builder::{Data, Graph};
use crate::graph::{NodeId, OperatorFactory, PassThrough};
use crate::grouped::{KGroupedStream, fold_aggregator};
use crate::materialized::{Materialized, require_serde};
use crate::operator::aggregate::{AggregateLogic, KeyValueAggregate, Merger, WindowClock};
use crate::operator::session_aggregate::SessionAggregate;
use crate::operator::window_aggregate::WindowAggregate;
use crate::serdes::SharedSerde;
use crate::store::StoreKind;
use crate::table::{KTable, SessionKTable, WindowedKTable};
use crate::window::{Emit, SessionWindows, TimeWindows};

/// How a cogroup aggregates: per key, per time window, or per session.
enum CogroupWindows<K, A> {
    None,
    Time(TimeWindows),
    Session(SessionWindows, Merger<K, A>),
}

/// What one input's aggregation node needs, known only at `aggregate`.
struct CogroupBuild<K, A> {
    store_name: String,
    key_serde: SharedSerde<K>,
    initializer: Arc<dyn Fn() -> A + Send + Sync>,
    aggregate_serde: SharedSerde<A>,
    windows: CogroupWindows<K, A>,
}

/// Adds one input's aggregation node; returns it.
type InputBuilder<K, A> = Box<dyn Fn(&CogroupBuild<K, A>) -> NodeId>;

/// Grouped streams of one key type cogrouped into one aggregate of type `A`, from
/// [`KGroupedStream::cogroup`].
pub struct CogroupedKStream<K, A> {
    graph: Graph,
    /// The first input grouping's key serde that is known: the store's by default.
    key_serde: Option<SharedSerde<K>>,
    inputs: Vec<InputBuilder<K, A>>,
}

impl<K: Data + Clone, V: Data> KGroupedStream<K, V> {
    /// Starts a cogroup (Kafka Streams' `cogroup(aggregator)`): this stream's values will
    /// fold into the shared aggregate with `aggregator(key, value, aggregate)`. Add other
    /// grouped streams with [`CogroupedKStream::cogroup`], then call
    /// [`CogroupedKStream::aggregate`].
    pub fn cogroup<A: Data>(
        &self,
        aggregator: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
    ) -> CogroupedKStream<K, A> {
        CogroupedKStream {
            graph: self.stream.graph.clone(),
            key_serde: self.key_serde.clone(),
            inputs: Vec::new(),
        }
        .cogroup(self, aggregator)
    }
}

impl<K: Data + Clone, A: Data> CogroupedKStream<K, A> {
    /// Adds `grouped`, whose values fold into the shared aggregate with `aggregator`.
    pub fn cogroup<V: Data>(
        mut self,
        grouped: &KGroupedStream<K, V>,
        aggregator: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
    ) -> Self {
        let graph = grouped.stream.graph.clone();
        let parent = grouped.stream.node;
        if self.key_serde.is_none() {
            self.key_serde = grouped.key_serde.clone();
        }
        let aggregator = Arc::new(aggregator);
        self.inputs
            .push(Box::new(move |build: &CogroupBuild<K, A>| {
                let (initializer, aggregator) = (build.initializer.clone(), aggregator.clone());
                let logic = AggregateLogic {
                    key_serde: build.key_serde.clone(),
                    aggregate_serde: build.aggregate_serde.clone(),
                    aggregator: fold_aggregator(
                        move || initializer(),
                        move |key: &K, value: &V, aggregate: A| aggregator(key, value, aggregate),
                    ),
                };
                let name = build.store_name.clone();
                let (kind, factory): (&str, OperatorFactory) = match &build.windows {
                    CogroupWindows::None => (
                        "COGROUP-AGGREGATE",
                        Arc::new(move |stores| {
                            Box::new(KeyValueAggregate {
                                store_name: name.clone(),
                                store: stores.key_value(&name),
                                logic: logic.clone(),
                                cache: stores.cache(&name),
                            })
                        }),
                    ),
                    CogroupWindows::Time(windows) => {
                        let windows = *windows;
                        (
                            "COGROUP-WINDOW-AGGREGATE",
                            Arc::new(move |stores| {
                                Box::new(WindowAggregate::new(
                                    name.clone(),
                                    stores.window(&name),
                                    windows,
                                    Emit::OnUpdate,
                                    logic.clone(),
                                    stores.cache(&name),
                                ))
                            }),
                        )
                    }
                    CogroupWindows::Session(windows, merger) => {
                        let (windows, merger) = (*windows, merger.clone());
                        (
                            "COGROUP-SESSION-AGGREGATE",
                            Arc::new(move |stores| {
                                Box::new(SessionAggregate {
                                    store_name: name.clone(),
                                    store: stores.session(&name),
                                    windows,
                                    emit: Emit::OnUpdate,
                                    logic: logic.clone(),
                                    merger: merger.clone(),
                                    clock: WindowClock::default(),
                                })
                            }),
                        )
                    }
                };
                let stores = vec![build.store_name.clone()];
                graph
                    .borrow_mut()
                    .add_node(kind, &[parent], factory, stores)
            }));
        self
    }

    /// Folds every input into the store `materialized` names, each key starting from
    /// `initializer()`: one update per input record. `materialized` needs the aggregate's
    /// serde ([`Materialized::with_value_serde`]); its key serde defaults to the inputs'.
    pub fn aggregate(
        &self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        materialized: impl Into<Materialized<K, A>>,
    ) -> KTable<K, A> {
        let materialized = materialized.into();
        let build = self.build(&materialized, initializer, CogroupWindows::None);
        let node = self.add_nodes(&build, StoreKind::KeyValue, &materialized);
        KTable::new(
            self.graph.clone(),
            node,
            build.key_serde,
            build.aggregate_serde,
            &build.store_name,
        )
    }

    /// What each input's node needs: the store's name and serdes (a missing serde fails
    /// `build`), the initializer and the windows.
    fn build(
        &self,
        materialized: &Materialized<K, A>,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        windows: CogroupWindows<K, A>,
    ) -> CogroupBuild<K, A> {
        let store_name = materialized.resolve_name(&self.graph.borrow(), "COGROUP-AGGREGATE");
        let key_serde = materialized.key_serde.clone().or(self.key_serde.clone());
        let key_serde = require_serde(&self.graph, key_serde, || {
            format!(
                "cogroup store {store_name:?} needs a key serde: give one in Grouped or Materialized::with_key_serde"
            )
        });
        let aggregate_serde = require_serde(&self.graph, materialized.value_serde.clone(), || {
            format!("cogroup store {store_name:?} needs Materialized::with_value_serde")
        });
        CogroupBuild {
            store_name,
            key_serde,
            initializer: Arc::new(initializer),
            aggregate_serde,
            windows,
        }
    }

    /// Aggregates per key and time window (emitting every update).
    pub fn windowed_by(self, windows: TimeWindows) -> TimeWindowedCogroupedKStream<K, A> {
        TimeWindowedCogroupedKStream {
            cogrouped: self,
            windows,
        }
    }

    /// Aggregates per key and session (emitting every update, merged sessions as
    /// deletions).
    pub fn session_windowed_by(
        self,
        windows: SessionWindows,
    ) -> SessionWindowedCogroupedKStream<K, A> {
        SessionWindowedCogroupedKStream {
            cogrouped: self,
            windows,
        }
    }

    /// Adds every input's node, the store (owned by the first) and the merge node after
    /// them; returns the merge node.
    fn add_nodes(
        &self,
        build: &CogroupBuild<K, A>,
        kind: StoreKind,
        materialized: &Materialized<K, A>,
    ) -> NodeId {
        let nodes: Vec<NodeId> = self.inputs.iter().map(|input| input(build)).collect();
        let factory: OperatorFactory = Arc::new(|_| Box::new(PassThrough));
        let mut graph = self.graph.borrow_mut();
        if let Some(first) = nodes.first() {
            graph.add_store(&build.store_name, kind, *first);
            graph.configure_store(&build.store_name, &materialized.options);
        }
        graph.add_node("COGROUP-MERGE", &nodes, factory, Vec::new())
    }
}

/// A cogrouped stream cut into time windows, from [`CogroupedKStream::windowed_by`].
pub struct TimeWindowedCogroupedKStream<K, A> {
    cogrouped: CogroupedKStream<K, A>,
    windows: TimeWindows,
}

impl<K: Data + Clone, A: Data> TimeWindowedCogroupedKStream<K, A> {
    /// Folds every input into the window store `materialized` names, each key and window
    /// starting from `initializer()`: one update per input record and window.
    /// `materialized` needs the aggregate's serde.
    pub fn aggregate(
        &self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        materialized: impl Into<Materialized<K, A>>,
    ) -> WindowedKTable<K, A> {
        let materialized = materialized.into();
        let windows = CogroupWindows::Time(self.windows);
        let build = self.cogrouped.build(&materialized, initializer, windows);
        let kind = StoreKind::Window {
            retention_ms: self.windows.retention_ms(),
            keep_duplicates: false,
        };
        let node = self.cogrouped.add_nodes(&build, kind, &materialized);
        WindowedKTable::new(
            self.cogrouped.graph.clone(),
            node,
            build.key_serde,
            build.aggregate_serde,
            &build.store_name,
            self.windows.size_ms,
            self.windows.grace_ms,
        )
    }
}

/// A cogrouped stream cut into sessions, from [`CogroupedKStream::session_windowed_by`].
pub struct SessionWindowedCogroupedKStream<K, A> {
    cogrouped: CogroupedKStream<K, A>,
    windows: SessionWindows,
}

impl<K: Data + Clone, A: Data> SessionWindowedCogroupedKStream<K, A> {
    /// Folds every input into the session store `materialized` names, each session
    /// starting from `initializer()`; `merger` combines two sessions' aggregates when a
    /// record bridges them. `materialized` needs the aggregate's serde.
    pub fn aggregate(
        &self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        merger: impl Fn(&K, A, A) -> A + Send + Sync + 'static,
        materialized: impl Into<Materialized<K, A>>,
    ) -> SessionKTable<K, A> {
        let materialized = materialized.into();
        let windows = self.windows;
        let session = CogroupWindows::Session(windows, Arc::new(merger));
        let build = self.cogrouped.build(&materialized, initializer, session);
        let kind = StoreKind::Session {
            retention_ms: windows.gap_ms.saturating_add(windows.grace_ms),
        };
        let node = self.cogrouped.add_nodes(&build, kind, &materialized);
        // A session closes once stream time passes its inclusive end plus gap plus grace.
        let close_delay_ms = windows
            .gap_ms
            .saturating_add(windows.grace_ms)
            .saturating_add(1);
        SessionKTable::new(
            self.cogrouped.graph.clone(),
            node,
            build.key_serde,
            build.aggregate_serde,
            &build.store_name,
            close_delay_ms,
        )
    }
}
