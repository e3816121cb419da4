//! Table-table joins: inner, left and outer, through updates, deletions and a restart.

mod common;

use common::rows::{read_rows, row};
use riffle_processor::{I64Serde, StoreBacking, StreamsBuilder, StringSerde, TestDriver};

fn name_and_balance(name: Option<&String>, balance: Option<&i64>) -> String {
    let name = name.map_or("null".to_string(), String::clone);
    let balance = balance.map_or("null".to_string(), i64::to_string);
    format!("{name}+{balance}")
}

/// The same updates through all three joins: each emits what Kafka Streams' table-table
/// joins emit, stamped with the later of the two rows' timestamps, and the tables'
/// stores restore after a crash in the middle.
fn table_joins_follow_both_sides(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    let users = builder.table("users", StringSerde, StringSerde, "users-store");
    let balances = builder.table("balances", StringSerde, I64Serde, "balances-store");
    users
        .join(
            &balances,
            |_, name, balance| name_and_balance(Some(name), Some(balance)),
            StringSerde,
        )
        .to("inner", StringSerde, StringSerde);
    users
        .left_join(
            &balances,
            |_, name, balance| name_and_balance(Some(name), balance),
            StringSerde,
        )
        .to("left", StringSerde, StringSerde);
    users
        .outer_join(
            &balances,
            |_, name, balance| name_and_balance(name, balance),
            StringSerde,
        )
        .to("outer", StringSerde, StringSerde);
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    let mut user_input = driver.input_topic("users", StringSerde, StringSerde);
    let mut balance_input = driver.input_topic("balances", StringSerde, I64Serde);
    user_input.pipe_input_at("u1".into(), "alice".into(), 1);
    balance_input.pipe_input_at("u1".into(), 10, 5);
    balance_input.pipe_input_at("u2".into(), 20, 6);
    driver.crash_and_restart();
    user_input.pipe_input_at("u1".into(), "anna".into(), 3); // older than its partner
    balance_input.pipe_tombstone_at("u1".into(), 7);
    user_input.pipe_tombstone_at("u1".into(), 8);
    balance_input.pipe_tombstone_at("u2".into(), 9);
    assert_eq!(
        read_rows(&driver, "inner"),
        vec![
            row("u1", Some("alice+10"), 5),
            row("u1", Some("anna+10"), 5),
            row("u1", None, 7),
        ]
    );
    assert_eq!(
        read_rows(&driver, "left"),
        vec![
            row("u1", Some("alice+null"), 1),
            row("u1", Some("alice+10"), 5),
            row("u1", Some("anna+10"), 5),
            row("u1", Some("anna+null"), 7),
            row("u1", None, 8),
        ]
    );
    assert_eq!(
        read_rows(&driver, "outer"),
        vec![
            row("u1", Some("alice+null"), 1),
            row("u1", Some("alice+10"), 5),
            row("u2", Some("null+20"), 6),
            row("u1", Some("anna+10"), 5),
            row("u1", Some("anna+null"), 7),
            row("u1", None, 8),
            row("u2", None, 9),
        ]
    );
}

for_both_backings!(table_joins_follow_both_sides);
