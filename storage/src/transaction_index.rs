//! A segment's transaction index, `<base>.txnindex`: the aborted transactions whose ABORT
//! markers the segment holds, for read_committed fetches and for the log cleaner.
//!
//! Kafka's file, byte for byte (the layout is in [`format`](crate::format)). As in Kafka, the
//! file is created with its first entry, so the many segments of a partition without aborted
//! transactions have none, and it grows by appends, with no preallocation.
//!
//! # Costs and limits
//!
//! Unlike Kafka, which reads the file on every read_committed fetch, each segment keeps its
//! entries in memory, so `Log::aborted_transactions` does no file I/O: 32 bytes per entry
//! (up to twice that while the vector grows), against 34 on disk. Opening a log reads every
//! segment's file once. The active segment holds at most about
//! `MAX_TRANSACTION_INDEX_ENTRIES` entries: the log rolls once it has that many, as it does
//! when the offset index is full (one append may still add a few past the limit, one per
//! marker it holds). That caps a segment's index at about 32 MiB in memory and 34 MiB on
//! disk, however many transactions a producer aborts.
//!
//! # Durability
//!
//! Entries are written to the page cache as they are added, and fsynced (with the partition
//! directory, the first time, since the file is new) by `sync`: when the segment is sealed,
//! by `Log::flush` and before a producer snapshot. Entries lost in a crash are added again by
//! the broker, which replays markers from its latest snapshot; that is why it may offer
//! entries the log already has. Entries storage cannot trust after a crash (a torn last
//! entry, an unknown version, a marker past the recovered end) are cut off at open.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use tracing::warn;

use crate::error::{StorageError, io_error};
use crate::format::{AbortedTransaction, TRANSACTION_INDEX_ENTRY_BYTES};
use crate::fs::sync_dir;
use crate::lock_policy::{MutexRecover, RwLockRecover};
use crate::topic_partition::TopicPartition;

/// Entries at which the active segment is rolled, so that no segment's index grows without
/// bound: 2^20 entries, about 32 MiB in memory.
pub const MAX_TRANSACTION_INDEX_ENTRIES: usize = 1024 * 1024;

/// One segment's transaction index.
pub(crate) struct TransactionIndex {
    /// Every entry, in ascending `last_offset`. Readers hold the read lock to copy the few
    /// they need; the appender holds the write lock only to push one that is already in the
    /// file. Taken after the segment list lock when both are held.
    entries: RwLock<Vec<AbortedTransaction>>,
    /// The file and how much of it is written and durable. Held by the appender for its
    /// positioned write, and briefly by `sync` before and after its fsync, which it runs
    /// without the lock so that appends go on meanwhile.
    file: Mutex<TransactionIndexFile>,
}

/// The file side of a transaction index, guarded by `TransactionIndex::file`.
struct TransactionIndexFile {
    /// Where the file is, or will be once it has an entry; changes when the cleaner renames it.
    path: PathBuf,
    /// `None` until the file exists (an absent file has no entries).
    handle: Option<Arc<File>>,
    /// Entries in the file, which are also the first entries in memory.
    entries_written: usize,
    /// Entries known durable.
    entries_synced: usize,
    /// Whether the file was created since the last `sync`, whose directory entry then needs
    /// an fsync too.
    created_since_sync: bool,
}

