//! `cogroup` (KIP-150): clicks and purchases (the purchases re-keyed by user through a
//! repartition topic) folded into one activity aggregate per user, plain and windowed.

use std::time::Duration;

mod common;

use riffle_processor::{
    Grouped, JsonSerde, Materialized, SessionWindows, StoreBacking, StreamsBuilder, StringSerde,
    TestDriver, TimeWindows, Topology, Windowed, WindowedSerde,
};

/// Clicks and money spent.
type Activity = (i64, i64);

const PARTITIONS: i32 = 3;

/// Clicks keyed by user; purchases keyed by order id, with `user:amount` values.
fn cogrouped(builder: &StreamsBuilder) -> riffle_processor::CogroupedKStream<String, Activity> {
    let clicks = builder
        .stream("clicks", StringSerde, StringSerde)
        .group_by_key_with(Grouped::new(StringSerde, StringSerde));
    let purchases = builder
        .stream("purchases", StringSerde, StringSerde)
        .map_values(|purchase: &String| {
            let (user, amount) = purchase.split_once(':').unwrap_or(("", "0"));
            (user.to_string(), amount.parse::<i64>().unwrap_or(0))
        })
        .group_by(
            |_order, (user, _): &(String, i64)| user.clone(),
            Grouped::new(StringSerde, JsonSerde::new()).name("purchases-by-user"),
        );
    clicks
        .cogroup(|_user, _page, (clicks, spent): Activity| (clicks + 1, spent))
        .cogroup(&purchases, |_user, (_, amount), (clicks, spent)| {
            (clicks, spent + amount)
        })
}

fn activity_topology() -> (
    Topology,
    riffle_processor::KeyValueStoreHandle<String, Activity>,
) {
    let builder = StreamsBuilder::new("shop");
    let activity = cogrouped(&builder).aggregate(
        || (0, 0),
        Materialized::new("activity").with_value_serde(JsonSerde::new()),
    );
    activity.to("activity", StringSerde, JsonSerde::<Activity>::new());
    let store = activity.store();
    (builder.build().unwrap(), store)
}

/// Every input record gives one update of the shared aggregate, whichever stream it came
/// from; the one store restores after a crash.
fn cogroup_folds_every_input_into_one_aggregate(backing: StoreBacking) {
    let (topology, store) = activity_topology();
    let driver = TestDriver::with_store_backing(topology, PARTITIONS, backing);
    let mut clicks = driver.input_topic("clicks", StringSerde, StringSerde);
    let mut purchases = driver.input_topic("purchases", StringSerde, StringSerde);
    clicks.pipe_input_at("alice".into(), "home".into(), 1);
    purchases.pipe_input_at("order-1".into(), "alice:30".into(), 2);
    clicks.pipe_input_at("bob".into(), "home".into(), 3);
    driver.crash_and_restart();
    clicks.pipe_input_at("alice".into(), "cart".into(), 4);
    purchases.pipe_input_at("order-2".into(), "bob:5".into(), 5);
    purchases.pipe_input_at("order-3".into(), "alice:12".into(), 6);
    let output = driver.output_topic("activity", StringSerde, JsonSerde::<Activity>::new());
    let updates: Vec<(String, Activity, i64)> = output
        .read_records()
        .into_iter()
        .map(|record| (record.key, record.value.unwrap(), record.timestamp_ms))
        .collect();
    let expected = [
        ("alice", (1, 0), 1),
        ("alice", (1, 30), 2),
        ("bob", (1, 0), 3),
        ("alice", (2, 30), 4),
        ("bob", (1, 5), 5),
        ("alice", (2, 42), 6),
    ];
    let expected: Vec<(String, Activity, i64)> = expected
        .into_iter()
        .map(|(user, activity, timestamp_ms)| (user.to_string(), activity, timestamp_ms))
        .collect();
    assert_eq!(updates, expected);
    let view = driver.key_value_store(&store);
    assert_eq!(view.get(&"alice".to_string()).unwrap(), Some((2, 42)));
    assert_eq!(view.get(&"bob".to_string()).unwrap(), Some((1, 5)));
    assert_eq!(driver.dropped_records(), 0);
    // One changelog for the one store.
    let changelog = driver.topic_records("shop-activity-changelog");
    assert_eq!(changelog.len(), 6);
}

