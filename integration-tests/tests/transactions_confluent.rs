//! Transactions with confluent-kafka-python 2.x (librdkafka) against a real riffle process:
//! commit and abort per isolation level, consume-transform-produce with
//! `send_offsets_to_transaction`, and zombie fencing.
//!
//! The scripts live in `integration-tests/python/txn_*.py`; each exits non-zero on any
//! mismatch, and [`run_python`] turns that into a panic showing the script's output and the
//! broker log. Kafka's behaviour is the spec.

use riffle_integration_tests::{Broker, run_python};

#[test]
fn confluent_commit_and_abort_per_isolation_level() {
    // Proves three transactions over two partitions, the middle one aborted after its records
    // were acknowledged: read_committed and librdkafka's default isolation level (which is
    // read_committed) see exactly the committed records at their offsets, read_uncommitted
    // sees all of them, and ListOffsets answers the high watermark at every level.
    let broker = Broker::start();
    let output = run_python(
        &broker,
        "txn_confluent_basic.py",
        &["--topic", "confluent-txn"],
    );
    assert!(
        output.contains("committed transactions visible to read_committed"),
        "{output}"
    );
}

#[test]
fn confluent_consume_transform_produce_commits_offsets_with_the_transaction() {
    // Proves send_offsets_to_transaction with a subscribed consumer: the group's committed
    // offset (OffsetFetch through committed()) stays unset while the transaction is open,
    // moves to 10 on commit, stays at 10 when the next round aborts, and a redone round
    // commits 20; the output holds every transformed input exactly once for read_committed,
    // and a new group member resumes at 20.
    let broker = Broker::start_with(&["--group-initial-rebalance-delay-ms", "0"]);
    let output = run_python(
        &broker,
        "txn_confluent_ctp.py",
        &[
            "--input",
            "ctp-in",
            "--output",
            "ctp-out",
            "--group",
            "ctp-group",
        ],
    );
    assert!(
        output.contains("resumed at the committed offset 20"),
        "{output}"
    );
}

#[test]
fn confluent_zombie_producer_is_fenced() {
    // Proves zombie fencing: a second producer with the same transactional.id aborts the
    // first one's open transaction, the first one's commit fails with librdkafka's fatal
    // _FENCED and it takes no new transaction; none of the zombie's records become visible to
    // read_committed, its late records are refused, and an idle zombie's records never reach
    // the log.
    let broker = Broker::start();
    let output = run_python(&broker, "txn_confluent_fencing.py", &["--topic", "fencing"]);
    assert!(
        output.contains("zombies fenced; only the newest producer committed"),
        "{output}"
    );
}
