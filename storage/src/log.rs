//! A partition's log: an ordered list of segments, the last one active.
//!
//! # Concurrency
//!
//! One appender at a time, any number of readers, and readers never wait for the appender:
//!
//! - An append takes the `append` lock, assigns offsets, writes its batches with one write to
//!   the active segment, publishes the segment's new end and then the log's `next_offset`
//!   (the high watermark), and adds index entries. Nothing slow happens under the lock except
//!   a roll, once per segment.
//! - A reader loads the high watermark, clones the `Arc` of the segment it needs under a brief
//!   read lock of `segments`, and reads by position, never past what was published.
//! - Fsyncs take the `sync` lock, not the append lock, so appends go on while one runs; one
//!   fsync covers every batch written before it (group commit).
//! - Retention and DeleteRecords take the `maintenance` lock, so only one of them moves the
//!   log start offset and deletes segments at a time.
//! - Compaction (`compaction.rs`) takes the `compaction` lock for a whole pass, reading
//!   sealed segments without other locks, and the `maintenance` lock for each swap of
//!   cleaned segments into the list.
//! - Aborted transactions (`transactions.rs`) are added under the `append` lock, like index
//!   entries, and read under a brief read lock of the segment list and of each segment's
//!   transaction index, so read_committed fetches never wait for the appender either.

mod compaction;
mod retention;
mod transactions;

pub use compaction::CompactionOutcome;

use std::collections::BTreeMap;
use std::io::IoSlice;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use tracing::{debug, warn};

use crate::batch_header::{BATCH_HEADER_BYTES, BatchHeader, set_base_offset, split_batches};
use crate::checkpoint::{RecoveryPoint, write_recovery_point};
use crate::config::{LogConfig, MAX_SEGMENT_BYTES};
use crate::error::StorageError;
use crate::file_range::FileRange;
use crate::fs::sync_dir;
use crate::lock_policy::{MutexRecover, RwLockRecover};
use crate::recovery::{RecoveryMode, load_log};
use crate::segment::{Segment, TimestampAndOffset, remove_segment_files};
use crate::topic_partition::TopicPartition;
use crate::transaction_index::MAX_TRANSACTION_INDEX_ENTRIES;

/// Whether a read returns its first batch even when that batch alone exceeds `max_bytes`.
///
/// Kafka fetches use `AlwaysWhole` (KIP-74), so a consumer makes progress whatever its
/// limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstBatch {
    /// Return the first batch whole even if it is larger than `max_bytes`.
    AlwaysWhole,
    /// Return nothing if the first batch is larger than `max_bytes`.
    WithinMaxBytes,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Offset assigned to the first record of the first batch.
    pub base_offset: i64,
    /// Offset of the last record of the last batch.
    pub last_offset: i64,
    /// The `now_ms` the append was made at, for LogAppendTime topics and the Produce answer.
    pub log_append_time_ms: i64,
    /// The log start offset after the append, for the Produce answer.
    pub log_start_offset: i64,
}

/// One partition's log. `Send + Sync`: the broker shares it as `Arc<Log>`.
///
/// Lock order, for code that holds more than one: `compaction`, then `maintenance`, then
/// `append`, then `segments`, then a segment's index locks (its offset and time indexes, or
/// its transaction index). `producer_snapshots` comes before `sync`, and `sync` is never held
/// with `append` or `maintenance`; it takes `segments` (read) and a segment's index locks
/// briefly.
pub struct Log {
    topic_partition: TopicPartition,
    partition_dir: PathBuf,
    /// The appender's state. Held for one append: offset assignment, the write, publishing
    /// the new end, index entries; and for a roll, whose fsyncs are the only slow step taken
    /// under it (once per segment). A std `Mutex`: the section is short and never awaits.
    append: Mutex<AppendState>,
    /// Every segment by base offset; the last is the active one. Readers hold the read lock
    /// only to clone an `Arc<Segment>`; a roll or a deletion holds the write lock only to edit
    /// the map. Segments outlive their removal while a reader still holds them.
    segments: RwLock<BTreeMap<i64, Arc<Segment>>>,
    /// Serialises fsyncs of the active segment and remembers how far they reached, so a caller
    /// whose batches an earlier fsync covered returns at once.
    sync: Mutex<SyncState>,
    /// Serialises retention, DeleteRecords and compaction swaps, the things that delete
    /// segments or replace them in the list.
    maintenance: Mutex<()>,
    /// Held for a whole compaction pass, so passes on one log never overlap; guards what the
    /// cleaner remembers between passes. Appends, reads and fsyncs never take it.
    compaction: Mutex<compaction::CompactionState>,
    /// Serialises producer snapshot writes and reads, so that a write never deletes the
    /// snapshot another is reading, and two writes never share a temporary file.
    producer_snapshots: Mutex<()>,
    /// The offset the next append gets; on a single node also the high watermark. Stored
    /// (Release) by the appender after the active segment published its new end; readers load
    /// it (Acquire) before looking up segments, so every offset below it is readable.
    next_offset: AtomicI64,
    /// The first offset readers may see. Only grows; stored before segments below it are
    /// removed, so a reader never finds an offset at or above it missing.
    log_start_offset: AtomicI64,
    /// Settings, replaced whole by `set_config`.
    config: RwLock<LogConfig>,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Log>();
};

