//! The remote runtime (`riffle_processor::runtime::remote`) against the real `riffle`
//! binary: topologies run in this test process over rdkafka, with input produced and output
//! read by plain rdkafka clients. Windowed counts match a model of the input, progress
//! shows as the application's consumer-group offsets, a processor killed without its final
//! commit is replaced without losing or double-counting anything, instances share and
//! hand over tasks with their state, and under exactly-once a fenced producer is replaced
//! without stopping the runner or writing a window twice.

mod remote_instance;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureRecord;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use remote_instance::Instance;
use riffle_integration_tests::Broker;
use riffle_integration_tests::clients::{
    CLIENT_TIMEOUT, client_config, create_topic, future_producer, read_to_end,
};
use riffle_processor::internals::TaskId;
use riffle_processor::runtime::remote::RemoteBackend;
use riffle_processor::runtime::{ProcessingGuarantee, Runner, RuntimeConfig};
use riffle_processor::{
    Emit, Grouped, I64Serde, KeyValueStoreHandle, Serde, StreamsBuilder, StringSerde, TimeWindows,
    Topology, Windowed, WindowedSerde, murmur2_partition,
};

/// No initial rebalance delay, so a new group's first join completes at once.
const GROUP_BROKER_ARGS: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];

/// Partitions of every input topic here.
const PARTITION_COUNT: i32 = 4;

/// Tumbling window size of the windowed-count topology.
const WINDOW_MS: i64 = 10_000;

/// Event time of the first input record: some fixed past instant, aligned to a window.
const BASE_TIMESTAMP_MS: i64 = 1_700_000_000_000;

/// Distinct data keys.
const KEY_COUNT: usize = 8;

/// Longest any wait in these tests may take before it fails.
const WAIT_TIMEOUT: Duration = Duration::from_secs(40);

/// How often a wait checks its condition.
const WAIT_INTERVAL: Duration = Duration::from_millis(100);

/// How often the processors here commit.
const COMMIT_INTERVAL: Duration = Duration::from_millis(200);

/// The commit interval of the processor that gets killed.
const SLOW_COMMIT_INTERVAL: Duration = Duration::from_millis(1_500);

/// One input record: partition, key, value, timestamp.
type InputRow = (i32, String, String, i64);

