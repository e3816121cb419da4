//! Table `filter` and `map_values`, with and without a store of their own.

mod common;

use riffle_processor::{
    I64Serde, KTable, Materialized, StoreBacking, StreamsBuilder, StringSerde, TestDriver,
    TopologyError,
};

/// `(key, value)` of every unread record of `topic`, deletions as `None`.
fn read_updates(driver: &TestDriver, topic: &str) -> Vec<(String, Option<String>)> {
    driver
        .output_topic(topic, StringSerde, StringSerde)
        .read_records()
        .into_iter()
        .map(|record| (record.key, record.value))
        .collect()
}

fn update(key: &str, value: Option<&str>) -> (String, Option<String>) {
    (key.to_string(), value.map(str::to_string))
}

/// Pipes the same updates to `users`: a passing row, a failing one, a passing update, an
/// update that stops passing, and the deletion of a key never seen.
fn pipe_user_updates(driver: &TestDriver) {
    let mut users = driver.input_topic("users", StringSerde, StringSerde);
    users.pipe_input_at("u1".into(), "alice".into(), 1);
    users.pipe_input_at("u2".into(), "bob".into(), 2);
    users.pipe_input_at("u1".into(), "anna".into(), 3);
    users.pipe_input_at("u1".into(), "bert".into(), 4);
    users.pipe_tombstone_at("u3".into(), 5);
}

/// Names starting with an `a`.
fn starts_with_a() -> impl Fn(&String, &String) -> bool + Send + Sync + 'static {
    |_, name| name.starts_with('a')
}

/// Without a store every update that fails the filter goes on as a deletion, as Kafka
/// Streams forwards it without old values.
fn filter_forwards_failing_updates_as_deletions(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    let users = builder.table("users", StringSerde, StringSerde, "users-store");
    users
        .filter(starts_with_a())
        .to("a-users", StringSerde, StringSerde);
    users
        .filter_not(starts_with_a())
        .to("other-users", StringSerde, StringSerde);
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    pipe_user_updates(&driver);
    assert_eq!(
        read_updates(&driver, "a-users"),
        vec![
            update("u1", Some("alice")),
            update("u2", None),
            update("u1", Some("anna")),
            update("u1", None),
            update("u3", None),
        ]
    );
    assert_eq!(
        read_updates(&driver, "other-users"),
        vec![
            update("u1", None),
            update("u2", Some("bob")),
            update("u1", None),
            update("u1", Some("bert")),
            update("u3", None),
        ]
    );
}

/// A materialized filter deletes downstream only rows it held, can be joined and
/// queried, and restores its store after a crash.
fn materialized_filter_is_joinable_and_restores(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    let users = builder.table("users", StringSerde, StringSerde, "users-store");
    let a_users = users.filter_materialized(starts_with_a(), "a-users-store");
    a_users.to("a-users", StringSerde, StringSerde);
    builder
        .stream("clicks", StringSerde, StringSerde)
        .join_table(&a_users, |_, page, user| format!("{user}:{page}"))
        .to("a-clicks", StringSerde, StringSerde);
    let store = a_users.store();
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    pipe_user_updates(&driver);
    assert_eq!(
        read_updates(&driver, "a-users"),
        vec![
            update("u1", Some("alice")),
            update("u1", Some("anna")),
            update("u1", None),
        ]
    );
    let mut users = driver.input_topic("users", StringSerde, StringSerde);
    users.pipe_input_at("u4".into(), "ada".into(), 6);
    driver.crash_and_restart();
    let view = driver.key_value_store(&store);
    assert_eq!(
        view.get(&"u4".to_string()).unwrap(),
        Some("ada".to_string())
    );
    assert_eq!(view.get(&"u1".to_string()).unwrap(), None);
    let mut clicks = driver.input_topic("clicks", StringSerde, StringSerde);
    clicks.pipe_input_at("u4".into(), "home".into(), 7);
    clicks.pipe_input_at("u2".into(), "home".into(), 8);
    assert_eq!(
        read_updates(&driver, "a-clicks"),
        vec![update("u4", Some("ada:home"))]
    );
}

/// `map_values` maps every row and keeps deletions; materialized, its store holds the
/// mapped values.
fn map_values_maps_rows_and_keeps_deletions(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    let users = builder.table("users", StringSerde, StringSerde, "users-store");
    users
        .map_values(|name: &String| name.to_uppercase(), StringSerde)
        .to("loud-users", StringSerde, StringSerde);
    let lengths: KTable<String, i64> = users.map_values_materialized(
        |name: &String| i64::try_from(name.len()).unwrap(),
        Materialized::new("name-lengths").with_value_serde(I64Serde),
    );
    let store = lengths.store();
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    let mut input = driver.input_topic("users", StringSerde, StringSerde);
    input.pipe_input_at("u1".into(), "alice".into(), 1);
    input.pipe_input_at("u2".into(), "bo".into(), 2);
    input.pipe_tombstone_at("u1".into(), 3);
    assert_eq!(
        read_updates(&driver, "loud-users"),
        vec![
            update("u1", Some("ALICE")),
            update("u2", Some("BO")),
            update("u1", None),
        ]
    );
    let view = driver.key_value_store(&store);
    assert_eq!(view.all().unwrap(), vec![("u2".to_string(), 2)]);
}

for_both_backings!(
    filter_forwards_failing_updates_as_deletions,
    materialized_filter_is_joinable_and_restores,
    map_values_maps_rows_and_keeps_deletions
);

/// A table without a store of its own cannot be joined or queried: `build` says so.
#[test]
fn unmaterialized_tables_cannot_be_joined_or_queried() {
    let builder = StreamsBuilder::new("app");
    let users = builder.table("users", StringSerde, StringSerde, "users-store");
    let a_users = users.filter(starts_with_a());
    builder
        .stream("clicks", StringSerde, StringSerde)
        .join_table(&a_users, |_, page, user| format!("{user}:{page}"));
    assert!(matches!(
        builder.build(),
        Err(TopologyError::NotMaterialized(_))
    ));
    let builder = StreamsBuilder::new("app");
    let counts = builder
        .stream("clicks", StringSerde, StringSerde)
        .group_by_key()
        .count("counts")
        .map_values(|count| count * 2, I64Serde);
    let _handle = counts.store();
    assert!(matches!(
        builder.build(),
        Err(TopologyError::NotMaterialized(_))
    ));
}