/// The appender's state, guarded by `Log::append`.
struct AppendState {
    /// The segment appends go to; the same `Arc` as the last entry of `Log::segments`.
    active: Arc<Segment>,
    /// When the active segment's `segment_ms` clock started: the time of its first append,
    /// or after a restart its first batch's timestamp. `None` while it has no batch.
    roll_clock_start_ms: Option<i64>,
    /// The largest `last_offset` of an aborted transaction recorded in this log since it was
    /// opened (or found at the open); an entry at or below it is already there, or was, so
    /// `add_aborted_transaction` skips it.
    last_aborted_offset: Option<i64>,
}

/// Fsync progress, guarded by `Log::sync`.
struct SyncState {
    /// Every offset below this is durable.
    synced_next_offset: i64,
    /// How much of the active segment is durable, as the last fsync (or the open) left it.
    recovery_point: RecoveryPoint,
    /// The recovery point last written to the partition's checkpoint, if any since the open.
    checkpointed_recovery_point: Option<RecoveryPoint>,
}

/// The shape of one append, for the roll decision.
struct AppendShape {
    size_bytes: u64,
    last_offset: i64,
    batches_count: usize,
}

impl Log {
    /// Opens the log in `partition_dir` (see `recovery` for what `mode` trusts).
    pub(crate) fn open(
        partition_dir: PathBuf,
        topic_partition: TopicPartition,
        config: LogConfig,
        mode: RecoveryMode,
    ) -> Result<Log, StorageError> {
        let loaded = load_log(&partition_dir, &topic_partition, &config, mode)?;
        let active = Arc::clone(
            loaded
                .segments
                .values()
                .next_back()
                .expect("a loaded log has an active segment"),
        );
        assert!(loaded.log_start_offset <= loaded.next_offset);
        assert!(active.base_offset() <= loaded.next_offset);
        let roll_clock_start_ms = match active.is_empty() {
            true => None,
            false => loaded.active_first_timestamp_ms,
        };
        let last_aborted_offset = loaded
            .segments
            .values()
            .filter_map(|segment| segment.transaction_index().last_entry())
            .map(|last| last.last_offset)
            .max();
        debug!(
            %topic_partition,
            next_offset = loaded.next_offset,
            log_start_offset = loaded.log_start_offset,
            segments_count = loaded.segments.len(),
            "opened log"
        );
        let log = Log {
            topic_partition,
            partition_dir,
            append: Mutex::new(AppendState {
                active,
                roll_clock_start_ms,
                last_aborted_offset,
            }),
            segments: RwLock::new(loaded.segments),
            sync: Mutex::new(SyncState {
                synced_next_offset: loaded.log_start_offset,
                recovery_point: loaded.recovery_point,
                checkpointed_recovery_point: None,
            }),
            maintenance: Mutex::new(()),
            compaction: Mutex::new(compaction::CompactionState::new()),
            producer_snapshots: Mutex::new(()),
            next_offset: AtomicI64::new(loaded.next_offset),
            log_start_offset: AtomicI64::new(loaded.log_start_offset),
            config: RwLock::new(config),
        };
        if mode == RecoveryMode::Unclean {
            // Recovery just fsynced the active segment; recording that spares the next
            // recovery, should the broker crash again soon, the same scan.
            if let Err(error) = log.checkpoint_recovery_point() {
                warn!(topic_partition = %log.topic_partition, %error,
                    "could not write the recovery point; a crash would scan more");
            }
        }
        Ok(log)
    }

