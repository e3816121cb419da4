//! The shared Node.js environment with the pinned kafkajs, and running the kafkajs test scripts.
//!
//! `integration-tests/node/package.json` pins kafkajs and `package-lock.json` locks it. The first
//! test that needs it copies both into `<workspace>/target/node-env` and runs `npm ci` there,
//! under an exclusive file lock (`node-env.lock`) because several test binaries run at once; the
//! others wait and then find it ready. A stamp file holds the manifest and lock it was built
//! from: change either and the next run reinstalls. Nothing is ever skipped: a missing `node` or
//! `npm`, or a failed install, fails the test with the tool's own output.

use std::env;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::Broker;
use crate::process::run_with_timeout;

/// The kafkajs version `package.json` pins; checked against what `npm ci` installed.
pub const KAFKAJS_VERSION: &str = "2.2.4";

/// How long one test script may run before it is killed. Each script exits by itself after 60
/// seconds, so hitting this means node itself hung.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(90);

/// How long `npm ci` may take (a cold download on a slow link).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// Written inside the environment last, once `npm ci` succeeded and kafkajs loads.
const STAMP_FILE_NAME: &str = "riffle-node-env.stamp";

/// Loads kafkajs and prints its version; fails if it is missing.
const LOAD_CHECK: &str = "require('kafkajs'); \
     console.log(require('kafkajs/package.json').version)";

/// The environment's `node_modules`, once [`node_env`] has made sure it is ready.
static NODE_MODULES: OnceLock<PathBuf> = OnceLock::new();

/// Where the environment lives: `RIFFLE_NODE_ENV`, or `<workspace>/target/node-env`.
pub fn node_env_dir() -> PathBuf {
    match env::var_os("RIFFLE_NODE_ENV") {
        Some(path) => PathBuf::from(path),
        None => workspace_dir().join("target").join("node-env"),
    }
}

/// Makes sure the environment holds the locked kafkajs; returns its `node_modules` directory.
///
/// # Panics
/// If `node` or `npm` cannot run or `npm ci` fails; the message includes npm's output.
pub fn node_env() -> PathBuf {
    NODE_MODULES
        .get_or_init(|| prepare(&node_env_dir()))
        .clone()
}

/// Runs `node integration-tests/node/<script> --bootstrap <broker> <args>` with `NODE_PATH`
/// pointing at [`node_env`].
///
/// Returns the script's stdout (also echoed, so `--nocapture` shows it).
///
/// # Panics
/// If the script exits non-zero or runs longer than [`NODE_TIMEOUT`]; the message shows its
/// stdout, its stderr and the broker log tail.
pub fn run_node(broker: &Broker, script: &str, args: &[&str]) -> String {
    run_node_at(broker, &broker.bootstrap(), script, args)
}

/// [`run_node`] against `bootstrap`, one of `broker`'s listeners (see
/// [`Broker::bootstrap_for`]).
///
/// # Panics
/// As [`run_node`].
pub fn run_node_at(broker: &Broker, bootstrap: &str, script: &str, args: &[&str]) -> String {
    let path = source_dir().join(script);
    assert!(path.is_file(), "no such test script: {}", path.display());
    let mut full_args = vec!["--bootstrap", bootstrap];
    full_args.extend_from_slice(args);
    run_script(&node_env(), &path, &full_args, NODE_TIMEOUT, || {
        broker.log_tail()
    })
}

/// Runs one script and panics with its output and `context()` unless it exits with 0.
fn run_script(
    node_modules: &Path,
    script: &Path,
    args: &[&str],
    timeout: Duration,
    context: impl FnOnce() -> String,
) -> String {
    let mut command = Command::new(node_binary());
    command
        .arg(script)
        .args(args)
        .env("NODE_PATH", node_modules);
    let finished = run_with_timeout(&mut command, timeout);
    if !finished.succeeded() {
        panic!(
            "node script {} {args:?} {}\n--- script stdout ---\n{}\n--- script stderr ---\n{}\n{}",
            script.display(),
            finished.describe_end(timeout),
            finished.stdout,
            finished.stderr,
            context()
        );
    }
    print!("{}", finished.stdout);
    finished.stdout
}

/// `RIFFLE_NODE`, or `node` from `PATH`.
fn node_binary() -> String {
    env::var("RIFFLE_NODE").unwrap_or_else(|_| String::from("node"))
}

/// The workspace root: the parent of this crate's directory.
fn workspace_dir() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .expect("integration-tests lives inside the workspace")
        .to_owned()
}

/// `integration-tests/node/`: the scripts, `package.json` and `package-lock.json`.
fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// Takes the install lock, checks the stamp and installs if needed.
fn prepare(dir: &Path) -> PathBuf {
    let parent = dir
        .parent()
        .expect("the node env path has a parent directory");
    fs::create_dir_all(parent)
        .unwrap_or_else(|error| panic!("cannot create {}: {error}", parent.display()));
    let lock_path = dir.with_extension("lock");
    let lock_file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .unwrap_or_else(|error| panic!("cannot open {}: {error}", lock_path.display()));
    // Blocks while another test binary installs; released when `lock_file` drops.
    lock_file
        .lock()
        .unwrap_or_else(|error| panic!("cannot lock {}: {error}", lock_path.display()));
    let node_modules = dir.join("node_modules");
    let stamp = stamp_text();
    if !is_ready(dir, &node_modules, &stamp) {
        install(dir, &node_modules, &stamp);
    }
    node_modules
}

