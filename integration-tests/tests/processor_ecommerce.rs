//! The `ecommerce` example as a user runs it: one process that is a broker with the
//! topology inside it, fed and read by rdkafka clients.

mod example_apps;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use example_apps::{
    Input, Output, coalesced_from, json, produce, read_until, start_example, start_ms, text,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use riffle_integration_tests::clients::{CLIENT_TIMEOUT, client_config, create_topic};
use serde_json::json as value;

const SECOND_MS: i64 = 1_000;

fn order(user: &str, quantity: i64, offset_ms: i64) -> (String, i64) {
    let order =
        value!({"order_id": format!("{user}-{offset_ms}"), "user": user, "quantity": quantity});
    (order.to_string(), offset_ms)
}

/// Produces `(key, JSON value, offset from start)` records to `topic`.
async fn produce_json(
    bootstrap: &str,
    topic: &str,
    start_ms: i64,
    records: &[(&str, (String, i64))],
) {
    let inputs: Vec<Input> = records
        .iter()
        .map(|(key, (value, offset_ms))| Input {
            key,
            value: Some(value.as_bytes()),
            timestamp_ms: start_ms + offset_ms,
        })
        .collect();
    produce(bootstrap, topic, &inputs).await;
}

/// Every stock level of each product, in order.
fn levels_by_product(records: &[Output]) -> BTreeMap<String, Vec<i64>> {
    let mut levels: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (key, value) in records {
        let bytes: [u8; 8] = value
            .as_deref()
            .and_then(|bytes| bytes.try_into().ok())
            .expect("a stock level is 8 bytes");
        levels
            .entry(text(key))
            .or_default()
            .push(i64::from_be_bytes(bytes));
    }
    levels
}

#[tokio::test(flavor = "multi_thread")]
async fn ecommerce_conversions_top_products_and_inventory() {
    // Proves the example end to end: only the order that follows its user's click on the
    // same product converts (through the join's repartition topics); the first minute's
    // ranking is emitted when an order 75 s in closes it; and each order and restock moves
    // the product's stock level on `inventory` (updates the record cache coalesces between
    // commits may be missing, never out of order, and the last is always there).
    let mut broker = start_example("ecommerce");
    let bootstrap = broker.bootstrap();
    for topic in [
        "clicks",
        "orders",
        "restocks",
        "click-to-order",
        "top-products",
        "inventory",
    ] {
        create_topic(&bootstrap, topic, 1, &[]).await;
    }
    let start_ms = start_ms();
    let restock = |quantity: i64| (value!({"quantity": quantity}).to_string(), 0);
    produce_json(
        &bootstrap,
        "restocks",
        start_ms,
        &[("p1", restock(10)), ("p2", restock(5))],
    )
    .await;
    let click = (value!({"user": "u1"}).to_string(), SECOND_MS);
    produce_json(&bootstrap, "clicks", start_ms, &[("p1", click)]).await;
    let orders = [
        ("p1", order("u1", 1, 10 * SECOND_MS)), // 9 s after u1's click on p1: converts
        ("p1", order("u2", 1, 20 * SECOND_MS)),
        ("p1", order("u3", 1, 30 * SECOND_MS)),
        ("p2", order("u1", 2, 40 * SECOND_MS)), // u1 clicked p1, not p2
        ("p2", order("u2", 1, 75 * SECOND_MS)), // past 60 s + 10 s grace: minute 0 closes
    ];
    produce_json(&bootstrap, "orders", start_ms, &orders).await;

    let conversions = read_until(&broker, "click-to-order", |records| !records.is_empty());
    let conversions: Vec<(serde_json::Value, serde_json::Value)> = conversions
        .iter()
        .map(|(key, value)| (json(key), json(value.as_deref().expect("a conversion"))))
        .collect();
    let expected = vec![(
        value!({"user": "u1", "product": "p1"}),
        value!({"user": "u1", "product": "p1", "order_id": "u1-10000", "quantity": 1}),
    )];
    assert_eq!(conversions, expected);

    // The record cache may coalesce updates between commits: the outputs are some of the
    // per-order updates, in order, always ending with the last one.
    let ranking = |products: serde_json::Value| {
        (
            start_ms,
            value!({"window_start_ms": start_ms, "products": products}),
        )
    };
    let decode = |records: &[Output]| -> Vec<(i64, serde_json::Value)> {
        records
            .iter()
            .map(|(key, value)| {
                let key: [u8; 8] = key.as_slice().try_into().expect("an 8-byte window start");
                (
                    i64::from_be_bytes(key),
                    json(value.as_deref().expect("a ranking")),
                )
            })
            .collect()
    };
    let every_ranking = vec![
        ranking(value!([{"product": "p1", "orders": 3}])),
        ranking(value!([{"product": "p1", "orders": 3}, {"product": "p2", "orders": 1}])),
    ];
    let rankings = read_until(&broker, "top-products", |records| {
        decode(records).last() == every_ranking.last()
    });
    let rankings = decode(&rankings);
    assert!(
        coalesced_from(&rankings, &every_ranking),
        "{rankings:?} is not what caching leaves of {every_ranking:?}"
    );

    let every_level = BTreeMap::from([
        ("p1".to_string(), vec![10, 9, 8, 7]),
        ("p2".to_string(), vec![5, 3, 2]),
    ]);
    let last_levels = |levels: &BTreeMap<String, Vec<i64>>| -> BTreeMap<String, Option<i64>> {
        levels
            .iter()
            .map(|(product, levels)| (product.clone(), levels.last().copied()))
            .collect()
    };
    let inventory = read_until(&broker, "inventory", |records| {
        last_levels(&levels_by_product(records)) == last_levels(&every_level)
    });
    let levels = levels_by_product(&inventory);
    for (product, all) in &every_level {
        let written = levels.get(product).cloned().unwrap_or_default();
        assert!(
            coalesced_from(&written, all),
            "{product}: {written:?} is not what caching leaves of {all:?}"
        );
    }
    // Consumed repartition records are deleted after commits (DeleteRecords): the log start
    // offsets of the join's repartition topics advance.
    for side in ["left", "right"] {
        let topic = format!("ecommerce-click-to-order-{side}-repartition");
        wait_for_log_start_past_zero(&bootstrap, &topic);
    }
    broker.stop();
}

/// Waits until partition 0 of `topic` starts past offset 0 (ListOffsets EARLIEST).
fn wait_for_log_start_past_zero(bootstrap: &str, topic: &str) {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "riffle-it-watermarks")
        .create()
        .expect("create an rdkafka BaseConsumer");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let watermarks = consumer.fetch_watermarks(topic, 0, CLIENT_TIMEOUT);
        if matches!(watermarks, Ok((low, _)) if low > 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} was never purged: {watermarks:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
