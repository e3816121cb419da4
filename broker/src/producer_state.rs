//! The producer state of one partition: a plain state machine, no I/O.
//!
//! For each producer id we keep its epoch, the sequence range and offsets of its last few
//! batches (Kafka keeps five, matching `max.in.flight.requests.per.connection`), so a
//! retried batch is recognised and answered with its original offset instead of being
//! appended twice; and, for transactional producers, the first offset of the transaction
//! it has open in this partition. The smallest of those first offsets is the partition's
//! first unstable offset: read_committed consumers see nothing at or past it until the
//! transaction's COMMIT or ABORT marker is appended ([`ProducerStateTable::complete_transaction`]).
//!
//! The table survives restarts as a snapshot ([`ProducerStateTable::encode_snapshot`]) that
//! the partition writes through its log, plus a replay of the batches appended after it.

use std::collections::{BTreeMap, HashMap, VecDeque};

use riffle_protocol::ErrorCode;
use riffle_protocol::record::ControlRecordType;

/// How many recent batches per producer are remembered for duplicate detection.
pub const REMEMBERED_BATCHES_PER_PRODUCER: usize = 5;
/// How many producers one partition tracks before forgetting the least recently used one
/// without an open transaction. Producers with open transactions are never forgotten: their
/// first offsets hold the last stable offset back.
pub const MAX_PRODUCERS_PER_PARTITION: usize = 10_000;
/// The snapshot layout this code writes and reads.
const SNAPSHOT_VERSION: u16 = 1;
/// Bytes of one producer in a snapshot, before its remembered batches.
const SNAPSHOT_PRODUCER_BYTES: usize = 8 + 2 + 4 + 8 + 8 + 1;
/// Bytes of one remembered batch in a snapshot.
const SNAPSHOT_BATCH_BYTES: usize = 4 + 4 + 8;
/// Kafka's "no sequence": batches written by a coordinator on the broker carry it.
pub const NO_SEQUENCE: i32 = -1;

/// The producer fields of an incoming data batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    /// The producer id (>= 0).
    pub producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
    /// The first record's sequence number; -1 for batches a coordinator writes.
    pub base_sequence: i32,
    /// The last record's sequence number.
    pub last_sequence: i32,
    /// Whether the batch belongs to a transaction.
    pub is_transactional: bool,
    /// The batch's largest timestamp, for DescribeProducers.
    pub max_timestamp_ms: i64,
}

/// Who wrote a batch, which decides whether its sequence is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer: sequences are checked for duplicates and gaps.
    Client,
    /// A coordinator on this broker (TxnOffsetCommit into `__consumer_offsets`): its batches
    /// carry no sequence; only the epoch is checked.
    Coordinator,
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// It was appended before at this base offset; acknowledge without appending.
    Duplicate {
        /// Where the original landed.
        base_offset: i64,
    },
    /// Reject it with this error.
    Reject(ErrorCode),
}

/// A transaction that a marker just ended in this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTransaction {
    /// Its producer.
    pub producer_id: i64,
    /// Offset of its first batch in this partition.
    pub first_offset: i64,
    /// Offset of the marker that ended it.
    pub last_offset: i64,
    /// Whether it was aborted.
    pub is_aborted: bool,
}

/// One producer as DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerSummary {
    /// The producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The sequence of its last batch, or -1.
    pub last_sequence: i32,
    /// The largest timestamp of its last batch or marker.
    pub last_timestamp_ms: i64,
    /// The coordinator epoch of its last marker, or -1.
    pub coordinator_epoch: i32,
    /// The first offset of its open transaction, or -1.
    pub current_txn_start_offset: i64,
}

/// Why a snapshot could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The snapshot was written by a version of this code we do not know.
    #[error("unknown producer snapshot version {0}")]
    UnknownVersion(u16),
    /// The bytes end before the snapshot does, or continue after it.
    #[error("producer snapshot is malformed: {0}")]
    Malformed(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RememberedBatch {
    base_sequence: i32,
    last_sequence: i32,
    base_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<RememberedBatch>,
    last_timestamp_ms: i64,
    coordinator_epoch: i32,
    /// The first offset of its open transaction in this partition.
    current_txn_first_offset: Option<i64>,
    last_used: u64,
}

impl ProducerEntry {
    fn new(epoch: i16) -> ProducerEntry {
        ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            last_timestamp_ms: -1,
            coordinator_epoch: -1,
            current_txn_first_offset: None,
            last_used: 0,
        }
    }

    /// A newer epoch restarts the producer's sequence numbers.
    fn move_to_epoch(&mut self, epoch: i16) {
        if epoch > self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
    }
}

