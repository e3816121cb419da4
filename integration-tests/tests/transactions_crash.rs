//! Transactions across broker crashes (SIGKILL, then a restart on the same data directory) and
//! transactions nobody finishes, with the Rust `rdkafka` crate against a real riffle process.
//!
//! Kafka's behaviour is the spec: a commit that returned is never lost, an aborted or
//! abandoned transaction never becomes visible to read_committed, every transaction is all or
//! nothing, and nothing stays open for ever: a new producer with the same transactional id
//! aborts what its predecessor left open, and the broker aborts a transaction that outlives its
//! `transaction.timeout.ms` (checked every `--transaction-abort-timed-out-interval-ms`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use riffle_integration_tests::BrokerBuilder;
use riffle_integration_tests::clients::{
    CLIENT_TIMEOUT, TransactionalProducer, client_config, committed_offset, create_topic,
    future_producer, isolated_consumer, offsets_and_values, poll_for, poll_until_position,
    read_visible, send_plain, transactional_producer, value_text,
};
use riffle_integration_tests::wire::{self, IsolationLevel};

use IsolationLevel::{ReadCommitted, ReadUncommitted};

/// Broker flags: look for timed-out transactions every 500 ms instead of every 10 s.
const BROKER_ARGS: &[&str] = &["--transaction-abort-timed-out-interval-ms", "500"];

/// The short `transaction.timeout.ms` of the timeout tests.
const SHORT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(3);

/// Client settings that let librdkafka find a restarted broker quickly.
const RECONNECT_SETTINGS: &[(&str, &str)] = &[
    ("reconnect.backoff.ms", "50"),
    ("reconnect.backoff.max.ms", "500"),
];

#[tokio::test]
async fn sigkill_mid_transaction_then_a_new_producer_aborts_it() {
    // Proves an open transaction survives a crash only to be aborted: after a committed
    // transaction, 5 records per partition of an open one are acknowledged on both partitions
    // and the broker is SIGKILLed and restarted; a new producer with the same transactional id
    // initializes (aborting the open transaction), the old producer's commit then fails as
    // fenced, and the new producer commits 5 more per partition. read_committed sees the first
    // and last transactions and moves past the aborted one; read_uncommitted sees all three.
    let mut broker = BrokerBuilder::default().args(BROKER_ARGS).start();
    let bootstrap = broker.bootstrap();
    let topic = "crash-open";
    create_topic(&bootstrap, topic, 2, &[]).await;
    let old = transactional_producer(&bootstrap, "crash-open-id", RECONNECT_SETTINGS);
    old.init_transactions(CLIENT_TIMEOUT)
        .expect("init_transactions");
    old.begin_transaction().expect("begin_transaction");
    send_to_both_partitions(&old, topic, "committed", 5);
    old.commit_transaction(CLIENT_TIMEOUT)
        .expect("commit the first transaction");
    old.begin_transaction().expect("begin the open transaction");
    send_to_both_partitions(&old, topic, "open", 5);
    old.flush(CLIENT_TIMEOUT)
        .expect("every record of the open transaction acknowledged");

    broker.kill();
    broker.restart();

    let new = transactional_producer(&bootstrap, "crash-open-id", RECONNECT_SETTINGS);
    new.init_transactions(CLIENT_TIMEOUT).expect(
        "init_transactions of a new producer with the same id after the restart (Kafka aborts \
         the open transaction and bumps the epoch)",
    );
    assert_fenced(
        old.commit_transaction(CLIENT_TIMEOUT),
        "the old producer's commit",
    );
    new.begin_transaction().expect("begin_transaction");
    send_to_both_partitions(&new, topic, "later", 5);
    new.commit_transaction(CLIENT_TIMEOUT)
        .expect("the new producer's commit");

    for partition in 0..2 {
        // committed 0-4, marker 5, open 6-10, abort marker 11, later 12-16, marker 17.
        let stable = wait_until_stable(&bootstrap, topic, partition, 18);
        assert_eq!(stable, 18, "{topic}/{partition}: last stable offset");
        let committed = read_visible(&bootstrap, topic, partition, ReadCommitted);
        let expected: Vec<(i64, String)> = labelled(partition, "committed", 0, 0..5)
            .into_iter()
            .chain(labelled(partition, "later", 12, 0..5))
            .collect();
        assert_eq!(
            offsets_and_values(&committed),
            expected,
            "{topic}/{partition} read_committed"
        );
        let everything = read_visible(&bootstrap, topic, partition, ReadUncommitted);
        let expected: Vec<(i64, String)> = labelled(partition, "committed", 0, 0..5)
            .into_iter()
            .chain(labelled(partition, "open", 6, 0..5))
            .chain(labelled(partition, "later", 12, 0..5))
            .collect();
        assert_eq!(
            offsets_and_values(&everything),
            expected,
            "{topic}/{partition} read_uncommitted"
        );
    }
}

