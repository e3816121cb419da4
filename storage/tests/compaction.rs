//! Log compaction: the latest value of each key survives, tombstones expire, the active
//! segment is left alone, appends go on meanwhile, and the result survives a reopen; with
//! transactions, aborted records go and are never mapped, markers stay while their data does,
//! the transaction indexes follow the markers, and nothing is cleaned from the first
//! unstable offset on. Crashes during a swap are tested in the crate (`log/compaction.rs`),
//! through the fault seam.

mod common;

use std::collections::BTreeMap;

use common::batch::{
    CONTROL_ATTRIBUTE_BIT, ControlType, KeyValue, TestCodec, TestRecord, control_batch,
    keyed_batch, keyed_records, last_offset_of, split, transactional_batch,
};
use common::{
    active_log_file, append, close_cleanly, crash, open_log, partition_dir, segment_files,
    small_config, temp_dir,
};
use riffle_storage::format::{CLEANER_OFFSET_CHECKPOINT_FILE_NAME, SegmentFileKind};
use riffle_storage::{
    AbortedTransaction, CleanerConfig, CompactionOutcome, FirstBatch, Log, LogConfig, StorageError,
};

/// Every data record readable from the log start, in offset order, reading batch after
/// batch until a read returns nothing (the end, or removed records at the end).
fn read_records(log: &Log) -> Vec<TestRecord> {
    read_batches(log)
        .iter()
        .filter(|batch| !is_marker(batch))
        .flat_map(|batch| keyed_records(batch).expect("keyed batch"))
        .collect()
}

/// Whether a stored batch is a control batch: a transaction marker.
fn is_marker(batch: &[u8]) -> bool {
    i16::from_be_bytes([batch[21], batch[22]]) & CONTROL_ATTRIBUTE_BIT != 0
}

/// The offsets of the markers readable from the log start.
fn read_markers(log: &Log) -> Vec<i64> {
    read_batches(log)
        .iter()
        .filter(|batch| is_marker(batch))
        .map(|batch| last_offset_of(batch))
        .collect()
}

/// Every batch readable from the log start, whole, in offset order.
fn read_batches(log: &Log) -> Vec<Vec<u8>> {
    let mut batches = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let bytes = log
            .read(offset, 700, FirstBatch::AlwaysWhole)
            .expect("read");
        if bytes.is_empty() {
            break;
        }
        for (_, batch) in split(&bytes) {
            offset = last_offset_of(&batch) + 1;
            batches.push(batch);
        }
    }
    batches
}

/// The key's latest value after replaying `records`, keys deleted by a tombstone left out.
fn latest_values(records: &[TestRecord]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut latest = BTreeMap::new();
    for record in records {
        let key = record.key.clone().expect("keyed");
        match &record.value {
            Some(value) => latest.insert(key, value.clone()),
            None => latest.remove(&key),
        };
    }
    latest
}

/// What a full compaction of `records` keeps: each key's last record, in offset order.
fn last_record_per_key(records: &[TestRecord]) -> Vec<TestRecord> {
    let mut last_offsets = BTreeMap::new();
    for record in records {
        last_offsets.insert(record.key.clone(), record.offset);
    }
    records
        .iter()
        .filter(|record| last_offsets.get(&record.key) == Some(&record.offset))
        .cloned()
        .collect()
}

/// Appends one batch of `(key, value)` records at `timestamp_ms`; returns them as stored.
fn append_records(
    log: &Log,
    records: &[(&str, Option<&str>)],
    timestamp_ms: i64,
) -> Vec<TestRecord> {
    let pairs: Vec<KeyValue<'_>> = records
        .iter()
        .map(|(key, value)| (Some(key.as_bytes()), value.map(str::as_bytes)))
        .collect();
    let (_, stored) = append(log, &keyed_batch(&pairs, timestamp_ms), 0);
    keyed_records(&stored).expect("keyed batch")
}

/// `batches_count` batches of two updates each over `keys_count` keys, values numbered.
fn append_updates(log: &Log, batches_count: usize, keys_count: usize) -> Vec<TestRecord> {
    let mut appended = Vec::new();
    for index in 0..batches_count {
        let keys = [
            format!("k{}", (2 * index) % keys_count),
            format!("k{}", (2 * index + 1) % keys_count),
        ];
        let values = [format!("v{}", 2 * index), format!("v{}", 2 * index + 1)];
        let records = [
            (keys[0].as_str(), Some(values[0].as_str())),
            (keys[1].as_str(), Some(values[1].as_str())),
        ];
        appended.extend(append_records(log, &records, 1_000));
    }
    appended
}

