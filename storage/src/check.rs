//! Offline verification of a stopped broker's data directory: what `riffle check` runs, in
//! the spirit of Kafka's `kafka-dump-log --verify` and of its log recovery checks.
//!
//! Start with [`CheckedDataDir::lock`], which refuses a directory a broker holds, then
//! [`CheckedDataDir::check`] for a [`PartitionReport`] per partition, and, only if the
//! operator asks, [`CheckedDataDir::repair`] (in `check/repair.rs`).
//!
//! # What is checked
//!
//! Every segment's batches, streamed one at a time: a whole header, magic 2, a sane length,
//! the whole batch present, CRC-32C, base offsets above the previous batch's last offset
//! (across segments too), none below the segment's name and none reaching the next segment's.
//! A CRC mismatch does not stop the walk, since the length still frames the next batch; a bad
//! header or a torn batch does. Each offset index entry must point at the position of a batch
//! with its offset, each time index entry at a batch whose max timestamp it holds, both in
//! order; entries past a stopped walk are not judged. Transaction index entries get
//! `TransactionIndex::open`'s checks, producer snapshots their framing and CRC, checkpoints
//! their syntax. Records inside batches are not decoded: storage never does.
//!
//! # Costs
//!
//! One pass over every file, reading through buffers of `CHECK_BUFFER_BYTES`; no file is held
//! in memory whole and nothing is mapped, so a directory of any size checks in constant
//! memory, apart from the problems found, which stop being listed (only counted) after
//! `MAX_LISTED_PROBLEMS_PER_PARTITION`.

mod repair;

use std::fs::{File, TryLockError};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::batch_header::{BATCH_HEADER_BYTES, BatchHeader, crc_of_header};
use crate::checkpoint::{read_cleaner_offset, read_log_start_offset};
use crate::error::{StorageError, io_error};
use crate::format::{
    AbortedTransaction, LOCK_FILE_NAME, OFFSET_INDEX_ENTRY_BYTES, OffsetIndexEntry,
    PRODUCER_SNAPSHOT_CRC_COVERED_FROM_POSITION, PRODUCER_SNAPSHOT_HEADER_BYTES,
    RECOVERY_POINT_CHECKPOINT_FILE_NAME, SegmentFileKind, TIME_INDEX_ENTRY_BYTES,
    TRANSACTION_INDEX_ENTRY_BYTES, TimeIndexEntry, is_delete_dir_name, parse_partition_dir_name,
    parse_producer_snapshot_file_name, parse_producer_snapshot_header, parse_recovery_point,
    parse_segment_file_name, segment_file_path,
};
use crate::producer_snapshot::MAX_PRODUCER_SNAPSHOT_PAYLOAD_BYTES;
use crate::topic_partition::TopicPartition;
use crate::transaction_index::entry_problem;

pub use repair::RepairAction;

/// Bytes read at a time from each file being checked.
const CHECK_BUFFER_BYTES: usize = 64 * 1024;

/// Problems listed per partition; more are counted in `omitted_problems_count`, so a file of
/// garbage cannot fill memory with a problem per entry.
pub const MAX_LISTED_PROBLEMS_PER_PARTITION: usize = 1000;

/// A data directory locked for an offline check, so no broker can start on it meanwhile.
/// Dropping it releases the lock.
pub struct CheckedDataDir {
    path: PathBuf,
    /// `<dir>/.lock`, held exclusively; `None` if no broker ever created it.
    _lock_file: Option<File>,
}

/// What was found in one partition directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReport {
    /// The partition.
    pub topic_partition: TopicPartition,
    /// Its directory.
    pub dir: PathBuf,
    /// `.log` files checked.
    pub segments_count: u64,
    /// Batches walked, valid or not.
    pub batches_count: u64,
    /// Records in those batches, as their headers count them.
    pub records_count: u64,
    /// Bytes of the `.log` files.
    pub log_bytes: u64,
    /// The offset after the last batch walked, `None` for a log without batches.
    pub next_offset: Option<i64>,
    /// What is wrong, in file order; at most `MAX_LISTED_PROBLEMS_PER_PARTITION`.
    pub problems: Vec<Problem>,
    /// Problems found past that limit.
    pub omitted_problems_count: u64,
}

impl PartitionReport {
    /// Whether nothing was found wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.omitted_problems_count == 0
    }

    fn record(&mut self, problem: Problem) {
        if self.problems.len() < MAX_LISTED_PROBLEMS_PER_PARTITION {
            self.problems.push(problem);
        } else {
            self.omitted_problems_count += 1;
        }
    }
}

