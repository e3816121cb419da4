//! The runtime loop, the same over every backend.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::backend::{Backend, BackendError, BackendEvent, CommittedOffset};
use super::config::{ProcessingGuarantee, RuntimeConfig};
use crate::lock_policy::MutexRecover;
use crate::record::{InputRecord, OutputRecord, TopicPartition};
use crate::store::query::StoreRegistry;
use crate::task::{CommitMetadata, Task, TaskId, TaskMetrics};
use crate::topology::{PartitionPlan, Topology, TopologyError};

/// How often the runner looks again for source topics that do not exist yet.
const SOURCE_TOPICS_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Why a runtime stopped.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The topology cannot run on this cluster (missing or not co-partitioned topics).
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The cluster failed a request the runtime cannot do without.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// What a running topology is doing, readable from the host program.
#[derive(Debug, Clone, Default)]
pub struct RuntimeStatus {
    /// Tasks this instance runs now.
    pub tasks: Vec<TaskId>,
    /// Counters over every task this instance ran.
    pub metrics: TaskMetrics,
    /// Commits made (under exactly-once, transactions committed).
    pub commits: u64,
    /// Under exactly-once, transactions aborted: each time, every task went back to its
    /// last commit.
    pub aborted_transactions: u64,
}

/// Runs one topology over one backend until told to stop.
pub struct Runner<B: Backend> {
    topology: Topology,
    backend: B,
    config: RuntimeConfig,
    registry: StoreRegistry,
    status: Arc<Mutex<RuntimeStatus>>,
    tasks: BTreeMap<TaskId, Task>,
    /// Outputs of processed records not yet sent.
    outputs: Vec<OutputRecord>,
    partition_counts: HashMap<String, i32>,
    /// Per changelog partition, the offset after the last write known to be acknowledged.
    changelog_end_offsets: BTreeMap<TopicPartition, i64>,
    /// Spreads keyless records over partitions.
    next_keyless_partition: i32,
    closed_metrics: TaskMetrics,
    /// Dropped records already logged: drops are logged once per commit, when they grew.
    logged_dropped_total: u64,
    last_commit: Instant,
    /// Whether records were processed since the last commit or abort: under exactly-once
    /// an idle instance commits no empty transactions.
    uncommitted: bool,
    /// Set by an abort under exactly-once: every task is rebuilt from its last commit
    /// before processing goes on.
    rewind_pending: bool,
}

impl<B: Backend> Runner<B> {
    /// A runner for `topology` over `backend`; nothing happens until [`Runner::run_until`].
    pub fn new(topology: Topology, backend: B, config: RuntimeConfig) -> Runner<B> {
        Runner {
            topology,
            backend,
            config,
            registry: StoreRegistry::default(),
            status: Arc::default(),
            tasks: BTreeMap::new(),
            outputs: Vec::new(),
            partition_counts: HashMap::new(),
            changelog_end_offsets: BTreeMap::new(),
            next_keyless_partition: 0,
            closed_metrics: TaskMetrics::default(),
            logged_dropped_total: 0,
            last_commit: Instant::now(),
            uncommitted: false,
            rewind_pending: false,
        }
    }

    /// The stores of this instance's tasks, for queries from the host program.
    pub fn stores(&self) -> StoreRegistry {
        self.registry.clone()
    }

    /// Tasks, counters and commits, updated as the runner goes.
    pub fn status(&self) -> Arc<Mutex<RuntimeStatus>> {
        self.status.clone()
    }

