//! `Materialized`: store names, serdes, backing, changelog, retention and caching of
//! stateful operations; groupings that need no serdes; windowed sinks that take their
//! window size from the table.

use std::time::Duration;

use riffle_processor::{
    DriverCommit, Grouped, I64Serde, Materialized, SessionWindows, StoreBacking, StreamsBuilder,
    StringSerde, TestDriver, TestDriverConfig, TimeWindows, Topology, TopologyError, Windowed,
    WindowedSerde,
};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Counts per key into `materialized`, every update written to `counts-out`.
fn counts_into(materialized: Materialized<String, i64>) -> Topology {
    let builder = StreamsBuilder::new("app");
    builder
        .stream("events", StringSerde, StringSerde)
        .group_by_key()
        .count(materialized)
        .to_stream()
        .to("counts-out", StringSerde, I64Serde);
    builder.build().unwrap()
}

fn pipe(driver: &TestDriver, keys: &[&str]) {
    let mut input = driver.input_topic("events", StringSerde, StringSerde);
    for (timestamp_ms, key) in (1..).zip(keys) {
        input.pipe_input_at(key.to_string(), String::new(), timestamp_ms);
    }
}

fn read_counts(driver: &TestDriver) -> Vec<(String, i64)> {
    driver
        .output_topic("counts-out", StringSerde, I64Serde)
        .read_key_values()
}

/// The changelog topics the topology creates, with their configs.
fn changelogs(topology: &Topology) -> Vec<(String, Vec<(String, String)>)> {
    let plan = topology.plan(|_| Some(1)).unwrap();
    plan.internal_topics
        .into_iter()
        .filter(|topic| topic.name.ends_with("-changelog"))
        .map(|topic| (topic.name, topic.configs))
        .collect()
}

fn config<'c>(configs: &'c [(String, String)], name: &str) -> Option<&'c str> {
    configs
        .iter()
        .find(|(known, _)| known == name)
        .map(|(_, value)| value.as_str())
}

/// A store name alone is enough; with logging disabled nothing goes to the changelog,
/// no changelog topic is created, and an in-memory store starts empty after a restart.
#[test]
fn logging_disabled_writes_no_changelog_and_restores_nothing() {
    let logged = counts_into("counts".into());
    assert_eq!(changelogs(&logged).len(), 1);
    let topology = counts_into(Materialized::new("counts").with_logging_disabled());
    assert!(changelogs(&topology).is_empty());
    let described = &topology.describe().subtopologies[0].stores[0];
    assert!(!described.logging && described.caching);

    let driver = TestDriver::with_store_backing(topology, 1, StoreBacking::InMemory);
    pipe(&driver, &["a", "a"]);
    assert!(driver.topic_records("app-counts-changelog").is_empty());
    driver.crash_and_restart();
    pipe(&driver, &["a"]);
    let counts = read_counts(&driver);
    assert_eq!(counts.last(), Some(&("a".to_string(), 1)));
}

/// Changelog configs from `Materialized` go over the defaults; in-memory is per store.
#[test]
fn changelog_configs_and_backing_reach_the_topology() {
    let materialized = Materialized::new("counts")
        .in_memory()
        .with_changelog_config("min.insync.replicas", "2")
        .with_changelog_config("cleanup.policy", "compact,delete");
    let topology = counts_into(materialized);
    let [(name, configs)] = &changelogs(&topology)[..] else {
        panic!("one changelog expected");
    };
    assert_eq!(name, "app-counts-changelog");
    assert_eq!(config(configs, "min.insync.replicas"), Some("2"));
    assert_eq!(config(configs, "cleanup.policy"), Some("compact,delete"));
    let stores = topology.stores();
    assert_eq!(stores[0].1.backing, StoreBacking::InMemory);
}

/// With caching disabled a store gives one update per record even when the runtime has
/// a record cache; the same topology with caching on coalesces them until a commit.
#[test]
fn caching_disabled_forwards_every_update() {
    let config = || TestDriverConfig {
        cache_max_bytes: 1024 * 1024,
        commit: DriverCommit::Manual,
        ..TestDriverConfig::default()
    };
    let cached = TestDriver::with_config(counts_into("counts".into()), config());
    pipe(&cached, &["a", "a", "a"]);
    assert!(read_counts(&cached).is_empty());

    let topology = counts_into(Materialized::new("counts").with_caching_disabled());
    let uncached = TestDriver::with_config(topology, config());
    pipe(&uncached, &["a", "a", "a"]);
    let expected: Vec<(String, i64)> = (1..=3).map(|count| ("a".to_string(), count)).collect();
    assert_eq!(read_counts(&uncached), expected);
}

/// Windowed counts per 10 s window with no grace, kept as long as `materialized` says;
/// the store handle for queries.
fn windowed_counts(
    materialized: Materialized<String, i64>,
) -> (
    Result<Topology, TopologyError>,
    riffle_processor::WindowStoreHandle<String, i64>,
) {
    let builder = StreamsBuilder::new("app");
    let table = builder
        .stream("events", StringSerde, StringSerde)
        .group_by_key()
        .windowed_by(TimeWindows::tumbling(Duration::from_secs(10)))
        .count(materialized);
    table.to("counts-out", StringSerde, I64Serde);
    (builder.build(), table.store())
}

