//! Reading a running topology's stores by name, as JSON: the read-only query path behind
//! state queries over HTTP (`crate::observe::routes`).
//!
//! Keys come in as text and become bytes through the store's key serde
//! ([`crate::Serde::parse_text`]); values go out as JSON through its value serde
//! ([`crate::Serde::to_json`]), or as `{"base64": ...}` where they have no JSON form. A
//! query holds a task's store lock only to copy raw bytes out, for at most
//! [`RANGE_LIMIT_MAX`] entries of a range, and decodes after letting go, so it never
//! holds up processing for long. Reads may touch disk: call from a blocking thread.

use serde::Serialize;
use serde_json::Value;

use super::codec::StoreCodec;
use super::engine::StateError;
use super::query::StoreRegistry;
use super::{StoreKind, StoredValue, read_lock};
use crate::serdes::SerdeError;
use crate::task::TaskId;
use crate::topology::Topology;

/// Entries a key range answers when the query names no limit.
pub const RANGE_LIMIT_DEFAULT: usize = 100;
/// Most entries a key range answers, whatever the query asks: each task's store is read
/// under its lock for at most this many entries (one more, to tell a truncated answer).
pub const RANGE_LIMIT_MAX: usize = 1_000;

const _: () = assert!(RANGE_LIMIT_DEFAULT <= RANGE_LIMIT_MAX);

/// Why a query by store name failed.
#[derive(Debug, thiserror::Error)]
pub enum JsonQueryError {
    /// The topology has no store of that name.
    #[error("no store is named {0:?}")]
    UnknownStore(String),
    /// The store is of another kind than the query reads.
    #[error("store {store:?} is a {kind} store, not a {wanted} store")]
    WrongKind {
        /// The store.
        store: String,
        /// What it is: `key_value`, `window` or `session`.
        kind: &'static str,
        /// What the query reads.
        wanted: &'static str,
    },
    /// A key given as text that the store's key serde does not read.
    #[error("bad key for store {store:?}: {source}")]
    BadKey {
        /// The store.
        store: String,
        /// The serde's complaint.
        #[source]
        source: SerdeError,
    },
    /// The store could not be read from disk.
    #[error(transparent)]
    State(#[from] StateError),
}

/// One key and its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JsonEntry {
    /// The key, as the key serde shows it.
    pub key: Value,
    /// The value, as the value serde shows it.
    pub value: Value,
}

/// A key range's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JsonRange {
    /// Entries by key bytes, at most the limit asked for.
    pub entries: Vec<JsonEntry>,
    /// Whether more entries lie in the range.
    pub truncated: bool,
}

/// One window or session of a key and its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JsonWindow {
    /// Its start, ms since the epoch.
    pub start: i64,
    /// Its end, ms since the epoch.
    pub end: i64,
    /// The value, as the value serde shows it.
    pub value: Value,
}

/// The kind of a store, as queries name it.
pub(crate) fn kind_name(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::KeyValue => "key_value",
        StoreKind::Window { .. } => "window",
        StoreKind::Session { .. } => "session",
    }
}

/// The stores of one running topology, read by name.
#[derive(Clone)]
pub struct JsonStores {
    topology: Topology,
    registry: StoreRegistry,
}

/// A store the query found, with the codec to read it.
struct Found {
    name: String,
    codec: StoreCodec,
}

impl JsonStores {
    /// Queries over `registry`, the stores of the tasks running `topology`.
    pub fn new(topology: Topology, registry: StoreRegistry) -> JsonStores {
        JsonStores { topology, registry }
    }

    /// The store `name` if it is of kind `wanted`.
    fn find(&self, name: &str, wanted: &'static str) -> Result<Found, JsonQueryError> {
        let stores = self.topology.stores();
        let Some((_, spec)) = stores.iter().find(|(_, spec)| spec.name == name) else {
            return Err(JsonQueryError::UnknownStore(name.to_string()));
        };
        let kind = kind_name(spec.kind);
        if kind != wanted {
            return Err(JsonQueryError::WrongKind {
                store: name.to_string(),
                kind,
                wanted,
            });
        }
        Ok(Found {
            name: name.to_string(),
            codec: self.topology.store_codec(name),
        })
    }

    /// The value of the key `key_text` in the key-value store `store`, if a local task
    /// holds it.
    ///
    /// # Errors
    /// An unknown store or one of another kind, a key its serde does not read, a disk
    /// failure.
    pub fn get(&self, store: &str, key_text: &str) -> Result<Option<JsonEntry>, JsonQueryError> {
        let found = self.find(store, "key_value")?;
        let key = found.key_bytes(key_text)?;
        for (_, part) in self.registry.key_value_parts(store) {
            let stored = read_lock(&part).get(&key)?;
            if let Some(stored) = stored {
                return Ok(Some(found.entry(&key, &stored)));
            }
        }
        Ok(None)
    }

