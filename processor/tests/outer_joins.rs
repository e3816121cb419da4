//! Left and outer windowed stream-stream joins (Kafka Streams 3.x): matches at once,
//! unmatched records with `None` only once their window has closed.

use std::time::Duration;

mod common;

use riffle_processor::{
    JoinWindows, KStream, StoreBacking, StreamJoined, StreamsBuilder, StringSerde, TestDriver,
    TestInputTopic, Topology,
};

fn describe(left: Option<&String>, right: Option<&String>) -> String {
    let side = |value: Option<&String>| value.map_or("null".to_string(), String::clone);
    format!("{}+{}", side(left), side(right))
}

/// `clicks` joined with `orders` within 10 s either way and `grace`, left or outer.
fn join_topology(outer: bool, grace: Duration) -> Topology {
    let windows = JoinWindows::of_time_difference(Duration::from_secs(10)).grace(grace);
    join_topology_with(outer, windows)
}

fn join_topology_with(outer: bool, windows: JoinWindows) -> Topology {
    let builder = StreamsBuilder::new("app");
    let clicks = builder.stream("clicks", StringSerde, StringSerde);
    let orders = builder.stream("orders", StringSerde, StringSerde);
    let joined = StreamJoined::new("click-order", StringSerde, StringSerde, StringSerde);
    let out: KStream<String, String> = if outer {
        clicks.outer_join(
            &orders,
            |_, click, order| describe(click, order),
            windows,
            joined,
        )
    } else {
        clicks.left_join(
            &orders,
            |_, click, order| describe(Some(click), order),
            windows,
            joined,
        )
    };
    out.to("joined", StringSerde, StringSerde);
    builder.build().unwrap()
}

fn inputs(
    driver: &TestDriver,
) -> (
    TestInputTopic<String, String>,
    TestInputTopic<String, String>,
) {
    (
        driver.input_topic("clicks", StringSerde, StringSerde),
        driver.input_topic("orders", StringSerde, StringSerde),
    )
}

/// `(value, timestamp)` of every unread output.
fn read_joined(driver: &TestDriver) -> Vec<(String, i64)> {
    driver
        .output_topic("joined", StringSerde, StringSerde)
        .read_records()
        .into_iter()
        .map(|record| (record.value.unwrap(), record.timestamp_ms))
        .collect()
}

/// A left record matched before its window closes gives only the joined result, never a
/// `(left, null)` as well, however far stream time moves on.
fn left_join_match_emits_only_the_joined_result(backing: StoreBacking) {
    let driver =
        TestDriver::with_store_backing(join_topology(false, Duration::from_secs(5)), 1, backing);
    let (mut clicks, mut orders) = inputs(&driver);
    clicks.pipe_input_at("u".into(), "c1".into(), 1_000);
    assert!(read_joined(&driver).is_empty(), "not eagerly (c1, null)");
    orders.pipe_input_at("u".into(), "o1".into(), 5_000);
    assert_eq!(read_joined(&driver), vec![("c1+o1".to_string(), 5_000)]);
    orders.pipe_input_at("u".into(), "o2".into(), 30_000); // no partner: a left join drops it
    clicks.pipe_input_at("v".into(), "c2".into(), 100_000);
    assert!(read_joined(&driver).is_empty());
}

/// An unmatched left record comes out as `(left, null)`, with its own timestamp, only
/// once stream time passes its window end plus grace; one that arrives after its window
/// is already over comes out at once.
fn left_join_emits_unmatched_after_window_end_plus_grace(backing: StoreBacking) {
    let driver =
        TestDriver::with_store_backing(join_topology(false, Duration::from_secs(5)), 1, backing);
    let (mut clicks, mut orders) = inputs(&driver);
    clicks.pipe_input_at("u".into(), "c1".into(), 1_000);
    clicks.pipe_input_at("u".into(), "c1-again".into(), 1_000);
    orders.pipe_input_at("other".into(), "o1".into(), 16_000); // = 1 s + 10 s + 5 s
    assert!(
        read_joined(&driver).is_empty(),
        "stream time must pass end + grace"
    );
    orders.pipe_input_at("other".into(), "o2".into(), 16_001);
    assert_eq!(
        read_joined(&driver),
        vec![
            ("c1+null".to_string(), 1_000),
            ("c1-again+null".to_string(), 1_000)
        ]
    );
    clicks.pipe_input_at("u".into(), "late".into(), 2_000); // window ended at 12 s
    assert_eq!(read_joined(&driver), vec![("late+null".to_string(), 2_000)]);
}

/// An outer join emits the unmatched records of both sides once their windows close,
/// and nothing for records that matched.
fn outer_join_emits_unmatched_records_of_both_sides(backing: StoreBacking) {
    let driver = TestDriver::with_store_backing(join_topology(true, Duration::ZERO), 1, backing);
    let (mut clicks, mut orders) = inputs(&driver);
    clicks.pipe_input_at("a".into(), "L1".into(), 1_000);
    orders.pipe_input_at("b".into(), "R1".into(), 2_000);
    clicks.pipe_input_at("c".into(), "L2".into(), 3_000);
    orders.pipe_input_at("c".into(), "R2".into(), 4_000);
    assert_eq!(read_joined(&driver), vec![("L2+R2".to_string(), 4_000)]);
    clicks.pipe_input_at("z".into(), "L3".into(), 12_000);
    assert_eq!(
        read_joined(&driver),
        vec![("L1+null".to_string(), 1_000)],
        "R1's window ends at 12 s: not passed yet"
    );
    orders.pipe_input_at("z".into(), "R3".into(), 12_001); // joins L3
    assert_eq!(
        read_joined(&driver),
        vec![
            ("null+R1".to_string(), 2_000),
            ("L3+R3".to_string(), 12_001)
        ]
    );
}

