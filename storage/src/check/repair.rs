//! `riffle check --repair`: fixes what a check found, the way recovery would, and says what it
//! changed.
//!
//! # Policy
//!
//! - A problem in a `.log` file's batches cuts the partition there, as recovery cuts the
//!   active segment: the segment is truncated at the first bad batch (fsynced), every later
//!   segment is removed, and the cut segment's indexes are rebuilt. Producer snapshots past
//!   the new end and the recovery point go, as they describe bytes that are gone; the cut
//!   segment's transaction index is cut to it (`TransactionIndex::open`).
//! - A wrong offset or time index is rebuilt from its segment's batches.
//! - An invalid transaction index entry is cut off with everything after it, as
//!   `TransactionIndex::open` does; the broker adds lost entries back from its snapshot.
//! - Unreadable checkpoints and producer snapshots are left alone: guessing a log start offset
//!   could expose deleted records, so the operator has to decide.
//!
//! Rebuilt indexes follow the `LogConfig` passed in; the check does not know topic configs,
//! so their density may differ from what the broker would have written, which is harmless.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::batch_header::{BATCH_HEADER_BYTES, BatchHeader};
use crate::check::{CHECK_BUFFER_BYTES, CheckedDataDir, PartitionReport};
use crate::checkpoint::remove_recovery_point;
use crate::config::LogConfig;
use crate::error::{StorageError, io_error};
use crate::format::{
    RECOVERY_POINT_CHECKPOINT_FILE_NAME, SegmentFileKind, parse_producer_snapshot_file_name,
    parse_segment_file_name, producer_snapshot_file_name, segment_file_path,
};
use crate::fs::sync_dir;
use crate::producer_snapshot::remove_snapshots_past;
use crate::segment::{SegmentIndexes, remove_segment_files};
use crate::transaction_index::TransactionIndex;

/// One change `repair` made to the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairAction {
    /// A `.log` file was truncated at its first bad batch.
    TruncatedSegment {
        /// The `.log` file.
        path: PathBuf,
        /// Its new length, the position of the bad batch.
        position: u64,
        /// Bytes removed.
        removed_bytes: u64,
    },
    /// A segment after the cut was removed with its indexes.
    RemovedSegment {
        /// Its `.log` file.
        path: PathBuf,
    },
    /// A segment's offset and time indexes were rebuilt from its batches.
    RebuiltIndexes {
        /// The segment's `.log` file.
        path: PathBuf,
    },
    /// A transaction index was cut after its last valid entry.
    CutTransactionIndex {
        /// The `.txnindex` file.
        path: PathBuf,
        /// Bytes removed.
        removed_bytes: u64,
    },
    /// A producer snapshot past the new end of the log was removed.
    RemovedProducerSnapshot {
        /// The snapshot file.
        path: PathBuf,
    },
    /// The recovery point was removed, since it may name bytes that are gone.
    RemovedRecoveryPoint {
        /// The checkpoint file.
        path: PathBuf,
    },
}

impl fmt::Display for RepairAction {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RepairAction::TruncatedSegment {
                path,
                position,
                removed_bytes,
            } => write!(
                formatter,
                "{}: truncated at position {position} ({removed_bytes} bytes removed)",
                path.display()
            ),
            RepairAction::RemovedSegment { path } => {
                write!(
                    formatter,
                    "{}: removed segment after the cut",
                    path.display()
                )
            }
            RepairAction::RebuiltIndexes { path } => {
                write!(
                    formatter,
                    "{}: rebuilt offset and time indexes",
                    path.display()
                )
            }
            RepairAction::CutTransactionIndex {
                path,
                removed_bytes,
            } => write!(
                formatter,
                "{}: cut after its last valid entry ({removed_bytes} bytes removed)",
                path.display()
            ),
            RepairAction::RemovedProducerSnapshot { path } => {
                write!(formatter, "{}: removed, past the log's end", path.display())
            }
            RepairAction::RemovedRecoveryPoint { path } => {
                write!(formatter, "{}: removed", path.display())
            }
        }
    }
}

