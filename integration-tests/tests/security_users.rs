//! SCRAM users managed over the wire (AlterUserScramCredentials and
//! DescribeUserScramCredentials, through confluent-kafka's admin API), as Kafka's
//! `kafka-configs --alter --add-config 'SCRAM-SHA-256=[...]'` does it.

use riffle_integration_tests::Broker;
use riffle_integration_tests::security::{
    ADMIN, ALICE, ClientSecurity, Pki, User, run_secure_python, secure_broker,
};

/// A user created over the wire, stored for SCRAM-SHA-256.
const CAROL: User<'static> = User {
    name: "carol",
    password: "carol-secret",
    mechanism: "SCRAM-SHA-256",
};

/// Runs `security_users.py --mode <mode>` as `security` over SASL_PLAINTEXT.
fn users(broker: &Broker, security: &ClientSecurity, mode: &str, args: &[&str]) -> String {
    let mut all_args = vec!["--mode", mode];
    all_args.extend_from_slice(args);
    run_secure_python(broker, security, "security_users.py", &all_args)
}

#[test]
fn users_created_over_the_wire_log_in_survive_a_restart_and_can_be_deleted() {
    // Proves the super user's AlterUserScramCredentials creates carol (she then logs in with
    // SCRAM-SHA-256 and DescribeUserScramCredentials shows her mechanism and iterations),
    // that alice, without ALTER on the cluster, gets CLUSTER_AUTHORIZATION_FAILED, that carol
    // still logs in after a restart, and that once deleted she is refused.
    let pki = Pki::generate();
    let mut broker = secure_broker(
        &pki,
        &[ADMIN, ALICE],
        &["--authorizer", "acl", "--super-users", "User:admin"],
    );
    let admin = ADMIN.over_sasl_plaintext(ADMIN.mechanism);
    let carol = CAROL.over_sasl_plaintext(CAROL.mechanism);
    let upsert = [
        "--user",
        CAROL.name,
        "--mechanism",
        CAROL.mechanism,
        "--new-password",
        CAROL.password,
    ];
    users(&broker, &admin, "upsert", &upsert);
    users(
        &broker,
        &admin,
        "describe",
        &["--user", CAROL.name, "--mechanism", CAROL.mechanism],
    );
    users(&broker, &carol, "connect", &[]);

    let mut refused = upsert.to_vec();
    refused.extend_from_slice(&["--expect-error", "CLUSTER_AUTHORIZATION_FAILED"]);
    users(
        &broker,
        &ALICE.over_sasl_plaintext(ALICE.mechanism),
        "upsert",
        &refused,
    );

    broker.stop();
    broker.restart();
    users(&broker, &carol, "connect", &[]);
    users(
        &broker,
        &admin,
        "delete",
        &["--user", CAROL.name, "--mechanism", CAROL.mechanism],
    );
    run_secure_python(
        &broker,
        &carol,
        "security_confluent.py",
        &["--mode", "auth-failure"],
    );
}
