//! `Materialized`: how a stateful operation keeps its store (Kafka Streams' `Materialized`).
//!
//! Every operation that keeps state (`count`, `reduce`, `aggregate`, windowed or not; a
//! table read from a topic; a materialized table `filter` or `map_values`; a processor's
//! store) takes one as its last argument. A store name alone converts into one, so the
//! common case stays short: `.count("views-per-minute")`.

use std::sync::Arc;
use std::time::Duration;

use crate::builder::GraphBuilder;
use crate::serdes::{Serde, SharedSerde};
use crate::store::{StoreBacking, StoreKind};
use crate::topology::TopologyError;

/// The store of a stateful operation: its name, serdes, backing, changelog and cache.
///
/// ```
/// use std::time::Duration;
/// use riffle_processor::{Materialized, StringSerde};
///
/// // A store name is enough for most operations.
/// let counts: Materialized<String, i64> = "counts".into();
/// // Or every option, builder style.
/// let totals: Materialized<String, String> = Materialized::new("totals")
///     .with_value_serde(StringSerde)
///     .in_memory()
///     .with_retention(Duration::from_secs(7 * 24 * 3600))
///     .with_changelog_config("min.insync.replicas", "1")
///     .with_caching_disabled();
/// # let _ = (counts, totals);
/// ```
pub struct Materialized<K, V> {
    pub(crate) store_name: Option<String>,
    pub(crate) key_serde: Option<SharedSerde<K>>,
    pub(crate) value_serde: Option<SharedSerde<V>>,
    pub(crate) options: StoreOptions,
}

/// The options of a store that do not depend on its types.
#[derive(Debug, Clone, Default)]
pub(crate) struct StoreOptions {
    /// `None`: on disk (the default of [`StoreBacking`]).
    pub backing: Option<StoreBacking>,
    pub logging_disabled: bool,
    pub changelog_configs: Vec<(String, String)>,
    pub retention: Option<Duration>,
    pub caching_disabled: bool,
}

impl<K, V> Default for Materialized<K, V> {
    /// A store with a generated name (`KSTREAM-AGGREGATE-STATE-STORE-0000000004`) and
    /// every default: on disk, changelogged, cached.
    fn default() -> Self {
        Materialized {
            store_name: None,
            key_serde: None,
            value_serde: None,
            options: StoreOptions::default(),
        }
    }
}

impl<K, V> From<&str> for Materialized<K, V> {
    fn from(store_name: &str) -> Self {
        Materialized::new(store_name)
    }
}

impl<K, V> From<String> for Materialized<K, V> {
    fn from(store_name: String) -> Self {
        Materialized::new(&store_name)
    }
}

impl<K, V> Materialized<K, V> {
    /// The store `store_name`, its changelog `<application>-<store_name>-changelog`.
    pub fn new(store_name: &str) -> Self {
        Materialized {
            store_name: Some(store_name.to_string()),
            ..Materialized::default()
        }
    }

    /// The store's key serde; by default the grouping's or the table's.
    pub fn with_key_serde(mut self, key_serde: impl Serde<K>) -> Self {
        self.key_serde = Some(Arc::new(key_serde));
        self
    }

    /// The store's value serde. `count` has its own; `reduce` and a table `filter` default
    /// to the input's value serde; `aggregate` and a materialized `map_values` need one
    /// (`build` fails without it).
    pub fn with_value_serde(mut self, value_serde: impl Serde<V>) -> Self {
        self.value_serde = Some(Arc::new(value_serde));
        self
    }

    /// Keeps the store in memory: restored from its whole changelog at every start.
    pub fn in_memory(mut self) -> Self {
        self.options.backing = Some(StoreBacking::InMemory);
        self
    }

    /// Keeps the store on disk (the default): a restart restores only the changelog tail
    /// past the store's checkpoint.
    pub fn persistent(mut self) -> Self {
        self.options.backing = Some(StoreBacking::Persistent);
        self
    }