    /// Runs until `shutdown` completes, then commits and leaves the group.
    ///
    /// # Errors
    /// When the topology cannot run on the cluster, or a request it cannot do without
    /// fails (the error says which). Under exactly-once a failed write or commit is not
    /// one: the transaction is aborted and processing goes on from the last commit; only
    /// a failed abort stops the runner.
    pub async fn run_until(
        mut self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), RuntimeError> {
        let mut shutdown = std::pin::pin!(shutdown);
        // A stop while waiting for source topics ends the runner without an error.
        let started = tokio_select(&mut shutdown, self.start()).await;
        match started {
            None => return Ok(self.backend.close().await?),
            Some(started) => started?,
        }
        loop {
            let poll_timeout = self.config.poll_timeout;
            let events = tokio_select(&mut shutdown, self.backend.poll(poll_timeout)).await;
            let Some(events) = events else {
                break;
            };
            self.handle_events(events?).await?;
            self.rewind_if_aborted().await?;
            let round = self.process_round().await;
            self.settle(round).await?;
            if self.last_commit.elapsed() >= self.config.commit_interval {
                self.commit().await?;
            }
        }
        self.commit().await?;
        self.backend.close().await?;
        Ok(())
    }

    /// Plans partitions, creates internal topics, starts transactions under exactly-once
    /// and joins the group.
    async fn start(&mut self) -> Result<(), RuntimeError> {
        let plan = self.plan().await?;
        for topic in &plan.internal_topics {
            self.backend.create_topic(topic).await?;
            self.partition_counts
                .insert(topic.name.clone(), topic.partitions);
        }
        let group_id = self.topology.application_id().to_string();
        let guarantee = self.config.processing_guarantee;
        if guarantee == ProcessingGuarantee::ExactlyOnce {
            let instance_id = self.config.instance_id.clone();
            let transactional_id = transactional_id(&group_id, instance_id);
            self.backend.init_transactions(&transactional_id).await?;
            tracing::info!(application = %group_id, %transactional_id, "transactions initialized");
        }
        let topics = self.topology.source_topics();
        self.backend.subscribe(&group_id, &topics).await?;
        tracing::info!(application = %group_id, ?topics, %guarantee, "processor started");
        Ok(())
    }

    /// Waits for the source topics to exist, then resolves partition counts.
    async fn plan(&mut self) -> Result<PartitionPlan, RuntimeError> {
        let mut next_warning = Instant::now() + self.config.source_topics_warning_interval;
        loop {
            for topic in self.topology.external_source_topics() {
                if let Some(count) = self.backend.partition_count(&topic).await? {
                    self.partition_counts.insert(topic, count);
                }
            }
            let counts = self.partition_counts.clone();
            match self.topology.plan(|topic| counts.get(topic).copied()) {
                Err(TopologyError::MissingSourceTopic(topic)) => {
                    if Instant::now() >= next_warning {
                        tracing::warn!(
                            application = self.topology.application_id(),
                            %topic,
                            "waiting for a source topic: create it, or produce to it where topics are auto-created"
                        );
                        next_warning = Instant::now() + self.config.source_topics_warning_interval;
                    }
                    tokio::time::sleep(SOURCE_TOPICS_POLL_INTERVAL).await;
                }
                result => return Ok(result?),
            }
        }
    }

    async fn handle_events(&mut self, events: Vec<BackendEvent>) -> Result<(), RuntimeError> {
        for event in events {
            match event {
                BackendEvent::Assigned(partitions) => self.assign(partitions).await?,
                BackendEvent::Revoked(partitions) => self.revoke(partitions).await?,
                BackendEvent::Records(records) => self.route(records),
            }
        }
        Ok(())
    }

    fn task_of(&self, topic: &str, partition: i32) -> Option<TaskId> {
        let subtopology = self.topology.subtopology_of(topic)?;
        Some(TaskId {
            subtopology,
            partition,
        })
    }

    fn route(&mut self, records: Vec<InputRecord>) {
        for record in records {
            let Some(id) = self.task_of(&record.topic, record.partition) else {
                continue;
            };
            if let Some(task) = self.tasks.get_mut(&id) {
                task.add_records([record]);
            }
        }
    }

    async fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<(), RuntimeError> {
        let mut new_ids: Vec<TaskId> = partitions
            .iter()
            .filter_map(|tp| self.task_of(&tp.topic, tp.partition))
            .collect();
        new_ids.sort();
        new_ids.dedup();
        for id in new_ids {
            if self.tasks.contains_key(&id) {
                continue;
            }
            let task = self.restored_task(id).await?;
            self.registry.register(id, task.stores());
            tracing::info!(task = %id, "task assigned and restored");
            self.tasks.insert(id, task);
        }
        self.publish_status();
        Ok(())
    }

