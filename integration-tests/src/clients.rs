//! Small helpers around the Rust `rdkafka` crate (librdkafka), set up so a broken broker fails a
//! test within [`CLIENT_TIMEOUT`] instead of hanging it.
//!
//! Consumers here never join a group: they `assign()` partitions explicitly, with a
//! `group.id` set (librdkafka wants one) but no `subscribe()` and no commits, so a test
//! reads exactly the partitions it names. Group consumers are tested in `tests/groups.rs`.
//!
//! For transactions: [`transactional_producer`] sets up a producer with a
//! `transactional.id`, and [`read_visible`] reads a partition the way a consumer with a given
//! `isolation.level` sees it.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::wire::IsolationLevel;

/// The longest any single client operation in these helpers may take.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings every client gets: the bootstrap address, IPv4 only (the broker listens on
/// 127.0.0.1) and socket timeouts.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "30000")
        .set("client.id", "riffle-it-rdkafka");
    config
}

/// An admin client.
///
/// # Panics
/// If librdkafka rejects the configuration.
pub fn admin_client(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    client_config(bootstrap)
        .create()
        .expect("create an rdkafka AdminClient")
}

/// Admin options with request and operation timeouts of [`CLIENT_TIMEOUT`].
pub fn admin_options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(CLIENT_TIMEOUT))
        .operation_timeout(Some(CLIENT_TIMEOUT))
}

/// Creates a topic with CreateTopics and asserts it succeeded.
///
/// # Panics
/// If the request fails or the broker reports an error for the topic.
pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let results = admin_client(bootstrap)
        .create_topics([&topic], &admin_options())
        .await
        .unwrap_or_else(|error| panic!("CreateTopics {name} failed: {error}"));
    assert_eq!(results.len(), 1, "CreateTopics answered {results:?}");
    if let Err((topic, code)) = &results[0] {
        panic!("CreateTopics {topic}: broker error {code:?}");
    }
}

/// A `FutureProducer` with `message.timeout.ms` of 30 s, then `settings` (which win).
///
/// # Panics
/// If librdkafka rejects the configuration.
pub fn future_producer(bootstrap: &str, settings: &[(&str, &str)]) -> FutureProducer {
    let mut config = client_config(bootstrap);
    config.set("message.timeout.ms", "30000");
    for (key, value) in settings {
        config.set(*key, *value);
    }
    config.create().expect("create an rdkafka FutureProducer")
}

/// A `BaseConsumer` assigned to `partitions` of `topic` at the given start offsets.
///
/// # Panics
/// If librdkafka rejects the configuration or the assignment.
pub fn assigned_consumer(
    bootstrap: &str,
    topic: &str,
    partitions: &[(i32, Offset)],
) -> BaseConsumer {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", format!("riffle-it-{topic}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("create an rdkafka BaseConsumer");
    let mut assignment = TopicPartitionList::new();
    for (partition, offset) in partitions {
        assignment
            .add_partition_offset(topic, *partition, *offset)
            .expect("a valid start offset");
    }
    consumer
        .assign(&assignment)
        .unwrap_or_else(|error| panic!("assign {topic} {partitions:?}: {error}"));
    consumer
}

/// Reads `topic`/`partition` from the log start up to the high watermark as it is now.
///
/// # Panics
/// If the watermarks cannot be fetched or not every message arrives within [`CLIENT_TIMEOUT`];
/// the message says how far it got and the last consumer error.
pub fn read_to_end(bootstrap: &str, topic: &str, partition: i32) -> Vec<OwnedMessage> {
    let consumer = assigned_consumer(bootstrap, topic, &[(partition, Offset::Beginning)]);
    let (low, high) = consumer
        .fetch_watermarks(topic, partition, CLIENT_TIMEOUT)
        .unwrap_or_else(|error| panic!("ListOffsets for {topic}/{partition} failed: {error}"));
    let mut messages: Vec<OwnedMessage> = Vec::new();
    let mut last_error = None;
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while messages.last().map_or(low, |message| message.offset() + 1) < high {
        assert!(
            Instant::now() < deadline,
            "read {} messages of {topic}/{partition} (offsets {low}..{high}) within \
             {CLIENT_TIMEOUT:?}; last consumer error: {last_error:?}",
            messages.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => messages.push(message.detach()),
            Some(Err(error)) => last_error = Some(error),
            None => {}
        }
    }
    messages
}

