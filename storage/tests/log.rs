//! Append, read, timestamp lookups, durability and concurrency of one `Log`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::batch::{batch, batch_at, last_offset_of, max_timestamp_of, split};
use common::{
    append, append_all, open_log, partition_dir, read_all, segment_files, small_config, temp_dir,
};
use riffle_storage::format::SegmentFileKind;
use riffle_storage::{FirstBatch, LogConfig, StorageError};

/// Batches appended across several segment rolls read back byte for byte, with contiguous
/// offsets assigned in order.
#[test]
fn append_read_round_trip_across_segment_rolls() {
    let dir = temp_dir("append_read_round_trip_across_segment_rolls");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    let shapes: Vec<(i32, usize)> = (0_usize..60)
        .map(|index| {
            (
                i32::try_from(1 + index % 4).expect("small"),
                20 + (index * 37) % 300,
            )
        })
        .collect();
    let mut expected_offset = 0;
    let mut stored = Vec::new();
    for (records_count, payload_bytes) in &shapes {
        let (outcome, bytes) = append(&log, &batch(*records_count, *payload_bytes), 5);
        assert_eq!(outcome.base_offset, expected_offset);
        assert_eq!(
            outcome.last_offset,
            expected_offset + i64::from(*records_count) - 1
        );
        assert_eq!(outcome.log_append_time_ms, 5);
        expected_offset = outcome.last_offset + 1;
        stored.push(bytes);
    }
    assert_eq!(log.next_offset(), expected_offset);
    assert_eq!(log.high_watermark(), expected_offset);
    let segments = segment_files(&partition_dir(dir.path()), SegmentFileKind::Log);
    assert!(
        segments.len() > 5,
        "expected several segments, got {}",
        segments.len()
    );
    assert_eq!(read_all(&log), stored);
    let total: usize = stored.iter().map(Vec::len).sum();
    assert_eq!(log.size_bytes(), u64::try_from(total).expect("small"));
}

/// Reading an offset in the middle of a batch returns that whole batch, from its start.
#[test]
fn read_from_middle_of_batch_returns_whole_batch() {
    let dir = temp_dir("read_from_middle_of_batch_returns_whole_batch");
    let (_data_dir, log) = open_log(dir.path(), LogConfig::default());
    let stored = append_all(&log, &[(10, 50), (10, 60), (10, 70)]);
    let bytes = log
        .read(15, stored[1].len(), FirstBatch::AlwaysWhole)
        .expect("read");
    assert_eq!(bytes.as_ref(), stored[1].as_slice());
    let bytes = log.read(29, 10_000, FirstBatch::AlwaysWhole).expect("read");
    assert_eq!(bytes.as_ref(), stored[2].as_slice());
}

/// With `AlwaysWhole` the first batch comes back whole even when it exceeds `max_bytes`;
/// with `WithinMaxBytes` nothing does.
#[test]
fn first_batch_larger_than_max_bytes_returned_whole() {
    let dir = temp_dir("first_batch_larger_than_max_bytes_returned_whole");
    let (_data_dir, log) = open_log(dir.path(), LogConfig::default());
    let stored = append_all(&log, &[(3, 500), (1, 10)]);
    let whole = log.read(0, 10, FirstBatch::AlwaysWhole).expect("read");
    assert_eq!(whole.as_ref(), stored[0].as_slice());
    let nothing = log.read(0, 10, FirstBatch::WithinMaxBytes).expect("read");
    assert!(nothing.is_empty());
}

/// `max_bytes` cuts the result at a batch boundary, never inside a batch.
#[test]
fn max_bytes_cuts_at_batch_boundaries() {
    let dir = temp_dir("max_bytes_cuts_at_batch_boundaries");
    let (_data_dir, log) = open_log(dir.path(), LogConfig::default());
    let stored = append_all(&log, &[(1, 100), (1, 100), (1, 100), (1, 100)]);
    let batch_bytes = stored[0].len();
    let bytes = log
        .read(
            0,
            batch_bytes * 2 + batch_bytes / 2,
            FirstBatch::WithinMaxBytes,
        )
        .expect("read");
    assert_eq!(
        bytes.as_ref(),
        [stored[0].clone(), stored[1].clone()].concat()
    );
    let exact = log
        .read(1, batch_bytes * 3, FirstBatch::WithinMaxBytes)
        .expect("read");
    assert_eq!(split(&exact).len(), 3);
}

