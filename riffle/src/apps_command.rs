//! `riffle apps diff`: the safe-upgrade check. Compares a live application's output topic
//! with the one its shadow run wrote (`riffle_processor::upgrade::ShadowRun`), by final
//! value per key and window, and lists what differs.
//!
//! ```text
//! $ riffle apps diff --live page-counts --shadow page-counts-app-shadow.page-counts --value-format i64
//! 2 differences: 1 changed, 1 removed, 0 added (4 keys the same; live: 6 records, 6 keys; shadow: 5 records, 5 keys)
//! changed  page-1: live 20 -> shadow 40
//! removed  page-3: live 20 -> shadow -
//! ```
//!
//! Each topic is read from its first offset to its end when the command starts, every
//! partition from its leader, read uncommitted (as `riffle consume`). Exit codes, as
//! `diff`'s: 0 no differences, 1 differences found, 2 could not compare.
//!
//! `riffle apps delete-shadow APPLICATION` deletes what a shadow run left: the consumer
//! group `<APPLICATION>-shadow` and every topic named `<APPLICATION>-shadow-*` (changelogs,
//! repartition topics) or `<APPLICATION>-shadow.*` (sinks).

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use riffle_processor::upgrade::SHADOW_SUFFIX;
use riffle_processor::upgrade::{
    DIFF_LIMIT_DEFAULT, DataFormat, DiffReport, KeyFormat, KeyWindow, OutputDiff,
};
use riffle_protocol::ErrorCode;
use riffle_protocol::record::batches;
use serde::Serialize;

use crate::admin_client::AdminClientError;
use crate::admin_client::routing::{Brokers, partition_leaders};
use crate::cli_support::output::to_json;
use crate::cli_support::{CommandError, OutputFormat, finish};
use crate::client_config::ConnectionArgs;
use crate::consume_command::FETCH_MAX_WAIT;
use crate::consume_command::start::{StartAt, start_offsets};
use crate::topics_command::existing_topic;

/// `riffle apps`.
#[derive(Debug, Args)]
pub struct AppsArgs {
    /// The broker to ask and how to connect.
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// How to print the result: `text` (for people) or `json` (for scripts).
    #[arg(long, value_enum, default_value_t, global = true)]
    pub format: OutputFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: AppsCommand,
}

/// The `riffle apps` subcommands.
#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Compare a live output topic with its shadow's: final value per key (and window).
    #[command(
        long_about = "Compare a live application's output topic with the one a shadow run of \
                      its new version wrote (riffle_processor::upgrade::ShadowRun; shadow \
                      topics are named <application>-shadow.<topic>). Both topics are read \
                      from their start to their end now; the last value of each key on each \
                      side is compared (a null value removes the key), so a difference is per \
                      key and, for windowed keys, per window. Exit codes: 0 no differences, \
                      1 differences found, 2 could not compare.",
        after_help = "Example:\n  riffle apps diff --live page-counts --shadow \
                      page-counts-app-shadow.page-counts --key-window time --value-format i64"
    )]
    Diff(DiffArgs),
    /// Delete a shadow run's consumer group and topics (`<APPLICATION>-shadow` and
    /// `<APPLICATION>-shadow-*`, `<APPLICATION>-shadow.*`); the live application's are left
    /// alone.
    DeleteShadow(DeleteShadowArgs),
}

/// `riffle apps delete-shadow`.
#[derive(Debug, Args)]
pub struct DeleteShadowArgs {
    /// The live application id; its shadow is `<APPLICATION>-shadow`.
    pub application: String,
    /// The shadow's application id, when it is not `<APPLICATION>-shadow`.
    #[arg(long, value_name = "ID")]
    pub shadow_id: Option<String>,
}

/// What `riffle apps delete-shadow` deleted, as `--format json` prints it.
#[derive(Debug, Serialize)]
pub struct DeletedShadow {
    /// The shadow's consumer group.
    pub group: String,
    /// Whether the group existed (and was deleted).
    pub group_deleted: bool,
    /// The topics deleted.
    pub topics: Vec<String>,
}

/// `riffle apps diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The live application's output topic.
    #[arg(long, value_name = "TOPIC")]
    pub live: String,
    /// The shadow run's output topic.
    #[arg(long, value_name = "TOPIC")]
    pub shadow: String,
    /// How keys (without their window) are shown: string, i64, f64, json or hex.
    #[arg(long, value_name = "FORMAT", default_value = "string", value_parser = parse_data_format)]
    pub key_format: DataFormat,
    /// The window after each key, in Kafka Streams' windowed key layout: none, time
    /// (tumbling, hopping and sliding windows: key, then start) or session (key, end, start).
    #[arg(long, value_name = "WINDOW", default_value = "none", value_parser = parse_key_window)]
    pub key_window: KeyWindow,
    /// How values are shown: string, i64, f64, json (compared as JSON) or hex.
    #[arg(long, value_name = "FORMAT", default_value = "string", value_parser = parse_data_format)]
    pub value_format: DataFormat,
    /// List at most N differences (all are counted).
    #[arg(long, value_name = "N", default_value_t = DIFF_LIMIT_DEFAULT)]
    pub limit: usize,
}

