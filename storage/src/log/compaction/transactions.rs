//! What a compaction pass learns about transactions as it reads batches in offset order, and
//! what it may then remove (Kafka's `CleanedTransactionMetadata`).
//!
//! A pass starts from the aborted transactions the broker recorded for the offsets it reads
//! (`Log::aborted_transactions`) and follows each producer through the batches:
//!
//! - An aborted transaction is open from its first offset to its ABORT marker. A transactional
//!   data batch of its producer in between is aborted data. Any other transactional data batch
//!   belongs to a transaction that committed: the cleanable range ends before the first
//!   transaction still open, so every transaction in it is decided, and the broker records
//!   every abort.
//! - An ABORT marker may go once the pass read no batch of its aborted transaction; a COMMIT
//!   marker once the pass read no transactional data batch of its producer since that
//!   producer's previous marker. Batches the pass itself removes count as read, so a marker
//!   outlives the last of its data by at least one pass, and a consumer that read the data
//!   still finds the marker that tells it what became of it.
//!
//! # Costs
//!
//! The aborted transactions of the range read are held for the pass (32 bytes each, already
//! in memory in the segments' indexes), plus an entry per producer with a transaction open
//! at the pass's position.

use std::cmp::Reverse;
use std::collections::HashMap;

use crate::batch_header::BatchHeader;
use crate::format::AbortedTransaction;
use crate::record_codec::RecordSummary;

/// The type of a control record: the second `i16` of its key, `[version i16][type i16]`
/// (Kafka's `ControlRecordType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MarkerType {
    /// Type 0: ends an aborted transaction.
    Abort,
    /// Type 1: ends a committed transaction.
    Commit,
    /// Any other type (Kafka's Raft records), or a key too short or of a negative version to
    /// read one; such a batch is kept as it is.
    Other,
}

impl MarkerType {
    /// The type of a control batch, from its records; `None` if it has none.
    pub fn of(records: &[RecordSummary]) -> Option<MarkerType> {
        let record = records.first()?;
        let key = record.key.as_deref().unwrap_or_default();
        let (Some(&[v0, v1]), Some(&[t0, t1])) = (key.get(0..2), key.get(2..4)) else {
            return Some(MarkerType::Other);
        };
        if i16::from_be_bytes([v0, v1]) < 0 {
            return Some(MarkerType::Other);
        }
        Some(match i16::from_be_bytes([t0, t1]) {
            0 => MarkerType::Abort,
            1 => MarkerType::Commit,
            _ => MarkerType::Other,
        })
    }
}

/// What a pass may do with a marker it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MarkerFate {
    /// Data of its transaction was read in this pass, or it is not a transaction marker: it
    /// stays. `data_removed` if the pass removes all that data (aborted data always goes), so
    /// that the next pass may remove the marker.
    Kept {
        /// Whether the data read is aborted data.
        data_removed: bool,
    },
    /// No data of its transaction was read in this pass: it may go once it is past the
    /// delete horizon.
    Discardable,
}

/// The transactions a pass has read into so far; each phase of a pass has its own.
pub(super) struct TransactionTracker {
    /// Aborted transactions whose first offset the pass has not reached, the lowest last.
    pending: Vec<AbortedTransaction>,
    /// Producers in an aborted transaction at the pass's position, and whether a data batch
    /// of it was read.
    ongoing_aborted: HashMap<i64, bool>,
    /// Producers with a transactional data batch read since their previous marker, outside
    /// any aborted transaction (so in a committed one), and whether the pass kept any of it.
    ongoing_committed: HashMap<i64, bool>,
}

impl TransactionTracker {
    /// A tracker for a pass that reads the batches `aborted` was collected for, in order.
    pub fn new(mut aborted: Vec<AbortedTransaction>) -> TransactionTracker {
        aborted.sort_by_key(|entry| Reverse(entry.first_offset));
        TransactionTracker {
            pending: aborted,
            ongoing_aborted: HashMap::new(),
            ongoing_committed: HashMap::new(),
        }
    }

    /// Reads a data batch; returns whether it is aborted data.
    pub fn read_data(&mut self, header: &BatchHeader) -> bool {
        assert!(!header.is_control());
        self.reach(header.last_offset);
        if !header.is_transactional() {
            return false;
        }
        match self.ongoing_aborted.get_mut(&header.producer_id) {
            Some(data_read) => {
                *data_read = true;
                true
            }
            None => {
                self.ongoing_committed
                    .entry(header.producer_id)
                    .or_insert(false);
                false
            }
        }
    }

    /// Notes that the pass keeps (some records of) the committed data batch it just read, so
    /// that its marker is not expected to go in the next pass.
    pub fn keep_data(&mut self, header: &BatchHeader) {
        if let Some(kept) = self.ongoing_committed.get_mut(&header.producer_id) {
            *kept = true;
        }
    }

