//! What storage keeps of transactions: aborted transactions in each segment's `.txnindex`,
//! read_committed reads bounded by the last stable offset, and the broker's producer
//! snapshots; and how each survives rolls, reopens, crashes, retention and DeleteRecords.

mod common;

use common::batch::{ControlType, control_batch, transactional_batch};
use common::{
    append, append_all, close_cleanly, crash, file_len, open_log, partition_dir, segment_files,
    small_config, temp_dir, truncate_file,
};
use riffle_storage::format::{
    SegmentFileKind, TRANSACTION_INDEX_ENTRY_BYTES, producer_snapshot_file_name, segment_file_name,
};
use riffle_storage::{
    AbortedTransaction, FirstBatch, Log, LogConfig, ProducerSnapshot, StorageError,
};

fn aborted(
    producer_id: i64,
    first_offset: i64,
    last_offset: i64,
    last_stable_offset: i64,
) -> AbortedTransaction {
    AbortedTransaction {
        producer_id,
        first_offset,
        last_offset,
        last_stable_offset,
    }
}

/// Appends a transaction of `producer_id`: `data_batches_count` batches of one record, then
/// its marker. Returns the offsets of its first record and of the marker.
fn append_transaction(
    log: &Log,
    producer_id: i64,
    data_batches_count: usize,
    end: ControlType,
) -> (i64, i64) {
    let record = [(Some(&b"key"[..]), Some(&b"value"[..]))];
    let mut first_offset = None;
    for _ in 0..data_batches_count {
        let data = transactional_batch(producer_id, &record, 1_000);
        let (outcome, _) = append(log, &data, 0);
        first_offset.get_or_insert(outcome.base_offset);
    }
    let (marker, _) = append(log, &control_batch(producer_id, end, 1_000), 0);
    (
        first_offset.unwrap_or(marker.base_offset),
        marker.base_offset,
    )
}

/// Appends and records an aborted transaction of `producer_id`, as the broker does, with no
/// other transaction open (so its last stable offset is the offset after its marker).
fn abort_transaction(log: &Log, producer_id: i64, data_batches_count: usize) -> AbortedTransaction {
    let (first_offset, marker) =
        append_transaction(log, producer_id, data_batches_count, ControlType::Abort);
    let entry = aborted(producer_id, first_offset, marker, marker + 1);
    log.add_aborted_transaction(entry).expect("add");
    entry
}

/// Rolls the active segment, so that it is sealed, deleting nothing.
fn seal_active(log: &Log) {
    let config = log.config();
    log.set_config(LogConfig {
        segment_ms: 0,
        retention_ms: -1,
        retention_bytes: -1,
        ..config
    });
    log.apply_retention(i64::MAX / 2).expect("roll");
    log.set_config(config);
}

/// Kafka's `collectAbortedTransactions` over every entry, in marker order: entries whose
/// marker is before `start_offset` are skipped, an entry is returned if its transaction
/// starts before `upper_bound_offset`, and the search stops after an entry whose last stable
/// offset reaches the bound.
fn expected_aborted(
    entries: &[AbortedTransaction],
    start_offset: i64,
    upper_bound_offset: i64,
) -> Vec<AbortedTransaction> {
    let mut found = Vec::new();
    for entry in entries
        .iter()
        .filter(|entry| entry.last_offset >= start_offset)
    {
        if entry.first_offset < upper_bound_offset {
            found.push(*entry);
        }
        if entry.last_stable_offset >= upper_bound_offset {
            break;
        }
    }
    found
}

/// Every aborted transaction of the log.
fn all_aborted(log: &Log) -> Vec<AbortedTransaction> {
    log.aborted_transactions(0, i64::MAX).expect("aborted")
}

/// The `.txnindex` file of the segment at `base_offset`.
fn transaction_index_path(dir: &std::path::Path, base_offset: i64) -> std::path::PathBuf {
    partition_dir(dir).join(segment_file_name(
        base_offset,
        SegmentFileKind::TransactionIndex,
    ))
}

