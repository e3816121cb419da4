//! `riffle groups reset-offsets GROUP --topic T --to-earliest|--to-latest|--to-datetime
//! TIME|--to-offset N|--shift-by N [--execute]`, as `kafka-consumer-groups.sh
//! --reset-offsets` does it: a dry run unless `--execute` is given, and only for a group
//! without active members (state Empty, or Dead for a group that has none yet), since the
//! members of an active group own its offsets.
//!
//! ```text
//! GROUP  TOPIC   PARTITION  CURRENT-OFFSET  NEW-OFFSET
//! audit  orders  0          40              0
//! audit  orders  1          -               0
//!
//! Dry run: nothing was committed. Add --execute to commit these offsets.
//! ```
//!
//! New offsets stay within each partition's log (`--to-offset` and `--shift-by` are
//! clamped to the earliest and latest offsets, as Kafka clamps them); `--to-datetime` past
//! the last record gives the latest offset; `--shift-by` needs a committed offset. Offsets
//! are committed with OffsetCommit outside any generation, through the coordinator.

use std::collections::BTreeMap;

use clap::{ArgGroup, Args};
use serde::Serialize;

use riffle_protocol::ErrorCode;

use crate::admin_client::records::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use crate::admin_client::routing::{Brokers, partition_leaders};
use crate::cli_support::datetime::parse_iso8601;
use crate::cli_support::output::to_json;
use crate::cli_support::{CommandError, OutputFormat, format_table};
use crate::topics_command::existing_topic;

/// `riffle groups reset-offsets`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true)
    .args(["to_earliest", "to_latest", "to_datetime", "to_offset", "shift_by"])))]
#[command(after_help = "Examples:\n  \
    riffle groups reset-offsets audit --topic orders --to-earliest\n  \
    riffle groups reset-offsets audit --topic orders:0,1 --shift-by -10 --execute\n  \
    riffle groups reset-offsets audit --topic orders --to-datetime 2024-05-01T00:00:00Z --execute")]
pub struct ResetOffsetsArgs {
    /// The group; it must have no active members.
    pub group: String,
    /// The topic, or TOPIC:P,P,... for some of its partitions.
    #[arg(long, value_name = "TOPIC[:PARTITIONS]")]
    pub topic: String,
    /// To the first offset still in each partition.
    #[arg(long)]
    pub to_earliest: bool,
    /// To the end of each partition: the group skips every record there now.
    #[arg(long)]
    pub to_latest: bool,
    /// To the first record at or after TIME, ISO 8601 (2024-05-01T12:00:00Z; UTC without
    /// an offset); the end when there is none.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to_datetime: Option<i64>,
    /// To offset N in each partition.
    #[arg(long, value_name = "N")]
    pub to_offset: Option<i64>,
    /// Move each committed offset by N (negative: back), within the log.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// Commit the new offsets. Without it, only show them (a dry run).
    #[arg(long)]
    pub execute: bool,
}

fn parse_time(text: &str) -> Result<i64, String> {
    parse_iso8601(text).map_err(|error| error.to_string())
}

/// The states in which a group's offsets may be reset.
const INACTIVE_STATES: [&str; 2] = ["Empty", "Dead"];

/// The columns of the table.
const HEADERS: [&str; 5] = [
    "GROUP",
    "TOPIC",
    "PARTITION",
    "CURRENT-OFFSET",
    "NEW-OFFSET",
];

/// One partition's reset, as `--format json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedReset {
    /// The partition.
    pub partition: i32,
    /// The committed offset, if any.
    pub current_offset: Option<i64>,
    /// The offset to commit.
    pub new_offset: i64,
}

/// A partition's log bounds and committed offset: what a reset is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// The first offset in the log.
    pub earliest: i64,
    /// The offset after the last record.
    pub latest: i64,
    /// The group's committed offset, if any.
    pub committed: Option<i64>,
    /// What `--to-datetime` found: an offset, or -1 for none.
    pub at_time: Option<i64>,
}

/// Runs `riffle groups reset-offsets`; returns what to print.
///
/// # Errors
/// An active group, an unknown topic or partition, `--shift-by` without a committed
/// offset, or a request or commit error.
pub fn reset_offsets(
    brokers: &mut Brokers,
    args: &ResetOffsetsArgs,
    format: OutputFormat,
) -> Result<String, CommandError> {
    let (topic, asked) = parse_topic(&args.topic)?;
    check_inactive(brokers, &args.group)?;
    let offsets = partition_offsets(brokers, args, &topic, &asked)?;
    let mut planned = Vec::new();
    for (partition, offsets) in &offsets {
        planned.push(PlannedReset {
            partition: *partition,
            current_offset: offsets.committed,
            new_offset: new_offset(args, offsets)
                .map_err(|reason| reason_error(&topic, *partition, reason))?,
        });
    }
    if args.execute {
        commit(brokers, &args.group, &topic, &planned)?;
    }
    Ok(match format {
        OutputFormat::Json => to_json(&serde_json::json!({
            "group": args.group,
            "topic": topic,
            "executed": args.execute,
            "partitions": planned,
        })),
        OutputFormat::Text => text(&args.group, &topic, &planned, args.execute),
    })
}

