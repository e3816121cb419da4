//! An example running with `--remote` as its own process: no broker inside, its topology
//! over rdkafka against a broker the test started. Started, SIGKILLed and restarted like
//! [`riffle_integration_tests::Broker`], with its output in a log file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::example_binary;

/// How long a stopped processor may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How many log lines a failure message shows.
const LOG_TAIL_LINE_COUNT: usize = 60;

/// One remote processor process and the directory holding its log.
pub struct RemoteExample {
    binary: PathBuf,
    /// Every argument after the binary, the same on each start.
    args: Vec<String>,
    /// Holds `processor.log`, across restarts.
    dir: TempDir,
    /// The running process; `None` after a kill or stop.
    child: Option<Child>,
    start_count: u32,
}

impl RemoteExample {
    /// Builds the example `name` and starts it against `bootstrap` with `args` added.
    pub fn start(name: &str, bootstrap: &str, args: &[&str]) -> RemoteExample {
        let mut all_args = vec!["--remote".to_string(), bootstrap.to_string()];
        all_args.extend(args.iter().map(|arg| (*arg).to_string()));
        let dir = tempfile::Builder::new()
            .prefix(&format!("riffle-it-remote-{name}-"))
            .tempdir()
            .expect("cannot create a temp directory for the processor log");
        let mut example = RemoteExample {
            binary: example_binary(name),
            args: all_args,
            dir,
            child: None,
            start_count: 0,
        };
        example.spawn();
        example
    }

    /// Sends SIGKILL (a crash: no commit, no leave) and reaps the process.
    pub fn kill(&mut self) {
        let mut child = self
            .child
            .take()
            .expect("kill(): the processor is not running");
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the processor had exited with {status}\n{}",
                self.log_tail()
            );
        }
        child.kill().expect("SIGKILL the processor");
        child.wait().expect("reap the processor");
    }

    /// Starts the process again with the same arguments.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart(): kill or stop it first");
        self.spawn();
    }

    /// Sends SIGTERM and waits for a clean exit (final commit) with status 0.
    pub fn stop(&mut self) {
        let mut child = self
            .child
            .take()
            .expect("stop(): the processor is not running");
        let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
        // SAFETY: plain kill(2) on our own child, which has not been reaped yet.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM the processor");
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("check the processor") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("the processor ignored SIGTERM\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            status.success(),
            "the processor exited with {status}\n{}",
            self.log_tail()
        );
    }

    /// The last lines of the processor log, framed for a panic message.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINE_COUNT)..];
        format!(
            "--- last {} lines of {} ---\n{}\n--- end of processor log ---",
            tail.len(),
            self.log_path().display(),
            tail.join("\n")
        )
    }

    /// The whole processor log so far, every start included.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Waits up to `timeout` for the process to exit on its own; its status, if it did.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("processor.log")
    }

    fn spawn(&mut self) {
        self.start_count += 1;
        let mut log = open_log(&self.log_path());
        writeln!(log, "=== start #{}: {:?} ===", self.start_count, self.args)
            .expect("write the processor log");
        let stderr = log.try_clone().expect("a second handle on the log");
        let child = Command::new(&self.binary)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", self.binary.display()));
        self.child = Some(child);
    }
}

impl Drop for RemoteExample {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
    }
}

fn open_log(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|error| panic!("cannot open {}: {error}", path.display()))
}
