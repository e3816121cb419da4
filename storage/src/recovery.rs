//! Opening a partition's log from its directory, and recovery after an unclean stop.
//!
//! # Policy
//!
//! `RecoveryMode` decides how much is trusted:
//!
//! - After a clean stop, segment files are trusted. Sealed segments' indexes get a cheap
//!   check (whole entries, last entry inside its segment); the active segment's index is
//!   checked entry by entry (it may not have been trimmed), then the batches after its last
//!   entry are scanned to find the next offset. That tail is at most about
//!   `index_interval_bytes` long.
//! - After an unclean stop, the active segment is scanned batch by batch: header complete,
//!   magic 2, length sane, whole batch present, CRC-32C matching, each base offset above the
//!   previous batch's last offset (compaction leaves gaps, as in Kafka). The file is truncated
//!   at the first bad byte and fsynced. If the partition's recovery point (Kafka's word: how
//!   far the active segment was known durable, see `checkpoint.rs`) names the active segment,
//!   its index entries below that position are kept and the scan starts at the last of them,
//!   so recovery reads only the unflushed tail; a bad batch below the point (which cannot
//!   happen to fsynced bytes) falls back to a scan from the start. Without a usable point the
//!   scan starts at position 0 and both indexes are rebuilt from it. Sealed segments were fsynced when they were rolled, so only their index files are
//!   checked, entry by entry, and rebuilt if anything is off. A trailing empty segment (a roll
//!   cut short) is removed first, so the segment before it is the one scanned; the next offset
//!   stays at least that empty segment's base, so offsets are never handed out twice.
//!
//! Either way, a compaction swap a crash interrupted is undone or finished first (see
//! `finish_interrupted_swaps`), a missing or malformed index is rebuilt, index files without
//! a `.log` are removed, other stray files are left alone with a warning, and every
//! truncation, rebuild or swap is logged at WARN with the partition, offsets, position and
//! reason. Each segment's transaction index, which cannot be rebuilt from the segment (the
//! broker's replay adds lost entries back), is read whole and cut after its last valid entry
//! (see `TransactionIndex::open`), in both modes: entries are few, and one whose marker
//! recovery truncated away would misreport an abort. Producer snapshots are only listed; one
//! past the recovered end is deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::warn;

use crate::batch_header::{BATCH_HEADER_BYTES, BatchHeader, crc_of_header};
use crate::checkpoint::{
    RecoveryPoint, checkpoint_temp_file_name, read_log_start_offset, read_recovery_point,
    remove_recovery_point,
};
use crate::config::LogConfig;
use crate::error::{StorageError, io_error};
use crate::format::{
    CLEANER_OFFSET_CHECKPOINT_FILE_NAME, LOG_START_OFFSET_CHECKPOINT_FILE_NAME,
    RECOVERY_POINT_CHECKPOINT_FILE_NAME, SegmentFileKind, SwapStage,
    parse_producer_snapshot_file_name, parse_segment_file_name, parse_staged_segment_file_name,
    segment_file_path, staged_segment_file_path,
};
use crate::fs::{create_dir_durably, sync_dir};
use crate::index_file::IndexCheck;
use crate::offset_index::OffsetIndex;
use crate::producer_snapshot::{is_snapshot_temp_file_name, remove_snapshots_past};
use crate::segment::{Segment, SegmentIndexes, TimestampAndOffset, remove_segment_files};
use crate::time_index::TimeIndex;
use crate::topic_partition::TopicPartition;
use crate::transaction_index::TransactionIndex;

/// How far `load_log` trusts what it finds on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecoveryMode {
    /// The previous broker stopped cleanly: trust the files, scan only the active tail.
    Clean,
    /// The previous broker crashed or lost power: scan and repair the active segment.
    Unclean,
}

/// A partition's log as found on disk, ready to serve.
pub(crate) struct LoadedLog {
    /// Every segment by base offset; the last one is the active segment.
    pub segments: BTreeMap<i64, Arc<Segment>>,
    /// The offset the next append gets.
    pub next_offset: i64,
    /// The first offset readers may see.
    pub log_start_offset: i64,
    /// Max timestamp of the active segment's first batch, if it has one; the start of the
    /// segment's `segment_ms` clock.
    pub active_first_timestamp_ms: Option<i64>,
    /// How much of the active segment is known durable now.
    pub recovery_point: RecoveryPoint,
}

/// The active segment as opened.
struct ActiveSegment {
    segment: Segment,
    next_offset: i64,
    first_timestamp_ms: Option<i64>,
    /// Bytes from the segment's start known to be durable.
    durable_position: u64,
}

/// Bytes read at a time while scanning a segment.
const SCAN_BUFFER_BYTES: usize = 64 * 1024;

/// Opens the log in `partition_dir`, creating the directory and a first segment if needed.
pub(crate) fn load_log(
    partition_dir: &Path,
    topic_partition: &TopicPartition,
    config: &LogConfig,
    mode: RecoveryMode,
) -> Result<LoadedLog, StorageError> {
    create_dir_durably(partition_dir)?;
    finish_interrupted_swaps(partition_dir, topic_partition)?;
    let listing = list_dir(partition_dir, topic_partition)?;
    let loaded = load_segments(
        partition_dir,
        topic_partition,
        config,
        mode,
        listing.log_bases,
    )?;
    remove_snapshots_past(
        partition_dir,
        topic_partition,
        &listing.snapshot_offsets,
        loaded.next_offset,
    )?;
    Ok(loaded)
}