#[tokio::test]
async fn open_transaction_survives_restarts_and_its_producer_commits_it() {
    // Proves an open transaction outlives a restart as Kafka keeps it: after a committed
    // transaction (0-1, marker 2), 3 records of an open one (3-5) are acknowledged and the
    // broker stops gracefully (SIGTERM) and restarts: read_committed still ends at 3 and the
    // same producer commits (marker 6). Then 3 more (7-9) are left open across a SIGKILL:
    // read_committed ends at 7 and the producer commits again (marker 10). Each time
    // read_committed then sees every committed record.
    let mut broker = BrokerBuilder::default().args(BROKER_ARGS).start();
    let bootstrap = broker.bootstrap();
    let topic = "restart-open";
    create_topic(&bootstrap, topic, 1, &[]).await;
    let producer = transactional_producer(&bootstrap, "restart-open-id", RECONNECT_SETTINGS);
    producer
        .init_transactions(CLIENT_TIMEOUT)
        .expect("init_transactions");
    producer.begin_transaction().expect("begin_transaction");
    send_records(&producer, topic, 0, "first", 0..2);
    producer
        .commit_transaction(CLIENT_TIMEOUT)
        .expect("commit the first transaction");
    let mut expected = labelled(0, "first", 0, 0..2);
    for (label, first_offset, crash) in [("open", 3, false), ("second", 7, true)] {
        producer.begin_transaction().expect("begin_transaction");
        send_records(&producer, topic, 0, label, 0..3);
        producer
            .flush(CLIENT_TIMEOUT)
            .expect("the open transaction's records acknowledged");
        if crash {
            broker.kill();
        } else {
            broker.stop();
        }
        broker.restart();
        let how = if crash { "SIGKILL" } else { "graceful stop" };
        assert_eq!(
            (
                wire::latest_offset(&bootstrap, topic, 0, ReadCommitted),
                wire::latest_offset(&bootstrap, topic, 0, ReadUncommitted)
            ),
            (first_offset, first_offset + 3),
            "(last stable offset, high watermark) after a {how} with {label} open"
        );
        producer
            .commit_transaction(CLIENT_TIMEOUT)
            .unwrap_or_else(|error| panic!("commit {label} after a {how}: {error}"));
        expected.extend(labelled(0, label, first_offset, 0..3));
        wait_until_stable(&bootstrap, topic, 0, first_offset + 4);
        assert_eq!(
            offsets_and_values(&read_visible(&bootstrap, topic, 0, ReadCommitted)),
            expected,
            "read_committed after {label} was committed across a {how}"
        );
    }
}

