//! `riffle check --data-dir DIR [--topic T] [--repair] [--format text|json]`: verifies a
//! stopped broker's data directory offline, as Kafka's `kafka-dump-log --verify` and log
//! recovery do, through `riffle_storage::CheckedDataDir` (what is checked is documented
//! there).
//!
//! It takes the directory's lock without waiting, so it refuses to run beside a broker and no
//! broker starts while it runs. It changes nothing unless `--repair` is given; then it fixes
//! what it found as recovery would (cuts a log at its first bad batch, rebuilds wrong
//! indexes), prints every change, and checks again.
//!
//! # Exit codes
//!
//! - 0 ([`EXIT_CLEAN`]): nothing wrong.
//! - 1 ([`EXIT_PROBLEMS_FOUND`]): problems found, and without `--repair` left as they are,
//!   or with it not all of them repaired.
//! - 2 ([`EXIT_CANNOT_CHECK`]): the check could not run: the broker is running, the directory
//!   is missing or unreadable.
//! - 3 ([`EXIT_REPAIRED`]): `--repair` repaired every problem found.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use riffle_storage::{
    CheckedDataDir, LogConfig, PartitionReport, Problem, RepairAction, StorageError,
};
use serde_json::{Value, json};

/// Exit code: nothing wrong.
pub const EXIT_CLEAN: u8 = 0;
/// Exit code: problems found and (some) left in place.
pub const EXIT_PROBLEMS_FOUND: u8 = 1;
/// Exit code: the check could not run.
pub const EXIT_CANNOT_CHECK: u8 = 2;
/// Exit code: `--repair` repaired every problem found.
pub const EXIT_REPAIRED: u8 = 3;

/// `riffle check`'s options.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The stopped broker's data directory.
    #[arg(long, env = "RIFFLE_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Check only this topic's partitions.
    #[arg(long)]
    pub topic: Option<String>,
    /// Fix what is found: cut each log at its first bad batch (removing what follows) and
    /// rebuild wrong indexes, printing every change.
    #[arg(long)]
    pub repair: bool,
    /// `text` for people, one line per problem; `json` for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

/// How the outcome is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One line per problem and per partition, then a summary.
    Text,
    /// One JSON document.
    Json,
}

/// Why `riffle check` could not run.
#[derive(Debug, thiserror::Error)]
pub enum CheckCommandError {
    /// A broker (or another check) holds the directory's lock.
    #[error(
        "the data directory {} is in use, most likely by a running broker: stop the broker \
         before running riffle check",
        .0.display()
    )]
    DirectoryInUse(PathBuf),
    /// The directory could not be read, or a repair could not write.
    #[error("cannot check the data directory {}: {source}", path.display())]
    Storage {
        /// The data directory.
        path: PathBuf,
        /// What storage said.
        #[source]
        source: StorageError,
    },
}

/// What one run found and, with `--repair`, did.
#[derive(Debug)]
pub struct CheckOutcome {
    /// One report per partition checked, as first found.
    pub reports: Vec<PartitionReport>,
    /// For each partition that had problems, when repairing: the changes and a new report.
    pub repairs: Vec<PartitionRepair>,
}

/// What `--repair` did to one partition.
#[derive(Debug)]
pub struct PartitionRepair {
    /// The changes, in order.
    pub actions: Vec<RepairAction>,
    /// The partition checked again afterwards.
    pub after: PartitionReport,
}

impl CheckOutcome {
    /// The process exit code; see the module doc.
    pub fn exit_code(&self) -> u8 {
        let found = self.reports.iter().any(|report| !report.is_clean());
        let left = self.repairs.iter().any(|repair| !repair.after.is_clean());
        match (found, self.repairs.is_empty(), left) {
            (false, _, _) => EXIT_CLEAN,
            (true, false, false) => EXIT_REPAIRED,
            (true, _, _) => EXIT_PROBLEMS_FOUND,
        }
    }
}

/// Runs `riffle check`: prints the outcome on stdout, or why it could not run on stderr.
pub fn run(args: CheckArgs) -> ExitCode {
    match check(&args.data_dir, args.topic.as_deref(), args.repair) {
        Ok(outcome) => {
            let text = match args.format {
                OutputFormat::Text => render_text(&outcome),
                OutputFormat::Json => format!("{:#}\n", render_json(&args.data_dir, &outcome)),
            };
            print!("{text}");
            ExitCode::from(outcome.exit_code())
        }
        Err(error) => {
            eprintln!("riffle: {error}");
            ExitCode::from(EXIT_CANNOT_CHECK)
        }
    }
}

/// Checks `data_dir` (only `topic`'s partitions, if given) and, if `repair`, repairs each
/// partition with problems and checks it again.
///
/// # Errors
/// The directory is locked by a broker, missing, or unreadable; or a repair failed to write.
pub fn check(
    data_dir: &Path,
    topic: Option<&str>,
    repair: bool,
) -> Result<CheckOutcome, CheckCommandError> {
    let storage_error = |source| match source {
        StorageError::Locked { .. } => CheckCommandError::DirectoryInUse(data_dir.to_path_buf()),
        source => CheckCommandError::Storage {
            path: data_dir.to_path_buf(),
            source,
        },
    };
    let checked = CheckedDataDir::lock(data_dir).map_err(storage_error)?;
    let reports = checked.check(topic).map_err(storage_error)?;
    let mut repairs = Vec::new();
    if repair {
        // Topic configs live in the metadata log, which the check does not replay; Kafka's
        // defaults only set how dense rebuilt indexes are.
        let config = LogConfig::default();
        for report in reports.iter().filter(|report| !report.is_clean()) {
            let actions = checked.repair(report, &config).map_err(storage_error)?;
            let topic = Some(report.topic_partition.topic.as_str());
            let after = checked
                .check(topic)
                .map_err(storage_error)?
                .into_iter()
                .find(|after| after.topic_partition == report.topic_partition);
            if let Some(after) = after {
                repairs.push(PartitionRepair { actions, after });
            }
        }
    }
    Ok(CheckOutcome { reports, repairs })
}

