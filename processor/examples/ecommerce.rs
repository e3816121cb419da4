//! E-commerce: click-to-order conversions, the top products of every minute, and live
//! inventory.
//!
//! Every input topic is keyed by **product id** (UTF-8). Two of the three computations are
//! per product (top products, inventory), so they need no repartition topic; the one that
//! is per user and product, the conversion join, re-keys both sides itself and pays for
//! the two repartition topics it needs. Keying the inputs by user would flip that.
//!
//! Topics:
//!
//! - `clicks` (input): `{"user":"u1"}`, a user looked at the product.
//! - `orders` (input): `{"order_id":"o1","user":"u1","quantity":2}`.
//! - `restocks` (input): `{"quantity":10}`, units put back on the shelf.
//! - `click-to-order` (output): an order placed at most 10 minutes after the same user
//!   clicked the same product, one record per (click, order) pair, keyed
//!   `{"user":"u1","product":"p1"}`: `{"user":"u1","product":"p1","order_id":"o1","quantity":2}`.
//! - `top-products` (output): keyed by the minute's start (8-byte big-endian ms, Kafka's
//!   `LongSerializer`), the 3 products with the most orders in that minute, updated as each
//!   product's final count for the minute arrives; the latest record per key is the answer:
//!   `{"window_start_ms":0,"products":[{"product":"p1","orders":3}, ...]}`.
//! - `inventory` (output): the stock level per product after each order or restock,
//!   8-byte big-endian (kcat: `-s value=q`). It may go negative: orders are not refused.
//!
//! `clicks`, `orders` and `restocks` must have the same number of partitions.
//!
//! Run it: `cargo run -p riffle-processor --example ecommerce` starts a broker on
//! 127.0.0.1:9092 with this topology running inside it (the usual `riffle serve` flags
//! apply); `-- --remote HOST:PORT` runs it against another Kafka-compatible broker. Then:
//!
//! ```text
//! echo 'p1:{"quantity":10}' | kcat -b 127.0.0.1:9092 -P -t restocks -K:
//! echo 'p1:{"user":"u1"}' | kcat -b 127.0.0.1:9092 -P -t clicks -K:
//! echo 'p1:{"order_id":"o1","user":"u1","quantity":2}' | kcat -b 127.0.0.1:9092 -P -t orders -K:
//! kcat -b 127.0.0.1:9092 -C -t click-to-order -K' => '
//! kcat -b 127.0.0.1:9092 -C -t inventory -s value=q -K' => '
//! ```
//!
//! To make it yours: each computation is one function (`conversions`, `top_products`,
//! `inventory`) over the input streams; drop one, or change the constants below.

mod common;

use std::time::Duration;

use riffle_processor::{
    Emit, Grouped, I64Serde, JoinWindows, JsonSerde, KStream, KeyValueStoreHandle, Materialized,
    StreamJoined, StreamsBuilder, StringSerde, TimeWindows, Topology, TopologyError, Windowed,
};
use serde::{Deserialize, Serialize};

/// An order converts a click when it follows the click by at most this much.
const CONVERSION_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Orders (and clicks) arriving this late still join.
const CONVERSION_GRACE: Duration = Duration::from_secs(60);
/// The top-products ranking is per minute...
const RANKING_WINDOW: Duration = Duration::from_secs(60);
/// ...final once stream time is 10 s past the minute's end...
const RANKING_GRACE: Duration = Duration::from_secs(10);
/// ...and keeps this many products.
const TOP_PRODUCTS: usize = 3;

/// A value of `clicks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Click {
    user: String,
}

/// A value of `orders`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    order_id: String,
    user: String,
    quantity: i64,
}

/// A value of `restocks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Restock {
    quantity: i64,
}

/// The conversion join's key: a click converts only into the same user's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UserProduct {
    user: String,
    product: String,
}

/// A value of `click-to-order`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Conversion {
    user: String,
    product: String,
    order_id: String,
    quantity: i64,
}

