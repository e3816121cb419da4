//! The runtime loop, the same over every backend.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::backend::{Backend, BackendError, BackendEvent, CommittedOffset};
use super::config::{ProcessingGuarantee, RuntimeConfig};
use super::restore::{
    ChangelogPlan, RESTORE_LOG_INTERVAL, RestorePoint, RestoreProgress, flushed_offset,
};
use super::standby;
use crate::lock_policy::MutexRecover;
use crate::observe::{AppHandle, RuntimeKind, RuntimeMetrics};
use crate::record::{InputRecord, OutputKind, OutputRecord, TopicPartition};
use crate::store::cache::CacheBudget;
use crate::store::checkpoint::{self, Checkpoint};
use crate::store::engine::{StateEngine, StateError};
use crate::store::query::StoreRegistry;
use crate::store::{StateHome, TaskStores};
use crate::task::{CommitMetadata, Task, TaskId, TaskMetrics};
use crate::topology::{PartitionPlan, Topology, TopologyError};

/// Least time between two standby catch-ups: each describes the group and reads the
/// committed offsets, too many requests at exactly-once's 100 ms commit interval.
const STANDBY_MIN_INTERVAL: Duration = Duration::from_secs(1);

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
    /// Local state failed: the state directory, a store on disk, or a checkpoint.
    #[error(transparent)]
    State(#[from] StateError),
    /// The broker keeps committed offsets without the metadata this runtime commits with
    /// them, and there is no local checkpoint to take its place.
    #[error(
        "task {task}: the broker returned committed offsets for {partitions} without the metadata this runtime committed with them (it does not keep OffsetCommit metadata), and the state directory has no checkpoint of the task; restoring the whole changelog and reprocessing from those offsets would apply input twice, so the runtime stops. Run with a state directory (RuntimeConfig::state_dir, --state-dir) so checkpoints can stand in, use a broker that keeps commit metadata, or reset the application's offsets"
    )]
    RestorePointMissing {
        /// The task that cannot be restored.
        task: TaskId,
        /// Its input partitions with a commit.
        partitions: String,
    },
    /// Work moved off the async threads (processing, restoring, flushing) did not finish.
    #[error("{operation} did not finish: {message}")]
    Blocking {
        /// What was running.
        operation: &'static str,
        /// Why it stopped (a panic's message).
        message: String,
    },
}

/// Runs `work` on tokio's blocking pool: store reads and writes may wait on the disk.
async fn blocking<T: Send + 'static>(
    operation: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, RuntimeError> {
    joined(operation, tokio::task::spawn_blocking(work)).await
}

/// Waits for `work`, started on the blocking pool; a panic there is a
/// [`RuntimeError::Blocking`].
async fn joined<T>(
    operation: &'static str,
    work: tokio::task::JoinHandle<T>,
) -> Result<T, RuntimeError> {
    work.await.map_err(|error| RuntimeError::Blocking {
        operation,
        message: error.to_string(),
    })
}

/// Whom a restore is for: a task this instance runs, or a standby replica, which is
/// counted and logged apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RestoreRole {
    Active,
    Standby,
}

/// What one task commits: its input offsets and the metadata that goes with them.
struct TaskCommit {
    id: TaskId,
    offsets: Vec<(TopicPartition, i64)>,
    metadata: CommitMetadata,
}

/// Where a runtime is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RuntimeState {
    /// Waiting for source topics, creating internal topics, joining the group.
    #[default]
    Starting,
    /// Restoring a task's stores from their changelogs.
    Restoring,
    /// Processing.
    Running,
    /// Stopped when told to.
    Stopped,
    /// Stopped by an error.
    Failed,
}

impl RuntimeState {
    /// The state in lower case, as the `/apps` JSON shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeState::Starting => "starting",
            RuntimeState::Restoring => "restoring",
            RuntimeState::Running => "running",
            RuntimeState::Stopped => "stopped",
            RuntimeState::Failed => "failed",
        }
    }
}

/// What a running topology is doing, readable from the host program.
#[derive(Debug, Clone, Default)]
pub struct RuntimeStatus {
    /// Where the runtime is in its life.
    pub state: RuntimeState,
    /// Tasks this instance runs now.
    pub tasks: Vec<TaskId>,
    /// Counters over every task this instance ran.
    pub metrics: TaskMetrics,
    /// Commits made (under exactly-once, transactions committed).
    pub commits: u64,
    /// Under exactly-once, transactions aborted: each time, every task went back to its
    /// last commit.
    pub aborted_transactions: u64,
    /// Changelog records applied to stores by restores since the start: after a clean
    /// stop with a state directory, none.
    pub restored_records: u64,
    /// The changelog being restored now, if any.
    pub restoring: Option<RestoreProgress>,
    /// Time spent making tasks ready since the start: opening their stores, choosing the
    /// restore point, restoring changelogs and writing the checkpoint after.
    pub restore_time: Duration,
    /// Per processing thread ([`RuntimeConfig::threads`]), its tasks and what it did.
    pub stream_threads: Vec<StreamThreadStatus>,
    /// Tasks this instance keeps standby replicas of ([`RuntimeConfig::standby_replicas`]).
    pub standby_tasks: Vec<TaskId>,
    /// Changelog records applied to standby replicas since the start.
    pub standby_records: u64,
}

/// What one processing thread runs and has run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamThreadStatus {
    /// The tasks dealt to it now.
    pub tasks: Vec<TaskId>,
    /// Records it processed since the start.
    pub processed_records: u64,
}

/// Runs one topology over one backend until told to stop.
pub struct Runner<B: Backend> {
    topology: Topology,
    backend: B,
    config: RuntimeConfig,
    registry: StoreRegistry,
    status: Arc<Mutex<RuntimeStatus>>,
    /// Latencies, for the host's metrics.
    metrics: Arc<RuntimeMetrics>,
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
    /// Where stores live: the state directory's engine, or memory.
    state: StateHome,
    /// The last checkpoint written per task, so an idle task is not checkpointed again.
    checkpoints: HashMap<TaskId, Checkpoint>,
    /// Input partitions moved to a checkpoint's offsets in the current batch of events:
    /// records read before the move are dropped.
    sought: HashSet<TopicPartition>,
    /// The record cache budget every task's caches draw on.
    cache: CacheBudget,
    /// Records each processing thread processed since the start.
    processed_per_thread: Vec<u64>,
    /// Standby replicas: stores of tasks other instances run, kept caught up with the
    /// group's commits (see the `standby` module).
    standbys: BTreeMap<TaskId, Task>,
    /// Per repartition topic partition, the offset records were last deleted below.
    purged: HashMap<TopicPartition, i64>,
    /// When repartition topics were last purged: at most once per commit interval.
    last_purge: Instant,
    /// When standbys were last placed and caught up, if ever.
    last_standby_catch_up: Option<Instant>,
}