/// Offsets below the log start or past the end are `OffsetOutOfRange` carrying both bounds;
/// the end itself reads as empty.
#[test]
fn read_offset_out_of_range_errors() {
    let dir = temp_dir("read_offset_out_of_range_errors");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    append_all(&log, &[(5, 300), (5, 300), (5, 300), (5, 300)]);
    assert!(
        log.read(20, 1000, FirstBatch::AlwaysWhole)
            .expect("read at end")
            .is_empty()
    );
    let past_end = log.read(21, 1000, FirstBatch::AlwaysWhole);
    assert!(matches!(
        past_end,
        Err(StorageError::OffsetOutOfRange {
            offset: 21,
            log_start_offset: 0,
            next_offset: 20,
            ..
        })
    ));
    log.delete_records_before(7).expect("delete records");
    let below_start = log.read(6, 1000, FirstBatch::AlwaysWhole);
    assert!(matches!(
        below_start,
        Err(StorageError::OffsetOutOfRange {
            offset: 6,
            log_start_offset: 7,
            next_offset: 20,
            ..
        })
    ));
    let negative = log.read(-1, 1000, FirstBatch::AlwaysWhole);
    assert!(matches!(
        negative,
        Err(StorageError::OffsetOutOfRange { .. })
    ));
}

/// A malformed batch is rejected before anything is written, even when an earlier batch in
/// the same buffer is fine.
#[test]
fn invalid_batch_is_rejected_without_writing() {
    let dir = temp_dir("invalid_batch_is_rejected_without_writing");
    let (_data_dir, log) = open_log(dir.path(), LogConfig::default());
    append_all(&log, &[(2, 10)]);
    let size_before = log.size_bytes();
    let mut bad_magic = [batch(1, 10), batch(1, 10)].concat();
    let second = batch(1, 10).len();
    bad_magic[second + 16] = 1;
    let result = log.append(&bad_magic, 0);
    assert!(
        matches!(result, Err(StorageError::InvalidBatch { position, .. }) if position == second)
    );
    let mut cut = batch(1, 10);
    cut.pop();
    assert!(matches!(
        log.append(&cut, 0),
        Err(StorageError::InvalidBatch { .. })
    ));
    assert!(matches!(
        log.append(&[], 0),
        Err(StorageError::InvalidBatch { .. })
    ));
    assert_eq!(log.next_offset(), 2);
    assert_eq!(log.size_bytes(), size_before);
}

/// Several batches in one append take consecutive offsets and read back as written.
#[test]
fn multi_batch_append_assigns_consecutive_offsets() {
    let dir = temp_dir("multi_batch_append_assigns_consecutive_offsets");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    append_all(&log, &[(3, 10)]);
    let buffer = [batch(2, 40), batch(4, 40), batch(1, 40)].concat();
    let (outcome, buffer) = append(&log, &buffer, 0);
    assert_eq!((outcome.base_offset, outcome.last_offset), (3, 9));
    let bases: Vec<i64> = split(&buffer)
        .iter()
        .map(|(base_offset, _)| *base_offset)
        .collect();
    assert_eq!(bases, [3, 5, 9]);
    let bytes = log.read(3, 10_000, FirstBatch::AlwaysWhole).expect("read");
    assert_eq!(bytes.as_ref(), buffer.as_slice());
}

