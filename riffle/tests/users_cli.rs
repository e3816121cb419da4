//! `riffle users` as the binary: the password from a file or stdin, never echoed; list and
//! remove; a non-zero exit and a clear message when a running broker holds the directory.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `riffle users <args> --data-dir <data_dir>` with `stdin` piped in.
fn users(data_dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_riffle"))
        .arg("users")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("riffle starts");
    let mut input = child.stdin.take().expect("stdin is piped");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("riffle exits")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn users_are_added_from_a_file_or_stdin_listed_and_removed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let password_file = dir.path().join("alice.password");
    std::fs::write(&password_file, "alice-secret\n").expect("write the password file");
    let password_file = password_file.to_str().expect("UTF-8 path");

    // The form the integration tests use.
    let added = users(
        &data_dir,
        &[
            "add",
            "alice",
            "--mechanism",
            "SCRAM-SHA-512",
            "--password-file",
            password_file,
        ],
        "",
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    let from_stdin = users(
        &data_dir,
        &[
            "add",
            "bob",
            "--mechanism",
            "SCRAM-SHA-256",
            "--iterations",
            "8192",
        ],
        "bob-secret\n",
    );
    assert!(from_stdin.status.success(), "{}", text(&from_stdin.stderr));
    for output in [&added, &from_stdin] {
        let shown = text(&output.stdout) + &text(&output.stderr);
        assert!(!shown.contains("secret"), "{shown}");
    }

    let listed = users(&data_dir, &["list"], "");
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert_eq!(
        text(&listed.stdout),
        "USER   MECHANISM      ITERATIONS\n\
         alice  SCRAM-SHA-512  4096\n\
         bob    SCRAM-SHA-256  8192\n"
    );

    let removed = users(&data_dir, &["remove", "bob"], "");
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    let again = users(&data_dir, &["remove", "bob"], "");
    assert!(!again.status.success());
    assert_eq!(
        text(&again.stderr),
        "riffle: user 'bob' has no SCRAM credentials\n"
    );

    let empty = users(
        &data_dir,
        &["add", "carol", "--mechanism", "SCRAM-SHA-256"],
        "\n",
    );
    assert!(!empty.status.success());
    assert_eq!(
        text(&empty.stderr),
        "riffle: the password from stdin is empty\n"
    );
    let unknown_mechanism = users(&data_dir, &["add", "carol", "--mechanism", "PLAIN"], "pw");
    assert!(!unknown_mechanism.status.success());
    assert!(text(&unknown_mechanism.stderr).contains("SCRAM-SHA-256 or SCRAM-SHA-512"));
}

#[test]
fn a_running_broker_keeps_users_out_of_its_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut broker, first_line) = common::serve(dir.path());
    assert!(
        first_line.starts_with("riffle listening on "),
        "{first_line}"
    );
    let refused = users(
        dir.path(),
        &["add", "alice", "--mechanism", "SCRAM-SHA-512"],
        "alice-secret",
    );
    broker.kill().expect("stop the broker");
    broker.wait().expect("the broker exits");
    assert_eq!(refused.status.code(), Some(1));
    let message = text(&refused.stderr);
    assert!(message.contains("is in use"), "{message}");
    assert!(message.contains("stop it first"), "{message}");
    assert!(!message.contains("alice-secret"), "{message}");
}
