//! The shared Python virtualenv with the pinned Kafka clients, and running the test scripts.
//!
//! Several test binaries run at once, so the venv is built under an exclusive file lock
//! (`<venv>.lock`) by whichever comes first; the others wait and then find it ready. A stamp
//! file inside the venv lists the requirements it was built from: change a pin and the next run
//! rebuilds it. Nothing is ever skipped: a missing `python3`, `venv` module or package fails the
//! test with the tool's own output.

use std::env;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::Broker;
use crate::process::run_with_timeout;

/// The pinned packages. kafka-python needs `python-snappy` (built on `cramjam`), `lz4` and
/// `zstandard` for those codecs; confluent-kafka bundles librdkafka with all codecs.
pub const PYTHON_REQUIREMENTS: &[&str] = &[
    "kafka-python==3.0.11",
    "confluent-kafka==2.16.1",
    "python-snappy==0.7.3",
    "cramjam==2.14.0",
    "lz4==4.4.5",
    "zstandard==0.25.0",
];

/// How long one test script may run before it is killed. Scripts set their own client timeouts
/// well below this, so hitting it means a script hung.
pub const PYTHON_TIMEOUT: Duration = Duration::from_secs(120);

/// How long creating the venv or `pip install` may take (a cold download on a slow link).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);

/// Written inside the venv last, once everything installed and imported.
const STAMP_FILE_NAME: &str = "riffle-requirements.txt";

/// Imports every client and codec the scripts use; fails if any is missing.
const IMPORT_CHECK: &str = "import confluent_kafka, kafka, lz4.frame, snappy, zstandard\n\
import kafka.codec as codec\n\
assert codec.has_snappy() and codec.has_lz4() and codec.has_zstd(), 'kafka-python lacks a codec'";

/// The venv's interpreter, once [`python_env`] has made sure it is ready in this process.
static VENV_PYTHON: OnceLock<PathBuf> = OnceLock::new();

/// Where the venv lives: `RIFFLE_PY_VENV`, or `<workspace>/target/py-venv`.
pub fn venv_dir() -> PathBuf {
    match env::var_os("RIFFLE_PY_VENV") {
        Some(path) => PathBuf::from(path),
        None => workspace_dir().join("target").join("py-venv"),
    }
}

/// Makes sure the venv exists with [`PYTHON_REQUIREMENTS`] installed; returns its `python`.
///
/// The base interpreter is `RIFFLE_PYTHON`, or `python3` from `PATH`.
///
/// # Panics
/// If the venv cannot be created or a package cannot be installed or imported; the message
/// includes the failing tool's output.
pub fn python_env() -> PathBuf {
    VENV_PYTHON.get_or_init(|| prepare(&venv_dir())).clone()
}

/// Runs `integration-tests/python/<script> --bootstrap <broker> <args>` with the venv's python.
///
/// Returns the script's stdout (also echoed, so `--nocapture` shows it).
///
/// # Panics
/// If the script exits non-zero or runs longer than [`PYTHON_TIMEOUT`]; the message shows its
/// stdout, its stderr and the broker log tail.
pub fn run_python(broker: &Broker, script: &str, args: &[&str]) -> String {
    run_python_at(broker, &broker.bootstrap(), script, args)
}

/// [`run_python`] against `bootstrap`, one of `broker`'s listeners (see
/// [`Broker::bootstrap_for`]).
///
/// # Panics
/// As [`run_python`].
pub fn run_python_at(broker: &Broker, bootstrap: &str, script: &str, args: &[&str]) -> String {
    let path = workspace_dir()
        .join("integration-tests")
        .join("python")
        .join(script);
    assert!(path.is_file(), "no such test script: {}", path.display());
    let mut full_args = vec!["--bootstrap", bootstrap];
    full_args.extend_from_slice(args);
    run_script(&python_env(), &path, &full_args, PYTHON_TIMEOUT, || {
        broker.log_tail()
    })
}

