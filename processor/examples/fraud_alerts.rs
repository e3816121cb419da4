//! Fraud alerts: payments keyed by card; an alert when a card spends more than a threshold
//! or makes more than a few payments within one minute.
//!
//! Topics (keys are card ids, UTF-8):
//!
//! - `payments` (input): `{"card":"c1","amount_cents":1234,"merchant":"m1"}`; event time is
//!   the record timestamp.
//! - `fraud-alerts` (output): one alert per card and suspicious 1-minute window:
//!   `{"card":"c1","window_start_ms":0,"window_end_ms":60000,"payments":7,"total_cents":8000}`.
//!
//! Run it: `cargo run -p riffle-processor --example fraud_alerts` starts a broker on
//! 127.0.0.1:9092 with this topology inside it (the usual `riffle serve` flags apply;
//! `-- --remote HOST:PORT` runs the topology against another Kafka-compatible broker
//! instead). Then:
//!
//! ```text
//! echo 'c1:{"card":"c1","amount_cents":150000,"merchant":"m1"}' | kcat -b 127.0.0.1:9092 -P -t payments -K:
//! kcat -b 127.0.0.1:9092 -C -t fraud-alerts -K' => '
//! riffle groups describe fraud-alerts     # progress and lag of the application
//! ```
//!
//! Time only moves with data: a window's alert appears once a later payment on the same
//! partition pushes stream time past the window's end plus the grace period.
//!
//! To make it yours, change `Spending`, `is_suspicious` and the thresholds.

mod common;

use std::process::ExitCode;
use std::time::Duration;

use riffle_processor::{
    Emit, JsonSerde, Materialized, StreamsBuilder, StringSerde, TimeWindows, Topology,
    TopologyError, Windowed,
};
use serde::{Deserialize, Serialize};

/// The application id: also the consumer group and the prefix of internal topics.
const APPLICATION_ID: &str = "fraud-alerts";
/// More than this spent within one window is suspicious ($1,000.00).
const MAX_TOTAL_CENTS: i64 = 100_000;
/// More payments than this within one window are suspicious.
const MAX_PAYMENTS: u64 = 5;
/// Window length.
const WINDOW: Duration = Duration::from_secs(60);
/// How late a payment may arrive (by event time) and still count in its window.
const GRACE: Duration = Duration::from_secs(10);

/// A payment as producers write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Payment {
    card: String,
    amount_cents: i64,
    merchant: String,
}

/// What a card did within one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Spending {
    payments: u64,
    total_cents: i64,
}

impl Spending {
    fn add(mut self, payment: &Payment) -> Spending {
        self.payments += 1;
        self.total_cents += payment.amount_cents;
        self
    }

    fn is_suspicious(&self) -> bool {
        self.total_cents > MAX_TOTAL_CENTS || self.payments > MAX_PAYMENTS
    }
}

/// An alert as `fraud-alerts` carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Alert {
    card: String,
    window_start_ms: i64,
    window_end_ms: i64,
    payments: u64,
    total_cents: i64,
}

impl Alert {
    fn new(window: &Windowed<String>, spending: &Spending) -> Alert {
        Alert {
            card: window.key.clone(),
            window_start_ms: window.start_ms,
            window_end_ms: window.end_ms,
            payments: spending.payments,
            total_cents: spending.total_cents,
        }
    }
}

/// payments -> per card and minute: count and total -> the suspicious ones -> fraud-alerts.
fn topology() -> Result<Topology, TopologyError> {
    let builder = StreamsBuilder::new(APPLICATION_ID);
    builder
        .stream("payments", StringSerde, JsonSerde::<Payment>::new())
        .group_by_key()
        .windowed_by(TimeWindows::tumbling(WINDOW).grace(GRACE))
        // One alert per card and window, with the window's final numbers, once it closes:
        // emitting on every update would repeat the alert for each further payment and
        // report totals that are still growing. The price is latency (window + grace).
        .emit(Emit::OnWindowClose)
        .aggregate(
            Spending::default,
            |_card, payment: &Payment, spending| spending.add(payment),
            Materialized::new("spending-per-minute").with_value_serde(JsonSerde::<Spending>::new()),
        )
        .to_stream()
        .filter(|_window, spending| spending.is_suspicious())
        .map(|window, spending| (window.key.clone(), Alert::new(window, spending)))
        .to("fraud-alerts", StringSerde, JsonSerde::<Alert>::new());
    builder.build()
}

fn main() -> ExitCode {
    common::run_built("fraud_alerts", topology())
}

#[cfg(test)]
mod tests {
    use super::*;
    use riffle_processor::{TestDriver, TestInputTopic, TestOutputTopic};

    const MINUTE_MS: i64 = 60_000;

    fn driver() -> (
        TestDriver,
        TestInputTopic<String, Payment>,
        TestOutputTopic<String, Alert>,
    ) {
        let driver = TestDriver::new(topology().expect("valid topology"));
        let payments = driver.input_topic("payments", StringSerde, JsonSerde::new());
        let alerts = driver.output_topic("fraud-alerts", StringSerde, JsonSerde::new());
        (driver, payments, alerts)
    }

    fn pay(payments: &mut TestInputTopic<String, Payment>, card: &str, cents: i64, at_ms: i64) {
        let payment = Payment {
            card: card.to_string(),
            amount_cents: cents,
            merchant: "m1".to_string(),
        };
        payments.pipe_input_at(card.to_string(), payment, at_ms);
    }

    #[test]
    fn alerts_once_per_window_when_a_card_spends_too_much() {
        // Proves a window over the spending limit yields one alert with its final total,
        // only after stream time passes the window end plus grace, and a quiet card none.
        let (_driver, mut payments, alerts) = driver();
        pay(&mut payments, "c1", 60_000, 1_000);
        pay(&mut payments, "c1", 50_000, 2_000);
        pay(&mut payments, "c2", 500, 3_000);
        assert!(alerts.is_empty(), "the window is still open");
        pay(&mut payments, "c3", 100, MINUTE_MS + 10_000);
        let expected = Alert {
            card: "c1".to_string(),
            window_start_ms: 0,
            window_end_ms: MINUTE_MS,
            payments: 2,
            total_cents: 110_000,
        };
        assert_eq!(alerts.read_key_values(), vec![("c1".to_string(), expected)]);
    }

    #[test]
    fn alerts_when_a_card_pays_too_often() {
        // Proves more than MAX_PAYMENTS small payments in one minute alert, while the same
        // number spread over two windows does not.
        let (_driver, mut payments, alerts) = driver();
        for i in 0..6 {
            pay(&mut payments, "busy", 100, 1_000 + i);
        }
        for i in 0..3 {
            pay(&mut payments, "spread", 100, 50_000 + i);
            pay(&mut payments, "spread", 100, MINUTE_MS + 1_000 + i);
        }
        pay(&mut payments, "clock", 1, 3 * MINUTE_MS);
        let alerts = alerts.read_key_values();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].0, "busy");
        assert_eq!(alerts[0].1.payments, 6);
    }

    #[test]
    fn late_payments_after_grace_do_not_count() {
        // Proves a payment arriving after its window closed is dropped, not added.
        let (driver, mut payments, alerts) = driver();
        pay(&mut payments, "c1", 90_000, 1_000);
        pay(&mut payments, "c2", 1, MINUTE_MS + 10_000);
        pay(&mut payments, "c1", 90_000, 2_000);
        assert!(alerts.is_empty(), "{:?}", alerts.read_key_values());
        assert_eq!(driver.dropped_records(), 1);
    }
}