impl CheckedDataDir {
    /// Repairs what `report` (from [`CheckedDataDir::check`] on this directory) found, as the
    /// module doc describes, and returns what it changed, in order. Check again afterwards to
    /// see what is left.
    ///
    /// # Errors
    /// I/O errors; a repair cut short by one leaves files recovery can still open.
    pub fn repair(
        &self,
        report: &PartitionReport,
        config: &LogConfig,
    ) -> Result<Vec<RepairAction>, StorageError> {
        let dir = report.dir.as_path();
        let mut actions = Vec::new();
        let mut bases = crate::check::log_file_bases(dir)?;
        let mut rebuilds = segments_with_problems(report, |kind| {
            matches!(
                kind,
                SegmentFileKind::OffsetIndex | SegmentFileKind::TimeIndex
            )
        });
        let mut transaction_cuts =
            segments_with_problems(report, |kind| kind == SegmentFileKind::TransactionIndex);
        let cut = first_bad_batch(report);
        if let Some((base_offset, position)) = cut {
            cut_partition(dir, base_offset, position, &mut bases, &mut actions)?;
            rebuilds.retain(|base| *base < base_offset);
            rebuilds.insert(base_offset);
            transaction_cuts.retain(|base| *base < base_offset);
            transaction_cuts.insert(base_offset);
        }
        let mut next_offset = None;
        for base_offset in &rebuilds {
            let rebuilt_next_offset = rebuild_indexes(dir, *base_offset, config)?;
            if bases.last() == Some(base_offset) {
                next_offset = Some(rebuilt_next_offset);
            }
            let path = segment_file_path(dir, *base_offset, SegmentFileKind::Log);
            actions.push(RepairAction::RebuiltIndexes { path });
        }
        let next_offset = match next_offset {
            Some(next_offset) => next_offset,
            None => log_next_offset(dir, &bases)?,
        };
        for base_offset in transaction_cuts {
            let end_offset = bases
                .iter()
                .find(|base| **base > base_offset)
                .copied()
                .unwrap_or(next_offset);
            cut_transaction_index(report, base_offset, end_offset, &mut actions)?;
        }
        if cut.is_some() {
            remove_state_past(report, next_offset, &mut actions)?;
        }
        // So that the next start finds the files as this repair left them.
        sync_dir(dir)?;
        Ok(actions)
    }
}

/// Base offsets of the segments whose files of the kinds `is_kind` accepts have problems.
fn segments_with_problems(
    report: &PartitionReport,
    is_kind: impl Fn(SegmentFileKind) -> bool,
) -> BTreeSet<i64> {
    report
        .problems
        .iter()
        .filter_map(|problem| segment_file_of(&problem.path))
        .filter(|(_, kind)| is_kind(*kind))
        .map(|(base_offset, _)| base_offset)
        .collect()
}

fn segment_file_of(path: &Path) -> Option<(i64, SegmentFileKind)> {
    parse_segment_file_name(path.file_name()?.to_str()?)
}

/// The segment and position of the earliest problem in batches, if any.
fn first_bad_batch(report: &PartitionReport) -> Option<(i64, u64)> {
    report
        .problems
        .iter()
        .filter(|problem| problem.kind.is_in_batches())
        .filter_map(|problem| {
            let (base_offset, _) = segment_file_of(&problem.path)?;
            Some((base_offset, problem.position?))
        })
        .min()
}

/// Truncates segment `base_offset` at `position` and removes every later segment.
fn cut_partition(
    dir: &Path,
    base_offset: i64,
    position: u64,
    bases: &mut Vec<i64>,
    actions: &mut Vec<RepairAction>,
) -> Result<(), StorageError> {
    let path = segment_file_path(dir, base_offset, SegmentFileKind::Log);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(false)
        .open(&path)
        .map_err(io_error(&path))?;
    let file_bytes = file.metadata().map_err(io_error(&path))?.len();
    file.set_len(position).map_err(io_error(&path))?;
    // The cut must be durable before the segments after it go, or a power loss could leave
    // a gap followed by the bad bytes.
    file.sync_all().map_err(io_error(&path))?;
    actions.push(RepairAction::TruncatedSegment {
        path,
        position,
        removed_bytes: file_bytes.saturating_sub(position),
    });
    for later_base_offset in bases.iter().filter(|base| **base > base_offset) {
        remove_segment_files(dir, *later_base_offset)?;
        let path = segment_file_path(dir, *later_base_offset, SegmentFileKind::Log);
        actions.push(RepairAction::RemovedSegment { path });
    }
    bases.retain(|base| *base <= base_offset);
    Ok(())
}

