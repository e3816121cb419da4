//! Foreign-key table joins (KIP-213): orders keyed by order id join the products their
//! values name, over several partitions, through foreign-key changes, deletions on both
//! sides, a restart, and answers that arrive after a newer one.

mod common;

use common::rows::{read_rows, row};
use riffle_processor::{
    BytesSerde, KTable, StoreBacking, StreamsBuilder, StringSerde, TestDriver, Topology,
};

/// Partitions of every topic: orders and products land on different tasks.
const PARTITIONS: i32 = 4;

/// Orders (`order id -> product id`) and products (`product id -> name`).
fn tables(builder: &StreamsBuilder) -> (KTable<String, String>, KTable<String, String>) {
    let orders = builder.table("orders", StringSerde, StringSerde, "orders-store");
    let products = builder.table("products", StringSerde, StringSerde, "products-store");
    (orders, products)
}

fn inner_join_topology() -> Topology {
    let builder = StreamsBuilder::new("shop");
    let (orders, products) = tables(&builder);
    orders
        .join_foreign_key(
            &products,
            |product: &String| product.clone(),
            |product, name| format!("{product}:{name}"),
            StringSerde,
        )
        .to("order-products", StringSerde, StringSerde);
    builder.build().unwrap()
}

/// The inner join follows updates of both sides; a row whose foreign key changes joins
/// its new right row (or is deleted when there is none) and no longer hears of the old
/// one; deleting either side deletes the joined row; the subscriptions survive a crash.
fn inner_join_follows_both_sides(backing: StoreBacking) {
    let driver = TestDriver::with_store_backing(inner_join_topology(), PARTITIONS, backing);
    let mut orders = driver.input_topic("orders", StringSerde, StringSerde);
    let mut products = driver.input_topic("products", StringSerde, StringSerde);
    products.pipe_input_at("p1".into(), "apple".into(), 1);
    products.pipe_input_at("p2".into(), "pear".into(), 2);
    orders.pipe_input_at("o1".into(), "p1".into(), 3);
    orders.pipe_input_at("o2".into(), "p3".into(), 4); // no such product yet
    assert_eq!(
        read_rows(&driver, "order-products"),
        vec![row("o1", Some("p1:apple"), 3)]
    );

    products.pipe_input_at("p3".into(), "plum".into(), 5);
    products.pipe_input_at("p1".into(), "green apple".into(), 6);
    orders.pipe_input_at("o1".into(), "p2".into(), 7); // moves to p2
    products.pipe_input_at("p1".into(), "red apple".into(), 8); // o1 no longer hears
    orders.pipe_input_at("o1".into(), "p9".into(), 9); // moves to a missing product
    assert_eq!(
        read_rows(&driver, "order-products"),
        vec![
            row("o2", Some("p3:plum"), 5),
            row("o1", Some("p1:green apple"), 6),
            row("o1", Some("p2:pear"), 7),
            row("o1", None, 9),
        ]
    );

    driver.crash_and_restart();
    products.pipe_input_at("p9".into(), "fig".into(), 10);
    products.pipe_tombstone_at("p3".into(), 11); // right deletion
    orders.pipe_input_at("o2".into(), "p2".into(), 12);
    orders.pipe_tombstone_at("o2".into(), 13); // left deletion
    products.pipe_input_at("p2".into(), "nashi".into(), 14); // o2 is gone
    assert_eq!(
        read_rows(&driver, "order-products"),
        vec![
            row("o1", Some("p9:fig"), 10),
            row("o2", None, 11),
            row("o2", Some("p2:pear"), 12),
            row("o2", None, 13),
        ]
    );
    assert_eq!(driver.dropped_records(), 0);
}

/// The left join gives every order a row, with `null` while its product is missing; a
/// product deletion keeps the row, an order deletion deletes it.
fn left_join_keeps_rows_without_a_right_row(backing: StoreBacking) {
    let builder = StreamsBuilder::new("shop");
    let (orders, products) = tables(&builder);
    orders
        .left_join_foreign_key(
            &products,
            |product: &String| product.clone(),
            |product, name: Option<&String>| {
                format!("{product}:{}", name.map_or("null", String::as_str))
            },
            StringSerde,
        )
        .to("order-products", StringSerde, StringSerde);
    let topology = builder.build().unwrap();
    let driver = TestDriver::with_store_backing(topology, PARTITIONS, backing);
    let mut orders = driver.input_topic("orders", StringSerde, StringSerde);
    let mut products = driver.input_topic("products", StringSerde, StringSerde);
    orders.pipe_input_at("o1".into(), "p1".into(), 1);
    products.pipe_input_at("p1".into(), "apple".into(), 2);
    orders.pipe_input_at("o2".into(), "p1".into(), 3);
    products.pipe_tombstone_at("p1".into(), 4);
    orders.pipe_input_at("o1".into(), "p2".into(), 5);
    products.pipe_input_at("p1".into(), "quince".into(), 6); // only o2 still follows p1
    orders.pipe_tombstone_at("o1".into(), 7);
    orders.pipe_tombstone_at("o9".into(), 8); // never existed: nothing
    assert_eq!(
        read_rows(&driver, "order-products"),
        vec![
            row("o1", Some("p1:null"), 1),
            row("o1", Some("p1:apple"), 2),
            row("o2", Some("p1:apple"), 3),
            row("o1", Some("p1:null"), 4),
            row("o2", Some("p1:null"), 4),
            row("o1", Some("p2:null"), 5),
            row("o2", Some("p1:quince"), 6),
            row("o1", None, 7),
        ]
    );
    assert_eq!(driver.dropped_records(), 0);
}

