//! The HTTP listener of the real `riffle` binary: `/metrics` parses as strict Prometheus
//! text and its counters and gauges follow real clients' traffic (rdkafka), `/healthz` and
//! `/readyz` answer, `--http-listen none` opens no listener, and a busy port stops the
//! start with a message naming it.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use riffle_integration_tests::clients::{
    client_config, create_topic, future_producer, read_to_end, send_plain,
};
use riffle_integration_tests::prometheus::{Scrape, http_get, parse};
use riffle_integration_tests::{Broker, broker_binary};

const TOPIC: &str = "metered";
const GROUP: &str = "metered-readers";

/// Scrapes `/metrics` and parses it strictly.
fn scrape(broker: &Broker) -> Scrape {
    let (status, body) = http_get(broker.http_address(), "/metrics");
    assert_eq!(status, 200, "{body}");
    parse(&body).unwrap_or_else(|error| panic!("/metrics is not valid: {error}\n{body}"))
}

/// Commits `offset` for partition 0 of the topic as the group, from an assign() consumer.
fn commit(bootstrap: &str, offset: i64) {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(TOPIC, 0, Offset::Offset(offset))
        .expect("an offset");
    consumer
        .commit(&offsets, CommitMode::Sync)
        .expect("OffsetCommit");
}

fn partition_gauge(scrape: &Scrape, name: &str, partition: &str) -> Option<f64> {
    scrape.value(name, &[("topic", TOPIC), ("partition", partition)])
}

