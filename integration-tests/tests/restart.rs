//! Durability across restarts: a graceful stop keeps messages, topic configs and topic ids;
//! a SIGKILL in the middle of production loses no acknowledged message.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use riffle_integration_tests::clients::{
    CLIENT_TIMEOUT, assigned_consumer, create_topic, future_producer, read_to_end, topic_config,
};
use riffle_integration_tests::{Broker, wire};

#[tokio::test]
async fn graceful_restart_keeps_messages_configs_and_topic_id() {
    // Proves a SIGTERM stop (exit 0) and restart on the same data directory keep every
    // message, the topic's partitions, a config set at creation and its topic id, and that
    // each partition's offsets continue where they stopped.
    let mut broker = Broker::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "durable", 2, &[("retention.ms", "123456789")]).await;
    let topic_id_before = wire::topic_id(&bootstrap, "durable");
    let producer = future_producer(&bootstrap, &[("acks", "all")]);
    for index in 0..200 {
        send_and_expect_offset(&producer, index % 2, index, i64::from(index / 2)).await;
    }
    drop(producer);

    broker.stop();
    broker.restart();

    for partition in 0..2 {
        let messages = read_to_end(&bootstrap, "durable", partition);
        let values: Vec<String> = messages.iter().map(payload_text).collect();
        let expected: Vec<String> = (0..200)
            .filter(|index| index % 2 == partition)
            .map(durable_value)
            .collect();
        assert_eq!(
            values, expected,
            "partition {partition} after a graceful restart"
        );
    }
    assert_eq!(
        topic_config(&bootstrap, "durable", "retention.ms")
            .await
            .as_deref(),
        Some("123456789"),
        "retention.ms set at creation must survive the restart"
    );
    let topic_id_after = wire::topic_id(&bootstrap, "durable");
    assert_eq!(
        topic_id_after, topic_id_before,
        "the topic id changed across a restart"
    );
    match topic_id_after {
        Some(id) => assert_ne!(id, [0; 16], "the topic id must not be zero"),
        None => println!("Metadata below v10: topic ids not observable, not compared"),
    }
    let producer = future_producer(&bootstrap, &[("acks", "all")]);
    send_and_expect_offset(&producer, 0, 200, 100).await;
    send_and_expect_offset(&producer, 1, 201, 100).await;
}

/// `--log-initial-task-delay-ms` for the start-up test: long enough to check the data is
/// still there right after a restart, short enough to see retention run afterwards.
const INITIAL_TASK_DELAY: Duration = Duration::from_secs(8);

