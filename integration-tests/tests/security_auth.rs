//! Wrong passwords and unknown users are refused with SASL_AUTHENTICATION_FAILED, as each real
//! client sees it, and the broker goes on serving everyone else.
//!
//! Each test runs one client through the same five bad identities (a wrong password and an
//! unknown user for SCRAM-SHA-512 over SASL_SSL and for PLAIN over SASL_PLAINTEXT, and a user
//! stored only for SCRAM-SHA-512 trying SCRAM-SHA-256), then a good round trip with the same
//! client, and checks that no password reached the broker log.

use std::fs;

use riffle_integration_tests::Broker;
use riffle_integration_tests::security::{
    ALICE, ClientSecurity, Pki, run_secure_kcat, run_secure_node, run_secure_python, secure_broker,
};

/// The wrong password every bad identity uses; it must never appear in the broker log.
const WRONG_PASSWORD: &str = "wrong-password-7f3a";

/// A user nobody added.
const UNKNOWN_USER: &str = "mallory";

/// What each test tries, with a description for failure messages.
fn bad_identities(pki: &Pki) -> Vec<(&'static str, ClientSecurity)> {
    vec![
        (
            "wrong password, SCRAM-SHA-512 over SASL_SSL",
            ClientSecurity::sasl_ssl(pki, "SCRAM-SHA-512", ALICE.name, WRONG_PASSWORD),
        ),
        (
            "unknown user, SCRAM-SHA-512 over SASL_SSL",
            ClientSecurity::sasl_ssl(pki, "SCRAM-SHA-512", UNKNOWN_USER, WRONG_PASSWORD),
        ),
        (
            "wrong password, PLAIN over SASL_PLAINTEXT",
            ClientSecurity::sasl_plaintext("PLAIN", ALICE.name, WRONG_PASSWORD),
        ),
        (
            "unknown user, PLAIN over SASL_PLAINTEXT",
            ClientSecurity::sasl_plaintext("PLAIN", UNKNOWN_USER, WRONG_PASSWORD),
        ),
        (
            "SCRAM-SHA-256 for a user stored only for SCRAM-SHA-512",
            ClientSecurity::sasl_plaintext("SCRAM-SHA-256", ALICE.name, ALICE.password),
        ),
    ]
}

/// Checks the broker is still up and its log holds neither password.
fn assert_serving_without_secrets_in_the_log(broker: &mut Broker) {
    broker.assert_running();
    let log = fs::read_to_string(broker.log_path()).expect("read the broker log");
    for secret in [WRONG_PASSWORD, ALICE.password] {
        // The harness writes the command line (no passwords on it) at the top; the rest is
        // the broker's own output.
        assert!(
            !log.contains(secret),
            "the broker log contains the password {secret:?}:\n{}",
            broker.log_tail()
        );
    }
}

#[test]
fn kafka_python_sees_sasl_authentication_failed() {
    // Proves kafka-python is refused with the broker's error code 58 for each bad identity
    // (raised, or logged by a bootstrap that then times out), that a wrong password and an
    // unknown user get the same message, and that alice still gets in afterwards.
    let pki = Pki::generate();
    let mut broker = secure_broker(&pki, &[ALICE], &[]);
    let mut messages = Vec::new();
    for (what, security) in bad_identities(&pki) {
        println!("--- {what}");
        let output = run_secure_python(
            &broker,
            &security,
            "security_kafka_python.py",
            &["--mode", "auth-failure"],
        );
        assert!(output.contains("refused as expected"), "{what}: {output}");
        let message = output
            .lines()
            .find_map(|line| line.strip_prefix("broker message: "))
            .unwrap_or_else(|| panic!("{what}: no broker message in {output}"))
            .to_owned();
        messages.push(message);
    }
    // As Kafka does, a wrong password and an unknown user read the same, so the refusal does
    // not tell an attacker which user names exist.
    assert_eq!(
        messages[0], messages[1],
        "SCRAM: the wrong-password and unknown-user refusals differ"
    );
    assert_eq!(
        messages[2], messages[3],
        "PLAIN: the wrong-password and unknown-user refusals differ"
    );
    run_secure_python(
        &broker,
        &ALICE.over_sasl_ssl(&pki),
        "security_kafka_python.py",
        &["--mode", "roundtrip", "--topic", "after-refusals"],
    );
    assert_serving_without_secrets_in_the_log(&mut broker);
}

#[test]
fn confluent_kafka_sees_sasl_authentication_failed() {
    // Proves librdkafka reports the broker's SASL_AUTHENTICATION_FAILED (as its
    // "SASL authentication error: ..." _AUTHENTICATION error) for each bad identity and gets
    // no metadata, and that alice still gets in afterwards.
    let pki = Pki::generate();
    let mut broker = secure_broker(&pki, &[ALICE], &[]);
    for (what, security) in bad_identities(&pki) {
        println!("--- {what}");
        let output = run_secure_python(
            &broker,
            &security,
            "security_confluent.py",
            &["--mode", "auth-failure"],
        );
        assert!(output.contains("refused as expected"), "{what}: {output}");
    }
    run_secure_python(
        &broker,
        &ALICE.over_sasl_ssl(&pki),
        "security_confluent.py",
        &["--mode", "roundtrip", "--topic", "after-refusals"],
    );
    assert_serving_without_secrets_in_the_log(&mut broker);
}

#[test]
fn kafkajs_sees_sasl_authentication_failed() {
    // Proves kafkajs fails to connect with KafkaJSSASLAuthenticationError after the broker
    // answered SaslAuthenticate with error code 58, for each bad identity, and that alice
    // still gets in afterwards.
    let pki = Pki::generate();
    let mut broker = secure_broker(&pki, &[ALICE], &[]);
    for (what, security) in bad_identities(&pki) {
        println!("--- {what}");
        let output = run_secure_node(
            &broker,
            &security,
            "security_kafkajs.js",
            &["--mode", "auth-failure"],
        );
        assert!(output.contains("refused as expected"), "{what}: {output}");
    }
    run_secure_node(
        &broker,
        &ALICE.over_sasl_ssl(&pki),
        "security_kafkajs.js",
        &["--mode", "roundtrip", "--topic", "after-refusals"],
    );
    assert_serving_without_secrets_in_the_log(&mut broker);
}

#[test]
fn kcat_sees_sasl_authentication_failed() {
    // Proves kcat (librdkafka 2.0.2) logs the broker's refusal as "SASL authentication error"
    // and fails to list metadata, for each bad identity, and that alice still gets in.
    let pki = Pki::generate();
    let mut broker = secure_broker(&pki, &[ALICE], &[]);
    for (what, security) in bad_identities(&pki) {
        println!("--- {what}");
        let output = run_secure_kcat(&broker, &security, &["-L", "-m", "5"]);
        assert_ne!(
            output.code,
            Some(0),
            "{what}: kcat -L succeeded: {}",
            output.stdout
        );
        assert!(
            output.stderr.contains("SASL authentication error"),
            "{what}: kcat did not report the broker's SASL_AUTHENTICATION_FAILED:\n{}",
            output.stderr
        );
    }
    let listed = run_secure_kcat(&broker, &ALICE.over_sasl_ssl(&pki), &["-L", "-m", "10"]);
    assert_eq!(
        listed.code,
        Some(0),
        "alice cannot list metadata after the refusals: {}",
        listed.stderr
    );
    assert_serving_without_secrets_in_the_log(&mut broker);
}
