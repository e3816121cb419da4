//! One transactional id's state machine, as Kafka's transaction coordinator runs it: plain
//! data and decisions, no I/O and no clock (callers pass `now_ms`).
//!
//! ```text
//!            InitProducerId             AddPartitionsToTxn / AddOffsetsToTxn
//!   (new) ─────────────────▶ Empty ─────────────────────────▶ Ongoing
//!                              ▲                                 │ EndTxn, or the timeout,
//!                              │ InitProducerId                  │ or a new producer (fence)
//!                              │                                 ▼
//!               CompleteCommit / CompleteAbort ◀── markers ── PrepareCommit / PrepareAbort
//! ```
//!
//! Each decision (`prepare_*`) returns the metadata to move to; the coordinator makes it
//! durable in `__transaction_state` first and only then applies it, marking the transaction
//! `pending` meanwhile so that concurrent requests get CONCURRENT_TRANSACTIONS.

use std::collections::BTreeSet;

use riffle_protocol::ErrorCode;

/// Kafka's "no producer epoch".
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// Kafka's "no producer id".
pub const NO_PRODUCER_ID: i64 = -1;

/// Where a transaction is, with Kafka's numbering (the `transaction_status` of
/// `__transaction_state` records) and names (ListTransactions, DescribeTransactions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionState {
    /// A producer id and epoch, no transaction open.
    Empty,
    /// Partitions added; records may be written.
    Ongoing,
    /// Commit decided and durable; markers being written.
    PrepareCommit,
    /// Abort decided and durable; markers being written.
    PrepareAbort,
    /// Committed; every marker written.
    CompleteCommit,
    /// Aborted; every marker written.
    CompleteAbort,
    /// Expired; about to be forgotten.
    Dead,
    /// Kafka's transient state while it fences a producer; never written here.
    PrepareEpochFence,
}

/// Every state, in Kafka's numbering.
const STATES: [TransactionState; 8] = [
    TransactionState::Empty,
    TransactionState::Ongoing,
    TransactionState::PrepareCommit,
    TransactionState::PrepareAbort,
    TransactionState::CompleteCommit,
    TransactionState::CompleteAbort,
    TransactionState::Dead,
    TransactionState::PrepareEpochFence,
];

impl TransactionState {
    /// Kafka's number for the state.
    pub fn id(self) -> i8 {
        match self {
            TransactionState::Empty => 0,
            TransactionState::Ongoing => 1,
            TransactionState::PrepareCommit => 2,
            TransactionState::PrepareAbort => 3,
            TransactionState::CompleteCommit => 4,
            TransactionState::CompleteAbort => 5,
            TransactionState::Dead => 6,
            TransactionState::PrepareEpochFence => 7,
        }
    }

    /// The state with Kafka's number `id`.
    pub fn from_id(id: i8) -> Option<TransactionState> {
        STATES.into_iter().find(|state| state.id() == id)
    }

    /// Kafka's name for the state, as the admin APIs show it.
    pub fn name(self) -> &'static str {
        match self {
            TransactionState::Empty => "Empty",
            TransactionState::Ongoing => "Ongoing",
            TransactionState::PrepareCommit => "PrepareCommit",
            TransactionState::PrepareAbort => "PrepareAbort",
            TransactionState::CompleteCommit => "CompleteCommit",
            TransactionState::CompleteAbort => "CompleteAbort",
            TransactionState::Dead => "Dead",
            TransactionState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The state Kafka names `name`.
    pub fn from_name(name: &str) -> Option<TransactionState> {
        STATES.into_iter().find(|state| state.name() == name)
    }

    /// Whether markers are being written: the decision is durable, the transaction not done.
    pub fn is_prepared(self) -> bool {
        matches!(
            self,
            TransactionState::PrepareCommit | TransactionState::PrepareAbort
        )
    }
}

/// What InitProducerId decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitDecision {
    /// Move to this (Empty) state and answer its producer id and epoch.
    Bump(TransactionMetadata),
    /// A transaction is open: fence its producer by aborting it with a bumped epoch (this
    /// PrepareAbort state), then decide again.
    FenceAndAbort(TransactionMetadata),
}

