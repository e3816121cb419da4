//! Log compaction (`cleanup.policy=compact`): keeping the latest record of each key.
//!
//! # A pass
//!
//! `Log::compact` runs one pass over one log, as Kafka's cleaner does:
//!
//! 1. **Cleanable segments.** The sealed segments, up to the first one holding a batch
//!    younger than `min_compaction_lag_ms` or any offset at or past the first unstable
//!    offset (the broker's first offset of a transaction still open), as Kafka bounds its
//!    cleanable range: the cleaner must know how every transaction it sees ended. The active
//!    segment is never cleaned, so appends never wait for the cleaner.
//! 2. **Map.** From the cleaner checkpoint (where the previous pass stopped mapping) to the
//!    end of the cleanable segments, each key's latest offset goes into a [`KeyMap`] of at
//!    most `max_compaction_map_entries` keys. If it fills up, mapping stops before the batch
//!    that does not fit: that batch's base offset is the *cleaned end*; otherwise the cleaned
//!    end is the end of the cleanable segments. Control batches (transaction markers) and
//!    aborted data are not mapped (see *Transactions*).
//! 3. **Clean.** The cleanable segments below the cleaned end are rewritten, in groups of
//!    neighbours whose bytes fit one segment (`segment_bytes`) and whose offsets fit one
//!    index, each group into one new segment named after its first (Kafka's
//!    `groupSegmentsBySize`; a lone segment from which nothing is removed is left alone). A
//!    record is removed if a later record of its key was mapped, or if it is a tombstone
//!    whose batch's max timestamp is more than `delete_retention_ms` before `now_ms` (Kafka
//!    instead counts from the pass that first cleaned the tombstone, which needs state kept
//!    per batch). Keyless records and the records of batches at or past the cleaned end are
//!    kept. Aborted data and markers follow the rules of *Transactions*, wherever they are.
//!    A kept batch keeps its base and last offset (see `RecordCodec::retain`), so the log
//!    gets gaps, which reads and recovery accept. The new segment's transaction index holds
//!    the entries of the ABORT markers it keeps, and only those: an entry lives with its
//!    marker.
//! 4. **Checkpoint** the cleaned end in `cleaner-offset-checkpoint`.
//!
//! Below the checkpoint, a record whose key the map lacks is kept: every earlier pass kept
//! only the latest record of each key up to where it mapped. A tombstone removed there had
//! all earlier records of its key removed by the pass that first mapped it, so the key stays
//! deleted.
//!
//! A pass returns at once, as Kafka's cleaner skips a log, unless the dirty part (the
//! cleanable segments past the checkpoint) is more than `min_cleanable_dirty_ratio` of the
//! cleanable bytes, or its oldest first batch is older than `max_compaction_lag_ms`, or a
//! tombstone or marker the previous pass kept may have expired since. That time is kept in
//! memory only, so the first pass after the log opens always runs.
//!
//! # Transactions
//!
//! Kafka's rules (`LogCleaner`, `CleanedTransactionMetadata`), for the same reasons. Each
//! pass reads its batches in offset order with the aborted transactions that touch them
//! (`Log::aborted_transactions`), and follows every producer through its transactions
//! (`compaction/transactions.rs`):
//!
//! - **Aborted data is never mapped, and is removed whole.** A read_committed consumer never
//!   sees it, so it must not become a key's latest record: `__consumer_offsets` is compacted
//!   and gets transactional offset commits, and an aborted commit mapped as the latest would
//!   make the pass remove the committed offset before it. Nothing of it is worth keeping, so
//!   it goes whole, as in Kafka.
//! - **Committed transactional data is ordinary data**, mapped and compacted like the rest.
//!   That every transactional batch not inside a recorded abort committed holds because the
//!   cleanable range ends before the first unstable offset, and the broker records each abort
//!   (`Log::add_aborted_transaction`) before its last stable offset moves past it.
//! - **Markers are never mapped.** A marker stays while the pass reads any data of its
//!   transaction (for a COMMIT, a transactional batch of its producer since its previous
//!   marker; for an ABORT, a batch of the aborted transaction, even one this pass removes),
//!   since a consumer reading that data needs the marker to know how it ended. Once none is
//!   left, it goes when its batch is past the same horizon as tombstones, so that a consumer
//!   that read the data before it was removed still finds the marker. A control batch of any
//!   other type is kept.
//!
//! Unlike Kafka, the pass keeps no batch for the sake of producer state (Kafka keeps each
//! active producer's last batch, emptied, so that rebuilding the state from the log finds its
//! epoch and sequence): the broker's producer snapshots carry that state instead.
//!
//! # The swap, and crashes
//!
//! A group's new segment is written as `<base>.log.cleaned` (and `.index.cleaned`,
//! `.timeindex.cleaned`, `.txnindex.cleaned`, the last even if empty), fsynced with its
//! directory. Then, holding the `maintenance` lock so that retention and DeleteRecords
//! cannot delete the group meanwhile, nor `add_aborted_transaction` add an entry to one of
//! its segments (a group they changed since the pass began is skipped):
//!
//! 1. the index files are renamed to `.swap`, then the `.log`, and the directory is fsynced:
//!    a durable `<base>.log.swap` is the commit point;
//! 2. the group's segments after the first are deleted, in offset order;
//! 3. the `.swap` files are renamed over the first segment's files, the `.log` last, and the
//!    directory is fsynced;
//! 4. the group's segments are replaced by the new one in the segment list, under its write
//!    lock. A reader already holding an old segment reads it to the end from the unlinked
//!    file; `Log::read` notices a segment replaced under it and looks again.
//!
//! On start-up, recovery deletes `.cleaned` files and index `.swap` files without a
//! `.log.swap`, which undoes a swap that did not commit; and finishes a committed one: it
//! deletes the segments whose base offsets lie after the swap's base and below the end of
//! its batches, then renames the `.swap` files into place (without a `.txnindex.swap`, the
//! new `.txnindex` is already in place: the cleaner always writes one, and renames it before
//! the `.log`). Each segment is thus old or new.
//! After a crash in step 2, a group segment at or past the end of the new segment's batches
//! may survive as it was; all its records were removed by the pass, so they are older
//! versions of keys updated later, or keys deleted by a tombstone later in the log, which
//! survives too (group segments are deleted in offset order, and groups are swapped in
//! offset order); or aborted data, whose marker is later, so it survives too, with its
//! transaction index entry. A later pass removes them again; nothing is lost and nothing
//! deleted comes back as current.
//!
//! A failure before the commit point removes the new files and leaves the log as it was.
//! After it, this `Log` stops compacting (`CompactionHalted`) and the next open finishes the
//! swap.

