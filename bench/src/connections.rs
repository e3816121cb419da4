//! Scenario 10: a normal client's round trip while 2,000 stalled connections are held,
//! against the same round trip on the idle broker, in the same run.
//!
//! riffle-bench starts a broker of its own with `--max-connections-per-ip` set to half
//! the stalled connections, then: a warm-up round trip (not counted); the idle round trip;
//! the stalled connections, opened from 127.0.0.2 (loopback on Linux), each sending 3
//! bytes of a frame's size prefix and nothing more; how many of them the broker closed at
//! once (those past the per-IP limit); the loaded round trip, by a new client from
//! 127.0.0.1; and whether the stalled connections within the limit were still open.
//!
//! A round trip is a fresh producer sending 1,000 messages (acks=all) to a topic of its
//! own and a fresh assign() consumer reading them back, timed from the producer's
//! creation to the last message read: connecting is part of it, as for any new client.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::broker_process::{BrokerProcess, find_riffle_binary};
use crate::report::{self, Row, Scenario, TargetCheck};
use crate::{consume, produce, topic};

/// The target: the loaded round trip takes at most this many times the idle one.
pub const TARGET_RATIO: f64 = 2.0;

/// The report's title for this scenario.
pub const TITLE: &str = "10. Round trip with 2,000 stalled connections held";

/// Where the stalled connections come from; the clients use 127.0.0.1.
const STALLED_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// What each stalled connection sends: 3 of the 4 bytes of a frame's size prefix.
const STALLED_FRAME_START: [u8; 3] = [0, 0, 0];
/// How long the broker has to close the connections past its limit before they are counted.
const REFUSAL_GRACE: Duration = Duration::from_secs(1);
/// The longest one round trip may take before the run fails.
const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(60);
/// File descriptors beyond the stalled connections: clients, logs, segments.
const SPARE_FILE_DESCRIPTORS: u64 = 200;

#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionsArgs {
    /// The riffle binary; default: next to riffle-bench in target/<profile>/.
    #[arg(long)]
    pub riffle_bin: Option<PathBuf>,
    /// Stalled connections opened (the 2,000).
    #[arg(long, default_value_t = 2_000)]
    pub stalled_connections: u64,
    /// Messages per round trip.
    #[arg(long, default_value_t = 1_000)]
    pub messages: u64,
}

pub fn run_cli(args: ConnectionsArgs) -> Result<()> {
    let binary = find_riffle_binary(args.riffle_bin.as_deref())?;
    let scenario = run(&binary, args.stalled_connections, args.messages)?;
    print!("{}", report::scenario_markdown(&scenario));
    for target in &scenario.targets {
        let verdict = if target.met { "PASS" } else { "FAIL" };
        println!("{verdict}: {} (measured {})", target.what, target.measured);
    }
    Ok(())
}

/// What one run measured.
struct Measured {
    idle: Duration,
    loaded: Duration,
    opened: u64,
    closed_at_once: u64,
    still_open_after: u64,
    per_ip_limit: u64,
    file_limit_notes: Vec<String>,
}

/// Starts the broker, measures and stops it; returns the report's section.
pub fn run(binary: &Path, stalled_connections: u64, messages: u64) -> Result<Scenario> {
    let mut file_limit_notes = Vec::new();
    let needed = stalled_connections + SPARE_FILE_DESCRIPTORS;
    let own_limit = raise_open_file_limit()?;
    if own_limit < needed {
        file_limit_notes.push(format!(
            "riffle-bench's open-file limit is {own_limit}, below the {needed} it needs; \
             stalled connections past it fail to open."
        ));
    }
    let per_ip_limit = (stalled_connections / 2).max(1);
    let data_dir = tempfile::tempdir().context("cannot create a data directory")?;
    let flags = [
        "--max-connections-per-ip".to_string(),
        per_ip_limit.to_string(),
    ];
    let broker = BrokerProcess::start(binary, data_dir.path(), &flags)?;
    if let Some(broker_limit) = open_file_limit_of(broker.pid()) {
        let broker_needs = per_ip_limit + SPARE_FILE_DESCRIPTORS;
        if broker_limit < broker_needs {
            file_limit_notes.push(format!(
                "The broker's open-file limit is {broker_limit}, below the {broker_needs} \
                 this run needs: raise it (ulimit -n) or the figures measure accept errors."
            ));
        }
    }
    let measured = measure(&broker, stalled_connections, messages, per_ip_limit);
    let stopped = broker
        .stop()
        .context("the scenario's broker did not stop cleanly");
    let mut measured = measured?;
    stopped?;
    measured.file_limit_notes = file_limit_notes;
    Ok(scenario(&measured, messages))
}

fn measure(
    broker: &BrokerProcess,
    stalled_connections: u64,
    messages: u64,
    per_ip_limit: u64,
) -> Result<Measured> {
    let bootstrap = broker.bootstrap.as_str();
    let address: SocketAddr = bootstrap
        .parse()
        .with_context(|| format!("the broker's address {bootstrap:?}"))?;
    let suffix = topic::run_suffix();
    round_trip(bootstrap, &format!("s10-warm-up-{suffix}"), messages).context("warm-up")?;
    let idle = round_trip(bootstrap, &format!("s10-idle-{suffix}"), messages)
        .context("idle round trip")?;
    let mut stalled = Vec::new();
    for _ in 0..stalled_connections {
        stalled.push(stalled_connection(address)?);
    }
    std::thread::sleep(REFUSAL_GRACE);
    let closed_at_once = count_closed(&mut stalled)?;
    let loaded = round_trip(bootstrap, &format!("s10-loaded-{suffix}"), messages)
        .context("round trip with stalled connections held")?;
    let still_open_after = stalled_connections - count_closed(&mut stalled)?;
    Ok(Measured {
        idle,
        loaded,
        opened: stalled_connections,
        closed_at_once,
        still_open_after,
        per_ip_limit,
        file_limit_notes: Vec::new(),
    })
}

