//! [`ShadowRun`]: a shadow run and its diff against a Kafka-compatible cluster, over
//! rdkafka (the remote runtime's clients).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::diff::{DiffReport, OutputDiff};
use super::names::ShadowNames;
use super::shadow_backend::{ShadowBackend, ShadowProgress};
use crate::runtime::remote::{FETCH_QUEUE_BACKOFF_MS, RemoteBackend};
use crate::runtime::{Backend, BackendError, Runner, RuntimeConfig, RuntimeError};
use crate::topology::{InternalTopic, Topology};

/// How long one admin request or one topic read may go without progress.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How often deleted topics are looked for again until they are gone.
const DELETE_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Commit interval of a shadow run: its end is seen at a commit, so commit often.
const SHADOW_COMMIT_INTERVAL: Duration = Duration::from_millis(100);

/// Why a shadow run or its diff failed.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The shadow topology stopped with an error.
    #[error("shadow run: {0}")]
    Runtime(#[from] RuntimeError),
    /// The cluster failed a request.
    #[error("shadow run: {0}")]
    Cluster(#[from] BackendError),
}

/// What a finished shadow run covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowOutcome {
    /// The shadow's application id (its consumer group).
    pub shadow_application_id: String,
    /// Sink topics as `(live topic, shadow topic)`: what to diff.
    pub sinks: Vec<(String, String)>,
    /// The input range processed, the offsets committed, records skipped past the end.
    pub progress: ShadowProgress,
}

/// A new version of a topology run against the retained history of its inputs, under a
/// shadow application id, writing shadow topics ([`ShadowNames`]); then diffed against the
/// live application's outputs with [`ShadowRun::diff`] before switching.
///
/// ```text
/// let shadow = ShadowRun::new(new_topology, "127.0.0.1:9092");   // shadow of its application
/// let outcome = shadow.run().await?;                             // inputs up to their ends now
/// for (live, shadow_topic) in &outcome.sinks {
///     let diff = OutputDiff::new(KeyFormat::default(), DataFormat::I64);
///     println!("{live}: {}", shadow.diff(live, shadow_topic, diff).await?);
/// }
/// shadow.clean_up().await?;                                      // its group and topics
/// ```
pub struct ShadowRun {
    topology: Topology,
    names: Arc<ShadowNames>,
    bootstrap_servers: String,
    client_settings: Vec<(String, String)>,
    config: RuntimeConfig,
}

impl ShadowRun {
    /// A shadow of `topology`'s application, `<application>-shadow`, on the cluster at
    /// `bootstrap_servers`. Build `topology` with the application's own builder code (the
    /// live application id): the shadow renames what it writes.
    pub fn new(topology: Topology, bootstrap_servers: &str) -> ShadowRun {
        let names = ShadowNames::with_default_id(&topology);
        let config = RuntimeConfig {
            commit_interval: SHADOW_COMMIT_INTERVAL,
            ..RuntimeConfig::default()
        };
        ShadowRun {
            topology,
            names: Arc::new(names),
            bootstrap_servers: bootstrap_servers.to_owned(),
            client_settings: Vec::new(),
            config,
        }
    }

    /// Runs under `shadow_application_id` instead of `<application>-shadow`.
    pub fn shadow_application_id(mut self, shadow_application_id: &str) -> ShadowRun {
        self.names = Arc::new(ShadowNames::new(&self.topology, shadow_application_id));
        self
    }

    /// A librdkafka setting for every client (security, `client.id`, ...).
    pub fn client_setting(mut self, key: &str, value: &str) -> ShadowRun {
        self.client_settings
            .push((key.to_owned(), value.to_owned()));
        self
    }

    /// The runtime's settings (guarantee, cache, threads). The shadow always keeps its
    /// stores in memory and runs without an instance id, so it shares no state directory
    /// and no group membership with the live application; it commits at least every
    /// 100 ms, since its end is seen at a commit.
    pub fn runtime_config(mut self, config: RuntimeConfig) -> ShadowRun {
        self.config = config;
        self
    }