/// A window store's retention: the changelog keeps it a day longer, the store keeps old
/// windows that long behind stream time, and a retention shorter than size plus grace,
/// or on a key-value store, is refused.
#[test]
fn window_retention_is_settable_and_checked() {
    let hour = Duration::from_secs(3600);
    let (topology, store) = windowed_counts(Materialized::new("counts").with_retention(hour));
    let topology = topology.unwrap();
    let [(_, configs)] = &changelogs(&topology)[..] else {
        panic!("one changelog expected");
    };
    let retention_ms = (3600 * 1000 + DAY_MS).to_string();
    assert_eq!(config(configs, "retention.ms"), Some(retention_ms.as_str()));

    // Stream time moves 10 minutes on: the window at 0 is still there to query, where
    // the default retention (size plus grace) has dropped it.
    let windows_at_0 = |topology: Topology, store| {
        let driver = TestDriver::new(topology);
        let mut input = driver.input_topic("events", StringSerde, StringSerde);
        input.pipe_input_at("a".into(), String::new(), 1_000);
        input.pipe_input_at("a".into(), String::new(), 600_000);
        let windows = driver.window_store(&store).fetch(&"a".to_string(), 0, 0);
        windows.unwrap().len()
    };
    assert_eq!(windows_at_0(topology, store), 1);
    let (default_topology, default_store) = windowed_counts("counts".into());
    assert_eq!(windows_at_0(default_topology.unwrap(), default_store), 0);

    let short = Materialized::new("counts").with_retention(Duration::from_secs(1));
    let (refused, _) = windowed_counts(short);
    assert!(matches!(
        refused,
        Err(TopologyError::InvalidStoreOptions { store, .. }) if store == "counts"
    ));
    let builder = StreamsBuilder::new("app");
    builder
        .stream("events", StringSerde, StringSerde)
        .group_by_key()
        .count(Materialized::new("counts").with_retention(hour));
    assert!(matches!(
        builder.build(),
        Err(TopologyError::InvalidStoreOptions { .. })
    ));
}

/// A windowed table's `to` writes keys with its own window size: the reader sees the
/// window's end at start plus size.
#[test]
fn windowed_sinks_take_the_window_size_from_the_table() {
    let (topology, _) = windowed_counts("counts".into());
    let driver = TestDriver::new(topology.unwrap());
    let mut input = driver.input_topic("events", StringSerde, StringSerde);
    input.pipe_input_at("a".into(), String::new(), 12_000);
    let key_serde = WindowedSerde::time(StringSerde, Duration::from_secs(10));
    let output = driver.output_topic("counts-out", key_serde, I64Serde);
    let window = Windowed {
        key: "a".to_string(),
        start_ms: 10_000,
        end_ms: 20_000,
    };
    assert_eq!(output.read_key_values(), vec![(window, 1)]);
}

/// Without serdes, a grouping that repartitions and an aggregate without its value serde
/// fail `build` with a clear error; a grouping that does not repartition needs none.
#[test]
fn missing_serdes_fail_the_build() {
    let builder = StreamsBuilder::new("app");
    builder
        .stream("events", StringSerde, StringSerde)
        .map(|key: &String, value: &String| (value.clone(), key.clone()))
        .group_by_key()
        .count("counts");
    let error = builder.build().err();
    assert!(
        matches!(error, Some(TopologyError::MissingSerde(_))),
        "{error:?}"
    );

    let builder = StreamsBuilder::new("app");
    builder
        .stream("events", StringSerde, StringSerde)
        .group_by_key()
        .aggregate(|| 0, |_, _, count: i64| count + 1, "counts");
    let error = builder.build().err();
    assert!(
        matches!(error, Some(TopologyError::MissingSerde(_))),
        "{error:?}"
    );

    let builder = StreamsBuilder::new("app");
    builder
        .stream("events", StringSerde, StringSerde)
        .map(|key: &String, value: &String| (value.clone(), key.clone()))
        .group_by_key_with(Grouped::new(StringSerde, StringSerde))
        .count("counts");
    assert!(builder.build().is_ok());
}

/// An operation given no store name gets one in Kafka Streams' style.
#[test]
fn unnamed_stores_get_generated_names() {
    let topology = counts_into(Materialized::default());
    let stores = topology.stores();
    assert_eq!(stores.len(), 1);
    assert!(
        stores[0]
            .1
            .name
            .starts_with("KSTREAM-AGGREGATE-STATE-STORE-"),
        "{}",
        stores[0].1.name
    );
}

/// Sessions reduce like other windows, with the stream's value serde as the store's; a
/// record that bridges two sessions merges their sums with the reducer.
#[test]
fn session_windows_reduce_and_merge_with_the_reducer() {
    let builder = StreamsBuilder::new("app");
    let sessions = builder
        .stream("amounts", StringSerde, I64Serde)
        .group_by_key()
        .session_windowed_by(
            SessionWindows::with_inactivity_gap(Duration::from_secs(5))
                .grace(Duration::from_secs(30)),
        )
        .reduce(|total, amount| total + amount, "totals");
    let store = sessions.store();
    sessions.to("totals-out", StringSerde, I64Serde);
    let driver = TestDriver::new(builder.build().unwrap());
    let mut input = driver.input_topic("amounts", StringSerde, I64Serde);
    input.pipe_input_at("a".into(), 1, 0);
    input.pipe_input_at("a".into(), 2, 10_000);
    input.pipe_input_at("a".into(), 4, 5_000);
    let found = driver
        .session_store(&store)
        .fetch(&"a".to_string())
        .unwrap();
    let session = Windowed {
        key: "a".to_string(),
        start_ms: 0,
        end_ms: 10_000,
    };
    assert_eq!(found, vec![(session, 7)]);
}
