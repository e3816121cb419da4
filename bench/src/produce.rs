//! Produce throughput (scenarios 1, 2 and 5): fixed-size values, no keys, as fast as the
//! client can send them, with the acks and linger given.
//!
//! One `BaseProducer` per producer thread, polled inline: a future per message would
//! measure the executor, not the broker.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

use crate::topic;

/// How long the final flush may take before the run counts as failed.
const FLUSH_TIMEOUT_S: u64 = 300;

#[derive(clap::Args, Debug, Clone)]
pub struct ProduceArgs {
    /// Broker to load; `mock` for librdkafka's in-process mock cluster (the ceiling).
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Topic; created with --partitions if missing. Default: a fresh name per run.
    #[arg(long)]
    pub topic: Option<String>,
    /// Messages in total, across producers.
    #[arg(long, default_value_t = 2_000_000)]
    pub messages: u64,
    /// Bytes of values in total; when given, overrides --messages.
    #[arg(long)]
    pub bytes: Option<u64>,
    #[arg(long, default_value_t = 100)]
    pub value_bytes: usize,
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// all, 1 or 0.
    #[arg(long, default_value = "all")]
    pub acks: String,
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u32,
    /// Producer threads, each with its own client and connection.
    #[arg(long, default_value_t = 1)]
    pub producers: u32,
}

/// One produce run's shape, shared by the broker run and its ceiling run.
#[derive(Clone, Debug)]
pub struct ProduceSpec {
    pub topic: String,
    pub messages: u64,
    pub value_bytes: usize,
    pub partitions: i32,
    pub acks: String,
    pub linger_ms: u32,
    pub producers: u32,
}

/// What a throughput run moved and how long it took.
#[derive(Clone, Copy, Debug)]
pub struct Throughput {
    pub messages: u64,
    pub value_bytes_total: u64,
    pub elapsed: Duration,
}

impl Throughput {
    pub fn messages_per_s(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
    /// Value bytes per second, in MB (10^6), the unit Kafka's perf tools print.
    pub fn mb_per_s(&self) -> f64 {
        self.value_bytes_total as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
}

impl ProduceArgs {
    pub fn spec(&self) -> ProduceSpec {
        let value_bytes = self.value_bytes.max(1);
        let messages = match self.bytes {
            Some(total_bytes) => total_bytes.div_ceil(value_bytes as u64),
            None => self.messages,
        };
        ProduceSpec {
            topic: self
                .topic
                .clone()
                .unwrap_or_else(|| format!("bench-produce-{}", topic::run_suffix())),
            messages,
            value_bytes,
            partitions: self.partitions,
            acks: self.acks.clone(),
            linger_ms: self.linger_ms,
            producers: self.producers.max(1),
        }
    }
}

pub fn run_cli(args: ProduceArgs) -> Result<()> {
    let spec = args.spec();
    let target = topic::Target::resolve(&args.bootstrap)?;
    target.create_topic(&spec.topic, spec.partitions)?;
    let result = run(&target.bootstrap, &spec)?;
    println!(
        "produce topic={} messages={} value_bytes={} partitions={} acks={} producers={}: \
         {:.0} msg/s, {:.1} MB/s in {:.2} s",
        spec.topic,
        result.messages,
        spec.value_bytes,
        spec.partitions,
        spec.acks,
        spec.producers,
        result.messages_per_s(),
        result.mb_per_s(),
        result.elapsed.as_secs_f64()
    );
    Ok(())
}

/// Produce `spec.messages` to an existing topic and wait until every one is acknowledged
/// (for acks=0, until every one is sent).
pub fn run(bootstrap: &str, spec: &ProduceSpec) -> Result<Throughput> {
    let started = Instant::now();
    let per_producer = spec.messages / u64::from(spec.producers);
    let threads: Vec<_> = (0..spec.producers)
        .map(|index| {
            let extra = if index == 0 {
                spec.messages % u64::from(spec.producers)
            } else {
                0
            };
            let bootstrap = bootstrap.to_string();
            let spec = spec.clone();
            std::thread::spawn(move || produce_one(&bootstrap, &spec, per_producer + extra))
        })
        .collect();
    for thread in threads {
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("a producer thread panicked"))??;
    }
    Ok(Throughput {
        messages: spec.messages,
        value_bytes_total: spec.messages * spec.value_bytes as u64,
        elapsed: started.elapsed(),
    })
}

/// Counts delivery reports; keeps the first error so a failed run says why.
#[derive(Default)]
struct DeliveryCounter {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

#[derive(Clone, Default)]
struct CountingContext(Arc<DeliveryCounter>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        match result {
            Ok(_) => {
                self.0.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.0.first_error.lock() {
                    first.get_or_insert_with(|| error.to_string());
                }
            }
        }
    }
}

/// The producer settings a scenario pins; everything else is librdkafka's default, the
/// same for the broker run and the ceiling run.
pub fn producer_config(bootstrap: &str, acks: &str, linger_ms: u32) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("acks", acks)
        .set("linger.ms", linger_ms.to_string())
        .set("enable.idempotence", "false")
        .set("compression.type", "none")
        .set("message.timeout.ms", "300000");
    config
}

fn produce_one(bootstrap: &str, spec: &ProduceSpec, messages: u64) -> Result<()> {
    let context = CountingContext::default();
    let producer: BaseProducer<CountingContext> =
        producer_config(bootstrap, &spec.acks, spec.linger_ms)
            .create_with_context(context.clone())
            .context("cannot create the producer")?;
    let value = vec![b'x'; spec.value_bytes];
    let partitions = spec.partitions.max(1);
    for sequence in 0..messages {
        // Round-robin over partitions so every partition gets the same load.
        let partition = (sequence % partitions as u64) as i32;
        let mut record: BaseRecord<'_, (), [u8]> = BaseRecord::to(&spec.topic)
            .payload(&value[..])
            .partition(partition);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    producer.poll(Duration::from_millis(5));
                }
                Err((error, _)) => return Err(error).context("cannot enqueue a message"),
            }
        }
        if sequence % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(FLUSH_TIMEOUT_S))
        .context("flush did not finish")?;
    let failed = context.0.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = context
            .0
            .first_error
            .lock()
            .ok()
            .and_then(|first| first.clone());
        bail!(
            "{failed} messages failed; first error: {}",
            first.unwrap_or_default()
        );
    }
    Ok(())
}
