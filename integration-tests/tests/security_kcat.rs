//! kcat 1.7.1 (Debian's, with its librdkafka 2.0.2; see `kcat.rs` for how it is installed)
//! over SASL_SSL with SCRAM-SHA-512 and over SASL_PLAINTEXT with PLAIN: it produces, consumes
//! in a group (`-G`), and commits when it leaves (auto commit, kcat's default), as a user runs it.
//!
//! This librdkafka sends the SCRAM client-final nonce as the client nonce followed by the whole
//! server nonce (which already starts with the client nonce), as every librdkafka before 2.6.1
//! does; Kafka accepts that since 3.8.1, so the SCRAM test proves we do too.

use std::fs;

use riffle_integration_tests::Broker;
use riffle_integration_tests::security::{
    ALICE, BOB, ClientSecurity, Pki, run_secure_kcat, run_secure_python, secure_broker,
};

/// How many messages each round trip sends.
const COUNT: usize = 20;

/// Produces [`COUNT`] keyed messages with `kcat -P`, reads them with `kcat -G` (which commits
/// as it closes), checks a second `kcat -G` in the group finds nothing left, and that
/// OffsetFetch (confluent-kafka, same identity) gives the end offset.
fn kcat_round_trip(broker: &Broker, security: &ClientSecurity, topic: &str) {
    let group = format!("{topic}-group");
    let expected: Vec<String> = (0..COUNT)
        .map(|index| format!("{topic}-key-{index}:{topic}-value-{index}"))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("messages.txt");
    fs::write(&input, expected.join("\n") + "\n").expect("write the messages");
    let input = input.to_str().expect("a UTF-8 path");

    let produced = run_secure_kcat(
        broker,
        security,
        &["-P", "-t", topic, "-p", "0", "-K", ":", "-l", input],
    );
    assert_eq!(
        produced.code,
        Some(0),
        "kcat -P failed: {}\n{}",
        produced.stderr,
        broker.log_tail()
    );

    let consume_args = [
        "-X",
        "auto.offset.reset=earliest",
        "-e",
        "-q",
        "-f",
        "%k:%s\\n",
        "-G",
        &group,
        topic,
    ];
    let consumed = run_secure_kcat(broker, security, &consume_args);
    assert_eq!(
        consumed.code,
        Some(0),
        "kcat -G failed: {}\n{}",
        consumed.stderr,
        broker.log_tail()
    );
    let lines: Vec<&str> = consumed.stdout.lines().collect();
    assert_eq!(
        lines, expected,
        "kcat -G {group} read the wrong messages; stderr: {}",
        consumed.stderr
    );

    let again = run_secure_kcat(broker, security, &consume_args);
    assert_eq!(
        again.code,
        Some(0),
        "second kcat -G failed: {}",
        again.stderr
    );
    assert_eq!(
        again.stdout, "",
        "the group's commit was lost: a second kcat -G {group} read messages again"
    );
    let count = COUNT.to_string();
    run_secure_python(
        broker,
        security,
        "security_confluent.py",
        &[
            "--mode",
            "committed",
            "--topic",
            topic,
            "--group",
            &group,
            "--expect",
            &count,
        ],
    );
}

#[test]
fn kcat_scram_sha_512_over_sasl_ssl() {
    // Proves kcat (librdkafka 2.0.2, with its pre-2.6.1 SCRAM client-final nonce) authenticates
    // with SCRAM-SHA-512 inside TLS, checking the broker's certificate and host name against
    // the test CA, then produces, consumes in a group and commits.
    let pki = Pki::generate();
    let broker = secure_broker(&pki, &[ALICE, BOB], &[]);
    kcat_round_trip(&broker, &ALICE.over_sasl_ssl(&pki), "kcat-scram");
}

#[test]
fn kcat_plain_over_sasl_plaintext() {
    // Proves kcat authenticates with PLAIN on the SASL_PLAINTEXT listener, then produces,
    // consumes in a group and commits.
    let pki = Pki::generate();
    let broker = secure_broker(&pki, &[ALICE, BOB], &[]);
    kcat_round_trip(&broker, &ALICE.over_sasl_plaintext("PLAIN"), "kcat-plain");
}

#[test]
fn kcat_over_plaintext_as_a_control() {
    // Proves the kcat commands themselves (produce, group consume with -e, commit on close)
    // work against this broker without security, so a failure in the tests above is about
    // security, not about how kcat is driven.
    let broker = Broker::start_with(&["--group-initial-rebalance-delay-ms", "0"]);
    kcat_round_trip(&broker, &ClientSecurity::plaintext(), "kcat-plaintext");
}
