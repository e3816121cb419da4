//! Queryable state and processor metrics over HTTP, as an operator sees them: the
//! `ecommerce` example runs as a broker with its topology inside, rdkafka produces its
//! input, and the broker's HTTP listener answers `/apps` (summary, a key, a key range, a
//! window fetch) from the topology's stores and shows processor metrics on `/metrics`;
//! then the same example runs remotely with `--http-listen` and serves the same.
//!
//! The tests build the example themselves.

mod example_apps;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use example_apps::remote::RemoteExample;
use example_apps::{Input, produce, start_example, start_ms};
use riffle_integration_tests::clients::create_topic;
use riffle_integration_tests::prometheus::{self, http_get};
use riffle_integration_tests::{Broker, browser};
use serde_json::{Value, json};

const SECOND_MS: i64 = 1_000;
const MINUTE_MS: i64 = 60_000;
/// How long the topology may take to reflect its input in its stores.
const STATE_TIMEOUT: Duration = Duration::from_secs(30);

/// `GET path` on `address`, with the answer's JSON.
fn get_json(address: SocketAddr, path: &str) -> (u16, Value) {
    let (status, body) = http_get(address, path);
    let value = serde_json::from_str(&body)
        .unwrap_or_else(|error| panic!("GET {path}: not JSON ({error}): {body}"));
    (status, value)
}