/// Opens the segments whose `.log` files start at `bases`, recovering the active one as
/// `mode` says.
fn load_segments(
    partition_dir: &Path,
    topic_partition: &TopicPartition,
    config: &LogConfig,
    mode: RecoveryMode,
    mut bases: BTreeSet<i64>,
) -> Result<LoadedLog, StorageError> {
    let checkpoint_offset = read_log_start_offset(partition_dir)?;
    let mut removed_tail_base = None;
    if mode == RecoveryMode::Unclean {
        removed_tail_base = remove_empty_tail_segments(partition_dir, topic_partition, &mut bases)?;
    }
    let Some(&active_base) = bases.last() else {
        return new_empty_log(partition_dir, config, checkpoint_offset.unwrap_or(0));
    };
    let ordered: Vec<i64> = bases.iter().copied().collect();
    let mut segments = BTreeMap::new();
    for pair in ordered.windows(2) {
        let on_disk = SegmentOnDisk::open(partition_dir, topic_partition, pair[0])?;
        let segment = open_sealed(on_disk, pair[1], config, mode)?;
        segments.insert(pair[0], Arc::new(segment));
    }
    let on_disk = SegmentOnDisk::open(partition_dir, topic_partition, active_base)?;
    let durable_position = durable_position(partition_dir, &on_disk);
    let mut active = open_active(on_disk, config, mode, durable_position)?;
    // A removed empty segment was created at the then next offset; the offsets below it may
    // have been handed out (and compacted away) even if the active segment ends earlier.
    active.next_offset = active
        .next_offset
        .max(removed_tail_base.unwrap_or(i64::MIN));
    segments.insert(active_base, Arc::new(active.segment));
    let first_base = ordered[0];
    let log_start_offset = checkpoint_offset.unwrap_or(0).max(first_base);
    if active.next_offset < log_start_offset {
        warn!(
            %topic_partition,
            next_offset = active.next_offset,
            log_start_offset,
            "the log ends before its checkpointed start; emptying it to start there"
        );
        for segment in segments.values() {
            segment.delete_files()?;
        }
        return new_empty_log(partition_dir, config, log_start_offset);
    }
    remove_segments_below(&mut segments, log_start_offset)?;
    Ok(LoadedLog {
        segments,
        next_offset: active.next_offset,
        log_start_offset,
        active_first_timestamp_ms: active.first_timestamp_ms,
        recovery_point: RecoveryPoint {
            segment_base_offset: active_base,
            durable_position: active.durable_position,
        },
    })
}

/// The position below which the active segment was durable, from the partition's recovery
/// point if it names this segment and lies inside the file; otherwise 0.
fn durable_position(partition_dir: &Path, on_disk: &SegmentOnDisk<'_>) -> u64 {
    let Some(point) = read_recovery_point(partition_dir) else {
        return 0;
    };
    let names_active = point.segment_base_offset == on_disk.base_offset;
    if !names_active || point.durable_position > on_disk.log_bytes {
        // A point in a sealed segment is merely old: the segment was rolled since. One past
        // the end of the file would mean fsynced bytes vanished, so it is not trusted either.
        return 0;
    }
    point.durable_position
}

/// A log with one empty segment at `base_offset`, durably created.
fn new_empty_log(
    partition_dir: &Path,
    config: &LogConfig,
    base_offset: i64,
) -> Result<LoadedLog, StorageError> {
    // An old recovery point could name a segment of this base offset with other contents.
    remove_recovery_point(partition_dir)?;
    let segment = Segment::create(partition_dir, base_offset, config)?;
    // The new files and their directory entries must survive a crash before anything is
    // appended to them, or a later fsync of the data would have no file to land in.
    segment.sync_all()?;
    sync_dir(partition_dir)?;
    Ok(LoadedLog {
        segments: BTreeMap::from([(base_offset, Arc::new(segment))]),
        next_offset: base_offset,
        log_start_offset: base_offset,
        active_first_timestamp_ms: None,
        recovery_point: RecoveryPoint {
            segment_base_offset: base_offset,
            durable_position: 0,
        },
    })
}

/// What a partition directory holds, by name.
struct DirListing {
    /// Base offsets of the segments with a `.log` file.
    log_bases: BTreeSet<i64>,
    /// Offsets of the producer snapshots.
    snapshot_offsets: Vec<i64>,
}

