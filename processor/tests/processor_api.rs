//! The Processor API through the test driver: forwarding, record metadata, stores that
//! survive a restart, and punctuations on stream time and on the mocked wall clock.

mod common;

use std::time::Duration;

use riffle_processor::{
    Cancellable, I64Serde, KeyValueStoreHandle, Processor, ProcessorContext, PunctuationType,
    Record, SerdeError, StoreBacking, StreamsBuilder, StringSerde, TestDriver, TopologyError,
};

/// Forwards each value twice, once tagged with where the record was read.
struct Tagger;

impl Processor<String, String, String, String> for Tagger {
    fn process(
        &mut self,
        context: &mut ProcessorContext<'_, String, String>,
        record: Record<'_, String, String>,
    ) -> Result<(), SerdeError> {
        let metadata = context.record_metadata().expect("a record has metadata");
        let tag = format!(
            "{}@{}-{}-{}",
            record.value, metadata.topic, metadata.partition, metadata.offset
        );
        context.forward(record.key.clone(), tag);
        context.forward_at(record.key.to_uppercase(), record.value.clone(), 7);
        Ok(())
    }
}

/// A processor forwards to the next operators with the record's timestamp (or its own),
/// and sees each record's topic, partition and offset.
fn forwards_records_with_their_metadata(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    builder
        .stream("in", StringSerde, StringSerde)
        .process(|| Tagger, &[])
        .filter(|key: &String, _| key != "SKIP")
        .to("out", StringSerde, StringSerde);
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    let mut input = driver.input_topic("in", StringSerde, StringSerde);
    let output = driver.output_topic("out", StringSerde, StringSerde);
    input.pipe_input_at("a".into(), "x".into(), 100);
    input.pipe_input_at("skip".into(), "y".into(), 200);
    let records: Vec<(String, Option<String>, i64)> = output
        .read_records()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp_ms))
        .collect();
    assert_eq!(
        records,
        vec![
            ("a".into(), Some("x@in-0-0".into()), 100),
            ("A".into(), Some("x".into()), 7),
            ("skip".into(), Some("y@in-0-1".into()), 200),
        ]
    );
}

/// Counts records per key in its own store and forwards the running count.
struct Counter {
    counts: KeyValueStoreHandle<String, i64>,
}

impl Processor<String, String, String, i64> for Counter {
    fn process(
        &mut self,
        context: &mut ProcessorContext<'_, String, i64>,
        record: Record<'_, String, String>,
    ) -> Result<(), SerdeError> {
        let mut store = context.key_value_store(&self.counts);
        let count = store.get(record.key)?.unwrap_or(0) + 1;
        store.put(record.key, &count)?;
        context.forward(record.key.clone(), count);
        Ok(())
    }
}

fn counting_topology() -> (riffle_processor::Topology, KeyValueStoreHandle<String, i64>) {
    let builder = StreamsBuilder::new("app");
    let counts = builder.add_key_value_store("counts", StringSerde, I64Serde);
    let handle = counts.clone();
    builder
        .stream("in", StringSerde, StringSerde)
        .process(
            move || Counter {
                counts: handle.clone(),
            },
            &["counts"],
        )
        .to("out", StringSerde, I64Serde);
    (builder.build().unwrap(), counts)
}

/// A processor's store is changelogged like the DSL's: its counts survive a crash and
/// restart, and the host program can query it.
fn store_writes_survive_a_restart(backing: StoreBacking) {
    let (topology, counts) = counting_topology();
    let description = topology.describe();
    assert_eq!(
        description.stores()["counts"].changelog_topic,
        "app-counts-changelog"
    );
    let text = description.to_string();
    assert!(
        text.contains("Processor: KSTREAM-PROCESSOR-0000000001 (stores: [counts])"),
        "{text}"
    );
    let driver = TestDriver::with_store_backing(topology, 2, backing);
    let mut input = driver.input_topic("in", StringSerde, StringSerde);
    let output = driver.output_topic("out", StringSerde, I64Serde);
    for key in ["a", "b", "a"] {
        input.pipe_input_at(key.into(), "v".into(), 1);
    }
    assert_eq!(driver.topic_records("app-counts-changelog").len(), 3);
    driver.crash_and_restart();
    input.pipe_input_at("a".into(), "v".into(), 2);
    input.pipe_input_at("b".into(), "v".into(), 2);
    let counts_out: Vec<(String, i64)> = output.read_key_values();
    assert_eq!(
        counts_out,
        vec![
            ("a".into(), 1),
            ("b".into(), 1),
            ("a".into(), 2),
            ("a".into(), 3),
            ("b".into(), 2)
        ]
    );
    let store = driver.key_value_store(&counts);
    assert_eq!(store.get(&"a".to_string()).unwrap(), Some(3));
}