/// One thing found wrong in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub path: PathBuf,
    /// Byte position in the file: of the batch for a batch, of the entry for an index entry.
    pub position: Option<u64>,
    /// The offset concerned: the batch's base offset, or the offset an index entry names.
    pub offset: Option<i64>,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// What is wrong. `Display` says it in a phrase; `name` gives a stable word for scripts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    /// The stored CRC-32C is not the one the batch's bytes give.
    #[error("CRC-32C mismatch: stored {stored_crc:#010x}, computed {computed_crc:#010x}")]
    CrcMismatch {
        /// The CRC in the header.
        stored_crc: u32,
        /// The CRC of the bytes.
        computed_crc: u32,
    },
    /// The file ends inside a batch; nothing after it can be framed.
    #[error("truncated batch: {needed_bytes} bytes needed, {remaining_bytes} left in the file")]
    TruncatedBatch {
        /// Bytes the header (or the batch, per its header) needs.
        needed_bytes: u64,
        /// Bytes left from the batch's position to the end of the file.
        remaining_bytes: u64,
    },
    /// The header cannot be a v2 batch header; nothing after it can be framed.
    #[error("invalid batch header: {reason}")]
    InvalidBatchHeader {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The batch's base offset is not above the previous batch's last offset.
    #[error("base offset not above the previous batch's last offset {previous_last_offset}")]
    OffsetsNotAscending {
        /// The previous batch's last offset.
        previous_last_offset: i64,
    },
    /// The batch starts below the base offset in its segment's file name.
    #[error("batch below its segment's base offset {segment_base_offset}")]
    BatchBelowSegmentBase {
        /// The base offset the file is named after.
        segment_base_offset: i64,
    },
    /// The batch reaches the offsets of the next segment.
    #[error("last offset {last_offset} reaches the next segment, based at {next_base_offset}")]
    BatchOverlapsNextSegment {
        /// The batch's last offset.
        last_offset: i64,
        /// The next segment's base offset.
        next_base_offset: i64,
    },
    /// An index file cannot be read as entries at all.
    #[error("unusable index: {reason}")]
    UnusableIndex {
        /// Why.
        reason: &'static str,
    },
    /// An offset index entry does not ascend from the previous one.
    #[error("offset index entry (offset {offset}, position {log_position}) out of order")]
    OffsetIndexOutOfOrder {
        /// The offset it names.
        offset: i64,
        /// The `.log` position it names.
        log_position: u64,
    },
    /// An offset index entry names a `.log` position where no batch starts.
    #[error("offset index entry points at position {log_position}, where no batch starts")]
    OffsetIndexNoBatchAtPosition {
        /// The `.log` position it names.
        log_position: u64,
    },
    /// The batch at an offset index entry's position has another base offset.
    #[error(
        "offset index entry at position {log_position} names offset {offset}, \
         but the batch there has base offset {batch_base_offset}"
    )]
    OffsetIndexWrongOffset {
        /// The offset the entry names.
        offset: i64,
        /// The `.log` position it names.
        log_position: u64,
        /// The base offset of the batch there.
        batch_base_offset: i64,
    },
    /// A time index entry does not ascend from the previous one, or has no timestamp.
    #[error("time index entry (timestamp {timestamp_ms} ms, offset {offset}) out of order")]
    TimeIndexOutOfOrder {
        /// Its timestamp.
        timestamp_ms: i64,
        /// The offset it names.
        offset: i64,
    },
    /// A time index entry names an offset where no batch of the segment starts.
    #[error("time index entry names offset {offset}, where no batch of the segment starts")]
    TimeIndexNoBatchAtOffset {
        /// The offset it names.
        offset: i64,
    },
    /// A time index entry's timestamp is not the max timestamp of the batch it names.
    #[error(
        "time index entry holds timestamp {timestamp_ms} ms, but the batch at offset {offset} \
         has max timestamp {batch_max_timestamp_ms} ms"
    )]
    TimeIndexWrongTimestamp {
        /// The entry's timestamp.
        timestamp_ms: i64,
        /// The offset it names.
        offset: i64,
        /// The batch's max timestamp.
        batch_max_timestamp_ms: i64,
    },
    /// A transaction index entry fails `TransactionIndex::open`'s checks.
    #[error("invalid transaction index entry: {reason}")]
    InvalidTransactionIndexEntry {
        /// Why.
        reason: &'static str,
    },
    /// A producer snapshot's framing or CRC is wrong.
    #[error("unreadable producer snapshot: {reason}")]
    UnreadableProducerSnapshot {
        /// Why.
        reason: &'static str,
    },
    /// A producer snapshot is of an offset past the end of the log.
    #[error("producer snapshot past the log's next offset {next_offset}")]
    ProducerSnapshotPastLogEnd {
        /// The log's next offset.
        next_offset: i64,
    },
    /// A checkpoint does not parse.
    #[error("unreadable checkpoint: {reason}")]
    UnreadableCheckpoint {
        /// Why.
        reason: &'static str,
    },
}