impl<B: Backend> Runner<B> {
    /// A runner for `topology` over `backend`; nothing happens until [`Runner::run_until`].
    pub fn new(topology: Topology, backend: B, config: RuntimeConfig) -> Runner<B> {
        Runner {
            topology,
            backend,
            registry: StoreRegistry::default(),
            status: Arc::default(),
            metrics: Arc::default(),
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
            state: StateHome::Memory,
            checkpoints: HashMap::new(),
            sought: HashSet::new(),
            cache: CacheBudget::new(config.cache_max_bytes),
            processed_per_thread: vec![0; config.threads.max(1)],
            standbys: BTreeMap::new(),
            purged: HashMap::new(),
            last_purge: Instant::now(),
            last_standby_catch_up: None,
            config,
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

    /// The application as its host shows it: summary, stores by name, metrics. `runtime`
    /// says where this runner runs; the instance is [`RuntimeConfig::instance_id`], or
    /// `local` without one.
    pub fn app_handle(&self, runtime: RuntimeKind) -> AppHandle {
        let instance = self.config.instance_id.clone();
        AppHandle::new(
            self.topology.clone(),
            self.registry.clone(),
            self.status.clone(),
            self.metrics.clone(),
            (runtime, instance.unwrap_or_else(|| "local".to_string())),
        )
    }

    /// Runs until `shutdown` completes, then commits and leaves the group.
    ///
    /// # Errors
    /// When the topology cannot run on the cluster, or a request it cannot do without
    /// fails (the error says which). Under exactly-once a failed write or commit is not
    /// one: the transaction is aborted and processing goes on from the last commit; only
    /// a failed abort stops the runner.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), RuntimeError> {
        let status = self.status.clone();
        let result = self.run(shutdown).await;
        status.lock_or_recover().state = match result {
            Ok(()) => RuntimeState::Stopped,
            Err(_) => RuntimeState::Failed,
        };
        result
    }

    async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), RuntimeError> {
        let mut shutdown = std::pin::pin!(shutdown);
        // A stop while waiting for source topics ends the runner without an error.
        let started = tokio_select(&mut shutdown, self.start()).await;
        match started {
            None => return Ok(self.backend.close().await?),
            Some(started) => started?,
        }
        self.set_state(RuntimeState::Running);
        loop {
            // Poll every round (group duties, new records), but do not wait in it while a
            // task has records it can process now: waiting there is time not processing.
            let poll_timeout = if self.tasks.values().any(Task::is_ready) {
                Duration::ZERO
            } else {
                self.config.poll_timeout
            };
            let events = tokio_select(&mut shutdown, self.backend.poll(poll_timeout)).await;
            let Some(events) = events else {
                break;
            };
            self.handle_events(events?).await?;
            self.rewind_if_aborted().await?;
            self.process_round().await?;
            self.pause_full_partitions();
            let sent = self.send_outputs().await;
            self.settle(sent).await?;
            let commit_due = self.last_commit.elapsed() >= self.config.commit_interval
                || self.pending_store_bytes() > self.config.max_pending_store_bytes;
            if commit_due {
                self.commit().await?;
                self.maintain_standbys().await?;
            }
        }
        self.commit().await?;
        self.backend.close().await?;
        Ok(())
    }

    /// Opens the state directory, if configured: `<state_dir>/<application id>`, locked.
    async fn open_state(&mut self) -> Result<(), RuntimeError> {
        let application = self.topology.application_id().to_string();
        let Some(root) = self.config.state_dir.clone() else {
            if self.config.standby_replicas > 0 {
                tracing::warn!(%application, "standby replicas need a state directory: this instance keeps none");
            }
            tracing::info!(
                %application,
                "no state directory: every store is kept in memory and restored from its whole changelog"
            );
            return Ok(());
        };
        let dir = root.join(&application);
        let engine =
            blocking("open the state directory", move || StateEngine::open(&dir)).await??;
        tracing::info!(%application, state_dir = %engine.path().display(), "state directory opened");
        self.state = StateHome::Engine(Arc::new(engine));
        Ok(())
    }

    /// Re-places this instance's standby replicas from the group's assignment and catches
    /// each up to the group's last commit of its task: after each commit. Without a state
    /// directory, or with a backend that cannot describe the group, there are none.
    async fn maintain_standbys(&mut self) -> Result<(), RuntimeError> {
        let replicas = self.config.standby_replicas;
        if replicas == 0 || !matches!(self.state, StateHome::Engine(_)) {
            return Ok(());
        }
        let recent = self
            .last_standby_catch_up
            .is_some_and(|last| last.elapsed() < STANDBY_MIN_INTERVAL);
        if recent {
            return Ok(());
        }
        self.last_standby_catch_up = Some(Instant::now());
        let group = match self.backend.group_members().await {
            Ok(group) => group,
            Err(error) => {
                tracing::warn!(%error, "cannot describe the group: standby replicas stay as they are");
                None
            }
        };
        if let Some(group) = group.filter(|group| group.stable) {
            let wanted = standby::standby_tasks(&group, replicas, |partition| {
                self.task_of(&partition.topic, partition.partition)
            });
            let dropped: Vec<TaskId> = self
                .standbys
                .keys()
                .filter(|id| !wanted.contains(id))
                .copied()
                .collect();
            for id in dropped {
                self.close_standby(id).await?;
                tracing::info!(task = %id, "standby replica dropped");
            }
            for id in wanted {
                let running = self.tasks.contains_key(&id) || self.standbys.contains_key(&id);
                // A stateless task has nothing to keep warm.
                let stateless = self
                    .topology
                    .subtopologies()
                    .get(id.subtopology as usize)
                    .is_none_or(|subtopology| subtopology.stores.is_empty());
                if running || stateless {
                    continue;
                }
                let (task, checkpoint) = self.open_task(id).await?;
                if let Some(checkpoint) = checkpoint {
                    self.checkpoints.insert(id, checkpoint);
                }
                tracing::info!(task = %id, "standby replica opened");
                self.standbys.insert(id, task);
            }
        }
        let ids: Vec<TaskId> = self.standbys.keys().copied().collect();
        for id in ids {
            self.catch_up_standby(id).await?;
        }
        self.status.lock_or_recover().standby_tasks = self.standbys.keys().copied().collect();
        Ok(())
    }

    /// Closes the standby replica of `id` (its stores stay on disk, at its checkpoint).
    async fn close_standby(&mut self, id: TaskId) -> Result<(), RuntimeError> {
        if let Some(task) = self.standbys.remove(&id) {
            // Closing stores may wait on the disk.
            blocking("close a standby replica", move || drop(task)).await?;
        }
        Ok(())
    }

