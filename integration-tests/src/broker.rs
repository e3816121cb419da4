//! One `riffle` process per test: start it, find its port, keep its log, stop, kill, restart.

use std::cell::{Cell, RefCell};
use std::env;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::{POLL_INTERVAL, wait_with_timeout};

/// How long a starting broker may take to print its `riffle listening on` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a broker may take to exit after SIGTERM before the test fails.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The exact start of the first stdout line; the bound address follows it.
const LISTENING_PREFIX: &str = "riffle listening on ";

/// The start of the HTTP listener's line, printed after the listening lines.
const HTTP_LISTENING_PREFIX: &str = "riffle http listening on ";

/// How long after its listening lines a broker may take to print its HTTP line.
const HTTP_LINE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an exited broker's output may take to reach the log file.
const LOG_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How many log lines a failure message shows.
const LOG_TAIL_LINE_COUNT: usize = 80;

/// Set this environment variable to keep each test's temp directory (data and log) after it ends.
const KEEP_DIRS_ENV: &str = "RIFFLE_KEEP_TEST_DIRS";

/// A running (or stopped) `riffle serve` process with its own temp directory.
///
/// The temp directory holds `data/` (the broker's `--data-dir`) and `broker.log` (its stdout and
/// stderr). It lives as long as the `Broker`, across [`Broker::restart`]. Dropping the `Broker`
/// kills the process; if the test is panicking, the log tail is printed first.
pub struct Broker {
    /// The running process; `None` after [`Broker::stop`] or [`Broker::kill`].
    child: Option<Child>,
    /// Threads copying stdout and stderr into the log; joined once the process has exited.
    log_copiers: Vec<JoinHandle<()>>,
    /// The address the broker printed when it first started; restarts reuse its port.
    address: SocketAddr,
    /// With [`BrokerBuilder::listeners`]: each listener's name and the address it printed, in
    /// the order the spec names them; empty for a broker started with `--listen`.
    listeners: Vec<(String, SocketAddr)>,
    /// The temp directory holding `data/` and `broker.log`.
    root: Option<TempDir>,
    /// Flags added after `--listen` and `--data-dir` on every start.
    extra_args: Vec<String>,
    /// Environment variables set for the process on every start.
    envs: Vec<(String, String)>,
    /// The `riffle` binary.
    binary: PathBuf,
    /// How many times the process was started, shown in the log between runs.
    start_count: u32,
    /// Set once a failure message included the log tail, so `Drop` does not print it again.
    log_tail_shown: Cell<bool>,
    /// Where the first start listens (free ports); taken by [`Broker::launch`].
    first_listen: Option<Listen>,
    /// The running process's stdout lines after its listening lines, read for the HTTP
    /// line on demand.
    stdout_lines: RefCell<Option<mpsc::Receiver<String>>>,
    /// The HTTP listener's address, once read from its line.
    http_address: Cell<Option<SocketAddr>>,
}

/// Options for [`Broker`]: a name for the temp directory and extra `riffle serve` flags.
#[derive(Debug, Default, Clone)]
pub struct BrokerBuilder {
    name: Option<String>,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    binary: Option<PathBuf>,
    listeners: Option<String>,
}

