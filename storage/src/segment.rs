//! One segment: `<base>.log` holding record batches back to back, its two sparse indexes,
//! and its transaction index (`transaction_index.rs`).
//!
//! A segment is written only at its end, by the log's single appender, and read by any number
//! of readers at once, by position, up to `bytes_written`. The appender publishes
//! `bytes_written` only after the bytes are in the file, so a reader never sees part of a
//! batch.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tracing::warn;

use crate::batch_header::{BATCH_HEADER_BYTES, BatchHeader, CRC_COVERED_FROM_POSITION};
use crate::config::LogConfig;
use crate::error::{StorageError, io_error};
use crate::file_range::FileRange;
use crate::format::{
    OFFSET_INDEX_ENTRY_BYTES, SegmentFileKind, TIME_INDEX_ENTRY_BYTES, segment_file_path,
};
use crate::lock_policy::RwLockRecover;
use crate::log::FirstBatch;
use crate::offset_index::OffsetIndex;
use crate::time_index::{TimeIndex, TimeIndexSlot};
use crate::transaction_index::TransactionIndex;

/// A batch max timestamp and the base offset of the first batch that has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimestampAndOffset {
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// Base offset of the batch.
    pub offset: i64,
}

/// One segment of a log.
pub(crate) struct Segment {
    base_offset: i64,
    partition_dir: PathBuf,
    /// Shared with the `FileRange`s handed to readers, for their error messages.
    log_path: Arc<Path>,
    /// The `.log` file, opened read-write. Readers use positioned reads (`pread`) and the
    /// appender positioned writes (`pwrite`), so no one shares a file cursor. Shared with the
    /// `FileRange`s handed to readers.
    file: Arc<File>,
    /// Position up to which whole batches are in the file: where the next append goes and how
    /// far readers may read. Stored (Release) only by the appender, holding the log's append
    /// lock, after its write succeeded; loaded (Acquire) by readers.
    bytes_written: AtomicU64,
    /// Position up to which the file is known durable. Advanced after each fsync, so an fsync
    /// with nothing new written is skipped (group commit).
    bytes_synced: AtomicU64,
    /// The indexes and the running timestamp summary. Write-locked by the appender for the
    /// memory writes of index entries, and by sealing to trim the files; read-locked by
    /// readers for one binary search. Taken after the log's append lock and segment list lock
    /// when they are held.
    indexes: RwLock<SegmentIndexes>,
    /// The aborted transactions whose markers this segment holds; it has its own locks.
    transaction_index: TransactionIndex,
}

/// A segment's indexes and what the appender tracks to maintain them.
pub(crate) struct SegmentIndexes {
    /// Base offset to position, one entry per `index_interval_bytes`.
    pub offset_index: OffsetIndex,
    /// Max timestamp so far to offset, at the same batches as the offset index.
    pub time_index: TimeIndex,
    /// The segment's largest batch max timestamp and the first batch with it; `None` while no
    /// batch has a timestamp.
    pub max_timestamp: Option<TimestampAndOffset>,
    /// Bytes of batches since the last index entry (Kafka's `bytesSinceLastIndexEntry`).
    pub bytes_since_last_index_entry: u64,
}

impl SegmentIndexes {
    /// Creates both index files empty, preallocated to the configured size.
    pub fn create(
        partition_dir: &Path,
        base_offset: i64,
        config: &LogConfig,
    ) -> Result<SegmentIndexes, StorageError> {
        let offset_index_path =
            segment_file_path(partition_dir, base_offset, SegmentFileKind::OffsetIndex);
        let time_index_path =
            segment_file_path(partition_dir, base_offset, SegmentFileKind::TimeIndex);
        SegmentIndexes::create_at(&offset_index_path, &time_index_path, base_offset, config)
    }

    /// As `create`, at the given paths: the log cleaner's `.cleaned` files.
    pub fn create_at(
        offset_index_path: &Path,
        time_index_path: &Path,
        base_offset: i64,
        config: &LogConfig,
    ) -> Result<SegmentIndexes, StorageError> {
        let max_bytes = config.effective_segment_index_bytes();
        Ok(SegmentIndexes {
            offset_index: OffsetIndex::create(offset_index_path, base_offset, max_bytes)?,
            time_index: TimeIndex::create(time_index_path, base_offset, max_bytes)?,
            max_timestamp: None,
            bytes_since_last_index_entry: 0,
        })
    }