/// Rolls the active segment, so everything appended so far can be compacted.
fn seal_active(log: &Log) {
    let config = log.config();
    log.set_config(LogConfig {
        segment_ms: 0,
        ..config
    });
    log.apply_retention(i64::MAX / 2).expect("roll");
    log.set_config(config);
}

fn compact(log: &Log, now_ms: i64) -> CompactionOutcome {
    log.compact(now_ms, &TestCodec, &CleanerConfig::default(), i64::MAX)
        .expect("compact")
}

fn segments_count(dir: &std::path::Path) -> usize {
    segment_files(&partition_dir(dir), SegmentFileKind::Log).len()
}

/// A log with many updates per key shrinks to the latest value of each key, read back from
/// offset 0 in offset order; a second pass with nothing new sealed does nothing; once more
/// is sealed, the next pass merges the segments the first one shrank.
#[test]
fn compaction_keeps_only_the_latest_value_of_each_key() {
    let dir = temp_dir("compaction_keeps_only_the_latest_value_of_each_key");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    let appended = append_updates(&log, 100, 7);
    seal_active(&log);
    let size_before = log.size_bytes();
    let segments_before = segments_count(dir.path());

    let outcome = compact(&log, 2_000);
    assert_eq!(outcome.records_removed, 200 - 7);
    assert_eq!(
        outcome.segments_cleaned,
        segments_before - 1,
        "every sealed segment"
    );
    assert_eq!(outcome.bytes_before, size_before);
    assert_eq!(log.size_bytes(), outcome.bytes_after);
    assert!(outcome.bytes_after * 10 < outcome.bytes_before);
    assert_eq!(
        segments_count(dir.path()),
        segments_before,
        "full segments do not merge"
    );
    let expected = last_record_per_key(&appended);
    assert_eq!(read_records(&log), expected);
    assert_eq!(log.next_offset(), 200, "offsets are never reused");
    let checkpoint = partition_dir(dir.path()).join(CLEANER_OFFSET_CHECKPOINT_FILE_NAME);
    assert_eq!(
        std::fs::read_to_string(checkpoint).expect("checkpoint"),
        "0\n200\n"
    );

    assert_eq!(compact(&log, 3_000), CompactionOutcome::default());
    assert_eq!(read_records(&log), expected);

    let more = append_records(&log, &[("k0", Some("last"))], 1_000);
    seal_active(&log);
    let outcome = compact(&log, 3_000);
    assert_eq!(outcome.records_removed, 1);
    assert_eq!(
        segments_count(dir.path()),
        2,
        "one merged sealed segment, one active"
    );
    let mut expected = last_record_per_key(&appended);
    expected.retain(|record| record.key.as_deref() != Some(&b"k0"[..]));
    expected.extend(more);
    assert_eq!(read_records(&log), expected);
}

/// A read of an offset whose record was removed returns the next batch that was kept, and
/// appends carry on after the compacted records.
#[test]
fn reads_of_removed_offsets_return_the_next_kept_batch() {
    let dir = temp_dir("reads_of_removed_offsets_return_the_next_kept_batch");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    let appended = append_updates(&log, 60, 5);
    seal_active(&log);
    compact(&log, 2_000);
    let kept = last_record_per_key(&appended);

    let kept_batches = read_batches(&log);
    for offset in 0..log.high_watermark() {
        let bytes = log.read(offset, 1, FirstBatch::AlwaysWhole).expect("read");
        let holding = kept_batches
            .iter()
            .find(|batch| last_offset_of(batch) >= offset);
        assert_eq!(
            bytes.as_ref(),
            holding.map_or(&[][..], Vec::as_slice),
            "offset {offset}"
        );
        if let Some(first_kept) = kept.iter().find(|record| record.offset >= offset) {
            let records = keyed_records(&bytes).expect("keyed batch");
            assert!(records.contains(first_kept), "offset {offset}");
        }
    }
    let more = append_records(&log, &[("k0", Some("after"))], 1_000);
    assert_eq!(more[0].offset, 120);
    assert_eq!(read_records(&log).last(), more.last());
}

