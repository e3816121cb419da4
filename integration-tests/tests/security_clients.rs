//! kafka-python, confluent-kafka and kafkajs over SASL_SSL with SCRAM-SHA-512 and over
//! SASL_PLAINTEXT with PLAIN: each produces, consumes in a group (subscribe) and commits.
//!
//! Every test starts a broker with all four listeners, a certificate from a CA made at test
//! time and the users added by `riffle users add` before it starts; no authorizer, so what is
//! tested is authentication alone. The scripts exit non-zero on any mismatch. kcat has its own
//! file, `security_kcat.rs`.

use riffle_integration_tests::Broker;
use riffle_integration_tests::security::{
    ALICE, BOB, ClientSecurity, Pki, run_secure_node, run_secure_python, secure_broker,
};

/// How many messages each round trip sends.
const COUNT: &str = "20";

/// A broker with alice (SCRAM-SHA-512) and bob (SCRAM-SHA-256).
fn start(pki: &Pki) -> Broker {
    secure_broker(pki, &[ALICE, BOB], &[])
}

/// Runs `script --mode roundtrip` with `security` made for this test's CA, and checks it
/// committed every message.
fn python_round_trip(
    script: &str,
    make_security: impl FnOnce(&Pki) -> ClientSecurity,
    topic: &str,
) {
    let pki = Pki::generate();
    let broker = start(&pki);
    let group = format!("{topic}-group");
    let output = run_secure_python(
        &broker,
        &make_security(&pki),
        script,
        &[
            "--mode",
            "roundtrip",
            "--topic",
            topic,
            "--group",
            &group,
            "--count",
            COUNT,
        ],
    );
    assert!(
        output.contains(&format!(
            "group {group} consumed {COUNT} messages and committed"
        )),
        "{output}"
    );
}

#[test]
fn kafka_python_scram_sha_512_over_sasl_ssl() {
    // Proves kafka-python authenticates with SCRAM-SHA-512 inside TLS (checking the broker's
    // certificate and host name against the test CA), then produces with its idempotent
    // default producer, joins a group, consumes and commits.
    python_round_trip(
        "security_kafka_python.py",
        |pki| ALICE.over_sasl_ssl(pki),
        "kafka-python-scram",
    );
}

#[test]
fn kafka_python_plain_over_sasl_plaintext() {
    // Proves kafka-python authenticates with PLAIN (the SCRAM user's password checked) on the
    // SASL_PLAINTEXT listener, then produces, joins a group, consumes and commits.
    python_round_trip(
        "security_kafka_python.py",
        |_| ALICE.over_sasl_plaintext("PLAIN"),
        "kafka-python-plain",
    );
}

#[test]
fn confluent_kafka_scram_sha_512_over_sasl_ssl() {
    // Proves confluent-kafka (librdkafka 2.16) authenticates with SCRAM-SHA-512 inside TLS,
    // then produces, joins a group, consumes and commits.
    python_round_trip(
        "security_confluent.py",
        |pki| ALICE.over_sasl_ssl(pki),
        "confluent-scram",
    );
}

#[test]
fn confluent_kafka_plain_over_sasl_plaintext() {
    // Proves confluent-kafka authenticates with PLAIN on the SASL_PLAINTEXT listener, then
    // produces, joins a group, consumes and commits.
    python_round_trip(
        "security_confluent.py",
        |_| ALICE.over_sasl_plaintext("PLAIN"),
        "confluent-plain",
    );
}

#[test]
fn confluent_kafka_scram_sha_256_over_sasl_plaintext() {
    // Proves the other SCRAM mechanism: bob, stored for SCRAM-SHA-256, authenticates with it.
    python_round_trip(
        "security_confluent.py",
        |_| BOB.over_sasl_plaintext("SCRAM-SHA-256"),
        "confluent-scram-256",
    );
}

/// Runs `security_kafkajs.js --mode roundtrip` with `security` made for this test's CA.
fn kafkajs_round_trip(make_security: impl FnOnce(&Pki) -> ClientSecurity, topic: &str) {
    let pki = Pki::generate();
    let broker = start(&pki);
    let group = format!("{topic}-group");
    let output = run_secure_node(
        &broker,
        &make_security(&pki),
        "security_kafkajs.js",
        &[
            "--mode",
            "roundtrip",
            "--topic",
            topic,
            "--group",
            &group,
            "--count",
            COUNT,
        ],
    );
    assert!(
        output.contains(&format!(
            "group {group} consumed {COUNT} messages and committed"
        )),
        "{output}"
    );
}

#[test]
fn kafkajs_scram_sha_512_over_sasl_ssl() {
    // Proves kafkajs authenticates with SCRAM-SHA-512 inside TLS, creates its topic, produces,
    // joins a group, consumes and commits (read back with admin.fetchOffsets).
    kafkajs_round_trip(|pki| ALICE.over_sasl_ssl(pki), "kafkajs-scram");
}

#[test]
fn kafkajs_plain_over_sasl_plaintext() {
    // Proves kafkajs authenticates with PLAIN on the SASL_PLAINTEXT listener, then produces,
    // joins a group, consumes and commits.
    kafkajs_round_trip(|_| ALICE.over_sasl_plaintext("PLAIN"), "kafkajs-plain");
}