    /// Accounts for one batch at `position`, adding an entry to each index once more than
    /// `index_interval_bytes` were written since the last one (Kafka's rule, so the first batch
    /// of a segment is never indexed). A full index skips the entry; the segment is about to
    /// roll, and a sparser index is still correct.
    pub fn index_batch(&mut self, header: &BatchHeader, position: u64, index_interval_bytes: u64) {
        let grows = self
            .max_timestamp
            .is_none_or(|max| header.max_timestamp_ms > max.timestamp_ms);
        if header.max_timestamp_ms >= 0 && grows {
            self.max_timestamp = Some(TimestampAndOffset {
                timestamp_ms: header.max_timestamp_ms,
                offset: header.base_offset,
            });
        }
        if self.bytes_since_last_index_entry > index_interval_bytes {
            if self.offset_index.free_entries() > 0 {
                self.offset_index.append(header.base_offset, position);
            }
            if let Some(max) = self.max_timestamp {
                let slot = TimeIndexSlot::KeepLastForSeal;
                self.time_index
                    .maybe_append(max.timestamp_ms, max.offset, slot);
            }
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += header.size_bytes;
    }

    /// Whether an append of `batches_count` batches can add all its index entries.
    pub fn has_room_for(&self, batches_count: usize) -> bool {
        self.offset_index.free_entries() >= batches_count && !self.time_index.is_full()
    }

    /// Prepares the indexes to stay on disk as they are: records the segment's largest
    /// timestamp as the last time index entry, trims both files to their entries and fsyncs
    /// them, so the next open knows their length and trusts them without a scan.
    pub fn seal(&mut self) -> Result<(), StorageError> {
        if let Some(max) = self.max_timestamp {
            let slot = TimeIndexSlot::MayUseLast;
            self.time_index
                .maybe_append(max.timestamp_ms, max.offset, slot);
        }
        self.offset_index.file().trim()?;
        self.time_index.file().trim()?;
        self.offset_index.file_ref().sync()?;
        self.time_index.file_ref().sync()
    }

    /// Grows both files back to the configured size so appends can continue, after a
    /// trimmed index was reopened for the active segment. The time index always gets at least
    /// one free slot, even if the configured size shrank below its entries, so sealing can
    /// still record the segment's largest timestamp.
    pub fn make_writable(&mut self, config: &LogConfig) -> Result<(), StorageError> {
        let max_bytes = config.effective_segment_index_bytes();
        let offset_entries = self.offset_index.entries_count();
        let offset_index_bytes =
            max_bytes.max(entries_bytes(offset_entries, OFFSET_INDEX_ENTRY_BYTES));
        let time_entries = self.time_index.entries_count() + 1;
        let time_index_bytes = max_bytes.max(entries_bytes(time_entries, TIME_INDEX_ENTRY_BYTES));
        self.offset_index.file().resize(offset_index_bytes)?;
        self.time_index.file().resize(time_index_bytes)
    }
}

/// Removes a segment's files, indexes first: a crash part-way then leaves a `.log` without
/// indexes, which the next open rebuilds (or removes, if it is below the log start), rather
/// than indexes without their `.log`. Files already gone are fine.
pub(crate) fn remove_segment_files(
    partition_dir: &Path,
    base_offset: i64,
) -> Result<(), StorageError> {
    for kind in SegmentFileKind::ALL {
        let path = segment_file_path(partition_dir, base_offset, kind);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(&path)(error)),
        }
    }
    Ok(())
}

/// Writes every piece at `position` onwards with `pwritev`, retrying after short writes and
/// interruptions, as `write_all_at` does for one buffer.
fn write_all_vectored_at(
    file: &File,
    mut pieces: &mut [IoSlice<'_>],
    mut position: u64,
) -> io::Result<()> {
    /// Linux's IOV_MAX: `pwritev` takes at most this many pieces per call.
    const MAX_PIECES_PER_CALL: usize = 1024;
    IoSlice::advance_slices(&mut pieces, 0);
    while !pieces.is_empty() {
        let count = pieces.len().min(MAX_PIECES_PER_CALL);
        let count = libc::c_int::try_from(count).expect("at most IOV_MAX");
        let offset = libc::off_t::try_from(position).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: `IoSlice` is ABI-compatible with `iovec` (std guarantees this on Unix), the
        // pointer and count describe live slices, and the kernel only reads them.
        let written = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                pieces.as_ptr().cast::<libc::iovec>(),
                count,
                offset,
            )
        };
        let written = match usize::try_from(written) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => written,
            Err(_) => {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
        };
        IoSlice::advance_slices(&mut pieces, written);
        position += u64::try_from(written).expect("a write fits u64");
    }
    Ok(())
}