impl ProblemKind {
    /// A stable snake_case name for the kind, for JSON output and scripts.
    pub fn name(&self) -> &'static str {
        match self {
            ProblemKind::CrcMismatch { .. } => "crc_mismatch",
            ProblemKind::TruncatedBatch { .. } => "truncated_batch",
            ProblemKind::InvalidBatchHeader { .. } => "invalid_batch_header",
            ProblemKind::OffsetsNotAscending { .. } => "offsets_not_ascending",
            ProblemKind::BatchBelowSegmentBase { .. } => "batch_below_segment_base",
            ProblemKind::BatchOverlapsNextSegment { .. } => "batch_overlaps_next_segment",
            ProblemKind::UnusableIndex { .. } => "unusable_index",
            ProblemKind::OffsetIndexOutOfOrder { .. } => "offset_index_out_of_order",
            ProblemKind::OffsetIndexNoBatchAtPosition { .. } => "offset_index_no_batch_at_position",
            ProblemKind::OffsetIndexWrongOffset { .. } => "offset_index_wrong_offset",
            ProblemKind::TimeIndexOutOfOrder { .. } => "time_index_out_of_order",
            ProblemKind::TimeIndexNoBatchAtOffset { .. } => "time_index_no_batch_at_offset",
            ProblemKind::TimeIndexWrongTimestamp { .. } => "time_index_wrong_timestamp",
            ProblemKind::InvalidTransactionIndexEntry { .. } => "invalid_transaction_index_entry",
            ProblemKind::UnreadableProducerSnapshot { .. } => "unreadable_producer_snapshot",
            ProblemKind::ProducerSnapshotPastLogEnd { .. } => "producer_snapshot_past_log_end",
            ProblemKind::UnreadableCheckpoint { .. } => "unreadable_checkpoint",
        }
    }

    /// Whether the problem is in a `.log` file's batches: the log has to be cut there.
    pub fn is_in_batches(&self) -> bool {
        matches!(
            self,
            ProblemKind::CrcMismatch { .. }
                | ProblemKind::TruncatedBatch { .. }
                | ProblemKind::InvalidBatchHeader { .. }
                | ProblemKind::OffsetsNotAscending { .. }
                | ProblemKind::BatchBelowSegmentBase { .. }
                | ProblemKind::BatchOverlapsNextSegment { .. }
        )
    }
}

impl CheckedDataDir {
    /// Takes `<path>/.lock` without waiting, so that no broker starts while the directory is
    /// checked or repaired. Creates nothing: a directory without a lock file never had a
    /// broker, and is checked unlocked.
    ///
    /// # Errors
    /// `Locked` if a broker (or another check) holds the lock; I/O errors, such as a missing
    /// directory.
    pub fn lock(path: &Path) -> Result<CheckedDataDir, StorageError> {
        let metadata = std::fs::metadata(path).map_err(io_error(path))?;
        if !metadata.is_dir() {
            let error = io::Error::new(io::ErrorKind::NotADirectory, "not a directory");
            return Err(io_error(path)(error));
        }
        let lock_path = path.join(LOCK_FILE_NAME);
        let lock_file = match File::open(&lock_path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(CheckedDataDir {
                    path: path.to_path_buf(),
                    _lock_file: None,
                });
            }
            Err(error) => return Err(io_error(&lock_path)(error)),
        };
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StorageError::Locked { path: lock_path }),
            Err(TryLockError::Error(error)) => return Err(io_error(&lock_path)(error)),
        }
        Ok(CheckedDataDir {
            path: path.to_path_buf(),
            _lock_file: Some(lock_file),
        })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks every partition, or only those of `topic`, sorted by topic and partition.
    /// Changes nothing.
    ///
    /// # Errors
    /// I/O errors only; whatever the files hold is a [`Problem`] in the report.
    pub fn check(&self, topic: Option<&str>) -> Result<Vec<PartitionReport>, StorageError> {
        let mut reports = Vec::new();
        for (topic_partition, dir) in self.partition_dirs(topic)? {
            reports.push(check_partition(&dir, topic_partition)?);
        }
        Ok(reports)
    }

    /// Partition directories, sorted, skipping hidden entries, directories being deleted and
    /// anything that is not a partition directory, as `DataDir::list_partitions` does.
    fn partition_dirs(
        &self,
        topic: Option<&str>,
    ) -> Result<Vec<(TopicPartition, PathBuf)>, StorageError> {
        let mut dirs = Vec::new();
        for entry in std::fs::read_dir(&self.path).map_err(io_error(&self.path))? {
            let entry = entry.map_err(io_error(&self.path))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_str().unwrap_or_default();
            if name.starts_with('.') || is_delete_dir_name(name) {
                continue;
            }
            if !entry.file_type().map_err(io_error(&path))?.is_dir() {
                continue;
            }
            let Some(topic_partition) = parse_partition_dir_name(name) else {
                continue;
            };
            if topic.is_none_or(|topic| topic == topic_partition.topic) {
                dirs.push((topic_partition, path));
            }
        }
        dirs.sort();
        Ok(dirs)
    }
}