impl TransactionIndex {
    /// An empty index for a new segment. A file left at `path` by a roll that failed is
    /// removed, so the index does not start with another segment's entries.
    pub fn create(path: &Path) -> Result<TransactionIndex, StorageError> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(path)(error)),
        }
        Ok(TransactionIndex::with_entries(path, None, Vec::new()))
    }

    /// An empty index whose file exists from the start: the log cleaner's, so that a committed
    /// swap always has a `.txnindex.swap` until it is installed (see `recovery.rs`).
    pub fn create_file(path: &Path) -> Result<TransactionIndex, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io_error(path))?;
        let index = TransactionIndex::with_entries(path, Some(file), Vec::new());
        index.lock_file().created_since_sync = true;
        Ok(index)
    }

    /// Opens the index of segment `base_offset`, whose batches end before `end_offset`, and
    /// keeps its longest valid prefix: whole entries of the known version, in ascending
    /// `last_offset`, each marker inside the segment. Anything after is cut off, the cut
    /// fsynced and logged at WARN. An absent file is an empty index.
    pub fn open(
        path: &Path,
        topic_partition: &TopicPartition,
        base_offset: i64,
        end_offset: i64,
    ) -> Result<TransactionIndex, StorageError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(TransactionIndex::with_entries(path, None, Vec::new()));
            }
            Err(error) => return Err(io_error(path)(error)),
        };
        let (entries, problem) = valid_entries(&bytes, base_offset, end_offset);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(false)
            .open(path)
            .map_err(io_error(path))?;
        if let Some(reason) = problem {
            let kept_bytes = entries_bytes(entries.len());
            let cut_bytes =
                u64::try_from(bytes.len()).expect("a file length fits u64") - kept_bytes;
            warn!(%topic_partition, base_offset, kept_entries_count = entries.len(),
                cut_bytes, reason, "cutting the transaction index after its last valid entry");
            file.set_len(kept_bytes).map_err(io_error(path))?;
            // Entries appended after the cut must not be followed by the cut ones after a
            // power loss.
            file.sync_all().map_err(io_error(path))?;
        }
        Ok(TransactionIndex::with_entries(path, Some(file), entries))
    }

    fn with_entries(
        path: &Path,
        handle: Option<File>,
        entries: Vec<AbortedTransaction>,
    ) -> TransactionIndex {
        let entries_count = entries.len();
        TransactionIndex {
            entries: RwLock::new(entries),
            file: Mutex::new(TransactionIndexFile {
                path: path.to_path_buf(),
                handle: handle.map(Arc::new),
                entries_written: entries_count,
                entries_synced: entries_count,
                created_since_sync: false,
            }),
        }
    }

    /// Appends `aborted` to the file (creating it if needed) and then to the entries readers
    /// see. Only one appender at a time: the log's, under its append lock, or the cleaner's.
    /// A failed write is cut back off the file before the error is returned.
    ///
    /// # Panics
    /// If `aborted` does not come after the last entry.
    pub fn append(&self, aborted: AbortedTransaction) -> Result<(), StorageError> {
        assert!(aborted.first_offset <= aborted.last_offset);
        let last_offset = self.last_entry().map(|last| last.last_offset);
        assert!(last_offset.is_none_or(|last| aborted.last_offset > last));
        let mut file = self.lock_file();
        let handle = file.handle()?;
        let position = entries_bytes(file.entries_written);
        if let Err(error) = handle.write_all_at(&aborted.to_bytes(), position) {
            if let Err(truncate_error) = handle.set_len(position) {
                // The next append writes at `position` anyway, and the open after a crash
                // cuts a torn last entry.
                warn!(path = %file.path.display(), position, %truncate_error,
                    "could not truncate a failed transaction index append");
            }
            return Err(io_error(&file.path)(error));
        }
        file.entries_written += 1;
        self.entries.write_or_recover().push(aborted);
        Ok(())
    }

    /// Fsyncs the entries written so far, and the partition directory if the file is new,
    /// unless an earlier `sync` covered them.
    pub fn sync(&self) -> Result<(), StorageError> {
        let (handle, path, entries_written, created) = {
            let file = self.lock_file();
            let Some(handle) = file.handle.as_ref() else {
                return Ok(());
            };
            if file.entries_synced >= file.entries_written && !file.created_since_sync {
                return Ok(());
            }
            let handle = Arc::clone(handle);
            (
                handle,
                file.path.clone(),
                file.entries_written,
                file.created_since_sync,
            )
        };
        handle.sync_data().map_err(io_error(&path))?;
        if created && let Some(dir) = path.parent() {
            // A new file's entries are lost with it unless its directory entry is durable.
            sync_dir(dir)?;
        }
        let mut file = self.lock_file();
        file.entries_synced = file.entries_synced.max(entries_written);
        if created && file.path == path {
            file.created_since_sync = false;
        }
        Ok(())
    }

    /// Adds to `found` the entries Kafka's `collectAbortedTxns` returns: those with
    /// `last_offset >= start_offset` and `first_offset < upper_bound_offset`, in order, up to
    /// and including the first whose `last_stable_offset >= upper_bound_offset`. Returns whether
    /// it stopped there, so the caller need not look in later segments.
    ///
    /// Entries before `start_offset` are skipped by a binary search instead of checked one by
    /// one, as Kafka does: none of them can stop the search when `start_offset <
    /// upper_bound_offset`, since a last stable offset is at most the marker's offset plus one
    /// (the first offset of a transaction still open when the marker was written, or the
    /// offset after the marker).
    pub fn collect(
        &self,
        start_offset: i64,
        upper_bound_offset: i64,
        found: &mut Vec<AbortedTransaction>,
    ) -> bool {
        let entries = self.entries.read_or_recover();
        let first = entries.partition_point(|entry| entry.last_offset < start_offset);
        for entry in &entries[first..] {
            if entry.first_offset < upper_bound_offset {
                found.push(*entry);
            }
            if entry.last_stable_offset >= upper_bound_offset {
                return true;
            }
        }
        false
    }

    /// The entry whose ABORT marker is at `last_offset`, if there is one.
    pub fn entry_at(&self, last_offset: i64) -> Option<AbortedTransaction> {
        let entries = self.entries.read_or_recover();
        let index = entries
            .binary_search_by_key(&last_offset, |entry| entry.last_offset)
            .ok()?;
        Some(entries[index])
    }

    /// The entry with the largest `last_offset`.
    pub fn last_entry(&self) -> Option<AbortedTransaction> {
        let entries = self.entries.read_or_recover();
        entries.last().copied()
    }

    /// Entries in the index.
    pub fn entries_count(&self) -> usize {
        self.entries.read_or_recover().len()
    }

    /// Records that the file now lives at `path`, after the cleaner renamed it.
    pub fn renamed_to(&self, path: &Path) {
        self.lock_file().path = path.to_path_buf();
    }

    fn lock_file(&self) -> std::sync::MutexGuard<'_, TransactionIndexFile> {
        self.file.lock_or_recover()
    }
}

