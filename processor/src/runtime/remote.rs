//! The remote runtime: a topology against any Kafka-compatible broker, over rdkafka.
//!
//! [`RemoteBackend`] implements [`Backend`] with four librdkafka clients: a group consumer
//! (the application's consumer group, `group.id` = application id, the `cooperative-sticky`
//! or `range` assignor ([`RuntimeConfig::cooperative_rebalancing`]), manual commits with
//! [`crate::internals::CommitMetadata`] in the metadata string), a restore consumer that
//! reads changelogs outside the group, an idempotent `acks=all` producer, and an admin
//! client for internal topics. [`Runner`] drives it like any other backend.
//!
//! # Exactly-once
//!
//! With [`ProcessingGuarantee::ExactlyOnce`](crate::runtime::ProcessingGuarantee) the
//! producer is transactional, with `transactional.id = <application id>-<instance id>`
//! ([`RuntimeConfig::instance_id`]) and `transaction.timeout.ms = 10000` unless the
//! caller's settings say otherwise; both consumers read with
//! `isolation.level=read_committed`. Each commit sends the input offsets into the
//! transaction with the group consumer's metadata (`send_offsets_to_transaction`), so the
//! group generation fences a zombie, then commits it. What a user sees when things go
//! wrong: a failed commit or write logs `aborting the transaction` and the instance goes
//! on from its last commit (its tasks restored again from their changelogs); a fenced
//! producer (another instance started with the same instance id, or this one stalled past
//! the transaction timeout) also logs `replacing it with a new one`, and a new producer is
//! initialized in its place: no restart, no crash loop, no output twice.
//!
//! # Entry points
//!
//! ```text
//! // Everything in one call; returns once `shutdown` completes and the final commit is done.
//! pub async fn run_remote(
//!     topology: Topology,
//!     bootstrap_servers: &str,
//!     config: RuntimeConfig,
//!     shutdown: impl Future<Output = ()>,
//! ) -> Result<(), RuntimeError>;
//!
//! // Or, to query stores or read the status while it runs:
//! let backend = RemoteBackend::new("127.0.0.1:9092", &[("client.id", "my-app")])?;
//! let runner = Runner::new(topology, backend, RuntimeConfig::default());
//! let (stores, status) = (runner.stores(), runner.status());
//! runner.run_until(shutdown).await?;
//! ```
//!
//! Blocking librdkafka calls (poll, commit, committed offsets, metadata, restores) run on
//! tokio's blocking pool, never on the runtime's worker threads; so this needs a tokio
//! runtime with the blocking pool (any multi-thread or current-thread runtime has one).

mod consumer;
mod members;
mod producer;
mod restore;

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::task::JoinHandle;

use self::consumer::{
    GroupConsumer, GroupContext, committed_offset, poll_blocking, rewind_blocking, seek_blocking,
};
use self::members::group_members_blocking;
use self::producer::OutputProducer;
use self::restore::{
    REQUEST_TIMEOUT, RestoreConsumer, RestoreSession, partition_count_blocking, read_chunk_blocking,
};
use super::backend::{
    Backend, BackendError, BackendEvent, CommittedOffset, GroupMembers, RestoreChunk,
};
use super::config::RuntimeConfig;
use super::runner::{Runner, RuntimeError};
use crate::record::{OutputRecord, TopicPartition};
use crate::topology::{InternalTopic, Topology};