/// Checks one partition directory: its segments in offset order, then its checkpoints and
/// producer snapshots.
pub(crate) fn check_partition(
    dir: &Path,
    topic_partition: TopicPartition,
) -> Result<PartitionReport, StorageError> {
    let mut report = PartitionReport {
        topic_partition,
        dir: dir.to_path_buf(),
        segments_count: 0,
        batches_count: 0,
        records_count: 0,
        log_bytes: 0,
        next_offset: None,
        problems: Vec::new(),
        omitted_problems_count: 0,
    };
    let bases = log_file_bases(dir)?;
    for (index, base_offset) in bases.iter().enumerate() {
        let next_base_offset = bases.get(index + 1).copied();
        check_segment(dir, *base_offset, next_base_offset, &mut report)?;
    }
    check_checkpoints(dir, &mut report)?;
    check_producer_snapshots(dir, &mut report)?;
    Ok(report)
}

/// Base offsets of the `.log` files in a partition directory, ascending.
pub(crate) fn log_file_bases(dir: &Path) -> Result<Vec<i64>, StorageError> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let name = entry.map_err(io_error(dir))?.file_name();
        if let Some((base_offset, SegmentFileKind::Log)) =
            name.to_str().and_then(parse_segment_file_name)
        {
            bases.push(base_offset);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Walks one segment's batches and checks its three indexes against them.
fn check_segment(
    dir: &Path,
    base_offset: i64,
    next_base_offset: Option<i64>,
    report: &mut PartitionReport,
) -> Result<(), StorageError> {
    let log_path = segment_file_path(dir, base_offset, SegmentFileKind::Log);
    let file = File::open(&log_path).map_err(io_error(&log_path))?;
    let file_bytes = file.metadata().map_err(io_error(&log_path))?.len();
    report.segments_count += 1;
    report.log_bytes += file_bytes;
    let offset_index_path = segment_file_path(dir, base_offset, SegmentFileKind::OffsetIndex);
    let time_index_path = segment_file_path(dir, base_offset, SegmentFileKind::TimeIndex);
    let mut offset_index = OffsetIndexCursor::open(&offset_index_path, base_offset, report)?;
    let mut time_index = TimeIndexCursor::open(&time_index_path, base_offset, report)?;
    let segment = SegmentBounds {
        log_path: &log_path,
        base_offset,
        next_base_offset,
    };
    let mut walk = BatchWalk::new(&file, &log_path, file_bytes)?;
    while let Some((position, header)) = walk.next_batch(&segment, report)? {
        report.batches_count += 1;
        report.records_count += u64::try_from(header.records_count).unwrap_or(0);
        check_batch_offsets(&segment, position, &header, report);
        report.next_offset = Some(header.last_offset.saturating_add(1));
        offset_index.on_batch(position, &header, report)?;
        time_index.on_batch(&header, report)?;
    }
    if walk.reached_end {
        offset_index.finish(report)?;
        time_index.finish(report)?;
    }
    let segment_end_offset = next_base_offset
        .or(report.next_offset)
        .unwrap_or(base_offset);
    let transaction_index_path =
        segment_file_path(dir, base_offset, SegmentFileKind::TransactionIndex);
    check_transaction_index(
        &transaction_index_path,
        base_offset,
        segment_end_offset,
        report,
    )
}

/// Where a segment sits among its neighbours.
struct SegmentBounds<'a> {
    log_path: &'a Path,
    base_offset: i64,
    next_base_offset: Option<i64>,
}

/// Checks a batch's offsets against the previous batch and the segment's bounds.
fn check_batch_offsets(
    segment: &SegmentBounds<'_>,
    position: u64,
    header: &BatchHeader,
    report: &mut PartitionReport,
) {
    let problem = |kind| Problem {
        path: segment.log_path.to_path_buf(),
        position: Some(position),
        offset: Some(header.base_offset),
        kind,
    };
    if let Some(previous_next_offset) = report.next_offset
        && header.base_offset < previous_next_offset
    {
        let previous_last_offset = previous_next_offset - 1;
        report.record(problem(ProblemKind::OffsetsNotAscending {
            previous_last_offset,
        }));
    }
    if header.base_offset < segment.base_offset {
        let segment_base_offset = segment.base_offset;
        report.record(problem(ProblemKind::BatchBelowSegmentBase {
            segment_base_offset,
        }));
    }
    if let Some(next_base_offset) = segment.next_base_offset
        && header.last_offset >= next_base_offset
    {
        report.record(problem(ProblemKind::BatchOverlapsNextSegment {
            last_offset: header.last_offset,
            next_base_offset,
        }));
    }
}

