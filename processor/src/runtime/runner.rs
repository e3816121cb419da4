//! The runtime loop, the same over every backend.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::backend::{Backend, BackendError, BackendEvent, CommittedOffset};
use crate::record::{InputRecord, OutputRecord, TopicPartition};
use crate::store::query::StoreRegistry;
use crate::task::{CommitMetadata, Task, TaskId, TaskMetrics};
use crate::topology::{PartitionPlan, Topology, TopologyError};

/// How often the runner looks again for source topics that do not exist yet.
const SOURCE_TOPICS_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How a runtime paces itself.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// How often progress is committed (Kafka Streams' `commit.interval.ms`). Shorter means
    /// fewer repeated outputs after a crash, at the cost of more flushes.
    pub commit_interval: Duration,
    /// Longest wait for new records in one poll.
    pub poll_timeout: Duration,
    /// Records processed between two polls at most, so group duties keep running.
    pub max_records_per_round: usize,
    /// How often to log a warning while the runner waits at start-up for its source
    /// topics to exist. It waits until they do (or until it is stopped): a co-located
    /// topology must not take its broker down because nobody produced yet.
    pub source_topics_warning_interval: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            commit_interval: Duration::from_millis(1_000),
            poll_timeout: Duration::from_millis(100),
            max_records_per_round: 10_000,
            source_topics_warning_interval: Duration::from_secs(30),
        }
    }
}

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
    /// Commits made.
    pub commits: u64,
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
    /// fails (the error says which).
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
            self.process_round().await?;
            if self.last_commit.elapsed() >= self.config.commit_interval {
                self.commit().await?;
            }
        }
        self.commit().await?;
        self.backend.close().await?;
        Ok(())
    }

    /// Plans partitions, creates internal topics and joins the group.
    async fn start(&mut self) -> Result<(), RuntimeError> {
        let plan = self.plan().await?;
        for topic in &plan.internal_topics {
            self.backend.create_topic(topic).await?;
            self.partition_counts
                .insert(topic.name.clone(), topic.partitions);
        }
        let group_id = self.topology.application_id().to_string();
        let topics = self.topology.source_topics();
        self.backend.subscribe(&group_id, &topics).await?;
        tracing::info!(application = %group_id, ?topics, "processor started");
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
        let any_commit = committed.values().any(Option::is_some);
        for changelog in task.changelog_partitions() {
            let end_offset = if self.topology.is_source_changelog(&changelog.topic) {
                // A table's topic is its changelog: replay it up to where processing resumes.
                Some(
                    committed
                        .get(&changelog)
                        .cloned()
                        .flatten()
                        .map_or(0, |c| c.offset),
                )
            } else {
                match (&metadata, any_commit) {
                    (Some(metadata), _) => Some(
                        metadata
                            .changelog_end_offsets
                            .get(&CommitMetadata::changelog_key(&changelog))
                            .copied()
                            .unwrap_or(0),
                    ),
                    // Never committed: the input is read from the start, so start empty.
                    (None, false) => Some(0),
                    // Committed by something else: the whole changelog is the best guess.
                    (None, true) => None,
                }
            };
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

    async fn revoke(&mut self, partitions: Vec<TopicPartition>) -> Result<(), RuntimeError> {
        let ids: Vec<TaskId> = partitions
            .iter()
            .filter_map(|tp| self.task_of(&tp.topic, tp.partition))
            .collect();
        // Hand over what was processed, so the next owner starts where this one stopped;
        // a failed commit only means that owner reprocesses (at-least-once).
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
    async fn process_round(&mut self) -> Result<(), RuntimeError> {
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
        self.send_outputs().await?;
        if processed > 0 {
            self.publish_status();
        }
        Ok(())
    }

    async fn send_outputs(&mut self) -> Result<(), RuntimeError> {
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
    async fn partition_count_for(&mut self, topic: &str) -> Result<i32, RuntimeError> {
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

    /// Flushes every output, then commits each task's input offsets with metadata naming
    /// the changelog offsets that the commit covers.
    async fn commit(&mut self) -> Result<(), RuntimeError> {
        self.send_outputs().await?;
        let acknowledged = self.backend.flush().await?;
        for (topic_partition, end_offset) in acknowledged {
            let known = self
                .changelog_end_offsets
                .entry(topic_partition)
                .or_insert(0);
            *known = (*known).max(end_offset);
        }
        let mut offsets = Vec::new();
        for task in self.tasks.values() {
            let metadata = self.metadata_for(task).encode();
            for (topic_partition, next_offset) in task.committable_offsets() {
                offsets.push((topic_partition, next_offset, metadata.clone()));
            }
        }
        if !offsets.is_empty() {
            // Outputs are flushed, so a refused commit (the group moved on: a rebalance, an
            // expired session) loses nothing: the partitions' next owner reprocesses from
            // the previous commit. A failed flush, above, is fatal instead: committing past
            // unacknowledged outputs would lose them.
            match self.backend.commit(&offsets).await {
                Ok(()) => {
                    let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
                    status.commits += 1;
                }
                Err(error) => {
                    tracing::warn!(%error, "offset commit refused; its records will be processed again");
                }
            }
        }
        self.last_commit = Instant::now();
        self.log_dropped_records();
        Ok(())
    }

    /// Late, null, unreadable and expired records are dropped silently by the operators;
    /// this line is how an operator sees them without reading [`RuntimeStatus`].
    fn log_dropped_records(&mut self) {
        let metrics = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .metrics
            .clone();
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
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.tasks = self.tasks.keys().copied().collect();
        status.metrics = metrics;
    }
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