/// Lists the segments and producer snapshots, reading no file. Index files without a `.log`
/// and temporary files of interrupted checkpoint or snapshot writes are removed; anything else
/// that is not ours is left alone with a warning.
fn list_dir(
    partition_dir: &Path,
    topic_partition: &TopicPartition,
) -> Result<DirListing, StorageError> {
    let checkpoint_names = [
        LOG_START_OFFSET_CHECKPOINT_FILE_NAME,
        CLEANER_OFFSET_CHECKPOINT_FILE_NAME,
        RECOVERY_POINT_CHECKPOINT_FILE_NAME,
    ];
    let checkpoint_temps = checkpoint_names.map(checkpoint_temp_file_name);
    let mut listing = DirListing {
        log_bases: BTreeSet::new(),
        snapshot_offsets: Vec::new(),
    };
    let mut indexes = Vec::new();
    for entry in std::fs::read_dir(partition_dir).map_err(io_error(partition_dir))? {
        let path = entry.map_err(io_error(partition_dir))?.path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        if let Some(offset) = parse_producer_snapshot_file_name(name) {
            listing.snapshot_offsets.push(offset);
            continue;
        }
        match parse_segment_file_name(name) {
            Some((base_offset, SegmentFileKind::Log)) => {
                listing.log_bases.insert(base_offset);
            }
            Some((base_offset, _)) => indexes.push((base_offset, path)),
            None if checkpoint_names.contains(&name) => {}
            // An interrupted write; the file it was to replace is still the old one.
            None if checkpoint_temps.iter().any(|temp| temp == name) => remove_file(&path)?,
            None if is_snapshot_temp_file_name(name) => remove_file(&path)?,
            None => {
                let path = path.display();
                warn!(%topic_partition, %path, "ignoring a stray file in a partition directory");
            }
        }
    }
    for (base_offset, path) in indexes {
        if !listing.log_bases.contains(&base_offset) {
            let path_shown = path.display();
            warn!(%topic_partition, path = %path_shown, "removing an index file without its .log");
            remove_file(&path)?;
        }
    }
    Ok(listing)
}

fn remove_file(path: &Path) -> Result<(), StorageError> {
    std::fs::remove_file(path).map_err(io_error(path))
}

/// Undoes or finishes a compaction swap a crash interrupted (the steps are in
/// `log/compaction.rs`). `.cleaned` files, and index `.swap` files without a `.log.swap`,
/// belong to a swap that never committed: they are deleted and the old segments stay. A
/// `.log.swap` is a committed swap: `finish_swap` completes it.
fn finish_interrupted_swaps(
    partition_dir: &Path,
    topic_partition: &TopicPartition,
) -> Result<(), StorageError> {
    let mut log_swaps = BTreeSet::new();
    let mut index_swaps = Vec::new();
    let mut changed = false;
    for entry in std::fs::read_dir(partition_dir).map_err(io_error(partition_dir))? {
        let path = entry.map_err(io_error(partition_dir))?.path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        match parse_staged_segment_file_name(name) {
            Some((_, _, SwapStage::Cleaned)) => {
                let path_shown = path.display();
                warn!(%topic_partition, path = %path_shown,
                    "removing a cleaned segment file of a swap that did not commit");
                remove_file(&path)?;
                changed = true;
            }
            Some((base_offset, SegmentFileKind::Log, SwapStage::Swap)) => {
                log_swaps.insert(base_offset);
            }
            Some((base_offset, _, SwapStage::Swap)) => index_swaps.push((base_offset, path)),
            None => {}
        }
    }
    for (base_offset, path) in index_swaps {
        if !log_swaps.contains(&base_offset) {
            let path_shown = path.display();
            warn!(%topic_partition, path = %path_shown,
                "removing a swap index file of a swap that did not commit");
            remove_file(&path)?;
            changed = true;
        }
    }
    for base_offset in log_swaps {
        finish_swap(partition_dir, topic_partition, base_offset)?;
        changed = true;
    }
    if changed {
        // So that a later crash finds the same files as this start did.
        sync_dir(partition_dir)?;
    }
    Ok(())
}

/// Finishes the committed swap of `<base_offset>.log.swap`: deletes the segments it
/// replaces after its base (those whose base offsets lie below the end of its batches),
/// then renames its index files and finally its `.log` over the segment at its base (see
/// `install_swapped_index` for an index without its `.swap`). Each step can be repeated, so a
/// crash here is finished by the next start.
fn finish_swap(
    partition_dir: &Path,
    topic_partition: &TopicPartition,
    base_offset: i64,
) -> Result<(), StorageError> {
    let log_swap_path = staged_segment_file_path(
        partition_dir,
        base_offset,
        SegmentFileKind::Log,
        SwapStage::Swap,
    );
    let end_offset = swap_end_offset(&log_swap_path, base_offset)?;
    // An empty swap (every record removed) ends at its base and replaces no later segment.
    let replaced: Vec<i64> = log_file_bases(partition_dir)?
        .range(base_offset + 1..end_offset.max(base_offset + 1))
        .copied()
        .collect();
    for replaced_base_offset in &replaced {
        remove_segment_files(partition_dir, *replaced_base_offset)?;
    }
    for kind in SegmentFileKind::ALL {
        if kind != SegmentFileKind::Log {
            install_swapped_index(partition_dir, base_offset, kind)?;
        }
    }
    let log_path = segment_file_path(partition_dir, base_offset, SegmentFileKind::Log);
    std::fs::rename(&log_swap_path, &log_path).map_err(io_error(&log_path))?;
    warn!(%topic_partition, base_offset, end_offset, replaced_segments = ?replaced,
        "finished a compaction swap interrupted by a crash");
    Ok(())
}