    /// At most `limit` (capped at [`RANGE_LIMIT_MAX`]) entries of the key-value store
    /// `store` with keys in `[from, to)` by serialized key bytes, unbounded where `None`.
    ///
    /// # Errors
    /// As [`JsonStores::get`].
    pub fn range(
        &self,
        store: &str,
        from: Option<&str>,
        to: Option<&str>,
        limit: usize,
    ) -> Result<JsonRange, JsonQueryError> {
        let found = self.find(store, "key_value")?;
        let from = from.map(|text| found.key_bytes(text)).transpose()?;
        let to = to.map(|text| found.key_bytes(text)).transpose()?;
        let limit = limit.min(RANGE_LIMIT_MAX);
        let mut raw = Vec::new();
        for (_, part) in self.registry.key_value_parts(store) {
            // One more than asked: whether there is more tells a truncated answer.
            let data = read_lock(&part);
            raw.extend(data.range_limited(from.as_deref(), to.as_deref(), limit + 1)?);
        }
        raw.sort_by(|a, b| a.0.cmp(&b.0));
        let truncated = raw.len() > limit;
        raw.truncate(limit);
        let entries = raw
            .iter()
            .map(|(key, stored)| found.entry(key, stored))
            .collect();
        Ok(JsonRange { entries, truncated })
    }

    /// The windows of the key `key_text` in the window store `store` starting within
    /// `[from_ms, to_ms]`, by start.
    ///
    /// # Errors
    /// As [`JsonStores::get`].
    pub fn fetch_windows(
        &self,
        store: &str,
        key_text: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<JsonWindow>, JsonQueryError> {
        let found = self.find(store, "window")?;
        let key = found.key_bytes(key_text)?;
        let mut raw = Vec::new();
        for (_, part) in self.registry.window_parts(store) {
            raw.extend(read_lock(&part).fetch_range(&key, from_ms, to_ms)?);
        }
        raw.sort_by_key(|(start_ms, _)| *start_ms);
        let size_ms = found.codec.window_size_ms.unwrap_or(0);
        Ok(raw
            .iter()
            .map(|(start_ms, stored)| JsonWindow {
                start: *start_ms,
                end: start_ms.saturating_add(size_ms),
                value: found.value(stored),
            })
            .collect())
    }

    /// The sessions of the key `key_text` in the session store `store`, by end.
    ///
    /// # Errors
    /// As [`JsonStores::get`].
    pub fn fetch_sessions(
        &self,
        store: &str,
        key_text: &str,
    ) -> Result<Vec<JsonWindow>, JsonQueryError> {
        let found = self.find(store, "session")?;
        let key = found.key_bytes(key_text)?;
        let mut raw = Vec::new();
        for (_, part) in self.registry.session_parts(store) {
            raw.extend(read_lock(&part).fetch(&key)?);
        }
        raw.sort_by_key(|(start_ms, end_ms, _)| (*end_ms, *start_ms));
        Ok(raw
            .iter()
            .map(|(start_ms, end_ms, stored)| JsonWindow {
                start: *start_ms,
                end: *end_ms,
                value: found.value(stored),
            })
            .collect())
    }

    /// About how many entries the local tasks hold in `store`; `None` for an unknown
    /// store or one no local task has.
    pub fn approximate_entries(&self, store: &str) -> Option<u64> {
        let stores = self.topology.stores();
        let (_, spec) = stores.iter().find(|(_, spec)| spec.name == store)?;
        let counts = task_entries(&self.registry, store, spec.kind);
        if counts.is_empty() {
            return None;
        }
        Some(counts.into_iter().map(|(_, count)| count as u64).sum())
    }

    /// The topology these stores belong to.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The stores of its running tasks.
    pub fn registry(&self) -> &StoreRegistry {
        &self.registry
    }
}

/// Each local task's approximate entry count in `store`, by task.
pub(crate) fn task_entries(
    registry: &StoreRegistry,
    store: &str,
    kind: StoreKind,
) -> Vec<(TaskId, usize)> {
    match kind {
        StoreKind::KeyValue => registry
            .key_value_parts(store)
            .iter()
            .map(|(task, part)| (*task, read_lock(part).approximate_len()))
            .collect(),
        StoreKind::Window { .. } => registry
            .window_parts(store)
            .iter()
            .map(|(task, part)| (*task, read_lock(part).approximate_len()))
            .collect(),
        StoreKind::Session { .. } => registry
            .session_parts(store)
            .iter()
            .map(|(task, part)| (*task, read_lock(part).approximate_len()))
            .collect(),
    }
}

impl Found {
    fn key_bytes(&self, text: &str) -> Result<Vec<u8>, JsonQueryError> {
        self.codec
            .key
            .parse_text(&self.name, text)
            .map_err(|source| JsonQueryError::BadKey {
                store: self.name.clone(),
                source,
            })
    }

    fn entry(&self, key: &[u8], stored: &StoredValue) -> JsonEntry {
        JsonEntry {
            key: StoreCodec::show(self.codec.key.as_ref(), &self.name, key),
            value: self.value(stored),
        }
    }

    fn value(&self, stored: &StoredValue) -> Value {
        StoreCodec::show(self.codec.value.as_ref(), &self.name, &stored.value)
    }
}
