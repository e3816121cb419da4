//! One partition of a topic: its log, its producer state, its last stable offset, and the
//! fetches waiting for it to grow.
//!
//! Every append goes through [`Partition`]: a producer's batch ([`Partition::append_batch`]),
//! a coordinator's records ([`Partition::append_records`],
//! [`Partition::append_coordinator_batch`]) and transaction markers
//! ([`Partition::append_end_txn_marker`]). Each takes the partition's producer lock, checks
//! the batch against the producer state, appends, records the result and wakes waiting
//! fetches, so "check, then append" is atomic and the last stable offset moves in step.
//! The log itself is private: reads (bounded by the high watermark or the last stable
//! offset), retention, compaction and flushes are methods here too.
//!
//! # Producer state across restarts
//!
//! The state is loaded on first use after a start (not at start-up, so opening a thousand
//! partitions reads nothing): from the newest snapshot the log holds, then by replaying
//! every batch appended after it; without a snapshot, from the log's tail, which is enough
//! for idempotence. A partition writes a snapshot before its first transactional batch, so a
//! partition without one never held an open transaction (its last stable offset is its high
//! watermark, with nothing to replay); later snapshots are written
//! periodically and at shutdown ([`Partition::snapshot_producer_state`]), which bounds the
//! replay after a crash to what came after the last one.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;
use riffle_protocol::ErrorCode;
use riffle_protocol::record::{EndTxnMarker, RecordBatchView, batches, end_txn_marker_batch};
use riffle_storage::{
    AbortedTransaction, AppendOutcome, CleanerConfig, CompactionOutcome, FileRange, FirstBatch,
    Log, LogConfig, MutexRecover, RecordCodec, StorageError,
};
use tokio::sync::{Notify, oneshot};
use tracing::{info, warn};

use crate::metrics::{PartitionMetrics, TopicTraffic};
use crate::producer_state::{
    AppendOrigin, CompletedTransaction, NO_SEQUENCE, ProducerBatch, ProducerStateTable,
    ProducerSummary, SequenceCheck, TxnMarkerFields,
};

/// Without a snapshot, how far back from the log end the producer state is rebuilt, in
/// offsets. Producers whose last batch is older are forgotten and get UNKNOWN_PRODUCER_ID
/// on their next batch, which clients handle by resetting.
pub const PRODUCER_STATE_REBUILD_MAX_OFFSETS: i64 = 10_000;
/// Scans read the log in chunks of this size.
const SCAN_CHUNK_BYTES: usize = 1024 * 1024;
/// Without a snapshot, the most the rebuild reads before giving up, so one partition of
/// huge batches cannot stall its first produce for long. A replay from a snapshot reads to
/// the end: it may pass open transactions, which must not be missed.
const PRODUCER_STATE_REBUILD_MAX_BYTES: usize = 64 * 1024 * 1024;
/// `first_unstable_offset` when no transaction is open.
const NO_UNSTABLE_OFFSET: i64 = i64::MAX;

/// A partition this broker leads (on a single node: every partition).
pub struct Partition {
    /// The topic's name.
    pub topic: String,
    /// The partition index.
    pub index: i32,
    /// The partition's log on disk. Private: every operation on it is a method here, so
    /// appends keep their protocol (lock, check, append, record, wake).
    log: Log,
    /// The producer state. Held for "check the batch, append it, record it": the three must
    /// be atomic or two retries of one batch could both pass the check. Never held across an
    /// await; the append under it is a write to the page cache (and, once per partition, the
    /// snapshot written before its first transactional batch). Lock order: a coordinator's
    /// own locks first, then this; the transaction check run under it takes the transaction
    /// coordinator's lock, which never waits for a partition.
    producers: Mutex<PartitionProducers>,
    /// Whether `first_unstable_offset` can be trusted, readable without the lock: the
    /// producer state is loaded, or the log has no snapshot and so never held a
    /// transaction (a transactional batch loads the state before it opens one).
    stable_offset_known: AtomicBool,
    /// The first offset of the earliest open transaction, `NO_UNSTABLE_OFFSET` if none.
    /// Stored (Release) under the producer lock: lowered before the batch that opens a
    /// transaction is published, raised after the marker that ends one (and its aborted
    /// transaction index entry) is; so a reader that loads the high watermark and then this
    /// never counts an undecided record as stable.
    first_unstable_offset: AtomicI64,
    /// Serialises snapshot writers, so a slow periodic write cannot replace a newer one.
    snapshot_writer: Mutex<()>,
    /// Fetches waiting for this partition to grow. Each is woken once per append; dead
    /// entries are dropped then. A std Mutex: held for a push or a drain, never across an
    /// await.
    waiters: Mutex<Vec<Weak<Notify>>>,
    /// acks=all requests waiting for an fsync, and whether a blocking task is running fsyncs
    /// for them. A std Mutex: held for a push or a drain, never across an await or an fsync.
    sync_queue: Mutex<SyncQueue>,
    /// When `flush_if_older_than` last fsynced (or found nothing to fsync), in ms since the
    /// epoch; the clock `flush.ms` is measured on.
    last_timed_flush_ms: AtomicI64,
    /// Its topic's traffic counters and the fsync histograms: atomic adds, no lock.
    metrics: PartitionMetrics,
}

/// The producer state and what is known of its snapshot on disk.
#[derive(Default)]
struct PartitionProducers {
    table: ProducerStateTable,
    /// Whether `table` reflects the whole log (see the module doc).
    loaded: bool,
    /// Whether the log holds a snapshot (a transactional batch needs one first); `None`
    /// until looked at.
    snapshot_exists: Option<bool>,
    /// The log end offset the last snapshot described.
    snapshot_offset: Option<i64>,
    /// Whether `table` changed since the last snapshot.
    changed_since_snapshot: bool,
}

