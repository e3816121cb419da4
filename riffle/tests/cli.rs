//! The `riffle` binary starts, prints its bound address first, and stops cleanly on
//! SIGTERM. (Its presence also makes `cargo test --workspace` build the binary that the
//! integration tests in `integration-tests/` run.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn serve_prints_bound_address_and_stops_on_sigterm() {
    let data_dir = tempfile::Builder::new()
        .prefix("serve_prints_bound_address")
        .tempdir()
        .expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_riffle"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("riffle starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut first_line = String::new();
    BufReader::new(stdout)
        .read_line(&mut first_line)
        .expect("first line");
    let address = first_line
        .trim()
        .strip_prefix("riffle listening on ")
        .expect("first line names the address");
    let port: u16 = address
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .expect("a port");
    assert_ne!(port, 0);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = child.wait().expect("riffle exits");
    assert!(exit.success(), "riffle exited with {exit}");
    assert!(
        data_dir.path().join(".riffle-clean-shutdown").exists(),
        "clean-shutdown marker written"
    );
}
