//! Progress of crash recovery at start-up: one INFO line per tenth of the data to scan, so an
//! operator watching a large broker restart after a crash sees it move.
//!
//! After an unclean stop each partition's active segment is scanned (see `recovery`). When
//! the data directory opens, [`RecoveryProgress::measure`] sums the sizes of every
//! partition's active segment (its last `.log` file): the most recovery will scan. Each
//! `DataDir::open_log` then reports its partition, and a line is logged each time the bytes
//! of the partitions opened so far cross another 10%:
//!
//! ```text
//! INFO recovering logs after an unclean stop: 30% done_bytes=1288490188 total_bytes=4294967296 partitions=12/40
//! ```
//!
//! The total is an upper bound: a partition whose recovery point covers most of its active
//! segment scans only the tail. Nothing is logged when there is nothing to scan.

use std::collections::BTreeMap;
use std::path::Path;

use tracing::info;

use crate::error::{StorageError, io_error};
use crate::format::{
    SegmentFileKind, is_delete_dir_name, parse_partition_dir_name, parse_segment_file_name,
};

/// How far recovery has come, over the partitions found when the directory opened.
#[derive(Debug)]
pub(crate) struct RecoveryProgress {
    /// Each partition not opened yet, with the bytes of its active segment.
    remaining: BTreeMap<(String, i32), u64>,
    /// The bytes of every active segment found.
    total_bytes: u64,
    /// The bytes of the active segments of the partitions opened so far.
    done_bytes: u64,
    /// How many partitions were found.
    partitions_count: usize,
    /// The next tenth (1 to 10) to report.
    next_tenth: u64,
}

impl RecoveryProgress {
    /// Measures the active segment of every partition directory under `data_dir`.
    ///
    /// # Errors
    /// An I/O error listing a directory or reading a file's size.
    pub(crate) fn measure(data_dir: &Path) -> Result<RecoveryProgress, StorageError> {
        let mut remaining = BTreeMap::new();
        for entry in std::fs::read_dir(data_dir).map_err(io_error(data_dir))? {
            let entry = entry.map_err(io_error(data_dir))?;
            let name = entry.file_name();
            let name = name.to_str().unwrap_or_default();
            let path = entry.path();
            if is_delete_dir_name(name) || !path.is_dir() {
                continue;
            }
            if let Some(topic_partition) = parse_partition_dir_name(name) {
                let key = (topic_partition.topic, topic_partition.partition);
                remaining.insert(key, active_segment_bytes(&path)?);
            }
        }
        Ok(RecoveryProgress {
            total_bytes: remaining.values().sum(),
            partitions_count: remaining.len(),
            remaining,
            done_bytes: 0,
            next_tenth: 1,
        })
    }

    /// Counts `topic`-`partition` as recovered; logs and returns the percentage done when
    /// that crosses another tenth. A partition not found at the start (a new one) or
    /// reported twice changes nothing.
    pub(crate) fn partition_opened(&mut self, topic: &str, partition: i32) -> Option<u64> {
        let bytes = self.remaining.remove(&(topic.to_owned(), partition))?;
        self.done_bytes += bytes;
        if self.total_bytes == 0 {
            return None;
        }
        let tenths = self.done_bytes.saturating_mul(10) / self.total_bytes;
        if tenths < self.next_tenth {
            return None;
        }
        self.next_tenth = tenths + 1;
        let percent = tenths * 10;
        let partitions_done = self.partitions_count - self.remaining.len();
        info!(
            done_bytes = self.done_bytes,
            total_bytes = self.total_bytes,
            partitions = %format!("{partitions_done}/{}", self.partitions_count),
            "recovering logs after an unclean stop: {percent}%"
        );
        Some(percent)
    }
}

/// The size of the `.log` file with the highest base offset in a partition directory; 0
/// when there is none.
fn active_segment_bytes(partition_dir: &Path) -> Result<u64, StorageError> {
    let mut active: Option<(i64, u64)> = None;
    for entry in std::fs::read_dir(partition_dir).map_err(io_error(partition_dir))? {
        let entry = entry.map_err(io_error(partition_dir))?;
        let name = entry.file_name();
        let Some((base_offset, SegmentFileKind::Log)) =
            parse_segment_file_name(name.to_str().unwrap_or_default())
        else {
            continue;
        };
        if active.is_none_or(|(highest, _)| base_offset > highest) {
            let bytes = entry.metadata().map_err(io_error(&entry.path()))?.len();
            active = Some((base_offset, bytes));
        }
    }
    Ok(active.map_or(0, |(_, bytes)| bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, bytes: usize) {
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create dir");
        std::fs::write(path, vec![0u8; bytes]).expect("write");
    }

    #[test]
    fn reports_each_tenth_of_the_active_segments_bytes() {
        // Proves only active segments count (not older segments, indexes, stray or
        // deleted directories), a partition crossing several tenths logs once, and new or
        // repeated partitions change nothing.
        let dir = tempfile::Builder::new()
            .prefix("reports_each_tenth_of_the_active_segments_bytes")
            .tempdir()
            .expect("temp dir");
        let root = dir.path();
        write(&root.join("a-0/00000000000000000000.log"), 5_000);
        write(&root.join("a-0/00000000000000000100.log"), 100);
        write(&root.join("a-0/00000000000000000100.index"), 9_999);
        write(&root.join("a-1/00000000000000000000.log"), 250);
        write(&root.join("b-0/00000000000000000000.log"), 650);
        write(&root.join("b-1.7-delete/00000000000000000000.log"), 9_999);
        write(
            &root.join("not a partition/00000000000000000000.log"),
            9_999,
        );
        std::fs::create_dir_all(root.join("c-0")).expect("empty partition");

        let mut progress = RecoveryProgress::measure(root).expect("measure");
        assert_eq!(progress.total_bytes, 1_000);
        assert_eq!(progress.partitions_count, 4);
        assert_eq!(progress.partition_opened("c-0", 0), None);
        assert_eq!(progress.partition_opened("c", 0), None, "0 bytes");
        assert_eq!(progress.partition_opened("a", 0), Some(10));
        assert_eq!(progress.partition_opened("a", 0), None, "reported twice");
        assert_eq!(progress.partition_opened("new", 0), None);
        assert_eq!(progress.partition_opened("a", 1), Some(30));
        assert_eq!(progress.partition_opened("b", 0), Some(100));
    }

    #[test]
    fn an_empty_directory_reports_nothing() {
        // Proves nothing is logged, and nothing divides by zero, with no data.
        let dir = tempfile::Builder::new()
            .prefix("an_empty_directory_reports_nothing")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir_all(dir.path().join("a-0")).expect("partition dir");
        let mut progress = RecoveryProgress::measure(dir.path()).expect("measure");
        assert_eq!(progress.partition_opened("a", 0), None);
    }
}