    /// The shadow's names.
    pub fn names(&self) -> &ShadowNames {
        &self.names
    }

    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (key, value) in &self.client_settings {
            config.set(key, value);
        }
        config
    }

    /// A client of the cluster with the shadow's client settings.
    fn backend(&self) -> Result<RemoteBackend, BackendError> {
        let settings: Vec<(&str, &str)> = self
            .client_settings
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        RemoteBackend::new(&self.bootstrap_servers, &settings)
    }

    /// Runs the shadow from the start of every input partition's retained history up to
    /// its end when the run starts, and stops once all of it (and everything it
    /// repartitioned) is processed and committed. A shadow left from an earlier run (its
    /// group and topics) is deleted first, so every run starts from nothing.
    ///
    /// # Errors
    /// When the cluster fails a request, an input topic does not exist, or the topology
    /// stops with an error.
    pub async fn run(&self) -> Result<ShadowOutcome, UpgradeError> {
        self.run_until(std::future::pending()).await
    }

    /// As [`ShadowRun::run`], but stops early (after a last commit) when `stop` completes;
    /// the outcome then says how far it got (`progress.done` is false).
    ///
    /// # Errors
    /// As [`ShadowRun::run`].
    pub async fn run_until(
        &self,
        stop: impl Future<Output = ()>,
    ) -> Result<ShadowOutcome, UpgradeError> {
        self.clean_up().await?;
        let mut backend = self.backend()?;
        self.create_sinks(&mut backend).await?;
        let shadow = ShadowBackend::start(backend, &self.topology, self.names.clone()).await?;
        let progress = shadow.progress();
        let mut done = shadow.done();
        let config = RuntimeConfig {
            instance_id: None,
            state_dir: None,
            commit_interval: self.config.commit_interval.min(SHADOW_COMMIT_INTERVAL),
            ..self.config.clone()
        };
        tracing::info!(
            shadow = self.names.shadow_application_id(),
            inputs = progress.lock().map(|p| p.input_ends.len()).unwrap_or(0),
            "shadow run starts"
        );
        let finished = async move {
            // Err: the backend is gone, so the runner is stopping anyway.
            let _ = done.wait_for(|done| *done).await;
        };
        let runner = Runner::new(self.topology.clone(), shadow, config);
        runner
            .run_until(async move {
                tokio::select! {
                    () = finished => {}
                    () = stop => {}
                }
            })
            .await?;
        let progress = match progress.lock() {
            Ok(progress) => progress.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        Ok(ShadowOutcome {
            shadow_application_id: self.names.shadow_application_id().to_owned(),
            sinks: self
                .names
                .sinks()
                .map(|(live, shadow)| (live.to_owned(), shadow.to_owned()))
                .collect(),
            progress,
        })
    }

    /// Creates each shadow sink topic with its live topic's partition count (or the first
    /// input's, for a sink the live application does not have yet).
    async fn create_sinks(&self, backend: &mut RemoteBackend) -> Result<(), BackendError> {
        let mut fallback_partitions = 1;
        for topic in self.topology.external_source_topics() {
            if let Some(count) = backend.partition_count(&topic).await? {
                fallback_partitions = count;
                break;
            }
        }
        for (live, shadow) in self.names.sinks() {
            let partitions = backend
                .partition_count(live)
                .await?
                .unwrap_or(fallback_partitions);
            let topic = InternalTopic {
                name: shadow.to_owned(),
                partitions,
                configs: Vec::new(),
            };
            backend.create_topic(&topic).await?;
        }
        Ok(())
    }

    /// Compares the final value per key (and window) of the live topic `live_topic` and
    /// the shadow topic `shadow_topic`, each read from its start to its end now.
    ///
    /// # Errors
    /// When a topic cannot be read.
    pub async fn diff(
        &self,
        live_topic: &str,
        shadow_topic: &str,
        diff: OutputDiff,
    ) -> Result<DiffReport, UpgradeError> {
        let config = self.client_config();
        let (live_topic, shadow_topic) = (live_topic.to_owned(), shadow_topic.to_owned());
        let report = tokio::task::spawn_blocking(move || {
            let mut diff = diff;
            read_topic_blocking(&config, &live_topic, |key, value| diff.add_live(key, value))?;
            read_topic_blocking(&config, &shadow_topic, |key, value| {
                diff.add_shadow(key, value)
            })?;
            Ok::<_, BackendError>(diff.finish())
        })
        .await
        .map_err(|error| BackendError::new("diff", error))??;
        Ok(report)
    }

    /// Deletes the shadow's consumer group and every topic it writes (sinks, changelogs,
    /// repartition topics), and waits until the topics are gone. Nothing of the live
    /// application is touched. What is already gone is fine.
    ///
    /// # Errors
    /// When the cluster refuses (the group still has members: a shadow still running).
    pub async fn clean_up(&self) -> Result<(), UpgradeError> {
        let admin: AdminClient<DefaultClientContext> = self
            .client_config()
            .create()
            .map_err(|error| BackendError::new("create admin client", error))?;
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let group = self.names.shadow_application_id();
        let operation = format!("delete group {group}");
        let results = admin
            .delete_groups(&[group], &options)
            .await
            .map_err(|error| BackendError::new(&operation, error))?;
        for result in results {
            match result {
                Ok(_)
                | Err((_, RDKafkaErrorCode::GroupIdNotFound))
                | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((_, code)) => return Err(BackendError::new(&operation, code).into()),
            }
        }
        let topics: Vec<&str> = self.names.shadow_topics().collect();
        let results = admin
            .delete_topics(&topics, &options)
            .await
            .map_err(|error| BackendError::new("delete shadow topics", error))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((topic, code)) => {
                    return Err(BackendError::new(format!("delete topic {topic}"), code).into());
                }
            }
        }
        self.wait_until_deleted(&topics).await
    }

    async fn wait_until_deleted(&self, topics: &[&str]) -> Result<(), UpgradeError> {
        let mut backend = self.backend()?;
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        for topic in topics {
            while backend.partition_count(topic).await?.is_some() {
                if Instant::now() >= deadline {
                    let message = "still listed after it was deleted";
                    return Err(BackendError::new(format!("delete topic {topic}"), message).into());
                }
                tokio::time::sleep(DELETE_POLL_INTERVAL).await;
            }
        }
        Ok(())
    }
}