/// Renames a committed swap's index `.swap` file over the segment's index. Without a `.swap`:
/// an offset or time index is deleted, since it may be the old segment's, and rebuilt; a
/// transaction index, which cannot be rebuilt, is the new one, already renamed. The cleaner
/// always writes a `.txnindex.swap` (even empty) and renames it before the `.log.swap`, so
/// with a `.log.swap` present, a missing one was installed by the crashed swap.
fn install_swapped_index(
    partition_dir: &Path,
    base_offset: i64,
    kind: SegmentFileKind,
) -> Result<(), StorageError> {
    let swap_path = staged_segment_file_path(partition_dir, base_offset, kind, SwapStage::Swap);
    let index_path = segment_file_path(partition_dir, base_offset, kind);
    match std::fs::rename(swap_path, &index_path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if kind == SegmentFileKind::TransactionIndex {
                return Ok(());
            }
            match std::fs::remove_file(&index_path) {
                Ok(()) => Ok(()),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(error) => Err(io_error(&index_path)(error)),
            }
        }
        Err(error) => Err(io_error(&index_path)(error)),
    }
}

/// Base offsets of the `.log` files in a partition directory.
fn log_file_bases(partition_dir: &Path) -> Result<BTreeSet<i64>, StorageError> {
    let mut bases = BTreeSet::new();
    for entry in std::fs::read_dir(partition_dir).map_err(io_error(partition_dir))? {
        let name = entry.map_err(io_error(partition_dir))?.file_name();
        let parsed = name.to_str().and_then(parse_segment_file_name);
        if let Some((base_offset, SegmentFileKind::Log)) = parsed {
            bases.insert(base_offset);
        }
    }
    Ok(bases)
}

/// The offset after the last valid batch of a swap file: the segments it replaces start
/// below it. Scanning stops at a bad batch, as for a sealed segment.
fn swap_end_offset(log_swap_path: &Path, base_offset: i64) -> Result<i64, StorageError> {
    let file = File::open(log_swap_path).map_err(io_error(log_swap_path))?;
    let file_bytes = file.metadata().map_err(io_error(log_swap_path))?.len();
    let start = ScanStart {
        position: 0,
        offset: base_offset,
    };
    let scan = scan_batches(
        &file,
        log_swap_path,
        start,
        file_bytes,
        CrcCheck::Skip,
        |_, _| {},
    )?;
    Ok(scan.next_offset)
}

/// Removes empty segments at the end of the log, so that the segment before them, which an
/// interrupted roll may have left unsynced, is the active one and gets scanned. Returns the
/// base offset of the last one removed, if any: where the next offset had got to.
fn remove_empty_tail_segments(
    partition_dir: &Path,
    topic_partition: &TopicPartition,
    bases: &mut BTreeSet<i64>,
) -> Result<Option<i64>, StorageError> {
    let mut removed_tail_base = None;
    while bases.len() > 1 {
        let Some(&last) = bases.last() else { break };
        let log_path = segment_file_path(partition_dir, last, SegmentFileKind::Log);
        let log_bytes = std::fs::metadata(&log_path)
            .map_err(io_error(&log_path))?
            .len();
        if log_bytes > 0 {
            break;
        }
        let reason = "an empty last segment left by an interrupted roll";
        warn!(%topic_partition, base_offset = last, reason, "removing a segment");
        remove_segment_files(partition_dir, last)?;
        bases.remove(&last);
        removed_tail_base.get_or_insert(last);
    }
    Ok(removed_tail_base)
}

/// Removes sealed segments whose every offset is below the log start offset: DeleteRecords
/// or retention had started deleting them when the broker stopped.
fn remove_segments_below(
    segments: &mut BTreeMap<i64, Arc<Segment>>,
    log_start_offset: i64,
) -> Result<(), StorageError> {
    let bases: Vec<i64> = segments.keys().copied().collect();
    for pair in bases.windows(2) {
        if pair[1] > log_start_offset {
            break;
        }
        if let Some(segment) = segments.remove(&pair[0]) {
            segment.delete_files()?;
        }
    }
    Ok(())
}

/// A segment being opened: where it is, and its `.log` file.
struct SegmentOnDisk<'a> {
    partition_dir: &'a Path,
    topic_partition: &'a TopicPartition,
    base_offset: i64,
    log_path: PathBuf,
    file: File,
    /// The `.log` file's length as found.
    log_bytes: u64,
}