/// The value DescribeConfigs reports for config `name` of `topic` (`None` if unset or absent).
///
/// # Panics
/// If the request fails or the broker reports an error for the topic.
pub async fn topic_config(bootstrap: &str, topic: &str, name: &str) -> Option<String> {
    let results = admin_client(bootstrap)
        .describe_configs([&ResourceSpecifier::Topic(topic)], &admin_options())
        .await
        .unwrap_or_else(|error| panic!("DescribeConfigs {topic} failed: {error}"));
    assert_eq!(
        results.len(),
        1,
        "DescribeConfigs answered {} resources",
        results.len()
    );
    let resource = results
        .into_iter()
        .next()
        .expect("one resource")
        .unwrap_or_else(|code| panic!("DescribeConfigs {topic}: broker error {code:?}"));
    resource.get(name).and_then(|entry| entry.value.clone())
}

/// The producer [`transactional_producer`] returns: a `BaseProducer` whose own thread polls
/// for delivery reports, which librdkafka's `abort_transaction` waits for.
pub type TransactionalProducer = ThreadedProducer<DefaultProducerContext>;

/// A [`TransactionalProducer`] with `transactional.id` set, created but not yet initialized:
/// the caller runs `init_transactions` (so a test can check how it fails).
///
/// librdkafka insists that `socket.timeout.ms` and `message.timeout.ms` stay below
/// `transaction.timeout.ms`; when `settings` sets the latter, both are lowered to fit.
///
/// # Panics
/// If librdkafka rejects the configuration.
pub fn transactional_producer(
    bootstrap: &str,
    transactional_id: &str,
    settings: &[(&str, &str)],
) -> TransactionalProducer {
    let mut config = client_config(bootstrap);
    config
        .set("transactional.id", transactional_id)
        .set("message.timeout.ms", "30000");
    if let Some((_, timeout)) = settings
        .iter()
        .find(|(key, _)| *key == "transaction.timeout.ms")
    {
        let timeout_ms: u64 = timeout.parse().expect("transaction.timeout.ms is a number");
        let socket_ms = timeout_ms.saturating_sub(100).clamp(100, 30_000);
        config
            .set("socket.timeout.ms", socket_ms.to_string())
            .set("message.timeout.ms", timeout_ms.min(30_000).to_string());
    }
    for (key, value) in settings {
        config.set(*key, *value);
    }
    config
        .create()
        .unwrap_or_else(|error| panic!("create transactional producer {transactional_id}: {error}"))
}