#[tokio::test]
async fn sigkill_mid_transaction_with_no_producer_left_is_aborted_after_its_timeout() {
    // Proves a restarted broker still enforces transaction.timeout.ms: a producer with a 3 s
    // timeout leaves 5 acknowledged records in an open transaction and falls idle, the broker
    // is SIGKILLed and restarted, 3 plain records follow; within 15 s of the restart the
    // transaction is aborted and a read_committed consumer moves past it to the high
    // watermark (9: 5 open records, 3 plain ones, 1 marker), getting exactly the 3 plain
    // records.
    let mut broker = BrokerBuilder::default().args(BROKER_ARGS).start();
    let bootstrap = broker.bootstrap();
    let topic = "crash-abandoned";
    create_topic(&bootstrap, topic, 1, &[]).await;
    let timeout_ms = SHORT_TRANSACTION_TIMEOUT.as_millis().to_string();
    let producer = transactional_producer(
        &bootstrap,
        "crash-abandoned-id",
        &[("transaction.timeout.ms", &timeout_ms)],
    );
    producer
        .init_transactions(CLIENT_TIMEOUT)
        .expect("init_transactions");
    producer.begin_transaction().expect("begin_transaction");
    send_records(&producer, topic, 0, "open", 0..5);
    producer
        .flush(CLIENT_TIMEOUT)
        .expect("the open transaction's records acknowledged");
    // The producer stays alive but idle: nothing but the timeout may end its transaction.

    broker.kill();
    broker.restart();
    let restarted = Instant::now();
    send_plain(
        &future_producer(&bootstrap, &[("acks", "all")]),
        topic,
        "plain",
        3,
    )
    .await;

    let consumer = isolated_consumer(&bootstrap, topic, 0, ReadCommitted);
    // open 0-4, the 3 plain records and the abort marker in either order: 9 offsets in all.
    let mut messages = poll_until_position(&consumer, topic, 0, 9, Duration::from_secs(15));
    println!(
        "read_committed reached offset 9 {:.1?} after the restart",
        restarted.elapsed()
    );
    messages.extend(poll_for(&consumer, Duration::from_millis(500)));
    let values: Vec<String> = messages.iter().map(value_text).collect();
    assert_eq!(
        values,
        ["plain-0", "plain-1", "plain-2"],
        "read_committed after the abandoned transaction was aborted"
    );
    drop(producer);
}

#[tokio::test]
async fn open_transaction_is_aborted_after_its_timeout_and_readers_move_past_it() {
    // Proves the broker aborts a transaction that outlives its transaction.timeout.ms (3 s)
    // with the broker up, not before and within a few seconds after: 5 open records at 0-4
    // and 3 plain records at 5-7; a read_committed consumer gets nothing and ListOffsets
    // answers 0 while the transaction is younger than 2.5 s; between 3 s and 8 s after it began
    // the consumer moves past it and gets exactly the 3 plain records; the producer's late
    // commit fails.
    let broker = BrokerBuilder::default().args(BROKER_ARGS).start();
    let bootstrap = broker.bootstrap();
    let topic = "timed-out";
    create_topic(&bootstrap, topic, 1, &[]).await;
    let timeout_ms = SHORT_TRANSACTION_TIMEOUT.as_millis().to_string();
    let producer = transactional_producer(
        &bootstrap,
        "timed-out-id",
        &[("transaction.timeout.ms", &timeout_ms)],
    );
    producer
        .init_transactions(CLIENT_TIMEOUT)
        .expect("init_transactions");
    let began = Instant::now();
    producer.begin_transaction().expect("begin_transaction");
    send_records(&producer, topic, 0, "open", 0..5);
    producer
        .flush(CLIENT_TIMEOUT)
        .expect("the open transaction's records acknowledged");
    send_plain(
        &future_producer(&bootstrap, &[("acks", "all")]),
        topic,
        "plain",
        3,
    )
    .await;

    let consumer = isolated_consumer(&bootstrap, topic, 0, ReadCommitted);
    let early_until = began + Duration::from_millis(2500);
    let early = poll_for(
        &consumer,
        early_until.saturating_duration_since(Instant::now()),
    );
    assert!(
        early.is_empty(),
        "read_committed got {} records while the transaction was open",
        early.len()
    );
    assert_eq!(
        wire::latest_offset(&bootstrap, topic, 0, ReadCommitted),
        0,
        "ListOffsets read_committed {:.1?} after the transaction began (timeout {:?})",
        began.elapsed(),
        SHORT_TRANSACTION_TIMEOUT
    );
    let mut messages = poll_until_position(&consumer, topic, 0, 9, Duration::from_secs(15));
    let aborted_after = began.elapsed();
    println!("the timed-out transaction was aborted {aborted_after:.2?} after it began");
    assert!(
        aborted_after >= SHORT_TRANSACTION_TIMEOUT - Duration::from_millis(100),
        "the transaction was aborted {aborted_after:.2?} after it began, before its \
         transaction.timeout.ms of {SHORT_TRANSACTION_TIMEOUT:?}"
    );
    assert!(
        aborted_after <= SHORT_TRANSACTION_TIMEOUT + Duration::from_secs(5),
        "the transaction was aborted only {aborted_after:.2?} after it began (timeout \
         {SHORT_TRANSACTION_TIMEOUT:?}, checked every 500 ms)"
    );
    messages.extend(poll_for(&consumer, Duration::from_millis(500)));
    assert_eq!(
        offsets_and_values(&messages),
        [(5, "plain-0"), (6, "plain-1"), (7, "plain-2")]
            .map(|(offset, value)| (offset, value.to_owned())),
        "read_committed after the timed-out transaction was aborted"
    );
    let late_commit = producer.commit_transaction(CLIENT_TIMEOUT);
    println!("the late commit answered {late_commit:?}");
    assert!(
        late_commit.is_err(),
        "commit_transaction succeeded after the broker aborted the transaction"
    );
    assert_eq!(
        read_visible(&bootstrap, topic, 0, ReadCommitted).len(),
        3,
        "read_committed after the late commit attempt"
    );
}

