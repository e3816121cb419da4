//! `riffle-bench all`: start a broker, run every scenario against it and against the
//! mock-cluster ceiling, measure the raw disk, and write the report and the chart.
//!
//! A scenario that fails is recorded in the report and the rest still run, so one broker
//! bug does not hide every other figure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::broker_process::{BrokerProcess, ProcUsage, find_riffle_binary};
use crate::consume::{self, ConsumeSpec};
use crate::latency::{self, LatencyResult, LatencySpec};
use crate::processing::{self, ProcessingRound, ProcessingSpec};
use crate::processor::{self, Format, ProcessorSpec};
use crate::produce::{self, CommitTiming, Delivery, ProduceSpec, Throughput};
use crate::report::{self, Report, Row, Scenario, TargetCheck};
use crate::rounds::{self, RoundPair};
use crate::topic::Security;
use crate::{chart, connections, disk, startup, tls, topic};

/// Issue targets, checked in the report.
const TARGET_RATIO: f64 = 0.90;
const TARGET_PRODUCE_CPU_S_PER_GB: f64 = 1.0;
const TARGET_CONSUME_CPU_S_PER_GB: f64 = 0.5;
const TARGET_PEAK_RSS_MB: f64 = 150.0;
const TARGET_P99_MS: f64 = 5.0;
const TARGET_P999_MS: f64 = 20.0;
const TARGET_CLEAN_START_MS: f64 = 1000.0;
/// Scenario 7: a transactional producer against an idempotent one, same run.
const TARGET_TRANSACTIONAL_RATIO: f64 = 0.80;
/// Scenario 7's commit interval (of sending time), as the issue gives it.
const TRANSACTIONAL_COMMIT_INTERVAL: Duration = Duration::from_millis(100);
/// Scenario 8's commit interval, for both guarantees: Kafka Streams' exactly_once_v2
/// default, and the runtime's own for exactly-once.
const PROCESSING_COMMIT_INTERVAL: Duration = Duration::from_millis(100);
/// librdkafka's mock cluster trims each partition's log past these (rdkafka_mock.c sets
/// 100,000 messages and 5 MiB); we stay under both with a margin.
const MOCK_PARTITION_MESSAGES_MAX: u64 = 90_000;
const MOCK_PARTITION_BYTES_MAX: u64 = 4_500_000;
/// A generous per-record overhead (record header, varints, batch header share).
const MOCK_RECORD_OVERHEAD_BYTES: u64 = 40;
/// The mock answers a fetch only after fetch.wait.max.ms (no wake-up on produce), so its
/// latency run uses a short wait; with the default 500 ms it measures the timer.
const MOCK_FETCH_WAIT_MAX_MS: u32 = 1;
/// Bytes each pass of the page-cache probe writes.
const PAGE_CACHE_PROBE_BYTES: u64 = 1_000_000_000;
/// Each raw-disk pass stops after this long and reports its rate so far.
const DISK_PASS_MAX_S: f64 = 10.0;

#[derive(clap::Args, Debug, Clone)]
pub struct AllArgs {
    /// The riffle binary; default: next to riffle-bench in target/<profile>/.
    #[arg(long)]
    pub riffle_bin: Option<PathBuf>,
    /// Multiplies every size and duration (1.0 = the full scenarios).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Where REPORT.md and latency.svg go.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Skip scenario 6 (it fills the disk with --scale × 5 GB).
    #[arg(long)]
    pub skip_startup: bool,
    /// Rounds of each throughput scenario (1, 2, 3, 5, 7, 8, 9); the report shows their
    /// medians.
    /// Each round writes its own topics, so the broker's disk holds this many copies.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Run only these scenarios, by number (`--only 7,8`). Scenario 3 reads what 1 and 2
    /// wrote, so asking for 3 runs them too. Default: every scenario.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<u32>,
}

/// Scenario sizes after scaling.
struct Sizes {
    s1_messages: u64,
    s2_bytes: u64,
    s4_seconds: f64,
    s6_partitions: i32,
    s6_bytes: u64,
    s8_backlog_events: u64,
    s8_seconds: f64,
    s11_events: u64,
    s11_restore_keys: u64,
}

impl Sizes {
    fn new(scale: f64) -> Self {
        let scaled = |full: f64, min: f64| (full * scale).max(min);
        Self {
            s1_messages: scaled(2_000_000.0, 1000.0) as u64,
            s2_bytes: scaled(2e9, 1e6) as u64,
            s4_seconds: scaled(30.0, 3.0),
            s6_partitions: scaled(1000.0, 10.0) as i32,
            s6_bytes: scaled(5e9, 1e6) as u64,
            s8_backlog_events: scaled(1_000_000.0, 10_000.0) as u64,
            s8_seconds: scaled(10.0, 3.0),
            s11_events: scaled(2_000_000.0, 10_000.0) as u64,
            s11_restore_keys: scaled(1_000_000.0, 10_000.0) as u64,
        }
    }
}