mod transactions;

use std::sync::Arc;
use std::time::SystemTime;

use tracing::{debug, warn};

use super::Log;
use crate::batch_header::BatchHeader;
use crate::checkpoint::{read_cleaner_offset, write_cleaner_offset};
use crate::cleaned_segment::CleanedSegment;
use crate::config::{CleanerConfig, LogConfig};
use crate::error::StorageError;
use crate::key_map::KeyMap;
use crate::lock_policy::{MutexRecover, RwLockRecover};
use crate::record_codec::{RecordCodec, RecordSummary};
use crate::segment::{Segment, SegmentBatches, StoredBatch};
use transactions::{MarkerFate, MarkerType, TransactionTracker};

/// What one compaction pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompactionOutcome {
    /// Segments replaced by cleaned ones; neighbours merged into one count one each.
    pub segments_cleaned: usize,
    /// Bytes of batches in the replaced segments.
    pub bytes_before: u64,
    /// Bytes of batches in the segments that replaced them.
    pub bytes_after: u64,
    /// Records removed from the replaced segments.
    pub records_removed: u64,
}

/// The cleaner's memory of one log, guarded by `Log::compaction`.
pub(super) struct CompactionState {
    /// Offsets below this were mapped by an earlier pass; `None` until the checkpoint file is
    /// read by the first pass.
    cleaner_offset: Option<i64>,
    /// The earliest `now_ms` at which a tombstone or a transaction marker kept by the last
    /// pass may be removed.
    next_expiry_ms: i64,
    /// Set while a swap is staged and not yet in the segment list, and left set if it failed
    /// (or panicked) after its commit point; see `StorageError::CompactionHalted`.
    halted: bool,
}

impl CompactionState {
    pub(super) fn new() -> CompactionState {
        CompactionState {
            cleaner_offset: None,
            next_expiry_ms: i64::MIN,
            halted: false,
        }
    }
}

/// A sealed segment and the offset its successor starts at.
struct SealedSegment {
    segment: Arc<Segment>,
    end_offset: i64,
    /// Entries in its transaction index when the pass began. An entry added since (a marker
    /// replayed into a sealed segment) would not be in the cleaned segment, so the swap checks
    /// this first.
    aborted_transactions_count: usize,
}

impl Log {
    /// Runs one compaction pass (see the module doc): keeps, in the sealed segments below
    /// `first_unstable_offset`, only the latest record of each key, the tombstones younger
    /// than `delete_retention_ms`, no aborted data, and the markers whose data is left or
    /// that are younger than that; then swaps the cleaned segments in. The broker calls this
    /// only for topics whose `cleanup.policy` includes `compact`, from a background thread: a
    /// pass reads and writes whole segments. Appends and reads go on meanwhile; retention and
    /// DeleteRecords wait only for each swap.
    ///
    /// `first_unstable_offset` is the first offset of the earliest transaction still open,
    /// or the high watermark if none is. Every abort below it must be recorded already
    /// (`add_aborted_transaction` returned): the pass takes any other transactional data
    /// there for committed.
    ///
    /// # Errors
    /// `UnreadableRecords` if `codec` fails on a batch, `CorruptSegment` for a bad batch on
    /// disk, `Io`; the segments swapped in before stay. `CompactionHalted` after a swap that
    /// failed part-way, until the log is reopened.
    pub fn compact(
        &self,
        now_ms: i64,
        codec: &dyn RecordCodec,
        cleaner: &CleanerConfig,
        first_unstable_offset: i64,
    ) -> Result<CompactionOutcome, StorageError> {
        let mut state = self.compaction.lock_or_recover();
        if state.halted {
            return Err(StorageError::CompactionHalted {
                topic_partition: self.topic_partition.clone(),
            });
        }
        let config = self.config();
        let cleaner_offset = self.cleaner_offset(&mut state);
        let cleanable = self.cleanable_segments(&config, now_ms, first_unstable_offset);
        let first_dirty = cleanable
            .iter()
            .position(|sealed| sealed.end_offset > cleaner_offset);
        // A tombstone or marker kept by the last pass may expire whatever the dirty part is.
        let expiry_due = now_ms >= state.next_expiry_ms;
        let due = match first_dirty {
            Some(first) => expiry_due || dirty_enough(&cleanable, first, &config, now_ms)?,
            None => expiry_due,
        };
        if !due {
            return Ok(CompactionOutcome::default());
        }
        let mut map = KeyMap::new(cleaner.max_compaction_map_entries);
        let cleaned_end_offset = match first_dirty {
            Some(first) => {
                let dirty = &cleanable[first..];
                let mut transactions = self.transaction_tracker(dirty, cleaner_offset)?;
                map_keys(dirty, cleaner_offset, codec, &mut map, &mut transactions)?
            }
            None => cleaner_offset,
        };
        let cleaned_count = cleanable
            .iter()
            .take_while(|sealed| sealed.segment.base_offset() < cleaned_end_offset)
            .count();
        let cleaned = &cleanable[..cleaned_count];
        let cleaned_start_offset = cleaned
            .first()
            .map_or(0, |first| first.segment.base_offset());
        let mut rules = PassRules {
            codec,
            map,
            transactions: self.transaction_tracker(cleaned, cleaned_start_offset)?,
            cleaned_end_offset,
            delete_horizon_ms: now_ms.saturating_sub(config.delete_retention_ms),
            delete_retention_ms: config.delete_retention_ms,
            next_expiry_ms: i64::MAX,
        };
        let mut outcome = CompactionOutcome::default();
        for group in group_segments(cleaned, &config) {
            self.clean_group(&mut state, group, &config, &mut rules, &mut outcome)?;
        }
        state.next_expiry_ms = rules.next_expiry_ms;
        if cleaned_end_offset > cleaner_offset {
            write_cleaner_offset(&self.partition_dir, cleaned_end_offset)?;
            state.cleaner_offset = Some(cleaned_end_offset);
        }
        debug!(topic_partition = %self.topic_partition, cleaned_end_offset,
            keys_count = rules.map.len(), ?outcome, "compacted");
        Ok(outcome)
    }

