//! `riffle consume TOPIC`: prints records as `kafka-console-consumer.sh` and `kcat -C` do.
//!
//! Start with [`run`]. Partitions are assigned, not subscribed: the command reads every
//! partition (or those of `--partition`) itself, fetching from each partition's leader, and
//! needs no group. With `--group G` it resumes from G's committed offsets and commits its
//! position after every batch it prints, with OffsetCommit outside any group generation, as
//! an `assign()` consumer with a group id does; so a second run continues where the first
//! stopped. Brokers refuse such commits while G has active members.
//!
//! Where each partition starts is in [`start`]; how a record is printed in [`output`].
//! Records of aborted transactions are printed too (read uncommitted); control records
//! never are. Batches are decompressed by `riffle_protocol` (gzip, snappy, lz4, zstd).
//! Writing to a closed pipe (`| head`) ends the run quietly, after the last commit.

mod output;
pub(crate) mod start;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use riffle_protocol::ErrorCode;
use riffle_protocol::record::{RecordBatchView, batches};

use crate::admin_client::BrokerErrorCode;
use crate::admin_client::records::FetchedPartition;
use crate::admin_client::routing::{Brokers, partition_leaders};
use crate::cli_support::datetime::parse_iso8601;
use crate::cli_support::{CommandError, OutputFormat, Progress, finish};
use crate::client_config::ConnectionArgs;
use crate::produce_command::plural;
use crate::topics_command::existing_topic;
use start::{StartAt, start_offsets};

/// How long a Fetch waits at the broker for records before answering empty.
pub const FETCH_MAX_WAIT: Duration = Duration::from_millis(500);
/// How many fetches in a row may fail with a retriable error (a leader moving) before the
/// command gives up.
pub const RETRIABLE_ERRORS_MAX_COUNT: u32 = 10;
/// How long to wait before refreshing metadata after a retriable error.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// `riffle consume`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    riffle consume orders --from-beginning --num 10\n  \
    riffle consume orders --from-time 2024-05-01T12:00:00Z --exit-at-end --format json\n  \
    riffle consume orders --group audit --from-beginning --exit-at-end")]
pub struct ConsumeArgs {
    /// The broker to ask and how to connect.
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// The topic to read.
    pub topic: String,
    /// Read only this partition; repeatable. Every partition without it.
    #[arg(long = "partition", value_name = "N")]
    pub partitions: Vec<i32>,
    /// Start at the first offset of each partition (with --group: of each partition the
    /// group has no committed offset for). Without a start option: only new records.
    #[arg(long, conflicts_with_all = ["offset", "from_time"])]
    pub from_beginning: bool,
    /// Start at offset N of each partition read.
    #[arg(long, value_name = "N", conflicts_with = "from_time")]
    pub offset: Option<i64>,
    /// Start at the first record whose timestamp is at or after TIME, ISO 8601
    /// (2024-05-01T12:00:00Z, 2024-05-01T14:00+02:00, 2024-05-01; UTC without an offset).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from_time: Option<i64>,
    /// Stop after N records.
    #[arg(long, value_name = "N")]
    pub num: Option<u64>,
    /// Stop once every partition read has been read to its end. Without this or --num, the
    /// command waits for new records until interrupted.
    #[arg(long)]
    pub exit_at_end: bool,
    /// Resume from this group's committed offsets and commit the position after each batch
    /// printed (assign and commit, as kafka-console-consumer with --partition; the group
    /// must have no active members).
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// In text output, print each record's key and SEP before its value.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// `text`: the values, one per line; `json`: one object per line with topic,
    /// partition, offset, timestamp, key, value and headers.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

fn parse_time(text: &str) -> Result<i64, String> {
    parse_iso8601(text).map_err(|error| error.to_string())
}

/// Runs `riffle consume`, writing records to standard output.
pub fn run(args: ConsumeArgs) -> ExitCode {
    let result = args
        .connection
        .connect_brokers()
        .map_err(CommandError::from)
        .and_then(|mut brokers| {
            let stdout = std::io::stdout();
            // A progress line on the terminal only when the records go elsewhere.
            let progress = Progress::on_terminal(!stdout.is_terminal());
            let mut consumer = Consumer::start(&mut brokers, &args, progress)?;
            consumer.run(&mut brokers, &mut stdout.lock())
        });
    finish(result)
}

/// A consumer of one topic's assigned partitions.
struct Consumer<'a> {
    args: &'a ConsumeArgs,
    /// Each assigned partition's leader.
    leaders: BTreeMap<i32, i32>,
    /// The next offset to read in each partition.
    positions: BTreeMap<i32, i64>,
    /// The offsets committed for `--group`: found at the start, then as committed.
    committed: BTreeMap<i32, i64>,
    /// Partitions read to their high watermark in the last fetch.
    at_end: BTreeSet<i32>,
    /// Records printed so far.
    printed_count: u64,
    /// Retriable errors in a row.
    retriable_errors_count: u32,
    progress: Progress,
}

