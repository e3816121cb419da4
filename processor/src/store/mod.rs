//! State stores: key-value, window and session stores, each backed by a changelog topic.
//!
//! A store holds serialized keys and values ordered by key bytes (as Kafka Streams orders
//! them), in memory or on disk ([`StoreBacking`]; `map` is where the two differ, `engine`
//! is the disk, `layout` the bytes). Every write also becomes a changelog record, sent in
//! processing order with the task's other outputs; a task restores a store by replaying
//! its changelog partition (or, for a persistent store, only the tail past its
//! checkpoint, see `checkpoint`) before it processes anything. Host programs read stores
//! through the typed handles in [`query`].

pub(crate) mod cache;
pub(crate) mod checkpoint;
pub(crate) mod codec;
pub(crate) mod engine;
pub mod json_query;
mod key_value;
mod layout;
mod map;
pub mod query;
mod segments;
mod session;
mod window;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub(crate) use key_value::{KeyValueData, KeyValueStore};
pub(crate) use session::{SessionData, SessionStore};
pub(crate) use window::{WindowData, WindowStore};

use self::cache::{CacheBudget, RecordCache};
use self::engine::{StateEngine, StateError};
use self::map::OrderedMap;
use self::segments::{SegmentHome, Segments};
use crate::lock_policy::{MutexRecover, RwLockRecover};
use crate::record::{OutputKind, OutputPartition, OutputRecord, no_headers};
use crate::task::TaskId;

/// Where a store keeps its data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StoreBacking {
    /// On disk, in the runtime's state directory (Kafka Streams' RocksDB stores): state
    /// may be larger than memory, and a restart restores only the changelog tail past the
    /// store's checkpoint. Where the runtime has no state directory, such a store is kept
    /// in memory.
    #[default]
    Persistent,
    /// In memory only: restored from the whole changelog at every start.
    InMemory,
}

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
    /// In memory or on disk.
    pub backing: StoreBacking,
    /// Whether writes go to the changelog (and a restore replays it).
    pub logging: bool,
    /// Changelog topic configs over the defaults, from the store's `Materialized`.
    pub changelog_configs: Vec<(String, String)>,
    /// Whether the operator writing the store may put a record cache in front of it.
    pub caching: bool,
}

/// A stored value with the timestamp it carries (the changelog record's timestamp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredValue {
    /// The serialized value.
    pub value: Vec<u8>,
    /// Its timestamp.
    pub timestamp_ms: i64,
}

/// The first failure of a task's stores: operators cannot return errors, so a store that
/// fails answers "nothing there" and records why here; the runtime checks after each round
/// and stops before anything of that round is sent or committed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Failures(Arc<Mutex<Option<StateError>>>);

impl Failures {
    /// `result`'s value, or `None` after recording its error.
    pub fn note<T>(&self, result: Result<T, StateError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                let mut first = self.0.lock_or_recover();
                first.get_or_insert(error);
                None
            }
        }
    }

    /// The first failure, if any, taken.
    pub fn take(&self) -> Option<StateError> {
        self.0.lock_or_recover().take()
    }
}

/// Where a task's stores live.
#[derive(Debug, Clone)]
pub(crate) enum StateHome {
    /// Every store in memory: no state directory.
    Memory,
    /// Persistent stores in this engine, in-memory ones in memory.
    Engine(Arc<StateEngine>),
}

/// The stores of one task, by name, as operators open them.
#[derive(Clone, Default)]
pub(crate) struct TaskStores {
    pub key_value: HashMap<String, KeyValueStore>,
    pub window: HashMap<String, WindowStore>,
    pub session: HashMap<String, SessionStore>,
    /// The engine of the persistent ones, if any store is.
    engine: Option<Arc<StateEngine>>,
    failures: Failures,
    /// The instance's record cache budget, which the operators' caches draw on.
    cache: CacheBudget,
    /// The task's partition, for operators that tell other tasks where to answer (the
    /// foreign-key join).
    pub partition: i32,
    /// Stores that more than one operator uses (a join reading an aggregate's table): not
    /// cached, since the cache lives in the writing operator and the others would read
    /// past it.
    pub uncached: HashSet<String>,
    /// Stores whose `Materialized` turned caching off.
    caching_disabled: HashSet<String>,
}

impl TaskStores {
    /// Opens the stores of task `task`: persistent ones with what the engine holds, the
    /// others empty. Blocks on disk.
    pub fn open(
        specs: &[StoreSpec],
        task: TaskId,
        home: &StateHome,
        cache: &CacheBudget,
    ) -> Result<TaskStores, StateError> {
        let mut stores = TaskStores {
            cache: cache.clone(),
            partition: task.partition,
            ..TaskStores::default()
        };
        for spec in specs {
            let changelog = Changelog {
                topic: spec.changelog_topic.clone(),
                partition: task.partition,
                enabled: spec.logging,
            };
            if !spec.caching {
                stores.caching_disabled.insert(spec.name.clone());
            }
            let engine = match (home, spec.backing) {
                (StateHome::Engine(engine), StoreBacking::Persistent) => Some(engine),
                _ => None,
            };
            if let Some(engine) = engine {
                stores.engine = Some(engine.clone());
            }
            stores.open_one(spec, changelog, task, engine)?;
        }
        Ok(stores)
    }

