//! `CheckedDataDir`: a log written through the storage API checks clean; each fault a bad
//! disk or a crash leaves (a flipped CRC byte, a torn segment, a scrambled index entry, a
//! garbled snapshot) is named with its file, position and offset; repair fixes what it can.

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::batch::base_offset_of;
use common::{
    active_log_file, append_all, batch_positions, close_cleanly, file_len, flip_byte, open_log,
    partition_dir, segment_files, small_config, temp_dir, truncate_file,
};
use riffle_storage::format::SegmentFileKind;
use riffle_storage::{CheckedDataDir, Log, PartitionReport, Problem, StorageError};

/// Thirty batches of 120 to 220 bytes: several segments, several index entries each.
fn thirty_batches(log: &Log) -> Vec<Vec<u8>> {
    let shapes: Vec<(i32, usize)> = (0..30)
        .map(|index| (1 + index % 3, 60 + 40 * (index as usize % 3)))
        .collect();
    append_all(log, &shapes)
}

/// Writes thirty batches to a fresh directory and stops cleanly.
fn write_log(dir: &Path) -> Vec<Vec<u8>> {
    let (data_dir, log) = open_log(dir, small_config());
    let stored = thirty_batches(&log);
    log.write_producer_snapshot(10, b"producer state")
        .expect("snapshot");
    close_cleanly(data_dir, log);
    stored
}

/// Checks `dir`, which must hold exactly the one test partition.
fn check_only_partition(dir: &Path) -> PartitionReport {
    let checked = CheckedDataDir::lock(dir).expect("lock");
    let mut reports = checked.check(None).expect("check");
    assert_eq!(reports.len(), 1, "one partition: {reports:?}");
    reports.remove(0)
}

/// The problems' kinds by name, with file name, position and offset, for whole-value asserts.
fn summary(problems: &[Problem]) -> Vec<(&'static str, String, Option<u64>, Option<i64>)> {
    problems
        .iter()
        .map(|problem| {
            let name = problem.path.file_name().expect("file name");
            let name = name.to_string_lossy().into_owned();
            (problem.kind.name(), name, problem.position, problem.offset)
        })
        .collect()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

/// The first sealed segment's `.log` file.
fn first_log_file(dir: &Path) -> PathBuf {
    segment_files(&partition_dir(dir), SegmentFileKind::Log)
        .into_iter()
        .next()
        .expect("a segment")
}

#[test]
fn a_log_written_by_storage_checks_clean() {
    // Proves that what the storage API writes passes every check, and the counts add up.
    let dir = temp_dir("a_log_written_by_storage_checks_clean");
    let stored = write_log(dir.path());
    let report = check_only_partition(dir.path());
    assert_eq!(report.problems, Vec::new());
    assert!(report.is_clean());
    assert_eq!(report.batches_count, 30);
    let records: u64 = (0..30).map(|index| 1 + index % 3).sum();
    assert_eq!(report.records_count, records);
    assert!(report.segments_count > 3, "{report:?}");
    let stored_bytes: usize = stored.iter().map(Vec::len).sum();
    assert_eq!(report.log_bytes, stored_bytes as u64);
    assert_eq!(
        report.next_offset,
        Some(i64::try_from(records).expect("small"))
    );
}

#[test]
fn a_log_left_by_a_crash_checks_clean() {
    // Proves that untrimmed, preallocated indexes of an active segment (a broker killed
    // without closing its log) are not taken for wrong entries.
    let dir = temp_dir("a_log_left_by_a_crash_checks_clean");
    let (data_dir, log) = open_log(dir.path(), small_config());
    thirty_batches(&log);
    log.flush().expect("flush");
    common::crash(log);
    drop(data_dir);
    let report = check_only_partition(dir.path());
    assert_eq!(report.problems, Vec::new());
}

#[test]
fn flipped_crc_byte_is_named_and_repair_cuts_the_log_there() {
    // Proves a flipped byte inside a sealed segment's second batch is a CRC mismatch at that
    // batch's position and offset, the walk goes on past it, and repair truncates there,
    // removes the later segments and leaves a log that checks clean.
    let dir = temp_dir("flipped_crc_byte_is_named_and_repair_cuts_the_log_there");
    write_log(dir.path());
    let log_file = first_log_file(dir.path());
    let positions = batch_positions(&log_file);
    let bytes = std::fs::read(&log_file).expect("read");
    let second = usize::try_from(positions[1]).expect("small");
    let second_offset = base_offset_of(&bytes[second..]);
    flip_byte(&log_file, positions[1] + 70);

    let report = check_only_partition(dir.path());
    let expected = vec![(
        "crc_mismatch",
        file_name(&log_file),
        Some(positions[1]),
        Some(second_offset),
    )];
    assert_eq!(summary(&report.problems), expected);
    assert_eq!(
        report.batches_count, 30,
        "the walk continues past a CRC mismatch"
    );

    let checked = CheckedDataDir::lock(dir.path()).expect("lock");
    let actions = checked.repair(&report, &small_config()).expect("repair");
    assert!(actions.len() > 2, "{actions:?}");
    drop(checked);
    assert_eq!(file_len(&log_file), positions[1]);
    let segments = segment_files(&partition_dir(dir.path()), SegmentFileKind::Log);
    assert_eq!(segments, vec![log_file]);
    let repaired = check_only_partition(dir.path());
    assert_eq!(repaired.problems, Vec::new());
    assert_eq!(repaired.next_offset, Some(second_offset));
    assert!(
        !partition_dir(dir.path())
            .join("00000000000000000010.snapshot")
            .exists(),
        "a snapshot past the cut must go"
    );
}

#[test]
fn torn_active_segment_is_a_truncated_batch() {
    // Proves a segment cut inside its last batch reports that batch's position and offset
    // and how many bytes it lacks.
    let dir = temp_dir("torn_active_segment_is_a_truncated_batch");
    write_log(dir.path());
    let active = active_log_file(&partition_dir(dir.path()));
    let positions = batch_positions(&active);
    let last_position = *positions.last().expect("a batch");
    let bytes = std::fs::read(&active).expect("read");
    let last_offset = base_offset_of(&bytes[usize::try_from(last_position).expect("small")..]);
    let full_bytes = file_len(&active);
    truncate_file(&active, full_bytes - 5);

    let report = check_only_partition(dir.path());
    let names: Vec<_> = summary(&report.problems);
    assert_eq!(
        names.first(),
        Some(&(
            "truncated_batch",
            file_name(&active),
            Some(last_position),
            Some(last_offset)
        )),
        "{names:?}"
    );
    let checked = CheckedDataDir::lock(dir.path()).expect("lock");
    checked.repair(&report, &small_config()).expect("repair");
    drop(checked);
    assert_eq!(check_only_partition(dir.path()).problems, Vec::new());
}

#[test]
fn scrambled_offset_index_entry_is_named_and_rebuilt() {
    // Proves an offset index entry moved to a position inside a batch is reported with the
    // entry's place in the index and the offset it names, and repair rebuilds the index.
    let dir = temp_dir("scrambled_offset_index_entry_is_named_and_rebuilt");
    write_log(dir.path());
    let index_file = segment_files(&partition_dir(dir.path()), SegmentFileKind::OffsetIndex)
        .into_iter()
        .next()
        .expect("an index");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&index_file)
        .expect("open index");
    let mut entry = [0; 8];
    file.read_exact_at(&mut entry, 0).expect("first entry");
    let relative_offset = u32::from_be_bytes(entry[..4].try_into().expect("4 bytes"));
    let position = u32::from_be_bytes(entry[4..].try_into().expect("4 bytes"));
    file.write_all_at(&(position + 3).to_be_bytes(), 4)
        .expect("scramble");
    drop(file);

    let report = check_only_partition(dir.path());
    let expected = vec![(
        "offset_index_no_batch_at_position",
        file_name(&index_file),
        Some(0),
        Some(i64::from(relative_offset)),
    )];
    assert_eq!(summary(&report.problems), expected);
    let checked = CheckedDataDir::lock(dir.path()).expect("lock");
    let actions = checked.repair(&report, &small_config()).expect("repair");
    assert_eq!(actions.len(), 1, "{actions:?}");
    drop(checked);
    assert_eq!(check_only_partition(dir.path()).problems, Vec::new());
}