fn entries_bytes(entries_count: usize, entry_bytes: usize) -> u64 {
    u64::try_from(entries_count * entry_bytes).expect("index size fits u64")
}

impl Segment {
    /// Creates a new, empty segment's files (the transaction index waits for its first entry).
    /// An existing `.log` of that name is emptied, and a `.txnindex` removed: a new segment is
    /// named after the log's next offset, so such files can only be the leftovers of a roll
    /// that failed.
    pub fn create(
        partition_dir: &Path,
        base_offset: i64,
        config: &LogConfig,
    ) -> Result<Segment, StorageError> {
        let log_path = segment_file_path(partition_dir, base_offset, SegmentFileKind::Log);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(io_error(&log_path))?;
        let indexes = SegmentIndexes::create(partition_dir, base_offset, config)?;
        let transaction_index_path = segment_file_path(
            partition_dir,
            base_offset,
            SegmentFileKind::TransactionIndex,
        );
        let transaction_index = TransactionIndex::create(&transaction_index_path)?;
        Ok(Segment::from_parts(
            partition_dir,
            base_offset,
            file,
            indexes,
            transaction_index,
            0,
            0,
        ))
    }

    /// Assembles a segment from files recovery opened and checked.
    pub fn from_parts(
        partition_dir: &Path,
        base_offset: i64,
        file: File,
        indexes: SegmentIndexes,
        transaction_index: TransactionIndex,
        bytes_written: u64,
        bytes_synced: u64,
    ) -> Segment {
        assert!(base_offset >= 0);
        assert!(bytes_synced <= bytes_written);
        Segment {
            base_offset,
            partition_dir: partition_dir.to_path_buf(),
            log_path: segment_file_path(partition_dir, base_offset, SegmentFileKind::Log).into(),
            file: Arc::new(file),
            bytes_written: AtomicU64::new(bytes_written),
            bytes_synced: AtomicU64::new(bytes_synced),
            indexes: RwLock::new(indexes),
            transaction_index,
        }
    }

    /// Offset of the segment's first batch, and its name.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// The `.log` file's path.
    #[cfg(test)]
    pub fn log_path_for_tests(&self) -> &Path {
        self.log_path()
    }