/// Windowed: the inputs fold into one window store, one update per record and window.
fn windowed_cogroup_aggregates_per_window(backing: StoreBacking) {
    let builder = StreamsBuilder::new("shop");
    let windows = TimeWindows::tumbling(Duration::from_millis(10));
    cogrouped(&builder)
        .windowed_by(windows)
        .aggregate(
            || (0, 0),
            Materialized::new("activity-per-window").with_value_serde(JsonSerde::new()),
        )
        .to(
            "activity-per-window",
            StringSerde,
            JsonSerde::<Activity>::new(),
        );
    let topology = builder.build().unwrap();
    let driver = TestDriver::with_store_backing(topology, PARTITIONS, backing);
    let mut clicks = driver.input_topic("clicks", StringSerde, StringSerde);
    let mut purchases = driver.input_topic("purchases", StringSerde, StringSerde);
    clicks.pipe_input_at("alice".into(), "home".into(), 1);
    purchases.pipe_input_at("order-1".into(), "alice:30".into(), 9);
    clicks.pipe_input_at("alice".into(), "home".into(), 10); // next window
    let output = driver.output_topic(
        "activity-per-window",
        WindowedSerde::time(StringSerde, Duration::from_millis(10)),
        JsonSerde::<Activity>::new(),
    );
    let updates: Vec<(String, i64, Activity)> = output
        .read_key_values()
        .into_iter()
        .map(|(window, activity): (Windowed<String>, Activity)| {
            (window.key, window.start_ms, activity)
        })
        .collect();
    let alice = "alice".to_string();
    assert_eq!(
        updates,
        vec![
            (alice.clone(), 0, (1, 0)),
            (alice.clone(), 0, (1, 30)),
            (alice, 10, (1, 0)),
        ]
    );
}

/// Sessions: records of either input within the gap share a session; a record bridging
/// two sessions merges them (the old ones come out as deletions).
fn session_windowed_cogroup_merges_sessions(backing: StoreBacking) {
    let builder = StreamsBuilder::new("shop");
    cogrouped(&builder)
        .session_windowed_by(
            SessionWindows::with_inactivity_gap(Duration::from_millis(5))
                .grace(Duration::from_millis(50)),
        )
        .aggregate(
            || (0, 0),
            |_user, (c1, s1), (c2, s2)| (c1 + c2, s1 + s2),
            Materialized::new("activity-sessions").with_value_serde(JsonSerde::new()),
        )
        .to(
            "activity-sessions",
            StringSerde,
            JsonSerde::<Activity>::new(),
        );
    let topology = builder.build().unwrap();
    let driver = TestDriver::with_store_backing(topology, PARTITIONS, backing);
    let mut clicks = driver.input_topic("clicks", StringSerde, StringSerde);
    let mut purchases = driver.input_topic("purchases", StringSerde, StringSerde);
    clicks.pipe_input_at("alice".into(), "home".into(), 1);
    purchases.pipe_input_at("order-1".into(), "alice:30".into(), 20);
    purchases.pipe_input_at("order-2".into(), "alice:5".into(), 4); // joins [1, 1]
    let output = driver.output_topic(
        "activity-sessions",
        WindowedSerde::session(StringSerde),
        JsonSerde::<Activity>::new(),
    );
    let updates: Vec<(i64, i64, Option<Activity>)> = output
        .read_records()
        .into_iter()
        .map(|record| (record.key.start_ms, record.key.end_ms, record.value))
        .collect();
    assert_eq!(
        updates,
        vec![
            (1, 1, Some((1, 0))),
            (20, 20, Some((0, 30))),
            (1, 1, None),
            (1, 4, Some((1, 5))),
        ]
    );
    assert_eq!(driver.dropped_records(), 0);
}

/// `describe` shows a node per input and the merge, all with the one store.
#[test]
fn describe_shows_one_store_for_every_input() {
    let (topology, _) = activity_topology();
    let description = topology.describe();
    let text = description.to_string();
    assert_eq!(
        text.matches("Processor: KSTREAM-COGROUP-AGGREGATE-")
            .count(),
        2,
        "{text}"
    );
    assert!(text.contains("KSTREAM-COGROUP-MERGE-"), "{text}");
    let stores: Vec<_> = topology
        .stores()
        .into_iter()
        .map(|(_, spec)| spec.name.clone())
        .collect();
    assert_eq!(stores, vec!["activity".to_string()]);
}

for_both_backings!(
    cogroup_folds_every_input_into_one_aggregate,
    windowed_cogroup_aggregates_per_window,
    session_windowed_cogroup_merges_sessions,
);
