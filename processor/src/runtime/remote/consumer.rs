//! The group member: a `BaseConsumer` polled on a blocking thread, whose context turns the
//! group's rebalances into [`BackendEvent`]s in the order they happened.
//!
//! Two choices keep a task's state and its input position in step:
//!
//! - On assignment the context reads the group's committed offsets itself, starts the
//!   consumer exactly there, and keeps them: [`GroupContext::assigned_commit`] is what the
//!   runner restores from, so the commit a task resumes from and the commit its stores are
//!   restored to are the same one, even if another member commits in between.
//! - On revocation the partitions are released only at the start of the next poll, after
//!   the runner has committed what it processed (under exactly-once, committed the
//!   transaction): the member stays in its generation until then, so that commit is
//!   accepted, and the group's next assignment reads it. With the eager protocol (`range`)
//!   every partition is revoked and released; with the cooperative one (KIP-429,
//!   `cooperative-sticky`) only those moving to another member are, with
//!   `incremental_unassign`, and new ones are added with `incremental_assign`: the tasks
//!   of every other partition keep running through the rebalance, without a restore.
//!
//! After an aborted transaction (exactly-once), [`rewind_blocking`] reads the commits again
//! and keeps them in place of the assignment's, so rebuilt tasks restore from and resume at
//! the same commit too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers as _, Message};
use rdkafka::topic_partition_list::TopicPartitionListElem;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use crate::lock_policy::MutexRecover;
use crate::record::{InputRecord, TopicPartition};
use crate::runtime::backend::{BackendError, BackendEvent, CommittedOffset};

/// The group consumer with its rebalance-recording context.
pub(super) type GroupConsumer = BaseConsumer<GroupContext>;

/// Most records one poll returns, so group duties and commits keep running under load.
pub(super) const MAX_RECORDS_PER_POLL: usize = 10_000;

/// Rebalance events buffered between two drains. A poll drains after every consumer call,
/// and each call delivers at most one rebalance, so this never fills in practice; a full
/// channel is logged.
const REBALANCE_CHANNEL_CAPACITY: usize = 64;

/// How long the assignment callback waits for the group's committed offsets.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a rewind keeps retrying a seek librdkafka is not ready for (a partition whose
/// fetcher is still starting), and how long it waits between tries.
const SEEK_RETRY_TIMEOUT: Duration = Duration::from_secs(10);
const SEEK_RETRY_INTERVAL: Duration = Duration::from_millis(50);

/// Records what the group does to this member; shared by the consumer's threads.
pub(super) struct GroupContext {
    /// Rebalances, pushed by the callback and drained by the poll that triggered them.
    rebalance_sender: SyncSender<BackendEvent>,
    /// The receiving end; only the (single) polling thread locks it.
    rebalance_receiver: Mutex<Receiver<BackendEvent>>,
    /// Partitions revoked but not yet released (see the module doc).
    release_pending: Mutex<Option<TopicPartitionList>>,
    /// Set on close: revocations are then released at once, so the consumer can leave.
    closing: AtomicBool,
    /// The commit each assigned partition started from (`None`: none, read from the start).
    assigned_commits: Mutex<HashMap<TopicPartition, Option<CommittedOffset>>>,
}

impl GroupContext {
    pub(super) fn new() -> GroupContext {
        let (rebalance_sender, rebalance_receiver) = sync_channel(REBALANCE_CHANNEL_CAPACITY);
        GroupContext {
            rebalance_sender,
            rebalance_receiver: Mutex::new(rebalance_receiver),
            release_pending: Mutex::new(None),
            closing: AtomicBool::new(false),
            assigned_commits: Mutex::default(),
        }
    }

    /// The commit `partition` was assigned at: `Some(None)` when the group had none,
    /// `None` when the partition is not assigned (or its commit could not be read).
    pub(super) fn assigned_commit(
        &self,
        partition: &TopicPartition,
    ) -> Option<Option<CommittedOffset>> {
        let commits = self.assigned_commits.lock_or_recover();
        commits.get(partition).cloned()
    }