    /// Bytes of whole batches in the segment.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Acquire)
    }

    /// Bytes from the start known to be durable: every fsync records what it covered.
    pub fn bytes_synced(&self) -> u64 {
        self.bytes_synced.load(Ordering::Acquire)
    }

    /// Whether the segment holds no batch yet.
    pub fn is_empty(&self) -> bool {
        self.bytes_written() == 0
    }

    /// Read access to the indexes, for one lookup.
    pub fn indexes(&self) -> RwLockReadGuard<'_, SegmentIndexes> {
        self.indexes.read_or_recover()
    }

    /// Write access to the indexes, for the appender and for sealing.
    pub fn indexes_mut(&self) -> RwLockWriteGuard<'_, SegmentIndexes> {
        self.indexes.write_or_recover()
    }

    /// The aborted transactions whose markers this segment holds.
    pub fn transaction_index(&self) -> &TransactionIndex {
        &self.transaction_index
    }

    /// Writes whole batches at the end of the file with one positioned write and publishes
    /// the new end to readers. Returns the position they were written at.
    ///
    /// Only the log's appender calls this, holding the append lock, so `bytes_written` cannot
    /// move under it. A failed write is truncated away before the error is returned, so the
    /// file ends where readers and the next append think it does.
    pub fn append_vectored(&self, pieces: &mut [IoSlice<'_>]) -> Result<u64, StorageError> {
        let position = self.bytes_written.load(Ordering::Acquire);
        let length: usize = pieces.iter().map(|piece| piece.len()).sum();
        let length = u64::try_from(length).expect("an append fits u64");
        if let Err(error) = self.write_at(pieces, position) {
            if let Err(truncate_error) = self.file.set_len(position) {
                // The next append writes at `position` anyway and recovery truncates what is
                // past the last valid batch, so a failed truncate loses nothing.
                warn!(path = %self.log_path.display(), position, %truncate_error,
                    "could not truncate a failed append");
            }
            return Err(io_error(&self.log_path)(error));
        }
        self.bytes_written
            .store(position + length, Ordering::Release);
        Ok(position)
    }

    fn write_at(&self, pieces: &mut [IoSlice<'_>], position: u64) -> io::Result<()> {
        #[cfg(test)]
        if let Some(written_bytes) = crate::fault::take_write_fault() {
            let bytes: Vec<u8> = pieces
                .iter()
                .flat_map(|piece| piece.iter().copied())
                .collect();
            let written_bytes = written_bytes.min(bytes.len());
            self.file.write_all_at(&bytes[..written_bytes], position)?;
            return Err(io::Error::other("injected write fault"));
        }
        write_all_vectored_at(&self.file, pieces, position)
    }

    /// Fsyncs the batches written so far unless an earlier fsync already covered them.
    /// Returns whether it called fsync.
    ///
    /// `fdatasync` suffices: it flushes the data and the file length, which is all a reader
    /// after power loss needs; the modification time may lag.
    pub fn sync_data(&self) -> Result<bool, StorageError> {
        let written = self.bytes_written.load(Ordering::Acquire);
        if self.bytes_synced.load(Ordering::Acquire) >= written {
            return Ok(false);
        }
        self.file.sync_data().map_err(io_error(&self.log_path))?;
        #[cfg(test)]
        crate::fault::record_data_sync();
        self.bytes_synced.fetch_max(written, Ordering::AcqRel);
        Ok(true)
    }

    /// Fsyncs the file with its metadata, for a segment just created.
    pub fn sync_all(&self) -> Result<(), StorageError> {
        self.file.sync_all().map_err(io_error(&self.log_path))?;
        let indexes = self.indexes();
        indexes.offset_index.file_ref().sync()?;
        indexes.time_index.file_ref().sync()
    }

    /// Makes the segment read-only for good: fsyncs its batches, then finishes and fsyncs its
    /// indexes (see `SegmentIndexes::seal`) and its transaction index. Called when the segment
    /// is rolled and when the log closes. Safe to call again after a failure part-way.
    pub fn seal(&self) -> Result<(), StorageError> {
        // The batches first: a sealed segment is never synced again, and `sync_through` relies
        // on every segment but the active one being durable.
        self.sync_data()?;
        self.indexes_mut().seal()?;
        // Nothing fsyncs a sealed segment's transaction index later, and a producer snapshot
        // relies on every entry below it being durable.
        self.transaction_index.sync()
    }

    /// Writes the index mappings back to their files (msync), so a clean restart finds every
    /// entry even if the indexes were never trimmed.
    pub fn flush_indexes(&self) -> Result<(), StorageError> {
        let indexes = self.indexes();
        indexes.offset_index.file_ref().flush()?;
        indexes.time_index.file_ref().flush()
    }

    /// The segment's largest batch timestamp, or, if no batch has one, its file's modification
    /// time, as Kafka does; time retention compares this with `now - retention.ms`.
    pub fn largest_timestamp_ms(&self) -> Result<i64, StorageError> {
        if let Some(max) = self.indexes().max_timestamp {
            return Ok(max.timestamp_ms);
        }
        let modified = self.last_modified()?;
        let since_epoch = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        Ok(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }

    /// The largest batch max timestamp and the first batch with it.
    pub fn max_timestamp(&self) -> Option<TimestampAndOffset> {
        self.indexes().max_timestamp
    }

    /// The `.log` file's modification time, which time retention falls back on for a segment
    /// without timestamps; the cleaner carries it over to the segment it writes.
    pub fn last_modified(&self) -> Result<SystemTime, StorageError> {
        self.file
            .metadata()
            .and_then(|metadata| metadata.modified())
            .map_err(io_error(&self.log_path))
    }

    /// Reads every batch of the segment in order, whole, CRC checked: the log cleaner's scan.
    pub fn batches(&self) -> SegmentBatches<'_> {
        SegmentBatches {
            segment: self,
            position: 0,
            end: self.bytes_written(),
            next_offset: self.base_offset,
            buffer: Vec::new(),
            buffer_position: 0,
        }
    }

    /// The `.log` file's path, for errors about its batches.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Removes the segment's files (see `remove_segment_files`). Readers holding this segment
    /// keep reading: an unlinked file stays readable through open handles and mappings.
    pub fn delete_files(&self) -> Result<(), StorageError> {
        remove_segment_files(&self.partition_dir, self.base_offset)
    }

    /// Reads whole batches starting with the one that holds `offset`, up to `max_bytes`, none
    /// at or past `high_watermark`. `None` if the segment has no batch holding `offset` (it
    /// ends before), so the caller can look in the next segment; an empty range if the first
    /// batch does not fit and `first_batch` says not to return it.
    pub fn read(
        &self,
        offset: i64,
        high_watermark: i64,
        max_bytes: usize,
        first_batch: FirstBatch,
    ) -> Result<Option<FileRange>, StorageError> {
        let start_position = self.indexes().offset_index.lookup(offset);
        let mut walk = self.walk(start_position, high_watermark);
        let (start, first) = loop {
            match walk.next_batch()? {
                None => return Ok(None),
                Some((position, header)) if header.last_offset >= offset => {
                    break (position, header);
                }
                Some(_) => {}
            }
        };
        let max_bytes = u64::try_from(max_bytes).unwrap_or(u64::MAX);
        if first.size_bytes > max_bytes && first_batch == FirstBatch::WithinMaxBytes {
            return self.range(start, start, first.base_offset).map(Some);
        }
        let mut end = start + first.size_bytes;
        let mut next_offset = first.last_offset + 1;
        while let Some((position, header)) = walk.next_batch()? {
            if end - start + header.size_bytes > max_bytes {
                break;
            }
            end = position + header.size_bytes;
            next_offset = header.last_offset + 1;
        }
        self.range(start, end, next_offset).map(Some)
    }

    /// The first batch, below `high_watermark` and not wholly below `log_start_offset`, whose
    /// max timestamp is at least `timestamp_ms`, found by starting the scan where the time
    /// index allows.
    pub fn batch_for_timestamp(
        &self,
        timestamp_ms: i64,
        high_watermark: i64,
        log_start_offset: i64,
    ) -> Result<Option<Bytes>, StorageError> {
        let start_position = {
            let indexes = self.indexes();
            match indexes.time_index.scan_start_offset(timestamp_ms) {
                Some(offset) => indexes.offset_index.lookup(offset),
                None => 0,
            }
        };
        let mut walk = self.walk(start_position, high_watermark);
        while let Some((position, header)) = walk.next_batch()? {
            if header.max_timestamp_ms >= timestamp_ms && header.last_offset >= log_start_offset {
                return self
                    .range(
                        position,
                        position + header.size_bytes,
                        header.last_offset + 1,
                    )?
                    .read()
                    .map(Some);
            }
        }
        Ok(None)
    }

    /// Walks the batch headers from `position` (a batch boundary) to the written end, stopping
    /// before the first batch at or past `high_watermark`.
    fn walk(&self, position: u64, high_watermark: i64) -> HeaderWalk<'_> {
        HeaderWalk {
            segment: self,
            position,
            end: self.bytes_written(),
            high_watermark,
        }
    }

    /// Reads and checks the header of the batch at `position`, which must end by `end`.
    fn header_at(&self, position: u64, end: u64) -> Result<BatchHeader, StorageError> {
        let header_bytes = u64::try_from(BATCH_HEADER_BYTES).expect("small constant");
        if end - position < header_bytes {
            return Err(self.corrupt(position, "incomplete batch header"));
        }
        let mut bytes = [0; BATCH_HEADER_BYTES];
        self.file
            .read_exact_at(&mut bytes, position)
            .map_err(io_error(&self.log_path))?;
        let header = BatchHeader::parse(&bytes).map_err(|reason| self.corrupt(position, reason))?;
        if header.size_bytes > end - position {
            return Err(self.corrupt(position, "batch runs past the written end"));
        }
        Ok(header)
    }

    /// `start..end` of the file, for reading or sending.
    /// The bytes `start..end`, whose batches end just before `next_offset`.
    fn range(&self, start: u64, end: u64, next_offset: i64) -> Result<FileRange, StorageError> {
        assert!(start <= end);
        assert!(end <= self.bytes_written());
        let length =
            usize::try_from(end - start).map_err(|_| self.corrupt(start, "read too large"))?;
        Ok(FileRange::new(
            Arc::clone(&self.file),
            Arc::clone(&self.log_path),
            start,
            length,
            next_offset,
        ))
    }

    fn corrupt(&self, position: u64, reason: &'static str) -> StorageError {
        StorageError::CorruptSegment {
            path: self.log_path.to_path_buf(),
            position,
            reason,
        }
    }
}