    /// A new task with its stores restored up to what its last commit covers.
    async fn restored_task(&mut self, id: TaskId) -> Result<Task, RuntimeError> {
        let mut task = self.topology.create_task(id);
        let inputs = task.input_partitions();
        let committed: HashMap<TopicPartition, Option<CommittedOffset>> =
            self.backend.committed(&inputs).await?.into_iter().collect();
        let metadata = committed
            .values()
            .flatten()
            .find_map(|c| CommitMetadata::decode(&c.metadata));
        for changelog in task.changelog_partitions() {
            let end_offset = self.restore_end_offset(&changelog, &committed, metadata.as_ref());
            let records = match end_offset {
                Some(0) => Vec::new(),
                _ => self.backend.read_range(&changelog, 0, end_offset).await?,
            };
            let restored_end = records
                .last()
                .map_or(end_offset.unwrap_or(0), |r| r.offset + 1);
            for record in &records {
                task.restore(record);
            }
            if !self.topology.is_source_changelog(&changelog.topic) {
                self.changelog_end_offsets.insert(changelog, restored_end);
            }
        }
        if let Some(metadata) = &metadata {
            task.resume_from(metadata);
        }
        Ok(task)
    }

    /// Where restoring `changelog` stops (exclusive); `None`: at its end.
    fn restore_end_offset(
        &self,
        changelog: &TopicPartition,
        committed: &HashMap<TopicPartition, Option<CommittedOffset>>,
        metadata: Option<&CommitMetadata>,
    ) -> Option<i64> {
        if self.topology.is_source_changelog(&changelog.topic) {
            // A table's topic is its changelog: replay it up to where processing resumes.
            let resume = committed.get(changelog).cloned().flatten();
            return Some(resume.map_or(0, |c| c.offset));
        }
        let any_commit = committed.values().any(Option::is_some);
        match (self.config.processing_guarantee, metadata, any_commit) {
            // Changelog writes commit in the same transaction as the input offsets, and the
            // restore reads read_committed: the whole committed changelog is exactly the
            // state those offsets imply, so no changelog offsets need to be kept.
            (ProcessingGuarantee::ExactlyOnce, _, _) => None,
            // At-least-once writes are visible at once, also those past the last commit:
            // stop where that commit's flush had got to.
            (ProcessingGuarantee::AtLeastOnce, Some(metadata), _) => {
                let key = CommitMetadata::changelog_key(changelog);
                Some(
                    metadata
                        .changelog_end_offsets
                        .get(&key)
                        .copied()
                        .unwrap_or(0),
                )
            }
            // Never committed: the input is read from the start, so start empty.
            (ProcessingGuarantee::AtLeastOnce, None, false) => Some(0),
            // Committed by something else: the whole changelog is the best guess.
            (ProcessingGuarantee::AtLeastOnce, None, true) => None,
        }
    }

    async fn revoke(&mut self, partitions: Vec<TopicPartition>) -> Result<(), RuntimeError> {
        let ids: Vec<TaskId> = partitions
            .iter()
            .filter_map(|tp| self.task_of(&tp.topic, tp.partition))
            .collect();
        // Hand over what was processed, so the next owner starts where this one stopped; a
        // failed commit only means that owner reprocesses from the previous one (whose
        // state it restores; under exactly-once this one's transaction was aborted).
        if let Err(error) = self.commit().await {
            tracing::warn!(%error, "commit before revocation failed; the next owner reprocesses");
        }
        for id in ids {
            if let Some(task) = self.tasks.remove(&id) {
                self.registry.unregister(id);
                self.closed_metrics.add(task.metrics());
                tracing::info!(task = %id, "task revoked");
            }
        }
        self.publish_status();
        Ok(())
    }