/// An answer to an older left value (here replayed into the response topic after the
/// order changed, as a slow partition of the subscription topic would deliver it) is
/// dropped: it carries the old value's hash. The current value's answer still joins.
fn stale_responses_are_dropped(backing: StoreBacking) {
    let topology = inner_join_topology();
    let response_topic = topology
        .describe()
        .repartition_topics
        .iter()
        .map(|topic| topic.topic.clone())
        .find(|topic| topic.ends_with("-response-repartition"))
        .unwrap();
    let driver = TestDriver::with_store_backing(topology, 1, backing);
    let mut orders = driver.input_topic("orders", StringSerde, StringSerde);
    let mut products = driver.input_topic("products", StringSerde, StringSerde);
    products.pipe_input_at("p1".into(), "apple".into(), 1);
    products.pipe_input_at("p2".into(), "pear".into(), 2);
    orders.pipe_input_at("o1".into(), "p1".into(), 3);
    orders.pipe_input_at("o1".into(), "p2".into(), 4);
    assert_eq!(
        read_rows(&driver, "order-products"),
        vec![
            row("o1", Some("p1:apple"), 3),
            row("o1", Some("p2:pear"), 4)
        ]
    );
    let responses = driver.topic_records(&response_topic);
    assert_eq!(responses.len(), 2);
    let mut replay = driver.input_topic(&response_topic, BytesSerde, BytesSerde);
    let (old, new) = (&responses[0], &responses[1]);
    replay.pipe_raw(old.key.clone(), old.value.clone(), 5);
    assert_eq!(read_rows(&driver, "order-products"), vec![]);
    replay.pipe_raw(new.key.clone(), new.value.clone(), 6);
    assert_eq!(
        read_rows(&driver, "order-products"),
        vec![row("o1", Some("p2:pear"), 6)]
    );
    // Bytes that are no response are dropped and counted, not a panic.
    replay.pipe_raw(new.key.clone(), Some(vec![7, 7]), 7);
    assert_eq!(driver.dropped_records(), 1);
}

/// `describe` shows both sides' nodes, the two internal topics and the join's stores.
#[test]
fn describe_shows_the_foreign_key_join() {
    let description = inner_join_topology().describe();
    let text = description.to_string();
    for node in [
        "KTABLE-FK-JOIN-SUBSCRIPTION-SEND",
        "KTABLE-FK-JOIN-SUBSCRIPTION-RECEIVE",
        "KTABLE-FK-JOIN-FOREIGN-UPDATES",
        "KTABLE-FK-JOIN-RESPONSE-JOIN",
    ] {
        assert!(text.contains(node), "{node} missing from\n{text}");
    }
    assert!(text.contains("-foreign-key-store"), "{text}");
    assert!(text.contains("-subscription-store"), "{text}");
    let topics: Vec<&str> = description
        .repartition_topics
        .iter()
        .map(|topic| topic.topic.as_str())
        .collect();
    assert_eq!(topics.len(), 2, "{topics:?}");
    assert!(
        topics
            .iter()
            .all(|topic| topic.starts_with("shop-KTABLE-FK-JOIN-"))
    );
    // Orders' side and products' side are two sub-topologies, each feeding the other.
    assert_eq!(description.subtopologies.len(), 2);
}

for_both_backings!(
    inner_join_follows_both_sides,
    left_join_keeps_rows_without_a_right_row,
    stale_responses_are_dropped,
);

/// The tables need not be co-partitioned: each internal topic takes the partition count
/// of the side that reads it.
#[test]
fn tables_with_different_partition_counts_plan() {
    let topology = inner_join_topology();
    let plan = topology
        .plan(|topic| match topic {
            "orders" => Some(4),
            "products" => Some(2),
            _ => None,
        })
        .unwrap();
    let partitions = |suffix: &str| {
        plan.internal_topics
            .iter()
            .find(|topic| topic.name.ends_with(suffix))
            .map(|topic| topic.partitions)
    };
    assert_eq!(partitions("-subscription-repartition"), Some(2));
    assert_eq!(partitions("-response-repartition"), Some(4));
    assert_eq!(partitions("-subscription-store-changelog"), Some(2));
    assert_eq!(partitions("-foreign-key-store-changelog"), Some(4));
    let mut task_counts = plan.task_counts.clone();
    task_counts.sort_unstable();
    assert_eq!(task_counts, vec![2, 4]);
}