/// A forward scan over a segment's batch headers, by positioned reads.
struct HeaderWalk<'a> {
    segment: &'a Segment,
    /// Position of the next batch.
    position: u64,
    /// `bytes_written` when the walk started; bytes past it may be half written.
    end: u64,
    /// Batches from this offset on are not visible to readers yet.
    high_watermark: i64,
}

impl HeaderWalk<'_> {
    fn next_batch(&mut self) -> Result<Option<(u64, BatchHeader)>, StorageError> {
        if self.position >= self.end {
            return Ok(None);
        }
        let header = self.segment.header_at(self.position, self.end)?;
        if header.base_offset >= self.high_watermark {
            return Ok(None);
        }
        let position = self.position;
        self.position += header.size_bytes;
        Ok(Some((position, header)))
    }
}

/// One batch read whole out of a segment.
pub(crate) struct StoredBatch {
    /// Position of the batch in the `.log` file.
    pub position: u64,
    /// Its checked header.
    pub header: BatchHeader,
    /// All its bytes, `header.size_bytes` of them.
    pub bytes: Vec<u8>,
}

/// Bytes read from a segment at a time by `SegmentBatches`; larger batches are read alone.
const BATCHES_READ_BYTES: usize = 64 * 1024;

/// A forward read of a segment's whole batches, by positioned reads of up to
/// `BATCHES_READ_BYTES`, so it shares the file with concurrent readers.
pub(crate) struct SegmentBatches<'a> {
    segment: &'a Segment,
    /// Position of the next batch.
    position: u64,
    /// `bytes_written` when the read started.
    end: u64,
    /// The lowest base offset the next batch may have.
    next_offset: i64,
    /// Bytes of the file from `buffer_position` on.
    buffer: Vec<u8>,
    buffer_position: u64,
}

