//! Windowed aggregations: tumbling, hopping and session windows, grace, emit on close.

use std::time::Duration;

mod common;

use riffle_processor::{
    DropReason, Emit, I64Serde, SessionWindows, StoreBacking, StreamsBuilder, StringSerde,
    TestDriver, TimeWindows, Windowed, WindowedSerde,
};

const MINUTE_MS: i64 = 60_000;

fn windowed_counts(windows: TimeWindows, emit: Emit) -> riffle_processor::Topology {
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

fn read_counts(driver: &TestDriver, size_ms: i64) -> Vec<(String, i64, i64)> {
    driver
        .output_topic(
            "counts-out",
            WindowedSerde::time(StringSerde, Duration::from_millis(size_ms as u64)),
            I64Serde,
        )
        .read_key_values()
        .into_iter()
        .map(|(window, count): (Windowed<String>, i64)| (window.key, window.start_ms, count))
        .collect()
}

/// Tumbling windows emit every update; a record within grace still counts, one past it is
/// dropped and counted as late.
fn tumbling_windows_with_grace_drop_late_records(backing: StoreBacking) {
    let windows = TimeWindows::tumbling(Duration::from_secs(60)).grace(Duration::from_secs(10));
    let driver =
        TestDriver::with_store_backing(windowed_counts(windows, Emit::OnUpdate), 1, backing);
    let mut input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at("p".into(), "x".into(), 1_000);
    input.pipe_input_at("p".into(), "x".into(), 59_999);
    input.pipe_input_at("p".into(), "x".into(), 65_000); // next window; stream time 65 s
    input.pipe_input_at("p".into(), "x".into(), 30_000); // 65 s < 60 s + 10 s: in grace
    input.pipe_input_at("p".into(), "x".into(), 70_000); // stream time 70 s closes [0, 60)
    input.pipe_input_at("p".into(), "x".into(), 40_000); // late
    let counts = read_counts(&driver, MINUTE_MS);
    assert_eq!(
        counts,
        vec![
            ("p".to_string(), 0, 1),
            ("p".to_string(), 0, 2),
            ("p".to_string(), MINUTE_MS, 1),
            ("p".to_string(), 0, 3),
            ("p".to_string(), MINUTE_MS, 2),
        ]
    );
    assert_eq!(driver.metrics().dropped(DropReason::Late), 1);
}

/// With emit on window close, each window comes out once, with its final count, when a
/// later record moves stream time past its end plus grace.
fn emit_on_window_close_gives_one_final_result_per_window(backing: StoreBacking) {
    let windows = TimeWindows::tumbling(Duration::from_secs(60)).grace(Duration::from_secs(5));
    let driver =
        TestDriver::with_store_backing(windowed_counts(windows, Emit::OnWindowClose), 1, backing);
    let mut input = driver.input_topic("clicks", StringSerde, StringSerde);
    for timestamp_ms in [0, 10_000, 20_000] {
        input.pipe_input_at("a".into(), "x".into(), timestamp_ms);
    }
    input.pipe_input_at("b".into(), "x".into(), 30_000);
    assert!(
        read_counts(&driver, MINUTE_MS).is_empty(),
        "nothing before the window closes"
    );
    input.pipe_input_at("a".into(), "x".into(), 64_999);
    assert!(
        read_counts(&driver, MINUTE_MS).is_empty(),
        "grace not over yet"
    );
    input.pipe_input_at("a".into(), "x".into(), 65_000);
    assert_eq!(
        read_counts(&driver, MINUTE_MS),
        vec![("a".to_string(), 0, 3), ("b".to_string(), 0, 1)]
    );
    input.pipe_input_at("a".into(), "x".into(), 200_000);
    assert_eq!(
        read_counts(&driver, MINUTE_MS),
        vec![("a".to_string(), MINUTE_MS, 2)]
    );
}

/// A hopping record updates every window that contains it: size/advance of them.
fn hopping_windows_update_each_window_containing_the_record(backing: StoreBacking) {
    let windows = TimeWindows::hopping(Duration::from_secs(10), Duration::from_secs(5))
        .grace(Duration::from_secs(60));
    let driver =
        TestDriver::with_store_backing(windowed_counts(windows, Emit::OnUpdate), 1, backing);
    let mut input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at("s".into(), "x".into(), 12_000);
    input.pipe_input_at("s".into(), "x".into(), 3_000);
    assert_eq!(
        read_counts(&driver, 10_000),
        vec![
            ("s".to_string(), 5_000, 1),
            ("s".to_string(), 10_000, 1),
            ("s".to_string(), 0, 1),
        ]
    );
}

/// Sessions merge records closer than the gap; a bridging record replaces both sessions
/// (tombstones for the old ones, then the merged session).
fn sessions_merge_and_emit_tombstones_for_replaced_sessions(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    let sessions = builder
        .stream("events", StringSerde, StringSerde)
        .group_by_key()
        .session_windowed_by(
            SessionWindows::with_inactivity_gap(Duration::from_secs(5))
                .grace(Duration::from_secs(30)),
        )
        .count("sessions");
    sessions.to("session-counts", StringSerde, I64Serde);
    let store = sessions.store();
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    let mut input = driver.input_topic("events", StringSerde, StringSerde);
    input.pipe_input_at("u".into(), "x".into(), 0);
    input.pipe_input_at("u".into(), "x".into(), 10_000);
    input.pipe_input_at("u".into(), "x".into(), 5_000); // exactly gap from both: bridges
    let output = driver.output_topic(
        "session-counts",
        WindowedSerde::session(StringSerde),
        I64Serde,
    );
    let records: Vec<(i64, i64, Option<i64>)> = output
        .read_records()
        .into_iter()
        .map(|r| (r.key.start_ms, r.key.end_ms, r.value))
        .collect();
    assert_eq!(
        records,
        vec![
            (0, 0, Some(1)),
            (10_000, 10_000, Some(1)),
            (0, 0, None),
            (10_000, 10_000, None),
            (0, 10_000, Some(3)),
        ]
    );
    let view = driver.session_store(&store);
    let stored = view.fetch(&"u".to_string()).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].0.start_ms, stored[0].0.end_ms, stored[0].1),
        (0, 10_000, 3)
    );
}