    fn open_one(
        &mut self,
        spec: &StoreSpec,
        changelog: Changelog,
        task: TaskId,
        engine: Option<&Arc<StateEngine>>,
    ) -> Result<(), StateError> {
        let failures = self.failures.clone();
        let home = match engine {
            Some(engine) => SegmentHome::Persistent {
                engine: engine.clone(),
                task: task.to_string(),
                store: spec.name.clone(),
            },
            None => SegmentHome::Memory,
        };
        match spec.kind {
            StoreKind::KeyValue => {
                let map = match engine {
                    Some(engine) => {
                        let name = layout::store_keyspace(&task.to_string(), &spec.name);
                        OrderedMap::persistent(engine, &name)?
                    }
                    None => OrderedMap::Memory(BTreeMap::new()),
                };
                let store = KeyValueStore::new(changelog, map, failures);
                self.key_value.insert(spec.name.clone(), store);
            }
            StoreKind::Window {
                retention_ms,
                keep_duplicates,
            } => {
                let entries = Segments::open(home, retention_ms)?;
                let store =
                    WindowStore::new(changelog, entries, retention_ms, keep_duplicates, failures)?;
                self.window.insert(spec.name.clone(), store);
            }
            StoreKind::Session { retention_ms } => {
                let entries = Segments::open(home, retention_ms)?;
                let store = SessionStore::new(changelog, entries, retention_ms, failures)?;
                self.session.insert(spec.name.clone(), store);
            }
        }
        Ok(())
    }

    /// A record cache for `store` of this task, or `None` when caching is off or other
    /// operators read the store.
    pub fn cache<T>(&self, store: &str) -> Option<RecordCache<T>> {
        if self.uncached.contains(store) || self.caching_disabled.contains(store) {
            return None;
        }
        self.cache.cache()
    }

    /// The first failure of these stores since the last call, if any.
    pub fn take_failure(&self) -> Option<StateError> {
        self.failures.take()
    }

    /// Bytes of writes not yet flushed to disk.
    pub fn pending_bytes(&self) -> usize {
        let key_value: usize = self
            .key_value
            .values()
            .map(|s| read_lock(&s.data).map.pending_bytes())
            .sum();
        let window: usize = self
            .window
            .values()
            .map(|s| read_lock(&s.data).pending_bytes())
            .sum();
        let session: usize = self
            .session
            .values()
            .map(|s| read_lock(&s.data).pending_bytes())
            .sum();
        key_value + window + session
    }

    /// Writes every pending write of these stores to the engine in one atomic batch (not
    /// yet synced: see [`StateEngine::persist`]); returns the expired segments to delete
    /// once it is. Blocks on disk.
    pub fn write_pending(&self) -> Result<Vec<OrderedMapToDelete>, StateError> {
        let Some(engine) = &self.engine else {
            return Ok(Vec::new());
        };
        let mut batch = engine.batch();
        let mut expired = Vec::new();
        for store in self.key_value.values() {
            write_lock(&store.data).map.flush_into(&mut batch);
        }
        for store in self.window.values() {
            expired.extend(write_lock(&store.data).entries_mut().flush_into(&mut batch));
        }
        for store in self.session.values() {
            expired.extend(write_lock(&store.data).entries_mut().flush_into(&mut batch));
        }
        engine.commit(batch)?;
        Ok(expired.into_iter().map(OrderedMapToDelete).collect())
    }

    /// Whether the store writing `changelog_topic` keeps its data on disk.
    pub fn is_persistent(&self, changelog_topic: &str) -> bool {
        let persistent = |map: &OrderedMap| matches!(map, OrderedMap::Persistent(_));
        if let Some(store) = self
            .key_value
            .values()
            .find(|s| s.changelog_topic() == changelog_topic)
        {
            return persistent(&read_lock(&store.data).map);
        }
        let window = self
            .window
            .values()
            .any(|s| s.changelog_topic() == changelog_topic && read_lock(&s.data).is_persistent());
        let session = self
            .session
            .values()
            .any(|s| s.changelog_topic() == changelog_topic && read_lock(&s.data).is_persistent());
        window || session
    }

    /// Empties the store writing `changelog_topic`, on disk too, before a full restore.
    /// Blocks on disk.
    pub fn wipe(&self, changelog_topic: &str) -> Result<(), StateError> {
        for store in self.key_value.values() {
            if store.changelog_topic() == changelog_topic {
                write_lock(&store.data).map.clear()?;
            }
        }
        for store in self.window.values() {
            if store.changelog_topic() == changelog_topic {
                write_lock(&store.data).clear()?;
            }
        }
        for store in self.session.values() {
            if store.changelog_topic() == changelog_topic {
                write_lock(&store.data).clear()?;
            }
        }
        Ok(())
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

/// An expired segment whose keyspace is deleted once the batch that expired it is durable.
pub(crate) struct OrderedMapToDelete(OrderedMap);

impl OrderedMapToDelete {
    /// Deletes the keyspace. Blocks on disk.
    pub fn delete(self) -> Result<(), StateError> {
        segments::delete_segments([self.0])
    }
}

/// Where a store's writes go: its changelog topic, at the task's partition.
#[derive(Debug, Clone)]
pub(crate) struct Changelog {
    pub topic: String,
    pub partition: i32,
    /// False when the store's `Materialized` disabled logging: writes log nothing.
    pub enabled: bool,
}

impl Changelog {
    /// Logs one write to `outputs`, unless logging is off.
    fn log(
        &self,
        outputs: &mut Vec<OutputRecord>,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        timestamp_ms: i64,
    ) {
        if self.enabled {
            outputs.push(self.record(key, value, timestamp_ms));
        }
    }

    fn record(&self, key: Vec<u8>, value: Option<Vec<u8>>, timestamp_ms: i64) -> OutputRecord {
        OutputRecord {
            topic: self.topic.clone(),
            partition: OutputPartition::Exactly(self.partition),
            key: Some(key),
            value,
            timestamp_ms,
            headers: no_headers(),
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
