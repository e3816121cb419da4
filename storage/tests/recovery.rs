//! Reopening logs after clean and unclean stops, with the faults a crash or a bad disk
//! leaves behind: torn batches, flipped bytes, garbage, missing or short indexes, strays.

mod common;

use common::batch::{base_offset_of, batch_at, last_offset_of};
use common::{
    active_log_file, append_all, append_garbage, assert_every_offset_reads_its_batch,
    batch_positions, close_cleanly, crash, file_len, flip_byte, forget_recovery_point, open_log,
    partition_dir, read_all, segment_files, small_config, temp_dir, truncate_file,
};
use riffle_storage::format::{SegmentFileKind, segment_file_name};
use riffle_storage::{DataDir, Log};

/// Thirty batches of 120 to 220 bytes: about six segments of five or six batches each.
fn thirty_batches(log: &Log) -> Vec<Vec<u8>> {
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

/// How many stored batches lie in segments before the active one.
fn batches_before_active(dir: &std::path::Path, stored: &[Vec<u8>]) -> usize {
    let active = active_log_file(&partition_dir(dir));
    let name = active
        .file_name()
        .and_then(|name| name.to_str())
        .expect("name");
    let base_offset: i64 = name[..20].parse().expect("digits");
    stored
        .iter()
        .filter(|batch| base_offset_of(batch) < base_offset)
        .count()
}

/// Reopens without a clean-shutdown marker, so recovery runs.
fn reopen_unclean(dir: &std::path::Path) -> (DataDir, Log) {
    let (data_dir, log) = open_log(dir, small_config());
    assert!(!data_dir.was_clean_shutdown());
    (data_dir, log)
}

/// A last batch cut short by power loss is truncated away; everything before it survives
/// and appends continue at its offset.
#[test]
fn torn_last_batch_is_truncated() {
    let dir = temp_dir("torn_last_batch_is_truncated");
    let (data_dir, log) = open_log(dir.path(), small_config());
    let stored = thirty_batches(&log);
    drop((log, data_dir));
    let active = active_log_file(&partition_dir(dir.path()));
    let length = file_len(&active);
    truncate_file(&active, length - 10);

    let (_data_dir, log) = reopen_unclean(dir.path());
    let last = stored.last().expect("batches");
    assert_eq!(log.next_offset(), base_offset_of(last));
    assert_eq!(read_all(&log), stored[..stored.len() - 1]);
    let last_length = u64::try_from(last.len()).expect("small");
    assert_eq!(file_len(&active), length - last_length);
    let appended = append_all(&log, &[(2, 10)]);
    assert_eq!(base_offset_of(&appended[0]), base_offset_of(last));
}

/// A flipped byte inside a batch fails its CRC: the active segment is truncated at that
/// batch, and nothing after it is kept.
#[test]
fn flipped_crc_byte_truncates_at_that_batch() {
    let dir = temp_dir("flipped_crc_byte_truncates_at_that_batch");
    let (data_dir, log) = open_log(dir.path(), small_config());
    let stored = thirty_batches(&log);
    drop((log, data_dir));
    let active = active_log_file(&partition_dir(dir.path()));
    let positions = batch_positions(&active);
    assert!(
        positions.len() >= 3,
        "the active segment holds several batches"
    );
    flip_byte(&active, positions[1] + 70);
    forget_recovery_point(dir.path());

    let (_data_dir, log) = reopen_unclean(dir.path());
    let kept = batches_before_active(dir.path(), &stored) + 1;
    assert_eq!(log.next_offset(), base_offset_of(&stored[kept]));
    assert_eq!(read_all(&log), stored[..kept]);
    assert_eq!(file_len(&active), positions[1]);
}

/// One segment of about 8 KiB with an index entry per 100 bytes.
fn one_segment_config() -> riffle_storage::LogConfig {
    riffle_storage::LogConfig {
        segment_bytes: 1024 * 1024,
        ..small_config()
    }
}

/// After a crash, recovery trusts what the recovery point says was fsynced and scans only
/// from the last index entry below it: a flipped byte early in the segment goes unseen (a
/// scan from the start would truncate there), while a torn batch in the unflushed tail is
/// truncated, and every offset still reads its batch through the kept and rebuilt entries.
#[test]
fn unclean_start_scans_only_after_the_recovery_point() {
    let dir = temp_dir("unclean_start_scans_only_after_the_recovery_point");
    let (data_dir, log) = open_log(dir.path(), one_segment_config());
    let mut stored = thirty_batches(&log);
    log.flush().expect("flush");
    log.checkpoint_recovery_point().expect("checkpoint");
    stored.extend(thirty_batches(&log));
    crash(log);
    drop(data_dir);
    let active = active_log_file(&partition_dir(dir.path()));
    let positions = batch_positions(&active);
    assert_eq!(positions.len(), 60, "one segment holds every batch");
    flip_byte(&active, positions[2] + 70);
    truncate_file(&active, file_len(&active) - 10);

    let (data_dir, log) = reopen_unclean(dir.path());
    let last = stored.last().expect("batches");
    assert_eq!(log.next_offset(), base_offset_of(last));
    assert_every_offset_reads_its_batch(&log, &stored[3..59]);
    stored.pop();
    stored.extend(append_all(&log, &[(2, 50)]));
    crash(log);
    drop(data_dir);
    let (_data_dir, log) = reopen_unclean(dir.path());
    assert_eq!(
        log.next_offset(),
        last_offset_of(stored.last().expect("batches")) + 1
    );
    assert_every_offset_reads_its_batch(&log, &stored[3..]);
}

/// A recovery point left in a segment that has since been rolled says nothing about the
/// active segment, which is scanned from its start: a flipped byte there truncates it.
#[test]
fn recovery_point_in_a_sealed_segment_is_not_used() {
    let dir = temp_dir("recovery_point_in_a_sealed_segment_is_not_used");
    let (data_dir, log) = open_log(dir.path(), small_config());
    let mut stored = append_all(&log, &[(1, 60)]);
    log.flush().expect("flush");
    log.checkpoint_recovery_point().expect("checkpoint");
    stored.extend(thirty_batches(&log));
    while batch_positions(&active_log_file(&partition_dir(dir.path()))).len() < 3 {
        stored.extend(append_all(&log, &[(1, 60)]));
    }
    crash(log);
    drop(data_dir);
    let active = active_log_file(&partition_dir(dir.path()));
    let positions = batch_positions(&active);
    flip_byte(&active, positions[1] + 70);

    let (_data_dir, log) = reopen_unclean(dir.path());
    let kept = batches_before_active(dir.path(), &stored) + 1;
    assert_eq!(log.next_offset(), base_offset_of(&stored[kept]));
    assert_eq!(read_all(&log), stored[..kept]);
}

/// Rewrites the base offset of the batch at `position` in a segment file. The CRC does not
/// cover it, so only the offset check can catch it.
fn set_base_offset_at(log_file: &std::path::Path, position: u64, base_offset: i64) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(log_file)
        .expect("open segment");
    std::os::unix::fs::FileExt::write_all_at(&file, &base_offset.to_be_bytes(), position)
        .expect("write base offset");
}

