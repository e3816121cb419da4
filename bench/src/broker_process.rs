//! A `riffle` broker run as a child process, and the CPU and memory it uses.
//!
//! CPU and RSS come from `/proc/<pid>` so that they are the broker's own, not the load
//! generator's (which shares the machine).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};

/// A running broker: its process, the addresses it listens on, and its data directory.
pub struct BrokerProcess {
    child: Child,
    /// The first listener's address.
    pub bootstrap: String,
    /// Every listener's name and bound address (`PLAINTEXT`, `127.0.0.1:40123`), in the
    /// order they were asked for.
    pub listeners: Vec<(String, String)>,
}

/// The start of every line the broker prints for its listeners on stdout.
const LISTENING_PREFIX: &str = "riffle listening on ";

impl BrokerProcess {
    /// Start `binary serve` on an ephemeral port over `data_dir` and wait for its first
    /// stdout line, `riffle listening on ADDR`. Extra flags go after ours.
    pub fn start(binary: &Path, data_dir: &Path, extra_args: &[String]) -> Result<Self> {
        let listen = ["--listen".to_string(), "127.0.0.1:0".to_string()];
        // Only the first line: a broker built before --listeners prints no other.
        Self::spawn(binary, data_dir, &listen, 0, extra_args)
    }

    /// Start `binary serve` with one listener per name in `listener_names` (`PLAINTEXT`,
    /// `SASL_SSL`, ...), each on an ephemeral loopback port, and read every listener's
    /// bound address from the lines it prints. Extra flags (TLS files, SASL mechanisms)
    /// go after ours.
    pub fn start_with_listeners(
        binary: &Path,
        data_dir: &Path,
        listener_names: &[&str],
        extra_args: &[String],
    ) -> Result<Self> {
        let listeners: Vec<String> = listener_names
            .iter()
            .map(|name| format!("{name}://127.0.0.1:0"))
            .collect();
        let flags = ["--listeners".to_string(), listeners.join(",")];
        Self::spawn(binary, data_dir, &flags, listener_names.len(), extra_args)
    }

