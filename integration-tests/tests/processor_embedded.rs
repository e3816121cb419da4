//! The `fraud_alerts` example as a user runs it: one process that is a broker with the
//! topology inside it. Real rdkafka clients produce payments and read alerts; `riffle groups`
//! shows the application as a consumer group with committed offsets and lag; a SIGKILL
//! mid-stream and a restart on the same data directory lose no alert.
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
    broker.stop();
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