    /// From now on revocations are released at once (the member is leaving).
    pub(super) fn set_closing(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    fn push(&self, event: BackendEvent) {
        match self.rebalance_sender.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event)) => {
                tracing::error!(?event, "rebalance channel full; event dropped");
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    fn on_assign(&self, consumer: &GroupConsumer, assigned: &TopicPartitionList) {
        let partitions = topic_partitions(assigned);
        let start = match consumer.committed_offsets(assigned.clone(), COMMITTED_TIMEOUT) {
            Ok(committed) => self.remember_commits(&committed),
            Err(error) => {
                // librdkafka then reads the commits itself; the runner asks again.
                tracing::warn!(%error, "cannot read committed offsets at assignment");
                assigned.clone()
            }
        };
        let assigned = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_assign(&start),
            _ => consumer.assign(&start),
        };
        if let Err(error) = assigned {
            tracing::error!(%error, "assign failed");
        }
        tracing::info!(?partitions, "partitions assigned");
        self.push(BackendEvent::Assigned(partitions));
    }

    /// Keeps each partition's commit and returns the assignment starting at them.
    fn remember_commits(&self, committed: &TopicPartitionList) -> TopicPartitionList {
        let mut start = TopicPartitionList::new();
        let mut commits = self.assigned_commits.lock_or_recover();
        for element in committed.elements() {
            let topic_partition = TopicPartition::new(element.topic(), element.partition());
            let commit = committed_offset(&element);
            // No commit: from the start, as auto.offset.reset=earliest would.
            let offset = commit
                .as_ref()
                .map_or(Offset::Beginning, |c| Offset::Offset(c.offset));
            if element.error().is_ok() {
                commits.insert(topic_partition, commit);
                let _ = start.add_partition_offset(element.topic(), element.partition(), offset);
            } else {
                start.add_partition(element.topic(), element.partition());
            }
        }
        start
    }

    fn on_revoke(&self, consumer: &GroupConsumer, revoked: &TopicPartitionList) {
        let partitions = topic_partitions(revoked);
        {
            let mut commits = self.assigned_commits.lock_or_recover();
            for partition in &partitions {
                commits.remove(partition);
            }
        }
        tracing::info!(?partitions, "partitions revoked");
        if self.closing.load(Ordering::SeqCst) {
            release(consumer, revoked);
            return;
        }
        *self.release_pending.lock_or_recover() = Some(revoked.clone());
        self.push(BackendEvent::Revoked(partitions));
    }

    /// Releases revoked partitions once the runner has handled their revocation.
    pub(super) fn release_revoked(&self, consumer: &GroupConsumer) {
        let pending = self.release_pending.lock_or_recover().take();
        if let Some(revoked) = pending {
            release(consumer, &revoked);
        }
    }
}

/// Gives up the `revoked` partitions, which lets librdkafka rejoin: the whole assignment
/// under the eager protocol, just these under the cooperative one.
fn release(consumer: &GroupConsumer, revoked: &TopicPartitionList) {
    let released = match consumer.rebalance_protocol() {
        RebalanceProtocol::Cooperative => consumer.incremental_unassign(revoked),
        _ => consumer.unassign(),
    };
    if let Err(error) = released {
        tracing::error!(%error, "unassign failed");
    }
}

/// Reads the group's commits for `partitions` again, keeps them as the assigned commits
/// (what the runner restores from) and moves the consumer there, dropping what it fetched
/// past them. Blocks: run it on a blocking thread.
pub(super) fn rewind_blocking(
    consumer: &GroupConsumer,
    partitions: TopicPartitionList,
) -> Result<(), BackendError> {
    let operation = "rewind to the committed offsets";
    let committed = consumer
        .committed_offsets(partitions, COMMITTED_TIMEOUT)
        .map_err(|error| BackendError::new(operation, error))?;
    if let Some(error) = committed.elements().iter().find_map(|e| e.error().err()) {
        return Err(BackendError::new(operation, error));
    }
    let pending = consumer.context().remember_commits(&committed);
    seek_blocking(consumer, pending)
}

