//! Processor API stores beyond key-value ones: window and session stores with retention,
//! processors connected to the DSL's stores, and `process_values`, whose processors keep
//! keys so no repartition follows.

mod common;

use std::time::Duration;

use riffle_processor::{
    FixedKeyProcessor, FixedKeyProcessorContext, Grouped, I64Serde, KeyValueStoreHandle, Processor,
    ProcessorContext, Record, SerdeError, SessionStoreHandle, StoreBacking, StreamsBuilder,
    StringSerde, TestDriver, WindowStoreHandle,
};

/// `(key, value)` of every unread record of `topic`.
fn read(driver: &TestDriver, topic: &str) -> Vec<(String, String)> {
    driver
        .output_topic(topic, StringSerde, StringSerde)
        .read_key_values()
}

fn kv(key: &str, value: &str) -> (String, String) {
    (key.to_string(), value.to_string())
}

/// Counts records per key in 10 ms windows of a window store; a record `reset` removes
/// its window. Forwards `start:count` and the windows of the key still kept.
struct WindowCounter {
    counts: WindowStoreHandle<String, i64>,
}

impl Processor<String, String, String, String> for WindowCounter {
    fn process(
        &mut self,
        context: &mut ProcessorContext<'_, String, String>,
        record: Record<'_, String, String>,
    ) -> Result<(), SerdeError> {
        let start_ms = record.timestamp_ms - record.timestamp_ms % 10;
        let mut store = context.window_store(&self.counts);
        if record.value == "reset" {
            store.remove(record.key, start_ms)?;
        } else {
            let count = store.fetch(record.key, start_ms)?.unwrap_or(0) + 1;
            assert!(store.put(record.key, &count, start_ms)?);
        }
        let kept: Vec<String> = store
            .fetch_range(record.key, 0, i64::MAX)?
            .into_iter()
            .map(|(start, count)| format!("{start}:{count}"))
            .collect();
        context.forward(record.key.clone(), kept.join(","));
        Ok(())
    }
}

/// A window store keeps, fetches by key and time range, removes, expires windows past
/// its retention, and restores after a crash.
fn window_store_puts_fetches_removes_and_expires(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    let counts = builder.add_window_store(
        "window-counts",
        Duration::from_millis(20),
        Duration::from_millis(10),
        StringSerde,
        I64Serde,
    );
    builder
        .stream("in", StringSerde, StringSerde)
        .process(
            move || WindowCounter {
                counts: counts.clone(),
            },
            &["window-counts"],
        )
        .to("out", StringSerde, StringSerde);
    let topology = builder.build().unwrap();
    assert!(
        topology
            .describe()
            .to_string()
            .contains("stores: [window-counts]")
    );
    let driver = TestDriver::with_store_backing(topology, 2, backing);
    let mut input = driver.input_topic("in", StringSerde, StringSerde);
    input.pipe_input_at("a".into(), "x".into(), 1);
    input.pipe_input_at("a".into(), "x".into(), 5);
    input.pipe_input_at("a".into(), "x".into(), 12);
    driver.crash_and_restart();
    input.pipe_input_at("a".into(), "x".into(), 13);
    input.pipe_input_at("a".into(), "reset".into(), 14);
    input.pipe_input_at("a".into(), "x".into(), 25); // window 0 is past retention
    assert_eq!(
        read(&driver, "out"),
        vec![
            kv("a", "0:1"),
            kv("a", "0:2"),
            kv("a", "0:2,10:1"),
            kv("a", "0:2,10:2"),
            kv("a", "0:2"),
            kv("a", "20:1"),
        ]
    );
}

/// Merges records of a key into sessions with a 5 ms gap, as a session aggregation does,
/// and forwards each key's sessions as `start-end:count`.
struct Sessionizer {
    sessions: SessionStoreHandle<String, i64>,
}

