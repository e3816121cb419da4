//! Connection hardening, seen from outside: connections past `--max-connections` or
//! `--max-connections-per-ip` are closed at once (not left in the kernel's backlog), a
//! request that stalls half-way is closed after `--request-read-timeout-ms`, an idle
//! connection after `--connections-max-idle-ms`, and a well-behaved client keeps working
//! while stalled connections hold most of the slots. A client that pipelines requests and
//! never reads the answers holds little memory and is closed after
//! `--response-write-timeout-ms`.
//!
//! Each stalled connection sends 3 bytes of a frame's 4-byte size prefix and nothing more.
//! Connections from other addresses use the rest of 127.0.0.0/8, which is all loopback on
//! Linux.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;

use riffle_integration_tests::clients::{
    CLIENT_TIMEOUT, create_topic, future_producer, read_to_end, send_plain,
};
use riffle_integration_tests::wire::{
    IsolationLevel, RawConnection, RequestHeaderVersion, RequestWriter, api_key, api_versions,
    fetch_transaction_state,
};
use riffle_integration_tests::{Broker, broker_binary};

/// What "closed at once" allows: well under any timeout the broker could be waiting on.
const PROMPT_CLOSE: Duration = Duration::from_secs(2);

/// How long a connection is watched to see that the broker keeps it open.
const STILL_OPEN_WATCH: Duration = Duration::from_millis(300);

/// Three bytes of a frame's size prefix: a request that started and stalled.
const STALLED_FRAME_START: [u8; 3] = [0, 0, 0];

#[test]
fn connections_past_the_per_ip_and_total_limits_are_closed_at_once() {
    // Proves the limits refuse by closing, not by leaving the connection unaccepted: the
    // fourth connection from one address, and the sixth in all, read EOF at once, while
    // the ones within the limits stay open; closing one frees its slot for a new client,
    // and the refusals are logged.
    let broker = Broker::start_with(&["--max-connections", "5", "--max-connections-per-ip", "3"]);
    let first_address = loopback(1);
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| stalled_connection(&broker, first_address))
        .collect();
    let mut over_per_ip = connect_from(&broker, first_address);
    assert_closed_within(
        &mut over_per_ip,
        PROMPT_CLOSE,
        "a 4th connection from one IP",
    );

    held.push(stalled_connection(&broker, loopback(2)));
    held.push(stalled_connection(&broker, loopback(2)));
    let mut over_total = connect_from(&broker, loopback(3));
    assert_closed_within(&mut over_total, PROMPT_CLOSE, "a 6th connection in all");
    for connection in &mut held {
        assert_still_open(connection);
    }

    // Closing one of the first address's connections frees a slot for it and in all.
    drop(held.remove(0));
    wait_for_slot(&broker, first_address);
    let log = std::fs::read_to_string(broker.log_path()).expect("read the broker log");
    assert!(
        log.contains("connection refused") && log.contains("--max-connections-per-ip"),
        "the refusals must be logged; log tail:\n{}",
        broker.log_tail()
    );
}

#[test]
fn per_ip_overrides_replace_the_per_ip_limit_for_their_hosts() {
    // Proves --max-connections-per-ip-overrides: 127.0.0.3 may hold 4 connections and
    // "localhost" (a hostname, resolved at start-up to 127.0.0.1) 3, above the default of
    // 2; 127.0.0.4 none at all; 127.0.0.5, without an entry, keeps the default. One past
    // each is closed at once, and the log names the override.
    let broker = Broker::start_with(&[
        "--max-connections-per-ip",
        "2",
        "--max-connections-per-ip-overrides",
        "127.0.0.3:4, 127.0.0.4:0,localhost:3",
    ]);
    let mut held: Vec<TcpStream> = Vec::new();
    for (address, limit) in [(loopback(3), 4), (loopback(1), 3), (loopback(5), 2)] {
        held.extend((0..limit).map(|_| stalled_connection(&broker, address)));
        let mut one_more = connect_from(&broker, address);
        assert_closed_within(
            &mut one_more,
            PROMPT_CLOSE,
            &format!("connection {} from {address}", limit + 1),
        );
    }
    let mut refused_host = connect_from(&broker, loopback(4));
    assert_closed_within(
        &mut refused_host,
        PROMPT_CLOSE,
        "a host whose override is 0",
    );
    for connection in &mut held {
        assert_still_open(connection);
    }
    let log = broker_log(&broker);
    assert!(
        log.contains("its --max-connections-per-ip-overrides entry"),
        "the refusals must name the override; log tail:\n{}",
        broker.log_tail()
    );
}