/// No `.txnindex` exists until the first abort; then the file is Kafka's, entry after entry
/// of `AbortedTransaction::to_bytes`, and a reopen reads the same entries back.
#[test]
fn transaction_index_is_kafkas_file() {
    let dir = temp_dir("transaction_index_is_kafkas_file");
    let (data_dir, log) = open_log(dir.path(), LogConfig::default());
    append_transaction(&log, 3, 2, ControlType::Commit);
    let path = transaction_index_path(dir.path(), 0);
    assert!(!path.exists(), "no abort, no file");
    assert_eq!(all_aborted(&log), []);

    let first = abort_transaction(&log, 7, 2);
    let second = abort_transaction(&log, 8, 1);
    log.flush().expect("flush");
    let expected = [first.to_bytes(), second.to_bytes()].concat();
    assert_eq!(expected.len(), 2 * TRANSACTION_INDEX_ENTRY_BYTES);
    assert_eq!(std::fs::read(&path).expect("read txnindex"), expected);
    assert_eq!(first, aborted(7, 3, 5, 6));

    close_cleanly(data_dir, log);
    let (_data_dir, log) = open_log(dir.path(), LogConfig::default());
    assert_eq!(all_aborted(&log), [first, second]);
    assert_eq!(std::fs::read(&path).expect("read txnindex"), expected);
}

/// The range rules, on entries written by hand into one segment: an entry is returned if
/// its marker is at or after the start and its transaction starts before the bound, and the
/// search stops after the first entry whose last stable offset reaches the bound.
#[test]
fn aborted_transactions_follows_kafkas_range_rules() {
    let dir = temp_dir("aborted_transactions_follows_kafkas_range_rules");
    let (_data_dir, log) = open_log(dir.path(), LogConfig::default());
    append_all(&log, &[(1, 10); 40]);
    let entries = [
        aborted(1, 2, 10, 3),
        aborted(2, 5, 20, 25),
        aborted(3, 12, 30, 31),
        aborted(4, 26, 35, 36),
    ];
    for entry in entries {
        log.add_aborted_transaction(entry).expect("add");
    }
    let ranges = |start, upper| log.aborted_transactions(start, upper).expect("aborted");
    assert_eq!(ranges(0, 40), entries);
    assert_eq!(ranges(11, 40), entries[1..]);
    assert_eq!(ranges(31, 40), entries[3..]);
    assert_eq!(ranges(36, 40), []);
    // The transaction of producer 3 starts before 22, but the entry before it says every
    // transaction touching 0..22 was decided by then.
    assert_eq!(ranges(0, 22), entries[..2]);
    assert_eq!(ranges(0, 12), entries[..2], "3 does not start before 12");
    assert_eq!(ranges(0, 3), entries[..1]);
    assert_eq!(
        ranges(0, 2),
        [],
        "1 starts at the bound; 2 stops the search"
    );
    for start in 0..40 {
        for upper in start..=41 {
            assert_eq!(
                ranges(start, upper),
                expected_aborted(&entries, start, upper),
                "{start}..{upper}"
            );
        }
    }
}

/// Aborted transactions across many segments and rolls are found from the segment holding
/// the start offset on, each in the index of the segment holding its marker, with the same
/// answers after a clean reopen.
#[test]
fn aborted_transactions_spans_segments() {
    let dir = temp_dir("aborted_transactions_spans_segments");
    let (data_dir, log) = open_log(dir.path(), small_config());
    let mut entries = Vec::new();
    for producer_id in 0..30 {
        if producer_id % 3 == 0 {
            append_transaction(&log, producer_id, 2, ControlType::Commit);
        } else {
            let data_batches_count = usize::try_from(1 + producer_id % 4).expect("small");
            entries.push(abort_transaction(&log, producer_id, data_batches_count));
        }
    }
    let segments_count = segment_files(&partition_dir(dir.path()), SegmentFileKind::Log).len();
    assert!(segments_count > 5, "{segments_count} segments");
    let index_files = segment_files(
        &partition_dir(dir.path()),
        SegmentFileKind::TransactionIndex,
    );
    assert!(index_files.len() > 3, "{} index files", index_files.len());
    let next_offset = log.next_offset();
    let check = |log: &Log| {
        for start in (0..next_offset).step_by(3) {
            for upper in (start..=next_offset).step_by(5) {
                let found = log.aborted_transactions(start, upper).expect("aborted");
                assert_eq!(
                    found,
                    expected_aborted(&entries, start, upper),
                    "{start}..{upper}"
                );
            }
        }
    };
    check(&log);
    close_cleanly(data_dir, log);
    let (_data_dir, log) = open_log(dir.path(), small_config());
    check(&log);
}

