//! The `fraud_alerts` example as a user runs it: one process that is a broker with the
//! topology inside it. Real rdkafka clients produce payments and read alerts; `riffle groups`
//! shows the application as a consumer group with committed offsets and lag; a SIGKILL
//! mid-stream and a restart on the same data directory lose no alert.
//!
//! The test builds the example itself; `riffle groups` needs the `riffle` binary
//! (`cargo build -p riffle-broker`, or `cargo test --workspace`).

mod example_apps;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use example_apps::{Input, MINUTE_MS};
use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use riffle_integration_tests::Broker;
use riffle_integration_tests::clients::{
    CLIENT_TIMEOUT, assigned_consumer, create_topic, future_producer,
};
use riffle_integration_tests::riffle_cli::riffle_groups;

/// The example's application id, hence its consumer group.
const APPLICATION_ID: &str = "fraud-alerts";
const PAYMENTS_PARTITIONS: i32 = 2;
const WINDOW_COUNT: i64 = 6;
const CARD_COUNT: i64 = 12;
/// The example's thresholds.
const MAX_TOTAL_CENTS: i64 = 100_000;
const MAX_PAYMENTS: i64 = 5;
/// How long the alerts may take to appear after the last payment.
const ALERTS_TIMEOUT: Duration = Duration::from_secs(90);

/// One payment: card, amount, event time.
#[derive(Debug, Clone)]
struct Payment {
    card: String,
    amount_cents: i64,
    timestamp_ms: i64,
}

/// An alert's content: card, window start, window end, payments, total.
type Alert = (String, i64, i64, i64, i64);

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
    let payments = payments(start_ms);
    let expected = expected_alerts(&payments);
    assert!(
        expected.len() >= 5,
        "the data must raise alerts: {expected:?}"
    );
    let (first, rest) = payments.split_at(payments.len() / 3);
    let (second, third) = rest.split_at(rest.len() / 2);

    produce(&bootstrap, first).await;
    wait_for_committed_offsets(&broker);
    // Processed at once but committed only within a second: the kill lands before that.
    produce(&bootstrap, second).await;
    broker.kill();
    broker.restart();
    produce(&bootstrap, third).await;
    produce_window_closers(&bootstrap, start_ms).await;

    let (alerts, read_count) = read_alerts(&bootstrap, &expected);
    println!("{read_count} alert records, {} distinct", alerts.len());
    assert_eq!(
        alerts, expected,
        "alerts differ from an uninterrupted run's"
    );
    wait_for_zero_lag(&broker);
    broker.stop();
}

/// Deterministic payments in event-time order: per card and minute, between 0 and 8 small
/// payments, and on some a large one, so both thresholds fire in some windows only.
fn payments(start_ms: i64) -> Vec<Payment> {
    let mut payments = Vec::new();
    for window in 0..WINDOW_COUNT {
        for card in 0..CARD_COUNT {
            let count = (card * 3 + window * 5) % 9;
            let large = (card + window) % 7 == 0;
            for index in 0..count + i64::from(large) {
                let amount_cents = if index == count {
                    120_000
                } else {
                    (card + 1) * 1_000 + window * 37
                };
                payments.push(Payment {
                    card: format!("card-{card}"),
                    amount_cents,
                    timestamp_ms: start_ms + window * MINUTE_MS + index * 1_000 + card * 50,
                });
            }
        }
    }
    payments.sort_by_key(|payment| payment.timestamp_ms);
    payments
}

/// What an uninterrupted run emits: every suspicious card-window, once.
fn expected_alerts(payments: &[Payment]) -> BTreeSet<Alert> {
    let mut windows: BTreeMap<(String, i64), (i64, i64)> = BTreeMap::new();
    for payment in payments {
        let start_ms = payment.timestamp_ms - payment.timestamp_ms.rem_euclid(MINUTE_MS);
        let spending = windows.entry((payment.card.clone(), start_ms)).or_default();
        spending.0 += 1;
        spending.1 += payment.amount_cents;
    }
    windows
        .into_iter()
        .filter(|(_, (count, total))| *count > MAX_PAYMENTS || *total > MAX_TOTAL_CENTS)
        .map(|((card, start_ms), (count, total))| {
            (card, start_ms, start_ms + MINUTE_MS, count, total)
        })
        .collect()
}

async fn produce(bootstrap: &str, payments: &[Payment]) {
    let values: Vec<String> = payments
        .iter()
        .map(|payment| {
            format!(
                r#"{{"card":"{}","amount_cents":{},"merchant":"m1"}}"#,
                payment.card, payment.amount_cents
            )
        })
        .collect();
    let inputs: Vec<Input> = payments
        .iter()
        .zip(&values)
        .map(|(payment, value)| Input {
            key: &payment.card,
            value: Some(value.as_bytes()),
            timestamp_ms: payment.timestamp_ms,
        })
        .collect();
    example_apps::produce(bootstrap, "payments", &inputs).await;
}

/// A small payment far later on every partition: stream time is per partition, and this
/// moves each past the end plus grace of every window above, closing them.
async fn produce_window_closers(bootstrap: &str, start_ms: i64) {
    let producer = future_producer(bootstrap, &[]);
    for partition in 0..PAYMENTS_PARTITIONS {
        let key = format!("closer-{partition}");
        let value = format!(r#"{{"card":"{key}","amount_cents":1,"merchant":"clock"}}"#);
        let record = FutureRecord::to("payments")
            .key(&key)
            .payload(&value)
            .partition(partition)
            .timestamp(start_ms + (WINDOW_COUNT + 5) * MINUTE_MS);
        if let Err((error, _)) = producer.send(record, Timeout::After(CLIENT_TIMEOUT)).await {
            panic!("producing a window closer failed: {error}");
        }
    }
}

/// Reads `fraud-alerts` until every expected alert arrived (or the timeout), then a little
/// longer to catch unexpected ones. Returns the distinct alerts and how many records held them.
fn read_alerts(bootstrap: &str, expected: &BTreeSet<Alert>) -> (BTreeSet<Alert>, usize) {
    let consumer = assigned_consumer(bootstrap, "fraud-alerts", &[(0, Offset::Beginning)]);
    let mut alerts = BTreeSet::new();
    let mut read_count = 0;
    let deadline = Instant::now() + ALERTS_TIMEOUT;
    let mut settle_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if settle_until.is_some_and(|until| now >= until) || now >= deadline {
            break;
        }
        if settle_until.is_none() && expected.is_subset(&alerts) {
            settle_until = Some(now + Duration::from_secs(3));
        }
        // Before the sink topic exists the consumer reports errors; keep polling.
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let payload = message.payload().expect("an alert has a value");
        alerts.insert(parse_alert(payload));
        read_count += 1;
    }
    drop(consumer.unassign());
    (alerts, read_count)
}

fn parse_alert(payload: &[u8]) -> Alert {
    let value: serde_json::Value = serde_json::from_slice(payload).expect("alerts are JSON");
    let number = |field: &str| {
        value[field]
            .as_i64()
            .unwrap_or_else(|| panic!("alert field {field} in {value}"))
    };
    let card = value["card"].as_str().expect("alert card").to_owned();
    (
        card,
        number("window_start_ms"),
        number("window_end_ms"),
        number("payments"),
        number("total_cents"),
    )
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