    /// Spawns the broker and reads its first stdout line, then `listener_lines` lines of
    /// `riffle listening on NAME://ADDR`.
    fn spawn(
        binary: &Path,
        data_dir: &Path,
        listen_args: &[String],
        listener_lines: usize,
        extra_args: &[String],
    ) -> Result<Self> {
        let mut child = Command::new(binary)
            .arg("serve")
            .args(listen_args)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--log-level")
            .arg("warn")
            .args(extra_args)
            // A free HTTP port, so benchmark brokers never clash on 9644; an environment
            // variable, which a broker built before --http-listen ignores.
            .env("RIFFLE_HTTP_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take().context("the broker has no stdout")?;
        // One reader for every line: a second one would lose what the first buffered.
        let mut stdout = BufReader::new(stdout);
        let bootstrap = read_listening_line(&mut stdout)?;
        let mut listeners = Vec::with_capacity(listener_lines);
        for _ in 0..listener_lines {
            let line = read_listening_line(&mut stdout)?;
            let (name, address) = line
                .split_once("://")
                .ok_or_else(|| anyhow!("no NAME://ADDR in the broker's line {line:?}"))?;
            listeners.push((name.to_string(), address.to_string()));
        }
        Ok(Self {
            child,
            bootstrap,
            listeners,
        })
    }

    /// The bound address of the listener called `name`.
    pub fn listener(&self, name: &str) -> Result<&str> {
        self.listeners
            .iter()
            .find(|(listener, _)| listener == name)
            .map(|(_, address)| address.as_str())
            .ok_or_else(|| anyhow!("the broker printed no {name} listener"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU and peak memory since the last [`BrokerProcess::reset_peak_rss`].
    pub fn usage(&self) -> Result<ProcUsage> {
        ProcUsage::read(self.pid())
    }

    /// Runs `work`, with the broker's CPU over it and its peak RSS (reset first).
    pub fn usage_over<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<(T, ProcUsage)> {
        self.reset_peak_rss();
        let before = self.usage()?;
        let result = work()?;
        let after = self.usage()?;
        Ok((
            result,
            ProcUsage {
                cpu_seconds: after.cpu_seconds - before.cpu_seconds,
                peak_rss_bytes: after.peak_rss_bytes,
            },
        ))
    }

    /// Reset VmHWM so the next [`ProcUsage::peak_rss_bytes`] is per scenario. Writing 5 to
    /// `clear_refs` does this for our own child (Linux 4.0+); if it fails the peak is the
    /// process lifetime's, which is only ever higher, so the figure stays conservative.
    pub fn reset_peak_rss(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5");
    }

    /// SIGTERM and wait: the broker flushes and writes its clean-shutdown marker.
    pub fn stop(mut self) -> Result<()> {
        // SAFETY: kill(2) on our own child's pid, which we have not yet reaped.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGTERM) };
        if rc != 0 {
            bail!(
                "cannot signal the broker: {}",
                std::io::Error::last_os_error()
            );
        }
        let status = self.child.wait().context("cannot wait for the broker")?;
        if !status.success() {
            bail!("the broker exited with {status} on SIGTERM");
        }
        Ok(())
    }

    /// SIGKILL and reap: an unclean stop, as after a crash.
    pub fn kill9(mut self) -> Result<()> {
        self.child.kill().context("cannot kill the broker")?;
        self.child.wait().context("cannot wait for the broker")?;
        Ok(())
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        // Only reached on error paths; never leave a broker behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `riffle listening on ...` line of the broker's stdout, without that prefix.
fn read_listening_line(stdout: &mut impl BufRead) -> Result<String> {
    let mut line = String::new();
    let read = stdout
        .read_line(&mut line)
        .context("cannot read the broker's stdout")?;
    if read == 0 {
        bail!("the broker closed its stdout before printing its listeners");
    }
    line.trim()
        .strip_prefix(LISTENING_PREFIX)
        .map(str::to_string)
        .ok_or_else(|| anyhow!("unexpected line from the broker: {line:?}"))
}

/// The `riffle` binary: `--riffle-bin` if given, else the one next to our own executable
/// (cargo puts both in target/<profile>/). Under `cargo run` it is built first, with our
/// profile and target directory, so a fresh clone needs one command and a changed broker
/// is never benchmarked stale.
pub fn find_riffle_binary(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let exe = std::env::current_exe().context("cannot find our own executable")?;
    let sibling = exe.with_file_name("riffle");
    if let Some(cargo) = std::env::var_os("CARGO") {
        build_riffle(Path::new(&cargo), &exe)?;
    }
    if sibling.is_file() {
        return Ok(sibling);
    }
    bail!(
        "no riffle binary at {}; build it first with `cargo build --release -p riffle-broker` \
         (same target dir as riffle-bench) or pass --riffle-bin",
        sibling.display()
    )
}

/// `cargo build -p riffle-broker` into the target directory and profile `exe` was built in.
fn build_riffle(cargo: &Path, exe: &Path) -> Result<()> {
    let profile_dir = exe.parent().context("our executable has no directory")?;
    let target_dir = profile_dir
        .parent()
        .context("our executable is not in target/<profile>/")?;
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") => "dev",
        Some(name) => name,
        None => bail!("cannot tell our build profile from {}", exe.display()),
    };
    let workspace_manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    eprintln!("riffle-bench: building riffle (cargo build --profile {profile} -p riffle-broker)");
    let status = Command::new(cargo)
        .arg("build")
        .arg("--quiet")
        .arg("--profile")
        .arg(profile)
        .arg("-p")
        .arg("riffle-broker")
        .arg("--bin")
        .arg("riffle")
        .arg("--manifest-path")
        .arg(&workspace_manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .with_context(|| format!("cannot run {}", cargo.display()))?;
    if !status.success() {
        bail!("building riffle failed ({status})");
    }
    Ok(())
}

/// A process's CPU time so far and its peak resident set.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcUsage {
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
}

impl ProcUsage {
    pub fn read(pid: u32) -> Result<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
        // The command name (field 2) may hold spaces; fields are counted after its ')'.
        let after_name = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .context("malformed /proc/<pid>/stat")?;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat; here indexes 11 and 12.
        let ticks = |index: usize| -> Result<u64> {
            fields
                .get(index)
                .context("short /proc/<pid>/stat")?
                .parse::<u64>()
                .context("non-numeric CPU time in /proc/<pid>/stat")
        };
        let total_ticks = ticks(11)? + ticks(12)?;
        // SAFETY: sysconf has no preconditions.
        let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if ticks_per_second <= 0 {
            bail!("sysconf(_SC_CLK_TCK) failed");
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("cannot read /proc/{pid}/status"))?;
        let peak_rss_kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .context("no VmHWM in /proc/<pid>/status")?;
        Ok(Self {
            cpu_seconds: total_ticks as f64 / ticks_per_second as f64,
            peak_rss_bytes: peak_rss_kib * 1024,
        })
    }
}