/// Each side's unmatched records wait for their own window: a left record until
/// `ts + after + grace`, a right one until `ts + before + grace`.
fn outer_join_closes_each_side_by_its_own_window(backing: StoreBacking) {
    let windows = JoinWindows::of_time_difference(Duration::from_secs(10))
        .before(Duration::from_secs(2))
        .grace(Duration::from_secs(1));
    let driver = TestDriver::with_store_backing(join_topology_with(true, windows), 1, backing);
    let (mut clicks, mut orders) = inputs(&driver);
    clicks.pipe_input_at("a".into(), "L1".into(), 1_000);
    orders.pipe_input_at("b".into(), "R1".into(), 1_000);
    clicks.pipe_input_at("z".into(), "L2".into(), 4_000); // R1 closes at 1 s + 2 s + 1 s
    assert!(read_joined(&driver).is_empty());
    clicks.pipe_input_at("z".into(), "L3".into(), 4_001);
    assert_eq!(read_joined(&driver), vec![("null+R1".to_string(), 1_000)]);
    clicks.pipe_input_at("z".into(), "L4".into(), 12_000); // L1 closes at 1 s + 10 s + 1 s
    assert!(read_joined(&driver).is_empty());
    clicks.pipe_input_at("z".into(), "L5".into(), 12_001);
    assert_eq!(read_joined(&driver), vec![("L1+null".to_string(), 1_000)]);
}

/// A side whose key changed is repartitioned first; over several partitions each key's
/// records still meet in one task, matched or emitted with `None` there.
fn left_join_after_a_key_change_repartitions(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    let clicks = builder
        .stream("clicks", StringSerde, StringSerde)
        .select_key(|_, click: &String| click.split(':').next().unwrap_or_default().to_string());
    let orders = builder.stream("orders", StringSerde, StringSerde);
    clicks
        .left_join(
            &orders,
            |_, click, order| describe(Some(click), order),
            JoinWindows::of_time_difference(Duration::from_secs(10)),
            StreamJoined::new("click-order", StringSerde, StringSerde, StringSerde),
        )
        .to("joined", StringSerde, StringSerde);
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 2, backing);
    let (mut clicks, mut orders) = inputs(&driver);
    for (user, timestamp_ms) in [("u1", 1_000), ("u2", 1_000), ("u3", 1_000), ("u4", 1_000)] {
        clicks.pipe_input_at("any".into(), format!("{user}:home"), timestamp_ms);
    }
    orders.pipe_input_at("u2".into(), "o2".into(), 2_000);
    orders.pipe_input_at("u4".into(), "o4".into(), 2_000);
    for user in ["u1", "u2", "u3", "u4"] {
        // Moves stream time past every click's window in whichever task owns the user.
        clicks.pipe_input_at("any".into(), format!("{user}:later"), 20_000);
    }
    let mut joined: Vec<String> = read_joined(&driver).into_iter().map(|(v, _)| v).collect();
    joined.sort();
    assert_eq!(
        joined,
        vec!["u1:home+null", "u2:home+o2", "u3:home+null", "u4:home+o4"]
    );
    let repartitioned = driver.topic_records("app-click-order-left-repartition");
    assert_eq!(
        repartitioned.len(),
        8,
        "every click went through the repartition topic"
    );
}

/// Records waiting in the outer store survive a crash and still come out once.
fn unmatched_records_survive_a_restart(backing: StoreBacking) {
    let driver = TestDriver::with_store_backing(join_topology(true, Duration::ZERO), 1, backing);
    let (mut clicks, mut orders) = inputs(&driver);
    clicks.pipe_input_at("a".into(), "L1".into(), 1_000);
    orders.pipe_input_at("b".into(), "R1".into(), 1_500);
    driver.crash_and_restart();
    clicks.pipe_input_at("z".into(), "L2".into(), 20_000);
    assert_eq!(
        read_joined(&driver),
        vec![
            ("L1+null".to_string(), 1_000),
            ("null+R1".to_string(), 1_500)
        ]
    );
    driver.crash_and_restart();
    clicks.pipe_input_at("z".into(), "L3".into(), 40_000);
    assert_eq!(read_joined(&driver), vec![("L2+null".to_string(), 20_000)]);
}

for_both_backings!(
    left_join_match_emits_only_the_joined_result,
    left_join_emits_unmatched_after_window_end_plus_grace,
    outer_join_emits_unmatched_records_of_both_sides,
    outer_join_closes_each_side_by_its_own_window,
    left_join_after_a_key_change_repartitions,
    unmatched_records_survive_a_restart
);
