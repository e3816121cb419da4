//! The Rust `rdkafka` crate (librdkafka in-process) against a real riffle process: a
//! FutureProducer, an assigned BaseConsumer, and the AdminClient's topic operations.

use std::time::{Duration, Instant};

use rdkafka::Offset;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage, Timestamp};
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;

use riffle_integration_tests::Broker;
use riffle_integration_tests::clients::{
    CLIENT_TIMEOUT, admin_client, admin_options, assigned_consumer, create_topic, future_producer,
    read_to_end, topic_config,
};

/// A fixed CreateTime far from "now", so a broker that overwrote it would be caught.
const BASE_TIMESTAMP_MS: i64 = 1_600_000_000_000;

#[tokio::test]
async fn future_producer_and_assigned_consumer_round_trip() {
    // Proves produce acknowledgements carry the partition asked for and consecutive offsets,
    // and an assign()-only consumer reads the same messages back with keys, values, headers
    // and timestamps intact.
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "rust-round-trip", 2, &[]).await;
    let producer = future_producer(&bootstrap, &[("acks", "all"), ("linger.ms", "5")]);
    let message_count: i64 = 100;
    for index in 0..message_count {
        let (key, value) = (key_of(index), value_of(index));
        let record = FutureRecord::to("rust-round-trip")
            .partition(1)
            .key(&key)
            .payload(&value)
            .timestamp(BASE_TIMESTAMP_MS + index)
            .headers(headers_of(index));
        let delivery = producer
            .send(record, CLIENT_TIMEOUT)
            .await
            .unwrap_or_else(|(error, _)| panic!("message {index} was not delivered: {error}"));
        assert_eq!(
            delivery.partition, 1,
            "message {index} delivered to the wrong partition"
        );
        assert_eq!(
            delivery.offset, index,
            "message {index} got offset {}",
            delivery.offset
        );
    }
    let messages = read_to_end(&bootstrap, "rust-round-trip", 1);
    assert_eq!(messages.len(), 100, "partition 1 should hold every message");
    for (index, message) in (0..message_count).zip(&messages) {
        assert_message(message, index);
    }
    assert!(
        read_to_end(&bootstrap, "rust-round-trip", 0).is_empty(),
        "partition 0 got messages that were sent to partition 1"
    );
}

#[tokio::test]
async fn pipelined_acks_all_requests_are_answered_in_order() {
    // Proves an idempotent producer with five acks=all requests in flight on one connection,
    // one message per request, gets every acknowledgement with the offset of its send order
    // (librdkafka also checks each response's correlation id and sequence), and the log holds
    // the messages in that order: the broker appends pipelined requests in order and answers
    // them in order although their fsync waits overlap.
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "rust-pipelined", 1, &[]).await;
    let producer = future_producer(
        &bootstrap,
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("max.in.flight.requests.per.connection", "5"),
            ("linger.ms", "0"),
            ("batch.num.messages", "1"),
        ],
    );
    let message_count: i64 = 200;
    let deliveries: Vec<_> = (0..message_count)
        .map(|index| {
            let value = value_of(index);
            let record = FutureRecord::<(), _>::to("rust-pipelined").payload(&value);
            producer
                .send_result(record)
                .unwrap_or_else(|(error, _)| panic!("message {index} was not queued: {error}"))
        })
        .collect();
    for (index, delivery) in (0..message_count).zip(deliveries) {
        let delivery = delivery
            .await
            .expect("the producer is alive")
            .unwrap_or_else(|(error, _)| panic!("message {index} was not delivered: {error}"));
        assert_eq!(delivery.offset, index, "message {index} got another offset");
    }
    let values: Vec<Vec<u8>> = read_to_end(&bootstrap, "rust-pipelined", 0)
        .iter()
        .map(|message| message.payload().unwrap_or_default().to_vec())
        .collect();
    let expected: Vec<Vec<u8>> = (0..message_count)
        .map(|i| value_of(i).into_bytes())
        .collect();
    assert_eq!(values, expected, "the log holds the messages in send order");
}

#[tokio::test]
async fn large_fetches_sent_from_the_segment_file_arrive_intact() {
    // Proves the sendfile path: partition 0 holds about 6 MB, so its fetches carry record
    // sets far above the broker's sendfile threshold, while partition 1 holds a few small
    // messages that are copied; one consumer assigned both reads them in the same fetch
    // responses, and every value arrives whole, in order, byte for byte.
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "rust-large-fetch", 2, &[]).await;
    let producer = future_producer(&bootstrap, &[("acks", "1"), ("linger.ms", "20")]);
    let large_count: i64 = 600;
    let small_count: i64 = 5;
    let sends = (0..large_count)
        .map(|index| (0, large_value_of(index)))
        .chain((0..small_count).map(|index| (1, value_of(index).into_bytes())));
    let deliveries: Vec<_> = sends
        .map(|(partition, value)| {
            let record = FutureRecord::<(), _>::to("rust-large-fetch")
                .partition(partition)
                .payload(&value);
            producer
                .send_result(record)
                .unwrap_or_else(|(error, _)| panic!("not queued: {error}"))
        })
        .collect();
    for delivery in deliveries {
        delivery
            .await
            .expect("the producer is alive")
            .unwrap_or_else(|(error, _)| panic!("not delivered: {error}"));
    }

    let consumer = assigned_consumer(
        &bootstrap,
        "rust-large-fetch",
        &[(0, Offset::Beginning), (1, Offset::Beginning)],
    );
    let mut values: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while values[0].len() < 600 || values[1].len() < 5 {
        assert!(
            Instant::now() < deadline,
            "read {} and {} messages within {CLIENT_TIMEOUT:?}",
            values[0].len(),
            values[1].len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let partition = usize::try_from(message.partition()).expect("0 or 1");
                let payload = message.payload().unwrap_or_default().to_vec();
                values[partition].push(payload);
            }
            Some(Err(error)) => panic!("consumer error: {error}"),
            None => {}
        }
    }
    for (index, value) in (0..large_count).zip(&values[0]) {
        assert!(
            *value == large_value_of(index),
            "large value {index} differs"
        );
    }
    for (index, value) in (0..small_count).zip(&values[1]) {
        assert_eq!(*value, value_of(index).into_bytes(), "small value {index}");
    }
}

