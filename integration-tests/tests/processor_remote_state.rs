//! The remote runtime's state directory, end to end: the `fraud_alerts` example runs with
//! `--remote` and `--state-dir` as its own process against the real broker. A SIGKILL
//! mid-stream and a restart on the same state directory lose no alert and restore only
//! the changelog tail past the checkpoints; a second instance on the same state directory
//! stops at start, naming the lock.
//!
//! The test builds the example itself and needs the `riffle` binary (`cargo build -p
//! riffle-broker`, or `cargo test --workspace`).

mod example_apps;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use example_apps::fraud_alerts::{
    ALERTS_TIMEOUT, expected_alerts, payments, produce_payments, produce_window_closers,
    read_alerts,
};
use example_apps::remote::RemoteExample;
use example_apps::{MINUTE_MS, start_ms};
use riffle_integration_tests::Broker;
use riffle_integration_tests::clients::{create_topic, read_to_end};

const PAYMENTS_PARTITIONS: i32 = 2;
const WINDOW_COUNT: i64 = 6;
const CARD_COUNT: i64 = 12;
/// Longer than the default commit interval (1 s), so the first payments are committed
/// and checkpointed before the kill.
const SETTLE_TIME: Duration = Duration::from_millis(3_000);

#[tokio::test(flavor = "multi_thread")]
async fn remote_state_survives_a_kill_restores_the_tail_and_is_locked() {
    // Proves persistent stores under the remote runtime: after a SIGKILL with processed,
    // uncommitted payments, the restarted process restores at most the changelog records
    // written since its last checkpoint, and the alerts are exactly an uninterrupted
    // run's; meanwhile a second process on the same state directory is refused.
    let broker = Broker::start_with(&["--group-initial-rebalance-delay-ms", "0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "payments", PAYMENTS_PARTITIONS, &[]).await;
    let state_dir = tempfile::tempdir().expect("a state directory");
    let state_arg = state_dir.path().to_str().expect("a UTF-8 path").to_string();
    let args = [
        "--state-dir",
        state_arg.as_str(),
        "--instance-id",
        "it-state-1",
    ];
    let mut processor = RemoteExample::start("fraud_alerts", &bootstrap, &args);
    wait_for_restored_tasks(&processor, 0);

    let start_ms = start_ms();
    let payments = payments(start_ms, WINDOW_COUNT, CARD_COUNT);
    let expected = expected_alerts(&payments);
    let (first, rest) = payments.split_at(payments.len() / 3);
    let (second, third) = rest.split_at(rest.len() / 2);
    produce_payments(&bootstrap, first).await;
    tokio::time::sleep(SETTLE_TIME).await;

    let second_args = [
        "--state-dir",
        state_arg.as_str(),
        "--instance-id",
        "it-state-2",
    ];
    let mut intruder = RemoteExample::start("fraud_alerts", &bootstrap, &second_args);
    let exit = intruder.wait_for_exit(Duration::from_secs(60));
    assert!(
        exit.is_some_and(|status| !status.success()),
        "a second instance on the state directory did not fail: {exit:?}\n{}",
        intruder.log_tail()
    );
    assert!(
        intruder
            .log_text()
            .contains("another instance of this application runs on it"),
        "{}",
        intruder.log_tail()
    );

    produce_payments(&bootstrap, second).await;
    processor.kill();
    let log_before_restart = processor.log_text().len();
    processor.restart();
    let restored = wait_for_restored_tasks(&processor, log_before_restart);
    println!("restored {restored} changelog records after the kill");
    assert!(
        restored <= second.len(),
        "restored {restored} records: more than the uncommitted tail ({} payments)\n{}",
        second.len(),
        processor.log_tail()
    );
    produce_payments(&bootstrap, third).await;
    let closing_ms = start_ms + (WINDOW_COUNT + 5) * MINUTE_MS;
    produce_window_closers(&bootstrap, PAYMENTS_PARTITIONS, closing_ms).await;
    let alerts: BTreeSet<_> = read_alerts(&bootstrap, &expected).into_iter().collect();
    assert_eq!(
        alerts, expected,
        "alerts differ from an uninterrupted run's"
    );
    processor.stop();
}

/// The group's wait for a SIGKILLed instance: short, so its task moves soon.
const SESSION_TIMEOUT_MS: &str = "6000";
/// The changelog of fraud_alerts' one store.
const CHANGELOG: &str = "fraud-alerts-spending-per-minute-changelog";

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_replica_takes_over_a_killed_instance_s_task_without_a_full_restore() {
    // Proves standby replicas across processes: two instances with `--standby-replicas 1`
    // each keep a warm copy of the other's store; after a SIGKILL (no commit, no leave: the
    // group waits out the session timeout) the survivor takes the dead one's task and
    // restores fewer changelog records than the partition holds, and the alerts are
    // exactly an uninterrupted run's.
    let broker = Broker::start_with(&["--group-initial-rebalance-delay-ms", "0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "payments", PAYMENTS_PARTITIONS, &[]).await;
    let dirs = [tempfile::tempdir(), tempfile::tempdir()].map(|dir| dir.expect("a state dir"));
    let paths: Vec<String> = dirs
        .iter()
        .map(|dir| dir.path().to_str().expect("a UTF-8 path").to_string())
        .collect();
    let instance_args = |index: usize| {
        vec![
            "--state-dir",
            paths[index].as_str(),
            "--instance-id",
            if index == 0 { "standby-a" } else { "standby-b" },
            "--standby-replicas",
            "1",
            "--session-timeout-ms",
            SESSION_TIMEOUT_MS,
        ]
    };
    let mut first = RemoteExample::start("fraud_alerts", &bootstrap, &instance_args(0));
    wait_for_restored_tasks(&first, 0);
    let mut second = RemoteExample::start("fraud_alerts", &bootstrap, &instance_args(1));
    wait_for_log(&second, 0, "task assigned and restored");

    let start_ms = start_ms();
    let payments = payments(start_ms, WINDOW_COUNT, CARD_COUNT);
    let expected = expected_alerts(&payments);
    let (before_kill, after_kill) = payments.split_at(payments.len() * 2 / 3);
    produce_payments(&bootstrap, before_kill).await;
    // Commits (1 s) and the standbys' catch-ups (at most once a second) after them.
    tokio::time::sleep(SETTLE_TIME).await;
    let smallest_partition = (0..PAYMENTS_PARTITIONS)
        .map(|partition| read_to_end(&bootstrap, CHANGELOG, partition).len())
        .min()
        .unwrap_or(0);
    assert!(
        smallest_partition > 0,
        "the changelog has a partition with no record"
    );

    let log_before_kill = second.log_text().len();
    first.kill();
    let restored = wait_for_log(&second, log_before_kill, "task assigned and restored");
    println!(
        "the survivor restored {restored} changelog records taking over (a full restore: at least {smallest_partition})"
    );
    assert!(
        restored < smallest_partition,
        "restored {restored} records: no fewer than a full restore ({smallest_partition})\n{}",
        second.log_tail()
    );
    produce_payments(&bootstrap, after_kill).await;
    let closing_ms = start_ms + (WINDOW_COUNT + 5) * MINUTE_MS;
    produce_window_closers(&bootstrap, PAYMENTS_PARTITIONS, closing_ms).await;
    let alerts: BTreeSet<_> = read_alerts(&bootstrap, &expected).into_iter().collect();
    assert_eq!(
        alerts, expected,
        "alerts differ from an uninterrupted run's"
    );
    second.stop();
}

/// Waits until the processor log after byte `from` has `line`; returns the changelog
/// records restored in that part of the log.
fn wait_for_log(processor: &RemoteExample, from: usize, line: &str) -> usize {
    let deadline = Instant::now() + ALERTS_TIMEOUT;
    loop {
        let log = processor.log_text();
        let text = log.get(from..).unwrap_or_default();
        if text.contains(line) {
            return restored_records(text);
        }
        assert!(
            Instant::now() < deadline,
            "the log never said {line:?}\n{}",
            processor.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until every task logged its restore after byte `from` of the processor log;
/// returns the changelog records those restores applied.
fn wait_for_restored_tasks(processor: &RemoteExample, from: usize) -> usize {
    let deadline = Instant::now() + ALERTS_TIMEOUT;
    let text = loop {
        let log = processor.log_text();
        let text = log.get(from..).unwrap_or_default().to_string();
        let restored_tasks = text.matches("task assigned and restored").count();
        if restored_tasks >= usize::try_from(PAYMENTS_PARTITIONS).unwrap_or(0) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the tasks were never restored\n{}",
            processor.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    restored_records(&text)
}

/// The changelog records the restores logged in `text` applied.
fn restored_records(text: &str) -> usize {
    text.lines()
        .filter(|line| line.contains("changelog restored"))
        .filter_map(|line| {
            let field = line
                .split_whitespace()
                .find(|f| f.starts_with("records="))?;
            field.trim_start_matches("records=").parse::<usize>().ok()
        })
        .sum()
}