pub fn run(args: AllArgs) -> Result<()> {
    let binary = find_riffle_binary(args.riffle_bin.as_deref())?;
    let output_dir = args
        .output_dir
        .clone()
        .unwrap_or_else(crate::default_output_dir);
    let data_dir = tempfile::tempdir().context("cannot create a data directory")?;
    let sizes = Sizes::new(args.scale);
    let broker = BrokerProcess::start(&binary, data_dir.path(), &[])?;
    let mock = MockCluster::new(1).context("cannot start the mock cluster")?;
    let mut suite = Suite {
        broker: &broker,
        mock: &mock,
        data_dir: data_dir.path().to_path_buf(),
        rounds: args.rounds,
        report: Report {
            scale: args.scale,
            rounds: args.rounds,
            page_cache_cost: None,
            only: args.only.clone(),
            scenarios: Vec::new(),
            failures: Vec::new(),
        },
        latency: None,
    };
    let suffix = topic::run_suffix();
    eprintln!("riffle-bench: page-cache first-touch cost");
    match disk::page_cache_cost(
        data_dir.path(),
        PAGE_CACHE_PROBE_BYTES,
        Duration::from_secs(report::PAGE_CACHE_PROBE_IDLE_S),
    ) {
        Ok(cost) => suite.report.page_cache_cost = Some(cost),
        Err(error) => suite
            .report
            .failures
            .push(format!("page-cache probe: {error:#}")),
    }

    let s1 = ProduceSpec::scenario_1(format!("s1-{suffix}"), sizes.s1_messages);
    let s2 = ProduceSpec {
        topic: format!("s2-{suffix}"),
        messages: sizes.s2_bytes / 1024,
        value_bytes: 1024,
        partitions: 8,
        acks: "all".into(),
        linger_ms: 5,
        producers: 2,
        delivery: Delivery::Plain,
        security: Security::plaintext(),
    };
    let titled = |title: &str| title.to_string();
    suite.attempt(
        titled("1. Produce, 100 B, 1 partition, acks=all"),
        |suite| suite.produce("1. Produce, 100 B, 1 partition, acks=all", &s1, true),
    );
    suite.attempt(
        titled("2. Produce, 1 KiB, 8 partitions, 2 producers, acks=all"),
        |suite| {
            suite.produce(
                "2. Produce, 1 KiB, 8 partitions, 2 producers, acks=all",
                &s2,
                true,
            )
        },
    );
    for (name, spec) in [
        ("3a. Consume (assign) the topic of 1", &s1),
        ("3b. Consume (assign) the topic of 2", &s2),
    ] {
        suite.attempt(titled(name), |suite| suite.consume(name, spec));
    }
    suite.attempt(titled("3c. Consume (group) the topic of 2"), |suite| {
        suite.consume_group("3c. Consume (group, subscribe) the topic of 2", &s2)
    });
    let s4 = LatencySpec {
        topic: format!("s4-{suffix}"),
        rate_per_s: 10_000,
        seconds: sizes.s4_seconds,
        value_bytes: 1024,
        acks: "all".into(),
        fetch_wait_max_ms: None,
    };
    suite.attempt(titled("4. End-to-end latency"), |suite| suite.latency(&s4));
    for acks in ["1", "0"] {
        let spec = ProduceSpec {
            topic: format!("s5-acks{acks}-{suffix}"),
            acks: acks.into(),
            ..s1.clone()
        };
        let title = format!("5. Produce as 1, acks={acks}");
        suite.attempt(title.clone(), |suite| suite.produce(&title, &spec, false));
    }
    let (s7, s7_reference) = transactional_specs(&s1, &suffix);
    suite.attempt(titled("7. Transactional produce"), |suite| {
        suite.transactional_produce(&s7, &s7_reference)
    });
    let s8 = processing_spec(&sizes);
    suite.attempt(titled("8. Exactly-once processing"), |suite| {
        suite.processing(&s8)
    });
    let Suite {
        mut report,
        latency: latency_runs,
        ..
    } = suite;
    drop(mock);
    broker.stop().context("the broker did not stop cleanly")?;

    if wanted(&args.only, 9) {
        tls_scenario(&binary, &s1, &suffix, args.rounds, &mut report);
    }
    if wanted(&args.only, 10) {
        connections_scenario(&binary, &mut report);
    }
    if wanted(&args.only, 11) {
        processor_scenario(&sizes, &mut report);
    }
    if !args.skip_startup && wanted(&args.only, 6) {
        let startup_dir = tempfile::tempdir().context("cannot create a data directory")?;
        match startup::run(
            &binary,
            startup_dir.path(),
            sizes.s6_partitions,
            (
                sizes.s6_bytes,
                sizes.s6_bytes / startup::UNFLUSHED_TAIL_DIVISOR,
            ),
        ) {
            Ok(result) => report::insert_in_order(&mut report.scenarios, startup_scenario(&result)),
            Err(error) => report.failures.push(format!("6. Start-up: {error:#}")),
        }
    }

    std::fs::create_dir_all(&output_dir)
        .with_context(|| format!("cannot create {}", output_dir.display()))?;
    if let Some((broker_latency, mock_latency)) = &latency_runs {
        let mut series = vec![("riffle", broker_latency)];
        if let Some(mock_latency) = mock_latency {
            series.push(("mock cluster (reference)", mock_latency));
        }
        chart::write(&output_dir.join("latency.svg"), &series)?;
    }
    report::write(&report, &output_dir.join("REPORT.md"))?;
    println!("wrote {}", output_dir.join("REPORT.md").display());
    Ok(())
}

