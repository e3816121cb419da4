//! The `/apps` routes and the metrics collector over stores the test driver filled.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::runtime::{RuntimeState, RuntimeStatus};
use crate::{
    I64Serde, JsonSerde, SessionWindows, StoreBacking, StreamsBuilder, StringSerde, TestDriver,
    TimeWindows,
};

/// A topology with a key-value count, a JSON reduce, a windowed count and a session
/// count; the driver and an app handle over its stores.
fn shop() -> (TestDriver, AppHandle) {
    let builder = StreamsBuilder::new("shop");
    let clicks = builder.stream("clicks", StringSerde, StringSerde);
    let grouped = clicks.group_by_key();
    grouped.count("clicks-per-user");
    // Grace keeps the first window from expiring once the second opens.
    let windows = TimeWindows::tumbling(Duration::from_secs(10)).grace(Duration::from_secs(60));
    grouped.windowed_by(windows).count("per-10s");
    grouped
        .session_windowed_by(
            SessionWindows::with_inactivity_gap(Duration::from_secs(5))
                .grace(Duration::from_secs(60)),
        )
        .count("sessions");
    let orders = builder.stream("orders", I64Serde, JsonSerde::<Vec<String>>::new());
    orders
        .group_by_key()
        .reduce(|a, b| [a.clone(), b.clone()].concat(), "items");
    // In memory, where entry counts are exact (see `OrderedMap::approximate_len`).
    let topology = builder.build().unwrap();
    let driver = TestDriver::with_store_backing(topology, 1, StoreBacking::InMemory);
    let (topology, registry) = driver.topology_and_stores();
    let status = RuntimeStatus {
        state: RuntimeState::Running,
        ..RuntimeStatus::default()
    };
    let app = AppHandle::new(
        topology,
        registry,
        Arc::new(Mutex::new(status)),
        Arc::default(),
        (RuntimeKind::CoLocated, "node-1".into()),
    );
    (driver, app)
}

fn pipe_clicks(driver: &TestDriver) {
    let mut clicks = driver.input_topic("clicks", StringSerde, StringSerde);
    for (user, timestamp_ms) in [("alice", 1_000), ("bob", 2_000), ("alice", 12_000)] {
        clicks.pipe_input_at(user.into(), "home".into(), timestamp_ms);
    }
    let mut orders = driver.input_topic("orders", I64Serde, JsonSerde::<Vec<String>>::new());
    orders.pipe_input_at(7, vec!["tea".into()], 1_000);
    orders.pipe_input_at(7, vec!["cake".into()], 2_000);
}

/// `GET path`: the status and the parsed JSON.
fn get(app: &AppHandle, path_and_query: &str) -> (u16, Value) {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let answer = answer(std::slice::from_ref(app), path, query);
    let body = serde_json::from_slice(&answer.body).expect("every answer is JSON");
    (answer.status, body)
}

#[test]
fn keys_ranges_windows_and_sessions_answer_what_the_stores_hold() {
    // Proves each state route answers what the stores hold, keys parsed and values shown
    // by the store's own serdes: strings, numbers and JSON.
    let (driver, app) = shop();
    pipe_clicks(&driver);
    let (status, alice) = get(&app, "/apps/shop/stores/clicks-per-user/keys/alice");
    assert_eq!(status, 200);
    assert_eq!(alice, json!({"key": "alice", "value": 2}));
    let (_, items) = get(&app, "/apps/shop/stores/items/keys/7");
    assert_eq!(items, json!({"key": 7, "value": ["tea", "cake"]}));
    let (_, all) = get(&app, "/apps/shop/stores/clicks-per-user/keys");
    let expected = json!({"entries": [{"key": "alice", "value": 2}, {"key": "bob", "value": 1}], "truncated": false});
    assert_eq!(all, expected);
    let (_, first) = get(&app, "/apps/shop/stores/clicks-per-user/keys?limit=1");
    assert_eq!(first["entries"], json!([{"key": "alice", "value": 2}]));
    assert_eq!(first["truncated"], json!(true));
    let (_, from_b) = get(&app, "/apps/shop/stores/clicks-per-user/keys?from=b&to=c");
    assert_eq!(from_b["entries"], json!([{"key": "bob", "value": 1}]));
    let (_, windows) = get(
        &app,
        "/apps/shop/stores/per-10s/windows/alice?from=0&to=20000",
    );
    let expected = json!({"windows": [
        {"start": 0, "end": 10_000, "value": 1},
        {"start": 10_000, "end": 20_000, "value": 1},
    ]});
    assert_eq!(windows, expected);
    let (_, later) = get(&app, "/apps/shop/stores/per-10s/windows/alice?from=5000");
    assert_eq!(later["windows"].as_array().map(Vec::len), Some(1));
    let (_, sessions) = get(&app, "/apps/shop/stores/sessions/sessions/alice");
    let expected = json!({"sessions": [
        {"start": 1_000, "end": 1_000, "value": 1},
        {"start": 12_000, "end": 12_000, "value": 1},
    ]});
    assert_eq!(sessions, expected);
}

