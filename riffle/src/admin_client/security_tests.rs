//! The admin client against a real broker's TLS and SASL listeners: each SASL mechanism
//! over TLS, a refused password, a disabled mechanism, an untrusted certificate, turned-off
//! verification, and mutual TLS, each configured through a properties file's text.

use super::{AdminClient, AdminClientError};
use crate::client_config::ClientConfig;
use riffle_server::security::ScramMechanism;
use riffle_server::security::test_pki::TestPki;
use riffle_server::testing::ServingBroker;

/// A broker with SASL_SSL, SASL_PLAINTEXT and SSL listeners (the last asking for client
/// certificates), every mechanism, and alice (SCRAM-SHA-512) and bob (SCRAM-SHA-256).
fn secure_broker(pki: &TestPki, mechanisms: &str) -> ServingBroker {
    let path = |name: &str| pki.path(name).display().to_string();
    let broker = ServingBroker::start(&[
        "--listeners",
        "SASL_SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
        "--ssl-certificate",
        &path("server.pem"),
        "--ssl-key",
        &path("server.key"),
        "--ssl-client-auth",
        "requested",
        "--ssl-truststore",
        &path("ca.pem"),
        "--sasl-enabled-mechanisms",
        mechanisms,
        "--connection-failed-authentication-delay-ms",
        "0",
    ]);
    broker.add_user("alice", "alice-secret", ScramMechanism::Sha512);
    broker.add_user("bob", "bob-secret", ScramMechanism::Sha256);
    broker
}

fn connect(
    broker: &ServingBroker,
    listener: &str,
    properties: &str,
) -> Result<AdminClient, AdminClientError> {
    let config = ClientConfig::parse(properties).expect("valid properties");
    AdminClient::connect_with(&broker.bootstrap(listener), &config)
}

fn sasl_ssl(pki: &TestPki, mechanism: &str, user: &str, password: &str) -> String {
    format!(
        "security.protocol=SASL_SSL\nsasl.mechanism={mechanism}\nsasl.username={user}\n\
         sasl.password={password}\nssl.ca.location={}\n",
        pki.ca().display()
    )
}

#[test]
fn each_mechanism_logs_in_over_tls_and_requests_are_served() {
    // SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN over SASL_SSL, SCRAM over SASL_PLAINTEXT: after
    // the login, ListGroups is answered.
    let pki = TestPki::new();
    let broker = secure_broker(&pki, "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512");
    let logins = [
        ("SCRAM-SHA-512", "alice", "alice-secret"),
        ("SCRAM-SHA-256", "bob", "bob-secret"),
        ("PLAIN", "alice", "alice-secret"),
    ];
    for (mechanism, user, password) in logins {
        let mut client = connect(
            &broker,
            "SASL_SSL",
            &sasl_ssl(&pki, mechanism, user, password),
        )
        .unwrap_or_else(|error| panic!("{mechanism} as {user}: {error}"));
        client.list_groups().expect("served after the login");
    }
    let plaintext = "security.protocol=SASL_PLAINTEXT\nsasl.mechanisms=SCRAM-SHA-512\n\
                     sasl.username=alice\nsasl.password=alice-secret\n";
    let mut client = connect(&broker, "SASL_PLAINTEXT", plaintext).expect("SASL_PLAINTEXT");
    client.list_groups().expect("served after the login");
}

#[test]
fn a_wrong_password_names_sasl_authentication_failed_and_the_broker_message() {
    // The error carries the code in words and the broker's message, never the password.
    let pki = TestPki::new();
    let broker = secure_broker(&pki, "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512");
    for mechanism in ["SCRAM-SHA-512", "PLAIN"] {
        let properties = sasl_ssl(&pki, mechanism, "alice", "wrong-secret");
        let error = connect(&broker, "SASL_SSL", &properties).err();
        let message = error.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(
            matches!(error, Some(AdminClientError::Authentication { .. })),
            "{mechanism}: {error:?}"
        );
        assert!(message.contains("SASL_AUTHENTICATION_FAILED"), "{message}");
        assert!(message.contains("Authentication failed"), "{message}");
        assert!(!message.contains("wrong-secret"), "{message}");
    }
}