/// A window result: key, window start, count.
type WindowCount = (String, i64, i64);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn windowed_count_matches_the_input_and_commits_group_offsets() {
    // Proves a tumbling-window count with emit-on-close over a 4-partition topic writes one
    // final count per key and window, equal to a model of the input, and that progress is
    // the application's consumer-group offsets: after a clean stop the group has committed
    // the end of every input partition, with the runner's metadata.
    let broker = Broker::start_with(GROUP_BROKER_ARGS);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "clicks", PARTITION_COUNT, &[]).await;
    create_topic(&bootstrap, "click-counts", 1, &[]).await;
    let input = click_rows(0..1_200);
    produce(&bootstrap, "clicks", &input).await;
    produce(&bootstrap, "clicks", &closer_rows()).await;

    let instance = Instance::start(windowed_count_topology("windowed-app"), &bootstrap);
    let expected = expected_window_counts(&input);
    let output = wait_for_windows(&bootstrap, "click-counts", &expected).await;
    assert_final_counts(&output, &expected);
    instance.stop().await;

    for partition in 0..PARTITION_COUNT {
        let (_, high) = watermarks(&bootstrap, "clicks", partition);
        let committed = committed_offset(&bootstrap, "windowed-app", "clicks", partition);
        let (offset, metadata) =
            committed.unwrap_or_else(|| panic!("nothing committed for clicks-{partition}"));
        assert_eq!(offset, high, "committed offset of clicks-{partition}");
        assert!(
            metadata.starts_with("riffle:"),
            "commit metadata of clicks-{partition}: {metadata:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_processor_is_replaced_without_losing_or_double_counting() {
    // Proves at-least-once with consistent state: a processor aborted mid-stream (no final
    // commit) is replaced by a fresh one that restores its stores only up to the last
    // commit and reprocesses from there, so every final window count equals both the model
    // and an uninterrupted run of the same topology; repeats are allowed, differing values
    // are not.
    let broker = Broker::start_with(GROUP_BROKER_ARGS);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "clicks", PARTITION_COUNT, &[]).await;
    create_topic(&bootstrap, "click-counts", 1, &[]).await;
    create_topic(&bootstrap, "reference-counts", 1, &[]).await;
    let first = click_rows(0..800);
    produce(&bootstrap, "clicks", &first).await;

    // A long commit interval, so the kill most likely loses processed, uncommitted work.
    let victim = Instance::start_with(
        windowed_count_topology("crashing-app"),
        &bootstrap,
        SLOW_COMMIT_INTERVAL,
    );
    wait_until("the first processor commits all of the first input", || {
        let processed = victim.status().metrics.processed_records;
        processed >= first.len() as u64 && victim.status().commits >= 2
    })
    .await;
    let before = victim.status().metrics.processed_records;
    let second = click_rows(800..1_600);
    produce(&bootstrap, "clicks", &second).await;
    wait_until(
        "the first processor processes some of the second input",
        || victim.status().metrics.processed_records > before,
    )
    .await;
    victim.kill().await;

    let replacement = Instance::start(windowed_count_topology("crashing-app"), &bootstrap);
    let reference = Instance::start(
        windowed_count_topology_to("reference-app", "reference-counts"),
        &bootstrap,
    );
    let third = click_rows(1_600..2_000);
    produce(&bootstrap, "clicks", &third).await;
    produce(&bootstrap, "clicks", &closer_rows()).await;

    let all: Vec<InputRow> = [first, second, third].concat();
    let expected = expected_window_counts(&all);
    let recovered = wait_for_windows(&bootstrap, "click-counts", &expected).await;
    assert_final_counts(&recovered, &expected);
    let uninterrupted = wait_for_windows(&bootstrap, "reference-counts", &expected).await;
    assert_final_counts(&uninterrupted, &expected);
    replacement.stop().await;
    reference.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_share_tasks_and_a_joining_one_takes_over_their_state() {
    // Proves two instances of one application split its four tasks between them, and a
    // third that joins takes some tasks over with their state: its own store registry
    // answers, for the keys of the partitions it took, the counts accumulated before it
    // joined (restored from the changelog, not from new input).
    let broker = Broker::start_with(GROUP_BROKER_ARGS);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "purchases", PARTITION_COUNT, &[]).await;
    let input = click_rows(0..1_000);
    produce(&bootstrap, "purchases", &input).await;
    let expected = expected_totals(&input);

    let (topology, totals) = total_count_topology("sharing-app");
    let first = Instance::start(topology, &bootstrap);
    wait_until("the first instance runs every task", || {
        first.tasks().len() == 4
    })
    .await;
    let (topology, _) = total_count_topology("sharing-app");
    let second = Instance::start(topology, &bootstrap);
    wait_until("two instances split the four tasks", || {
        split_is_exact(&[&first, &second])
            && !first.tasks().is_empty()
            && !second.tasks().is_empty()
    })
    .await;
    wait_until("the two instances count every purchase", || {
        let mut seen = first.running_totals(&totals);
        seen.extend(second.running_totals(&totals));
        seen == expected
    })
    .await;

    let (topology, _) = total_count_topology("sharing-app");
    let third = Instance::start(topology, &bootstrap);
    wait_until("three instances split the four tasks", || {
        split_is_exact(&[&first, &second, &third]) && !third.tasks().is_empty()
    })
    .await;
    let taken: BTreeSet<i32> = third.tasks().iter().map(|task| task.partition).collect();
    let expected_taken: BTreeMap<String, i64> = expected
        .iter()
        .filter(|(key, _)| taken.contains(&murmur2_partition(key.as_bytes(), PARTITION_COUNT)))
        .map(|(key, count)| (key.clone(), *count))
        .collect();
    assert!(
        !expected_taken.is_empty(),
        "the third instance's partitions {taken:?} hold keys"
    );
    wait_until(
        "the third instance answers with the counts from before it joined",
        || third.running_totals(&totals) == expected_taken,
    )
    .await;
    for instance in [first, second, third] {
        instance.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_once_goes_on_after_its_producer_is_fenced() {
    // Proves the remote runtime's exactly-once with a repartition topic in the path and a
    // fenced producer: mid-stream another producer initializes the instance's
    // transactional id (as a second instance with the same id would), fencing it; the
    // runner aborts, replaces its producer, restores and goes on without stopping, and
    // the output read read_committed holds each window's final count exactly once.
    let broker = Broker::start_with(GROUP_BROKER_ARGS);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "clicks", PARTITION_COUNT, &[]).await;
    create_topic(&bootstrap, "page-counts", 1, &[]).await;
    let first = click_rows(0..600);
    produce(&bootstrap, "clicks", &first).await;
    let instance = Instance::start_exactly_once(
        rekeyed_windowed_count_topology("fenced-app"),
        &bootstrap,
        "it-1",
    );
    wait_until(
        "the instance commits the first input through both sub-topologies",
        || {
            let status = instance.status();
            status.metrics.processed_records >= 2 * first.len() as u64 && status.commits >= 2
        },
    )
    .await;

    fence_transactional_id(&bootstrap, "fenced-app-it-1").await;
    let second = click_rows(600..1_200);
    produce(&bootstrap, "clicks", &second).await;
    // Closers only once every record is through the repartition topic: there, records of
    // different source tasks interleave, and data behind a closer would be late.
    wait_until("the second input is through both sub-topologies", || {
        ["clicks", FENCED_APP_REPARTITION]
            .iter()
            .all(|topic| is_consumed(&bootstrap, "fenced-app", topic))
    })
    .await;
    produce(&bootstrap, "clicks", &rekeyed_closer_rows()).await;
    let expected: BTreeMap<(String, i64), i64> = expected_window_counts(&[first, second].concat())
        .into_iter()
        .map(|((key, start_ms), count)| ((key.to_uppercase(), start_ms), count))
        .collect();
    let output = wait_for_committed_windows(&bootstrap, "page-counts", &expected).await;
    let mut repeated = output.clone();
    repeated.sort();
    repeated.dedup();
    assert_eq!(
        repeated.len(),
        output.len(),
        "a window emitted twice: {output:?}"
    );
    assert_final_counts(&output, &expected);
    let status = instance.status();
    assert!(
        status.aborted_transactions >= 1,
        "the fencing went unnoticed: {status:?}"
    );
    instance.stop().await;
}

/// The repartition topic of [`rekeyed_windowed_count_topology`] for `fenced-app`.
const FENCED_APP_REPARTITION: &str = "fenced-app-by-page-repartition";

/// Whether `group_id` has committed every partition of `topic` up to its end as a
/// read_committed reader sees it (empty partitions need no commit).
fn is_consumed(bootstrap: &str, group_id: &str, topic: &str) -> bool {
    let reader: BaseConsumer = client_config(bootstrap)
        .set("group.id", "riffle-it-consumed")
        .set("isolation.level", "read_committed")
        .create()
        .expect("create an rdkafka BaseConsumer");
    (0..PARTITION_COUNT).all(|partition| {
        let end = reader
            .fetch_watermarks(topic, partition, CLIENT_TIMEOUT)
            .map_or(i64::MAX, |(_, end)| end);
        let committed = committed_offset(bootstrap, group_id, topic, partition);
        committed.map_or(0, |(offset, _)| offset) >= end
    })
}

/// Initializes a transactional producer with `transactional_id`, which fences the
/// producer that had it, then drops it.
async fn fence_transactional_id(bootstrap: &str, transactional_id: &str) {
    let producer: rdkafka::producer::BaseProducer = client_config(bootstrap)
        .set("transactional.id", transactional_id)
        .create()
        .expect("create a transactional producer");
    tokio::task::spawn_blocking(move || {
        producer
            .init_transactions(CLIENT_TIMEOUT)
            .expect("init_transactions fences the instance's producer");
    })
    .await
    .expect("the fencing thread");
}

/// The windowed count, re-keyed first (upper case), so records cross a repartition topic
/// between the source and the count. The tasks that write the repartition topic interleave
/// their records there, so the count takes a grace period as long as the whole input.
fn rekeyed_windowed_count_topology(application_id: &str) -> Topology {
    let builder = StreamsBuilder::new(application_id);
    let window = Duration::from_millis(WINDOW_MS as u64);
    builder
        .stream("clicks", StringSerde, StringSerde)
        .select_key(|key: &String, _click| key.to_uppercase())
        .group_by_key_with(Grouped::new(StringSerde, StringSerde).name("by-page"))
        .windowed_by(TimeWindows::tumbling(window).grace(Duration::from_secs(120)))
        .emit(Emit::OnWindowClose)
        .count("page-counts-store")
        .to("page-counts", StringSerde, I64Serde);
    builder
        .build()
        .expect("a valid re-keyed windowed-count topology")
}

/// Waits until `topic`, read with `isolation.level=read_committed`, holds every expected
/// window, and returns all of it.
async fn wait_for_committed_windows(
    bootstrap: &str,
    topic: &str,
    expected: &BTreeMap<(String, i64), i64>,
) -> Vec<WindowCount> {
    let deadline = Instant::now() + WAIT_TIMEOUT;
    loop {
        let (bootstrap_owned, topic_owned) = (bootstrap.to_string(), topic.to_string());
        let messages =
            tokio::task::spawn_blocking(move || read_committed(&bootstrap_owned, &topic_owned))
                .await
                .expect("the reader thread");
        let output = window_counts(&messages);
        let emitted = emitted_windows(&output);
        if expected.keys().all(|window| emitted.contains(window)) {
            return output;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} holds {} of {} windows after {WAIT_TIMEOUT:?}",
            emitted.len(),
            expected.len()
        );
        tokio::time::sleep(WAIT_INTERVAL * 5).await;
    }
}

