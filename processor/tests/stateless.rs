//! Stateless operators through the test driver: filter, map, flat_map, branch, merge.

mod common;

use std::collections::BTreeMap;

use riffle_processor::{
    I64Serde, KStream, StoreBacking, StreamsBuilder, StringSerde, TestDriver, UnitSerde,
};

/// Filter, map_values and to: only matching records come out, values transformed, in
/// input order and with the input timestamps.
fn filter_and_map_values_keep_order_and_timestamps(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    builder
        .stream("in", StringSerde, I64Serde)
        .filter(|_, amount| *amount > 10)
        .map_values(|amount| amount * 2)
        .to("out", StringSerde, I64Serde);
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    let mut input = driver.input_topic("in", StringSerde, I64Serde);
    let output = driver.output_topic("out", StringSerde, I64Serde);
    input.pipe_input_at("a".into(), 5, 100);
    input.pipe_input_at("b".into(), 20, 200);
    input.pipe_input_at("c".into(), 11, 300);
    let first = output.read_record().unwrap();
    assert_eq!(
        (first.key.as_str(), first.value, first.timestamp_ms),
        ("b", Some(40), 200)
    );
    assert_eq!(output.read_key_values(), vec![("c".to_string(), 22)]);
    assert!(output.is_empty());
}

/// flat_map emits zero or more records per input; a keyless topic reads as `()` keys.
fn flat_map_splits_lines_from_a_keyless_topic(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    builder
        .stream("lines", UnitSerde, StringSerde)
        .flat_map(|_, line: &String| {
            line.split_whitespace()
                .map(|word| (word.to_string(), 1i64))
                .collect::<Vec<_>>()
        })
        .to("words", StringSerde, I64Serde);
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    let mut input = driver.input_topic("lines", UnitSerde, StringSerde);
    input.pipe_input((), "to be or".to_string());
    input.pipe_input((), String::new());
    let words: Vec<String> = driver
        .output_topic("words", StringSerde, I64Serde)
        .read_key_values()
        .into_iter()
        .map(|(word, _)| word)
        .collect();
    assert_eq!(words, vec!["to", "be", "or"]);
}

/// split sends each record to the first matching branch only, the rest to the default
/// branch; merge joins streams back.
fn branch_routes_to_the_first_match_and_merge_combines(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    let branches: BTreeMap<String, KStream<String, i64>> = builder
        .stream("in", StringSerde, I64Serde)
        .split()
        .branch("negative", |_, v| *v < 0)
        .branch("small", |_, v| *v < 100)
        .default_branch("large");
    branches["negative"].to("negative", StringSerde, I64Serde);
    branches["small"].to("small", StringSerde, I64Serde);
    branches["large"].to("large", StringSerde, I64Serde);
    branches["negative"]
        .merge(&branches["small"])
        .to("all-handled", StringSerde, I64Serde);
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    let mut input = driver.input_topic("in", StringSerde, I64Serde);
    for (key, value) in [("a", -1), ("b", 5), ("c", 500)] {
        input.pipe_input(key.to_string(), value);
    }
    let read = |topic: &str| {
        driver
            .output_topic(topic, StringSerde, I64Serde)
            .read_key_values()
    };
    assert_eq!(read("negative"), vec![("a".to_string(), -1)]);
    assert_eq!(read("small"), vec![("b".to_string(), 5)]);
    assert_eq!(read("large"), vec![("c".to_string(), 500)]);
    assert_eq!(read("all-handled").len(), 2);
}

/// Records whose bytes the source serde cannot read are dropped and counted, and the
/// topology goes on with the next record.
fn unreadable_records_are_dropped_and_counted(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    builder
        .stream("in", StringSerde, I64Serde)
        .to("out", StringSerde, I64Serde);
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    let mut input = driver.input_topic("in", StringSerde, I64Serde);
    input.pipe_raw(Some(b"k".to_vec()), Some(vec![1, 2, 3]), 0);
    input.pipe_raw(Some(b"k".to_vec()), None, 0);
    input.pipe_input("k".to_string(), 7);
    assert_eq!(driver.dropped_records(), 2);
    let output = driver.output_topic("out", StringSerde, I64Serde);
    assert_eq!(output.read_key_values(), vec![("k".to_string(), 7)]);
}

for_both_backings!(
    filter_and_map_values_keep_order_and_timestamps,
    flat_map_splits_lines_from_a_keyless_topic,
    branch_routes_to_the_first_match_and_merge_combines,
    unreadable_records_are_dropped_and_counted
);

#[test]
fn the_driver_keeps_outputs_until_read_and_no_inputs() {
    // Proves the test driver's memory does not grow with piped input: stream inputs are
    // not kept, and sink outputs are held only until a test reads them.
    let builder = StreamsBuilder::new("app");
    builder
        .stream("in", StringSerde, I64Serde)
        .to("out", StringSerde, I64Serde);
    let driver = TestDriver::new(builder.build().unwrap());
    let mut input = driver.input_topic("in", StringSerde, I64Serde);
    let output = driver.output_topic("out", StringSerde, I64Serde);
    for amount in 0..1_000 {
        input.pipe_input_at("a".into(), amount, amount);
    }
    assert!(driver.topic_records("in").is_empty());
    assert!(driver.topic_records("out").is_empty());
    assert_eq!(output.queue_size(), 1_000);
    assert_eq!(output.read_key_values().len(), 1_000);
    assert_eq!(output.queue_size(), 0);
}

/// Two branches of one split with the same name fail `build`.
#[test]
fn a_branch_name_used_twice_fails_the_build() {
    let builder = StreamsBuilder::new("app");
    builder
        .stream("in", StringSerde, I64Serde)
        .split()
        .branch("small", |_, v| *v < 10)
        .branch("small", |_, v| *v < 100)
        .no_default_branch();
    assert_eq!(
        builder.build().err(),
        Some(riffle_processor::TopologyError::DuplicateBranch(
            "small".into()
        ))
    );
}