/// A batch whose base offset is not above its predecessor's last offset is where the log
/// ends, even though its CRC (which does not cover the offset) is fine.
#[test]
fn overlapping_offset_truncates_at_that_batch() {
    let dir = temp_dir("overlapping_offset_truncates_at_that_batch");
    let (data_dir, log) = open_log(dir.path(), small_config());
    let stored = thirty_batches(&log);
    drop((log, data_dir));
    let active = active_log_file(&partition_dir(dir.path()));
    let positions = batch_positions(&active);
    let last_position = *positions.last().expect("batches");
    let previous = &stored[stored.len() - 2];
    set_base_offset_at(&active, last_position, last_offset_of(previous));

    let (_data_dir, log) = reopen_unclean(dir.path());
    assert_eq!(read_all(&log), stored[..stored.len() - 1]);
    assert_eq!(log.next_offset(), last_offset_of(previous) + 1);
}

/// Offsets that skip ahead, as compaction leaves them, are accepted: the batch after the
/// gap is kept and reads at its offsets, offsets in the gap read it too, and the next
/// offset follows it.
#[test]
fn offset_gap_is_accepted_by_recovery() {
    let dir = temp_dir("offset_gap_is_accepted_by_recovery");
    let (data_dir, log) = open_log(dir.path(), small_config());
    let mut stored = thirty_batches(&log);
    drop((log, data_dir));
    let active = active_log_file(&partition_dir(dir.path()));
    let last_position = *batch_positions(&active).last().expect("batches");
    let last = stored.last_mut().expect("batches");
    let gap_base_offset = base_offset_of(last) + 5;
    set_base_offset_at(&active, last_position, gap_base_offset);
    last[..8].copy_from_slice(&gap_base_offset.to_be_bytes());

    let (_data_dir, log) = reopen_unclean(dir.path());
    assert_eq!(read_all(&log), stored);
    assert_eq!(
        log.next_offset(),
        last_offset_of(&stored[stored.len() - 1]) + 1
    );
    let in_gap = log
        .read(
            gap_base_offset - 1,
            1,
            riffle_storage::FirstBatch::AlwaysWhole,
        )
        .expect("read in the gap");
    assert_eq!(in_gap.as_ref(), stored[stored.len() - 1].as_slice());
    assert_every_offset_reads_its_batch(&log, &stored);
}