/// Every producer that wrote to one partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
    /// The first offset of every open transaction, and its producer. The smallest key is
    /// the partition's first unstable offset.
    ongoing: BTreeMap<i64, i64>,
    clock: u64,
}

impl ProducerStateTable {
    /// Decides whether a batch is new, a duplicate, out of order, or not allowed.
    pub fn check(&self, batch: &ProducerBatch, origin: AppendOrigin) -> SequenceCheck {
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            // No state: a brand-new producer starts at 0. Any other sequence means we lost
            // (or never had) its state, which Kafka reports as UNKNOWN_PRODUCER_ID so the
            // client can reset rather than treat it as a gap.
            return if origin == AppendOrigin::Coordinator || batch.base_sequence == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::Reject(ErrorCode::UnknownProducerId)
            };
        };
        if batch.producer_epoch < entry.epoch {
            return SequenceCheck::Reject(ErrorCode::InvalidProducerEpoch);
        }
        if entry.current_txn_first_offset.is_some()
            && (!batch.is_transactional || batch.producer_epoch > entry.epoch)
        {
            // A transaction is open: only its own batches may follow until its marker.
            return SequenceCheck::Reject(ErrorCode::InvalidTxnState);
        }
        if origin == AppendOrigin::Coordinator {
            return SequenceCheck::Append;
        }
        check_sequence(entry, batch)
    }

    /// Records a batch that was appended at `base_offset`.
    pub fn record(&mut self, batch: &ProducerBatch, origin: AppendOrigin, base_offset: i64) {
        let entry = self.entry(batch.producer_id, batch.producer_epoch);
        entry.move_to_epoch(batch.producer_epoch);
        entry.last_timestamp_ms = entry.last_timestamp_ms.max(batch.max_timestamp_ms);
        if origin == AppendOrigin::Client && batch.base_sequence >= 0 {
            entry.batches.push_back(RememberedBatch {
                base_sequence: batch.base_sequence,
                last_sequence: batch.last_sequence,
                base_offset,
            });
            if entry.batches.len() > REMEMBERED_BATCHES_PER_PRODUCER {
                entry.batches.pop_front();
            }
        }
        if batch.is_transactional && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(base_offset);
            self.ongoing.insert(base_offset, batch.producer_id);
        }
    }

    /// Records the COMMIT or ABORT marker appended at `marker_offset` for `producer_id`, and
    /// returns the transaction it ended here, if the producer had one open in this
    /// partition (a transaction that wrote nothing here has nothing to end). A marker with
    /// a newer epoch (the coordinator fenced the producer) moves the producer to it, so the
    /// fenced producer's later batches are refused.
    pub fn complete_transaction(
        &mut self,
        producer_id: i64,
        marker: TxnMarkerFields,
        marker_offset: i64,
    ) -> Option<CompletedTransaction> {
        let entry = self.entry(producer_id, marker.producer_epoch);
        let completed = entry.current_txn_first_offset.take();
        entry.move_to_epoch(marker.producer_epoch);
        entry.coordinator_epoch = marker.coordinator_epoch;
        entry.last_timestamp_ms = entry.last_timestamp_ms.max(marker.timestamp_ms);
        let first_offset = completed?;
        self.ongoing.remove(&first_offset);
        Some(CompletedTransaction {
            producer_id,
            first_offset,
            last_offset: marker_offset,
            is_aborted: marker.control_type == ControlRecordType::Abort,
        })
    }

    /// The first offset of the earliest open transaction; `None` when none is open.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Whether `producer_id` has a transaction open in this partition.
    pub fn has_open_transaction(&self, producer_id: i64) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|entry| entry.current_txn_first_offset.is_some())
    }

    /// Every producer, for DescribeProducers, by producer id.
    pub fn summaries(&self) -> Vec<ProducerSummary> {
        let mut summaries: Vec<ProducerSummary> = self
            .producers
            .iter()
            .map(|(producer_id, entry)| ProducerSummary {
                producer_id: *producer_id,
                producer_epoch: entry.epoch,
                last_sequence: entry.batches.back().map_or(-1, |last| last.last_sequence),
                last_timestamp_ms: entry.last_timestamp_ms,
                coordinator_epoch: entry.coordinator_epoch,
                current_txn_start_offset: entry.current_txn_first_offset.unwrap_or(-1),
            })
            .collect();
        summaries.sort_by_key(|summary| summary.producer_id);
        summaries
    }

    /// Whether no producer is known.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The producer's entry, created at `epoch` (evicting an idle producer if the table is
    /// full), and marked as just used.
    fn entry(&mut self, producer_id: i64, epoch: i16) -> &mut ProducerEntry {
        self.clock += 1;
        if !self.producers.contains_key(&producer_id)
            && self.producers.len() >= MAX_PRODUCERS_PER_PARTITION
        {
            self.evict_least_recently_used();
        }
        let clock = self.clock;
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry::new(epoch));
        entry.last_used = clock;
        entry
    }

    fn evict_least_recently_used(&mut self) {
        let oldest = self
            .producers
            .iter()
            .filter(|(_, entry)| entry.current_txn_first_offset.is_none())
            .min_by_key(|(_, entry)| entry.last_used)
            .map(|(id, _)| *id);
        if let Some(id) = oldest {
            self.producers.remove(&id);
        }
    }
}