/// One product's final order count for one minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ProductOrders {
    product: String,
    orders: i64,
}

/// A value of `top-products`: the best products of one minute, best first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct TopProducts {
    window_start_ms: i64,
    products: Vec<ProductOrders>,
}

impl TopProducts {
    /// Adds one product's count and keeps the best `TOP_PRODUCTS`; ties go to the smaller
    /// product id so the ranking does not depend on arrival order.
    fn insert(mut self, window_start_ms: i64, entry: &ProductOrders) -> TopProducts {
        self.window_start_ms = window_start_ms;
        self.products.retain(|known| known.product != entry.product);
        self.products.push(entry.clone());
        self.products.sort_by(|a, b| {
            b.orders
                .cmp(&a.orders)
                .then_with(|| a.product.cmp(&b.product))
        });
        self.products.truncate(TOP_PRODUCTS);
        self
    }
}

/// Handles the host program (or a test) reads state through. `common::run_built` gives the
/// running broker no way to serve them yet, so outside tests nothing reads them.
#[cfg_attr(not(test), allow(dead_code))]
struct Stores {
    /// Units in stock per product.
    inventory: KeyValueStoreHandle<String, i64>,
}

fn conversions(clicks: &KStream<String, Click>, orders: &KStream<String, Order>) {
    let clicks = clicks.select_key(|product, click| UserProduct {
        user: click.user.clone(),
        product: product.clone(),
    });
    let orders = orders.select_key(|product, order| UserProduct {
        user: order.user.clone(),
        product: product.clone(),
    });
    // Clicks are the left side: a match needs `click.ts <= order.ts <= click.ts + 10 min`.
    // JoinWindows has no `before`/`after` setters yet, hence the struct update.
    let windows = JoinWindows {
        before_ms: 0,
        ..JoinWindows::of_time_difference(CONVERSION_WINDOW).grace(CONVERSION_GRACE)
    };
    let joined = StreamJoined::new(
        "click-to-order",
        JsonSerde::<UserProduct>::new(),
        JsonSerde::<Click>::new(),
        JsonSerde::<Order>::new(),
    );
    clicks.join(&orders, convert, windows, joined).to(
        "click-to-order",
        JsonSerde::<UserProduct>::new(),
        JsonSerde::<Conversion>::new(),
    );
}

fn convert(key: &UserProduct, _click: &Click, order: &Order) -> Conversion {
    Conversion {
        user: key.user.clone(),
        product: key.product.clone(),
        order_id: order.order_id.clone(),
        quantity: order.quantity,
    }
}

/// Counts orders per product and minute, then ranks each minute's final counts. The second
/// step is keyed by the minute, so all products of one minute meet in one task.
fn top_products(orders: &KStream<String, Order>) {
    let windows = TimeWindows::tumbling(RANKING_WINDOW).grace(RANKING_GRACE);
    orders
        .group_by_key()
        .windowed_by(windows)
        // Final counts only: each (product, minute) reaches the ranking exactly once, so
        // the ranking never has to take an old count back out.
        .emit(Emit::OnWindowClose)
        .count("orders-per-product-minute")
        .to_stream()
        .map(|window: &Windowed<String>, orders: &i64| {
            let entry = ProductOrders {
                product: window.key.clone(),
                orders: *orders,
            };
            (window.start_ms, entry)
        })
        .group_by_key_with(
            Grouped::new(I64Serde, JsonSerde::<ProductOrders>::new()).name("top-products"),
        )
        .aggregate(
            TopProducts::default,
            |window_start_ms, entry, top| top.insert(*window_start_ms, entry),
            Materialized::new("top-products-per-minute")
                .with_value_serde(JsonSerde::<TopProducts>::new()),
        )
        .to("top-products", I64Serde, JsonSerde::<TopProducts>::new());
}

