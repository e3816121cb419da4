//! Suppress: final results of windows when they close, the latest value per key at most
//! once per time limit, bounded buffers that emit early or stop, and restarts.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

mod common;

use riffle_processor::{
    BufferConfig, I64Serde, SessionWindows, SlidingWindows, StoreBacking, StreamsBuilder,
    StringSerde, Suppressed, TestDriver, TimeWindows, Topology, TopologyError, Windowed,
    WindowedSerde,
};

/// Counts per key and tumbling 10 s window (grace 5 s), suppressed until each closes.
fn final_window_counts() -> Topology {
    let builder = StreamsBuilder::new("app");
    builder
        .stream("clicks", StringSerde, StringSerde)
        .group_by_key()
        .windowed_by(TimeWindows::tumbling(Duration::from_secs(10)).grace(Duration::from_secs(5)))
        .count("counts")
        .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()).name("finals"))
        .to_windowed("finals", StringSerde, I64Serde);
    builder.build().unwrap()
}

/// `(key, window start, count, timestamp)` of every unread windowed output.
fn read_finals(driver: &TestDriver, size_ms: i64) -> Vec<(String, i64, i64, i64)> {
    driver
        .output_topic(
            "finals",
            WindowedSerde::time(StringSerde, Duration::from_millis(size_ms as u64)),
            I64Serde,
        )
        .read_records()
        .into_iter()
        .map(|r| {
            let window: Windowed<String> = r.key;
            (
                window.key,
                window.start_ms,
                r.value.unwrap(),
                r.timestamp_ms,
            )
        })
        .collect()
}

/// Each window comes out once, with its final count and timestamp, when stream time
/// reaches its end plus grace; nothing before.
fn until_window_closes_emits_each_final_result_once(backing: StoreBacking) {
    let driver = TestDriver::with_store_backing(final_window_counts(), 1, backing);
    let mut input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at("a".into(), "x".into(), 1_000);
    input.pipe_input_at("a".into(), "x".into(), 2_000);
    input.pipe_input_at("b".into(), "x".into(), 3_000);
    input.pipe_input_at("a".into(), "x".into(), 14_999);
    assert!(read_finals(&driver, 10_000).is_empty(), "grace not over");
    input.pipe_input_at("a".into(), "x".into(), 15_000);
    assert_eq!(
        read_finals(&driver, 10_000),
        vec![
            ("a".to_string(), 0, 2, 2_000),
            ("b".to_string(), 0, 1, 3_000)
        ]
    );
    driver.crash_and_restart();
    input.pipe_input_at("a".into(), "x".into(), 24_999);
    assert!(
        read_finals(&driver, 10_000).is_empty(),
        "no repeat after a restart"
    );
    input.pipe_input_at("a".into(), "x".into(), 25_000);
    assert_eq!(
        read_finals(&driver, 10_000),
        vec![("a".to_string(), 10_000, 2, 15_000)]
    );
}

/// A sliding window's end is inclusive: its final result comes out once stream time is
/// past end plus grace, not at it.
fn until_window_closes_on_sliding_windows_waits_past_the_end(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    builder
        .stream("clicks", StringSerde, StringSerde)
        .group_by_key()
        .windowed_by(SlidingWindows::of_time_difference_and_grace(
            Duration::from_secs(10),
            Duration::ZERO,
        ))
        .count("counts")
        .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()))
        .to_windowed("finals", StringSerde, I64Serde);
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    let mut input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at("a".into(), "x".into(), 20_000);
    input.pipe_input_at("b".into(), "x".into(), 20_000);
    assert!(read_finals(&driver, 10_000).is_empty());
    input.pipe_input_at("b".into(), "x".into(), 20_001);
    assert_eq!(
        read_finals(&driver, 10_000),
        vec![
            ("a".to_string(), 10_000, 1, 20_000),
            ("b".to_string(), 10_000, 1, 20_000)
        ]
    );
}

/// A session's final result comes out once stream time passes its end plus gap plus
/// grace; sessions merged into a later one never come out.
fn until_window_closes_on_sessions_skips_merged_sessions(backing: StoreBacking) {
    let builder = StreamsBuilder::new("app");
    builder
        .stream("clicks", StringSerde, StringSerde)
        .group_by_key()
        .session_windowed_by(
            SessionWindows::with_inactivity_gap(Duration::from_secs(5))
                .grace(Duration::from_secs(10)),
        )
        .count("sessions")
        .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()))
        .to_windowed("finals", StringSerde, I64Serde);
    let driver = TestDriver::with_store_backing(builder.build().unwrap(), 1, backing);
    let mut input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe_input_at("a".into(), "x".into(), 0);
    input.pipe_input_at("a".into(), "x".into(), 10_000);
    input.pipe_input_at("a".into(), "x".into(), 5_000); // merges both into [0, 10 s]
    input.pipe_input_at("a".into(), "x".into(), 15_001); // [0, 0] would have closed here
    let finals = driver.output_topic("finals", WindowedSerde::session(StringSerde), I64Serde);
    assert!(finals.is_empty(), "merged sessions are not final results");
    input.pipe_input_at("a".into(), "x".into(), 25_000); // = 10 s + 5 s + 10 s
    assert!(finals.is_empty());
    input.pipe_input_at("a".into(), "x".into(), 25_001);
    let records: Vec<(i64, i64, Option<i64>)> = finals
        .read_records()
        .into_iter()
        .map(|r| (r.key.start_ms, r.key.end_ms, r.value))
        .collect();
    assert_eq!(records, vec![(0, 10_000, Some(3))]);
}