    /// Where mapping starts: the checkpointed offset, read on the first pass, moved up to the
    /// log start, or reset to the log start if it is past the end of the log (a log emptied
    /// by recovery). A checkpoint that cannot be read only costs a pass from the log start.
    fn cleaner_offset(&self, state: &mut CompactionState) -> i64 {
        let stored = state.cleaner_offset.or_else(|| {
            read_cleaner_offset(&self.partition_dir).unwrap_or_else(|error| {
                warn!(topic_partition = %self.topic_partition, %error,
                    "ignoring the cleaner checkpoint; the next pass maps the whole log");
                None
            })
        });
        let log_start_offset = self.log_start_offset();
        let offset = stored
            .filter(|offset| *offset <= self.next_offset())
            .map_or(log_start_offset, |offset| offset.max(log_start_offset));
        state.cleaner_offset = Some(offset);
        offset
    }

    /// A tracker of the transactions in `segments` (neighbours), for a pass that reads them
    /// in order from the batch holding `start_offset`, with the aborted transactions that
    /// touch that range.
    fn transaction_tracker(
        &self,
        segments: &[SealedSegment],
        start_offset: i64,
    ) -> Result<TransactionTracker, StorageError> {
        let aborted = match segments.last() {
            Some(last) => self.aborted_transactions(start_offset, last.end_offset)?,
            None => Vec::new(),
        };
        Ok(TransactionTracker::new(aborted))
    }

    /// The sealed segments, oldest first, up to the first that holds an offset at or past
    /// `first_unstable_offset` or whose newest batch is younger than `min_compaction_lag_ms`
    /// (a segment without timestamps is old enough).
    fn cleanable_segments(
        &self,
        config: &LogConfig,
        now_ms: i64,
        first_unstable_offset: i64,
    ) -> Vec<SealedSegment> {
        let segments = self.segments_snapshot();
        let mut sealed: Vec<SealedSegment> = segments
            .windows(2)
            .map(|pair| SealedSegment {
                segment: Arc::clone(&pair[0]),
                end_offset: pair[1].base_offset(),
                aborted_transactions_count: pair[0].transaction_index().entries_count(),
            })
            .take_while(|sealed| sealed.end_offset <= first_unstable_offset)
            .collect();
        if config.min_compaction_lag_ms > 0 {
            let newest_allowed_ms = now_ms.saturating_sub(config.min_compaction_lag_ms);
            let old_enough = |sealed: &SealedSegment| {
                let max = sealed.segment.max_timestamp();
                max.is_none_or(|max| max.timestamp_ms <= newest_allowed_ms)
            };
            let cleanable_count = sealed
                .iter()
                .take_while(|sealed| old_enough(sealed))
                .count();
            sealed.truncate(cleanable_count);
        }
        sealed
    }

    /// Writes the cleaned segment for `group` and swaps it in, adding to `outcome`.
    fn clean_group(
        &self,
        state: &mut CompactionState,
        group: &[SealedSegment],
        config: &LogConfig,
        rules: &mut PassRules<'_>,
        outcome: &mut CompactionOutcome,
    ) -> Result<(), StorageError> {
        let base_offset = group[0].segment.base_offset();
        let mut cleaned = CleanedSegment::create(&self.partition_dir, base_offset, config)?;
        let records_removed = match write_cleaned(group, rules, &mut cleaned) {
            Ok(written) if !written.changed && group.len() == 1 => {
                cleaned.discard();
                return Ok(());
            }
            Ok(written) => written.records_removed,
            Err(error) => {
                cleaned.discard();
                return Err(error);
            }
        };
        if let Err(error) = last_modified(group).and_then(|modified| cleaned.finish(modified)) {
            cleaned.discard();
            return Err(error);
        }
        #[cfg(test)]
        crate::fault::reached_swap_step(crate::fault::SwapStep::CleanedWritten);
        let bytes_after = cleaned.size_bytes();
        if !self.swap(state, group, cleaned)? {
            return Ok(());
        }
        outcome.segments_cleaned += group.len();
        outcome.bytes_before += group
            .iter()
            .map(|sealed| sealed.segment.bytes_written())
            .sum::<u64>();
        outcome.bytes_after += bytes_after;
        outcome.records_removed += records_removed;
        Ok(())
    }

    /// Swaps `cleaned` in for `group` (see the module doc). Returns false, having dropped
    /// `cleaned`, if retention or DeleteRecords deleted part of the group first.
    fn swap(
        &self,
        state: &mut CompactionState,
        group: &[SealedSegment],
        mut cleaned: CleanedSegment,
    ) -> Result<bool, StorageError> {
        let _maintenance = self.maintenance.lock_or_recover();
        if !self.all_listed(group) {
            debug!(topic_partition = %self.topic_partition,
                base_offset = group[0].segment.base_offset(),
                "skipping a cleaned segment: what it replaces changed since it was cleaned");
            cleaned.discard();
            return Ok(false);
        }
        // Halted until the list holds the new segment: a panic from here on (the lock it
        // poisons is recovered) must not let a later pass stage over a committed swap.
        state.halted = true;
        if let Err(error) = cleaned.stage() {
            cleaned.discard();
            state.halted = false;
            return Err(error);
        }
        #[cfg(test)]
        crate::fault::reached_swap_step(crate::fault::SwapStep::Committed);
        let new = Arc::new(finish_swap(group, cleaned)?);
        let mut segments = self.segments_mut();
        // Checked before the first removal, so a failed check leaves the list whole.
        for old in group {
            let listed = segments.get(&old.segment.base_offset());
            assert!(listed.is_some_and(|listed| Arc::ptr_eq(listed, &old.segment)));
        }
        for old in group {
            segments.remove(&old.segment.base_offset());
        }
        segments.insert(new.base_offset(), new);
        state.halted = false;
        Ok(true)
    }

    /// Whether every segment of `group` is still in the segment list, with no aborted
    /// transaction added since the pass began. Called under the maintenance lock, which an
    /// add to a sealed segment takes too, so neither can change before the swap is done.
    fn all_listed(&self, group: &[SealedSegment]) -> bool {
        let segments = self.segments.read_or_recover();
        group.iter().all(|old| {
            let listed = segments.get(&old.segment.base_offset());
            let entries_count = old.segment.transaction_index().entries_count();
            listed.is_some_and(|listed| Arc::ptr_eq(listed, &old.segment))
                && entries_count == old.aborted_transactions_count
        })
    }
}