/// Orders take units out, restocks put them back: one stream of signed deltas, summed.
fn inventory(orders: &KStream<String, Order>, restocks: &KStream<String, Restock>) -> Stores {
    let sold = orders.map_values(|order: &Order| -order.quantity);
    let restocked = restocks.map_values(|restock: &Restock| restock.quantity);
    let stock = sold.merge(&restocked).group_by_key().aggregate(
        || 0,
        |_, delta, stock| stock + delta,
        Materialized::new("inventory-store").with_value_serde(I64Serde),
    );
    stock.to("inventory", StringSerde, I64Serde);
    Stores {
        inventory: stock.store(),
    }
}

/// The whole application: three computations over the same three input topics.
fn topology() -> Result<(Topology, Stores), TopologyError> {
    let builder = StreamsBuilder::new("ecommerce");
    let clicks = builder.stream("clicks", StringSerde, JsonSerde::<Click>::new());
    let orders = builder.stream("orders", StringSerde, JsonSerde::<Order>::new());
    let restocks = builder.stream("restocks", StringSerde, JsonSerde::<Restock>::new());
    conversions(&clicks, &orders);
    top_products(&orders);
    let stores = inventory(&orders, &restocks);
    Ok((builder.build()?, stores))
}

fn main() -> std::process::ExitCode {
    // The store handles serve queries in tests; `common::run_built` does not expose them.
    let topology = topology().map(|(topology, _stores)| topology);
    common::run_built("ecommerce", topology)
}

#[cfg(test)]
mod tests {
    use riffle_processor::{TestDriver, TestInputTopic, TestOutputTopic};

    use super::*;

    const MINUTE_MS: i64 = 60_000;

    struct Harness {
        driver: TestDriver,
        stores: Stores,
        clicks: TestInputTopic<String, Click>,
        orders: TestInputTopic<String, Order>,
        restocks: TestInputTopic<String, Restock>,
        conversions: TestOutputTopic<UserProduct, Conversion>,
        top_products: TestOutputTopic<i64, TopProducts>,
        inventory: TestOutputTopic<String, i64>,
    }

    fn harness() -> Harness {
        harness_with_partitions(1)
    }

    fn harness_with_partitions(partitions: i32) -> Harness {
        let (topology, stores) = topology().expect("the topology builds");
        let driver = TestDriver::with_partitions(topology, partitions);
        Harness {
            stores,
            clicks: driver.input_topic("clicks", StringSerde, JsonSerde::new()),
            orders: driver.input_topic("orders", StringSerde, JsonSerde::new()),
            restocks: driver.input_topic("restocks", StringSerde, JsonSerde::new()),
            conversions: driver.output_topic("click-to-order", JsonSerde::new(), JsonSerde::new()),
            top_products: driver.output_topic("top-products", I64Serde, JsonSerde::new()),
            inventory: driver.output_topic("inventory", StringSerde, I64Serde),
            driver,
        }
    }

    impl Harness {
        fn click(&mut self, product: &str, user: &str, timestamp_ms: i64) {
            let click = Click {
                user: user.to_string(),
            };
            self.clicks
                .pipe_input_at(product.to_string(), click, timestamp_ms);
        }

        fn order(&mut self, product: &str, user: &str, quantity: i64, timestamp_ms: i64) {
            let order = Order {
                order_id: format!("{user}-{product}-{timestamp_ms}"),
                user: user.to_string(),
                quantity,
            };
            self.orders
                .pipe_input_at(product.to_string(), order, timestamp_ms);
        }

        fn restock(&mut self, product: &str, quantity: i64, timestamp_ms: i64) {
            let restock = Restock { quantity };
            self.restocks
                .pipe_input_at(product.to_string(), restock, timestamp_ms);
        }

        /// The order ids of the conversions emitted since the last call.
        fn converted_orders(&self) -> Vec<String> {
            let conversions = self.conversions.read_key_values();
            for (key, conversion) in &conversions {
                assert_eq!(
                    (&key.user, &key.product),
                    (&conversion.user, &conversion.product)
                );
            }
            conversions
                .into_iter()
                .map(|(_, conversion)| conversion.order_id)
                .collect()
        }
    }