/// True when the stamp matches the current manifest and lock and kafkajs still loads.
fn is_ready(dir: &Path, node_modules: &Path, stamp: &str) -> bool {
    let current = fs::read_to_string(dir.join(STAMP_FILE_NAME)).unwrap_or_default();
    current == stamp && loaded_version(node_modules).as_deref() == Some(KAFKAJS_VERSION)
}

/// The kafkajs version node loads from `node_modules`, if it loads at all.
fn loaded_version(node_modules: &Path) -> Option<String> {
    let mut check = Command::new(node_binary());
    check
        .arg("-e")
        .arg(LOAD_CHECK)
        .env("NODE_PATH", node_modules);
    let finished = run_with_timeout(&mut check, INSTALL_TIMEOUT);
    finished
        .succeeded()
        .then(|| finished.stdout.trim().to_owned())
}

/// Recreates the environment from scratch with `npm ci`, checks kafkajs, then writes the stamp.
fn install(dir: &Path, node_modules: &Path, stamp: &str) {
    if dir.exists() {
        fs::remove_dir_all(dir).unwrap_or_else(|error| {
            panic!("cannot remove old node env {}: {error}", dir.display())
        });
    }
    fs::create_dir_all(dir)
        .unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
    for name in ["package.json", "package-lock.json"] {
        let from = source_dir().join(name);
        fs::copy(&from, dir.join(name))
            .unwrap_or_else(|error| panic!("cannot copy {}: {error}", from.display()));
    }
    let mut version = Command::new(node_binary());
    version.arg("--version");
    run_install_step(&mut version, "(install Node.js 18+ or set RIFFLE_NODE)");
    let npm = env::var("RIFFLE_NPM").unwrap_or_else(|_| String::from("npm"));
    let mut npm_ci = Command::new(npm);
    npm_ci
        .arg("ci")
        .arg("--prefix")
        .arg(dir)
        .args(["--no-audit", "--no-fund", "--loglevel=warn"]);
    run_install_step(
        &mut npm_ci,
        "(npm needs to reach its registry; set RIFFLE_NPM to use another npm)",
    );
    let loaded = loaded_version(node_modules);
    assert!(
        loaded.as_deref() == Some(KAFKAJS_VERSION),
        "after npm ci in {}, node loads kafkajs {loaded:?}, expected {KAFKAJS_VERSION}",
        dir.display()
    );
    let stamp_path = dir.join(STAMP_FILE_NAME);
    fs::write(&stamp_path, stamp)
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", stamp_path.display()));
}

/// Runs one install command and panics with its output and `hint` if it fails.
fn run_install_step(command: &mut Command, hint: &str) {
    let description = format!("{command:?}");
    let finished = run_with_timeout(command, INSTALL_TIMEOUT);
    assert!(
        finished.succeeded(),
        "setting up the Node.js environment failed: {description} {} {hint}\n\
         --- stdout ---\n{}\n--- stderr ---\n{}",
        finished.describe_end(INSTALL_TIMEOUT),
        finished.stdout,
        finished.stderr
    );
}

/// The manifest and the lock, verbatim: any change to either means a reinstall.
fn stamp_text() -> String {
    let mut text = String::new();
    for name in ["package.json", "package-lock.json"] {
        let path = source_dir().join(name);
        let contents = fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        text.push_str(&format!("--- {name}\n{contents}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_env_has_the_pinned_kafkajs() {
        // Proves the shared Node.js environment builds (or is already built) from the lock file
        // and loads exactly the pinned kafkajs.
        let node_modules = node_env();
        assert_eq!(
            loaded_version(&node_modules).as_deref(),
            Some(KAFKAJS_VERSION)
        );
    }

    #[test]
    fn failing_script_shows_its_output_and_the_context() {
        // Proves a failing script's stdout, stderr and the broker log tail all reach the panic.
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("fails.js");
        fs::write(
            &script,
            "console.log('did step 1'); console.error('FAIL: mismatch at 7'); process.exit(1);\n",
        )
        .expect("write script");
        let message = crate::broker::tests::panic_message(|| {
            run_script(dir.path(), &script, &["--count", "3"], NODE_TIMEOUT, || {
                String::from("<broker log tail>")
            })
        });
        assert!(message.contains("exited with exit status: 1"), "{message}");
        assert!(message.contains(r#"["--count", "3"]"#), "{message}");
        assert!(message.contains("did step 1"), "{message}");
        assert!(message.contains("mismatch at 7"), "{message}");
        assert!(message.contains("<broker log tail>"), "{message}");
    }

    #[test]
    fn hung_script_is_killed_at_the_timeout() {
        // Proves a script that hangs is killed and reported instead of hanging the suite.
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("hangs.js");
        fs::write(
            &script,
            "console.log('waiting'); setTimeout(() => {}, 60000);\n",
        )
        .expect("write script");
        let message = crate::broker::tests::panic_message(|| {
            run_script(
                dir.path(),
                &script,
                &[],
                Duration::from_secs(2),
                String::new,
            )
        });
        assert!(
            message.contains("was killed after running longer than 2s"),
            "{message}"
        );
        assert!(message.contains("waiting"), "{message}");
    }
}