/// A forward walk over a `.log` file's batches, one batch in memory at most (its header;
/// the body streams through a fixed buffer for the CRC).
struct BatchWalk<'a> {
    reader: BufReader<&'a File>,
    log_path: &'a Path,
    file_bytes: u64,
    position: u64,
    /// Whether the walk framed batches to the end of the file; false once it stopped at a
    /// torn batch or a bad header.
    reached_end: bool,
    chunk: Vec<u8>,
}

impl<'a> BatchWalk<'a> {
    fn new(file: &'a File, log_path: &'a Path, file_bytes: u64) -> Result<Self, StorageError> {
        Ok(BatchWalk {
            reader: BufReader::with_capacity(CHECK_BUFFER_BYTES, file),
            log_path,
            file_bytes,
            position: 0,
            reached_end: true,
            chunk: vec![0; CHECK_BUFFER_BYTES],
        })
    }

    /// The next batch that can be framed, with its position, after recording any CRC
    /// mismatch; `None` at the end of the file or at a batch that cannot be framed (recorded).
    fn next_batch(
        &mut self,
        segment: &SegmentBounds<'_>,
        report: &mut PartitionReport,
    ) -> Result<Option<(u64, BatchHeader)>, StorageError> {
        if self.position >= self.file_bytes {
            return Ok(None);
        }
        let position = self.position;
        let remaining_bytes = self.file_bytes - position;
        let header_bytes = u64::try_from(BATCH_HEADER_BYTES).expect("small constant");
        let stop = |kind, offset| Problem {
            path: segment.log_path.to_path_buf(),
            position: Some(position),
            offset,
            kind,
        };
        if remaining_bytes < header_bytes {
            self.reached_end = false;
            let kind = ProblemKind::TruncatedBatch {
                needed_bytes: header_bytes,
                remaining_bytes,
            };
            report.record(stop(kind, None));
            return Ok(None);
        }
        let mut bytes = [0; BATCH_HEADER_BYTES];
        self.read_exact(&mut bytes)?;
        let header = match BatchHeader::parse(&bytes) {
            Ok(header) => header,
            Err(reason) => {
                self.reached_end = false;
                report.record(stop(ProblemKind::InvalidBatchHeader { reason }, None));
                return Ok(None);
            }
        };
        let offset = Some(header.base_offset);
        if header.size_bytes > remaining_bytes {
            self.reached_end = false;
            let kind = ProblemKind::TruncatedBatch {
                needed_bytes: header.size_bytes,
                remaining_bytes,
            };
            report.record(stop(kind, offset));
            return Ok(None);
        }
        let computed_crc =
            self.body_crc(crc_of_header(&bytes), header.size_bytes - header_bytes)?;
        if computed_crc != header.crc {
            let stored_crc = header.crc;
            let kind = ProblemKind::CrcMismatch {
                stored_crc,
                computed_crc,
            };
            report.record(stop(kind, offset));
        }
        self.position += header.size_bytes;
        Ok(Some((position, header)))
    }

    /// Reads `body_bytes` through the chunk buffer, continuing `crc` over them.
    fn body_crc(&mut self, mut crc: u32, mut body_bytes: u64) -> Result<u32, StorageError> {
        while body_bytes > 0 {
            let length = usize::try_from(body_bytes)
                .map_or(self.chunk.len(), |body| body.min(self.chunk.len()));
            let mut chunk = std::mem::take(&mut self.chunk);
            self.read_exact(&mut chunk[..length])?;
            crc = crc32c::crc32c_append(crc, &chunk[..length]);
            self.chunk = chunk;
            body_bytes -= u64::try_from(length).expect("chunk fits u64");
        }
        Ok(crc)
    }

    fn read_exact(&mut self, bytes: &mut [u8]) -> Result<(), StorageError> {
        self.reader
            .read_exact(bytes)
            .map_err(io_error(self.log_path))
    }
}

/// Reads fixed-size index entries one at a time; an all-zero entry ends the entries, as the
/// preallocated tail of an index that was not trimmed is zeros.
struct EntryReader<const ENTRY_BYTES: usize> {
    path: PathBuf,
    reader: Option<BufReader<File>>,
    /// Byte position of the next entry in the index file.
    position: u64,
}