/// A new producer sends `messages` to a new topic, a new consumer reads them back;
/// timed from the producer's creation to the last message read.
fn round_trip(bootstrap: &str, topic_name: &str, messages: u64) -> Result<Duration> {
    topic::create_topic(bootstrap, topic_name, 1)?;
    let started = Instant::now();
    let producer: BaseProducer = produce::producer_config(bootstrap, "all", 0)
        .create()
        .context("cannot create the producer")?;
    for index in 0..messages {
        let value = index.to_string();
        let record: BaseRecord<'_, (), str> = BaseRecord::to(topic_name)
            .payload(value.as_str())
            .partition(0);
        producer
            .send(record)
            .map_err(|(error, _)| error)
            .context("cannot enqueue a message")?;
    }
    produce::flush(&producer).context("messages not acknowledged")?;
    let consumer: BaseConsumer = consume::consumer_config(bootstrap, &format!("{topic_name}-g"))
        .create()
        .context("cannot create the consumer")?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic_name, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let mut read = 0;
    while read < messages {
        if started.elapsed() > ROUND_TRIP_TIMEOUT {
            bail!("read {read} of {messages} messages within {ROUND_TRIP_TIMEOUT:?}");
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) if message.offset() >= 0 => read += 1,
            Some(Ok(_)) | None => {}
            Some(Err(error)) => return Err(error).context("consume"),
        }
    }
    Ok(started.elapsed())
}

/// A connection from [`STALLED_SOURCE`] that sent [`STALLED_FRAME_START`].
fn stalled_connection(address: SocketAddr) -> Result<TcpStream> {
    // std cannot bind before connecting; tokio's TcpSocket can.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("cannot build a runtime for connecting")?;
    let mut stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(STALLED_SOURCE, 0))?;
            let stream = socket.connect(address).await?;
            stream.into_std()
        })
        .with_context(|| format!("cannot connect from {STALLED_SOURCE}"))?;
    stream.set_nonblocking(true)?;
    // The broker may already have closed it (past the limit): a failed write is counted
    // with the closed ones.
    let _ = stream.write_all(&STALLED_FRAME_START);
    Ok(stream)
}

/// How many of `streams` the broker has closed (EOF or reset), without waiting.
fn count_closed(streams: &mut [TcpStream]) -> Result<u64> {
    let mut closed = 0;
    let mut byte = [0u8; 1];
    for stream in streams {
        match stream.read(&mut byte) {
            Ok(0) => closed += 1,
            Ok(_) => bail!("the broker sent bytes on a stalled connection"),
            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
            Err(_) => closed += 1,
        }
    }
    Ok(closed)
}

/// Raises this process's soft open-file limit to its hard limit; returns the limit now.
fn raise_open_file_limit() -> Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                bail!("setrlimit: {}", std::io::Error::last_os_error());
            }
        }
    }
    Ok(limit.rlim_cur)
}

/// The soft "Max open files" of process `pid`, from /proc; `None` if unreadable.
fn open_file_limit_of(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn scenario(measured: &Measured, messages: u64) -> Scenario {
    let ratio = measured.loaded.as_secs_f64() / measured.idle.as_secs_f64();
    let row = |run: &str, took: Duration, note: String| Row {
        run: run.into(),
        messages: Some(messages),
        messages_per_s: Some(messages as f64 / took.as_secs_f64()),
        note: [
            format!("round trip {:.0} ms", took.as_secs_f64() * 1000.0),
            note,
        ]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("; "),
        ..Row::default()
    };
    let loaded_note = format!(
        "{} stalled connections opened, {} closed at once (past --max-connections-per-ip \
         {}), {} still held after the round trip",
        measured.opened, measured.closed_at_once, measured.per_ip_limit, measured.still_open_after
    );
    let mut notes = vec![format!(
        "Loaded / idle round trip: {ratio:.2}x. The loaded round trip's clients are new \
         connections, so it also shows a new client connects while the stalled ones are held."
    )];
    notes.extend(measured.file_limit_notes.iter().cloned());
    Scenario {
        title: TITLE.into(),
        shape: format!(
            "A new producer sends {messages} messages (acks=all) to a fresh topic and a new \
             assign() consumer reads them back, timed from the producer's creation to the last \
             message read; once on the idle broker, once while {} connections from 127.0.0.2 \
             each hold 3 bytes of a frame. The broker runs with --max-connections-per-ip {} \
             and default timeouts (--request-read-timeout-ms 30000 closes the stalled ones \
             after the measurement).",
            measured.opened, measured.per_ip_limit
        ),
        ratio_header: None,
        rows: vec![
            row(
                "riffle, stalled connections held",
                measured.loaded,
                loaded_note,
            ),
            row("riffle, idle (reference)", measured.idle, String::new()),
        ],
        targets: vec![
            TargetCheck {
                what: format!("loaded round trip <= {TARGET_RATIO:.0}x idle"),
                measured: format!("{ratio:.2}x"),
                met: ratio <= TARGET_RATIO,
            },
            TargetCheck {
                what: "connections past the limit closed at once".into(),
                measured: format!("{} of {}", measured.closed_at_once, measured.opened),
                met: measured.closed_at_once
                    == measured.opened.saturating_sub(measured.per_ip_limit),
            },
        ],
        notes,
    }
}