/// Whether the dirty part of `cleanable`, from `first_dirty` on, is worth a pass: more than
/// `min_cleanable_dirty_ratio` of the cleanable bytes (Kafka's `cleanableRatio`), or holding
/// a first batch older than `max_compaction_lag_ms` (Kafka's `maxCompactionDelay`).
///
/// # Errors
/// `CorruptSegment` or `Io` reading a dirty segment's first batch.
fn dirty_enough(
    cleanable: &[SealedSegment],
    first_dirty: usize,
    config: &LogConfig,
    now_ms: i64,
) -> Result<bool, StorageError> {
    let (clean, dirty) = cleanable.split_at(first_dirty);
    let bytes = |segments: &[SealedSegment]| {
        segments
            .iter()
            .map(|sealed| sealed.segment.bytes_written())
            .sum::<u64>()
    };
    let dirty_bytes = bytes(dirty);
    if dirty_bytes == 0 {
        return Ok(false);
    }
    // Byte counts of one log fit an f64's 53-bit mantissa with room to spare.
    let dirty_ratio = dirty_bytes as f64 / (bytes(clean) + dirty_bytes) as f64;
    if dirty_ratio > config.min_cleanable_dirty_ratio {
        return Ok(true);
    }
    if config.max_compaction_lag_ms == i64::MAX {
        return Ok(false);
    }
    let clean_until_ms = now_ms.saturating_sub(config.max_compaction_lag_ms.max(0));
    for sealed in dirty {
        let first_batch = sealed.segment.batches().next_batch()?;
        // Kafka skips batches without a timestamp (-1) here, as we do.
        if let Some(batch) = first_batch
            && batch.header.max_timestamp_ms > 0
            && batch.header.max_timestamp_ms < clean_until_ms
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The next batch of `sealed`, checked to end before the next segment starts: a segment
/// that overlaps its successor on disk is corrupt, and must not be merged with it.
fn next_batch_within(
    sealed: &SealedSegment,
    batches: &mut SegmentBatches<'_>,
) -> Result<Option<StoredBatch>, StorageError> {
    let batch = batches.next_batch()?;
    if let Some(batch) = &batch
        && batch.header.last_offset >= sealed.end_offset
    {
        return Err(StorageError::CorruptSegment {
            path: sealed.segment.log_path().to_path_buf(),
            position: batch.position,
            reason: "batch reaches into the next segment's offsets",
        });
    }
    Ok(batch)
}

/// Maps the keys of the batches in `dirty` from `cleaner_offset` on, until `map` is full.
/// Returns the cleaned end: the base offset of the first batch left out, or the end of
/// `dirty`. Control batches and aborted data are not mapped.
fn map_keys(
    dirty: &[SealedSegment],
    cleaner_offset: i64,
    codec: &dyn RecordCodec,
    map: &mut KeyMap,
    transactions: &mut TransactionTracker,
) -> Result<i64, StorageError> {
    for sealed in dirty {
        let mut batches = sealed.segment.batches();
        while let Some(batch) = next_batch_within(sealed, &mut batches)? {
            let header = &batch.header;
            if header.last_offset < cleaner_offset {
                continue;
            }
            if header.is_control() {
                let records = records_of(codec, &sealed.segment, &batch)?;
                transactions.read_marker(header, MarkerType::of(&records));
                continue;
            }
            if transactions.read_data(header) {
                continue;
            }
            let records = records_of(codec, &sealed.segment, &batch)?;
            if !map.has_room_for(records.len()) {
                return Ok(header.base_offset);
            }
            for record in &records {
                if let Some(key) = &record.key {
                    map.insert(key, record.offset);
                }
            }
        }
    }
    Ok(dirty
        .last()
        .map_or(cleaner_offset, |sealed| sealed.end_offset))
}

/// Splits the segments to clean into groups, each to become one segment: neighbours whose
/// bytes together fit `segment_bytes` and whose offsets fit one index (relative offsets are
/// `u32`). A segment larger than that is a group on its own.
fn group_segments<'a>(
    segments: &'a [SealedSegment],
    config: &LogConfig,
) -> Vec<&'a [SealedSegment]> {
    let max_bytes = config.effective_segment_bytes();
    let mut groups = Vec::new();
    let mut rest = segments;
    while let Some(first) = rest.first() {
        let base_offset = first.segment.base_offset();
        let mut group_bytes = first.segment.bytes_written();
        let mut group_len = 1;
        while let Some(next) = rest.get(group_len) {
            let bytes = group_bytes + next.segment.bytes_written();
            let offsets_fit = next.end_offset - 1 - base_offset <= i64::from(u32::MAX);
            if bytes > max_bytes || !offsets_fit {
                break;
            }
            group_bytes = bytes;
            group_len += 1;
        }
        let (group, after) = rest.split_at(group_len);
        groups.push(group);
        rest = after;
    }
    groups
}

/// What `write_cleaned` did to a group.
struct WrittenGroup {
    records_removed: u64,
    /// Whether any batch was dropped or rewritten.
    changed: bool,
}

/// Writes the kept batches of `group` into `cleaned`.
fn write_cleaned(
    group: &[SealedSegment],
    rules: &mut PassRules<'_>,
    cleaned: &mut CleanedSegment,
) -> Result<WrittenGroup, StorageError> {
    let mut written = WrittenGroup {
        records_removed: 0,
        changed: false,
    };
    for sealed in group {
        let mut batches = sealed.segment.batches();
        while let Some(batch) = next_batch_within(sealed, &mut batches)? {
            let kept = rules.clean_batch(&sealed.segment, &batch)?;
            written.records_removed += kept.records_removed;
            written.changed |= !matches!(kept.rewritten, Rewrite::Unchanged);
            match kept.rewritten {
                Rewrite::Unchanged => {
                    cleaned.append(&batch.header, &batch.bytes)?;
                    keep_aborted_transaction(&sealed.segment, &batch.header, cleaned)?;
                }
                Rewrite::Dropped => {}
                Rewrite::Retained(header, bytes) => cleaned.append(&header, &bytes)?,
            }
        }
    }
    Ok(written)
}