impl<'a> SegmentOnDisk<'a> {
    fn open(
        partition_dir: &'a Path,
        topic_partition: &'a TopicPartition,
        base_offset: i64,
    ) -> Result<SegmentOnDisk<'a>, StorageError> {
        let log_path = segment_file_path(partition_dir, base_offset, SegmentFileKind::Log);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(false)
            .open(&log_path)
            .map_err(io_error(&log_path))?;
        let log_bytes = file.metadata().map_err(io_error(&log_path))?.len();
        Ok(SegmentOnDisk {
            partition_dir,
            topic_partition,
            base_offset,
            log_path,
            file,
            log_bytes,
        })
    }

    fn path(&self, kind: SegmentFileKind) -> PathBuf {
        segment_file_path(self.partition_dir, self.base_offset, kind)
    }

    /// Scans from `start`; see `scan_batches`.
    fn scan(
        &self,
        start: ScanStart,
        crc_check: CrcCheck,
        on_batch: impl FnMut(u64, &BatchHeader),
    ) -> Result<ScanOutcome, StorageError> {
        let file_bytes = self.log_bytes;
        scan_batches(
            &self.file,
            &self.log_path,
            start,
            file_bytes,
            crc_check,
            on_batch,
        )
    }

    /// The segment, with `bytes_written` and `bytes_synced` as given, and its transaction
    /// index loaded, keeping only entries whose markers lie before `end_offset` (see
    /// `TransactionIndex::open`).
    fn into_segment(
        self,
        indexes: SegmentIndexes,
        end_offset: i64,
        bytes_written: u64,
        bytes_synced: u64,
    ) -> Result<Segment, StorageError> {
        let transaction_index = TransactionIndex::open(
            &self.path(SegmentFileKind::TransactionIndex),
            self.topic_partition,
            self.base_offset,
            end_offset,
        )?;
        let SegmentOnDisk {
            partition_dir,
            base_offset,
            file,
            ..
        } = self;
        Ok(Segment::from_parts(
            partition_dir,
            base_offset,
            file,
            indexes,
            transaction_index,
            bytes_written,
            bytes_synced,
        ))
    }
}

/// Opens a sealed segment, rebuilding its indexes if they do not look right.
fn open_sealed(
    on_disk: SegmentOnDisk<'_>,
    next_base_offset: i64,
    config: &LogConfig,
    mode: RecoveryMode,
) -> Result<Segment, StorageError> {
    let check = match mode {
        RecoveryMode::Clean => IndexCheck::LastEntry,
        RecoveryMode::Unclean => IndexCheck::AllEntries,
    };
    let base_offset = on_disk.base_offset;
    let offset_index_path = on_disk.path(SegmentFileKind::OffsetIndex);
    let time_index_path = on_disk.path(SegmentFileKind::TimeIndex);
    let offset_index =
        OffsetIndex::open(&offset_index_path, base_offset, on_disk.log_bytes, check)?;
    let time_index = TimeIndex::open(&time_index_path, base_offset, next_base_offset, check)?;
    let reason = match (offset_index, time_index) {
        (Err(reason), _) | (_, Err(reason)) => reason,
        (Ok(offset_index), _)
            if offset_index.entries_count() != offset_index.capacity_entries() =>
        {
            "offset index has entries that cannot be right"
        }
        (_, Ok(time_index)) if time_index.entries_count() != time_index.capacity_entries() => {
            "time index has entries that cannot be right"
        }
        (Ok(offset_index), Ok(time_index)) => {
            let indexes = SegmentIndexes {
                max_timestamp: last_time_index_entry(&time_index),
                offset_index,
                time_index,
                bytes_since_last_index_entry: 0,
            };
            let log_bytes = on_disk.log_bytes;
            return on_disk.into_segment(indexes, next_base_offset, log_bytes, log_bytes);
        }
    };
    warn!(topic_partition = %on_disk.topic_partition, base_offset, reason,
        "rebuilding the indexes of a sealed segment");
    rebuild_sealed(on_disk, next_base_offset, config)
}

fn last_time_index_entry(time_index: &TimeIndex) -> Option<TimestampAndOffset> {
    let (timestamp_ms, offset) = time_index.last_entry()?;
    Some(TimestampAndOffset {
        timestamp_ms,
        offset,
    })
}

/// Rebuilds a sealed segment's indexes from its batches. A bad batch is not truncated (that
/// would leave a gap before the next segment); the segment just ends there for readers. Its
/// transaction index is kept up to `next_base_offset` all the same: its entries cannot be
/// rebuilt, and the segment's offsets still run to there.
fn rebuild_sealed(
    on_disk: SegmentOnDisk<'_>,
    next_base_offset: i64,
    config: &LogConfig,
) -> Result<Segment, StorageError> {
    let base_offset = on_disk.base_offset;
    let mut indexes = SegmentIndexes::create(on_disk.partition_dir, base_offset, config)?;
    let start = ScanStart {
        position: 0,
        offset: base_offset,
    };
    let scan = on_disk.scan(start, CrcCheck::Skip, |position, header| {
        indexes.index_batch(header, position, config.index_interval_bytes)
    })?;
    if let Some(reason) = scan.problem {
        warn!(
            topic_partition = %on_disk.topic_partition,
            base_offset,
            next_offset = scan.next_offset,
            position = scan.end_position,
            reason,
            "a sealed segment has an invalid batch; reads end there"
        );
    }
    indexes.seal()?;
    let end = scan.end_position;
    on_disk.into_segment(indexes, next_base_offset, end, end)
}

/// Opens the active segment as `mode` says; `durable_position` is where its recovery point
/// says it was durable (0 if unknown).
fn open_active(
    on_disk: SegmentOnDisk<'_>,
    config: &LogConfig,
    mode: RecoveryMode,
    durable_position: u64,
) -> Result<ActiveSegment, StorageError> {
    match mode {
        RecoveryMode::Clean => open_active_clean(on_disk, config, durable_position),
        RecoveryMode::Unclean if durable_position > 0 => {
            recover_active_after(on_disk, config, durable_position)
        }
        RecoveryMode::Unclean => recover_active(on_disk, config),
    }
}

