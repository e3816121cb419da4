//! Small helpers around the Rust `rdkafka` crate (librdkafka), set up so a broken broker fails a
//! test within [`CLIENT_TIMEOUT`] instead of hanging it.
//!
//! Consumers here never join a group: they `assign()` partitions explicitly, with a
//! `group.id` set (librdkafka wants one) but no `subscribe()` and no commits, so a test
//! reads exactly the partitions it names. Group consumers are tested in `tests/groups.rs`.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};

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
