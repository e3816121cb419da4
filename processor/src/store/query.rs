//! Reading state stores from the host program ("interactive queries").
//!
//! A topology hands out typed handles for its stores; a runtime or the test driver turns a
//! handle into a view over the stores of the tasks it runs right now. A view sees only local
//! tasks: with several instances, each serves the keys of its own partitions.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::engine::StateError;
use super::{TaskStores, read_lock, write_lock};
use crate::serdes::{SerdeError, SharedSerde};
use crate::task::TaskId;
use crate::window::Windowed;

/// Why a store query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A key or value did not (de)serialize.
    #[error(transparent)]
    Serde(#[from] SerdeError),
    /// The store could not be read from disk.
    #[error(transparent)]
    State(#[from] StateError),
}

/// A typed name for a key-value store of a topology.
pub struct KeyValueStoreHandle<K, V> {
    pub(crate) name: String,
    pub(crate) key_serde: SharedSerde<K>,
    pub(crate) value_serde: SharedSerde<V>,
}

/// A typed name for a window store, with its window size.
pub struct WindowStoreHandle<K, V> {
    pub(crate) name: String,
    pub(crate) size_ms: i64,
    pub(crate) key_serde: SharedSerde<K>,
    pub(crate) value_serde: SharedSerde<V>,
}

/// A typed name for a session store.
pub struct SessionStoreHandle<K, V> {
    pub(crate) name: String,
    pub(crate) key_serde: SharedSerde<K>,
    pub(crate) value_serde: SharedSerde<V>,
}

// Clone by hand: a derive would require `K: Clone` and `V: Clone`.
impl<K, V> Clone for KeyValueStoreHandle<K, V> {
    fn clone(&self) -> Self {
        KeyValueStoreHandle {
            name: self.name.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
        }
    }
}

impl<K, V> KeyValueStoreHandle<K, V> {
    /// The store's name in the topology.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<K, V> Clone for WindowStoreHandle<K, V> {
    fn clone(&self) -> Self {
        WindowStoreHandle {
            name: self.name.clone(),
            size_ms: self.size_ms,
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
        }
    }
}

impl<K, V> WindowStoreHandle<K, V> {
    /// The store's name in the topology.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<K, V> Clone for SessionStoreHandle<K, V> {
    fn clone(&self) -> Self {
        SessionStoreHandle {
            name: self.name.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
        }
    }
}

impl<K, V> SessionStoreHandle<K, V> {
    /// The store's name in the topology.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The stores of the tasks a runtime runs now, shared with the host program.
#[derive(Clone, Default)]
pub struct StoreRegistry {
    tasks: Arc<RwLock<HashMap<TaskId, TaskStores>>>,
}

impl StoreRegistry {
    pub(crate) fn register(&self, task_id: TaskId, stores: &TaskStores) {
        let mut tasks = write_lock(&self.tasks);
        tasks.insert(task_id, stores.clone());
    }

    pub(crate) fn unregister(&self, task_id: TaskId) {
        let mut tasks = write_lock(&self.tasks);
        tasks.remove(&task_id);
    }

    fn collect<T>(&self, pick: impl Fn(&TaskStores) -> Option<T>) -> Vec<T> {
        let tasks = read_lock(&self.tasks);
        let mut ids: Vec<&TaskId> = tasks.keys().collect();
        ids.sort();
        ids.into_iter().filter_map(|id| pick(&tasks[id])).collect()
    }

    /// Each local task's data of the key-value store `name`, by task.
    pub(crate) fn key_value_parts(&self, name: &str) -> Vec<(TaskId, KeyValuePart)> {
        self.collect_with_ids(|stores| stores.key_value.get(name).map(|s| s.data.clone()))
    }

    /// Each local task's data of the window store `name`, by task.
    pub(crate) fn window_parts(&self, name: &str) -> Vec<(TaskId, WindowPart)> {
        self.collect_with_ids(|stores| stores.window.get(name).map(|s| s.data.clone()))
    }

    /// Each local task's data of the session store `name`, by task.
    pub(crate) fn session_parts(&self, name: &str) -> Vec<(TaskId, SessionPart)> {
        self.collect_with_ids(|stores| stores.session.get(name).map(|s| s.data.clone()))
    }

    fn collect_with_ids<T>(&self, pick: impl Fn(&TaskStores) -> Option<T>) -> Vec<(TaskId, T)> {
        let tasks = read_lock(&self.tasks);
        let mut found: Vec<(TaskId, T)> = tasks
            .iter()
            .filter_map(|(id, stores)| Some((*id, pick(stores)?)))
            .collect();
        found.sort_by_key(|(id, _)| *id);
        found
    }

    /// The key-value store `handle` names, across local tasks.
    pub fn key_value<K: 'static, V: 'static>(
        &self,
        handle: &KeyValueStoreHandle<K, V>,
    ) -> KeyValueView<K, V> {
        let parts =
            self.collect(|stores| stores.key_value.get(&handle.name).map(|s| s.data.clone()));
        KeyValueView {
            handle: handle.clone(),
            parts,
        }
    }

    /// The window store `handle` names, across local tasks.
    pub fn window<K: 'static, V: 'static>(
        &self,
        handle: &WindowStoreHandle<K, V>,
    ) -> WindowView<K, V> {
        let parts = self.collect(|stores| stores.window.get(&handle.name).map(|s| s.data.clone()));
        WindowView {
            handle: handle.clone(),
            parts,
        }
    }

    /// The session store `handle` names, across local tasks.
    pub fn session<K: 'static, V: 'static>(
        &self,
        handle: &SessionStoreHandle<K, V>,
    ) -> SessionView<K, V> {
        let parts = self.collect(|stores| stores.session.get(&handle.name).map(|s| s.data.clone()));
        SessionView {
            handle: handle.clone(),
            parts,
        }
    }
}

/// One task's data of a key-value store, shared with its task.
pub(crate) type KeyValuePart = Arc<RwLock<super::KeyValueData>>;
/// One task's data of a window store.
pub(crate) type WindowPart = Arc<RwLock<super::WindowData>>;
/// One task's data of a session store.
pub(crate) type SessionPart = Arc<RwLock<super::SessionData>>;

/// A read-only, typed view of a key-value store.
pub struct KeyValueView<K, V> {
    handle: KeyValueStoreHandle<K, V>,
    parts: Vec<Arc<RwLock<super::KeyValueData>>>,
}

impl<K: 'static, V: 'static> KeyValueView<K, V> {
    /// The value of `key`, if a local task holds it.
    pub fn get(&self, key: &K) -> Result<Option<V>, QueryError> {
        let key_bytes = self.handle.key_serde.serialize(&self.handle.name, key)?;
        for part in &self.parts {
            let found = read_lock(part).get(&key_bytes)?;
            if let Some(stored) = found {
                let value = self
                    .handle
                    .value_serde
                    .deserialize(&self.handle.name, &stored.value)?;
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    /// Every entry with a key in `[from, to)` (by serialized bytes), or all with `None`s.
    pub fn range(&self, from: Option<&K>, to: Option<&K>) -> Result<Vec<(K, V)>, QueryError> {
        let name = &self.handle.name;
        let from = from
            .map(|k| self.handle.key_serde.serialize(name, k))
            .transpose()?;
        let to = to
            .map(|k| self.handle.key_serde.serialize(name, k))
            .transpose()?;
        let mut entries = Vec::new();
        for part in &self.parts {
            let found = read_lock(part).range(from.as_deref(), to.as_deref())?;
            for (key, stored) in found {
                entries.push((key, stored.value));
            }
        }
        entries.sort();
        entries
            .into_iter()
            .map(|(key, value)| {
                Ok((
                    self.handle.key_serde.deserialize(name, &key)?,
                    self.handle.value_serde.deserialize(name, &value)?,
                ))
            })
            .collect()
    }

    /// Every entry, in key-byte order.
    pub fn all(&self) -> Result<Vec<(K, V)>, QueryError> {
        self.range(None, None)
    }
}

/// A read-only, typed view of a window store.
pub struct WindowView<K, V> {
    handle: WindowStoreHandle<K, V>,
    parts: Vec<Arc<RwLock<super::WindowData>>>,
}

impl<K: Clone + 'static, V: 'static> WindowView<K, V> {
    /// The windows of `key` starting within `[from_ms, to_ms]`, by start.
    pub fn fetch(
        &self,
        key: &K,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(Windowed<K>, V)>, QueryError> {
        let name = &self.handle.name;
        let key_bytes = self.handle.key_serde.serialize(name, key)?;
        let mut found = Vec::new();
        for part in &self.parts {
            let entries = read_lock(part).fetch_range(&key_bytes, from_ms, to_ms)?;
            for (start_ms, stored) in entries {
                let value = self.handle.value_serde.deserialize(name, &stored.value)?;
                found.push((self.windowed(key.clone(), start_ms), value));
            }
        }
        found.sort_by_key(|(window, _)| window.start_ms);
        Ok(found)
    }

    /// Every window of every key, by key bytes then start.
    pub fn all(&self) -> Result<Vec<(Windowed<K>, V)>, QueryError> {
        let name = &self.handle.name;
        let mut raw = Vec::new();
        for part in &self.parts {
            for (key, start_ms, stored) in read_lock(part).all()? {
                raw.push((key, start_ms, stored.value));
            }
        }
        raw.sort();
        raw.into_iter()
            .map(|(key, start_ms, value)| {
                let key = self.handle.key_serde.deserialize(name, &key)?;
                let value = self.handle.value_serde.deserialize(name, &value)?;
                Ok((self.windowed(key, start_ms), value))
            })
            .collect()
    }

    fn windowed(&self, key: K, start_ms: i64) -> Windowed<K> {
        Windowed {
            key,
            start_ms,
            end_ms: start_ms.saturating_add(self.handle.size_ms),
        }
    }
}

/// A read-only, typed view of a session store.
pub struct SessionView<K, V> {
    handle: SessionStoreHandle<K, V>,
    parts: Vec<Arc<RwLock<super::SessionData>>>,
}

impl<K: Clone + 'static, V: 'static> SessionView<K, V> {
    /// Every session of `key`, by end.
    pub fn fetch(&self, key: &K) -> Result<Vec<(Windowed<K>, V)>, QueryError> {
        let name = &self.handle.name;
        let key_bytes = self.handle.key_serde.serialize(name, key)?;
        let mut found = Vec::new();
        for part in &self.parts {
            for (start_ms, end_ms, stored) in read_lock(part).fetch(&key_bytes)? {
                let value = self.handle.value_serde.deserialize(name, &stored.value)?;
                let window = Windowed {
                    key: key.clone(),
                    start_ms,
                    end_ms,
                };
                found.push((window, value));
            }
        }
        Ok(found)
    }
}