#[tokio::test]
async fn sigkill_right_after_commit_returns_loses_nothing() {
    // Proves a commit that returned is durable and an abort stays an abort: three times, a
    // transaction of 5 records per partition is aborted (after its records were acknowledged),
    // the next one commits, and the broker is SIGKILLed the moment commit_transaction returns
    // and restarted; each time the last stable offset reaches the high watermark,
    // read_committed sees every committed record and no aborted one, and the same producer
    // goes on (the coordinator kept its producer id and epoch).
    let mut broker = BrokerBuilder::default().args(BROKER_ARGS).start();
    let bootstrap = broker.bootstrap();
    let topic = "crash-commit";
    create_topic(&bootstrap, topic, 2, &[]).await;
    let producer = transactional_producer(&bootstrap, "crash-commit-id", RECONNECT_SETTINGS);
    producer
        .init_transactions(CLIENT_TIMEOUT)
        .expect("init_transactions");
    for round in 0..3 {
        let label = format!("round{round}");
        producer.begin_transaction().expect("begin_transaction");
        send_to_both_partitions(&producer, topic, &format!("aborted{round}"), 5);
        producer
            .flush(CLIENT_TIMEOUT)
            .expect("flush before the abort");
        producer
            .abort_transaction(CLIENT_TIMEOUT)
            .unwrap_or_else(|error| panic!("abort before {label}: {error}"));
        producer.begin_transaction().expect("begin_transaction");
        send_to_both_partitions(&producer, topic, &label, 5);
        producer
            .commit_transaction(CLIENT_TIMEOUT)
            .unwrap_or_else(|error| panic!("commit {label}: {error}"));
        broker.kill();
        broker.restart();
        for partition in 0..2 {
            // Each round adds two transactions of 5 records and a marker to each partition.
            let end = 12 * (round + 1);
            wait_until_stable(&bootstrap, topic, partition, end);
            let values: Vec<String> = read_visible(&bootstrap, topic, partition, ReadCommitted)
                .iter()
                .map(value_text)
                .collect();
            let expected: Vec<String> = (0..=round)
                .flat_map(|done| {
                    labelled(partition, &format!("round{done}"), 0, 0..5)
                        .into_iter()
                        .map(|(_, value)| value)
                })
                .collect();
            assert_eq!(
                values, expected,
                "{topic}/{partition} read_committed after the kill that followed {label}'s commit"
            );
        }
    }
}

