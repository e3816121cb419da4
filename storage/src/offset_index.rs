//! The sparse offset index of one segment: `<base>.index`.
//!
//! One entry per `index_interval_bytes` of batches maps a batch's base offset to its position
//! in the `.log` file. A read binary-searches it for the last entry at or before the offset it
//! wants, then scans batch headers forward from that position.
//!
//! Entries are sorted by offset and by position, strictly, and no entry points at position 0
//! (the first batch of a segment is never indexed: its position is known). Those facts let
//! `open` tell real entries from the zeroed, preallocated tail of a file that was not trimmed.

use std::path::Path;

use crate::error::StorageError;
use crate::format::{OFFSET_INDEX_ENTRY_BYTES, OffsetIndexEntry};
use crate::index_file::{IndexCheck, IndexFile, UnusableReason, count_valid_entries};

/// A segment's offset index, mapped in memory.
pub(crate) struct OffsetIndex {
    file: IndexFile,
    /// The segment's base offset; entries store offsets relative to it.
    base_offset: i64,
}

impl OffsetIndex {
    /// Creates an empty index preallocated to `max_bytes`.
    pub fn create(
        path: &Path,
        base_offset: i64,
        max_bytes: u64,
    ) -> Result<OffsetIndex, StorageError> {
        let file = IndexFile::create(path, OFFSET_INDEX_ENTRY_BYTES, max_bytes)?;
        Ok(OffsetIndex { file, base_offset })
    }

    /// Opens an existing index and keeps the longest prefix of entries that can be real for a
    /// `.log` file of `log_bytes` (with `IndexCheck::LastEntry`: all entries or none). The
    /// caller compares `entries_count` with `capacity_entries` to know whether the whole file
    /// was valid.
    pub fn open(
        path: &Path,
        base_offset: i64,
        log_bytes: u64,
        check: IndexCheck,
    ) -> Result<Result<OffsetIndex, UnusableReason>, StorageError> {
        let mut file = match IndexFile::open(path, OFFSET_INDEX_ENTRY_BYTES)? {
            Ok(file) => file,
            Err(reason) => return Ok(Err(reason)),
        };
        let is_valid = |previous: Option<OffsetIndexEntry>, entry: OffsetIndexEntry| {
            let ascending = previous.is_none_or(|previous| {
                entry.relative_offset > previous.relative_offset
                    && entry.position > previous.position
            });
            ascending && entry.position > 0 && u64::from(entry.position) < log_bytes
        };
        let entry_at = |index| decode(file.raw_entry(index));
        let valid_count = count_valid_entries(file.capacity_entries(), check, entry_at, is_valid);
        file.set_entries_count(valid_count);
        Ok(Ok(OffsetIndex { file, base_offset }))
    }

    /// Position of the last indexed batch whose base offset is at most `offset`, or 0 (the
    /// segment's first batch) if there is none. Scanning from there finds `offset`.
    pub fn lookup(&self, offset: i64) -> u64 {
        let entries_before = self
            .file
            .partition_point(|bytes| self.offset_of(decode(bytes)) <= offset);
        match entries_before.checked_sub(1) {
            Some(index) => u64::from(self.entry(index).position),
            None => 0,
        }
    }

    /// The last entry as `(offset, position)`.
    pub fn last_entry(&self) -> Option<(i64, u64)> {
        let index = self.file.entries_count().checked_sub(1)?;
        let entry = self.entry(index);
        Some((self.offset_of(entry), u64::from(entry.position)))
    }

    /// Drops the entries at or past `position`, for recovery: they point at batches that may
    /// not have been durable.
    pub fn keep_entries_below(&mut self, position: u64) {
        let kept = self
            .file
            .partition_point(|bytes| u64::from(decode(bytes).position) < position);
        self.file.set_entries_count(kept);
    }

    /// Indexes the batch with base offset `offset` at `position`.
    ///
    /// # Panics
    /// If the entry would not ascend, would not fit the `u32` fields, or the file is full:
    /// the segment rolls before any of these can happen.
    pub fn append(&mut self, offset: i64, position: u64) {
        assert!(
            position > 0,
            "the first batch of a segment is never indexed"
        );
        if let Some((last_offset, last_position)) = self.last_entry() {
            assert!(offset > last_offset);
            assert!(position > last_position);
        }
        let entry = OffsetIndexEntry {
            relative_offset: u32::try_from(offset - self.base_offset)
                .expect("the segment rolls before relative offsets overflow u32"),
            position: u32::try_from(position).expect("segments are smaller than 4 GiB"),
        };
        // A full disk skips the entry: lookups then scan a little further.
        if let Err(error) = self.file.push(&entry.to_bytes()) {
            tracing::warn!(%error, "offset index entry skipped");
        }
    }