    /// Reads the changelogs of standby `id` up to the group's last commit of the task, and
    /// checkpoints them there: under at-least-once never past what that commit covers, so
    /// the store is never ahead of the restore point of the instance that takes it over.
    async fn catch_up_standby(&mut self, id: TaskId) -> Result<(), RuntimeError> {
        let Some(task) = self.standbys.get(&id) else {
            return Ok(());
        };
        let (inputs, stores) = (task.input_partitions(), task.stores().clone());
        let changelogs = task.changelog_partitions();
        let committed: HashMap<TopicPartition, Option<CommittedOffset>> =
            self.backend.committed(&inputs).await?.into_iter().collect();
        let checkpoint = self.checkpoints.get(&id).cloned();
        let guarantee = self.config.processing_guarantee;
        let point = match RestorePoint::choose(id, guarantee, &committed, checkpoint.as_ref()) {
            Ok(RestorePoint::Fresh) => return Ok(()),
            Ok(RestorePoint::Local(_)) | Err(_) => {
                // Without the broker's metadata only the active's own checkpoint says what
                // a commit covers.
                return Ok(());
            }
            Ok(point) => point,
        };
        let reached = self
            .restore_to_point(
                id,
                &stores,
                &changelogs,
                checkpoint.as_ref(),
                &point,
                &committed,
                RestoreRole::Standby,
            )
            .await?;
        let mut metadata = point.metadata().cloned().unwrap_or_default();
        metadata.changelog_end_offsets = reached;
        let offsets = committed
            .iter()
            .filter_map(|(partition, commit)| Some((partition.clone(), commit.as_ref()?.offset)))
            .collect();
        let commit = TaskCommit {
            id,
            offsets,
            metadata,
        };
        self.write_checkpoints(vec![(commit, stores)]).await
    }

