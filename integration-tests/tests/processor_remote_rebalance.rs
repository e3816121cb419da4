//! The remote runtime's standby replicas, cooperative rebalancing and repartition purging,
//! against the real `riffle` binary: instances run in this test process over rdkafka.
//!
//! - A standby replica keeps a task's store warm on the other instance: when the active
//!   instance dies, the standby's instance takes the task over restoring only the changelog
//!   tail, where an instance without a standby restores the whole changelog.
//! - With cooperative rebalancing (the default) a joining instance takes tasks without the
//!   first instance stopping and restoring the tasks it keeps; with eager rebalancing it
//!   does.
//! - After commits, the records of repartition topics below the committed offsets are
//!   deleted: the topics' log start offsets advance.

mod remote_instance;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use remote_instance::Instance;
use riffle_integration_tests::Broker;
use riffle_integration_tests::clients::{
    CLIENT_TIMEOUT, client_config, create_topic, future_producer,
};
use riffle_processor::internals::TaskId;
use riffle_processor::runtime::RuntimeConfig;
use riffle_processor::runtime::remote::remote_runner_with_settings;
use riffle_processor::{
    Grouped, KeyValueStoreHandle, StreamsBuilder, StringSerde, murmur2_partition,
};

/// No initial rebalance delay, so a group's joins complete at once.
const GROUP_BROKER_ARGS: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];
const WAIT_TIMEOUT: Duration = Duration::from_secs(60);
const WAIT_INTERVAL: Duration = Duration::from_millis(10);
const COMMIT_INTERVAL: Duration = Duration::from_millis(300);
const KEY_COUNT: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standby_takes_over_a_dead_instance_s_task_restoring_only_the_tail() {
    // Proves standby replicas: two instances with one standby each split two tasks; the
    // killed instance's task moves to the survivor, which held its standby and restores
    // only the changelog records written since the standby's last catch-up, a small part
    // of the changelog a fresh instance restores whole (measured too); no count is lost.
    let broker = Broker::start_with(GROUP_BROKER_ARGS);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "purchases", 2, &[]).await;
    let dirs = [tempdir(), tempdir(), tempdir()];
    // The count's store, named alike in every instance's topology.
    let (_, totals_store) = topology();
    let mut input = rows(0..2_000, 2);
    produce(&bootstrap, "purchases", &input).await;

    let first = Instance::start(&bootstrap, standby_config(&dirs[0], 1));
    wait_until("the first instance runs both tasks", || {
        first.tasks().len() == 2
    })
    .await;
    // The survivor commits, and so catches its standby up, every 2 s: the active's
    // commits in between are the tail a takeover restores.
    let slow = RuntimeConfig {
        commit_interval: Duration::from_secs(2),
        ..standby_config(&dirs[1], 1)
    };
    let second = Instance::start(&bootstrap, slow);
    wait_until(
        "each instance runs one task and a standby of the other",
        || {
            let (a, b) = (first.tasks(), second.tasks());
            a.len() == 1
                && b.len() == 1
                && first.status().standby_tasks == b
                && second.status().standby_tasks == a
        },
    )
    .await;
    let victim_task = first.tasks()[0];
    let changelog_partition = victim_task.partition;

    let more = rows(2_000..6_000, 2);
    produce(&bootstrap, "purchases", &more).await;
    input.extend(more);
    let expected = totals(&input);
    wait_until("the instances count everything", || {
        let mut seen = first.totals(&totals_store);
        seen.extend(second.totals(&totals_store));
        seen == expected
    })
    .await;
    // The standby catches up, after each commit of its instance, to the active's last
    // commit: here the whole changelog (it started empty, so it applied every record).
    let changelog = "standby-app-totals-changelog";
    wait_until("the standby catches up", || {
        let (_, end) = watermarks(&bootstrap, changelog, victim_task.partition);
        second.status().standby_records >= end as u64
    })
    .await;
    let processed = first.status().metrics.processed_records;
    let tail = rows(6_000..6_200, 2);
    produce(&bootstrap, "purchases", &tail).await;
    input.extend(tail);
    let _ = processed;
    let with_tail = totals(&input);
    wait_until("the active counts the tail", || {
        let counted = first.totals(&totals_store);
        !counted.is_empty()
            && counted
                .iter()
                .all(|(buyer, n)| with_tail.get(buyer) == Some(n))
    })
    .await;
    let commits = first.status().commits;
    wait_until("the active commits the tail", || {
        first.status().commits > commits + 1
    })
    .await;
    let restored_before = second.status().restored_records;
    first.kill().await;
    wait_until("the survivor takes the dead instance's task over", || {
        second.tasks().contains(&victim_task)
    })
    .await;
    let expected = totals(&input);
    // At-least-once: the dead instance's uncommitted re-keyed records are written to the
    // repartition topic again, so a count may repeat some; none is lost.
    wait_until("the survivor counts everything", || {
        let seen = second.totals(&totals_store);
        seen.len() == expected.len()
            && expected
                .iter()
                .all(|(buyer, count)| seen.get(buyer) >= Some(count))
    })
    .await;
    let expected = second.totals(&totals_store);
    let restored_with_standby = second.status().restored_records - restored_before;
    let (_, changelog_end) = watermarks(&bootstrap, changelog, changelog_partition);
    second.stop().await;

    // Without a standby: a fresh instance restores both changelogs whole.
    let fresh = Instance::start(&bootstrap, standby_config(&dirs[2], 0));
    wait_until("a fresh instance runs both tasks", || {
        fresh.tasks().len() == 2
    })
    .await;
    wait_until("the fresh instance restores the survivor's counts", || {
        fresh.totals(&totals_store) == expected
    })
    .await;
    let restored_fresh = fresh.status().restored_records;
    fresh.stop().await;
    println!(
        "failover restored {restored_with_standby} changelog records with a standby; \
         the changelog holds {changelog_end}; a fresh instance restored {restored_fresh} over two tasks"
    );
    assert!(
        restored_with_standby * 5 < changelog_end as u64,
        "the takeover restored {restored_with_standby} of {changelog_end} changelog records"
    );
    assert!(restored_fresh >= changelog_end as u64, "{restored_fresh}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_joining_instance_does_not_stop_the_tasks_the_first_one_keeps() {
    // Proves cooperative rebalancing: when a second instance joins, the first one gives it
    // some tasks and keeps the others running all along (never zero tasks, no restore);
    // with eager rebalancing the same join revokes every task and restores the kept ones.
    for cooperative in [true, false] {
        let broker = Broker::start_with(GROUP_BROKER_ARGS);
        let bootstrap = broker.bootstrap();
        create_topic(&bootstrap, "purchases", 4, &[]).await;
        let input = rows(0..2_000, 4);
        produce(&bootstrap, "purchases", &input).await;
        let config = || RuntimeConfig {
            cooperative_rebalancing: cooperative,
            ..fast_config()
        };
        let (_, totals_store) = topology();
        let first = Instance::start(&bootstrap, config());
        let expected = totals(&input);
        // Eight tasks: four reading the input, four counting from the repartition topic.
        wait_until("the first instance counts everything", || {
            first.status().tasks.len() == 8 && first.totals(&totals_store) == expected
        })
        .await;
        let restored_before = first.status().restored_records;
        let second = Instance::start(&bootstrap, config());
        let mut fewest_tasks = 8;
        wait_until("the two instances split the tasks", || {
            let (a, b) = (first.status().tasks, second.status().tasks);
            fewest_tasks = fewest_tasks.min(a.len());
            !a.is_empty() && !b.is_empty() && a.len() + b.len() == 8
        })
        .await;
        let restored_by_first = first.status().restored_records - restored_before;
        println!(
            "cooperative {cooperative}: the first instance went down to {fewest_tasks} tasks and restored {restored_by_first} records"
        );
        if cooperative {
            assert!(fewest_tasks > 0, "the first instance stopped every task");
            assert_eq!(restored_by_first, 0, "the kept tasks were restored");
        } else {
            assert!(restored_by_first > 0, "eager rebalancing restored nothing");
        }
        first.stop().await;
        second.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repartition_topics_are_purged_below_the_committed_offsets() {
    // Proves the purge: a re-keyed count reads its repartition topic; once everything is
    // counted and committed, the repartition topic's log start offsets have advanced.
    let broker = Broker::start_with(GROUP_BROKER_ARGS);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "purchases", 2, &[]).await;
    let input = rows(0..1_000, 2);
    produce(&bootstrap, "purchases", &input).await;
    let instance = Instance::start(&bootstrap, fast_config());
    let repartition = "standby-app-by-buyer-repartition";
    wait_until("the repartition topic is purged", || {
        (0..2).all(|partition| watermarks(&bootstrap, repartition, partition).0 > 0)
    })
    .await;
    let (low, high) = watermarks(&bootstrap, repartition, 0);
    println!("repartition partition 0: log start {low}, end {high}");
    instance.stop().await;
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a state directory")
}

fn fast_config() -> RuntimeConfig {
    RuntimeConfig {
        commit_interval: COMMIT_INTERVAL,
        poll_timeout: Duration::from_millis(50),
        // One changelog record per input record, so restores count input records.
        cache_max_bytes: 0,
        ..RuntimeConfig::default()
    }
}

/// Range (eager) rebalancing here: it gives each of two instances partition p of both
/// topics, so each runs one counting task.
fn standby_config(dir: &tempfile::TempDir, standby_replicas: usize) -> RuntimeConfig {
    RuntimeConfig {
        state_dir: Some(dir.path().to_path_buf()),
        standby_replicas,
        cooperative_rebalancing: false,
        ..fast_config()
    }
}

/// Purchases per buyer, re-keyed through a repartition topic, in a queryable store.
fn topology() -> (riffle_processor::Topology, KeyValueStoreHandle<String, i64>) {
    let builder = StreamsBuilder::new("standby-app");
    let totals = builder
        .stream("purchases", StringSerde, StringSerde)
        .select_key(|_key: &String, buyer: &String| buyer.clone())
        .group_by_key_with(Grouped::new(StringSerde, StringSerde).name("by-buyer"))
        .count("totals");
    let handle = totals.store();
    (builder.build().expect("a valid count topology"), handle)
}

type Row = (i32, String, String);

/// Records `range`: keyed by index, valued by one of `KEY_COUNT` buyers, on the key's
/// partition of `partitions`.
fn rows(range: std::ops::Range<usize>, partitions: i32) -> Vec<Row> {
    range
        .map(|index| {
            let key = format!("order-{index}");
            let partition = murmur2_partition(key.as_bytes(), partitions);
            (partition, key, format!("buyer-{}", index % KEY_COUNT))
        })
        .collect()
}

fn totals(rows: &[Row]) -> BTreeMap<String, i64> {
    let mut totals = BTreeMap::new();
    for (_, _, buyer) in rows {
        *totals.entry(buyer.clone()).or_insert(0) += 1;
    }
    totals
}

async fn produce(bootstrap: &str, topic: &str, rows: &[Row]) {
    let producer = future_producer(bootstrap, &[("linger.ms", "5")]);
    let mut deliveries = Vec::new();
    for (partition, key, value) in rows {
        let record = FutureRecord::to(topic)
            .partition(*partition)
            .key(key.as_str())
            .payload(value.as_str());
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

/// The log start and end offsets of a partition (ListOffsets EARLIEST and LATEST).
fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "riffle-it-watermarks")
        .create()
        .expect("create an rdkafka BaseConsumer");
    consumer
        .fetch_watermarks(topic, partition, CLIENT_TIMEOUT)
        .unwrap_or((0, 0))
}

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

/// What this file's tests start instances with and read from them.
impl Instance {
    fn start(bootstrap: &str, config: RuntimeConfig) -> Instance {
        let (topology, _) = topology();
        let settings = [("broker.address.family", "v4")];
        let runner = remote_runner_with_settings(topology, bootstrap, config, &settings)
            .expect("create the remote runner");
        Instance::spawn(runner, WAIT_TIMEOUT)
    }

    fn tasks(&self) -> Vec<TaskId> {
        // The count's tasks: those reading the repartition topic (sub-topology 1).
        self.status()
            .tasks
            .into_iter()
            .filter(|task| task.subtopology == 1)
            .collect()
    }
}