/// Why an append was refused: the Kafka error code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AppendError {
    /// The code to answer with.
    pub code: ErrorCode,
    /// What went wrong.
    pub message: String,
}

impl AppendError {
    fn new(code: ErrorCode, message: impl Into<String>) -> AppendError {
        AppendError {
            code,
            message: message.into(),
        }
    }

    fn storage(partition: &Partition, error: &StorageError) -> AppendError {
        warn!(topic = %partition.topic, partition = partition.index, %error, "append failed");
        AppendError::new(ErrorCode::KafkaStorageError, error.to_string())
    }
}

/// Where an accepted batch is: its base offset, or, for a retried duplicate, the original's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Appended now, at these offsets.
    New(AppendOutcome),
    /// Appended before at this base offset; nothing was written.
    Duplicate {
        /// The original's base offset.
        base_offset: i64,
    },
}

impl Appended {
    /// The base offset to acknowledge.
    pub fn base_offset(&self) -> i64 {
        match self {
            Appended::New(outcome) => outcome.base_offset,
            Appended::Duplicate { base_offset } => *base_offset,
        }
    }
}

/// Why a write waiting to be durable was not made so.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SyncError {
    /// The fsync failed; shared by every request it was to cover.
    #[error("fsync failed: {0}")]
    Storage(Arc<StorageError>),
    /// The task running the fsync ended (panicked) without answering.
    #[error("the fsync task ended without an answer")]
    TaskLost,
}

/// What `Partition::request_sync` answers.
pub type SyncOutcome = Result<(), SyncError>;

/// The fsync requests of one partition.
#[derive(Default)]
struct SyncQueue {
    /// Each request's last offset and where to send the outcome. Bounded by the requests in
    /// flight: `max_in_flight_requests` per connection, and `max_connections`.
    waiting: Vec<(i64, oneshot::Sender<SyncOutcome>)>,
    /// Whether a blocking task is running fsyncs; it drains `waiting` until it is empty.
    running: bool,
}

/// Ends a sync task's turn if the fsync panicked: the queued requests are dropped (their
/// receivers see an error) and the next request starts a new task. A task that ends normally
/// clears `running` itself, under the same lock as its check that nothing is queued.
struct SyncTaskGuard<'a>(&'a Mutex<SyncQueue>);

impl Drop for SyncTaskGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut queue = self.0.lock_or_recover();
            queue.running = false;
            queue.waiting.clear();
        }
    }
}

impl Partition {
    /// A partition over an opened log, counting into metrics no registry holds.
    pub fn new(topic: String, index: i32, log: Log) -> Self {
        Partition::with_metrics(topic, index, log, PartitionMetrics::default())
    }

    /// A partition over an opened log, counting into `metrics`.
    pub fn with_metrics(topic: String, index: i32, log: Log, metrics: PartitionMetrics) -> Self {
        Partition {
            topic,
            index,
            log,
            producers: Mutex::new(PartitionProducers::default()),
            stable_offset_known: AtomicBool::new(false),
            first_unstable_offset: AtomicI64::new(NO_UNSTABLE_OFFSET),
            snapshot_writer: Mutex::new(()),
            waiters: Mutex::new(Vec::new()),
            sync_queue: Mutex::new(SyncQueue::default()),
            last_timed_flush_ms: AtomicI64::new(crate::cluster::now_ms()),
            metrics,
        }
    }

    /// Its topic's traffic counters, for Produce and Fetch to count into.
    pub fn traffic(&self) -> &TopicTraffic {
        &self.metrics.traffic
    }

    /// Appends a producer's validated batch (`bytes`, the batch as it is to be stored).
    /// A batch with a producer id is checked against that producer's state first. A
    /// transactional batch that opens a transaction in this partition is checked with
    /// `verify_transaction(producer_id, producer_epoch)` under the producer lock (the
    /// transaction coordinator's "was this partition added?"), so no marker can slip in
    /// between the check and the append.
    ///
    /// # Errors
    /// The producer's error (UNKNOWN_PRODUCER_ID, OUT_OF_ORDER_SEQUENCE_NUMBER,
    /// INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, or the verifier's), or KAFKA_STORAGE_ERROR.
    pub fn append_batch(
        &self,
        batch: &RecordBatchView,
        bytes: &[u8],
        now_ms: i64,
        verify_transaction: &dyn Fn(i64, i16) -> Result<(), ErrorCode>,
    ) -> Result<Appended, AppendError> {
        let producer = producer_batch(batch);
        let mut producers = self.lock_producers();
        let appended = match producer {
            None => {
                let outcome = self.log.append(bytes, now_ms);
                Appended::New(outcome.map_err(|error| AppendError::storage(self, &error))?)
            }
            Some(producer) => {
                let origin = AppendOrigin::Client;
                self.ensure_loaded(&mut producers)
                    .map_err(|error| AppendError::storage(self, &error))?;
                let check = producers.table.check(&producer, origin);
                match check {
                    SequenceCheck::Append => {}
                    SequenceCheck::Duplicate { base_offset } => {
                        return Ok(Appended::Duplicate { base_offset });
                    }
                    SequenceCheck::Reject(code) => {
                        return Err(AppendError::new(code, rejection_message(code)));
                    }
                }
                let opens = producer.is_transactional
                    && !producers.table.has_open_transaction(producer.producer_id);
                if opens {
                    verify_transaction(producer.producer_id, producer.producer_epoch)
                        .map_err(|code| AppendError::new(code, rejection_message(code)))?;
                }
                let outcome =
                    self.append_for_producer(&mut producers, &producer, origin, bytes, now_ms)?;
                Appended::New(outcome)
            }
        };
        drop(producers);
        self.wake_waiters();
        Ok(appended)
    }