/// A tombstone that is its key's latest record stays, and so hides the key, until its
/// batch is `delete_retention_ms` old; then a pass removes it, with nothing new appended.
#[test]
fn tombstones_stay_until_delete_retention_passes() {
    let dir = temp_dir("tombstones_stay_until_delete_retention_passes");
    let config = LogConfig {
        delete_retention_ms: 10_000,
        ..small_config()
    };
    let (_data_dir, log) = open_log(dir.path(), config);
    let first = append_records(
        &log,
        &[("a", Some("1")), ("b", Some("1")), ("c", Some("1"))],
        1_000,
    );
    let second = append_records(&log, &[("a", None), ("b", Some("2"))], 5_000);
    seal_active(&log);

    compact(&log, 6_000);
    let with_tombstone = vec![first[2].clone(), second[0].clone(), second[1].clone()];
    assert_eq!(read_records(&log), with_tombstone);
    assert_eq!(
        compact(&log, 15_000),
        CompactionOutcome::default(),
        "not yet expired"
    );
    assert_eq!(read_records(&log), with_tombstone);

    let outcome = compact(&log, 15_001);
    assert_eq!(outcome.records_removed, 1);
    assert_eq!(
        read_records(&log),
        vec![first[2].clone(), second[1].clone()]
    );
    let values = latest_values(&read_records(&log));
    assert_eq!(values.get(&b"a"[..]), None);
    assert_eq!(values.get(&b"b"[..]).map(Vec::as_slice), Some(&b"2"[..]));
}

/// The active segment's file is byte for byte the same after a pass, duplicates and all;
/// only sealed segments are compacted.
#[test]
fn active_segment_is_never_compacted() {
    let dir = temp_dir("active_segment_is_never_compacted");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    let appended = append_updates(&log, 43, 3);
    let active = active_log_file(&partition_dir(dir.path()));
    let active_bytes = std::fs::read(&active).expect("read active");
    let active_records: Vec<TestRecord> = split(&active_bytes)
        .iter()
        .flat_map(|(_, batch)| keyed_records(batch).expect("keyed"))
        .collect();
    assert!(
        active_records.len() > 3,
        "the active segment holds duplicates"
    );

    let outcome = compact(&log, 2_000);
    assert!(outcome.records_removed > 0);
    assert_eq!(std::fs::read(&active).expect("read active"), active_bytes);
    let records = read_records(&log);
    assert!(records.ends_with(&active_records));
    assert_eq!(latest_values(&records), latest_values(&appended));
}

/// Appends made while passes run lose nothing: every offset is assigned once, and the
/// latest value of every key is readable afterwards.
#[test]
fn appends_during_compaction_lose_nothing() {
    let dir = temp_dir("appends_during_compaction_lose_nothing");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    let appended = std::thread::scope(|scope| {
        let appender = scope.spawn(|| {
            let mut appended = Vec::new();
            for index in 0..300 {
                let key = format!("k{}", index % 13);
                let value = format!("v{index}");
                appended.extend(append_records(&log, &[(&key, Some(&value))], 1_000));
            }
            appended
        });
        let mut passes = 0;
        while !appender.is_finished() || passes == 0 {
            compact(&log, 2_000);
            passes += 1;
        }
        appender.join().expect("appender")
    });
    let offsets: Vec<i64> = appended.iter().map(|record| record.offset).collect();
    assert_eq!(offsets, (0..300).collect::<Vec<i64>>());
    seal_active(&log);
    compact(&log, 2_000);
    let records = read_records(&log);
    assert_eq!(records, last_record_per_key(&appended));
    assert_eq!(latest_values(&records), latest_values(&appended));
}

/// A compacted log reads the same after a clean reopen and after a crash, and appends
/// carry on at the same next offset.
#[test]
fn reopen_after_compaction_gives_the_same_data() {
    let dir = temp_dir("reopen_after_compaction_gives_the_same_data");
    let (data_dir, log) = open_log(dir.path(), small_config());
    append_updates(&log, 80, 6);
    compact(&log, 2_000);
    let records = read_records(&log);
    let next_offset = log.next_offset();
    close_cleanly(data_dir, log);

    let (data_dir, log) = open_log(dir.path(), small_config());
    assert!(data_dir.was_clean_shutdown());
    assert_eq!(read_records(&log), records);
    assert_eq!(log.next_offset(), next_offset);
    crash(log);
    drop(data_dir);

    let (data_dir, log) = open_log(dir.path(), small_config());
    assert!(!data_dir.was_clean_shutdown());
    assert_eq!(read_records(&log), records);
    let more = append_records(&log, &[("k9", Some("new"))], 1_000);
    assert_eq!(more[0].offset, next_offset);
}