/// Scenario 9: scenario 1's shape over SASL_SSL and PLAINTEXT, on a broker of its own
/// (the suite's has no SASL_SSL listener); recorded in `report` like the others.
fn tls_scenario(binary: &Path, s1: &ProduceSpec, suffix: &str, rounds: u32, report: &mut Report) {
    eprintln!("riffle-bench: {}", tls::TITLE);
    let spec = ProduceSpec {
        topic: format!("s9-{suffix}"),
        ..s1.clone()
    };
    match tls::run(binary, &spec, rounds) {
        Ok(scenario) => report::insert_in_order(&mut report.scenarios, scenario),
        Err(error) => {
            eprintln!("riffle-bench: {} failed: {error:#}", tls::TITLE);
            report.failures.push(format!("{}: {error:#}", tls::TITLE));
        }
    }
}

/// Scenario 10: a round trip with 2,000 stalled connections held, on a broker of its own
/// (it sets a per-IP limit); not scaled, it is short at the size.
fn connections_scenario(binary: &Path, report: &mut Report) {
    eprintln!("riffle-bench: {}", connections::TITLE);
    match connections::run(binary, 2_000, 1_000) {
        Ok(scenario) => report::insert_in_order(&mut report.scenarios, scenario),
        Err(error) => {
            eprintln!("riffle-bench: {} failed: {error:#}", connections::TITLE);
            report
                .failures
                .push(format!("{}: {error:#}", connections::TITLE));
        }
    }
}

/// Scenario 11: the processor's speed on brokers of its own (in this process), binary
/// values with the remote runtime and the restore, then JSON values co-located only.
fn processor_scenario(sizes: &Sizes, report: &mut Report) {
    eprintln!("riffle-bench: {}", processor::TITLE);
    let spec = |format| ProcessorSpec {
        events: sizes.s11_events,
        keys: 10_000,
        format,
        remote: format == Format::Binary,
        restore_keys: (format == Format::Binary).then_some(sizes.s11_restore_keys),
        cache_max_bytes: riffle_processor::runtime::DEFAULT_CACHE_MAX_BYTES,
        partitions: 1,
        threads: 1,
    };
    let measured = processor::run(&spec(Format::Binary)).and_then(|binary| {
        let json = processor::run(&spec(Format::Json))?;
        Ok(processor::scenario(&binary, Some(&json)))
    });
    match measured {
        Ok(scenario) => report::insert_in_order(&mut report.scenarios, scenario),
        Err(error) => {
            eprintln!("riffle-bench: {} failed: {error:#}", processor::TITLE);
            report
                .failures
                .push(format!("{}: {error:#}", processor::TITLE));
        }
    }
}

/// Scenario 7's two producers: scenario 1's shape, transactional with a commit every
/// [`TRANSACTIONAL_COMMIT_INTERVAL`], and idempotent as its reference.
fn transactional_specs(s1: &ProduceSpec, suffix: &str) -> (ProduceSpec, ProduceSpec) {
    let transactional = ProduceSpec {
        topic: format!("s7-transactional-{suffix}"),
        delivery: Delivery::Transactional {
            commit_interval: TRANSACTIONAL_COMMIT_INTERVAL,
        },
        ..s1.clone()
    };
    let reference = ProduceSpec {
        topic: format!("s7-idempotent-{suffix}"),
        delivery: Delivery::Idempotent,
        ..s1.clone()
    };
    (transactional, reference)
}

/// Scenario 8's shape: 100 B events over 1000 keys and 4 partitions, 10,000 events/s in
/// the latency runs, a commit every [`PROCESSING_COMMIT_INTERVAL`].
fn processing_spec(sizes: &Sizes) -> ProcessingSpec {
    ProcessingSpec {
        partitions: 4,
        keys: 1000,
        value_bytes: 100,
        backlog_events: sizes.s8_backlog_events,
        rate_per_s: 10_000,
        seconds: sizes.s8_seconds,
        commit_interval: PROCESSING_COMMIT_INTERVAL,
    }
}

/// What the scenarios share: the broker, the ceiling and the report being filled.
struct Suite<'a> {
    broker: &'a BrokerProcess,
    mock: &'a MockCluster<'static, DefaultProducerContext>,
    data_dir: PathBuf,
    /// Rounds per throughput scenario, at least 1.
    rounds: u32,
    report: Report,
    latency: Option<(LatencyResult, Option<LatencyResult>)>,
}

