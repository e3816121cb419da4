//! Joins: stream-table (inner and left) and windowed stream-stream.

use std::time::Duration;

mod common;

use riffle_processor::{
    JoinWindows, StoreBacking, StreamJoined, StreamsBuilder, StringSerde, TestDriver,
};

/// Stream records look up the table's current value; table updates and deletions change
/// what later records see, but do not emit themselves.
fn stream_table_joins_see_the_current_table(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    let users = builder.table("users", StringSerde, StringSerde, "users-store");
    let clicks = builder.stream("clicks", StringSerde, StringSerde);
    clicks
        .join_table(&users, |_, page, user| format!("{user}:{page}"))
        .to("inner", StringSerde, StringSerde);
    clicks
        .left_join_table(&users, |_, page, user| {
            format!("{}:{page}", user.map_or("?", String::as_str))
        })
        .to("left", StringSerde, StringSerde);
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    let mut user_input = driver.input_topic("users", StringSerde, StringSerde);
    let mut click_input = driver.input_topic("clicks", StringSerde, StringSerde);
    click_input.pipe_input_at("u1".into(), "home".into(), 1);
    user_input.pipe_input_at("u1".into(), "alice".into(), 2);
    click_input.pipe_input_at("u1".into(), "cart".into(), 3);
    user_input.pipe_tombstone_at("u1".into(), 4);
    click_input.pipe_input_at("u1".into(), "exit".into(), 5);
    let read = |topic: &str| -> Vec<String> {
        driver
            .output_topic(topic, StringSerde, StringSerde)
            .read_key_values()
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    };
    assert_eq!(read("inner"), vec!["alice:cart"]);
    assert_eq!(read("left"), vec!["?:home", "alice:cart", "?:exit"]);
}

/// A table restores from its own topic after a crash.
fn tables_restore_from_their_source_topic(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    let users = builder.table("users", StringSerde, StringSerde, "users-store");
    builder
        .stream("clicks", StringSerde, StringSerde)
        .join_table(&users, |_, page, user| format!("{user}:{page}"))
        .to("out", StringSerde, StringSerde);
    let store = users.store();
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    driver
        .input_topic("users", StringSerde, StringSerde)
        .pipe_input("u".into(), "bob".into());
    driver.crash_and_restart();
    assert_eq!(
        driver
            .key_value_store(&store)
            .get(&"u".to_string())
            .unwrap(),
        Some("bob".into())
    );
    driver
        .input_topic("clicks", StringSerde, StringSerde)
        .pipe_input("u".into(), "p".into());
    let out = driver
        .output_topic("out", StringSerde, StringSerde)
        .read_key_values();
    assert_eq!(out, vec![("u".to_string(), "bob:p".to_string())]);
}

/// Records of two streams with the same key join when their timestamps are within the
/// window, in either arrival order, with the later timestamp.
fn stream_stream_join_matches_within_the_window(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    let clicks = builder.stream("clicks", StringSerde, StringSerde);
    let orders = builder.stream("orders", StringSerde, StringSerde);
    clicks
        .join(
            &orders,
            |_, click, order| format!("{click}->{order}"),
            JoinWindows::of_time_difference(Duration::from_secs(10)),
            StreamJoined::new("click-order", StringSerde, StringSerde, StringSerde),
        )
        .to("conversions", StringSerde, StringSerde);
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    let mut click_input = driver.input_topic("clicks", StringSerde, StringSerde);
    let mut order_input = driver.input_topic("orders", StringSerde, StringSerde);
    click_input.pipe_input_at("u".into(), "c1".into(), 1_000);
    order_input.pipe_input_at("u".into(), "o1".into(), 5_000);
    order_input.pipe_input_at("u".into(), "o2".into(), 30_000); // too far from c1
    order_input.pipe_input_at("v".into(), "o3".into(), 5_000); // other key
    click_input.pipe_input_at("u".into(), "c2".into(), 25_000); // joins o2 (and not o1)
    let output = driver.output_topic("conversions", StringSerde, StringSerde);
    let records: Vec<(String, i64)> = output
        .read_records()
        .into_iter()
        .map(|r| (r.value.unwrap(), r.timestamp_ms))
        .collect();
    assert_eq!(
        records,
        vec![
            ("c1->o1".to_string(), 5_000),
            ("c2->o2".to_string(), 30_000)
        ]
    );
}

for_both_backings!(
    stream_table_joins_see_the_current_table,
    tables_restore_from_their_source_topic,
    stream_stream_join_matches_within_the_window
);