    /// Whether appending `batch` may block on the disk: it would roll the segment (fsyncs),
    /// or its producer's state must first be rebuilt from the log.
    pub fn append_may_block(&self, batch: &RecordBatchView, now_ms: i64) -> bool {
        let rebuilds_producers = batch.producer_id() >= 0 && !self.lock_producers().loaded;
        rebuilds_producers
            || self
                .log
                .next_append_may_roll(batch.total_bytes(), 1, now_ms)
    }

    /// Appends records a coordinator on this broker wrote (group and transaction state),
    /// with no producer id.
    ///
    /// # Errors
    /// Storage errors.
    pub fn append_records(&self, batch: &[u8], now_ms: i64) -> Result<AppendOutcome, StorageError> {
        let producers = self.lock_producers();
        let outcome = self.log.append(batch, now_ms)?;
        drop(producers);
        self.wake_waiters();
        Ok(outcome)
    }

    /// Appends a coordinator's transactional batch for a producer (TxnOffsetCommit into
    /// `__consumer_offsets`): the epoch is checked, not the sequence (it has none), and
    /// `verify_transaction` (the transaction coordinator's check) runs under the producer
    /// lock, so the batch cannot land after its transaction's marker.
    ///
    /// # Errors
    /// INVALID_PRODUCER_EPOCH for a fenced producer, INVALID_TXN_STATE, the verifier's
    /// error, KAFKA_STORAGE_ERROR.
    pub fn append_coordinator_batch(
        &self,
        batch: &RecordBatchView,
        now_ms: i64,
        verify_transaction: &dyn Fn() -> Result<(), ErrorCode>,
    ) -> Result<AppendOutcome, AppendError> {
        let producer = producer_batch(batch).ok_or_else(|| {
            AppendError::new(
                ErrorCode::InvalidRequest,
                "a coordinator batch needs a producer",
            )
        })?;
        let mut producers = self.lock_producers();
        self.ensure_loaded(&mut producers)
            .map_err(|error| AppendError::storage(self, &error))?;
        let origin = AppendOrigin::Coordinator;
        if let SequenceCheck::Reject(code) = producers.table.check(&producer, origin) {
            return Err(AppendError::new(code, rejection_message(code)));
        }
        verify_transaction().map_err(|code| AppendError::new(code, rejection_message(code)))?;
        let outcome =
            self.append_for_producer(&mut producers, &producer, origin, batch.as_bytes(), now_ms)?;
        drop(producers);
        self.wake_waiters();
        Ok(outcome)
    }

    /// Appends the COMMIT or ABORT marker of `producer_id`'s transaction and ends the
    /// transaction here: an aborted one goes into the transaction index before the last
    /// stable offset moves past it. Returns the marker's offset.
    ///
    /// # Errors
    /// Storage errors. If the index entry of an aborted transaction cannot be written, the
    /// producer state is dropped and reloaded on next use, which writes it again (the last
    /// stable offset does not move meanwhile).
    pub fn append_end_txn_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: EndTxnMarker,
        now_ms: i64,
    ) -> Result<i64, StorageError> {
        let batch = end_txn_marker_batch(producer_id, producer_epoch, marker, now_ms)
            .expect("a one-record marker batch always builds");
        let mut producers = self.lock_producers();
        self.ensure_loaded(&mut producers)?;
        let outcome = self.log.append(&batch, now_ms)?;
        let fields = TxnMarkerFields {
            producer_epoch,
            control_type: marker.control_type,
            coordinator_epoch: marker.coordinator_epoch,
            timestamp_ms: now_ms,
        };
        let completed =
            producers
                .table
                .complete_transaction(producer_id, fields, outcome.base_offset);
        producers.changed_since_snapshot = true;
        if let Err(error) = self.index_if_aborted(&producers.table, completed) {
            producers.loaded = false;
            self.stable_offset_known.store(false, Ordering::Release);
            return Err(error);
        }
        self.publish_first_unstable_offset(&producers.table);
        drop(producers);
        self.wake_waiters();
        Ok(outcome.base_offset)
    }

    /// Checks nothing more; appends a producer's batch, records it, and keeps the first
    /// unstable offset ahead of the high watermark (see `first_unstable_offset`).
    fn append_for_producer(
        &self,
        producers: &mut PartitionProducers,
        producer: &ProducerBatch,
        origin: AppendOrigin,
        bytes: &[u8],
        now_ms: i64,
    ) -> Result<AppendOutcome, AppendError> {
        let opens = producer.is_transactional
            && !producers.table.has_open_transaction(producer.producer_id);
        // Every append holds the producer lock, so the next offset cannot move under us.
        let first_offset = self.log.next_offset();
        if opens {
            self.ensure_snapshot_exists(producers)
                .map_err(|error| AppendError::storage(self, &error))?;
            self.first_unstable_offset
                .fetch_min(first_offset, Ordering::Release);
        }
        let outcome = match self.log.append(bytes, now_ms) {
            Ok(outcome) => outcome,
            Err(error) => {
                self.publish_first_unstable_offset(&producers.table);
                return Err(AppendError::storage(self, &error));
            }
        };
        assert_eq!(outcome.base_offset, first_offset);
        producers
            .table
            .record(producer, origin, outcome.base_offset);
        producers.changed_since_snapshot = true;
        self.publish_first_unstable_offset(&producers.table);
        Ok(outcome)
    }

    /// Adds an aborted transaction to the log's transaction index.
    fn index_if_aborted(
        &self,
        table: &ProducerStateTable,
        completed: Option<CompletedTransaction>,
    ) -> Result<(), StorageError> {
        let Some(completed) = completed.filter(|completed| completed.is_aborted) else {
            return Ok(());
        };
        // Kafka's rule: the index entry's last stable offset is the first offset of the
        // earliest transaction still open, or just past this one's marker.
        let last_stable_offset = table
            .first_unstable_offset()
            .unwrap_or(completed.last_offset + 1);
        self.log.add_aborted_transaction(AbortedTransaction {
            producer_id: completed.producer_id,
            first_offset: completed.first_offset,
            last_offset: completed.last_offset,
            last_stable_offset,
        })
    }

    fn publish_first_unstable_offset(&self, table: &ProducerStateTable) {
        let first_unstable_offset = table.first_unstable_offset().unwrap_or(NO_UNSTABLE_OFFSET);
        self.first_unstable_offset
            .store(first_unstable_offset, Ordering::Release);
    }

    /// The offset below which every record is decided (Kafka's last stable offset): the
    /// first offset of the earliest open transaction, or the high watermark when none is
    /// open; never below the log start offset.
    ///
    /// # Errors
    /// Storage errors while loading the producer state, the first time after a start.
    pub fn last_stable_offset(&self) -> Result<i64, StorageError> {
        if !self.stable_offset_known.load(Ordering::Acquire) {
            let mut producers = self.lock_producers();
            self.ensure_stable_offset_known(&mut producers)?;
        }
        // The high watermark first: a batch it covers that opened a transaction lowered
        // `first_unstable_offset` before it was published.
        let high_watermark = self.log.high_watermark();
        let first_unstable_offset = self.first_unstable_offset.load(Ordering::Acquire);
        let last_stable_offset = first_unstable_offset.min(high_watermark);
        Ok(last_stable_offset.max(self.log.log_start_offset()))
    }

    /// The aborted transactions that overlap `[start_offset, upper_bound_offset)`, for
    /// read_committed readers to drop their records.
    ///
    /// # Errors
    /// Storage errors.
    pub fn aborted_transactions(
        &self,
        start_offset: i64,
        upper_bound_offset: i64,
    ) -> Result<Vec<AbortedTransaction>, StorageError> {
        self.log
            .aborted_transactions(start_offset, upper_bound_offset)
    }

    /// Every producer known here, for DescribeProducers.
    ///
    /// # Errors
    /// Storage errors while loading the producer state.
    pub fn producers(&self) -> Result<Vec<ProducerSummary>, StorageError> {
        let mut producers = self.lock_producers();
        self.ensure_loaded(&mut producers)?;
        Ok(producers.table.summaries())
    }

    /// The producer lock. A panic under it may have left the table half-updated (a batch
    /// appended but not recorded, say); the log is the truth, so after one the state is
    /// rebuilt from the log on next use, as after a restart.
    fn lock_producers(&self) -> MutexGuard<'_, PartitionProducers> {
        self.producers.lock_or_repair(|producers| {
            producers.loaded = false;
            producers.snapshot_exists = None;
            self.stable_offset_known.store(false, Ordering::Release);
        })
    }
}

