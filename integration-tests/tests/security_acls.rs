//! The ACL authorizer as clients see it: allowed, denied and prefixed rules for topics,
//! groups, the cluster and transactional ids, each refusal with Kafka's error code; and
//! `riffle acls add|list|remove` with Kafka-CLI options.
//!
//! Kafka's behaviour is the spec: deny wins over allow, Metadata for all topics lists only the
//! topics the client may describe, CreateTopics needs CREATE on the cluster or on the topic,
//! ACL administration needs ALTER (DESCRIBE to list) on the cluster, a transactional id needs
//! WRITE, and a super user needs no ACL at all.

use riffle_integration_tests::riffle_cli::CliOutput;
use riffle_integration_tests::security::{
    ADMIN, ALICE, BOB, Pki, User, riffle_acls, run_secure_python, secure_broker,
};
use riffle_integration_tests::{Broker, run_python_at};
use serde_json::json;

/// A broker with admin, alice and bob, the ACL authorizer, admin as super user and
/// `--allow-everyone-if-no-acl-found allow_everyone`.
fn start(pki: &Pki, allow_everyone: &str) -> Broker {
    secure_broker(
        pki,
        &[ADMIN, ALICE, BOB],
        &[
            "--authorizer",
            "acl",
            "--super-users",
            "User:admin;User:ops",
            "--allow-everyone-if-no-acl-found",
            allow_everyone,
        ],
    )
}

/// Runs `security_admin.py --mode <mode>` as the super user over SASL_PLAINTEXT.
fn as_admin(broker: &Broker, mode: &str, args: &[&str]) -> String {
    let mut all_args = vec!["--mode", mode];
    all_args.extend_from_slice(args);
    run_secure_python(
        broker,
        &ADMIN.over_sasl_plaintext(ADMIN.mechanism),
        "security_admin.py",
        &all_args,
    )
}

/// Runs `security_confluent.py --mode <mode>` as `user` over SASL_PLAINTEXT.
fn as_user(broker: &Broker, user: &User<'_>, mode: &str, args: &[&str]) -> String {
    let mut all_args = vec!["--mode", mode];
    all_args.extend_from_slice(args);
    run_secure_python(
        broker,
        &user.over_sasl_plaintext(user.mechanism),
        "security_confluent.py",
        &all_args,
    )
}

#[test]
fn acl_matrix_as_confluent_kafka_sees_it() {
    // Proves, with allow-everyone-if-no-acl-found false, every cell of the matrix in
    // python/security_acl_matrix.py: literal and prefixed allows for topics and groups work,
    // a literal deny beats a prefixed ALL (topics) and a prefixed READ (groups), Metadata
    // hides what alice may not describe, CreateTopics follows CREATE on the cluster or a
    // prefixed topic rule, ACL administration needs the cluster, a transactional id without
    // WRITE gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED, anonymous clients see nothing, and
    // deleting the deny lets alice write.
    let pki = Pki::generate();
    let broker = start(&pki, "false");
    let users = json!([
        {"name": ADMIN.name, "password": ADMIN.password, "mechanism": ADMIN.mechanism},
        {"name": ALICE.name, "password": ALICE.password, "mechanism": ALICE.mechanism},
        {"name": BOB.name, "password": BOB.password, "mechanism": BOB.mechanism},
    ])
    .to_string();
    let output = run_python_at(
        &broker,
        &broker.bootstrap_for("SASL_PLAINTEXT"),
        "security_acl_matrix.py",
        &[
            "--plaintext-bootstrap",
            &broker.bootstrap_for("PLAINTEXT"),
            "--users",
            &users,
        ],
    );
    assert!(output.contains("the ACL matrix holds"), "{output}");
}

#[test]
fn allow_everyone_if_no_acl_found_opens_only_resources_without_acls() {
    // Proves `--allow-everyone-if-no-acl-found true` as Kafka means it: alice may use a topic
    // and a group nobody wrote an ACL for, but not a topic whose only ACL names bob.
    let pki = Pki::generate();
    let broker = start(&pki, "true");
    as_admin(&broker, "create-topics", &["--topics", "open,guarded"]);
    let acls = json!([{"permission": "ALLOW", "principal": "User:bob", "resource": "TOPIC",
                       "name": "guarded", "operation": "WRITE"}])
    .to_string();
    as_admin(&broker, "create-acls", &["--acls", &acls]);
    as_user(
        &broker,
        &ALICE,
        "roundtrip",
        &["--topic", "open", "--group", "open-group"],
    );
    as_user(&broker, &ALICE, "denied-produce", &["--topic", "guarded"]);
}

/// How a `riffle acls` command must end.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Exit {
    /// Exit code 0.
    Success,
    /// Any other exit code (not a signal or a time-out).
    Failure,
}

