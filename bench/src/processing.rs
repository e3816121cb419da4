//! The cost of exactly-once processing (scenario 8): a windowed count running co-located
//! in a broker (`riffle_broker::embedded::Broker`), under at-least-once and under
//! exactly-once at the same commit interval, in the same run, the two guarantees
//! alternating in order round by round.
//!
//! Each round measures both guarantees twice:
//!
//! - **Throughput over a backlog.** A broker without topologies takes a backlog of events
//!   and stops; the broker is started again over the same data with the topology, and the
//!   clock runs from the moment the topology holds all its tasks until a read_committed
//!   consumer of the output topic has received one output per event. Both guarantees read
//!   the same backlog (each with its own application id and output topic).
//! - **End-to-end latency at a fixed rate.** A fresh broker with the topology; events are
//!   sent at a fixed rate, each carrying its send time, and the aggregate carries the send
//!   time of the last event folded into it, so every output names the event that caused
//!   it. Its latency is when a read_committed consumer receives it minus that send time.
//!   Producer, broker, topology and consumer share this process and its monotonic clock.
//!
//! Under at-least-once an output is visible once the runtime has appended it; under
//! exactly-once once the transaction holding it commits. The co-located runtime appends
//! its output batches at each commit (or when one fills), so both guarantees wait for a
//! commit, and the commit interval sets most of the latency: about half of it on average.
//!
//! The broker here runs inside riffle-bench, with jemalloc as the `riffle` binary, on a
//! tokio runtime of its own; both guarantees share that setup.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord};
use rdkafka::{Offset, TopicPartitionList};
use riffle_broker::config::BrokerConfig;
use riffle_broker::embedded::{Broker, RunningBroker};
use riffle_processor::runtime::{ProcessingGuarantee, RuntimeConfig, RuntimeStatus};
use riffle_processor::{
    BytesSerde, Materialized, Serde, SerdeError, StreamsBuilder, StringSerde, TimeWindows, Topology,
};
use riffle_storage::MutexRecover;

use crate::broker_process::ProcUsage;
use crate::latency::{self, LatencyResult};
use crate::produce::{self, Throughput};
use crate::{consume, rounds, topic};

/// The events, read by both guarantees' topologies.
const INPUT_TOPIC: &str = "events";
/// The windows of the count: tumbling, this long...
const WINDOW: Duration = Duration::from_secs(1);
/// ...taking events this late by stream time. Events of one partition arrive in order,
/// so nothing is late; the grace only keeps a slow moment from dropping any.
const WINDOW_GRACE: Duration = Duration::from_secs(10);
/// The longest a broker may take to give its topology all of its tasks.
const TASKS_TIMEOUT: Duration = Duration::from_secs(60);
/// A consumer that receives nothing for this long has stalled.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// After the last expected output, how long the throughput consumer goes on polling to be
/// sure no more arrive (an output twice would be a broken guarantee).
const QUIET_AFTER_LAST: Duration = Duration::from_millis(500);
/// The send timestamp, as in [`latency`]: nanoseconds since the run's base instant,
/// little-endian, first in the event's value and first in the aggregate's.
const STAMP_BYTES: usize = 8;
/// Both guarantees, in the order even rounds run them; odd rounds reverse it.
const GUARANTEES: [ProcessingGuarantee; 2] = [
    ProcessingGuarantee::AtLeastOnce,
    ProcessingGuarantee::ExactlyOnce,
];

#[derive(clap::Args, Debug, Clone)]
pub struct ProcessingArgs {
    /// Partitions of the input and output topics: the topology's tasks.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Distinct keys the events are spread over.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    #[arg(long, default_value_t = 100)]
    pub value_bytes: usize,
    /// Events in the throughput run's backlog.
    #[arg(long, default_value_t = 1_000_000)]
    pub backlog_events: u64,
    /// Events per second in the latency run.
    #[arg(long, default_value_t = 10_000)]
    pub rate_per_s: u64,
    /// Length of the latency run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// The commit interval of both guarantees (Kafka Streams' commit.interval.ms).
    #[arg(long, default_value_t = 100)]
    pub commit_interval_ms: u64,
    /// Rounds; each measures both guarantees, in alternating order.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
}

/// One scenario 8 run's shape, shared by both guarantees.
#[derive(Clone, Debug)]
pub struct ProcessingSpec {
    pub partitions: i32,
    pub keys: u64,
    pub value_bytes: usize,
    pub backlog_events: u64,
    pub rate_per_s: u64,
    pub seconds: f64,
    pub commit_interval: Duration,
}