impl BrokerBuilder {
    /// Names the temp directory (default: the current test's name, from the thread name).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Adds flags passed to `riffle serve` after `--listen` and `--data-dir`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|arg| (*arg).to_owned()));
        self
    }

    /// Sets an environment variable for the broker process, e.g. `RIFFLE_DEFAULT_PARTITIONS`.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.envs.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts with `--listeners SPEC` instead of `--listen 127.0.0.1:0`, e.g.
    /// `PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0`. The broker must then print one
    /// `riffle listening on NAME://HOST:PORT` line per listener, plus the plain
    /// `riffle listening on HOST:PORT` line for the first; [`Broker::listener`] gives each
    /// address.
    pub fn listeners(mut self, spec: &str) -> Self {
        self.listeners = Some(spec.to_owned());
        self
    }

    /// Runs another program instead of [`broker_binary`] (the harness's own tests use a stand-in).
    pub fn binary(mut self, path: &Path) -> Self {
        self.binary = Some(path.to_owned());
        self
    }

    /// Starts the broker and waits for its listening line.
    ///
    /// # Panics
    /// If the binary is missing, the process exits early, or it prints no valid listening line
    /// within [`START_TIMEOUT`]; the message includes the broker log.
    pub fn start(self) -> Broker {
        let mut broker = self.create();
        broker.launch();
        broker
    }

    /// Makes the temp directory and its empty `data/` but starts nothing, so a test can prepare
    /// the data directory first (`riffle users add`); [`Broker::launch`] then starts it.
    ///
    /// # Panics
    /// If the temp directory cannot be made.
    pub fn create(self) -> Broker {
        let name = self.name.unwrap_or_else(current_test_name);
        let root = tempfile::Builder::new()
            .prefix(&format!("riffle-it-{name}-"))
            .tempdir()
            .expect("cannot create a temp directory for the broker");
        let data_dir = root.path().join("data");
        fs::create_dir(&data_dir)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", data_dir.display()));
        Broker {
            child: None,
            log_copiers: Vec::new(),
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            listeners: Vec::new(),
            root: Some(root),
            extra_args: self.args,
            envs: self.envs,
            binary: self.binary.unwrap_or_else(broker_binary),
            start_count: 0,
            log_tail_shown: Cell::new(false),
            first_listen: Some(match self.listeners {
                Some(spec) => Listen::Listeners(spec),
                None => Listen::Address(String::from("127.0.0.1:0")),
            }),
            stdout_lines: RefCell::new(None),
            http_address: Cell::new(None),
        }
    }
}

/// How a start tells the broker where to listen.
enum Listen {
    /// `--listen HOST:PORT`; the first stdout line is `riffle listening on HOST:PORT`.
    Address(String),
    /// `--listeners NAME://HOST:PORT,...`; one stdout line per listener, plus the plain one.
    Listeners(String),
}

impl Broker {
    /// Starts a broker with default flags on a free port and a fresh data directory.
    pub fn start() -> Broker {
        BrokerBuilder::default().start()
    }

    /// Starts a broker with extra `riffle serve` flags, e.g. `&["--auto-create-topics", "false"]`.
    pub fn start_with(args: &[&str]) -> Broker {
        BrokerBuilder::default().args(args).start()
    }

