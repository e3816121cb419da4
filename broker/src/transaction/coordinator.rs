//! The transaction coordinator: every transactional id's state, its persistence in
//! `__transaction_state`, and the markers that end transactions.
//!
//! # A transaction's life
//!
//! InitProducerId maps an id to a producer id and a new epoch (fencing the previous
//! producer). AddPartitionsToTxn and AddOffsetsToTxn record the partitions the transaction
//! writes to. EndTxn makes the decision durable first (PrepareCommit or PrepareAbort, fsynced),
//! then appends a COMMIT or ABORT marker to every partition of the transaction (and lets the
//! group coordinator apply or drop offsets committed in it), fsyncs them, and records
//! CompleteCommit or CompleteAbort (without waiting for that record's fsync: see
//! `append_and_apply`). EndTxn is answered once the markers are written, so a read_committed
//! consumer sees the outcome as soon as the producer does.
//!
//! Every change goes through the same two steps: decide and mark the transaction `pending`
//! under the lock, append its record (page cache), release the lock, wait for the fsync,
//! then apply. Requests for a pending transaction get CONCURRENT_TRANSACTIONS, which clients
//! retry. A change runs on a task of its own, so a request abandoned half-way cannot leave
//! its transaction pending for ever.
//!
//! # Crashes
//!
//! At start-up the records are replayed. A transaction found in PrepareCommit or
//! PrepareAbort had its decision made: [`TransactionCoordinator::tick`], which the
//! background task runs at start and then periodically, writes its markers again (a marker
//! for a transaction a partition already ended is a no-op there) and completes it. Markers
//! are fsynced before Complete is recorded, so no partition is left with a transaction that
//! the coordinator considers finished. An open (Ongoing) transaction stays open: its
//! producer may go on after the restart, or a new producer with its id fences and aborts it,
//! or the timeout does.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use riffle_protocol::ErrorCode;
use riffle_protocol::record::{Compression, ControlRecordType, EndTxnMarker, RecordBatchBuilder};
use riffle_storage::{MutexRecover, StorageError};
use tracing::{info, warn};

use super::metadata::{InitDecision, TransactionMetadata, TransactionState};
use super::records;
use crate::cluster::{Cluster, now_ms};
use crate::group::OFFSETS_TOPIC;
use crate::partition::{Partition, Scan};

/// The internal topic holding every transactional id's state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
/// One node coordinates every transaction, so its coordinator epoch never changes.
pub const COORDINATOR_EPOCH: i32 = 0;
/// How many times InitProducerId fences an open transaction before it gives up with
/// CONCURRENT_TRANSACTIONS (the client retries): once is always enough unless another
/// producer races it.
const INIT_FENCE_ATTEMPTS: usize = 2;

/// The coordinator's settings.
#[derive(Debug, Clone, Copy)]
pub struct TransactionLimits {
    /// The longest `transaction.timeout.ms` a producer may ask for (Kafka's
    /// `transaction.max.timeout.ms`).
    pub max_timeout_ms: i32,
    /// How long an id without an open transaction is kept after its last use (Kafka's
    /// `transactional.id.expiration.ms`).
    pub transactional_id_expiration_ms: i64,
}

/// Every transactional id of this broker.
pub struct TransactionCoordinator {
    limits: TransactionLimits,
    /// Lock order: taken while holding a partition's producer lock (the Produce path checks
    /// a transaction under it), so nothing may wait for a partition while holding this:
    /// records and markers are appended after it is released (its own log's append, under
    /// it, takes that partition's lock, which no one holds while waiting for this).
    transactions: Mutex<HashMap<String, TransactionMetadata>>,
    log: Arc<Partition>,
}