    fn ranking(window_start_ms: i64, products: &[(&str, i64)]) -> TopProducts {
        let products = products
            .iter()
            .map(|(product, orders)| ProductOrders {
                product: product.to_string(),
                orders: *orders,
            })
            .collect();
        TopProducts {
            window_start_ms,
            products,
        }
    }

    /// An order converts a click of the same user on the same product up to 10 minutes
    /// before it, inclusive; other users, other products, older clicks and clicks after
    /// the order do not convert.
    #[test]
    fn orders_convert_earlier_clicks_of_the_same_user_and_product() {
        let mut h = harness();
        h.click("p1", "u1", 0);
        h.order("p1", "u2", 1, 60_000); // another user
        h.order("p2", "u1", 1, 60_000); // another product
        h.order("p1", "u1", 1, 5 * MINUTE_MS); // converts
        h.order("p1", "u1", 1, 10 * MINUTE_MS); // exactly 10 minutes later: converts
        h.order("p1", "u1", 1, 10 * MINUTE_MS + 1); // 1 ms too late
        assert_eq!(h.converted_orders(), vec!["u1-p1-300000", "u1-p1-600000"]);
        h.order("p3", "u3", 1, 20 * MINUTE_MS);
        h.click("p3", "u3", 20 * MINUTE_MS + 1); // the click came after the order
        assert!(h.converted_orders().is_empty());
    }

    /// The join is symmetric in arrival: a click that arrives after its order (but is
    /// older) still finds it, and an order after two clicks converts both.
    #[test]
    fn conversions_pair_every_click_with_every_order_in_the_window() {
        let mut h = harness();
        h.order("p1", "u1", 2, 5 * MINUTE_MS);
        h.click("p1", "u1", 4 * MINUTE_MS); // out of order, within the grace period
        assert_eq!(h.converted_orders(), vec!["u1-p1-300000"]);
        h.click("p1", "u1", 6 * MINUTE_MS);
        h.order("p1", "u1", 1, 7 * MINUTE_MS); // after both clicks
        assert_eq!(h.converted_orders(), vec!["u1-p1-420000", "u1-p1-420000"]);
    }

    /// With several partitions the conversion join still meets: both sides are re-keyed
    /// by (user, product) and go through the join's two repartition topics, while the
    /// per-product inventory needs none.
    #[test]
    fn conversions_and_inventory_work_across_partitions() {
        let mut h = harness_with_partitions(4);
        for (user, product) in [("u1", "p1"), ("u2", "p1"), ("u3", "p2"), ("u4", "p3")] {
            h.restock(product, 10, 0); // p1 twice: 20 units
            h.click(product, user, 1_000);
            h.order(product, user, 1, 2_000);
        }
        let mut converted = h.converted_orders();
        converted.sort();
        assert_eq!(
            converted,
            vec!["u1-p1-2000", "u2-p1-2000", "u3-p2-2000", "u4-p3-2000"]
        );
        for side in ["left", "right"] {
            let topic = format!("ecommerce-click-to-order-{side}-repartition");
            assert_eq!(h.driver.topic_records(&topic).len(), 4, "{topic}");
        }
        let store = h.driver.key_value_store(&h.stores.inventory);
        let levels = store.all().unwrap();
        let expected: Vec<(String, i64)> = [("p1", 18), ("p2", 9), ("p3", 9)]
            .into_iter()
            .map(|(product, level)| (product.to_string(), level))
            .collect();
        assert_eq!(levels, expected);
    }