impl Suite<'_> {
    /// Runs `scenario` unless `--only` leaves it out; records its result or its failure.
    fn attempt(&mut self, title: String, scenario: impl FnOnce(&mut Self) -> Result<Scenario>) {
        if !wanted(&self.report.only, report::title_number(&title)) {
            return;
        }
        eprintln!("riffle-bench: {title}");
        match scenario(self) {
            Ok(done) => self.report.scenarios.push(done),
            Err(error) => {
                eprintln!("riffle-bench: {title} failed: {error:#}");
                self.report.failures.push(format!("{title}: {error:#}"));
            }
        }
    }

    /// Run `work` against the broker, with its CPU and peak RSS over that span.
    fn on_broker<T>(&self, work: impl FnOnce(&str) -> Result<T>) -> Result<(T, ProcUsage)> {
        self.broker.usage_over(|| work(&self.broker.bootstrap))
    }

    /// Run the scenario's rounds, riffle and the ceiling paired ([`rounds::run_paired`]).
    fn paired_rounds(
        &self,
        broker_side: impl FnMut(u32) -> Result<(Throughput, ProcUsage)>,
        ceiling_side: impl FnMut(u32) -> Result<Throughput>,
    ) -> Result<Vec<RoundPair>> {
        rounds::run_paired(self.rounds, broker_side, ceiling_side)
    }

    fn produce(&self, title: &str, spec: &ProduceSpec, check_targets: bool) -> Result<Scenario> {
        let paired = self.paired_rounds(
            |round| {
                let spec = round_spec(spec, round);
                topic::create_topic(&self.broker.bootstrap, &spec.topic, spec.partitions)?;
                self.on_broker(|bootstrap| produce::run(bootstrap, &spec))
            },
            |round| {
                let spec = round_spec(spec, round);
                self.mock
                    .create_topic(&spec.topic, spec.partitions, 1)
                    .context("mock create_topic")?;
                produce::run(&self.mock.bootstrap_servers(), &spec)
            },
        )?;
        let mut scenario = throughput_scenario(title, &paired)?;
        scenario.shape = format!(
            "{} messages of {} B values to {} partition(s), {} producer(s), acks={}, linger.ms={}.",
            spec.messages,
            spec.value_bytes,
            spec.partitions,
            spec.producers,
            spec.acks,
            spec.linger_ms
        );
        // One round's bytes: every round writes the same amount.
        let stored_bytes = spec.messages * spec.value_bytes as u64;
        self.add_raw_disk_rows(&mut scenario, spec, stored_bytes)?;
        if check_targets {
            scenario.targets =
                throughput_targets(&scenario.rows[0], TARGET_PRODUCE_CPU_S_PER_GB, "produced");
        }
        Ok(scenario)
    }

    /// Scenario 7: per round, `transactional` and `reference` (the idempotent producer of
    /// the same shape) on the broker, back to back in alternating order; after the rounds,
    /// a read_committed read-back of every transactional round's topic, which must find
    /// every record: a broker that loses or hides committed records fails the scenario.
    fn transactional_produce(
        &self,
        transactional: &ProduceSpec,
        reference: &ProduceSpec,
    ) -> Result<Scenario> {
        let mut commits = Vec::new();
        let mut reference_cpu_s_per_gb = Vec::new();
        let paired = self.paired_rounds(
            |round| {
                let spec = round_spec(transactional, round);
                topic::create_topic(&self.broker.bootstrap, &spec.topic, spec.partitions)?;
                let ((run, round_commits), usage) =
                    self.on_broker(|bootstrap| produce::run_with_commits(bootstrap, &spec))?;
                commits.extend(round_commits);
                Ok((run, usage))
            },
            |round| {
                let spec = round_spec(reference, round);
                topic::create_topic(&self.broker.bootstrap, &spec.topic, spec.partitions)?;
                let (run, usage) = self.on_broker(|bootstrap| produce::run(bootstrap, &spec))?;
                let moved_gb = run.value_bytes_total as f64 / 1e9;
                reference_cpu_s_per_gb.push(usage.cpu_seconds / moved_gb);
                Ok(run)
            },
        )?;
        // After the rounds, so each round's two runs stay back to back.
        for round in 0..self.rounds {
            let spec = round_spec(transactional, round);
            consume::check_read_committed(
                &self.broker.bootstrap,
                &spec.topic,
                spec.partitions,
                spec.messages,
            )
            .with_context(|| format!("round {} of {}", round + 1, self.rounds))?;
        }
        let mut scenario = transactional_scenario(&paired, &reference_cpu_s_per_gb, &commits)?;
        scenario.shape = format!(
            "{} messages of {} B values to {} partition(s), {} producer(s), acks=all, \
             linger.ms={}, by a transactional producer committing after every {} ms of \
             sending and once at the end, against an idempotent producer \
             (enable.idempotence=true) of the same shape on the same broker, paired round by \
             round.",
            transactional.messages,
            transactional.value_bytes,
            transactional.partitions,
            transactional.producers,
            transactional.linger_ms,
            TRANSACTIONAL_COMMIT_INTERVAL.as_millis()
        );
        Ok(scenario)
    }

    /// Scenario 8: co-located brokers of its own (not the suite's), both guarantees per
    /// round in alternating order.
    fn processing(&self, spec: &ProcessingSpec) -> Result<Scenario> {
        let rounds = processing::run(spec, self.rounds)?;
        processing_scenario(spec, &rounds)
    }

    /// The raw-disk rows, measured once after all rounds, in the broker's average stored
    /// batch size over the rounds' topics.
    fn add_raw_disk_rows(
        &self,
        scenario: &mut Scenario,
        spec: &ProduceSpec,
        stored_bytes: u64,
    ) -> Result<()> {
        let block_bytes = self.stored_batch_bytes(spec)?;
        let rate = disk::measure(&self.data_dir, stored_bytes, block_bytes, DISK_PASS_MAX_S)?;
        scenario.rows.push(Row {
            run: format!("raw disk, {block_bytes} B blocks, fdatasync each"),
            mb_per_s: Some(rate.bytes_per_s_synced / 1e6),
            ..Row::default()
        });
        scenario.rows.push(Row {
            run: format!("raw disk, {block_bytes} B blocks, one fdatasync"),
            mb_per_s: Some(rate.bytes_per_s_unsynced / 1e6),
            ..Row::default()
        });
        scenario.notes.push(format!(
            "Raw disk rows: one round's value bytes written to the data directory's disk in the \
             broker's average stored batch size ({block_bytes} B, read back from its .log files, \
             the mean over the rounds' topics), measured once after the rounds; each pass is \
             capped at {DISK_PASS_MAX_S} s."
        ));
        Ok(())
    }

    /// The mean of each round topic's average stored batch size; 16 KiB if none was found.
    fn stored_batch_bytes(&self, spec: &ProduceSpec) -> Result<u64> {
        let mut per_round_bytes = Vec::new();
        for round in 0..self.rounds {
            let topic = round_spec(spec, round).topic;
            if let Some(bytes) = disk::average_batch_bytes(&self.data_dir, &topic)? {
                per_round_bytes.push(bytes);
            }
        }
        let found = per_round_bytes.len() as u64;
        Ok(per_round_bytes
            .iter()
            .sum::<u64>()
            .checked_div(found)
            .unwrap_or(16 * 1024))
    }

    /// Scenario 3 with assign(): round k reads what produce round k wrote to riffle.
    fn consume(&self, title: &str, written: &ProduceSpec) -> Result<Scenario> {
        let paired = self.paired_rounds(
            |round| {
                let spec = consume_spec(&round_spec(written, round));
                self.on_broker(|bootstrap| consume::run(bootstrap, &spec))
            },
            |round| self.consume_ceiling(&round_spec(written, round)),
        )?;
        let mut scenario = throughput_scenario(title, &paired)?;
        scenario.shape = format!(
            "{} messages of {} B from {} partition(s), from the start, one BaseConsumer with assign().",
            written.messages, written.value_bytes, written.partitions
        );
        let ceiling_messages = self.ceiling_messages(written);
        if ceiling_messages < written.messages {
            scenario.notes.push(format!(
                "The mock cluster keeps at most {MOCK_PARTITION_MESSAGES_MAX} messages or \
                 {MOCK_PARTITION_BYTES_MAX} B per partition (librdkafka's mock log limits), so \
                 its consume ceiling was measured on {ceiling_messages} messages written to a \
                 fresh mock topic of the same shape each round; a shorter run carries more of \
                 the client's fixed start-up cost, so this ceiling is if anything low."
            ));
        }
        scenario.targets =
            throughput_targets(&scenario.rows[0], TARGET_CONSUME_CPU_S_PER_GB, "consumed");
        Ok(scenario)
    }

    /// Scenario 3 with subscribe(): a fresh group per round and side joins, then reads from
    /// the start. Round k's ceiling topic is the one `consume` wrote to the mock in its
    /// round k for the same shape.
    fn consume_group(&self, title: &str, written: &ProduceSpec) -> Result<Scenario> {
        let ceiling_messages = self.ceiling_messages(written);
        let mut broker_joins_ms = Vec::new();
        let mut ceiling_joins_ms = Vec::new();
        let paired = self.paired_rounds(
            |round| {
                let spec = consume_spec(&round_spec(written, round));
                let ((run, join), usage) =
                    self.on_broker(|bootstrap| consume::run_group(bootstrap, &spec))?;
                broker_joins_ms.push(join.as_secs_f64() * 1000.0);
                Ok((run, usage))
            },
            |round| {
                let spec = ConsumeSpec {
                    topics: vec![(
                        ceiling_topic(&round_spec(written, round)),
                        written.partitions,
                    )],
                    messages: ceiling_messages,
                };
                let (run, join) = consume::run_group(&self.mock.bootstrap_servers(), &spec)?;
                ceiling_joins_ms.push(join.as_secs_f64() * 1000.0);
                Ok(run)
            },
        )?;
        let mut scenario = throughput_scenario(title, &paired)?;
        scenario.shape = format!(
            "{} messages of {} B from {} partition(s), one BaseConsumer with subscribe() in a \
             fresh group; timed from subscribe(), so the join is included.",
            written.messages, written.value_bytes, written.partitions
        );
        scenario.notes.push(format!(
            "Subscribe to first message (median over rounds): riffle {:.0} ms (includes the \
             broker's group.initial.rebalance.delay, 3 s as shipped), mock cluster {:.0} ms. \
             The mock ceiling read {ceiling_messages} messages (its per-partition log limits).",
            rounds::median(&broker_joins_ms).unwrap_or(f64::NAN),
            rounds::median(&ceiling_joins_ms).unwrap_or(f64::NAN)
        ));
        scenario.targets =
            throughput_targets(&scenario.rows[0], TARGET_CONSUME_CPU_S_PER_GB, "consumed");
        Ok(scenario)
    }

    /// How much of `written`'s shape the mock can hold (librdkafka's mock log limits).
    fn ceiling_messages(&self, written: &ProduceSpec) -> u64 {
        let record_bytes = written.value_bytes as u64 + MOCK_RECORD_OVERHEAD_BYTES;
        let per_partition =
            MOCK_PARTITION_MESSAGES_MAX.min(MOCK_PARTITION_BYTES_MAX / record_bytes);
        written
            .messages
            .min(per_partition * written.partitions.max(1) as u64)
    }

    /// Consume from the mock what it can hold of `written`'s shape: librdkafka's mock
    /// drops a partition's oldest messages past its log limits.
    fn consume_ceiling(&self, written: &ProduceSpec) -> Result<Throughput> {
        let mock_spec = ProduceSpec {
            topic: ceiling_topic(written),
            messages: self.ceiling_messages(written),
            ..written.clone()
        };
        self.mock
            .create_topic(&mock_spec.topic, mock_spec.partitions, 1)
            .context("mock create_topic")?;
        let bootstrap = self.mock.bootstrap_servers();
        produce::run(&bootstrap, &mock_spec)?;
        consume::run(&bootstrap, &consume_spec(&mock_spec))
    }

    fn latency(&mut self, spec: &LatencySpec) -> Result<Scenario> {
        topic::create_topic(&self.broker.bootstrap, &spec.topic, 1)?;
        let (broker_run, usage) = self.on_broker(|bootstrap| latency::run(bootstrap, spec))?;
        self.mock
            .create_topic(&spec.topic, 1, 1)
            .context("mock create_topic")?;
        let mock_spec = LatencySpec {
            fetch_wait_max_ms: Some(MOCK_FETCH_WAIT_MAX_MS),
            ..spec.clone()
        };
        // The mock is no real latency ceiling (see MOCK_FETCH_WAIT_MAX_MS): a failure there
        // is a note, not a lost scenario.
        let ceiling = latency::run(&self.mock.bootstrap_servers(), &mock_spec);
        let moved_gb = broker_run.sorted_us.len() as f64 * spec.value_bytes as f64 / 1e9;
        let rate_row = |run: &str, result: &LatencyResult| Row {
            run: run.into(),
            messages: Some(result.sorted_us.len() as u64),
            messages_per_s: Some(result.sent as f64 / result.elapsed.as_secs_f64()),
            mb_per_s: Some(
                result.sent as f64 * spec.value_bytes as f64 / 1e6 / result.elapsed.as_secs_f64(),
            ),
            latency_ms: Some(Row::latency(result)),
            ..Row::default()
        };
        let mut broker_row = rate_row("riffle", &broker_run);
        broker_row.cpu_s_per_gb = Some(usage.cpu_seconds / moved_gb);
        broker_row.peak_rss_mb = Some(usage.peak_rss_bytes as f64 / 1e6);
        let [_, p99, p999, _] = Row::latency(&broker_run);
        let scenario = Scenario {
            title: "4. End-to-end latency, 1 KiB, acks=all, fixed rate".into(),
            shape: format!(
                "{} msg/s for {:.0} s to 1 partition, linger.ms=0; send time in the value, measured at \
                 an assign() consumer in the same process. Every message counts (no warm-up cut).",
                spec.rate_per_s, spec.seconds
            ),
            ratio_header: None,
            rows: vec![broker_row],
            targets: vec![
                TargetCheck {
                    what: format!("p99 <= {TARGET_P99_MS} ms"),
                    measured: format!("{p99:.2} ms"),
                    met: p99 <= TARGET_P99_MS,
                },
                TargetCheck {
                    what: format!("p99.9 <= {TARGET_P999_MS} ms"),
                    measured: format!("{p999:.2} ms"),
                    met: p999 <= TARGET_P999_MS,
                },
            ],
            notes: vec![format!(
                "Chart: latency.svg. The mock-cluster row uses fetch.wait.max.ms={MOCK_FETCH_WAIT_MAX_MS} \
                 because the mock answers a fetch only when that timer expires; it is a reference, \
                 not a ceiling: it holds batches in its own process with the client."
            )],
        };
        let mut scenario = scenario;
        match ceiling {
            Ok(ceiling) => {
                scenario
                    .rows
                    .push(rate_row("mock-cluster reference", &ceiling));
                self.latency = Some((broker_run, Some(ceiling)));
            }
            Err(error) => {
                scenario
                    .notes
                    .push(format!("The mock-cluster run failed: {error:#}"));
                self.latency = Some((broker_run, None));
            }
        }
        Ok(scenario)
    }
}