/// One guarantee's figures in one round.
#[derive(Clone, Debug)]
pub struct GuaranteeRun {
    pub throughput: Throughput,
    /// riffle-bench's own CPU seconds over the throughput run's timed window: broker,
    /// topology and output consumer together (the backlog's producer had finished).
    pub throughput_cpu_seconds: f64,
    pub latency: LatencyResult,
    /// Commits the topology made over both runs (under exactly-once, transactions).
    pub commits: u64,
    /// Transactions aborted over both runs; 0 unless something failed and was retried.
    pub aborted_transactions: u64,
}

/// One round: both guarantees.
#[derive(Clone, Debug)]
pub struct ProcessingRound {
    pub at_least_once: GuaranteeRun,
    pub exactly_once: GuaranteeRun,
}

impl ProcessingRound {
    /// Exactly-once's event rate over at-least-once's in this round.
    pub fn throughput_ratio(&self) -> f64 {
        self.exactly_once.throughput.messages_per_s()
            / self.at_least_once.throughput.messages_per_s()
    }
}

impl ProcessingArgs {
    pub fn spec(&self) -> ProcessingSpec {
        ProcessingSpec {
            partitions: self.partitions.max(1),
            keys: self.keys.max(1),
            value_bytes: self.value_bytes.max(STAMP_BYTES),
            backlog_events: self.backlog_events.max(1),
            rate_per_s: self.rate_per_s.max(1),
            seconds: self.seconds.max(1) as f64,
            commit_interval: Duration::from_millis(self.commit_interval_ms),
        }
    }
}

pub fn run_cli(args: ProcessingArgs) -> Result<()> {
    let spec = args.spec();
    let rounds = run(&spec, args.rounds)?;
    for (index, round) in rounds.iter().enumerate() {
        for (guarantee, run) in [
            (ProcessingGuarantee::AtLeastOnce, &round.at_least_once),
            (ProcessingGuarantee::ExactlyOnce, &round.exactly_once),
        ] {
            println!(
                "round {} {guarantee}: backlog {:.0} events/s; latency at {}/s p50 {:.2} ms, \
                 p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; {} commits, {} aborted",
                index + 1,
                run.throughput.messages_per_s(),
                spec.rate_per_s,
                run.latency.quantile_ms(0.50),
                run.latency.quantile_ms(0.99),
                run.latency.quantile_ms(0.999),
                run.latency.max_ms(),
                run.commits,
                run.aborted_transactions
            );
        }
        println!(
            "round {}: exactly-once throughput {:.0}% of at-least-once",
            index + 1,
            round.throughput_ratio() * 100.0
        );
    }
    Ok(())
}

/// Runs `rounds` rounds, each in its own temporary data directories.
pub fn run(spec: &ProcessingSpec, rounds: u32) -> Result<Vec<ProcessingRound>> {
    riffle_broker::cli::init_logging("warn");
    (0..rounds)
        .map(|round| {
            eprintln!("riffle-bench:   round {} of {rounds}", round + 1);
            run_round(spec, round).with_context(|| format!("round {} of {rounds}", round + 1))
        })
        .collect()
}

/// Both guarantees' throughput runs over one backlog, then both latency runs; at-least-once
/// first in even rounds, exactly-once first in odd ones.
fn run_round(spec: &ProcessingSpec, round: u32) -> Result<ProcessingRound> {
    let mut order = GUARANTEES;
    if round % 2 == 1 {
        order.reverse();
    }
    let backlog_dir = tempfile::tempdir().context("cannot create a data directory")?;
    write_backlog(spec, backlog_dir.path())?;
    let mut throughputs = Vec::new();
    for guarantee in order {
        let run = throughput_run(spec, backlog_dir.path(), guarantee)
            .with_context(|| format!("{guarantee} over the backlog"))?;
        throughputs.push((guarantee, run));
    }
    drop(backlog_dir);
    let mut latencies = Vec::new();
    for guarantee in order {
        let run = latency_run(spec, guarantee)
            .with_context(|| format!("{guarantee} at {} events/s", spec.rate_per_s))?;
        latencies.push((guarantee, run));
    }
    let mut guarantee_run = |guarantee| -> Result<GuaranteeRun> {
        let ((throughput, throughput_cpu_seconds), throughput_status) =
            take(&mut throughputs, guarantee)?;
        let (latency, latency_status) = take(&mut latencies, guarantee)?;
        Ok(GuaranteeRun {
            throughput,
            throughput_cpu_seconds,
            latency,
            commits: throughput_status.commits + latency_status.commits,
            aborted_transactions: throughput_status.aborted_transactions
                + latency_status.aborted_transactions,
        })
    };
    Ok(ProcessingRound {
        at_least_once: guarantee_run(ProcessingGuarantee::AtLeastOnce)?,
        exactly_once: guarantee_run(ProcessingGuarantee::ExactlyOnce)?,
    })
}