#[tokio::test]
async fn sigkill_keeps_committed_transactional_offsets_and_drops_pending_ones() {
    // Proves offsets sent to transactions survive a crash as Kafka keeps them: group
    // crash-offsets commits offset 5 in a transaction; a second transaction sends offset 10
    // and is left open; after a SIGKILL and restart OffsetFetch still answers 5, a new
    // producer with the same transactional id aborts the open transaction and the answer
    // stays 5 at both isolation levels (a read_committed consumer is not kept waiting); the
    // new producer commits 15, which survives another SIGKILL.
    let mut broker = BrokerBuilder::default().args(BROKER_ARGS).start();
    let bootstrap = broker.bootstrap();
    let (topic, group) = ("crash-offsets-in", "crash-offsets");
    create_topic(&bootstrap, topic, 1, &[]).await;
    let old = transactional_producer(&bootstrap, "crash-offsets-id", RECONNECT_SETTINGS);
    old.init_transactions(CLIENT_TIMEOUT)
        .expect("init_transactions");
    commit_offset_in_transaction(&bootstrap, &old, group, topic, 5);
    old.begin_transaction().expect("begin_transaction");
    send_group_offset(&bootstrap, &old, group, topic, 10);

    broker.kill();
    broker.restart();
    assert_eq!(
        committed_offset(&bootstrap, group, topic, 0, ReadUncommitted),
        Some(5),
        "after the restart, with offset 10 pending in an open transaction"
    );
    let new = transactional_producer(&bootstrap, "crash-offsets-id", RECONNECT_SETTINGS);
    new.init_transactions(CLIENT_TIMEOUT)
        .expect("init_transactions of a new producer after the restart");
    for isolation in [ReadUncommitted, ReadCommitted] {
        assert_eq!(
            committed_offset(&bootstrap, group, topic, 0, isolation),
            Some(5),
            "after the new producer aborted the open transaction ({isolation:?})"
        );
    }
    commit_offset_in_transaction(&bootstrap, &new, group, topic, 15);
    broker.kill();
    broker.restart();
    for isolation in [ReadUncommitted, ReadCommitted] {
        assert_eq!(
            committed_offset(&bootstrap, group, topic, 0, isolation),
            Some(15),
            "a transactional offset commit after a SIGKILL ({isolation:?})"
        );
    }
}

/// Runs a transaction that only sends `offset` for `group` and commits it.
fn commit_offset_in_transaction(
    bootstrap: &str,
    producer: &TransactionalProducer,
    group: &str,
    topic: &str,
    offset: i64,
) {
    producer.begin_transaction().expect("begin_transaction");
    send_group_offset(bootstrap, producer, group, topic, offset);
    producer
        .commit_transaction(CLIENT_TIMEOUT)
        .unwrap_or_else(|error| panic!("commit of offset {offset}: {error}"));
}

/// Sends `offset` for `group` on `topic`/0 to the open transaction, with the metadata of a
/// consumer that has the group id but does not join (generation -1).
fn send_group_offset(
    bootstrap: &str,
    producer: &TransactionalProducer,
    group: &str,
    topic: &str,
    offset: i64,
) {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create a consumer");
    let metadata = consumer
        .group_metadata()
        .expect("a consumer with a group.id has group metadata");
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(topic, 0, Offset::Offset(offset))
        .expect("a valid offset");
    producer
        .send_offsets_to_transaction(&offsets, &metadata, CLIENT_TIMEOUT)
        .unwrap_or_else(|error| panic!("send_offsets_to_transaction {offset}: {error}"));
}

/// Records each transaction of the loop test sends.
const RECORDS_PER_TRANSACTION: usize = 5;
/// Committed transactions between two kills in the loop test.
const COMMITS_BETWEEN_KILLS: usize = 15;