/// `TOPIC` or `TOPIC:P,P` as the topic and its asked partitions (none: all).
fn parse_topic(text: &str) -> Result<(String, Vec<i32>), CommandError> {
    let Some((topic, partitions)) = text.rsplit_once(':') else {
        return Ok((text.to_owned(), Vec::new()));
    };
    let partitions = partitions
        .split(',')
        .map(|partition| partition.trim().parse::<i32>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            CommandError::InvalidArgument(format!(
                "--topic {text}: the partitions after ':' must be numbers separated by commas"
            ))
        })?;
    Ok((topic.to_owned(), partitions))
}

/// Refuses a group with active members, as Kafka does.
fn check_inactive(brokers: &mut Brokers, group: &str) -> Result<(), CommandError> {
    let described = brokers.coordinator(group)?.describe_group(group)?;
    let unknown = described.error_code == ErrorCode::GroupIdNotFound.code();
    if unknown || INACTIVE_STATES.contains(&described.group_state.as_str()) {
        return Ok(());
    }
    Err(CommandError::InvalidArgument(format!(
        "offsets can only be reset while group '{group}' has no active members, but its \
         state is {} with {} member{}; stop its consumers first",
        described.group_state,
        described.members.len(),
        if described.members.len() == 1 {
            ""
        } else {
            "s"
        }
    )))
}

/// The earliest, latest and committed offsets (and the time's offset) of each partition.
fn partition_offsets(
    brokers: &mut Brokers,
    args: &ResetOffsetsArgs,
    topic: &str,
    asked: &[i32],
) -> Result<BTreeMap<i32, PartitionOffsets>, CommandError> {
    let metadata = brokers.metadata(Some(&[topic.to_owned()]))?;
    existing_topic(&metadata, topic)?;
    let leaders = partition_leaders(&metadata, topic);
    if let Some(missing) = asked.iter().find(|p| !leaders.contains_key(p)) {
        return Err(CommandError::InvalidArgument(format!(
            "topic '{topic}' has no partition {missing}"
        )));
    }
    let committed = brokers.committed_offsets_in(&args.group, topic)?;
    let mut offsets = BTreeMap::new();
    for (partition, leader) in leaders {
        if !asked.is_empty() && !asked.contains(&partition) {
            continue;
        }
        let leader = leader.map_err(|code| CommandError::Partition {
            what: format!("finding the leader of {topic}-{partition}"),
            code,
            message: None,
        })?;
        let client = brokers.broker(leader)?;
        let mut find = |timestamp: i64| -> Result<i64, CommandError> {
            let key = (topic.to_owned(), partition);
            let found = client.list_offsets(&BTreeMap::from([(key.clone(), timestamp)]))?;
            match found.get(&key) {
                Some(Ok(found)) => Ok(found.offset),
                Some(Err(code)) => Err(CommandError::Partition {
                    what: format!("listing the offsets of {topic}-{partition}"),
                    code: *code,
                    message: None,
                }),
                None => Err(reason_error(topic, partition, "the broker did not answer")),
            }
        };
        let partition_offsets = PartitionOffsets {
            earliest: find(EARLIEST_TIMESTAMP)?,
            latest: find(LATEST_TIMESTAMP)?,
            committed: committed
                .get(&partition)
                .copied()
                .filter(|offset| *offset >= 0),
            at_time: args.to_datetime.map(&mut find).transpose()?,
        };
        offsets.insert(partition, partition_offsets);
    }
    Ok(offsets)
}

/// The offset `args` asks for in a partition with `offsets`, or why there is none.
pub fn new_offset(
    args: &ResetOffsetsArgs,
    offsets: &PartitionOffsets,
) -> Result<i64, &'static str> {
    let within_log =
        |offset: i64| offset.clamp(offsets.earliest, offsets.latest.max(offsets.earliest));
    if args.to_earliest {
        return Ok(offsets.earliest);
    }
    if args.to_latest {
        return Ok(offsets.latest);
    }
    if let Some(offset) = args.to_offset {
        return Ok(within_log(offset));
    }
    if let Some(shift) = args.shift_by {
        let committed = offsets
            .committed
            .ok_or("--shift-by needs a committed offset, and the group has none here")?;
        return Ok(within_log(committed.saturating_add(shift)));
    }
    match offsets.at_time {
        Some(-1) => Ok(offsets.latest),
        Some(offset) => Ok(offset),
        None => Err("no reset option given"),
    }
}