    /// Reads a control batch of `marker_type` (`None` if it has no record left, which Kafka's
    /// cleaner leaves behind and which may go) and returns its fate.
    pub fn read_marker(
        &mut self,
        header: &BatchHeader,
        marker_type: Option<MarkerType>,
    ) -> MarkerFate {
        assert!(header.is_control());
        self.reach(header.last_offset);
        let producer_id = header.producer_id;
        match marker_type {
            None => MarkerFate::Discardable,
            Some(MarkerType::Abort) => match self.ongoing_aborted.remove(&producer_id) {
                // Aborted data read is aborted data removed.
                Some(true) => MarkerFate::Kept { data_removed: true },
                Some(false) | None => MarkerFate::Discardable,
            },
            Some(MarkerType::Commit) => match self.ongoing_committed.remove(&producer_id) {
                Some(data_kept) => MarkerFate::Kept {
                    data_removed: !data_kept,
                },
                None => MarkerFate::Discardable,
            },
            Some(MarkerType::Other) => MarkerFate::Kept {
                data_removed: false,
            },
        }
    }

    /// Opens the aborted transactions whose first offset is at or below `offset`. A producer
    /// has one transaction at a time, so one already open stays as it is.
    fn reach(&mut self, offset: i64) {
        while let Some(next) = self.pending.pop_if(|next| next.first_offset <= offset) {
            self.ongoing_aborted
                .entry(next.producer_id)
                .or_insert(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(base_offset: i64, producer_id: i64, attributes: i16) -> BatchHeader {
        BatchHeader {
            base_offset,
            last_offset: base_offset,
            size_bytes: 100,
            partition_leader_epoch: 0,
            crc: 0,
            attributes,
            last_offset_delta: 0,
            base_timestamp_ms: 0,
            max_timestamp_ms: 0,
            producer_id,
            producer_epoch: 0,
            base_sequence: 0,
            records_count: 1,
        }
    }

    fn data(offset: i64, producer_id: i64) -> BatchHeader {
        header(
            offset,
            producer_id,
            crate::batch_header::TRANSACTIONAL_ATTRIBUTE_BIT,
        )
    }

    fn marker(offset: i64, producer_id: i64) -> BatchHeader {
        let attributes = crate::batch_header::TRANSACTIONAL_ATTRIBUTE_BIT
            | crate::batch_header::CONTROL_ATTRIBUTE_BIT;
        header(offset, producer_id, attributes)
    }

    fn key_record(key: &[u8]) -> RecordSummary {
        RecordSummary {
            offset: 0,
            key: Some(key.to_vec()),
            is_tombstone: false,
            timestamp_ms: 0,
        }
    }

    /// Producer 1 aborts at 0..=3 while producer 2 commits at 1..=4, interleaved: 1's data is
    /// aborted, 2's is not, and both markers stay for the data read; a second pass over the
    /// markers alone lets both go. A non-transactional batch is never aborted.
    #[test]
    fn interleaved_transactions_are_told_apart() {
        let aborted = AbortedTransaction {
            producer_id: 1,
            first_offset: 0,
            last_offset: 3,
            last_stable_offset: 1,
        };
        let mut tracker = TransactionTracker::new(vec![aborted]);
        assert!(tracker.read_data(&data(0, 1)));
        assert!(!tracker.read_data(&data(1, 2)));
        tracker.keep_data(&data(1, 2));
        assert!(!tracker.read_data(&header(2, 1, 0)), "not transactional");
        let abort = tracker.read_marker(&marker(3, 1), Some(MarkerType::Abort));
        assert_eq!(abort, MarkerFate::Kept { data_removed: true });
        let commit = tracker.read_marker(&marker(4, 2), Some(MarkerType::Commit));
        assert_eq!(
            commit,
            MarkerFate::Kept {
                data_removed: false
            }
        );
        assert!(
            !tracker.read_data(&data(5, 1)),
            "1's next transaction committed"
        );
        let commit = tracker.read_marker(&marker(6, 1), Some(MarkerType::Commit));
        let none_kept = MarkerFate::Kept { data_removed: true };
        assert_eq!(commit, none_kept, "none of 1's committed data was kept");

        let mut next_pass = TransactionTracker::new(vec![aborted]);
        let abort = next_pass.read_marker(&marker(3, 1), Some(MarkerType::Abort));
        assert_eq!(abort, MarkerFate::Discardable);
        let commit = next_pass.read_marker(&marker(4, 2), Some(MarkerType::Commit));
        assert_eq!(commit, MarkerFate::Discardable);
        let other = next_pass.read_marker(&marker(5, 2), Some(MarkerType::Other));
        assert_eq!(
            other,
            MarkerFate::Kept {
                data_removed: false
            }
        );
        assert_eq!(
            next_pass.read_marker(&marker(6, 2), None),
            MarkerFate::Discardable
        );
    }

    /// A control record's type is the second `i16` of its key; anything unreadable is
    /// `Other`, and a batch with no record has none.
    #[test]
    fn marker_type_reads_the_key() {
        let of = |key: &[u8]| MarkerType::of(&[key_record(key)]);
        assert_eq!(of(&[0, 0, 0, 0]), Some(MarkerType::Abort));
        assert_eq!(of(&[0, 0, 0, 1]), Some(MarkerType::Commit));
        assert_eq!(
            of(&[0, 1, 0, 1, 9]),
            Some(MarkerType::Commit),
            "a later version"
        );
        assert_eq!(of(&[0, 0, 0, 2]), Some(MarkerType::Other));
        assert_eq!(
            of(&[0xff, 0xff, 0, 0]),
            Some(MarkerType::Other),
            "negative version"
        );
        assert_eq!(of(&[0, 0, 0]), Some(MarkerType::Other));
        assert_eq!(MarkerType::of(&[]), None);
    }
}