impl TransactionIndexFile {
    /// The open file, creating it on the first entry.
    fn handle(&mut self) -> Result<Arc<File>, StorageError> {
        if let Some(handle) = &self.handle {
            return Ok(Arc::clone(handle));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.path)
            .map_err(io_error(&self.path))?;
        let handle = Arc::new(file);
        self.handle = Some(Arc::clone(&handle));
        self.created_since_sync = true;
        Ok(handle)
    }
}

/// The longest valid prefix of a file's entries, and why the rest (if any) is not valid.
fn valid_entries(
    bytes: &[u8],
    base_offset: i64,
    end_offset: i64,
) -> (Vec<AbortedTransaction>, Option<&'static str>) {
    let mut chunks = bytes.chunks_exact(TRANSACTION_INDEX_ENTRY_BYTES);
    let mut entries: Vec<AbortedTransaction> = Vec::with_capacity(chunks.len());
    for chunk in chunks.by_ref() {
        let mut entry_bytes = [0; TRANSACTION_INDEX_ENTRY_BYTES];
        entry_bytes.copy_from_slice(chunk);
        let entry = match AbortedTransaction::from_bytes(entry_bytes) {
            Ok(entry) => entry,
            Err(reason) => return (entries, Some(reason)),
        };
        let previous = entries.last().map(|previous| previous.last_offset);
        let problem = entry_problem(&entry, previous, base_offset, end_offset);
        if problem.is_some() {
            return (entries, problem);
        }
        entries.push(entry);
    }
    let torn = (!chunks.remainder().is_empty()).then_some("torn last entry");
    (entries, torn)
}