#[test]
fn a_mechanism_the_broker_does_not_enable_is_named_with_the_enabled_ones() {
    // PLAIN against a broker offering SCRAM-SHA-512 only.
    let pki = TestPki::new();
    let broker = secure_broker(&pki, "SCRAM-SHA-512");
    let error = connect(
        &broker,
        "SASL_SSL",
        &sasl_ssl(&pki, "PLAIN", "alice", "alice-secret"),
    )
    .err()
    .map(|error| error.to_string())
    .unwrap_or_default();
    assert!(
        error.contains("does not enable SASL mechanism PLAIN")
            && error.contains("enabled: SCRAM-SHA-512"),
        "{error}"
    );
}

#[test]
fn tls_checks_the_broker_unless_told_not_to_and_presents_a_client_certificate() {
    // A CA that did not sign the broker fails the handshake; verification off connects
    // anyway; a client certificate from the configuration is accepted.
    let pki = TestPki::new();
    let other = TestPki::new();
    let broker = secure_broker(&pki, "SCRAM-SHA-512");
    let untrusted = format!(
        "security.protocol=SSL\nssl.ca.location={}\n",
        other.ca().display()
    );
    let error = connect(&broker, "SSL", &untrusted).err();
    assert!(
        matches!(error, Some(AdminClientError::TlsHandshake { .. })),
        "{error:?}"
    );
    let unchecked = "security.protocol=SSL\nenable.ssl.certificate.verification=false\n";
    let mut client = connect(&broker, "SSL", unchecked).expect("unverified TLS");
    client.list_groups().expect("served");
    let mutual = format!(
        "security.protocol=SSL\nssl.ca.location={}\nssl.certificate.location={}\n\
         ssl.key.location={}\n",
        pki.ca().display(),
        pki.path("client.pem").display(),
        pki.path("client.key").display()
    );
    let mut client = connect(&broker, "SSL", &mutual).expect("mutual TLS");
    client.list_groups().expect("served");
    let missing = "security.protocol=SSL\nssl.ca.location=/nonexistent/ca.pem\n";
    let error = connect(&broker, "SSL", missing).err();
    assert!(matches!(error, Some(AdminClientError::Tls(_))), "{error:?}");
}

#[test]
fn an_empty_endpoint_identification_algorithm_skips_only_the_host_name() {
    // A broker whose certificate names another host: refused by default, accepted with
    // Java's empty ssl.endpoint.identification.algorithm, which still checks the CA.
    let pki = TestPki::new();
    pki.issue(
        "elsewhere",
        &["elsewhere.example"],
        &[(rcgen::DnType::CommonName, "elsewhere")],
    );
    let path = |name: &str| pki.path(name).display().to_string();
    let broker = ServingBroker::start(&[
        "--listeners",
        "SSL://127.0.0.1:0",
        "--ssl-certificate",
        &path("elsewhere.pem"),
        "--ssl-key",
        &path("elsewhere.key"),
    ]);
    let checked = format!(
        "security.protocol=SSL\nssl.ca.location={}\n",
        path("ca.pem")
    );
    let error = connect(&broker, "SSL", &checked).err();
    assert!(
        matches!(error, Some(AdminClientError::TlsHandshake { .. })),
        "{error:?}"
    );
    let unchecked_name = format!("{checked}ssl.endpoint.identification.algorithm=\n");
    let mut client = connect(&broker, "SSL", &unchecked_name).expect("any host name");
    client.list_groups().expect("served");
    let other = TestPki::new();
    let wrong_ca = format!(
        "security.protocol=SSL\nssl.ca.location={}\nssl.endpoint.identification.algorithm=\n",
        other.ca().display()
    );
    assert!(connect(&broker, "SSL", &wrong_ca).is_err());
}