#[tokio::test]
async fn admin_creates_describes_and_deletes_a_topic() {
    // Proves CreateTopics with partitions and a config, Metadata listing those partitions,
    // DescribeConfigs reporting the config, a duplicate create failing with
    // TOPIC_ALREADY_EXISTS, and DeleteTopics removing the topic from Metadata.
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    create_topic(
        &bootstrap,
        "admin-topic",
        3,
        &[("retention.ms", "123456789")],
    )
    .await;
    let admin = admin_client(&bootstrap);
    let metadata = admin
        .inner()
        .fetch_metadata(None, CLIENT_TIMEOUT)
        .expect("fetch metadata");
    let topic = metadata
        .topics()
        .iter()
        .find(|topic| topic.name() == "admin-topic")
        .expect("Metadata lists the new topic");
    assert_eq!(topic.error(), None, "Metadata error for admin-topic");
    let mut partition_ids: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
    partition_ids.sort_unstable();
    assert_eq!(partition_ids, [0, 1, 2]);
    for partition in topic.partitions() {
        assert!(
            partition.leader() >= 0,
            "partition {} has no leader",
            partition.id()
        );
    }
    assert_eq!(
        topic_config(&bootstrap, "admin-topic", "retention.ms")
            .await
            .as_deref(),
        Some("123456789"),
        "DescribeConfigs must report the retention.ms given to CreateTopics"
    );

    let duplicate = NewTopic::new("admin-topic", 1, TopicReplication::Fixed(1));
    let results = admin
        .create_topics([&duplicate], &admin_options())
        .await
        .expect("CreateTopics request");
    assert_eq!(
        results,
        [Err((
            String::from("admin-topic"),
            RDKafkaErrorCode::TopicAlreadyExists
        ))]
    );

    let results = admin
        .delete_topics(&["admin-topic"], &admin_options())
        .await
        .expect("DeleteTopics request");
    assert_eq!(results, [Ok(String::from("admin-topic"))]);
    wait_until_unlisted(&admin, "admin-topic");
}

/// Waits (briefly) until a full Metadata request no longer lists `topic`.
fn wait_until_unlisted(
    admin: &rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>,
    topic: &str,
) {
    // A full request (no topic named), so the client cannot auto-create the topic again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metadata = admin
            .inner()
            .fetch_metadata(None, CLIENT_TIMEOUT)
            .expect("fetch metadata");
        let names: Vec<&str> = metadata.topics().iter().map(|t| t.name()).collect();
        if !names.contains(&topic) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Metadata still lists {topic} 5 s after DeleteTopics succeeded: {names:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn key_of(index: i64) -> String {
    format!("key-{index}")
}

fn value_of(index: i64) -> String {
    format!(
        "value-{index}-{}",
        "y".repeat(usize::try_from(index % 61).unwrap_or(0))
    )
}

/// A 10,000-byte value that differs from every other index's in every 8-byte word.
fn large_value_of(index: i64) -> Vec<u8> {
    (0..1_250_i64)
        .flat_map(|word| (index * 1_000_003 + word).to_le_bytes())
        .collect()
}

fn headers_of(index: i64) -> OwnedHeaders {
    let index_text = index.to_string();
    OwnedHeaders::new()
        .insert(Header {
            key: "index",
            value: Some(&index_text),
        })
        .insert(Header {
            key: "empty",
            value: None::<&str>,
        })
}

/// Checks one consumed message against what the test sent as message `index`.
fn assert_message(message: &OwnedMessage, index: i64) {
    assert_eq!(
        message.offset(),
        index,
        "offsets must be consecutive from 0"
    );
    assert_eq!(
        message.key(),
        Some(key_of(index).as_bytes()),
        "key of {index}"
    );
    assert_eq!(
        message.payload(),
        Some(value_of(index).as_bytes()),
        "value of {index}"
    );
    assert_eq!(
        message.timestamp(),
        Timestamp::CreateTime(BASE_TIMESTAMP_MS + index),
        "timestamp of {index}"
    );
    let headers = message.headers().expect("headers survive");
    let pairs: Vec<(&str, Option<&[u8]>)> = headers
        .iter()
        .map(|header| (header.key, header.value))
        .collect();
    let index_text = index.to_string();
    assert_eq!(
        pairs,
        [("index", Some(index_text.as_bytes())), ("empty", None)],
        "headers of {index} (a null header value must stay null)"
    );
}