/// Reads every partition of `topic` from its start to its end (EOF), handing each record's
/// key and value to `each` in offset order per partition. Blocks.
fn read_topic_blocking(
    base: &ClientConfig,
    topic: &str,
    mut each: impl FnMut(Option<&[u8]>, Option<&[u8]>),
) -> Result<(), BackendError> {
    let operation = || format!("read {topic}");
    let mut config = base.clone();
    config
        // Never joins or commits; librdkafka wants a group id to poll.
        .set("group.id", "riffle-upgrade-diff")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("allow.auto.create.topics", "false")
        .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS);
    let consumer: BaseConsumer = config
        .create()
        .map_err(|error| BackendError::new(operation(), error))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .map_err(|error| BackendError::new(operation(), error))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(BackendError::new(operation(), "the topic does not exist"));
    }
    let mut assignment = TopicPartitionList::new();
    for partition in &partitions {
        assignment
            .add_partition_offset(topic, *partition, Offset::Beginning)
            .map_err(|error| BackendError::new(operation(), error))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|error| BackendError::new(operation(), error))?;
    let mut open: std::collections::BTreeSet<i32> = partitions.into_iter().collect();
    let mut last_progress = Instant::now();
    while !open.is_empty() {
        if last_progress.elapsed() > REQUEST_TIMEOUT {
            let message = format!("no record or end of partitions {open:?} in {REQUEST_TIMEOUT:?}");
            return Err(BackendError::new(operation(), message));
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                last_progress = Instant::now();
                each(message.key(), message.payload());
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                last_progress = Instant::now();
                open.remove(&partition);
            }
            Some(Err(error)) => return Err(BackendError::new(operation(), error)),
            None => {}
        }
    }
    Ok(())
}
