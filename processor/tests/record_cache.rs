//! The record cache (`cache_max_bytes`): updates coalesce per key until a commit or an
//! eviction, for outputs and changelogs alike, and restores stay right.

use std::time::Duration;

use riffle_processor::{
    DriverCommit, Emit, I64Serde, KeyValueStoreHandle, StreamsBuilder, StringSerde, TestDriver,
    TestDriverConfig, TimeWindows, Topology, WindowedSerde,
};

const CHANGELOG: &str = "cache-app-counts-changelog";

/// Counts per key, every update written to `counts-out`.
fn key_count() -> (Topology, KeyValueStoreHandle<String, i64>) {
    let builder = StreamsBuilder::new("cache-app");
    let counts = builder
        .stream("events", StringSerde, StringSerde)
        .group_by_key()
        .count("counts");
    counts.to_stream().to("counts-out", StringSerde, I64Serde);
    let store = counts.store();
    (builder.build().unwrap(), store)
}

/// A driver that commits only when told, with `cache_max_bytes` of cache.
fn manual_driver(topology: Topology, cache_max_bytes: usize) -> TestDriver {
    let config = TestDriverConfig {
        cache_max_bytes,
        commit: DriverCommit::Manual,
        ..TestDriverConfig::default()
    };
    TestDriver::with_config(topology, config)
}

/// Pipes `(key, timestamp)` events with an empty value.
fn pipe(driver: &TestDriver, events: &[(&str, i64)]) {
    let mut input = driver.input_topic("events", StringSerde, StringSerde);
    for (key, timestamp_ms) in events {
        input.pipe_input_at(key.to_string(), String::new(), *timestamp_ms);
    }
}

/// Output records as `(key, count, timestamp)`.
fn read_counts(driver: &TestDriver) -> Vec<(String, i64, i64)> {
    let output = driver.output_topic("counts-out", StringSerde, I64Serde);
    output
        .read_records()
        .into_iter()
        .map(|record| (record.key, record.value.unwrap(), record.timestamp_ms))
        .collect()
}

/// With the cache on, a hot key gives one output per commit, carrying its latest count and
/// timestamp; keys come out in the order of their last update, and the changelog gets the
/// same coalesced writes.
#[test]
fn a_hot_key_gives_one_output_per_commit_with_the_latest_value() {
    let (topology, _) = key_count();
    let driver = manual_driver(topology, 1024 * 1024);
    pipe(&driver, &[("a", 1), ("a", 2), ("b", 3), ("a", 4), ("b", 5)]);
    assert!(read_counts(&driver).is_empty(), "nothing before the commit");
    assert!(driver.topic_records(CHANGELOG).is_empty());
    driver.commit();
    let expected = vec![("a".to_string(), 3, 4), ("b".to_string(), 2, 5)];
    assert_eq!(read_counts(&driver), expected);
    let changelog = driver.topic_records(CHANGELOG);
    assert_eq!(changelog.len(), 2, "the changelog is coalesced too");
    assert_eq!(changelog[0].timestamp_ms, 4);

    // Reads go through the cache: counting goes on from the cached values.
    pipe(&driver, &[("a", 6)]);
    driver.commit();
    assert_eq!(read_counts(&driver), vec![("a".to_string(), 4, 6)]);
    driver.commit();
    assert!(
        read_counts(&driver).is_empty(),
        "a clean cache flushes nothing"
    );
}

/// `cache_max_bytes` 0 turns the cache off: one output and one changelog record per
/// record, commits or not.
#[test]
fn zero_bytes_gives_one_output_per_record() {
    let (topology, _) = key_count();
    let driver = manual_driver(topology, 0);
    pipe(&driver, &[("a", 1), ("a", 2), ("a", 3)]);
    let counts: Vec<i64> = read_counts(&driver).iter().map(|c| c.1).collect();
    assert_eq!(counts, vec![1, 2, 3]);
    assert_eq!(driver.topic_records(CHANGELOG).len(), 3);
}

/// The default driver has no cache and commits after every record: outputs are the
/// uncached ones, as with Kafka Streams' TopologyTestDriver.
#[test]
fn the_default_driver_is_uncached() {
    let (topology, _) = key_count();
    let driver = TestDriver::new(topology);
    pipe(&driver, &[("a", 1), ("a", 2)]);
    let counts: Vec<i64> = read_counts(&driver).iter().map(|c| c.1).collect();
    assert_eq!(counts, vec![1, 2]);
}

