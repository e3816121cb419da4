//! Window and session stores for user processors: declared with
//! [`StreamsBuilder::add_window_store`] and [`StreamsBuilder::add_session_store`], used
//! through [`ProcessorContext::window_store`] and [`ProcessorContext::session_store`].
//! Like key-value stores they are changelogged and restored, and expire by their
//! retention as the DSL's windowed stores do (Kafka Streams' segmented stores): entries
//! older than the newest window start (session end) minus the retention are gone, and a
//! write there is skipped.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::builder::{Data, StreamsBuilder, UNOWNED};
use crate::materialized::{Materialized, StoreOptions};
use crate::processor_api::ProcessorContext;
use crate::record::OutputRecord;
use crate::serdes::{Serde, SerdeError};
use crate::store::codec::StoreCodec;
use crate::store::query::{SessionStoreHandle, WindowStoreHandle};
use crate::store::{KeyValueStore, SessionStore, StoreKind, WindowStore};
use crate::window::Windowed;

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl StreamsBuilder {
    /// Declares the window store `store` names for processors (Kafka Streams'
    /// `Stores.windowStoreBuilder`): values per key and window start, windows of
    /// `window_size`, kept `retention` behind the newest window start written. Connect it
    /// by naming it in [`crate::KStream::process`]; changelogged to
    /// `<application>-<name>-changelog` (kept retention plus a day, as Kafka Streams does)
    /// and on disk unless its [`Materialized`] says otherwise.
    pub fn add_window_store<K: Data, V: Data>(
        &self,
        store: impl Into<Materialized<K, V>>,
        retention: Duration,
        window_size: Duration,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> WindowStoreHandle<K, V> {
        let store = store.into();
        let name = &store.resolve_name(&self.graph.borrow(), "PROCESSOR-WINDOW");
        let handle = WindowStoreHandle {
            name: name.to_string(),
            size_ms: millis(window_size),
            key_serde: Arc::new(key_serde),
            value_serde: Arc::new(value_serde),
        };
        let kind = StoreKind::Window {
            retention_ms: millis(retention),
            keep_duplicates: false,
        };
        let codec = StoreCodec::windowed(
            handle.key_serde.clone(),
            handle.value_serde.clone(),
            handle.size_ms,
        );
        self.declare_user_store(name, kind, codec, &store.options);
        handle
    }

    /// Declares the session store `store` names for processors (Kafka Streams'
    /// `Stores.sessionStoreBuilder`): values per key and session `[start, end]`, kept
    /// `retention` behind the newest session end written.
    pub fn add_session_store<K: Data, V: Data>(
        &self,
        store: impl Into<Materialized<K, V>>,
        retention: Duration,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> SessionStoreHandle<K, V> {
        let store = store.into();
        let name = &store.resolve_name(&self.graph.borrow(), "PROCESSOR-SESSION");
        let handle = SessionStoreHandle {
            name: name.to_string(),
            key_serde: Arc::new(key_serde),
            value_serde: Arc::new(value_serde),
        };
        let kind = StoreKind::Session {
            retention_ms: millis(retention),
        };
        let codec = StoreCodec::new(handle.key_serde.clone(), handle.value_serde.clone());
        self.declare_user_store(name, kind, codec, &store.options);
        handle
    }

    fn declare_user_store(
        &self,
        name: &str,
        kind: StoreKind,
        codec: StoreCodec,
        options: &StoreOptions,
    ) {
        let mut graph = self.graph.borrow_mut();
        graph.add_store(name, kind, UNOWNED);
        graph.configure_store(name, options);
        graph.user_stores.insert(name.to_string());
        graph.set_store_codec(name, codec);
    }
}

/// The stores connected to one task's user processor, by name.
#[derive(Default)]
pub(crate) struct ProcessorStores {
    pub key_value: HashMap<String, KeyValueStore>,
    pub window: HashMap<String, WindowStore>,
    pub session: HashMap<String, SessionStore>,
    /// Stores the processor may read but not write: tables' stores, whose changelog is the
    /// table's own source topic.
    pub read_only: HashSet<String>,
}

impl ProcessorStores {
    /// An error for a write to a read-only store, or `Ok`.
    pub fn check_writable(&self, name: &str) -> Result<(), SerdeError> {
        if self.read_only.contains(name) {
            return Err(SerdeError::new(
                name,
                "a table's store is read-only for processors (its changelog is the table's topic)",
            ));
        }
        Ok(())
    }
}

fn not_connected(kind: &str, name: &str, node_name: &str) -> ! {
    panic!(
        "{kind} store {name:?} is not connected to processor {node_name}: name it in process(..)"
    )
}

impl<KOut: Send + Sync + 'static, VOut: Send + Sync + 'static> ProcessorContext<'_, KOut, VOut> {
    /// The window store `handle` names, typed by its serdes.
    ///
    /// # Panics
    /// If the store is not connected to this processor (named in its `process` call).
    pub fn window_store<'s, K, V>(
        &'s mut self,
        handle: &'s WindowStoreHandle<K, V>,
    ) -> ProcessorWindowStore<'s, K, V> {
        let Some(store) = self.stores.window.get(&handle.name) else {
            not_connected("window", &handle.name, self.node_name)
        };
        ProcessorWindowStore {
            store,
            writable: self.stores.check_writable(&handle.name),
            outputs: self.outputs,
            handle,
            timestamp_ms: self.timestamp_ms,
        }
    }

    /// The session store `handle` names, typed by its serdes.
    ///
    /// # Panics
    /// If the store is not connected to this processor (named in its `process` call).
    pub fn session_store<'s, K, V>(
        &'s mut self,
        handle: &'s SessionStoreHandle<K, V>,
    ) -> ProcessorSessionStore<'s, K, V> {
        let Some(store) = self.stores.session.get(&handle.name) else {
            not_connected("session", &handle.name, self.node_name)
        };
        ProcessorSessionStore {
            store,
            writable: self.stores.check_writable(&handle.name),
            outputs: self.outputs,
            handle,
            timestamp_ms: self.timestamp_ms,
        }
    }
}