    /// Appends whole v2 batches, concatenated in `batches`, already validated by the broker.
    ///
    /// The batches take consecutive offsets from `next_offset`. `batches` itself is left as it
    /// is: each batch's new base offset is written beside its other bytes, all in one
    /// vectored write to the active segment (rolling first if `segment_bytes`, `segment_ms`
    /// or a full index says so), so a caller holding the batches in a shared buffer (a
    /// request frame) need not copy them. The CRC does not cover the base offset. Then index
    /// entries are added and the new end is published to readers. The batches are in the
    /// page cache, not yet durable: call `sync_through` for that.
    ///
    /// # Errors
    /// `InvalidBatch` if a header is malformed or a batch runs past the buffer;
    /// `AppendTooLarge` if no segment can hold the append; nothing is written in either case.
    /// `Io` if the write or a roll fails; a partial write is truncated away first.
    pub fn append(&self, batches: &[u8], now_ms: i64) -> Result<AppendOutcome, StorageError> {
        let mut headers =
            split_batches(batches).map_err(|(position, reason)| StorageError::InvalidBatch {
                topic_partition: self.topic_partition.clone(),
                position,
                reason,
            })?;
        self.check_fits_one_segment(batches.len(), &headers)?;
        let config = self.config();
        let mut state = self.append.lock_or_recover();
        let base_offset = self.next_offset.load(Ordering::Acquire);
        let base_offsets = offsets_for(batches, &mut headers, base_offset);
        let last_offset = headers
            .last()
            .expect("split_batches found a batch")
            .last_offset;
        let shape = AppendShape {
            size_bytes: u64::try_from(batches.len()).expect("an append fits u64"),
            last_offset,
            batches_count: headers.len(),
        };
        if should_roll(&state, &config, &shape, now_ms) {
            self.roll(&mut state, &config)?;
        }
        let mut pieces = write_pieces(batches, &headers, &base_offsets);
        let position = state.active.append_vectored(&mut pieces)?;
        // Readers that see this offset find whole batches: the segment published its end
        // first.
        self.next_offset.store(last_offset + 1, Ordering::Release);
        index_batches(
            &state.active,
            position,
            &headers,
            config.index_interval_bytes,
        );
        state.roll_clock_start_ms.get_or_insert(now_ms);
        Ok(AppendOutcome {
            base_offset,
            last_offset,
            log_append_time_ms: now_ms,
            log_start_offset: self.log_start_offset(),
        })
    }

    /// Whether an append of `size_bytes` in `batches_count` batches would roll the active
    /// segment now, and so fsync: callers on an async runtime move such appends off its
    /// workers. A hint (another append may roll first), never a promise.
    pub fn next_append_may_roll(
        &self,
        size_bytes: usize,
        batches_count: usize,
        now_ms: i64,
    ) -> bool {
        let config = self.config();
        let state = self.append.lock_or_recover();
        let shape = AppendShape {
            size_bytes: u64::try_from(size_bytes).unwrap_or(u64::MAX),
            last_offset: self.next_offset.load(Ordering::Acquire),
            batches_count,
        };
        should_roll(&state, &config, &shape, now_ms)
    }

    fn check_fits_one_segment(
        &self,
        size_bytes: usize,
        headers: &[BatchHeader],
    ) -> Result<(), StorageError> {
        let too_large = |reason| StorageError::AppendTooLarge {
            topic_partition: self.topic_partition.clone(),
            size_bytes,
            reason,
        };
        if u64::try_from(size_bytes).is_ok_and(|size_bytes| size_bytes > MAX_SEGMENT_BYTES) {
            return Err(too_large("larger than the largest segment"));
        }
        let offsets_count: i64 = headers.iter().map(BatchHeader::offsets_count).sum();
        if offsets_count - 1 > i64::from(u32::MAX) {
            return Err(too_large("spans more offsets than one segment can index"));
        }
        Ok(())
    }

    /// Seals the active segment and makes a new, empty one at `next_offset` the active one.
    ///
    /// Atomic in the face of errors: until the last step the old segment stays active and the
    /// new files are removed on failure, so the next append simply tries again.
    fn roll(&self, state: &mut AppendState, config: &LogConfig) -> Result<(), StorageError> {
        let new_base_offset = self.next_offset.load(Ordering::Acquire);
        assert!(new_base_offset > state.active.base_offset());
        let new = Arc::new(Segment::create(
            &self.partition_dir,
            new_base_offset,
            config,
        )?);
        if let Err(error) = self.make_roll_durable(&state.active, &new) {
            if let Err(remove_error) = remove_segment_files(&self.partition_dir, new_base_offset) {
                warn!(topic_partition = %self.topic_partition, new_base_offset, %remove_error,
                    "could not remove the files of a failed roll; the next roll overwrites them");
            }
            return Err(error);
        }
        self.segments_mut()
            .insert(new_base_offset, Arc::clone(&new));
        debug!(
            topic_partition = %self.topic_partition,
            sealed_base_offset = state.active.base_offset(),
            new_base_offset,
            "rolled segment"
        );
        state.active = new;
        state.roll_clock_start_ms = None;
        Ok(())
    }

    fn make_roll_durable(&self, old: &Segment, new: &Segment) -> Result<(), StorageError> {
        // The old segment's batches and trimmed indexes must be durable before it stops being
        // active: `sync_through` fsyncs only the active segment, and a later start trusts a
        // sealed segment's indexes.
        old.seal()?;
        // The new files must exist durably before batches are acknowledged in them.
        new.sync_all()?;
        // And so must their directory entries, or a power loss could drop the new segment
        // along with durable, acknowledged batches.
        sync_dir(&self.partition_dir)
    }