/// Zeros or junk after the last batch are truncated; every batch stays.
#[test]
fn garbage_after_last_batch_is_truncated() {
    let dir = temp_dir("garbage_after_last_batch_is_truncated");
    let (data_dir, log) = open_log(dir.path(), small_config());
    let stored = thirty_batches(&log);
    let next_offset = log.next_offset();
    drop((log, data_dir));
    let active = active_log_file(&partition_dir(dir.path()));
    let length = file_len(&active);
    for garbage in [vec![0; 100], vec![0xab; 7], vec![0x5a; 300]] {
        append_garbage(&active, &garbage);
        let (data_dir, log) = reopen_unclean(dir.path());
        assert_eq!(log.next_offset(), next_offset);
        assert_eq!(read_all(&log), stored);
        assert_eq!(file_len(&active), length);
        drop((log, data_dir));
    }
}

/// Index files cut short are rebuilt, after a clean stop as after an unclean one, and every
/// offset still reads its batch.
#[test]
fn short_index_files_are_rebuilt() {
    for clean in [true, false] {
        let dir = temp_dir("short_index_files_are_rebuilt");
        let (data_dir, log) = open_log(dir.path(), small_config());
        let stored = thirty_batches(&log);
        if clean {
            close_cleanly(data_dir, log);
        } else {
            drop((log, data_dir));
        }
        let partition = partition_dir(dir.path());
        for kind in [SegmentFileKind::OffsetIndex, SegmentFileKind::TimeIndex] {
            for path in segment_files(&partition, kind) {
                truncate_file(&path, file_len(&path) / 2 - 1);
            }
        }
        let (data_dir, log) = open_log(dir.path(), small_config());
        assert_eq!(data_dir.was_clean_shutdown(), clean);
        assert_eq!(read_all(&log), stored);
        assert_every_offset_reads_its_batch(&log, &stored);
    }
}

/// Deleted index files are recreated, and timestamp lookups, which need them, still work.
#[test]
fn deleted_index_files_are_rebuilt() {
    let dir = temp_dir("deleted_index_files_are_rebuilt");
    let (data_dir, log) = open_log(dir.path(), small_config());
    let stored: Vec<Vec<u8>> = (0..20)
        .map(|index| common::append(&log, &batch_at(1, 150, 1_000 + index * 10), 0).1)
        .collect();
    close_cleanly(data_dir, log);
    let partition = partition_dir(dir.path());
    let segments_count = segment_files(&partition, SegmentFileKind::Log).len();
    for kind in [SegmentFileKind::OffsetIndex, SegmentFileKind::TimeIndex] {
        for path in segment_files(&partition, kind) {
            std::fs::remove_file(path).expect("remove index");
        }
    }
    let (_data_dir, log) = open_log(dir.path(), small_config());
    assert_eq!(
        segment_files(&partition, SegmentFileKind::OffsetIndex).len(),
        segments_count
    );
    assert_eq!(
        segment_files(&partition, SegmentFileKind::TimeIndex).len(),
        segments_count
    );
    assert_every_offset_reads_its_batch(&log, &stored);
    let found = log
        .batch_for_timestamp(1_105)
        .expect("lookup")
        .expect("a batch");
    assert_eq!(found.as_ref(), stored[11].as_slice());
    let max = log
        .batch_with_max_timestamp()
        .expect("lookup")
        .expect("a batch");
    assert_eq!(max.as_ref(), stored[19].as_slice());
}