impl SegmentBatches<'_> {
    /// The next batch, `None` at the end of the segment.
    ///
    /// # Errors
    /// `CorruptSegment` for a batch whose header or CRC is bad, that runs past the end, or
    /// whose base offset is below the segment's or not above the previous batch's.
    pub fn next_batch(&mut self) -> Result<Option<StoredBatch>, StorageError> {
        if self.position >= self.end {
            return Ok(None);
        }
        let position = self.position;
        let header = self.segment.header_at(position, self.end)?;
        if header.base_offset < self.next_offset {
            let reason = "base offset is not above the previous batch's last offset";
            return Err(self.segment.corrupt(position, reason));
        }
        let size_bytes = usize::try_from(header.size_bytes)
            .map_err(|_| self.segment.corrupt(position, "batch larger than memory"))?;
        let bytes = self.read(position, size_bytes)?;
        let crc = crc32c::crc32c(&bytes[CRC_COVERED_FROM_POSITION..]);
        if crc != header.crc {
            return Err(self.segment.corrupt(position, "CRC-32C mismatch"));
        }
        self.position += header.size_bytes;
        self.next_offset = header.last_offset.saturating_add(1);
        Ok(Some(StoredBatch {
            position,
            header,
            bytes,
        }))
    }

    /// `length` bytes at `position`, which `header_at` checked lie before `end`.
    fn read(&mut self, position: u64, length: usize) -> Result<Vec<u8>, StorageError> {
        let log_path = &self.segment.log_path;
        if length > BATCHES_READ_BYTES {
            let mut bytes = vec![0; length];
            self.segment
                .file
                .read_exact_at(&mut bytes, position)
                .map_err(io_error(log_path))?;
            return Ok(bytes);
        }
        let buffered_end =
            self.buffer_position + u64::try_from(self.buffer.len()).expect("small buffer");
        let end = position + u64::try_from(length).expect("a batch fits u64");
        if position < self.buffer_position || end > buffered_end {
            let remaining = usize::try_from(self.end - position).unwrap_or(usize::MAX);
            self.buffer.resize(BATCHES_READ_BYTES.min(remaining), 0);
            self.segment
                .file
                .read_exact_at(&mut self.buffer, position)
                .map_err(io_error(log_path))?;
            self.buffer_position = position;
        }
        let start = usize::try_from(position - self.buffer_position).expect("inside the buffer");
        Ok(self.buffer[start..start + length].to_vec())
    }
}