/// A full cache evicts its least recently used entry; a dirty one is written and forwarded
/// first, then every other dirty entry in the order of its last update.
#[test]
fn eviction_flushes_the_eldest_entry_then_the_other_dirty_ones() {
    let (topology, _) = key_count();
    // Room for three entries of a 2-byte key and an 8-byte count (about 300 bytes each
    // with the cache's overhead), not four.
    let driver = manual_driver(topology, 1_000);
    pipe(&driver, &[("k1", 1), ("k2", 2), ("k3", 3), ("k1", 4)]);
    assert!(read_counts(&driver).is_empty(), "three keys fit");
    pipe(&driver, &[("k4", 5)]);
    // k2 is the least recently used; k3, k1 and k4 follow in last-update order.
    let keys: Vec<String> = read_counts(&driver).into_iter().map(|c| c.0).collect();
    assert_eq!(keys, ["k2", "k3", "k1", "k4"]);
    assert_eq!(driver.topic_records(CHANGELOG).len(), 4);
}

/// After a crash, stores restore from the changelog of what was flushed: the last commit's
/// counts. Updates only in the cache are lost with it, as their input was not committed
/// (a runtime processes it again).
#[test]
fn a_crash_restores_what_the_cache_flushed() {
    let (topology, store) = key_count();
    let driver = manual_driver(topology, 1024 * 1024);
    pipe(&driver, &[("a", 1), ("a", 2), ("b", 3)]);
    driver.commit();
    pipe(&driver, &[("a", 4), ("a", 5)]);
    driver.crash_and_restart();
    let view = driver.key_value_store(&store);
    assert_eq!(view.get(&"a".to_string()).unwrap(), Some(2));
    assert_eq!(view.get(&"b".to_string()).unwrap(), Some(1));
    read_counts(&driver);
    pipe(&driver, &[("a", 6)]);
    driver.commit();
    assert_eq!(read_counts(&driver), vec![("a".to_string(), 3, 6)]);
}

fn windowed_count(emit: Emit) -> Topology {
    let builder = StreamsBuilder::new("cache-app");
    let windows = TimeWindows::tumbling(Duration::from_millis(100)).grace(Duration::ZERO);
    builder
        .stream("events", StringSerde, StringSerde)
        .group_by_key()
        .windowed_by(windows)
        .emit(emit)
        .count("counts")
        .to("counts-out", StringSerde, I64Serde);
    builder.build().unwrap()
}

fn read_windowed(driver: &TestDriver) -> Vec<(String, i64, i64, i64)> {
    let output = driver.output_topic(
        "counts-out",
        WindowedSerde::time(StringSerde, Duration::from_millis(100)),
        I64Serde,
    );
    output
        .read_records()
        .into_iter()
        .map(|r| (r.key.key, r.key.start_ms, r.value.unwrap(), r.timestamp_ms))
        .collect()
}

/// Windowed counts coalesce per key and window; emit-final windows are not cached (as in
/// Kafka Streams) and still come out once, when they close, without a commit.
#[test]
fn windowed_updates_coalesce_and_final_results_are_unchanged() {
    let driver = manual_driver(windowed_count(Emit::OnUpdate), 1024 * 1024);
    pipe(&driver, &[("a", 10), ("a", 20), ("a", 110), ("a", 120)]);
    assert!(read_windowed(&driver).is_empty());
    driver.commit();
    let expected = vec![("a".to_string(), 0, 2, 20), ("a".to_string(), 100, 2, 120)];
    assert_eq!(read_windowed(&driver), expected);

    let driver = manual_driver(windowed_count(Emit::OnWindowClose), 1024 * 1024);
    pipe(&driver, &[("a", 10), ("a", 20), ("a", 110)]);
    assert_eq!(read_windowed(&driver), vec![("a".to_string(), 0, 2, 20)]);
}

/// A store another operator reads is not cached: a stream-table join against a count sees
/// every update at once, as it would through Kafka Streams' caching store.
#[test]
fn a_table_that_a_join_reads_is_not_cached() {
    let builder = StreamsBuilder::new("cache-app");
    let counts = builder
        .stream("events", StringSerde, StringSerde)
        .group_by_key()
        .count("counts");
    builder
        .stream("lookups", StringSerde, StringSerde)
        .join_table(&counts, |_key, _value, count: &i64| *count)
        .to("joined", StringSerde, I64Serde);
    let driver = manual_driver(builder.build().unwrap(), 1024 * 1024);
    pipe(&driver, &[("a", 1), ("a", 2)]);
    let mut lookups = driver.input_topic("lookups", StringSerde, StringSerde);
    lookups.pipe_input_at("a".to_string(), String::new(), 3);
    let joined = driver.output_topic("joined", StringSerde, I64Serde);
    assert_eq!(joined.read_key_values(), vec![("a".to_string(), 2)]);
}
