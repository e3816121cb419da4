//! Exactly-once processing end to end: the `fraud_alerts` example runs with
//! `--processing-guarantee exactly-once`, co-located in a broker and as a remote process
//! against one, and is SIGKILLed at random moments while it works, then restarted, several
//! times. A read_committed consumer then finds every final window result (an alert) in
//! `fraud-alerts` exactly once, with the value an uninterrupted run computes: no alert
//! repeated by reprocessing, none lost, none with a total counted twice.
//!
//! The kill moments come from a seed printed first; `RIFFLE_TEST_SEED=N` replays them.
//! The tests build the example themselves; the remote one needs the `riffle` binary
//! (`cargo build -p riffle-broker`, or `cargo test --workspace`).

mod example_apps;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use example_apps::fraud_alerts::{
    Alert, expected_alerts, payments, produce_payments, produce_window_closers, read_alerts,
};
use example_apps::remote::RemoteExample;
use example_apps::{MINUTE_MS, TestRng, example_binary};
use riffle_integration_tests::Broker;
use riffle_integration_tests::clients::create_topic;

const PAYMENTS_PARTITIONS: i32 = 2;
const WINDOW_COUNT: i64 = 8;
const CARD_COUNT: i64 = 16;
/// Kills per run; the input comes in one chunk more than that.
const KILL_COUNT: u64 = 4;
/// Longest pause between producing a chunk and the kill. Commits come every 100 ms and a
/// restart takes a few hundred, so kills land mid-transaction, between commits, and
/// during the restart's restore.
const KILL_DELAY_MS_MAX: u64 = 1_200;
/// No initial rebalance delay, so every (re)start takes its partitions at once.
const REBALANCE_DELAY_ARGS: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];
const EXACTLY_ONCE_ARGS: &[&str] = &["--processing-guarantee", "exactly-once"];

#[tokio::test(flavor = "multi_thread")]
async fn embedded_exactly_once_emits_each_alert_once_across_kills() {
    // Proves the co-located runtime's exactly-once: the broker process with the topology
    // inside is SIGKILLed at random moments (open transactions, unflushed work and all)
    // and restarted on its data directory; read_committed, the alerts are exactly the
    // final window results, each once.
    let started = Instant::now();
    let mut broker = Broker::builder()
        .binary(&example_binary("fraud_alerts"))
        .args(REBALANCE_DELAY_ARGS)
        .args(EXACTLY_ONCE_ARGS)
        .start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "payments", PAYMENTS_PARTITIONS, &[]).await;
    let (records, expected) = run_with_kills(&bootstrap, || {
        broker.kill();
        broker.restart();
    })
    .await;
    assert_each_alert_once(&records, &expected);
    broker.stop();
    println!(
        "embedded: {KILL_COUNT} kills, done in {:.1?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_exactly_once_emits_each_alert_once_across_kills() {
    // Proves the remote runtime's exactly-once against the real broker: the processor
    // process is SIGKILLed at random moments and restarted with the same instance id,
    // whose transactional id fences the dead one and aborts its open transaction; the
    // alerts read read_committed are exactly the final window results, each once.
    let started = Instant::now();
    let broker = Broker::start_with(REBALANCE_DELAY_ARGS);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "payments", PAYMENTS_PARTITIONS, &[]).await;
    // Persistent stores with checkpoints: each restart restores from them, not from scratch.
    let state_dir = tempfile::tempdir().expect("a state directory");
    let state_arg = state_dir.path().to_str().expect("a UTF-8 path").to_string();
    let mut args = EXACTLY_ONCE_ARGS.to_vec();
    args.extend([
        "--instance-id",
        "it-remote-1",
        "--state-dir",
        state_arg.as_str(),
    ]);
    let mut processor = RemoteExample::start("fraud_alerts", &bootstrap, &args);
    let (records, expected) = run_with_kills(&bootstrap, || {
        processor.kill();
        processor.restart();
    })
    .await;
    assert_each_alert_once(&records, &expected);
    processor.stop();
    println!(
        "remote: {KILL_COUNT} kills, done in {:.1?}",
        started.elapsed()
    );
}

/// Produces the payments in `KILL_COUNT + 1` chunks; after each but the last, waits a
/// random moment and calls `kill_and_restart`. Then closes every window and returns every
/// alert record a read_committed consumer reads, and the alerts an uninterrupted run
/// emits.
async fn run_with_kills(
    bootstrap: &str,
    mut kill_and_restart: impl FnMut(),
) -> (Vec<Alert>, BTreeSet<Alert>) {
    let mut rng = TestRng::from_env_or_clock();
    let start_ms = example_apps::start_ms();
    let payments = payments(start_ms, WINDOW_COUNT, CARD_COUNT);
    let chunk_count = usize::try_from(KILL_COUNT + 1).expect("a few chunks");
    let chunk_size = payments.len().div_ceil(chunk_count);
    for (index, chunk) in payments.chunks(chunk_size).enumerate() {
        produce_payments(bootstrap, chunk).await;
        if u64::try_from(index).is_ok_and(|index| index < KILL_COUNT) {
            let delay_ms = rng.below(KILL_DELAY_MS_MAX);
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            println!("kill {} after {delay_ms} ms", index + 1);
            kill_and_restart();
        }
    }
    let closing_ms = start_ms + (WINDOW_COUNT + 5) * MINUTE_MS;
    produce_window_closers(bootstrap, PAYMENTS_PARTITIONS, closing_ms).await;
    let expected = expected_alerts(&payments);
    let (bootstrap, wanted) = (bootstrap.to_string(), expected.clone());
    let records = tokio::task::spawn_blocking(move || read_alerts(&bootstrap, &wanted))
        .await
        .expect("the reader thread");
    (records, expected)
}

/// Every alert of an uninterrupted run is in `records` exactly once, and nothing else is.
fn assert_each_alert_once(records: &[Alert], expected: &BTreeSet<Alert>) {
    assert!(
        expected.len() >= 20,
        "the data must raise many alerts: {expected:?}"
    );
    let mut counts: BTreeMap<&Alert, usize> = BTreeMap::new();
    for record in records {
        *counts.entry(record).or_default() += 1;
    }
    let repeated: Vec<_> = counts.iter().filter(|(_, count)| **count > 1).collect();
    let unexpected: Vec<_> = counts.keys().filter(|a| !expected.contains(**a)).collect();
    let missing: Vec<_> = expected
        .iter()
        .filter(|a| !counts.contains_key(a))
        .collect();
    assert!(
        repeated.is_empty() && unexpected.is_empty() && missing.is_empty(),
        "{} alert records for {} expected alerts\nrepeated: {repeated:?}\n\
         not in an uninterrupted run (wrong values): {unexpected:?}\nmissing: {missing:?}",
        records.len(),
        expected.len()
    );
    println!("{} alerts, each exactly once", records.len());
}
