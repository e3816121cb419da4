//! A segment the log cleaner writes under staged names and then swaps in for the segments
//! it was cleaned from. The order of the steps, and why a crash between any two of them is
//! safe, is in `log/compaction.rs`; recovery's side is in `recovery.rs`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tracing::warn;

use crate::batch_header::BatchHeader;
use crate::config::LogConfig;
use crate::error::{StorageError, io_error};
use crate::format::{
    AbortedTransaction, SegmentFileKind, SwapStage, segment_file_path, staged_segment_file_path,
};
use crate::fs::sync_dir;
use crate::segment::{Segment, SegmentIndexes};
use crate::transaction_index::TransactionIndex;

/// Bytes of batches gathered before one write to the `.log.cleaned` file.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// The index files, then the `.log`: the order files are renamed in, so that the `.log`
/// rename is always the last, and a `.log.swap` means its indexes were renamed before it.
/// The transaction index is always among them, even when empty, so that recovery can tell
/// a `.txnindex` already installed from an old one (see `finish_swap` in `recovery.rs`).
const RENAME_ORDER: [SegmentFileKind; 4] = SegmentFileKind::ALL;

const _: () = assert!(matches!(RENAME_ORDER[3], SegmentFileKind::Log));

/// A new segment being written by the cleaner, named after the first segment it replaces.
pub(crate) struct CleanedSegment {
    partition_dir: PathBuf,
    base_offset: i64,
    /// The `.log` file, opened read-write: written here, then read by the segment it becomes.
    file: File,
    indexes: SegmentIndexes,
    /// The aborted transactions whose ABORT markers the cleaner kept in this segment.
    transaction_index: TransactionIndex,
    /// Batches appended but not yet written to `file`.
    pending: Vec<u8>,
    /// Bytes appended, pending ones included: the position of the next batch.
    size_bytes: u64,
    index_interval_bytes: u64,
    /// Last offset of the last batch appended, to check that offsets ascend.
    last_offset: Option<i64>,
    /// Where the files are now.
    stage: SwapStage,
}

impl CleanedSegment {
    /// Creates the four `.cleaned` files, empty. Leftovers of an earlier attempt at the
    /// same name are overwritten.
    pub fn create(
        partition_dir: &Path,
        base_offset: i64,
        config: &LogConfig,
    ) -> Result<CleanedSegment, StorageError> {
        let stage = SwapStage::Cleaned;
        let path = |kind| staged_segment_file_path(partition_dir, base_offset, kind, stage);
        let log_path = path(SegmentFileKind::Log);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(io_error(&log_path))?;
        let indexes = SegmentIndexes::create_at(
            &path(SegmentFileKind::OffsetIndex),
            &path(SegmentFileKind::TimeIndex),
            base_offset,
            config,
        )?;
        let transaction_index =
            TransactionIndex::create_file(&path(SegmentFileKind::TransactionIndex))?;
        Ok(CleanedSegment {
            partition_dir: partition_dir.to_path_buf(),
            base_offset,
            file,
            indexes,
            transaction_index,
            pending: Vec::with_capacity(WRITE_BUFFER_BYTES),
            size_bytes: 0,
            index_interval_bytes: config.index_interval_bytes,
            last_offset: None,
            stage,
        })
    }

    /// Appends one whole batch whose parsed header is `header`, and indexes it.
    pub fn append(&mut self, header: &BatchHeader, batch: &[u8]) -> Result<(), StorageError> {
        assert_eq!(
            u64::try_from(batch.len()).expect("a batch fits u64"),
            header.size_bytes
        );
        assert!(header.base_offset >= self.base_offset);
        assert!(
            self.last_offset
                .is_none_or(|last| header.base_offset > last)
        );
        self.indexes
            .index_batch(header, self.size_bytes, self.index_interval_bytes);
        self.pending.extend_from_slice(batch);
        self.size_bytes += header.size_bytes;
        self.last_offset = Some(header.last_offset);
        if self.pending.len() >= WRITE_BUFFER_BYTES {
            self.write_pending()?;
        }
        Ok(())
    }

    /// Records an aborted transaction whose ABORT marker was appended (and kept) at
    /// `aborted.last_offset`.
    ///
    /// # Panics
    /// If that marker is not the last batch appended: an entry lives with its marker.
    pub fn add_aborted_transaction(
        &mut self,
        aborted: AbortedTransaction,
    ) -> Result<(), StorageError> {
        assert_eq!(self.last_offset, Some(aborted.last_offset));
        self.transaction_index.append(aborted)
    }