impl Processor<String, String, String, String> for Sessionizer {
    fn process(
        &mut self,
        context: &mut ProcessorContext<'_, String, String>,
        record: Record<'_, String, String>,
    ) -> Result<(), SerdeError> {
        let ts = record.timestamp_ms;
        let mut store = context.session_store(&self.sessions);
        let (mut start, mut end, mut count) = (ts, ts, 1);
        for (session, session_count) in store.find_sessions(record.key, ts - 5, ts + 5)? {
            start = start.min(session.start_ms);
            end = end.max(session.end_ms);
            count += session_count;
            store.remove(record.key, session.start_ms, session.end_ms)?;
        }
        store.put(record.key, start, end, &count)?;
        let sessions: Vec<String> = store
            .fetch(record.key)?
            .into_iter()
            .map(|(session, count)| format!("{}-{}:{count}", session.start_ms, session.end_ms))
            .collect();
        context.forward(record.key.clone(), sessions.join(","));
        Ok(())
    }
}

/// A session store finds overlapping sessions, removes and writes them, drops sessions
/// past retention, and restores after a crash.
fn session_store_finds_merges_and_expires(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    let sessions =
        builder.add_session_store("sessions", Duration::from_millis(30), StringSerde, I64Serde);
    builder
        .stream("in", StringSerde, StringSerde)
        .process(
            move || Sessionizer {
                sessions: sessions.clone(),
            },
            &["sessions"],
        )
        .to("out", StringSerde, StringSerde);
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 2, backing);
    let mut input = driver.input_topic("in", StringSerde, StringSerde);
    input.pipe_input_at("a".into(), "x".into(), 1);
    input.pipe_input_at("a".into(), "x".into(), 20);
    driver.crash_and_restart();
    input.pipe_input_at("a".into(), "x".into(), 4); // joins the first session
    input.pipe_input_at("a".into(), "x".into(), 40); // the first is past retention
    assert_eq!(
        read(&driver, "out"),
        vec![
            kv("a", "1-1:1"),
            kv("a", "1-1:1,20-20:1"),
            kv("a", "1-4:2,20-20:1"),
            kv("a", "20-20:1,40-40:1"),
        ]
    );
}

/// Looks each record's key up in a table's store and in an aggregate's store.
struct Lookup {
    prices: KeyValueStoreHandle<String, i64>,
    counts: KeyValueStoreHandle<String, i64>,
}

impl Processor<String, String, String, String> for Lookup {
    fn process(
        &mut self,
        context: &mut ProcessorContext<'_, String, String>,
        record: Record<'_, String, String>,
    ) -> Result<(), SerdeError> {
        let price = context.key_value_store(&self.prices).get(record.key)?;
        let count = context.key_value_store(&self.counts).get(record.key)?;
        if record.value == "overwrite" {
            // A table's store is the table's topic: not for a processor to write.
            context.key_value_store(&self.prices).put(record.key, &0)?;
        }
        context.forward(record.key.clone(), format!("{price:?}/{count:?}"));
        Ok(())
    }
}

/// A processor connected by name to stores the DSL created reads them; writing a
/// table's store is refused (the record is dropped and counted).
fn processors_read_stores_the_dsl_created(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    let prices = builder.table("prices", StringSerde, I64Serde, "prices-store");
    let counts = builder
        .stream("orders", StringSerde, StringSerde)
        .group_by_key_with(Grouped::new(StringSerde, StringSerde))
        .count("order-counts");
    let (prices, counts) = (prices.store(), counts.store());
    builder
        .stream("lookups", StringSerde, StringSerde)
        .process(
            move || Lookup {
                prices: prices.clone(),
                counts: counts.clone(),
            },
            &["prices-store", "order-counts"],
        )
        .to("out", StringSerde, StringSerde);
    let topology = builder.build().unwrap();
    // The processor runs in the tasks of both stores: one sub-topology.
    assert_eq!(topology.subtopologies().len(), 1);
    let driver = TestDriver::with_store_backing(topology, 3, backing);
    let mut price_input = driver.input_topic("prices", StringSerde, I64Serde);
    let mut orders = driver.input_topic("orders", StringSerde, StringSerde);
    let mut lookups = driver.input_topic("lookups", StringSerde, StringSerde);
    price_input.pipe_input_at("apple".into(), 3, 1);
    orders.pipe_input_at("apple".into(), "o1".into(), 2);
    orders.pipe_input_at("apple".into(), "o2".into(), 3);
    lookups.pipe_input_at("apple".into(), "?".into(), 4);
    lookups.pipe_input_at("pear".into(), "?".into(), 5);
    lookups.pipe_input_at("apple".into(), "overwrite".into(), 6);
    assert_eq!(
        read(&driver, "out"),
        vec![kv("apple", "Some(3)/Some(2)"), kv("pear", "None/None")]
    );
    assert_eq!(driver.dropped_records(), 1);
}

