//! The stream processor's own speed (scenario 11): a windowed count catching up over a
//! backlog on one input partition, against the raw consume rate of the same topic, and a
//! 1M-key store's restore against the raw consume rate of its changelog.
//!
//! Everything runs in this process, on a broker it starts itself
//! (`riffle_broker::embedded`), in this order, each figure measured in the same run:
//!
//! 1. **Backlog.** `--events` events on one partition: key `key-<n mod keys>`, value 8
//!    bytes (`--format binary`, `U64Serde`) or a small JSON object (`--format json`),
//!    timestamps 10 per millisecond, so the backlog spans `events / 10` ms of event time.
//! 2. **Raw consume (the ceiling).** A librdkafka consumer reads the whole topic with
//!    assign(); what a client reads over the loopback is what any runtime could get.
//! 3. **Co-located.** The broker restarts over the same data with the topology inside
//!    (persistent stores in its data directory, at-least-once); the clock runs from the
//!    task being assigned until it has processed every event. CPU is this process's (the
//!    broker and the runtime share it); peak RSS is the process's high-water mark over
//!    the run, reset just before it.
//! 4. **Remote** (`--skip-remote` leaves it out): the same topology under another
//!    application id over `riffle_processor::runtime::remote` against the same broker,
//!    in this process too (so its CPU includes the broker serving it).
//! 5. **Restore** (`--skip-restore`): a 1M-key store's changelog, written directly and
//!    covered by a committed restore point, is read raw by librdkafka, restored in full
//!    by the remote runtime into an empty state directory, and, after a clean stop, by a
//!    restart on that state directory (which finds it all checkpointed).
//!
//! The windowed count forwards one update per event (Emit::OnUpdate): each event costs a
//! store update, a changelog record and an output record.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord};
use rdkafka::{Offset, TopicPartitionList};
use riffle_processor::runtime::remote::RemoteBackend;
use riffle_processor::runtime::{
    CommitMetadata, DEFAULT_CACHE_MAX_BYTES, Runner, RuntimeConfig, RuntimeStatus,
};
use riffle_processor::{
    I64Serde, JsonSerde, Serde, StreamsBuilder, StringSerde, TimeWindows, Topology, U64Serde,
};
use riffle_storage::MutexRecover;
use serde::{Deserialize, Serialize};

use crate::broker_process::ProcUsage;
use crate::processing::CoLocated;
use crate::report::{self, Row, Scenario, TargetCheck};
use crate::{consume, produce, topic};

/// The scenario's title in the report.
pub const TITLE: &str = "11. Stream processor: windowed count over a backlog, restore";
/// The backlog's topic: one partition, one task.
const INPUT_TOPIC: &str = "proc-events";
/// Events per millisecond of event time in the backlog.
const EVENTS_PER_MS: u64 = 10;
/// The first event's timestamp.
const BASE_TIMESTAMP_MS: i64 = 1_700_000_000_000;
/// The count's tumbling window.
const WINDOW: Duration = Duration::from_secs(10);
/// A run that processes nothing new for this long has stalled.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The restore measurement's application, input and changelog.
const RESTORE_APPLICATION: &str = "restore-bench";
const RESTORE_INPUT: &str = "restore-bench-input";
const RESTORE_CHANGELOG: &str = "restore-bench-counts-changelog";
/// Issue targets.
pub const TARGET_BINARY_EVENTS_PER_S: f64 = 1_000_000.0;
pub const TARGET_JSON_EVENTS_PER_S: f64 = 500_000.0;
pub const TARGET_RESTORE_RATIO: f64 = 0.5;
pub const TARGET_RESTART_RATIO: f64 = 0.05;

