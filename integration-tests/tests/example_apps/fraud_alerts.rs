//! The `fraud_alerts` example's data as the end-to-end tests use it: deterministic
//! payments, the alerts an uninterrupted run emits for them, and reading the alerts back.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use riffle_integration_tests::clients::{CLIENT_TIMEOUT, client_config, future_producer};

use super::{Input, MINUTE_MS};

/// The example's application id, hence its consumer group.
pub const APPLICATION_ID: &str = "fraud-alerts";
/// The example's input and output topics.
pub const PAYMENTS_TOPIC: &str = "payments";
pub const ALERTS_TOPIC: &str = "fraud-alerts";
/// The example's thresholds.
const MAX_TOTAL_CENTS: i64 = 100_000;
const MAX_PAYMENTS: i64 = 5;
/// How long the alerts may take to appear after the last payment.
pub const ALERTS_TIMEOUT: Duration = Duration::from_secs(90);
/// After every expected alert arrived, how long to keep reading for unexpected ones.
const ALERTS_SETTLE: Duration = Duration::from_secs(3);

/// One payment: card, amount, event time.
#[derive(Debug, Clone)]
pub struct Payment {
    pub card: String,
    pub amount_cents: i64,
    pub timestamp_ms: i64,
}

/// An alert's content: card, window start, window end, payments, total.
pub type Alert = (String, i64, i64, i64, i64);

/// Deterministic payments in event-time order over `window_count` minutes and
/// `card_count` cards: per card and minute between 0 and 8 small payments, and on some a
/// large one, so both thresholds fire in some windows only.
pub fn payments(start_ms: i64, window_count: i64, card_count: i64) -> Vec<Payment> {
    let mut payments = Vec::new();
    for window in 0..window_count {
        for card in 0..card_count {
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
pub fn expected_alerts(payments: &[Payment]) -> BTreeSet<Alert> {
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

/// Produces `payments` to the example's input topic and waits for every acknowledgement.
pub async fn produce_payments(bootstrap: &str, payments: &[Payment]) {
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
    super::produce(bootstrap, PAYMENTS_TOPIC, &inputs).await;
}

/// A small payment at `timestamp_ms` on each of `partitions`: stream time is per
/// partition, and this moves each past the end plus grace of every earlier window,
/// closing them.
pub async fn produce_window_closers(bootstrap: &str, partitions: i32, timestamp_ms: i64) {
    let producer = future_producer(bootstrap, &[]);
    for partition in 0..partitions {
        let key = format!("closer-{partition}");
        let value = format!(r#"{{"card":"{key}","amount_cents":1,"merchant":"clock"}}"#);
        let record = FutureRecord::to(PAYMENTS_TOPIC)
            .key(&key)
            .payload(&value)
            .partition(partition)
            .timestamp(timestamp_ms);
        if let Err((error, _)) = producer.send(record, Timeout::After(CLIENT_TIMEOUT)).await {
            panic!("producing a window closer failed: {error}");
        }
    }
}

/// Reads the alerts topic from the start with `isolation.level=read_committed` until every
/// expected alert arrived (or [`ALERTS_TIMEOUT`]), then a little longer to catch
/// unexpected ones. Returns every alert record read, in order, repeats included.
pub fn read_alerts(bootstrap: &str, expected: &BTreeSet<Alert>) -> Vec<Alert> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "riffle-it-fraud-alerts-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("create an rdkafka BaseConsumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(ALERTS_TOPIC, 0, Offset::Beginning)
        .expect("a valid start offset");
    consumer
        .assign(&assignment)
        .expect("assign the alerts partition");
    let mut alerts = Vec::new();
    let deadline = Instant::now() + ALERTS_TIMEOUT;
    let mut settle_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if settle_until.is_some_and(|until| now >= until) || now >= deadline {
            break;
        }
        let seen: BTreeSet<&Alert> = alerts.iter().collect();
        if settle_until.is_none() && expected.iter().all(|alert| seen.contains(alert)) {
            settle_until = Some(now + ALERTS_SETTLE);
        }
        // Before the sink topic exists the consumer reports errors; keep polling.
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let payload = message.payload().expect("an alert has a value");
        alerts.push(parse_alert(payload));
    }
    alerts
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