/// Removes and returns `guarantee`'s run from `runs`.
fn take<T>(runs: &mut Vec<(ProcessingGuarantee, T)>, guarantee: ProcessingGuarantee) -> Result<T> {
    let index = runs
        .iter()
        .position(|(run_guarantee, _)| *run_guarantee == guarantee)
        .ok_or_else(|| anyhow!("{guarantee} was not run"))?;
    Ok(runs.swap_remove(index).1)
}

/// What the topology's status said at the end of a run.
#[derive(Clone, Copy, Debug, Default)]
struct RunStatus {
    commits: u64,
    aborted_transactions: u64,
}

/// The application of `guarantee`: its group, its transactional id, its changelog.
fn application_id(guarantee: ProcessingGuarantee) -> String {
    format!("bench-count-{guarantee}")
}

/// Where `guarantee`'s topology writes.
fn output_topic(guarantee: ProcessingGuarantee) -> String {
    format!("counts-{guarantee}")
}

/// Writes the backlog into a broker over `data_dir` that runs no topology, then stops it.
fn write_backlog(spec: &ProcessingSpec, data_dir: &Path) -> Result<()> {
    let broker = CoLocated::start(data_dir, None)?;
    topic::create_topic(&broker.bootstrap, INPUT_TOPIC, spec.partitions)?;
    for guarantee in GUARANTEES {
        topic::create_topic(&broker.bootstrap, &output_topic(guarantee), spec.partitions)?;
    }
    let producer = event_producer(&broker.bootstrap, 5)?;
    let mut value = vec![b'x'; spec.value_bytes];
    value[..STAMP_BYTES].copy_from_slice(&0u64.to_le_bytes());
    for sequence in 0..spec.backlog_events {
        send_event(&producer, spec, sequence, &value)?;
        if sequence % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    produce::flush(&producer).context("the backlog's flush did not finish")?;
    drop(producer);
    broker.stop()
}

/// Starts the broker over the backlog with `guarantee`'s topology and times it from
/// holding its tasks to the last output seen by a read_committed consumer; also returns
/// this process's CPU seconds over that window.
fn throughput_run(
    spec: &ProcessingSpec,
    data_dir: &Path,
    guarantee: ProcessingGuarantee,
) -> Result<((Throughput, f64), RunStatus)> {
    let output = output_topic(guarantee);
    let processor = (topology(guarantee)?, runtime_config(spec, guarantee));
    let mut broker = CoLocated::start(data_dir, Some(processor))?;
    let consumer = output_consumer(&broker.bootstrap, &output, spec.partitions)?;
    let started = broker.wait_for_tasks(spec.partitions)?;
    let cpu_before = ProcUsage::read(std::process::id())?.cpu_seconds;
    let last_output = count_outputs(&consumer, spec.backlog_events)?;
    let cpu_seconds = ProcUsage::read(std::process::id())?.cpu_seconds - cpu_before;
    let status = broker.status_checked()?;
    // Clients go first, so stopping the broker does not leave them reconnecting.
    drop(consumer);
    broker.stop()?;
    let throughput = Throughput {
        messages: spec.backlog_events,
        value_bytes_total: spec.backlog_events * spec.value_bytes as u64,
        elapsed: last_output.saturating_duration_since(started),
    };
    Ok(((throughput, cpu_seconds), status))
}

/// A fresh broker with `guarantee`'s topology; events at `spec.rate_per_s`, each output's
/// latency measured at a read_committed consumer.
fn latency_run(
    spec: &ProcessingSpec,
    guarantee: ProcessingGuarantee,
) -> Result<(LatencyResult, RunStatus)> {
    let data_dir = tempfile::tempdir().context("cannot create a data directory")?;
    let output = output_topic(guarantee);
    let processor = (topology(guarantee)?, runtime_config(spec, guarantee));
    let mut broker = CoLocated::start(data_dir.path(), Some(processor))?;
    topic::create_topic(&broker.bootstrap, INPUT_TOPIC, spec.partitions)?;
    topic::create_topic(&broker.bootstrap, &output, spec.partitions)?;
    broker.wait_for_tasks(spec.partitions)?;
    let consumer = output_consumer(&broker.bootstrap, &output, spec.partitions)?;
    // Let the consumer connect and issue its first (waiting) fetches before we send.
    let _ = consumer.poll(Duration::from_millis(1000));
    let total = (spec.rate_per_s as f64 * spec.seconds).round() as u64;
    let base = Instant::now();
    let sent_count = Arc::new(AtomicU64::new(u64::MAX));
    let receiver = {
        let sent_count = Arc::clone(&sent_count);
        std::thread::spawn(move || latency::receive(&consumer, base, total, &sent_count))
    };
    let producer = event_producer(&broker.bootstrap, 0)?;
    let started = Instant::now();
    send_paced(&producer, spec, total, base)?;
    let elapsed = started.elapsed();
    sent_count.store(total, Ordering::Release);
    let mut samples_us = receiver
        .join()
        .map_err(|_| anyhow!("the consumer thread panicked"))??;
    samples_us.sort_unstable();
    let status = broker.status_checked()?;
    drop(producer);
    broker.stop()?;
    let latency = LatencyResult {
        sorted_us: samples_us,
        sent: total,
        elapsed,
    };
    Ok((latency, status))
}

/// `total` events at `spec.rate_per_s`, paced against absolute deadlines (as scenario 4),
/// each stamped with its send time since `base`; waits until all are acknowledged.
fn send_paced(
    producer: &BaseProducer,
    spec: &ProcessingSpec,
    total: u64,
    base: Instant,
) -> Result<()> {
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
        send_event(producer, spec, sequence, &value)?;
        producer.poll(Duration::ZERO);
    }
    produce::flush(producer).context("flush did not finish")
}

