//! A test driver: runs a topology without a broker, like Kafka Streams' TopologyTestDriver.
//!
//! Every topic has the same number of partitions (1 unless [`TestDriver::with_partitions`]).
//! Piping a record runs it through the whole topology at once, repartition topics included,
//! and then acts as if the driver committed: persistent stores flush their writes to disk.
//! Outputs wait in per-topic queues.
//!
//! Persistent stores live in a temporary state directory removed when the driver is
//! dropped, as TopologyTestDriver's RocksDB stores do; [`TestDriver::with_store_backing`]
//! with [`StoreBacking::InMemory`] keeps every store in memory instead, so a test can check
//! both give the same results.
//!
//! Record caches are off by default ([`TestDriverConfig::cache_max_bytes`] 0): one update
//! per record. TopologyTestDriver takes `statestore.cache.max.bytes` from its config (10
//! MiB unless set) but commits, flushing its caches, after every record, so its outputs
//! are the uncached ones too. To see what a cache does, give it bytes and
//! [`DriverCommit::Manual`], and call [`TestDriver::commit`].

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use crate::record::{
    Headers, InputRecord, OutputKind, OutputRecord, TopicPartition, murmur2_partition,
};
use crate::serdes::{Serde, SharedSerde};
use crate::store::cache::CacheBudget;
use crate::store::engine::StateEngine;
use crate::store::query::{
    KeyValueStoreHandle, KeyValueView, SessionStoreHandle, SessionView, StoreRegistry,
    WindowStoreHandle, WindowView,
};
use crate::store::{StateHome, StoreBacking};
use crate::task::{CommitMetadata, Task, TaskId, TaskMetrics};
use crate::topology::Topology;

/// Numbers the temporary state directories of drivers in one process.
static NEXT_STATE_DIR: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Records one piped record may cause through repartition topics before the driver gives
/// up: a finite topology never gets near it.
const MAX_ROUTED_RECORDS_PER_INPUT: usize = 1_000_000;

/// Rounds of cache flushes one commit may take (a flush feeds caches of later
/// sub-topologies through repartition topics) before the driver gives up.
const MAX_FLUSH_ROUNDS_PER_COMMIT: usize = 1_000;

/// How a [`TestDriver`] runs a topology.
#[derive(Debug, Clone)]
pub struct TestDriverConfig {
    /// Partitions of every topic; at least 1.
    pub partitions: i32,
    /// Stores as the topology declares them ([`StoreBacking::Persistent`], in a temporary
    /// state directory) or every one in memory ([`StoreBacking::InMemory`]).
    pub store_backing: StoreBacking,
    /// Record cache bytes over every store (the runtimes' `RuntimeConfig::cache_max_bytes`);
    /// 0, the default, turns caching off.
    pub cache_max_bytes: usize,
    /// When the driver commits (flushing caches, then stores).
    pub commit: DriverCommit,
}

impl Default for TestDriverConfig {
    /// One partition, persistent stores, no cache, a commit after every piped record.
    fn default() -> Self {
        TestDriverConfig {
            partitions: 1,
            store_backing: StoreBacking::Persistent,
            cache_max_bytes: 0,
            commit: DriverCommit::AfterEveryInput,
        }
    }
}

/// When a [`TestDriver`] commits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DriverCommit {
    /// After every piped record and wall-clock advance, as TopologyTestDriver does.
    #[default]
    AfterEveryInput,
    /// Only when the test calls [`TestDriver::commit`]: what a runtime's commit interval
    /// does between its commits, such as caches coalescing updates.
    Manual,
}

/// Runs a topology synchronously for tests.
pub struct TestDriver {
    state: Rc<RefCell<DriverState>>,
}

struct DriverState {
    topology: Topology,
    partitions: i32,
    tasks: BTreeMap<TaskId, Task>,
    registry: StoreRegistry,
    next_offsets: HashMap<TopicPartition, i64>,
    /// Every record written to each changelog, repartition and table source topic-partition:
    /// what a restart restores from. Stream inputs and sink outputs are not kept (outputs
    /// wait in `unread` until a test reads them), so a long test's memory does not grow
    /// with its input.
    topics: HashMap<TopicPartition, Vec<InputRecord>>,
    /// Sink records not yet read by a test, per topic.
    unread: HashMap<String, VecDeque<InputRecord>>,
    committed: HashMap<TaskId, CommitMetadata>,
    /// Counters of tasks that crashed, so totals survive a restart.
    crashed_metrics: TaskMetrics,
    /// Where stores live: a temporary state directory, or memory.
    home: StateHome,
    /// Per changelog partition, the changelog length when its store was last flushed: a
    /// persistent store restores only past it.
    flushed: HashMap<TopicPartition, i64>,
    /// The temporary state directory, removed on drop.
    state_dir: Option<std::path::PathBuf>,
    /// The mocked wall clock, in ms: starts at 0 and moves only with
    /// [`TestDriver::advance_wall_clock`].
    wall_clock_ms: i64,
    /// The record cache budget of every task's caches.
    cache: CacheBudget,
    commit: DriverCommit,
}

