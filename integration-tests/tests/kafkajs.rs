//! kafkajs 2.2.4 (Node.js) against a real riffle process: producing, group consuming, admin.
//!
//! The scripts live in `integration-tests/node/`; each exits non-zero on any mismatch, and
//! [`run_node`] turns that into a panic showing the script's output and the broker log. kafkajs
//! always consumes through a group, so every broker runs with no initial rebalance delay.

use riffle_integration_tests::wire::{Compression, first_batch_compression};
use riffle_integration_tests::{Broker, run_node};

/// A broker whose groups rebalance as soon as the first member joins.
fn start_broker() -> Broker {
    Broker::start_with(&["--group-initial-rebalance-delay-ms", "0"])
}

#[test]
fn kafkajs_round_trip_through_a_consumer_group() {
    // Proves kafkajs's default producer (acks -1) and group consumer work end to end: 300
    // messages with keys, headers and timestamps arrive exactly once, in order per partition,
    // intact; autoCommit stores the end offsets, and the same group then resumes with nothing
    // left to read.
    let broker = start_broker();
    let output = run_node(
        &broker,
        "kafkajs_roundtrip.js",
        &["--topic", "kafkajs-roundtrip", "--count", "300"],
    );
    assert!(
        output.contains("first consumer received 300 messages exactly once"),
        "{output}"
    );
    assert!(
        output.contains("second consumer in the same group received nothing"),
        "{output}"
    );
}

#[test]
fn kafkajs_admin_client() {
    // Proves kafkajs's admin calls work: createTopics, listTopics, fetchTopicMetadata,
    // createPartitions, describeConfigs (retention.ms), listGroups and describeGroups around a
    // running consumer group, fetchOffsets of its commits, and deleteTopics.
    let broker = start_broker();
    let output = run_node(&broker, "kafkajs_admin.js", &["--topic", "kafkajs-admin"]);
    assert!(output.contains("deleted kafkajs-admin"), "{output}");
}

#[test]
fn kafkajs_gzip_batches_round_trip() {
    // Proves a kafkajs gzip batch is stored as sent (still gzip on disk) and read back intact.
    let broker = start_broker();
    let topic = "kafkajs-gzip";
    let output = run_node(
        &broker,
        "kafkajs_gzip.js",
        &["--topic", topic, "--count", "200"],
    );
    assert!(output.contains("consumed 200 gzip messages"), "{output}");
    assert_eq!(
        first_batch_compression(&broker.bootstrap(), topic, 0),
        Compression::from_name("gzip"),
        "the first stored batch of {topic} is not the gzip batch kafkajs sent"
    );
}