/// Counts per key, suppressed for 10 s of stream time with `buffer`.
fn limited_counts(buffer: BufferConfig) -> Topology {
    let builder = StreamsBuilder::new("app");
    builder
        .stream("events", StringSerde, StringSerde)
        .group_by_key()
        .count("counts")
        .suppress(Suppressed::until_time_limit(
            Duration::from_secs(10),
            buffer,
        ))
        .to("limited", StringSerde, I64Serde);
    builder.build().unwrap()
}

fn read_limited(driver: &TestDriver) -> Vec<(String, i64)> {
    driver
        .output_topic("limited", StringSerde, I64Serde)
        .read_key_values()
}

/// A key's latest value comes out the time limit after its first buffered update, then
/// the key starts a new period with its next update.
fn until_time_limit_emits_latest_value_once_per_limit(backing: StoreBacking) {
    let driver =
        TestDriver::with_store_backing(limited_counts(BufferConfig::unbounded()), 1, backing);
    let mut input = driver.input_topic("events", StringSerde, StringSerde);
    input.pipe_input_at("k1".into(), "x".into(), 0);
    input.pipe_input_at("k1".into(), "x".into(), 3_000);
    input.pipe_input_at("k2".into(), "x".into(), 5_000);
    input.pipe_input_at("k1".into(), "x".into(), 9_999);
    assert!(read_limited(&driver).is_empty());
    input.pipe_input_at("k3".into(), "x".into(), 10_000);
    assert_eq!(read_limited(&driver), vec![("k1".to_string(), 3)]);
    input.pipe_input_at("k1".into(), "x".into(), 12_000);
    driver.crash_and_restart();
    input.pipe_input_at("k3".into(), "x".into(), 15_000);
    assert_eq!(read_limited(&driver), vec![("k2".to_string(), 1)]);
    input.pipe_input_at("k4".into(), "x".into(), 22_000);
    assert_eq!(
        read_limited(&driver),
        vec![("k3".to_string(), 2), ("k1".to_string(), 4)]
    );
}

/// A full buffer set to emit early forwards its oldest entries before they are due, by
/// record count and by bytes (key plus value: 2 + 8 bytes per entry here).
fn full_buffer_emits_early(backing: StoreBacking) {
    for buffer in [BufferConfig::max_records(1), BufferConfig::max_bytes(15)] {
        let driver = TestDriver::with_store_backing(limited_counts(buffer), 1, backing);
        let mut input = driver.input_topic("events", StringSerde, StringSerde);
        input.pipe_input_at("k1".into(), "x".into(), 0);
        input.pipe_input_at("k1".into(), "x".into(), 500);
        assert!(read_limited(&driver).is_empty(), "{buffer:?}: one key fits");
        input.pipe_input_at("k2".into(), "x".into(), 1_000);
        assert_eq!(
            read_limited(&driver),
            vec![("k1".to_string(), 2)],
            "{buffer:?}"
        );
        input.pipe_input_at("k2".into(), "x".into(), 2_000);
        assert!(
            read_limited(&driver).is_empty(),
            "{buffer:?}: k2 is due at 11 s"
        );
    }
}

/// A full buffer set to shut down stops the task with an error naming the buffer.
fn full_buffer_set_to_shut_down_stops_with_an_error(backing: StoreBacking) {
    let buffer = BufferConfig::max_records(1).shut_down_when_full();
    let driver = TestDriver::with_store_backing(limited_counts(buffer), 1, backing);
    let mut input = driver.input_topic("events", StringSerde, StringSerde);
    input.pipe_input_at("k1".into(), "x".into(), 0);
    let stopped = catch_unwind(AssertUnwindSafe(|| {
        input.pipe_input_at("k2".into(), "x".into(), 1_000);
    }));
    let message = stopped.expect_err("the task stops");
    let message = message.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("suppression buffer") && message.contains("max 1 records"),
        "{message}"
    );
}

for_both_backings!(
    until_window_closes_emits_each_final_result_once,
    until_window_closes_on_sliding_windows_waits_past_the_end,
    until_window_closes_on_sessions_skips_merged_sessions,
    until_time_limit_emits_latest_value_once_per_limit,
    full_buffer_emits_early,
    full_buffer_set_to_shut_down_stops_with_an_error
);

/// Final results cannot be promised by a buffer that emits early, nor on a table without
/// windows: both are refused when the topology is built.
#[test]
fn until_window_closes_refuses_what_breaks_its_promise() {
    let builder = StreamsBuilder::new("app");
    builder
        .stream("clicks", StringSerde, StringSerde)
        .group_by_key()
        .windowed_by(TimeWindows::tumbling(Duration::from_secs(10)))
        .count("counts")
        .suppress(Suppressed::until_window_closes(BufferConfig::max_records(
            10,
        )));
    assert!(matches!(
        builder.build(),
        Err(TopologyError::InvalidSuppression(_))
    ));
    let builder = StreamsBuilder::new("app");
    builder
        .stream("clicks", StringSerde, StringSerde)
        .group_by_key()
        .count("counts")
        .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()));
    assert!(matches!(
        builder.build(),
        Err(TopologyError::InvalidSuppression(_))
    ));
}
