//! The foreign-key table join against the real `riffle` binary, through the remote
//! runtime: orders (4 partitions) join products (2 partitions), tables that are not
//! co-partitioned, through the join's subscription and response topics. Every order ends
//! with its product's current name, also after a product is renamed and an order moves to
//! another product.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use riffle_integration_tests::Broker;
use riffle_integration_tests::clients::{create_topic, future_producer, read_to_end};
use riffle_processor::runtime::remote::RemoteBackend;
use riffle_processor::runtime::{Runner, RuntimeConfig, RuntimeError};
use riffle_processor::{StreamsBuilder, StringSerde, Topology, murmur2_partition};
use riffle_storage::MutexRecover;
use tokio::sync::oneshot;

const ORDER_PARTITIONS: i32 = 4;
const PRODUCT_PARTITIONS: i32 = 2;
const ORDER_COUNT: usize = 20;
const PRODUCT_COUNT: usize = 6;
const WAIT_TIMEOUT: Duration = Duration::from_secs(60);

fn topology() -> Topology {
    let builder = StreamsBuilder::new("fk-app");
    let orders = builder.table("orders", StringSerde, StringSerde, "orders-store");
    let products = builder.table("products", StringSerde, StringSerde, "products-store");
    orders
        .join_foreign_key(
            &products,
            |product: &String| product.clone(),
            |product, name| format!("{product}:{name}"),
            StringSerde,
        )
        .to("order-products", StringSerde, StringSerde);
    builder.build().expect("the topology builds")
}

/// Writes `rows` to `topic`, each at its key's murmur2 partition (as Kafka's Java
/// producer places them).
async fn produce(bootstrap: &str, topic: &str, partitions: i32, rows: &[(String, String)]) {
    let producer = future_producer(bootstrap, &[("linger.ms", "5")]);
    for (key, value) in rows {
        let partition = murmur2_partition(key.as_bytes(), partitions);
        let record = FutureRecord::to(topic)
            .partition(partition)
            .key(key.as_str())
            .payload(value.as_str());
        producer
            .send(record, Duration::from_secs(10))
            .await
            .unwrap_or_else(|(error, _)| panic!("produce to {topic}: {error}"));
    }
}

/// The latest row per order in the output topic (tombstones delete).
fn joined_rows(bootstrap: &str) -> BTreeMap<String, String> {
    let mut rows = BTreeMap::new();
    for message in read_to_end(bootstrap, "order-products", 0) {
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        match message.payload() {
            Some(value) => rows.insert(key, String::from_utf8_lossy(value).into_owned()),
            None => rows.remove(&key),
        };
    }
    rows
}

async fn wait_for_rows(bootstrap: &str, expected: &BTreeMap<String, String>) {
    let deadline = Instant::now() + WAIT_TIMEOUT;
    loop {
        let rows = joined_rows(bootstrap);
        if &rows == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "joined rows never matched\n got: {rows:?}\nwant: {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn foreign_key_join_across_differently_partitioned_tables() {
    let broker = Broker::start_with(&["--group-initial-rebalance-delay-ms", "0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "orders", ORDER_PARTITIONS, &[]).await;
    create_topic(&bootstrap, "products", PRODUCT_PARTITIONS, &[]).await;
    create_topic(&bootstrap, "order-products", 1, &[]).await;

    let mut names: Vec<String> = (0..PRODUCT_COUNT).map(|p| format!("name-{p}")).collect();
    let products: Vec<(String, String)> = (0..PRODUCT_COUNT)
        .map(|p| (format!("p{p}"), names[p].clone()))
        .collect();
    let mut order_products: Vec<usize> = (0..ORDER_COUNT).map(|o| o % PRODUCT_COUNT).collect();
    let orders: Vec<(String, String)> = (0..ORDER_COUNT)
        .map(|o| (format!("o{o}"), format!("p{}", order_products[o])))
        .collect();
    produce(&bootstrap, "products", PRODUCT_PARTITIONS, &products).await;
    produce(&bootstrap, "orders", ORDER_PARTITIONS, &orders).await;

    let config = RuntimeConfig {
        commit_interval: Duration::from_millis(200),
        poll_timeout: Duration::from_millis(50),
        ..RuntimeConfig::default()
    };
    let backend = RemoteBackend::new(&bootstrap, &[("broker.address.family", "v4")])
        .expect("create the remote backend");
    let runner = Runner::new(topology(), backend, config);
    let (shutdown, stop) = oneshot::channel::<()>();
    let ended = Arc::new(Mutex::new(None::<String>));
    let ended_by_runner = ended.clone();
    let handle = tokio::spawn(async move {
        let result: Result<(), RuntimeError> = runner
            .run_until(async move {
                let _ = stop.await;
            })
            .await;
        *ended_by_runner.lock_or_recover() = Some(format!("{result:?}"));
        result
    });

    let expected = |order_products: &[usize], names: &[String]| -> BTreeMap<String, String> {
        (0..ORDER_COUNT)
            .map(|o| {
                let p = order_products[o];
                (format!("o{o}"), format!("p{p}:{}", names[p]))
            })
            .collect()
    };
    wait_for_rows(&bootstrap, &expected(&order_products, &names)).await;

    // A product renamed reaches every order of it; an order moved follows its new product.
    names[2] = "renamed".to_string();
    order_products[0] = 1;
    produce(
        &bootstrap,
        "products",
        PRODUCT_PARTITIONS,
        &[("p2".into(), "renamed".into())],
    )
    .await;
    produce(
        &bootstrap,
        "orders",
        ORDER_PARTITIONS,
        &[("o0".into(), "p1".into())],
    )
    .await;
    wait_for_rows(&bootstrap, &expected(&order_products, &names)).await;

    assert!(
        ended.lock_or_recover().is_none(),
        "the runner stopped early"
    );
    let _ = shutdown.send(());
    let result = tokio::time::timeout(WAIT_TIMEOUT, handle)
        .await
        .expect("the runner stops")
        .expect("the runner task did not panic");
    result.expect("the runner ran without error");
    drop(broker);
}
