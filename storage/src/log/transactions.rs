//! What storage keeps of Kafka transactions: the aborted transactions, for read_committed
//! fetches and the log cleaner, and the broker's producer state snapshots.
//!
//! The broker owns transactions: it writes the markers, tracks open transactions and the last
//! stable offset, and tells the log about each abort with `add_aborted_transaction` once its
//! marker is appended. Each entry goes to the transaction index of the segment holding the
//! marker (`transaction_index.rs`), as in Kafka, so it is deleted with that segment.
//!
//! After a crash, entries that were not yet durable are gone, and storage cannot rebuild
//! them: that needs the producer state. The broker restores its newest snapshot
//! (`read_producer_snapshot`), replays the batches after it, and offers the aborts it finds
//! again; entries the log already has are skipped. For that to be enough, a snapshot is
//! written only once every entry below its offset is durable (`write_producer_snapshot`).

use std::sync::{Arc, MutexGuard};

use tracing::debug;

use super::{AppendState, Log};
use crate::error::StorageError;
use crate::format::AbortedTransaction;
use crate::lock_policy::{MutexRecover, RwLockRecover};
use crate::producer_snapshot::{
    MAX_PRODUCER_SNAPSHOT_PAYLOAD_BYTES, ProducerSnapshot, read_newest_producer_snapshot,
    write_producer_snapshot,
};

impl Log {
    /// Records an aborted transaction whose ABORT marker the broker just appended at
    /// `aborted.last_offset`. Idempotent: an entry whose marker is at or below the last one
    /// recorded is skipped, so the broker may replay markers after a restart; and one whose
    /// marker lies below every segment (deleted since) has nowhere to go and is skipped too.
    ///
    /// The entry is in the page cache, not yet durable: `flush`, the roll that seals its
    /// segment, a producer snapshot past it, and closing the log make it so. An entry for a
    /// sealed segment (a roll came first, or a replay) is fsynced at once, since nothing
    /// syncs a sealed segment again.
    ///
    /// # Panics
    /// If `first_offset > last_offset`, or the marker is at or past `next_offset`.
    pub fn add_aborted_transaction(&self, aborted: AbortedTransaction) -> Result<(), StorageError> {
        assert!(
            aborted.first_offset <= aborted.last_offset,
            "aborted transaction starts after its marker"
        );
        let (_maintenance, mut state) = self.lock_for_aborted(aborted.last_offset);
        assert!(
            aborted.last_offset < self.next_offset(),
            "aborted transaction marker past the end of the log"
        );
        if state
            .last_aborted_offset
            .is_some_and(|last| aborted.last_offset <= last)
        {
            return Ok(());
        }
        let Some(segment) = self.segment_holding(aborted.last_offset) else {
            debug!(topic_partition = %self.topic_partition, ?aborted,
                "skipping an aborted transaction whose marker was deleted");
            return Ok(());
        };
        let index = segment.transaction_index();
        // A retry after a failed fsync below finds its entry written already (an append
        // would assert): it only syncs.
        if index.entry_at(aborted.last_offset).is_none() {
            index.append(aborted)?;
        }
        if !Arc::ptr_eq(&segment, &state.active) {
            index.sync()?;
        }
        state.last_aborted_offset = Some(aborted.last_offset);
        Ok(())
    }

    /// The append lock, and the maintenance lock too if the marker at `last_offset` is in a
    /// sealed segment, which a compaction swap or a deletion may be replacing: with both, the
    /// entry lands in the segment the list holds, and a swap that began before notices it
    /// (see `compaction.rs`). The common case, a marker in the active segment, takes the
    /// append lock only; a roll between the check and the lock sends it round once more, to
    /// take the locks in order.
    fn lock_for_aborted(
        &self,
        last_offset: i64,
    ) -> (Option<MutexGuard<'_, ()>>, MutexGuard<'_, AppendState>) {
        let mut in_sealed = last_offset < self.active_segment().base_offset();
        loop {
            let maintenance = in_sealed.then(|| self.maintenance.lock_or_recover());
            let state = self.append.lock_or_recover();
            if maintenance.is_some() || last_offset >= state.active.base_offset() {
                return (maintenance, state);
            }
            in_sealed = true;
        }
    }

    /// The aborted transactions a read from `start_offset` up to `upper_bound_offset` needs,
    /// as Kafka's `collectAbortedTransactions` returns them: every entry with `last_offset >=
    /// start_offset` and `first_offset < upper_bound_offset`, in marker order, looking from the
    /// segment holding `start_offset` on (a marker follows its transaction's data), and
    /// stopping after the first entry whose `last_stable_offset >= upper_bound_offset`: every
    /// transaction that touches the range was decided before that one.
    ///
    /// For read_committed fetches: no file I/O (the entries are in memory) and no lock the
    /// appender holds for more than a push; a binary search in the first segment, then one
    /// comparison per entry returned.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for entries kept on disk.
    pub fn aborted_transactions(
        &self,
        start_offset: i64,
        upper_bound_offset: i64,
    ) -> Result<Vec<AbortedTransaction>, StorageError> {
        let segments = self.segments.read_or_recover();
        let first_base_offset = segments
            .range(..=start_offset)
            .next_back()
            .map_or(i64::MIN, |(base_offset, _)| *base_offset);
        let mut found = Vec::new();
        for segment in segments
            .range(first_base_offset..)
            .map(|(_, segment)| segment)
        {
            let index = segment.transaction_index();
            if index.collect(start_offset, upper_bound_offset, &mut found) {
                break;
            }
        }
        Ok(found)
    }