    /// Processes buffered records of every task, lowest timestamp first within each, then
    /// sends the outputs.
    async fn process_round(&mut self) -> Result<(), BackendError> {
        let limit = self.config.max_records_per_round;
        let mut processed = 0usize;
        for task in self.tasks.values_mut() {
            for input in task.input_partitions() {
                task.set_caught_up(&input, self.backend.is_caught_up(&input));
            }
            while processed < limit && task.process_next(&mut self.outputs) {
                processed += 1;
            }
        }
        if processed > 0 {
            self.uncommitted = true;
            self.publish_status();
        }
        self.send_outputs().await
    }

    async fn send_outputs(&mut self) -> Result<(), BackendError> {
        let outputs = std::mem::take(&mut self.outputs);
        for output in outputs {
            let count = self.partition_count_for(&output.topic).await?;
            let partition = match output.resolve_partition(count) {
                Some(partition) => partition,
                None => {
                    self.next_keyless_partition = (self.next_keyless_partition + 1) % count;
                    self.next_keyless_partition
                }
            };
            self.backend.send(partition, output).await?;
        }
        Ok(())
    }

    /// The partition count of an output topic; a sink topic that does not exist is created
    /// with one partition, as a broker's auto-creation would.
    async fn partition_count_for(&mut self, topic: &str) -> Result<i32, BackendError> {
        if let Some(count) = self.partition_counts.get(topic) {
            return Ok(*count);
        }
        let count = match self.backend.partition_count(topic).await? {
            Some(count) => count,
            None => {
                let spec = crate::topology::InternalTopic {
                    name: topic.to_string(),
                    partitions: 1,
                    configs: Vec::new(),
                };
                self.backend.create_topic(&spec).await?;
                tracing::info!(topic, "created missing sink topic with 1 partition");
                1
            }
        };
        self.partition_counts.insert(topic.to_string(), count);
        Ok(count)
    }

    /// Commits what was processed, as the guarantee says, and logs drops if they grew.
    ///
    /// # Errors
    /// At-least-once: when outputs could not be flushed. Exactly-once: when a failed
    /// transaction could not even be aborted.
    async fn commit(&mut self) -> Result<(), RuntimeError> {
        match self.config.processing_guarantee {
            ProcessingGuarantee::AtLeastOnce => self.commit_at_least_once().await?,
            ProcessingGuarantee::ExactlyOnce => {
                let committed = self.commit_transaction().await;
                self.settle(committed).await?;
            }
        }
        self.last_commit = Instant::now();
        self.log_dropped_records();
        Ok(())
    }

    /// Flushes every output, then commits each task's input offsets with metadata naming
    /// the changelog offsets that the commit covers.
    async fn commit_at_least_once(&mut self) -> Result<(), BackendError> {
        self.send_outputs().await?;
        let acknowledged = self.backend.flush().await?;
        self.note_acknowledged(acknowledged);
        let offsets = self.committable_offsets();
        if !offsets.is_empty() {
            // Outputs are flushed, so a refused commit (the group moved on: a rebalance, an
            // expired session) loses nothing: the partitions' next owner reprocesses from
            // the previous commit. A failed flush, above, is fatal instead: committing past
            // unacknowledged outputs would lose them.
            match self.backend.commit(&offsets).await {
                Ok(()) => self.count_commit(),
                Err(error) => {
                    tracing::warn!(%error, "offset commit refused; its records will be processed again");
                }
            }
        }
        self.uncommitted = false;
        Ok(())
    }

    /// Commits the open transaction: every output, changelog and repartition record sent
    /// since the last commit, with each task's input offsets and metadata. Nothing to do
    /// when nothing was processed since.
    async fn commit_transaction(&mut self) -> Result<(), BackendError> {
        if !self.uncommitted {
            return Ok(());
        }
        self.send_outputs().await?;
        // Waiting for the acknowledgements first surfaces a failed write before the
        // commit, and keeps the changelog offsets in the metadata right for a later
        // at-least-once run of the same application.
        let acknowledged = self.backend.flush().await?;
        self.note_acknowledged(acknowledged);
        let offsets = self.committable_offsets();
        self.backend.commit_transaction(&offsets).await?;
        self.uncommitted = false;
        self.count_commit();
        Ok(())
    }

