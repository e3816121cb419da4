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
use riffle_integration_tests::clients::create_topic;

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