    /// Reads whole batches starting with the batch that holds `offset`, up to `max_bytes`
    /// (but see `first_batch`), never past the high watermark. Reads stay within one segment,
    /// as Kafka's do; the next segment is tried only if nothing was found in this one.
    ///
    /// In a compacted log, an offset whose record was removed reads from the next batch
    /// kept: a batch keeps its offset span, and the batches after a gap come next.
    ///
    /// # Errors
    /// `OffsetOutOfRange` if `offset` is below the log start offset or past `next_offset`
    /// (`offset == next_offset` reads nothing); `CorruptSegment` if the bytes on disk are not
    /// batches.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        first_batch: FirstBatch,
    ) -> Result<Bytes, StorageError> {
        match self.read_range(offset, max_bytes, first_batch)? {
            Some(range) => range.read(),
            None => Ok(Bytes::new()),
        }
    }

    /// As `read`, but names the bytes in their segment file instead of copying them, for a
    /// caller that sends them on with `sendfile`. `None` where `read` returns no bytes.
    pub fn read_range(
        &self,
        offset: i64,
        max_bytes: usize,
        first_batch: FirstBatch,
    ) -> Result<Option<FileRange>, StorageError> {
        let high_watermark = self.high_watermark();
        self.read_range_below(offset, max_bytes, first_batch, high_watermark)
    }

    /// As `read_range`, but returns no batch whose base offset is at or past
    /// `upper_bound_offset`: the last stable offset, for read_committed fetches, which must
    /// not see batches of transactions still open. An `offset` at or past the bound (up to the
    /// high watermark) reads nothing, and is not out of range.
    ///
    /// # Errors
    /// As `read`: `OffsetOutOfRange` if `offset` is below the log start offset or past the
    /// high watermark; `CorruptSegment` for bytes on disk that are not batches.
    ///
    /// # Panics
    /// If `upper_bound_offset` is past the high watermark: the bound is a batch boundary the
    /// caller learned from this log.
    pub fn read_range_below(
        &self,
        offset: i64,
        max_bytes: usize,
        first_batch: FirstBatch,
        upper_bound_offset: i64,
    ) -> Result<Option<FileRange>, StorageError> {
        // Loaded after the caller learned its bound, so at or above it; and before looking up
        // segments: every batch below it is in a segment already listed.
        let high_watermark = self.high_watermark();
        assert!(
            upper_bound_offset <= high_watermark,
            "read bound {upper_bound_offset} past the high watermark {high_watermark}"
        );
        if offset < self.log_start_offset() || offset > high_watermark {
            return Err(self.out_of_range(offset));
        }
        if offset >= upper_bound_offset {
            return Ok(None);
        }
        let mut segment = self
            .segment_holding(offset)
            .ok_or_else(|| self.out_of_range(offset))?;
        loop {
            let read = segment.read(offset, upper_bound_offset, max_bytes, first_batch)?;
            if let Some(range) = read {
                return Ok(Some(range).filter(|range| !range.is_empty()));
            }
            // A segment starting at or past the bound has nothing to return.
            match self.segment_after(&segment, offset) {
                Some(next) if next.base_offset() < upper_bound_offset => segment = next,
                _ => return Ok(None),
            }
        }
    }

    /// The first offset readers may see.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    /// The log end offset: the offset the next append gets.
    pub fn next_offset(&self) -> i64 {
        self.next_offset.load(Ordering::Acquire)
    }

    /// The offset below which batches are visible to readers; `next_offset` on a single node.
    pub fn high_watermark(&self) -> i64 {
        self.next_offset()
    }

    /// The partition this log stores.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.topic_partition
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.partition_dir
    }

    /// How many offsets were appended since the last fsync of the log: what `flush.messages`
    /// counts.
    pub fn unsynced_offsets(&self) -> i64 {
        let synced_next_offset = self.sync.lock_or_recover().synced_next_offset;
        (self.next_offset() - synced_next_offset).max(0)
    }

    /// Returns once every offset up to `last_offset` is durable. One fsync of the active
    /// segment covers every batch written before it, so concurrent callers mostly find their
    /// batches already covered and return without an fsync of their own.
    ///
    /// # Panics
    /// If `last_offset` was never appended (`>= next_offset`).
    pub fn sync_through(&self, last_offset: i64) -> Result<(), StorageError> {
        assert!(
            last_offset < self.next_offset(),
            "sync_through past the end of the log"
        );
        let mut sync = self.sync.lock_or_recover();
        if last_offset < sync.synced_next_offset {
            return Ok(());
        }
        self.sync_active(&mut sync)
    }

    /// Makes everything appended so far durable, index entries and aborted transactions
    /// included, so a clean restart finds them. For the periodic flush policy and shutdown.
    /// Trims nothing.
    ///
    /// The index msync holds the active segment's index read lock, so an append that wants to
    /// add an index entry meanwhile waits for it; the batch and transaction index fsyncs hold
    /// no lock appends need.
    pub fn flush(&self) -> Result<(), StorageError> {
        let mut sync = self.sync.lock_or_recover();
        self.sync_active(&mut sync)?;
        let active = self.active_segment();
        active.transaction_index().sync()?;
        active.flush_indexes()
    }

    fn sync_active(&self, sync: &mut SyncState) -> Result<(), StorageError> {
        // Load the target before picking the segment: every batch below it is then in the
        // segment we fsync or in one sealed (and fsynced) before that segment was published.
        let target_next_offset = self.next_offset.load(Ordering::Acquire);
        let active = self.active_segment();
        active.sync_data()?;
        sync.synced_next_offset = sync.synced_next_offset.max(target_next_offset);
        let durable = RecoveryPoint {
            segment_base_offset: active.base_offset(),
            durable_position: active.bytes_synced(),
        };
        // After a clean open the segment's own count starts at zero, below the point loaded.
        let same_segment = durable.segment_base_offset == sync.recovery_point.segment_base_offset;
        if !same_segment || durable.durable_position > sync.recovery_point.durable_position {
            sync.recovery_point = durable;
        }
        Ok(())
    }

    /// Writes how much of the active segment is durable to the partition's recovery point
    /// checkpoint, unless it has not moved since the last write, so that recovery after a
    /// crash scans only what came after it. Fsyncs nothing but the active index (so its
    /// entries below the point survive a power loss too): the point records earlier fsyncs.
    /// Called periodically and when the log closes.
    pub fn checkpoint_recovery_point(&self) -> Result<(), StorageError> {
        let mut sync = self.sync.lock_or_recover();
        let point = sync.recovery_point;
        if sync.checkpointed_recovery_point == Some(point) {
            return Ok(());
        }
        self.active_segment().flush_indexes()?;
        write_recovery_point(&self.partition_dir, point)?;
        sync.checkpointed_recovery_point = Some(point);
        Ok(())
    }

    /// The first batch whose max timestamp is at least `timestamp_ms`, for ListOffsets by
    /// time; `None` if there is none. The broker finds the exact record inside it.
    pub fn batch_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<Bytes>, StorageError> {
        let high_watermark = self.high_watermark();
        let log_start_offset = self.log_start_offset();
        let segments = self.segments_snapshot();
        let sealed_count = segments.len() - 1;
        for (index, segment) in segments.iter().enumerate() {
            // A sealed segment knows its largest timestamp; the active one may be publishing a
            // batch its summary does not count yet, so it is always scanned.
            let older = segment
                .max_timestamp()
                .is_none_or(|max| max.timestamp_ms < timestamp_ms);
            if index < sealed_count && older {
                continue;
            }
            let found =
                segment.batch_for_timestamp(timestamp_ms, high_watermark, log_start_offset)?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The batch with the largest max timestamp, the earliest on a tie, for ListOffsets
    /// MAX_TIMESTAMP; `None` if no batch has a timestamp.
    pub fn batch_with_max_timestamp(&self) -> Result<Option<Bytes>, StorageError> {
        let mut best: Option<(TimestampAndOffset, Arc<Segment>)> = None;
        for segment in self.segments_snapshot() {
            let Some(max) = segment.max_timestamp() else {
                continue;
            };
            if best
                .as_ref()
                .is_none_or(|(best, _)| max.timestamp_ms > best.timestamp_ms)
            {
                best = Some((max, segment));
            }
        }
        let Some((max, segment)) = best else {
            return Ok(None);
        };
        // Loaded after the summaries: the appender publishes the high watermark before it
        // updates a summary, so the batch found is below this.
        let high_watermark = self.high_watermark();
        let batch = segment.read(max.offset, high_watermark, 0, FirstBatch::AlwaysWhole)?;
        match batch.filter(|range| !range.is_empty()) {
            Some(range) => range.read().map(Some),
            None => Ok(None),
        }
    }

    /// Replaces the settings; they apply from the next append, roll or retention pass.
    pub fn set_config(&self, config: LogConfig) {
        *self.config.write_or_recover() = config;
    }

    /// The current settings.
    pub fn config(&self) -> LogConfig {
        *self.config.read_or_recover()
    }

    /// Bytes of batches in all segments.
    pub fn size_bytes(&self) -> u64 {
        let segments = self.segments.read_or_recover();
        segments
            .values()
            .map(|segment| segment.bytes_written())
            .sum()
    }

    fn out_of_range(&self, offset: i64) -> StorageError {
        StorageError::OffsetOutOfRange {
            topic_partition: self.topic_partition.clone(),
            offset,
            log_start_offset: self.log_start_offset(),
            next_offset: self.next_offset(),
        }
    }

    fn segments_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<i64, Arc<Segment>>> {
        self.segments.write_or_recover()
    }

    fn segments_snapshot(&self) -> Vec<Arc<Segment>> {
        let segments = self.segments.read_or_recover();
        segments.values().cloned().collect()
    }

    fn active_segment(&self) -> Arc<Segment> {
        let segments = self.segments.read_or_recover();
        let active = segments
            .values()
            .next_back()
            .expect("a log always has an active segment");
        Arc::clone(active)
    }

    /// The segment whose base offset is the largest at or below `offset`.
    fn segment_holding(&self, offset: i64) -> Option<Arc<Segment>> {
        let segments = self.segments.read_or_recover();
        segments
            .range(..=offset)
            .next_back()
            .map(|(_, segment)| Arc::clone(segment))
    }

    /// Where to look next for `offset` after `segment` held nothing at or after it: the next
    /// segment, or, if compaction has since replaced `segment` (and maybe merged the next
    /// ones into its replacement), the segment that now holds `offset`. Each retry needs the
    /// list to have changed, so a read ends.
    fn segment_after(&self, segment: &Arc<Segment>, offset: i64) -> Option<Arc<Segment>> {
        let segments = self.segments.read_or_recover();
        let base_offset = segment.base_offset();
        let still_listed = segments
            .get(&base_offset)
            .is_some_and(|listed| Arc::ptr_eq(listed, segment));
        if !still_listed {
            let holder = segments.range(..=offset).next_back();
            if let Some((_, holder)) = holder.filter(|(_, holder)| !Arc::ptr_eq(holder, segment)) {
                return Some(Arc::clone(holder));
            }
        }
        let mut later = segments.range(base_offset + 1..);
        later.next().map(|(_, segment)| Arc::clone(segment))
    }
}

impl Drop for Log {
    /// Flushes and seals the active segment's files, so the next start after a clean
    /// shutdown trusts them without a scan. Best effort: a failure costs that scan, no data.
    fn drop(&mut self) {
        let closed = self
            .flush()
            .and_then(|()| self.active_segment().seal())
            .and_then(|()| self.checkpoint_recovery_point());
        if let Err(error) = closed {
            let topic_partition = &self.topic_partition;
            warn!(%topic_partition, %error, "could not close the log cleanly");
        }
    }
}

/// Rewrites each batch's base offset so the batches take consecutive offsets from
/// `base_offset`, updates `headers` to match, and returns the last offset: what `append`
/// stores, built in memory, for tests to compare with.
#[cfg(test)]
fn assign_offsets(batches: &mut [u8], headers: &mut [BatchHeader], base_offset: i64) -> i64 {
    let mut position = 0;
    let mut next_offset = base_offset;
    for header in headers.iter_mut() {
        let size_bytes =
            usize::try_from(header.size_bytes).expect("split_batches checked the size");
        let batch = &mut batches[position..position + size_bytes];
        set_base_offset(batch, next_offset);
        header.base_offset = next_offset;
        header.last_offset = next_offset + i64::from(header.last_offset_delta);
        // Check the bytes about to be written, not just our arithmetic.
        let written = BatchHeader::parse(batch).map(|header| header.base_offset);
        assert_eq!(written, Ok(next_offset));
        next_offset = header.last_offset + 1;
        position += size_bytes;
    }
    assert_eq!(position, batches.len());
    next_offset - 1
}

/// Gives the batches consecutive offsets from `base_offset` in `headers` (not in the bytes)
/// and returns each batch's new base offset as it is written, big-endian.
fn offsets_for(batches: &[u8], headers: &mut [BatchHeader], base_offset: i64) -> Vec<[u8; 8]> {
    let mut position = 0;
    let mut next_offset = base_offset;
    let mut base_offsets = Vec::with_capacity(headers.len());
    for header in headers.iter_mut() {
        let size_bytes =
            usize::try_from(header.size_bytes).expect("split_batches checked the size");
        header.base_offset = next_offset;
        header.last_offset = next_offset + i64::from(header.last_offset_delta);
        // Check the header about to be written, not just our arithmetic.
        let mut written = [0; BATCH_HEADER_BYTES];
        written.copy_from_slice(&batches[position..position + BATCH_HEADER_BYTES]);
        set_base_offset(&mut written, next_offset);
        let parsed = BatchHeader::parse(&written).map(|parsed| parsed.last_offset);
        assert_eq!(parsed, Ok(header.last_offset));
        base_offsets.push(next_offset.to_be_bytes());
        next_offset = header.last_offset + 1;
        position += size_bytes;
    }
    assert_eq!(position, batches.len());
    base_offsets
}

/// The pieces of one append: per batch, its new base offset, then the rest of its bytes.
fn write_pieces<'a>(
    batches: &'a [u8],
    headers: &[BatchHeader],
    base_offsets: &'a [[u8; 8]],
) -> Vec<IoSlice<'a>> {
    assert_eq!(headers.len(), base_offsets.len());
    let mut pieces = Vec::with_capacity(2 * headers.len());
    let mut position = 0;
    for (header, base_offset) in headers.iter().zip(base_offsets) {
        let size_bytes =
            usize::try_from(header.size_bytes).expect("split_batches checked the size");
        // The base offset is the first field of a batch.
        pieces.push(IoSlice::new(base_offset));
        pieces.push(IoSlice::new(&batches[position + 8..position + size_bytes]));
        position += size_bytes;
    }
    pieces
}