/// A `BaseConsumer` with `isolation.level` set, assigned to `topic`/`partition` from the start.
///
/// # Panics
/// If librdkafka rejects the configuration or the assignment.
pub fn isolated_consumer(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    isolation: IsolationLevel,
) -> BaseConsumer {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set(
            "group.id",
            format!("riffle-it-{topic}-{}", isolation.config_value()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", isolation.config_value())
        .create()
        .expect("create an rdkafka BaseConsumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Beginning)
        .expect("a valid start offset");
    consumer
        .assign(&assignment)
        .unwrap_or_else(|error| panic!("assign {topic}/{partition}: {error}"));
    consumer
}

/// Everything a consumer with `isolation` reads from the start of `topic`/`partition`: it reads
/// until its position reaches the end offset ListOffsets gives at that isolation level (the
/// last stable offset for read_committed, the high watermark otherwise), then polls 500 ms more
/// so a record that should not be visible has the chance to show up.
///
/// # Panics
/// If the end offset cannot be fetched or the position does not reach it within
/// [`CLIENT_TIMEOUT`].
pub fn read_visible(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    isolation: IsolationLevel,
) -> Vec<OwnedMessage> {
    let consumer = isolated_consumer(bootstrap, topic, partition, isolation);
    let (_, end) = consumer
        .fetch_watermarks(topic, partition, CLIENT_TIMEOUT)
        .unwrap_or_else(|error| panic!("ListOffsets for {topic}/{partition} failed: {error}"));
    let mut messages = poll_until_position(&consumer, topic, partition, end, CLIENT_TIMEOUT);
    messages.extend(poll_for(&consumer, Duration::from_millis(500)));
    messages
}

/// Polls `consumer` until its position on `topic`/`partition` is at least `end`; returns the
/// messages it got on the way. Control records are never returned but move the position.
///
/// # Panics
/// If the position does not reach `end` within `timeout`; the message says where it stopped.
pub fn poll_until_position(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    end: i64,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let mut messages: Vec<OwnedMessage> = Vec::new();
    if end <= 0 {
        // An empty range: a consumer that has read nothing has no position to compare.
        return messages;
    }
    let mut last_error = None;
    let deadline = Instant::now() + timeout;
    loop {
        let position = position_of(consumer, topic, partition);
        if position.is_some_and(|position| position >= end) {
            return messages;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}/{partition}: the consumer's position is {position:?} after {timeout:?}, \
             expected it to reach {end}; got {} messages, last consumer error: {last_error:?}",
            messages.len()
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => messages.push(message.detach()),
            Some(Err(error)) => last_error = Some(error),
            None => {}
        }
    }
}

/// Every message `consumer` returns within `duration`.
pub fn poll_for(consumer: &BaseConsumer, duration: Duration) -> Vec<OwnedMessage> {
    let deadline = Instant::now() + duration;
    let mut messages = Vec::new();
    while Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) {
            messages.push(message.detach());
        }
    }
    messages
}

/// The consumer's position on `topic`/`partition`: the offset after the last record (or
/// control record) it consumed, `None` before it consumed anything.
///
/// # Panics
/// If librdkafka cannot report positions.
pub fn position_of(consumer: &BaseConsumer, topic: &str, partition: i32) -> Option<i64> {
    let positions = consumer
        .position()
        .unwrap_or_else(|error| panic!("position() failed: {error}"));
    match positions.find_partition(topic, partition)?.offset() {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

/// The offset `group` has committed for `topic`/`partition` (OffsetFetch), `None` if none, as
/// seen by a consumer with `isolation` (librdkafka asks for stable offsets when read_committed).
///
/// # Panics
/// If the request fails.
pub fn committed_offset(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partition: i32,
    isolation: IsolationLevel,
) -> Option<i64> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation.config_value())
        .create()
        .expect("create an rdkafka BaseConsumer");
    let mut partitions = TopicPartitionList::new();
    partitions.add_partition(topic, partition);
    let committed = consumer
        .committed_offsets(partitions, CLIENT_TIMEOUT)
        .unwrap_or_else(|error| panic!("OffsetFetch {group} {topic}/{partition}: {error}"));
    let element = committed
        .find_partition(topic, partition)
        .unwrap_or_else(|| panic!("OffsetFetch {group} did not answer {topic}/{partition}"));
    match element.offset() {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

/// Each message's offset and its value as text, for comparing what a consumer read.
pub fn offsets_and_values(messages: &[OwnedMessage]) -> Vec<(i64, String)> {
    messages
        .iter()
        .map(|message| (message.offset(), value_text(message)))
        .collect()
}

/// A message's value as text (lossy), empty for a null value.
pub fn value_text(message: &OwnedMessage) -> String {
    String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned()
}

/// Sends `count` records `label-N`, outside any transaction, to partition 0 of `topic`, and
/// waits for each one's acknowledgement.
///
/// # Panics
/// If a record is not delivered.
pub async fn send_plain(producer: &FutureProducer, topic: &str, label: &str, count: i64) {
    for index in 0..count {
        let value = format!("{label}-{index}");
        producer
            .send(
                FutureRecord::<(), _>::to(topic)
                    .partition(0)
                    .payload(&value),
                CLIENT_TIMEOUT,
            )
            .await
            .unwrap_or_else(|(error, _)| panic!("{value} not delivered: {error}"));
    }
}