/// The producer fields of a batch; `None` for a batch without a producer id.
fn producer_batch(batch: &RecordBatchView) -> Option<ProducerBatch> {
    (batch.producer_id() >= 0).then(|| ProducerBatch {
        producer_id: batch.producer_id(),
        producer_epoch: batch.producer_epoch(),
        base_sequence: batch.base_sequence(),
        last_sequence: batch.last_sequence(),
        is_transactional: batch.is_transactional(),
        max_timestamp_ms: batch.max_timestamp(),
    })
}

fn rejection_message(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidProducerEpoch => "the producer's epoch is older than the partition's",
        ErrorCode::InvalidTxnState => {
            "the batch does not belong to the producer's transaction in this partition"
        }
        ErrorCode::UnknownProducerId => "the broker has no state for this producer",
        ErrorCode::OutOfOrderSequenceNumber => "sequence check failed",
        _ => "refused by the transaction coordinator",
    }
}

impl Partition {
    /// Makes `first_unstable_offset` trustworthy: a log without a snapshot never held a
    /// transaction, so it needs no replay (which, for a partition that only ever had plain
    /// producers, would read its tail for nothing); any other loads the producer state.
    fn ensure_stable_offset_known(
        &self,
        producers: &mut PartitionProducers,
    ) -> Result<(), StorageError> {
        if producers.loaded || producers.snapshot_exists == Some(false) {
            return Ok(());
        }
        if producers.snapshot_exists.is_none()
            && matches!(self.log.read_producer_snapshot(), Ok(None))
        {
            producers.snapshot_exists = Some(false);
            self.stable_offset_known.store(true, Ordering::Release);
            return Ok(());
        }
        self.ensure_loaded(producers)
    }

    /// Loads the producer state if this is its first use since the start (see the module doc).
    fn ensure_loaded(&self, producers: &mut PartitionProducers) -> Result<(), StorageError> {
        if producers.loaded {
            return Ok(());
        }
        let log_start_offset = self.log.log_start_offset();
        let end_offset = self.log.next_offset();
        let (table, replay) = match self.log.read_producer_snapshot() {
            Ok(Some(snapshot)) => {
                producers.snapshot_exists = Some(true);
                producers.snapshot_offset = Some(snapshot.offset);
                match ProducerStateTable::decode_snapshot(&snapshot.payload) {
                    Ok(table) => (table, Replay::from(snapshot.offset.max(log_start_offset))),
                    Err(error) => {
                        warn!(topic = %self.topic, partition = self.index, %error,
                            "unreadable producer snapshot; replaying the whole log");
                        (
                            ProducerStateTable::default(),
                            Replay::from(log_start_offset),
                        )
                    }
                }
            }
            Ok(None) => {
                producers.snapshot_exists = Some(false);
                let tail_start = end_offset.saturating_sub(PRODUCER_STATE_REBUILD_MAX_OFFSETS);
                let replay = Replay {
                    from_offset: log_start_offset.max(tail_start),
                    max_bytes: PRODUCER_STATE_REBUILD_MAX_BYTES,
                };
                (ProducerStateTable::default(), replay)
            }
            Err(error) => {
                warn!(topic = %self.topic, partition = self.index, %error,
                    "unreadable producer snapshot; replaying the whole log");
                (
                    ProducerStateTable::default(),
                    Replay::from(log_start_offset),
                )
            }
        };
        producers.table = table;
        let read_bytes = self.replay(&mut producers.table, replay, end_offset)?;
        producers.loaded = true;
        producers.changed_since_snapshot = read_bytes > 0;
        self.publish_first_unstable_offset(&producers.table);
        self.stable_offset_known.store(true, Ordering::Release);
        if read_bytes > 0 {
            info!(topic = %self.topic, partition = self.index, read_bytes,
                from_offset = replay.from_offset, "producer state rebuilt from the log");
        }
        Ok(())
    }

