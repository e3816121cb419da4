//! A preallocated, memory-mapped file of fixed-size entries: the storage under both the
//! offset index and the time index.
//!
//! Like Kafka, an index file is preallocated to its maximum size and mapped, so appending an
//! entry is a memory write, and trimmed to the entries in use when its segment is sealed or
//! closed. The preallocated tail reads as zeros, which is why a file that was not trimmed
//! (a crash, or a stop without closing) must be checked before its entries are trusted.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use memmap2::{Advice, MmapMut, MmapOptions};

use crate::config::MAX_SEGMENT_INDEX_BYTES;
use crate::error::{StorageError, io_error};

/// One index file and its mapping.
pub(crate) struct IndexFile {
    path: PathBuf,
    file: File,
    /// The whole file, mapped read-write; `None` when the file is empty, since a zero-length
    /// mapping is not allowed. Remapped whenever the file's length changes, so no access can
    /// fall past the end of the file (which would be SIGBUS, not an error).
    mmap: Option<MmapMut>,
    entry_bytes: usize,
    /// Entries in use, from the start of the file; the rest is preallocated space.
    entries_count: usize,
    /// Bytes from the start of the file known to have disk blocks behind them. The
    /// preallocated tail is a hole, and a store into a hole on a full disk is SIGBUS,
    /// which kills the broker: `push` reserves blocks with `fallocate` first, so a full
    /// disk is an error instead.
    reserved_bytes: u64,
}

/// Blocks are reserved this many bytes at a time, so a push costs a syscall only once
/// per 8,192 offset-index entries.
const RESERVE_CHUNK_BYTES: u64 = 64 * 1024;

/// Why an existing index file cannot be used as it is.
pub(crate) type UnusableReason = &'static str;

/// How much of an existing index file `open` checks before trusting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexCheck {
    /// Every entry, in order, keeping the longest valid prefix: for files that may not have
    /// been trimmed, and after an unclean stop.
    AllEntries,
    /// Only the last entry, trusting all or none: for sealed segments after a clean stop,
    /// where reading every index of every segment would make start-up slow.
    LastEntry,
}

/// How many entries of `capacity` to trust, given whether the entry at an index is valid
/// after the one before it (`None` for the first entry checked).
pub(crate) fn count_valid_entries<Entry: Copy>(
    capacity: usize,
    check: IndexCheck,
    entry_at: impl Fn(usize) -> Entry,
    is_valid: impl Fn(Option<Entry>, Entry) -> bool,
) -> usize {
    match check {
        IndexCheck::LastEntry => match capacity.checked_sub(1) {
            Some(last) if is_valid(None, entry_at(last)) => capacity,
            _ => 0,
        },
        IndexCheck::AllEntries => {
            let mut previous = None;
            let mut valid_count = 0;
            while valid_count < capacity {
                let entry = entry_at(valid_count);
                if !is_valid(previous, entry) {
                    break;
                }
                previous = Some(entry);
                valid_count += 1;
            }
            valid_count
        }
    }
}

