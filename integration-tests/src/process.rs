//! Running a child process to completion with a deadline, capturing its output.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often a waiting loop checks whether a child process has exited.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// What a finished (or killed) child process left behind.
pub(crate) struct Finished {
    /// The exit status, or `None` if the deadline passed and the process was killed.
    pub status: Option<ExitStatus>,
    /// Everything the process wrote on stdout, lossily decoded.
    pub stdout: String,
    /// Everything the process wrote on stderr, lossily decoded.
    pub stderr: String,
    /// How long the process ran.
    pub elapsed: Duration,
}

impl Finished {
    /// True when the process exited by itself with status 0.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|status| status.success())
    }

    /// A one-line description of how the process ended.
    pub fn describe_end(&self, timeout: Duration) -> String {
        match self.status {
            Some(status) => format!("exited with {status} after {:.1?}", self.elapsed),
            None => format!("was killed after running longer than {timeout:?}"),
        }
    }
}

/// Runs `command` with stdin closed, capturing stdout and stderr, killing it after `timeout`.
///
/// # Panics
/// If the process cannot be spawned; the message names the program.
pub(crate) fn run_with_timeout(command: &mut Command, timeout: Duration) -> Finished {
    run_with_input(command, None, timeout)
}

/// As [`run_with_timeout`], writing `input` (if any) to the child's stdin from a thread and
/// then closing it.
///
/// # Panics
/// If the process cannot be spawned; the message names the program.
pub(crate) fn run_with_input(
    command: &mut Command,
    input: Option<Vec<u8>>,
    timeout: Duration,
) -> Finished {
    let started = Instant::now();
    let stdin = match input {
        Some(_) => Stdio::piped(),
        None => Stdio::null(),
    };
    let mut child = command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot start {:?}: {error}",
                command.get_program().to_string_lossy()
            )
        });
    let writer = child.stdin.take().zip(input).map(|(mut pipe, input)| {
        // A child that exits early closes the pipe; its exit status tells the story.
        thread::spawn(move || {
            let _ = pipe.write_all(&input);
        })
    });
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let status = wait_with_timeout(&mut child, timeout);
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    if status.is_none() {
        // The deadline passed: kill it so the pipes close and the collectors finish.
        let _ = child.kill();
        let _ = child.wait();
    }
    Finished {
        status,
        stdout: join_collector(stdout),
        stderr: join_collector(stderr),
        elapsed: started.elapsed(),
    }
}

/// Waits up to `timeout` for `child` to exit; `None` if it is still running then.
///
/// # Panics
/// If the OS cannot report the child's state.
pub(crate) fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        let state = child
            .try_wait()
            .unwrap_or_else(|error| panic!("cannot check child process {}: {error}", child.id()));
        if let Some(status) = state {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Reads a pipe to its end on a thread, so a chatty child never blocks on a full pipe.
fn collect<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error only truncates what we show; the exit status still decides.
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn join_collector(handle: JoinHandle<String>) -> String {
    handle
        .join()
        .unwrap_or_else(|_| String::from("<output collector thread panicked>"))
}
