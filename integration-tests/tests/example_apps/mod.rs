//! What the end-to-end tests of the processor examples share: start an example binary as
//! the broker, produce timestamped records, read an output topic until it has what the test
//! expects.
//!
//! Each example is one process: a broker with its topology inside it. [`example_binary`]
//! builds it with cargo first.

#![allow(dead_code)] // Each test file uses a different part.

pub mod fraud_alerts;
pub mod remote;

use std::env;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use riffle_integration_tests::Broker;
use riffle_integration_tests::clients::{CLIENT_TIMEOUT, assigned_consumer, future_producer};

pub const MINUTE_MS: i64 = 60_000;

/// How long outputs may take to appear after their inputs.
pub const OUTPUT_TIMEOUT: Duration = Duration::from_secs(30);

/// After the expected records arrived, how long to keep reading for unexpected ones.
const SETTLE: Duration = Duration::from_secs(2);

/// One input record: key, value (`None` for a tombstone), event time.
pub struct Input<'a> {
    pub key: &'a str,
    pub value: Option<&'a [u8]>,
    pub timestamp_ms: i64,
}

/// An output record: key and value bytes.
pub type Output = (Vec<u8>, Option<Vec<u8>>);

/// Starts `target/<profile>/examples/<name>` on a free port with a fresh data directory,
/// without the group's initial rebalance delay so the topology starts at once.
pub fn start_example(name: &str) -> Broker {
    Broker::builder()
        .binary(&example_binary(name))
        .args(&["--group-initial-rebalance-delay-ms", "0"])
        .start()
}

/// `target/<profile>/examples/<name>`, next to the test's `deps/`, built now: `cargo test`
/// builds an example with `test = true` only as a test harness, and building here also
/// keeps the binary from being stale.
pub fn example_binary(name: &str) -> PathBuf {
    let test_binary = env::current_exe().expect("cannot find the running test binary");
    let profile_dir = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in <target>/<profile>/deps");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "-p", "riffle-processor", "--example", name]);
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build
        .status()
        .unwrap_or_else(|error| panic!("cannot run cargo to build the example {name}: {error}"));
    assert!(status.success(), "building the {name} example failed");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "the example is missing at {}",
        path.display()
    );
    path
}

/// A minute-aligned start half an hour ago: recent enough for retention (by event time),
/// aligned so window boundaries are `start + k * size` for every window size the examples use.
pub fn start_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    let now_ms = i64::try_from(now.as_millis()).expect("milliseconds fit an i64");
    now_ms - now_ms.rem_euclid(MINUTE_MS) - 30 * MINUTE_MS
}

/// Produces `inputs` to `topic` in order and waits for every acknowledgement.
pub async fn produce(bootstrap: &str, topic: &str, inputs: &[Input<'_>]) {
    let producer = future_producer(bootstrap, &[("enable.idempotence", "true")]);
    let mut sends = Vec::new();
    for input in inputs {
        let mut record = FutureRecord::<str, [u8]>::to(topic)
            .key(input.key)
            .timestamp(input.timestamp_ms);
        if let Some(value) = input.value {
            record = record.payload(value);
        }
        sends.push(producer.send(record, Timeout::After(CLIENT_TIMEOUT)));
    }
    for send in sends {
        if let Err((error, _)) = send.await {
            panic!("producing to {topic} failed: {error}");
        }
    }
}

/// Reads partition 0 of `topic` from the beginning until `done(records so far)` holds, then
/// for [`SETTLE`] more to catch extra records. Panics with the broker log on timeout.
/// Whether `updates` are what a record cache may leave of `all`, the updates one per input
/// record: some of them, in order, ending with the last (Kafka Streams' caching coalesces
/// a key's updates between commits, so intermediate ones may never be written).
pub fn coalesced_from<T: PartialEq>(updates: &[T], all: &[T]) -> bool {
    let mut rest = all.iter();
    updates.last() == all.last()
        && updates
            .iter()
            .all(|update| rest.by_ref().any(|candidate| candidate == update))
}

pub fn read_until(broker: &Broker, topic: &str, done: impl Fn(&[Output]) -> bool) -> Vec<Output> {
    let consumer = assigned_consumer(&broker.bootstrap(), topic, &[(0, Offset::Beginning)]);
    let mut records = Vec::new();
    let deadline = Instant::now() + OUTPUT_TIMEOUT;
    let mut settle_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if settle_until.is_some_and(|until| now >= until) {
            break;
        }
        assert!(
            now < deadline,
            "{topic} did not get the expected records in time; got {}:\n{records:?}\n{}",
            records.len(),
            broker.log_tail()
        );
        if settle_until.is_none() && done(&records) {
            settle_until = Some(now + SETTLE);
        }
        // Before the sink topic exists the consumer reports errors; keep polling.
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let key = message.key().unwrap_or_default().to_vec();
        records.push((key, message.payload().map(<[u8]>::to_vec)));
    }
    drop(consumer.unassign());
    records
}

/// Waits until the broker log has a line containing every one of `parts`.
pub fn wait_for_log_line(broker: &Broker, parts: &[&str]) {
    let deadline = Instant::now() + OUTPUT_TIMEOUT;
    loop {
        let log = std::fs::read_to_string(broker.log_path()).unwrap_or_default();
        if log
            .lines()
            .any(|line| parts.iter().all(|part| line.contains(part)))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {parts:?}\n{}",
            broker.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Parses a JSON value written by an example.
pub fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {}", String::from_utf8_lossy(bytes)))
}

/// The UTF-8 text of a key.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("keys are UTF-8")
}

/// A small deterministic generator for "random" test choices (kill moments): seeded from
/// `RIFFLE_TEST_SEED` when set, else from the clock, and the seed is printed, so a failing
/// run can be replayed.
pub struct TestRng(u64);

impl TestRng {
    pub fn from_env_or_clock() -> TestRng {
        let seed = env::var("RIFFLE_TEST_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                let nanos = now.map_or(0, |since| since.as_nanos());
                u64::try_from(nanos % u128::from(u64::MAX)).unwrap_or(1)
            });
        println!("RIFFLE_TEST_SEED={seed}");
        TestRng(seed | 1)
    }

    /// A number in `0..bound` (xorshift64*).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound.max(1)
    }
}
