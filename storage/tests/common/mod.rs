//! Helpers shared by the storage integration tests: temp dirs named after the test, small
//! configs that roll often, reading a whole log back, and the file faults tests inject.
#![allow(dead_code)]

pub mod batch;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use riffle_storage::format::{
    RECOVERY_POINT_CHECKPOINT_FILE_NAME, SegmentFileKind, parse_segment_file_name,
};
use riffle_storage::{AppendOutcome, DataDir, FirstBatch, Log, LogConfig};

/// The topic every test log belongs to.
pub const TOPIC: &str = "test-topic";

/// A temporary directory whose name starts with the test's name, so a failing test's files
/// are easy to find.
pub fn temp_dir(test_name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(test_name)
        .tempdir()
        .expect("create temp dir")
}

/// Segments of about 1 KiB with an index entry per 100 bytes, so a few dozen batches give
/// several segments and several index entries each; nothing expires.
pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        segment_ms: i64::MAX,
        index_interval_bytes: 100,
        segment_index_bytes: 1024,
        retention_ms: -1,
        retention_bytes: -1,
        // Every compaction pass cleans whatever is dirty, so tests see each pass's effect.
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    }
}

/// Opens partition 0 of `TOPIC` in a freshly opened data directory.
pub fn open_log(data_dir_path: &Path, config: LogConfig) -> (DataDir, Log) {
    let data_dir = DataDir::open(data_dir_path).expect("open data dir");
    let log = data_dir.open_log(TOPIC, 0, config).expect("open log");
    (data_dir, log)
}

/// Partition 0's directory.
pub fn partition_dir(data_dir_path: &Path) -> PathBuf {
    data_dir_path.join(format!("{TOPIC}-0"))
}

/// Appends a copy of `batch` and returns the outcome and the bytes as stored (with the
/// assigned base offset).
pub fn append(log: &Log, batch: &[u8], now_ms: i64) -> (AppendOutcome, Vec<u8>) {
    let outcome = log.append(batch, now_ms).expect("append");
    let mut bytes = batch.to_vec();
    // The log writes each batch's new base offset beside the input; do the same to the copy.
    let (mut position, mut next_offset) = (0, outcome.base_offset);
    while position < bytes.len() {
        let length = i32::from_be_bytes(bytes[position + 8..position + 12].try_into().unwrap());
        let last_offset_delta =
            i32::from_be_bytes(bytes[position + 23..position + 27].try_into().unwrap());
        bytes[position..position + 8].copy_from_slice(&next_offset.to_be_bytes());
        next_offset += i64::from(last_offset_delta) + 1;
        position += 12 + usize::try_from(length).unwrap();
    }
    (outcome, bytes)
}

/// Appends one batch per `(records_count, payload_bytes)` and returns them as stored.
pub fn append_all(log: &Log, shapes: &[(i32, usize)]) -> Vec<Vec<u8>> {
    shapes
        .iter()
        .map(|(records_count, payload_bytes)| {
            append(log, &batch::batch(*records_count, *payload_bytes), 0).1
        })
        .collect()
}

/// Every batch from the log start offset to the high watermark, read in chunks.
pub fn read_all(log: &Log) -> Vec<Vec<u8>> {
    let mut batches = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let bytes = log
            .read(offset, 700, FirstBatch::AlwaysWhole)
            .expect("read");
        assert!(
            !bytes.is_empty(),
            "a read below the high watermark returns data"
        );
        for (_, batch) in batch::split(&bytes) {
            offset = batch::last_offset_of(&batch) + 1;
            batches.push(batch);
        }
    }
    batches
}

/// The partition's segment files of one kind, in offset order.
pub fn segment_files(partition_dir: &Path, kind: SegmentFileKind) -> Vec<PathBuf> {
    let mut files: Vec<(i64, PathBuf)> = std::fs::read_dir(partition_dir)
        .expect("read partition dir")
        .map(|entry| entry.expect("dir entry").path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?;
            let (base_offset, file_kind) = parse_segment_file_name(name)?;
            (file_kind == kind).then_some((base_offset, path))
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, path)| path).collect()
}

/// The last segment's `.log` file.
pub fn active_log_file(partition_dir: &Path) -> PathBuf {
    segment_files(partition_dir, SegmentFileKind::Log)
        .pop()
        .expect("at least one segment")
}

/// Length of a file in bytes.
pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).expect("metadata").len()
}

/// Fault: cuts a file to `length_bytes`, like a write torn by power loss.
pub fn truncate_file(path: &Path, length_bytes: u64) {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for truncate");
    file.set_len(length_bytes).expect("truncate");
}

/// Fault: inverts one byte, like a bit flip on disk.
pub fn flip_byte(path: &Path, position: u64) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open for flip");
    let mut byte = [0];
    file.read_exact_at(&mut byte, position).expect("read byte");
    file.write_all_at(&[!byte[0]], position)
        .expect("write byte");
}

/// Fault: appends bytes that are not a batch, like a half-written page after a crash.
pub fn append_garbage(path: &Path, garbage: &[u8]) {
    let mut file = OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open for append");
    file.write_all(garbage).expect("append garbage");
}

/// Fault: the partition's recovery point is lost, as if its segment's bytes had never been
/// fsynced, so the next unclean start scans the whole active segment.
pub fn forget_recovery_point(data_dir_path: &Path) {
    let path = partition_dir(data_dir_path).join(RECOVERY_POINT_CHECKPOINT_FILE_NAME);
    std::fs::remove_file(path).expect("remove the recovery point");
}

/// Fault: the process dies without closing the log, leaving its index files untrimmed. The
/// leaked handles and mappings keep nothing locked: the data dir lock is separate.
pub fn crash(log: Log) {
    std::mem::forget(log);
}

/// Checks that reading each offset of each stored batch returns exactly that batch, which
/// exercises the offset index at every position.
pub fn assert_every_offset_reads_its_batch(log: &Log, stored: &[Vec<u8>]) {
    for expected in stored {
        for offset in batch::base_offset_of(expected)..=batch::last_offset_of(expected) {
            let bytes = log.read(offset, 1, FirstBatch::AlwaysWhole).expect("read");
            assert_eq!(
                bytes.as_ref(),
                expected.as_slice(),
                "reading offset {offset}"
            );
        }
    }
}

/// Closes the log and marks the data directory cleanly shut down, as the broker does.
pub fn close_cleanly(data_dir: DataDir, log: Log) {
    drop(log);
    data_dir.mark_clean_shutdown().expect("mark clean shutdown");
}

/// Positions of the batches in a segment's `.log` file, read from the file itself.
pub fn batch_positions(log_file: &Path) -> Vec<u64> {
    let bytes = std::fs::read(log_file).expect("read segment");
    let mut positions = Vec::new();
    let mut position = 0;
    for (_, batch) in batch::split(&bytes) {
        positions.push(position);
        position += u64::try_from(batch.len()).expect("small");
    }
    positions
}
