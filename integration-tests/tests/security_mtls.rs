//! Mutual TLS: a client certificate is the client's identity, `User:<subject DN>` in Kafka's
//! RFC 2253 form, as an ACL naming exactly that principal shows; `--ssl-client-auth
//! required` refuses a client without a certificate or with one from another CA, and
//! `requested` lets it in as `User:ANONYMOUS`.
//!
//! The client certificate's subject is encoded O first, then CN, so the RFC 2253 name (last
//! attribute first) is `CN=client,O=Riffle`: a broker that wrote the attributes in encoding
//! order would call it `O=Riffle,CN=client` and the ACL would not match. ACLs are written by
//! the super user over SASL_PLAINTEXT; the clients are confluent-kafka with
//! `ssl.certificate.location` and `ssl.key.location`.

use riffle_integration_tests::Broker;
use riffle_integration_tests::security::{
    ADMIN, ClientCertificate, ClientSecurity, Pki, run_secure_python, secure_broker,
};
use serde_json::json;

/// The principal the client certificate must give.
const CLIENT_PRINCIPAL: &str = "User:CN=client,O=Riffle";

/// A broker whose SSL listener asks for client certificates (`client_auth`), trusting `pki`'s
/// CA, with the ACL authorizer and admin as super user; `mtls-orders` and `mtls-other` exist
/// and the client principal may read, write and use group `mtls-group` on `mtls-orders`.
fn start(pki: &Pki, client_auth: &str) -> Broker {
    let truststore = pki.ca_file();
    let broker = secure_broker(
        pki,
        &[ADMIN],
        &[
            "--ssl-client-auth",
            client_auth,
            "--ssl-truststore",
            truststore.to_str().expect("a UTF-8 path"),
            "--authorizer",
            "acl",
            "--super-users",
            "User:admin",
        ],
    );
    let admin = ADMIN.over_sasl_plaintext(ADMIN.mechanism);
    run_secure_python(
        &broker,
        &admin,
        "security_admin.py",
        &[
            "--mode",
            "create-topics",
            "--topics",
            "mtls-orders,mtls-other",
        ],
    );
    let grant = |resource: &str, name: &str, operation: &str| {
        json!({"permission": "ALLOW", "principal": CLIENT_PRINCIPAL, "resource": resource,
               "name": name, "operation": operation})
    };
    let acls = json!([
        grant("TOPIC", "mtls-orders", "READ"),
        grant("TOPIC", "mtls-orders", "WRITE"),
        grant("GROUP", "mtls-group", "READ"),
    ])
    .to_string();
    run_secure_python(
        &broker,
        &admin,
        "security_admin.py",
        &["--mode", "create-acls", "--acls", &acls],
    );
    broker
}

/// Runs `security_confluent.py --mode <mode>` over the SSL listener with `certificate`.
fn over_ssl(
    broker: &Broker,
    pki: &Pki,
    certificate: Option<&ClientCertificate>,
    mode: &str,
    topic: &str,
) -> String {
    run_secure_python(
        broker,
        &ClientSecurity::ssl(pki, certificate),
        "security_confluent.py",
        &["--mode", mode, "--topic", topic, "--group", "mtls-group"],
    )
}

fn client_certificate(pki: &Pki) -> ClientCertificate {
    pki.client_certificate("client", &[("O", "Riffle"), ("CN", "client")])
}

#[test]
fn client_certificate_is_the_principal_and_required_refuses_the_rest() {
    // Proves with `--ssl-client-auth required`: the certificate's principal is exactly
    // `User:CN=client,O=Riffle` (the ACL for it lets the client produce, join mtls-group and
    // commit; nothing else grants it), it gets TOPIC_AUTHORIZATION_FAILED on a topic it has
    // no ACL for, another certificate from the same CA is another principal, and clients
    // without a certificate or with one from an unknown CA fail the TLS handshake.
    let pki = Pki::generate();
    let mut broker = start(&pki, "required");
    let client = client_certificate(&pki);
    let output = over_ssl(&broker, &pki, Some(&client), "roundtrip", "mtls-orders");
    assert!(output.contains("committed offset 20"), "{output}");
    over_ssl(&broker, &pki, Some(&client), "denied-produce", "mtls-other");

    let other = pki.client_certificate("other", &[("O", "Riffle"), ("CN", "other")]);
    over_ssl(&broker, &pki, Some(&other), "denied-produce", "mtls-orders");

    over_ssl(&broker, &pki, None, "refused", "mtls-orders");
    let stranger_pki = Pki::generate();
    let stranger = stranger_pki.client_certificate("client", &[("O", "Riffle"), ("CN", "client")]);
    over_ssl(&broker, &pki, Some(&stranger), "refused", "mtls-orders");

    // The refusals cost nobody else anything.
    run_secure_python(
        &broker,
        &ClientSecurity::ssl(&pki, Some(&client)),
        "security_confluent.py",
        &[
            "--mode",
            "committed",
            "--topic",
            "mtls-orders",
            "--group",
            "mtls-group",
            "--expect",
            "20",
        ],
    );
    broker.assert_running();
}

#[test]
fn requested_client_auth_lets_a_client_without_a_certificate_in_as_anonymous() {
    // Proves `--ssl-client-auth requested`: a client without a certificate completes the
    // handshake as User:ANONYMOUS and is refused by the authorizer
    // (TOPIC_AUTHORIZATION_FAILED), while a client with one is still its subject's principal.
    let pki = Pki::generate();
    let broker = start(&pki, "requested");
    over_ssl(&broker, &pki, None, "denied-produce", "mtls-orders");
    let client = client_certificate(&pki);
    let output = over_ssl(&broker, &pki, Some(&client), "roundtrip", "mtls-orders");
    assert!(output.contains("committed offset 20"), "{output}");
}