impl<const ENTRY_BYTES: usize> EntryReader<ENTRY_BYTES> {
    /// Opens the index; a missing one, or one of a length no index has, is recorded and reads
    /// as empty.
    fn open(path: &Path, report: &mut PartitionReport) -> Result<Self, StorageError> {
        let mut entries = EntryReader {
            path: path.to_path_buf(),
            reader: None,
            position: 0,
        };
        let unusable = |reason| Problem {
            path: path.to_path_buf(),
            position: None,
            offset: None,
            kind: ProblemKind::UnusableIndex { reason },
        };
        let file = match File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                report.record(unusable("missing"));
                return Ok(entries);
            }
            Err(error) => return Err(io_error(path)(error)),
        };
        let length_bytes = file.metadata().map_err(io_error(path))?.len();
        if length_bytes % u64::try_from(ENTRY_BYTES).expect("small constant") != 0 {
            report.record(unusable("size is not a whole number of entries"));
            return Ok(entries);
        }
        entries.reader = Some(BufReader::with_capacity(CHECK_BUFFER_BYTES, file));
        Ok(entries)
    }

    /// The next entry and its position in the index file, or `None` after the last one.
    fn next_entry(&mut self) -> Result<Option<(u64, [u8; ENTRY_BYTES])>, StorageError> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        let mut bytes = [0; ENTRY_BYTES];
        match reader.read_exact(&mut bytes) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                self.reader = None;
                return Ok(None);
            }
            Err(error) => return Err(io_error(&self.path)(error)),
        }
        if bytes.iter().all(|byte| *byte == 0) {
            self.reader = None;
            return Ok(None);
        }
        let position = self.position;
        self.position += u64::try_from(ENTRY_BYTES).expect("small constant");
        Ok(Some((position, bytes)))
    }
}

/// An offset index entry as read: its offset, its `.log` position, and where it is in the
/// index file.
#[derive(Debug, Clone, Copy)]
struct OffsetEntry {
    offset: i64,
    log_position: u64,
    index_position: u64,
}

/// Checks a segment's offset index against its batches, in one forward pass over both.
struct OffsetIndexCursor {
    entries: EntryReader<OFFSET_INDEX_ENTRY_BYTES>,
    base_offset: i64,
    /// The next entry not yet matched with a batch.
    pending: Option<OffsetEntry>,
    previous: Option<OffsetEntry>,
}

impl OffsetIndexCursor {
    fn open(
        path: &Path,
        base_offset: i64,
        report: &mut PartitionReport,
    ) -> Result<Self, StorageError> {
        let mut cursor = OffsetIndexCursor {
            entries: EntryReader::open(path, report)?,
            base_offset,
            pending: None,
            previous: None,
        };
        cursor.advance(report)?;
        Ok(cursor)
    }

    /// Makes the next in-order entry pending, recording the out-of-order ones it skips.
    fn advance(&mut self, report: &mut PartitionReport) -> Result<(), StorageError> {
        self.pending = None;
        while let Some((index_position, bytes)) = self.entries.next_entry()? {
            let entry = OffsetIndexEntry::from_bytes(bytes);
            let entry = OffsetEntry {
                offset: self.base_offset + i64::from(entry.relative_offset),
                log_position: u64::from(entry.position),
                index_position,
            };
            let ascending = self.previous.is_none_or(|previous| {
                entry.offset > previous.offset && entry.log_position > previous.log_position
            });
            if ascending && entry.log_position > 0 {
                self.previous = Some(entry);
                self.pending = Some(entry);
                return Ok(());
            }
            let kind = ProblemKind::OffsetIndexOutOfOrder {
                offset: entry.offset,
                log_position: entry.log_position,
            };
            report.record(self.problem(entry, kind));
        }
        Ok(())
    }

    /// Matches the entries up to the batch at `position` against it.
    fn on_batch(
        &mut self,
        position: u64,
        header: &BatchHeader,
        report: &mut PartitionReport,
    ) -> Result<(), StorageError> {
        while let Some(entry) = self.pending {
            if entry.log_position > position {
                return Ok(());
            }
            if entry.log_position < position {
                let log_position = entry.log_position;
                let kind = ProblemKind::OffsetIndexNoBatchAtPosition { log_position };
                report.record(self.problem(entry, kind));
            } else if entry.offset != header.base_offset {
                let kind = ProblemKind::OffsetIndexWrongOffset {
                    offset: entry.offset,
                    log_position: entry.log_position,
                    batch_base_offset: header.base_offset,
                };
                report.record(self.problem(entry, kind));
            }
            self.advance(report)?;
        }
        Ok(())
    }

    /// Records the entries left after the last batch: they point past the end of the log.
    fn finish(&mut self, report: &mut PartitionReport) -> Result<(), StorageError> {
        while let Some(entry) = self.pending {
            let log_position = entry.log_position;
            let kind = ProblemKind::OffsetIndexNoBatchAtPosition { log_position };
            report.record(self.problem(entry, kind));
            self.advance(report)?;
        }
        Ok(())
    }

    fn problem(&self, entry: OffsetEntry, kind: ProblemKind) -> Problem {
        Problem {
            path: self.entries.path.clone(),
            position: Some(entry.index_position),
            offset: Some(entry.offset),
            kind,
        }
    }
}