    /// Takes in what a flush acknowledged: the changelog offsets the next commit covers.
    fn note_acknowledged(&mut self, acknowledged: BTreeMap<TopicPartition, i64>) {
        for (topic_partition, end_offset) in acknowledged {
            let known = self
                .changelog_end_offsets
                .entry(topic_partition)
                .or_insert(0);
            *known = (*known).max(end_offset);
        }
    }

    /// Each task's `(input partition, next offset, metadata)`. Where a task has processed
    /// everything it was given from a partition, the backend's position may be further:
    /// past records that are not for processing (transaction markers, aborted records).
    /// Committing it then, as Kafka Streams does, lets the group's lag reach 0 on inputs
    /// written in transactions (repartition topics under exactly-once).
    fn committable_offsets(&self) -> Vec<(TopicPartition, i64, String)> {
        let mut offsets = Vec::new();
        for task in self.tasks.values() {
            let metadata = self.metadata_for(task).encode();
            for (topic_partition, next_offset) in task.committable_offsets() {
                let position = self
                    .backend
                    .position(&topic_partition)
                    .filter(|_| task.is_drained(&topic_partition));
                let offset = position.map_or(next_offset, |position| position.max(next_offset));
                offsets.push((topic_partition, offset, metadata.clone()));
            }
        }
        offsets
    }

    fn count_commit(&self) {
        let mut status = self.status.lock_or_recover();
        status.commits += 1;
    }

    /// Decides what a failed write or commit means. At-least-once: the runtime stops, as
    /// nothing may be committed past a record that may be lost. Exactly-once: nothing of
    /// the open transaction becomes visible, so it is aborted and every task goes back to
    /// its last commit; processing goes on.
    ///
    /// # Errors
    /// At-least-once: `outcome`'s error. Exactly-once: the abort's, if it fails too.
    async fn settle(&mut self, outcome: Result<(), BackendError>) -> Result<(), RuntimeError> {
        let Err(error) = outcome else {
            return Ok(());
        };
        if self.config.processing_guarantee == ProcessingGuarantee::AtLeastOnce {
            return Err(error.into());
        }
        tracing::warn!(%error, "aborting the transaction; every task goes back to its last commit");
        self.outputs.clear();
        self.backend.abort_transaction().await?;
        self.uncommitted = false;
        self.rewind_pending = true;
        self.status.lock_or_recover().aborted_transactions += 1;
        Ok(())
    }

    /// After an abort: rebuilds every task from its last commit. Its stores are restored
    /// from the committed changelogs, its input is read again from the committed offsets,
    /// and what it had buffered is dropped, so the aborted records are processed again as
    /// if for the first time.
    async fn rewind_if_aborted(&mut self) -> Result<(), RuntimeError> {
        if !std::mem::take(&mut self.rewind_pending) {
            return Ok(());
        }
        let ids: Vec<TaskId> = self.tasks.keys().copied().collect();
        let partitions: Vec<TopicPartition> = self
            .tasks
            .values()
            .flat_map(Task::input_partitions)
            .collect();
        self.backend.rewind(&partitions).await?;
        for id in ids {
            if let Some(task) = self.tasks.remove(&id) {
                self.registry.unregister(id);
                self.closed_metrics.add(task.metrics());
            }
            let task = self.restored_task(id).await?;
            self.registry.register(id, task.stores());
            self.tasks.insert(id, task);
        }
        tracing::info!(tasks = ?self.tasks.keys().collect::<Vec<_>>(), "tasks back at their last commit");
        self.publish_status();
        Ok(())
    }

    /// Late, null, unreadable and expired records are dropped silently by the operators;
    /// this line is how an operator sees them without reading [`RuntimeStatus`].
    fn log_dropped_records(&mut self) {
        let metrics = self.status.lock_or_recover().metrics.clone();
        let dropped_total = metrics.dropped_total();
        if dropped_total > self.logged_dropped_total {
            let by_reason = &metrics.dropped_records;
            let application = self.topology.application_id();
            tracing::warn!(
                application,
                dropped_total,
                ?by_reason,
                "records dropped so far"
            );
            self.logged_dropped_total = dropped_total;
        }
    }