/// Why a run of the fetch loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Keep going.
    No,
    /// `--num` records were printed, or every partition is at its end with `--exit-at-end`.
    Done,
    /// The reader went away (a closed pipe).
    OutputClosed,
}

impl<'a> Consumer<'a> {
    /// Finds the partitions and their leaders and where to start in each.
    fn start(
        brokers: &mut Brokers,
        args: &'a ConsumeArgs,
        progress: Progress,
    ) -> Result<Consumer<'a>, CommandError> {
        let leaders = assigned_leaders(brokers, args)?;
        let committed = match &args.group {
            Some(group) => brokers.committed_offsets_in(group, &args.topic)?,
            None => BTreeMap::new(),
        };
        let start = match (args.offset, args.from_time, args.from_beginning) {
            (Some(offset), _, _) => StartAt::Offset(offset),
            (None, Some(time_ms), _) => StartAt::Time(time_ms),
            (None, None, true) => StartAt::Earliest,
            (None, None, false) => StartAt::Latest,
        };
        let positions = start_offsets(brokers, &args.topic, &leaders, start, &committed)?;
        if let Some(missing) = leaders.keys().find(|p| !positions.contains_key(p)) {
            return Err(CommandError::InvalidArgument(format!(
                "the broker gave no start offset for {}-{missing}",
                args.topic
            )));
        }
        Ok(Consumer {
            args,
            leaders,
            // The first commit covers every start position, as a Java consumer's commits
            // cover every assigned partition, so the next run starts there.
            committed,
            positions,
            at_end: BTreeSet::new(),
            printed_count: 0,
            retriable_errors_count: 0,
            progress,
        })
    }

    /// Fetches and prints until `--num` or the end is reached, or the output closes.
    fn run(
        &mut self,
        brokers: &mut Brokers,
        output: &mut impl Write,
    ) -> Result<String, CommandError> {
        let mut stop = self.done();
        while stop == Stop::No {
            stop = self.fetch_once(brokers, output)?;
            self.commit(brokers)?;
            let (printed, num) = (self.printed_count, self.args.num);
            self.progress.update(|| match num {
                Some(num) => format!("Consumed {printed} of {num} records"),
                None => format!("Consumed {printed} record{}", plural(printed)),
            });
            if stop == Stop::No {
                stop = self.done();
            }
        }
        self.progress.finish();
        Ok(String::new())
    }

    /// Whether `--num` or `--exit-at-end` says to stop.
    fn done(&self) -> Stop {
        let enough = self.args.num.is_some_and(|num| self.printed_count >= num);
        let all_at_end = self.args.exit_at_end && self.at_end.len() == self.positions.len();
        match enough || all_at_end {
            true => Stop::Done,
            false => Stop::No,
        }
    }

    /// One Fetch per leader; prints what came back.
    fn fetch_once(
        &mut self,
        brokers: &mut Brokers,
        output: &mut impl Write,
    ) -> Result<Stop, CommandError> {
        let mut by_leader: BTreeMap<i32, BTreeMap<(String, i32), i64>> = BTreeMap::new();
        for (partition, &offset) in &self.positions {
            let leader = self.leaders.get(partition).copied().unwrap_or(-1);
            by_leader
                .entry(leader)
                .or_default()
                .insert((self.args.topic.clone(), *partition), offset);
        }
        for (leader, positions) in by_leader {
            let fetched = brokers.broker(leader)?.fetch(&positions, FETCH_MAX_WAIT)?;
            for partition in fetched {
                if partition.error_code.0 != ErrorCode::None.code() {
                    self.partition_error(brokers, &partition)?;
                    continue;
                }
                self.retriable_errors_count = 0;
                let stop = self.print_partition(&partition, output)?;
                if stop != Stop::No {
                    return Ok(stop);
                }
            }
        }
        Ok(Stop::No)
    }

    /// A partition's fetch error: a retriable one refreshes the leaders (up to
    /// [`RETRIABLE_ERRORS_MAX_COUNT`] in a row); any other ends the run.
    fn partition_error(
        &mut self,
        brokers: &mut Brokers,
        partition: &FetchedPartition,
    ) -> Result<(), CommandError> {
        let code = partition.error_code;
        let retriable = code.known().is_some_and(ErrorCode::is_retriable);
        self.retriable_errors_count += 1;
        if !retriable || self.retriable_errors_count > RETRIABLE_ERRORS_MAX_COUNT {
            let offset = self
                .positions
                .get(&partition.partition)
                .copied()
                .unwrap_or(-1);
            return Err(CommandError::Partition {
                what: format!(
                    "fetching {}-{} at offset {offset}",
                    partition.topic, partition.partition
                ),
                code,
                message: None,
            });
        }
        std::thread::sleep(RETRY_BACKOFF);
        self.leaders = assigned_leaders(brokers, self.args)?;
        Ok(())
    }

    /// Prints the records of one fetched partition from its position on.
    fn print_partition(
        &mut self,
        fetched: &FetchedPartition,
        output: &mut impl Write,
    ) -> Result<Stop, CommandError> {
        let index = fetched.partition;
        let Some(mut position) = self.positions.get(&index).copied() else {
            return Ok(Stop::No);
        };
        let mut text = Vec::new();
        let mut stop = Stop::No;
        for batch in batches(fetched.records.clone()) {
            let batch = batch.map_err(|source| self.records_error(index, position, source))?;
            stop = self.print_batch(&batch, index, &mut position, &mut text)?;
            if stop != Stop::No {
                break;
            }
        }
        if let Err(error) = output.write_all(&text).and_then(|()| output.flush()) {
            return match error.kind() {
                ErrorKind::BrokenPipe => Ok(Stop::OutputClosed),
                _ => Err(CommandError::Stdout(error)),
            };
        }
        self.positions.insert(index, position);
        match position >= fetched.high_watermark {
            true => self.at_end.insert(index),
            false => self.at_end.remove(&index),
        };
        Ok(stop)
    }

    /// Appends the records of `batch` at or after `position` to `text`, advancing it.
    fn print_batch(
        &mut self,
        batch: &RecordBatchView,
        partition: i32,
        position: &mut i64,
        text: &mut Vec<u8>,
    ) -> Result<Stop, CommandError> {
        if batch.last_offset() < *position {
            return Ok(Stop::No);
        }
        if batch.is_control() {
            *position = batch.last_offset() + 1;
            return Ok(Stop::No);
        }
        let records = batch
            .records()
            .map_err(|source| self.records_error(partition, batch.base_offset(), source))?;
        let first = *position;
        for record in records.iter().filter(|record| record.offset >= first) {
            match self.args.format {
                OutputFormat::Text => {
                    output::text_line(record, self.args.key_separator.as_deref(), text)
                }
                OutputFormat::Json => output::json_line(
                    &self.args.topic,
                    partition,
                    batch.timestamp_type(),
                    record,
                    text,
                ),
            }
            *position = record.offset + 1;
            self.printed_count += 1;
            if self.args.num.is_some_and(|num| self.printed_count >= num) {
                return Ok(Stop::Done);
            }
        }
        *position = (*position).max(batch.last_offset() + 1);
        Ok(Stop::No)
    }

    fn records_error(
        &self,
        partition: i32,
        offset: i64,
        source: riffle_protocol::record::RecordError,
    ) -> CommandError {
        CommandError::Records {
            topic: self.args.topic.clone(),
            partition,
            offset,
            source,
        }
    }

    /// Commits the positions that moved since the last commit, with `--group`.
    fn commit(&mut self, brokers: &mut Brokers) -> Result<(), CommandError> {
        let Some(group) = &self.args.group else {
            return Ok(());
        };
        let moved: BTreeMap<(String, i32), i64> = self
            .positions
            .iter()
            .filter(|(partition, offset)| self.committed.get(partition) != Some(offset))
            .map(|(partition, offset)| ((self.args.topic.clone(), *partition), *offset))
            .collect();
        if moved.is_empty() {
            return Ok(());
        }
        let coordinator = brokers.find_coordinator(group)?;
        let outcomes = brokers.broker(coordinator)?.commit_offsets(group, &moved)?;
        for ((topic, partition), outcome) in outcomes {
            if let Err((code, message)) = outcome {
                return Err(commit_error(group, &topic, partition, code, message));
            }
        }
        for ((_, partition), offset) in moved {
            self.committed.insert(partition, offset);
        }
        Ok(())
    }
}

