//! Idempotent-producer bookkeeping for one partition: a plain state machine, no I/O.
//!
//! For each producer id we keep its epoch and the sequence range and offsets of its last
//! few batches (Kafka keeps five, matching `max.in.flight.requests.per.connection`), so
//! a retried batch is recognised and answered with its original offset instead of being
//! appended twice.

use std::collections::{HashMap, VecDeque};

use riffle_protocol::ErrorCode;

/// How many recent batches per producer are remembered for duplicate detection.
pub const REMEMBERED_BATCHES_PER_PRODUCER: usize = 5;
/// How many producers one partition tracks before forgetting the least recently used.
pub const MAX_PRODUCERS_PER_PARTITION: usize = 10_000;

/// The idempotence fields of an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSequence {
    /// The producer id (>= 0 for idempotent producers).
    pub producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
    /// The first record's sequence number.
    pub base_sequence: i32,
    /// The last record's sequence number.
    pub last_sequence: i32,
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

#[derive(Debug, Clone, Copy)]
struct RememberedBatch {
    base_sequence: i32,
    last_sequence: i32,
    base_offset: i64,
}

#[derive(Debug, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<RememberedBatch>,
    last_used: u64,
}

/// Every idempotent producer that wrote to one partition.
#[derive(Debug, Default)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
    clock: u64,
    /// Whether the table was rebuilt from the log since the broker started. Until then
    /// it knows nothing of batches written before a restart.
    rebuilt: bool,
}

impl ProducerStateTable {
    /// Whether [`Self::mark_rebuilt`] was called.
    pub fn is_rebuilt(&self) -> bool {
        self.rebuilt
    }

    /// Records that the table now reflects the log's tail.
    pub fn mark_rebuilt(&mut self) {
        self.rebuilt = true;
    }

    /// Decides whether a batch is new, a duplicate, or out of order.
    pub fn check(&self, batch: BatchSequence) -> SequenceCheck {
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            // No state: a brand-new producer starts at 0. Any other sequence means we lost
            // (or never had) its state, which Kafka reports as UNKNOWN_PRODUCER_ID so the
            // client can reset rather than treat it as a gap.
            return if batch.base_sequence == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::Reject(ErrorCode::UnknownProducerId)
            };
        };
        if batch.producer_epoch < entry.epoch {
            return SequenceCheck::Reject(ErrorCode::InvalidProducerEpoch);
        }
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

    /// Records a batch that was appended at `base_offset`.
    pub fn record(&mut self, batch: BatchSequence, base_offset: i64) {
        self.clock += 1;
        if !self.producers.contains_key(&batch.producer_id)
            && self.producers.len() >= MAX_PRODUCERS_PER_PARTITION
        {
            self.evict_least_recently_used();
        }
        let entry = self.producers.entry(batch.producer_id).or_default();
        if batch.producer_epoch != entry.epoch {
            entry.epoch = batch.producer_epoch;
            entry.batches.clear();
        }
        entry.last_used = self.clock;
        entry.batches.push_back(RememberedBatch {
            base_sequence: batch.base_sequence,
            last_sequence: batch.last_sequence,
            base_offset,
        });
        if entry.batches.len() > REMEMBERED_BATCHES_PER_PRODUCER {
            entry.batches.pop_front();
        }
    }

    fn evict_least_recently_used(&mut self) {
        let oldest = self
            .producers
            .iter()
            .min_by_key(|(_, entry)| entry.last_used)
            .map(|(id, _)| *id);
        if let Some(id) = oldest {
            self.producers.remove(&id);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(epoch: i16, base: i32, last: i32) -> BatchSequence {
        BatchSequence {
            producer_id: 7,
            producer_epoch: epoch,
            base_sequence: base,
            last_sequence: last,
        }
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut table = ProducerStateTable::default();
        assert_eq!(table.check(batch(0, 0, 4)), SequenceCheck::Append);
        table.record(batch(0, 0, 4), 100);
        assert_eq!(table.check(batch(0, 5, 9)), SequenceCheck::Append);
        table.record(batch(0, 5, 9), 105);
        assert_eq!(
            table.check(batch(0, 0, 4)),
            SequenceCheck::Duplicate { base_offset: 100 }
        );
        assert_eq!(
            table.check(batch(0, 5, 9)),
            SequenceCheck::Duplicate { base_offset: 105 }
        );
    }

    #[test]
    fn gaps_stale_epochs_and_unknown_producers_are_rejected() {
        let mut table = ProducerStateTable::default();
        assert_eq!(
            table.check(batch(0, 3, 4)),
            SequenceCheck::Reject(ErrorCode::UnknownProducerId)
        );
        table.record(batch(1, 0, 0), 0);
        assert_eq!(
            table.check(batch(1, 2, 2)),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
        assert_eq!(
            table.check(batch(0, 1, 1)),
            SequenceCheck::Reject(ErrorCode::InvalidProducerEpoch)
        );
        assert_eq!(table.check(batch(2, 0, 0)), SequenceCheck::Append);
        assert_eq!(
            table.check(batch(2, 1, 1)),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
    }
}