#[tokio::test]
async fn start_up_waits_before_the_first_retention_pass() {
    // Proves Kafka's log.initial.task.delay.ms: records whose timestamps are older than the
    // topic's retention.ms survive a restart until the delay is over, although retention
    // checks every 100 ms (without the delay they go right at start-up), and are deleted
    // after it. Also: a new data directory is not reported as an unclean shutdown.
    let delay_ms = INITIAL_TASK_DELAY.as_millis().to_string();
    let args = [
        "--retention-check-interval-ms",
        "100",
        "--log-initial-task-delay-ms",
        &delay_ms,
    ];
    let mut broker = Broker::start_with(&args);
    let started = Instant::now();
    let first_log = std::fs::read_to_string(broker.log_path()).unwrap_or_default();
    assert!(
        !first_log.contains("was_clean_shutdown=false"),
        "a new data directory was logged as an unclean shutdown:\n{first_log}"
    );
    let bootstrap = broker.bootstrap();
    // One record per segment, each two days old against a one-hour retention.
    let configs = [("segment.bytes", "100"), ("retention.ms", "3600000")];
    create_topic(&bootstrap, "old-events", 1, &configs).await;
    let producer = future_producer(&bootstrap, &[("acks", "all"), ("linger.ms", "0")]);
    let two_days_ago_ms = now_ms() - 2 * 24 * 3_600_000;
    for index in 0..10 {
        let value = format!("old event {index}, with padding to fill a segment");
        producer
            .send(
                FutureRecord::<(), _>::to("old-events")
                    .payload(&value)
                    .timestamp(two_days_ago_ms),
                CLIENT_TIMEOUT,
            )
            .await
            .unwrap_or_else(|(error, _)| panic!("{value} was not delivered: {error}"));
    }
    drop(producer);
    assert!(
        started.elapsed() < INITIAL_TASK_DELAY,
        "producing took longer than the initial delay; the check below would be meaningless"
    );
    assert_eq!(
        log_start_offset(&bootstrap),
        0,
        "deleted before the initial delay"
    );

    broker.stop();
    broker.restart();
    let restarted = Instant::now();
    assert_eq!(
        log_start_offset(&bootstrap),
        0,
        "retention ran right after the restart"
    );
    assert!(
        restarted.elapsed() < INITIAL_TASK_DELAY,
        "the check after the restart came too late to mean anything"
    );
    let deadline = restarted + INITIAL_TASK_DELAY + CLIENT_TIMEOUT;
    while log_start_offset(&bootstrap) == 0 {
        assert!(
            Instant::now() < deadline,
            "retention never ran after the initial delay"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn log_start_offset(bootstrap: &str) -> i64 {
    let consumer = assigned_consumer(bootstrap, "old-events", &[(0, Offset::Beginning)]);
    let (low, _high) = consumer
        .fetch_watermarks("old-events", 0, CLIENT_TIMEOUT)
        .unwrap_or_else(|error| panic!("ListOffsets failed: {error}"));
    low
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// How many acknowledged messages are enough before the kill.
const KILL_AFTER_ACKED_COUNT: usize = 3000;
/// Kill after this long even with fewer acknowledged messages (but at least one).
const KILL_AFTER: Duration = Duration::from_secs(3);
/// Messages handed to librdkafka but not yet settled; bounds memory and the post-kill wait.
const MAX_IN_FLIGHT_COUNT: usize = 1000;

#[tokio::test]
async fn sigkill_mid_production_loses_no_acknowledged_message() {
    // Proves crash safety of acknowledged writes: an acks=all producer runs flat out, the broker
    // is SIGKILLed with up to 1,000 messages in flight and restarted on the same port, and every
    // message whose delivery report said success (before the kill or, after retries, once the
    // broker is back) is readable afterwards. Failed deliveries may or may not be there.
    let mut broker = Broker::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "crash", 1, &[]).await;
    let mut crash_producer = CrashProducer::new(&bootstrap);
    let started = Instant::now();
    while crash_producer.acked.len() < KILL_AFTER_ACKED_COUNT
        && (started.elapsed() < KILL_AFTER || crash_producer.acked.is_empty())
    {
        assert!(
            started.elapsed() < CLIENT_TIMEOUT,
            "no message acknowledged within {CLIENT_TIMEOUT:?}; last failure: {:?}",
            crash_producer.last_failure
        );
        crash_producer.send_next();
        if crash_producer.in_flight.len() >= MAX_IN_FLIGHT_COUNT {
            crash_producer.settle_oldest().await;
        }
    }
    let in_flight_at_kill = crash_producer.in_flight.len();
    broker.kill();
    // A few more while the broker is down; librdkafka queues and retries them.
    for _ in 0..200 {
        crash_producer.send_next();
    }
    broker.restart();
    while !crash_producer.in_flight.is_empty() {
        crash_producer.settle_oldest().await;
    }
    println!("{crash_producer}, {in_flight_at_kill} in flight at the kill");

    let read: BTreeSet<u64> = read_to_end(&bootstrap, "crash", 0)
        .iter()
        .map(|message| crash_id(&payload_text(message)))
        .collect();
    println!("read back {} distinct messages", read.len());
    let missing: Vec<u64> = crash_producer.acked.difference(&read).copied().collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged messages are missing after SIGKILL and restart; first: {:?}",
        missing.len(),
        crash_producer.acked.len(),
        &missing[..missing.len().min(20)]
    );
}

/// The kill test's producer: numbered messages in flight, and what their reports said.
struct CrashProducer {
    producer: FutureProducer,
    /// Messages handed to librdkafka whose delivery report was not read yet, oldest first.
    in_flight: VecDeque<(u64, DeliveryFuture)>,
    /// The id of the next message.
    next_id: u64,
    /// Ids whose delivery report said success.
    acked: BTreeSet<u64>,
    /// How many deliveries failed (timed out or rejected).
    failed_count: usize,
    /// The most recent delivery error, for failure messages.
    last_failure: Option<String>,
}

impl CrashProducer {
    fn new(bootstrap: &str) -> CrashProducer {
        let producer = future_producer(
            bootstrap,
            &[
                ("acks", "all"),
                ("linger.ms", "5"),
                ("message.timeout.ms", "20000"),
                ("reconnect.backoff.max.ms", "500"),
            ],
        );
        CrashProducer {
            producer,
            in_flight: VecDeque::new(),
            next_id: 0,
            acked: BTreeSet::new(),
            failed_count: 0,
            last_failure: None,
        }
    }

    /// Hands the next message to librdkafka without waiting for its report.
    fn send_next(&mut self) {
        let id = self.next_id;
        self.next_id += 1;
        self.in_flight
            .push_back((id, send_crash_message(&self.producer, id)));
    }

    /// Waits for the oldest message's delivery report and records it.
    async fn settle_oldest(&mut self) {
        let Some((id, future)) = self.in_flight.pop_front() else {
            return;
        };
        // message.timeout.ms (20 s) bounds every report; this only guards against a lost one.
        let report = match tokio::time::timeout(Duration::from_secs(60), future).await {
            Ok(Ok(report)) => report,
            Ok(Err(_canceled)) => panic!("delivery report channel for message {id} dropped"),
            Err(_elapsed) => panic!("no delivery report for message {id} within 60 s"),
        };
        match report {
            Ok(_) => {
                self.acked.insert(id);
            }
            Err((error, _)) => {
                self.failed_count += 1;
                self.last_failure = Some(error.to_string());
            }
        }
    }
}

impl std::fmt::Display for CrashProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent {}, acknowledged {}, failed {} (last error: {:?})",
            self.next_id,
            self.acked.len(),
            self.failed_count,
            self.last_failure
        )
    }
}