/// Group settings the runtime relies on; set after the caller's, so they win.
const GROUP_SETTINGS: &[(&str, &str)] = &[
    // The runner commits after flushing outputs; nothing else may.
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("auto.offset.reset", "earliest"),
    // Subscribing must not create source topics on brokers that auto-create.
    ("allow.auto.create.topics", "false"),
    ("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS),
];

/// `fetch.queue.backoff.ms` of every consumer the processor reads data with (the group's,
/// restores', the upgrade diff's). librdkafka stops fetching a partition once its queue
/// holds `queued.min.messages` (100,000) and looks again only after this backoff, 1 s by
/// default. Small records fill that queue in a fraction of a millisecond, so the default
/// read a topic of 16-byte records at 160 k records/s where 10 ms read 2.1 M
/// (confluent-kafka against Riffle).
pub(crate) const FETCH_QUEUE_BACKOFF_MS: &str = "10";

/// Runs `topology` against the cluster at `bootstrap_servers` until `shutdown` completes,
/// then commits and leaves the group.
///
/// With [`RuntimeConfig::instance_id`] set, the instance is also a static member of its
/// group (`group.instance.id` = the instance id, KIP-345), as a co-located runtime is: a
/// restarted instance takes its partitions back at once, without waiting for its previous
/// member's session (librdkafka's 45 s) to expire; in exchange a static member does not
/// leave the group when it stops, so its partitions move to others only after that
/// session timeout.
///
/// # Errors
/// When the clients cannot be created, the topology cannot run on the cluster, or a
/// request the runtime cannot do without fails.
pub async fn run_remote(
    topology: Topology,
    bootstrap_servers: &str,
    config: RuntimeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RuntimeError> {
    remote_runner(topology, bootstrap_servers, config)?
        .run_until(shutdown)
        .await
}

/// [`remote_runner`] with `settings` (librdkafka's, such as `session.timeout.ms` or
/// security settings) for every client, as [`RemoteBackend::new`] takes them.
///
/// # Errors
/// When the clients cannot be created.
pub fn remote_runner_with_settings(
    topology: Topology,
    bootstrap_servers: &str,
    config: RuntimeConfig,
    settings: &[(&str, &str)],
) -> Result<Runner<RemoteBackend>, RuntimeError> {
    let mut all: Vec<(&str, &str)> = settings.to_vec();
    if let Some(instance_id) = config.instance_id.as_deref() {
        all.push(("group.instance.id", instance_id));
    }
    let mut backend = RemoteBackend::new(bootstrap_servers, &all)?;
    // Cooperative-sticky balances partitions one by one; only range keeps partition p of
    // every topic a sub-topology reads on one member.
    let single_source = topology
        .subtopologies()
        .iter()
        .all(|subtopology| subtopology.source_topics.len() <= 1);
    if config.cooperative_rebalancing && !single_source {
        tracing::info!(
            application = topology.application_id(),
            "a sub-topology reads several co-partitioned topics: eager range rebalancing"
        );
    }
    backend.cooperative = config.cooperative_rebalancing && single_source;
    Ok(Runner::new(topology, backend, config))
}

/// The runner [`run_remote`] runs, for a program that serves its stores, status or
/// metrics while it runs ([`Runner::app_handle`]); start it with [`Runner::run_until`].
///
/// # Errors
/// When the clients cannot be created.
pub fn remote_runner(
    topology: Topology,
    bootstrap_servers: &str,
    config: RuntimeConfig,
) -> Result<Runner<RemoteBackend>, RuntimeError> {
    remote_runner_with_settings(topology, bootstrap_servers, config, &[])
}

/// A [`Backend`] over rdkafka, for any Kafka-compatible broker.
pub struct RemoteBackend {
    /// `bootstrap.servers` and the caller's settings, shared by every client.
    base_config: ClientConfig,
    admin: AdminClient<DefaultClientContext>,
    producer: OutputProducer,
    /// Reads changelogs and answers metadata and watermark requests, outside the group.
    restore: RestoreConsumer,
    /// Under exactly-once, the group consumer reads read_committed too; set by
    /// [`Backend::init_transactions`] before [`Backend::subscribe`] creates it.
    read_committed: bool,
    /// The group member, from [`Backend::subscribe`] on.
    group: Option<Arc<GroupConsumer>>,
    /// The group's id, from [`Backend::subscribe`] on.
    group_id: String,
    /// Whether the group member rebalances cooperatively (KIP-429, `cooperative-sticky`)
    /// rather than eagerly (`range`); see [`RuntimeConfig::cooperative_rebalancing`].
    /// Set before [`Backend::subscribe`].
    pub cooperative: bool,
    /// A poll whose caller went away (the runner stopped waiting on shutdown); the next
    /// poll returns its events instead of losing them.
    in_flight_poll: Option<JoinHandle<Vec<BackendEvent>>>,
    /// Per assigned partition, the offset after the last record [`Backend::poll`] returned.
    positions: HashMap<TopicPartition, i64>,
    /// The restore consumer's assignment between two chunks of one restore.
    restore_session: Option<RestoreSession>,
}

impl RemoteBackend {
    /// Clients for the cluster at `bootstrap_servers`, with `extra_config` librdkafka
    /// settings for all of them (security, `client.id`, `broker.address.family`, ...).
    /// Settings the runtime relies on (assignor, manual commits, `acks=all`, idempotence)
    /// are fixed and override these.
    ///
    /// # Errors
    /// When librdkafka rejects the configuration.
    pub fn new(
        bootstrap_servers: &str,
        extra_config: &[(&str, &str)],
    ) -> Result<RemoteBackend, BackendError> {
        let mut base_config = ClientConfig::new();
        base_config
            .set("bootstrap.servers", bootstrap_servers)
            .set("client.id", "riffle-processor");
        for (key, value) in extra_config {
            base_config.set(*key, *value);
        }
        let admin = base_config
            .create()
            .map_err(|error| BackendError::new("create admin client", error))?;
        Ok(RemoteBackend {
            admin,
            producer: OutputProducer::new(&base_config)?,
            restore: restore::restore_consumer(&base_config)?,
            read_committed: false,
            base_config,
            group: None,
            group_id: String::new(),
            cooperative: false,
            in_flight_poll: None,
            positions: HashMap::new(),
            restore_session: None,
        })
    }

    fn group(&self, operation: &str) -> Result<Arc<GroupConsumer>, BackendError> {
        self.group
            .clone()
            .ok_or_else(|| BackendError::new(operation, "not subscribed to a group yet"))
    }

    /// Takes librdkafka's own positions where they are further than the records poll
    /// returned: they step past control records (transaction markers), which poll never
    /// returns, so a partition ending in a marker still counts as caught up.
    fn note_consumer_positions(&mut self) {
        let Some(consumer) = &self.group else {
            return;
        };
        // Local to librdkafka: no request.
        let Ok(positions) = consumer.position() else {
            return;
        };
        for element in positions.elements() {
            let Offset::Offset(offset) = element.offset() else {
                continue;
            };
            let partition = TopicPartition::new(element.topic(), element.partition());
            let known = self.positions.entry(partition).or_insert(offset);
            *known = (*known).max(offset);
        }
    }

    /// Tracks what poll returned, for [`Backend::is_caught_up`].
    fn note_positions(&mut self, events: &[BackendEvent]) {
        for event in events {
            match event {
                BackendEvent::Records(records) => {
                    for record in records {
                        let partition = TopicPartition::new(record.topic.clone(), record.partition);
                        self.positions
                            .insert(partition, record.offset.saturating_add(1));
                    }
                }
                BackendEvent::Assigned(partitions) | BackendEvent::Revoked(partitions) => {
                    for partition in partitions {
                        self.positions.remove(partition);
                    }
                }
            }
        }
    }
}

/// Runs a blocking librdkafka call on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    operation: &str,
    work: impl FnOnce() -> Result<T, BackendError> + Send + 'static,
) -> Result<T, BackendError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| BackendError::new(operation, error))?
}

