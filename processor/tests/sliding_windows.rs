//! Sliding windows (KIP-450): window boundaries, records exactly the difference apart,
//! early records, out-of-order records within grace, late records, emit on close, and the
//! store against a brute-force model across a restart.

use std::time::Duration;

mod common;

use riffle_processor::{
    DropReason, Emit, I64Serde, JsonSerde, Materialized, SlidingWindows, StoreBacking,
    StreamsBuilder, StringSerde, TestDriver, Topology, Windowed, WindowedSerde,
};

const DIFFERENCE_MS: i64 = 10_000;

fn sliding_counts(grace: Duration, emit: Emit) -> Topology {
    let windows = SlidingWindows::of_time_difference_and_grace(Duration::from_secs(10), grace);
    let builder = StreamsBuilder::new("app");
    builder
        .stream("clicks", StringSerde, StringSerde)
        .group_by_key()
        .windowed_by(windows)
        .emit(emit)
        .count("counts")
        .to("counts-out", StringSerde, I64Serde);
    builder.build().unwrap()
}

/// Each output as `(start, end, count)`; the end is inclusive, `start + difference`.
fn read_windows(driver: &TestDriver) -> Vec<(i64, i64, i64)> {
    driver
        .output_topic(
            "counts-out",
            WindowedSerde::time(StringSerde, Duration::from_millis(DIFFERENCE_MS as u64)),
            I64Serde,
        )
        .read_key_values()
        .into_iter()
        .map(|(window, count): (Windowed<String>, i64)| (window.start_ms, window.end_ms, count))
        .collect()
}

/// A record makes its left window `[t - d, t]`; the next one within `d + 1` makes the
/// previous record's right window `[t + 1, t + 1 + d]`; records exactly `d` apart share a
/// window, because both ends are inclusive.
fn records_make_left_and_right_windows(backing: StoreBacking) {
    let topology = sliding_counts(Duration::from_secs(10), Emit::OnUpdate);
    let driver = TestDriver::with_store_backing(topology, 1, backing);
    let mut input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at("a".into(), "x".into(), 20_000);
    assert_eq!(read_windows(&driver), vec![(10_000, 20_000, 1)]);
    input.pipe_input_at("a".into(), "x".into(), 30_000); // exactly d after the first
    assert_eq!(
        read_windows(&driver),
        vec![(20_001, 30_001, 1), (20_000, 30_000, 2)]
    );
    input.pipe_input_at("a".into(), "x".into(), 31_000);
    assert_eq!(
        read_windows(&driver),
        vec![(30_001, 40_001, 1), (21_000, 31_000, 2)]
    );
}

/// An out-of-order record within grace updates every window containing it, creates its
/// left window seeded with the earlier records and its right window with the later ones.
fn out_of_order_records_within_grace_update_every_window(backing: StoreBacking) {
    let topology = sliding_counts(Duration::from_secs(10), Emit::OnUpdate);
    let driver = TestDriver::with_store_backing(topology, 1, backing);
    let mut input = driver.input_topic("clicks", StringSerde, StringSerde);
    for timestamp_ms in [20_000, 30_000, 31_000] {
        input.pipe_input_at("a".into(), "x".into(), timestamp_ms);
    }
    read_windows(&driver);
    input.pipe_input_at("a".into(), "x".into(), 25_000); // stream time 31 s, grace 10 s
    assert_eq!(
        read_windows(&driver),
        vec![
            (21_000, 31_000, 3),
            (20_001, 30_001, 2),
            (20_000, 30_000, 3),
            (15_000, 25_000, 2),
            (25_001, 35_001, 2),
        ]
    );
    assert_eq!(driver.metrics().dropped(DropReason::Late), 0);
}

/// Once stream time passes even a record's right window plus grace, the record is dropped
/// and counted; a record some of whose windows are still open updates only those.
fn late_records_are_dropped_after_grace(backing: StoreBacking) {
    let topology = sliding_counts(Duration::from_secs(10), Emit::OnUpdate);
    let driver = TestDriver::with_store_backing(topology, 1, backing);
    let mut input = driver.input_topic("clicks", StringSerde, StringSerde);
    for timestamp_ms in [20_000, 30_000, 31_000, 25_000] {
        input.pipe_input_at("a".into(), "x".into(), timestamp_ms);
    }
    read_windows(&driver);
    input.pipe_input_at("a".into(), "x".into(), 45_000); // closes windows ending before 35 s
    assert_eq!(
        read_windows(&driver),
        vec![(35_000, 45_000, 1)],
        "the record before it is more than d + 1 away: no right window for it"
    );
    input.pipe_input_at("a".into(), "x".into(), 24_000); // right window ends 34_001: late
    assert!(read_windows(&driver).is_empty());
    assert_eq!(driver.metrics().dropped(DropReason::Late), 1);
    input.pipe_input_at("a".into(), "x".into(), 25_500); // only windows ending >= 35 s
    assert_eq!(
        read_windows(&driver),
        vec![(25_001, 35_001, 3), (25_501, 35_501, 2)]
    );
    assert_eq!(
        driver.metrics().dropped(DropReason::Late),
        1 + 4,
        "three closed windows containing it and its own closed left window"
    );
}

