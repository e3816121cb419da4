//! Produce throughput (scenarios 1, 2, 5, 7 and 9): fixed-size values, no keys, as fast
//! as the client can send them, with the acks and linger given, plain, idempotent or
//! transactional producers ([`Delivery`]), over PLAINTEXT or SASL_SSL ([`Security`]).
//!
//! One `BaseProducer` per producer thread, polled inline: a future per message would
//! measure the executor, not the broker. The clock starts once every thread's producer is
//! ready to send (see [`prepare`]). A transactional producer commits after every
//! `commit_interval` of sending and once at the end; each commit is timed in two parts,
//! the flush of its last records and the `commit_transaction` (EndTxn) after it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use riffle_storage::MutexRecover;

use crate::topic::Security;
use crate::{consume, rounds, topic};

/// How long the final flush may take before the run counts as failed.
const FLUSH_TIMEOUT_S: u64 = 300;
/// How often [`flush`] looks whether the producer's queue is empty.
const FLUSH_CHECK_INTERVAL_US: u64 = 200;
/// How long [`connection_setup`] waits for its Metadata answer.
const CONNECTION_SETUP_TIMEOUT_S: u64 = 30;
/// `message.timeout.ms`; librdkafka wants a transactional producer's
/// `transaction.timeout.ms` at least as long, so both are this (Kafka's
/// `transaction.max.timeout.ms` default is 900 s, Riffle's too).
const MESSAGE_TIMEOUT_MS: u64 = 300_000;

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
    /// enable.idempotence=true (needs --acks all); the reference of scenario 7.
    #[arg(long, conflicts_with = "transactional_commit_ms")]
    pub idempotent: bool,
    /// A transactional producer (transactional.id set, so idempotent too; needs --acks
    /// all) committing after every N ms of sending and once at the end; afterwards a
    /// read_committed consumer must read back exactly the records produced.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub transactional_commit_ms: Option<u64>,
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
    pub delivery: Delivery,
    /// How the producers connect: PLAINTEXT except in scenario 9.
    pub security: Security,
}

impl ProduceSpec {
    /// Scenario 1's shape: `messages` values of 100 B to one partition, one plain
    /// producer, acks=all, linger.ms=5, over PLAINTEXT. Scenarios 5, 7 and 9 vary it.
    pub fn scenario_1(topic: String, messages: u64) -> Self {
        Self {
            topic,
            messages,
            value_bytes: 100,
            partitions: 1,
            acks: "all".into(),
            linger_ms: 5,
            producers: 1,
            delivery: Delivery::Plain,
            security: Security::plaintext(),
        }
    }
}

/// What the producer guarantees, and so what it asks of the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// `enable.idempotence=false`: scenarios 1, 2 and 5, and their mock ceiling.
    Plain,
    /// `enable.idempotence=true`: a producer id and sequence numbers, checked by the broker.
    Idempotent,
    /// A `transactional.id`: every record belongs to a transaction, committed after each
    /// `commit_interval` of sending and once at the end.
    Transactional { commit_interval: Duration },
}

/// One commit of a transactional run: how long its last records took to be acknowledged
/// (the flush) and how long `commit_transaction` took after that (EndTxn's round trip).
#[derive(Clone, Copy, Debug)]
pub struct CommitTiming {
    pub flush: Duration,
    pub commit: Duration,
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
            delivery: match (self.transactional_commit_ms, self.idempotent) {
                (Some(commit_ms), _) => Delivery::Transactional {
                    commit_interval: Duration::from_millis(commit_ms),
                },
                (None, true) => Delivery::Idempotent,
                (None, false) => Delivery::Plain,
            },
            security: Security::plaintext(),
        }
    }
}