    /// Applies every batch from `replay.from_offset` to `end_offset` to `table`, adding the
    /// transaction index entries of the aborted transactions it ends (the index may have
    /// lost them in a crash; adding one it has is a no-op). Returns the bytes read.
    fn replay(
        &self,
        table: &mut ProducerStateTable,
        replay: Replay,
        end_offset: i64,
    ) -> Result<usize, StorageError> {
        let scan = Scan {
            from_offset: replay.from_offset,
            end_offset,
            max_bytes: replay.max_bytes,
        };
        self.scan_batches(scan, |batch| self.replay_batch(table, batch))
    }

    /// Reads the log's batches in `scan`'s range in chunks and hands each to `visit`, for the
    /// replays after a start (producer state, groups, transactions). Returns the bytes read.
    /// The log holds only batches that passed validation; a bad one ends the scan.
    ///
    /// # Errors
    /// The log's read errors, and `visit`'s.
    pub fn scan_batches(
        &self,
        scan: Scan,
        mut visit: impl FnMut(&RecordBatchView) -> Result<(), StorageError>,
    ) -> Result<usize, StorageError> {
        let mut offset = scan.from_offset;
        let mut read_bytes = 0;
        while offset < scan.end_offset && read_bytes < scan.max_bytes {
            let chunk = self
                .log
                .read(offset, SCAN_CHUNK_BYTES, FirstBatch::AlwaysWhole)?;
            if chunk.is_empty() {
                break;
            }
            read_bytes += chunk.len();
            for batch in batches(chunk) {
                let Ok(batch) = batch else {
                    return Ok(read_bytes);
                };
                offset = batch.last_offset() + 1;
                visit(&batch)?;
            }
        }
        Ok(read_bytes)
    }

    fn replay_batch(
        &self,
        table: &mut ProducerStateTable,
        batch: &RecordBatchView,
    ) -> Result<(), StorageError> {
        if batch.is_control() {
            let Ok(Some(marker)) = batch.end_txn_marker() else {
                return Ok(());
            };
            let fields = TxnMarkerFields {
                producer_epoch: batch.producer_epoch(),
                control_type: marker.control_type,
                coordinator_epoch: marker.coordinator_epoch,
                timestamp_ms: batch.max_timestamp(),
            };
            let completed =
                table.complete_transaction(batch.producer_id(), fields, batch.base_offset());
            return self.index_if_aborted(table, completed);
        }
        if let Some(producer) = producer_batch(batch) {
            let origin = if producer.base_sequence == NO_SEQUENCE {
                AppendOrigin::Coordinator
            } else {
                AppendOrigin::Client
            };
            table.record(&producer, origin, batch.base_offset());
        }
        Ok(())
    }

    /// Writes a snapshot now if the log has none: the invariant that lets a partition
    /// without one be rebuilt from its tail (see the module doc).
    fn ensure_snapshot_exists(
        &self,
        producers: &mut PartitionProducers,
    ) -> Result<(), StorageError> {
        if producers.snapshot_exists == Some(true) {
            return Ok(());
        }
        let offset = self.log.next_offset();
        self.log
            .write_producer_snapshot(offset, &producers.table.encode_snapshot())?;
        producers.snapshot_exists = Some(true);
        producers.snapshot_offset = Some(offset);
        producers.changed_since_snapshot = false;
        Ok(())
    }

    /// Writes a snapshot of the producer state at the current log end, if the state is
    /// loaded and has changed, or the log grew, since the last one; so a restart replays
    /// only what follows. Blocking (fsyncs): call it from a blocking thread.
    ///
    /// # Errors
    /// Storage errors; the next call tries again.
    pub fn snapshot_producer_state(&self) -> Result<(), StorageError> {
        let _writer = self.snapshot_writer.lock_or_recover();
        let (offset, payload) = {
            let mut producers = self.lock_producers();
            let offset = self.log.next_offset();
            let stale = producers.snapshot_offset != Some(offset)
                && (producers.snapshot_exists == Some(true) || !producers.table.is_empty());
            if !producers.loaded || !(producers.changed_since_snapshot || stale) {
                return Ok(());
            }
            producers.changed_since_snapshot = false;
            (offset, producers.table.encode_snapshot())
        };
        if let Err(error) = self.log.write_producer_snapshot(offset, &payload) {
            self.lock_producers().changed_since_snapshot = true;
            return Err(error);
        }
        let mut producers = self.lock_producers();
        producers.snapshot_exists = Some(true);
        producers.snapshot_offset = Some(producers.snapshot_offset.unwrap_or(offset).max(offset));
        Ok(())
    }
}

/// The part of a log [`Partition::scan_batches`] reads.
#[derive(Debug, Clone, Copy)]
pub struct Scan {
    /// Where it starts.
    pub from_offset: i64,
    /// Where it stops: usually the log end when it started.
    pub end_offset: i64,
    /// It stops after reading this much.
    pub max_bytes: usize,
}

