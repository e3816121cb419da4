//! End-to-end latency (scenario 4): a fixed message rate, the send time written into each
//! value, measured when the consumer receives it.
//!
//! Producer and consumer are in this process, so both read the same monotonic clock and
//! no clock sync is needed. The producer paces against absolute deadlines, so a slow
//! moment is followed by catch-up sends instead of a silently lower rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::{consume, produce, topic};

/// After the last send, how long the consumer may take to see the rest.
const DRAIN_TIMEOUT_S: u64 = 30;
/// The send timestamp: nanoseconds since the run's base instant, little-endian.
const STAMP_BYTES: usize = 8;

#[derive(clap::Args, Debug, Clone)]
pub struct LatencyArgs {
    /// Broker to load; `mock` for librdkafka's in-process mock cluster (the ceiling).
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Topic (one partition); created if missing. Default: a fresh name per run.
    #[arg(long)]
    pub topic: Option<String>,
    #[arg(long, default_value_t = 10_000)]
    pub rate_per_s: u64,
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    #[arg(long, default_value_t = 1024)]
    pub value_bytes: usize,
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// The consumer's fetch.wait.max.ms; default librdkafka's (500). A broker that answers
    /// a waiting fetch as soon as data arrives is not affected by it.
    #[arg(long)]
    pub fetch_wait_max_ms: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct LatencySpec {
    pub topic: String,
    pub rate_per_s: u64,
    pub seconds: f64,
    pub value_bytes: usize,
    pub acks: String,
    pub fetch_wait_max_ms: Option<u32>,
}

/// Every message's end-to-end latency, sorted, in microseconds.
#[derive(Clone, Debug)]
pub struct LatencyResult {
    pub sorted_us: Vec<u64>,
    pub sent: u64,
    pub elapsed: Duration,
}

impl LatencyResult {
    /// The latency at `quantile` (0..=1), nearest rank, in milliseconds.
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        if self.sorted_us.is_empty() {
            return f64::NAN;
        }
        let rank = (quantile * self.sorted_us.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.sorted_us.len()) - 1;
        self.sorted_us[index] as f64 / 1000.0
    }
    pub fn max_ms(&self) -> f64 {
        self.sorted_us
            .last()
            .map_or(f64::NAN, |&max| max as f64 / 1000.0)
    }
}

impl LatencyArgs {
    pub fn spec(&self) -> LatencySpec {
        LatencySpec {
            topic: self
                .topic
                .clone()
                .unwrap_or_else(|| format!("bench-latency-{}", topic::run_suffix())),
            rate_per_s: self.rate_per_s.max(1),
            seconds: self.seconds as f64,
            value_bytes: self.value_bytes.max(STAMP_BYTES),
            acks: self.acks.clone(),
            fetch_wait_max_ms: self.fetch_wait_max_ms,
        }
    }
}

pub fn run_cli(args: LatencyArgs) -> Result<()> {
    let spec = args.spec();
    let target = topic::Target::resolve(&args.bootstrap)?;
    target.create_topic(&spec.topic, 1)?;
    let result = run(&target.bootstrap, &spec)?;
    println!(
        "latency topic={} rate={}/s messages={}: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        spec.topic,
        spec.rate_per_s,
        result.sorted_us.len(),
        result.quantile_ms(0.50),
        result.quantile_ms(0.99),
        result.quantile_ms(0.999),
        result.max_ms()
    );
    Ok(())
}

/// Run against an existing one-partition topic.
pub fn run(bootstrap: &str, spec: &LatencySpec) -> Result<LatencyResult> {
    let total = (spec.rate_per_s as f64 * spec.seconds).round() as u64;
    let base = Instant::now();
    let sent_count = Arc::new(AtomicU64::new(u64::MAX));

    let mut consumer_config = consume::consumer_config(bootstrap, "riffle-bench-latency");
    if let Some(wait_ms) = spec.fetch_wait_max_ms {
        consumer_config.set("fetch.wait.max.ms", wait_ms.to_string());
    }
    let consumer: BaseConsumer = consumer_config
        .create()
        .context("cannot create the consumer")?;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&spec.topic, 0, Offset::Beginning)
        .context("cannot build the assignment")?;
    consumer.assign(&assignment).context("assign failed")?;
    // Let the consumer connect and issue its first (waiting) fetch before we send.
    let _ = consumer.poll(Duration::from_millis(1000));

    let consumer_thread = {
        let sent_count = Arc::clone(&sent_count);
        std::thread::spawn(move || receive(&consumer, base, total, &sent_count))
    };

    let producer: BaseProducer = produce::producer_config(bootstrap, &spec.acks, 0)
        .create()
        .context("cannot create the producer")?;
    // Connect and learn the leader before the clock starts.
    producer
        .client()
        .fetch_metadata(Some(&spec.topic), Duration::from_secs(10))
        .context("metadata for the latency topic")?;
    let started = Instant::now();
    let period = Duration::from_secs_f64(1.0 / spec.rate_per_s as f64);
    let mut value = vec![b'x'; spec.value_bytes];
    for sequence in 0..total {
        let deadline = started + period.mul_f64(sequence as f64);
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        let stamp_ns = base.elapsed().as_nanos() as u64;
        value[..STAMP_BYTES].copy_from_slice(&stamp_ns.to_le_bytes());
        let record: BaseRecord<'_, (), [u8]> =
            BaseRecord::to(&spec.topic).payload(&value[..]).partition(0);
        produce::send_retrying(&producer, record)?;
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(DRAIN_TIMEOUT_S))
        .context("flush did not finish")?;
    let elapsed = started.elapsed();
    sent_count.store(total, Ordering::Release);
    let mut samples_us = consumer_thread
        .join()
        .map_err(|_| anyhow!("the consumer thread panicked"))??;
    samples_us.sort_unstable();
    Ok(LatencyResult {
        sorted_us: samples_us,
        sent: total,
        elapsed,
    })
}

/// Receive until `total` messages arrived, each one's latency taken from the send time in
/// its value's first [`STAMP_BYTES`]; a stall after the producer finished is an error.
/// Scenario 8 reads its outputs with it too.
pub fn receive(
    consumer: &BaseConsumer,
    base: Instant,
    total: u64,
    sent_count: &AtomicU64,
) -> Result<Vec<u64>> {
    let mut samples_us = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut last_message = Instant::now();
    while (samples_us.len() as u64) < total {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let received_ns = base.elapsed().as_nanos() as u64;
                let payload = message.payload().unwrap_or_default();
                let stamp: [u8; STAMP_BYTES] = payload
                    .get(..STAMP_BYTES)
                    .and_then(|stamp| stamp.try_into().ok())
                    .context("a message without a timestamp")?;
                let sent_ns = u64::from_le_bytes(stamp);
                samples_us.push(received_ns.saturating_sub(sent_ns) / 1000);
                last_message = Instant::now();
            }
            Some(Err(error)) => return Err(error).context("consume failed"),
            None => {
                let producer_done = sent_count.load(Ordering::Acquire) != u64::MAX;
                if producer_done && last_message.elapsed() > Duration::from_secs(DRAIN_TIMEOUT_S) {
                    bail!("received {} of {total} messages", samples_us.len());
                }
            }
        }
    }
    Ok(samples_us)
}
