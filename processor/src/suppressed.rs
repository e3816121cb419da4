//! Suppression (KIP-328): what a table's `suppress` holds back, for how long, and what its
//! buffer does when full.

use std::sync::Arc;
use std::time::Duration;

use crate::builder::{Data, Graph};
use crate::graph::{NodeId, OperatorFactory};
use crate::operator::aggregate::WindowClock;
use crate::operator::suppress::{BufferTime, Suppress};
use crate::serdes::{Serde, SharedSerde, WindowedLayout, WindowedSerde};
use crate::store::StoreKind;
use crate::stream::KStream;
use crate::table::{drop_tombstones, table_sink};
use crate::topology::TopologyError;
use crate::window::Windowed;

/// What a full suppression buffer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferFull {
    /// Forward the oldest entries before they are due, until the buffer fits again.
    EmitEarly,
    /// Stop the task with [`crate::StateError::SuppressionBufferFull`].
    ShutDown,
}

/// The limits of a suppression buffer (Kafka Streams' `Suppressed.BufferConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferConfig {
    /// Most keys buffered at once; `None` for no limit.
    pub max_records: Option<u64>,
    /// Most bytes buffered at once (serialized keys plus values); `None` for no limit.
    pub max_bytes: Option<u64>,
    /// What happens past a limit.
    pub when_full: BufferFull,
}

impl BufferConfig {
    /// No limit: the buffer holds whatever is not yet due.
    pub fn unbounded() -> BufferConfig {
        BufferConfig {
            max_records: None,
            max_bytes: None,
            when_full: BufferFull::ShutDown,
        }
    }

    /// At most `max_records` keys; emits early when full unless told otherwise.
    pub fn max_records(max_records: u64) -> BufferConfig {
        BufferConfig {
            max_records: Some(max_records),
            max_bytes: None,
            when_full: BufferFull::EmitEarly,
        }
    }

    /// At most `max_bytes` bytes; emits early when full unless told otherwise.
    pub fn max_bytes(max_bytes: u64) -> BufferConfig {
        BufferConfig {
            max_records: None,
            max_bytes: Some(max_bytes),
            when_full: BufferFull::EmitEarly,
        }
    }

    /// Adds a limit on keys.
    pub fn with_max_records(mut self, max_records: u64) -> BufferConfig {
        self.max_records = Some(max_records);
        self
    }

    /// Adds a limit on bytes.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> BufferConfig {
        self.max_bytes = Some(max_bytes);
        self
    }

    /// When full, forward the oldest entries early.
    pub fn emit_early_when_full(mut self) -> BufferConfig {
        self.when_full = BufferFull::EmitEarly;
        self
    }

    /// When full, stop the task with an error.
    pub fn shut_down_when_full(mut self) -> BufferConfig {
        self.when_full = BufferFull::ShutDown;
        self
    }
}

/// Which updates `suppress` holds back (Kafka Streams' `Suppressed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    /// `None`: until each window closes; otherwise how long, in stream time.
    time_limit_ms: Option<i64>,
    buffer: BufferConfig,
    name: Option<String>,
}

impl Suppressed {
    /// Only each window's final result, once, when stream time closes the window (its
    /// end plus grace, plus the gap for sessions); a deletion (a session merged into
    /// another) replaces the buffered value and is not forwarded. For windowed and
    /// session tables; the buffer must shut down when full (emitting early would break
    /// the promise of one final result).
    pub fn until_window_closes(buffer: BufferConfig) -> Suppressed {
        Suppressed {
            time_limit_ms: None,
            buffer,
            name: None,
        }
    }

    /// The latest value of each key at most once per `time_limit` of stream time: a key
    /// is forwarded `time_limit` after its first buffered update, with its latest value.
    pub fn until_time_limit(time_limit: Duration, buffer: BufferConfig) -> Suppressed {
        let time_limit_ms = i64::try_from(time_limit.as_millis()).unwrap_or(i64::MAX);
        Suppressed {
            time_limit_ms: Some(time_limit_ms),
            buffer,
            name: None,
        }
    }

    /// Names the buffer's store `<name>-store` (changelog `<application>-<name>-store-changelog`).
    pub fn name(mut self, name: &str) -> Suppressed {
        self.name = Some(name.to_string());
        self
    }
}

/// The updates of a table that passed its `suppress`.
pub struct SuppressedKTable<K, V> {
    graph: Graph,
    node: NodeId,
    /// The suppressed table's serdes (windowed keys with their window size).
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
    /// For a windowed or session table: how its keys carry their window.
    pub(crate) windowed_layout: Option<WindowedLayout>,
}