impl Scan {
    /// The whole log of `partition`, from its start to its current end.
    pub fn whole(partition: &Partition) -> Scan {
        Scan {
            from_offset: partition.log.log_start_offset(),
            end_offset: partition.log.next_offset(),
            max_bytes: usize::MAX,
        }
    }
}

/// Where a producer-state replay starts and how much it may read.
#[derive(Debug, Clone, Copy)]
struct Replay {
    from_offset: i64,
    max_bytes: usize,
}

impl Replay {
    /// A replay to the end of the log.
    fn from(from_offset: i64) -> Replay {
        Replay {
            from_offset,
            max_bytes: usize::MAX,
        }
    }
}

/// Reading the log, and the work done on it in the background or at shutdown. Appends are
/// above: each goes through the producer lock.
impl Partition {
    /// The offset the next append gets (Kafka's log end offset).
    pub fn next_offset(&self) -> i64 {
        self.log.next_offset()
    }

    /// The offset below which batches are visible to read_uncommitted readers.
    pub fn high_watermark(&self) -> i64 {
        self.log.high_watermark()
    }

    /// The first offset readers may see.
    pub fn log_start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    /// Bytes of batches in the log.
    pub fn size_bytes(&self) -> u64 {
        self.log.size_bytes()
    }

    /// Whole batches from the one holding `offset`, up to `max_bytes`, below the high
    /// watermark (see `Log::read`).
    ///
    /// # Errors
    /// `OffsetOutOfRange` outside the log; storage errors.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        first_batch: FirstBatch,
    ) -> Result<Bytes, StorageError> {
        self.log.read(offset, max_bytes, first_batch)
    }

    /// As `read`, naming the bytes in their file instead of copying them, and returning no
    /// batch at or past `upper_bound_offset` (the last stable offset, for read_committed;
    /// see `Log::read_range_below`).
    ///
    /// # Errors
    /// As `read`.
    pub fn read_range_below(
        &self,
        offset: i64,
        max_bytes: usize,
        first_batch: FirstBatch,
        upper_bound_offset: i64,
    ) -> Result<Option<FileRange>, StorageError> {
        self.log
            .read_range_below(offset, max_bytes, first_batch, upper_bound_offset)
    }

    /// The first batch whose max timestamp is at least `timestamp_ms`, for ListOffsets.
    ///
    /// # Errors
    /// Storage errors.
    pub fn batch_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<Bytes>, StorageError> {
        self.log.batch_for_timestamp(timestamp_ms)
    }

    /// The batch with the largest max timestamp, for ListOffsets MAX_TIMESTAMP.
    ///
    /// # Errors
    /// Storage errors.
    pub fn batch_with_max_timestamp(&self) -> Result<Option<Bytes>, StorageError> {
        self.log.batch_with_max_timestamp()
    }

    /// DeleteRecords: moves the log start offset up to `offset` and deletes the segments
    /// below it; returns the new log start offset.
    ///
    /// # Errors
    /// `OffsetOutOfRange` past the high watermark; storage errors.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, StorageError> {
        self.log.delete_records_before(offset)
    }

    /// One retention pass at `now_ms`; returns the number of segments deleted.
    ///
    /// # Errors
    /// Storage errors.
    pub fn apply_retention(&self, now_ms: i64) -> Result<usize, StorageError> {
        self.log.apply_retention(now_ms)
    }

    /// One compaction pass, below the last stable offset: nothing at or past it is decided
    /// yet. Blocking (it rewrites segments): call it from a blocking thread.
    ///
    /// # Errors
    /// Storage errors, including loading the producer state for the last stable offset.
    pub fn compact(
        &self,
        now_ms: i64,
        codec: &dyn RecordCodec,
        cleaner: &CleanerConfig,
    ) -> Result<CompactionOutcome, StorageError> {
        let last_stable_offset = self.last_stable_offset()?;
        self.log.compact(now_ms, codec, cleaner, last_stable_offset)
    }

    /// Makes everything appended so far durable (see `Log::flush`). Blocking.
    ///
    /// # Errors
    /// Storage errors.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.log.flush()
    }

    /// Offsets appended since the log's last fsync (the count `flush.messages` bounds).
    pub fn unsynced_offsets(&self) -> i64 {
        self.log.unsynced_offsets()
    }

    /// Fsyncs the log if it holds unsynced records and its last flush by this check is
    /// `flush_ms` or more ago, as Kafka's log flusher does for `flush.ms`. Blocking.
    ///
    /// # Errors
    /// The fsync's failure.
    pub fn flush_if_older_than(&self, flush_ms: i64, now_ms: i64) -> Result<bool, StorageError> {
        let last_ms = self.last_timed_flush_ms.load(Ordering::Acquire);
        if now_ms.saturating_sub(last_ms) < flush_ms {
            return Ok(false);
        }
        self.last_timed_flush_ms.store(now_ms, Ordering::Release);
        if self.log.unsynced_offsets() == 0 {
            return Ok(false);
        }
        self.log.flush()?;
        Ok(true)
    }

    /// Records how far the log is durable, so recovery after a crash scans only what
    /// follows. Blocking.
    ///
    /// # Errors
    /// Storage errors.
    pub fn checkpoint_recovery_point(&self) -> Result<(), StorageError> {
        self.log.checkpoint_recovery_point()
    }

    /// Fsyncs through `last_offset` on the calling thread, for a caller already on a
    /// blocking thread; async callers use [`Partition::sync_through`], which shares fsyncs.
    ///
    /// # Errors
    /// The fsync's failure.
    pub fn sync_through_blocking(&self, last_offset: i64) -> Result<(), StorageError> {
        self.log.sync_through(last_offset)
    }

    /// Replaces the log's settings (a topic config change); they apply from the next
    /// append, roll or retention pass.
    pub fn set_log_config(&self, config: LogConfig) {
        self.log.set_config(config);
    }

    /// The log's settings in force.
    pub fn log_config(&self) -> LogConfig {
        self.log.config()
    }
}