    /// Plans partitions, creates internal topics, starts transactions under exactly-once
    /// and joins the group.
    async fn start(&mut self) -> Result<(), RuntimeError> {
        self.open_state().await?;
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
        // Later polls start from where a seek moved reading.
        self.sought.clear();
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
            if !self.sought.is_empty()
                && self
                    .sought
                    .contains(&TopicPartition::new(record.topic.clone(), record.partition))
            {
                continue;
            }
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
            // Its stores on disk are at the standby's last checkpoint: the restore below
            // reads only what came after.
            if self.standbys.contains_key(&id) {
                self.close_standby(id).await?;
                tracing::info!(task = %id, "taking over from the standby replica");
            }
            let started = Instant::now();
            self.set_state(RuntimeState::Restoring);
            let task = self.restored_task(id).await?;
            self.set_state(RuntimeState::Running);
            self.status.lock_or_recover().restore_time += started.elapsed();
            self.registry.register(id, task.stores());
            tracing::info!(task = %id, "task assigned and restored");
            self.tasks.insert(id, task);
        }
        self.publish_status();
        Ok(())
    }

    /// A new task with its stores restored up to its restore point (see `restore`).
    async fn restored_task(&mut self, id: TaskId) -> Result<Task, RuntimeError> {
        let (mut task, checkpoint) = self.open_task(id).await?;
        let inputs = task.input_partitions();
        let committed: HashMap<TopicPartition, Option<CommittedOffset>> =
            self.backend.committed(&inputs).await?.into_iter().collect();
        let guarantee = self.config.processing_guarantee;
        let point = RestorePoint::choose(id, guarantee, &committed, checkpoint.as_ref())?;
        log_restore_point(id, &point, checkpoint.is_some());
        let seeks = point.seeks(&committed);
        if !seeks.is_empty() {
            tracing::warn!(task = %id, ?seeks, "the group's offsets differ from the checkpoint's: reading moves to the checkpoint's");
            self.backend.seek(&seeks).await?;
            for (partition, offset) in &seeks {
                task.set_position(partition, *offset);
                self.sought.insert(partition.clone());
            }
        }
        // A clone (shared data): a reference to the task may not be held across awaits.
        let stores = task.stores().clone();
        let changelogs = task.changelog_partitions();
        let role = RestoreRole::Active;
        let restored_ends = self
            .restore_to_point(
                id,
                &stores,
                &changelogs,
                checkpoint.as_ref(),
                &point,
                &committed,
                role,
            )
            .await?;
        let mut metadata = point.metadata().cloned().unwrap_or_default();
        if point.metadata().is_some() {
            task.resume_from(&metadata);
        }
        metadata.changelog_end_offsets = restored_ends;
        let resume: Vec<(TopicPartition, i64)> = committed
            .iter()
            .filter_map(|(partition, commit)| Some((partition.clone(), commit.as_ref()?.offset)))
            .filter(|(partition, _)| !seeks.iter().any(|(sought, _)| sought == partition))
            .chain(seeks.iter().cloned())
            .collect();
        let commit = TaskCommit {
            id,
            offsets: resume,
            metadata,
        };
        self.write_checkpoints(vec![(commit, stores)]).await?;
        Ok(task)
    }

    /// Restores each of `changelogs` of task `id` from where its store is (`checkpoint`)
    /// to `point`. Returns the changelog end offsets reached (source changelogs aside), as
    /// commit metadata names them.
    #[allow(clippy::too_many_arguments)] // One restore's inputs, each from its caller.
    async fn restore_to_point(
        &mut self,
        id: TaskId,
        stores: &TaskStores,
        changelogs: &[TopicPartition],
        checkpoint: Option<&Checkpoint>,
        point: &RestorePoint,
        committed: &HashMap<TopicPartition, Option<CommittedOffset>>,
        role: RestoreRole,
    ) -> Result<BTreeMap<String, i64>, RuntimeError> {
        let mut restored_ends = BTreeMap::new();
        for changelog in changelogs {
            let is_source = self.topology.is_source_changelog(&changelog.topic);
            let target = point.target(changelog, is_source, committed);
            let persistent = stores.is_persistent(&changelog.topic);
            let flushed = checkpoint
                .filter(|checkpoint| persistent && !checkpoint.restoring)
                .map(|checkpoint| flushed_offset(checkpoint, changelog, is_source));
            let plan = ChangelogPlan::new(flushed, target);
            if plan.wipe && persistent {
                self.mark_restoring(id, checkpoint).await?;
            }
            if role == RestoreRole::Active {
                tracing::info!(task = %id, %changelog, persistent, ?flushed, ?target, wipe = plan.wipe, from = plan.from_offset, "restore plan");
            }
            let end = self
                .restore_changelog(id, stores, changelog, plan, role)
                .await?;
            if !is_source {
                if role == RestoreRole::Active {
                    self.changelog_end_offsets.insert(changelog.clone(), end);
                }
                restored_ends.insert(CommitMetadata::changelog_key(changelog), end);
            }
        }
        Ok(restored_ends)
    }

    /// Rewrites `checkpoint` of task `id` as restoring, before a persistent store of it is
    /// wiped: a crash during the restore must not take the half-restored store for one at
    /// the checkpoint.
    async fn mark_restoring(
        &mut self,
        id: TaskId,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<(), RuntimeError> {
        let (StateHome::Engine(engine), Some(checkpoint)) = (&self.state, checkpoint) else {
            return Ok(());
        };
        if checkpoint.restoring {
            return Ok(());
        }
        let restoring = Checkpoint {
            restoring: true,
            ..checkpoint.clone()
        };
        let engine = engine.clone();
        blocking("checkpoint", move || {
            checkpoint::write(engine.path(), id, &restoring)
        })
        .await??;
        Ok(())
    }

    /// Opens task `id`'s stores and reads its checkpoint (an unreadable one is logged and
    /// ignored: its stores are then restored from the start).
    async fn open_task(&mut self, id: TaskId) -> Result<(Task, Option<Checkpoint>), RuntimeError> {
        let topology = self.topology.clone();
        let (home, cache) = (self.state.clone(), self.cache.clone());
        blocking("open a task's stores", move || {
            let task = topology.open_task(id, &home, &cache)?;
            let StateHome::Engine(engine) = &home else {
                return Ok((task, None));
            };
            let checkpoint = match checkpoint::read(engine.path(), id) {
                Ok(checkpoint) => checkpoint,
                Err(error) => {
                    tracing::warn!(task = %id, %error, "ignoring the checkpoint: the task's stores restore from the start");
                    None
                }
            };
            Ok((task, checkpoint))
        })
        .await?
    }

    /// Restores one changelog by `plan`, in chunks of at most `restore_chunk_bytes`, each
    /// written to the stores off the async threads while the next is read. Returns the
    /// offset reached.
    async fn restore_changelog(
        &mut self,
        task: TaskId,
        stores: &TaskStores,
        changelog: &TopicPartition,
        plan: ChangelogPlan,
        role: RestoreRole,
    ) -> Result<i64, RuntimeError> {
        if plan.wipe {
            let (stores, topic) = (stores.clone(), changelog.topic.clone());
            blocking("wipe a store", move || stores.wipe(&topic)).await??;
        }
        let mut progress = RestoreProgress {
            task,
            changelog: changelog.clone(),
            from_offset: plan.from_offset,
            end_offset: plan.to_offset.unwrap_or(plan.from_offset),
            position: plan.from_offset,
            restored_records: 0,
        };
        if plan.to_offset.is_some_and(|end| end <= plan.from_offset) {
            return Ok(plan.from_offset);
        }
        let (started, mut logged) = (Instant::now(), Instant::now());
        let mut end_offset = plan.to_offset;
        let mut read_position = plan.from_offset;
        // The chunk being written while the next one is read: reading and writing overlap,
        // and at most two chunks are in memory.
        let mut applying: Option<ApplyingChunk> = None;
        loop {
            let max_bytes = self.config.restore_chunk_bytes;
            let read = self
                .backend
                .read_chunk(changelog, read_position, end_offset, max_bytes)
                .await;
            let chunk = match read {
                Ok(chunk) => chunk,
                Err(error) => {
                    // The chunk in flight lands first: no store write outlives the restore.
                    if let Some(in_flight) = applying.take() {
                        let _ = in_flight.land().await;
                    }
                    return Err(error.into());
                }
            };
            // Without a target, the end is the one the first read saw, as Kafka Streams
            // takes the end offset once at the start of a restore.
            let end = *end_offset.get_or_insert(chunk.end_offset);
            progress.end_offset = end;
            let stalled = chunk.records.is_empty() && chunk.next_offset <= read_position;
            // Never past the end: the offset reached is what the checkpoint claims.
            read_position = read_position.max(chunk.next_offset.min(end));
            if let Some(previous) = applying.take() {
                // Awaited first: a `&self` held across an await would need the runner to
                // be Sync.
                let landed = previous.land().await?;
                self.restored(&mut progress, role, landed);
            }
            applying = Some(ApplyingChunk::start(
                stores,
                &changelog.topic,
                chunk.records,
                read_position,
            ));
            if read_position >= end {
                break;
            }
            if stalled {
                tracing::warn!(task = %task, %changelog, position = read_position, end, readable_end = chunk.end_offset, "the changelog ends before the restore point: restored what there is");
                break;
            }
            if role == RestoreRole::Active && logged.elapsed() >= RESTORE_LOG_INTERVAL {
                progress.log(started, false);
                logged = Instant::now();
            }
        }
        if let Some(last) = applying.take() {
            let landed = last.land().await?;
            self.restored(&mut progress, role, landed);
        }
        match role {
            RestoreRole::Active => {
                progress.log(started, true);
                self.status.lock_or_recover().restoring = None;
            }
            RestoreRole::Standby if progress.restored_records > 0 => {
                let (records, position) = (progress.restored_records, progress.position);
                tracing::debug!(%task, %changelog, records, position, "standby replica caught up");
            }
            RestoreRole::Standby => {}
        }
        Ok(progress.position)
    }

    /// Counts a chunk written to the stores: `landed` is its records and the offset
    /// reached.
    fn restored(&self, progress: &mut RestoreProgress, role: RestoreRole, landed: (u64, i64)) {
        let (count, position) = landed;
        progress.position = position;
        progress.restored_records += count;
        match role {
            RestoreRole::Active => self.publish_restore(progress, count),
            RestoreRole::Standby => self.status.lock_or_recover().standby_records += count,
        }
    }

    fn publish_restore(&self, progress: &RestoreProgress, applied: u64) {
        let mut status = self.status.lock_or_recover();
        status.restored_records += applied;
        status.restoring = Some(progress.clone());
    }

    /// Flushes the stores of each task to disk, syncs them once, and writes each task's
    /// checkpoint: after a commit (of `commits`) succeeded, or a restore. Tasks whose
    /// checkpoint would not change and that have nothing to flush are skipped. Nothing
    /// without a state directory.
    async fn write_checkpoints(
        &mut self,
        commits: Vec<(TaskCommit, TaskStores)>,
    ) -> Result<(), RuntimeError> {
        let StateHome::Engine(engine) = &self.state else {
            return Ok(());
        };
        let mut work = Vec::new();
        for (commit, stores) in commits {
            let checkpoint = Checkpoint::new(&commit.offsets, commit.metadata);
            let unchanged = self.checkpoints.get(&commit.id) == Some(&checkpoint);
            if unchanged && stores.pending_bytes() == 0 {
                continue;
            }
            self.checkpoints.insert(commit.id, checkpoint.clone());
            work.push((commit.id, stores, checkpoint));
        }
        if work.is_empty() {
            return Ok(());
        }
        let engine = engine.clone();
        blocking("checkpoint", move || -> Result<(), StateError> {
            let mut expired = Vec::new();
            for (_, stores, _) in &work {
                expired.extend(stores.write_pending()?);
            }
            // The stores are durable before a checkpoint says they are there.
            engine.persist()?;
            for segment in expired {
                segment.delete()?;
            }
            for (id, _, checkpoint) in &work {
                checkpoint::write(engine.path(), *id, checkpoint)?;
            }
            Ok(())
        })
        .await??;
        Ok(())
    }

    /// Bytes of store writes waiting for the next commit, over every task.
    fn pending_store_bytes(&self) -> usize {
        self.tasks
            .values()
            .map(|task| task.stores().pending_bytes())
            .sum()
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

    /// Processes buffered records of every task, lowest timestamp first within each, off
    /// the async threads (persistent stores read from disk) and on `threads` threads at
    /// once; the outputs wait for `send_outputs`.
    ///
    /// # Errors
    /// When a store failed: nothing of the round is sent or committed.
    async fn process_round(&mut self) -> Result<(), RuntimeError> {
        for task in self.tasks.values_mut() {
            for input in task.input_partitions() {
                task.set_caught_up(&input, self.backend.is_caught_up(&input));
            }
        }
        let limit = self.config.max_records_per_round;
        let now_ms = crate::processor_api::system_time_ms();
        let processed = self
            .on_threads("processing", move |tasks, outputs| {
                let mut processed = 0usize;
                for task in tasks.iter_mut() {
                    // A punctuation that ran counts as processing: its writes must be
                    // committed.
                    processed += usize::from(task.punctuate_wall_clock(now_ms, outputs));
                }
                let limit = limit.saturating_sub(processed);
                processed + take_turns(tasks, limit, |task| task.process_next(outputs))
            })
            .await?;
        for (total, done) in self.processed_per_thread.iter_mut().zip(&processed) {
            *total += *done as u64;
        }
        self.check_stores()?;
        if processed.iter().any(|done| *done > 0) {
            self.uncommitted = true;
            self.publish_status();
        }
        Ok(())
    }

    /// Flushes every task's record caches (their updates go to the stores, changelogs and
    /// downstream), on the processing threads; before every commit, so that a commit never
    /// covers an update that is only in a cache.
    ///
    /// # Errors
    /// When a store failed: nothing is committed.
    async fn flush_caches(&mut self) -> Result<(), RuntimeError> {
        // Without caches, no trip to the blocking threads at every commit.
        if self.tasks.is_empty() || !self.cache.is_enabled() {
            return Ok(());
        }
        let flushed = self
            .on_threads("flushing record caches", |tasks, outputs| {
                let flushing = tasks.iter_mut().map(|task| task.flush_caches(outputs));
                flushing.filter(|flushed| *flushed).count()
            })
            .await?;
        self.check_stores()?;
        if flushed.iter().any(|count| *count > 0) {
            self.uncommitted = true;
        }
        Ok(())
    }

    /// Runs `work` over the tasks off the async threads, dealt round-robin by task id to
    /// [`RuntimeConfig::threads`] threads that run at once; their outputs join
    /// `self.outputs` thread by thread. Returns what `work` returned on each thread.
    async fn on_threads<W>(
        &mut self,
        operation: &'static str,
        work: W,
    ) -> Result<Vec<usize>, RuntimeError>
    where
        W: Fn(&mut [Task], &mut Vec<OutputRecord>) -> usize + Clone + Send + 'static,
    {
        let threads = self.processed_per_thread.len();
        let mut groups: Vec<Vec<Task>> = (0..threads).map(|_| Vec::new()).collect();
        for (index, (_, task)) in std::mem::take(&mut self.tasks).into_iter().enumerate() {
            groups[index % threads].push(task);
        }
        let jobs: Vec<_> = groups
            .into_iter()
            .map(|mut tasks| {
                let work = work.clone();
                tokio::task::spawn_blocking(move || {
                    let mut outputs = Vec::new();
                    let done = work(&mut tasks, &mut outputs);
                    (tasks, outputs, done)
                })
            })
            .collect();
        let mut results = Vec::with_capacity(threads);
        let mut failure = None;
        for job in jobs {
            match job.await {
                Ok((tasks, outputs, done)) => {
                    self.tasks
                        .extend(tasks.into_iter().map(|task| (task.id(), task)));
                    self.outputs.extend(outputs);
                    results.push(done);
                }
                Err(error) => {
                    let message = error.to_string();
                    failure.get_or_insert(RuntimeError::Blocking { operation, message });
                }
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(results),
        }
    }

    /// Stops the runtime on a store failure of the last round: it is not sent or committed.
    fn check_stores(&self) -> Result<(), RuntimeError> {
        for task in self.tasks.values() {
            if let Some(error) = task.stores().take_failure() {
                tracing::error!(task = %task.id(), %error, "a store failed");
                return Err(error.into());
            }
        }
        Ok(())
    }

    /// Tells the backend which input partitions to stop reading: those whose task holds a
    /// full buffer of them. The whole set every round, so a revoked, rewound or drained
    /// partition is never left paused.
    fn pause_full_partitions(&mut self) {
        let full: Vec<TopicPartition> = self
            .tasks
            .values()
            .flat_map(Task::full_partitions)
            .cloned()
            .collect();
        self.backend.set_paused(&full);
    }

    async fn send_outputs(&mut self) -> Result<(), BackendError> {
        let outputs = std::mem::take(&mut self.outputs);
        let now_ms = crate::processor_api::system_time_ms();
        for output in outputs {
            if output.kind == OutputKind::Sink {
                self.metrics.observe_end_to_end(now_ms, output.timestamp_ms);
            }
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
        // Under exactly-once the flushed updates join the transaction being committed.
        self.flush_caches().await?;
        match self.config.processing_guarantee {
            ProcessingGuarantee::AtLeastOnce => self.commit_at_least_once().await?,
            ProcessingGuarantee::ExactlyOnce => match self.commit_transaction().await {
                Ok(Some(commits)) => {
                    self.purge_repartition_topics(&flatten(&commits)).await;
                    self.checkpoint_after_commit(commits).await?;
                }
                Ok(None) => {}
                Err(error) => self.settle(Err(error)).await?,
            },
        }
        self.last_commit = Instant::now();
        self.log_dropped_records();
        Ok(())
    }

    /// Flushes every output, then commits each task's input offsets with metadata naming
    /// the changelog offsets that the commit covers.
    async fn commit_at_least_once(&mut self) -> Result<(), RuntimeError> {
        let started = Instant::now();
        self.send_outputs().await?;
        let acknowledged = self.backend.flush().await?;
        self.note_acknowledged(acknowledged);
        let commits = self.task_commits();
        let offsets = flatten(&commits);
        if !offsets.is_empty() {
            // Outputs are flushed, so a refused commit (the group moved on: a rebalance, an
            // expired session) loses nothing: the partitions' next owner reprocesses from
            // the previous commit. A failed flush, above, is fatal instead: committing past
            // unacknowledged outputs would lose them.
            match self.backend.commit(&offsets).await {
                Ok(()) => {
                    self.count_commit(started);
                    self.purge_repartition_topics(&offsets).await;
                    self.checkpoint_after_commit(commits).await?;
                }
                Err(error) => {
                    tracing::warn!(%error, "offset commit refused; its records will be processed again");
                }
            }
        }
        self.uncommitted = false;
        Ok(())
    }

    /// After a successful commit, at most once per commit interval: deletes the records of
    /// repartition topics below the committed offsets (DeleteRecords), as Kafka Streams
    /// does, since no task reads them again. A failure is logged; the next purge retries.
    async fn purge_repartition_topics(&mut self, committed: &[(TopicPartition, i64, String)]) {
        if self.last_purge.elapsed() < self.config.commit_interval {
            return;
        }
        let purge: Vec<(TopicPartition, i64)> = committed
            .iter()
            .filter(|(partition, _, _)| self.topology.is_repartition_topic(&partition.topic))
            .filter(|(partition, offset, _)| self.purged.get(partition) < Some(offset))
            .map(|(partition, offset, _)| (partition.clone(), *offset))
            .collect();
        if purge.is_empty() {
            return;
        }
        self.last_purge = Instant::now();
        match self.backend.delete_records(&purge).await {
            Ok(()) => self.purged.extend(purge),
            Err(error) => tracing::warn!(%error, "cannot purge repartition topics"),
        }
    }

    /// After a successful commit: stores to disk, then checkpoints (see `checkpoint`).
    async fn checkpoint_after_commit(
        &mut self,
        commits: Vec<TaskCommit>,
    ) -> Result<(), RuntimeError> {
        let work: Vec<(TaskCommit, TaskStores)> = commits
            .into_iter()
            .filter_map(|commit| {
                let stores = self.tasks.get(&commit.id)?.stores().clone();
                Some((commit, stores))
            })
            .collect();
        self.write_checkpoints(work).await
    }

    /// Commits the open transaction: every output, changelog and repartition record sent
    /// since the last commit, with each task's input offsets and metadata. Nothing to do
    /// when nothing was processed since.
    async fn commit_transaction(&mut self) -> Result<Option<Vec<TaskCommit>>, BackendError> {
        if !self.uncommitted {
            return Ok(None);
        }
        let started = Instant::now();
        self.send_outputs().await?;
        // Waiting for the acknowledgements first surfaces a failed write before the
        // commit, and keeps the changelog offsets in the metadata right for a later
        // at-least-once run of the same application.
        let acknowledged = self.backend.flush().await?;
        self.note_acknowledged(acknowledged);
        let commits = self.task_commits();
        self.backend.commit_transaction(&flatten(&commits)).await?;
        self.uncommitted = false;
        self.count_commit(started);
        Ok(Some(commits))
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
    fn task_commits(&self) -> Vec<TaskCommit> {
        let mut commits = Vec::new();
        for task in self.tasks.values() {
            let metadata = self.metadata_for(task);
            let mut offsets = Vec::new();
            for (topic_partition, next_offset) in task.committable_offsets() {
                let position = self
                    .backend
                    .position(&topic_partition)
                    .filter(|_| task.is_drained(&topic_partition));
                let offset = position.map_or(next_offset, |position| position.max(next_offset));
                offsets.push((topic_partition, offset));
            }
            if !offsets.is_empty() {
                commits.push(TaskCommit {
                    id: task.id(),
                    offsets,
                    metadata,
                });
            }
        }
        commits
    }

    /// Counts a commit that started at `started` (flushing outputs first).
    fn count_commit(&self, started: Instant) {
        self.metrics.observe_commit(started.elapsed());
        let mut status = self.status.lock_or_recover();
        status.commits += 1;
    }

    fn set_state(&self, state: RuntimeState) {
        self.status.lock_or_recover().state = state;
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
        let threads = self.processed_per_thread.len();
        let mut stream_threads: Vec<StreamThreadStatus> = self
            .processed_per_thread
            .iter()
            .map(|processed_records| StreamThreadStatus {
                tasks: Vec::new(),
                processed_records: *processed_records,
            })
            .collect();
        // Dealt as `on_threads` deals them.
        for (index, id) in self.tasks.keys().enumerate() {
            stream_threads[index % threads].tasks.push(*id);
        }
        let mut status = self.status.lock_or_recover();
        status.tasks = self.tasks.keys().copied().collect();
        status.metrics = metrics;
        status.stream_threads = stream_threads;
    }
}

/// Every task's `(input partition, next offset, metadata)`, as the group commits them.
fn flatten(commits: &[TaskCommit]) -> Vec<(TopicPartition, i64, String)> {
    let mut offsets = Vec::new();
    for commit in commits {
        let metadata = commit.metadata.encode();
        for (partition, offset) in &commit.offsets {
            offsets.push((partition.clone(), *offset, metadata.clone()));
        }
    }
    offsets
}

/// Logs the restore point a task resumes from.
fn log_restore_point(task: TaskId, point: &RestorePoint, has_checkpoint: bool) {
    match point {
        RestorePoint::Fresh => {
            tracing::info!(%task, has_checkpoint, "nothing committed: the task starts empty, reading its input from the start");
        }
        RestorePoint::Broker(_) | RestorePoint::Transactional(Some(_)) => {
            tracing::info!(%task, has_checkpoint, "restore point: the group's commit and its metadata");
        }
        RestorePoint::Transactional(None) => {
            tracing::warn!(%task, has_checkpoint, "the group's commit has no metadata (the broker does not keep it): under exactly-once the committed changelogs are restored to their end; stream time restarts");
        }
        RestorePoint::Local(checkpoint) => {
            tracing::warn!(%task, input_offsets = ?checkpoint.input_offsets, "the group's commit has no metadata (the broker does not keep OffsetCommit metadata): restoring to the local checkpoint and reading input from its offsets");
        }
    }
}

/// A restored chunk being written to its stores on the blocking pool.
struct ApplyingChunk {
    write: tokio::task::JoinHandle<Result<(), StateError>>,
    records: u64,
    /// The changelog offset reached once it has landed.
    position: i64,
}

impl ApplyingChunk {
    /// Starts writing `records` of changelog `topic` to `stores`, unsynced.
    fn start(
        stores: &TaskStores,
        topic: &str,
        records: Vec<InputRecord>,
        position: i64,
    ) -> ApplyingChunk {
        let (stores, topic) = (stores.clone(), topic.to_string());
        let count = records.len() as u64;
        let write = tokio::task::spawn_blocking(move || -> Result<(), StateError> {
            for record in &records {
                let Some(key) = record.key.as_deref() else {
                    continue;
                };
                stores.restore(&topic, key, record.value.as_deref(), record.timestamp_ms);
            }
            if let Some(error) = stores.take_failure() {
                return Err(error);
            }
            // Restored writes are part of the changelog already: safe to write at once.
            for segment in stores.write_pending()? {
                segment.delete()?;
            }
            Ok(())
        });
        ApplyingChunk {
            write,
            records: count,
            position,
        }
    }

    /// Waits for the write; returns the chunk's records and the offset reached.
    async fn land(self) -> Result<(u64, i64), RuntimeError> {
        joined("restore", self.write).await??;
        Ok((self.records, self.position))
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

/// Runs `step` on `items` in turns, a share of `limit` steps each, until `limit` steps ran
/// or no item can step; returns the steps run. A thread's tasks share a round this way:
/// the first of them cannot use up every round while the others' inputs wait (when it
/// did, one thread over two tasks cost 1.5x the CPU per record of one task).
fn take_turns<T>(items: &mut [T], limit: usize, mut step: impl FnMut(&mut T) -> bool) -> usize {
    let share = limit.div_ceil(items.len().max(1));
    let mut steps = 0usize;
    loop {
        let before = steps;
        for item in items.iter_mut() {
            let mut taken = 0usize;
            while taken < share && steps < limit && step(item) {
                taken += 1;
                steps += 1;
            }
        }
        if steps == before || steps >= limit {
            return steps;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::observe::AppSummary;

    impl AppSummary {
        fn instance_of_tasks(&self) -> Vec<&str> {
            self.tasks
                .iter()
                .map(|task| task.instance.as_str())
                .collect()
        }
    }
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
            .group_by_key_with(Grouped::new(StringSerde, StringSerde))
            .count("word-counts-store")
            .to("word-counts", StringSerde, I64Serde);
        builder.build().expect("a valid topology")
    }

    /// A round is shared: two items with work each get half of it, and one that runs out
    /// leaves the rest of the round to the other.
    #[test]
    fn tasks_take_turns_within_a_round() {
        let mut queues = [10usize, 10];
        let step = |left: &mut usize| {
            let had = *left > 0;
            *left = left.saturating_sub(1);
            had
        };
        assert_eq!(take_turns(&mut queues, 8, step), 8);
        assert_eq!(queues, [6, 6], "each took half of the round");
        let mut queues = [1usize, 10];
        assert_eq!(take_turns(&mut queues, 8, step), 8);
        assert_eq!(queues, [0, 3], "the second took what the first left");
        let mut queues = [1usize, 2];
        assert_eq!(
            take_turns(&mut queues, 8, step),
            3,
            "a round ends when no work is left"
        );
    }

    fn word(index: usize) -> &'static str {
        WORDS[(index * 7 + index / 3) % WORDS.len()]
    }

    fn cluster_with_input() -> Arc<Mutex<FakeCluster>> {
        cluster_with_partitions(2)
    }

    /// The input spread over `partitions` partitions of `lines`.
    fn cluster_with_partitions(partitions: i32) -> Arc<Mutex<FakeCluster>> {
        let mut cluster = FakeCluster::default();
        cluster.create("lines", partitions);
        for index in 0..INPUT_COUNT {
            let partition = i32::try_from(index).expect("small") % partitions;
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
            // Every update comes out: the tests read counts 1, 2, ..., n.
            cache_max_bytes: 0,
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
        run_with(cluster, exactly_once_config())
            .await
            .expect("the runner ran without error")
    }

    /// Runs a runner with `config` over `cluster` until everything is consumed or it fails.
    async fn run_with(
        cluster: &Arc<Mutex<FakeCluster>>,
        config: RuntimeConfig,
    ) -> Result<RuntimeStatus, RuntimeError> {
        let backend = FakeBackend::new(cluster.clone());
        let runner = Runner::new(word_count_topology(), backend, config);
        let status = runner.status();
        let watched = status.clone();
        let consumed = async move {
            // Every task is running (restored), and the input is consumed.
            let partitions = lock(cluster).partition_counts.get("lines").copied();
            let tasks = 2 * usize::try_from(partitions.unwrap_or(0)).expect("positive");
            let running = || watched.lock_or_recover().tasks.len() == tasks;
            while !running() || !all_consumed(cluster) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        let ran = tokio::time::timeout(RUN_TIMEOUT, runner.run_until(consumed)).await;
        ran.expect("the runner consumed everything in time")?;
        Ok(status.lock_or_recover().clone())
    }

    /// At-least-once, committing after every round of at most 7 records, with stores
    /// (persistent by default) in `state_dir`.
    fn at_least_once_config(state_dir: Option<&std::path::Path>) -> RuntimeConfig {
        RuntimeConfig {
            commit_interval: Duration::ZERO,
            poll_timeout: Duration::from_millis(1),
            max_records_per_round: 7,
            state_dir: state_dir.map(std::path::Path::to_path_buf),
            cache_max_bytes: 0,
            ..RuntimeConfig::default()
        }
    }

    /// A fresh state directory for one test.
    fn state_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("riffle-runner-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Runs an at-least-once runner until it has made `commits` commits, then drops it
    /// without a last commit, as a kill would.
    async fn crash_after(cluster: &Arc<Mutex<FakeCluster>>, config: RuntimeConfig, commits: u64) {
        let backend = FakeBackend::new(cluster.clone());
        let runner = Runner::new(word_count_topology(), backend, config);
        let status = runner.status();
        let crash = async {
            while status.lock_or_recover().commits < commits {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::select! {
            ended = runner.run_until(std::future::pending()) => {
                panic!("the runner ended before the crash: {ended:?}")
            }
            () = crash => {}
        }
        // Work the runner moved to blocking threads ends, and lets go of the state lock.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !all_consumed(cluster),
            "the crash came too late to test anything"
        );
    }

    /// Whether each word's largest count is its number of occurrences: state that applied
    /// some input twice would count higher; outputs may repeat under at-least-once.
    fn counts_are_exact(cluster: &Mutex<FakeCluster>) {
        let finals: BTreeMap<String, i64> = output_counts(cluster)
            .into_iter()
            .map(|(word, counts)| (word, counts.into_iter().max().unwrap_or(0)))
            .collect();
        let expected: BTreeMap<String, i64> = expected_counts()
            .into_iter()
            .map(|(word, counts)| (word, counts.into_iter().max().unwrap_or(0)))
            .collect();
        assert_eq!(finals, expected);
    }

    fn changelog_length(cluster: &Mutex<FakeCluster>) -> u64 {
        let records = lock(cluster).records("words-app-word-counts-store-changelog");
        records.len() as u64
    }

    #[tokio::test]
    async fn the_runner_does_not_wait_in_its_poll_while_records_are_buffered() {
        // Proves a round with records left to process polls without waiting: with a
        // 5 s poll timeout and 7 records per round, waiting while buffered would take
        // minutes over the 300 records; not waiting takes well under RUN_TIMEOUT.
        let cluster = cluster_with_input();
        let config = RuntimeConfig {
            poll_timeout: Duration::from_secs(5),
            ..at_least_once_config(None)
        };
        let status = run_with(&cluster, config).await.expect("the runner ran");
        assert!(status.metrics.processed_records >= 2 * INPUT_COUNT as u64);
        counts_are_exact(&cluster);
    }

    #[tokio::test]
    async fn a_crash_restores_only_the_changelog_tail_and_a_clean_stop_nothing() {
        // Proves checkpoints bound restores: an at-least-once instance with persistent
        // stores is dropped mid-stream (no last commit) and replaced on the same state
        // directory; the replacement restores at most the tail past the last checkpoint,
        // counts every word exactly once, and after its clean stop a third start restores
        // nothing at all.
        let cluster = cluster_with_input();
        let dir = state_dir("crash-tail");
        // Each round takes 7 records, source tasks first: the counting starts after about
        // 45 commits.
        crash_after(&cluster, at_least_once_config(Some(&dir)), 60).await;
        let written = changelog_length(&cluster);
        assert!(
            written > 20,
            "only {written} changelog records before the crash"
        );
        let status = run_with(&cluster, at_least_once_config(Some(&dir)))
            .await
            .unwrap();
        counts_are_exact(&cluster);
        assert!(
            status.restored_records * 4 < written,
            "restored {} of {written} changelog records",
            status.restored_records
        );
        let status = run_with(&cluster, at_least_once_config(Some(&dir)))
            .await
            .unwrap();
        assert_eq!(
            status.restored_records, 0,
            "a clean stop leaves nothing to restore"
        );

        // A wiped state directory restores the whole changelog, and stays correct.
        std::fs::remove_dir_all(&dir).unwrap();
        let everything = changelog_length(&cluster);
        let status = run_with(&cluster, at_least_once_config(Some(&dir)))
            .await
            .unwrap();
        assert_eq!(status.restored_records, everything);
        counts_are_exact(&cluster);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_broker_that_drops_commit_metadata_falls_back_to_checkpoints_or_stops_clearly() {
        // Proves the runtime never double-applies input on a broker that keeps committed
        // offsets but drops their metadata (as Tansu 0.6 does): with a state directory, a
        // crashed instance's replacement resumes from its local checkpoint and counts every
        // word exactly once; without one, a restart stops with an error naming the
        // broker's missing behaviour instead of restoring whole changelogs.
        let cluster = cluster_with_input();
        lock(&cluster).drop_commit_metadata = true;
        let dir = state_dir("dropped-metadata");
        crash_after(&cluster, at_least_once_config(Some(&dir)), 60).await;
        run_with(&cluster, at_least_once_config(Some(&dir)))
            .await
            .unwrap();
        counts_are_exact(&cluster);
        let _ = std::fs::remove_dir_all(&dir);

        let cluster = cluster_with_input();
        lock(&cluster).drop_commit_metadata = true;
        crash_after(&cluster, at_least_once_config(None), 60).await;
        let error = run_with(&cluster, at_least_once_config(None))
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, RuntimeError::RestorePointMissing { .. }),
            "{message}"
        );
        assert!(
            message.contains("does not keep OffsetCommit metadata"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn two_instances_never_share_a_state_directory() {
        // Proves the state directory's lock: while one runner holds it, a second runner of
        // the same application on the same directory stops at start, naming the lock.
        let cluster = cluster_with_input();
        let dir = state_dir("locked");
        let first = Runner::new(
            word_count_topology(),
            FakeBackend::new(cluster.clone()),
            at_least_once_config(Some(&dir)),
        );
        let first_status = first.status();
        let running = tokio::spawn(first.run_until(std::future::pending()));
        while first_status.lock_or_recover().commits == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let error = run_with(&cluster, at_least_once_config(Some(&dir)))
            .await
            .unwrap_err();
        assert!(
            matches!(error, RuntimeError::State(StateError::Locked { .. })),
            "{error}"
        );
        assert!(error.to_string().contains("another instance"), "{error}");
        running.abort();
        let _ = running.await;
        let _ = std::fs::remove_dir_all(&dir);
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

    #[tokio::test]
    async fn the_app_handle_follows_the_runner_and_its_metrics_move() {
        // Proves what the host's /apps and /metrics read of a runner: its state from
        // running to stopped, its tasks, and commit and end-to-end latencies recorded as
        // it commits and writes to its sink.
        let cluster = cluster_with_input();
        let backend = FakeBackend::new(cluster.clone());
        let config = at_least_once_config(None);
        let runner = Runner::new(word_count_topology(), backend, config);
        let app = runner.app_handle(RuntimeKind::Remote);
        let watched = app.clone();
        let consumed = async {
            let running = || watched.summary().tasks.len() == 4;
            while !running() || !all_consumed(&cluster) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(watched.summary().state, "running");
        };
        let ran = tokio::time::timeout(RUN_TIMEOUT, runner.run_until(consumed)).await;
        ran.expect("the runner consumed everything in time")
            .expect("the runner ran");
        let summary = app.summary();
        assert_eq!(summary.state, "stopped");
        assert_eq!(summary.instance_of_tasks(), vec!["local"; 4]);
        assert!(summary.records_processed_total >= 2 * INPUT_COUNT as u64);
        let text = crate::observe::encode_metrics(&[app]).expect("metrics encode");
        for family in [
            "riffle_processor_commit_duration_seconds_count{application=\"words-app\"}",
            "riffle_processor_end_to_end_latency_seconds_count{application=\"words-app\"}",
        ] {
            let line = text.lines().find(|line| line.starts_with(family));
            let count: f64 = line
                .and_then(|line| line.rsplit(' ').next()?.parse().ok())
                .unwrap_or_else(|| panic!("no {family} in\n{text}"));
            assert!(count > 0.0, "{family} is 0");
        }
    }

    /// Per word, whether its counts only grow and end at its number of occurrences.
    fn counts_grow_to_the_exact_total(cluster: &Mutex<FakeCluster>) {
        let expected = expected_counts();
        for (word, counts) in output_counts(cluster) {
            assert!(
                counts.windows(2).all(|pair| pair[0] < pair[1]),
                "{word}: {counts:?}"
            );
            assert_eq!(counts.last(), expected[&word].last(), "{word}");
        }
    }

    #[tokio::test]
    async fn exactly_once_flushes_the_record_cache_into_each_transaction() {
        // Proves the cache's flush comes before each transaction's commit, aborts
        // included: with the cache on, every third commit refused, each word's outputs are
        // coalesced (fewer than one per record), only grow, and end at its exact count.
        let cluster = cluster_with_input();
        lock(&cluster).fail_every_commits = Some(3);
        let config = RuntimeConfig {
            cache_max_bytes: 1024 * 1024,
            max_records_per_round: 50,
            ..exactly_once_config()
        };
        run_with(&cluster, config).await.unwrap();
        counts_grow_to_the_exact_total(&cluster);
        let outputs = lock(&cluster).records("word-counts").len();
        assert!(
            outputs < INPUT_COUNT,
            "{outputs} outputs: nothing coalesced"
        );
        assert!(lock(&cluster).aborts >= 2, "the faults did not bite");
    }

    #[tokio::test]
    async fn two_threads_share_the_tasks_and_count_the_same() {
        // Proves `threads`: over 4 input partitions (8 tasks with the repartition topic's),
        // two threads each get tasks and process records, and the outputs are what one
        // thread writes: each word's counts 1, 2, ..., n.
        let mut results = Vec::new();
        for threads in [1, 2] {
            let cluster = cluster_with_partitions(4);
            let config = RuntimeConfig {
                threads,
                ..at_least_once_config(None)
            };
            let status = run_with(&cluster, config).await.unwrap();
            assert_eq!(status.stream_threads.len(), threads);
            for thread in &status.stream_threads {
                assert_eq!(thread.tasks.len(), 8 / threads, "{thread:?}");
                assert!(thread.processed_records > 0, "{thread:?}");
            }
            results.push(output_counts(&cluster));
        }
        assert_eq!(results[0], expected_counts());
        assert_eq!(results[1], results[0]);
    }
}
