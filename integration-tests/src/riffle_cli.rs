//! Running `riffle`'s client subcommands (`riffle groups ...`, `riffle topics ...`,
//! `riffle produce`, `riffle consume`, ...) against a test broker, and reading the tables they
//! print; and `riffle check` on a stopped broker's data directory.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::process::{run_with_input, run_with_timeout};
use crate::{Broker, broker_binary};

/// How long one `riffle groups` command may run; its own socket timeouts are 10 s.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// What a finished `riffle` command left behind.
#[derive(Debug)]
pub struct CliOutput {
    /// The exit code, or `None` if it was killed at [`CLI_TIMEOUT`] or by a signal.
    pub code: Option<i32>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl CliOutput {
    /// The rows of the table on stdout: every line after the header line (the first line that
    /// starts with `GROUP`), split on whitespace. Cells never contain spaces (empty ones show
    /// `-`), so each row has one word per column; the header `PROTOCOL TYPE` is not a row.
    pub fn table_rows(&self) -> Vec<Vec<String>> {
        self.rows_under("GROUP")
    }

    /// The rows of the first table on stdout whose header line starts with `first_header`,
    /// up to the blank line that ends it, split on whitespace.
    pub fn rows_under(&self, first_header: &str) -> Vec<Vec<String>> {
        self.stdout
            .lines()
            .skip_while(|line| !line.starts_with(first_header))
            .skip(1)
            .take_while(|line| !line.trim().is_empty())
            .map(|line| line.split_whitespace().map(str::to_owned).collect())
            .collect()
    }
}

/// Runs `riffle groups --bootstrap <broker> <args>` and returns how it ended.
///
/// # Panics
/// If the binary cannot be started.
pub fn riffle_groups(broker: &Broker, args: &[&str]) -> CliOutput {
    let mut command = Command::new(broker_binary());
    command
        .arg("groups")
        .arg("--bootstrap")
        .arg(broker.bootstrap())
        .args(args);
    let finished = run_with_timeout(&mut command, CLI_TIMEOUT);
    println!(
        "$ riffle groups {}\n{}{}",
        args.join(" "),
        finished.stdout,
        finished.stderr
    );
    CliOutput {
        code: finished.status.and_then(|status| status.code()),
        stdout: finished.stdout,
        stderr: finished.stderr,
    }
}

/// Runs `riffle <args> --bootstrap <broker>` with `input` on its stdin (closed without one)
/// and returns how it ended.
///
/// # Panics
/// If the binary cannot be started.
pub fn riffle_client(broker: &Broker, args: &[&str], input: Option<&[u8]>) -> CliOutput {
    run_riffle(args, &["--bootstrap", &broker.bootstrap()], input)
}

/// Runs `riffle <args> <more_args>` with `input` on its stdin and returns how it ended; the
/// command and its output are echoed, so `--nocapture` shows them.
///
/// # Panics
/// If the binary cannot be started.
pub fn run_riffle(args: &[&str], more_args: &[&str], input: Option<&[u8]>) -> CliOutput {
    let mut command = Command::new(broker_binary());
    command.args(args).args(more_args);
    let finished = run_with_input(&mut command, input.map(<[u8]>::to_vec), CLI_TIMEOUT);
    println!(
        "$ riffle {} {}\n{}{}",
        args.join(" "),
        more_args.join(" "),
        finished.stdout,
        finished.stderr
    );
    CliOutput {
        code: finished.status.and_then(|status| status.code()),
        stdout: finished.stdout,
        stderr: finished.stderr,
    }
}

/// Runs `riffle check --data-dir <data_dir> <args>` and returns how it ended.
///
/// # Panics
/// If the binary cannot be started.
pub fn riffle_check(data_dir: &Path, args: &[&str]) -> CliOutput {
    let mut command = Command::new(broker_binary());
    command
        .arg("check")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args);
    let finished = run_with_timeout(&mut command, CLI_TIMEOUT);
    println!(
        "$ riffle check --data-dir {} {}\n{}{}",
        data_dir.display(),
        args.join(" "),
        finished.stdout,
        finished.stderr
    );
    CliOutput {
        code: finished.status.and_then(|status| status.code()),
        stdout: finished.stdout,
        stderr: finished.stderr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_skip_notes_and_the_header() {
        // Proves a note before the table and the two-word header are not taken for rows.
        let output = CliOutput {
            code: Some(0),
            stdout: "Consumer group 'g' has no active members.\n\n\
                     GROUP  TOPIC  PARTITION\n\
                     g      t      0\n\
                     g      t      1\n"
                .to_owned(),
            stderr: String::new(),
        };
        assert_eq!(
            output.table_rows(),
            vec![vec!["g", "t", "0"], vec!["g", "t", "1"]]
        );
    }
}
