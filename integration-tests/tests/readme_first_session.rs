//! The README's "A first session with the command line", run as written against a real
//! broker, so the first thing a new user copies cannot rot.

use std::process::Command;
use std::time::Duration;

use riffle_integration_tests::Broker;
use riffle_integration_tests::prometheus::http_get;
use riffle_integration_tests::readme;
use riffle_integration_tests::security::run_command;

/// How long the session's commands may take together.
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn readme_first_session_runs_as_written() {
    // Proves the README's CLI session works from an empty directory: the topic is created,
    // the three lines produced are consumed and committed for the group, `groups describe`
    // prints exactly the table the README shows, and the console it names answers.
    let text = readme::readme();
    let section = readme::subsection(&text, "## A first session with the command line", "## ");
    let blocks = readme::fenced_blocks(section);
    let kinds: Vec<&str> = blocks.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["sh", "text"],
        "the first session's blocks changed; update this test to run the new ones"
    );
    let broker = Broker::start();
    let dir = tempfile::Builder::new()
        .prefix("riffle-it-first-session-")
        .tempdir()
        .expect("temp dir");

    // The README's commands use the default bootstrap; RIFFLE_BOOTSTRAP points them here.
    let mut command = Command::new("sh");
    command
        .arg("-e")
        .arg("-c")
        .arg(&blocks[0].1)
        .current_dir(dir.path())
        .env("PATH", readme::path_with_riffle())
        .env("RIFFLE_BOOTSTRAP", broker.bootstrap());
    let output = run_command(&mut command, SESSION_TIMEOUT);
    assert_eq!(
        output.code,
        Some(0),
        "the session failed:\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.stdout,
        output.stderr
    );

    let lines: Vec<&str> = output.stdout.lines().collect();
    for value in ["order-1", "order-2", "order-3"] {
        assert!(
            lines.contains(&value),
            "{value} not consumed:\n{}",
            output.stdout
        );
    }
    assert!(
        output.stdout.contains(&blocks[1].1),
        "groups describe printed something else than the README shows:\n{}",
        output.stdout
    );
    assert!(
        output.stdout.contains("Topic: orders") && output.stdout.contains("retention.ms"),
        "topics describe printed no partitions and configs:\n{}",
        output.stdout
    );

    let (status, page) = http_get(broker.http_address(), "/");
    assert_eq!(status, 200, "the console did not answer: {page}");
    assert!(page.contains("Riffle"), "not the console:\n{page}");
}