/// An entry whose marker is at or below the last one recorded is skipped, before and after
/// a reopen, so the broker may replay markers; the file holds each entry once.
#[test]
fn adding_an_aborted_transaction_again_changes_nothing() {
    let dir = temp_dir("adding_an_aborted_transaction_again_changes_nothing");
    let (data_dir, log) = open_log(dir.path(), LogConfig::default());
    let first = abort_transaction(&log, 1, 1);
    let second = abort_transaction(&log, 2, 1);
    log.add_aborted_transaction(second).expect("again");
    log.add_aborted_transaction(first).expect("an earlier one");
    assert_eq!(all_aborted(&log), [first, second]);

    close_cleanly(data_dir, log);
    let (_data_dir, log) = open_log(dir.path(), LogConfig::default());
    log.add_aborted_transaction(first).expect("replayed");
    log.add_aborted_transaction(second).expect("replayed");
    assert_eq!(all_aborted(&log), [first, second]);
    let third = abort_transaction(&log, 3, 2);
    assert_eq!(all_aborted(&log), [first, second, third]);
    log.flush().expect("flush");
    let path = transaction_index_path(dir.path(), 0);
    assert_eq!(file_len(&path), 3 * 34);
}

/// A marker that a roll sealed before the broker recorded its abort gets its entry in the
/// sealed segment, where reads look for it.
#[test]
fn an_abort_recorded_after_a_roll_goes_with_its_marker() {
    let dir = temp_dir("an_abort_recorded_after_a_roll_goes_with_its_marker");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    let (first_offset, marker) = append_transaction(&log, 5, 2, ControlType::Abort);
    seal_active(&log);
    append_all(&log, &[(1, 10)]);
    let entry = aborted(5, first_offset, marker, marker + 1);
    log.add_aborted_transaction(entry).expect("add");
    let index_files = segment_files(
        &partition_dir(dir.path()),
        SegmentFileKind::TransactionIndex,
    );
    assert_eq!(index_files, [transaction_index_path(dir.path(), 0)]);
    assert_eq!(file_len(&index_files[0]), 34);
    assert_eq!(
        log.aborted_transactions(marker, marker + 1)
            .expect("aborted"),
        [entry]
    );
}

/// A marker past the end of the log is a bug in the broker.
#[test]
#[should_panic(expected = "marker past the end of the log")]
fn an_abort_past_the_end_panics() {
    let dir = temp_dir("an_abort_past_the_end_panics");
    let (_data_dir, log) = open_log(dir.path(), LogConfig::default());
    append_all(&log, &[(1, 10)]);
    let _ = log.add_aborted_transaction(aborted(1, 0, 1, 2));
}

