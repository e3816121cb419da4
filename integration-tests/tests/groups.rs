//! Consumer groups with real clients against a real riffle process: sharing partitions
//! exactly once through a leave and a crash, cooperative rebalancing, static membership,
//! committed offsets across restarts, commits from consumers that only assign(), and group
//! administration (confluent-kafka, kafka-python and `riffle groups`).
//!
//! The orchestration lives in `integration-tests/python/group_*.py`: each group member runs in
//! its own Python process (`group_worker.py`), so a crash is a real SIGKILL. Members use
//! session.timeout.ms 6000 (the broker's minimum, as Kafka's `group.min.session.timeout.ms`)
//! and heartbeat every second, so a session expiry takes seconds, not the default 45.

use riffle_integration_tests::riffle_cli::riffle_groups;
use riffle_integration_tests::{Broker, broker_binary, run_python};

/// Broker flags for group tests: no initial rebalance delay, so a new group's first join
/// completes at once instead of waiting `group.initial.rebalance.delay.ms` (3 s) for more
/// members. Every test still passes with the delay; it only takes longer.
const GROUP_BROKER_ARGS: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];

#[test]
fn three_kafka_python_consumers_share_partitions_exactly_once() {
    // Proves three kafka-python members of one group split a 6-partition topic 2/2/2 and
    // consume 600 messages exactly once (no duplicate, no gap); a member that close()s sends
    // LeaveGroup and its partitions move before its session could expire; a SIGKILLed member's
    // partitions move only after its session expires; the moved partitions' new messages are
    // consumed by the others, 840 messages exactly once in all.
    let broker = Broker::start_with(GROUP_BROKER_ARGS);
    let output = run_python(
        &broker,
        "group_exactly_once.py",
        &["--topic", "shared", "--group", "sharers"],
    );
    assert!(
        output.contains("840 messages consumed exactly once in all"),
        "{output}"
    );
}

#[test]
fn cooperative_sticky_revokes_only_partitions_that_move() {
    // Proves the incremental protocol works with librdkafka's cooperative-sticky assignor: a
    // third member joining two busy ones takes partitions that only their previous owners
    // give up (on_revoke never names a partition its member keeps), on_assign and on_revoke
    // are incremental, and no message is lost while messages keep arriving.
    let broker = Broker::start_with(GROUP_BROKER_ARGS);
    let output = run_python(
        &broker,
        "group_cooperative.py",
        &["--topic", "cooperative", "--group", "cooperators"],
    );
    assert!(output.contains("member-2 joined"), "{output}");
}

#[test]
fn static_member_restart_keeps_partitions_and_generation() {
    // Proves static membership (group.instance.id, KIP-345): a member whose process restarts
    // within its session timeout gets the same partitions in the same generation, the other
    // member sees no rebalance, and consumption resumes from the committed offsets; both
    // members restart in turn, so a restarting leader and a restarting follower are covered.
    let broker = Broker::start_with(GROUP_BROKER_ARGS);
    let output = run_python(
        &broker,
        "group_static.py",
        &["--topic", "static", "--group", "statics"],
    );
    assert!(output.contains("static-a saw no rebalance"), "{output}");
}

#[test]
fn committed_offsets_and_metadata_survive_a_graceful_restart() {
    // Proves committed offsets live in `__consumer_offsets`: after a SIGTERM stop and a
    // restart, kafka-python's and confluent-kafka's committed() return the offsets with their
    // metadata strings, and the group resumes exactly at them.
    let mut broker = Broker::start_with(GROUP_BROKER_ARGS);
    let args = ["--topic", "resumable", "--group", "resumers"];
    run_python(&broker, "group_commit_metadata.py", &phase(&args, "commit"));
    broker.stop();
    broker.restart();
    let output = run_python(&broker, "group_commit_metadata.py", &phase(&args, "resume"));
    assert!(
        output.contains("resumed at the committed offsets"),
        "{output}"
    );
}