pub fn run_cli(args: ProduceArgs) -> Result<()> {
    let spec = args.spec();
    let target = topic::Target::resolve(&args.bootstrap)?;
    target.create_topic(&spec.topic, spec.partitions)?;
    let (result, commits) = run_with_commits(&target.bootstrap, &spec)?;
    println!(
        "produce topic={} messages={} value_bytes={} partitions={} acks={} producers={} {:?}: \
         {:.0} msg/s, {:.1} MB/s in {:.2} s",
        spec.topic,
        result.messages,
        spec.value_bytes,
        spec.partitions,
        spec.acks,
        spec.producers,
        spec.delivery,
        result.messages_per_s(),
        result.mb_per_s(),
        result.elapsed.as_secs_f64()
    );
    if let Delivery::Transactional { .. } = spec.delivery {
        println!("{}", commits_summary(&commits));
        consume::check_read_committed(
            &target.bootstrap,
            &spec.topic,
            spec.partitions,
            spec.messages,
        )?;
        println!(
            "read_committed: a consumer read back exactly {} records",
            spec.messages
        );
    }
    Ok(())
}

/// Commits, flush and commit_transaction times (p50 and max) of a transactional run.
pub fn commits_summary(commits: &[CommitTiming]) -> String {
    let millis = |pick: fn(&CommitTiming) -> Duration| -> Vec<f64> {
        commits
            .iter()
            .map(|commit| pick(commit).as_secs_f64() * 1000.0)
            .collect()
    };
    let (flush, commit) = (
        millis(|timing| timing.flush),
        millis(|timing| timing.commit),
    );
    let max = |values: &[f64]| values.iter().copied().fold(f64::NAN, f64::max);
    format!(
        "{} commits; flush before commit p50 {:.1} ms, max {:.1} ms; commit_transaction \
         (EndTxn) p50 {:.1} ms, max {:.1} ms",
        commits.len(),
        rounds::median(&flush).unwrap_or(f64::NAN),
        max(&flush),
        rounds::median(&commit).unwrap_or(f64::NAN),
        max(&commit)
    )
}

/// Produce `spec.messages` to an existing topic and wait until every one is acknowledged
/// (for acks=0, until every one is sent).
pub fn run(bootstrap: &str, spec: &ProduceSpec) -> Result<Throughput> {
    run_with_commits(bootstrap, spec).map(|(throughput, _)| throughput)
}

/// [`run`], with every commit of a transactional run (none for the other kinds), in the
/// order each producer made them.
pub fn run_with_commits(
    bootstrap: &str,
    spec: &ProduceSpec,
) -> Result<(Throughput, Vec<CommitTiming>)> {
    let per_producer = spec.messages / u64::from(spec.producers);
    // Every producer thread and this one: the clock starts when all producers are ready.
    let ready = Arc::new(Barrier::new(spec.producers as usize + 1));
    let threads: Vec<_> = (0..spec.producers)
        .map(|index| {
            let extra = if index == 0 {
                spec.messages % u64::from(spec.producers)
            } else {
                0
            };
            let bootstrap = bootstrap.to_string();
            let spec = spec.clone();
            let ready = Arc::clone(&ready);
            std::thread::spawn(move || {
                produce_one(&bootstrap, &spec, index, per_producer + extra, &ready)
            })
        })
        .collect();
    ready.wait();
    let started = Instant::now();
    let mut commits = Vec::new();
    for thread in threads {
        let producer_commits = thread
            .join()
            .map_err(|_| anyhow::anyhow!("a producer thread panicked"))??;
        commits.extend(producer_commits);
    }
    let throughput = Throughput {
        messages: spec.messages,
        value_bytes_total: spec.messages * spec.value_bytes as u64,
        elapsed: started.elapsed(),
    };
    Ok((throughput, commits))
}

/// How long a fresh producer took to reach the broker, from its creation (scenario 9).
#[derive(Clone, Copy, Debug)]
pub struct ConnectionSetup {
    /// To the first Metadata answer: connect, plus TLS and SASL where the listener has them.
    pub metadata: Duration,
    /// To the first acknowledged record, with the spec's acks.
    pub first_ack: Duration,
}