/// Partition 0 of `topic` from the start to its end as a read_committed consumer sees
/// it: up to the last stable offset, without aborted records or transaction markers.
fn read_committed(bootstrap: &str, topic: &str) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "riffle-it-read-committed")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .expect("create an rdkafka BaseConsumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("a valid start offset");
    consumer.assign(&assignment).expect("assign partition 0");
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut messages = Vec::new();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => messages.push(message.detach()),
            Some(Err(KafkaError::PartitionEOF(_))) => return messages,
            Some(Err(_)) | None => {}
        }
    }
    panic!("no end of {topic} within {CLIENT_TIMEOUT:?}");
}

/// Counts per key and 10-second tumbling window, emitted once per window when it closes.
fn windowed_count_topology(application_id: &str) -> Topology {
    windowed_count_topology_to(application_id, "click-counts")
}

fn windowed_count_topology_to(application_id: &str, output_topic: &str) -> Topology {
    let builder = StreamsBuilder::new(application_id);
    builder
        .stream("clicks", StringSerde, StringSerde)
        .group_by_key()
        .windowed_by(TimeWindows::tumbling(Duration::from_millis(
            WINDOW_MS as u64,
        )))
        .emit(Emit::OnWindowClose)
        .count("click-counts-store")
        .to(output_topic, StringSerde, I64Serde);
    builder.build().expect("a valid windowed-count topology")
}

