//! Deleting from the head of a log: size and time retention, and DeleteRecords.

mod common;

use common::batch::{base_offset_of, batch_at, last_offset_of, max_timestamp_of};
use common::{
    active_log_file, append, append_all, close_cleanly, file_len, open_log, partition_dir,
    read_all, segment_files, small_config, temp_dir, truncate_file,
};
use riffle_storage::format::{
    LOG_START_OFFSET_CHECKPOINT_FILE_NAME, SegmentFileKind, parse_segment_file_name,
};
use riffle_storage::{FirstBatch, LogConfig, StorageError};

/// Base offsets of the partition's segments, in order.
fn segment_bases(dir: &std::path::Path) -> Vec<i64> {
    segment_files(&partition_dir(dir), SegmentFileKind::Log)
        .iter()
        .map(|path| {
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .expect("name");
            parse_segment_file_name(name).expect("segment name").0
        })
        .collect()
}

/// Thirty batches of 120 to 220 bytes: about six segments.
fn thirty_batches(log: &riffle_storage::Log) -> Vec<Vec<u8>> {
    let shapes: Vec<(i32, usize)> = (0..30)
        .map(|index| {
            (
                1 + index % 3,
                60 + 40 * usize::try_from(index % 3).expect("small"),
            )
        })
        .collect();
    append_all(log, &shapes)
}

/// Size retention deletes only whole sealed segments, oldest first, keeps the log at or
/// above `retention_bytes`, moves the log start offset to the first kept segment, and never
/// deletes the active segment.
#[test]
fn retention_by_bytes_deletes_whole_sealed_segments() {
    let dir = temp_dir("retention_by_bytes_deletes_whole_sealed_segments");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    let stored = thirty_batches(&log);
    let bases_before = segment_bases(dir.path());
    log.set_config(LogConfig {
        retention_bytes: 2_500,
        ..small_config()
    });

    let deleted_count = log.apply_retention(0).expect("retention");
    assert!(deleted_count > 0);
    let bases_after = segment_bases(dir.path());
    assert_eq!(bases_after, bases_before[deleted_count..]);
    assert!(log.size_bytes() >= 2_500);
    let first_kept = segment_files(&partition_dir(dir.path()), SegmentFileKind::Log)[0].clone();
    assert!(
        log.size_bytes() - file_len(&first_kept) < 2_500,
        "no further whole segment fits the excess"
    );
    assert_eq!(log.log_start_offset(), bases_after[0]);
    let kept: Vec<Vec<u8>> = stored
        .iter()
        .filter(|batch| base_offset_of(batch) >= bases_after[0])
        .cloned()
        .collect();
    assert_eq!(read_all(&log), kept);
    let below = log.read(bases_after[0] - 1, 1000, FirstBatch::AlwaysWhole);
    assert!(matches!(below, Err(StorageError::OffsetOutOfRange { .. })));

    log.set_config(LogConfig {
        retention_bytes: 0,
        ..small_config()
    });
    log.apply_retention(0).expect("retention");
    let bases_left = segment_bases(dir.path());
    assert_eq!(bases_left.len(), 1, "only the active segment is left");
    assert_eq!(log.log_start_offset(), bases_left[0]);
}

/// Time retention deletes the oldest sealed segments whose newest batch is older than
/// `retention_ms`, and stops at the first segment that is not.
#[test]
fn retention_by_time_deletes_only_expired_segments() {
    let dir = temp_dir("retention_by_time_deletes_only_expired_segments");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    let stored: Vec<Vec<u8>> = (0..30)
        .map(|index| append(&log, &batch_at(1, 150, 1_000 + 400 * (index / 10)), 0).1)
        .collect();
    let bases = segment_bases(dir.path());
    let segment_max_ms = |segment: usize| {
        let end = bases.get(segment + 1).copied().unwrap_or(i64::MAX);
        stored
            .iter()
            .filter(|batch| (bases[segment]..end).contains(&base_offset_of(batch)))
            .map(|batch| max_timestamp_of(batch))
            .max()
            .expect("segments are not empty")
    };
    let now_ms = 1_700;
    let retention_ms = 400;
    let expected_count = (0..bases.len() - 1)
        .take_while(|segment| now_ms - segment_max_ms(*segment) > retention_ms)
        .count();
    assert!(expected_count > 0 && expected_count < bases.len() - 1);

    log.set_config(LogConfig {
        retention_ms,
        ..small_config()
    });
    assert_eq!(
        log.apply_retention(now_ms).expect("retention"),
        expected_count
    );
    assert_eq!(log.log_start_offset(), bases[expected_count]);
    assert_eq!(segment_bases(dir.path()), bases[expected_count..]);
    assert_eq!(log.apply_retention(now_ms).expect("retention"), 0);
}

