//! The embedded runtime's transactional producer: exactly-once through the broker's own
//! transaction coordinator, in process.
//!
//! It sends what a Kafka client's transactional producer sends, to the same handlers and
//! without sockets: InitProducerId with the transactional id (fencing any earlier producer
//! with that id and aborting what it left open), AddPartitionsToTxn before a partition's
//! first batch in a transaction, then transactional Produce batches (the writer stamps
//! them here), AddOffsetsToTxn before the group's offsets go in (through
//! [`super::membership::Membership::commit_in_transaction`]), and EndTxn. So a
//! co-located topology's transactions are ordinary transactions: outside read_committed
//! consumers see its outputs and its group's offsets move together.
//!
//! Sequence numbers are per partition, from 0 for each producer epoch. An abort always
//! ends with a new epoch (InitProducerId again): whatever the failure was, no batch of the
//! next transaction can then collide with a sequence the broker may have seen.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use riffle_processor::TopicPartition;
use riffle_processor::runtime::BackendError;
use riffle_protocol::ErrorCode;
use riffle_protocol::api::add_offsets_to_txn::AddOffsetsToTxnRequest;
use riffle_protocol::api::add_partitions_to_txn::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, AddPartitionsToTxnTopic,
};
use riffle_protocol::api::end_txn::EndTxnRequest;
use riffle_protocol::api::init_producer_id::InitProducerIdRequest;
use riffle_protocol::record::RecordBatchBuilder;
use tracing::warn;

use super::refusal::refused;
use riffle_server::cluster::Cluster;
use riffle_server::handler::{
    RequestContext, add_offsets_to_txn, add_partitions_to_txn, end_txn, init_producer_id,
};

/// The request versions used: the newest client layouts the handlers serve (AddPartitions
/// v3 is the last with one transaction per request, as clients send it).
const INIT_PRODUCER_ID_VERSION: i16 = 4;
const ADD_PARTITIONS_TO_TXN_VERSION: i16 = 3;
const ADD_OFFSETS_TO_TXN_VERSION: i16 = 3;
const END_TXN_VERSION: i16 = 3;

/// How many times a request refused for a passing reason (the previous transaction still
/// completing, the coordinator loading) is tried before it fails, and the pause between.
const RETRIABLE_ATTEMPTS_MAX: u32 = 50;
const RETRY_BACKOFF: Duration = Duration::from_millis(20);

/// A transactional producer: its identity and what its open transaction holds.
pub struct TransactionalProducer {
    transactional_id: String,
    /// How long the coordinator lets a transaction stay open before aborting it.
    transaction_timeout_ms: i32,
    producer_id: i64,
    producer_epoch: i16,
    /// Per partition, the sequence of the next record in this epoch.
    next_sequences: BTreeMap<TopicPartition, i32>,
    /// The partitions added to the open transaction.
    partitions: BTreeSet<TopicPartition>,
    /// Whether the group's offsets are part of the open transaction (AddOffsetsToTxn).
    offsets_added: bool,
    /// Who the requests come from: the topology's principal.
    context: RequestContext,
}

impl TransactionalProducer {
    /// Initializes the producer `transactional_id`: a new epoch, which fences any earlier
    /// producer with this id; the coordinator aborts the transaction that one left open.
    ///
    /// # Errors
    /// When the coordinator refuses for good or keeps answering "try again".
    pub async fn init(
        cluster: &Arc<Cluster>,
        transactional_id: &str,
        transaction_timeout: Duration,
    ) -> Result<TransactionalProducer, BackendError> {
        let mut producer = TransactionalProducer {
            transactional_id: transactional_id.to_string(),
            transaction_timeout_ms: i32::try_from(transaction_timeout.as_millis())
                .unwrap_or(i32::MAX),
            producer_id: -1,
            producer_epoch: -1,
            next_sequences: BTreeMap::new(),
            partitions: BTreeSet::new(),
            offsets_added: false,
            context: RequestContext::processor(cluster),
        };
        producer.new_epoch(cluster).await?;
        Ok(producer)
    }

    /// The transactional id.
    pub fn transactional_id(&self) -> &str {
        &self.transactional_id
    }

    /// The producer id and epoch in use.
    pub fn producer_id_and_epoch(&self) -> (i64, i16) {
        (self.producer_id, self.producer_epoch)
    }

