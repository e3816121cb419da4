//! Grouping and aggregation: count, reduce, aggregate, repartitioning, stores, restarts.

mod common;

use riffle_processor::{
    Grouped, I64Serde, Materialized, StoreBacking, StreamsBuilder, StringSerde, TestDriver,
    UnitSerde,
};

fn word_count() -> (
    riffle_processor::Topology,
    riffle_processor::KeyValueStoreHandle<String, i64>,
) {
    let builder = StreamsBuilder::new("word-count");
    let counts = builder
        .stream("lines", UnitSerde, StringSerde)
        .flat_map_values(|line: &String| {
            line.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .select_key(|_, word: &String| word.clone())
        .group_by_key_with(Grouped::new(StringSerde, StringSerde).name("words"))
        .count("counts");
    counts.to_stream().to("word-counts", StringSerde, I64Serde);
    let store = counts.store();
    (builder.build().unwrap(), store)
}

/// The classic word count: re-keying goes through the repartition topic, one output per
/// input word with its running count, and the store answers point and range queries.
fn word_count_repartitions_counts_and_serves_queries(backing: StoreBacking) {
    let (topology, store) = word_count();
    assert!(topology.is_repartition_topic("word-count-words-repartition"));
    let driver = TestDriver::with_store_backing(topology, 1, backing);
    let mut input = driver.input_topic("lines", UnitSerde, StringSerde);
    input.pipe_input((), "the cat and the hat".to_string());
    let output = driver.output_topic("word-counts", StringSerde, I64Serde);
    let updates = output.read_key_values();
    assert_eq!(updates.len(), 5);
    assert_eq!(updates[3], ("the".to_string(), 2));
    let view = driver.key_value_store(&store);
    assert_eq!(view.get(&"the".to_string()).unwrap(), Some(2));
    assert_eq!(view.get(&"dog".to_string()).unwrap(), None);
    let all = view.all().unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0], ("and".to_string(), 1));
    // The changelog holds every store write, keyed by word.
    let changelog = driver.topic_records("word-count-counts-changelog");
    assert_eq!(changelog.len(), 5);
}

/// With several partitions the same words land in the same task (murmur2 of the key), so
/// counts are still per word across partitions.
fn counts_are_per_key_across_partitions(backing: StoreBacking) {
    let (topology, store) = word_count();
    let driver = TestDriver::with_store_backing(topology, 4, backing);
    let mut input = driver.input_topic("lines", UnitSerde, StringSerde);
    for _ in 0..3 {
        input.pipe_input((), "alpha beta gamma delta".to_string());
    }
    let view = driver.key_value_store(&store);
    for word in ["alpha", "beta", "gamma", "delta"] {
        assert_eq!(view.get(&word.to_string()).unwrap(), Some(3), "{word}");
    }
}

/// After a crash the stores are restored from their changelogs: counting goes on from
/// where it was, not from zero.
fn stores_are_restored_from_the_changelog_after_a_crash(backing: StoreBacking) {
    let (topology, store) = word_count();
    let driver = TestDriver::with_store_backing(topology, 1, backing);
    let mut input = driver.input_topic("lines", UnitSerde, StringSerde);
    input.pipe_input((), "a a b".to_string());
    driver.crash_and_restart();
    assert_eq!(
        driver
            .key_value_store(&store)
            .get(&"a".to_string())
            .unwrap(),
        Some(2)
    );
    input.pipe_input((), "a".to_string());
    assert_eq!(
        driver
            .key_value_store(&store)
            .get(&"a".to_string())
            .unwrap(),
        Some(3)
    );
}

/// reduce keeps the first value and folds the rest; aggregate starts from the
/// initializer; the output timestamp is the largest folded in.
fn reduce_and_aggregate_fold_values(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    let grouped = builder
        .stream("amounts", StringSerde, I64Serde)
        .group_by_key();
    grouped
        .reduce(|a, b| (*a).max(*b), "max")
        .to_stream()
        .to("max", StringSerde, I64Serde);
    grouped
        .aggregate(
            || 100,
            |_, v, total| total - v,
            Materialized::new("budget").with_value_serde(I64Serde),
        )
        .to_stream()
        .to("budget", StringSerde, I64Serde);
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    let mut input = driver.input_topic("amounts", StringSerde, I64Serde);
    input.pipe_input_at("k".into(), 5, 50);
    input.pipe_input_at("k".into(), 3, 10);
    input.pipe_input_at("k".into(), 9, 30);
    let max = driver
        .output_topic("max", StringSerde, I64Serde)
        .read_records();
    let values: Vec<Option<i64>> = max.iter().map(|r| r.value).collect();
    assert_eq!(values, vec![Some(5), Some(5), Some(9)]);
    assert_eq!(max.last().unwrap().timestamp_ms, 50);
    let budget = driver
        .output_topic("budget", StringSerde, I64Serde)
        .read_key_values();
    assert_eq!(budget.last().unwrap().1, 100 - 5 - 3 - 9);
}

for_both_backings!(
    word_count_repartitions_counts_and_serves_queries,
    counts_are_per_key_across_partitions,
    stores_are_restored_from_the_changelog_after_a_crash,
    reduce_and_aggregate_fold_values
);