/// Forwards ("tick", time) from a punctuation every `interval` on `kind`'s clock, and
/// passes records through.
struct Ticker {
    kind: PunctuationType,
    interval: Duration,
    /// Cancels its punctuation after this many, if set.
    limit: Option<usize>,
}

impl Processor<String, i64, String, i64> for Ticker {
    fn init(&mut self, context: &mut ProcessorContext<'_, String, i64>) {
        let mut fired = 0usize;
        let limit = self.limit;
        let cancel: std::sync::Arc<std::sync::OnceLock<Cancellable>> = Default::default();
        let handle = cancel.clone();
        let cancellable = context.schedule(self.interval, self.kind, move |context, time| {
            context.forward("tick".into(), time);
            fired += 1;
            if limit == Some(fired) {
                handle.get().expect("set at init").cancel();
            }
            Ok(())
        });
        let _ = cancel.set(cancellable);
    }

    fn process(
        &mut self,
        context: &mut ProcessorContext<'_, String, i64>,
        record: Record<'_, String, i64>,
    ) -> Result<(), SerdeError> {
        context.forward(record.key.clone(), *record.value);
        Ok(())
    }
}

fn ticker_driver(kind: PunctuationType, limit: Option<usize>, backing: StoreBacking) -> TestDriver {
    let builder = StreamsBuilder::new("app");
    builder
        .stream("in", StringSerde, I64Serde)
        .process(
            move || Ticker {
                kind,
                interval: Duration::from_millis(10),
                limit,
            },
            &[],
        )
        .to("out", StringSerde, I64Serde);
    TestDriver::with_store_backing(builder.build().unwrap(), 1, backing)
}

/// Stream-time punctuation fires after the record that moves stream time to or past its
/// due time, once per advance with the current stream time, on a grid aligned to 0:
/// the first record fires it, a jump over several intervals fires it once, and records
/// that do not advance stream time never do.
fn stream_time_punctuation_fires_once_per_advance(backing: StoreBacking) {
    let driver = ticker_driver(PunctuationType::StreamTime, None, backing);
    let mut input = driver.input_topic("in", StringSerde, I64Serde);
    let output = driver.output_topic("out", StringSerde, I64Serde);
    let mut pipe = |timestamp_ms: i64| {
        input.pipe_input_at("r".into(), timestamp_ms, timestamp_ms);
        output.read_key_values()
    };
    let tick = |time: i64| ("tick".to_string(), time);
    let record = |time: i64| ("r".to_string(), time);
    assert_eq!(
        pipe(5),
        vec![record(5), tick(5)],
        "due at 0: the first record fires it"
    );
    assert_eq!(pipe(9), vec![record(9)], "next due at 10");
    assert_eq!(pipe(10), vec![record(10), tick(10)], "due time reached");
    assert_eq!(
        pipe(35),
        vec![record(35), tick(35)],
        "20 and 30 skipped: one punctuation"
    );
    assert_eq!(pipe(38), vec![record(38)], "next due at 40, not 45");
    assert_eq!(
        pipe(20),
        vec![record(20)],
        "an older record does not advance stream time"
    );
    assert_eq!(pipe(40), vec![record(40), tick(40)]);
    driver.advance_wall_clock(Duration::from_secs(60));
    assert!(
        output.is_empty(),
        "the wall clock does not fire stream-time punctuations"
    );
}

/// Wall-clock punctuation fires as the test driver's mocked clock moves: first
/// `interval` after init, then on that grid, once per advance however far it jumps;
/// piped records never fire it, and a cancelled punctuation stops.
fn wall_clock_punctuation_follows_the_driver_clock(backing: StoreBacking) {
    let driver = ticker_driver(PunctuationType::WallClockTime, Some(3), backing);
    let mut input = driver.input_topic("in", StringSerde, I64Serde);
    let output = driver.output_topic("out", StringSerde, I64Serde);
    let advance = |ms: u64| {
        driver.advance_wall_clock(Duration::from_millis(ms));
        output.read_key_values()
    };
    let tick = |time: i64| vec![("tick".to_string(), time)];
    assert_eq!(advance(9), vec![], "due at 10");
    assert_eq!(advance(1), tick(10));
    assert_eq!(advance(25), tick(35), "20 and 30 skipped: one punctuation");
    input.pipe_input_at("r".into(), 1, 1_000_000);
    assert_eq!(
        output.read_key_values(),
        vec![("r".to_string(), 1)],
        "records do not tick"
    );
    assert_eq!(advance(4), vec![], "next due at 40");
    assert_eq!(advance(5), tick(44), "fired with the clock's time, 44");
    assert_eq!(advance(100), vec![], "cancelled after three");
}