/// `batch_for_timestamp` returns the first batch whose max timestamp reaches the target,
/// across segments and with timestamps out of order.
#[test]
fn batch_for_timestamp_finds_first_batch_at_or_after() {
    let dir = temp_dir("batch_for_timestamp_finds_first_batch_at_or_after");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    let timestamps = [100, 500, 200, 600, 300, 700, 700, 800, 150, 900];
    let stored: Vec<Vec<u8>> = timestamps
        .iter()
        .map(|timestamp_ms| append(&log, &batch_at(1, 250, *timestamp_ms), 0).1)
        .collect();
    assert!(segment_files(&partition_dir(dir.path()), SegmentFileKind::Log).len() > 2);
    let find = |timestamp_ms| log.batch_for_timestamp(timestamp_ms).expect("lookup");
    assert_eq!(find(0).as_deref(), Some(stored[0].as_slice()));
    assert_eq!(find(100).as_deref(), Some(stored[0].as_slice()));
    assert_eq!(find(101).as_deref(), Some(stored[1].as_slice()));
    assert_eq!(find(550).as_deref(), Some(stored[3].as_slice()));
    assert_eq!(find(700).as_deref(), Some(stored[5].as_slice()));
    assert_eq!(find(850).as_deref(), Some(stored[9].as_slice()));
    assert_eq!(find(901), None);
}

/// `batch_with_max_timestamp` returns the batch with the largest max timestamp, the earliest
/// of equals, and `None` for an empty log.
#[test]
fn batch_with_max_timestamp_prefers_earliest_of_equals() {
    let dir = temp_dir("batch_with_max_timestamp_prefers_earliest_of_equals");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    assert_eq!(log.batch_with_max_timestamp().expect("lookup"), None);
    let timestamps = [100, 900, 300, 900, 200, 800];
    let stored: Vec<Vec<u8>> = timestamps
        .iter()
        .map(|timestamp_ms| append(&log, &batch_at(2, 300, *timestamp_ms), 0).1)
        .collect();
    let found = log
        .batch_with_max_timestamp()
        .expect("lookup")
        .expect("a batch");
    assert_eq!(found.as_ref(), stored[1].as_slice());
    assert_eq!(max_timestamp_of(&found), 900);
}

/// `sync_through` and `flush` succeed for any appended offset, repeatedly.
#[test]
fn sync_through_and_flush_succeed() {
    let dir = temp_dir("sync_through_and_flush_succeed");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    log.flush().expect("flush an empty log");
    append_all(&log, &[(3, 400), (3, 400), (3, 400)]);
    log.sync_through(8).expect("sync");
    log.sync_through(0).expect("sync covered");
    log.flush().expect("flush");
}

/// Readers running while one thread appends (and rolls) always see whole batches with
/// contiguous offsets, never an error, and eventually everything.
#[test]
fn concurrent_readers_while_appending() {
    let dir = temp_dir("concurrent_readers_while_appending");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    let log = Arc::new(log);
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (log, done) = (Arc::clone(&log), Arc::clone(&done));
            std::thread::spawn(move || read_until_done(&log, &done))
        })
        .collect();
    for index in 0..400 {
        let bytes = batch(
            1 + index % 3,
            30 + usize::try_from(index % 7).expect("small") * 20,
        );
        log.append(&bytes, 0).expect("append");
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        let last_seen = reader.join().expect("reader thread");
        assert!(last_seen <= log.next_offset());
    }
    assert_eq!(read_all(&log).len(), 400);
}

/// Reads forward from offset 0 until `done`, checking contiguity; returns the offset reached.
fn read_until_done(log: &riffle_storage::Log, done: &AtomicBool) -> i64 {
    let mut offset = 0;
    loop {
        let finished = done.load(Ordering::Acquire);
        let bytes = log
            .read(offset, 500, FirstBatch::AlwaysWhole)
            .expect("concurrent read");
        for (base_offset, batch) in split(&bytes) {
            assert!(base_offset <= offset && offset <= last_offset_of(&batch));
            offset = last_offset_of(&batch) + 1;
        }
        if finished && offset == log.high_watermark() {
            return offset;
        }
    }
}