/// Whether scenario `number` runs under `--only` (empty: all); 1 and 2 run for 3, which
/// reads their topics.
fn wanted(only: &[u32], number: u32) -> bool {
    only.is_empty() || only.contains(&number) || (number <= 2 && only.contains(&3))
}

/// `spec` as produce round `round` writes it: a topic of its own per round, on riffle and
/// on the mock alike.
fn round_spec(spec: &ProduceSpec, round: u32) -> ProduceSpec {
    ProduceSpec {
        topic: format!("{}-r{round}", spec.topic),
        ..spec.clone()
    }
}

/// The mock topic a consume ceiling reads for `written`'s shape.
fn ceiling_topic(written: &ProduceSpec) -> String {
    format!("{}-ceiling", written.topic)
}

/// Read back all of what `written` produced.
fn consume_spec(written: &ProduceSpec) -> ConsumeSpec {
    ConsumeSpec {
        topics: vec![(written.topic.clone(), written.partitions)],
        messages: written.messages,
    }
}

/// The riffle and ceiling rows of a throughput scenario from its rounds' medians, and the
/// note listing every round.
fn throughput_scenario(title: &str, rounds: &[RoundPair]) -> Result<Scenario> {
    let rows = rounds::median_rows(rounds).context("no rounds were run")?;
    Ok(Scenario {
        title: title.into(),
        rows: rows.into(),
        notes: rounds::rounds_note(rounds).into_iter().collect(),
        ..Scenario::default()
    })
}