/// The event producer: acks=all as the other scenarios, keyed records.
fn event_producer(bootstrap: &str, linger_ms: u32) -> Result<BaseProducer> {
    produce::producer_config(bootstrap, "all", linger_ms)
        .create()
        .context("cannot create the event producer")
}

/// Event `sequence`: key `key-<sequence mod keys>`, partitioned by the client's default
/// partitioner; retried while the client's queue is full.
fn send_event(
    producer: &BaseProducer,
    spec: &ProcessingSpec,
    sequence: u64,
    value: &[u8],
) -> Result<()> {
    let key = format!("key-{}", sequence % spec.keys);
    let record: BaseRecord<'_, str, [u8]> =
        BaseRecord::to(INPUT_TOPIC).key(key.as_str()).payload(value);
    produce::send_retrying(producer, record)
}

/// A read_committed consumer of every partition of `topic`, from the start.
fn output_consumer(bootstrap: &str, topic: &str, partitions: i32) -> Result<BaseConsumer> {
    let mut config = consume::consumer_config(bootstrap, "riffle-bench-processing");
    config.set("isolation.level", "read_committed");
    let consumer: BaseConsumer = config
        .create()
        .context("cannot create the output consumer")?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .context("cannot build the assignment")?;
    }
    consumer.assign(&assignment).context("assign failed")?;
    Ok(consumer)
}

/// Receives `expected` outputs and returns when the last arrived; then polls on for
/// [`QUIET_AFTER_LAST`] and fails if any more arrive.
fn count_outputs(consumer: &BaseConsumer, expected: u64) -> Result<Instant> {
    let mut received = 0u64;
    let mut last_message = Instant::now();
    while received < expected {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => {
                received += 1;
                last_message = Instant::now();
            }
            Some(Err(error)) => return Err(error).context("consuming the outputs failed"),
            None if last_message.elapsed() > STALL_TIMEOUT => {
                bail!("received {received} of {expected} outputs")
            }
            None => {}
        }
    }
    let last_output = last_message;
    while last_output.elapsed() < QUIET_AFTER_LAST {
        if let Some(message) = consumer.poll(Duration::from_millis(50)) {
            message.context("consuming the outputs failed")?;
            bail!("more than the {expected} outputs expected, one per event");
        }
    }
    Ok(last_output)
}