#[test]
fn mistakes_get_json_errors_with_the_right_status() {
    // Proves unknown applications, stores, keys and routes are 404, a bad key, a bad
    // parameter or a store of another kind 400, each a JSON error naming the problem.
    let (driver, app) = shop();
    pipe_clicks(&driver);
    for (path, status, names) in [
        ("/apps/nope", 404, "nope"),
        ("/apps/shop/stores/nope/keys/a", 404, "nope"),
        ("/apps/shop/stores/clicks-per-user/keys/carol", 404, "carol"),
        ("/apps/shop/elsewhere", 404, "no such route"),
        ("/apps/shop/stores/items/keys/seven", 400, "seven"),
        ("/apps/shop/stores/items/keys?limit=many", 400, "limit"),
        ("/apps/shop/stores/items/keys?colour=red", 400, "colour"),
        ("/apps/shop/stores/per-10s/keys/alice", 400, "window"),
        (
            "/apps/shop/stores/per-10s/windows/alice?from=x",
            400,
            "from",
        ),
        ("/apps/shop/stores/clicks-per-user/keys/%zz", 400, "%zz"),
    ] {
        let (got, body) = get(&app, path);
        assert_eq!(got, status, "{path}: {body}");
        let error = body["error"].as_str().expect("an error message");
        assert!(error.contains(names), "{path}: {error}");
    }
}

#[test]
fn values_without_json_show_in_base64_and_keys_are_percent_decoded() {
    // Proves a value whose serde has no JSON form comes back as base64, and a key with a
    // slash and a space reaches the store decoded.
    let (driver, app) = shop();
    let mut clicks = driver.input_topic("clicks", StringSerde, StringSerde);
    clicks.pipe_input_at("a/b c".into(), "x".into(), 1);
    let (status, body) = get(&app, "/apps/shop/stores/clicks-per-user/keys/a%2Fb%20c");
    assert_eq!((status, body), (200, json!({"key": "a/b c", "value": 1})));
    let codec = crate::store::codec::StoreCodec::raw();
    let shown = crate::store::codec::StoreCodec::show(codec.value.as_ref(), "raw", &[0, 255]);
    assert_eq!(shown, json!({"base64": "AP8="}));
}

#[test]
fn the_summary_names_state_tasks_and_stores() {
    // Proves `/apps` and `/apps/{app}` answer the agreed shape: id, runtime, state,
    // topology, tasks with their partitions and instance, stores with kind and entries.
    let (driver, app) = shop();
    pipe_clicks(&driver);
    let (status, apps) = get(&app, "/apps");
    assert_eq!(status, 200);
    let summary = &apps["apps"][0];
    assert_eq!(summary, &get(&app, "/apps/shop").1);
    assert_eq!(summary["application_id"], json!("shop"));
    assert_eq!(summary["runtime"], json!("co-located"));
    assert_eq!(summary["state"], json!("running"));
    assert_eq!(
        summary["topology"],
        serde_json::to_value(app.stores().topology().describe()).unwrap()
    );
    let store = |name: &str| {
        let stores = summary["stores"].as_array().unwrap();
        stores
            .iter()
            .find(|s| s["name"] == json!(name))
            .cloned()
            .unwrap()
    };
    assert_eq!(
        store("clicks-per-user"),
        json!({"name": "clicks-per-user", "kind": "key_value", "entries": 2})
    );
    assert_eq!(store("per-10s")["kind"], json!("window"));
    assert_eq!(store("sessions")["kind"], json!("session"));
    assert!(summary["records_processed_total"].is_u64());
    // The driver's tasks are not the runtime's: the status names none here.
    assert_eq!(summary["tasks"], json!([]));
}

#[test]
fn the_collector_encodes_processor_metrics_as_prometheus_text() {
    // Proves the collector writes each metric family once with the application label,
    // counts from the status, store entries per task and store, and both histograms.
    let (driver, app) = shop();
    pipe_clicks(&driver);
    {
        let mut status = app.status.lock().unwrap();
        status.metrics.processed_records = 5;
        status
            .metrics
            .dropped_records
            .insert(crate::DropReason::Late, 2);
    }
    app.metrics().observe_end_to_end(10_000, 9_000);
    app.metrics().observe_commit(Duration::from_millis(3));
    let text = encode_metrics(&[app]).unwrap();
    for line in [
        "riffle_processor_records_processed_total{application=\"shop\"} 5",
        "riffle_processor_records_dropped_total{application=\"shop\",reason=\"late\"} 2",
        "riffle_processor_store_entries{application=\"shop\",task=\"0_0\",store=\"clicks-per-user\"} 2",
        "riffle_processor_end_to_end_latency_seconds_count{application=\"shop\"} 1",
        "riffle_processor_commit_duration_seconds_count{application=\"shop\"} 1",
        "riffle_processor_tasks{application=\"shop\"} 0",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(
        text.matches("# TYPE riffle_processor_records_processed counter")
            .count(),
        1
    );
}