/// Scenario 7's rows, target and notes: the transactional row against the idempotent
/// reference, each with its broker CPU per GB, and the commits' timings.
fn transactional_scenario(
    rounds: &[RoundPair],
    reference_cpu_s_per_gb: &[f64],
    commits: &[CommitTiming],
) -> Result<Scenario> {
    let [mut transactional_row, mut reference_row] =
        rounds::median_rows(rounds).context("no rounds were run")?;
    transactional_row.run = "riffle, transactional".into();
    reference_row.run = "riffle, idempotent (reference)".into();
    reference_row.cpu_s_per_gb = rounds::median(reference_cpu_s_per_gb);
    let ratio = transactional_row.ratio_to_ceiling.unwrap_or(0.0);
    let listed: Vec<String> = rounds
        .iter()
        .zip(reference_cpu_s_per_gb)
        .map(|(round, reference_cpu)| {
            format!(
                "{:.0}% {:.2}/{reference_cpu:.2}",
                round.ratio_to_ceiling() * 100.0,
                round.cpu_s_per_gb()
            )
        })
        .collect();
    let mut notes = Vec::new();
    // As rounds::rounds_note: a single round's figures are the table's.
    if rounds.len() > 1 {
        notes.push(format!(
            "Rounds (transactional vs idempotent, broker CPU-s/GB transactional/idempotent): \
             {}; medians shown.",
            listed.join(", ")
        ));
    }
    notes.extend([
        format!(
            "Commits over all rounds: {}. Each commit is a flush (until the transaction's \
             last records are acknowledged) and then commit_transaction, whose time is \
             EndTxn's round trip.",
            produce::commits_summary(commits)
        ),
        "After the rounds, a consumer with isolation.level=read_committed read each \
         transactional round's topic from the start and found exactly the records produced \
         (not timed)."
            .into(),
    ]);
    Ok(Scenario {
        title: "7. Transactional produce, 100 B, 1 partition, a commit every 100 ms".into(),
        ratio_header: Some("vs idempotent".into()),
        rows: vec![transactional_row, reference_row],
        targets: vec![TargetCheck {
            what: format!(
                ">= {:.0}% of the idempotent producer",
                TARGET_TRANSACTIONAL_RATIO * 100.0
            ),
            measured: format!("{:.0}%", ratio * 100.0),
            met: ratio >= TARGET_TRANSACTIONAL_RATIO,
        }],
        notes,
        ..Scenario::default()
    })
}