fn parse_data_format(text: &str) -> Result<DataFormat, String> {
    text.parse()
        .map_err(|_| format!("expected one of {}", DataFormat::NAMES))
}

fn parse_key_window(text: &str) -> Result<KeyWindow, String> {
    text.parse()
        .map_err(|_| format!("expected one of {}", KeyWindow::NAMES))
}

/// Exit code when the topics differ.
const EXIT_DIFFERENT: u8 = 1;
/// Exit code when the topics could not be compared.
const EXIT_TROUBLE: u8 = 2;

/// Runs `riffle apps ...`.
pub fn run(args: AppsArgs) -> ExitCode {
    let diff_args = match &args.command {
        AppsCommand::Diff(diff_args) => diff_args,
        AppsCommand::DeleteShadow(delete_args) => {
            let format = args.format;
            let deleted = args
                .connection
                .connect_brokers()
                .map_err(CommandError::from)
                .and_then(|mut brokers| delete_shadow(&mut brokers, delete_args))
                .map(|deleted| match format {
                    OutputFormat::Json => to_json(&deleted),
                    OutputFormat::Text => deleted_text(&deleted),
                });
            return finish(deleted);
        }
    };
    let compared = args
        .connection
        .connect_brokers()
        .map_err(CommandError::from)
        .and_then(|mut brokers| diff(&mut brokers, diff_args));
    match compared {
        Ok(report) => {
            match args.format {
                OutputFormat::Text => print!("{report}"),
                OutputFormat::Json => print!("{}", to_json(&report)),
            }
            match report.is_identical() {
                true => ExitCode::SUCCESS,
                false => ExitCode::from(EXIT_DIFFERENT),
            }
        }
        Err(error) => {
            eprintln!("riffle: {error}");
            ExitCode::from(EXIT_TROUBLE)
        }
    }
}

/// Reads both topics and compares them.
fn diff(brokers: &mut Brokers, args: &DiffArgs) -> Result<DiffReport, CommandError> {
    let key_format = KeyFormat {
        data: args.key_format,
        window: args.key_window,
    };
    let mut diff = OutputDiff::new(key_format, args.value_format).limit(args.limit);
    read_topic(brokers, &args.live, |key, value| diff.add_live(key, value))?;
    read_topic(brokers, &args.shadow, |key, value| {
        diff.add_shadow(key, value)
    })?;
    Ok(diff.finish())
}

/// Hands the key and value of every record of `topic`, from each partition's first offset
/// to its end now, to `each`, in offset order per partition. Control records are skipped.
fn read_topic(
    brokers: &mut Brokers,
    topic: &str,
    mut each: impl FnMut(Option<&[u8]>, Option<&[u8]>),
) -> Result<(), CommandError> {
    let metadata = brokers.metadata(Some(&[topic.to_owned()]))?;
    existing_topic(&metadata, topic)?;
    let mut leaders = BTreeMap::new();
    for (partition, leader) in partition_leaders(&metadata, topic) {
        let leader = leader.map_err(|code| CommandError::Partition {
            what: format!("finding the leader of {topic}-{partition}"),
            code,
            message: None,
        })?;
        leaders.insert(partition, leader);
    }
    let none = BTreeMap::new();
    let mut positions = start_offsets(brokers, topic, &leaders, StartAt::Earliest, &none)?;
    let ends = start_offsets(brokers, topic, &leaders, StartAt::Latest, &none)?;
    positions.retain(|partition, position| ends.get(partition).is_some_and(|end| *position < *end));
    while !positions.is_empty() {
        let mut by_leader: BTreeMap<i32, BTreeMap<(String, i32), i64>> = BTreeMap::new();
        for (partition, position) in &positions {
            let leader = leaders.get(partition).copied().unwrap_or(-1);
            by_leader
                .entry(leader)
                .or_default()
                .insert((topic.to_owned(), *partition), *position);
        }
        for (leader, requested) in by_leader {
            for fetched in brokers.broker(leader)?.fetch(&requested, FETCH_MAX_WAIT)? {
                let partition = fetched.partition;
                if fetched.error_code.0 != ErrorCode::None.code() {
                    return Err(CommandError::Partition {
                        what: format!("fetching {topic}-{partition}"),
                        code: fetched.error_code,
                        message: None,
                    });
                }
                let (Some(&start), Some(&end)) = (positions.get(&partition), ends.get(&partition))
                else {
                    continue;
                };
                let mut position = start;
                for batch in batches(fetched.records.clone()) {
                    let records_error = |offset, source| CommandError::Records {
                        topic: topic.to_owned(),
                        partition,
                        offset,
                        source,
                    };
                    let batch = batch.map_err(|source| records_error(position, source))?;
                    if batch.last_offset() < position || batch.base_offset() >= end {
                        continue;
                    }
                    if !batch.is_control() {
                        let records = batch
                            .records()
                            .map_err(|source| records_error(batch.base_offset(), source))?;
                        for record in records.iter() {
                            if record.offset >= position && record.offset < end {
                                each(record.key.as_deref(), record.value.as_deref());
                            }
                        }
                    }
                    position = position.max(batch.last_offset() + 1);
                }
                // A log start past the position (retention): go on from there.
                position = position.max(fetched.log_start_offset);
                match position >= end {
                    true => positions.remove(&partition),
                    false => positions.insert(partition, position),
                };
            }
        }
    }
    Ok(())
}