    /// Adds to the open transaction (starting it) those of `partitions` not in it yet.
    ///
    /// # Errors
    /// When the coordinator refuses (fenced, unknown partition, ...).
    pub async fn add_partitions<'a>(
        &mut self,
        cluster: &Arc<Cluster>,
        partitions: impl Iterator<Item = &'a TopicPartition>,
    ) -> Result<(), BackendError> {
        let new: BTreeSet<TopicPartition> = partitions
            .filter(|partition| !self.partitions.contains(*partition))
            .cloned()
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for partition in &new {
            topics
                .entry(&partition.topic)
                .or_default()
                .push(partition.partition);
        }
        let request = AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: self.transactional_id.clone(),
            v3_and_below_producer_id: self.producer_id,
            v3_and_below_producer_epoch: self.producer_epoch,
            v3_and_below_topics: topics
                .into_iter()
                .map(|(name, partitions)| AddPartitionsToTxnTopic {
                    name: name.to_string(),
                    partitions,
                })
                .collect(),
            ..Default::default()
        };
        let context = &self.context;
        retrying(context, "add partitions to transaction", || {
            let request = request.clone();
            async move {
                let version = ADD_PARTITIONS_TO_TXN_VERSION;
                let answer =
                    add_partitions_to_txn::handle(cluster, context, version, request).await;
                (first_partition_error(&answer), ())
            }
        })
        .await?;
        self.partitions.extend(new);
        Ok(())
    }

    /// Stamps `builder`'s batch for `partition` with the producer id, epoch and the
    /// partition's next sequence, as a transactional batch.
    pub fn stamp(&self, builder: &mut RecordBatchBuilder, partition: &TopicPartition) {
        let sequence = self.next_sequences.get(partition).copied().unwrap_or(0);
        builder
            .producer(self.producer_id, self.producer_epoch, sequence)
            .transactional();
    }

    /// Moves `partition`'s sequence past a batch of `records_count` records the broker took.
    pub fn acknowledge(&mut self, partition: &TopicPartition, records_count: usize) {
        let sequence = self.next_sequences.entry(partition.clone()).or_insert(0);
        *sequence = next_sequence(*sequence, records_count);
    }

    /// Adds the offsets of `group_id` to the open transaction (starting it), once per
    /// transaction.
    ///
    /// # Errors
    /// When the coordinator refuses.
    pub async fn add_offsets(
        &mut self,
        cluster: &Arc<Cluster>,
        group_id: &str,
    ) -> Result<(), BackendError> {
        if self.offsets_added {
            return Ok(());
        }
        let request = AddOffsetsToTxnRequest {
            transactional_id: self.transactional_id.clone(),
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            group_id: group_id.to_string(),
        };
        let context = &self.context;
        retrying(context, "add offsets to transaction", || {
            let request = request.clone();
            async move {
                let version = ADD_OFFSETS_TO_TXN_VERSION;
                let answer = add_offsets_to_txn::handle(cluster, context, version, request).await;
                (answer.error_code, ())
            }
        })
        .await?;
        self.offsets_added = true;
        Ok(())
    }

    /// Commits the open transaction; returns once its markers are written. Nothing to do
    /// when nothing was added to it.
    ///
    /// # Errors
    /// When the coordinator refuses: the caller then aborts.
    pub async fn commit(&mut self, cluster: &Arc<Cluster>) -> Result<(), BackendError> {
        if !self.is_open() {
            return Ok(());
        }
        let code = self.end(cluster, Outcome::Commit).await;
        check(&self.context, "commit transaction", code)?;
        self.partitions.clear();
        self.offsets_added = false;
        Ok(())
    }

    /// Aborts the open transaction, then starts a new epoch (see the module doc). A
    /// refused abort is only logged: the new epoch aborts the transaction anyway.
    ///
    /// # Errors
    /// When the new epoch cannot be had.
    pub async fn abort(&mut self, cluster: &Arc<Cluster>) -> Result<(), BackendError> {
        if self.is_open() {
            let code = self.end(cluster, Outcome::Abort).await;
            if code != ErrorCode::None.code() {
                let transactional_id = self.transactional_id.as_str();
                warn!(
                    transactional_id,
                    code, "abort refused; a new producer epoch aborts it"
                );
            }
        }
        self.new_epoch(cluster).await
    }

    fn is_open(&self) -> bool {
        !self.partitions.is_empty() || self.offsets_added
    }

    async fn end(&self, cluster: &Arc<Cluster>, outcome: Outcome) -> i16 {
        let request = EndTxnRequest {
            transactional_id: self.transactional_id.clone(),
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            committed: outcome == Outcome::Commit,
        };
        end_txn::handle(cluster, &self.context, END_TXN_VERSION, request)
            .await
            .error_code
    }

    /// InitProducerId: the coordinator bumps the epoch (a new id the first time) and
    /// aborts an open transaction of this id; sequences restart at 0.
    async fn new_epoch(&mut self, cluster: &Arc<Cluster>) -> Result<(), BackendError> {
        let request = InitProducerIdRequest {
            transactional_id: Some(self.transactional_id.clone()),
            transaction_timeout_ms: self.transaction_timeout_ms,
            producer_id: -1,
            producer_epoch: -1,
        };
        let operation = format!("init producer id {}", self.transactional_id);
        let context = &self.context;
        let answer = retrying(context, &operation, || {
            let request = request.clone();
            async move {
                let version = INIT_PRODUCER_ID_VERSION;
                let answer = init_producer_id::handle(cluster, context, version, request).await;
                (answer.error_code, answer)
            }
        })
        .await?;
        self.producer_id = answer.producer_id;
        self.producer_epoch = answer.producer_epoch;
        self.next_sequences.clear();
        self.partitions.clear();
        self.offsets_added = false;
        Ok(())
    }
}

