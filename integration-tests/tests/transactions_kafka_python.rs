//! Transactions with kafka-python 3.0 against a real riffle process: its transactional
//! producer and read_committed consumer, and its admin client's ListTransactions,
//! DescribeTransactions and DescribeProducers.
//!
//! kafka-python has had `transactional_id`, `init_transactions`, `begin_transaction`,
//! `send_offsets_to_transaction`, `commit_transaction` and `abort_transaction` since 2.1, so the
//! venv's pinned 3.0.11 is used as it is. The scripts live in `integration-tests/python/`; each
//! exits non-zero on any mismatch. Kafka's behaviour is the spec.

use riffle_integration_tests::{Broker, run_python};

#[test]
fn kafka_python_transactions_commit_abort_and_send_offsets() {
    // Proves kafka-python's transactional producer and consumers: committed records are
    // visible to its read_committed consumer (and to librdkafka's) at their offsets, an
    // aborted transaction's flushed records only to read_uncommitted, end_offsets() answers
    // the high watermark; send_offsets_to_transaction moves the group's committed offset on
    // commit and not on abort.
    let broker = Broker::start_with(&["--group-initial-rebalance-delay-ms", "0"]);
    let output = run_python(&broker, "txn_kafka_python.py", &["--topic", "kp-txn"]);
    assert!(
        output.contains("kafka-python transactions: commit, abort and offsets behave as in Kafka"),
        "{output}"
    );
}

#[test]
fn transaction_admin_apis_describe_an_ongoing_transaction() {
    // Proves ListTransactions, DescribeTransactions and DescribeProducers through kafka-python's
    // admin client: an open transaction over three partitions of two topics is listed and
    // described with its producer id, epoch, timeout, start time and partitions, each
    // partition reports the producer and the transaction's first offset, a read_committed
    // end_offsets() stops there; after the commit it is CompleteCommit with no partitions and
    // nothing is open.
    let broker = Broker::start();
    let output = run_python(&broker, "txn_admin.py", &["--topic", "txn-admin"]);
    assert!(
        output
            .contains("transaction admin APIs describe the ongoing and the committed transaction"),
        "{output}"
    );
}