/// One transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionMetadata {
    /// The id.
    pub transactional_id: String,
    /// The producer id it is mapped to.
    pub producer_id: i64,
    /// The current epoch; older ones are fenced.
    pub producer_epoch: i16,
    /// The epoch before InitProducerId last bumped it, so a retry of that call by the same
    /// producer (KIP-360) gets the same answer instead of fencing itself; -1 if none. Kept in
    /// memory only, as Kafka's version-0 records do not carry it.
    pub last_producer_epoch: i16,
    /// The producer's `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// Where the transaction is.
    pub state: TransactionState,
    /// The partitions of the open transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the open transaction added its first partition, -1 if none is open.
    pub start_timestamp_ms: i64,
    /// When the state last changed.
    pub last_update_timestamp_ms: i64,
    /// The state a durable write in progress is taking this transaction to.
    pub pending: Option<TransactionState>,
}

impl TransactionMetadata {
    /// A transactional id seen for the first time: a fresh producer id, no epoch yet.
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        TransactionMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TransactionState::Empty,
            partitions: BTreeSet::new(),
            start_timestamp_ms: -1,
            last_update_timestamp_ms: now_ms,
            pending: None,
        }
    }

    /// Kafka never hands out `i16::MAX`, so it can always fence the last epoch it gave.
    pub fn is_epoch_exhausted(epoch: i16) -> bool {
        epoch >= i16::MAX - 1
    }

    /// InitProducerId: a bumped epoch for the producer (or a new producer id when the epochs
    /// are exhausted), after fencing any open transaction. `expected` is the producer id and
    /// epoch a v3+ request carries; `new_producer_id` allocates one.
    ///
    /// # Errors
    /// PRODUCER_FENCED for an expected id or epoch that is not this producer's;
    /// CONCURRENT_TRANSACTIONS while markers are being written; the allocator's error.
    pub fn prepare_init_producer_id(
        &self,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        new_producer_id: impl FnOnce() -> Result<i64, ErrorCode>,
        now_ms: i64,
    ) -> Result<InitDecision, ErrorCode> {
        if let Some((producer_id, _)) = expected {
            // Kafka's rule: a just-created id, this producer's id, or a retry after the
            // previous id's epochs ran out.
            let valid = self.producer_epoch == NO_PRODUCER_EPOCH || producer_id == self.producer_id;
            if !valid {
                return Err(ErrorCode::ProducerFenced);
            }
        }
        match self.state {
            TransactionState::PrepareCommit | TransactionState::PrepareAbort => {
                Err(ErrorCode::ConcurrentTransactions)
            }
            TransactionState::Ongoing => Ok(InitDecision::FenceAndAbort(
                self.prepare_fence_and_abort(now_ms),
            )),
            _ => {
                let rotate = Self::is_epoch_exhausted(self.producer_epoch)
                    && expected.is_none_or(|(_, epoch)| epoch == self.producer_epoch);
                if rotate {
                    let producer_id = new_producer_id()?;
                    let last_epoch = match expected {
                        Some(_) => self.producer_epoch,
                        None => NO_PRODUCER_EPOCH,
                    };
                    return Ok(InitDecision::Bump(self.empty_at(
                        producer_id,
                        0,
                        last_epoch,
                        timeout_ms,
                        now_ms,
                    )));
                }
                let expected_epoch = expected.map(|(_, epoch)| epoch);
                self.prepare_increment_epoch(timeout_ms, expected_epoch, now_ms)
                    .map(InitDecision::Bump)
            }
        }
    }

    fn prepare_increment_epoch(
        &self,
        timeout_ms: i32,
        expected_epoch: Option<i16>,
        now_ms: i64,
    ) -> Result<TransactionMetadata, ErrorCode> {
        let bumped = self.producer_epoch + 1;
        let (epoch, last_epoch) = match expected_epoch {
            None => (bumped, NO_PRODUCER_EPOCH),
            Some(expected)
                if self.producer_epoch == NO_PRODUCER_EPOCH || expected == self.producer_epoch =>
            {
                (bumped, self.producer_epoch)
            }
            // A retry of a bump whose answer the producer never got: the same answer.
            Some(expected) if expected == self.last_producer_epoch => {
                (self.producer_epoch, self.last_producer_epoch)
            }
            Some(_) => return Err(ErrorCode::ProducerFenced),
        };
        Ok(self.empty_at(self.producer_id, epoch, last_epoch, timeout_ms, now_ms))
    }

    fn empty_at(
        &self,
        producer_id: i64,
        epoch: i16,
        last_epoch: i16,
        timeout_ms: i32,
        now_ms: i64,
    ) -> TransactionMetadata {
        TransactionMetadata {
            producer_id,
            producer_epoch: epoch,
            last_producer_epoch: last_epoch,
            timeout_ms,
            state: TransactionState::Empty,
            partitions: BTreeSet::new(),
            start_timestamp_ms: -1,
            last_update_timestamp_ms: now_ms,
            pending: None,
            ..self.clone()
        }
    }

    /// The open transaction aborted with a bumped epoch, so its producer's later requests
    /// and batches are fenced: what a new producer with this id, and the timeout, do.
    pub fn prepare_fence_and_abort(&self, now_ms: i64) -> TransactionMetadata {
        assert_eq!(self.state, TransactionState::Ongoing);
        // An exhausted epoch (i16::MAX - 1) may still be fenced once, to i16::MAX.
        let epoch = self.producer_epoch.saturating_add(1);
        TransactionMetadata {
            producer_epoch: epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            state: TransactionState::PrepareAbort,
            last_update_timestamp_ms: now_ms,
            pending: None,
            ..self.clone()
        }
    }

    /// Checks that a request comes from this id's current producer.
    ///
    /// # Errors
    /// INVALID_PRODUCER_ID_MAPPING for another producer id, PRODUCER_FENCED for another epoch.
    pub fn check_producer(&self, producer_id: i64, producer_epoch: i16) -> Result<(), ErrorCode> {
        if producer_id != self.producer_id {
            Err(ErrorCode::InvalidProducerIdMapping)
        } else if producer_epoch != self.producer_epoch {
            Err(ErrorCode::ProducerFenced)
        } else {
            Ok(())
        }
    }

    /// AddPartitionsToTxn and AddOffsetsToTxn: the transaction with `partitions` added,
    /// started now if none was open; `None` if they are all in it already.
    ///
    /// # Errors
    /// As [`Self::check_producer`]; CONCURRENT_TRANSACTIONS while markers are written.
    pub fn prepare_add_partitions(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<Option<TransactionMetadata>, ErrorCode> {
        self.check_producer(producer_id, producer_epoch)?;
        match self.state {
            TransactionState::PrepareCommit | TransactionState::PrepareAbort => {
                return Err(ErrorCode::ConcurrentTransactions);
            }
            TransactionState::Ongoing
                if partitions
                    .iter()
                    .all(|added| self.partitions.contains(added)) =>
            {
                return Ok(None);
            }
            _ => {}
        }
        let start_timestamp_ms = match self.state {
            TransactionState::Ongoing => self.start_timestamp_ms,
            _ => now_ms,
        };
        let mut added = self.partitions.clone();
        added.extend(partitions.iter().cloned());
        Ok(Some(TransactionMetadata {
            state: TransactionState::Ongoing,
            partitions: added,
            start_timestamp_ms,
            last_update_timestamp_ms: now_ms,
            pending: None,
            ..self.clone()
        }))
    }

    /// EndTxn from the producer: PrepareCommit or PrepareAbort; `None` when the transaction
    /// already ended the way asked (a retry).
    ///
    /// # Errors
    /// As [`Self::check_producer`]; INVALID_TXN_STATE for an end that does not match the
    /// state (nothing open, or the other outcome); CONCURRENT_TRANSACTIONS while markers of
    /// the same outcome are still being written.
    pub fn prepare_end(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<Option<TransactionMetadata>, ErrorCode> {
        self.check_producer(producer_id, producer_epoch)?;
        let (prepared, completed) = if commit {
            (
                TransactionState::PrepareCommit,
                TransactionState::CompleteCommit,
            )
        } else {
            (
                TransactionState::PrepareAbort,
                TransactionState::CompleteAbort,
            )
        };
        match self.state {
            TransactionState::Ongoing => Ok(Some(TransactionMetadata {
                state: prepared,
                last_update_timestamp_ms: now_ms,
                pending: None,
                ..self.clone()
            })),
            state if state == completed => Ok(None),
            state if state == prepared => Err(ErrorCode::ConcurrentTransactions),
            _ => Err(ErrorCode::InvalidTxnState),
        }
    }

    /// The transaction done, once every marker is written.
    pub fn prepare_complete(&self, now_ms: i64) -> TransactionMetadata {
        let state = match self.state {
            TransactionState::PrepareCommit => TransactionState::CompleteCommit,
            TransactionState::PrepareAbort => TransactionState::CompleteAbort,
            other => panic!("completing a transaction in state {other:?}"),
        };
        TransactionMetadata {
            state,
            partitions: BTreeSet::new(),
            last_update_timestamp_ms: now_ms,
            pending: None,
            ..self.clone()
        }
    }

    /// Whether an open transaction has run past its timeout at `now_ms`.
    pub fn has_timed_out(&self, now_ms: i64) -> bool {
        self.state == TransactionState::Ongoing
            && self.pending.is_none()
            && now_ms
                > self
                    .start_timestamp_ms
                    .saturating_add(i64::from(self.timeout_ms))
    }
}

/// The code an API answers at `version` for `code`: before `first_fenced_version`, the
/// version that added PRODUCER_FENCED (KIP-588), clients know fencing only as
/// INVALID_PRODUCER_EPOCH, as Kafka answers them.
pub fn error_for_version(code: ErrorCode, version: i16, first_fenced_version: i16) -> ErrorCode {
    if code == ErrorCode::ProducerFenced && version < first_fenced_version {
        ErrorCode::InvalidProducerEpoch
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000;

    fn initialised() -> TransactionMetadata {
        let new = TransactionMetadata::new("t", 7, 60_000, 0);
        match new.prepare_init_producer_id(60_000, None, || Ok(99), NOW) {
            Ok(InitDecision::Bump(metadata)) => metadata,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn ongoing() -> TransactionMetadata {
        let partitions = [("a".to_string(), 0)];
        initialised()
            .prepare_add_partitions(7, 0, &partitions, NOW)
            .expect("added")
            .expect("a change")
    }

    #[test]
    fn a_new_id_starts_at_epoch_zero_and_each_init_bumps_it() {
        let first = initialised();
        assert_eq!((first.producer_id, first.producer_epoch), (7, 0));
        assert_eq!(first.state, TransactionState::Empty);
        let Ok(InitDecision::Bump(second)) =
            first.prepare_init_producer_id(60_000, None, || Ok(99), NOW)
        else {
            panic!("a bump");
        };
        assert_eq!((second.producer_id, second.producer_epoch), (7, 1));
    }

    #[test]
    fn a_retried_init_with_the_previous_epoch_gets_the_same_answer() {
        // KIP-360: InitProducerId v3 with (7, 0) bumps to 1; the same request again (the
        // answer was lost) gets 1 again, while a stale epoch is fenced.
        let first = initialised();
        let Ok(InitDecision::Bump(bumped)) =
            first.prepare_init_producer_id(60_000, Some((7, 0)), || Ok(99), NOW)
        else {
            panic!("a bump");
        };
        assert_eq!((bumped.producer_epoch, bumped.last_producer_epoch), (1, 0));
        let Ok(InitDecision::Bump(retried)) =
            bumped.prepare_init_producer_id(60_000, Some((7, 0)), || Ok(99), NOW)
        else {
            panic!("the same answer");
        };
        assert_eq!(retried.producer_epoch, 1);
        let stale = bumped.prepare_init_producer_id(60_000, Some((7, 5)), || Ok(99), NOW);
        assert_eq!(stale, Err(ErrorCode::ProducerFenced));
        let foreign = bumped.prepare_init_producer_id(60_000, Some((8, 1)), || Ok(99), NOW);
        assert_eq!(foreign, Err(ErrorCode::ProducerFenced));
    }

    #[test]
    fn exhausted_epochs_move_to_a_new_producer_id() {
        let mut tired = initialised();
        tired.producer_epoch = i16::MAX - 1;
        let Ok(InitDecision::Bump(rotated)) =
            tired.prepare_init_producer_id(60_000, None, || Ok(99), NOW)
        else {
            panic!("a rotation");
        };
        assert_eq!((rotated.producer_id, rotated.producer_epoch), (99, 0));
    }

    #[test]
    fn init_during_a_transaction_fences_it_with_an_abort_at_a_bumped_epoch() {
        let open = ongoing();
        let Ok(InitDecision::FenceAndAbort(fenced)) =
            open.prepare_init_producer_id(60_000, None, || Ok(99), NOW)
        else {
            panic!("a fence");
        };
        assert_eq!(fenced.state, TransactionState::PrepareAbort);
        assert_eq!(fenced.producer_epoch, 1);
        assert_eq!(fenced.partitions, open.partitions);
        let mut committing = open.clone();
        committing.state = TransactionState::PrepareCommit;
        assert_eq!(
            committing.prepare_init_producer_id(60_000, None, || Ok(99), NOW),
            Err(ErrorCode::ConcurrentTransactions)
        );
    }

    #[test]
    fn adding_partitions_opens_the_transaction_once_and_checks_the_producer() {
        let open = ongoing();
        assert_eq!(open.state, TransactionState::Ongoing);
        assert_eq!(open.start_timestamp_ms, NOW);
        let again = open.prepare_add_partitions(7, 0, &[("a".into(), 0)], NOW + 5);
        assert_eq!(again, Ok(None));
        let more = open
            .prepare_add_partitions(7, 0, &[("b".into(), 3)], NOW + 5)
            .expect("added")
            .expect("a change");
        assert_eq!(more.start_timestamp_ms, NOW);
        assert_eq!(more.partitions.len(), 2);
        assert_eq!(
            open.prepare_add_partitions(8, 0, &[("b".into(), 3)], NOW),
            Err(ErrorCode::InvalidProducerIdMapping)
        );
        assert_eq!(
            open.prepare_add_partitions(7, 1, &[("b".into(), 3)], NOW),
            Err(ErrorCode::ProducerFenced)
        );
    }

    #[test]
    fn end_moves_to_prepare_and_complete_and_retries_are_recognised() {
        let open = ongoing();
        let prepared = open
            .prepare_end(7, 0, true, NOW)
            .expect("ok")
            .expect("a change");
        assert_eq!(prepared.state, TransactionState::PrepareCommit);
        assert_eq!(
            prepared.prepare_end(7, 0, true, NOW),
            Err(ErrorCode::ConcurrentTransactions)
        );
        assert_eq!(
            prepared.prepare_end(7, 0, false, NOW),
            Err(ErrorCode::InvalidTxnState)
        );
        let done = prepared.prepare_complete(NOW);
        assert_eq!(done.state, TransactionState::CompleteCommit);
        assert!(done.partitions.is_empty());
        assert_eq!(done.prepare_end(7, 0, true, NOW), Ok(None));
        assert_eq!(
            done.prepare_end(7, 0, false, NOW),
            Err(ErrorCode::InvalidTxnState)
        );
        assert_eq!(
            initialised().prepare_end(7, 0, true, NOW),
            Err(ErrorCode::InvalidTxnState)
        );
        assert_eq!(
            open.prepare_end(7, 3, true, NOW),
            Err(ErrorCode::ProducerFenced)
        );
    }

    #[test]
    fn a_transaction_times_out_only_while_open_past_its_timeout() {
        let open = ongoing();
        assert!(!open.has_timed_out(NOW + 60_000));
        assert!(open.has_timed_out(NOW + 60_001));
        assert!(!initialised().has_timed_out(NOW + 1_000_000));
    }

    #[test]
    fn states_round_trip_through_kafkas_numbers_and_names() {
        for state in STATES {
            assert_eq!(TransactionState::from_id(state.id()), Some(state));
            assert_eq!(TransactionState::from_name(state.name()), Some(state));
        }
        assert_eq!(TransactionState::from_id(8), None);
    }
}