/// Rebuilds a segment's offset and time indexes from its batches, sealed (trimmed and
/// fsynced) as a rolled segment's are; returns the offset after its last batch. Stops at the
/// first batch that cannot be framed or does not ascend: the check recorded it already.
fn rebuild_indexes(dir: &Path, base_offset: i64, config: &LogConfig) -> Result<i64, StorageError> {
    let mut indexes = SegmentIndexes::create(dir, base_offset, config)?;
    let next_offset = walk_headers(dir, base_offset, |position, header| {
        indexes.index_batch(header, position, config.index_interval_bytes)
    })?;
    indexes.seal()?;
    Ok(next_offset)
}

/// The offset after the last batch of the last segment, or its base if it has none.
fn log_next_offset(dir: &Path, bases: &[i64]) -> Result<i64, StorageError> {
    match bases.last() {
        Some(base_offset) => walk_headers(dir, *base_offset, |_, _| {}),
        None => Ok(0),
    }
}

/// Calls `on_batch` with the position and header of each batch of the segment that frames
/// and ascends, reading headers only; returns the offset after the last one.
fn walk_headers(
    dir: &Path,
    base_offset: i64,
    mut on_batch: impl FnMut(u64, &BatchHeader),
) -> Result<i64, StorageError> {
    let path = segment_file_path(dir, base_offset, SegmentFileKind::Log);
    let file = File::open(&path).map_err(io_error(&path))?;
    let file_bytes = file.metadata().map_err(io_error(&path))?.len();
    let header_bytes = u64::try_from(BATCH_HEADER_BYTES).expect("small constant");
    let mut reader = BufReader::with_capacity(CHECK_BUFFER_BYTES, file);
    let (mut position, mut next_offset) = (0, base_offset);
    while file_bytes - position >= header_bytes {
        let mut bytes = [0; BATCH_HEADER_BYTES];
        reader.read_exact(&mut bytes).map_err(io_error(&path))?;
        let Ok(header) = BatchHeader::parse(&bytes) else {
            break;
        };
        let frames = header.size_bytes <= file_bytes - position;
        if !frames || header.base_offset < next_offset || header.last_offset == i64::MAX {
            break;
        }
        on_batch(position, &header);
        let body_bytes = i64::try_from(header.size_bytes - header_bytes)
            .map_err(|_| io_error(&path)(std::io::Error::other("batch too large")))?;
        reader.seek_relative(body_bytes).map_err(io_error(&path))?;
        position += header.size_bytes;
        next_offset = header.last_offset + 1;
    }
    Ok(next_offset)
}

/// Cuts a segment's transaction index after its last valid entry, through
/// `TransactionIndex::open`, and records it if that removed anything.
fn cut_transaction_index(
    report: &PartitionReport,
    base_offset: i64,
    end_offset: i64,
    actions: &mut Vec<RepairAction>,
) -> Result<(), StorageError> {
    let path = segment_file_path(&report.dir, base_offset, SegmentFileKind::TransactionIndex);
    let length_bytes = |path: &Path| std::fs::metadata(path).map_or(0, |metadata| metadata.len());
    let before_bytes = length_bytes(&path);
    let topic_partition = &report.topic_partition;
    drop(TransactionIndex::open(
        &path,
        topic_partition,
        base_offset,
        end_offset,
    )?);
    let removed_bytes = before_bytes.saturating_sub(length_bytes(&path));
    if removed_bytes > 0 {
        actions.push(RepairAction::CutTransactionIndex {
            path,
            removed_bytes,
        });
    }
    Ok(())
}

/// Removes the producer snapshots past `next_offset` and the recovery point, after a cut.
fn remove_state_past(
    report: &PartitionReport,
    next_offset: i64,
    actions: &mut Vec<RepairAction>,
) -> Result<(), StorageError> {
    let dir = report.dir.as_path();
    let mut snapshot_offsets = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let name = entry.map_err(io_error(dir))?.file_name();
        if let Some(offset) = name.to_str().and_then(parse_producer_snapshot_file_name) {
            snapshot_offsets.push(offset);
        }
    }
    remove_snapshots_past(dir, &report.topic_partition, &snapshot_offsets, next_offset)?;
    for offset in snapshot_offsets
        .into_iter()
        .filter(|offset| *offset > next_offset)
    {
        let path = dir.join(producer_snapshot_file_name(offset));
        actions.push(RepairAction::RemovedProducerSnapshot { path });
    }
    let path = dir.join(RECOVERY_POINT_CHECKPOINT_FILE_NAME);
    if path.exists() {
        remove_recovery_point(dir)?;
        actions.push(RepairAction::RemovedRecoveryPoint { path });
    }
    Ok(())
}