#[test]
fn dynamic_broker_configs_change_the_limits_while_running() {
    // Proves max.connections.per.ip and its overrides are dynamic broker configs: after an
    // AlterConfigs on the broker (the admin client connects from 127.0.0.1), a second
    // connection from 127.0.0.2 is closed at once while 127.0.0.3, named in an override,
    // may hold two; the connection held before the change stays open.
    let broker = Broker::start();
    let mut before = stalled_connection(&broker, loopback(2));
    let runtime = tokio::runtime::Runtime::new().expect("a runtime for the admin client");
    runtime.block_on(async {
        let alter = rdkafka::admin::AlterConfig::new(rdkafka::admin::ResourceSpecifier::Broker(1))
            .set("max.connections.per.ip", "1")
            .set(
                "max.connections.per.ip.overrides",
                "127.0.0.3:2,127.0.0.1:10",
            );
        let admin = riffle_integration_tests::clients::admin_client(&broker.bootstrap());
        let altered = admin
            .alter_configs(
                [&alter],
                &riffle_integration_tests::clients::admin_options(),
            )
            .await
            .expect("AlterConfigs request");
        assert!(altered[0].is_ok(), "AlterConfigs answered {altered:?}");
    });
    let mut over_new_limit = connect_from(&broker, loopback(2));
    assert_closed_within(
        &mut over_new_limit,
        PROMPT_CLOSE,
        "a 2nd connection from 127.0.0.2 after max.connections.per.ip=1",
    );
    assert_still_open(&mut before);
    let mut overridden: Vec<TcpStream> = (0..2)
        .map(|_| stalled_connection(&broker, loopback(3)))
        .collect();
    for connection in &mut overridden {
        assert_still_open(connection);
    }
    let mut over_override = connect_from(&broker, loopback(3));
    assert_closed_within(
        &mut over_override,
        PROMPT_CLOSE,
        "a 3rd connection from 127.0.0.3, whose override is 2",
    );
}