#[test]
fn wrong_time_index_and_garbled_snapshot_are_named() {
    // Proves a time index entry naming an offset no batch starts at, and a producer snapshot
    // with a flipped payload byte, are each reported against their file.
    let dir = temp_dir("wrong_time_index_and_garbled_snapshot_are_named");
    write_log(dir.path());
    let partition = partition_dir(dir.path());
    let time_index = segment_files(&partition, SegmentFileKind::TimeIndex)
        .into_iter()
        .next()
        .expect("a time index");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&time_index)
        .expect("open time index");
    // Entry 0's relative offset, moved to offset 2: inside the second batch (offsets 1 and 2).
    file.write_all_at(&2_u32.to_be_bytes(), 8)
        .expect("scramble");
    drop(file);
    let snapshot = partition.join("00000000000000000010.snapshot");
    flip_byte(&snapshot, file_len(&snapshot) - 1);

    let report = check_only_partition(dir.path());
    let kinds: Vec<_> = summary(&report.problems)
        .into_iter()
        .map(|(kind, name, _, _)| (kind, name))
        .collect();
    assert!(
        kinds
            .iter()
            .any(|(kind, name)| kind.starts_with("time_index") && *name == file_name(&time_index)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(
            "unreadable_producer_snapshot",
            "00000000000000000010.snapshot".to_owned()
        )),
        "{kinds:?}"
    );
}

#[test]
fn a_locked_directory_is_refused() {
    // Proves the check will not run beside a broker: the data directory's lock is held.
    let dir = temp_dir("a_locked_directory_is_refused");
    let (data_dir, log) = open_log(dir.path(), small_config());
    let locked = CheckedDataDir::lock(dir.path());
    assert!(
        matches!(locked, Err(StorageError::Locked { .. })),
        "expected Locked"
    );
    drop(log);
    drop(data_dir);
    assert!(CheckedDataDir::lock(dir.path()).is_ok());
}