/// A refused commit, with a hint for the usual cause.
fn commit_error(
    group: &str,
    topic: &str,
    partition: i32,
    code: BrokerErrorCode,
    message: Option<String>,
) -> CommandError {
    let active = matches!(
        code.known(),
        Some(ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration)
    );
    let message = message.or_else(|| {
        active.then(|| format!("group '{group}' has active members, which own its offsets"))
    });
    CommandError::Partition {
        what: format!("committing the offset of {topic}-{partition} for group '{group}'"),
        code,
        message,
    }
}

/// The assigned partitions (`--partition`, or all) and their leaders.
fn assigned_leaders(
    brokers: &mut Brokers,
    args: &ConsumeArgs,
) -> Result<BTreeMap<i32, i32>, CommandError> {
    let metadata = brokers.metadata(Some(std::slice::from_ref(&args.topic)))?;
    existing_topic(&metadata, &args.topic)?;
    let leaders = partition_leaders(&metadata, &args.topic);
    if let Some(missing) = args.partitions.iter().find(|p| !leaders.contains_key(p)) {
        return Err(CommandError::InvalidArgument(format!(
            "--partition {missing}: topic '{}' has partitions 0 to {}",
            args.topic,
            leaders.len().saturating_sub(1)
        )));
    }
    let mut assigned = BTreeMap::new();
    for (partition, leader) in leaders {
        if !args.partitions.is_empty() && !args.partitions.contains(&partition) {
            continue;
        }
        let leader = leader.map_err(|code| CommandError::Partition {
            what: format!("finding the leader of {}-{partition}", args.topic),
            code,
            message: None,
        })?;
        assigned.insert(partition, leader);
    }
    Ok(assigned)
}