/// A time index entry as read, with where it is in the index file.
#[derive(Debug, Clone, Copy)]
struct TimeEntry {
    timestamp_ms: i64,
    offset: i64,
    index_position: u64,
}

/// Checks a segment's time index against its batches, in one forward pass over both.
struct TimeIndexCursor {
    entries: EntryReader<TIME_INDEX_ENTRY_BYTES>,
    base_offset: i64,
    pending: Option<TimeEntry>,
    previous: Option<TimeEntry>,
}

impl TimeIndexCursor {
    fn open(
        path: &Path,
        base_offset: i64,
        report: &mut PartitionReport,
    ) -> Result<Self, StorageError> {
        let mut cursor = TimeIndexCursor {
            entries: EntryReader::open(path, report)?,
            base_offset,
            pending: None,
            previous: None,
        };
        cursor.advance(report)?;
        Ok(cursor)
    }

    /// Makes the next in-order entry pending, recording the out-of-order ones it skips.
    fn advance(&mut self, report: &mut PartitionReport) -> Result<(), StorageError> {
        self.pending = None;
        while let Some((index_position, bytes)) = self.entries.next_entry()? {
            let entry = TimeIndexEntry::from_bytes(bytes);
            let entry = TimeEntry {
                timestamp_ms: entry.timestamp_ms,
                offset: self.base_offset + i64::from(entry.relative_offset),
                index_position,
            };
            let ascending = self.previous.is_none_or(|previous| {
                entry.timestamp_ms > previous.timestamp_ms && entry.offset >= previous.offset
            });
            if ascending && entry.timestamp_ms >= 0 {
                self.previous = Some(entry);
                self.pending = Some(entry);
                return Ok(());
            }
            let kind = ProblemKind::TimeIndexOutOfOrder {
                timestamp_ms: entry.timestamp_ms,
                offset: entry.offset,
            };
            report.record(self.problem(entry, kind));
        }
        Ok(())
    }

    /// Matches the entries naming offsets up to this batch's base offset against it.
    fn on_batch(
        &mut self,
        header: &BatchHeader,
        report: &mut PartitionReport,
    ) -> Result<(), StorageError> {
        while let Some(entry) = self.pending {
            if entry.offset > header.base_offset {
                return Ok(());
            }
            if entry.offset < header.base_offset {
                let offset = entry.offset;
                let kind = ProblemKind::TimeIndexNoBatchAtOffset { offset };
                report.record(self.problem(entry, kind));
            } else if entry.timestamp_ms != header.max_timestamp_ms {
                let kind = ProblemKind::TimeIndexWrongTimestamp {
                    timestamp_ms: entry.timestamp_ms,
                    offset: entry.offset,
                    batch_max_timestamp_ms: header.max_timestamp_ms,
                };
                report.record(self.problem(entry, kind));
            }
            self.advance(report)?;
        }
        Ok(())
    }

    /// Records the entries left after the last batch: they name offsets past the segment.
    fn finish(&mut self, report: &mut PartitionReport) -> Result<(), StorageError> {
        while let Some(entry) = self.pending {
            let offset = entry.offset;
            let kind = ProblemKind::TimeIndexNoBatchAtOffset { offset };
            report.record(self.problem(entry, kind));
            self.advance(report)?;
        }
        Ok(())
    }

    fn problem(&self, entry: TimeEntry, kind: ProblemKind) -> Problem {
        Problem {
            path: self.entries.path.clone(),
            position: Some(entry.index_position),
            offset: Some(entry.offset),
            kind,
        }
    }
}

/// Checks a segment's transaction index entry by entry, as `TransactionIndex::open` would
/// before cutting it. An absent file is an empty index.
fn check_transaction_index(
    path: &Path,
    base_offset: i64,
    end_offset: i64,
    report: &mut PartitionReport,
) -> Result<(), StorageError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error(path)(error)),
    };
    let length_bytes = file.metadata().map_err(io_error(path))?.len();
    let entry_bytes = u64::try_from(TRANSACTION_INDEX_ENTRY_BYTES).expect("small constant");
    let problem = |position, offset, reason| Problem {
        path: path.to_path_buf(),
        position: Some(position),
        offset,
        kind: ProblemKind::InvalidTransactionIndexEntry { reason },
    };
    let mut reader = BufReader::with_capacity(CHECK_BUFFER_BYTES, file);
    let mut previous_last_offset = None;
    let mut position = 0;
    while position + entry_bytes <= length_bytes {
        let mut bytes = [0; TRANSACTION_INDEX_ENTRY_BYTES];
        reader.read_exact(&mut bytes).map_err(io_error(path))?;
        let reason = match AbortedTransaction::from_bytes(bytes) {
            Ok(entry) => {
                let reason = entry_problem(&entry, previous_last_offset, base_offset, end_offset);
                previous_last_offset = Some(entry.last_offset);
                reason.map(|reason| (Some(entry.last_offset), reason))
            }
            Err(reason) => Some((None, reason)),
        };
        if let Some((offset, reason)) = reason {
            report.record(problem(position, offset, reason));
        }
        position += entry_bytes;
    }
    if position < length_bytes {
        report.record(problem(position, None, "torn last entry"));
    }
    Ok(())
}