/// How a transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Commit,
    Abort,
}

/// Runs `attempt` until it answers without an error code and returns its answer, retrying
/// the codes that mean "not yet" (the previous transaction completing, the coordinator
/// loading) a bounded number of times.
async fn retrying<T, F, Fut>(
    context: &RequestContext,
    operation: &str,
    mut attempt: F,
) -> Result<T, BackendError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (i16, T)>,
{
    for _ in 0..RETRIABLE_ATTEMPTS_MAX {
        let (code, answer) = attempt().await;
        match ErrorCode::from_code(code) {
            Some(ErrorCode::None) => return Ok(answer),
            Some(
                ErrorCode::ConcurrentTransactions
                | ErrorCode::CoordinatorLoadInProgress
                | ErrorCode::NotCoordinator
                | ErrorCode::CoordinatorNotAvailable,
            ) => tokio::time::sleep(RETRY_BACKOFF).await,
            _ => return Err(refused(context, operation, code)),
        }
    }
    Err(BackendError::new(
        operation,
        format!("still refused after {RETRIABLE_ATTEMPTS_MAX} attempts"),
    ))
}

/// `Ok` for no error, else the refusal.
fn check(context: &RequestContext, operation: &str, code: i16) -> Result<(), BackendError> {
    match code == ErrorCode::None.code() {
        true => Ok(()),
        false => Err(refused(context, operation, code)),
    }
}

/// The error of an AddPartitionsToTxn answer, or none: the first partition's that says
/// why, rather than OPERATION_NOT_ATTEMPTED, which only says another partition failed.
fn first_partition_error(answer: &AddPartitionsToTxnResponse) -> i16 {
    let errors = || {
        answer
            .results_by_topic_v3_and_below
            .iter()
            .flat_map(|topic| &topic.results_by_partition)
            .map(|result| result.partition_error_code)
            .filter(|code| *code != ErrorCode::None.code())
    };
    let not_attempted = ErrorCode::OperationNotAttempted.code();
    errors()
        .find(|code| *code != not_attempted)
        .or_else(|| errors().next())
        .unwrap_or(ErrorCode::None.code())
}

/// The sequence after `records_count` records from `sequence`: Kafka wraps past
/// `i32::MAX` to 0 (`DefaultRecordBatch.incrementSequence`).
fn next_sequence(sequence: i32, records_count: usize) -> i32 {
    let sequences = i64::from(i32::MAX) + 1;
    let count = i64::try_from(records_count).unwrap_or(i64::MAX) % sequences;
    let next = (i64::from(sequence) + count) % sequences;
    i32::try_from(next).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sequences count records and wrap past i32::MAX to 0, as Kafka's producers do.
    #[test]
    fn sequences_count_records_and_wrap() {
        assert_eq!(next_sequence(0, 3), 3);
        assert_eq!(next_sequence(i32::MAX - 1, 1), i32::MAX);
        assert_eq!(next_sequence(i32::MAX, 1), 0);
        assert_eq!(next_sequence(i32::MAX - 1, 5), 3);
    }
}