/// Uppercases values and counts them per key in a store, keeping keys.
struct Shout {
    seen: KeyValueStoreHandle<String, i64>,
}

impl FixedKeyProcessor<String, String, String> for Shout {
    fn process(
        &mut self,
        context: &mut FixedKeyProcessorContext<'_, '_, String, String>,
        record: Record<'_, String, String>,
    ) -> Result<(), SerdeError> {
        let mut store = context.key_value_store(&self.seen);
        let seen = store.get(record.key)?.unwrap_or(0) + 1;
        store.put(record.key, &seen)?;
        context.forward(format!("{}#{seen}", record.value.to_uppercase()));
        Ok(())
    }
}

/// `process_values` keeps keys: a `group_by_key` after it needs no repartition, unless
/// the stream was re-keyed before it.
fn process_values_keeps_keys_and_partitioning(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    let seen = builder.add_key_value_store("seen", StringSerde, I64Serde);
    let shouted = builder
        .stream("in", StringSerde, StringSerde)
        .process_values(move || Shout { seen: seen.clone() }, &["seen"]);
    shouted.to("out", StringSerde, StringSerde);
    shouted
        .group_by_key_with(Grouped::new(StringSerde, StringSerde))
        .count("counts")
        .to("counts", StringSerde, I64Serde);
    let topology = builder.build().unwrap();
    assert!(topology.describe().repartition_topics.is_empty());
    let driver = TestDriver::with_store_backing(topology, 2, backing);
    let mut input = driver.input_topic("in", StringSerde, StringSerde);
    input.pipe_input_at("a".into(), "hi".into(), 1);
    input.pipe_input_at("b".into(), "yo".into(), 2);
    input.pipe_input_at("a".into(), "ho".into(), 3);
    assert_eq!(
        read(&driver, "out"),
        vec![kv("a", "HI#1"), kv("b", "YO#1"), kv("a", "HO#2")]
    );
    let counts = driver
        .output_topic("counts", StringSerde, I64Serde)
        .read_key_values();
    assert_eq!(
        counts,
        vec![("a".into(), 1), ("b".into(), 1), ("a".into(), 2)]
    );

    // Re-keyed before it, the stream still repartitions before grouping.
    let builder = StreamsBuilder::new("app");
    let seen = builder.add_key_value_store("seen", StringSerde, I64Serde);
    builder
        .stream("in", StringSerde, StringSerde)
        .select_key(|_, value: &String| value.clone())
        .process_values(move || Shout { seen: seen.clone() }, &["seen"])
        .group_by_key_with(Grouped::new(StringSerde, StringSerde).name("by-value"))
        .count("counts");
    let topology = builder.build().unwrap();
    assert_eq!(topology.describe().repartition_topics.len(), 1);
}

for_both_backings!(
    window_store_puts_fetches_removes_and_expires,
    session_store_finds_merges_and_expires,
    processors_read_stores_the_dsl_created,
    process_values_keeps_keys_and_partitioning,
);