/// Why `entry` cannot follow an entry whose marker is at `previous_last_offset` in the index
/// of a segment holding `base_offset..end_offset`, or `None` if it can. Shared with
/// `riffle check`, which streams the file instead of reading it whole.
pub(crate) fn entry_problem(
    entry: &AbortedTransaction,
    previous_last_offset: Option<i64>,
    base_offset: i64,
    end_offset: i64,
) -> Option<&'static str> {
    if entry.last_offset >= end_offset {
        Some("marker at or past the segment's end")
    } else if entry.last_offset < base_offset {
        Some("marker before the segment's base offset")
    } else if entry.first_offset > entry.last_offset {
        Some("first offset after the marker")
    } else if previous_last_offset.is_some_and(|previous| entry.last_offset <= previous) {
        Some("marker not after the previous entry's")
    } else {
        None
    }
}

fn entries_bytes(entries_count: usize) -> u64 {
    u64::try_from(entries_count * TRANSACTION_INDEX_ENTRY_BYTES).expect("index size fits u64")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(first_offset: i64, last_offset: i64) -> AbortedTransaction {
        AbortedTransaction {
            producer_id: 1,
            first_offset,
            last_offset,
            last_stable_offset: last_offset + 1,
        }
    }

    fn bytes_of(entries: &[AbortedTransaction]) -> Vec<u8> {
        entries.iter().flat_map(|entry| entry.to_bytes()).collect()
    }

    /// Of the entries of a segment from offset 10 to 20, the longest prefix that is in order
    /// and inside the segment is kept, with the reason the rest is not.
    #[test]
    fn valid_entries_keeps_the_longest_valid_prefix() {
        let good = [entry(3, 10), entry(11, 12), entry(5, 19)];
        assert_eq!(
            valid_entries(&bytes_of(&good), 10, 20),
            (good.to_vec(), None)
        );
        let cases = [
            (entry(12, 20), "marker at or past the segment's end"),
            (entry(2, 9), "marker before the segment's base offset"),
            (entry(15, 14), "first offset after the marker"),
            (entry(11, 12), "marker not after the previous entry's"),
        ];
        for (bad, reason) in cases {
            let bytes = bytes_of(&[good[0], good[1], bad, good[2]]);
            let kept = good[..2].to_vec();
            assert_eq!(valid_entries(&bytes, 10, 20), (kept, Some(reason)));
        }
        let mut torn = bytes_of(&good);
        torn.pop();
        let kept = good[..2].to_vec();
        assert_eq!(
            valid_entries(&torn, 10, 20),
            (kept, Some("torn last entry"))
        );
        assert_eq!(valid_entries(&[], 10, 20), (Vec::new(), None));
    }

    /// The file appears with the first entry, holds each entry once, in order, and opens back
    /// to the same entries; an entry out of order is a bug in the caller.
    #[test]
    fn append_creates_the_file_on_first_entry() {
        let dir = tempfile::Builder::new()
            .prefix("append_creates_the_file_on_first_entry")
            .tempdir()
            .expect("temp dir");
        let path = dir.path().join("00000000000000000010.txnindex");
        std::fs::write(&path, b"a failed roll's").expect("leftover");
        let index = TransactionIndex::create(&path).expect("create");
        assert!(!path.exists());
        index.sync().expect("nothing to sync");
        index.append(entry(3, 10)).expect("append");
        index.append(entry(11, 12)).expect("append");
        index.sync().expect("sync");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            bytes_of(&[entry(3, 10), entry(11, 12)])
        );
        let topic_partition = TopicPartition::new("orders", 0);
        let opened = TransactionIndex::open(&path, &topic_partition, 10, 20).expect("open");
        assert_eq!(opened.entries_count(), 2);
        assert_eq!(opened.entry_at(12), Some(entry(11, 12)));
        assert_eq!(opened.entry_at(11), None);
        let mut found = Vec::new();
        assert!(
            opened.collect(11, 12, &mut found),
            "12's last stable offset stops it"
        );
        assert_eq!(found, [entry(11, 12)]);
        let out_of_order = std::panic::catch_unwind(|| opened.append(entry(5, 12)));
        assert!(out_of_order.is_err());
    }
}