/// Moves reading of `partitions` to their offsets, retrying partitions whose fetcher has
/// not started yet (just assigned). Blocks.
pub(super) fn seek_blocking(
    consumer: &GroupConsumer,
    partitions: TopicPartitionList,
) -> Result<(), BackendError> {
    let operation = "seek";
    let mut pending = partitions;
    let deadline = Instant::now() + SEEK_RETRY_TIMEOUT;
    loop {
        // A seek also drops the messages librdkafka fetched for the partition before it.
        let sought = consumer
            .seek_partitions(pending, COMMITTED_TIMEOUT)
            .map_err(|error| BackendError::new(operation, error))?;
        let mut retry = TopicPartitionList::new();
        for element in sought.elements() {
            match element.error() {
                Ok(()) => {}
                // The partition's fetcher has not started (just assigned) or is stopping.
                Err(KafkaError::OffsetFetch(
                    RDKafkaErrorCode::State | RDKafkaErrorCode::PreviousInProgress,
                )) if Instant::now() < deadline => {
                    let _ = retry.add_partition_offset(
                        element.topic(),
                        element.partition(),
                        element.offset(),
                    );
                }
                Err(error) => return Err(BackendError::new(operation, error)),
            }
        }
        if retry.count() == 0 {
            return Ok(());
        }
        std::thread::sleep(SEEK_RETRY_INTERVAL);
        pending = retry;
    }
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        consumer: &GroupConsumer,
        err: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.on_assign(consumer, partitions);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.on_revoke(consumer, partitions);
            }
            other => {
                tracing::error!(error = ?other, "rebalance failed; releasing the assignment");
                release(consumer, partitions);
            }
        }
    }
}

/// The commit an element of a committed-offsets answer names, `None` when there is none.
pub(super) fn committed_offset(element: &TopicPartitionListElem<'_>) -> Option<CommittedOffset> {
    match element.offset() {
        Offset::Offset(offset) => Some(CommittedOffset {
            offset,
            metadata: element.metadata().to_string(),
        }),
        _ => None,
    }
}

fn topic_partitions(list: &TopicPartitionList) -> Vec<TopicPartition> {
    list.elements()
        .iter()
        .map(|element| TopicPartition::new(element.topic(), element.partition()))
        .collect()
}

/// One poll on the calling (blocking) thread: waits up to `timeout` for a first record,
/// then takes what is already there, up to [`MAX_RECORDS_PER_POLL`]. Stops right after a
/// rebalance, so the runner handles it before the consumer goes on.
pub(super) fn poll_blocking(consumer: &Arc<GroupConsumer>, timeout: Duration) -> Vec<BackendEvent> {
    let context = consumer.context();
    context.release_revoked(consumer);
    let deadline = Instant::now() + timeout;
    let mut events = Vec::new();
    let mut records = Vec::new();
    loop {
        let wait = match records.is_empty() {
            true => deadline.saturating_duration_since(Instant::now()),
            false => Duration::ZERO,
        };
        let polled = consumer.poll(wait);
        let rebalanced = drain_rebalances(context, &mut events, &mut records);
        let got_nothing = match polled {
            Some(Ok(message)) => {
                records.push(input_record(&message));
                false
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "consumer error");
                false
            }
            None => true,
        };
        let waited_enough = !records.is_empty() || Instant::now() >= deadline;
        if rebalanced || records.len() >= MAX_RECORDS_PER_POLL || (got_nothing && waited_enough) {
            break;
        }
    }
    if !records.is_empty() {
        events.push(BackendEvent::Records(records));
    }
    events
}

/// Moves rebalances the last consumer call caused into `events`, after the records that
/// came before them. Returns whether there were any.
fn drain_rebalances(
    context: &GroupContext,
    events: &mut Vec<BackendEvent>,
    records: &mut Vec<InputRecord>,
) -> bool {
    let receiver = context.rebalance_receiver.lock_or_recover();
    let mut rebalanced = false;
    for event in receiver.try_iter() {
        if !records.is_empty() {
            events.push(BackendEvent::Records(std::mem::take(records)));
        }
        events.push(event);
        rebalanced = true;
    }
    rebalanced
}

/// A consumed message as a task takes it. A message without a timestamp gets -1, which the
/// task drops and counts, as Kafka Streams does.
pub(super) fn input_record(message: &BorrowedMessage<'_>) -> InputRecord {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    InputRecord {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms: message.timestamp().to_millis().unwrap_or(-1),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        headers: crate::record::headers_of(headers),
    }
}