/// The window store serves range queries from the host program, and survives a crash.
fn window_store_queries_survive_a_restart(backing: StoreBacking) {
    let windows = TimeWindows::tumbling(Duration::from_secs(60)).grace(Duration::from_secs(600));
    let builder = StreamsBuilder::new("app");
    let table = builder
        .stream("clicks", StringSerde, StringSerde)
        .group_by_key()
        .windowed_by(windows)
        .count("clicks-per-minute");
    let store = table.store();
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    let mut input = driver.input_topic("clicks", StringSerde, StringSerde);
    for timestamp_ms in [1_000, 2_000, 61_000] {
        input.pipe_input_at("home".into(), "x".into(), timestamp_ms);
    }
    driver.crash_and_restart();
    let found = driver
        .window_store(&store)
        .fetch(&"home".to_string(), 0, 120_000)
        .unwrap();
    let counts: Vec<(i64, i64, i64)> = found
        .iter()
        .map(|(w, c)| (w.start_ms, w.end_ms, *c))
        .collect();
    assert_eq!(
        counts,
        vec![(0, MINUTE_MS, 2), (MINUTE_MS, 2 * MINUTE_MS, 1)]
    );
}

/// A restarted task resumes each windowed operator's clock from the commit: windows
/// emitted before the crash are not emitted again, and later ones still are.
fn emit_on_window_close_does_not_repeat_finals_after_a_restart(backing: StoreBacking) {
    let windows = TimeWindows::tumbling(Duration::from_secs(60)).grace(Duration::from_secs(5));
    let driver =
        TestDriver::with_store_backing(windowed_counts(windows, Emit::OnWindowClose), 1, backing);
    let mut input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at("a".into(), "x".into(), 1_000);
    input.pipe_input_at("a".into(), "x".into(), 70_000);
    assert_eq!(
        read_counts(&driver, MINUTE_MS),
        vec![("a".to_string(), 0, 1)]
    );
    driver.crash_and_restart();
    input.pipe_input_at("a".into(), "x".into(), 80_000);
    assert!(
        read_counts(&driver, MINUTE_MS).is_empty(),
        "window 0 came out again"
    );
    input.pipe_input_at("a".into(), "x".into(), 130_000);
    assert_eq!(
        read_counts(&driver, MINUTE_MS),
        vec![("a".to_string(), MINUTE_MS, 2)]
    );
}

for_both_backings!(
    tumbling_windows_with_grace_drop_late_records,
    emit_on_window_close_gives_one_final_result_per_window,
    hopping_windows_update_each_window_containing_the_record,
    sessions_merge_and_emit_tombstones_for_replaced_sessions,
    window_store_queries_survive_a_restart,
    emit_on_window_close_does_not_repeat_finals_after_a_restart
);