/// What a clean open learns from the active segment's offset index and the batches after
/// its last entry.
struct CleanTail {
    offset_index: OffsetIndex,
    /// Position of the last indexed batch, where the scan started.
    position: u64,
    next_offset: i64,
    /// Largest timestamp among the scanned batches.
    max_timestamp: Option<TimestampAndOffset>,
}

/// Opens the active segment after a clean stop: trusts its indexes and scans only the batches
/// after the last index entry. Anything unexpected falls back to full recovery.
fn open_active_clean(
    on_disk: SegmentOnDisk<'_>,
    config: &LogConfig,
    durable_position: u64,
) -> Result<ActiveSegment, StorageError> {
    let tail = match read_clean_tail(&on_disk)? {
        Ok(tail) => tail,
        Err(reason) => return recover_after_clean_stop(on_disk, config, reason),
    };
    let time_index_path = on_disk.path(SegmentFileKind::TimeIndex);
    let check = IndexCheck::AllEntries;
    let time_index = match TimeIndex::open(
        &time_index_path,
        on_disk.base_offset,
        tail.next_offset,
        check,
    )? {
        Ok(time_index) => time_index,
        Err(reason) => return recover_after_clean_stop(on_disk, config, reason),
    };
    let indexed_max_timestamp = last_time_index_entry(&time_index);
    let mut indexes = SegmentIndexes {
        offset_index: tail.offset_index,
        time_index,
        max_timestamp: larger_timestamp(indexed_max_timestamp, tail.max_timestamp),
        bytes_since_last_index_entry: on_disk.log_bytes - tail.position,
    };
    indexes.make_writable(config)?;
    let first_timestamp_ms = first_batch_max_timestamp(&on_disk, on_disk.log_bytes)?;
    let log_bytes = on_disk.log_bytes;
    // Synced bytes start at zero so the first `sync_through` really fsyncs rather than trust
    // that the previous broker's last flush reached the disk.
    let segment = on_disk.into_segment(indexes, tail.next_offset, log_bytes, 0)?;
    Ok(ActiveSegment {
        segment,
        next_offset: tail.next_offset,
        first_timestamp_ms,
        durable_position,
    })
}

/// Opens the active segment's offset index and scans the batches after its last entry;
/// `Ok(Err(reason))` if either cannot be trusted.
fn read_clean_tail(
    on_disk: &SegmentOnDisk<'_>,
) -> Result<Result<CleanTail, &'static str>, StorageError> {
    let path = on_disk.path(SegmentFileKind::OffsetIndex);
    let (base_offset, log_bytes) = (on_disk.base_offset, on_disk.log_bytes);
    let offset_index =
        match OffsetIndex::open(&path, base_offset, log_bytes, IndexCheck::AllEntries)? {
            Ok(offset_index) => offset_index,
            Err(reason) => return Ok(Err(reason)),
        };
    let (offset, position) = offset_index.last_entry().unwrap_or((base_offset, 0));
    let mut max_timestamp = None;
    let scan = on_disk.scan(
        ScanStart { position, offset },
        CrcCheck::Verify,
        |_, header| {
            max_timestamp = max_timestamp_with(max_timestamp, header);
        },
    )?;
    if let Some(reason) = scan.problem {
        return Ok(Err(reason));
    }
    let next_offset = scan.next_offset;
    Ok(Ok(CleanTail {
        offset_index,
        position,
        next_offset,
        max_timestamp,
    }))
}

fn recover_after_clean_stop(
    on_disk: SegmentOnDisk<'_>,
    config: &LogConfig,
    reason: &'static str,
) -> Result<ActiveSegment, StorageError> {
    warn!(topic_partition = %on_disk.topic_partition, base_offset = on_disk.base_offset, reason,
        "the active segment needs recovery despite a clean shutdown");
    recover_active(on_disk, config)
}

/// Recovers the active segment: scans every batch from the start, truncates at the first bad
/// byte, fsyncs, and rebuilds both indexes from the scan.
fn recover_active(
    on_disk: SegmentOnDisk<'_>,
    config: &LogConfig,
) -> Result<ActiveSegment, StorageError> {
    let base_offset = on_disk.base_offset;
    let mut indexes = SegmentIndexes::create(on_disk.partition_dir, base_offset, config)?;
    let start = ScanStart {
        position: 0,
        offset: base_offset,
    };
    let scan = on_disk.scan(start, CrcCheck::Verify, |position, header| {
        indexes.index_batch(header, position, config.index_interval_bytes)
    })?;
    finish_recovery(on_disk, indexes, &scan)
}

