//! The web console in a real headless browser (Debian's chromium) against the real
//! `riffle` binary with data put in by rdkafka: each page loads, runs its script against
//! `/api/` and `/apps`, and shows the broker's topics, records (decoded as JSON, text and
//! hex, with headers), consumer groups with members, assignments and lag, the broker's
//! charts, and the empty applications page.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use riffle_integration_tests::Broker;
use riffle_integration_tests::browser::{chromium, dump_dom};
use riffle_integration_tests::clients::{client_config, create_topic, future_producer};
use riffle_integration_tests::prometheus::http_get;

const TOPIC: &str = "orders";
const GROUP: &str = "console-readers";
const CLIENT_ID: &str = "console-test-reader";
/// Records sent to partition 0; the group commits [`COMMITTED`] of them.
const RECORDS: i64 = 10;
const COMMITTED: i64 = 4;
/// How long the broker may take to sample the traffic into its history (every 5 s).
const HISTORY_WAIT: Duration = Duration::from_secs(20);

/// Sends `RECORDS` JSON records with a key and two headers, and one binary record, to
/// partition 0.
async fn produce(bootstrap: &str) {
    let producer = future_producer(bootstrap, &[("acks", "all"), ("linger.ms", "0")]);
    for index in 0..RECORDS {
        let key = format!("order-{index}");
        let value = format!(r#"{{"order_id":{index},"item":"tea"}}"#);
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "source",
                value: Some("web"),
            })
            .insert(Header {
                key: "trace-id",
                value: Some("abc123"),
            });
        let record = FutureRecord::to(TOPIC)
            .partition(0)
            .key(&key)
            .payload(&value)
            .headers(headers);
        producer
            .send(record, Duration::from_secs(10))
            .await
            .unwrap_or_else(|(error, _)| panic!("{key} not delivered: {error}"));
    }
    let binary = FutureRecord::<(), [u8]>::to(TOPIC)
        .partition(1)
        .payload(&[0xff, 0x00, 0x01]);
    producer
        .send(binary, Duration::from_secs(10))
        .await
        .unwrap_or_else(|(error, _)| panic!("the binary record not delivered: {error}"));
}

/// A member of the group, subscribed to the topic and holding its assignment, that
/// commits `COMMITTED` on partition 0. Keep it alive while the pages load.
fn join_group(bootstrap: &str) -> BaseConsumer {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", GROUP)
        .set("client.id", CLIENT_ID)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("a consumer");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(30);
    while consumer.assignment().map_or(0, |assigned| assigned.count()) < 2 {
        assert!(Instant::now() < deadline, "the consumer got no assignment");
        let _ = consumer.poll(Duration::from_millis(200));
    }
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(TOPIC, 0, Offset::Offset(COMMITTED))
        .expect("an offset");
    consumer
        .commit(&offsets, CommitMode::Sync)
        .expect("OffsetCommit");
    consumer
}

/// Waits until the broker's history holds a sample with bytes in and a lag series of the
/// group, so the charts have something to draw.
fn await_history(broker: &Broker) {
    let deadline = Instant::now() + HISTORY_WAIT;
    loop {
        let (status, body) = http_get(
            broker.http_address(),
            &format!("/api/history?group={GROUP}"),
        );
        assert_eq!(status, 200, "{body}");
        let history: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let traffic = history["samples"].as_array().is_some_and(|samples| {
            samples
                .iter()
                .any(|sample| sample["bytes_in_per_second"].as_f64() > Some(0.0))
        });
        let lag = history["lag"]
            .as_array()
            .is_some_and(|series| !series.is_empty());
        if traffic && lag {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no sample of the traffic within {HISTORY_WAIT:?}: {body}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn page(broker: &Broker, route: &str) -> String {
    dump_dom(&format!("http://{}/#{route}", broker.http_address()))
}

fn assert_shows(dom: &str, route: &str, expected: &[&str]) {
    for text in expected {
        assert!(
            dom.contains(text),
            "#{route} does not show {text:?}:\n{dom}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_show_the_brokers_data() {
    // Proves each page of the console, loaded by a real browser, shows what the broker
    // holds: checked on the DOM the page's script built.
    chromium();
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, 2, &[]).await;
    produce(&bootstrap).await;
    let _member = join_group(&bootstrap);
    await_history(&broker);

    let topics = page(&broker, "/topics");
    assert_shows(&topics, "/topics", &[">orders<", "Partitions", ">11<"]);

    let topic = page(&broker, "/topics/orders");
    assert_shows(
        &topic,
        "/topics/orders",
        &[
            "order-3",
            r#"{"order_id":3,"item":"tea"}"#,
            ">trace-id<",
            ">abc123<",
            "cleanup.policy",
        ],
    );

    // A value that is not UTF-8 shows as hex; the address picks the partition.
    let binary = page(&broker, "/topics/orders?partition=1");
    assert_shows(&binary, "/topics/orders?partition=1", &["ff 00 01"]);

    let groups = page(&broker, "/groups");
    assert_shows(&groups, "/groups", &[GROUP, "Stable"]);

    let group = page(&broker, &format!("/groups/{GROUP}"));
    assert_shows(
        &group,
        "/groups/...",
        &[
            CLIENT_ID,
            "orders-0",
            "orders-1",
            ">6<",
            "orders-0: 6 records",
        ],
    );

    let overview = page(&broker, "/");
    assert_shows(
        &overview,
        "/",
        &[
            "Throughput, bytes",
            "Mean request latency",
            "Produce:",
            "chart-svg",
        ],
    );
    assert!(!overview.contains("No samples yet"), "{overview}");

    let apps = page(&broker, "/apps");
    assert_shows(
        &apps,
        "/apps",
        &["No stream-processing applications run in this broker."],
    );
}