/// Scenario 8's rows: each guarantee's throughput over the backlog (median of the rounds,
/// exactly-once's ratio the median of the per-round ratios) and its latency percentiles
/// over every round's outputs.
fn processing_scenario(spec: &ProcessingSpec, rounds: &[ProcessingRound]) -> Result<Scenario> {
    if rounds.is_empty() {
        bail!("no rounds were run");
    }
    let [at_least_once_rate, exactly_once_rate, ratio] = processing::throughput_medians(rounds);
    let backlog_row = |run: &str, rate: Option<f64>, ratio: Option<f64>| Row {
        run: run.into(),
        messages: Some(spec.backlog_events),
        messages_per_s: rate,
        mb_per_s: rate.map(|rate| rate * spec.value_bytes as f64 / 1e6),
        ratio_to_ceiling: ratio,
        ..Row::default()
    };
    let latency_row = |run: String, pick: fn(&ProcessingRound) -> &LatencyResult| {
        let pooled = pool_latencies(rounds.iter().map(pick));
        Row {
            run,
            messages: Some(pooled.sorted_us.len() as u64),
            messages_per_s: Some(pooled.sent as f64 / pooled.elapsed.as_secs_f64()),
            mb_per_s: Some(
                pooled.sent as f64 * spec.value_bytes as f64 / 1e6 / pooled.elapsed.as_secs_f64(),
            ),
            latency_ms: Some(Row::latency(&pooled)),
            ..Row::default()
        }
    };
    let rate = spec.rate_per_s;
    let rows = vec![
        backlog_row("at-least-once, backlog", at_least_once_rate, Some(1.0)),
        backlog_row("exactly-once, backlog", exactly_once_rate, ratio),
        latency_row(format!("at-least-once, {rate} events/s"), |round| {
            &round.at_least_once.latency
        }),
        latency_row(format!("exactly-once, {rate} events/s"), |round| {
            &round.exactly_once.latency
        }),
    ];
    Ok(Scenario {
        title: format!(
            "8. Exactly-once processing against at-least-once, co-located windowed count, a \
             commit every {} ms",
            spec.commit_interval.as_millis()
        ),
        shape: format!(
            "A topology running inside a broker (riffle_broker::embedded, started by riffle-bench \
             on a runtime of its own): {} keys of {} B events on {} partitions, counted per key \
             in 1 s tumbling windows, one output per event. Throughput: a backlog of {} events \
             written before the topology starts, timed from the topology holding its tasks to \
             the last output seen by a read_committed consumer. Latency: {rate} events/s for \
             {:.0} s on a fresh broker, each event's send time to its output at a \
             read_committed consumer. Both guarantees commit every {} ms; per round each \
             measurement runs both, in alternating order.",
            spec.keys,
            spec.value_bytes,
            spec.partitions,
            spec.backlog_events,
            spec.seconds,
            spec.commit_interval.as_millis()
        ),
        ratio_header: Some("vs at-least-once".into()),
        rows,
        targets: Vec::new(),
        notes: processing_notes(rounds),
    })
}