impl Partition {
    /// Asks for an fsync covering every offset up to `last_offset`; the receiver gets the
    /// outcome. At most one blocking task per partition runs fsyncs: requests that arrive
    /// while it runs queue up and share its next fsync, so a busy partition costs one
    /// hand-off to the blocking pool per fsync rather than one per request.
    pub fn request_sync(self: &Arc<Self>, last_offset: i64) -> oneshot::Receiver<SyncOutcome> {
        let (sender, receiver) = oneshot::channel();
        let start_task = {
            let mut queue = self.lock_sync_queue();
            queue.waiting.push((last_offset, sender));
            !std::mem::replace(&mut queue.running, true)
        };
        if start_task {
            let partition = Arc::clone(self);
            tokio::task::spawn_blocking(move || partition.run_syncs());
        }
        receiver
    }

    /// Waits until every offset up to `last_offset` is durable; the async form of
    /// `request_sync` for callers that need the outcome as an error.
    ///
    /// # Errors
    /// The fsync's failure, or `TaskLost`.
    pub async fn sync_through(self: &Arc<Self>, last_offset: i64) -> SyncOutcome {
        match self.request_sync(last_offset).await {
            Ok(outcome) => outcome,
            Err(_) => Err(SyncError::TaskLost),
        }
    }

    /// The sync task: fsyncs through the largest offset queued, answers every request that
    /// fsync covered, and repeats until no request is left.
    fn run_syncs(&self) {
        let _guard = SyncTaskGuard(&self.sync_queue);
        loop {
            let waiting = {
                let mut queue = self.lock_sync_queue();
                if queue.waiting.is_empty() {
                    // Under the lock: a request queued after this sees `running` false and
                    // starts the next task.
                    queue.running = false;
                    return;
                }
                std::mem::take(&mut queue.waiting)
            };
            let through = waiting
                .iter()
                .map(|(offset, _)| *offset)
                .max()
                .expect("the queue was not empty");
            let started = std::time::Instant::now();
            let outcome = self
                .log
                .sync_through(through)
                .map_err(|error| SyncError::Storage(Arc::new(error)));
            self.metrics
                .log_sync
                .synced(started.elapsed(), waiting.len());
            for (_, sender) in waiting {
                // A request whose connection went away no longer listens; that is fine.
                let _ = sender.send(outcome.clone());
            }
        }
    }