/// Polls `GET path` until it answers `expected`.
fn wait_for_json(address: SocketAddr, path: &str, expected: &Value) {
    let deadline = Instant::now() + STATE_TIMEOUT;
    loop {
        let (status, value) = get_json(address, path);
        if status == 200 && &value == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} answered {status} {value}, not {expected}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Produces JSON `(key, value, offset from start)` records to `topic`.
async fn produce_json(bootstrap: &str, topic: &str, start_ms: i64, records: &[(&str, Value, i64)]) {
    let values: Vec<String> = records
        .iter()
        .map(|(_, value, _)| value.to_string())
        .collect();
    let inputs: Vec<Input> = records
        .iter()
        .zip(&values)
        .map(|((key, _, offset_ms), value)| Input {
            key,
            value: Some(value.as_bytes()),
            timestamp_ms: start_ms + offset_ms,
        })
        .collect();
    produce(bootstrap, topic, &inputs).await;
}

/// Restocks p1..p3 (10, 5, 7 units), then orders 1 and 2 of p1 and 1 of p2.
async fn produce_shop(bootstrap: &str, start_ms: i64) {
    let restocks = [
        ("p1", json!({"quantity": 10}), 0),
        ("p2", json!({"quantity": 5}), 0),
        ("p3", json!({"quantity": 7}), 0),
    ];
    produce_json(bootstrap, "restocks", start_ms, &restocks).await;
    let orders = [
        ("p1", order("u1", 1), 10 * SECOND_MS),
        ("p1", order("u2", 2), 20 * SECOND_MS),
        ("p2", order("u1", 1), 30 * SECOND_MS),
    ];
    produce_json(bootstrap, "orders", start_ms, &orders).await;
}

fn order(user: &str, quantity: i64) -> Value {
    json!({"order_id": format!("{user}-{quantity}"), "user": user, "quantity": quantity})
}

/// The processed-records counter of `ecommerce` on a strict parse of `/metrics`.
fn processed_records(address: SocketAddr) -> (f64, prometheus::Scrape) {
    let (status, text) = http_get(address, "/metrics");
    assert_eq!(status, 200, "{text}");
    let scrape = prometheus::parse(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    let labels = [("application", "ecommerce")];
    let processed = scrape
        .value("riffle_processor_records_processed_total", &labels)
        .unwrap_or_else(|| panic!("no processed-records counter in\n{text}"));
    (processed, scrape)
}

#[tokio::test(flavor = "multi_thread")]
async fn state_queries_and_processor_metrics_over_http() {
    // Proves the co-located path end to end: `/apps` describes the running application,
    // a key, a key range and a window fetch answer what the stores hold (decoded with the
    // stores' serdes), and `/metrics` parses strictly and its processor counters move with
    // the traffic.
    let mut broker = start_example("ecommerce");
    let bootstrap = broker.bootstrap();
    let http = broker.http_address();
    for topic in ["clicks", "orders", "restocks"] {
        create_topic(&bootstrap, topic, 1, &[]).await;
    }
    let start_ms = start_ms();
    produce_shop(&bootstrap, start_ms).await;

    let store = "/apps/ecommerce/stores/inventory-store";
    wait_for_json(
        http,
        &format!("{store}/keys/p1"),
        &json!({"key": "p1", "value": 7}),
    );
    let (status, range) = get_json(http, &format!("{store}/keys?from=p1&to=p3"));
    assert_eq!(status, 200);
    let expected = json!({"entries": [{"key": "p1", "value": 7}, {"key": "p2", "value": 4}], "truncated": false});
    assert_eq!(range, expected);
    let (_, limited) = get_json(http, &format!("{store}/keys?limit=2"));
    assert_eq!(limited["truncated"], json!(true));
    let (status, missing) = get_json(http, &format!("{store}/keys/p9"));
    assert_eq!(status, 404, "{missing}");

    let windows = format!(
        "/apps/ecommerce/stores/orders-per-product-minute/windows/p1?from={start_ms}&to={}",
        start_ms + MINUTE_MS
    );
    let expected =
        json!({"windows": [{"start": start_ms, "end": start_ms + MINUTE_MS, "value": 2}]});
    wait_for_json(http, &windows, &expected);

    // The list and the application's page agree; counters still move while the
    // repartitioned records are processed, so compare once two reads in a row match.
    let deadline = Instant::now() + Duration::from_secs(30);
    let apps = loop {
        let (status, apps) = get_json(http, "/apps");
        assert_eq!(status, 200);
        let single = get_json(http, "/apps/ecommerce").1;
        if apps["apps"][0] == single {
            break apps;
        }
        assert!(
            Instant::now() < deadline,
            "/apps and /apps/ecommerce never agreed:\n{apps}\n{single}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let app = &apps["apps"][0];
    assert_eq!(app["application_id"], json!("ecommerce"));
    assert_eq!(app["runtime"], json!("co-located"));
    assert_eq!(app["state"], json!("running"));
    assert!(app["topology"]["subtopologies"].is_array(), "{app}");
    assert!(!app["tasks"].as_array().unwrap().is_empty(), "{app}");
    let inventory = app["stores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|store| store["name"] == json!("inventory-store"))
        .cloned();
    assert_eq!(
        inventory.map(|store| store["kind"].clone()),
        Some(json!("key_value"))
    );

    let (before, scrape) = processed_records(http);
    assert!(before >= 6.0, "processed {before} of 6 records");
    let latencies = scrape.sum("riffle_processor_end_to_end_latency_seconds_count", &[]);
    assert!(latencies > 0.0, "no end-to-end latency was recorded");
    produce_json(
        &bootstrap,
        "orders",
        start_ms,
        &[("p3", order("u3", 1), 40 * SECOND_MS)],
    )
    .await;
    wait_for_json(
        http,
        &format!("{store}/keys/p3"),
        &json!({"key": "p3", "value": 6}),
    );
    let (after, _) = processed_records(http);
    assert!(after > before, "the counter stayed at {before}");

    // The console's application pages, in the browser: the list, then the application
    // with its topology drawn, its tasks and a query box per store.
    let list = browser::dump_dom(&format!("http://{http}/#/apps"));
    assert!(list.contains("ecommerce"), "no application listed:\n{list}");
    let page = browser::dump_dom(&format!("http://{http}/#/apps/ecommerce"));
    for shown in [
        "Sub-topology 0",
        "KSTREAM-SOURCE-",
        "inventory-store",
        "orders-per-product-minute",
        "Look up",
        "0_0",
    ] {
        assert!(
            page.contains(shown),
            "the application page lacks {shown:?}:\n{page}"
        );
    }
    broker.stop();
}

/// The address a remote example printed as `riffle http listening on ADDR`.
fn remote_http_address(example: &RemoteExample) -> SocketAddr {
    let deadline = Instant::now() + STATE_TIMEOUT;
    loop {
        let log = example.log_text();
        let line = log
            .lines()
            .find_map(|line| line.strip_prefix("riffle http listening on "));
        if let Some(address) = line.and_then(|address| address.trim().parse().ok()) {
            return address;
        }
        assert!(
            Instant::now() < deadline,
            "no HTTP line\n{}",
            example.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_instance_given_http_listen_serves_its_state_and_metrics() {
    // Proves `--remote` with `--http-listen`: the instance's own listener answers `/apps`
    // as a remote runtime, a key from its store, health, and its processor metrics.
    let mut broker = Broker::start_with(&["--group-initial-rebalance-delay-ms", "0"]);
    let bootstrap = broker.bootstrap();
    for topic in ["clicks", "orders", "restocks"] {
        create_topic(&bootstrap, topic, 1, &[]).await;
    }
    let args = ["--http-listen", "127.0.0.1:0", "--instance-id", "remote-1"];
    let mut example = RemoteExample::start("ecommerce", &bootstrap, &args);
    let http = remote_http_address(&example);
    assert_eq!(http_get(http, "/healthz").0, 200);
    assert_eq!(http_get(http, "/readyz").0, 200);
    produce_shop(&bootstrap, start_ms()).await;
    let key = "/apps/ecommerce/stores/inventory-store/keys/p2";
    wait_for_json(http, key, &json!({"key": "p2", "value": 4}));
    let (_, app) = get_json(http, "/apps/ecommerce");
    assert_eq!(app["runtime"], json!("remote"));
    assert_eq!(app["tasks"][0]["instance"], json!("remote-1"));
    let (processed, _) = processed_records(http);
    assert!(processed >= 6.0, "processed {processed} of 6 records");
    example.stop();
    broker.stop();
}