/// With a map too small for the dirty keys, a pass cleans the prefix whose keys fit and
/// checkpoints there; later passes pick up from it until the log is fully compacted.
#[test]
fn a_small_map_cleans_a_prefix_per_pass() {
    let dir = temp_dir("a_small_map_cleans_a_prefix_per_pass");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    let mut appended = append_updates(&log, 60, 10);
    for index in 0..40 {
        let keys = [format!("new{}", 2 * index), format!("new{}", 2 * index + 1)];
        let records = [(keys[0].as_str(), Some("x")), (keys[1].as_str(), Some("y"))];
        appended.extend(append_records(&log, &records, 1_000));
    }
    seal_active(&log);
    let cleaner = CleanerConfig {
        max_compaction_map_entries: 30,
    };
    let sealed_count = segments_count(dir.path()) - 1;

    let first = log
        .compact(2_000, &TestCodec, &cleaner, i64::MAX)
        .expect("compact");
    assert!(first.segments_cleaned > 0);
    assert!(
        first.segments_cleaned < sealed_count,
        "only a prefix fits the map"
    );
    let mut passes = 1;
    while log
        .compact(2_000, &TestCodec, &cleaner, i64::MAX)
        .expect("compact")
        != CompactionOutcome::default()
    {
        passes += 1;
        assert!(passes < 50, "compaction converges");
    }
    assert_eq!(read_records(&log), last_record_per_key(&appended));
}

/// Segments holding batches younger than `min_compaction_lag_ms` are left alone, and so is
/// everything after them.
#[test]
fn min_compaction_lag_leaves_young_segments_alone() {
    let dir = temp_dir("min_compaction_lag_leaves_young_segments_alone");
    let config = LogConfig {
        min_compaction_lag_ms: 5_000,
        ..small_config()
    };
    let (_data_dir, log) = open_log(dir.path(), config);
    let old = append_updates(&log, 30, 4);
    seal_active(&log);
    let mut young = Vec::new();
    for index in 0..30 {
        let value = format!("young{index}");
        young.extend(append_records(&log, &[("k0", Some(&value))], 9_000));
    }
    seal_active(&log);
    let files_before: Vec<Vec<u8>> =
        segment_files(&partition_dir(dir.path()), SegmentFileKind::Log)
            .iter()
            .filter(|path| std::fs::read(path).is_ok_and(|bytes| !bytes.is_empty()))
            .map(|path| std::fs::read(path).expect("read"))
            .collect();

    compact(&log, 10_000);
    let mut expected = last_record_per_key(&old);
    expected.extend(young.iter().cloned());
    assert_eq!(read_records(&log), expected);
    let young_segments = files_before.iter().filter(|bytes| {
        split(bytes)
            .iter()
            .any(|(_, batch)| common::batch::max_timestamp_of(batch) == 9_000)
    });
    let files_after: Vec<Vec<u8>> = segment_files(&partition_dir(dir.path()), SegmentFileKind::Log)
        .iter()
        .map(|path| std::fs::read(path).expect("read"))
        .collect();
    for young_segment in young_segments {
        assert!(
            files_after.contains(young_segment),
            "a young segment is untouched"
        );
    }
}

/// A sealed segment whose bytes changed on disk stops the pass with `CorruptSegment` before
/// anything is rewritten: a fresh CRC must never launder a flipped bit.
#[test]
fn a_corrupt_sealed_batch_stops_the_pass() {
    let dir = temp_dir("a_corrupt_sealed_batch_stops_the_pass");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    append_updates(&log, 30, 4);
    seal_active(&log);
    let first_segment = segment_files(&partition_dir(dir.path()), SegmentFileKind::Log)[0].clone();
    common::flip_byte(&first_segment, 70);
    let before = std::fs::read(&first_segment).expect("read");

    let result = log.compact(2_000, &TestCodec, &CleanerConfig::default(), i64::MAX);
    assert!(
        matches!(result, Err(StorageError::CorruptSegment { .. })),
        "{result:?}"
    );
    assert_eq!(std::fs::read(&first_segment).expect("read"), before);
}