#[tokio::test]
async fn sigkill_while_transactions_commit_in_a_loop_keeps_each_all_or_nothing() {
    // Proves atomicity and durability under crashes: a producer thread runs transactions of 5
    // records over 2 partitions back to back, aborting every third one after its records were
    // acknowledged; the broker is SIGKILLed three times (just as a commit_transaction starts,
    // just as an abort_transaction starts, and at an arbitrary moment) and restarted. Every
    // transaction whose commit returned is fully visible to read_committed, every one whose
    // abort returned is invisible, the ones cut off by a fatal error are all or nothing, no
    // record is visible twice, and nothing is left open (last stable offset = high watermark).
    let mut broker = BrokerBuilder::default().args(BROKER_ARGS).start();
    let bootstrap = broker.bootstrap();
    let topic = "crash-loop";
    create_topic(&bootstrap, topic, 2, &[]).await;
    let worker = LoopWorker::start(&bootstrap, topic);

    for (round, kill_at) in [Some(Ending::Commit), Some(Ending::Abort), None]
        .into_iter()
        .enumerate()
    {
        worker.wait_for_commits((round + 1) * COMMITS_BETWEEN_KILLS);
        match kill_at {
            Some(ending) => {
                let transaction = worker.next_ending(ending);
                thread::sleep(jitter(Duration::from_millis(3)));
                broker.kill();
                println!("killed as transaction {transaction} started its {ending:?}");
            }
            None => {
                thread::sleep(jitter(Duration::from_millis(20)));
                broker.kill();
            }
        }
        broker.restart();
    }
    worker.wait_for_commits(4 * COMMITS_BETWEEN_KILLS);
    let outcomes = worker.stop();
    let counts = count_by(&outcomes);
    println!("transaction outcomes: {counts:?}");

    let mut visible: BTreeMap<usize, usize> = BTreeMap::new();
    for partition in 0..2 {
        wait_until_stable(&bootstrap, topic, partition, 1);
        for message in read_visible(&bootstrap, topic, partition, ReadCommitted) {
            let (transaction, _) = parse_loop_value(&value_text(&message));
            *visible.entry(transaction).or_default() += 1;
        }
    }
    check_loop_outcomes(&outcomes, &visible);
}

/// How the loop worker means to end a transaction: every third one is aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Commit,
    Abort,
}

/// What the loop worker knows about one of its transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum LoopOutcome {
    /// commit_transaction returned Ok.
    Committed,
    /// abort_transaction returned Ok.
    Aborted,
    /// A fatal error (or a failed abort) ended the producer: either outcome is allowed.
    Unknown,
}

/// The producer thread of the loop test and what it shares with the test.
struct LoopWorker {
    stop: Arc<AtomicBool>,
    committed_count: Arc<AtomicUsize>,
    endings: mpsc::Receiver<(usize, Ending)>,
    thread: thread::JoinHandle<Vec<LoopOutcome>>,
}

impl LoopWorker {
    fn start(bootstrap: &str, topic: &str) -> LoopWorker {
        let stop = Arc::new(AtomicBool::new(false));
        let committed_count = Arc::new(AtomicUsize::new(0));
        let (sender, endings) = mpsc::channel();
        let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
        let thread = {
            let (stop, committed_count) = (Arc::clone(&stop), Arc::clone(&committed_count));
            thread::spawn(move || run_loop(&bootstrap, &topic, &stop, &committed_count, &sender))
        };
        LoopWorker {
            stop,
            committed_count,
            endings,
            thread,
        }
    }

