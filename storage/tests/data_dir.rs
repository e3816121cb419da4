//! The data directory: its lock, the clean-shutdown marker, listing and deleting partitions.

mod common;

use common::{append_all, open_log, temp_dir};
use riffle_storage::{DataDir, LogConfig, StorageError};

/// A second `DataDir::open` on a locked directory fails with `Locked`, naming the lock file;
/// once the first is dropped the directory opens again.
#[test]
fn second_open_of_locked_data_dir_fails() {
    let dir = temp_dir("second_open_of_locked_data_dir_fails");
    let first = DataDir::open(dir.path()).expect("first open");
    let second = DataDir::open(dir.path());
    match second {
        Err(error @ StorageError::Locked { .. }) => {
            let StorageError::Locked { path } = &error else {
                unreachable!()
            };
            assert_eq!(path, &dir.path().join(".lock"));
            assert!(error.to_string().contains(".lock"));
        }
        other => panic!("expected Locked, got {:?}", other.map(|_| ())),
    }
    drop(first);
    DataDir::open(dir.path()).expect("open after the first was dropped");
}

/// The marker reads true exactly once after `mark_clean_shutdown`; an empty, new
/// directory has nothing to recover and reads clean.
#[test]
fn clean_shutdown_marker_is_consumed() {
    let dir = temp_dir("clean_shutdown_marker_is_consumed");
    let data_dir = DataDir::open(dir.path()).expect("open");
    assert!(data_dir.was_clean_shutdown(), "a new directory is clean");
    drop(data_dir);
    let data_dir = DataDir::open(dir.path()).expect("open");
    assert!(
        !data_dir.was_clean_shutdown(),
        "no marker, and the lock file is there"
    );
    data_dir.mark_clean_shutdown().expect("mark");
    drop(data_dir);
    let data_dir = DataDir::open(dir.path()).expect("open");
    assert!(data_dir.was_clean_shutdown());
    drop(data_dir);
    let data_dir = DataDir::open(dir.path()).expect("open");
    assert!(!data_dir.was_clean_shutdown());
}

/// Partitions are listed, parsed at the last '-', sorted; strays, hidden entries and
/// directories being deleted are skipped.
#[test]
fn list_partitions_skips_strays() {
    let dir = temp_dir("list_partitions_skips_strays");
    let data_dir = DataDir::open(dir.path()).expect("open");
    for (topic, partition) in [("orders-v2", 3), ("a", 0), ("x.y_z", 12)] {
        drop(
            data_dir
                .open_log(topic, partition, LogConfig::default())
                .expect("open log"),
        );
    }
    std::fs::write(dir.path().join("junk.txt"), b"stray").expect("stray file");
    std::fs::write(dir.path().join("files-3"), b"a file, not a dir").expect("stray file");
    for stray_dir in ["notapartition", "orders-03", ".cache", "orders-4.1f-delete"] {
        std::fs::create_dir(dir.path().join(stray_dir)).expect("stray dir");
    }
    let partitions = data_dir.list_partitions().expect("list");
    let expected = [
        ("a".to_owned(), 0),
        ("orders-v2".to_owned(), 3),
        ("x.y_z".to_owned(), 12),
    ];
    assert_eq!(partitions, expected);
}

/// Deleting a partition removes its directory, leaves no `-delete` directory behind, and a
/// later open starts an empty log; deleting a missing partition is fine.
#[test]
fn delete_log_removes_partition() {
    let dir = temp_dir("delete_log_removes_partition");
    let (data_dir, log) = open_log(dir.path(), LogConfig::default());
    append_all(&log, &[(3, 100), (3, 100)]);
    drop(log);
    data_dir.delete_log(common::TOPIC, 0).expect("delete");
    let entries: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| !name.starts_with('.'))
        .collect();
    assert!(entries.is_empty(), "left behind: {entries:?}");
    assert!(data_dir.list_partitions().expect("list").is_empty());
    let log = data_dir
        .open_log(common::TOPIC, 0, LogConfig::default())
        .expect("reopen");
    assert_eq!((log.log_start_offset(), log.next_offset()), (0, 0));
    drop(log);
    data_dir
        .delete_log("never-created", 5)
        .expect("delete missing");
}

/// A partition directory a crash left half deleted is removed when the directory opens.
#[test]
fn leftover_delete_dir_is_removed_on_open() {
    let dir = temp_dir("leftover_delete_dir_is_removed_on_open");
    let leftover = dir.path().join("orders-0.1f-delete");
    std::fs::create_dir(&leftover).expect("create leftover");
    std::fs::write(leftover.join("00000000000000000000.log"), b"old").expect("leftover file");
    let _data_dir = DataDir::open(dir.path()).expect("open");
    assert!(!leftover.exists());
}

/// Topic names that are not legal Kafka names, and negative partitions, never become paths.
#[test]
fn illegal_topic_partitions_are_rejected() {
    let dir = temp_dir("illegal_topic_partitions_are_rejected");
    let data_dir = DataDir::open(dir.path()).expect("open");
    for (topic, partition) in [("../escape", 0), ("a/b", 0), ("", 0), ("ok", -1)] {
        let result = data_dir.open_log(topic, partition, LogConfig::default());
        assert!(
            matches!(result, Err(StorageError::InvalidTopicPartition { .. })),
            "{topic:?}-{partition}"
        );
    }
}