    /// Options before starting: see [`BrokerBuilder`].
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder::default()
    }

    /// The `bootstrap.servers` string: `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        self.address.to_string()
    }

    /// The address the broker listens on (with several listeners, the first one's).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The HTTP listener's address (`/metrics`, `/healthz`, `/readyz`), read from the
    /// `riffle http listening on HOST:PORT` line the running broker printed after its
    /// listening lines. Every start binds a free port (`RIFFLE_HTTP_LISTEN=127.0.0.1:0`)
    /// unless the test sets `--http-listen` itself.
    ///
    /// # Panics
    /// If the broker is not running or printed no such line; the message has the log tail.
    pub fn http_address(&self) -> SocketAddr {
        self.try_http_address(HTTP_LINE_TIMEOUT).unwrap_or_else(|| {
            self.log_tail_shown.set(true);
            panic!(
                "the broker printed no `{HTTP_LISTENING_PREFIX}HOST:PORT` line\n{}",
                self.log_tail()
            )
        })
    }

    /// The HTTP listener's address if the running broker prints its line within `wait`
    /// (see [`Broker::http_address`]); `None` for a broker started with `--http-listen none`.
    ///
    /// # Panics
    /// If the broker is not running.
    pub fn try_http_address(&self, wait: Duration) -> Option<SocketAddr> {
        if let Some(address) = self.http_address.get() {
            return Some(address);
        }
        let deadline = Instant::now() + wait;
        let lines = self.stdout_lines.borrow();
        let lines = lines
            .as_ref()
            .expect("http_address(): the broker is not running");
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let line = lines.recv_timeout(wait).ok()?;
            let address = line
                .trim_end()
                .strip_prefix(HTTP_LISTENING_PREFIX)
                .and_then(|rest| rest.parse::<SocketAddr>().ok());
            if let Some(address) = address {
                self.http_address.set(Some(address));
                return Some(address);
            }
        }
    }

    /// The address listener `name` printed (`SASL_SSL`, ...). A broker started with `--listen`
    /// has the one listener `PLAINTEXT`.
    ///
    /// # Panics
    /// If the broker has no listener `name`.
    pub fn listener(&self, name: &str) -> SocketAddr {
        if self.listeners.is_empty() && name == "PLAINTEXT" {
            return self.address;
        }
        self.listeners
            .iter()
            .find(|(listener, _)| listener == name)
            .map(|(_, address)| *address)
            .unwrap_or_else(|| {
                panic!(
                    "the broker has no listener {name}; it has {:?}",
                    self.listeners
                )
            })
    }

    /// The `bootstrap.servers` string for listener `name`: `127.0.0.1:PORT`.
    ///
    /// # Panics
    /// As [`Broker::listener`].
    pub fn bootstrap_for(&self, name: &str) -> String {
        self.listener(name).to_string()
    }

    /// The broker's `--data-dir`.
    pub fn data_dir(&self) -> PathBuf {
        self.root_path().join("data")
    }

    /// The file holding the broker's stdout and stderr, across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.root_path().join("broker.log")
    }

    /// The process id, or `None` when the broker is not running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The last lines of the broker log, framed for a panic message.
    pub fn log_tail(&self) -> String {
        self.log_tail_shown.set(true);
        let text = fs::read(self.log_path())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_else(|error| format!("<cannot read broker log: {error}>"));
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINE_COUNT)..];
        format!(
            "--- last {} lines of {} ---\n{}\n--- end of broker log ---",
            tail.len(),
            self.log_path().display(),
            tail.join("\n")
        )
    }

    /// Panics (with the log tail) unless the process is still running.
    pub fn assert_running(&mut self) {
        let child = self
            .child
            .as_mut()
            .expect("assert_running(): the broker was stopped or killed by the test");
        let state = child
            .try_wait()
            .unwrap_or_else(|error| panic!("cannot check broker process {}: {error}", child.id()));
        if let Some(status) = state {
            self.child = None;
            self.join_log_copiers();
            panic!(
                "the broker process exited unexpectedly with {status}\n{}",
                self.log_tail()
            );
        }
    }

    /// Sends SIGTERM and waits for a graceful exit with status 0.
    ///
    /// # Panics
    /// If the broker is not running, does not exit within [`STOP_TIMEOUT`] (it is then killed),
    /// or exits with a non-zero status.
    pub fn stop(&mut self) {
        let mut child = self
            .child
            .take()
            .expect("stop(): the broker is not running");
        send_signal(&child, libc::SIGTERM);
        let status = wait_with_timeout(&mut child, STOP_TIMEOUT);
        let Some(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            self.join_log_copiers();
            panic!(
                "the broker did not exit within {STOP_TIMEOUT:?} of SIGTERM (killed it)\n{}",
                self.log_tail()
            );
        };
        self.join_log_copiers();
        assert!(
            status.success(),
            "the broker exited with {status} after SIGTERM, expected exit code 0\n{}",
            self.log_tail()
        );
    }

    /// Sends SIGKILL (a crash: no flush, no shutdown) and reaps the process.
    ///
    /// # Panics
    /// If the broker is not running.
    pub fn kill(&mut self) {
        let mut child = self
            .child
            .take()
            .expect("kill(): the broker is not running");
        // std's Child::kill sends SIGKILL on Unix.
        child
            .kill()
            .unwrap_or_else(|error| panic!("cannot SIGKILL broker {}: {error}", child.id()));
        child
            .wait()
            .unwrap_or_else(|error| panic!("cannot reap broker {}: {error}", child.id()));
        self.join_log_copiers();
    }

    /// Starts a broker made by [`BrokerBuilder::create`] for the first time, on free ports, and
    /// waits for its listening lines.
    ///
    /// # Panics
    /// If the broker was started before, or does not start (see [`BrokerBuilder::start`]).
    pub fn launch(&mut self) {
        let listen = self
            .first_listen
            .take()
            .expect("launch(): the broker was started before; use restart()");
        self.address = self.spawn(&listen);
    }

    /// Starts the broker again on the same data directory and the same port.
    ///
    /// # Panics
    /// If the broker is still running (call [`Broker::stop`] or [`Broker::kill`] first), or if it
    /// does not start (see [`BrokerBuilder::start`]).
    pub fn restart(&mut self) {
        assert!(
            self.child.is_none(),
            "restart(): the broker is still running; call stop() or kill() first"
        );
        assert!(
            self.first_listen.is_none(),
            "restart(): the broker never started; call launch() first"
        );
        let listen = if self.listeners.is_empty() {
            Listen::Address(self.address.to_string())
        } else {
            let spec: Vec<String> = self
                .listeners
                .iter()
                .map(|(name, address)| format!("{name}://{address}"))
                .collect();
            Listen::Listeners(spec.join(","))
        };
        let listeners_before = self.listeners.clone();
        let address = self.spawn(&listen);
        assert_eq!(
            self.listeners,
            listeners_before,
            "the restarted broker must keep every listener's address\n{}",
            self.log_tail()
        );
        assert_eq!(
            address,
            self.address,
            "the restarted broker must listen on the old address\n{}",
            self.log_tail()
        );
    }

    fn root_path(&self) -> &Path {
        self.root
            .as_ref()
            .expect("the temp directory lives as long as the broker")
            .path()
    }

    /// Spawns `riffle serve`, copies its output into the log and returns the address it printed
    /// (the first listener's, with several).
    fn spawn(&mut self, listen: &Listen) -> SocketAddr {
        self.start_count += 1;
        let data_dir = self.data_dir();
        let mut command = Command::new(&self.binary);
        command.arg("serve");
        match listen {
            Listen::Address(address) => command.arg("--listen").arg(address),
            Listen::Listeners(spec) => command.arg("--listeners").arg(spec),
        };
        command
            .arg("--data-dir")
            .arg(&data_dir)
            .args(&self.extra_args)
            // A free port for the HTTP listener, so brokers of tests running at once never
            // clash on 9644; a test's own env or flag wins.
            .env("RIFFLE_HTTP_LISTEN", "127.0.0.1:0")
            .envs(self.envs.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut log = self.open_log();
        writeln!(log, "=== start #{}: {command:?} ===", self.start_count)
            .expect("cannot write the broker log");
        let mut child = command.spawn().unwrap_or_else(|error| {
            panic!(
                "cannot run {}: {error}; build it with `cargo build -p riffle-broker`",
                self.binary.display()
            )
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (line_sender, lines) = mpsc::channel();
        self.log_copiers
            .push(copy_to_log(stderr, self.open_log(), None));
        self.log_copiers
            .push(copy_to_log(stdout, log, Some(line_sender)));
        self.child = Some(child);
        let address = match listen {
            Listen::Address(_) => self.await_listening_line(&lines),
            Listen::Listeners(spec) => self.await_listener_lines(&lines, spec),
        };
        self.http_address.set(None);
        *self.stdout_lines.borrow_mut() = Some(lines);
        address
    }

    /// Waits for the first stdout line and parses the bound address out of it.
    fn await_listening_line(&mut self, lines: &mpsc::Receiver<String>) -> SocketAddr {
        let line = match lines.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => self.fail_start(&format!(
                "printed no line on stdout within {START_TIMEOUT:?}"
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.fail_start("closed stdout before printing its listening line")
            }
        };
        let address = line
            .trim_end()
            .strip_prefix(LISTENING_PREFIX)
            .and_then(|rest| rest.parse::<SocketAddr>().ok());
        match address {
            Some(address) if address.ip().is_loopback() && address.port() != 0 => address,
            _ => self.fail_start(&format!(
                "printed {line:?} first; expected exactly `riffle listening on 127.0.0.1:PORT`"
            )),
        }
    }

    /// Reads stdout lines until every listener in `spec` printed `riffle listening on
    /// NAME://HOST:PORT` and the plain `riffle listening on HOST:PORT` line (the first
    /// listener's address) appeared, in any order; records them and returns the first
    /// listener's address.
    fn await_listener_lines(&mut self, lines: &mpsc::Receiver<String>, spec: &str) -> SocketAddr {
        let names = listener_names(spec);
        let deadline = Instant::now() + START_TIMEOUT;
        let mut printed: Vec<(String, SocketAddr)> = Vec::new();
        let mut plain: Option<SocketAddr> = None;
        while plain.is_none()
            || names
                .iter()
                .any(|name| !printed.iter().any(|(n, _)| n == name))
        {
            let wait = deadline.saturating_duration_since(Instant::now());
            let line = match lines.recv_timeout(wait) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => self.fail_start(&format!(
                    "printed {printed:?} and plain {plain:?} within {START_TIMEOUT:?}, expected \
                     a `riffle listening on NAME://HOST:PORT` line for each of {names:?} and \
                     the plain `riffle listening on HOST:PORT` line"
                )),
                Err(mpsc::RecvTimeoutError::Disconnected) => self.fail_start(&format!(
                    "closed stdout after printing {printed:?} and plain {plain:?}, expected a \
                     line for each of {names:?}"
                )),
            };
            match parse_listening_line(&line) {
                Some(ListeningLine::Named(name, address)) if names.contains(&name) => {
                    printed.push((name, address));
                }
                Some(ListeningLine::Plain(address)) => plain = Some(address),
                _ => self.fail_start(&format!(
                    "printed {line:?}; expected only `riffle listening on NAME://HOST:PORT` \
                     lines for {names:?} and the plain `riffle listening on HOST:PORT` line"
                )),
            }
        }
        printed.sort_by_key(|(name, _)| names.iter().position(|n| n == name));
        let first = printed[0].1;
        if plain != Some(first) {
            self.fail_start(&format!(
                "printed the plain listening line for {plain:?}, expected the first listener's \
                 address {first}"
            ));
        }
        self.listeners = printed;
        first
    }

    /// Kills a broker that failed to start and panics with the reason and the log tail.
    fn fail_start(&mut self, reason: &str) -> ! {
        let status = match self.child.take() {
            Some(mut child) => {
                let exited = child.try_wait().ok().flatten();
                let _ = child.kill();
                let status = child.wait().ok();
                exited.or(status)
            }
            None => None,
        };
        self.join_log_copiers();
        let status = status.map_or_else(|| String::from("unknown"), |s| s.to_string());
        panic!(
            "{} (start #{}) {reason}; exit status: {status}\n{}",
            self.binary.display(),
            self.start_count,
            self.log_tail()
        );
    }

    fn open_log(&self) -> File {
        let path = self.log_path();
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|error| panic!("cannot open {}: {error}", path.display()))
    }

    /// Waits for the copier threads; they finish when the exited process's pipes close.
    ///
    /// A grandchild still holding the pipes (the broker never spawns one, but a wrapper
    /// script might) would keep them open forever, so after [`LOG_DRAIN_TIMEOUT`] the
    /// threads are left to finish on their own and the log may miss its last lines.
    fn join_log_copiers(&mut self) {
        let deadline = Instant::now() + LOG_DRAIN_TIMEOUT;
        while self.log_copiers.iter().any(|copier| !copier.is_finished()) {
            if Instant::now() >= deadline {
                self.log_copiers.clear();
                return;
            }
            thread::sleep(POLL_INTERVAL);
        }
        for copier in self.log_copiers.drain(..) {
            let _ = copier.join();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.join_log_copiers();
        if thread::panicking() && !self.log_tail_shown.get() {
            eprintln!("{}", self.log_tail());
        }
        if env::var_os(KEEP_DIRS_ENV).is_some()
            && let Some(root) = self.root.take()
        {
            eprintln!("kept broker directory {}", root.keep().display());
        }
    }
}

/// The `riffle` binary: `RIFFLE_BIN`, or `<target>/<profile>/riffle` next to the test's `deps/`.
///
/// # Panics
/// If the file does not exist; the message says how to build it.
pub fn broker_binary() -> PathBuf {
    let test_binary = env::current_exe().expect("cannot find the running test binary");
    find_broker_binary(env::var_os("RIFFLE_BIN").map(PathBuf::from), &test_binary)
}

/// [`broker_binary`] with its inputs passed in, so its failure messages can be tested.
fn find_broker_binary(override_path: Option<PathBuf>, test_binary: &Path) -> PathBuf {
    if let Some(path) = override_path {
        assert!(
            path.is_file(),
            "RIFFLE_BIN={} is not a file",
            path.display()
        );
        return path;
    }
    // Test binaries live in <target>/<profile>/deps/; the broker binary in <target>/<profile>/.
    let profile_dir = test_binary
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("unexpected test binary path {}", test_binary.display()));
    let path = profile_dir.join(format!("riffle{}", env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "the riffle broker binary is missing at {}: run `cargo build -p riffle-broker` first \
         (`cargo test --workspace` builds it too), or set RIFFLE_BIN to its path",
        path.display()
    );
    path
}

/// The current test's name as libtest gives it to the thread, made safe for a file name.
fn current_test_name() -> String {
    let name = thread::current().name().unwrap_or("riffle").to_owned();
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    safe.chars().take(60).collect()
}

/// The listener names of a `--listeners` spec, in order: `A://h:1,B://h:2` gives `[A, B]`.
fn listener_names(spec: &str) -> Vec<String> {
    spec.split(',')
        .map(|listener| {
            listener
                .split_once("://")
                .map_or(listener, |(name, _)| name)
                .trim()
                .to_owned()
        })
        .collect()
}

/// One `riffle listening on ...` line.
#[derive(Debug, PartialEq)]
enum ListeningLine {
    /// `riffle listening on NAME://HOST:PORT`.
    Named(String, SocketAddr),
    /// `riffle listening on HOST:PORT`.
    Plain(SocketAddr),
}

/// Reads a listening line; `None` for any other line or an address that is not a loopback
/// address with a real port.
fn parse_listening_line(line: &str) -> Option<ListeningLine> {
    let rest = line.trim_end().strip_prefix(LISTENING_PREFIX)?;
    let (name, address) = match rest.split_once("://") {
        Some((name, address)) => (Some(name), address),
        None => (None, rest),
    };
    let address: SocketAddr = address.parse().ok()?;
    if !address.ip().is_loopback() || address.port() == 0 {
        return None;
    }
    Some(match name {
        Some(name) => ListeningLine::Named(name.to_owned(), address),
        None => ListeningLine::Plain(address),
    })
}

/// Copies `pipe` into `log` line by line on a thread; each line also goes to `lines` while
/// its receiver listens.
fn copy_to_log<R: Read + Send + 'static>(
    pipe: R,
    mut log: File,
    lines: Option<mpsc::Sender<String>>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if !line.ends_with(b"\n") {
                line.push(b'\n');
            }
            // One write per line: both copiers append to the same file.
            let _ = log.write_all(&line);
            if let Some(sender) = &lines {
                // The receiver stops listening once the broker has started.
                let _ = sender.send(String::from_utf8_lossy(&line).into_owned());
            }
        }
    })
}