/// Purchases per key, in a queryable key-value store.
fn total_count_topology(application_id: &str) -> (Topology, KeyValueStoreHandle<String, i64>) {
    let builder = StreamsBuilder::new(application_id);
    let totals = builder
        .stream("purchases", StringSerde, StringSerde)
        .group_by_key()
        .count("totals");
    let handle = totals.store();
    (builder.build().expect("a valid count topology"), handle)
}

/// Records `range` of a deterministic input: `KEY_COUNT` keys in turn, 50 ms apart, each
/// on its key's murmur2 partition (as a Java producer would place it).
fn click_rows(range: std::ops::Range<usize>) -> Vec<InputRow> {
    range
        .map(|index| {
            let key = format!("user-{}", index % KEY_COUNT);
            let partition = murmur2_partition(key.as_bytes(), PARTITION_COUNT);
            let timestamp_ms = BASE_TIMESTAMP_MS + 50 * index as i64;
            (partition, key, format!("click-{index}"), timestamp_ms)
        })
        .collect()
}

/// One record per partition far in the future: each task's stream time then passes the
/// end of every data window, which closes and emits them. The closers' own windows stay
/// open, so they never appear in the output.
fn closer_rows() -> Vec<InputRow> {
    let timestamp_ms = BASE_TIMESTAMP_MS + 1_000 * WINDOW_MS;
    (0..PARTITION_COUNT)
        .map(|partition| {
            let key = (0..)
                .map(|n| format!("closer-{n}"))
                .find(|key| murmur2_partition(key.as_bytes(), PARTITION_COUNT) == partition)
                .expect("some key lands on every partition");
            (partition, key, "close".to_string(), timestamp_ms)
        })
        .collect()
}