    /// Bytes of batches in the segment.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Writes what is left, gives the `.log` the modification time `modified` (the newest of
    /// the segments it replaces, as Kafka does, so time retention of segments without
    /// timestamps is not reset), seals the indexes, and makes all four files and their
    /// directory entries durable.
    pub fn finish(&mut self, modified: SystemTime) -> Result<(), StorageError> {
        self.write_pending()?;
        let log_path = self.path(SegmentFileKind::Log);
        self.file
            .set_modified(modified)
            .map_err(io_error(&log_path))?;
        // The batches must be durable before a rename can make them part of the log.
        self.file.sync_all().map_err(io_error(&log_path))?;
        // Trims the indexes to their entries and fsyncs them, for the same reason.
        self.indexes.seal()?;
        self.transaction_index.sync()?;
        // And the new names must exist durably before they are renamed.
        sync_dir(&self.partition_dir)
    }

    /// Renames the `.cleaned` files to `.swap`, the `.log` last, then fsyncs the directory:
    /// once that returns, the swap is committed, and a crash is finished by recovery.
    pub fn stage(&mut self) -> Result<(), StorageError> {
        assert_eq!(self.stage, SwapStage::Cleaned);
        for kind in RENAME_ORDER {
            if kind == SegmentFileKind::Log {
                #[cfg(test)]
                crate::fault::reached_swap_step(crate::fault::SwapStep::IndexesStaged);
            }
            let to = staged_segment_file_path(
                &self.partition_dir,
                self.base_offset,
                kind,
                SwapStage::Swap,
            );
            self.rename(kind, &to)?;
        }
        self.stage = SwapStage::Swap;
        // The commit point: from here on recovery finishes the swap rather than undo it.
        sync_dir(&self.partition_dir)
    }

    /// Renames the `.swap` files over the segment files of the same base offset, the `.log`
    /// last, then fsyncs the directory. The segments after the first that this one replaces
    /// must already be deleted: once the `.log.swap` is gone, recovery cannot tell them.
    pub fn install(&mut self) -> Result<(), StorageError> {
        assert_eq!(self.stage, SwapStage::Swap);
        for kind in RENAME_ORDER {
            if kind == SegmentFileKind::Log {
                #[cfg(test)]
                crate::fault::reached_swap_step(crate::fault::SwapStep::IndexesInstalled);
            }
            let to = segment_file_path(&self.partition_dir, self.base_offset, kind);
            self.rename(kind, &to)?;
        }
        // So that a crash cannot bring back a replaced segment's files.
        sync_dir(&self.partition_dir)
    }

    /// Removes the staged files of this base offset, `.cleaned` and `.swap` alike, after a
    /// failure before the commit point or when the segment is not needed. Best effort: what
    /// is left, recovery removes (`.cleaned`), or finishes as a swap that is still correct
    /// (`.swap`: the old segments were not touched yet).
    pub fn discard(self) {
        for stage in [SwapStage::Cleaned, SwapStage::Swap] {
            for kind in RENAME_ORDER {
                let path =
                    staged_segment_file_path(&self.partition_dir, self.base_offset, kind, stage);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => {
                        warn!(path = %path.display(), %error,
                            "could not remove a cleaned segment file; the next start removes it");
                    }
                }
            }
        }
    }

    /// The installed segment, sealed, for the log's segment list.
    pub fn into_segment(self) -> Segment {
        let size_bytes = self.size_bytes;
        Segment::from_parts(
            &self.partition_dir,
            self.base_offset,
            self.file,
            self.indexes,
            self.transaction_index,
            size_bytes,
            size_bytes,
        )
    }

    fn rename(&mut self, kind: SegmentFileKind, to: &Path) -> Result<(), StorageError> {
        let from = self.path(kind);
        std::fs::rename(&from, to).map_err(io_error(&from))?;
        match kind {
            SegmentFileKind::OffsetIndex => self.indexes.offset_index.file().renamed_to(to),
            SegmentFileKind::TimeIndex => self.indexes.time_index.file().renamed_to(to),
            SegmentFileKind::TransactionIndex => self.transaction_index.renamed_to(to),
            SegmentFileKind::Log => {}
        }
        Ok(())
    }

    fn path(&self, kind: SegmentFileKind) -> PathBuf {
        staged_segment_file_path(&self.partition_dir, self.base_offset, kind, self.stage)
    }

    fn write_pending(&mut self) -> Result<(), StorageError> {
        let log_path = self.path(SegmentFileKind::Log);
        #[cfg(test)]
        if crate::fault::take_write_fault().is_some() {
            return Err(io_error(&log_path)(io::Error::other(
                "injected write fault",
            )));
        }
        (&self.file)
            .write_all(&self.pending)
            .map_err(io_error(&log_path))?;
        self.pending.clear();
        Ok(())
    }
}