fn send_signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("a pid fits in pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own unreaped child.
    let result = unsafe { libc::kill(pid, signal) };
    assert_eq!(
        result,
        0,
        "kill({pid}, {signal}) failed: {}",
        std::io::Error::last_os_error()
    );
}

#[cfg(test)]
pub(crate) mod tests {
    //! The harness's own failure messages, checked against stand-in "brokers" (shell scripts).
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn missing_binary_says_how_to_build_it() {
        // Proves a missing broker binary fails with the build command, not a bare "No such file".
        let dir = tempfile::tempdir().expect("temp dir");
        let test_binary = dir.path().join("debug").join("deps").join("some_test-0123");
        let message = panic_message(|| find_broker_binary(None, &test_binary));
        assert!(
            message.contains("cargo build -p riffle-broker"),
            "{message}"
        );
        assert!(message.contains("debug/riffle"), "{message}");
        let message =
            panic_message(|| find_broker_binary(Some("/nonexistent".into()), &test_binary));
        assert!(
            message.contains("RIFFLE_BIN=/nonexistent is not a file"),
            "{message}"
        );
    }

    #[test]
    fn early_exit_shows_status_and_log() {
        // Proves a broker that dies before listening fails the test with its exit code and stderr.
        let fake = FakeBroker::new("echo 'bad flag --frobnicate' >&2; exit 3");
        let message = panic_message(|| fake.builder().start());
        assert!(
            message.contains("closed stdout before printing its listening line"),
            "{message}"
        );
        assert!(message.contains("exit status: 3"), "{message}");
        assert!(message.contains("bad flag --frobnicate"), "{message}");
    }