/// Times a fresh producer of `spec`'s settings (its security included) to its first
/// Metadata answer for `spec.topic` and to its first acknowledged record, sent to
/// partition 0 with linger.ms=0. The topic must exist; it gets that one record.
pub fn connection_setup(bootstrap: &str, spec: &ProduceSpec) -> Result<ConnectionSetup> {
    let mut config = producer_config(bootstrap, &spec.acks, 0);
    spec.security.apply(&mut config);
    let context = CountingContext::default();
    let started = Instant::now();
    let producer: BaseProducer<CountingContext> = config
        .create_with_context(context.clone())
        .context("cannot create the set-up producer")?;
    producer
        .client()
        .fetch_metadata(
            Some(&spec.topic),
            Duration::from_secs(CONNECTION_SETUP_TIMEOUT_S),
        )
        .context("no Metadata answer")?;
    let metadata = started.elapsed();
    let record: BaseRecord<'_, (), [u8]> = BaseRecord::to(&spec.topic)
        .payload(&b"set-up"[..])
        .partition(0);
    producer
        .send(record)
        .map_err(|(error, _)| error)
        .context("cannot enqueue the set-up record")?;
    flush(&producer).context("the set-up record was not acknowledged")?;
    let first_ack = started.elapsed();
    check_delivered(&context)?;
    Ok(ConnectionSetup {
        metadata,
        first_ack,
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
                let mut first = self.0.first_error.lock_or_recover();
                first.get_or_insert_with(|| error.to_string());
            }
        }
    }
}

/// [`producer_config`] with the settings `delivery` needs; `transactional_id` names a
/// transactional producer (unique per producer thread).
fn delivery_config(bootstrap: &str, spec: &ProduceSpec, transactional_id: &str) -> ClientConfig {
    let mut config = producer_config(bootstrap, &spec.acks, spec.linger_ms);
    spec.security.apply(&mut config);
    match spec.delivery {
        Delivery::Plain => {}
        Delivery::Idempotent => {
            config.set("enable.idempotence", "true");
        }
        Delivery::Transactional { .. } => {
            config
                .set("enable.idempotence", "true")
                .set("transactional.id", transactional_id)
                .set("transaction.timeout.ms", MESSAGE_TIMEOUT_MS.to_string());
        }
    }
    config
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
        .set("message.timeout.ms", MESSAGE_TIMEOUT_MS.to_string());
    config
}

/// One producer thread: `messages` records, then a flush (or, for a transactional
/// producer, a last commit). Returns the commits it made.
fn produce_one(
    bootstrap: &str,
    spec: &ProduceSpec,
    index: u32,
    messages: u64,
    ready: &Barrier,
) -> Result<Vec<CommitTiming>> {
    let context = CountingContext::default();
    let prepared = prepare(bootstrap, spec, index, &context);
    // Waited for even after a failure, so the other threads are not left waiting.
    ready.wait();
    let (producer, mut transaction) = prepared?;
    if let Some(transaction) = &mut transaction {
        transaction.begin(&producer)?;
    }
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
            // The clock is read here, so a commit comes at most 1024 records late.
            if let Some(transaction) = &mut transaction {
                transaction.commit_if_due(&producer)?;
            }
        }
    }
    let commits = match transaction {
        Some(transaction) => transaction.commit_last(&producer)?,
        None => {
            flush(&producer).context("flush did not finish")?;
            Vec::new()
        }
    };
    check_delivered(&context)?;
    Ok(commits)
}

/// A producer thread's client, ready to send at once: an idempotent or transactional one
/// already holds its producer id. librdkafka's idempotent producer asks for one from a
/// 500 ms timer after it starts (`rdkafka_idempotence.c`, `rd_kafka_idemp_start` with
/// `immediate` false), which would put half a second of waiting inside the timed run, so
/// it sends one warm-up record to partition 0 first; a transactional one gets its id in
/// `init_transactions`.
fn prepare(
    bootstrap: &str,
    spec: &ProduceSpec,
    index: u32,
    context: &CountingContext,
) -> Result<(BaseProducer<CountingContext>, Option<Transaction>)> {
    let transactional_id = format!("riffle-bench-{}-{index}", spec.topic);
    let producer: BaseProducer<CountingContext> =
        delivery_config(bootstrap, spec, &transactional_id)
            .create_with_context(context.clone())
            .context("cannot create the producer")?;
    let transaction = match spec.delivery {
        Delivery::Plain => None,
        Delivery::Idempotent => {
            let warm_up: BaseRecord<'_, (), [u8]> = BaseRecord::to(&spec.topic)
                .payload(&b"warm-up"[..])
                .partition(0);
            producer
                .send(warm_up)
                .map_err(|(error, _)| error)
                .context("cannot enqueue the warm-up record")?;
            flush(&producer).context("the warm-up record was not acknowledged")?;
            None
        }
        Delivery::Transactional { commit_interval } => {
            Some(Transaction::init(&producer, commit_interval)?)
        }
    };
    Ok((producer, transaction))
}