/// A processor's typed view of one of its window stores; writes are logged with the
/// current record's timestamp.
pub struct ProcessorWindowStore<'s, K, V> {
    store: &'s WindowStore,
    writable: Result<(), SerdeError>,
    outputs: &'s mut Vec<OutputRecord>,
    handle: &'s WindowStoreHandle<K, V>,
    timestamp_ms: i64,
}

impl<K: 'static, V: 'static> ProcessorWindowStore<'_, K, V> {
    fn key(&self, key: &K) -> Result<Vec<u8>, SerdeError> {
        self.handle.key_serde.serialize(&self.handle.name, key)
    }

    fn value(&self, bytes: &[u8]) -> Result<V, SerdeError> {
        self.handle
            .value_serde
            .deserialize(&self.handle.name, bytes)
    }

    fn writable(&self) -> Result<(), SerdeError> {
        match &self.writable {
            Ok(()) => Ok(()),
            Err(error) => Err(SerdeError::new(&error.topic, error.message.clone())),
        }
    }

    /// Writes `value` for `key` in the window starting at `window_start_ms`; `Ok(false)`
    /// when that window is past the store's retention, and nothing was written.
    ///
    /// # Errors
    /// When the key or value does not serialize, or the store is read-only.
    pub fn put(&mut self, key: &K, value: &V, window_start_ms: i64) -> Result<bool, SerdeError> {
        self.writable()?;
        let key = self.key(key)?;
        let value = self
            .handle
            .value_serde
            .serialize(&self.handle.name, value)?;
        let (outputs, timestamp_ms) = (&mut *self.outputs, self.timestamp_ms);
        Ok(self
            .store
            .put(outputs, &key, window_start_ms, Some(value), timestamp_ms))
    }

    /// Removes `key`'s value in the window starting at `window_start_ms`.
    ///
    /// # Errors
    /// When the key does not serialize, or the store is read-only.
    pub fn remove(&mut self, key: &K, window_start_ms: i64) -> Result<(), SerdeError> {
        self.writable()?;
        let key = self.key(key)?;
        let (outputs, timestamp_ms) = (&mut *self.outputs, self.timestamp_ms);
        self.store
            .put(outputs, &key, window_start_ms, None, timestamp_ms);
        Ok(())
    }

    /// `key`'s value in the window starting at `window_start_ms`.
    ///
    /// # Errors
    /// When the key does not serialize or the stored value does not deserialize.
    pub fn fetch(&self, key: &K, window_start_ms: i64) -> Result<Option<V>, SerdeError> {
        let key = self.key(key)?;
        self.store
            .fetch(&key, window_start_ms)
            .map(|stored| self.value(&stored.value))
            .transpose()
    }

    /// `key`'s values in windows starting within `[from_ms, to_ms]`, by window start, as
    /// `(start, value)`.
    ///
    /// # Errors
    /// When the key does not serialize or a stored value does not deserialize.
    pub fn fetch_range(
        &self,
        key: &K,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, V)>, SerdeError> {
        let key = self.key(key)?;
        self.store
            .fetch_range(&key, from_ms, to_ms)
            .into_iter()
            .map(|(start_ms, stored)| Ok((start_ms, self.value(&stored.value)?)))
            .collect()
    }
}