/// Runs one script and panics with its output and `context()` unless it exits with 0.
fn run_script(
    python: &Path,
    script: &Path,
    args: &[&str],
    timeout: Duration,
    context: impl FnOnce() -> String,
) -> String {
    let mut command = Command::new(python);
    command
        .arg(script)
        .args(args)
        .env("PYTHONUNBUFFERED", "1")
        // Keep `__pycache__` out of the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let finished = run_with_timeout(&mut command, timeout);
    if !finished.succeeded() {
        panic!(
            "python script {} {args:?} {}\n--- script stdout ---\n{}\n--- script stderr ---\n{}\n{}",
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

/// The workspace root: the parent of this crate's directory.
fn workspace_dir() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .expect("integration-tests lives inside the workspace")
        .to_owned()
}

/// Takes the install lock, checks the stamp and installs if needed.
fn prepare(venv: &Path) -> PathBuf {
    let parent = venv.parent().expect("the venv path has a parent directory");
    fs::create_dir_all(parent)
        .unwrap_or_else(|error| panic!("cannot create {}: {error}", parent.display()));
    let lock_path = venv.with_extension("lock");
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
    let python = venv.join("bin").join("python");
    if !is_ready(venv, &python) {
        install(venv, &python);
    }
    python
}

/// True when the stamp lists exactly our requirements and every package still imports.
fn is_ready(venv: &Path, python: &Path) -> bool {
    let stamp = fs::read_to_string(venv.join(STAMP_FILE_NAME)).unwrap_or_default();
    if stamp != stamp_text() {
        return false;
    }
    let mut check = Command::new(python);
    check.arg("-c").arg(IMPORT_CHECK);
    run_with_timeout(&mut check, INSTALL_TIMEOUT).succeeded()
}

/// Recreates the venv from scratch, installs the pins, checks the imports, then writes the stamp.
fn install(venv: &Path, python: &Path) {
    if venv.exists() {
        fs::remove_dir_all(venv)
            .unwrap_or_else(|error| panic!("cannot remove old venv {}: {error}", venv.display()));
    }
    let base_python = env::var("RIFFLE_PYTHON").unwrap_or_else(|_| String::from("python3"));
    let mut create = Command::new(&base_python);
    create.arg("-m").arg("venv").arg(venv);
    run_install_step(
        &mut create,
        "(on Debian/Ubuntu: apt-get install python3-venv; or set RIFFLE_PYTHON)",
    );
    let mut pip = Command::new(python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
    ])
    // Wheels only: no compiler needed, and the same bits on every machine.
    .arg("--only-binary=:all:")
    .args(PYTHON_REQUIREMENTS);
    run_install_step(&mut pip, "(pip needs to reach PyPI)");
    let mut check = Command::new(python);
    check.arg("-c").arg(IMPORT_CHECK);
    run_install_step(&mut check, "(the installed packages do not import)");
    let stamp_path = venv.join(STAMP_FILE_NAME);
    fs::write(&stamp_path, stamp_text())
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", stamp_path.display()));
}

/// Runs one install command and panics with its output and `hint` if it fails.
fn run_install_step(command: &mut Command, hint: &str) {
    let description = format!("{command:?}");
    let finished = run_with_timeout(command, INSTALL_TIMEOUT);
    assert!(
        finished.succeeded(),
        "setting up the Python venv failed: {description} {} {hint}\n--- stdout ---\n{}\n\
         --- stderr ---\n{}",
        finished.describe_end(INSTALL_TIMEOUT),
        finished.stdout,
        finished.stderr
    );
}

fn stamp_text() -> String {
    let mut text = PYTHON_REQUIREMENTS.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venv_has_the_pinned_clients() {
        // Proves the shared venv builds (or is already built) and holds exactly the pinned
        // versions, with every codec kafka-python needs.
        let python = python_env();
        let mut command = Command::new(&python);
        command.arg("-c").arg(
            "import importlib.metadata as m\n\
             for name in ['kafka-python', 'confluent-kafka', 'python-snappy', 'cramjam', 'lz4', \
             'zstandard']:\n    print(f'{name}=={m.version(name)}')\n\
             import confluent_kafka\n\
             print('librdkafka', confluent_kafka.libversion()[0])",
        );
        let finished = run_with_timeout(&mut command, PYTHON_TIMEOUT);
        assert!(finished.succeeded(), "{}", finished.stderr);
        for requirement in PYTHON_REQUIREMENTS {
            assert!(
                finished.stdout.lines().any(|line| line == *requirement),
                "{requirement} not installed; pip reports:\n{}",
                finished.stdout
            );
        }
        println!("{}", finished.stdout);
    }

    #[test]
    fn failing_script_shows_its_output_and_the_context() {
        // Proves a failing script's stdout, stderr and the broker log tail all reach the panic.
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("fails.py");
        fs::write(
            &script,
            "import sys\nprint('did step 1')\nsys.exit('mismatch at 7')\n",
        )
        .expect("write script");
        let message = crate::broker::tests::panic_message(|| {
            run_script(
                Path::new("python3"),
                &script,
                &["--count", "3"],
                PYTHON_TIMEOUT,
                || String::from("<broker log tail>"),
            )
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
        let script = dir.path().join("hangs.py");
        fs::write(
            &script,
            "import time\nprint('waiting', flush=True)\ntime.sleep(60)\n",
        )
        .expect("write script");
        let message = crate::broker::tests::panic_message(|| {
            run_script(
                Path::new("python3"),
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