/// [`closer_rows`] for the re-keyed topology: one record far in the future for every
/// partition of its repartition topic, where the count's tasks read.
fn rekeyed_closer_rows() -> Vec<InputRow> {
    let timestamp_ms = BASE_TIMESTAMP_MS + 1_000 * WINDOW_MS;
    (0..PARTITION_COUNT)
        .map(|rekeyed_partition| {
            let key = (0..)
                .map(|n| format!("closer-{n}"))
                .find(|key| {
                    let rekeyed = key.to_uppercase();
                    murmur2_partition(rekeyed.as_bytes(), PARTITION_COUNT) == rekeyed_partition
                })
                .expect("some key lands on every partition");
            let partition = murmur2_partition(key.as_bytes(), PARTITION_COUNT);
            (partition, key, "close".to_string(), timestamp_ms)
        })
        .collect()
}

fn expected_window_counts(rows: &[InputRow]) -> BTreeMap<(String, i64), i64> {
    let mut counts = BTreeMap::new();
    for (_, key, _, timestamp_ms) in rows {
        let start_ms = timestamp_ms - timestamp_ms.rem_euclid(WINDOW_MS);
        *counts.entry((key.clone(), start_ms)).or_insert(0) += 1;
    }
    counts
}

fn expected_totals(rows: &[InputRow]) -> BTreeMap<String, i64> {
    let mut totals = BTreeMap::new();
    for (_, key, _, _) in rows {
        *totals.entry(key.clone()).or_insert(0) += 1;
    }
    totals
}

/// Every output window is a data window with its exact count (repeats allowed), and every
/// data window is in the output.
fn assert_final_counts(output: &[WindowCount], expected: &BTreeMap<(String, i64), i64>) {
    for (key, start_ms, count) in output {
        let want = expected.get(&(key.clone(), *start_ms));
        assert_eq!(want, Some(count), "window {key}@{start_ms} emitted {count}");
    }
    let emitted = emitted_windows(output);
    let missing: Vec<_> = expected
        .keys()
        .filter(|window| !emitted.contains(*window))
        .collect();
    assert!(missing.is_empty(), "windows never emitted: {missing:?}");
}

/// The windows (key, start) the output holds.
fn emitted_windows(output: &[WindowCount]) -> BTreeSet<(String, i64)> {
    output.iter().map(|(k, s, _)| (k.clone(), *s)).collect()
}

/// Waits until the output holds every expected window, and returns all of it.
async fn wait_for_windows(
    bootstrap: &str,
    topic: &str,
    expected: &BTreeMap<(String, i64), i64>,
) -> Vec<WindowCount> {
    let deadline = Instant::now() + WAIT_TIMEOUT;
    loop {
        let output = read_window_counts(bootstrap, topic).await;
        let emitted = emitted_windows(&output);
        if expected.keys().all(|window| emitted.contains(window)) {
            return output;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} holds {} of {} windows after {WAIT_TIMEOUT:?}",
            emitted.len(),
            expected.len()
        );
        tokio::time::sleep(WAIT_INTERVAL * 5).await;
    }
}

async fn read_window_counts(bootstrap: &str, topic: &str) -> Vec<WindowCount> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    let messages = tokio::task::spawn_blocking(move || read_to_end(&bootstrap, &topic, 0))
        .await
        .expect("the reader thread");
    window_counts(&messages)
}

/// The window counts `messages` hold, in order.
fn window_counts(messages: &[OwnedMessage]) -> Vec<WindowCount> {
    let key_serde = WindowedSerde::time(StringSerde, Duration::from_millis(WINDOW_MS as u64));
    messages
        .iter()
        .map(|message| {
            let key: Windowed<String> = key_serde
                .deserialize("out", message.key().expect("a windowed key"))
                .expect("a windowed string key");
            let count = I64Serde
                .deserialize("out", message.payload().expect("a count"))
                .expect("an i64 count");
            (key.key, key.start_ms, count)
        })
        .collect()
}