/// The fields of an end-transaction marker the table needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarkerFields {
    /// The epoch the coordinator wrote the marker with.
    pub producer_epoch: i16,
    /// Commit or abort.
    pub control_type: ControlRecordType,
    /// The coordinator's epoch.
    pub coordinator_epoch: i32,
    /// The marker's timestamp.
    pub timestamp_ms: i64,
}

/// The sequence rules of an idempotent producer's batch at its current or a newer epoch.
fn check_sequence(entry: &ProducerEntry, batch: &ProducerBatch) -> SequenceCheck {
    if batch.producer_epoch > entry.epoch {
        // A bumped epoch restarts the sequence.
        return if batch.base_sequence == 0 {
            SequenceCheck::Append
        } else {
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        };
    }
    if let Some(original) = entry.batches.iter().find(|remembered| {
        remembered.base_sequence == batch.base_sequence
            && remembered.last_sequence == batch.last_sequence
    }) {
        return SequenceCheck::Duplicate {
            base_offset: original.base_offset,
        };
    }
    let expected = entry
        .batches
        .back()
        .map_or(0, |last| next_sequence(last.last_sequence));
    if batch.base_sequence == expected {
        SequenceCheck::Append
    } else {
        SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
    }
}

/// Sequences wrap from i32::MAX to 0, as in Kafka.
fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

impl ProducerStateTable {
    /// The table as snapshot bytes. Layout, big-endian:
    /// ```text
    /// version u16 (1), producers_count u32, then per producer:
    ///   producer_id i64, epoch i16, coordinator_epoch i32, last_timestamp_ms i64,
    ///   current_txn_first_offset i64 (-1: none), batches_count u8,
    ///   batches_count x (base_sequence i32, last_sequence i32, base_offset i64)
    /// ```
    /// The log frames it with the offset it describes and a CRC.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let batches: usize = self.producers.values().map(|e| e.batches.len()).sum();
        let mut bytes = Vec::with_capacity(
            6 + self.producers.len() * SNAPSHOT_PRODUCER_BYTES + batches * SNAPSHOT_BATCH_BYTES,
        );
        bytes.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        let count = u32::try_from(self.producers.len()).expect("producers are bounded");
        bytes.extend_from_slice(&count.to_be_bytes());
        let mut producer_ids: Vec<&i64> = self.producers.keys().collect();
        producer_ids.sort();
        for producer_id in producer_ids {
            let entry = &self.producers[producer_id];
            bytes.extend_from_slice(&producer_id.to_be_bytes());
            bytes.extend_from_slice(&entry.epoch.to_be_bytes());
            bytes.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
            bytes.extend_from_slice(&entry.last_timestamp_ms.to_be_bytes());
            let first_offset = entry.current_txn_first_offset.unwrap_or(-1);
            bytes.extend_from_slice(&first_offset.to_be_bytes());
            let batches_count = u8::try_from(entry.batches.len()).expect("at most five batches");
            bytes.push(batches_count);
            for batch in &entry.batches {
                bytes.extend_from_slice(&batch.base_sequence.to_be_bytes());
                bytes.extend_from_slice(&batch.last_sequence.to_be_bytes());
                bytes.extend_from_slice(&batch.base_offset.to_be_bytes());
            }
        }
        bytes
    }

    /// Reads a table back from [`Self::encode_snapshot`]'s bytes.
    ///
    /// # Errors
    /// When the bytes are not a snapshot this code wrote; the caller rebuilds from the log.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<ProducerStateTable, SnapshotError> {
        let mut reader = SnapshotReader { bytes };
        let version = u16::from_be_bytes(reader.take()?);
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::UnknownVersion(version));
        }
        let count = u32::from_be_bytes(reader.take()?);
        let count = usize::try_from(count).map_err(|_| SnapshotError::Malformed("count"))?;
        if count > reader.bytes.len() / SNAPSHOT_PRODUCER_BYTES {
            return Err(SnapshotError::Malformed("more producers than bytes"));
        }
        let mut table = ProducerStateTable::default();
        for _ in 0..count {
            let producer_id = i64::from_be_bytes(reader.take()?);
            let entry = read_entry(&mut reader)?;
            if let Some(first_offset) = entry.current_txn_first_offset {
                table.ongoing.insert(first_offset, producer_id);
            }
            table.producers.insert(producer_id, entry);
        }
        if !reader.bytes.is_empty() {
            return Err(SnapshotError::Malformed("trailing bytes"));
        }
        Ok(table)
    }
}

