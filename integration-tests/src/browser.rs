//! Debian's chromium, headless, for the web console's tests: load a page, let its script
//! run, and return the DOM it built. CI installs the `chromium` package (`.ci/run`); a
//! machine without it fails the test with a message naming the package, never skips it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where Debian's `chromium` package puts the browser.
pub const CHROMIUM_PATH: &str = "/usr/bin/chromium";
/// Milliseconds of page time (timers, fetches) chromium runs a page for before dumping
/// it; virtual time, so idle waits cost nothing real.
pub const PAGE_VIRTUAL_TIME_BUDGET_MS: u32 = 4000;
/// How long one chromium run may take in real time.
pub const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

/// The chromium binary.
///
/// # Panics
/// If it is not installed, naming the package to install.
pub fn chromium() -> PathBuf {
    let path = PathBuf::from(CHROMIUM_PATH);
    assert!(
        path.exists(),
        "{CHROMIUM_PATH} is missing: the web console's tests need Debian's chromium package \
         (apt-get install chromium; .ci/run installs it)"
    );
    path
}

/// Loads `url` in a fresh headless chromium and returns the DOM after its scripts ran.
///
/// # Panics
/// If chromium is missing, fails or takes longer than [`CHROMIUM_TIMEOUT`].
pub fn dump_dom(url: &str) -> String {
    let output = run(&["--dump-dom", url]);
    String::from_utf8(output).expect("chromium prints the DOM in UTF-8")
}

/// Saves a `width`x`height` screenshot of `url` to `png`.
///
/// # Panics
/// As [`dump_dom`].
pub fn screenshot(url: &str, png: &Path, width: u32, height: u32) {
    let screenshot = format!("--screenshot={}", png.display());
    let size = format!("--window-size={width},{height}");
    run(&[&screenshot, &size, "--hide-scrollbars", url]);
}

/// Runs chromium with the flags every run needs (no sandbox as root in CI, no network
/// besides the page's, a throwaway profile) and `arguments`; returns its stdout.
fn run(arguments: &[&str]) -> Vec<u8> {
    let profile = tempfile::Builder::new()
        .prefix("riffle-chromium-")
        .tempdir()
        .expect("a temp dir for the chromium profile");
    let budget = format!("--virtual-time-budget={PAGE_VIRTUAL_TIME_BUDGET_MS}");
    let user_data_dir = format!("--user-data-dir={}", profile.path().display());
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            &user_data_dir,
            &budget,
        ])
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("start {CHROMIUM_PATH}: {error}"));
    // Read both pipes as chromium writes, so a large DOM cannot fill a pipe and stall it.
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        match child.try_wait().expect("wait for chromium") {
            Some(status) => break status,
            None if started.elapsed() > CHROMIUM_TIMEOUT => {
                let _ = child.kill();
                panic!("chromium took longer than {CHROMIUM_TIMEOUT:?} on {arguments:?}");
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let stdout = stdout.join().expect("the stdout reader");
    let stderr = stderr.join().expect("the stderr reader");
    assert!(
        status.success(),
        "chromium failed ({status}) on {arguments:?}:\n{}",
        String::from_utf8_lossy(&stderr)
    );
    stdout
}

fn read_in_background<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}