/// Records before the difference would make negative starts: they share `[0, d]`.
fn early_records_share_the_first_window(backing: StoreBacking) {
    let topology = sliding_counts(Duration::from_secs(10), Emit::OnUpdate);
    let driver = TestDriver::with_store_backing(topology, 1, backing);
    let mut input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at("a".into(), "x".into(), 2_000);
    input.pipe_input_at("a".into(), "x".into(), 5_000);
    input.pipe_input_at("a".into(), "x".into(), 12_000);
    assert_eq!(
        read_windows(&driver),
        vec![
            (0, 10_000, 1),
            (2_001, 12_001, 1),
            (0, 10_000, 2),
            (2_001, 12_001, 2),
            (5_001, 15_001, 1),
            (2_000, 12_000, 3),
        ]
    );
}

/// With emit on window close, each window comes out once, when stream time passes its
/// inclusive end plus grace.
fn emit_on_window_close_gives_final_sliding_windows(backing: StoreBacking) {
    let topology = sliding_counts(Duration::ZERO, Emit::OnWindowClose);
    let driver = TestDriver::with_store_backing(topology, 1, backing);
    let mut input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at("a".into(), "x".into(), 20_000);
    input.pipe_input_at("a".into(), "x".into(), 20_000);
    assert!(
        read_windows(&driver).is_empty(),
        "its end is not passed yet"
    );
    input.pipe_input_at("a".into(), "x".into(), 25_000);
    assert_eq!(read_windows(&driver), vec![(10_000, 20_000, 2)]);
    input.pipe_input_at("a".into(), "x".into(), 30_001);
    assert_eq!(
        read_windows(&driver),
        vec![(15_000, 25_000, 3)],
        "[20001, 30001] is still open: its end is inclusive"
    );
    input.pipe_input_at("a".into(), "x".into(), 40_000);
    assert_eq!(
        read_windows(&driver),
        vec![(20_001, 30_001, 2), (25_001, 35_001, 1)]
    );
}

/// A small deterministic generator, so the model test needs no dependency.
struct Lcg(u64);

impl Lcg {
    fn next_below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// Every window in the store holds exactly the records within its bounds, and every
/// window a record defines exists, for records in and out of order, with a crash and
/// restore half-way.
fn store_matches_a_brute_force_model(backing: StoreBacking) {
    let windows = SlidingWindows::of_time_difference_and_grace(
        Duration::from_millis(100),
        Duration::from_secs(3600),
    );
    let builder = StreamsBuilder::new("app");
    let table = builder
        .stream("events", StringSerde, StringSerde)
        .group_by_key()
        .windowed_by(windows)
        .aggregate(
            Vec::new,
            |_, value: &String, mut seen: Vec<i64>| {
                seen.push(value.parse().unwrap());
                seen
            },
            Materialized::new("seen").with_value_serde(JsonSerde::<Vec<i64>>::new()),
        );
    let store = table.store();
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    let mut input = driver.input_topic("events", StringSerde, StringSerde);
    let mut random = Lcg(7);
    let mut timestamps = Vec::new();
    for step in 0..120 {
        // Multiples of 10 ms: many records exactly d apart, and some at one timestamp.
        let timestamp_ms = i64::try_from((step * 20 + random.next_below(150)) / 10 * 10).unwrap();
        timestamps.push(timestamp_ms);
        input.pipe_input_at("k".into(), timestamp_ms.to_string(), timestamp_ms);
        if step == 60 {
            driver.crash_and_restart();
        }
    }
    let stored = driver.window_store(&store).all().unwrap();
    for (window, seen) in &stored {
        let mut seen = seen.clone();
        seen.sort_unstable();
        let mut expected: Vec<i64> = timestamps
            .iter()
            .copied()
            .filter(|t| (window.start_ms..=window.end_ms).contains(t))
            .collect();
        expected.sort_unstable();
        assert_eq!(
            seen, expected,
            "window [{}, {}]",
            window.start_ms, window.end_ms
        );
    }
    let starts: Vec<i64> = stored.iter().map(|(window, _)| window.start_ms).collect();
    for t in &timestamps {
        let left_start = if *t < 100 { 0 } else { t - 100 };
        assert!(starts.contains(&left_start), "left window of {t}");
        let has_later = timestamps.iter().any(|u| u > t && *u <= t + 101);
        assert_eq!(starts.contains(&(t + 1)), has_later, "right window of {t}");
    }
    assert_eq!(driver.metrics().dropped_total(), 0);
}

for_both_backings!(
    records_make_left_and_right_windows,
    out_of_order_records_within_grace_update_every_window,
    late_records_are_dropped_after_grace,
    early_records_share_the_first_window,
    emit_on_window_close_gives_final_sliding_windows,
    store_matches_a_brute_force_model
);