/// Copies the entry of the ABORT marker just kept whole, if `header` is one, into the cleaned
/// segment's transaction index: an entry lives with its marker. Entries of markers not kept,
/// or of offsets that hold no marker, are left behind.
fn keep_aborted_transaction(
    segment: &Segment,
    header: &BatchHeader,
    cleaned: &mut CleanedSegment,
) -> Result<(), StorageError> {
    if !header.is_control() {
        return Ok(());
    }
    match segment.transaction_index().entry_at(header.last_offset) {
        Some(aborted) => cleaned.add_aborted_transaction(aborted),
        None => Ok(()),
    }
}

/// Finishes a committed swap: deletes the group's later segments, oldest first, and
/// installs the new segment's files (steps 2 and 3 of the module doc).
fn finish_swap(
    group: &[SealedSegment],
    mut cleaned: CleanedSegment,
) -> Result<Segment, StorageError> {
    for old in group.iter().skip(1) {
        old.segment.delete_files()?;
        #[cfg(test)]
        crate::fault::reached_swap_step(crate::fault::SwapStep::FirstOldSegmentDeleted);
    }
    cleaned.install()?;
    #[cfg(test)]
    crate::fault::reached_swap_step(crate::fault::SwapStep::Installed);
    Ok(cleaned.into_segment())
}

/// The newest modification time among `group`'s `.log` files.
fn last_modified(group: &[SealedSegment]) -> Result<SystemTime, StorageError> {
    let mut newest = SystemTime::UNIX_EPOCH;
    for sealed in group {
        newest = newest.max(sealed.segment.last_modified()?);
    }
    Ok(newest)
}

/// What a pass decides each record by, and what it learns on the way.
struct PassRules<'a> {
    codec: &'a dyn RecordCodec,
    map: KeyMap,
    /// The transactions of the batches cleaned so far, read in order.
    transactions: TransactionTracker,
    /// Batches from this offset on were not mapped: their records are kept, though aborted
    /// data and markers follow the transaction rules wherever they are.
    cleaned_end_offset: i64,
    /// Tombstones and discardable markers in batches whose max timestamp is below this are
    /// removed.
    delete_horizon_ms: i64,
    delete_retention_ms: i64,
    /// The earliest time at which a tombstone or marker kept so far may be removed.
    next_expiry_ms: i64,
}

/// One batch as the cleaned segment gets it.
struct CleanedBatch {
    rewritten: Rewrite,
    records_removed: u64,
}

impl CleanedBatch {
    const UNCHANGED: CleanedBatch = CleanedBatch {
        rewritten: Rewrite::Unchanged,
        records_removed: 0,
    };
}

enum Rewrite {
    /// Every record is kept: the stored bytes are copied.
    Unchanged,
    /// No record is kept.
    Dropped,
    /// Some records are kept: the codec's rewrite and its header.
    Retained(BatchHeader, Vec<u8>),
}

impl PassRules<'_> {
    /// Decides what stays of `batch`: markers and aborted data by the transaction rules, other
    /// data by its keys.
    fn clean_batch(
        &mut self,
        segment: &Segment,
        batch: &StoredBatch,
    ) -> Result<CleanedBatch, StorageError> {
        let header = &batch.header;
        if header.is_control() {
            return self.clean_marker(segment, batch);
        }
        if self.transactions.read_data(header) {
            let records_removed = u64::try_from(header.records_count).unwrap_or(0);
            return Ok(CleanedBatch {
                rewritten: Rewrite::Dropped,
                records_removed,
            });
        }
        let cleaned = self.clean_records(segment, batch)?;
        if !matches!(cleaned.rewritten, Rewrite::Dropped) {
            self.transactions.keep_data(header);
        }
        Ok(cleaned)
    }

    /// Decides which records of the data batch `batch` to keep by their keys, and rewrites
    /// it if that is some of them.
    fn clean_records(
        &mut self,
        segment: &Segment,
        batch: &StoredBatch,
    ) -> Result<CleanedBatch, StorageError> {
        let header = &batch.header;
        if header.base_offset >= self.cleaned_end_offset {
            return Ok(CleanedBatch::UNCHANGED);
        }
        let records = records_of(self.codec, segment, batch)?;
        let tombstones_expired = header.max_timestamp_ms < self.delete_horizon_ms;
        let mut kept_offsets: Vec<i64> = Vec::with_capacity(records.len());
        for record in &records {
            if self.keeps(record, tombstones_expired) {
                kept_offsets.push(record.offset);
                if record.is_tombstone {
                    self.note_expiry(header);
                }
            }
        }
        let records_removed =
            u64::try_from(records.len() - kept_offsets.len()).expect("a count fits u64");
        let rewritten = if records_removed == 0 {
            Rewrite::Unchanged
        } else if kept_offsets.is_empty() {
            Rewrite::Dropped
        } else {
            self.retain(segment, batch, &kept_offsets)?
        };
        Ok(CleanedBatch {
            rewritten,
            records_removed,
        })
    }

    /// Whether `record` stays: it has no key, or no later record of its key was mapped and it
    /// is not a tombstone past `delete_retention_ms`.
    fn keeps(&self, record: &RecordSummary, tombstones_expired: bool) -> bool {
        let Some(key) = &record.key else {
            return true;
        };
        let superseded = self
            .map
            .latest_offset(key)
            .is_some_and(|latest| record.offset < latest);
        let expired_tombstone = record.is_tombstone && tombstones_expired;
        !(superseded || expired_tombstone)
    }

    /// Decides whether the marker `batch` stays: it goes once no data of its transaction is
    /// left (see `transactions.rs`) and it is past the delete horizon, so that a consumer
    /// that read the data has had `delete_retention_ms` to read the marker too.
    fn clean_marker(
        &mut self,
        segment: &Segment,
        batch: &StoredBatch,
    ) -> Result<CleanedBatch, StorageError> {
        let header = &batch.header;
        let records = records_of(self.codec, segment, batch)?;
        let fate = self
            .transactions
            .read_marker(header, MarkerType::of(&records));
        let past_horizon = header.max_timestamp_ms < self.delete_horizon_ms;
        match fate {
            MarkerFate::Discardable if past_horizon => {
                let records_removed = u64::try_from(records.len()).expect("a count fits u64");
                return Ok(CleanedBatch {
                    rewritten: Rewrite::Dropped,
                    records_removed,
                });
            }
            // Without new data, a pass must still come back for it: once past the horizon,
            // or, if its data goes in this pass, as early as the next one.
            MarkerFate::Discardable | MarkerFate::Kept { data_removed: true } => {
                self.note_expiry(header);
            }
            MarkerFate::Kept {
                data_removed: false,
            } => {}
        }
        Ok(CleanedBatch::UNCHANGED)
    }

    /// Notes that a tombstone or marker of the batch with `header` was kept, to be removed
    /// once past the delete horizon.
    fn note_expiry(&mut self, header: &BatchHeader) {
        let expiry_ms = header
            .max_timestamp_ms
            .saturating_add(self.delete_retention_ms)
            .saturating_add(1);
        self.next_expiry_ms = self.next_expiry_ms.min(expiry_ms);
    }

    /// The codec's rewrite of `batch` keeping `kept_offsets` (ascending), checked against the
    /// original: same base and last offset, the kept records' count, a valid header and CRC.
    fn retain(
        &self,
        segment: &Segment,
        batch: &StoredBatch,
        kept_offsets: &[i64],
    ) -> Result<Rewrite, StorageError> {
        let unreadable = |reason: String| StorageError::UnreadableRecords {
            path: segment.log_path().to_path_buf(),
            position: batch.position,
            reason,
        };
        let keep = |offset: i64| kept_offsets.binary_search(&offset).is_ok();
        let bytes = self
            .codec
            .retain(&batch.bytes, &keep)
            .map_err(unreadable)?
            .ok_or_else(|| {
                unreadable("the codec kept no record of a batch with some to keep".into())
            })?;
        let header = check_retained(&batch.header, &bytes, kept_offsets.len())
            .map_err(|reason| unreadable(format!("the codec's rewrite is wrong: {reason}")))?;
        Ok(Rewrite::Retained(header, bytes))
    }
}