impl Backend for RemoteBackend {
    async fn partition_count(&mut self, topic: &str) -> Result<Option<i32>, BackendError> {
        let consumer = self.restore.clone();
        let topic = topic.to_string();
        blocking("metadata", move || {
            partition_count_blocking(&consumer, &topic)
        })
        .await
    }

    async fn create_topic(&mut self, topic: &InternalTopic) -> Result<(), BackendError> {
        let operation = || format!("create topic {}", topic.name);
        // -1: the broker's default replication factor (CreateTopics v4+).
        let mut new_topic =
            NewTopic::new(&topic.name, topic.partitions, TopicReplication::Fixed(-1));
        for (key, value) in &topic.configs {
            new_topic = new_topic.set(key, value);
        }
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let results = self
            .admin
            .create_topics([&new_topic], &options)
            .await
            .map_err(|error| BackendError::new(operation(), error))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(BackendError::new(operation(), code)),
            }
        }
        Ok(())
    }

    async fn subscribe(&mut self, group_id: &str, topics: &[String]) -> Result<(), BackendError> {
        let operation = format!("subscribe {group_id} to {topics:?}");
        let mut config = self.base_config.clone();
        config.set("group.id", group_id);
        for (key, value) in GROUP_SETTINGS {
            config.set(*key, *value);
        }
        // A task reads partition p of every topic of its sub-topology: range gives one
        // member the same-numbered partitions of equally sized topics; cooperative-sticky
        // is only chosen when each sub-topology reads one topic (`remote_runner`).
        let assignor = match self.cooperative {
            true => "cooperative-sticky",
            false => "range",
        };
        config.set("partition.assignment.strategy", assignor);
        self.group_id = group_id.to_string();
        // Kafka Streams' isolation levels: read_committed under exactly-once, and
        // read_uncommitted otherwise, as the embedded runtime reads (librdkafka's own
        // default would be read_committed).
        let isolation_level = match self.read_committed {
            true => "read_committed",
            false => "read_uncommitted",
        };
        config.set("isolation.level", isolation_level);
        let consumer: GroupConsumer = config
            .create_with_context(GroupContext::new())
            .map_err(|error| BackendError::new(&operation, error))?;
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|error| BackendError::new(&operation, error))?;
        self.group = Some(Arc::new(consumer));
        Ok(())
    }

    async fn poll(&mut self, timeout: Duration) -> Result<Vec<BackendEvent>, BackendError> {
        let consumer = self.group("poll")?;
        let handle = self.in_flight_poll.get_or_insert_with(|| {
            tokio::task::spawn_blocking(move || poll_blocking(&consumer, timeout))
        });
        // Cancel-safe: if this future is dropped here, the handle stays for the next poll.
        let outcome = handle.await;
        self.in_flight_poll = None;
        let events = outcome.map_err(|error| BackendError::new("poll", error))?;
        self.note_positions(&events);
        self.note_consumer_positions();
        Ok(events)
    }

    async fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Option<CommittedOffset>)>, BackendError> {
        let consumer = self.group("committed offsets")?;
        // Where the consumer started each partition, so restore and input agree.
        let known: Option<Vec<_>> = partitions
            .iter()
            .map(|p| Some((p.clone(), consumer.context().assigned_commit(p)?)))
            .collect();
        if let Some(known) = known {
            return Ok(known);
        }
        let list = partition_list(partitions.iter().map(|p| (p, Offset::Invalid)))?;
        let committed = blocking("committed offsets", move || {
            consumer
                .committed_offsets(list, REQUEST_TIMEOUT)
                .map_err(|error| BackendError::new("committed offsets", error))
        })
        .await?;
        Ok(committed_from_list(&committed))
    }

    async fn read_chunk(
        &mut self,
        partition: &TopicPartition,
        from_offset: i64,
        end_offset: Option<i64>,
        max_bytes: usize,
    ) -> Result<RestoreChunk, BackendError> {
        let consumer = self.restore.clone();
        let partition = partition.clone();
        let mut session = self.restore_session.take();
        let (chunk, session) = blocking("read chunk", move || {
            let chunk = read_chunk_blocking(
                &consumer,
                &mut session,
                &partition,
                from_offset,
                end_offset,
                max_bytes,
            )?;
            Ok((chunk, session))
        })
        .await?;
        self.restore_session = session;
        Ok(chunk)
    }

    async fn seek(&mut self, offsets: &[(TopicPartition, i64)]) -> Result<(), BackendError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let consumer = self.group("seek")?;
        let list = partition_list(
            offsets
                .iter()
                .map(|(partition, offset)| (partition, Offset::Offset(*offset))),
        )?;
        blocking("seek", move || seek_blocking(&consumer, list)).await?;
        for (partition, offset) in offsets {
            self.positions.insert(partition.clone(), *offset);
        }
        Ok(())
    }

    async fn send(&mut self, partition: i32, record: OutputRecord) -> Result<(), BackendError> {
        self.producer.send(partition, record).await
    }

    async fn flush(&mut self) -> Result<BTreeMap<TopicPartition, i64>, BackendError> {
        self.producer.flush().await
    }

    async fn commit(
        &mut self,
        offsets: &[(TopicPartition, i64, String)],
    ) -> Result<(), BackendError> {
        let consumer = self.group("commit")?;
        let list = offsets_list(offsets)?;
        blocking("commit", move || {
            consumer
                .commit(&list, CommitMode::Sync)
                .map_err(|error| BackendError::new("commit", error))
        })
        .await
    }

    async fn init_transactions(&mut self, transactional_id: &str) -> Result<(), BackendError> {
        let transactional = OutputProducer::transactional(&self.base_config, transactional_id);
        let idempotent = std::mem::replace(&mut self.producer, transactional.await?);
        // Dropping a producer joins its threads: not on a runtime worker.
        tokio::task::spawn_blocking(move || drop(idempotent));
        // Every read from now on sees committed records only: the group consumer, which
        // subscribe creates, and the restore consumer, created again.
        self.read_committed = true;
        let mut config = self.base_config.clone();
        config.set("isolation.level", "read_committed");
        self.restore = restore::restore_consumer(&config)?;
        Ok(())
    }

    async fn commit_transaction(
        &mut self,
        offsets: &[(TopicPartition, i64, String)],
    ) -> Result<(), BackendError> {
        let group = self.group("commit transaction")?;
        let list = offsets_list(offsets)?;
        self.producer.commit_transaction(list, group).await
    }

    async fn abort_transaction(&mut self) -> Result<(), BackendError> {
        self.producer.abort_transaction().await
    }

    async fn rewind(&mut self, partitions: &[TopicPartition]) -> Result<(), BackendError> {
        if partitions.is_empty() {
            return Ok(());
        }
        let consumer = self.group("rewind")?;
        let list = partition_list(partitions.iter().map(|p| (p, Offset::Invalid)))?;
        blocking("rewind", move || rewind_blocking(&consumer, list)).await?;
        for partition in partitions {
            // Known again from the new commit (see `is_caught_up`) and the next poll.
            self.positions.remove(partition);
        }
        Ok(())
    }

    fn is_caught_up(&self, partition: &TopicPartition) -> bool {
        let Some(consumer) = &self.group else {
            return false;
        };
        let Some((low, high)) = cached_watermarks(consumer.as_ref(), partition) else {
            return false;
        };
        let position = self.positions.get(partition).copied().or_else(|| {
            let commit = consumer.context().assigned_commit(partition)?;
            // Without a commit the consumer starts at the log start.
            Some(commit.map_or(low, |c| c.offset))
        });
        position.is_some_and(|position| position >= high)
    }

    fn position(&self, partition: &TopicPartition) -> Option<i64> {
        self.positions.get(partition).copied()
    }

    async fn group_members(&mut self) -> Result<Option<GroupMembers>, BackendError> {
        let consumer = self.group("describe group")?;
        let group_id = self.group_id.clone();
        blocking("describe group", move || {
            group_members_blocking(&consumer, &group_id)
        })
        .await
    }

    async fn delete_records(
        &mut self,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<(), BackendError> {
        let operation = || format!("delete records of {} partitions", offsets.len());
        let list = partition_list(
            offsets
                .iter()
                .map(|(partition, offset)| (partition, Offset::Offset(*offset))),
        )?;
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let deleted = self
            .admin
            .delete_records(&list, &options)
            .await
            .map_err(|error| BackendError::new(operation(), error))?;
        if let Some(error) = deleted.elements().iter().find_map(|e| e.error().err()) {
            return Err(BackendError::new(operation(), error));
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), BackendError> {
        if let Some(handle) = self.in_flight_poll.take() {
            let _ = handle.await;
        }
        let Some(consumer) = self.group.take() else {
            return Ok(());
        };
        consumer.context().set_closing();
        // Dropping the last handle closes the consumer: it leaves the group (LeaveGroup)
        // and waits for that, so it runs on the blocking pool.
        blocking("close", move || {
            consumer.context().release_revoked(&consumer);
            drop(consumer);
            Ok(())
        })
        .await
    }
}

impl Drop for RemoteBackend {
    /// A backend dropped without [`Backend::close`] (its task was aborted) still leaves the
    /// group, on a thread of its own: closing waits for the broker, and neither the caller
    /// nor a runtime shutting down (which waits for its blocking pool) should wait with it.
    fn drop(&mut self) {
        let Some(consumer) = self.group.take() else {
            return;
        };
        consumer.context().set_closing();
        let closer = std::thread::Builder::new()
            .name("riffle-consumer-close".into())
            .spawn(move || {
                consumer.context().release_revoked(&consumer);
                drop(consumer);
            });
        if let Err(error) = closer {
            tracing::warn!(%error, "cannot start a thread to close the group consumer");
        }
    }
}

fn partition_list<'a>(
    offsets: impl Iterator<Item = (&'a TopicPartition, Offset)>,
) -> Result<TopicPartitionList, BackendError> {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset(&partition.topic, partition.partition, offset)
            .map_err(|error| BackendError::new("partition list", error))?;
    }
    Ok(list)
}

