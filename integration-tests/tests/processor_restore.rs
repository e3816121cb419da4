//! Restore speed, measured against the real `riffle` binary in one run: a 1M-key store's
//! changelog is consumed raw by an rdkafka consumer, then restored by the remote runtime
//! into an empty state directory, then (after a clean stop) the runtime starts again on
//! that state directory. The targets: the full restore runs at least 0.5x the raw
//! consume rate, and the restart with checkpoints takes at most 0.05x the full restore.
//!
//! A benchmark, so ignored by default (a debug build measures the debug build):
//! `cargo test --release -p riffle-integration-tests --test processor_restore -- --ignored --nocapture`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use riffle_integration_tests::Broker;
use riffle_integration_tests::clients::{client_config, create_topic, future_producer};
use riffle_processor::runtime::remote::RemoteBackend;
use riffle_processor::runtime::{Runner, RuntimeConfig, RuntimeStatus};
use riffle_processor::{CommitMetadata, Grouped, StreamsBuilder, StringSerde, Topology};
use tokio::sync::oneshot;

const APPLICATION_ID: &str = "restore-bench";
const CHANGELOG: &str = "restore-bench-counts-changelog";
const KEY_COUNT: i64 = 1_000_000;
const WAIT_TIMEOUT: Duration = Duration::from_secs(600);

/// Words counted per key: the store `counts` is a 1M-key store once restored.
fn topology() -> Topology {
    let builder = StreamsBuilder::new(APPLICATION_ID);
    builder
        .stream("bench-input", StringSerde, StringSerde)
        .group_by_key(Grouped::new(StringSerde, StringSerde))
        .count("counts");
    builder.build().expect("a valid topology")
}

/// Writes one changelog record per key, as a count of 1 (i64 big-endian).
async fn fill_changelog(bootstrap: &str) {
    let producer = future_producer(bootstrap, &[("linger.ms", "20"), ("batch.size", "1000000")]);
    let value = 1i64.to_be_bytes();
    let mut deliveries = Vec::new();
    for index in 0..KEY_COUNT {
        let key = format!("key-{index:07}");
        loop {
            let record = FutureRecord::to(CHANGELOG)
                .partition(0)
                .key(&key)
                .payload(&value[..]);
            match producer.send_result(record) {
                Ok(delivery) => {
                    deliveries.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(_), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((error, _)) => panic!("queue a changelog record: {error}"),
            }
        }
        if deliveries.len() >= 100_000 {
            for delivery in deliveries.drain(..) {
                let sent = delivery.await.expect("the producer is alive");
                sent.unwrap_or_else(|(error, _)| panic!("produce: {error}"));
            }
        }
    }
    for delivery in deliveries {
        let sent = delivery.await.expect("the producer is alive");
        sent.unwrap_or_else(|(error, _)| panic!("produce: {error}"));
    }
}

/// Commits input offset 0 with metadata saying the changelog is covered to its end, as a
/// runtime that counted 1M keys would have.
fn commit_restore_point(bootstrap: &str) {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", APPLICATION_ID)
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let metadata = CommitMetadata {
        stream_time_ms: 0,
        changelog_end_offsets: BTreeMap::from([(format!("{CHANGELOG}-0"), KEY_COUNT)]),
        operator_progress: BTreeMap::new(),
    };
    let mut list = TopicPartitionList::new();
    let mut element = list.add_partition("bench-input", 0);
    element.set_offset(Offset::Offset(0)).expect("an offset");
    element.set_metadata(metadata.encode());
    consumer
        .commit(&list, CommitMode::Sync)
        .expect("commit the restore point");
}

/// Seconds an rdkafka consumer takes to read the whole changelog.
fn raw_consume_seconds(bootstrap: &str) -> f64 {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "raw-reader")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(CHANGELOG, 0, Offset::Beginning)
        .expect("a partition");
    consumer.assign(&list).expect("assign");
    let started = Instant::now();
    let mut read = 0i64;
    loop {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(_)) => read += 1,
            Some(Err(KafkaError::PartitionEOF(_))) if read >= KEY_COUNT => break,
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(error)) => panic!("raw consume: {error}"),
            None => panic!("raw consume stalled after {read} records"),
        }
    }
    started.elapsed().as_secs_f64()
}

/// Starts a runner on `state_dir`, waits until its task is restored and running, and stops
/// it cleanly; returns the seconds to the running task and the final status.
async fn restore_once(bootstrap: &str, state_dir: &std::path::Path) -> (f64, RuntimeStatus) {
    let config = RuntimeConfig {
        state_dir: Some(state_dir.to_path_buf()),
        ..RuntimeConfig::default()
    };
    let backend = RemoteBackend::new(bootstrap, &[]).expect("a backend");
    let runner = Runner::new(topology(), backend, config);
    let status = runner.status();
    let (stop, stopped) = oneshot::channel::<()>();
    let started = Instant::now();
    let running = tokio::spawn(runner.run_until(async {
        let _ = stopped.await;
    }));
    let deadline = Instant::now() + WAIT_TIMEOUT;
    while status.lock().unwrap().tasks.is_empty() {
        assert!(Instant::now() < deadline, "the task was never restored");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = stop.send(());
    running.await.expect("the runner task").expect("the runner");
    let final_status = status.lock().unwrap().clone();
    (seconds, final_status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run with --release --ignored"]
async fn restore_runs_near_the_raw_consume_rate_and_a_clean_restart_restores_nothing() {
    // Proves the restore targets in one run (see the module doc): full restore
    // rate against raw consume rate, and a restart with checkpoints against the full
    // restore.
    let broker = Broker::start_with(&["--group-initial-rebalance-delay-ms", "0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "bench-input", 1, &[]).await;
    create_topic(&bootstrap, CHANGELOG, 1, &[("cleanup.policy", "compact")]).await;
    fill_changelog(&bootstrap).await;
    commit_restore_point(&bootstrap);
    let raw_seconds = raw_consume_seconds(&bootstrap);

    let state_dir = tempfile::tempdir().expect("a state directory");
    let (full_seconds, full) = restore_once(&bootstrap, state_dir.path()).await;
    assert_eq!(full.restored_records, u64::try_from(KEY_COUNT).unwrap());
    let (restart_seconds, restart) = restore_once(&bootstrap, state_dir.path()).await;
    assert_eq!(restart.restored_records, 0);

    // The restore itself (RuntimeStatus::restore_time); the group join before it is the
    // same for both starts and no part of restoring.
    let full_restore = full.restore_time.as_secs_f64();
    let restart_restore = restart.restore_time.as_secs_f64();
    let raw_rate = KEY_COUNT as f64 / raw_seconds;
    let restore_rate = KEY_COUNT as f64 / full_restore;
    println!(
        "raw consume {raw_seconds:.2} s ({raw_rate:.0} records/s); full restore {full_restore:.2} s ({restore_rate:.0} records/s, {:.2}x raw; {full_seconds:.2} s from start to a running task); restart after a clean stop {restart_restore:.3} s ({:.4}x the full restore; {restart_seconds:.2} s from start)",
        restore_rate / raw_rate,
        restart_restore / full_restore
    );
    assert!(
        restore_rate >= 0.5 * raw_rate,
        "restore slower than half the raw consume rate"
    );
    assert!(
        restart_restore <= 0.05 * full_restore,
        "a clean restart's restore took more than 5% of the full restore"
    );
}
