//! Transactions with the Rust `rdkafka` crate (librdkafka in-process) against a real riffle
//! process: commit and abort as each isolation level sees them, offsets sent to a transaction,
//! the last stable offset in ListOffsets and Fetch, and the transaction timeout limit.
//!
//! Kafka's behaviour is the spec. Each committed or aborted transaction ends with one control
//! record per partition, so the offsets asserted here count those markers too.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use riffle_integration_tests::clients::{
    CLIENT_TIMEOUT, TransactionalProducer, client_config, committed_offset, create_topic,
    future_producer, isolated_consumer, offsets_and_values, poll_for, poll_until_position,
    read_visible, send_plain, transactional_producer, value_text,
};
use riffle_integration_tests::wire::{self, IsolationLevel, error_code};
use riffle_integration_tests::{Broker, BrokerBuilder};

use IsolationLevel::{ReadCommitted, ReadUncommitted};

#[tokio::test]
async fn commit_and_abort_as_each_isolation_level_sees_them() {
    // Proves the basic transaction cycle with librdkafka: three transactions of 10 records on
    // one partition, the middle one aborted after its records were acknowledged; a
    // read_committed consumer gets exactly the committed 20 at offsets 0-9 and 22-31, a
    // read_uncommitted one all 30 (offsets 10, 21 and 32 are the three markers), and both
    // isolation levels' ListOffsets answer 33 once nothing is open.
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = "rust-txn";
    create_topic(&bootstrap, topic, 1, &[]).await;
    let producer = transactional_producer(&bootstrap, "rust-txn-id", &[]);
    producer
        .init_transactions(CLIENT_TIMEOUT)
        .expect("init_transactions");
    run_transaction(&producer, topic, "first", 10, Outcome::Commit);
    run_transaction(&producer, topic, "aborted", 10, Outcome::Abort);
    run_transaction(&producer, topic, "second", 10, Outcome::Commit);

    let committed = read_visible(&bootstrap, topic, 0, ReadCommitted);
    let expected_committed: Vec<(i64, String)> = labelled_values("first", 10, 0)
        .into_iter()
        .chain(labelled_values("second", 10, 22))
        .collect();
    assert_eq!(
        offsets_and_values(&committed),
        expected_committed,
        "read_committed"
    );
    let everything = read_visible(&bootstrap, topic, 0, ReadUncommitted);
    let expected_everything: Vec<(i64, String)> = labelled_values("first", 10, 0)
        .into_iter()
        .chain(labelled_values("aborted", 10, 11))
        .chain(labelled_values("second", 10, 22))
        .collect();
    assert_eq!(
        offsets_and_values(&everything),
        expected_everything,
        "read_uncommitted"
    );
    for isolation in [ReadCommitted, ReadUncommitted] {
        assert_eq!(
            wire::latest_offset(&bootstrap, topic, 0, isolation),
            33,
            "ListOffsets ({isolation:?}) with no open transaction: 30 records and 3 markers"
        );
    }
}

