//! Start-up (scenario 6): time from spawning the broker to its first Metadata answer,
//! after a clean stop and after kill -9, over a data directory with many partitions.
//!
//! The Metadata request is written by hand (v0, all topics) so that the figure holds no
//! client-side backoff: one TCP connect, one request, one response.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::broker_process::{BrokerProcess, find_riffle_binary};
use crate::{produce, topic};

/// The tail written before kill -9 is this fraction of the data set.
pub const UNFLUSHED_TAIL_DIVISOR: u64 = 10;

#[derive(clap::Args, Debug, Clone)]
pub struct StartupArgs {
    /// The riffle binary; default: next to riffle-bench.
    #[arg(long)]
    pub riffle_bin: Option<PathBuf>,
    #[arg(long, default_value_t = 1000)]
    pub partitions: i32,
    /// Value bytes written before the stop.
    #[arg(long, default_value_t = 5_000_000_000)]
    pub bytes: u64,
    /// Value bytes produced after the clean restart and never fsynced, for the kill -9
    /// start to recover; default: a tenth of --bytes. Vary it to see whether recovery time
    /// follows the tail.
    #[arg(long)]
    pub unflushed_tail_bytes: Option<u64>,
}

/// Both start-up times, and what was on disk.
#[derive(Clone, Copy, Debug)]
pub struct StartupResult {
    pub partitions: i32,
    pub value_bytes_total: u64,
    pub unflushed_tail_bytes: u64,
    pub after_clean_stop: Duration,
    pub after_kill9: Duration,
}

pub fn run_cli(args: StartupArgs) -> Result<()> {
    let binary = find_riffle_binary(args.riffle_bin.as_deref())?;
    let data_dir = tempfile::tempdir().context("cannot create a data directory")?;
    let tail_bytes = args
        .unflushed_tail_bytes
        .unwrap_or(args.bytes / UNFLUSHED_TAIL_DIVISOR);
    let result = run(
        &binary,
        data_dir.path(),
        args.partitions,
        (args.bytes, tail_bytes),
    )?;
    println!(
        "startup partitions={} bytes={} unflushed_tail_bytes={}: {:.0} ms after a clean stop, \
         {:.0} ms after kill -9",
        result.partitions,
        result.value_bytes_total,
        result.unflushed_tail_bytes,
        result.after_clean_stop.as_secs_f64() * 1000.0,
        result.after_kill9.as_secs_f64() * 1000.0
    );
    Ok(())
}

/// Fill `data_dir` with `bytes.0` (acks=1, 16 KiB values so filling is quick), stop cleanly,
/// measure the start, write `bytes.1` more without fsync, kill -9 and measure the start.
pub fn run(
    binary: &Path,
    data_dir: &Path,
    partitions: i32,
    (bytes, tail_bytes): (u64, u64),
) -> Result<StartupResult> {
    let broker = BrokerProcess::start(binary, data_dir, &[])?;
    let topic_name = format!("bench-startup-{}", topic::run_suffix());
    topic::create_topic(&broker.bootstrap, &topic_name, partitions)?;
    let spec = produce::ProduceSpec {
        topic: topic_name,
        messages: bytes.div_ceil(16 * 1024),
        value_bytes: 16 * 1024,
        partitions,
        acks: "1".into(),
        linger_ms: 5,
        producers: 1,
        delivery: produce::Delivery::Plain,
        security: topic::Security::plaintext(),
    };
    produce::run(&broker.bootstrap, &spec)?;
    broker.stop()?;

    let (after_clean_stop, broker) = time_to_first_metadata(binary, data_dir)?;
    // An unflushed tail for the kill -9 start to recover: acks=1 writes reach the page
    // cache only, and nothing syncs them before the kill.
    let tail = produce::ProduceSpec {
        messages: tail_bytes.div_ceil(16 * 1024).max(1),
        ..spec.clone()
    };
    produce::run(&broker.bootstrap, &tail)?;
    broker.kill9()?;
    let (after_kill9, broker) = time_to_first_metadata(binary, data_dir)?;
    broker.stop()?;
    Ok(StartupResult {
        partitions,
        value_bytes_total: (spec.messages + tail.messages) * spec.value_bytes as u64,
        unflushed_tail_bytes: tail.messages * spec.value_bytes as u64,
        after_clean_stop,
        after_kill9,
    })
}

/// Spawn and wait for the first Metadata answer; the broker is left running.
fn time_to_first_metadata(binary: &Path, data_dir: &Path) -> Result<(Duration, BrokerProcess)> {
    let started = Instant::now();
    let broker = BrokerProcess::start(binary, data_dir, &[])?;
    metadata_round_trip(&broker.bootstrap)?;
    Ok((started.elapsed(), broker))
}

/// One Metadata v0 request for all topics; returns once the whole response is read.
fn metadata_round_trip(bootstrap: &str) -> Result<()> {
    let mut stream =
        TcpStream::connect(bootstrap).with_context(|| format!("cannot connect to {bootstrap}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .context("set_read_timeout")?;
    let client_id = b"riffle-bench";
    let mut body = Vec::new();
    body.extend_from_slice(&3i16.to_be_bytes()); // api key: Metadata
    body.extend_from_slice(&0i16.to_be_bytes()); // version 0
    body.extend_from_slice(&1i32.to_be_bytes()); // correlation id
    body.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    body.extend_from_slice(client_id);
    body.extend_from_slice(&0i32.to_be_bytes()); // v0: an empty topic list means all topics
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    stream.write_all(&frame).context("cannot send Metadata")?;
    let mut length = [0u8; 4];
    stream
        .read_exact(&mut length)
        .context("no Metadata response")?;
    let length = usize::try_from(i32::from_be_bytes(length)).context("negative response length")?;
    let mut response = vec![0u8; length];
    stream
        .read_exact(&mut response)
        .context("short Metadata response")?;
    if response.get(..4) != Some(&1i32.to_be_bytes()[..]) {
        bail!("Metadata response with the wrong correlation id");
    }
    Ok(())
}
