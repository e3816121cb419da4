//! kafka-python 3.0 against a real riffle process: the quickstart and every codec.
//!
//! The scripts live in `integration-tests/python/`; each exits non-zero on any mismatch, and
//! [`run_python`] turns that into a panic showing the script's output and the broker log.

use riffle_integration_tests::wire::{Compression, first_batch_compression};
use riffle_integration_tests::{Broker, run_python};

#[test]
fn quickstart_round_trips_one_thousand_messages() {
    // Proves the headline example works as a user writes it: kafka-python's default
    // producer (idempotent, acks=all) sends 1,000 messages with keys, values, headers and
    // timestamps to an auto-created topic, and a group-less `KafkaConsumer('topic_name', ...)`
    // reads every one back exactly once, in order, intact.
    let broker = Broker::start();
    let output = run_python(
        &broker,
        "quickstart.py",
        &["--topic", "topic_name", "--count", "1000"],
    );
    assert!(output.contains("consumed 1000 messages"), "{output}");
}

#[test]
fn gzip_batches_round_trip() {
    // Proves kafka-python's gzip batches are stored as sent and read back intact.
    round_trip_with_codec("gzip");
}

#[test]
fn snappy_batches_round_trip() {
    // Proves kafka-python's snappy batches (xerial framing) are stored as sent and read back.
    round_trip_with_codec("snappy");
}

#[test]
fn lz4_batches_round_trip() {
    // Proves kafka-python's lz4 batches are stored as sent and read back intact.
    round_trip_with_codec("lz4");
}

#[test]
fn zstd_batches_round_trip() {
    // Proves kafka-python's zstd batches are stored as sent and read back intact (kafka-python
    // only uses zstd when the broker's ApiVersions make it look like Kafka 2.1+).
    round_trip_with_codec("zstd");
}

/// Produces and consumes with `codec`, then checks the stored batch really carries that codec.
fn round_trip_with_codec(codec: &str) {
    let broker = Broker::start();
    let topic = format!("kafka-python-{codec}");
    run_python(
        &broker,
        "kafka_python_compression.py",
        &["--topic", &topic, "--codec", codec],
    );
    assert_eq!(
        first_batch_compression(&broker.bootstrap(), &topic, 0),
        Compression::from_name(codec),
        "the first stored batch of {topic} does not carry the codec kafka-python was asked for"
    );
}