fn group_gauge(scrape: &Scrape, name: &str) -> Option<f64> {
    scrape.value(
        name,
        &[("group", GROUP), ("topic", TOPIC), ("partition", "0")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_produce_fetch_and_group_commits() {
    // Proves each family moves with real traffic: per-topic bytes and records in and out,
    // requests per API with latency histograms, fsyncs of acks=all produces, connections,
    // partition offsets and sizes, and a group's committed offset and lag.
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let http = broker.http_address();
    assert_eq!(http_get(http, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(http_get(http, "/readyz"), (200, "ready\n".to_string()));

    create_topic(&bootstrap, TOPIC, 2, &[]).await;
    let producer = future_producer(&bootstrap, &[("acks", "all"), ("linger.ms", "0")]);
    send_plain(&producer, TOPIC, "first", 10).await;
    assert_eq!(read_to_end(&bootstrap, TOPIC, 0).len(), 10);
    commit(&bootstrap, 4);
    let before = scrape(&broker);

    let in_topic = [("topic", TOPIC)];
    assert_eq!(
        before.value("riffle_topic_records_in_total", &in_topic),
        Some(10.0)
    );
    assert!(before.value("riffle_topic_bytes_in_total", &in_topic) > Some(10.0 * 7.0));
    assert!(before.value("riffle_topic_records_out_total", &in_topic) >= Some(10.0));
    assert!(before.value("riffle_topic_bytes_out_total", &in_topic) > Some(0.0));
    for api in [
        "Produce",
        "Fetch",
        "Metadata",
        "CreateTopics",
        "OffsetCommit",
    ] {
        let count = before.sum("riffle_requests_total", &[("api", api)]);
        let timed = before.sum("riffle_request_duration_seconds_count", &[("api", api)]);
        assert!(count >= 1.0, "{api}: {count} requests");
        assert_eq!(count, timed, "{api}: every request is timed");
    }
    assert!(before.value("riffle_log_fsync_duration_seconds_count", &[]) >= Some(1.0));
    assert!(before.value("riffle_log_group_commit_requests_sum", &[]) >= Some(1.0));
    let accepted = [("listener", "PLAINTEXT")];
    assert!(before.value("riffle_connections_accepted_total", &accepted) >= Some(1.0));
    // The producer's connection stays open.
    assert!(before.value("riffle_connections_open", &[]) >= Some(1.0));
    let refused = [("reason", "max_connections")];
    assert_eq!(
        before.value("riffle_connections_refused_total", &refused),
        Some(0.0)
    );
    assert_eq!(
        partition_gauge(&before, "riffle_partition_log_end_offset", "0"),
        Some(10.0)
    );
    assert_eq!(
        partition_gauge(&before, "riffle_partition_log_end_offset", "1"),
        Some(0.0)
    );
    assert_eq!(
        partition_gauge(&before, "riffle_partition_log_start_offset", "0"),
        Some(0.0)
    );
    assert!(partition_gauge(&before, "riffle_partition_size_bytes", "0") > Some(0.0));
    assert_eq!(
        group_gauge(&before, "riffle_group_committed_offset"),
        Some(4.0)
    );
    assert_eq!(group_gauge(&before, "riffle_group_lag"), Some(6.0));

    send_plain(&producer, TOPIC, "second", 5).await;
    assert_eq!(read_to_end(&bootstrap, TOPIC, 0).len(), 15);
    commit(&bootstrap, 12);
    let after = scrape(&broker);
    assert_eq!(
        after.value("riffle_topic_records_in_total", &in_topic),
        Some(15.0)
    );
    assert!(
        after.value("riffle_topic_records_out_total", &in_topic)
            >= before
                .value("riffle_topic_records_out_total", &in_topic)
                .map(|out| out + 15.0)
    );
    assert!(
        after.sum("riffle_requests_total", &[("api", "Produce")])
            >= before.sum("riffle_requests_total", &[("api", "Produce")]) + 5.0
    );
    assert_eq!(
        partition_gauge(&after, "riffle_partition_log_end_offset", "0"),
        Some(15.0)
    );
    assert_eq!(
        group_gauge(&after, "riffle_group_committed_offset"),
        Some(12.0)
    );
    assert_eq!(group_gauge(&after, "riffle_group_lag"), Some(3.0));
}

#[test]
fn refused_connections_are_counted_by_the_limit_that_refused_them() {
    // Proves a connection past --max-connections is counted under its reason, and the
    // open-connection gauge counts the one held.
    let broker = Broker::start_with(&["--max-connections", "1"]);
    let held = std::net::TcpStream::connect(broker.address()).expect("the first connects");
    let mut refused = std::net::TcpStream::connect(broker.address()).expect("accepted");
    refused
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    let mut byte = [0u8; 1];
    // Closed at once: end of stream (or a reset), never a wait.
    assert!(matches!(refused.read(&mut byte), Ok(0) | Err(_)));
    let scrape = scrape(&broker);
    let by_reason =
        |reason| scrape.value("riffle_connections_refused_total", &[("reason", reason)]);
    assert_eq!(by_reason("max_connections"), Some(1.0));
    assert_eq!(by_reason("max_connections_per_ip"), Some(0.0));
    assert_eq!(scrape.value("riffle_connections_open", &[]), Some(1.0));
    let accepted = [("listener", "PLAINTEXT")];
    assert_eq!(
        scrape.value("riffle_connections_accepted_total", &accepted),
        Some(1.0)
    );
    drop(held);
}

#[test]
fn http_listen_none_opens_no_http_listener() {
    // Proves `--http-listen none` prints no HTTP line and the broker serves Kafka clients.
    let broker = Broker::start_with(&["--http-listen", "none"]);
    assert_eq!(broker.try_http_address(Duration::from_secs(2)), None);
    let messages = tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(async {
            create_topic(&broker.bootstrap(), TOPIC, 1, &[]).await;
            let producer = future_producer(&broker.bootstrap(), &[]);
            send_plain(&producer, TOPIC, "plain", 3).await;
            read_to_end(&broker.bootstrap(), TOPIC, 0)
        });
    assert_eq!(messages.len(), 3);
}

#[test]
fn a_busy_http_port_stops_the_start_naming_it() {
    // Proves a port already taken fails the start with a message naming --http-listen,
    // the address and the operating system's reason, and a failing exit code.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let address = taken.local_addr().expect("its address").to_string();
    let data_dir = tempfile::tempdir().expect("a temp dir");
    let output = Command::new(broker_binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            &address,
        ])
        .arg("--data-dir")
        .arg(data_dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run riffle");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started: {stderr}");
    let expected = format!("cannot listen for HTTP (--http-listen) on {address}");
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.to_lowercase().contains("in use"), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("riffle listening"), "{stdout}");
}