/// Records the codec cannot read stop the pass with `UnreadableRecords`, naming the batch.
#[test]
fn records_the_codec_cannot_read_stop_the_pass() {
    let dir = temp_dir("records_the_codec_cannot_read_stop_the_pass");
    let (_data_dir, log) = open_log(dir.path(), small_config());
    append_updates(&log, 3, 2);
    append(&log, &common::batch::batch(2, 40), 0);
    seal_active(&log);

    let result = log.compact(2_000, &TestCodec, &CleanerConfig::default(), i64::MAX);
    assert!(
        matches!(result, Err(StorageError::UnreadableRecords { .. })),
        "{result:?}"
    );
    assert_eq!(read_records_until_unreadable(&log), 6);
}

/// How many records read back before the first batch that is not a keyed test batch.
fn read_records_until_unreadable(log: &Log) -> usize {
    read_batches(log)
        .iter()
        .map_while(|batch| keyed_records(batch).ok())
        .map(|records| records.len())
        .sum()
}

/// Appends a transaction of `producer_id`: one batch per element of `batches`, then its
/// marker. Returns its records as stored and the marker's offset.
fn append_transaction(
    log: &Log,
    producer_id: i64,
    batches: &[&[(&str, Option<&str>)]],
    end: ControlType,
) -> (Vec<TestRecord>, i64) {
    let mut records = Vec::new();
    for batch in batches {
        let pairs: Vec<KeyValue<'_>> = batch
            .iter()
            .map(|(key, value)| (Some(key.as_bytes()), value.map(str::as_bytes)))
            .collect();
        let (_, stored) = append(log, &transactional_batch(producer_id, &pairs, 1_000), 0);
        records.extend(keyed_records(&stored).expect("keyed batch"));
    }
    let (marker, _) = append(log, &control_batch(producer_id, end, 1_000), 0);
    (records, marker.base_offset)
}

/// Appends an aborted transaction and records it, as the broker does, with no other
/// transaction open.
fn abort_transaction(
    log: &Log,
    producer_id: i64,
    batches: &[&[(&str, Option<&str>)]],
) -> AbortedTransaction {
    let (records, marker) = append_transaction(log, producer_id, batches, ControlType::Abort);
    let aborted = AbortedTransaction {
        producer_id,
        first_offset: records.first().map_or(marker, |record| record.offset),
        last_offset: marker,
        last_stable_offset: marker + 1,
    };
    log.add_aborted_transaction(aborted).expect("add");
    aborted
}

/// A small config whose tombstones and markers expire 10 s after their batch.
fn transactional_config() -> LogConfig {
    LogConfig {
        delete_retention_ms: 10_000,
        ..small_config()
    }
}

/// An aborted offset commit never becomes its key's latest: the committed value before it
/// survives the pass that removes the aborted records, as on `__consumer_offsets`. The ABORT
/// marker and its entry stay while the pass reads the aborted data, and go in a later pass
/// once the marker is past the delete horizon.
#[test]
fn aborted_records_are_removed_and_never_mapped() {
    let dir = temp_dir("aborted_records_are_removed_and_never_mapped");
    let (data_dir, log) = open_log(dir.path(), transactional_config());
    let committed = append_records(&log, &[("group/orders-0", Some("offset 10"))], 1_000);
    let aborted_batch: &[(&str, Option<&str>)] = &[
        ("group/orders-0", Some("offset 99")),
        ("group/orders-1", None),
    ];
    let aborted = abort_transaction(&log, 7, &[aborted_batch, &[("group/orders-0", None)]]);
    let later = append_records(&log, &[("group/orders-1", Some("offset 3"))], 1_000);
    seal_active(&log);

    let outcome = compact(&log, 2_000);
    assert_eq!(outcome.records_removed, 3, "the aborted records");
    let expected = [committed[0].clone(), later[0].clone()];
    assert_eq!(read_records(&log), expected);
    assert_eq!(read_markers(&log), [aborted.last_offset]);
    assert_eq!(
        log.aborted_transactions(0, i64::MAX).expect("aborted"),
        [aborted]
    );

    assert_eq!(
        compact(&log, 11_000),
        CompactionOutcome::default(),
        "not yet"
    );
    let outcome = compact(&log, 11_001);
    assert_eq!(outcome.records_removed, 1, "the marker");
    assert_eq!(read_markers(&log), Vec::<i64>::new());
    assert_eq!(log.aborted_transactions(0, i64::MAX).expect("aborted"), []);
    assert_eq!(read_records(&log), expected);
    let values = latest_values(&read_records(&log));
    let offset = values.get(&b"group/orders-0"[..]).map(Vec::as_slice);
    assert_eq!(offset, Some(&b"offset 10"[..]));

    close_cleanly(data_dir, log);
    let (_data_dir, log) = open_log(dir.path(), transactional_config());
    assert_eq!(read_records(&log), expected);
    assert_eq!(log.aborted_transactions(0, i64::MAX).expect("aborted"), []);
}

