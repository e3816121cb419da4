//! The README's "Security" walkthrough, run as written, so it cannot rot.
//!
//! The test reads `README.md`, takes the fenced blocks of the "Walkthrough" subsection of
//! "Security" in order, and runs them in an empty temp directory with the built `riffle` on
//! `PATH`: each `sh` block with `sh -e` (the `riffle serve` block in the background, until
//! it prints its listening line), the `python` block with the pinned kafka-python, whose
//! output must equal the `text` block after it. The only change is the port: the README's
//! `127.0.0.1:9093` becomes a free port, so tests can run side by side.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use riffle_integration_tests::readme;
use riffle_integration_tests::security::run_command;
use riffle_integration_tests::{START_TIMEOUT, python_env};

/// The address the README uses; replaced by a free port.
const README_ADDRESS: &str = "127.0.0.1:9093";

/// How long one walkthrough step may take (openssl, `riffle users`, `riffle acls`, the
/// kafka-python program).
const STEP_TIMEOUT: Duration = Duration::from_secs(90);

#[test]
fn readme_security_walkthrough_runs_as_written() {
    // Proves a new user following the README from an empty directory gets a working
    // SASL_SSL broker with an authorizer, a SCRAM user, a grant, and a kafka-python program
    // that produces, consumes in its group and prints exactly what the README shows.
    let blocks = walkthrough_blocks();
    let kinds: Vec<&str> = blocks.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["sh", "sh", "sh", "sh", "python", "text"],
        "the walkthrough's blocks changed; update this test to run the new ones"
    );
    let dir = tempfile::Builder::new()
        .prefix("riffle-it-readme-")
        .tempdir()
        .expect("temp dir");
    let address = format!("127.0.0.1:{}", free_port());
    let blocks: Vec<(String, String)> = blocks
        .into_iter()
        .map(|(kind, text)| (kind, text.replace(README_ADDRESS, &address)))
        .collect();

    run_shell(dir.path(), &blocks[0].1);
    run_shell(dir.path(), &blocks[1].1);
    let _broker = BackgroundShell::start(
        dir.path(),
        &blocks[2].1,
        &format!("riffle listening on SASL_SSL://{address}"),
    );
    let granted = run_shell(dir.path(), &blocks[3].1);
    assert!(
        granted.contains("User:alice") && granted.contains("orders"),
        "`riffle acls list` does not show alice's grant:\n{granted}"
    );

    let program = dir.path().join("walkthrough.py");
    fs::write(&program, &blocks[4].1).expect("write the program");
    let mut python = Command::new(python_env());
    python
        .arg(&program)
        .current_dir(dir.path())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let output = run_command(&mut python, STEP_TIMEOUT);
    assert_eq!(
        output.code,
        Some(0),
        "the README's kafka-python program failed:\n{}",
        output.stderr
    );
    assert_eq!(
        output.stdout, blocks[5].1,
        "the README's program printed something else than the README says"
    );
}

/// The walkthrough's fenced blocks, as (info string, text).
fn walkthrough_blocks() -> Vec<(String, String)> {
    let readme = readme::readme();
    let section = readme::subsection(&readme, "## Security", "## ");
    readme::fenced_blocks(readme::subsection(section, "### Walkthrough", "### "))
}

/// A free port on 127.0.0.1 (bound, read and released).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// `path` opened for appending (created if missing), so two writers never overwrite each other.
fn append_to(path: &Path) -> File {
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|error| panic!("cannot open {}: {error}", path.display()))
}

/// Runs `script` with `sh -e` in `dir`; returns its stdout.
///
/// # Panics
/// If it fails; the message has its output.
fn run_shell(dir: &Path, script: &str) -> String {
    let mut command = Command::new("sh");
    command
        .arg("-e")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PATH", readme::path_with_riffle());
    let output = run_command(&mut command, STEP_TIMEOUT);
    assert_eq!(
        output.code,
        Some(0),
        "the README step failed:\n{script}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.stdout,
        output.stderr
    );
    output.stdout
}

/// The README's `riffle serve` step, running in the background until dropped.
struct BackgroundShell {
    child: Child,
    log: PathBuf,
}

impl BackgroundShell {
    /// Runs `exec <script>` with `sh` in `dir` and waits for a stdout line equal to `ready`.
    fn start(dir: &Path, script: &str, ready: &str) -> BackgroundShell {
        let log = dir.join("broker.log");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec {script}"))
            .current_dir(dir)
            .env("PATH", readme::path_with_riffle())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(append_to(&log))
            .spawn()
            .expect("start sh");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, lines) = mpsc::channel();
        let mut copy = append_to(&log);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(copy, "{line}");
                let _ = sender.send(line);
            }
        });
        let shell = BackgroundShell { child, log };
        loop {
            match lines.recv_timeout(START_TIMEOUT) {
                Ok(line) if line == ready => return shell,
                Ok(_) => {}
                Err(_) => panic!(
                    "the README's broker did not print {ready:?} within {START_TIMEOUT:?}:\n\
                     {script}\n{}",
                    shell.log_text()
                ),
            }
        }
    }

    fn log_text(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        format!("--- broker log ---\n{text}--- end of broker log ---")
    }
}

impl Drop for BackgroundShell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("{}", self.log_text());
        }
    }
}