#[test]
fn bad_per_ip_overrides_stop_the_broker_at_start_up() {
    // Proves the overrides are checked before the broker starts: an entry without a count,
    // a negative count and a host that does not resolve each end `riffle serve` with a
    // non-zero status and a message naming the flag and the entry.
    let cases = [
        ("127.0.0.1", "entry '127.0.0.1' is not HOST:COUNT"),
        (
            "127.0.0.1:-3",
            "entry '127.0.0.1:-3' has a count that is not a whole number",
        ),
        (
            "no-such-host.invalid:3",
            "entry 'no-such-host.invalid:3': cannot resolve no-such-host.invalid",
        ),
    ];
    let data_dir = tempfile::tempdir().expect("a temp dir");
    for (overrides, expected) in cases {
        let output = std::process::Command::new(broker_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .env("RIFFLE_HTTP_LISTEN", "127.0.0.1:0")
            .arg(data_dir.path())
            .args(["--max-connections-per-ip-overrides", overrides])
            .output()
            .expect("run riffle");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{overrides}: started; {stderr}");
        assert!(
            stderr.contains("--max-connections-per-ip-overrides") && stderr.contains(expected),
            "{overrides}: {stderr}"
        );
    }
}

#[test]
fn a_stalled_request_and_an_idle_connection_are_closed_after_their_timeouts() {
    // Proves the two read timeouts: 3 bytes of a frame and nothing more are closed after
    // --request-read-timeout-ms (and not before), a connection that sends nothing after
    // --connections-max-idle-ms, and a connection that keeps asking stays open past both.
    let broker = Broker::start_with(&[
        "--request-read-timeout-ms",
        "500",
        "--connections-max-idle-ms",
        "1500",
    ]);
    let started = Instant::now();
    let mut stalled = stalled_connection(&broker, loopback(1));
    let mut idle = connect_from(&broker, loopback(1));
    let mut active = RawConnection::connect(&broker.bootstrap());

    assert_closed_within(&mut stalled, PROMPT_CLOSE, "a stalled half frame");
    let stalled_closed = started.elapsed();
    assert!(
        stalled_closed >= Duration::from_millis(400),
        "the stalled request was closed after {stalled_closed:?}, before its 500 ms timeout"
    );
    // Keep the active connection busy past the idle limit.
    while started.elapsed() < Duration::from_millis(2500) {
        api_versions(&mut active);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_closed_within(&mut idle, PROMPT_CLOSE, "an idle connection");
    let idle_closed = started.elapsed();
    assert!(
        idle_closed >= Duration::from_millis(1400),
        "the idle connection was closed after {idle_closed:?}, before its 1500 ms limit"
    );
    api_versions(&mut active);
}

#[test]
fn a_client_produces_and_consumes_while_stalled_connections_hold_most_slots() {
    // Proves stalled connections cost a well-behaved client nothing but their slots: with
    // 25 of 30 slots held by half frames, a producer and a consumer still work, and a
    // connection past the limit is closed at once rather than queued.
    let broker = Broker::start_with(&["--max-connections", "30"]);
    let bootstrap = broker.bootstrap();
    let mut stalled: Vec<TcpStream> = (0..25)
        .map(|_| stalled_connection(&broker, loopback(2)))
        .collect();
    // Not a tokio test: `connect_from` runs a runtime of its own.
    let runtime = tokio::runtime::Runtime::new().expect("a runtime for the clients");
    runtime.block_on(create_topic(&bootstrap, "busy", 1, &[]));
    let producer = runtime.block_on(async { future_producer(&bootstrap, &[("acks", "all")]) });
    runtime.block_on(send_plain(&producer, "busy", "message", 100));
    let offsets: Vec<i64> = read_to_end(&bootstrap, "busy", 0)
        .iter()
        .map(Message::offset)
        .collect();
    assert_eq!(offsets, (0..100).collect::<Vec<i64>>());
    for connection in &mut stalled {
        assert_still_open(connection);
    }
    // The clients' connections and the stalled ones fill the rest; the next is refused.
    let mut extra: Vec<TcpStream> = Vec::new();
    let refused = loop {
        let mut connection = connect_from(&broker, loopback(3));
        if is_closed_within(&mut connection, Duration::from_millis(500)) {
            break true;
        }
        extra.push(connection);
        if extra.len() > 30 {
            break false;
        }
    };
    assert!(refused, "no connection was refused at --max-connections 30");
    drop(producer);
}

#[test]
fn a_client_that_never_reads_holds_little_memory_and_is_closed_when_writes_stall() {
    // Proves the backpressure and the write stall: a raw client pipelines 2,000 Fetch
    // requests whose answers (2 MB each, copied, not sendfile) would total 4 GB, and never
    // reads. The broker stops reading it, its RSS stays within WIDE_RSS_GROWTH_MAX_BYTES of
    // what it was, another client produces and consumes normally meanwhile, and the stuck
    // connection is closed once no response byte has moved for --response-write-timeout-ms.
    let broker = Broker::start_with(&["--response-write-timeout-ms", "10000"]);
    let bootstrap = broker.bootstrap();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime for the clients");
    runtime.block_on(fill_wide_topic(&bootstrap));
    let pid = broker.pid().expect("running");
    // One fetch of everything first, so the baseline includes what serving it needs.
    let mut warm = RawConnection::connect(&bootstrap);
    let warm_request = wide_fetch_request(0);
    warm.send_raw(&warm_request).expect("send a fetch");
    warm.read_frame().expect("a fetch answer");
    let baseline_bytes = rss_bytes(pid);

    let mut stuck = connect_from(&broker, loopback(5));
    let pipelined: Vec<u8> = (1..=WIDE_PIPELINED_FETCHES)
        .flat_map(wide_fetch_request)
        .collect();
    stuck
        .set_write_timeout(Some(Duration::from_secs(5)))
        .expect("write timeout");
    let stuck_at = Instant::now();
    // The kernel's buffers usually take all of it; if not, what went out is enough.
    let _ = stuck.write_all(&pipelined);
    let mut peak_bytes = baseline_bytes;
    while stuck_at.elapsed() < Duration::from_secs(2) {
        peak_bytes = peak_bytes.max(rss_bytes(pid));
        std::thread::sleep(Duration::from_millis(100));
    }

    runtime.block_on(async {
        let producer = future_producer(&bootstrap, &[("acks", "all")]);
        send_plain(&producer, "busy", "message", 100).await;
    });
    let offsets: Vec<i64> = read_to_end(&bootstrap, "busy", 0)
        .iter()
        .map(Message::offset)
        .collect();
    assert_eq!(offsets, (0..100).collect::<Vec<i64>>());
    let fetched =
        fetch_transaction_state(&bootstrap, "wide", 0, 0, IsolationLevel::ReadUncommitted);
    assert!(fetched.record_bytes > 0, "{fetched:?}");
    peak_bytes = peak_bytes.max(rss_bytes(pid));
    println!(
        "RSS: {} KiB before, peak {} KiB while {WIDE_PIPELINED_FETCHES} fetches were pipelined unread",
        baseline_bytes / 1024,
        peak_bytes / 1024
    );
    assert!(
        peak_bytes.saturating_sub(baseline_bytes) < WIDE_RSS_GROWTH_MAX_BYTES,
        "RSS grew from {baseline_bytes} to {peak_bytes} bytes"
    );
    assert!(
        !broker_log(&broker).contains("response write stalled"),
        "the stuck connection was closed before the other client was done ({:?}); \
         raise --response-write-timeout-ms",
        stuck_at.elapsed()
    );

    let closed_at = wait_for_log(&broker, "response write stalled", Duration::from_secs(30));
    let stalled_for = closed_at.duration_since(stuck_at);
    assert!(
        stalled_for >= Duration::from_secs(9),
        "closed after {stalled_for:?}, before the 10 s timeout"
    );
    // What the kernel buffered for the client drains, then the close shows.
    assert!(
        is_drained_and_closed_within(&mut stuck, PROMPT_CLOSE),
        "the stuck connection is still open after the broker logged its close"
    );
    api_versions(&mut RawConnection::connect(&bootstrap));
}

/// Partitions of the topic the stuck client fetches.
const WIDE_PARTITIONS: i32 = 32;

/// Records of [`WIDE_RECORD_BYTES`] in each partition: 60 KB, just under the size from which
/// Fetch sends a partition's records with `sendfile`, so every answer is copied in memory.
const WIDE_RECORDS_PER_PARTITION: i32 = 6;

/// The value size of each record of the wide topic.
const WIDE_RECORD_BYTES: usize = 10_000;

/// How many Fetch requests the stuck client pipelines: their answers would total about 4 GB.
const WIDE_PIPELINED_FETCHES: i32 = 2_000;

/// How much the broker's RSS may grow while the stuck client waits.
const WIDE_RSS_GROWTH_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Creates "wide" and "busy" and fills every partition of "wide" with 60 KB.
async fn fill_wide_topic(bootstrap: &str) {
    create_topic(bootstrap, "wide", WIDE_PARTITIONS, &[]).await;
    create_topic(bootstrap, "busy", 1, &[]).await;
    let producer = future_producer(bootstrap, &[("acks", "all")]);
    let value = vec![b'w'; WIDE_RECORD_BYTES];
    let mut deliveries = Vec::new();
    for partition in 0..WIDE_PARTITIONS {
        for _ in 0..WIDE_RECORDS_PER_PARTITION {
            let record = FutureRecord::<(), _>::to("wide")
                .partition(partition)
                .payload(&value);
            let delivery = producer
                .send_result(record)
                .unwrap_or_else(|(error, _)| panic!("queue a record: {error}"));
            deliveries.push(delivery);
        }
    }
    for delivery in deliveries {
        let delivered = tokio::time::timeout(CLIENT_TIMEOUT, delivery)
            .await
            .expect("delivered in time")
            .expect("the producer is alive");
        delivered.unwrap_or_else(|(error, _)| panic!("not delivered: {error}"));
    }
}

/// A Fetch v4 frame for every partition of "wide" from offset 0, answered at once.
fn wide_fetch_request(correlation_id: i32) -> Vec<u8> {
    let mut payload = RequestWriter::new();
    payload
        .header(RequestHeaderVersion::V1, api_key::FETCH, 4, correlation_id)
        .i32(-1) // replica_id: a consumer
        .i32(0) // max_wait_ms
        .i32(0) // min_bytes
        .i32(50 * 1024 * 1024) // max_bytes
        .i8(IsolationLevel::ReadUncommitted.wire_value())
        .array_len(1)
        .string("wide")
        .array_len(usize::try_from(WIDE_PARTITIONS).expect("positive"));
    for partition in 0..WIDE_PARTITIONS {
        payload.i32(partition).i64(0).i32(1024 * 1024);
    }
    let payload = payload.into_bytes();
    let mut frame = i32::try_from(payload.len())
        .expect("a small frame")
        .to_be_bytes()
        .to_vec();
    frame.extend_from_slice(&payload);
    frame
}

/// The resident set size of process `pid`, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line");
    kib * 1024
}

fn broker_log(broker: &Broker) -> String {
    std::fs::read_to_string(broker.log_path()).expect("read the broker log")
}

/// Waits for `text` in the broker log; returns when it was seen.
fn wait_for_log(broker: &Broker, text: &str, limit: Duration) -> Instant {
    let deadline = Instant::now() + limit;
    loop {
        if broker_log(broker).contains(text) {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "no {text:?} in the broker log within {limit:?}\n{}",
            broker.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads whatever is buffered; whether the stream ends (EOF or reset) within `limit`.
fn is_drained_and_closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).expect("read timeout");
    let deadline = Instant::now() + limit;
    let mut buffer = vec![0u8; 1 << 16];
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(error) => {
                return matches!(
                    error.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                );
            }
        }
    }
    false
}