/// Recovers the active segment when its first `durable_position` bytes were fsynced: keeps
/// the index entries below that position and scans from the last of them, so only the
/// unflushed tail (plus at most one index interval) is read. Falls back to `recover_active`
/// if the indexes or the durable bytes do not check out.
fn recover_active_after(
    on_disk: SegmentOnDisk<'_>,
    config: &LogConfig,
    durable_position: u64,
) -> Result<ActiveSegment, StorageError> {
    let mut indexes = match open_indexes_below(&on_disk, durable_position)? {
        Ok(indexes) => indexes,
        Err(reason) => return recover_after_bad_point(on_disk, config, reason),
    };
    // Trimmed first so that the entries dropped above do not linger in the preallocated tail,
    // where a later open could take them for real ones.
    indexes.offset_index.file().trim()?;
    indexes.time_index.file().trim()?;
    indexes.make_writable(config)?;
    let (offset, position) = indexes
        .offset_index
        .last_entry()
        .unwrap_or((on_disk.base_offset, 0));
    assert!(position < durable_position);
    let start = ScanStart { position, offset };
    let scan = on_disk.scan(start, CrcCheck::Verify, |position, header| {
        indexes.index_batch(header, position, config.index_interval_bytes)
    })?;
    if scan.problem.is_some() && scan.end_position < durable_position {
        drop(indexes);
        let reason = "an invalid batch below the recovery point";
        return recover_after_bad_point(on_disk, config, reason);
    }
    finish_recovery(on_disk, indexes, &scan)
}

/// The active segment's indexes as found, keeping only entries for batches below
/// `durable_position`; `Ok(Err(reason))` if either file cannot be used.
fn open_indexes_below(
    on_disk: &SegmentOnDisk<'_>,
    durable_position: u64,
) -> Result<Result<SegmentIndexes, &'static str>, StorageError> {
    let (base_offset, log_bytes) = (on_disk.base_offset, on_disk.log_bytes);
    let path = on_disk.path(SegmentFileKind::OffsetIndex);
    let mut offset_index =
        match OffsetIndex::open(&path, base_offset, log_bytes, IndexCheck::AllEntries)? {
            Ok(offset_index) => offset_index,
            Err(reason) => return Ok(Err(reason)),
        };
    offset_index.keep_entries_below(durable_position);
    // Time index entries name the batch that first reached their timestamp, at or before the
    // batch indexed at the same time; those past the scan start are added again by the scan.
    let (scan_offset, _) = offset_index.last_entry().unwrap_or((base_offset, 0));
    let path = on_disk.path(SegmentFileKind::TimeIndex);
    let bound = scan_offset + 1;
    let time_index = match TimeIndex::open(&path, base_offset, bound, IndexCheck::AllEntries)? {
        Ok(time_index) => time_index,
        Err(reason) => return Ok(Err(reason)),
    };
    Ok(Ok(SegmentIndexes {
        max_timestamp: last_time_index_entry(&time_index),
        offset_index,
        time_index,
        bytes_since_last_index_entry: 0,
    }))
}

fn recover_after_bad_point(
    on_disk: SegmentOnDisk<'_>,
    config: &LogConfig,
    reason: &'static str,
) -> Result<ActiveSegment, StorageError> {
    warn!(topic_partition = %on_disk.topic_partition, base_offset = on_disk.base_offset, reason,
        "scanning the whole active segment despite its recovery point");
    recover_active(on_disk, config)
}

/// Truncates the active segment after its last valid batch, fsyncs it, and assembles it with
/// the indexes the scan filled.
fn finish_recovery(
    on_disk: SegmentOnDisk<'_>,
    indexes: SegmentIndexes,
    scan: &ScanOutcome,
) -> Result<ActiveSegment, StorageError> {
    let log_path = &on_disk.log_path;
    if let Some(reason) = scan.problem {
        warn!(
            topic_partition = %on_disk.topic_partition,
            base_offset = on_disk.base_offset,
            next_offset = scan.next_offset,
            position = scan.end_position,
            truncated_bytes = on_disk.log_bytes - scan.end_position,
            reason,
            "truncating the active segment at its first invalid batch"
        );
        on_disk
            .file
            .set_len(scan.end_position)
            .map_err(io_error(log_path))?;
    }
    // The truncation must be durable before new batches are appended after it. And the bytes
    // kept may so far exist only in the page cache of the process that crashed; consumers will
    // read them, so they must not vanish in a later power loss.
    on_disk.file.sync_all().map_err(io_error(log_path))?;
    let first_timestamp_ms = first_batch_max_timestamp(&on_disk, scan.end_position)?;
    let end = scan.end_position;
    let segment = on_disk.into_segment(indexes, scan.next_offset, end, end)?;
    Ok(ActiveSegment {
        segment,
        next_offset: scan.next_offset,
        first_timestamp_ms,
        durable_position: end,
    })
}

/// The max timestamp of the batch at position 0, if the segment has a batch and it has a
/// timestamp.
fn first_batch_max_timestamp(
    on_disk: &SegmentOnDisk<'_>,
    log_bytes: u64,
) -> Result<Option<i64>, StorageError> {
    let header_bytes = u64::try_from(BATCH_HEADER_BYTES).expect("small constant");
    if log_bytes < header_bytes {
        return Ok(None);
    }
    let mut bytes = [0; BATCH_HEADER_BYTES];
    on_disk
        .file
        .read_exact_at(&mut bytes, 0)
        .map_err(io_error(&on_disk.log_path))?;
    let header = BatchHeader::parse(&bytes).ok();
    let timestamp_ms = header.map(|header| header.max_timestamp_ms);
    Ok(timestamp_ms.filter(|timestamp_ms| *timestamp_ms >= 0))
}

