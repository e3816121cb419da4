//! kcat, pinned: Debian bookworm's `kcat` 1.7.1-2 with its `librdkafka1` 2.0.2-1, unpacked into
//! `<workspace>/target/kcat` without root, and run with `LD_LIBRARY_PATH` pointing there.
//!
//! The first test that needs kcat fetches the packages with `apt-get download`, using a package
//! list of its own (`apt-get update` into `target/kcat/apt`, so neither root nor an up-to-date
//! system list is needed), unpacks them with `dpkg-deb -x`, and checks that the binary runs, is
//! the pinned version and was built with SSL and SCRAM. This happens under an exclusive file
//! lock (`kcat.lock`) because several test binaries run at once; a stamp file holds the package
//! list it was built from. Nothing is ever skipped: a machine without apt or the Debian archive
//! fails the test with the tool's own output (set `RIFFLE_KCAT` to another kcat binary there).
//!
//! This librdkafka predates 2.6.1, so its SCRAM client-final message repeats the client nonce
//! in front of the server's (librdkafka #4895); Kafka accepts that since 3.8.1, and so must we.

use std::env;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::run_with_timeout;
use crate::riffle_cli::CliOutput;

/// The Debian packages, pinned where it matters. libyajl2 (kcat's JSON output, which the tests
/// do not use) follows Debian's security updates, which replace the old version in the archive.
pub const KCAT_PACKAGES: &[&str] = &["kcat=1.7.1-2", "librdkafka1=2.0.2-1", "libyajl2"];

/// The kcat version `kcat -V` must report.
pub const KCAT_VERSION: &str = "1.7.1";

/// The librdkafka version `kcat -V` must report.
pub const KCAT_LIBRDKAFKA_VERSION: &str = "2.0.2";

/// How long one kcat command may run. Every test command bounds itself (`-e`, `-m`), so
/// hitting this means kcat hung.
pub const KCAT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long `apt-get update`, `apt-get download` or unpacking may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// Written inside the kcat directory last, once kcat runs and is the pinned version.
const STAMP_FILE_NAME: &str = "riffle-kcat.stamp";

/// The kcat binary and its library directory, once [`kcat`] made sure they are ready.
static KCAT: OnceLock<Kcat> = OnceLock::new();

/// A runnable kcat: the binary and the directory its librdkafka is loaded from.
#[derive(Debug, Clone)]
pub struct Kcat {
    /// The `kcat` executable.
    pub binary: PathBuf,
    /// `LD_LIBRARY_PATH` for it; `None` for a `RIFFLE_KCAT` binary, which brings its own.
    pub library_dir: Option<PathBuf>,
}

/// Where kcat is unpacked: `RIFFLE_KCAT_DIR`, or `<workspace>/target/kcat`.
pub fn kcat_dir() -> PathBuf {
    match env::var_os("RIFFLE_KCAT_DIR") {
        Some(path) => PathBuf::from(path),
        None => workspace_dir().join("target").join("kcat"),
    }
}

/// Makes sure the pinned kcat is unpacked and runs (or takes `RIFFLE_KCAT` as it is).
///
/// # Panics
/// If it cannot be downloaded, unpacked or run, or is not the pinned version; the message has
/// the failing tool's output.
pub fn kcat() -> Kcat {
    KCAT.get_or_init(|| match env::var_os("RIFFLE_KCAT") {
        Some(path) => Kcat {
            binary: PathBuf::from(path),
            library_dir: None,
        },
        None => prepare(&kcat_dir()),
    })
    .clone()
}

/// Runs `kcat <args>` (stdin closed) and returns how it ended; the caller checks the code.
/// The command and its output are echoed, so `--nocapture` shows them.
///
/// # Panics
/// If kcat cannot be installed or started.
pub fn run_kcat(args: &[&str]) -> CliOutput {
    let kcat = kcat();
    let mut command = kcat.command();
    command.args(args);
    let finished = run_with_timeout(&mut command, KCAT_TIMEOUT);
    println!(
        "$ kcat {}\n{}{}{}",
        args.join(" "),
        finished.stdout,
        finished.stderr,
        finished.describe_end(KCAT_TIMEOUT)
    );
    CliOutput {
        code: finished.status.and_then(|status| status.code()),
        stdout: finished.stdout,
        stderr: finished.stderr,
    }
}

impl Kcat {
    /// A command for this kcat with its library path set.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        if let Some(library_dir) = &self.library_dir {
            command.env("LD_LIBRARY_PATH", library_dir);
        }
        command
    }
}

/// Takes the install lock, checks the stamp and installs if needed.
fn prepare(dir: &Path) -> Kcat {
    let parent = dir.parent().expect("the kcat dir has a parent directory");
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
    let kcat = unpacked(dir);
    let stamp = fs::read_to_string(dir.join(STAMP_FILE_NAME)).unwrap_or_default();
    if stamp != stamp_text() || check_version(&kcat).is_err() {
        install(dir);
        if let Err(message) = check_version(&kcat) {
            panic!("kcat was unpacked into {} but {message}", dir.display());
        }
        let stamp_path = dir.join(STAMP_FILE_NAME);
        fs::write(&stamp_path, stamp_text())
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", stamp_path.display()));
    }
    kcat
}