    /// Waits until `count` transactions committed in all; panics after 60 s.
    fn wait_for_commits(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.committed_count.load(Ordering::SeqCst) < count {
            assert!(
                !self.thread.is_finished(),
                "the producer thread ended early (it panicked?)"
            );
            assert!(
                Instant::now() < deadline,
                "only {} of {count} transactions committed within 60 s",
                self.committed_count.load(Ordering::SeqCst)
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the next transaction to start ending with `ending`; returns its number.
    fn next_ending(&self, ending: Ending) -> usize {
        while self.endings.try_recv().is_ok() {}
        loop {
            let (transaction, next) = self
                .endings
                .recv_timeout(CLIENT_TIMEOUT)
                .expect("the producer thread ends another transaction");
            if next == ending {
                return transaction;
            }
        }
    }

    /// Stops the thread after its current transaction and returns every outcome.
    fn stop(self) -> Vec<LoopOutcome> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

/// The producer thread: transaction after transaction until `stop`; outcome `n` is
/// transaction `n`'s. A producer that failed fatally is replaced by a new one with the same
/// transactional id, whose init_transactions aborts whatever the old one left open.
fn run_loop(
    bootstrap: &str,
    topic: &str,
    stop: &AtomicBool,
    committed_count: &AtomicUsize,
    endings: &mpsc::Sender<(usize, Ending)>,
) -> Vec<LoopOutcome> {
    let mut producer = new_loop_producer(bootstrap);
    let mut outcomes = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let transaction = outcomes.len();
        let outcome = run_loop_transaction(&producer, topic, transaction, endings);
        if outcome == LoopOutcome::Committed {
            committed_count.fetch_add(1, Ordering::SeqCst);
        }
        if outcome == LoopOutcome::Unknown {
            drop(producer);
            producer = new_loop_producer(bootstrap);
        }
        outcomes.push(outcome);
    }
    outcomes
}

/// One transaction of the loop: begin, 5 records, then commit (or, every third one, flush and
/// abort); on an abortable error, abort.
fn run_loop_transaction(
    producer: &TransactionalProducer,
    topic: &str,
    transaction: usize,
    endings: &mpsc::Sender<(usize, Ending)>,
) -> LoopOutcome {
    if let Err(error) = producer.begin_transaction() {
        println!("transaction {transaction}: begin failed: {error}");
        return LoopOutcome::Unknown;
    }
    for index in 0..RECORDS_PER_TRANSACTION {
        let value = format!("txn-{transaction:06}-{index}");
        let partition = i32::from(index % 2 == 1);
        if let Err((error, _)) = producer.send(
            BaseRecord::<(), _>::to(topic)
                .partition(partition)
                .payload(&value),
        ) {
            println!("transaction {transaction}: send failed: {error}");
            return abort_or_give_up(producer, transaction);
        }
    }
    if transaction % 3 == 2 {
        if let Err(error) = producer.flush(CLIENT_TIMEOUT) {
            println!("transaction {transaction}: flush before the abort failed: {error}");
        }
        let _ = endings.send((transaction, Ending::Abort));
        return abort_or_give_up(producer, transaction);
    }
    let _ = endings.send((transaction, Ending::Commit));
    let mut attempts = 0;
    loop {
        attempts += 1;
        match producer.commit_transaction(CLIENT_TIMEOUT) {
            Ok(()) => return LoopOutcome::Committed,
            Err(KafkaError::Transaction(error)) if error.is_retriable() && attempts < 3 => {
                println!("transaction {transaction}: commit will be retried: {error}");
            }
            Err(error) => {
                println!("transaction {transaction}: commit failed: {error}");
                return abort_or_give_up(producer, transaction);
            }
        }
    }
}

/// Aborts (retrying what librdkafka calls retriable); `Unknown` if the producer cannot abort.
fn abort_or_give_up(producer: &TransactionalProducer, transaction: usize) -> LoopOutcome {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match producer.abort_transaction(CLIENT_TIMEOUT) {
            Ok(()) => return LoopOutcome::Aborted,
            Err(KafkaError::Transaction(error)) if error.is_retriable() && attempts < 3 => {
                println!("transaction {transaction}: abort will be retried: {error}");
            }
            Err(error) => {
                println!("transaction {transaction}: abort failed: {error}");
                return LoopOutcome::Unknown;
            }
        }
    }
}

/// A producer for the loop with an initialized transactional id; init is retried while
/// librdkafka calls its error retriable (the broker may be restarting).
fn new_loop_producer(bootstrap: &str) -> TransactionalProducer {
    let producer = transactional_producer(bootstrap, "crash-loop-id", RECONNECT_SETTINGS);
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        match producer.init_transactions(CLIENT_TIMEOUT) {
            Ok(()) => return producer,
            Err(KafkaError::Transaction(error))
                if error.is_retriable() && Instant::now() < deadline =>
            {
                println!("init_transactions will be retried: {error}");
            }
            Err(error) => panic!("init_transactions of a replacement producer: {error}"),
        }
    }
}

/// Checks what read_committed shows against what the worker was told.
fn check_loop_outcomes(outcomes: &[LoopOutcome], visible: &BTreeMap<usize, usize>) {
    for (&transaction, &count) in visible {
        let outcome = outcomes.get(transaction).unwrap_or_else(|| {
            panic!("read_committed shows records of transaction {transaction}, which never ran")
        });
        assert_eq!(
            count, RECORDS_PER_TRANSACTION,
            "transaction {transaction} ({outcome:?}) is visible with {count} of \
             {RECORDS_PER_TRANSACTION} records (a duplicate or a partial transaction)"
        );
        assert_ne!(
            *outcome,
            LoopOutcome::Aborted,
            "transaction {transaction}'s abort returned, yet read_committed shows its records"
        );
    }
    for (transaction, outcome) in outcomes.iter().enumerate() {
        if *outcome == LoopOutcome::Committed {
            assert!(
                visible.contains_key(&transaction),
                "transaction {transaction}'s commit returned, yet read_committed shows none of \
                 its records"
            );
        }
    }
}

fn count_by(outcomes: &[LoopOutcome]) -> BTreeMap<LoopOutcome, usize> {
    let mut counts = BTreeMap::new();
    for outcome in outcomes {
        *counts.entry(*outcome).or_default() += 1;
    }
    counts
}

/// `txn-000042-3` -> (42, 3).
fn parse_loop_value(value: &str) -> (usize, usize) {
    let parsed = value.strip_prefix("txn-").and_then(|rest| {
        let (transaction, index) = rest.split_once('-')?;
        Some((transaction.parse().ok()?, index.parse().ok()?))
    });
    parsed.unwrap_or_else(|| panic!("unexpected value in the loop topic: {value:?}"))
}

/// A pseudo-random duration below `max`, from the clock's nanoseconds.
fn jitter(max: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    let max_nanos = u32::try_from(max.as_nanos()).unwrap_or(u32::MAX).max(1);
    Duration::from_nanos(u64::from(nanos % max_nanos))
}

/// Waits until ListOffsets at read_committed equals the high watermark and that is at least
/// `min_end` (no transaction open, markers written); returns it. Panics after 20 s.
fn wait_until_stable(bootstrap: &str, topic: &str, partition: i32, min_end: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stable = wire::latest_offset(bootstrap, topic, partition, ReadCommitted);
        let high = wire::latest_offset(bootstrap, topic, partition, ReadUncommitted);
        if stable == high && high >= min_end {
            return stable;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}/{partition}: after 20 s the last stable offset is {stable} and the high \
             watermark {high}; expected them equal and at least {min_end} (a transaction is \
             still open, or markers are missing); Fetch says {:?}",
            wire::fetch_transaction_state(bootstrap, topic, partition, 0, ReadCommitted)
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Checks a fatal fencing error, as librdkafka reports a producer whose epoch was bumped.
fn assert_fenced(result: Result<(), KafkaError>, what: &str) {
    let error = match result {
        Ok(()) => panic!("{what} succeeded; a newer producer with its id had fenced it"),
        Err(error) => error,
    };
    let KafkaError::Transaction(ref rdkafka_error) = error else {
        panic!("{what} failed with {error:?}, expected a fatal fencing transaction error");
    };
    assert!(
        matches!(
            rdkafka_error.code(),
            RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced
        ),
        "{what}: {error}; expected _FENCED or PRODUCER_FENCED"
    );
    assert!(rdkafka_error.is_fatal(), "{what}: {error} is not fatal");
}

/// Sends `label-p-i` for i in 0..count to each of partitions 0 and 1.
fn send_to_both_partitions(
    producer: &TransactionalProducer,
    topic: &str,
    label: &str,
    count: usize,
) {
    for partition in 0..2 {
        send_records(producer, topic, partition, label, 0..count);
    }
}

/// Queues `label-partition-index` for each index.
fn send_records(
    producer: &TransactionalProducer,
    topic: &str,
    partition: i32,
    label: &str,
    indexes: std::ops::Range<usize>,
) {
    for (_, value) in labelled(partition, label, 0, indexes) {
        producer
            .send(
                BaseRecord::<(), _>::to(topic)
                    .partition(partition)
                    .payload(&value),
            )
            .unwrap_or_else(|(error, _)| panic!("librdkafka refused {value}: {error}"));
    }
}

/// `(first_offset + i, "label-partition-index")` for each index.
fn labelled(
    partition: i32,
    label: &str,
    first_offset: i64,
    indexes: std::ops::Range<usize>,
) -> Vec<(i64, String)> {
    indexes
        .zip(first_offset..)
        .map(|(index, offset)| (offset, format!("{label}-{partition}-{index}")))
        .collect()
}