    /// No changelog: nothing is written to `<application>-<store>-changelog` and nothing
    /// restored from it, so an in-memory store starts empty after a restart or a move
    /// to another instance. A table read from a topic keeps its topic as changelog.
    pub fn with_logging_disabled(mut self) -> Self {
        self.options.logging_disabled = true;
        self
    }

    /// A topic config for the changelog (Kafka Streams' `withLoggingEnabled(configs)`),
    /// over the defaults (`cleanup.policy`, and `retention.ms` for window stores).
    pub fn with_changelog_config(mut self, name: &str, value: &str) -> Self {
        let config = (name.to_string(), value.to_string());
        self.options.changelog_configs.push(config);
        self
    }

    /// How long a window or session store keeps a window, counted back from stream time
    /// (its changelog keeps it a day longer). The default is the window size plus grace;
    /// a longer one keeps windows that replaying older event-time data updates again.
    /// Shorter than size plus grace, or on a key-value store, `build` fails.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.options.retention = Some(retention);
        self
    }

    /// No record cache: one update per record downstream and in the changelog, whatever
    /// `cache_max_bytes` the runtime has (README, "Record cache and threads").
    pub fn with_caching_disabled(mut self) -> Self {
        self.options.caching_disabled = true;
        self
    }

    /// Caching as the runtime's `cache_max_bytes` says (the default).
    pub fn with_caching_enabled(mut self) -> Self {
        self.options.caching_disabled = false;
        self
    }

    /// The store name, generated in Kafka Streams' style when none was given.
    pub(crate) fn resolve_name(&self, graph: &GraphBuilder, operator: &str) -> String {
        match &self.store_name {
            Some(name) => name.clone(),
            None => graph.generated_store_name(operator),
        }
    }
}

impl StoreOptions {
    /// `kind` with the retention these options ask for, or the reason it cannot have it.
    pub(crate) fn apply_retention(
        &self,
        store_name: &str,
        kind: StoreKind,
    ) -> Result<StoreKind, TopologyError> {
        let Some(retention) = self.retention else {
            return Ok(kind);
        };
        let asked_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let invalid = |reason: String| TopologyError::InvalidStoreOptions {
            store: store_name.to_string(),
            reason,
        };
        match kind {
            StoreKind::KeyValue => Err(invalid(
                "a key-value store keeps every key: retention applies to window and session stores"
                    .to_string(),
            )),
            StoreKind::Window {
                retention_ms,
                keep_duplicates,
            } => {
                if asked_ms < retention_ms {
                    return Err(invalid(format!(
                        "retention {asked_ms} ms is shorter than the window size plus grace ({retention_ms} ms)"
                    )));
                }
                Ok(StoreKind::Window {
                    retention_ms: asked_ms,
                    keep_duplicates,
                })
            }
            StoreKind::Session { retention_ms } => {
                if asked_ms < retention_ms {
                    return Err(invalid(format!(
                        "retention {asked_ms} ms is shorter than the gap plus grace ({retention_ms} ms)"
                    )));
                }
                Ok(StoreKind::Session {
                    retention_ms: asked_ms,
                })
            }
        }
    }
}

/// A serde that `build` refuses before it is ever used: it stands where the DSL has no
/// serde for a store or repartition topic, after recording the error.
pub(crate) struct MissingSerde;

impl<T> Serde<T> for MissingSerde {
    fn serialize(&self, topic: &str, _value: &T) -> Result<Vec<u8>, crate::SerdeError> {
        Err(crate::SerdeError::new(topic, "no serde was given"))
    }

    fn deserialize(&self, topic: &str, _bytes: &[u8]) -> Result<T, crate::SerdeError> {
        Err(crate::SerdeError::new(topic, "no serde was given"))
    }
}

/// `serde`, or when it is missing, a [`MissingSerde`] and the error `build` reports.
pub(crate) fn require_serde<T: 'static>(
    graph: &crate::builder::Graph,
    serde: Option<SharedSerde<T>>,
    what: impl FnOnce() -> String,
) -> SharedSerde<T> {
    match serde {
        Some(serde) => serde,
        None => {
            graph.borrow_mut().fail(TopologyError::MissingSerde(what()));
            Arc::new(MissingSerde)
        }
    }
}