fn read_entry(reader: &mut SnapshotReader<'_>) -> Result<ProducerEntry, SnapshotError> {
    let mut entry = ProducerEntry::new(i16::from_be_bytes(reader.take()?));
    entry.coordinator_epoch = i32::from_be_bytes(reader.take()?);
    entry.last_timestamp_ms = i64::from_be_bytes(reader.take()?);
    let first_offset = i64::from_be_bytes(reader.take()?);
    entry.current_txn_first_offset = (first_offset >= 0).then_some(first_offset);
    let [batches_count] = reader.take::<1>()?;
    if usize::from(batches_count) > REMEMBERED_BATCHES_PER_PRODUCER {
        return Err(SnapshotError::Malformed("too many remembered batches"));
    }
    for _ in 0..batches_count {
        entry.batches.push_back(RememberedBatch {
            base_sequence: i32::from_be_bytes(reader.take()?),
            last_sequence: i32::from_be_bytes(reader.take()?),
            base_offset: i64::from_be_bytes(reader.take()?),
        });
    }
    Ok(entry)
}

/// Takes fixed-size fields off the front of a snapshot.
struct SnapshotReader<'a> {
    bytes: &'a [u8],
}

impl SnapshotReader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let (field, rest) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or(SnapshotError::Malformed("ends early"))?;
        self.bytes = rest;
        Ok(*field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(epoch: i16, base: i32, last: i32) -> ProducerBatch {
        ProducerBatch {
            producer_id: 7,
            producer_epoch: epoch,
            base_sequence: base,
            last_sequence: last,
            is_transactional: false,
            max_timestamp_ms: 1_000,
        }
    }

    fn transactional(producer_id: i64, epoch: i16, base: i32, last: i32) -> ProducerBatch {
        ProducerBatch {
            producer_id,
            is_transactional: true,
            ..batch(epoch, base, last)
        }
    }

    fn marker(epoch: i16, control_type: ControlRecordType) -> TxnMarkerFields {
        TxnMarkerFields {
            producer_epoch: epoch,
            control_type,
            coordinator_epoch: 0,
            timestamp_ms: 2_000,
        }
    }

    const CLIENT: AppendOrigin = AppendOrigin::Client;

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut table = ProducerStateTable::default();
        assert_eq!(table.check(&batch(0, 0, 4), CLIENT), SequenceCheck::Append);
        table.record(&batch(0, 0, 4), CLIENT, 100);
        assert_eq!(table.check(&batch(0, 5, 9), CLIENT), SequenceCheck::Append);
        table.record(&batch(0, 5, 9), CLIENT, 105);
        assert_eq!(
            table.check(&batch(0, 0, 4), CLIENT),
            SequenceCheck::Duplicate { base_offset: 100 }
        );
        assert_eq!(
            table.check(&batch(0, 5, 9), CLIENT),
            SequenceCheck::Duplicate { base_offset: 105 }
        );
    }

    #[test]
    fn gaps_stale_epochs_and_unknown_producers_are_rejected() {
        let mut table = ProducerStateTable::default();
        assert_eq!(
            table.check(&batch(0, 3, 4), CLIENT),
            SequenceCheck::Reject(ErrorCode::UnknownProducerId)
        );
        table.record(&batch(1, 0, 0), CLIENT, 0);
        assert_eq!(
            table.check(&batch(1, 2, 2), CLIENT),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
        assert_eq!(
            table.check(&batch(0, 1, 1), CLIENT),
            SequenceCheck::Reject(ErrorCode::InvalidProducerEpoch)
        );
        assert_eq!(table.check(&batch(2, 0, 0), CLIENT), SequenceCheck::Append);
        assert_eq!(
            table.check(&batch(2, 1, 1), CLIENT),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
    }

    #[test]
    fn open_transactions_hold_the_first_unstable_offset_until_their_markers() {
        // Two producers open transactions at offsets 10 and 20; the first unstable offset
        // is the earlier one until its marker, then the later one, then none.
        let mut table = ProducerStateTable::default();
        table.record(&transactional(1, 0, 0, 1), CLIENT, 10);
        table.record(&transactional(2, 0, 0, 0), CLIENT, 20);
        table.record(&transactional(1, 0, 2, 2), CLIENT, 25);
        assert_eq!(table.first_unstable_offset(), Some(10));
        let committed = table.complete_transaction(1, marker(0, ControlRecordType::Commit), 30);
        assert_eq!(
            committed,
            Some(CompletedTransaction {
                producer_id: 1,
                first_offset: 10,
                last_offset: 30,
                is_aborted: false
            })
        );
        assert_eq!(table.first_unstable_offset(), Some(20));
        let aborted = table.complete_transaction(2, marker(0, ControlRecordType::Abort), 31);
        assert_eq!(aborted.map(|txn| txn.is_aborted), Some(true));
        assert_eq!(table.first_unstable_offset(), None);
        // A marker for a transaction that wrote nothing here ends nothing.
        assert_eq!(
            table.complete_transaction(3, marker(0, ControlRecordType::Commit), 32),
            None
        );
    }

    #[test]
    fn a_fencing_marker_refuses_the_zombie_and_restarts_sequences() {
        // The coordinator aborts with a bumped epoch: the old epoch's next batch is refused
        // and the new epoch starts again at sequence 0.
        let mut table = ProducerStateTable::default();
        table.record(&transactional(1, 4, 0, 9), CLIENT, 0);
        table.complete_transaction(1, marker(5, ControlRecordType::Abort), 10);
        assert_eq!(
            table.check(&transactional(1, 4, 10, 10), CLIENT),
            SequenceCheck::Reject(ErrorCode::InvalidProducerEpoch)
        );
        assert_eq!(
            table.check(&transactional(1, 5, 0, 0), CLIENT),
            SequenceCheck::Append
        );
    }

    #[test]
    fn an_open_transaction_admits_only_its_own_batches() {
        // While a transaction is open, a non-transactional batch of the same producer is
        // INVALID_TXN_STATE; a coordinator's batch skips the sequence check but not that.
        let mut table = ProducerStateTable::default();
        table.record(&transactional(1, 0, 0, 0), CLIENT, 0);
        let plain = ProducerBatch {
            producer_id: 1,
            ..batch(0, 1, 1)
        };
        assert_eq!(
            table.check(&plain, CLIENT),
            SequenceCheck::Reject(ErrorCode::InvalidTxnState)
        );
        let coordinator = ProducerBatch {
            base_sequence: NO_SEQUENCE,
            last_sequence: NO_SEQUENCE,
            ..transactional(1, 0, 0, 0)
        };
        assert_eq!(
            table.check(&coordinator, AppendOrigin::Coordinator),
            SequenceCheck::Append
        );
    }

    #[test]
    fn producers_with_open_transactions_are_never_evicted() {
        let mut table = ProducerStateTable::default();
        table.record(&transactional(0, 0, 0, 0), CLIENT, 0);
        for producer_id in 1..=i64::try_from(MAX_PRODUCERS_PER_PARTITION).expect("fits") {
            let idle = ProducerBatch {
                producer_id,
                ..batch(0, 0, 0)
            };
            table.record(&idle, CLIENT, producer_id);
        }
        assert_eq!(table.producers.len(), MAX_PRODUCERS_PER_PARTITION);
        assert!(table.has_open_transaction(0));
        assert_eq!(table.first_unstable_offset(), Some(0));
    }

    #[test]
    fn a_snapshot_round_trips_and_malformed_ones_are_refused() {
        let mut table = ProducerStateTable::default();
        table.record(&batch(3, 0, 4), CLIENT, 100);
        table.record(&transactional(9, 1, 0, 2), CLIENT, 105);
        table.complete_transaction(9, marker(1, ControlRecordType::Commit), 108);
        table.record(&transactional(9, 1, 3, 3), CLIENT, 109);
        let bytes = table.encode_snapshot();
        let decoded = ProducerStateTable::decode_snapshot(&bytes).expect("decodes");
        assert_eq!(decoded.summaries(), table.summaries());
        assert_eq!(decoded.first_unstable_offset(), Some(109));
        assert_eq!(
            decoded.check(&batch(3, 0, 4), CLIENT),
            SequenceCheck::Duplicate { base_offset: 100 }
        );
        for cut in [0, 1, 5, bytes.len() - 1] {
            assert!(ProducerStateTable::decode_snapshot(&bytes[..cut]).is_err());
        }
        let mut unknown = bytes.clone();
        unknown[1] = 9;
        assert_eq!(
            ProducerStateTable::decode_snapshot(&unknown),
            Err(SnapshotError::UnknownVersion(9))
        );
    }
}