/// Value encodings of the backlog.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// 8-byte big-endian values (`U64Serde`).
    Binary,
    /// JSON objects, `{"user":"u-17","amount":1234}` (`JsonSerde`).
    Json,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Binary => "binary",
            Format::Json => "json",
        }
    }

    /// The target for this format, per core.
    pub fn target_events_per_s(self) -> f64 {
        match self {
            Format::Binary => TARGET_BINARY_EVENTS_PER_S,
            Format::Json => TARGET_JSON_EVENTS_PER_S,
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct ProcessorArgs {
    /// Events in the backlog.
    #[arg(long, default_value_t = 2_000_000)]
    pub events: u64,
    /// Distinct keys the events are spread over.
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// Value encoding of the events.
    #[arg(long, value_enum, default_value_t = Format::Binary)]
    pub format: Format,
    /// Leave out the remote runtime's run.
    #[arg(long)]
    pub skip_remote: bool,
    /// Leave out the restore measurement.
    #[arg(long)]
    pub skip_restore: bool,
    /// Keys of the restored store.
    #[arg(long, default_value_t = 1_000_000)]
    pub restore_keys: u64,
    /// The runtimes' record cache (`RuntimeConfig::cache_max_bytes`); 0 turns it off.
    #[arg(long, default_value_t = DEFAULT_CACHE_MAX_BYTES)]
    pub cache_max_bytes: usize,
    /// Partitions of the input topic (a key stays on one), so tasks of the co-located run.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// The co-located runtime's stream threads (`RuntimeConfig::threads`).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// One scenario run's shape.
#[derive(Clone, Debug)]
pub struct ProcessorSpec {
    pub events: u64,
    pub keys: u64,
    pub format: Format,
    pub remote: bool,
    /// Keys of the restored store; `None` skips the restore measurement.
    pub restore_keys: Option<u64>,
    /// The runtimes' record cache bytes.
    pub cache_max_bytes: usize,
    /// Input partitions.
    pub partitions: i32,
    /// The co-located runtime's stream threads.
    pub threads: usize,
}

impl ProcessorArgs {
    pub fn spec(&self) -> ProcessorSpec {
        ProcessorSpec {
            events: self.events.max(1),
            keys: self.keys.max(1),
            format: self.format,
            remote: !self.skip_remote,
            restore_keys: (!self.skip_restore).then_some(self.restore_keys.max(1)),
            cache_max_bytes: self.cache_max_bytes,
            partitions: self.partitions.max(1),
            threads: self.threads.max(1),
        }
    }
}

/// One timed pass over `records` records.
#[derive(Clone, Copy, Debug)]
pub struct Pass {
    pub records: u64,
    pub seconds: f64,
    /// This process's CPU seconds over the pass.
    pub cpu_seconds: f64,
    /// This process's peak RSS over the pass.
    pub peak_rss_bytes: u64,
}

impl Pass {
    pub fn per_s(&self) -> f64 {
        self.records as f64 / self.seconds
    }

    pub fn cpu_s_per_million(&self) -> f64 {
        self.cpu_seconds / (self.records as f64 / 1e6)
    }
}

/// The restore figures.
#[derive(Clone, Copy, Debug)]
pub struct Restore {
    pub keys: u64,
    /// librdkafka reading the whole changelog.
    pub raw: Pass,
    /// `RuntimeStatus::restore_time` of the full restore into an empty state directory.
    pub full_seconds: f64,
    /// Start to a running task, full restore (the group join included).
    pub full_start_seconds: f64,
    /// `RuntimeStatus::restore_time` after a clean stop.
    pub restart_seconds: f64,
    pub restart_start_seconds: f64,
}

impl Restore {
    pub fn rate_ratio(&self) -> f64 {
        (self.keys as f64 / self.full_seconds) / self.raw.per_s()
    }

    pub fn restart_ratio(&self) -> f64 {
        self.restart_seconds / self.full_seconds
    }
}

/// Everything one run measured.
#[derive(Clone, Debug)]
pub struct ProcessorResult {
    pub spec: ProcessorSpec,
    pub raw: Pass,
    pub colocated: Pass,
    pub remote: Option<Pass>,
    pub restore: Option<Restore>,
}

pub fn run_cli(args: ProcessorArgs) -> Result<()> {
    let result = run(&args.spec())?;
    for line in summary(&result) {
        println!("{line}");
    }
    println!("\n{}", report::scenario_markdown(&scenario(&result, None)));
    Ok(())
}

/// The figures as lines of text.
pub fn summary(result: &ProcessorResult) -> Vec<String> {
    let pass = |name: &str, pass: &Pass| {
        format!(
            "{name}: {} records in {:.2} s, {:.0} records/s ({:.2}x raw consume), {:.2} CPU-s \
             per million, peak RSS {:.0} MB",
            pass.records,
            pass.seconds,
            pass.per_s(),
            pass.per_s() / result.raw.per_s(),
            pass.cpu_s_per_million(),
            pass.peak_rss_bytes as f64 / 1e6
        )
    };
    let mut lines = vec![
        format!(
            "format {}, {} events over {} keys, {} partition(s), {} thread(s), cache {} bytes",
            result.spec.format.name(),
            result.spec.events,
            result.spec.keys,
            result.spec.partitions,
            result.spec.threads,
            result.spec.cache_max_bytes
        ),
        pass("raw consume (librdkafka)", &result.raw),
        pass("co-located runtime", &result.colocated),
    ];
    if let Some(remote) = &result.remote {
        lines.push(pass("remote runtime", remote));
    }
    if let Some(restore) = &result.restore {
        lines.push(format!(
            "restore of {} keys: raw consume {:.2} s ({:.0}/s), full restore {:.2} s ({:.2}x \
             raw; {:.2} s from start to a running task), restart after a clean stop {:.4} s \
             ({:.4}x the full restore; {:.2} s from start)",
            restore.keys,
            restore.raw.seconds,
            restore.raw.per_s(),
            restore.full_seconds,
            restore.rate_ratio(),
            restore.full_start_seconds,
            restore.restart_seconds,
            restore.restart_ratio(),
            restore.restart_start_seconds
        ));
    }
    lines
}

pub fn run(spec: &ProcessorSpec) -> Result<ProcessorResult> {
    riffle_broker::cli::init_logging("warn");
    let data_dir = tempfile::tempdir().context("cannot create a data directory")?;
    eprintln!(
        "riffle-bench:   writing a backlog of {} events",
        spec.events
    );
    write_backlog(spec, data_dir.path()).context("writing the backlog")?;

    eprintln!("riffle-bench:   raw consume");
    let broker = CoLocated::start(data_dir.path(), None)?;
    let raw = measure(|| {
        raw_consume(&broker.bootstrap, INPUT_TOPIC, spec.partitions, spec.events)?;
        Ok(spec.events)
    })
    .context("raw consume of the backlog")?;
    broker.stop()?;

    eprintln!("riffle-bench:   co-located runtime");
    let colocated = colocated_run(spec, data_dir.path()).context("the co-located runtime")?;

    let broker = CoLocated::start(data_dir.path(), None)?;
    let remote = if spec.remote {
        eprintln!("riffle-bench:   remote runtime");
        Some(remote_run(spec, &broker).context("the remote runtime")?)
    } else {
        None
    };
    let restore = match spec.restore_keys {
        Some(keys) => Some(restore_run(&broker, keys).context("the restore")?),
        None => None,
    };
    broker.stop()?;
    Ok(ProcessorResult {
        spec: spec.clone(),
        raw,
        colocated,
        remote,
        restore,
    })
}

/// Runs `work` with this process's peak RSS reset first; its CPU time and peak RSS over
/// the run. `work` returns the records it handled.
fn measure(work: impl FnOnce() -> Result<u64>) -> Result<Pass> {
    reset_peak_rss();
    let before = ProcUsage::read(std::process::id())?;
    let started = Instant::now();
    let records = work()?;
    let seconds = started.elapsed().as_secs_f64();
    let after = ProcUsage::read(std::process::id())?;
    Ok(Pass {
        records,
        seconds,
        cpu_seconds: after.cpu_seconds - before.cpu_seconds,
        peak_rss_bytes: after.peak_rss_bytes,
    })
}

/// Resets this process's VmHWM to its current RSS (Linux: `5` to clear_refs).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The JSON event.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Event {
    user: String,
    amount: u64,
}

/// The application id of a runtime's run.
fn application_id(spec: &ProcessorSpec, runtime: &str) -> String {
    format!("proc-bench-{}-{runtime}", spec.format.name())
}

/// The windowed count of `application`: per key and 10 s window, written to
/// `<application>-counts`.
fn topology(spec: &ProcessorSpec, application: &str) -> Result<Topology> {
    let builder = StreamsBuilder::new(application);
    let output = format!("{application}-counts");
    let windows = TimeWindows::tumbling(WINDOW).grace(Duration::ZERO);
    let counts = match spec.format {
        Format::Binary => builder
            .stream(INPUT_TOPIC, StringSerde, U64Serde)
            .group_by_key()
            .windowed_by(windows)
            .count("counts"),
        Format::Json => builder
            .stream(INPUT_TOPIC, StringSerde, JsonSerde::<Event>::new())
            .group_by_key()
            .windowed_by(windows)
            .count("counts"),
    };
    counts.to(&output, StringSerde, I64Serde);
    builder
        .build()
        .map_err(|error| anyhow!("the topology does not build: {error}"))
}

/// Event `sequence`'s value bytes.
fn event_value(format: Format, sequence: u64) -> Result<Vec<u8>> {
    match format {
        Format::Binary => Ok(U64Serde.serialize(INPUT_TOPIC, &sequence)?),
        Format::Json => {
            let event = Event {
                user: format!("u-{}", sequence % 1000),
                amount: sequence % 100_000,
            };
            Ok(JsonSerde::<Event>::new().serialize(INPUT_TOPIC, &event)?)
        }
    }
}

/// Writes the backlog into a broker over `data_dir` that runs no topology, then stops it.
fn write_backlog(spec: &ProcessorSpec, data_dir: &Path) -> Result<()> {
    let broker = CoLocated::start(data_dir, None)?;
    // The events are stamped in 2023: time-based retention (7 days by default) would
    // delete the backlog under a run, as it would on any Kafka broker.
    let keep_forever = [("retention.ms", "-1")];
    topic::create_topic_with_configs(
        &broker.bootstrap,
        INPUT_TOPIC,
        spec.partitions,
        &keep_forever,
    )?;
    for runtime in ["colocated", "remote"] {
        let output = format!("{}-counts", application_id(spec, runtime));
        topic::create_topic_with_configs(
            &broker.bootstrap,
            &output,
            spec.partitions,
            &keep_forever,
        )?;
    }
    let producer: BaseProducer = produce::producer_config(&broker.bootstrap, "all", 5)
        .create()
        .context("cannot create the backlog producer")?;
    for sequence in 0..spec.events {
        let key_index = sequence % spec.keys;
        let key = format!("key-{key_index}");
        let value = event_value(spec.format, sequence)?;
        let timestamp = BASE_TIMESTAMP_MS
            + i64::try_from(sequence / EVENTS_PER_MS).context("a timestamp past i64")?;
        let partition = i32::try_from(key_index % spec.partitions as u64).unwrap_or(0);
        send(
            &producer,
            INPUT_TOPIC,
            partition,
            &key,
            &value,
            Some(timestamp),
        )?;
        if sequence % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    produce::flush(&producer).context("the backlog's flush did not finish")?;
    drop(producer);
    broker.stop()
}

/// Sends one record to `partition` of `topic`, retrying while the client's queue is full.
fn send(
    producer: &BaseProducer,
    topic: &str,
    partition: i32,
    key: &str,
    value: &[u8],
    timestamp_ms: Option<i64>,
) -> Result<()> {
    let mut record: BaseRecord<'_, str, [u8]> = BaseRecord::to(topic)
        .partition(partition)
        .key(key)
        .payload(value);
    if let Some(timestamp_ms) = timestamp_ms {
        record = record.timestamp(timestamp_ms);
    }
    produce::send_retrying(producer, record)
}

/// Reads partitions `0..partitions` of `topic` from their start with librdkafka until
/// `expected` records arrived.
fn raw_consume(bootstrap: &str, topic: &str, partitions: i32, expected: u64) -> Result<()> {
    // As the runtimes' consumers: librdkafka's default 1 s fetch-queue backoff would cap
    // the ceiling at a tenth of what the client reads (README, "Throughput").
    let consumer: BaseConsumer = consume::consumer_config(bootstrap, "proc-bench-raw")
        .set("fetch.queue.backoff.ms", "10")
        .create()
        .context("cannot create the raw consumer")?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .context("cannot build the assignment")?;
    }
    consumer.assign(&assignment).context("assign failed")?;
    let mut received = 0u64;
    let mut last = Instant::now();
    while received < expected {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => {
                received += 1;
                last = Instant::now();
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(error)) => return Err(error).context("raw consume failed"),
            None if last.elapsed() > STALL_TIMEOUT => {
                bail!("raw consume stalled at {received} of {expected} records")
            }
            None => {}
        }
    }
    Ok(())
}

/// Waits until `status` says `expected` records were processed.
fn wait_processed(
    status: &Arc<Mutex<RuntimeStatus>>,
    expected: u64,
    mut check: impl FnMut() -> Result<()>,
) -> Result<()> {
    let mut last_count = 0;
    let mut last_progress = Instant::now();
    loop {
        let processed = status.lock_or_recover().metrics.processed_records;
        if processed >= expected {
            return Ok(());
        }
        if processed > last_count {
            last_count = processed;
            last_progress = Instant::now();
        } else if last_progress.elapsed() > STALL_TIMEOUT {
            bail!("the runtime stalled at {processed} of {expected} records");
        }
        check()?;
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The broker restarted over the backlog with the topology inside.
fn colocated_run(spec: &ProcessorSpec, data_dir: &Path) -> Result<Pass> {
    let application = application_id(spec, "colocated");
    let config = RuntimeConfig {
        cache_max_bytes: spec.cache_max_bytes,
        threads: spec.threads,
        ..RuntimeConfig::default()
    };
    let processor = (topology(spec, &application)?, config);
    let mut broker = CoLocated::start(data_dir, Some(processor))?;
    let mut started = None;
    let mut pass = measure(|| {
        started = Some(broker.wait_for_tasks(spec.partitions)?);
        let status = broker.status_handle()?;
        wait_processed(&status, spec.events, || broker.check_not_failed())?;
        Ok(spec.events)
    })?;
    // From the task's assignment, not from the broker's start.
    if let Some(started) = started {
        pass.seconds = started.elapsed().as_secs_f64().min(pass.seconds);
    }
    broker.stop()?;
    Ok(pass)
}

/// The remote runtime against `broker`, in this process.
fn remote_run(spec: &ProcessorSpec, broker: &CoLocated) -> Result<Pass> {
    let application = application_id(spec, "remote");
    let state_dir = tempfile::tempdir().context("cannot create a state directory")?;
    let config = RuntimeConfig {
        state_dir: Some(state_dir.path().to_path_buf()),
        cache_max_bytes: spec.cache_max_bytes,
        ..RuntimeConfig::default()
    };
    let backend = RemoteBackend::new(&broker.bootstrap, &[])?;
    let runner = Runner::new(topology(spec, &application)?, backend, config);
    let status = runner.status();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = broker.runtime.spawn(runner.run_until(async {
        let _ = stopped.await;
    }));
    let mut started = None;
    let mut pass = measure(|| {
        let deadline = Instant::now() + STALL_TIMEOUT;
        while status.lock_or_recover().tasks.is_empty() {
            if running.is_finished() || Instant::now() >= deadline {
                bail!("the remote runtime never held its task");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        started = Some(Instant::now());
        wait_processed(&status, spec.events, || {
            if running.is_finished() {
                bail!("the remote runtime stopped");
            }
            Ok(())
        })?;
        Ok(spec.events)
    })?;
    if let Some(started) = started {
        pass.seconds = started.elapsed().as_secs_f64().min(pass.seconds);
    }
    let _ = stop.send(());
    broker
        .runtime
        .block_on(running)
        .context("the remote runtime's task")??;
    Ok(pass)
}

/// Counts per key: the store `counts` holds `keys` keys once restored.
fn restore_topology() -> Result<Topology> {
    let builder = StreamsBuilder::new(RESTORE_APPLICATION);
    builder
        .stream(RESTORE_INPUT, StringSerde, StringSerde)
        .group_by_key()
        .count("counts");
    builder
        .build()
        .map_err(|error| anyhow!("the restore topology does not build: {error}"))
}

/// A `keys`-key store's changelog, its raw consume, a full restore and a clean restart.
fn restore_run(broker: &CoLocated, keys: u64) -> Result<Restore> {
    eprintln!("riffle-bench:   restore of a {keys}-key store");
    let bootstrap = &broker.bootstrap;
    topic::create_topic(bootstrap, RESTORE_INPUT, 1)?;
    topic::create_topic(bootstrap, RESTORE_CHANGELOG, 1)?;
    fill_changelog(bootstrap, keys)?;
    commit_restore_point(bootstrap, keys)?;
    let raw = measure(|| {
        raw_consume(bootstrap, RESTORE_CHANGELOG, 1, keys)?;
        Ok(keys)
    })?;
    let state_dir = tempfile::tempdir().context("cannot create a state directory")?;
    let (full_start_seconds, full) = restore_once(broker, state_dir.path())?;
    if full.restored_records != keys {
        bail!(
            "the full restore applied {} of {keys} records",
            full.restored_records
        );
    }
    let (restart_start_seconds, restart) = restore_once(broker, state_dir.path())?;
    if restart.restored_records != 0 {
        bail!(
            "the restart after a clean stop restored {} records",
            restart.restored_records
        );
    }
    Ok(Restore {
        keys,
        raw,
        full_seconds: full.restore_time.as_secs_f64(),
        full_start_seconds,
        restart_seconds: restart.restore_time.as_secs_f64(),
        restart_start_seconds,
    })
}

/// One changelog record per key, a count of 1 (i64 big-endian).
fn fill_changelog(bootstrap: &str, keys: u64) -> Result<()> {
    let producer: BaseProducer = produce::producer_config(bootstrap, "all", 20)
        .create()
        .context("cannot create the changelog producer")?;
    let value = 1i64.to_be_bytes();
    for index in 0..keys {
        send(
            &producer,
            RESTORE_CHANGELOG,
            0,
            &format!("key-{index:07}"),
            &value,
            None,
        )?;
        if index % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    produce::flush(&producer).context("the changelog's flush did not finish")
}

/// Commits input offset 0 with metadata saying the changelog is covered to its end, as a
/// runtime that counted `keys` keys would have.
fn commit_restore_point(bootstrap: &str, keys: u64) -> Result<()> {
    let consumer: BaseConsumer = consume::consumer_config(bootstrap, RESTORE_APPLICATION)
        .create()
        .context("cannot create the committing consumer")?;
    let end = i64::try_from(keys).context("too many keys")?;
    let metadata = CommitMetadata {
        stream_time_ms: 0,
        changelog_end_offsets: BTreeMap::from([(format!("{RESTORE_CHANGELOG}-0"), end)]),
        operator_progress: BTreeMap::new(),
    };
    let mut list = TopicPartitionList::new();
    let mut element = list.add_partition(RESTORE_INPUT, 0);
    element.set_offset(Offset::Offset(0)).context("an offset")?;
    element.set_metadata(metadata.encode());
    consumer
        .commit(&list, CommitMode::Sync)
        .context("cannot commit the restore point")
}

/// Starts the remote runtime on `state_dir`, waits until its task is restored and
/// running, and stops it cleanly; the seconds to the running task and the final status.
fn restore_once(broker: &CoLocated, state_dir: &Path) -> Result<(f64, RuntimeStatus)> {
    let config = RuntimeConfig {
        state_dir: Some(state_dir.to_path_buf()),
        ..RuntimeConfig::default()
    };
    let backend = RemoteBackend::new(&broker.bootstrap, &[])?;
    let runner = Runner::new(restore_topology()?, backend, config);
    let status = runner.status();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let running = broker.runtime.spawn(runner.run_until(async {
        let _ = stopped.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(600);
    while status.lock_or_recover().tasks.is_empty() {
        if running.is_finished() || Instant::now() >= deadline {
            bail!("the task was never restored");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = stop.send(());
    broker
        .runtime
        .block_on(running)
        .context("the runtime's task")??;
    let final_status = status.lock_or_recover().clone();
    Ok((seconds, final_status))
}

/// The report's table: the binary run's raw consume, co-located and remote rows, the JSON
/// run's (if any), and the targets.
pub fn scenario(binary: &ProcessorResult, json: Option<&ProcessorResult>) -> Scenario {
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for result in std::iter::once(binary).chain(json) {
        let format = result.spec.format.name();
        let row = |run: String, pass: &Pass| Row {
            run,
            messages: Some(pass.records),
            messages_per_s: Some(pass.per_s()),
            ratio_to_ceiling: Some(pass.per_s() / result.raw.per_s()),
            peak_rss_mb: Some(pass.peak_rss_bytes as f64 / 1e6),
            note: format!("{:.2} CPU-s per million", pass.cpu_s_per_million()),
            ..Row::default()
        };
        rows.push(row(
            format!("{format}: raw consume, librdkafka (ceiling)"),
            &result.raw,
        ));
        rows.push(row(
            format!("{format}: co-located runtime"),
            &result.colocated,
        ));
        if let Some(remote) = &result.remote {
            rows.push(row(format!("{format}: remote runtime"), remote));
        }
        let target = result.spec.format.target_events_per_s();
        let per_core = 1e6 / result.colocated.cpu_s_per_million();
        targets.push(TargetCheck {
            what: format!(
                "{format}, co-located: >= {:.0} k events/s per core (events per CPU-second \
                 of the process)",
                target / 1e3
            ),
            measured: format!(
                "{:.0} k events per CPU-second ({:.0} k events/s wall)",
                per_core / 1e3,
                result.colocated.per_s() / 1e3
            ),
            met: per_core >= target,
        });
    }
    let mut notes = Vec::new();
    if let Some(restore) = &binary.restore {
        rows.push(Row {
            run: format!("restore: raw consume of a {}-key changelog", restore.keys),
            messages: Some(restore.keys),
            messages_per_s: Some(restore.raw.per_s()),
            ..Row::default()
        });
        rows.push(Row {
            run: "restore: full, remote runtime, empty state directory".into(),
            messages: Some(restore.keys),
            messages_per_s: Some(restore.keys as f64 / restore.full_seconds),
            ratio_to_ceiling: Some(restore.rate_ratio()),
            note: format!(
                "{:.2} s ({:.2} s from start to a running task)",
                restore.full_seconds, restore.full_start_seconds
            ),
            ..Row::default()
        });
        rows.push(Row {
            run: "restore: restart after a clean stop".into(),
            note: format!(
                "{:.4} s restoring ({:.2} s from start to a running task)",
                restore.restart_seconds, restore.restart_start_seconds
            ),
            ..Row::default()
        });
        targets.push(TargetCheck {
            what: format!("full restore >= {TARGET_RESTORE_RATIO}x the raw consume rate"),
            measured: format!("{:.2}x", restore.rate_ratio()),
            met: restore.rate_ratio() >= TARGET_RESTORE_RATIO,
        });
        targets.push(TargetCheck {
            what: format!("restart with checkpoints <= {TARGET_RESTART_RATIO}x the full restore"),
            measured: format!("{:.4}x", restore.restart_ratio()),
            met: restore.restart_ratio() <= TARGET_RESTART_RATIO,
        });
    }
    notes.push(
        "One process holds the broker, the runtime and the clients, so CPU-s per million and \
         peak RSS are the whole process's over each pass (peak RSS reset before each)."
            .to_string(),
    );
    Scenario {
        title: TITLE.to_string(),
        shape: format!(
            "A backlog of {} events over {} keys on one partition (8-byte values; the JSON \
             run's values are small JSON objects), counted per key in 10 s tumbling windows \
             with one update per event to an output topic and the store's changelog, \
             at-least-once. Co-located: the topology inside a broker started by \
             riffle-bench, timed from its task's assignment to the last event processed. \
             Remote: the same topology over rdkafka against that broker. Ceiling: a \
             librdkafka consumer reading the same topic. Restore: a store's changelog \
             written directly, restored by the remote runtime into an empty state \
             directory, then again after a clean stop.",
            binary.spec.events, binary.spec.keys
        ),
        ratio_header: Some("vs raw consume".into()),
        rows,
        targets,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_values_read_back_with_the_topologys_serdes() {
        // Proves both formats write values the topology's source serdes read.
        let binary = event_value(Format::Binary, 42).expect("serializes");
        assert_eq!(binary.len(), 8);
        assert_eq!(
            U64Serde.deserialize(INPUT_TOPIC, &binary).expect("reads"),
            42
        );
        let json = event_value(Format::Json, 1042).expect("serializes");
        let event = JsonSerde::<Event>::new()
            .deserialize(INPUT_TOPIC, &json)
            .expect("reads");
        assert_eq!((event.user.as_str(), event.amount), ("u-42", 1042));
    }
}