impl IndexFile {
    /// Creates the file, or empties an existing one, and preallocates it to `max_bytes`
    /// rounded down to whole entries. Emptying first matters: a rebuilt index must not keep
    /// stale entries from a longer past in its preallocated tail.
    pub fn create(
        path: &Path,
        entry_bytes: usize,
        max_bytes: u64,
    ) -> Result<IndexFile, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io_error(path))?;
        let mut index = IndexFile {
            path: path.to_path_buf(),
            file,
            mmap: None,
            entry_bytes,
            entries_count: 0,
            reserved_bytes: 0,
        };
        index.resize(max_bytes)?;
        Ok(index)
    }

    /// Opens an existing file and maps it at its current length, with no entries in use yet:
    /// the caller checks the entries (`raw_entry` up to `capacity_entries`) and then calls
    /// `set_entries_count`.
    ///
    /// # Errors
    /// I/O errors, except a missing file, which is `Ok(Err(..))` like any other file the
    /// caller has to rebuild.
    pub fn open(
        path: &Path,
        entry_bytes: usize,
    ) -> Result<Result<IndexFile, UnusableReason>, StorageError> {
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create(false)
            .open(path);
        let file = match opened {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Err("missing")),
            Err(error) => return Err(io_error(path)(error)),
        };
        let length_bytes = file.metadata().map_err(io_error(path))?.len();
        if length_bytes > MAX_SEGMENT_INDEX_BYTES {
            return Ok(Err("larger than any index we write"));
        }
        if length_bytes % u64::try_from(entry_bytes).expect("entry size fits u64") != 0 {
            return Ok(Err("size is not a whole number of entries"));
        }
        let mut index = IndexFile {
            path: path.to_path_buf(),
            file,
            mmap: None,
            entry_bytes,
            entries_count: 0,
            reserved_bytes: 0,
        };
        index.remap(length_bytes)?;
        Ok(Ok(index))
    }

    /// Entries in use.
    pub fn entries_count(&self) -> usize {
        self.entries_count
    }

    /// Entries the file has room for.
    pub fn capacity_entries(&self) -> usize {
        self.mapped_bytes() / self.entry_bytes
    }

    /// Marks the first `entries_count` entries as in use, after the caller checked them.
    pub fn set_entries_count(&mut self, entries_count: usize) {
        assert!(entries_count <= self.capacity_entries());
        self.entries_count = entries_count;
        // Entries that were read back are backed by blocks.
        self.reserved_bytes = self.used_bytes();
    }

    /// The bytes of entry `index`, which may be past `entries_count` while the caller checks
    /// a freshly opened file.
    pub fn raw_entry(&self, index: usize) -> &[u8] {
        assert!(index < self.capacity_entries());
        let start = index * self.entry_bytes;
        let mmap = self.mmap.as_ref().expect("a file with entries is mapped");
        &mmap[start..start + self.entry_bytes]
    }

    /// Appends one entry, after reserving disk blocks for it.
    ///
    /// # Errors
    /// The reservation's error (ENOSPC on a full disk); the entry is then not written. An
    /// index is sparse, so a missing entry only makes lookups scan further.
    ///
    /// # Panics
    /// If the file is full: callers roll the segment before that happens.
    pub fn push(&mut self, entry: &[u8]) -> Result<(), StorageError> {
        assert_eq!(entry.len(), self.entry_bytes);
        assert!(self.entries_count < self.capacity_entries());
        let start = self.entries_count * self.entry_bytes;
        let end_bytes = u64::try_from(start + self.entry_bytes).expect("index size fits u64");
        if end_bytes > self.reserved_bytes {
            self.reserve_through(end_bytes)?;
        }
        let mmap = self.mmap.as_mut().expect("a file with room is mapped");
        mmap[start..start + self.entry_bytes].copy_from_slice(entry);
        self.entries_count += 1;
        Ok(())
    }

    /// Gives the file disk blocks from `reserved_bytes` through at least `end_bytes`, a
    /// chunk at a time, never past the file's end.
    fn reserve_through(&mut self, end_bytes: u64) -> Result<(), StorageError> {
        let file_bytes = u64::try_from(self.mapped_bytes()).expect("mapping fits u64");
        let chunk_end_bytes = end_bytes
            .div_ceil(RESERVE_CHUNK_BYTES)
            .saturating_mul(RESERVE_CHUNK_BYTES)
            .min(file_bytes);
        assert!(chunk_end_bytes >= end_bytes);
        allocate(
            &self.file,
            self.reserved_bytes,
            chunk_end_bytes - self.reserved_bytes,
        )
        .map_err(io_error(&self.path))?;
        self.reserved_bytes = chunk_end_bytes;
        Ok(())
    }

    /// The number of entries in use for which `predicate` holds, given that it holds for a
    /// prefix of them (a binary search, as entries are sorted).
    pub fn partition_point(&self, predicate: impl Fn(&[u8]) -> bool) -> usize {
        let (mut low, mut high) = (0, self.entries_count);
        while low < high {
            let middle = low + (high - low) / 2;
            if predicate(self.raw_entry(middle)) {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low
    }

    /// Grows (or shrinks) the file to `max_bytes` rounded down to whole entries, keeping the
    /// entries in use; used to make a trimmed index writable again.
    pub fn resize(&mut self, max_bytes: u64) -> Result<(), StorageError> {
        let entry_bytes = u64::try_from(self.entry_bytes).expect("entry size fits u64");
        let length_bytes = max_bytes - max_bytes % entry_bytes;
        let used_bytes = self.used_bytes();
        assert!(
            length_bytes >= used_bytes,
            "resize would drop index entries"
        );
        self.flush()?;
        // Unmap before changing the length, so no mapping ever covers bytes past the end.
        self.mmap = None;
        self.file
            .set_len(length_bytes)
            .map_err(io_error(&self.path))?;
        self.reserved_bytes = self.reserved_bytes.min(length_bytes);
        self.remap(length_bytes)
    }

    /// Shrinks the file to the entries in use, so that its length says how many there are
    /// the next time it is opened.
    pub fn trim(&mut self) -> Result<(), StorageError> {
        let used_bytes = self.used_bytes();
        if used_bytes == u64::try_from(self.mapped_bytes()).expect("mapping fits u64") {
            return Ok(());
        }
        self.flush()?;
        self.mmap = None;
        self.file
            .set_len(used_bytes)
            .map_err(io_error(&self.path))?;
        self.reserved_bytes = self.reserved_bytes.min(used_bytes);
        self.remap(used_bytes)
    }

    /// Writes dirty pages of the mapping back to the file (msync).
    pub fn flush(&self) -> Result<(), StorageError> {
        match &self.mmap {
            Some(mmap) => mmap.flush().map_err(io_error(&self.path)),
            None => Ok(()),
        }
    }

    /// Records that the file was renamed to `path`, so errors name it there. The handle and
    /// mapping follow the file, not the name.
    pub fn renamed_to(&mut self, path: &Path) {
        self.path = path.to_path_buf();
    }

    /// Flushes the mapping and fsyncs the file, length included.
    pub fn sync(&self) -> Result<(), StorageError> {
        self.flush()?;
        self.file.sync_all().map_err(io_error(&self.path))
    }

    fn used_bytes(&self) -> u64 {
        u64::try_from(self.entries_count * self.entry_bytes).expect("index size fits u64")
    }

    fn mapped_bytes(&self) -> usize {
        self.mmap.as_ref().map_or(0, |mmap| mmap.len())
    }

    fn remap(&mut self, length_bytes: u64) -> Result<(), StorageError> {
        assert!(self.mmap.is_none());
        if length_bytes == 0 {
            return Ok(());
        }
        let length = usize::try_from(length_bytes).map_err(|_| StorageError::Io {
            path: self.path.clone(),
            source: io::Error::other("index file larger than the address space"),
        })?;
        // SAFETY: the mapping is only unsound if the file changes size or content behind our
        // back. The data directory lock keeps other brokers out; this struct is the only
        // writer of the file, and it unmaps before every length change (`resize`, `trim`).
        let mmap = unsafe { MmapOptions::new().len(length).map_mut(&self.file) };
        let mmap = mmap.map_err(io_error(&self.path))?;
        // Index pages are touched one at a time, and most of a preallocated file is a hole.
        // Without this, the first touch of a page makes the kernel read around it (up to the
        // device's read-ahead, 8 MiB here), zero-filling megabytes of page cache per index:
        // that was most of a rebuild's CPU in recovery, and a cost on every new segment.
        mmap.advise(Advice::Random).map_err(io_error(&self.path))?;
        self.mmap = Some(mmap);
        Ok(())
    }
}

/// Allocates disk blocks for `length_bytes` from `offset_bytes` without changing the file's
/// length. Where the filesystem has no `fallocate`, writes zeros instead: the range is past
/// every entry in use, so nothing is overwritten.
fn allocate(file: &File, offset_bytes: u64, length_bytes: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let (Ok(offset), Ok(length)) = (
        libc::off_t::try_from(offset_bytes),
        libc::off_t::try_from(length_bytes),
    ) else {
        return Err(io::Error::other("index range past off_t"));
    };
    // SAFETY: fallocate reads no memory; the descriptor is open for as long as `file`.
    let result = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, length) };
    if result == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() != Some(libc::EOPNOTSUPP) {
        return Err(error);
    }
    let zeros = vec![0u8; usize::try_from(length_bytes).unwrap_or(0)];
    file.write_all_at(&zeros, offset_bytes)
}
