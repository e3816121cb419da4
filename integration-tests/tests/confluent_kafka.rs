//! confluent-kafka-python 2.x (librdkafka) against a real riffle process: acks, codecs,
//! idempotence, where an assigned consumer starts, and several partitions.
//!
//! Consumers here only `assign()` partitions, to test where an assigned consumer starts;
//! group consumers (`subscribe()`, commits) are tested in `groups.rs`.

use riffle_integration_tests::wire::{Compression, first_batch_compression};
use riffle_integration_tests::{Broker, run_python};

#[test]
fn acks_0_round_trips_without_responses() {
    // Proves acks=0 works: the broker sends no Produce response, the producer's flush still
    // finishes, and every message is stored and readable.
    round_trip(&["--acks", "0"]);
}

#[test]
fn acks_1_round_trips() {
    // Proves acks=1 produce answers with consecutive offsets and every message reads back.
    round_trip(&["--acks", "1"]);
}

#[test]
fn acks_all_round_trips() {
    // Proves acks=all produce answers with consecutive offsets and every message reads back.
    round_trip(&["--acks", "all"]);
}

#[test]
fn uncompressed_batches_are_stored_uncompressed() {
    // Proves the codec probe itself: compression.type=none stores codec 0.
    round_trip_with_codec("none");
}

#[test]
fn gzip_batches_round_trip() {
    // Proves librdkafka's gzip batches are stored as sent and read back intact.
    round_trip_with_codec("gzip");
}

#[test]
fn snappy_batches_round_trip() {
    // Proves librdkafka's snappy batches are stored as sent and read back intact.
    round_trip_with_codec("snappy");
}

#[test]
fn lz4_batches_round_trip() {
    // Proves librdkafka's lz4 batches are stored as sent and read back intact.
    round_trip_with_codec("lz4");
}

#[test]
fn zstd_batches_round_trip() {
    // Proves librdkafka's zstd batches are stored as sent and read back intact; librdkafka
    // silently sends uncompressed unless the broker advertises Produce 7+ and Fetch 10+.
    round_trip_with_codec("zstd");
}

#[test]
fn idempotent_producer_gets_an_id_and_round_trips() {
    // Proves enable.idempotence works: InitProducerId assigns a producer id, sequenced batches
    // are accepted once each, and every message reads back with no duplicate.
    let output = round_trip(&["--acks", "all", "--idempotent"]);
    assert!(output.contains("idempotent producer id"), "{output}");
}

#[test]
fn assign_at_latest_sees_only_new_messages() {
    // Proves OFFSET_END resolves to the high watermark: a consumer assigned there sees none of
    // the 100 old messages and exactly the 50 produced after it started fetching.
    let broker = Broker::start();
    run_python(
        &broker,
        "confluent_offsets.py",
        &["--topic", "from-latest", "--mode", "latest"],
    );
}

#[test]
fn assign_at_timestamp_starts_at_first_later_message() {
    // Proves ListOffsets by timestamp: offsets_for_times returns the first message whose
    // CreateTime is at or after the target (-1 past the end), and consuming from there starts
    // with that message.
    let broker = Broker::start();
    run_python(
        &broker,
        "confluent_offsets.py",
        &["--topic", "from-timestamp", "--mode", "timestamp"],
    );
}

#[test]
fn keyed_messages_spread_over_four_partitions_in_order() {
    // Proves a 4-partition topic from CreateTopics: keyed messages reach every partition, each
    // key always the same one, and each partition reads back in produce order.
    let broker = Broker::start();
    let output = run_python(
        &broker,
        "confluent_partitions.py",
        &[
            "--topic",
            "four-partitions",
            "--partitions",
            "4",
            "--count",
            "400",
        ],
    );
    assert!(
        output.contains("read back 400 messages over 4 partitions"),
        "{output}"
    );
}

/// Runs `confluent_roundtrip.py` with `args` on a fresh broker; returns its output.
fn round_trip(args: &[&str]) -> String {
    let broker = Broker::start();
    let mut all_args = vec!["--topic", "round-trip"];
    all_args.extend_from_slice(args);
    run_python(&broker, "confluent_roundtrip.py", &all_args)
}

/// Round-trips with `compression.type=codec`, then checks the stored batch's codec.
fn round_trip_with_codec(codec: &str) {
    let broker = Broker::start();
    let topic = format!("confluent-{codec}");
    run_python(
        &broker,
        "confluent_roundtrip.py",
        &["--topic", &topic, "--compression", codec],
    );
    assert_eq!(
        first_batch_compression(&broker.bootstrap(), &topic, 0),
        Compression::from_name(codec),
        "the first stored batch of {topic} does not carry the codec librdkafka was asked for"
    );
}