/// Committed transactional records are compacted like any others, in both directions; the
/// COMMIT marker stays while records of its transaction do, and once none is left it goes
/// when past the delete horizon.
#[test]
fn committed_transactional_records_are_compacted_like_others() {
    let dir = temp_dir("committed_transactional_records_are_compacted_like_others");
    let (_data_dir, log) = open_log(dir.path(), transactional_config());
    let first = append_records(&log, &[("a", Some("0")), ("c", Some("0"))], 1_000);
    let commit: &[(&str, Option<&str>)] = &[("a", Some("1")), ("b", Some("1"))];
    let (committed, first_marker) = append_transaction(&log, 5, &[commit], ControlType::Commit);
    let later = append_records(&log, &[("b", Some("2"))], 1_000);
    let (kept, second_marker) =
        append_transaction(&log, 6, &[&[("c", Some("3"))]], ControlType::Commit);
    seal_active(&log);

    compact(&log, 2_000);
    let expected = [committed[0].clone(), later[0].clone(), kept[0].clone()];
    assert_eq!(read_records(&log), expected);
    assert_eq!(read_markers(&log), [first_marker, second_marker]);
    assert!(first[0].offset < committed[0].offset);

    append_records(&log, &[("a", Some("4"))], 1_000);
    seal_active(&log);
    compact(&log, 3_000);
    assert_eq!(
        read_markers(&log),
        [first_marker, second_marker],
        "not past the horizon"
    );
    compact(&log, 11_001);
    assert_eq!(read_markers(&log), [second_marker], "5 has no record left");
    let values = latest_values(&read_records(&log));
    let value = |key: &[u8]| values.get(key).map(Vec::as_slice);
    assert_eq!(
        (value(b"a"), value(b"b"), value(b"c")),
        (Some(&b"4"[..]), Some(&b"2"[..]), Some(&b"3"[..]))
    );
}

/// Interleaved transactions over many segments, some aborted and spanning several segments:
/// after each pass, every record read is committed or plain, the transaction indexes hold
/// exactly the aborted transactions whose markers are still in the log, in the segments
/// holding them (a reopen would cut any misplaced entry), and markers go in the end.
#[test]
fn transaction_indexes_follow_the_markers_kept() {
    let dir = temp_dir("transaction_indexes_follow_the_markers_kept");
    let (data_dir, log) = open_log(dir.path(), transactional_config());
    let mut entries = Vec::new();
    let mut expected = Vec::new();
    for round in 0..8 {
        let key = format!("k{}", round % 3);
        let value = format!("plain {round}");
        expected.extend(append_records(&log, &[(&key, Some(&value))], 1_000));
        let long: Vec<(String, Option<&str>)> = (0..4)
            .map(|index| (format!("k{index}"), Some("aborted")))
            .collect();
        let long: Vec<(&str, Option<&str>)> = long
            .iter()
            .map(|(key, value)| (key.as_str(), *value))
            .collect();
        let batches: Vec<&[(&str, Option<&str>)]> = long.chunks(1).collect();
        if round % 2 == 0 {
            entries.push(abort_transaction(&log, 100 + round, &batches));
        } else {
            let (records, _) = append_transaction(&log, 100 + round, &batches, ControlType::Commit);
            expected.extend(records);
        }
    }
    seal_active(&log);
    assert!(segments_count(dir.path()) > 4);
    let check = |log: &Log, pass: &str| {
        let markers = read_markers(log);
        let left: Vec<AbortedTransaction> = entries
            .iter()
            .copied()
            .filter(|entry| markers.contains(&entry.last_offset))
            .collect();
        assert_eq!(
            log.aborted_transactions(0, i64::MAX).expect("aborted"),
            left,
            "{pass}"
        );
        assert_eq!(read_records(log), last_record_per_key(&expected), "{pass}");
        left.len()
    };
    compact(&log, 2_000);
    assert_eq!(
        check(&log, "first pass"),
        entries.len(),
        "their data was read"
    );
    compact(&log, 3_000);
    assert_eq!(check(&log, "before the horizon"), entries.len());
    close_cleanly(data_dir, log);
    let (_data_dir, log) = open_log(dir.path(), transactional_config());
    assert_eq!(check(&log, "reopened"), entries.len());
    compact(&log, 20_000);
    assert_eq!(check(&log, "past the horizon"), 0);
}