/// A bounded read returns whole batches below the bound only; an offset from the bound up
/// to the high watermark reads nothing, past it is out of range; the bound can fall in a
/// later segment than the offset read.
#[test]
fn read_range_below_stops_at_the_bound() {
    let dir = temp_dir("read_range_below_stops_at_the_bound");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    let stored = append_all(&log, &[(2, 150); 20]);
    let high_watermark = log.high_watermark();
    assert_eq!(high_watermark, 40);
    let read = |offset, upper| {
        let range = log
            .read_range_below(offset, 100_000, FirstBatch::AlwaysWhole, upper)
            .expect("read");
        range.map_or_else(Vec::new, |range| range.read().expect("bytes").to_vec())
    };
    assert_eq!(read(0, 6), stored[..3].concat());
    assert_eq!(read(3, 6), stored[1..3].concat());
    assert_eq!(read(5, 6), stored[2..3].concat());
    assert_eq!(read(6, 6), Vec::<u8>::new());
    assert_eq!(read(39, 6), Vec::<u8>::new());
    assert_eq!(read(40, 6), Vec::<u8>::new());
    assert_eq!(read(0, 0), Vec::<u8>::new());
    for upper in (0..=high_watermark).step_by(2) {
        let mut offset = 0;
        let mut read_batches = Vec::new();
        while let Some(range) = log
            .read_range_below(offset, 500, FirstBatch::AlwaysWhole, upper)
            .expect("read")
        {
            let bytes = range.read().expect("bytes");
            read_batches.push(bytes.to_vec());
            offset += i64::try_from(bytes.len() / stored[0].len()).expect("small") * 2;
        }
        let wanted = usize::try_from(upper / 2).expect("small");
        assert_eq!(
            read_batches.concat(),
            stored[..wanted].concat(),
            "bound {upper}"
        );
    }
    let past_end = log.read_range_below(41, 100, FirstBatch::AlwaysWhole, 6);
    assert!(matches!(
        past_end,
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    let whole = log
        .read_range(0, 100_000, FirstBatch::AlwaysWhole)
        .expect("read");
    let whole_below_hw = log
        .read_range_below(0, 100_000, FirstBatch::AlwaysWhole, high_watermark)
        .expect("read");
    assert_eq!(
        whole.map(|range| range.read().expect("bytes")),
        whole_below_hw.map(|range| range.read().expect("bytes"))
    );
}

/// A bound past the high watermark is a bug in the caller.
#[test]
#[should_panic(expected = "past the high watermark")]
fn read_range_below_past_the_high_watermark_panics() {
    let dir = temp_dir("read_range_below_past_the_high_watermark_panics");
    let (_data_dir, log) = open_log(dir.path(), LogConfig::default());
    append_all(&log, &[(1, 10)]);
    let _ = log.read_range_below(0, 100, FirstBatch::AlwaysWhole, 2);
}

/// After a crash cut the active segment before a marker, its entry is cut off at the next
/// open, the file truncated to the entries kept; the broker's replay then records the abort
/// again once the marker is appended again.
#[test]
fn recovery_cuts_entries_past_the_recovered_end() {
    let dir = temp_dir("recovery_cuts_entries_past_the_recovered_end");
    let (data_dir, log) = open_log(dir.path(), LogConfig::default());
    let kept = abort_transaction(&log, 1, 2);
    let cut = abort_transaction(&log, 2, 1);
    let log_bytes = file_len(&common::active_log_file(&partition_dir(dir.path())));
    crash(log);
    drop(data_dir);
    let active = common::active_log_file(&partition_dir(dir.path()));
    truncate_file(&active, log_bytes - 10);

    let (_data_dir, log) = open_log(dir.path(), LogConfig::default());
    assert_eq!(log.next_offset(), cut.last_offset);
    assert_eq!(all_aborted(&log), [kept]);
    assert_eq!(file_len(&transaction_index_path(dir.path(), 0)), 34);
    let (marker, _) = append(&log, &control_batch(2, ControlType::Abort, 1_000), 0);
    assert_eq!(marker.base_offset, cut.last_offset);
    log.add_aborted_transaction(cut).expect("replayed");
    assert_eq!(all_aborted(&log), [kept, cut]);
}

/// A torn last entry and an entry of an unknown version are cut off, in sealed and active
/// segments alike, and after a clean stop too; the entries before them stay.
#[test]
fn recovery_cuts_torn_and_unknown_entries() {
    for clean in [false, true] {
        let dir = temp_dir(&format!("recovery_cuts_torn_and_unknown_entries_{clean}"));
        let (data_dir, log) = open_log(dir.path(), LogConfig::default());
        let sealed = [abort_transaction(&log, 1, 1), abort_transaction(&log, 2, 1)];
        seal_active(&log);
        let active_base = log.next_offset();
        let active = [abort_transaction(&log, 3, 1), abort_transaction(&log, 4, 1)];
        match clean {
            true => close_cleanly(data_dir, log),
            false => drop((log, data_dir)),
        }
        let sealed_path = transaction_index_path(dir.path(), 0);
        truncate_file(&sealed_path, 34 + 20);
        let active_path = transaction_index_path(dir.path(), active_base);
        let mut bytes = std::fs::read(&active_path).expect("read");
        bytes[35] = 7; // the second entry's version
        std::fs::write(&active_path, bytes).expect("write");

        let (_data_dir, log) = open_log(dir.path(), LogConfig::default());
        assert_eq!(all_aborted(&log), [sealed[0], active[0]], "clean {clean}");
        assert_eq!(file_len(&sealed_path), 34);
        assert_eq!(file_len(&active_path), 34);
    }
}

/// Retention and DeleteRecords delete a segment's `.txnindex` with it, and the aborted
/// transactions left are those of the segments left.
#[test]
fn deleted_segments_take_their_transaction_indexes() {
    let dir = temp_dir("deleted_segments_take_their_transaction_indexes");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    let mut entries = Vec::new();
    for producer_id in 0..20 {
        entries.push(abort_transaction(&log, producer_id, 2));
    }
    let index_files = || {
        segment_files(
            &partition_dir(dir.path()),
            SegmentFileKind::TransactionIndex,
        )
    };
    let log_files = || segment_files(&partition_dir(dir.path()), SegmentFileKind::Log);
    let before = index_files();
    assert!(before.len() > 3, "{} index files", before.len());

    log.set_config(LogConfig {
        retention_bytes: 2_000,
        ..small_config()
    });
    let deleted = log.apply_retention(0).expect("retention");
    assert!(deleted > 0);
    let start = log.log_start_offset();
    let is_left = |path: &std::path::PathBuf| {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .expect("name");
        name[..20].parse::<i64>().expect("digits") >= start
    };
    let expected_files: Vec<_> = before
        .iter()
        .filter(|path| is_left(path))
        .cloned()
        .collect();
    assert_eq!(index_files(), expected_files);
    assert!(expected_files.len() < before.len());
    let left: Vec<AbortedTransaction> = entries
        .iter()
        .copied()
        .filter(|entry| entry.last_offset >= start)
        .collect();
    assert_eq!(
        log.aborted_transactions(start, i64::MAX).expect("aborted"),
        left
    );

    let second_base = log_files()[1].clone();
    let name = second_base
        .file_name()
        .and_then(|name| name.to_str())
        .expect("name");
    let second_base: i64 = name[..20].parse().expect("digits");
    log.delete_records_before(second_base)
        .expect("delete records");
    assert!(!transaction_index_path(dir.path(), start).exists());
    let left: Vec<AbortedTransaction> = left
        .into_iter()
        .filter(|entry| entry.last_offset >= second_base)
        .collect();
    assert_eq!(all_aborted(&log), left);
}

/// A snapshot reads back as written; a newer one replaces it and deletes its file; there is
/// none before the first; and deleting the partition deletes them.
#[test]
fn producer_snapshots_replace_older_ones() {
    let dir = temp_dir("producer_snapshots_replace_older_ones");
    let (data_dir, log) = open_log(dir.path(), LogConfig::default());
    assert_eq!(log.read_producer_snapshot().expect("read"), None);
    append_all(&log, &[(3, 10), (2, 10)]);
    log.write_producer_snapshot(3, b"state at 3")
        .expect("write");
    let snapshot = log.read_producer_snapshot().expect("read");
    let expected = ProducerSnapshot {
        offset: 3,
        payload: bytes::Bytes::from_static(b"state at 3"),
    };
    assert_eq!(snapshot, Some(expected));

    log.write_producer_snapshot(5, b"")
        .expect("write at the end");
    let snapshot = log.read_producer_snapshot().expect("read").expect("one");
    assert_eq!((snapshot.offset, snapshot.payload.len()), (5, 0));
    let partition = partition_dir(dir.path());
    assert!(!partition.join(producer_snapshot_file_name(3)).exists());
    assert!(partition.join(producer_snapshot_file_name(5)).exists());

    close_cleanly(data_dir, log);
    let (data_dir, log) = open_log(dir.path(), LogConfig::default());
    let snapshot = log.read_producer_snapshot().expect("read").expect("kept");
    assert_eq!(snapshot.offset, 5);
    drop(log);
    data_dir.delete_log(common::TOPIC, 0).expect("delete");
    assert!(!partition.exists());
}

/// A newest snapshot that is torn, flipped or misnamed is a `CorruptCheckpoint`, so the
/// broker can rebuild from the log; a leftover temporary file is removed at open and ignored.
#[test]
fn corrupt_producer_snapshot_is_an_error() {
    let dir = temp_dir("corrupt_producer_snapshot_is_an_error");
    let (data_dir, log) = open_log(dir.path(), LogConfig::default());
    append_all(&log, &[(4, 10)]);
    log.write_producer_snapshot(4, b"producers").expect("write");
    drop((log, data_dir));
    let partition = partition_dir(dir.path());
    let path = partition.join(producer_snapshot_file_name(4));
    let good = std::fs::read(&path).expect("read");
    let temp = partition.join(format!("{}.tmp", producer_snapshot_file_name(4)));
    std::fs::write(&temp, b"half").expect("leftover");

    let torn = good[..good.len() - 1].to_vec();
    let mut flipped = good.clone();
    flipped[20] ^= 0x40;
    for (case, bytes) in [("torn", torn), ("flipped", flipped), ("good", good.clone())] {
        std::fs::write(&path, bytes).expect("write");
        let (_data_dir, log) = open_log(dir.path(), LogConfig::default());
        assert!(!temp.exists());
        let read = log.read_producer_snapshot();
        match case {
            "good" => assert_eq!(read.expect("read").expect("one").offset, 4),
            _ => assert!(
                matches!(read, Err(StorageError::CorruptCheckpoint { .. })),
                "{case}: {read:?}"
            ),
        }
    }
    let misnamed = partition.join(producer_snapshot_file_name(3));
    std::fs::rename(&path, &misnamed).expect("rename");
    let (_data_dir, log) = open_log(dir.path(), LogConfig::default());
    let read = log.read_producer_snapshot();
    assert!(matches!(read, Err(StorageError::CorruptCheckpoint { .. })));
}

/// A snapshot past the end of the recovered log (a crash cut what it covered) is deleted at
/// open, and the older one it replaced is not coming back; one at the end stays.
#[test]
fn producer_snapshots_past_the_recovered_end_are_deleted() {
    let dir = temp_dir("producer_snapshots_past_the_recovered_end_are_deleted");
    let (data_dir, log) = open_log(dir.path(), LogConfig::default());
    append_all(&log, &[(2, 10), (2, 10)]);
    log.write_producer_snapshot(2, b"at 2").expect("write");
    let log_bytes = file_len(&common::active_log_file(&partition_dir(dir.path())));
    append_all(&log, &[(2, 10)]);
    log.write_producer_snapshot(6, b"at 6").expect("write");
    crash(log);
    drop(data_dir);
    let active = common::active_log_file(&partition_dir(dir.path()));
    truncate_file(&active, log_bytes);

    let (data_dir, log) = open_log(dir.path(), LogConfig::default());
    assert_eq!(log.next_offset(), 4);
    assert_eq!(log.read_producer_snapshot().expect("read"), None);
    assert!(
        !partition_dir(dir.path())
            .join(producer_snapshot_file_name(6))
            .exists()
    );
    log.write_producer_snapshot(4, b"at 4")
        .expect("write at the end");
    crash(log);
    drop(data_dir);
    let (_data_dir, log) = open_log(dir.path(), LogConfig::default());
    assert_eq!(
        log.read_producer_snapshot()
            .expect("read")
            .expect("kept")
            .offset,
        4
    );
}

/// A snapshot past the end of the log is a bug in the broker.
#[test]
#[should_panic(expected = "snapshot past the end of the log")]
fn producer_snapshot_past_the_end_panics() {
    let dir = temp_dir("producer_snapshot_past_the_end_panics");
    let (_data_dir, log) = open_log(dir.path(), LogConfig::default());
    append_all(&log, &[(1, 10)]);
    let _ = log.write_producer_snapshot(2, b"");
}

/// An oversized payload is refused with nothing written.
#[test]
fn oversized_producer_snapshot_is_refused() {
    let dir = temp_dir("oversized_producer_snapshot_is_refused");
    let (_data_dir, log) = open_log(dir.path(), LogConfig::default());
    let payload = vec![0; riffle_storage::MAX_PRODUCER_SNAPSHOT_PAYLOAD_BYTES + 1];
    let written = log.write_producer_snapshot(0, &payload);
    assert!(matches!(
        written,
        Err(StorageError::SnapshotTooLarge { .. })
    ));
    assert_eq!(log.read_producer_snapshot().expect("read"), None);
}

/// A compaction pass keeps markers, so it keeps their entries: the cleaned segment's
/// `.txnindex` holds the aborted transactions whose markers it holds, also after a reopen.
#[test]
fn compaction_keeps_the_entries_of_the_markers_it_keeps() {
    let dir = temp_dir("compaction_keeps_the_entries_of_the_markers_it_keeps");
    let (data_dir, log) = open_log(dir.path(), small_config());
    let mut entries = Vec::new();
    for producer_id in 0..12 {
        entries.push(abort_transaction(&log, producer_id, 2));
        append(
            &log,
            &common::batch::keyed_batch(&[(Some(b"k"), Some(b"v"))], 1_000),
            0,
        );
    }
    seal_active(&log);
    let codec = common::batch::TestCodec;
    let cleaner = riffle_storage::CleanerConfig::default();
    let outcome = log
        .compact(2_000, &codec, &cleaner, i64::MAX)
        .expect("compact");
    assert!(outcome.records_removed > 0);
    assert_eq!(all_aborted(&log), entries);
    close_cleanly(data_dir, log);
    let (_data_dir, log) = open_log(dir.path(), small_config());
    assert_eq!(all_aborted(&log), entries);
}