/// Where the unpacked packages put kcat and its libraries.
fn unpacked(dir: &Path) -> Kcat {
    let root = dir.join("root");
    Kcat {
        binary: root.join("usr").join("bin").join("kcat"),
        library_dir: Some(root.join("usr").join("lib").join(multiarch_triplet())),
    }
}

/// Debian's multiarch directory name for this machine.
fn multiarch_triplet() -> &'static str {
    match env::consts::ARCH {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        other => panic!("no Debian multiarch directory known for {other}"),
    }
}

/// Downloads [`KCAT_PACKAGES`] with a private package list and unpacks them into `root/`.
fn install(dir: &Path) {
    if dir.exists() {
        fs::remove_dir_all(dir)
            .unwrap_or_else(|error| panic!("cannot remove old {}: {error}", dir.display()));
    }
    let lists = dir.join("apt").join("lists");
    let cache = dir.join("apt").join("cache");
    let debs = dir.join("debs");
    for path in [
        lists.join("partial"),
        cache.join("archives").join("partial"),
        debs.clone(),
    ] {
        fs::create_dir_all(&path)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", path.display()));
    }
    let apt = |operation: &[&str]| {
        let mut command = Command::new("apt-get");
        command
            .arg("-q")
            .arg("-o")
            .arg(format!("Dir::State::Lists={}", lists.display()))
            .arg("-o")
            .arg(format!("Dir::Cache={}", cache.display()))
            // The private lists need no lock; as root, apt keeps root for the downloads
            // instead of an `_apt` user who cannot write into target/.
            .args(["-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root"])
            .args(operation)
            .current_dir(&debs);
        command
    };
    run_install_step(&mut apt(&["update"]), "(needs apt and Debian's archive)");
    let mut download = apt(&["download"]);
    download.args(KCAT_PACKAGES);
    run_install_step(
        &mut download,
        "(a pinned version may have left the archive)",
    );
    let root = dir.join("root");
    let mut packages: Vec<PathBuf> = fs::read_dir(&debs)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", debs.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "deb"))
        .collect();
    packages.sort();
    assert_eq!(
        packages.len(),
        KCAT_PACKAGES.len(),
        "apt-get download left {packages:?} in {}, expected one .deb per {KCAT_PACKAGES:?}",
        debs.display()
    );
    for package in packages {
        let mut unpack = Command::new("dpkg-deb");
        unpack.arg("-x").arg(&package).arg(&root);
        run_install_step(&mut unpack, "(needs dpkg-deb)");
    }
}

/// Runs `kcat -V`; `Err` says what is wrong unless it runs and reports the pinned kcat and
/// librdkafka versions with SSL and SCRAM built in.
fn check_version(kcat: &Kcat) -> Result<(), String> {
    if !kcat.binary.is_file() {
        return Err(format!("{} does not exist", kcat.binary.display()));
    }
    let mut command = kcat.command();
    command.arg("-V");
    let finished = run_with_timeout(&mut command, INSTALL_TIMEOUT);
    let output = format!("{}{}", finished.stdout, finished.stderr);
    let wanted = [
        format!("Version {KCAT_VERSION}"),
        format!("librdkafka {KCAT_LIBRDKAFKA_VERSION}"),
        String::from("ssl"),
        String::from("sasl_scram"),
    ];
    if finished.succeeded() && wanted.iter().all(|word| output.contains(word.as_str())) {
        return Ok(());
    }
    let mut ldd = Command::new("ldd");
    ldd.arg(&kcat.binary);
    if let Some(library_dir) = &kcat.library_dir {
        ldd.env("LD_LIBRARY_PATH", library_dir);
    }
    let libraries = run_with_timeout(&mut ldd, INSTALL_TIMEOUT);
    Err(format!(
        "`kcat -V` {} and printed:\n{output}\nexpected it to mention {wanted:?}.\n\
         Its libraries (ldd; a `not found` names a package to add to KCAT_PACKAGES):\n{}{}",
        finished.describe_end(INSTALL_TIMEOUT),
        libraries.stdout,
        libraries.stderr
    ))
}

/// Runs one install command and panics with its output and `hint` if it fails.
fn run_install_step(command: &mut Command, hint: &str) {
    let description = format!("{command:?}");
    let finished = run_with_timeout(command, INSTALL_TIMEOUT);
    assert!(
        finished.succeeded(),
        "installing kcat failed: {description} {} {hint}; set RIFFLE_KCAT to a kcat binary \
         built with SSL and SASL instead\n--- stdout ---\n{}\n--- stderr ---\n{}",
        finished.describe_end(INSTALL_TIMEOUT),
        finished.stdout,
        finished.stderr
    );
}

fn stamp_text() -> String {
    let mut text = KCAT_PACKAGES.join("\n");
    text.push('\n');
    text
}

/// The workspace root: the parent of this crate's directory.
fn workspace_dir() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .expect("integration-tests lives inside the workspace")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kcat_is_the_pinned_build() {
        // Proves the pinned kcat installs (or is already installed) without root and runs
        // with the pinned librdkafka, built with SSL and SCRAM.
        let kcat = kcat();
        check_version(&kcat).unwrap_or_else(|message| panic!("{message}"));
    }
}