/// `max` updated with one batch: a strictly larger timestamp wins, so ties keep the earliest.
fn max_timestamp_with(
    max: Option<TimestampAndOffset>,
    header: &BatchHeader,
) -> Option<TimestampAndOffset> {
    if header.max_timestamp_ms < 0 {
        return max;
    }
    let batch = TimestampAndOffset {
        timestamp_ms: header.max_timestamp_ms,
        offset: header.base_offset,
    };
    larger_timestamp(max, Some(batch))
}

/// The larger of two timestamps, the earlier offset on a tie.
fn larger_timestamp(
    left: Option<TimestampAndOffset>,
    right: Option<TimestampAndOffset>,
) -> Option<TimestampAndOffset> {
    match (left, right) {
        (Some(left), Some(right)) => {
            let right_wins = right.timestamp_ms > left.timestamp_ms
                || (right.timestamp_ms == left.timestamp_ms && right.offset < left.offset);
            Some(if right_wins { right } else { left })
        }
        (left, None) => left,
        (None, right) => right,
    }
}

/// Whether a scan checks each batch's CRC-32C, which means reading all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CrcCheck {
    Verify,
    Skip,
}

/// Where a scan starts: a batch boundary and the base offset expected there.
#[derive(Debug, Clone, Copy)]
struct ScanStart {
    position: u64,
    offset: i64,
}

/// How far a scan got.
struct ScanOutcome {
    /// Position after the last valid batch.
    end_position: u64,
    /// Offset after the last valid batch.
    next_offset: i64,
    /// Why the scan stopped before the end of the file, if it did.
    problem: Option<&'static str>,
}

/// Reads batches from `start` to `file_bytes`, calling `on_batch` with the position and
/// header of each valid one, and stops at the first invalid one. I/O errors are errors;
/// invalid bytes are the outcome's `problem`.
fn scan_batches(
    file: &File,
    log_path: &Path,
    start: ScanStart,
    file_bytes: u64,
    crc_check: CrcCheck,
    mut on_batch: impl FnMut(u64, &BatchHeader),
) -> Result<ScanOutcome, StorageError> {
    let mut reader = BufReader::with_capacity(SCAN_BUFFER_BYTES, file);
    reader
        .seek(SeekFrom::Start(start.position))
        .map_err(io_error(log_path))?;
    let mut outcome = ScanOutcome {
        end_position: start.position,
        next_offset: start.offset,
        problem: None,
    };
    let mut chunk = vec![0; SCAN_BUFFER_BYTES];
    while outcome.end_position < file_bytes {
        let remaining_bytes = file_bytes - outcome.end_position;
        let expected_offset = outcome.next_offset;
        let batch = read_batch(
            &mut reader,
            remaining_bytes,
            expected_offset,
            crc_check,
            &mut chunk,
        )
        .map_err(io_error(log_path))?;
        let header = match batch {
            Ok(header) => header,
            Err(problem) => {
                outcome.problem = Some(problem);
                break;
            }
        };
        on_batch(outcome.end_position, &header);
        outcome.end_position += header.size_bytes;
        outcome.next_offset = header.last_offset + 1;
    }
    Ok(outcome)
}

/// Reads and checks the batch at the reader's position, leaving the reader after it.
fn read_batch(
    reader: &mut BufReader<&File>,
    remaining_bytes: u64,
    expected_offset: i64,
    crc_check: CrcCheck,
    chunk: &mut [u8],
) -> std::io::Result<Result<BatchHeader, &'static str>> {
    let header_bytes = u64::try_from(BATCH_HEADER_BYTES).expect("small constant");
    if remaining_bytes < header_bytes {
        return Ok(Err("incomplete batch header"));
    }
    let mut bytes = [0; BATCH_HEADER_BYTES];
    reader.read_exact(&mut bytes)?;
    let header = match BatchHeader::parse(&bytes) {
        Ok(header) => header,
        Err(reason) => return Ok(Err(reason)),
    };
    if header.size_bytes > remaining_bytes {
        return Ok(Err("incomplete batch"));
    }
    // Above, not equal to: compaction removes whole batches and leaves gaps.
    if header.base_offset < expected_offset {
        return Ok(Err(
            "base offset is not above the previous batch's last offset",
        ));
    }
    if header.last_offset == i64::MAX {
        return Ok(Err("last offset leaves no next offset"));
    }
    let mut body_bytes = header.size_bytes - header_bytes;
    if crc_check == CrcCheck::Skip {
        let skip = i64::try_from(body_bytes).expect("a batch is smaller than 2 GiB");
        reader.seek_relative(skip)?;
        return Ok(Ok(header));
    }
    let mut crc = crc_of_header(&bytes);
    while body_bytes > 0 {
        let length = usize::try_from(body_bytes).map_or(chunk.len(), |body| body.min(chunk.len()));
        reader.read_exact(&mut chunk[..length])?;
        crc = crc32c::crc32c_append(crc, &chunk[..length]);
        body_bytes -= u64::try_from(length).expect("chunk fits u64");
    }
    if crc != header.crc {
        return Ok(Err("CRC-32C mismatch"));
    }
    Ok(Ok(header))
}
