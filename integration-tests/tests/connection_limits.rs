//! Connection hardening, seen from outside: connections past `--max-connections` or
//! `--max-connections-per-ip` are closed at once (not left in the kernel's backlog), a
//! request that stalls half-way is closed after `--request-read-timeout-ms`, an idle
//! connection after `--connections-max-idle-ms`, and a well-behaved client keeps working
//! while stalled connections hold most of the slots.
//!
//! Each stalled connection sends 3 bytes of a frame's 4-byte size prefix and nothing more.
//! Connections from other addresses use the rest of 127.0.0.0/8, which is all loopback on
//! Linux.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rdkafka::message::Message;

use riffle_integration_tests::Broker;
use riffle_integration_tests::clients::{create_topic, future_producer, read_to_end, send_plain};
use riffle_integration_tests::wire::{RawConnection, api_versions};

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