/// A processor's typed view of one of its session stores; writes are logged with the
/// current record's timestamp.
pub struct ProcessorSessionStore<'s, K, V> {
    store: &'s SessionStore,
    writable: Result<(), SerdeError>,
    outputs: &'s mut Vec<OutputRecord>,
    handle: &'s SessionStoreHandle<K, V>,
    timestamp_ms: i64,
}

impl<K: Clone + 'static, V: 'static> ProcessorSessionStore<'_, K, V> {
    fn key(&self, key: &K) -> Result<Vec<u8>, SerdeError> {
        self.handle.key_serde.serialize(&self.handle.name, key)
    }

    fn writable(&self) -> Result<(), SerdeError> {
        match &self.writable {
            Ok(()) => Ok(()),
            Err(error) => Err(SerdeError::new(&error.topic, error.message.clone())),
        }
    }

    /// Writes `value` for the session `[start_ms, end_ms]` of `key`.
    ///
    /// # Errors
    /// When the key or value does not serialize, or the store is read-only.
    pub fn put(
        &mut self,
        key: &K,
        start_ms: i64,
        end_ms: i64,
        value: &V,
    ) -> Result<(), SerdeError> {
        self.writable()?;
        let key = self.key(key)?;
        let value = self
            .handle
            .value_serde
            .serialize(&self.handle.name, value)?;
        let (outputs, timestamp_ms) = (&mut *self.outputs, self.timestamp_ms);
        self.store
            .put(outputs, &key, start_ms, end_ms, Some(value), timestamp_ms);
        Ok(())
    }

    /// Removes the session `[start_ms, end_ms]` of `key`.
    ///
    /// # Errors
    /// When the key does not serialize, or the store is read-only.
    pub fn remove(&mut self, key: &K, start_ms: i64, end_ms: i64) -> Result<(), SerdeError> {
        self.writable()?;
        let key = self.key(key)?;
        let (outputs, timestamp_ms) = (&mut *self.outputs, self.timestamp_ms);
        self.store
            .put(outputs, &key, start_ms, end_ms, None, timestamp_ms);
        Ok(())
    }

    /// `key`'s sessions that end at or after `earliest_end_ms` and start at or before
    /// `latest_start_ms` (Kafka Streams' `findSessions`), by end.
    ///
    /// # Errors
    /// When the key does not serialize or a stored value does not deserialize.
    pub fn find_sessions(
        &self,
        key: &K,
        earliest_end_ms: i64,
        latest_start_ms: i64,
    ) -> Result<Vec<(Windowed<K>, V)>, SerdeError> {
        let key_bytes = self.key(key)?;
        self.store
            .find_overlapping(&key_bytes, earliest_end_ms, latest_start_ms)
            .into_iter()
            .map(|(start_ms, end_ms, stored)| {
                let value = self
                    .handle
                    .value_serde
                    .deserialize(&self.handle.name, &stored.value)?;
                let window = Windowed {
                    key: key.clone(),
                    start_ms,
                    end_ms,
                };
                Ok((window, value))
            })
            .collect()
    }

    /// Every live session of `key`, by end.
    ///
    /// # Errors
    /// When the key does not serialize or a stored value does not deserialize.
    pub fn fetch(&self, key: &K) -> Result<Vec<(Windowed<K>, V)>, SerdeError> {
        self.find_sessions(key, i64::MIN, i64::MAX)
    }
}