/// `(partition, next offset, metadata)` as a list to commit.
fn offsets_list(
    offsets: &[(TopicPartition, i64, String)],
) -> Result<TopicPartitionList, BackendError> {
    let mut list = TopicPartitionList::new();
    for (partition, next_offset, metadata) in offsets {
        let mut element = list.add_partition(&partition.topic, partition.partition);
        element
            .set_offset(Offset::Offset(*next_offset))
            .map_err(|error| BackendError::new("commit", error))?;
        element.set_metadata(metadata.as_str());
    }
    Ok(list)
}

fn committed_from_list(
    list: &TopicPartitionList,
) -> Vec<(TopicPartition, Option<CommittedOffset>)> {
    list.elements()
        .iter()
        .map(|element| {
            let partition = TopicPartition::new(element.topic(), element.partition());
            (partition, committed_offset(element))
        })
        .collect()
}

/// The low and high watermarks librdkafka last saw in a fetch response for `partition`
/// (no request is made); `None` before the first. The restore reads its changelog end here
/// too: a fetch's high watermark, not a ListOffsets answer, which some brokers get wrong.
fn cached_watermarks<X, C>(consumer: &C, partition: &TopicPartition) -> Option<(i64, i64)>
where
    X: rdkafka::consumer::ConsumerContext,
    C: Consumer<X>,
{
    let topic = CString::new(partition.topic.as_str()).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid while `consumer` lives; `topic` is a valid C
    // string for the call; librdkafka only writes the two i64s. rdkafka 0.39 has no safe
    // wrapper for this local lookup.
    let error = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition.partition,
            &mut low,
            &mut high,
        )
    };
    let known = error == rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0;
    known.then_some((low.max(0), high))
}
