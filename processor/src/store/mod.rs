//! State stores: key-value, window and session stores, each backed by a changelog topic.
//!
//! A store holds serialized keys and values in memory, ordered by key bytes (as Kafka
//! Streams orders them). Every write also becomes a changelog record, sent in processing
//! order with the task's other outputs; a task restores a store by replaying its changelog
//! partition before it processes anything. Host programs read stores through the typed
//! handles in [`query`].

mod key_value;
pub mod query;
mod session;
mod time_index;
mod window;

use std::collections::HashMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

pub(crate) use key_value::{KeyValueData, KeyValueStore};
pub(crate) use session::{SessionData, SessionStore};
pub(crate) use window::{WindowData, WindowStore};

use crate::lock_policy::RwLockRecover;
use crate::record::{Headers, OutputKind, OutputPartition, OutputRecord};

/// The shape of a store, as the topology declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// Latest value per key (tables, aggregates).
    KeyValue,
    /// Values per key and window start.
    Window {
        /// How long a window is kept after its start, beyond the observed stream time.
        retention_ms: i64,
        /// Whether one key and start may hold several values (stream-stream join buffers).
        keep_duplicates: bool,
    },
    /// Values per key and session.
    Session {
        /// How long a session is kept after its end.
        retention_ms: i64,
    },
}

/// A store of a topology: its name, shape and changelog.
#[derive(Debug, Clone)]
pub struct StoreSpec {
    /// Store name, unique in the topology.
    pub name: String,
    /// Key-value, window or session.
    pub kind: StoreKind,
    /// The changelog topic, `<application>-<store>-changelog`.
    pub changelog_topic: String,
}

/// A stored value with the timestamp it carries (the changelog record's timestamp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredValue {
    /// The serialized value.
    pub value: Vec<u8>,
    /// Its timestamp.
    pub timestamp_ms: i64,
}

/// The stores of one task, by name, as operators open them.
#[derive(Clone, Default)]
pub(crate) struct TaskStores {
    pub key_value: HashMap<String, KeyValueStore>,
    pub window: HashMap<String, WindowStore>,
    pub session: HashMap<String, SessionStore>,
}

impl TaskStores {
    /// Opens fresh, empty stores for the task of `partition`.
    pub fn open(specs: &[StoreSpec], partition: i32) -> TaskStores {
        let mut stores = TaskStores::default();
        for spec in specs {
            let changelog = Changelog {
                topic: spec.changelog_topic.clone(),
                partition,
            };
            match spec.kind {
                StoreKind::KeyValue => {
                    stores
                        .key_value
                        .insert(spec.name.clone(), KeyValueStore::new(changelog));
                }
                StoreKind::Window {
                    retention_ms,
                    keep_duplicates,
                } => {
                    let store = WindowStore::new(changelog, retention_ms, keep_duplicates);
                    stores.window.insert(spec.name.clone(), store);
                }
                StoreKind::Session { retention_ms } => {
                    let store = SessionStore::new(changelog, retention_ms);
                    stores.session.insert(spec.name.clone(), store);
                }
            }
        }
        stores
    }

    /// The key-value store `name`.
    ///
    /// # Panics
    /// If the topology did not declare it: the builder pairs operators with their stores.
    pub fn key_value(&self, name: &str) -> KeyValueStore {
        self.key_value
            .get(name)
            .cloned()
            .expect("the builder declares every store an operator uses")
    }

    /// The window store `name`; panics like [`TaskStores::key_value`].
    pub fn window(&self, name: &str) -> WindowStore {
        self.window
            .get(name)
            .cloned()
            .expect("the builder declares every store an operator uses")
    }

    /// The session store `name`; panics like [`TaskStores::key_value`].
    pub fn session(&self, name: &str) -> SessionStore {
        self.session
            .get(name)
            .cloned()
            .expect("the builder declares every store an operator uses")
    }

    /// Applies one changelog record of `changelog_topic` to the store it belongs to; returns
    /// false when no store of this task writes that changelog.
    pub fn restore(
        &self,
        changelog_topic: &str,
        key: &[u8],
        value: Option<&[u8]>,
        timestamp_ms: i64,
    ) -> bool {
        if let Some(store) = self
            .key_value
            .values()
            .find(|s| s.changelog_topic() == changelog_topic)
        {
            store.restore(key, value, timestamp_ms);
            return true;
        }
        if let Some(store) = self
            .window
            .values()
            .find(|s| s.changelog_topic() == changelog_topic)
        {
            store.restore(key, value, timestamp_ms);
            return true;
        }
        if let Some(store) = self
            .session
            .values()
            .find(|s| s.changelog_topic() == changelog_topic)
        {
            store.restore(key, value, timestamp_ms);
            return true;
        }
        false
    }
}

/// Where a store's writes go: its changelog topic, at the task's partition.
#[derive(Debug, Clone)]
pub(crate) struct Changelog {
    pub topic: String,
    pub partition: i32,
}

impl Changelog {
    fn record(&self, key: Vec<u8>, value: Option<Vec<u8>>, timestamp_ms: i64) -> OutputRecord {
        OutputRecord {
            topic: self.topic.clone(),
            partition: OutputPartition::Exactly(self.partition),
            key: Some(key),
            value,
            timestamp_ms,
            headers: Headers::default(),
            kind: OutputKind::Changelog,
        }
    }
}

/// Locks a store's data for reading. A poisoned lock is recovered (the workspace's policy,
/// `lock_policy.rs`): every write is a few map operations that cannot panic half-way, so
/// the data is consistent even then.
pub(crate) fn read_lock<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read_or_recover()
}

/// Locks a store's data for writing; a poisoned lock is recovered as in [`read_lock`].
pub(crate) fn write_lock<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write_or_recover()
}

/// Reads a big-endian i64 at `at`, if the bytes are there.
fn read_i64(bytes: &[u8], at: usize) -> Option<i64> {
    let slice = bytes.get(at..at.checked_add(8)?)?;
    let array: [u8; 8] = slice.try_into().ok()?;
    Some(i64::from_be_bytes(array))
}

/// Reads a big-endian i32 at `at`, if the bytes are there.
fn read_i32(bytes: &[u8], at: usize) -> Option<i32> {
    let slice = bytes.get(at..at.checked_add(4)?)?;
    let array: [u8; 4] = slice.try_into().ok()?;
    Some(i32::from_be_bytes(array))
}