    /// A minute's ranking appears once stream time passes the minute's end plus 10 s, as
    /// each product's final count comes in; ties rank by product id; only 3 are kept.
    #[test]
    fn top_products_rank_each_minute_when_it_closes() {
        let mut h = harness();
        for (product, orders) in [("p1", 3), ("p2", 1), ("p3", 2), ("p4", 2)] {
            for n in 0..orders {
                h.order(product, "u1", 1, 1_000 * (n + 1));
            }
        }
        h.order("p1", "u2", 1, MINUTE_MS + 9_999); // stream time 69.999 s: minute 0 still open
        assert!(h.top_products.is_empty());
        h.order("p2", "u2", 1, MINUTE_MS + 10_000); // closes minute 0
        let rankings = h.top_products.read_key_values();
        let expected = vec![
            (0, ranking(0, &[("p1", 3)])),
            (0, ranking(0, &[("p1", 3), ("p2", 1)])),
            (0, ranking(0, &[("p1", 3), ("p3", 2), ("p2", 1)])),
            (0, ranking(0, &[("p1", 3), ("p3", 2), ("p4", 2)])),
        ];
        assert_eq!(rankings, expected);
        h.order("p5", "u3", 1, 2 * MINUTE_MS + 10_000); // closes minute 1
        let rankings = h.top_products.read_key_values();
        let expected = vec![
            (MINUTE_MS, ranking(MINUTE_MS, &[("p1", 1)])),
            (MINUTE_MS, ranking(MINUTE_MS, &[("p1", 1), ("p2", 1)])),
        ];
        assert_eq!(rankings, expected);
    }

    /// Orders within the grace period still count for their minute; later ones are dropped
    /// from the ranking and counted as dropped.
    #[test]
    fn late_orders_count_within_grace_and_are_dropped_after() {
        let mut h = harness();
        h.order("p1", "u1", 1, 1_000);
        h.order("p1", "u1", 1, MINUTE_MS + 5_000);
        h.order("p2", "u1", 1, 59_000); // 6 s late, inside the 10 s grace
        h.order("p2", "u1", 1, 59_500);
        h.order("p1", "u1", 1, MINUTE_MS + 10_000); // closes minute 0
        h.order("p1", "u1", 1, 30_000); // minute 0 has closed: dropped
        assert_eq!(h.driver.dropped_records(), 1);
        let final_ranking = h.top_products.read_key_values().pop();
        assert_eq!(
            final_ranking,
            Some((0, ranking(0, &[("p2", 2), ("p1", 1)])))
        );
    }

    /// Inventory follows orders and restocks per product, on the topic and in the store.
    #[test]
    fn inventory_tracks_orders_and_restocks() {
        let mut h = harness();
        h.restock("p1", 10, 1_000);
        h.order("p1", "u1", 3, 2_000);
        h.restock("p2", 5, 3_000);
        h.order("p1", "u2", 2, 4_000);
        h.order("p2", "u1", 7, 5_000); // oversold: stock goes negative
        let levels = h.inventory.read_key_values();
        let expected: Vec<(String, i64)> =
            [("p1", 10), ("p1", 7), ("p2", 5), ("p1", 5), ("p2", -2)]
                .into_iter()
                .map(|(product, level)| (product.to_string(), level))
                .collect();
        assert_eq!(levels, expected);
        let store = h.driver.key_value_store(&h.stores.inventory);
        assert_eq!(store.get(&"p1".to_string()).unwrap(), Some(5));
        assert_eq!(store.get(&"p2".to_string()).unwrap(), Some(-2));
        assert_eq!(store.get(&"p3".to_string()).unwrap(), None);
    }

    /// A late order is late only for the ranking: inventory and conversions take it.
    #[test]
    fn late_orders_still_change_inventory() {
        let mut h = harness();
        h.restock("p1", 5, 0);
        h.order("p1", "u1", 1, 2 * MINUTE_MS);
        h.order("p1", "u1", 1, 1_000); // late for minute 0's ranking
        assert_eq!(h.driver.dropped_records(), 1);
        let store = h.driver.key_value_store(&h.stores.inventory);
        assert_eq!(store.get(&"p1".to_string()).unwrap(), Some(3));
    }
}