/// 127.0.0.`last`.
fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A connection to the broker from `source` (any port); `std::net` cannot bind before
/// connecting, tokio's `TcpSocket` can.
fn connect_from(broker: &Broker, source: IpAddr) -> TcpStream {
    let connect = async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(source, 0))?;
        let stream = socket.connect(broker.address()).await?;
        let stream = stream.into_std()?;
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        Ok::<_, std::io::Error>(stream)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a runtime for connecting");
    runtime
        .block_on(connect)
        .unwrap_or_else(|error| panic!("connect from {source}: {error}"))
}

/// A connection from `source` that sent 3 bytes of a frame and nothing more.
fn stalled_connection(broker: &Broker, source: IpAddr) -> TcpStream {
    let mut stream = connect_from(broker, source);
    stream
        .write_all(&STALLED_FRAME_START)
        .expect("send the start of a frame");
    stream
}

/// Connects from `source` until the broker keeps a connection (a freed slot is given
/// back when the broker sees the close), then checks ApiVersions v0 is answered on it.
fn wait_for_slot(broker: &Broker, source: IpAddr) {
    let deadline = Instant::now() + PROMPT_CLOSE;
    loop {
        let mut stream = connect_from(broker, source);
        if !is_closed_within(&mut stream, STILL_OPEN_WATCH) {
            // ApiVersions v0, correlation id 1, null client id.
            let request = [0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff];
            stream.write_all(&request).expect("send ApiVersions");
            stream
                .set_read_timeout(Some(PROMPT_CLOSE))
                .expect("read timeout");
            let mut size = [0u8; 4];
            stream.read_exact(&mut size).expect("an ApiVersions answer");
            assert!(i32::from_be_bytes(size) > 0);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no slot came free after a connection closed"
        );
    }
}

/// Whether the broker closes `stream` (EOF or reset) within `limit`.
fn is_closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).expect("read timeout");
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => panic!("the broker sent bytes on a connection that asked nothing"),
        Err(error) => matches!(
            error.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
        ),
    }
}

fn assert_closed_within(stream: &mut TcpStream, limit: Duration, what: &str) {
    let started = Instant::now();
    assert!(
        is_closed_within(stream, limit),
        "{what} was still open after {limit:?}"
    );
    assert!(started.elapsed() < limit, "{what}: {:?}", started.elapsed());
}

fn assert_still_open(stream: &mut TcpStream) {
    assert!(
        !is_closed_within(stream, STILL_OPEN_WATCH),
        "a connection within the limits was closed"
    );
}