    fn lock_sync_queue(&self) -> MutexGuard<'_, SyncQueue> {
        self.sync_queue.lock_or_recover()
    }

    /// Registers a fetch to be woken at the next append.
    pub fn register_waiter(&self, waiter: &Arc<Notify>) {
        let mut waiters = self.waiters.lock_or_recover();
        waiters.retain(|weak| weak.strong_count() > 0);
        waiters.push(Arc::downgrade(waiter));
    }

    /// Wakes every fetch waiting on this partition; called after each append.
    fn wake_waiters(&self) {
        let waiters = {
            let mut waiters = self.waiters.lock_or_recover();
            std::mem::take(&mut *waiters)
        };
        for waiter in waiters.iter().filter_map(Weak::upgrade) {
            // notify_one stores a permit if the fetch is not awaiting yet, so a wake-up
            // between its last read and its await is not lost.
            waiter.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use riffle_protocol::record::{Compression, ControlRecordType, RecordBatchBuilder};
    use riffle_storage::{DataDir, LogConfig};

    use super::*;

    fn no_transactions(_: i64, _: i16) -> Result<(), ErrorCode> {
        Ok(())
    }

    fn open_partition(dir: &std::path::Path) -> Partition {
        let data_dir = DataDir::open(dir).expect("open data dir");
        let log = data_dir
            .open_log("events", 0, LogConfig::default())
            .expect("open log");
        Partition::new("events".into(), 0, log)
    }

    fn transactional_batch(producer_id: i64, base_sequence: i32) -> RecordBatchView {
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder
            .producer(producer_id, 0, base_sequence)
            .transactional()
            .append(1_000, None, Some(b"value"), &[]);
        RecordBatchView::parse(builder.build().expect("a valid batch")).expect("parses")
    }

    fn append(partition: &Partition, batch: &RecordBatchView) -> Appended {
        partition
            .append_batch(batch, batch.as_bytes(), 1_000, &no_transactions)
            .expect("appended")
    }

    #[test]
    fn appends_that_roll_or_rebuild_producer_state_are_flagged_as_blocking() {
        // Produce moves exactly these off the async workers.
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = DataDir::open(dir.path()).expect("open data dir");
        let config = LogConfig {
            segment_bytes: 200,
            ..LogConfig::default()
        };
        let partition = Partition::new(
            "events".into(),
            0,
            data_dir.open_log("events", 0, config).expect("open log"),
        );
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder.append(1_000, None, Some(b"value"), &[]);
        let plain = RecordBatchView::parse(builder.build().expect("builds")).expect("parses");
        assert!(
            !partition.append_may_block(&plain, 1_000),
            "an empty segment takes it"
        );
        assert!(
            partition.append_may_block(&transactional_batch(7, 0), 1_000),
            "the producer state is not loaded yet"
        );
        append(&partition, &transactional_batch(7, 0));
        let big = {
            let mut builder = RecordBatchBuilder::new(Compression::None);
            builder.append(1_000, None, Some(&[0; 300]), &[]);
            RecordBatchView::parse(builder.build().expect("builds")).expect("parses")
        };
        assert!(
            partition.append_may_block(&big, 1_000),
            "past segment.bytes: a roll"
        );
    }

    fn marker(control_type: ControlRecordType) -> EndTxnMarker {
        EndTxnMarker {
            control_type,
            coordinator_epoch: 0,
        }
    }

    /// Many acks=all requests racing on one partition, each appending and then asking for an
    /// fsync, all get `Ok`: none is dropped between a sync task's last check of its queue and
    /// its exit, and each is answered only once its offset is durable.
    #[test]
    fn concurrent_sync_requests_are_all_answered() {
        let dir = tempfile::Builder::new()
            .prefix("concurrent_sync_requests_are_all_answered")
            .tempdir()
            .expect("temp dir");
        let partition = Arc::new(open_partition(dir.path()));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let requests: Vec<_> = (0..400)
                .map(|_| {
                    let partition = Arc::clone(&partition);
                    tokio::spawn(async move {
                        let mut builder = RecordBatchBuilder::new(Compression::None);
                        builder.append(1_000, None, Some(b"value"), &[]);
                        let batch = builder.build().expect("a valid batch");
                        let outcome = partition.append_records(&batch, 0);
                        let last_offset = outcome.expect("append").last_offset;
                        partition.request_sync(last_offset).await
                    })
                })
                .collect();
            for request in requests {
                let outcome = request.await.expect("request task");
                assert!(matches!(outcome, Ok(Ok(()))), "{outcome:?}");
            }
        });
    }

    #[test]
    fn the_last_stable_offset_waits_for_the_earliest_open_transaction() {
        // Two producers' transactions interleave; the LSO stays at the first one's first
        // record until its marker, and an aborted one lands in the transaction index.
        let dir = tempfile::Builder::new()
            .prefix("the_last_stable_offset_waits_for_the_earliest_open_transaction")
            .tempdir()
            .expect("temp dir");
        let partition = open_partition(dir.path());
        append(&partition, &transactional_batch(1, 0)); // offset 0
        append(&partition, &transactional_batch(2, 0)); // offset 1
        assert_eq!(partition.last_stable_offset().expect("lso"), 0);
        let abort = partition
            .append_end_txn_marker(1, 0, marker(ControlRecordType::Abort), 2_000)
            .expect("marker");
        assert_eq!(abort, 2);
        assert_eq!(partition.last_stable_offset().expect("lso"), 1);
        let aborted = partition.aborted_transactions(0, 10).expect("aborted");
        assert_eq!(
            aborted,
            vec![AbortedTransaction {
                producer_id: 1,
                first_offset: 0,
                last_offset: 2,
                last_stable_offset: 1
            }]
        );
        partition
            .append_end_txn_marker(2, 0, marker(ControlRecordType::Commit), 2_000)
            .expect("marker");
        assert_eq!(partition.last_stable_offset().expect("lso"), 4);
    }

    #[test]
    fn an_open_transaction_survives_a_restart_through_the_snapshot_and_replay() {
        // A transaction opened before a clean stop (snapshot at the end) and one opened
        // after the last snapshot (replayed) both hold the LSO after the reopen; their
        // markers then release it.
        let dir = tempfile::Builder::new()
            .prefix("an_open_transaction_survives_a_restart_through_the_snapshot_and_replay")
            .tempdir()
            .expect("temp dir");
        {
            let partition = open_partition(dir.path());
            partition
                .append_records(&plain_batch(), 1_000)
                .expect("append");
            append(&partition, &transactional_batch(1, 0)); // offset 1
            partition.snapshot_producer_state().expect("snapshot");
            append(&partition, &transactional_batch(2, 0)); // offset 2, after the snapshot
        }
        let partition = open_partition(dir.path());
        assert_eq!(partition.last_stable_offset().expect("lso"), 1);
        partition
            .append_end_txn_marker(1, 0, marker(ControlRecordType::Abort), 2_000)
            .expect("marker");
        assert_eq!(partition.last_stable_offset().expect("lso"), 2);
        partition
            .append_end_txn_marker(2, 0, marker(ControlRecordType::Commit), 2_000)
            .expect("marker");
        assert_eq!(
            partition.last_stable_offset().expect("lso"),
            partition.log.high_watermark()
        );
        assert_eq!(
            partition
                .aborted_transactions(0, 100)
                .expect("aborted")
                .len(),
            1
        );
    }

    /// A panic under the producer lock, after it wiped the producer table, does not cost
    /// idempotence: the next user of the lock rebuilds the table from the log, so a retried
    /// batch is still recognised as a duplicate rather than stored twice.
    #[test]
    fn a_panic_under_the_producer_lock_rebuilds_the_producer_state() {
        let dir = tempfile::Builder::new()
            .prefix("a_panic_under_the_producer_lock_rebuilds_the_producer_state")
            .tempdir()
            .expect("temp dir");
        let partition = open_partition(dir.path());
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder
            .producer(7, 0, 0)
            .append(1_000, None, Some(b"value"), &[]);
        let batch = RecordBatchView::parse(builder.build().expect("builds")).expect("parses");
        assert_eq!(append(&partition, &batch).base_offset(), 0);
        let panicked = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let mut producers = partition.lock_producers();
                    producers.table = ProducerStateTable::default();
                    panic!("a bug under the producer lock");
                })
                .join()
        });
        assert!(panicked.is_err());
        let retried = append(&partition, &batch);
        assert_eq!(retried, Appended::Duplicate { base_offset: 0 });
        assert_eq!(partition.log.next_offset(), 1);
    }

    fn plain_batch() -> bytes::Bytes {
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder.append(1_000, None, Some(b"value"), &[]);
        builder.build().expect("a valid batch")
    }
}