    fn metadata_for(&self, task: &Task) -> CommitMetadata {
        let changelog_end_offsets = task
            .changelog_partitions()
            .into_iter()
            .filter_map(|changelog| {
                let end = self.changelog_end_offsets.get(&changelog)?;
                Some((CommitMetadata::changelog_key(&changelog), *end))
            })
            .collect();
        CommitMetadata {
            stream_time_ms: task.stream_time_ms(),
            changelog_end_offsets,
            operator_progress: task.operator_progress(),
        }
    }

    fn publish_status(&self) {
        let mut metrics = self.closed_metrics.clone();
        for task in self.tasks.values() {
            metrics.add(task.metrics());
        }
        let mut status = self.status.lock_or_recover();
        status.tasks = self.tasks.keys().copied().collect();
        status.metrics = metrics;
    }
}

/// The transactional id of an instance: `<application id>-<instance id>`, with a random
/// instance id when none is configured (see [`RuntimeConfig::instance_id`]).
fn transactional_id(application_id: &str, instance_id: Option<String>) -> String {
    let instance_id = instance_id.unwrap_or_else(random_instance_id);
    format!("{application_id}-{instance_id}")
}

/// 64 random bits in hex, from the standard library's randomly seeded hasher (no
/// dependency for a value that only has to differ between starts).
fn random_instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    hasher.write_u128(now.unwrap_or_default().as_nanos());
    format!("{:016x}", hasher.finish())
}

