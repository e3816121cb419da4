//! The sparse time index of one segment: `<base>.timeindex`.
//!
//! Entries have Kafka's meaning: at each indexed batch, the largest max timestamp of the
//! segment's batches so far, and the base offset of the first batch that reached it. Both
//! columns only grow, and an entry is written only when the timestamp grows, so timestamps
//! are strictly ascending. When a segment is sealed, one last entry records the segment's
//! largest timestamp; that entry is why a sealed segment's newest timestamp (for retention and
//! ListOffsets) is known without reading the segment.
//!
//! To find the first batch whose max timestamp is at least `T`: every batch up to an entry
//! with timestamp below `T` is below `T` too, so a scan may start at the last such entry's
//! offset. Batches without a timestamp (negative) are never indexed.

use std::path::Path;

use crate::error::StorageError;
use crate::format::{TIME_INDEX_ENTRY_BYTES, TimeIndexEntry};
use crate::index_file::{IndexCheck, IndexFile, UnusableReason, count_valid_entries};

/// Whether an append may use the last free slot of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeIndexSlot {
    /// Ordinary appends leave the last slot free, so sealing can always write its entry.
    KeepLastForSeal,
    /// The entry written when the segment is sealed.
    MayUseLast,
}

/// A segment's time index, mapped in memory.
pub(crate) struct TimeIndex {
    file: IndexFile,
    /// The segment's base offset; entries store offsets relative to it.
    base_offset: i64,
}

impl TimeIndex {
    /// Creates an empty index preallocated to `max_bytes`.
    pub fn create(
        path: &Path,
        base_offset: i64,
        max_bytes: u64,
    ) -> Result<TimeIndex, StorageError> {
        let file = IndexFile::create(path, TIME_INDEX_ENTRY_BYTES, max_bytes)?;
        Ok(TimeIndex { file, base_offset })
    }

    /// Opens an existing index and keeps the longest prefix of entries that can be real for
    /// a segment whose offsets end before `next_offset` (with `IndexCheck::LastEntry`: all
    /// entries or none). The caller compares `entries_count` with `capacity_entries` to know
    /// whether the whole file was valid.
    pub fn open(
        path: &Path,
        base_offset: i64,
        next_offset: i64,
        check: IndexCheck,
    ) -> Result<Result<TimeIndex, UnusableReason>, StorageError> {
        let mut file = match IndexFile::open(path, TIME_INDEX_ENTRY_BYTES)? {
            Ok(file) => file,
            Err(reason) => return Ok(Err(reason)),
        };
        let is_valid = |previous: Option<TimeIndexEntry>, entry: TimeIndexEntry| {
            let ascending = previous.is_none_or(|previous| {
                entry.timestamp_ms > previous.timestamp_ms
                    && entry.relative_offset >= previous.relative_offset
            });
            let offset = base_offset + i64::from(entry.relative_offset);
            ascending && entry.timestamp_ms >= 0 && offset < next_offset
        };
        let entry_at = |index| decode(file.raw_entry(index));
        let valid_count = count_valid_entries(file.capacity_entries(), check, entry_at, is_valid);
        file.set_entries_count(valid_count);
        Ok(Ok(TimeIndex { file, base_offset }))
    }

    /// Records that the largest timestamp so far is `timestamp_ms`, first reached by the batch
    /// at `offset`, unless it does not grow the last entry's timestamp, is negative (no
    /// timestamp), or there is no room. A skipped entry only makes lookups scan further.
    pub fn maybe_append(&mut self, timestamp_ms: i64, offset: i64, slot: TimeIndexSlot) {
        if timestamp_ms < 0 {
            return;
        }
        if let Some((last_timestamp_ms, last_offset)) = self.last_entry() {
            if timestamp_ms <= last_timestamp_ms {
                return;
            }
            assert!(offset >= last_offset);
        }
        let reserved = match slot {
            TimeIndexSlot::KeepLastForSeal => 1,
            TimeIndexSlot::MayUseLast => 0,
        };
        if self.free_entries() <= reserved {
            return;
        }
        let entry = TimeIndexEntry {
            timestamp_ms,
            relative_offset: u32::try_from(offset - self.base_offset)
                .expect("the segment rolls before relative offsets overflow u32"),
        };
        // A full disk skips the entry: lookups then scan a little further.
        if let Err(error) = self.file.push(&entry.to_bytes()) {
            tracing::warn!(%error, "time index entry skipped");
        }
    }

    /// The last entry as `(timestamp_ms, offset)`: for a sealed segment, its largest
    /// timestamp and the first batch that has it.
    pub fn last_entry(&self) -> Option<(i64, i64)> {
        let index = self.file.entries_count().checked_sub(1)?;
        let entry = self.entry(index);
        Some((entry.timestamp_ms, self.offset_of(entry)))
    }