#[tokio::test]
async fn send_offsets_to_transaction_moves_the_committed_offset_only_on_commit() {
    // Proves consume-transform-produce with librdkafka: a consumer of group rust-ctp (assigned,
    // not subscribed) reads 10 input records, the producer writes 10 outputs and sends the
    // consumer's position (10) to the transaction; OffsetFetch shows no committed offset until
    // the commit (and UNSTABLE_OFFSET_COMMIT when it requires stable offsets) and 10 after
    // it, at both isolation levels. A second round sends 20 and aborts: the committed offset
    // stays 10 and its outputs never become visible.
    let broker = Broker::start_with(&["--group-initial-rebalance-delay-ms", "0"]);
    let bootstrap = broker.bootstrap();
    let (input, output, group) = ("rust-ctp-in", "rust-ctp-out", "rust-ctp");
    create_topic(&bootstrap, input, 1, &[]).await;
    create_topic(&bootstrap, output, 1, &[]).await;
    let plain = future_producer(&bootstrap, &[("acks", "all")]);
    for index in 0..20 {
        let value = format!("input-{index}");
        plain
            .send(
                FutureRecord::<(), _>::to(input)
                    .partition(0)
                    .payload(&value),
                CLIENT_TIMEOUT,
            )
            .await
            .unwrap_or_else(|(error, _)| panic!("{value} not delivered: {error}"));
    }
    let consumer = group_consumer(&bootstrap, group, input);
    let producer = transactional_producer(&bootstrap, "rust-ctp-id", &[]);
    producer
        .init_transactions(CLIENT_TIMEOUT)
        .expect("init_transactions");

    transform_ten(&consumer, &producer, input, output, 10);
    assert_eq!(
        committed_offset(&bootstrap, group, input, 0, ReadUncommitted),
        None,
        "offsets sent to an open transaction must not be committed yet"
    );
    assert_eq!(
        wire::offset_fetch(&bootstrap, group, input, 0, true),
        (-1, error_code::UNSTABLE_OFFSET_COMMIT),
        "OffsetFetch v7 with require_stable while offsets are pending (KIP-447)"
    );
    producer
        .commit_transaction(CLIENT_TIMEOUT)
        .expect("commit round 1");
    assert_eq!(
        wire::offset_fetch(&bootstrap, group, input, 0, true),
        (10, error_code::NONE),
        "OffsetFetch v7 with require_stable after the commit"
    );
    for isolation in [ReadUncommitted, ReadCommitted] {
        assert_eq!(
            committed_offset(&bootstrap, group, input, 0, isolation),
            Some(10),
            "committed offset after the commit, OffsetFetch as a {isolation:?} consumer"
        );
    }

    transform_ten(&consumer, &producer, input, output, 20);
    producer
        .abort_transaction(CLIENT_TIMEOUT)
        .expect("abort round 2");
    for isolation in [ReadUncommitted, ReadCommitted] {
        assert_eq!(
            committed_offset(&bootstrap, group, input, 0, isolation),
            Some(10),
            "an aborted transaction's offsets must not be committed ({isolation:?})"
        );
    }
    let outputs: Vec<String> = read_visible(&bootstrap, output, 0, ReadCommitted)
        .iter()
        .map(value_text)
        .collect();
    let expected: Vec<String> = (0..10).map(|index| format!("output-{index}")).collect();
    assert_eq!(outputs, expected, "read_committed output: round 1 only");
    assert_eq!(
        read_visible(&bootstrap, output, 0, ReadUncommitted).len(),
        20,
        "read_uncommitted output: both rounds"
    );
}

#[tokio::test]
async fn read_committed_offsets_stop_at_the_first_open_transaction() {
    // Proves the last stable offset: with plain records at 0-4, an open transaction at 5-9 and
    // plain records at 10-14, ListOffsets and Fetch at read_committed answer 5 and the high
    // watermark 15 at read_uncommitted; a read_committed consumer gets offsets 0-4 only. After
    // the commit both answer 16 and it gets all 15. A later aborted transaction (16-18) shows
    // up in a read_committed Fetch's aborted_transactions with first offset 16.
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = "rust-lso";
    create_topic(&bootstrap, topic, 1, &[]).await;
    let plain = future_producer(&bootstrap, &[("acks", "all")]);
    send_plain(&plain, topic, "before", 5).await;
    let producer = transactional_producer(&bootstrap, "rust-lso-id", &[]);
    producer
        .init_transactions(CLIENT_TIMEOUT)
        .expect("init_transactions");
    producer.begin_transaction().expect("begin_transaction");
    send_records(&producer, topic, 0, "open", 5);
    producer
        .flush(CLIENT_TIMEOUT)
        .expect("flush the open transaction");
    send_plain(&plain, topic, "after", 5).await;

    assert_stable_offsets(&bootstrap, topic, 5, 15);
    let committed_view = read_visible(&bootstrap, topic, 0, ReadCommitted);
    assert_eq!(
        offsets_and_values(&committed_view),
        labelled_values("before", 5, 0),
        "read_committed below an open transaction"
    );

    producer
        .commit_transaction(CLIENT_TIMEOUT)
        .expect("commit_transaction");
    assert_stable_offsets(&bootstrap, topic, 16, 16);
    let expected: Vec<(i64, String)> = labelled_values("before", 5, 0)
        .into_iter()
        .chain(labelled_values("open", 5, 5))
        .chain(labelled_values("after", 5, 10))
        .collect();
    assert_eq!(
        offsets_and_values(&read_visible(&bootstrap, topic, 0, ReadCommitted)),
        expected,
        "read_committed after the commit"
    );

    run_transaction(&producer, topic, "aborted", 3, Outcome::Abort);
    let state = wire::fetch_transaction_state(&bootstrap, topic, 0, 0, ReadCommitted);
    assert_eq!(
        (state.high_watermark, state.last_stable_offset),
        (20, 20),
        "Fetch after an aborted transaction at 16-18 and its marker at 19: {state:?}"
    );
    let first_offsets: Vec<i64> = state
        .aborted_transactions
        .iter()
        .map(|aborted| aborted.first_offset)
        .collect();
    assert_eq!(
        first_offsets,
        [16],
        "a read_committed Fetch from 0 lists the one aborted transaction: {state:?}"
    );
}