/// Deletes the shadow's topics, then its group.
fn delete_shadow(
    brokers: &mut Brokers,
    args: &DeleteShadowArgs,
) -> Result<DeletedShadow, CommandError> {
    let shadow = args
        .shadow_id
        .clone()
        .unwrap_or_else(|| format!("{}{SHADOW_SUFFIX}", args.application));
    if shadow == args.application {
        return Err(CommandError::InvalidArgument(
            "the shadow id must differ from the application id".into(),
        ));
    }
    let metadata = brokers.metadata(None)?;
    let (internal, sink) = (format!("{shadow}-"), format!("{shadow}."));
    let topics: Vec<String> = metadata
        .topics
        .iter()
        .filter_map(|topic| topic.name.clone())
        .filter(|name| name.starts_with(&internal) || name.starts_with(&sink))
        .collect();
    for topic in &topics {
        brokers.any().delete_topic(topic)?;
    }
    let group_deleted = match brokers.coordinator(&shadow)?.delete_group(&shadow) {
        Ok(()) => true,
        Err(AdminClientError::Broker { code, .. })
            if code.known() == Some(ErrorCode::GroupIdNotFound) =>
        {
            false
        }
        Err(error) => return Err(error.into()),
    };
    Ok(DeletedShadow {
        group: shadow,
        group_deleted,
        topics,
    })
}

fn deleted_text(deleted: &DeletedShadow) -> String {
    let mut text = match deleted.group_deleted {
        true => format!("Deleted group '{}'\n", deleted.group),
        false => format!("No group '{}'\n", deleted.group),
    };
    for topic in &deleted.topics {
        text.push_str(&format!("Deleted topic '{topic}'\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<AppsArgs, String> {
        let argv = ["riffle", "apps"].iter().chain(args);
        match Cli::try_parse_from(argv).map_err(|error| error.to_string())? {
            Cli {
                command: Command::Apps(apps),
            } => Ok(apps),
            other => Err(format!("parsed as {other:?}")),
        }
    }

    /// The formats parse by name; a wrong one names the choices.
    #[test]
    fn diff_arguments() {
        let apps = parse(&[
            "diff",
            "--live",
            "counts",
            "--shadow",
            "app-shadow.counts",
            "--key-window",
            "time",
            "--value-format",
            "i64",
            "--limit",
            "5",
        ])
        .expect("valid arguments");
        let AppsCommand::Diff(diff) = apps.command else {
            panic!("not diff: {:?}", apps.command);
        };
        assert_eq!(
            (
                diff.key_format,
                diff.key_window,
                diff.value_format,
                diff.limit
            ),
            (DataFormat::String, KeyWindow::Time, DataFormat::I64, 5)
        );
        let refused = parse(&[
            "diff",
            "--live",
            "a",
            "--shadow",
            "b",
            "--key-window",
            "weekly",
        ]);
        let message = refused.expect_err("an unknown window");
        assert!(message.contains("none, time, session"), "{message}");
    }

    /// What delete-shadow prints, with and without a group.
    #[test]
    fn deleted_shadow_text() {
        let deleted = DeletedShadow {
            group: "app-shadow".into(),
            group_deleted: false,
            topics: vec!["app-shadow.counts".into()],
        };
        assert_eq!(
            deleted_text(&deleted),
            "No group 'app-shadow'\nDeleted topic 'app-shadow.counts'\n"
        );
    }
}