/// Once `segment_ms` has passed, retention rolls a non-empty active segment so its expired
/// data can go, leaving an empty log whose offsets carry on.
#[test]
fn retention_rolls_and_expires_an_idle_active_segment() {
    let dir = temp_dir("retention_rolls_and_expires_an_idle_active_segment");
    let config = LogConfig {
        segment_ms: 1_000,
        retention_ms: 1_000,
        ..LogConfig::default()
    };
    let (_data_dir, log) = open_log(dir.path(), config);
    for _ in 0..3 {
        append(&log, &batch_at(2, 50, 0), 0);
    }
    assert_eq!(log.apply_retention(500).expect("retention"), 0);
    assert_eq!(segment_bases(dir.path()).len(), 1);

    assert_eq!(log.apply_retention(5_000).expect("retention"), 1);
    assert_eq!(segment_bases(dir.path()), [6]);
    assert_eq!((log.log_start_offset(), log.next_offset()), (6, 6));
    assert!(
        log.read(6, 100, FirstBatch::AlwaysWhole)
            .expect("read")
            .is_empty()
    );
    let (outcome, _) = append(&log, &batch_at(1, 50, 5_000), 5_000);
    assert_eq!(outcome.base_offset, 6);
}

/// DeleteRecords moves the log start offset into the middle of a segment, deletes the
/// segments wholly below it, and the new start survives clean and unclean restarts.
#[test]
fn delete_records_before_persists_across_reopen() {
    let dir = temp_dir("delete_records_before_persists_across_reopen");
    let (data_dir, log) = open_log(dir.path(), small_config());
    let stored = thirty_batches(&log);
    let target = &stored[17];
    let offset = last_offset_of(target);
    assert!(
        offset > base_offset_of(target),
        "the offset is inside a batch"
    );
    let bases_before = segment_bases(dir.path());

    assert_eq!(
        log.delete_records_before(offset).expect("delete records"),
        offset
    );
    assert_eq!(log.log_start_offset(), offset);
    assert!(
        partition_dir(dir.path())
            .join(LOG_START_OFFSET_CHECKPOINT_FILE_NAME)
            .exists()
    );
    let kept_bases = segment_bases(dir.path());
    assert!(kept_bases.len() < bases_before.len());
    assert!(kept_bases[0] <= base_offset_of(target));
    let read = log.read(offset, 1, FirstBatch::AlwaysWhole).expect("read");
    assert_eq!(read.as_ref(), target.as_slice());
    let below = log.read(offset - 1, 1, FirstBatch::AlwaysWhole);
    assert!(matches!(below, Err(StorageError::OffsetOutOfRange { .. })));
    assert_eq!(log.delete_records_before(3).expect("no-op"), offset);
    close_cleanly(data_dir, log);

    let (data_dir, log) = open_log(dir.path(), small_config());
    assert_eq!(log.log_start_offset(), offset);
    drop((log, data_dir));
    let (data_dir, log) = open_log(dir.path(), small_config());
    assert!(!data_dir.was_clean_shutdown());
    assert_eq!(log.log_start_offset(), offset);
    assert_eq!(read_all(&log)[0], *target);
}

/// DeleteRecords past the high watermark is out of range; at the high watermark it empties
/// the log, and a restart that lost unsynced batches below that start still starts there.
#[test]
fn delete_records_up_to_high_watermark() {
    let dir = temp_dir("delete_records_up_to_high_watermark");
    let (data_dir, log) = open_log(dir.path(), small_config());
    thirty_batches(&log);
    let high_watermark = log.high_watermark();
    let past = log.delete_records_before(high_watermark + 1);
    assert!(matches!(past, Err(StorageError::OffsetOutOfRange { .. })));
    assert_eq!(
        log.delete_records_before(high_watermark).expect("delete"),
        high_watermark
    );
    assert_eq!(segment_bases(dir.path()).len(), 1);
    assert!(
        log.read(high_watermark, 100, FirstBatch::AlwaysWhole)
            .expect("read")
            .is_empty()
    );
    drop((log, data_dir));

    // Power loss took the active segment's unsynced batches.
    truncate_file(&active_log_file(&partition_dir(dir.path())), 0);
    let (_data_dir, log) = open_log(dir.path(), small_config());
    assert_eq!(
        (log.log_start_offset(), log.next_offset()),
        (high_watermark, high_watermark)
    );
    let (outcome, _) = append(&log, &batch_at(1, 10, 0), 0);
    assert_eq!(outcome.base_offset, high_watermark);
}

/// DeleteRecords on a log that has only its active segment moves the start offset and
/// deletes no file (a regression: it once counted the active segment as deletable).
#[test]
fn delete_records_with_only_an_active_segment() {
    let dir = temp_dir("delete_records_with_only_an_active_segment");
    let (_data_dir, log) = open_log(dir.path(), LogConfig::default());
    let stored = append_all(&log, &[(3, 60), (2, 60)]);
    let offset = last_offset_of(&stored[0]);
    assert_eq!(
        log.delete_records_before(offset).expect("delete records"),
        offset
    );
    assert_eq!(log.log_start_offset(), offset);
    assert_eq!(segment_bases(dir.path()), vec![0]);
    let read = log.read(offset, 1, FirstBatch::AlwaysWhole).expect("read");
    assert_eq!(read.as_ref(), stored[0].as_slice());
}