async fn produce(bootstrap: &str, topic: &str, rows: &[InputRow]) {
    let producer = future_producer(bootstrap, &[("linger.ms", "5")]);
    let mut deliveries = Vec::new();
    for (partition, key, value, timestamp_ms) in rows {
        let record = FutureRecord::to(topic)
            .partition(*partition)
            .key(key.as_str())
            .payload(value.as_str())
            .timestamp(*timestamp_ms);
        let delivery = producer
            .send_result(record)
            .unwrap_or_else(|(error, _)| panic!("queue a record for {topic}: {error}"));
        deliveries.push(delivery);
    }
    for delivery in deliveries {
        let result = delivery.await.expect("the producer is alive");
        result.unwrap_or_else(|(error, _)| panic!("produce to {topic}: {error}"));
    }
}

fn group_reader(bootstrap: &str, group_id: &str) -> BaseConsumer {
    client_config(bootstrap)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create an rdkafka BaseConsumer")
}

fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    group_reader(bootstrap, "riffle-it-watermarks")
        .fetch_watermarks(topic, partition, CLIENT_TIMEOUT)
        .unwrap_or_else(|error| panic!("watermarks of {topic}-{partition}: {error}"))
}

/// The group's committed offset and metadata for one partition, read without joining.
fn committed_offset(
    bootstrap: &str,
    group_id: &str,
    topic: &str,
    partition: i32,
) -> Option<(i64, String)> {
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, partition);
    let committed = group_reader(bootstrap, group_id)
        .committed_offsets(list, CLIENT_TIMEOUT)
        .unwrap_or_else(|error| panic!("committed offsets of {group_id}: {error}"));
    let element = committed.elements().into_iter().next()?;
    match element.offset() {
        Offset::Offset(offset) => Some((offset, element.metadata().to_string())),
        _ => None,
    }
}

/// Polls `condition` until it holds, failing after [`WAIT_TIMEOUT`] with `what`.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT_TIMEOUT;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT_TIMEOUT:?} waiting for {what}"
        );
        tokio::time::sleep(WAIT_INTERVAL).await;
    }
}

/// Every task of a 4-partition sub-topology runs on exactly one of `instances`.
fn split_is_exact(instances: &[&Instance]) -> bool {
    let mut all: Vec<TaskId> = instances
        .iter()
        .flat_map(|instance| instance.tasks())
        .collect();
    all.sort();
    let count = all.len();
    all.dedup();
    count == all.len() && all.len() == PARTITION_COUNT as usize
}

/// What this file's tests start instances with and read from them.
impl Instance {
    fn start(topology: Topology, bootstrap: &str) -> Instance {
        Instance::start_with(topology, bootstrap, COMMIT_INTERVAL)
    }

    fn start_with(topology: Topology, bootstrap: &str, commit_interval: Duration) -> Instance {
        let config = RuntimeConfig {
            commit_interval,
            poll_timeout: Duration::from_millis(50),
            ..RuntimeConfig::default()
        };
        Instance::start_configured(topology, bootstrap, config)
    }

    /// An exactly-once instance named `instance_id` (its transactional id is
    /// `<application id>-<instance id>`), committing every 100 ms.
    fn start_exactly_once(topology: Topology, bootstrap: &str, instance_id: &str) -> Instance {
        let config = RuntimeConfig {
            poll_timeout: Duration::from_millis(50),
            instance_id: Some(instance_id.to_string()),
            ..RuntimeConfig::for_guarantee(ProcessingGuarantee::ExactlyOnce)
        };
        Instance::start_configured(topology, bootstrap, config)
    }

    fn start_configured(topology: Topology, bootstrap: &str, config: RuntimeConfig) -> Instance {
        let debug = std::env::var("RDKAFKA_DEBUG").unwrap_or_default();
        let mut settings = vec![("broker.address.family", "v4")];
        if !debug.is_empty() {
            settings.push(("debug", debug.as_str()));
        }
        let backend = RemoteBackend::new(bootstrap, &settings).expect("create the remote backend");
        let runner = Runner::new(topology, backend, config);
        Instance::spawn(runner, WAIT_TIMEOUT)
    }

    fn tasks(&self) -> Vec<TaskId> {
        self.status().tasks
    }

    /// The counts in the store `handle` names; fails the test if the runner stopped.
    fn running_totals(&self, handle: &KeyValueStoreHandle<String, i64>) -> BTreeMap<String, i64> {
        self.assert_running();
        self.totals(handle)
    }
}