    /// Writes the broker's producer state as of `offset` (it covers every batch below) as
    /// `<offset>.snapshot`, replacing older snapshots. First makes everything below `offset`
    /// durable, batches and aborted transactions, if it is not yet: after a crash the log
    /// must still reach the snapshot, and hold every abort the broker will not replay.
    ///
    /// # Errors
    /// `SnapshotTooLarge` if `payload` is larger than `MAX_PRODUCER_SNAPSHOT_PAYLOAD_BYTES`;
    /// `Io` if an fsync or the write fails, in which case the previous snapshot stays.
    ///
    /// # Panics
    /// If `offset` is negative or past `next_offset`.
    pub fn write_producer_snapshot(&self, offset: i64, payload: &[u8]) -> Result<(), StorageError> {
        assert!(offset >= 0, "negative snapshot offset");
        assert!(
            offset <= self.next_offset(),
            "producer snapshot past the end of the log"
        );
        if payload.len() > MAX_PRODUCER_SNAPSHOT_PAYLOAD_BYTES {
            return Err(StorageError::SnapshotTooLarge {
                topic_partition: self.topic_partition.clone(),
                payload_bytes: payload.len(),
                max_bytes: MAX_PRODUCER_SNAPSHOT_PAYLOAD_BYTES,
            });
        }
        let _snapshots = self.producer_snapshots.lock_or_recover();
        self.make_durable_below(offset)?;
        write_producer_snapshot(&self.partition_dir, offset, payload)?;
        debug!(topic_partition = %self.topic_partition, offset,
            payload_bytes = payload.len(), "wrote a producer snapshot");
        Ok(())
    }

    /// The newest producer snapshot, `None` if there is none.
    ///
    /// # Errors
    /// `CorruptCheckpoint` if the newest snapshot does not parse or fails its CRC; the broker
    /// then rebuilds its state from the whole log.
    pub fn read_producer_snapshot(&self) -> Result<Option<ProducerSnapshot>, StorageError> {
        let _snapshots = self.producer_snapshots.lock_or_recover();
        read_newest_producer_snapshot(&self.partition_dir)
    }

    /// Fsyncs the active segment if batches below `offset` may not be durable yet, and its
    /// transaction index if it has entries that are not. Sealed segments were fsynced, index
    /// and all, when they were sealed. Unlike `flush`, no msync of the offset and time
    /// indexes: recovery rebuilds those, and a snapshot does not need them.
    fn make_durable_below(&self, offset: i64) -> Result<(), StorageError> {
        let mut sync = self.sync.lock_or_recover();
        if offset > sync.synced_next_offset {
            self.sync_active(&mut sync)?;
        }
        // A roll since `sync_active` sealed (and fsynced) the segment it synced.
        self.active_segment().transaction_index().sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogConfig;
    use crate::data_dir::DataDir;
    use crate::lock_policy::MutexRecover;
    use crate::test_batch::{ControlType, control_batch, keyed_batch, transactional_batch};

    /// An abort whose entry reached a sealed segment's index but whose fsync failed is
    /// offered again (the broker reloads its producer state and replays the marker); the
    /// retry syncs the entry instead of appending it twice, which would panic.
    #[test]
    fn an_abort_retried_after_a_failed_sync_is_not_appended_twice() {
        let dir = tempfile::Builder::new()
            .prefix("an_abort_retried_after_a_failed_sync_is_not_appended_twice")
            .tempdir()
            .expect("temp dir");
        let data_dir = DataDir::open(dir.path()).expect("open data dir");
        let log = data_dir
            .open_log("orders", 0, LogConfig::default())
            .expect("open log");
        let record = [(Some(&b"key"[..]), Some(&b"value"[..]))];
        log.append(&transactional_batch(9, &record, 1_000), 0)
            .expect("append");
        log.append(&control_batch(9, ControlType::Abort, 1_000), 0)
            .expect("append");
        let mut state = log.append.lock_or_recover();
        log.roll(&mut state, &log.config()).expect("roll");
        drop(state);
        log.append(&keyed_batch(&record, 1_000), 0).expect("append");
        let aborted = AbortedTransaction {
            producer_id: 9,
            first_offset: 0,
            last_offset: 1,
            last_stable_offset: 2,
        };
        // What a call whose fsync failed leaves: the entry in the sealed segment's index,
        // and not recorded as the last one added.
        let sealed = log.segment_holding(1).expect("the sealed segment");
        sealed.transaction_index().append(aborted).expect("written");

        log.add_aborted_transaction(aborted).expect("retried");
        let found = log.aborted_transactions(0, i64::MAX).expect("aborted");
        assert_eq!(found, [aborted]);
    }
}