    #[test]
    fn wrong_first_line_is_rejected() {
        // Proves the first stdout line must be exactly the listening line.
        let fake = FakeBroker::new("echo 'starting up'; exec sleep 5");
        let message = panic_message(|| fake.builder().start());
        assert!(
            message.contains(r#"printed "starting up\n" first"#),
            "{message}"
        );
    }

    #[test]
    fn start_stop_restart_reuse_port_and_data_dir() {
        // Proves start parses the address, stop accepts exit 0 after SIGTERM, and restart passes
        // the old port back in `--listen` with the same data directory.
        let fake = FakeBroker::new(LISTENING_FAKE);
        let mut broker = fake.builder().args(&["--node-id", "7"]).start();
        assert_eq!(broker.bootstrap(), "127.0.0.1:45678");
        broker.assert_running();
        broker.stop();
        broker.restart();
        broker.kill();
        broker.restart();
        broker.stop();
        let log = fs::read_to_string(broker.log_path()).expect("log");
        assert!(log.contains("=== start #3:"), "{log}");
        assert_eq!(
            log.matches("--listen\" \"127.0.0.1:45678\"").count(),
            2,
            "{log}"
        );
        assert_eq!(log.matches("\"--node-id\" \"7\"").count(), 3, "{log}");
        assert_eq!(
            log.matches(&format!("{}", broker.data_dir().display()))
                .count(),
            3,
            "{log}"
        );
        assert!(log.contains("fake broker log line"), "{log}");
    }

    #[test]
    fn nonzero_exit_after_sigterm_fails_stop() {
        // Proves stop() insists on exit code 0 and shows the broker log when it is not.
        let fake =
            FakeBroker::new(&LISTENING_FAKE.replace("exit 0", "echo flush failed >&2; exit 1"));
        let mut broker = fake.builder().start();
        let message = panic_message(move || broker.stop());
        assert!(
            message.contains("exit status: 1 after SIGTERM, expected exit code 0"),
            "{message}"
        );
        assert!(message.contains("flush failed"), "{message}");
    }

    #[test]
    fn listeners_are_read_from_their_lines_and_kept_across_restarts() {
        // Proves a broker started with `--listeners` is ready only once every named listener
        // and the plain line printed, in any order, and that a restart passes the same ports.
        let fake = FakeBroker::new(LISTENERS_FAKE);
        let mut broker = fake
            .builder()
            .listeners("PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0")
            .start();
        assert_eq!(broker.bootstrap(), "127.0.0.1:45001");
        assert_eq!(broker.bootstrap_for("SASL_SSL"), "127.0.0.1:45002");
        broker.stop();
        broker.restart();
        assert_eq!(broker.bootstrap_for("PLAINTEXT"), "127.0.0.1:45001");
        let log = fs::read_to_string(broker.log_path()).expect("log");
        assert!(
            log.contains("\"PLAINTEXT://127.0.0.1:45001,SASL_SSL://127.0.0.1:45002\""),
            "{log}"
        );
        let message = panic_message(|| broker.listener("SSL"));
        assert!(message.contains("no listener SSL"), "{message}");
    }

    #[test]
    fn a_missing_listener_line_fails_the_start() {
        // Proves a broker that prints fewer listener lines than it was given fails the start
        // with what it did print, instead of a test talking to a port nobody announced.
        let fake = FakeBroker::new(
            "echo 'riffle listening on PLAINTEXT://127.0.0.1:45001'\n\
             echo 'riffle listening on 127.0.0.1:45001'\n\
             echo 'riffle listening on SASL_SSL://127.0.0.1:45002'\n\
             exit 0",
        );
        let message = panic_message(|| {
            fake.builder()
                .listeners("PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0,SSL://127.0.0.1:0")
                .start()
        });
        assert!(message.contains("\"SSL\""), "{message}");
        assert!(message.contains("45002"), "{message}");
    }

    #[test]
    fn listening_lines_parse() {
        // Proves both line forms parse and that non-loopback or port-0 addresses are refused.
        assert_eq!(
            parse_listening_line("riffle listening on SASL_SSL://127.0.0.1:9093\n"),
            Some(ListeningLine::Named(
                "SASL_SSL".to_owned(),
                "127.0.0.1:9093".parse().expect("address")
            ))
        );
        assert_eq!(
            parse_listening_line("riffle listening on 127.0.0.1:9092"),
            Some(ListeningLine::Plain(
                "127.0.0.1:9092".parse().expect("address")
            ))
        );
        for bad in [
            "riffle listening on SSL://127.0.0.1:0",
            "riffle listening on 10.0.0.1:9092",
            "listening on 127.0.0.1:9092",
        ] {
            assert_eq!(parse_listening_line(bad), None, "{bad}");
        }
        assert_eq!(
            listener_names("PLAINTEXT://127.0.0.1:0, SSL://127.0.0.1:0"),
            vec!["PLAINTEXT", "SSL"]
        );
    }

    /// A stand-in for `--listeners`: named lines (ports 45001, 45002, ... in the order given,
    /// or the ports passed back on a restart), the plain line last.
    const LISTENERS_FAKE: &str = r#"
trap 'exit 0' TERM
port=45001; first=""
for listener in $(echo "$3" | tr ',' ' '); do
  name="${listener%%://*}"; given="${listener##*:}"
  [ "$given" = 0 ] && given=$port
  echo "riffle listening on $name://127.0.0.1:$given"
  [ -z "$first" ] && first=$given
  port=$((port + 1))
done
echo "riffle listening on 127.0.0.1:$first"
while true; do sleep 0.05; done
"#;

    /// A stand-in that prints the listening line (port 45678 unless `--listen` names one),
    /// logs to stderr, and exits 0 on SIGTERM (trapped before it says it is listening).
    const LISTENING_FAKE: &str = r#"
trap 'exit 0' TERM
port="${3##*:}"; [ "$port" = 0 ] && port=45678
# The log line goes first: the harness may stop the fake as soon as it reads the
# listening line, before a later command runs.
echo "fake broker log line" >&2
echo "riffle listening on 127.0.0.1:$port"
while true; do sleep 0.05; done
"#;

    /// A shell script standing in for `riffle`, in its own temp directory.
    struct FakeBroker {
        dir: TempDir,
    }

    impl FakeBroker {
        fn new(body: &str) -> FakeBroker {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("riffle");
            fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write fake broker");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
            FakeBroker { dir }
        }

        fn builder(&self) -> BrokerBuilder {
            Broker::builder().binary(&self.dir.path().join("riffle"))
        }
    }

    /// Runs `f`, which must panic, and returns its panic message.
    pub(crate) fn panic_message<T>(f: impl FnOnce() -> T) -> String {
        // The closure's state is dropped right after; nothing observes it half-updated.
        let payload = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(_) => panic!("expected a panic"),
            Err(payload) => payload,
        };
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    }
}