impl Drop for DriverState {
    fn drop(&mut self) {
        self.tasks.clear();
        self.registry = StoreRegistry::default();
        self.home = StateHome::Memory;
        if let Some(dir) = &self.state_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A record read from an output topic.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRecord<K, V> {
    /// The key.
    pub key: K,
    /// The value; `None` for a tombstone.
    pub value: Option<V>,
    /// The record timestamp.
    pub timestamp_ms: i64,
    /// The partition it went to.
    pub partition: i32,
    /// The headers.
    pub headers: Headers,
}

impl TestDriver {
    /// A driver with one partition per topic.
    pub fn new(topology: Topology) -> TestDriver {
        TestDriver::with_partitions(topology, 1)
    }

    /// A driver whose every topic has `partitions` partitions.
    ///
    /// # Panics
    /// If `partitions` is not positive.
    pub fn with_partitions(topology: Topology, partitions: i32) -> TestDriver {
        TestDriver::with_store_backing(topology, partitions, StoreBacking::Persistent)
    }

    /// A driver whose every topic has `partitions` partitions, with stores as the
    /// topology declares them ([`StoreBacking::Persistent`]) or every one in memory
    /// ([`StoreBacking::InMemory`]).
    ///
    /// # Panics
    /// If `partitions` is not positive, or the temporary state directory cannot be opened.
    pub fn with_store_backing(
        topology: Topology,
        partitions: i32,
        backing: StoreBacking,
    ) -> TestDriver {
        let config = TestDriverConfig {
            partitions,
            store_backing: backing,
            ..TestDriverConfig::default()
        };
        TestDriver::with_config(topology, config)
    }

    /// A driver as `config` says: partitions, store backing, record cache and commits.
    ///
    /// # Panics
    /// If `config.partitions` is not positive, or the temporary state directory cannot be
    /// opened.
    pub fn with_config(topology: Topology, config: TestDriverConfig) -> TestDriver {
        let (partitions, backing) = (config.partitions, config.store_backing);
        assert!(partitions > 0, "a topic has at least one partition");
        let (home, state_dir) = match backing {
            StoreBacking::InMemory => (StateHome::Memory, None),
            StoreBacking::Persistent => {
                let number = NEXT_STATE_DIR.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let name = format!("riffle-test-driver-{}-{number}", std::process::id());
                let dir = std::env::temp_dir().join(name);
                let _ = std::fs::remove_dir_all(&dir);
                let engine = StateEngine::open(&dir).expect("a temporary state directory");
                (StateHome::Engine(Arc::new(engine)), Some(dir))
            }
        };
        let mut state = DriverState {
            topology,
            partitions,
            tasks: BTreeMap::new(),
            registry: StoreRegistry::default(),
            next_offsets: HashMap::new(),
            topics: HashMap::new(),
            unread: HashMap::new(),
            committed: HashMap::new(),
            crashed_metrics: TaskMetrics::default(),
            home,
            flushed: HashMap::new(),
            state_dir,
            wall_clock_ms: 0,
            cache: CacheBudget::new(config.cache_max_bytes),
            commit: config.commit,
        };
        state.start_tasks();
        TestDriver {
            state: Rc::new(RefCell::new(state)),
        }
    }

    /// A topic to pipe records into.
    pub fn input_topic<K: 'static, V: 'static>(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> TestInputTopic<K, V> {
        TestInputTopic {
            state: self.state.clone(),
            topic: topic.to_string(),
            key_serde: Arc::new(key_serde),
            value_serde: Arc::new(value_serde),
            time_ms: 0,
        }
    }

    /// A topic to read outputs from.
    pub fn output_topic<K: 'static, V: 'static>(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> TestOutputTopic<K, V> {
        TestOutputTopic {
            state: self.state.clone(),
            topic: topic.to_string(),
            key_serde: Arc::new(key_serde),
            value_serde: Arc::new(value_serde),
        }
    }

    /// The topology and the stores of its tasks, for the `/apps` tests.
    #[cfg(test)]
    pub(crate) fn topology_and_stores(&self) -> (Topology, StoreRegistry) {
        let state = self.state.borrow();
        (state.topology.clone(), state.registry.clone())
    }

    /// The key-value store `handle` names.
    pub fn key_value_store<K: 'static, V: 'static>(
        &self,
        handle: &KeyValueStoreHandle<K, V>,
    ) -> KeyValueView<K, V> {
        self.state.borrow().registry.key_value(handle)
    }

    /// The window store `handle` names.
    pub fn window_store<K: 'static, V: 'static>(
        &self,
        handle: &WindowStoreHandle<K, V>,
    ) -> WindowView<K, V> {
        self.state.borrow().registry.window(handle)
    }

    /// The session store `handle` names.
    pub fn session_store<K: 'static, V: 'static>(
        &self,
        handle: &SessionStoreHandle<K, V>,
    ) -> SessionView<K, V> {
        self.state.borrow().registry.session(handle)
    }

    /// Counters summed over every task, crashed ones included.
    pub fn metrics(&self) -> TaskMetrics {
        let state = self.state.borrow();
        let mut total = state.crashed_metrics.clone();
        for task in state.tasks.values() {
            total.add(task.metrics());
        }
        total
    }

    /// Records dropped so far (late, null key or value, unreadable, negative timestamp).
    pub fn dropped_records(&self) -> u64 {
        self.metrics().dropped_total()
    }

    /// Every record written to `topic` so far, in all partitions, for the topics the driver
    /// keeps: changelogs, repartition topics and table source topics. Empty for stream
    /// inputs and sink topics (read those with [`TestDriver::output_topic`]).
    pub fn topic_records(&self, topic: &str) -> Vec<InputRecord> {
        let state = self.state.borrow();
        let mut records: Vec<InputRecord> = (0..state.partitions)
            .flat_map(|p| {
                state
                    .topics
                    .get(&TopicPartition::new(topic, p))
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        records.sort_by_key(|r| (r.partition, r.offset));
        records
    }

    /// Moves the mocked wall clock forward by `advance` and runs the wall-clock
    /// punctuations that became due (TopologyTestDriver's `advanceWallClockTime`); what
    /// they forward goes through the topology at once, then the driver commits.
    pub fn advance_wall_clock(&self, advance: std::time::Duration) {
        let mut state = self.state.borrow_mut();
        let advance_ms = i64::try_from(advance.as_millis()).unwrap_or(i64::MAX);
        state.wall_clock_ms = state.wall_clock_ms.saturating_add(advance_ms);
        state.punctuate_wall_clock();
        if state.commit == DriverCommit::AfterEveryInput {
            state.commit();
        }
    }

    /// Commits now, as a runtime does every commit interval: record caches flush (their
    /// updates are written to the stores and changelogs and forwarded), stores flush to
    /// disk, and a later [`TestDriver::crash_and_restart`] resumes from here. The driver
    /// does this itself after every input unless [`DriverCommit::Manual`].
    pub fn commit(&self) {
        self.state.borrow_mut().commit();
    }

    /// The mocked wall clock, in ms (0 at the start).
    pub fn wall_clock_ms(&self) -> i64 {
        self.state.borrow().wall_clock_ms
    }

    /// Throws every task and store away and starts again from the changelogs and the last
    /// commit, as a crashed instance's successor would.
    pub fn crash_and_restart(&self) {
        let mut state = self.state.borrow_mut();
        let tasks = std::mem::take(&mut state.tasks);
        for (id, task) in tasks {
            state.registry.unregister(id);
            state.crashed_metrics.add(task.metrics());
        }
        state.start_tasks();
    }
}

impl DriverState {
    fn start_tasks(&mut self) {
        let partitions = self.partitions;
        let Ok(plan) = self.topology.plan(|_| Some(partitions)) else {
            return;
        };
        for id in plan.task_ids() {
            let mut task = self
                .topology
                .open_task(id, &self.home, &self.cache)
                .expect("the test driver's stores open");
            for changelog in task.changelog_partitions() {
                // A persistent store holds what was flushed; only the tail is replayed.
                let from = match task.stores().is_persistent(&changelog.topic) {
                    true => self.flushed.get(&changelog).copied().unwrap_or(0),
                    false => 0,
                };
                let records = self.topics.get(&changelog).cloned().unwrap_or_default();
                for record in records.iter().filter(|record| record.offset >= from) {
                    task.restore(record);
                }
            }
            if let Some(metadata) = self.committed.get(&id) {
                task.resume_from(metadata);
            }
            for input in task.input_partitions() {
                task.set_caught_up(&input, true);
            }
            self.registry.register(id, task.stores());
            self.tasks.insert(id, task);
        }
        // Processors initialize now, after the restore, at the mocked wall-clock time.
        self.punctuate_wall_clock();
    }

    /// Runs every task's wall-clock punctuations due at the mocked time, and what they cause.
    fn punctuate_wall_clock(&mut self) {
        let mut outputs = Vec::new();
        for task in self.tasks.values_mut() {
            task.punctuate_wall_clock(self.wall_clock_ms, &mut outputs);
        }
        let mut pending = VecDeque::new();
        for output in outputs {
            self.deliver(output, &mut pending);
        }
        self.run_pending(pending);
    }

    /// Gives `record` its offset; keeps a copy when `keep` (see `topics`).
    fn append(&mut self, mut record: InputRecord, keep: bool) -> InputRecord {
        let topic_partition = TopicPartition::new(record.topic.clone(), record.partition);
        let offset = self
            .next_offsets
            .entry(topic_partition.clone())
            .or_insert(0);
        record.offset = *offset;
        *offset += 1;
        if !keep {
            return record;
        }
        self.topics
            .entry(topic_partition)
            .or_default()
            .push(record.clone());
        record
    }

    /// Writes `record` to its topic and runs everything it causes.
    fn pipe(&mut self, record: InputRecord) {
        let keep = self.topology.is_source_changelog(&record.topic);
        let pending = VecDeque::from([self.append(record, keep)]);
        self.run_pending(pending);
        if self.commit == DriverCommit::AfterEveryInput {
            self.commit();
        }
    }

    /// Runs `pending` records, and every record they cause, through the tasks reading them.
    fn run_pending(&mut self, mut pending: VecDeque<InputRecord>) {
        let mut routed = 0usize;
        while let Some(record) = pending.pop_front() {
            routed += 1;
            assert!(
                routed <= MAX_ROUTED_RECORDS_PER_INPUT,
                "records loop through repartition topics"
            );
            let mut outputs = Vec::new();
            for task in self.tasks.values_mut() {
                if task
                    .input_partitions()
                    .contains(&TopicPartition::new(record.topic.clone(), record.partition))
                {
                    task.add_records([record.clone()]);
                    while task.process_next(&mut outputs) {}
                }
            }
            for output in outputs {
                self.deliver(output, &mut pending);
            }
        }
    }

    fn deliver(&mut self, output: OutputRecord, pending: &mut VecDeque<InputRecord>) {
        let partition = output.resolve_partition(self.partitions).unwrap_or(0);
        let keep =
            output.kind != OutputKind::Sink || self.topology.is_source_changelog(&output.topic);
        let record = self.append(
            InputRecord {
                topic: output.topic.clone(),
                partition,
                offset: 0,
                timestamp_ms: output.timestamp_ms,
                key: output.key,
                value: output.value,
                headers: output.headers,
            },
            keep,
        );
        match output.kind {
            OutputKind::Repartition => pending.push_back(record),
            OutputKind::Changelog => {}
            OutputKind::Sink => {
                self.unread
                    .entry(output.topic)
                    .or_default()
                    .push_back(record.clone());
                // A topology may read a topic it writes.
                if self.topology.subtopology_of(&record.topic).is_some() {
                    pending.push_back(record);
                }
            }
        }
    }

    fn commit(&mut self) {
        self.flush_caches();
        for task in self.tasks.values() {
            let stores = task.stores();
            if let Some(failure) = stores.take_failure() {
                panic!("a store of task {} failed: {failure}", task.id());
            }
            let expired = stores
                .write_pending()
                .expect("the test driver's stores flush");
            for segment in expired {
                segment.delete().expect("an expired segment is deleted");
            }
            for changelog in task.changelog_partitions() {
                let length = self.next_offsets.get(&changelog).copied().unwrap_or(0);
                self.flushed.insert(changelog, length);
            }
        }
        for (id, task) in &self.tasks {
            let metadata = CommitMetadata {
                stream_time_ms: task.stream_time_ms(),
                changelog_end_offsets: BTreeMap::new(),
                operator_progress: task.operator_progress(),
            };
            self.committed.insert(*id, metadata);
        }
    }
}

impl DriverState {
    /// Flushes every task's record caches and runs what they forward, until no cache has
    /// anything left (a flush may fill caches of later sub-topologies).
    fn flush_caches(&mut self) {
        for _ in 0..MAX_FLUSH_ROUNDS_PER_COMMIT {
            let mut outputs = Vec::new();
            let mut flushed = false;
            for task in self.tasks.values_mut() {
                flushed |= task.flush_caches(&mut outputs);
            }
            if !flushed {
                return;
            }
            let mut pending = VecDeque::new();
            for output in outputs {
                self.deliver(output, &mut pending);
            }
            self.run_pending(pending);
        }
        panic!("record caches keep refilling each other through repartition topics");
    }
}

/// An input topic of a [`TestDriver`].
pub struct TestInputTopic<K, V> {
    state: Rc<RefCell<DriverState>>,
    topic: String,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
    time_ms: i64,
}

impl<K: 'static, V: 'static> TestInputTopic<K, V> {
    /// Pipes `key`/`value` at the topic's current time.
    pub fn pipe_input(&mut self, key: K, value: V) {
        self.pipe_input_at(key, value, self.time_ms);
    }

    /// Pipes `key`/`value` with timestamp `timestamp_ms`, and moves the topic's time there.
    ///
    /// # Panics
    /// If a serde fails: test data is the test's own.
    pub fn pipe_input_at(&mut self, key: K, value: V, timestamp_ms: i64) {
        let key = self
            .key_serde
            .serialize_nullable(&self.topic, &key)
            .expect("the test's key serializes");
        let value = self
            .value_serde
            .serialize(&self.topic, &value)
            .expect("the test's value serializes");
        self.pipe_raw(key, Some(value), timestamp_ms);
    }

    /// Pipes a tombstone for `key` (for table topics).
    pub fn pipe_tombstone_at(&mut self, key: K, timestamp_ms: i64) {
        let key = self
            .key_serde
            .serialize_nullable(&self.topic, &key)
            .expect("the test's key serializes");
        self.pipe_raw(key, None, timestamp_ms);
    }

    /// Pipes raw bytes, for testing what a topology does with bad input.
    pub fn pipe_raw(&mut self, key: Option<Vec<u8>>, value: Option<Vec<u8>>, timestamp_ms: i64) {
        self.time_ms = timestamp_ms;
        let mut state = self.state.borrow_mut();
        let partitions = state.partitions;
        let partition = key
            .as_deref()
            .map_or(0, |k| murmur2_partition(k, partitions));
        state.pipe(InputRecord {
            topic: self.topic.clone(),
            partition,
            offset: 0,
            timestamp_ms,
            key,
            value,
            headers: Headers::default(),
        });
    }

    /// Moves the topic's time (the next `pipe_input`'s timestamp) forward by `advance`.
    pub fn advance_time(&mut self, advance: std::time::Duration) {
        let advance_ms = i64::try_from(advance.as_millis()).unwrap_or(i64::MAX);
        self.time_ms = self.time_ms.saturating_add(advance_ms);
    }
}

/// An output topic of a [`TestDriver`].
pub struct TestOutputTopic<K, V> {
    state: Rc<RefCell<DriverState>>,
    topic: String,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
}

impl<K: 'static, V: 'static> TestOutputTopic<K, V> {
    /// The next unread record, or `None` when all have been read.
    ///
    /// # Panics
    /// If the record's bytes do not fit the serdes: the test picked the wrong ones.
    pub fn read_record(&self) -> Option<TestRecord<K, V>> {
        let record = self
            .state
            .borrow_mut()
            .unread
            .get_mut(&self.topic)?
            .pop_front()?;
        let key = match &record.key {
            Some(bytes) => self.key_serde.deserialize(&self.topic, bytes),
            None => self
                .key_serde
                .null_value()
                .ok_or_else(|| crate::serdes::SerdeError::new(&self.topic, "null key")),
        }
        .expect("the output key fits the test's serde");
        let value = record.value.as_deref().map(|bytes| {
            self.value_serde
                .deserialize(&self.topic, bytes)
                .expect("the output value fits the test's serde")
        });
        Some(TestRecord {
            key,
            value,
            timestamp_ms: record.timestamp_ms,
            partition: record.partition,
            headers: record.headers,
        })
    }

    /// The next unread record's key and value; tombstones are skipped.
    pub fn read_key_value(&self) -> Option<(K, V)> {
        loop {
            let record = self.read_record()?;
            if let Some(value) = record.value {
                return Some((record.key, value));
            }
        }
    }

    /// Every unread key and value, in order; tombstones are skipped.
    pub fn read_key_values(&self) -> Vec<(K, V)> {
        std::iter::from_fn(|| self.read_key_value()).collect()
    }

    /// Every unread record, tombstones included.
    pub fn read_records(&self) -> Vec<TestRecord<K, V>> {
        std::iter::from_fn(|| self.read_record()).collect()
    }

    /// Whether every record has been read.
    pub fn is_empty(&self) -> bool {
        self.queue_size() == 0
    }

    /// Records not yet read.
    pub fn queue_size(&self) -> usize {
        self.state
            .borrow()
            .unread
            .get(&self.topic)
            .map_or(0, VecDeque::len)
    }
}