    /// Offset to start scanning from for the first batch with max timestamp at least
    /// `timestamp_ms`: that of the last entry below it, or `None` to start at the segment's
    /// first batch.
    pub fn scan_start_offset(&self, timestamp_ms: i64) -> Option<i64> {
        let entries_below = self
            .file
            .partition_point(|bytes| decode(bytes).timestamp_ms < timestamp_ms);
        let index = entries_below.checked_sub(1)?;
        Some(self.offset_of(self.entry(index)))
    }

    /// Entries in use.
    pub fn entries_count(&self) -> usize {
        self.file.entries_count()
    }

    /// Entries the file has room for.
    pub fn capacity_entries(&self) -> usize {
        self.file.capacity_entries()
    }

    /// Whether ordinary appends have no room left, which rolls the segment.
    pub fn is_full(&self) -> bool {
        self.free_entries() <= 1
    }

    /// The underlying file, to trim, resize, flush or sync it.
    pub fn file(&mut self) -> &mut IndexFile {
        &mut self.file
    }

    /// The underlying file, read-only.
    pub fn file_ref(&self) -> &IndexFile {
        &self.file
    }

    fn free_entries(&self) -> usize {
        self.capacity_entries() - self.entries_count()
    }

    fn entry(&self, index: usize) -> TimeIndexEntry {
        assert!(index < self.file.entries_count());
        decode(self.file.raw_entry(index))
    }

    fn offset_of(&self, entry: TimeIndexEntry) -> i64 {
        self.base_offset + i64::from(entry.relative_offset)
    }
}

fn decode(bytes: &[u8]) -> TimeIndexEntry {
    let mut array = [0; TIME_INDEX_ENTRY_BYTES];
    array.copy_from_slice(bytes);
    TimeIndexEntry::from_bytes(array)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(name)
            .tempdir()
            .expect("temp dir")
    }

    /// Only growing, non-negative timestamps are indexed, and the last slot is kept for the
    /// seal entry.
    #[test]
    fn time_index_appends_growing_timestamps_and_keeps_seal_slot() {
        let dir = temp_dir("time_index_appends_growing_timestamps_and_keeps_seal_slot");
        let path = dir.path().join("00000000000000000010.timeindex");
        let mut index = TimeIndex::create(&path, 10, 36).expect("create");
        assert_eq!(index.capacity_entries(), 3);
        index.maybe_append(-1, 10, TimeIndexSlot::KeepLastForSeal);
        index.maybe_append(100, 11, TimeIndexSlot::KeepLastForSeal);
        index.maybe_append(100, 12, TimeIndexSlot::KeepLastForSeal);
        index.maybe_append(90, 13, TimeIndexSlot::KeepLastForSeal);
        assert_eq!(index.entries_count(), 1);
        index.maybe_append(200, 14, TimeIndexSlot::KeepLastForSeal);
        assert!(index.is_full());
        index.maybe_append(300, 15, TimeIndexSlot::KeepLastForSeal);
        assert_eq!(index.last_entry(), Some((200, 14)));
        index.maybe_append(300, 15, TimeIndexSlot::MayUseLast);
        assert_eq!(index.last_entry(), Some((300, 15)));
        assert_eq!(index.entries_count(), 3);
    }

    /// The scan starts at the last entry strictly below the target timestamp.
    #[test]
    fn time_index_scan_start_is_last_entry_below_target() {
        let dir = temp_dir("time_index_scan_start_is_last_entry_below_target");
        let path = dir.path().join("00000000000000000000.timeindex");
        let mut index = TimeIndex::create(&path, 0, 1200).expect("create");
        index.maybe_append(100, 3, TimeIndexSlot::KeepLastForSeal);
        index.maybe_append(200, 7, TimeIndexSlot::KeepLastForSeal);
        index.maybe_append(300, 7, TimeIndexSlot::KeepLastForSeal);
        assert_eq!(index.scan_start_offset(50), None);
        assert_eq!(index.scan_start_offset(100), None);
        assert_eq!(index.scan_start_offset(101), Some(3));
        assert_eq!(index.scan_start_offset(200), Some(3));
        assert_eq!(index.scan_start_offset(250), Some(7));
        assert_eq!(index.scan_start_offset(10_000), Some(7));
    }

    /// Reopening keeps real entries and drops the zeroed tail and entries past the segment.
    #[test]
    fn time_index_reopen_keeps_valid_prefix() {
        let dir = temp_dir("time_index_reopen_keeps_valid_prefix");
        let path = dir.path().join("00000000000000000000.timeindex");
        let mut index = TimeIndex::create(&path, 0, 1200).expect("create");
        index.maybe_append(100, 3, TimeIndexSlot::KeepLastForSeal);
        index.maybe_append(200, 7, TimeIndexSlot::KeepLastForSeal);
        index.file().flush().expect("flush");
        drop(index);
        let reopened = TimeIndex::open(&path, 0, 10, IndexCheck::AllEntries)
            .expect("open")
            .expect("usable");
        assert_eq!(reopened.entries_count(), 2);
        drop(reopened);
        let bounded = TimeIndex::open(&path, 0, 7, IndexCheck::AllEntries)
            .expect("open")
            .expect("usable");
        assert_eq!(bounded.entries_count(), 1);
    }
}