/// No segment holding an offset at or past the first unstable offset is cleaned, nor any
/// after it: an open transaction's data and everything from it on stay byte for byte; once
/// it commits and the bound moves, the next pass cleans the rest.
#[test]
fn nothing_is_cleaned_from_the_first_unstable_offset_on() {
    let dir = temp_dir("nothing_is_cleaned_from_the_first_unstable_offset_on");
    let (_data_dir, log) = open_log(dir.path(), transactional_config());
    let mut appended = append_updates(&log, 30, 4);
    let pairs = [(Some(&b"k0"[..]), Some(&b"open"[..]))];
    let (open, stored) = append(&log, &transactional_batch(9, &pairs, 1_000), 0);
    appended.extend(keyed_records(&stored).expect("keyed"));
    seal_active(&log);
    appended.extend(append_updates(&log, 30, 4));
    seal_active(&log);
    let files = || -> Vec<Vec<u8>> {
        segment_files(&partition_dir(dir.path()), SegmentFileKind::Log)
            .iter()
            .map(|path| std::fs::read(path).expect("read"))
            .collect()
    };
    let before = files();
    let first_unstable_offset = open.base_offset;

    let outcome = log
        .compact(
            2_000,
            &TestCodec,
            &CleanerConfig::default(),
            first_unstable_offset,
        )
        .expect("compact");
    assert!(outcome.segments_cleaned > 0);
    let after = files();
    let untouched: Vec<&Vec<u8>> = before
        .iter()
        .filter(|bytes| {
            split(bytes)
                .iter()
                .any(|(_, batch)| last_offset_of(batch) >= first_unstable_offset)
        })
        .collect();
    assert!(
        untouched.len() >= 3,
        "the open transaction's segment, the next, the active"
    );
    for bytes in untouched {
        assert!(
            after.contains(bytes),
            "a segment from the first unstable offset on changed"
        );
    }
    let records = read_records(&log);
    assert!(
        records
            .iter()
            .any(|record| record.offset == open.base_offset)
    );

    append(&log, &control_batch(9, ControlType::Commit, 1_000), 0);
    seal_active(&log);
    compact(&log, 2_000);
    assert_eq!(read_records(&log), last_record_per_key(&appended));
}

/// An ABORT marker already past the delete horizon outlives its data by one pass: the pass
/// that removes the data keeps the marker and its entry, and the next pass, with nothing new
/// sealed, removes both.
#[test]
fn an_abort_marker_outlives_its_data_by_one_pass() {
    let dir = temp_dir("an_abort_marker_outlives_its_data_by_one_pass");
    let (_data_dir, log) = open_log(dir.path(), transactional_config());
    let plain = append_records(&log, &[("k", Some("plain"))], 1_000);
    let aborted = abort_transaction(&log, 3, &[&[("k", Some("aborted"))]]);
    seal_active(&log);

    compact(&log, 20_000);
    assert_eq!(read_records(&log), plain);
    assert_eq!(read_markers(&log), [aborted.last_offset]);
    assert_eq!(
        log.aborted_transactions(0, i64::MAX).expect("aborted"),
        [aborted]
    );

    let outcome = compact(&log, 20_000);
    assert_eq!(outcome.records_removed, 1);
    assert_eq!(read_markers(&log), Vec::<i64>::new());
    assert_eq!(log.aborted_transactions(0, i64::MAX).expect("aborted"), []);
    assert_eq!(read_records(&log), plain);
}