/// Every round's figures, and what the topologies committed and aborted.
fn processing_notes(rounds: &[ProcessingRound]) -> Vec<String> {
    let listed: Vec<String> = rounds
        .iter()
        .map(|round| {
            format!(
                "{:.0}% {:.1}/{:.1} ms",
                round.throughput_ratio() * 100.0,
                round.at_least_once.latency.quantile_ms(0.99),
                round.exactly_once.latency.quantile_ms(0.99)
            )
        })
        .collect();
    let sum = |pick: fn(&ProcessingRound) -> u64| rounds.iter().map(pick).sum::<u64>();
    let mut notes = Vec::new();
    if rounds.len() > 1 {
        notes.push(format!(
            "Rounds (exactly-once throughput vs at-least-once, p99 at-least-once/exactly-once): \
             {}; medians shown for throughput, percentiles over every round's outputs for \
             latency.",
            listed.join(", ")
        ));
    }
    let [at_least_once_cpu, exactly_once_cpu] = processing::cpu_seconds_per_million_events(rounds);
    notes.push(format!(
        "CPU over the backlog runs (median): at-least-once {:.2}, exactly-once {:.2} CPU-s \
         per million events, for riffle-bench's whole process (broker, topology and the \
         output consumer share it here, so there is no broker-only figure).",
        at_least_once_cpu.unwrap_or(f64::NAN),
        exactly_once_cpu.unwrap_or(f64::NAN)
    ));
    notes.push(format!(
        "Commits over all runs: at-least-once {}, exactly-once {} (each a transaction), of \
         which aborted: {}.",
        sum(|round| round.at_least_once.commits),
        sum(|round| round.exactly_once.commits),
        sum(|round| round.exactly_once.aborted_transactions)
    ));
    notes
}

/// One latency result over several runs: all their samples, sends and time.
fn pool_latencies<'a>(results: impl Iterator<Item = &'a LatencyResult>) -> LatencyResult {
    let mut pooled = LatencyResult {
        sorted_us: Vec::new(),
        sent: 0,
        elapsed: Duration::ZERO,
    };
    for result in results {
        pooled.sorted_us.extend_from_slice(&result.sorted_us);
        pooled.sent += result.sent;
        pooled.elapsed += result.elapsed;
    }
    pooled.sorted_us.sort_unstable();
    pooled
}

fn throughput_targets(row: &Row, cpu_target: f64, verb: &str) -> Vec<TargetCheck> {
    let ratio = row.ratio_to_ceiling.unwrap_or(0.0);
    let cpu = row.cpu_s_per_gb.unwrap_or(f64::INFINITY);
    let rss = row.peak_rss_mb.unwrap_or(f64::INFINITY);
    vec![
        TargetCheck {
            what: format!(">= {:.0}% of ceiling", TARGET_RATIO * 100.0),
            measured: format!("{:.0}%", ratio * 100.0),
            met: ratio >= TARGET_RATIO,
        },
        TargetCheck {
            what: format!("<= {cpu_target} CPU-s per GB {verb}"),
            measured: format!("{cpu:.2}"),
            met: cpu <= cpu_target,
        },
        TargetCheck {
            what: format!("peak RSS < {TARGET_PEAK_RSS_MB} MB"),
            measured: format!("{rss:.0} MB"),
            met: rss < TARGET_PEAK_RSS_MB,
        },
    ]
}

fn startup_scenario(result: &startup::StartupResult) -> Scenario {
    let clean_ms = result.after_clean_stop.as_secs_f64() * 1000.0;
    let kill_ms = result.after_kill9.as_secs_f64() * 1000.0;
    Scenario {
        title: "6. Start-up to first Metadata answer".into(),
        shape: format!(
            "{} partitions, {:.2} GB of values on disk (acks=1, 16 KiB values); spawn to a Metadata v0 \
             answer on a fresh TCP connection.",
            result.partitions,
            result.value_bytes_total as f64 / 1e9
        ),
        ratio_header: None,
        rows: vec![
            Row {
                run: "after clean stop".into(),
                note: format!("{clean_ms:.0} ms"),
                ..Row::default()
            },
            Row {
                run: "after kill -9".into(),
                note: format!("{kill_ms:.0} ms"),
                ..Row::default()
            },
        ],
        targets: vec![TargetCheck {
            what: format!("clean start < {TARGET_CLEAN_START_MS} ms"),
            measured: format!("{clean_ms:.0} ms"),
            met: clean_ms < TARGET_CLEAN_START_MS,
        }],
        notes: vec![format!(
            "Before the kill -9, a tail of {:.3} GB was produced with acks=1 and never fsynced; \
             the next start recovers it. One tail size here; `riffle-bench startup \
             --unflushed-tail-bytes N` varies it (FINDINGS.md has such a series).",
            result.unflushed_tail_bytes as f64 / 1e9
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_selects_scenarios_and_what_3_reads() {
        // Proves an empty --only runs everything, a list runs just its numbers, and 3
        // brings 1 and 2 (it consumes their topics) but nothing else.
        assert!((1..=9).all(|number| wanted(&[], number)));
        assert!(wanted(&[7, 8], 7));
        assert!(!wanted(&[7, 8], 1));
        assert!(!wanted(&[7, 8], 6));
        assert!(wanted(&[3], 1));
        assert!(wanted(&[3], 2));
        assert!(!wanted(&[3], 4));
    }
}