/// Whether the active segment must be rolled before this append.
fn should_roll(state: &AppendState, config: &LogConfig, append: &AppendShape, now_ms: i64) -> bool {
    let active = &state.active;
    if active.is_empty() {
        // An empty segment takes any append, so even one larger than `segment_bytes` fits.
        return false;
    }
    let bytes_full = active.bytes_written() + append.size_bytes > config.effective_segment_bytes();
    let index_full = !active.indexes().has_room_for(append.batches_count);
    let offsets_full = append.last_offset - active.base_offset() > i64::from(u32::MAX);
    let transactions_full =
        active.transaction_index().entries_count() >= MAX_TRANSACTION_INDEX_ENTRIES;
    bytes_full
        || index_full
        || offsets_full
        || transactions_full
        || segment_age_ms(state, now_ms) > config.segment_ms
}

/// How long the active segment has been collecting batches. A first batch timestamp in the
/// future counts as now, so clock skew delays a roll instead of forcing one per append.
fn segment_age_ms(state: &AppendState, now_ms: i64) -> i64 {
    state
        .roll_clock_start_ms
        .map_or(0, |start_ms| now_ms.saturating_sub(start_ms.min(now_ms)))
}

/// Adds the index entries for batches just written at `position`.
fn index_batches(
    segment: &Segment,
    position: u64,
    headers: &[BatchHeader],
    index_interval_bytes: u64,
) {
    let mut indexes = segment.indexes_mut();
    let mut batch_position = position;
    for header in headers {
        indexes.index_batch(header, batch_position, index_interval_bytes);
        batch_position += header.size_bytes;
    }
    assert_eq!(batch_position, segment.bytes_written());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_dir::DataDir;
    use crate::fault;
    use crate::test_batch::batch;

    fn temp_dir(test_name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(test_name)
            .tempdir()
            .expect("temp dir")
    }

    fn active_log_bytes(log: &Log) -> u64 {
        let path = log.active_segment().log_path_for_tests().to_path_buf();
        std::fs::metadata(path).expect("metadata").len()
    }

    /// A write that fails part-way is truncated back, leaves the offsets untouched, and the
    /// next append succeeds at the same position.
    #[test]
    fn failed_write_truncates_back_to_last_good_position() {
        let dir = temp_dir("failed_write_truncates_back_to_last_good_position");
        let data_dir = DataDir::open(dir.path()).expect("open data dir");
        let log = data_dir
            .open_log("orders", 0, LogConfig::default())
            .expect("open log");
        log.append(&batch(2, 100), 0).expect("append");
        let bytes_before = active_log_bytes(&log);

        fault::fail_next_write_after(70);
        let failed = log.append(&batch(3, 100), 0);
        assert!(matches!(failed, Err(StorageError::Io { .. })));
        assert_eq!(log.next_offset(), 2);
        assert_eq!(active_log_bytes(&log), bytes_before);

        let retry = batch(3, 100);
        let outcome = log.append(&retry, 0).expect("append after a failure");
        assert_eq!(outcome.base_offset, 2);
        let mut expected = retry.clone();
        let mut headers = split_batches(&expected).expect("batches");
        assign_offsets(&mut expected, &mut headers, 2);
        let read = log.read(2, 10_000, FirstBatch::AlwaysWhole).expect("read");
        assert_eq!(read.as_ref(), expected.as_slice());
    }

    /// `sync_through` fsyncs once for everything appended so far and is a no-op for offsets an
    /// earlier fsync covered; `flush` with nothing new does not fsync either.
    #[test]
    fn sync_through_skips_offsets_already_synced() {
        let dir = temp_dir("sync_through_skips_offsets_already_synced");
        let data_dir = DataDir::open(dir.path()).expect("open data dir");
        let log = data_dir
            .open_log("orders", 0, LogConfig::default())
            .expect("open log");
        for _ in 0..3 {
            log.append(&batch(2, 50), 0).expect("append");
        }
        let syncs_before = fault::data_syncs_count();
        log.sync_through(1).expect("sync");
        assert_eq!(fault::data_syncs_count(), syncs_before + 1);
        log.sync_through(5).expect("covered by the first sync");
        log.sync_through(0).expect("covered by the first sync");
        log.flush().expect("flush with nothing new");
        assert_eq!(fault::data_syncs_count(), syncs_before + 1);

        log.append(&batch(1, 50), 0).expect("append");
        log.sync_through(6).expect("sync");
        assert_eq!(fault::data_syncs_count(), syncs_before + 2);
    }

    /// `append` leaves its input alone, yet what it stores carries the assigned base offsets,
    /// byte for byte what rewriting them in place would have given.
    #[test]
    fn append_writes_the_new_base_offsets_beside_its_input() {
        let dir = temp_dir("append_writes_the_new_base_offsets_beside_its_input");
        let data_dir = DataDir::open(dir.path()).expect("open data dir");
        let log = data_dir
            .open_log("orders", 0, LogConfig::default())
            .expect("open log");
        log.append(&batch(3, 40), 0).expect("append");
        let mut two_batches = batch(2, 30);
        two_batches.extend(batch(4, 20));
        let before = two_batches.clone();
        let outcome = log.append(&two_batches, 0).expect("append");
        assert_eq!(two_batches, before);
        assert_eq!((outcome.base_offset, outcome.last_offset), (3, 8));
        let mut expected = before;
        let mut headers = split_batches(&expected).expect("batches");
        assign_offsets(&mut expected, &mut headers, 3);
        let read = log.read(3, 10_000, FirstBatch::AlwaysWhole).expect("read");
        assert_eq!(read.as_ref(), expected.as_slice());
    }

    /// Syncing an offset that was never appended is a bug in the caller.
    #[test]
    #[should_panic(expected = "sync_through past the end")]
    fn sync_through_past_the_end_panics() {
        let dir = temp_dir("sync_through_past_the_end_panics");
        let data_dir = DataDir::open(dir.path()).expect("open data dir");
        let log = data_dir
            .open_log("orders", 0, LogConfig::default())
            .expect("open log");
        log.sync_through(0).expect("unreachable");
    }

    /// A roll happens when the next append would pass `segment_bytes`, when the index is
    /// full, and when `segment_ms` has passed since the segment's first append.
    #[test]
    fn append_rolls_on_size_index_and_age() {
        let dir = temp_dir("append_rolls_on_size_index_and_age");
        let data_dir = DataDir::open(dir.path()).expect("open data dir");
        let config = LogConfig {
            segment_bytes: 1000,
            segment_ms: 60_000,
            index_interval_bytes: 0,
            segment_index_bytes: 48,
            ..LogConfig::default()
        };
        let log = data_dir.open_log("orders", 0, config).expect("open log");
        let segments_count = || log.segments_snapshot().len();
        log.append(&batch(1, 500), 0).expect("append");
        log.append(&batch(1, 500), 0).expect("append");
        assert_eq!(segments_count(), 2, "size roll");
        // The offset index has room for 6 entries; with an entry per batch after the first,
        // the seventh small batch finds it full.
        for _ in 0..6 {
            log.append(&batch(1, 1), 1).expect("append");
        }
        assert_eq!(segments_count(), 2);
        log.append(&batch(1, 1), 1).expect("append");
        assert_eq!(segments_count(), 3, "index roll");
        log.append(&batch(1, 1), 60_002).expect("append");
        assert_eq!(segments_count(), 4, "age roll");
    }

    /// A producer snapshot fsyncs the active segment only if batches below its offset may not
    /// be durable, so a snapshot right after a flush costs no fsync of the log.
    #[test]
    fn producer_snapshot_fsyncs_only_what_is_not_durable() {
        let dir = temp_dir("producer_snapshot_fsyncs_only_what_is_not_durable");
        let data_dir = DataDir::open(dir.path()).expect("open data dir");
        let log = data_dir
            .open_log("orders", 0, LogConfig::default())
            .expect("open log");
        log.append(&batch(2, 50), 0).expect("append");
        let syncs_before = fault::data_syncs_count();
        log.write_producer_snapshot(2, b"state").expect("snapshot");
        assert_eq!(fault::data_syncs_count(), syncs_before + 1);
        log.write_producer_snapshot(1, b"state").expect("covered");
        log.write_producer_snapshot(2, b"state").expect("covered");
        assert_eq!(fault::data_syncs_count(), syncs_before + 1);
        log.append(&batch(1, 50), 0).expect("append");
        log.write_producer_snapshot(2, b"state")
            .expect("still covered");
        assert_eq!(fault::data_syncs_count(), syncs_before + 1);
        log.write_producer_snapshot(3, b"state").expect("snapshot");
        assert_eq!(fault::data_syncs_count(), syncs_before + 2);
    }
}