/// Resolves to `None` once `shutdown` completes, else to `work`'s output.
async fn tokio_select<S, W, T>(shutdown: &mut std::pin::Pin<&mut S>, work: W) -> Option<T>
where
    S: Future<Output = ()>,
    W: Future<Output = T>,
{
    tokio::select! {
        biased;
        () = shutdown.as_mut() => None,
        output = work => Some(output),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::runtime::testing::{FakeBackend, FakeCluster};
    use crate::{Grouped, I64Serde, Serde, StreamsBuilder, StringSerde};

    const WORDS: [&str; 5] = ["apple", "pear", "plum", "fig", "kiwi"];
    const INPUT_COUNT: usize = 300;
    /// The longest a runner may take over the whole input.
    const RUN_TIMEOUT: Duration = Duration::from_secs(30);

    /// Words re-keyed through a repartition topic, counted per word, every count written
    /// out: each output record says "the n-th occurrence of this word", so under
    /// exactly-once each word's outputs read 1, 2, ..., n with no repeat and no gap.
    fn word_count_topology() -> Topology {
        let builder = StreamsBuilder::new("words-app");
        builder
            .stream("lines", StringSerde, StringSerde)
            .select_key(|_key, word: &String| word.clone())
            .group_by_key(Grouped::new(StringSerde, StringSerde))
            .count("word-counts-store")
            .to("word-counts", StringSerde, I64Serde);
        builder.build().expect("a valid topology")
    }

    fn word(index: usize) -> &'static str {
        WORDS[(index * 7 + index / 3) % WORDS.len()]
    }

    fn cluster_with_input() -> Arc<Mutex<FakeCluster>> {
        let mut cluster = FakeCluster::default();
        cluster.create("lines", 2);
        for index in 0..INPUT_COUNT {
            let partition = i32::from(index % 2 == 1);
            let timestamp_ms = i64::try_from(index).expect("small");
            let value = word(index).as_bytes();
            cluster.append("lines", partition, b"line", value, timestamp_ms);
        }
        Arc::new(Mutex::new(cluster))
    }

    fn exactly_once_config() -> RuntimeConfig {
        RuntimeConfig {
            // A commit after every round of at most 7 records: many small transactions.
            commit_interval: Duration::ZERO,
            poll_timeout: Duration::from_millis(1),
            max_records_per_round: 7,
            ..RuntimeConfig::for_guarantee(ProcessingGuarantee::ExactlyOnce)
        }
    }

    fn lock(cluster: &Mutex<FakeCluster>) -> std::sync::MutexGuard<'_, FakeCluster> {
        cluster.lock_or_recover()
    }

    /// Whether the group committed the end of the input and of the repartition topic:
    /// then every input record went all the way through.
    fn all_consumed(cluster: &Mutex<FakeCluster>) -> bool {
        let cluster = lock(cluster);
        let repartition = cluster
            .partition_counts
            .keys()
            .find(|topic| topic.ends_with("-repartition"))
            .cloned();
        repartition.is_some_and(|repartition| cluster.consumed(&["lines", &repartition]))
    }

    /// Runs a runner over `cluster` until everything is consumed; returns its status.
    async fn run_to_completion(cluster: &Arc<Mutex<FakeCluster>>) -> RuntimeStatus {
        let backend = FakeBackend::new(cluster.clone());
        let runner = Runner::new(word_count_topology(), backend, exactly_once_config());
        let status = runner.status();
        let consumed = async {
            while !all_consumed(cluster) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        let ran = tokio::time::timeout(RUN_TIMEOUT, runner.run_until(consumed)).await;
        ran.expect("the runner consumed everything in time")
            .expect("the runner ran without error");
        status.lock_or_recover().clone()
    }

    /// Per word, the counts the output topic holds, in order.
    fn output_counts(cluster: &Mutex<FakeCluster>) -> BTreeMap<String, Vec<i64>> {
        let mut counts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for record in lock(cluster).records("word-counts") {
            let key = record.key.expect("a keyed count");
            let value = record.value.expect("a count");
            let word = String::from_utf8(key).expect("a word");
            let count = I64Serde.deserialize("word-counts", &value).expect("an i64");
            counts.entry(word).or_default().push(count);
        }
        counts
    }

    /// Each word's counts 1, 2, ..., n, n being its occurrences in the input.
    fn expected_counts() -> BTreeMap<String, Vec<i64>> {
        let mut occurrences: BTreeMap<String, i64> = BTreeMap::new();
        for index in 0..INPUT_COUNT {
            *occurrences.entry(word(index).to_string()).or_default() += 1;
        }
        occurrences
            .into_iter()
            .map(|(word, n)| (word, (1..=n).collect()))
            .collect()
    }

    #[tokio::test]
    async fn exactly_once_aborts_a_refused_commit_and_redoes_it_from_the_last_one() {
        // Proves the runner's abort path: every third transaction commit is refused, the
        // runner aborts it, rebuilds its tasks from the committed changelogs and offsets,
        // and processes the same records again, so the output holds each count exactly
        // once (a duplicate or a gap would show as a repeated or missing number).
        let cluster = cluster_with_input();
        lock(&cluster).fail_every_commits = Some(3);
        let status = run_to_completion(&cluster).await;
        assert_eq!(output_counts(&cluster), expected_counts());
        let aborts = lock(&cluster).aborts;
        assert!(aborts >= 5, "only {aborts} aborts: the faults did not bite");
        assert_eq!(status.aborted_transactions, aborts);
        assert!(status.commits > 10, "{} commits", status.commits);
    }

    #[tokio::test]
    async fn exactly_once_survives_an_instance_dropped_mid_transaction() {
        // Proves a crash loses nothing and repeats nothing: an instance stopped at an
        // arbitrary await point (its open transaction never commits, as a broker aborts
        // a dead producer's) is replaced by a fresh one that restores its stores from the
        // committed changelog only, and the output holds each count exactly once.
        let cluster = cluster_with_input();
        for crash_after_commits in [3, 8, 20] {
            let backend = FakeBackend::new(cluster.clone());
            let runner = Runner::new(word_count_topology(), backend, exactly_once_config());
            let status = runner.status();
            let crash = async {
                while status.lock_or_recover().commits < crash_after_commits {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            };
            tokio::select! {
                ended = runner.run_until(std::future::pending()) => {
                    panic!("the runner ended before the crash: {ended:?}")
                }
                () = crash => {}
            }
            assert!(
                !all_consumed(&cluster),
                "the crash came too late to test anything"
            );
        }
        run_to_completion(&cluster).await;
        assert_eq!(output_counts(&cluster), expected_counts());
    }
}