/// Hands message `id` to librdkafka without waiting; the future resolves with its report.
fn send_crash_message(producer: &FutureProducer, id: u64) -> DeliveryFuture {
    let key = id.to_string();
    let value = format!("crash-{id:010}-{}", "z".repeat(80));
    producer
        .send_result(FutureRecord::to("crash").key(&key).payload(&value))
        .unwrap_or_else(|(error, _)| panic!("librdkafka refused message {id}: {error}"))
}

/// The id inside a kill-test payload.
fn crash_id(payload: &str) -> u64 {
    payload
        .strip_prefix("crash-")
        .and_then(|rest| rest.get(..10))
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("unexpected payload in the crash topic: {payload:?}"))
}

fn durable_value(index: i32) -> String {
    format!("durable-{index}")
}

/// Sends `durable_value(index)` to `partition` and checks the acknowledged offset.
async fn send_and_expect_offset(
    producer: &FutureProducer,
    partition: i32,
    index: i32,
    offset: i64,
) {
    let value = durable_value(index);
    let delivery = producer
        .send(
            FutureRecord::<(), _>::to("durable")
                .partition(partition)
                .payload(&value),
            CLIENT_TIMEOUT,
        )
        .await
        .unwrap_or_else(|(error, _)| panic!("{value} was not delivered: {error}"));
    assert_eq!(
        (delivery.partition, delivery.offset),
        (partition, offset),
        "{value} acknowledged at the wrong place"
    );
}

fn payload_text(message: &rdkafka::message::OwnedMessage) -> String {
    String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned()
}
