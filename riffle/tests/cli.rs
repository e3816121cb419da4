//! The `riffle` binary starts, prints its bound address first, and stops cleanly on
//! SIGTERM. (Its presence also makes `cargo test --workspace` build the binary that the
//! integration tests in `integration-tests/` run.)

mod common;

use std::process::Command;

#[test]
fn serve_prints_bound_address_and_stops_on_sigterm() {
    let data_dir = tempfile::Builder::new()
        .prefix("serve_prints_bound_address")
        .tempdir()
        .expect("temp dir");
    let (mut child, first_line) = common::serve(data_dir.path());
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