#[test]
fn committed_offsets_and_metadata_survive_a_sigkill() {
    // Proves an acknowledged OffsetCommit is durable: after a SIGKILL (no clean shutdown) and
    // a restart, the offsets and metadata strings are still there and the group resumes at
    // them.
    let mut broker = Broker::start_with(GROUP_BROKER_ARGS);
    let args = ["--topic", "crash-resumable", "--group", "crash-resumers"];
    run_python(&broker, "group_commit_metadata.py", &phase(&args, "commit"));
    broker.kill();
    broker.restart();
    let output = run_python(&broker, "group_commit_metadata.py", &phase(&args, "resume"));
    assert!(
        output.contains("resumed at the committed offsets"),
        "{output}"
    );
}

#[test]
fn group_admin_with_both_clients_and_the_riffle_cli() {
    // Proves ListGroups, DescribeGroups, OffsetFetch, OffsetDelete and DeleteGroups as the
    // admin clients use them (states, members, decoded assignments, NON_EMPTY_GROUP for a live
    // group, deletion of an empty one, GROUP_SUBSCRIBED_TO_TOPIC for a consumed topic), and that `riffle groups describe` prints committed offset, log end
    // offset and lag per partition: 10/10/0 with the member for a live group, 10/10/0 and
    // 4/10/6 and no owner for an empty one, and a clear error for an unknown group.
    let broker = Broker::start_with(GROUP_BROKER_ARGS);
    let binary = broker_binary();
    let binary = binary.to_str().expect("the binary path is UTF-8");
    run_python(
        &broker,
        "group_admin.py",
        &["--topic", "admin-topic", "--riffle", binary],
    );

    let described = riffle_groups(&broker, &["describe", "admin-lagging"]);
    assert_eq!(described.code, Some(0), "{}", described.stderr);
    assert!(
        described
            .stdout
            .starts_with("Consumer group 'admin-lagging' has no active members."),
        "{}",
        described.stdout
    );
    assert_eq!(
        described.table_rows(),
        [
            [
                "admin-lagging",
                "admin-topic",
                "0",
                "10",
                "10",
                "0",
                "-",
                "-",
                "-"
            ],
            [
                "admin-lagging",
                "admin-topic",
                "1",
                "4",
                "10",
                "6",
                "-",
                "-",
                "-"
            ],
        ],
        "partition 2 has no committed offset and no owner, so it has no row"
    );

    let listed = riffle_groups(&broker, &["list"]);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    let rows = listed.table_rows();
    assert!(
        rows.contains(&vec![
            "admin-lagging".into(),
            "Empty".into(),
            "consumer".into()
        ]),
        "{}",
        listed.stdout
    );
    assert!(
        !rows
            .iter()
            .any(|row| row[0] == "admin-deletable" || row[0] == "admin-kp"),
        "deleted groups are still listed:\n{}",
        listed.stdout
    );

    let unknown = riffle_groups(&broker, &["describe", "no-such-group"]);
    assert_ne!(unknown.code, Some(0), "{}", unknown.stdout);
    assert_eq!(
        unknown.stderr.trim(),
        "Consumer group 'no-such-group' does not exist."
    );
}

#[test]
fn assigned_consumer_commits_without_joining_and_a_new_one_resumes() {
    // Proves simple (non-member) commits with a real client: a confluent-kafka consumer with a
    // group.id that only assign()s reads 40 messages, commits synchronously and closes; a new
    // consumer of that group.id resumes at the committed offset 20 of each partition; and
    // `riffle groups describe` shows the memberless group with offset 20, log end 25, lag 5.
    let broker = Broker::start_with(GROUP_BROKER_ARGS);
    let output = run_python(
        &broker,
        "group_assign_commit.py",
        &["--topic", "assigned", "--group", "assigners"],
    );
    assert!(
        output.contains("consumer B resumed from the committed offsets"),
        "{output}"
    );

    let described = riffle_groups(&broker, &["describe", "assigners"]);
    assert_eq!(described.code, Some(0), "{}", described.stderr);
    assert!(
        described
            .stdout
            .starts_with("Consumer group 'assigners' has no active members."),
        "{}",
        described.stdout
    );
    let row = |partition: &str| {
        [
            "assigners",
            "assigned",
            partition,
            "20",
            "25",
            "5",
            "-",
            "-",
            "-",
        ]
        .map(String::from)
    };
    assert_eq!(described.table_rows(), [row("0"), row("1")]);
}

/// `args` followed by `--phase phase`.
fn phase<'a>(args: &[&'a str], phase: &'a str) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(["--phase", phase]);
    all
}