/// Garbled entries in a sealed segment's index are caught by the full check after an
/// unclean stop, and the index is rebuilt.
#[test]
fn garbled_sealed_index_is_rebuilt() {
    let dir = temp_dir("garbled_sealed_index_is_rebuilt");
    let (data_dir, log) = open_log(dir.path(), small_config());
    let stored = thirty_batches(&log);
    drop((log, data_dir));
    let first_index = segment_files(&partition_dir(dir.path()), SegmentFileKind::OffsetIndex)
        .into_iter()
        .next()
        .expect("an index");
    assert!(
        file_len(&first_index) >= 16,
        "the first segment has two index entries"
    );
    std::fs::write(
        &first_index,
        [0, 0, 0, 9, 0, 0, 3, 0, 0, 0, 0, 1, 0, 0, 0, 50],
    )
    .expect("garble");

    let (_data_dir, log) = reopen_unclean(dir.path());
    assert_every_offset_reads_its_batch(&log, &stored);
}

/// A stray file or directory in the partition directory is left alone and does not stop
/// the log from opening, cleanly or not.
#[test]
fn stray_files_are_ignored() {
    let dir = temp_dir("stray_files_are_ignored");
    let (data_dir, log) = open_log(dir.path(), small_config());
    let stored = thirty_batches(&log);
    close_cleanly(data_dir, log);
    let partition = partition_dir(dir.path());
    let strays = [
        partition.join("notes.txt"),
        partition.join("00000000000000000000.snapshot"),
        partition.join("leader-epoch-checkpoint"),
    ];
    for stray in &strays {
        std::fs::write(stray, b"not a segment").expect("write stray");
    }
    std::fs::create_dir(partition.join("subdir")).expect("stray dir");
    let (data_dir, log) = open_log(dir.path(), small_config());
    assert!(data_dir.was_clean_shutdown());
    assert_eq!(read_all(&log), stored);
    drop((log, data_dir));
    let (_data_dir, log) = reopen_unclean(dir.path());
    assert_eq!(read_all(&log), stored);
    assert!(strays.iter().all(|stray| stray.exists()));
}

/// Index files whose `.log` is gone are removed rather than mistaken for a segment.
#[test]
fn orphan_index_files_are_removed() {
    let dir = temp_dir("orphan_index_files_are_removed");
    let (data_dir, log) = open_log(dir.path(), small_config());
    let stored = thirty_batches(&log);
    drop((log, data_dir));
    let orphan =
        partition_dir(dir.path()).join(segment_file_name(99_999, SegmentFileKind::OffsetIndex));
    std::fs::write(&orphan, [0; 16]).expect("write orphan");
    let (_data_dir, log) = reopen_unclean(dir.path());
    assert!(!orphan.exists());
    assert_eq!(read_all(&log), stored);
}

/// A process killed without closing the log leaves untrimmed, preallocated indexes;
/// recovery handles them and the log carries on.
#[test]
fn crash_without_close_recovers() {
    let dir = temp_dir("crash_without_close_recovers");
    let (data_dir, log) = open_log(dir.path(), small_config());
    let mut stored = thirty_batches(&log);
    crash(log);
    drop(data_dir);
    let (data_dir, log) = reopen_unclean(dir.path());
    assert_every_offset_reads_its_batch(&log, &stored);
    stored.extend(append_all(&log, &[(3, 200), (1, 20)]));
    crash(log);
    drop(data_dir);
    let (_data_dir, log) = reopen_unclean(dir.path());
    assert_eq!(read_all(&log), stored);
}