#[tokio::test]
async fn last_stable_offset_follows_the_oldest_open_transaction() {
    // Proves the last stable offset with two interleaved transactions: X writes 0-2, Y 3-5,
    // X 6-7. While X is open the last stable offset stays 0, even after Y commits (marker at
    // 8); when X aborts (marker at 9) it jumps to 10. read_committed then gets Y's 3 records
    // and none of X's on either side of them, also when it starts at offset 6, inside X's
    // range; a read_committed Fetch from 0 or from 6 lists X's transaction (first offset 0) as
    // aborted.
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = "rust-interleaved";
    create_topic(&bootstrap, topic, 1, &[]).await;
    let x = transactional_producer(&bootstrap, "rust-interleaved-x", &[]);
    let y = transactional_producer(&bootstrap, "rust-interleaved-y", &[]);
    for producer in [&x, &y] {
        producer
            .init_transactions(CLIENT_TIMEOUT)
            .expect("init_transactions");
        producer.begin_transaction().expect("begin_transaction");
    }
    for (producer, label, count) in [(&x, "x-early", 3), (&y, "y", 3), (&x, "x-late", 2)] {
        send_records(producer, topic, 0, label, count);
        producer.flush(CLIENT_TIMEOUT).expect("flush");
    }
    assert_stable_offsets(&bootstrap, topic, 0, 8);
    y.commit_transaction(CLIENT_TIMEOUT).expect("commit Y");
    assert_stable_offsets(&bootstrap, topic, 0, 9);
    assert!(
        read_visible(&bootstrap, topic, 0, ReadCommitted).is_empty(),
        "read_committed got records while X, the oldest transaction, is open"
    );
    x.abort_transaction(CLIENT_TIMEOUT).expect("abort X");
    assert_stable_offsets(&bootstrap, topic, 10, 10);

    assert_eq!(
        offsets_and_values(&read_visible(&bootstrap, topic, 0, ReadCommitted)),
        labelled_values("y", 3, 3),
        "read_committed after Y committed and X aborted"
    );
    assert_eq!(
        read_visible(&bootstrap, topic, 0, ReadUncommitted).len(),
        8,
        "read_uncommitted sees all 8 records"
    );
    let consumer = isolated_consumer(&bootstrap, topic, 0, ReadCommitted);
    let mut from_six = TopicPartitionList::new();
    from_six
        .add_partition_offset(topic, 0, Offset::Offset(6))
        .expect("a valid offset");
    consumer.assign(&from_six).expect("assign at offset 6");
    let mut inside = poll_until_position(&consumer, topic, 0, 10, CLIENT_TIMEOUT);
    inside.extend(poll_for(&consumer, Duration::from_millis(500)));
    assert_eq!(
        offsets_and_values(&inside),
        [],
        "read_committed from offset 6, inside X's aborted range"
    );
    for fetch_offset in [0, 6] {
        let state =
            wire::fetch_transaction_state(&bootstrap, topic, 0, fetch_offset, ReadCommitted);
        let first_offsets: Vec<i64> = state
            .aborted_transactions
            .iter()
            .map(|aborted| aborted.first_offset)
            .collect();
        assert_eq!(
            first_offsets,
            [0],
            "read_committed Fetch from {fetch_offset}: X's aborted transaction: {state:?}"
        );
    }
}