impl<K: Data, V: Data> SuppressedKTable<Windowed<K>, V> {
    /// Writes every forwarded update of a windowed or session table to `topic`: keys with
    /// `key_serde` and their window as the table has it (see [`WindowedSerde`]), values
    /// with `value_serde`.
    pub fn to_windowed(&self, topic: &str, key_serde: impl Serde<K>, value_serde: impl Serde<V>) {
        let key_serde: SharedSerde<Windowed<K>> = match self.windowed_layout {
            Some(layout) => Arc::new(WindowedSerde::with_layout(key_serde, layout)),
            None => self.key_serde.clone(),
        };
        table_sink(
            &self.graph,
            self.node,
            topic,
            key_serde,
            Arc::new(value_serde),
        );
    }
}

impl<K: Data, V: Data> SuppressedKTable<K, V> {
    /// The stream of forwarded updates; deletions are left out. It knows the table's
    /// serdes.
    pub fn to_stream(&self) -> KStream<K, V> {
        let serdes = (Some(self.key_serde.clone()), Some(self.value_serde.clone()));
        drop_tombstones(&self.graph, self.node).with_serdes(serdes.0, serdes.1)
    }

    /// The key serde of the table suppressed: for a windowed table, the windowed key
    /// serde with its window size, to write to a topic with [`SuppressedKTable::to`].
    pub fn key_serde(&self) -> SharedSerde<K> {
        self.key_serde.clone()
    }

    /// Writes every forwarded update to `topic`, deletions as tombstones.
    pub fn to(&self, topic: &str, key_serde: impl Serde<K>, value_serde: impl Serde<V>) {
        table_sink(
            &self.graph,
            self.node,
            topic,
            Arc::new(key_serde),
            Arc::new(value_serde),
        );
    }
}

/// How a table's `suppress` reads its keys: the serdes and, for windowed tables, the
/// window end and how long after it the window closes.
pub(crate) struct SuppressInput<K, V> {
    pub graph: Graph,
    pub parent: NodeId,
    pub key_serde: SharedSerde<K>,
    pub value_serde: SharedSerde<V>,
    /// For a windowed table: its window end and close delay after the end.
    pub windows: Option<(BufferTime<K>, i64)>,
}

/// Adds the suppress node below `input.parent`.
pub(crate) fn add_suppress<K: Data, V: Data>(
    input: SuppressInput<K, V>,
    suppressed: Suppressed,
) -> SuppressedKTable<K, V> {
    let mut graph = input.graph.borrow_mut();
    let store_name = match &suppressed.name {
        Some(name) => format!("{name}-store"),
        None => format!("KTABLE-SUPPRESS-STATE-STORE-{:010}", graph.nodes.len()),
    };
    let record_time: BufferTime<K> = Arc::new(|_, timestamp_ms| timestamp_ms);
    let (buffer_time, delay_ms, drop_tombstones) = match (suppressed.time_limit_ms, input.windows) {
        (Some(limit_ms), _) => (record_time, limit_ms, false),
        (None, Some((window_end, close_delay_ms))) => (window_end, close_delay_ms, true),
        (None, None) => {
            graph.fail(TopologyError::InvalidSuppression(
                "until_window_closes needs a windowed or session table".into(),
            ));
            (record_time, 0, true)
        }
    };
    if suppressed.time_limit_ms.is_none() && suppressed.buffer.when_full == BufferFull::EmitEarly {
        graph.fail(TopologyError::InvalidSuppression(
            "until_window_closes needs a buffer that shuts down when full (unbounded, or shut_down_when_full): emitting early would break the promise of one final result per window".into(),
        ));
    }
    let (name, buffer) = (store_name.clone(), suppressed.buffer);
    let (key_serde, value_serde) = (input.key_serde, input.value_serde);
    let serdes = (key_serde.clone(), value_serde.clone());
    let factory: OperatorFactory = Arc::new(move |stores| {
        Box::new(Suppress {
            store_name: name.clone(),
            store: stores.key_value(&name),
            key_serde: key_serde.clone(),
            value_serde: value_serde.clone(),
            buffer_time: buffer_time.clone(),
            delay_ms,
            drop_tombstones,
            buffer,
            clock: WindowClock::default(),
            index: None,
        })
    });
    let stores = vec![store_name.clone()];
    let node = graph.add_node("SUPPRESS", &[input.parent], factory, stores);
    graph.add_store(&store_name, StoreKind::KeyValue, node);
    drop(graph);
    SuppressedKTable {
        graph: input.graph,
        node,
        key_serde: serdes.0,
        value_serde: serdes.1,
        windowed_layout: None,
    }
}