/// Runs `riffle acls <args>` as `user` over SASL_PLAINTEXT and checks how it ended.
fn acls_command(broker: &Broker, user: &User<'_>, args: &[&str], exit: Exit) -> CliOutput {
    let output = riffle_acls(
        &broker.bootstrap_for("SASL_PLAINTEXT"),
        &user.over_sasl_plaintext(user.mechanism),
        args,
    );
    let ended = match output.code {
        Some(0) => Some(Exit::Success),
        Some(_) => Some(Exit::Failure),
        None => None,
    };
    assert_eq!(
        ended,
        Some(exit),
        "riffle acls {args:?} as {} ended with code {:?}\n{}{}\n{}",
        user.name,
        output.code,
        output.stdout,
        output.stderr,
        broker.log_tail()
    );
    output
}

#[test]
fn riffle_acls_adds_lists_and_removes_bindings() {
    // Proves `riffle acls` with Kafka's kafka-acls options: `add` writes exactly the bindings
    // the options describe (checked with DescribeAcls from confluent-kafka), `list` shows
    // them, alice can then use the topic and group, `remove --force` takes the group's
    // binding away so alice's join is refused, and alice herself may not add ACLs.
    let pki = Pki::generate();
    let broker = start(&pki, "false");
    as_admin(&broker, "create-topics", &["--topics", "cli-orders"]);
    let adds: [&[&str]; 5] = [
        &[
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--operation",
            "Write",
            "--topic",
            "cli-orders",
        ],
        &[
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--group",
            "cli-group",
        ],
        &[
            "add",
            "--deny-principal",
            "User:alice",
            "--operation",
            "Write",
            "--topic",
            "cli-",
            "--resource-pattern-type",
            "prefixed",
        ],
        &[
            "add",
            "--allow-principal",
            "User:bob",
            "--operation",
            "Create",
            "--cluster",
        ],
        &[
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Write",
            "--transactional-id",
            "cli-tx",
        ],
    ];
    for args in adds {
        acls_command(&broker, &ADMIN, args, Exit::Success);
    }
    let described = as_admin(&broker, "describe-acls", &[]);
    let bindings: Vec<&str> = described
        .lines()
        .filter(|line| line.starts_with("ACL "))
        .collect();
    assert_eq!(
        bindings,
        [
            "ACL ALLOW User:alice READ GROUP:LITERAL:cli-group",
            "ACL ALLOW User:alice READ TOPIC:LITERAL:cli-orders",
            "ACL ALLOW User:alice WRITE TOPIC:LITERAL:cli-orders",
            "ACL ALLOW User:alice WRITE TRANSACTIONAL_ID:LITERAL:cli-tx",
            "ACL ALLOW User:bob CREATE BROKER:LITERAL:kafka-cluster",
            "ACL DENY User:alice WRITE TOPIC:PREFIXED:cli-",
        ],
        "the bindings `riffle acls add` wrote"
    );
    let listed = acls_command(
        &broker,
        &ADMIN,
        &["list", "--topic", "cli-orders"],
        Exit::Success,
    );
    for word in ["User:alice", "cli-orders"] {
        assert!(listed.stdout.contains(word), "{}", listed.stdout);
    }
    // The prefixed deny beats the literal allow: alice reads but cannot write cli-orders.
    as_user(
        &broker,
        &ALICE,
        "denied-produce",
        &["--topic", "cli-orders"],
    );
    acls_command(
        &broker,
        &ADMIN,
        &[
            "remove",
            "--deny-principal",
            "User:alice",
            "--operation",
            "Write",
            "--topic",
            "cli-",
            "--resource-pattern-type",
            "prefixed",
            "--force",
        ],
        Exit::Success,
    );
    as_user(
        &broker,
        &ALICE,
        "roundtrip",
        &["--topic", "cli-orders", "--group", "cli-group"],
    );
    acls_command(
        &broker,
        &ADMIN,
        &[
            "remove",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--group",
            "cli-group",
            "--force",
        ],
        Exit::Success,
    );
    as_user(
        &broker,
        &ALICE,
        "denied-group",
        &["--topic", "cli-orders", "--group", "cli-group"],
    );
    let refused = acls_command(
        &broker,
        &ALICE,
        &[
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "All",
            "--topic",
            "*",
        ],
        Exit::Failure,
    );
    assert!(
        refused.stderr.contains("CLUSTER_AUTHORIZATION_FAILED")
            || refused.stdout.contains("CLUSTER_AUTHORIZATION_FAILED"),
        "alice's refused `riffle acls add` does not name CLUSTER_AUTHORIZATION_FAILED:\n{}{}",
        refused.stdout,
        refused.stderr
    );
    // librdkafka drops DescribeAcls' top-level error; our admin client must not.
    let refused_list = acls_command(&broker, &ALICE, &["list"], Exit::Failure);
    assert!(
        refused_list.stderr.contains("CLUSTER_AUTHORIZATION_FAILED")
            || refused_list.stdout.contains("CLUSTER_AUTHORIZATION_FAILED"),
        "alice's refused `riffle acls list` does not name CLUSTER_AUTHORIZATION_FAILED:\n{}{}",
        refused_list.stdout,
        refused_list.stderr
    );
}