#[test]
fn transaction_timeout_above_the_default_maximum_is_rejected_at_init() {
    // Proves the default transaction.max.timeout.ms of 900000: init_transactions with
    // transaction.timeout.ms 900001 fails with the fatal INVALID_TRANSACTION_TIMEOUT, and
    // 900000 is accepted and commits.
    let broker = Broker::start();
    check_timeout_limit(&broker, 900_000);
}

#[test]
fn transaction_timeout_above_the_configured_maximum_is_rejected_at_init() {
    // Proves --transaction-max-timeout-ms: with 5000, init_transactions with
    // transaction.timeout.ms 5001 fails with the fatal INVALID_TRANSACTION_TIMEOUT, and 5000
    // is accepted and commits.
    let broker = BrokerBuilder::default()
        .args(&["--transaction-max-timeout-ms", "5000"])
        .start();
    check_timeout_limit(&broker, 5_000);
}

/// How a test transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Commit,
    Abort,
}

/// Begins a transaction, sends `count` records labelled `label` to partition 0, flushes (so
/// every record is acknowledged and stored) and commits or aborts.
fn run_transaction(
    producer: &TransactionalProducer,
    topic: &str,
    label: &str,
    count: i64,
    end: Outcome,
) {
    producer.begin_transaction().expect("begin_transaction");
    send_records(producer, topic, 0, label, count);
    producer
        .flush(CLIENT_TIMEOUT)
        .unwrap_or_else(|error| panic!("flush {label}: {error}"));
    let result = match end {
        Outcome::Commit => producer.commit_transaction(CLIENT_TIMEOUT),
        Outcome::Abort => producer.abort_transaction(CLIENT_TIMEOUT),
    };
    result.unwrap_or_else(|error| panic!("{end:?} of transaction {label}: {error}"));
}

/// Queues `count` records `label-0`, `label-1`, ... for `topic`/`partition`.
fn send_records(
    producer: &TransactionalProducer,
    topic: &str,
    partition: i32,
    label: &str,
    count: i64,
) {
    for index in 0..count {
        let value = format!("{label}-{index}");
        producer
            .send(
                BaseRecord::<(), _>::to(topic)
                    .partition(partition)
                    .payload(&value),
            )
            .unwrap_or_else(|(error, _)| panic!("librdkafka refused {value}: {error}"));
    }
}

/// `(first_offset + i, "label-i")` for i in 0..count.
fn labelled_values(label: &str, count: i64, first_offset: i64) -> Vec<(i64, String)> {
    (0..count)
        .map(|index| (first_offset + index, format!("{label}-{index}")))
        .collect()
}

/// Checks the latest offsets at both isolation levels through ListOffsets (raw and through
/// librdkafka's watermarks) and Fetch.
fn assert_stable_offsets(bootstrap: &str, topic: &str, stable: i64, high_watermark: i64) {
    assert_eq!(
        wire::latest_offset(bootstrap, topic, 0, ReadCommitted),
        stable,
        "ListOffsets v2 read_committed: the last stable offset"
    );
    assert_eq!(
        wire::latest_offset(bootstrap, topic, 0, ReadUncommitted),
        high_watermark,
        "ListOffsets v2 read_uncommitted: the high watermark"
    );
    let state = wire::fetch_transaction_state(bootstrap, topic, 0, 0, ReadCommitted);
    assert_eq!(
        (state.high_watermark, state.last_stable_offset),
        (high_watermark, stable),
        "Fetch v4 read_committed (high watermark, last stable offset): {state:?}"
    );
    for (isolation, expected) in [(ReadCommitted, stable), (ReadUncommitted, high_watermark)] {
        let consumer: BaseConsumer = client_config(bootstrap)
            .set("group.id", "riffle-it-watermarks")
            .set("isolation.level", isolation.config_value())
            .create()
            .expect("create a consumer");
        let (_, high) = consumer
            .fetch_watermarks(topic, 0, CLIENT_TIMEOUT)
            .unwrap_or_else(|error| panic!("watermarks ({isolation:?}): {error}"));
        assert_eq!(
            high, expected,
            "librdkafka's watermark query as a {isolation:?} consumer"
        );
    }
}