/// Punctuations may use the processor's stores: every 10 ms of wall-clock time, emit and
/// clear the counts so far.
struct Flusher {
    counts: KeyValueStoreHandle<String, i64>,
}

impl Processor<String, String, String, i64> for Flusher {
    fn init(&mut self, context: &mut ProcessorContext<'_, String, i64>) {
        let counts = self.counts.clone();
        context.schedule(
            Duration::from_millis(10),
            PunctuationType::WallClockTime,
            move |context, _time| {
                let entries = context.key_value_store(&counts).all()?;
                for (key, count) in entries {
                    context.key_value_store(&counts).delete(&key)?;
                    context.forward(key, count);
                }
                Ok(())
            },
        );
    }

    fn process(
        &mut self,
        context: &mut ProcessorContext<'_, String, i64>,
        record: Record<'_, String, String>,
    ) -> Result<(), SerdeError> {
        let mut store = context.key_value_store(&self.counts);
        let count = store.get(record.key)?.unwrap_or(0) + 1;
        store.put(record.key, &count)
    }
}

/// A wall-clock punctuation reads and deletes store entries and forwards them; what it
/// wrote survives a restart (nothing is emitted twice).
fn a_punctuation_flushes_a_store(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    let counts = builder.add_key_value_store("pending-counts", StringSerde, I64Serde);
    builder
        .stream("in", StringSerde, StringSerde)
        .process(
            move || Flusher {
                counts: counts.clone(),
            },
            &["pending-counts"],
        )
        .to("out", StringSerde, I64Serde);
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    let mut input = driver.input_topic("in", StringSerde, StringSerde);
    let output = driver.output_topic("out", StringSerde, I64Serde);
    for key in ["a", "b", "a"] {
        input.pipe_input_at(key.into(), "v".into(), 1);
    }
    assert!(output.is_empty());
    driver.advance_wall_clock(Duration::from_millis(10));
    let flushed = output.read_key_values();
    assert_eq!(flushed, vec![("a".into(), 2), ("b".into(), 1)]);
    input.pipe_input_at("c".into(), "v".into(), 2);
    driver.crash_and_restart();
    driver.advance_wall_clock(Duration::from_millis(10));
    assert_eq!(output.read_key_values(), vec![("c".into(), 1)]);
}

for_both_backings!(
    forwards_records_with_their_metadata,
    store_writes_survive_a_restart,
    stream_time_punctuation_fires_once_per_advance,
    wall_clock_punctuation_follows_the_driver_clock,
    a_punctuation_flushes_a_store,
);

/// Naming a store that was not declared with `add_key_value_store` fails the build.
#[test]
fn an_undeclared_store_fails_the_build() {
    let builder = StreamsBuilder::new("app");
    builder
        .stream("in", StringSerde, StringSerde)
        .process(|| Tagger, &["nowhere"])
        .to("out", StringSerde, StringSerde);
    assert_eq!(
        builder.build().err(),
        Some(TopologyError::UnknownStore("nowhere".into()))
    );
}

/// Processors on two input topics that name one store run in the same tasks: one
/// sub-topology reading both topics, owning the store once.
#[test]
fn processors_sharing_a_store_share_a_subtopology() {
    let builder = StreamsBuilder::new("app");
    let counts = builder.add_key_value_store("counts", StringSerde, I64Serde);
    for topic in ["left", "right"] {
        let handle = counts.clone();
        builder
            .stream(topic, StringSerde, StringSerde)
            .process(
                move || Counter {
                    counts: handle.clone(),
                },
                &["counts"],
            )
            .to("out", StringSerde, I64Serde);
    }
    let description = builder.build().unwrap().describe();
    assert_eq!(description.subtopologies.len(), 1);
    let stores: Vec<&str> = description.subtopologies[0]
        .stores
        .iter()
        .map(|store| store.name.as_str())
        .collect();
    assert_eq!(stores, vec!["counts"]);
}