/// The codec's records of `batch`, checked to lie within the batch's offsets, ascending.
fn records_of(
    codec: &dyn RecordCodec,
    segment: &Segment,
    batch: &StoredBatch,
) -> Result<Vec<RecordSummary>, StorageError> {
    let unreadable = |reason: String| StorageError::UnreadableRecords {
        path: segment.log_path().to_path_buf(),
        position: batch.position,
        reason,
    };
    let records = codec.records(&batch.bytes).map_err(unreadable)?;
    let header = &batch.header;
    let mut previous = None;
    for record in &records {
        let inside = (header.base_offset..=header.last_offset).contains(&record.offset);
        if !inside || previous.is_some_and(|previous| record.offset <= previous) {
            let reason = format!(
                "record offset {} out of order or outside the batch",
                record.offset
            );
            return Err(unreadable(reason));
        }
        previous = Some(record.offset);
    }
    Ok(records)
}

/// Checks a rewritten batch against the original's header before it is written.
fn check_retained(
    original: &BatchHeader,
    bytes: &[u8],
    kept_count: usize,
) -> Result<BatchHeader, &'static str> {
    let header = BatchHeader::parse(bytes)?;
    if u64::try_from(bytes.len()).ok() != Some(header.size_bytes) {
        return Err("its length is not its batch length");
    }
    if header.base_offset != original.base_offset || header.last_offset != original.last_offset {
        return Err("its offsets differ from the original's");
    }
    if usize::try_from(header.records_count).ok() != Some(kept_count) {
        return Err("its record count is not the number kept");
    }
    let crc = crc32c::crc32c(&bytes[crate::batch_header::CRC_COVERED_FROM_POSITION..]);
    if crc != header.crc {
        return Err("its CRC-32C does not match");
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::data_dir::DataDir;
    use crate::fault::{self, SwapStep};
    use crate::format::{
        AbortedTransaction, SegmentFileKind, parse_segment_file_name,
        parse_staged_segment_file_name, segment_file_path,
    };
    use crate::log::FirstBatch;
    use crate::test_batch::{
        ControlType, TestCodec, TestRecord, control_batch, keyed_batch, keyed_records,
        last_offset_of, transactional_batch,
    };

    const TOPIC: &str = "compacted";

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 1024,
            segment_ms: i64::MAX,
            index_interval_bytes: 100,
            segment_index_bytes: 1024,
            retention_ms: -1,
            retention_bytes: -1,
            // Every pass cleans whatever is dirty; the ratio has tests of its own.
            min_cleanable_dirty_ratio: 0.0,
            ..LogConfig::default()
        }
    }

    fn open(data_dir_path: &Path) -> (DataDir, Log) {
        let data_dir = DataDir::open(data_dir_path).expect("open data dir");
        let log = data_dir.open_log(TOPIC, 0, config()).expect("open log");
        (data_dir, log)
    }

    fn partition_dir(data_dir_path: &Path) -> PathBuf {
        data_dir_path.join(format!("{TOPIC}-0"))
    }

    fn compact(log: &Log) -> Result<CompactionOutcome, StorageError> {
        log.compact(2_000, &TestCodec, &CleanerConfig::default(), i64::MAX)
    }

    /// Appends `batches_count` batches of two updates over `keys_count` keys, values numbered
    /// from `first_value`, then rolls so that all of it can be compacted.
    fn append_sealed_updates(
        log: &Log,
        batches_count: usize,
        keys_count: usize,
        first_value: usize,
    ) {
        for index in 0..batches_count {
            let value = |delta: usize| format!("v{}", first_value + 2 * index + delta);
            let key = |delta: usize| format!("k{}", (2 * index + delta) % keys_count);
            let keys = [key(0), key(1)];
            let (first, second) = (value(0), value(1));
            let records = [
                (Some(keys[0].as_bytes()), Some(first.as_bytes())),
                (Some(keys[1].as_bytes()), Some(second.as_bytes())),
            ];
            log.append(&keyed_batch(&records, 1_000), 0)
                .expect("append");
        }
        let mut state = log.append.lock_or_recover();
        log.roll(&mut state, &config()).expect("roll");
    }

    fn read_records(log: &Log) -> Vec<TestRecord> {
        let mut records = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.high_watermark() {
            let bytes = log.read(offset, 1, FirstBatch::AlwaysWhole).expect("read");
            if bytes.is_empty() {
                break;
            }
            records.extend(keyed_records(&bytes).expect("one keyed batch"));
            offset = last_offset_of(&bytes) + 1;
        }
        records
    }

    fn last_record_per_key(records: &[TestRecord]) -> Vec<TestRecord> {
        let mut last_offsets = BTreeMap::new();
        for record in records {
            last_offsets.insert(record.key.clone(), record.offset);
        }
        let is_last = |record: &&TestRecord| last_offsets.get(&record.key) == Some(&record.offset);
        records.iter().filter(is_last).cloned().collect()
    }

    /// Each segment's `.log` bytes and `.txnindex` bytes (empty if absent) by base offset.
    fn segment_logs(partition_dir: &Path) -> BTreeMap<i64, (Vec<u8>, Vec<u8>)> {
        let mut logs = BTreeMap::new();
        for entry in std::fs::read_dir(partition_dir).expect("read dir") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or_default();
            if let Some((base_offset, SegmentFileKind::Log)) = parse_segment_file_name(name) {
                let kind = SegmentFileKind::TransactionIndex;
                let index_path = segment_file_path(partition_dir, base_offset, kind);
                let index = std::fs::read(&index_path).unwrap_or_default();
                let log = std::fs::read(&path).expect("read segment");
                logs.insert(base_offset, (log, index));
            }
        }
        logs
    }

    fn staged_files(partition_dir: &Path) -> Vec<String> {
        let names = std::fs::read_dir(partition_dir).expect("read dir");
        names
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| parse_staged_segment_file_name(name).is_some())
            .collect()
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("create copy");
        for entry in std::fs::read_dir(from).expect("read dir") {
            let entry = entry.expect("entry");
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }

    /// The aborted transaction `log_ready_to_merge` starts with: one record, then its marker.
    const ABORTED: AbortedTransaction = AbortedTransaction {
        producer_id: 9,
        first_offset: 0,
        last_offset: 1,
        last_stable_offset: 2,
    };

    /// A log whose next pass both removes records and merges several shrunk segments into
    /// one, so that every swap step is reached: an aborted transaction (so that a swap moves
    /// a `.txnindex` too), updates over five keys, a first pass, more updates over
    /// `keys_updated_later` of them (all five: the merged segment is empty but for the
    /// marker; fewer: it keeps the others' latest records), and a batch in the active segment
    /// (an empty one would be dropped by an unclean reopen, making the last sealed one
    /// active).
    fn log_ready_to_merge(data_dir_path: &Path, keys_updated_later: usize) -> (DataDir, Log) {
        let (data_dir, log) = open(data_dir_path);
        let record = [(Some(&b"txn"[..]), Some(&b"aborted"[..]))];
        let data = transactional_batch(ABORTED.producer_id, &record, 1_000);
        log.append(&data, 0).expect("append");
        let marker = control_batch(ABORTED.producer_id, ControlType::Abort, 1_000);
        log.append(&marker, 0).expect("append");
        log.add_aborted_transaction(ABORTED).expect("add");
        append_sealed_updates(&log, 40, 5, 0);
        compact(&log).expect("first pass");
        append_sealed_updates(&log, 10, keys_updated_later, 1_000);
        let tail = [(Some(&b"tail"[..]), Some(&b"t"[..]))];
        log.append(&keyed_batch(&tail, 1_000), 0).expect("append");
        (data_dir, log)
    }

    /// A crash at each step of a swap recovers to the old segments or the new ones, never a
    /// mix: every segment file after recovery is byte for byte what it was before the pass
    /// or what an uninterrupted pass writes; no staged file is left; the latest value of
    /// each key is unchanged; and the next pass finishes the job.
    #[test]
    fn crash_at_each_swap_step_recovers_old_or_new_segments() {
        let cases = SwapStep::ALL
            .into_iter()
            .flat_map(|step| [(step, 5), (step, 3)]);
        for (step, keys_updated_later) in cases {
            let dir = tempfile::Builder::new()
                .prefix(&format!("crash_at_each_swap_step_{step:?}"))
                .tempdir()
                .expect("temp dir");
            let crashed_path = dir.path().join("crashed");
            let (data_dir, log) = log_ready_to_merge(&crashed_path, keys_updated_later);
            let before = read_records(&log);
            let expected = last_record_per_key(&before);
            let old_logs = segment_logs(&partition_dir(&crashed_path));
            let reference_path = dir.path().join("reference");
            copy_dir(
                &partition_dir(&crashed_path),
                &partition_dir(&reference_path),
            );

            fault::crash_at_swap_step(step);
            let crashed = catch_unwind(AssertUnwindSafe(|| compact(&log)));
            assert!(crashed.is_err(), "{step:?} was reached");
            std::mem::forget(log);
            drop(data_dir);

            let (_reference_dir, reference) = open(&reference_path);
            compact(&reference).expect("uninterrupted pass");
            assert_eq!(read_records(&reference), expected);
            let new_logs = segment_logs(&partition_dir(&reference_path));

            let (_data_dir, log) = open(&crashed_path);
            assert_eq!(
                staged_files(&partition_dir(&crashed_path)),
                Vec::<String>::new()
            );
            let recovered_logs = segment_logs(&partition_dir(&crashed_path));
            for (base_offset, bytes) in &recovered_logs {
                let is_old = old_logs.get(base_offset) == Some(bytes);
                let is_new = new_logs.get(base_offset) == Some(bytes);
                assert!(
                    is_old || is_new,
                    "{step:?}: segment {base_offset} is neither"
                );
            }
            let committed = SwapStep::ALL[2..].contains(&step);
            if committed && keys_updated_later == 3 {
                // The merged segment's batches reach past every segment it replaced.
                assert_eq!(recovered_logs.len(), new_logs.len(), "{step:?}");
            }
            let after = read_records(&log);
            assert!(
                after.iter().all(|record| before.contains(record)),
                "{step:?}"
            );
            assert!(
                expected.iter().all(|record| after.contains(record)),
                "{step:?}"
            );
            assert_eq!(log.next_offset(), 103, "{step:?}");
            let aborted = log.aborted_transactions(0, i64::MAX).expect("aborted");
            assert_eq!(aborted, [ABORTED], "{step:?}");

            compact(&log).expect("pass after recovery");
            assert_eq!(read_records(&log), expected, "{step:?}");
        }
    }

    /// A panic during a pass leaves the same `Log` in service (its poisoned locks are
    /// recovered): reads and appends go on; a pass after a panic before the swap's staging
    /// cleans as usual, and one after a panic once staging began is refused with
    /// `CompactionHalted`, since the files may be part-way through a committed swap.
    #[test]
    fn a_panic_in_a_pass_leaves_the_log_serving_and_halts_only_a_begun_swap() {
        for step in [
            SwapStep::CleanedWritten,
            SwapStep::IndexesStaged,
            SwapStep::Installed,
        ] {
            let dir = tempfile::Builder::new()
                .prefix(&format!("a_panic_in_a_pass_{step:?}"))
                .tempdir()
                .expect("temp dir");
            let (_data_dir, log) = log_ready_to_merge(dir.path(), 5);
            let before = read_records(&log);

            fault::crash_at_swap_step(step);
            let crashed = catch_unwind(AssertUnwindSafe(|| compact(&log)));
            assert!(crashed.is_err(), "{step:?} was reached");

            assert_eq!(read_records(&log), before, "{step:?}");
            let tail = [(Some(&b"after"[..]), Some(&b"a"[..]))];
            let appended = log.append(&keyed_batch(&tail, 1_000), 0).expect("append");
            assert_eq!(appended.base_offset, 103, "{step:?}");
            let next_pass = compact(&log);
            match step {
                SwapStep::CleanedWritten => assert!(next_pass.is_ok(), "{step:?}"),
                _ => assert!(
                    matches!(next_pass, Err(StorageError::CompactionHalted { .. })),
                    "{step:?}"
                ),
            }
        }
    }

    /// A pass skips a log whose dirty part is not above `min_cleanable_dirty_ratio`, and
    /// cleans it anyway once its oldest dirty batch is older than `max_compaction_lag_ms`:
    /// after a first pass, new superseding updates stay until the lag forces a pass.
    #[test]
    fn dirty_ratio_and_max_lag_decide_whether_a_pass_runs() {
        let dir = tempfile::Builder::new()
            .prefix("dirty_ratio_and_max_lag_decide_whether_a_pass_runs")
            .tempdir()
            .expect("temp dir");
        let (_data_dir, log) = open(dir.path());
        append_sealed_updates(&log, 40, 5, 0);
        // A ratio of 1 is never exceeded: only the lag can force a pass.
        log.set_config(LogConfig {
            min_cleanable_dirty_ratio: 1.0,
            ..config()
        });
        assert!(compact(&log).expect("first pass").segments_cleaned > 0);
        append_sealed_updates(&log, 10, 5, 1_000);
        let dirty = read_records(&log);
        assert_eq!(
            compact(&log).expect("skipped pass"),
            CompactionOutcome::default()
        );
        assert_eq!(read_records(&log), dirty);
        // The batches are stamped 1_000 and `compact` runs at 2_000.
        log.set_config(LogConfig {
            min_cleanable_dirty_ratio: 1.0,
            max_compaction_lag_ms: 1_500,
            ..config()
        });
        assert_eq!(
            compact(&log).expect("lag not reached"),
            CompactionOutcome::default()
        );
        log.set_config(LogConfig {
            min_cleanable_dirty_ratio: 1.0,
            max_compaction_lag_ms: 500,
            ..config()
        });
        assert!(compact(&log).expect("forced pass").segments_cleaned > 0);
        assert_eq!(read_records(&log), last_record_per_key(&dirty));
    }

    /// A write that fails before the commit point leaves the log as it was, with no staged
    /// files, and the next pass succeeds.
    #[test]
    fn failed_write_before_commit_leaves_the_log_unchanged() {
        let dir = tempfile::Builder::new()
            .prefix("failed_write_before_commit_leaves_the_log_unchanged")
            .tempdir()
            .expect("temp dir");
        let (_data_dir, log) = log_ready_to_merge(dir.path(), 3);
        let before = read_records(&log);
        let old_logs = segment_logs(&partition_dir(dir.path()));

        fault::fail_next_write_after(0);
        assert!(matches!(compact(&log), Err(StorageError::Io { .. })));
        assert_eq!(read_records(&log), before);
        assert_eq!(segment_logs(&partition_dir(dir.path())), old_logs);
        assert_eq!(
            staged_files(&partition_dir(dir.path())),
            Vec::<String>::new()
        );

        compact(&log).expect("the next pass");
        assert_eq!(read_records(&log), last_record_per_key(&before));
    }

    /// A reader that held a segment which a pass then merged into its predecessor's
    /// replacement, and found nothing in it, is sent to the merged segment, not past it.
    #[test]
    fn a_read_across_a_merge_finds_the_merged_records() {
        let dir = tempfile::Builder::new()
            .prefix("a_read_across_a_merge_finds_the_merged_records")
            .tempdir()
            .expect("temp dir");
        let (_data_dir, log) = log_ready_to_merge(dir.path(), 3);
        let before = read_records(&log);
        let expected = last_record_per_key(&before);
        let k3 = expected
            .iter()
            .find(|record| record.key.as_deref() == Some(&b"k3"[..]))
            .expect("k3 is kept");
        let stale = log.segment_holding(0).expect("first segment");
        compact(&log).expect("pass");
        let high_watermark = log.high_watermark();
        let nothing = stale.read(k3.offset, high_watermark, 1, FirstBatch::AlwaysWhole);
        assert!(
            nothing.expect("read").is_none(),
            "k3 was in a later segment"
        );

        let next = log.segment_after(&stale, k3.offset).expect("a segment");
        assert_eq!(next.base_offset(), 0, "the merged segment");
        let read = next.read(k3.offset, high_watermark, 1, FirstBatch::AlwaysWhole);
        let bytes = read
            .expect("read")
            .expect("k3's batch")
            .read()
            .expect("bytes");
        assert!(keyed_records(&bytes).expect("keyed").contains(k3));
    }

    /// Groups hold neighbours whose bytes fit one segment, and a segment too large for any
    /// group is a group on its own.
    #[test]
    fn groups_fill_up_to_segment_bytes() {
        let dir = tempfile::Builder::new()
            .prefix("groups_fill_up_to_segment_bytes")
            .tempdir()
            .expect("temp dir");
        let (_data_dir, log) = open(dir.path());
        let mut sizes = Vec::new();
        for payload_bytes in [250, 250, 250, 2_000, 100, 900] {
            let batch = crate::test_batch::batch(1, payload_bytes);
            sizes.push(u64::try_from(batch.len()).expect("small"));
            log.append(&batch.clone(), 0).expect("append");
            let mut state = log.append.lock_or_recover();
            log.roll(&mut state, &config()).expect("roll");
        }
        let sealed = log.cleanable_segments(&config(), 0, i64::MAX);
        let groups = group_segments(&sealed, &config());
        let lengths: Vec<usize> = groups.iter().map(|group| group.len()).collect();
        assert_eq!(lengths, [3, 1, 1, 1], "sizes {sizes:?}");
    }
}