/// A consumer with `group.id` = `group`, assigned to `topic`/0 from the start (it does not join
/// the group: its group metadata has generation -1, which TxnOffsetCommit accepts for a group
/// without members).
fn group_consumer(bootstrap: &str, group: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .expect("create a consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("a valid offset");
    consumer.assign(&assignment).expect("assign");
    consumer
}

/// One consume-transform-produce round: reads input records until the position is `end`,
/// begins a transaction, writes `output-N` for each `input-N`, and sends the position to the
/// transaction, then flushes. The caller commits or aborts.
fn transform_ten(
    consumer: &BaseConsumer,
    producer: &TransactionalProducer,
    input: &str,
    output: &str,
    end: i64,
) {
    let records = poll_until_position(consumer, input, 0, end, CLIENT_TIMEOUT);
    assert_eq!(records.len(), 10, "one round reads 10 input records");
    producer.begin_transaction().expect("begin_transaction");
    for record in &records {
        let value = value_text(record).replace("input", "output");
        producer
            .send(BaseRecord::<(), _>::to(output).partition(0).payload(&value))
            .unwrap_or_else(|(error, _)| panic!("librdkafka refused {value}: {error}"));
    }
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(input, 0, Offset::Offset(end))
        .expect("a valid offset");
    let metadata = consumer
        .group_metadata()
        .expect("a consumer with a group.id has group metadata");
    producer
        .send_offsets_to_transaction(&offsets, &metadata, CLIENT_TIMEOUT)
        .expect("send_offsets_to_transaction");
    // Every output acknowledged, so an aborted round's outputs are in the log (abort purges
    // what librdkafka still holds).
    producer.flush(CLIENT_TIMEOUT).expect("flush the outputs");
}

/// `maximum + 1` fails init_transactions with INVALID_TRANSACTION_TIMEOUT; `maximum` works.
fn check_timeout_limit(broker: &Broker, maximum: u64) {
    let bootstrap = broker.bootstrap();
    let too_long = (maximum + 1).to_string();
    let producer = transactional_producer(
        &bootstrap,
        "rust-timeout-too-long",
        &[("transaction.timeout.ms", &too_long)],
    );
    let error = match producer.init_transactions(CLIENT_TIMEOUT) {
        Ok(()) => panic!(
            "init_transactions with transaction.timeout.ms {too_long} succeeded; the broker's \
             maximum is {maximum}, so Kafka answers INVALID_TRANSACTION_TIMEOUT"
        ),
        Err(error) => error,
    };
    let KafkaError::Transaction(ref rdkafka_error) = error else {
        panic!("init_transactions failed with {error:?}, expected a transaction error");
    };
    assert_eq!(
        rdkafka_error.code(),
        RDKafkaErrorCode::InvalidTransactionTimeout,
        "init_transactions with {too_long} ms: {error}"
    );
    assert!(
        rdkafka_error.is_fatal(),
        "librdkafka treats INVALID_TRANSACTION_TIMEOUT as fatal: {error}"
    );
    drop(producer);

    let just_right = maximum.to_string();
    let producer = transactional_producer(
        &bootstrap,
        "rust-timeout-maximum",
        &[("transaction.timeout.ms", &just_right)],
    );
    producer
        .init_transactions(CLIENT_TIMEOUT)
        .unwrap_or_else(|error| {
            panic!("init_transactions with transaction.timeout.ms {just_right}: {error}")
        });
    run_transaction(&producer, "rust-timeout", "limit", 1, Outcome::Commit);
}