/// The text output: each problem on its own line, then a line per partition, then repairs,
/// then a summary.
pub fn render_text(outcome: &CheckOutcome) -> String {
    let mut text = String::new();
    for report in &outcome.reports {
        for problem in &report.problems {
            let _ = writeln!(text, "{}", problem_line(problem));
        }
        let _ = writeln!(text, "{}", partition_line(report));
    }
    for repair in &outcome.repairs {
        let topic_partition = &repair.after.topic_partition;
        let _ = writeln!(text, "repaired {topic_partition}:");
        for action in &repair.actions {
            let _ = writeln!(text, "  {action}");
        }
        for problem in &repair.after.problems {
            let _ = writeln!(text, "  left: {}", problem_line(problem));
        }
    }
    let _ = writeln!(text, "{}", summary_line(outcome));
    text
}

/// `<file>: position P, offset O: <what>`, leaving out what is unknown.
fn problem_line(problem: &Problem) -> String {
    let mut line = format!("{}", problem.path.display());
    if let Some(position) = problem.position {
        let _ = write!(line, ": position {position}");
    }
    if let Some(offset) = problem.offset {
        let separator = if problem.position.is_some() { "," } else { ":" };
        let _ = write!(line, "{separator} offset {offset}");
    }
    let _ = write!(line, ": {}", problem.kind);
    line
}

fn partition_line(report: &PartitionReport) -> String {
    let next_offset = report
        .next_offset
        .map_or("-".to_string(), |offset| offset.to_string());
    let listed_count = u64::try_from(report.problems.len()).unwrap_or(u64::MAX);
    let problems_count = listed_count.saturating_add(report.omitted_problems_count);
    let verdict = match problems_count {
        0 => "ok".to_string(),
        count => counted(count, "problem"),
    };
    format!(
        "{}: {}, {}, {}, {} bytes, next offset {next_offset}: {verdict}",
        report.topic_partition,
        counted(report.segments_count, "segment"),
        counted(report.batches_count, "batch"),
        counted(report.records_count, "record"),
        report.log_bytes,
    )
}

/// `1 batch`, `2 batches`: the nouns used here take `s` or, after `h`, `es`.
fn counted(count: u64, noun: &str) -> String {
    match (count, noun.ends_with('h')) {
        (1, _) => format!("1 {noun}"),
        (_, true) => format!("{count} {noun}es"),
        (_, false) => format!("{count} {noun}s"),
    }
}

fn summary_line(outcome: &CheckOutcome) -> String {
    let partitions_count = outcome.reports.len();
    let bad_count = outcome
        .reports
        .iter()
        .filter(|report| !report.is_clean())
        .count();
    let verdict = match outcome.exit_code() {
        EXIT_CLEAN => "no problems found".to_string(),
        EXIT_REPAIRED => format!("problems in {bad_count} of them, all repaired"),
        _ if outcome.repairs.is_empty() => {
            format!("problems in {bad_count} of them; run with --repair to fix what can be fixed")
        }
        _ => format!("problems in {bad_count} of them, some left after --repair"),
    };
    let partitions = counted(
        u64::try_from(partitions_count).unwrap_or(u64::MAX),
        "partition",
    );
    format!("checked {partitions}: {verdict}")
}

/// The JSON output: one document with every partition's report, the repairs and the exit
/// code.
pub fn render_json(data_dir: &Path, outcome: &CheckOutcome) -> Value {
    let repairs: Vec<Value> = outcome
        .repairs
        .iter()
        .map(|repair| {
            json!({
                "topic": repair.after.topic_partition.topic,
                "partition": repair.after.topic_partition.partition,
                "actions": repair.actions.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "after": partition_json(&repair.after),
            })
        })
        .collect();
    json!({
        "data_dir": data_dir.display().to_string(),
        "clean": outcome.exit_code() == EXIT_CLEAN,
        "exit_code": outcome.exit_code(),
        "partitions": outcome.reports.iter().map(partition_json).collect::<Vec<_>>(),
        "repairs": repairs,
    })
}

fn partition_json(report: &PartitionReport) -> Value {
    let problems: Vec<Value> = report
        .problems
        .iter()
        .map(|problem| {
            json!({
                "path": problem.path.display().to_string(),
                "position": problem.position,
                "offset": problem.offset,
                "kind": problem.kind.name(),
                "message": problem.kind.to_string(),
            })
        })
        .collect();
    json!({
        "topic": report.topic_partition.topic,
        "partition": report.topic_partition.partition,
        "segments": report.segments_count,
        "batches": report.batches_count,
        "records": report.records_count,
        "log_bytes": report.log_bytes,
        "next_offset": report.next_offset,
        "problems": problems,
        "omitted_problems": report.omitted_problems_count,
    })
}