impl TransactionCoordinator {
    /// Opens the coordinator over the `__transaction_state` partition, replaying it.
    ///
    /// # Errors
    /// When the log cannot be read.
    pub fn open(
        log: Arc<Partition>,
        limits: TransactionLimits,
    ) -> Result<TransactionCoordinator, StorageError> {
        let coordinator = TransactionCoordinator {
            limits,
            transactions: Mutex::new(HashMap::new()),
            log,
        };
        coordinator.replay()?;
        Ok(coordinator)
    }

    fn replay(&self) -> Result<(), StorageError> {
        let mut transactions = self.lock();
        self.log.scan_batches(Scan::whole(&self.log), |batch| {
            let Ok(records) = batch.records() else {
                return Ok(());
            };
            for record in records {
                let key = record.key.unwrap_or_default();
                match records::decode(key, record.value) {
                    Ok((id, Some(metadata))) => {
                        transactions.insert(id, metadata);
                    }
                    Ok((id, None)) => {
                        transactions.remove(&id);
                    }
                    Err(error) => {
                        warn!(offset = record.offset, %error, "skipping unreadable transaction record");
                    }
                }
            }
            Ok(())
        })?;
        let prepared = transactions
            .values()
            .filter(|metadata| metadata.state.is_prepared())
            .count();
        info!(
            transactional_ids = transactions.len(),
            prepared, "transactions loaded"
        );
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, TransactionMetadata>> {
        self.transactions.lock_or_recover()
    }

    /// The coordinator's settings.
    pub fn limits(&self) -> TransactionLimits {
        self.limits
    }

    /// InitProducerId for a transactional id: its producer id and a new epoch. An open
    /// transaction of the previous producer is aborted first, with a bumped epoch that
    /// fences it.
    ///
    /// # Errors
    /// INVALID_REQUEST for an empty id; INVALID_TRANSACTION_TIMEOUT; PRODUCER_FENCED;
    /// CONCURRENT_TRANSACTIONS; KAFKA_STORAGE_ERROR.
    pub async fn init_producer_id(
        &self,
        cluster: &Arc<Cluster>,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), ErrorCode> {
        let (cluster, id) = (Arc::clone(cluster), transactional_id.to_string());
        run_detached(async move {
            let coordinator = cluster.transactions();
            coordinator
                .init_producer_id_now(&cluster, &id, timeout_ms, expected)
                .await
        })
        .await
    }

    async fn init_producer_id_now(
        &self,
        cluster: &Cluster,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), ErrorCode> {
        if transactional_id.is_empty() {
            return Err(ErrorCode::InvalidRequest);
        }
        if timeout_ms <= 0 || timeout_ms > self.limits.max_timeout_ms {
            return Err(ErrorCode::InvalidTransactionTimeout);
        }
        for _ in 0..INIT_FENCE_ATTEMPTS {
            let decided = self.begin(transactional_id, |metadata| {
                metadata.prepare_init_producer_id(
                    timeout_ms,
                    expected,
                    || cluster.allocate_producer_id().map_err(|error| error.code),
                    now_ms(),
                )
            });
            let decided = match decided {
                Err(ErrorCode::InvalidProducerIdMapping) => {
                    self.create(cluster, transactional_id, timeout_ms)?;
                    continue;
                }
                other => other?,
            };
            match decided {
                InitDecision::Bump(target) => {
                    self.persist_and_apply(&target).await?;
                    info!(
                        transactional_id,
                        producer_id = target.producer_id,
                        producer_epoch = target.producer_epoch,
                        "producer initialised"
                    );
                    return Ok((target.producer_id, target.producer_epoch));
                }
                InitDecision::FenceAndAbort(target) => {
                    info!(
                        transactional_id,
                        producer_id = target.producer_id,
                        "a new producer fences the open transaction; aborting it"
                    );
                    self.persist_and_apply(&target).await?;
                    self.complete(cluster, target).await;
                }
            }
        }
        Err(ErrorCode::ConcurrentTransactions)
    }

    /// Maps a new transactional id to a fresh producer id, in memory: the InitProducerId
    /// that follows persists it.
    fn create(
        &self,
        cluster: &Cluster,
        transactional_id: &str,
        timeout_ms: i32,
    ) -> Result<(), ErrorCode> {
        let producer_id = cluster.allocate_producer_id().map_err(|error| error.code)?;
        let metadata =
            TransactionMetadata::new(transactional_id, producer_id, timeout_ms, now_ms());
        self.lock()
            .entry(transactional_id.to_string())
            .or_insert(metadata);
        Ok(())
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the offsets partition): the
    /// partitions join the open transaction, which starts now if none is open.
    ///
    /// # Errors
    /// INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS,
    /// KAFKA_STORAGE_ERROR.
    pub async fn add_partitions(
        &self,
        cluster: &Arc<Cluster>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<(), ErrorCode> {
        let (cluster, id) = (Arc::clone(cluster), transactional_id.to_string());
        let partitions = partitions.to_vec();
        run_detached(async move {
            let coordinator = cluster.transactions();
            coordinator
                .add_partitions_now(&id, producer_id, producer_epoch, &partitions)
                .await
        })
        .await
    }

    async fn add_partitions_now(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<(), ErrorCode> {
        let target = self.begin(transactional_id, |metadata| {
            metadata.prepare_add_partitions(producer_id, producer_epoch, partitions, now_ms())
        })?;
        match target {
            Some(target) => self.persist_and_apply(&target).await,
            None => Ok(()),
        }
    }

    /// EndTxn: commits or aborts the open transaction; returns once its markers are
    /// written (or, if writing them failed, once the decision is durable: the background
    /// task finishes the markers).
    ///
    /// # Errors
    /// INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, INVALID_TXN_STATE,
    /// CONCURRENT_TRANSACTIONS, KAFKA_STORAGE_ERROR.
    pub async fn end_transaction(
        &self,
        cluster: &Arc<Cluster>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), ErrorCode> {
        let (cluster, id) = (Arc::clone(cluster), transactional_id.to_string());
        run_detached(async move {
            let coordinator = cluster.transactions();
            coordinator
                .end_transaction_now(&cluster, &id, producer_id, producer_epoch, commit)
                .await
        })
        .await
    }

    async fn end_transaction_now(
        &self,
        cluster: &Cluster,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), ErrorCode> {
        let target = self.begin(transactional_id, |metadata| {
            metadata.prepare_end(producer_id, producer_epoch, commit, now_ms())
        })?;
        let Some(target) = target else {
            return Ok(());
        };
        self.persist_and_apply(&target).await?;
        self.complete(cluster, target).await;
        Ok(())
    }

    /// Decides a change of `transactional_id` with `decide` and marks it pending; `decide`
    /// returns what to move to (or nothing to do).
    fn begin<T: PendingTarget>(
        &self,
        transactional_id: &str,
        decide: impl FnOnce(&TransactionMetadata) -> Result<T, ErrorCode>,
    ) -> Result<T, ErrorCode> {
        let mut transactions = self.lock();
        let Some(metadata) = transactions.get_mut(transactional_id) else {
            return Err(ErrorCode::InvalidProducerIdMapping);
        };
        if metadata.pending.is_some() {
            return Err(ErrorCode::ConcurrentTransactions);
        }
        let decided = decide(metadata)?;
        metadata.pending = decided.pending_state();
        Ok(decided)
    }

    /// Makes `target` durable, then applies it (the transaction was marked pending).
    async fn persist_and_apply(&self, target: &TransactionMetadata) -> Result<(), ErrorCode> {
        let persisted = self.persist(target).await;
        let mut transactions = self.lock();
        let metadata = transactions
            .get_mut(&target.transactional_id)
            .expect("a pending transaction is never removed");
        metadata.pending = None;
        persisted?;
        *metadata = target.clone();
        Ok(())
    }

    /// Appends `target`'s record and applies it without waiting for the fsync: for the
    /// Complete record only. If a crash loses it, the restart finds the transaction
    /// prepared and writes its markers again, which the partitions ignore; and the
    /// producer's next change (a new transaction's partitions, a new epoch) is fsynced
    /// before it is applied, which makes this record durable too, as it precedes it in the log.
    fn append_and_apply(&self, target: &TransactionMetadata) -> Result<(), ErrorCode> {
        let value = records::value(target);
        let appended = self.append_record(&target.transactional_id, Some(&value));
        let mut transactions = self.lock();
        let metadata = transactions
            .get_mut(&target.transactional_id)
            .expect("a pending transaction is never removed");
        metadata.pending = None;
        appended?;
        *metadata = target.clone();
        Ok(())
    }

    /// Appends `target`'s record and waits for it to be durable.
    async fn persist(&self, target: &TransactionMetadata) -> Result<(), ErrorCode> {
        let id = &target.transactional_id;
        let value = records::value(target);
        let last_offset = self.append_record(id, Some(&value))?;
        self.log.sync_through(last_offset).await.map_err(|error| {
            warn!(transactional_id = %id, %error, "could not make a transaction state durable");
            ErrorCode::KafkaStorageError
        })
    }

    fn append_record(
        &self,
        transactional_id: &str,
        value: Option<&[u8]>,
    ) -> Result<i64, ErrorCode> {
        let now_ms = now_ms();
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder.append(now_ms, Some(&records::key(transactional_id)), value, &[]);
        let batch = builder.build().map_err(|_| ErrorCode::InvalidRequest)?;
        let appended = self.log.append_records(&batch, now_ms).map_err(|error| {
            warn!(%transactional_id, %error, "could not append a transaction state");
            ErrorCode::KafkaStorageError
        })?;
        Ok(appended.last_offset)
    }

    /// Writes the markers of a prepared (durable) decision and records the transaction
    /// complete. Failures are logged and left for [`Self::tick`] to retry: the decision is
    /// made, only its delivery is late.
    async fn complete(&self, cluster: &Cluster, prepared: TransactionMetadata) {
        let id = prepared.transactional_id.clone();
        {
            let mut transactions = self.lock();
            let Some(metadata) = transactions.get_mut(&id) else {
                return;
            };
            // Someone else is completing it, or it moved on: nothing to do here.
            if metadata.pending.is_some() || *metadata != prepared {
                return;
            }
            metadata.pending = Some(prepared.prepare_complete(0).state);
        }
        let completed = match write_markers(cluster, &prepared).await {
            Ok(()) => Ok(prepared.prepare_complete(now_ms())),
            Err(error) => {
                warn!(transactional_id = %id, %error, "could not write transaction markers; will retry");
                Err(ErrorCode::KafkaStorageError)
            }
        };
        let outcome = match completed {
            Ok(completed) => self.append_and_apply(&completed),
            Err(code) => {
                self.clear_pending(&id);
                Err(code)
            }
        };
        if outcome.is_ok() {
            let outcome = match prepared.state {
                TransactionState::PrepareCommit => "committed",
                _ => "aborted",
            };
            tracing::debug!(transactional_id = %id, outcome, "transaction completed");
        }
    }

    fn clear_pending(&self, transactional_id: &str) {
        if let Some(metadata) = self.lock().get_mut(transactional_id) {
            metadata.pending = None;
        }
    }
}

/// Runs a state change on a task of its own, so that it completes even when the request
/// that asked for it is abandoned (a client that disconnects, a runtime dropped mid-call):
/// a change cut short between marking a transaction pending and applying it would leave it
/// pending, and every later request for it would get CONCURRENT_TRANSACTIONS.
async fn run_detached<T: Send + 'static>(
    change: impl Future<Output = Result<T, ErrorCode>> + Send + 'static,
) -> Result<T, ErrorCode> {
    tokio::spawn(change).await.unwrap_or_else(|error| {
        warn!(%error, "a transaction state change did not finish");
        Err(ErrorCode::UnknownServerError)
    })
}

/// What a decision leaves pending while it is persisted.
trait PendingTarget {
    fn pending_state(&self) -> Option<TransactionState>;
}

impl PendingTarget for Option<TransactionMetadata> {
    fn pending_state(&self) -> Option<TransactionState> {
        self.as_ref().map(|target| target.state)
    }
}

impl PendingTarget for InitDecision {
    fn pending_state(&self) -> Option<TransactionState> {
        match self {
            InitDecision::Bump(target) | InitDecision::FenceAndAbort(target) => Some(target.state),
        }
    }
}

/// Appends the decision's marker to every partition of the transaction, then waits for
/// all of them to be durable. A partition of a topic deleted since is skipped.
async fn write_markers(cluster: &Cluster, prepared: &TransactionMetadata) -> Result<(), String> {
    let control_type = match prepared.state {
        TransactionState::PrepareCommit => ControlRecordType::Commit,
        _ => ControlRecordType::Abort,
    };
    let marker = EndTxnMarker {
        control_type,
        coordinator_epoch: COORDINATOR_EPOCH,
    };
    let (producer_id, producer_epoch) = (prepared.producer_id, prepared.producer_epoch);
    let mut written = Vec::with_capacity(prepared.partitions.len());
    for (topic, index) in &prepared.partitions {
        let Some(partition) = cluster
            .topic(topic)
            .and_then(|topic| topic.partition(*index).cloned())
        else {
            continue;
        };
        let appended = if topic == OFFSETS_TOPIC {
            cluster
                .groups()
                .write_txn_marker(producer_id, producer_epoch, marker)
        } else {
            partition.append_end_txn_marker(producer_id, producer_epoch, marker, now_ms())
        };
        let offset = appended.map_err(|error| format!("{topic}-{index}: {error}"))?;
        written.push((partition.request_sync(offset), topic, index));
    }
    for (sync, topic, index) in written {
        match sync.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(format!("{topic}-{index}: {error}")),
            Err(_) => return Err(format!("{topic}-{index}: the fsync task panicked")),
        }
    }
    Ok(())
}

impl TransactionCoordinator {
    /// Checks that `producer_id` at `producer_epoch` may write a transactional batch to
    /// `topic`-`partition`: the id's current producer, with the partition added to its open
    /// transaction. The Produce path asks this, under the partition's producer lock, before
    /// the batch that opens the transaction in that partition, so a late batch can never
    /// land after its transaction's marker.
    ///
    /// # Errors
    /// INVALID_PRODUCER_ID_MAPPING, INVALID_PRODUCER_EPOCH (Produce's fencing code),
    /// INVALID_TXN_STATE.
    pub fn verify_partition(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<(), ErrorCode> {
        let transactions = self.lock();
        let metadata = transactions
            .get(transactional_id)
            .ok_or(ErrorCode::InvalidProducerIdMapping)?;
        match metadata.check_producer(producer_id, producer_epoch) {
            Err(ErrorCode::ProducerFenced) => return Err(ErrorCode::InvalidProducerEpoch),
            other => other?,
        }
        let in_transaction = metadata.state == TransactionState::Ongoing
            && metadata
                .pending
                .is_none_or(|pending| pending == TransactionState::Ongoing)
            && metadata
                .partitions
                .contains(&(topic.to_string(), partition));
        if in_transaction {
            Ok(())
        } else {
            Err(ErrorCode::InvalidTxnState)
        }
    }

    /// Checks that TxnOffsetCommit comes from the id's current producer, with the offsets
    /// partition added to its open transaction.
    ///
    /// # Errors
    /// INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, INVALID_TXN_STATE.
    pub fn verify_offsets_commit(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<(), ErrorCode> {
        self.verify_partition(
            transactional_id,
            producer_id,
            producer_epoch,
            OFFSETS_TOPIC,
            0,
        )
        .map_err(|code| match code {
            ErrorCode::InvalidProducerEpoch => ErrorCode::ProducerFenced,
            other => other,
        })
    }

    /// One transactional id's state, for DescribeTransactions.
    pub fn describe(&self, transactional_id: &str) -> Option<TransactionMetadata> {
        self.lock()
            .get(transactional_id)
            .filter(|metadata| metadata.state != TransactionState::Dead)
            .cloned()
    }

    /// Every transactional id's state, for ListTransactions, by id.
    pub fn list(&self) -> Vec<TransactionMetadata> {
        let mut all: Vec<TransactionMetadata> = self.lock().values().cloned().collect();
        all.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        all
    }

    /// Time passes: completes decided transactions whose markers are not all written (after
    /// a restart, or a failed write), aborts open ones past their timeout (fencing their
    /// producer), and forgets ids unused for `transactional_id_expiration_ms`.
    pub async fn tick(&self, cluster: &Cluster) {
        let now_ms = now_ms();
        let (stranded, timed_out, expired) = self.due(now_ms);
        for prepared in stranded {
            self.complete(cluster, prepared).await;
        }
        for open in timed_out {
            let id = open.transactional_id.clone();
            let fenced = self.begin(&id, |metadata| {
                if metadata.has_timed_out(now_ms) {
                    Ok(Some(metadata.prepare_fence_and_abort(now_ms)))
                } else {
                    Ok(None)
                }
            });
            let Ok(Some(fenced)) = fenced else { continue };
            info!(transactional_id = %id, timeout_ms = fenced.timeout_ms,
                "aborting a transaction open longer than its timeout");
            if self.persist_and_apply(&fenced).await.is_ok() {
                self.complete(cluster, fenced).await;
            }
        }
        for id in expired {
            self.expire(&id, now_ms);
        }
    }

    /// The transactions `tick` acts on at `now_ms`.
    fn due(
        &self,
        now_ms: i64,
    ) -> (
        Vec<TransactionMetadata>,
        Vec<TransactionMetadata>,
        Vec<String>,
    ) {
        let transactions = self.lock();
        let idle = |metadata: &TransactionMetadata| {
            metadata.pending.is_none()
                && matches!(
                    metadata.state,
                    TransactionState::Empty
                        | TransactionState::CompleteCommit
                        | TransactionState::CompleteAbort
                )
                && now_ms.saturating_sub(metadata.last_update_timestamp_ms)
                    > self.limits.transactional_id_expiration_ms
        };
        let stranded = transactions
            .values()
            .filter(|metadata| metadata.pending.is_none() && metadata.state.is_prepared())
            .cloned()
            .collect();
        let timed_out = transactions
            .values()
            .filter(|metadata| metadata.has_timed_out(now_ms))
            .cloned()
            .collect();
        let expired = transactions
            .values()
            .filter(|metadata| idle(metadata))
            .map(|metadata| metadata.transactional_id.clone())
            .collect();
        (stranded, timed_out, expired)
    }

    /// Forgets an idle transactional id, writing its tombstone first.
    fn expire(&self, transactional_id: &str, now_ms: i64) {
        let mut transactions = self.lock();
        let still_idle = transactions.get(transactional_id).is_some_and(|metadata| {
            metadata.pending.is_none()
                && !metadata.state.is_prepared()
                && metadata.state != TransactionState::Ongoing
                && now_ms.saturating_sub(metadata.last_update_timestamp_ms)
                    > self.limits.transactional_id_expiration_ms
        });
        if !still_idle {
            return;
        }
        if self.append_record(transactional_id, None).is_ok() {
            transactions.remove(transactional_id);
            info!(%transactional_id, "expired an unused transactional id");
        }
    }
}

#[cfg(test)]
impl TransactionCoordinator {
    /// Writes a state record without applying it: what a crash right after the write leaves.
    pub(crate) async fn persist_for_tests(
        &self,
        target: &TransactionMetadata,
    ) -> Result<(), ErrorCode> {
        self.persist(target).await
    }
}