fn reason_error(topic: &str, partition: i32, reason: &str) -> CommandError {
    CommandError::InvalidArgument(format!("{topic}-{partition}: {reason}"))
}

/// Commits the planned offsets through the coordinator.
fn commit(
    brokers: &mut Brokers,
    group: &str,
    topic: &str,
    planned: &[PlannedReset],
) -> Result<(), CommandError> {
    let offsets = planned
        .iter()
        .map(|reset| ((topic.to_owned(), reset.partition), reset.new_offset))
        .collect();
    let outcomes = brokers
        .coordinator(group)?
        .commit_offsets(group, &offsets)?;
    for ((topic, partition), outcome) in outcomes {
        if let Err((code, message)) = outcome {
            return Err(CommandError::Partition {
                what: format!("committing the offset of {topic}-{partition} for group '{group}'"),
                code,
                message,
            });
        }
    }
    Ok(())
}

/// The table and the closing line.
fn text(group: &str, topic: &str, planned: &[PlannedReset], executed: bool) -> String {
    let rows: Vec<Vec<String>> = planned
        .iter()
        .map(|reset| {
            vec![
                group.to_owned(),
                topic.to_owned(),
                reset.partition.to_string(),
                reset
                    .current_offset
                    .map_or_else(|| "-".to_owned(), |offset| offset.to_string()),
                reset.new_offset.to_string(),
            ]
        })
        .collect();
    let mut output = format_table(&HEADERS, &rows);
    output.push('\n');
    output.push_str(match executed {
        true => "Committed the new offsets.\n",
        false => "Dry run: nothing was committed. Add --execute to commit these offsets.\n",
    });
    output
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Test {
        #[command(flatten)]
        args: ResetOffsetsArgs,
    }

    fn args(options: &[&str]) -> ResetOffsetsArgs {
        let all = ["test", "g", "--topic", "t"].iter().chain(options);
        Test::try_parse_from(all).expect("valid options").args
    }

    const OFFSETS: PartitionOffsets = PartitionOffsets {
        earliest: 10,
        latest: 50,
        committed: Some(30),
        at_time: None,
    };

    #[test]
    fn each_option_computes_its_offset_within_the_log() {
        // Proves each reset option, the clamping of shifts and offsets to the log, and a
        // time past the last record landing at the end.
        assert_eq!(new_offset(&args(&["--to-earliest"]), &OFFSETS), Ok(10));
        assert_eq!(new_offset(&args(&["--to-latest"]), &OFFSETS), Ok(50));
        assert_eq!(new_offset(&args(&["--to-offset", "5"]), &OFFSETS), Ok(10));
        assert_eq!(new_offset(&args(&["--to-offset", "42"]), &OFFSETS), Ok(42));
        assert_eq!(new_offset(&args(&["--shift-by", "-5"]), &OFFSETS), Ok(25));
        assert_eq!(new_offset(&args(&["--shift-by", "100"]), &OFFSETS), Ok(50));
        let at_time = |found| PartitionOffsets {
            at_time: Some(found),
            ..OFFSETS
        };
        let datetime = args(&["--to-datetime", "2024-05-01"]);
        assert_eq!(new_offset(&datetime, &at_time(20)), Ok(20));
        assert_eq!(new_offset(&datetime, &at_time(-1)), Ok(50));
        let uncommitted = PartitionOffsets {
            committed: None,
            ..OFFSETS
        };
        assert!(new_offset(&args(&["--shift-by", "1"]), &uncommitted).is_err());
    }

    #[test]
    fn exactly_one_target_is_required() {
        // Proves a missing or doubled reset option is a usage error, before any request.
        let parse = |options: &[&str]| {
            let all = ["test", "g", "--topic", "t"].iter().chain(options);
            Test::try_parse_from(all).map(|_| ())
        };
        assert!(parse(&[]).is_err());
        assert!(parse(&["--to-earliest", "--to-latest"]).is_err());
        assert!(parse(&["--to-earliest", "--execute"]).is_ok());
    }

    #[test]
    fn topic_partitions_parse_after_a_colon() {
        // Proves TOPIC and TOPIC:P,P and a clear error for bad partition numbers.
        assert_eq!(parse_topic("orders").ok(), Some(("orders".into(), vec![])));
        assert_eq!(
            parse_topic("orders:0, 2").ok(),
            Some(("orders".into(), vec![0, 2]))
        );
        assert!(parse_topic("orders:x").is_err());
    }
}
