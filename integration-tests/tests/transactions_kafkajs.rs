//! Transactions with kafkajs 2.2.4 (Node.js) against a real riffle process: its transactional
//! producer (`transaction()`, `send`, `sendOffsets`, `commit`, `abort`) and its consumers, which
//! are read_committed unless `readUncommitted` is set.
//!
//! The script lives in `integration-tests/node/`; it exits non-zero on any mismatch, and
//! [`run_node`] turns that into a panic showing its output and the broker log. Kafka's
//! behaviour is the spec.

use riffle_integration_tests::{Broker, run_node};

#[test]
fn kafkajs_transactions_commit_abort_and_send_offsets() {
    // Proves kafkajs transactions end to end: a default (read_committed) group consumer
    // receives exactly the committed transactions at their offsets and a readUncommitted one
    // also the aborted records; the read_committed consumer waits at an open transaction and
    // receives it once committed; sendOffsets moves the group's committed offset (fetchOffsets)
    // only on commit, and a consumer of that group resumes there.
    let broker = Broker::start_with(&["--group-initial-rebalance-delay-ms", "0"]);
    let output = run_node(
        &broker,
        "kafkajs_transactions.js",
        &["--topic", "kafkajs-txn"],
    );
    assert!(
        output.contains(
            "kafkajs transactions: commit, abort, open and sendOffsets behave as in Kafka"
        ),
        "{output}"
    );
}