/// The windowed count: per key and 1 s window, the number of events and the send time of
/// the last one, written to `counts-<guarantee>` after every event.
fn topology(guarantee: ProcessingGuarantee) -> Result<Topology> {
    let builder = StreamsBuilder::new(&application_id(guarantee));
    builder
        .stream(INPUT_TOPIC, StringSerde, BytesSerde)
        .group_by_key()
        .windowed_by(TimeWindows::tumbling(WINDOW).grace(WINDOW_GRACE))
        .aggregate(
            Counted::default,
            |_key, value: &Vec<u8>, counted: Counted| counted.add(stamp_of(value)),
            Materialized::new("counts").with_value_serde(CountedSerde),
        )
        .to_stream()
        .map(|window, counted| (window.key.clone(), *counted))
        .to(&output_topic(guarantee), StringSerde, CountedSerde);
    builder
        .build()
        .map_err(|error| anyhow!("the topology does not build: {error}"))
}

fn runtime_config(spec: &ProcessingSpec, guarantee: ProcessingGuarantee) -> RuntimeConfig {
    RuntimeConfig {
        commit_interval: spec.commit_interval,
        processing_guarantee: guarantee,
        ..RuntimeConfig::default()
    }
}

/// The send time in an event's value; 0 when it has none.
fn stamp_of(value: &[u8]) -> u64 {
    value
        .get(..STAMP_BYTES)
        .and_then(|stamp| stamp.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// The aggregate: events counted, and the send time of the last one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counted {
    last_stamp_ns: u64,
    count: u64,
}

impl Counted {
    fn add(self, stamp_ns: u64) -> Counted {
        Counted {
            last_stamp_ns: stamp_ns,
            count: self.count + 1,
        }
    }
}

/// [`Counted`] as 16 bytes: the stamp first (little-endian, where [`latency::receive`]
/// reads it), then the count (big-endian, as Kafka's LongSerializer).
struct CountedSerde;

impl Serde<Counted> for CountedSerde {
    fn serialize(&self, _topic: &str, value: &Counted) -> Result<Vec<u8>, SerdeError> {
        let mut bytes = Vec::with_capacity(2 * STAMP_BYTES);
        bytes.extend_from_slice(&value.last_stamp_ns.to_le_bytes());
        bytes.extend_from_slice(&value.count.to_be_bytes());
        Ok(bytes)
    }

    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<Counted, SerdeError> {
        let (stamp, count) = bytes
            .split_at_checked(STAMP_BYTES)
            .ok_or_else(|| SerdeError::new(topic, "a count shorter than 16 bytes"))?;
        let field = |bytes: &[u8]| -> Result<[u8; STAMP_BYTES], SerdeError> {
            bytes
                .try_into()
                .map_err(|_| SerdeError::new(topic, "a count that is not 16 bytes"))
        };
        Ok(Counted {
            last_stamp_ns: u64::from_le_bytes(field(stamp)?),
            count: u64::from_be_bytes(field(count)?),
        })
    }
}

/// A broker running inside this process on a tokio runtime of its own, with at most one
/// topology. Clients reach it at `bootstrap`, as any other broker.
pub(crate) struct CoLocated {
    pub(crate) runtime: tokio::runtime::Runtime,
    running: RunningBroker,
    pub(crate) bootstrap: String,
}

/// `riffle serve`'s flags, parsed as the binary parses them.
#[derive(Parser)]
struct ServeFlags {
    #[command(flatten)]
    config: BrokerConfig,
}

impl CoLocated {
    /// Starts a broker over `data_dir` on a free port, with `processor` if given. Groups
    /// start without the initial rebalance delay: no other member is coming.
    pub(crate) fn start(
        data_dir: &Path,
        processor: Option<(Topology, RuntimeConfig)>,
    ) -> Result<Self> {
        let data_dir = data_dir
            .to_str()
            .context("the data directory is not UTF-8")?;
        let flags = [
            "riffle-bench",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir,
            "--log-level",
            "warn",
            "--group-initial-rebalance-delay-ms",
            "0",
        ];
        let config = ServeFlags::try_parse_from(flags)
            .context("the co-located broker's flags")?
            .config;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start a runtime for the co-located broker")?;
        // Quiet: the benchmark's stdout is its report.
        let mut builder = Broker::builder(config).quiet();
        if let Some((topology, runtime_config)) = processor {
            builder = builder.processor_with(topology, runtime_config);
        }
        let running = runtime
            .block_on(builder.start())
            .map_err(|error| anyhow!("the co-located broker did not start: {error}"))?;
        let bootstrap = running.address().to_string();
        Ok(Self {
            runtime,
            running,
            bootstrap,
        })
    }

    /// The topology's status, shared with its runner.
    pub(crate) fn status_handle(&self) -> Result<Arc<Mutex<RuntimeStatus>>> {
        let processor = self
            .running
            .processors()
            .first()
            .context("no topology runs here")?;
        Ok(processor.status.clone())
    }

    /// Fails with the runner's message if the topology has failed. `failed` is polled once
    /// before the zero timeout, so a reported failure is always seen.
    pub(crate) fn check_not_failed(&mut self) -> Result<()> {
        let running = &mut self.running;
        let failed = self
            .runtime
            .block_on(async { tokio::time::timeout(Duration::ZERO, running.failed()).await });
        match failed {
            Ok(message) => bail!("{message}"),
            Err(_) => Ok(()),
        }
    }

    /// Waits until the topology holds `tasks` tasks and returns when it did.
    pub(crate) fn wait_for_tasks(&mut self, tasks: i32) -> Result<Instant> {
        let status = self.status_handle()?;
        let tasks = usize::try_from(tasks).context("a negative task count")?;
        let deadline = Instant::now() + TASKS_TIMEOUT;
        loop {
            let held = status.lock_or_recover().tasks.len();
            if held >= tasks {
                return Ok(Instant::now());
            }
            if Instant::now() >= deadline {
                bail!("the topology held {held} of {tasks} tasks after {TASKS_TIMEOUT:?}");
            }
            self.check_not_failed()?;
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The topology's commits so far; fails if it failed or dropped any event.
    fn status_checked(&mut self) -> Result<RunStatus> {
        self.check_not_failed()?;
        let status = self.status_handle()?;
        let status = status.lock_or_recover();
        let dropped = status.metrics.dropped_total();
        if dropped > 0 {
            bail!(
                "the topology dropped {dropped} events: {:?}",
                status.metrics.dropped_records
            );
        }
        Ok(RunStatus {
            commits: status.commits,
            aborted_transactions: status.aborted_transactions,
        })
    }

    /// Stops the topology (a last commit) and the broker (logs flushed).
    pub(crate) fn stop(self) -> Result<()> {
        self.runtime
            .block_on(self.running.shutdown())
            .map_err(|error| anyhow!("the co-located broker did not stop cleanly: {error}"))
    }
}

/// The median over `rounds` of each guarantee's CPU seconds per million events in the
/// throughput run (this whole process: broker, topology and output consumer).
pub fn cpu_seconds_per_million_events(rounds: &[ProcessingRound]) -> [Option<f64>; 2] {
    let per_million =
        |run: &GuaranteeRun| run.throughput_cpu_seconds / (run.throughput.messages as f64 / 1e6);
    let figure = |pick: fn(&ProcessingRound) -> &GuaranteeRun| {
        rounds::median(
            &rounds
                .iter()
                .map(|round| per_million(pick(round)))
                .collect::<Vec<_>>(),
        )
    };
    [
        figure(|round| &round.at_least_once),
        figure(|round| &round.exactly_once),
    ]
}

/// The median of each guarantee's rates over `rounds`, and of the per-round ratios.
pub fn throughput_medians(rounds: &[ProcessingRound]) -> [Option<f64>; 3] {
    let figure = |pick: fn(&ProcessingRound) -> f64| {
        rounds::median(&rounds.iter().map(pick).collect::<Vec<_>>())
    };
    [
        figure(|round| round.at_least_once.throughput.messages_per_s()),
        figure(|round| round.exactly_once.throughput.messages_per_s()),
        figure(ProcessingRound::throughput_ratio),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_round_trips_with_its_stamp_first() {
        // Proves the aggregate's bytes carry the send time where latency::receive reads it
        // (the first 8 bytes, little-endian) and read back whole; short bytes are refused.
        let counted = Counted::default().add(7).add(0x0102_0304_0506_0708);
        assert_eq!(counted.count, 2);
        let bytes = CountedSerde
            .serialize("counts", &counted)
            .expect("serializes");
        assert_eq!(bytes[..STAMP_BYTES], 0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(stamp_of(&bytes), 0x0102_0304_0506_0708);
        let read = CountedSerde
            .deserialize("counts", &bytes)
            .expect("deserializes");
        assert_eq!(read, counted);
        assert!(CountedSerde.deserialize("counts", &bytes[..15]).is_err());
    }

    #[test]
    fn an_event_without_a_stamp_counts_from_zero() {
        // Proves a value shorter than a stamp is counted with send time 0, not refused.
        assert_eq!(stamp_of(b"short"), 0);
        assert_eq!(Counted::default().add(stamp_of(b"")).last_stamp_ns, 0);
    }
}