    /// Entries in use.
    pub fn entries_count(&self) -> usize {
        self.file.entries_count()
    }

    /// Entries the file has room for.
    pub fn capacity_entries(&self) -> usize {
        self.file.capacity_entries()
    }

    /// Entries that can still be appended.
    pub fn free_entries(&self) -> usize {
        self.capacity_entries() - self.entries_count()
    }

    /// The underlying file, to trim, resize, flush or sync it.
    pub fn file(&mut self) -> &mut IndexFile {
        &mut self.file
    }

    /// The underlying file, read-only.
    pub fn file_ref(&self) -> &IndexFile {
        &self.file
    }

    fn entry(&self, index: usize) -> OffsetIndexEntry {
        assert!(index < self.file.entries_count());
        decode(self.file.raw_entry(index))
    }

    fn offset_of(&self, entry: OffsetIndexEntry) -> i64 {
        self.base_offset + i64::from(entry.relative_offset)
    }
}

fn decode(bytes: &[u8]) -> OffsetIndexEntry {
    let mut array = [0; OFFSET_INDEX_ENTRY_BYTES];
    array.copy_from_slice(bytes);
    OffsetIndexEntry::from_bytes(array)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn temp_dir(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(name)
            .tempdir()
            .expect("temp dir")
    }

    /// Lookups return the floor entry's position, or 0 before the first entry.
    #[test]
    fn offset_index_lookup_finds_floor_entry() {
        let dir = temp_dir("offset_index_lookup_finds_floor_entry");
        let path = dir.path().join("00000000000000000100.index");
        let mut index = OffsetIndex::create(&path, 100, 1024).expect("create");
        assert_eq!(index.capacity_entries(), 128);
        assert_eq!(index.lookup(150), 0);
        index.append(110, 500);
        index.append(120, 900);
        index.append(135, 1400);
        assert_eq!(index.lookup(100), 0);
        assert_eq!(index.lookup(109), 0);
        assert_eq!(index.lookup(110), 500);
        assert_eq!(index.lookup(119), 500);
        assert_eq!(index.lookup(120), 900);
        assert_eq!(index.lookup(1_000_000), 1400);
        assert_eq!(index.last_entry(), Some((135, 1400)));
    }

    /// After a trim the file holds exactly its entries and reopens whole; an untrimmed file
    /// reopens with just its real entries, the zeroed tail cut off.
    #[test]
    fn offset_index_reopens_trimmed_and_untrimmed() {
        let dir = temp_dir("offset_index_reopens_trimmed_and_untrimmed");
        let path = dir.path().join("00000000000000000000.index");
        let mut index = OffsetIndex::create(&path, 0, 800).expect("create");
        index.append(5, 100);
        index.append(9, 200);
        index.file().flush().expect("flush");
        drop(index);

        let untrimmed = OffsetIndex::open(&path, 0, 1_000, IndexCheck::AllEntries)
            .expect("open")
            .expect("usable");
        assert_eq!(untrimmed.entries_count(), 2);
        assert_eq!(untrimmed.capacity_entries(), 100);
        drop(untrimmed);

        let mut index = OffsetIndex::open(&path, 0, 1_000, IndexCheck::AllEntries)
            .expect("open")
            .expect("usable");
        index.file().trim().expect("trim");
        drop(index);
        assert_eq!(std::fs::metadata(&path).expect("metadata").len(), 16);
        let trimmed = OffsetIndex::open(&path, 0, 1_000, IndexCheck::AllEntries)
            .expect("open")
            .expect("usable");
        assert_eq!(trimmed.entries_count(), trimmed.capacity_entries());
        assert_eq!(trimmed.lookup(10), 200);

        // Entries pointing past the end of the log are not trusted.
        let short_log = OffsetIndex::open(&path, 0, 150, IndexCheck::AllEntries)
            .expect("open")
            .expect("usable");
        assert_eq!(short_log.entries_count(), 1);
    }

    /// A missing file or one of a size no index has is reported as unusable, not an error.
    #[test]
    fn offset_index_open_reports_unusable_files() {
        let dir = temp_dir("offset_index_open_reports_unusable_files");
        let path = dir.path().join("00000000000000000000.index");
        let missing = OffsetIndex::open(&path, 0, 0, IndexCheck::AllEntries).expect("open");
        assert!(matches!(missing, Err("missing")));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("create");
        file.set_len(13).expect("set_len");
        let odd = OffsetIndex::open(&path, 0, 0, IndexCheck::AllEntries).expect("open");
        assert!(matches!(odd, Err("size is not a whole number of entries")));
    }
}
