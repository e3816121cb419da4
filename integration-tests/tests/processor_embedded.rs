//! The `fraud_alerts` example as a user runs it: one process that is a broker with the
//! topology inside it. Real rdkafka clients produce payments and read alerts; `riffle groups`
//! shows the application as a consumer group with committed offsets and lag; a SIGKILL
//! mid-stream and a restart on the same data directory lose no alert and restore only the
//! changelog tail; a clean restart restores nothing, a wiped state directory everything.
//!
//! The test builds the example itself; `riffle groups` needs the `riffle` binary
//! (`cargo build -p riffle-broker`, or `cargo test --workspace`).

mod example_apps;

use std::time::{Duration, Instant};

use example_apps::MINUTE_MS;
use example_apps::fraud_alerts::{
    ALERTS_TIMEOUT, APPLICATION_ID, expected_alerts, payments, produce_payments,
    produce_window_closers, read_alerts,
};
use riffle_integration_tests::Broker;
use riffle_integration_tests::clients::create_topic;
use riffle_integration_tests::riffle_cli::riffle_groups;

const PAYMENTS_PARTITIONS: i32 = 2;
const WINDOW_COUNT: i64 = 6;
const CARD_COUNT: i64 = 12;

#[tokio::test(flavor = "multi_thread")]
async fn fraud_alerts_survive_a_kill_mid_stream() {
    // Proves the embedded runtime end to end: the alerts read from `fraud-alerts` are
    // exactly the final window results of the payments (as an uninterrupted run computes
    // them), though the process was SIGKILLed with processed but uncommitted input; and the
    // application's progress is an ordinary consumer group with committed offsets and lag.
    let mut broker = example_apps::start_example("fraud_alerts");
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "payments", PAYMENTS_PARTITIONS, &[]).await;
    let start_ms = example_apps::start_ms();
    let payments = payments(start_ms, WINDOW_COUNT, CARD_COUNT);
    let expected = expected_alerts(&payments);
    assert!(
        expected.len() >= 5,
        "the data must raise alerts: {expected:?}"
    );
    let (first, rest) = payments.split_at(payments.len() / 3);
    let (second, third) = rest.split_at(rest.len() / 2);

    produce_payments(&bootstrap, first).await;
    wait_for_committed_offsets(&broker);
    // Processed at once but committed only within a second: the kill lands before that.
    produce_payments(&bootstrap, second).await;
    broker.kill();
    let log_before_restart = log_length(&broker);
    broker.restart();
    produce_payments(&bootstrap, third).await;
    let closing_ms = start_ms + (WINDOW_COUNT + 5) * MINUTE_MS;
    produce_window_closers(&bootstrap, PAYMENTS_PARTITIONS, closing_ms).await;

    let records = read_alerts(&bootstrap, &expected);
    let alerts: std::collections::BTreeSet<_> = records.iter().cloned().collect();
    println!("{} alert records, {} distinct", records.len(), alerts.len());
    assert_eq!(
        alerts, expected,
        "alerts differ from an uninterrupted run's"
    );
    wait_for_zero_lag(&broker);
    // Each payment before the kill wrote one changelog record; the restore after it read
    // only the tail past the last checkpoint (the stores are on disk).
    let after_kill = restored_records(&broker, log_before_restart);
    let before_kill = first.len() + second.len();
    println!("restored {after_kill} changelog records after the kill ({before_kill} written)");
    assert!(
        after_kill <= second.len(),
        "restored {after_kill} records after the kill: more than the uncommitted tail ({} payments)",
        second.len()
    );

    // A clean stop leaves nothing to restore.
    broker.stop();
    let log_before_clean = log_length(&broker);
    broker.restart();
    wait_for_zero_lag(&broker);
    assert_eq!(restored_records(&broker, log_before_clean), 0);

    // A wiped state directory restores everything from the changelogs.
    broker.stop();
    let state_dir = broker.data_dir().join(".processor-state");
    std::fs::remove_dir_all(&state_dir).expect("the co-located state directory exists");
    let log_before_wipe = log_length(&broker);
    broker.restart();
    wait_for_zero_lag(&broker);
    let wiped = restored_records(&broker, log_before_wipe);
    println!("restored {wiped} changelog records into a wiped state directory");
    assert!(wiped >= payments.len(), "restored only {wiped} records");
    broker.stop();
}

/// Bytes in the broker's log so far.
fn log_length(broker: &Broker) -> usize {
    std::fs::read(broker.log_path()).map_or(0, |log| log.len())
}

/// Changelog records the `changelog restored` lines after byte `from` of the log count,
/// once every task logged its restore.
fn restored_records(broker: &Broker, from: usize) -> usize {
    let deadline = Instant::now() + ALERTS_TIMEOUT;
    let text = loop {
        let log = std::fs::read(broker.log_path()).unwrap_or_default();
        let text = String::from_utf8_lossy(log.get(from..).unwrap_or_default()).into_owned();
        let restored_tasks = text.matches("task assigned and restored").count();
        if restored_tasks >= usize::try_from(PAYMENTS_PARTITIONS).unwrap_or(0) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the tasks were never restored\n{}",
            broker.log_tail()
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

/// The `payments` rows of `riffle groups describe fraud-alerts`: partition, committed
/// offset (`-` when none), lag.
fn payments_rows(broker: &Broker) -> Vec<(String, String, String)> {
    let output = riffle_groups(broker, &["describe", APPLICATION_ID]);
    output
        .table_rows()
        .into_iter()
        .filter(|row| row.len() >= 6 && row[1] == "payments")
        .map(|row| (row[2].clone(), row[3].clone(), row[5].clone()))
        .collect()
}

/// Waits until some payments partition shows a committed offset.
fn wait_for_committed_offsets(broker: &Broker) {
    wait_for_rows(broker, "a committed offset", |rows| {
        rows.iter()
            .any(|(_, offset, _)| offset.parse::<i64>().is_ok_and(|o| o > 0))
    });
}

/// Waits until every payments partition shows a committed offset and lag 0.
fn wait_for_zero_lag(broker: &Broker) {
    wait_for_rows(broker, "lag 0 on every partition", |rows| {
        rows.len() == usize::try_from(PAYMENTS_PARTITIONS).unwrap_or(0)
            && rows
                .iter()
                .all(|(_, offset, lag)| offset != "-" && lag == "0")
    });
}

/// Polls `riffle groups describe` until its payments rows satisfy `done`.
fn wait_for_rows(broker: &Broker, what: &str, done: impl Fn(&[(String, String, String)]) -> bool) {
    let deadline = Instant::now() + ALERTS_TIMEOUT;
    loop {
        let rows = payments_rows(broker);
        if done(&rows) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{APPLICATION_ID} never showed {what}: {rows:?}\n{}",
            broker.log_tail()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