/// Checks that the partition's checkpoints parse. The recovery point is only a hint that
/// recovery ignores when it is malformed, but a malformed one still says something is off.
fn check_checkpoints(dir: &Path, report: &mut PartitionReport) -> Result<(), StorageError> {
    for read in [read_log_start_offset, read_cleaner_offset] {
        match read(dir) {
            Ok(_) => {}
            Err(StorageError::CorruptCheckpoint { path, reason }) => report.record(Problem {
                path,
                position: None,
                offset: None,
                kind: ProblemKind::UnreadableCheckpoint { reason },
            }),
            Err(error) => return Err(error),
        }
    }
    let path = dir.join(RECOVERY_POINT_CHECKPOINT_FILE_NAME);
    let reason = match std::fs::read(&path) {
        Ok(bytes) => match std::str::from_utf8(&bytes) {
            Ok(text) => parse_recovery_point(text).err(),
            Err(_) => Some("not UTF-8"),
        },
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return Err(io_error(&path)(error)),
    };
    if let Some(reason) = reason {
        report.record(Problem {
            path,
            position: None,
            offset: None,
            kind: ProblemKind::UnreadableCheckpoint { reason },
        });
    }
    Ok(())
}

/// Checks every producer snapshot's framing and CRC, streaming its payload, and that none is
/// past the end of the log.
fn check_producer_snapshots(dir: &Path, report: &mut PartitionReport) -> Result<(), StorageError> {
    let mut snapshots = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        let name = path.file_name().and_then(|name| name.to_str());
        if let Some(offset) = name.and_then(parse_producer_snapshot_file_name) {
            snapshots.push((offset, path));
        }
    }
    snapshots.sort();
    for (offset, path) in snapshots {
        let problem = |kind| Problem {
            path: path.clone(),
            position: None,
            offset: Some(offset),
            kind,
        };
        if let Some(reason) = producer_snapshot_problem(&path, offset)? {
            report.record(problem(ProblemKind::UnreadableProducerSnapshot { reason }));
        }
        let next_offset = report.next_offset.unwrap_or(0);
        if offset > next_offset && report.segments_count > 0 {
            report.record(problem(ProblemKind::ProducerSnapshotPastLogEnd {
                next_offset,
            }));
        }
    }
    Ok(())
}

/// Why the snapshot at `path` cannot be read, as `read_newest_producer_snapshot` would find,
/// or `None` if it can.
fn producer_snapshot_problem(
    path: &Path,
    name_offset: i64,
) -> Result<Option<&'static str>, StorageError> {
    let file = File::open(path).map_err(io_error(path))?;
    let length_bytes = file.metadata().map_err(io_error(path))?.len();
    let header_bytes = u64::try_from(PRODUCER_SNAPSHOT_HEADER_BYTES).expect("small constant");
    let max_payload_bytes =
        u64::try_from(MAX_PRODUCER_SNAPSHOT_PAYLOAD_BYTES).expect("small constant");
    let Some(payload_bytes) = length_bytes.checked_sub(header_bytes) else {
        return Ok(Some("shorter than a snapshot header"));
    };
    if payload_bytes > max_payload_bytes {
        return Ok(Some("larger than the largest snapshot"));
    }
    let mut reader = BufReader::with_capacity(CHECK_BUFFER_BYTES, file);
    let mut header_bytes_read = [0; PRODUCER_SNAPSHOT_HEADER_BYTES];
    reader
        .read_exact(&mut header_bytes_read)
        .map_err(io_error(path))?;
    let header = match parse_producer_snapshot_header(&header_bytes_read) {
        Ok(parsed) => parsed,
        Err(reason) => return Ok(Some(reason)),
    };
    if u64::from(header.payload_length) != payload_bytes {
        return Ok(Some("payload length is not the bytes after the header"));
    }
    let mut crc = crc32c::crc32c(&header_bytes_read[PRODUCER_SNAPSHOT_CRC_COVERED_FROM_POSITION..]);
    let mut chunk = vec![0; CHECK_BUFFER_BYTES];
    loop {
        let read_bytes = reader.read(&mut chunk).map_err(io_error(path))?;
        if read_bytes == 0 {
            break;
        }
        crc = crc32c::crc32c_append(crc, &chunk[..read_bytes]);
    }
    if crc != header.stored_crc {
        return Ok(Some("CRC-32C mismatch"));
    }
    if header.offset != name_offset {
        return Ok(Some("offset differs from the file name's"));
    }
    Ok(None)
}