/// A broker that flushed and marked a clean shutdown but never dropped its logs leaves
/// untrimmed indexes; the clean start keeps their real entries and ignores the zeroed tail.
#[test]
fn clean_start_with_untrimmed_indexes() {
    let dir = temp_dir("clean_start_with_untrimmed_indexes");
    let (data_dir, log) = open_log(dir.path(), small_config());
    let stored = thirty_batches(&log);
    log.flush().expect("flush");
    crash(log);
    data_dir.mark_clean_shutdown().expect("mark clean");
    drop(data_dir);
    let (data_dir, log) = open_log(dir.path(), small_config());
    assert!(data_dir.was_clean_shutdown());
    assert_eq!(
        log.next_offset(),
        last_offset_of(stored.last().expect("batches")) + 1
    );
    assert_every_offset_reads_its_batch(&log, &stored);
}

/// An empty last segment left by an interrupted roll is removed after an unclean stop, so
/// the segment before it is the one recovery scans.
#[test]
fn empty_segment_from_interrupted_roll_is_removed() {
    let dir = temp_dir("empty_segment_from_interrupted_roll_is_removed");
    let (data_dir, log) = open_log(dir.path(), small_config());
    let stored = thirty_batches(&log);
    let next_offset = log.next_offset();
    drop((log, data_dir));
    let previous_active = active_log_file(&partition_dir(dir.path()));
    let empty =
        partition_dir(dir.path()).join(segment_file_name(next_offset, SegmentFileKind::Log));
    std::fs::write(&empty, b"").expect("create empty segment");
    append_garbage(&previous_active, &[0; 40]);

    let (_data_dir, log) = reopen_unclean(dir.path());
    assert!(!empty.exists());
    assert_eq!(log.next_offset(), next_offset);
    assert_eq!(read_all(&log), stored);
}

/// Reopening after a clean close gives the same next offset and data without recovery, and
/// appends carry on from there.
#[test]
fn reopen_after_clean_close_keeps_everything() {
    let dir = temp_dir("reopen_after_clean_close_keeps_everything");
    let (data_dir, log) = open_log(dir.path(), small_config());
    assert!(data_dir.was_clean_shutdown(), "a new directory is clean");
    let mut stored = thirty_batches(&log);
    let next_offset = log.next_offset();
    close_cleanly(data_dir, log);

    let (data_dir, log) = open_log(dir.path(), small_config());
    assert!(data_dir.was_clean_shutdown());
    assert_eq!(log.next_offset(), next_offset);
    assert_eq!(read_all(&log), stored);
    stored.extend(append_all(&log, &[(2, 500), (2, 500)]));
    close_cleanly(data_dir, log);

    let (_data_dir, log) = open_log(dir.path(), small_config());
    assert_eq!(read_all(&log), stored);
    assert_every_offset_reads_its_batch(&log, &stored);
}

/// Timestamp lookups give the same answers after a clean and after an unclean reopen: sealed
/// segments keep their largest timestamp in the time index, the active one recomputes it.
#[test]
fn timestamp_lookups_survive_reopen() {
    let dir = temp_dir("timestamp_lookups_survive_reopen");
    let (data_dir, log) = open_log(dir.path(), small_config());
    let timestamps = [500, 100, 900, 300, 900, 200, 700, 400, 800, 600, 100, 650];
    let stored: Vec<Vec<u8>> = timestamps
        .iter()
        .map(|timestamp_ms| common::append(&log, &batch_at(2, 250, *timestamp_ms), 0).1)
        .collect();
    let check = |log: &Log| {
        let find = |timestamp_ms| log.batch_for_timestamp(timestamp_ms).expect("lookup");
        assert_eq!(find(0).as_deref(), Some(stored[0].as_slice()));
        assert_eq!(find(600).as_deref(), Some(stored[2].as_slice()));
        assert_eq!(find(901), None);
        let max = log.batch_with_max_timestamp().expect("lookup");
        assert_eq!(max.as_deref(), Some(stored[2].as_slice()));
    };
    check(&log);
    close_cleanly(data_dir, log);
    let (data_dir, log) = open_log(dir.path(), small_config());
    assert!(data_dir.was_clean_shutdown());
    check(&log);
    drop((log, data_dir));
    let (_data_dir, log) = reopen_unclean(dir.path());
    check(&log);
}