/// The open transaction of a transactional producer thread, and the commits made so far.
struct Transaction {
    commit_interval: Duration,
    /// When the open transaction began.
    began: Instant,
    commits: Vec<CommitTiming>,
}

impl Transaction {
    /// init_transactions: FindCoordinator and InitProducerId, before the clock starts.
    fn init<C: ProducerContext>(
        producer: &BaseProducer<C>,
        commit_interval: Duration,
    ) -> Result<Self> {
        producer
            .init_transactions(Duration::from_secs(FLUSH_TIMEOUT_S))
            .context("init_transactions failed")?;
        Ok(Self {
            commit_interval,
            began: Instant::now(),
            commits: Vec::new(),
        })
    }

    /// begin_transaction, and the interval's clock with it.
    fn begin<C: ProducerContext>(&mut self, producer: &BaseProducer<C>) -> Result<()> {
        producer
            .begin_transaction()
            .context("begin_transaction failed")?;
        self.began = Instant::now();
        Ok(())
    }

    /// Commits and begins the next transaction once the open one has sent for
    /// `commit_interval`.
    fn commit_if_due<C: ProducerContext>(&mut self, producer: &BaseProducer<C>) -> Result<()> {
        if self.began.elapsed() < self.commit_interval {
            return Ok(());
        }
        self.commit(producer)?;
        self.begin(producer)
    }

    /// The final commit; returns every commit's timing.
    fn commit_last<C: ProducerContext>(
        mut self,
        producer: &BaseProducer<C>,
    ) -> Result<Vec<CommitTiming>> {
        self.commit(producer)?;
        Ok(self.commits)
    }

    /// Flushes, then commits: commit_transaction would flush first anyway, so splitting
    /// the two only lets each be timed.
    fn commit<C: ProducerContext>(&mut self, producer: &BaseProducer<C>) -> Result<()> {
        let flush_started = Instant::now();
        flush(producer).context("flush before a commit did not finish")?;
        let commit_started = Instant::now();
        producer
            .commit_transaction(Duration::from_secs(FLUSH_TIMEOUT_S))
            .context("commit_transaction failed")?;
        self.commits.push(CommitTiming {
            flush: commit_started - flush_started,
            commit: commit_started.elapsed(),
        });
        Ok(())
    }
}

/// Waits until every message is acknowledged and its delivery report served, checking
/// every [`FLUSH_CHECK_INTERVAL_US`].
///
/// Enqueues `record`, polling while the client's queue is full (the broker is slower than
/// the loop feeding it): the load generators' one way to send without dropping.
pub fn send_retrying<K>(producer: &BaseProducer, mut record: BaseRecord<'_, K, [u8]>) -> Result<()>
where
    K: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                record = returned;
                producer.poll(Duration::from_millis(1));
            }
            Err((error, _)) => return Err(error).context("cannot enqueue a record"),
        }
    }
}

/// Not `Producer::flush`: rdkafka's `BaseProducer::flush` polls in steps of 100 ms and
/// each poll runs to its deadline even when the queue is served early, so a flush that
/// has to wait at all takes at least 100 ms, whatever the broker does. With a commit
/// every 100 ms that would halve a transactional run (`commit_transaction` flushes the
/// same way first; after this flush it finds nothing left and goes straight to EndTxn).
pub fn flush<C: ProducerContext>(producer: &BaseProducer<C>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(FLUSH_TIMEOUT_S);
    loop {
        producer.poll(Duration::ZERO);
        if producer.in_flight_count() == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{} messages still in flight after {FLUSH_TIMEOUT_S} s",
                producer.in_flight_count()
            );
        }
        std::thread::sleep(Duration::from_micros(FLUSH_CHECK_INTERVAL_US));
    }
}

/// Fails when any delivery report was an error, with the first one.
fn check_delivered(context: &CountingContext) -> Result<()> {
    let failed = context.0.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = context.0.first_error.lock_or_recover().clone();
        bail!(
            "{failed} messages failed; first error: {}",
            first.unwrap_or_default()
        );
    }
    Ok(())
}
