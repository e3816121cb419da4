//! The `riffle` client commands as a user runs them against a real broker: `topics`,
//! `produce`, `consume`, `groups reset-offsets` and `cluster info`, with text and JSON
//! output; kcat reading what `riffle produce` wrote and `riffle consume` reading what kcat
//! wrote; and bad input (unknown topic, bad config, broker down) ending with a message that
//! names the error code and a non-zero exit, never a panic.

use std::fs;

use riffle_integration_tests::Broker;
use riffle_integration_tests::kcat::run_kcat;
use riffle_integration_tests::riffle_cli::{CliOutput, riffle_client, run_riffle};
use serde_json::Value;

/// Runs a client command that must succeed, and returns its output.
fn ok(broker: &Broker, args: &[&str], input: Option<&[u8]>) -> CliOutput {
    let output = riffle_client(broker, args, input);
    assert_eq!(
        output.code,
        Some(0),
        "riffle {} failed: {}\n{}",
        args.join(" "),
        output.stderr,
        broker.log_tail()
    );
    output
}

/// Runs a client command that must fail with exit code 1 and a message holding `expected`.
fn fails(broker: &Broker, args: &[&str], input: Option<&[u8]>, expected: &str) -> CliOutput {
    let output = riffle_client(broker, args, input);
    assert_failed(&output, args, expected);
    output
}

fn assert_failed(output: &CliOutput, args: &[&str], expected: &str) {
    assert_eq!(
        output.code,
        Some(1),
        "riffle {} should fail: {output:?}",
        args.join(" ")
    );
    assert!(
        output.stderr.starts_with("riffle: ") && output.stderr.contains(expected),
        "riffle {}: expected '{expected}' in {:?}",
        args.join(" "),
        output.stderr
    );
    assert!(!output.stderr.contains("panicked"), "{}", output.stderr);
}

/// The JSON lines of `output`'s stdout.
fn json_lines(output: &CliOutput) -> Vec<Value> {
    output
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

fn json(output: &CliOutput) -> Value {
    serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("{}: {e}", output.stdout))
}

#[test]
fn topics_are_created_described_altered_and_deleted() {
    // Proves the topic lifecycle: create with configs, list, describe (partitions, offsets,
    // sizes, configs with their sources) in text and JSON, alter-config set and delete,
    // delete; and that a duplicate, an unknown topic and a bad config name their codes.
    let broker = Broker::start();
    let created = ok(
        &broker,
        &[
            "topics",
            "create",
            "orders",
            "--partitions",
            "3",
            "--config",
            "retention.ms=3600000",
        ],
        None,
    );
    assert!(
        created
            .stdout
            .contains("Created topic 'orders' with 3 partitions")
    );
    fails(
        &broker,
        &["topics", "create", "orders"],
        None,
        "TOPIC_ALREADY_EXISTS (36)",
    );
    ok(
        &broker,
        &["topics", "create", "orders", "--if-not-exists"],
        None,
    );
    fails(
        &broker,
        &["topics", "create", "bad", "--config", "retention.ms=soon"],
        None,
        "INVALID_CONFIG (40)",
    );

    let listed = ok(&broker, &["topics", "list", "--exclude-internal"], None);
    assert_eq!(
        listed.rows_under("TOPIC"),
        vec![vec!["orders", "3", "1", "no"]]
    );

    ok(
        &broker,
        &["produce", "orders", "--partition", "1"],
        Some(b"a\nb\nc\n"),
    );
    let described = ok(&broker, &["topics", "describe", "orders"], None);
    let partitions = described.rows_under("PARTITION");
    assert_eq!(partitions.len(), 3, "{}", described.stdout);
    assert_eq!(partitions[1][..6], ["1", "1", "1", "1", "0", "3"]);
    assert_ne!(
        partitions[1][6], "0",
        "partition 1 has bytes: {}",
        described.stdout
    );
    let configs = described.rows_under("CONFIG");
    assert!(
        configs.contains(&vec![
            "retention.ms".to_owned(),
            "3600000".to_owned(),
            "DYNAMIC_TOPIC_CONFIG".to_owned()
        ]),
        "{}",
        described.stdout
    );

    ok(
        &broker,
        &[
            "topics",
            "alter-config",
            "orders",
            "--set",
            "cleanup.policy=compact",
            "--delete",
            "retention.ms",
        ],
        None,
    );
    let described = json(&ok(
        &broker,
        &["topics", "describe", "orders", "--format", "json"],
        None,
    ));
    let source = |name: &str| {
        described["configs"]
            .as_array()
            .and_then(|configs| configs.iter().find(|config| config["name"] == name))
            .map(|config| (config["value"].clone(), config["source"].clone()))
    };
    assert_eq!(
        source("cleanup.policy"),
        Some((Value::from("compact"), Value::from("DYNAMIC_TOPIC_CONFIG")))
    );
    assert_eq!(
        source("retention.ms").map(|s| s.1),
        Some(Value::from("DEFAULT_CONFIG"))
    );
    assert_eq!(described["partitions"][1]["high_watermark"], 3);
    assert!(described["partitions"][1]["size_bytes"].as_u64() > Some(0));

    let deleted = ok(&broker, &["topics", "delete", "orders"], None);
    assert!(
        deleted.stdout.starts_with("Deleted topic 'orders'"),
        "{}",
        deleted.stdout
    );
    fails(
        &broker,
        &["topics", "describe", "orders"],
        None,
        "topic 'orders' does not exist: UNKNOWN_TOPIC_OR_PARTITION (3)",
    );
    fails(
        &broker,
        &["topics", "delete", "orders"],
        None,
        "UNKNOWN_TOPIC_OR_PARTITION (3)",
    );
    ok(
        &broker,
        &["topics", "delete", "orders", "--if-exists"],
        None,
    );
}

#[test]
fn produced_lines_come_back_with_keys_headers_and_positions() {
    // Proves produce splits keys, adds headers and spreads keys over partitions, and that
    // consume reads them back in text and JSON from the beginning, from an offset, from a
    // time, for one partition, and stops after --num.
    let broker = Broker::start();
    ok(
        &broker,
        &["topics", "create", "events", "--partitions", "3"],
        None,
    );
    let lines: String = (0..30).map(|i| format!("user-{i}:event-{i}\n")).collect();
    let produced = ok(
        &broker,
        &[
            "produce",
            "events",
            "--key-separator",
            ":",
            "--header",
            "source=cli",
            "--format",
            "json",
        ],
        Some(lines.as_bytes()),
    );
    let acknowledged = json_lines(&produced);
    assert_eq!(acknowledged.len(), 30);
    let used: std::collections::BTreeSet<i64> = acknowledged
        .iter()
        .filter_map(|line| line["partition"].as_i64())
        .collect();
    assert_eq!(used.len(), 3, "murmur2 spreads 30 keys over 3 partitions");

    let read = ok(
        &broker,
        &[
            "consume",
            "events",
            "--from-beginning",
            "--exit-at-end",
            "--format",
            "json",
        ],
        None,
    );
    let records = json_lines(&read);
    assert_eq!(records.len(), 30, "{}", read.stdout);
    for record in &records {
        let key = record["key"].as_str().expect("a UTF-8 key");
        let index = key.trim_start_matches("user-");
        assert_eq!(record["value"], format!("event-{index}"));
        assert_eq!(record["headers"][0]["key"], "source");
        assert_eq!(record["headers"][0]["value"], "cli");
        assert!(record["timestamp"].as_i64() > Some(1_600_000_000_000));
        let matching = acknowledged.iter().any(|ack| {
            ack["partition"] == record["partition"] && ack["offset"] == record["offset"]
        });
        assert!(matching, "{record} was not acknowledged there");
    }

    let text = ok(
        &broker,
        &[
            "consume",
            "events",
            "--from-beginning",
            "--num",
            "5",
            "--key-separator",
            "=",
        ],
        None,
    );
    assert_eq!(text.stdout.lines().count(), 5);
    assert!(
        text.stdout.lines().all(|line| line.starts_with("user-")),
        "{}",
        text.stdout
    );

    let partition = acknowledged[0]["partition"].to_string();
    let from_offset = ok(
        &broker,
        &[
            "consume",
            "events",
            "--partition",
            &partition,
            "--offset",
            "1",
            "--exit-at-end",
        ],
        None,
    );
    let in_partition = acknowledged
        .iter()
        .filter(|a| a["partition"] == acknowledged[0]["partition"]);
    assert_eq!(from_offset.stdout.lines().count(), in_partition.count() - 1);
    let future = ok(
        &broker,
        &[
            "consume",
            "events",
            "--from-time",
            "2999-01-01T00:00:00Z",
            "--exit-at-end",
        ],
        None,
    );
    assert_eq!(future.stdout, "");
    let past = ok(
        &broker,
        &[
            "consume",
            "events",
            "--from-time",
            "2000-01-01",
            "--exit-at-end",
        ],
        None,
    );
    assert_eq!(past.stdout.lines().count(), 30);
}

#[test]
fn a_group_resumes_where_it_stopped_and_offsets_reset() {
    // Proves consume --group commits, so a second run continues where the first stopped;
    // reset-offsets is a dry run until --execute, then the group reads from the new
    // offsets; --shift-by moves back within the log.
    let broker = Broker::start();
    ok(
        &broker,
        &["topics", "create", "jobs", "--partitions", "2"],
        None,
    );
    let lines: String = (0..10).map(|i| format!("job-{i}\n")).collect();
    ok(
        &broker,
        &["produce", "jobs", "--partition", "0"],
        Some(lines.as_bytes()),
    );
    let group = ["--group", "workers"];
    let first = ok(
        &broker,
        &[
            &["consume", "jobs", "--from-beginning", "--num", "4"],
            &group[..],
        ]
        .concat(),
        None,
    );
    let second = ok(
        &broker,
        &[&["consume", "jobs", "--exit-at-end"], &group[..]].concat(),
        None,
    );
    let mut all: Vec<&str> = first.stdout.lines().chain(second.stdout.lines()).collect();
    assert_eq!(first.stdout.lines().count(), 4);
    all.sort_unstable();
    let mut expected: Vec<String> = (0..10).map(|i| format!("job-{i}")).collect();
    expected.sort_unstable();
    assert_eq!(all, expected, "each record exactly once over the two runs");

    let described = ok(&broker, &["groups", "describe", "workers"], None);
    for row in described.table_rows() {
        assert_eq!(row[5], "0", "no lag left: {row:?}");
    }

    let dry_run = ok(
        &broker,
        &[
            "groups",
            "reset-offsets",
            "workers",
            "--topic",
            "jobs",
            "--to-earliest",
        ],
        None,
    );
    assert!(dry_run.stdout.contains("Dry run"), "{}", dry_run.stdout);
    let nothing = ok(
        &broker,
        &[&["consume", "jobs", "--exit-at-end"], &group[..]].concat(),
        None,
    );
    assert_eq!(nothing.stdout, "", "a dry run commits nothing");

    let executed = ok(
        &broker,
        &[
            "groups",
            "reset-offsets",
            "workers",
            "--topic",
            "jobs",
            "--to-earliest",
            "--execute",
            "--format",
            "json",
        ],
        None,
    );
    let executed = json(&executed);
    assert_eq!(executed["executed"], true);
    assert!(
        executed["partitions"]
            .as_array()
            .is_some_and(|p| p.iter().all(|p| p["new_offset"] == 0))
    );
    let again = ok(
        &broker,
        &[&["consume", "jobs", "--exit-at-end"], &group[..]].concat(),
        None,
    );
    assert_eq!(again.stdout.lines().count(), 10);

    ok(
        &broker,
        &[
            "groups",
            "reset-offsets",
            "workers",
            "--topic",
            "jobs:0",
            "--shift-by",
            "-2",
            "--execute",
        ],
        None,
    );
    let shifted = ok(
        &broker,
        &[&["consume", "jobs", "--exit-at-end"], &group[..]].concat(),
        None,
    );
    assert_eq!(shifted.stdout.lines().count(), 2);
    fails(
        &broker,
        &[
            "groups",
            "reset-offsets",
            "workers",
            "--topic",
            "jobs:7",
            "--to-latest",
        ],
        None,
        "topic 'jobs' has no partition 7",
    );
}

#[test]
fn kcat_and_riffle_read_each_others_records() {
    // Proves interoperability with librdkafka both ways: kcat reads the keys, values and
    // headers `riffle produce` wrote (lz4-compressed), and `riffle consume` reads what
    // `kcat -P` wrote (snappy-compressed, keyed).
    let broker = Broker::start();
    ok(
        &broker,
        &["topics", "create", "shared", "--partitions", "1"],
        None,
    );
    ok(
        &broker,
        &[
            "produce",
            "shared",
            "--key-separator",
            ":",
            "--header",
            "app=riffle",
            "--compression",
            "lz4",
        ],
        Some(b"k1:from riffle 1\nk2:from riffle 2\n"),
    );
    let kcat_read = run_kcat(&[
        "-b",
        &broker.bootstrap(),
        "-X",
        "broker.address.family=v4",
        "-C",
        "-t",
        "shared",
        "-o",
        "beginning",
        "-e",
        "-q",
        "-f",
        "%k|%s|%h\\n",
    ]);
    assert_eq!(kcat_read.code, Some(0), "{}", kcat_read.stderr);
    assert_eq!(
        kcat_read.stdout,
        "k1|from riffle 1|app=riffle\nk2|from riffle 2|app=riffle\n"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("lines.txt");
    fs::write(&input, "k3:from kcat 3\nk4:from kcat 4\n").expect("write input");
    let written = run_kcat(&[
        "-b",
        &broker.bootstrap(),
        "-X",
        "broker.address.family=v4",
        "-P",
        "-t",
        "shared",
        "-K",
        ":",
        "-z",
        "snappy",
        "-l",
        input.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(written.code, Some(0), "{}", written.stderr);
    let read = ok(
        &broker,
        &[
            "consume",
            "shared",
            "--from-beginning",
            "--exit-at-end",
            "--key-separator",
            "|",
        ],
        None,
    );
    assert_eq!(
        read.stdout,
        "k1|from riffle 1\nk2|from riffle 2\nk3|from kcat 3\nk4|from kcat 4\n"
    );
}

#[test]
fn cluster_info_shows_the_broker_and_its_api_versions() {
    // Proves cluster info names the cluster, the broker's address and its API ranges
    // (DescribeLogDirs among them), in text and JSON.
    let broker = Broker::start();
    let text = ok(&broker, &["cluster", "info"], None);
    assert!(text.stdout.starts_with("Cluster ID:  "), "{}", text.stdout);
    assert!(text.stdout.contains(&broker.bootstrap()), "{}", text.stdout);
    let info = json(&ok(&broker, &["cluster", "info", "--format", "json"], None));
    assert_eq!(info["brokers"][0]["address"], broker.bootstrap());
    assert_eq!(info["controller_id"], info["brokers"][0]["id"]);
    let apis = info["api_versions"].as_array().expect("api versions");
    assert!(
        apis.iter()
            .any(|api| api["api"] == "DescribeLogDirs" && api["max_version"] == 4),
        "{apis:?}"
    );
}

#[test]
fn bad_input_names_the_problem_and_exits_non_zero() {
    // Proves an unknown topic, a missing key separator, a partition out of range, a bad
    // time and a broker that is down each end with a clear message and a non-zero exit.
    let broker = Broker::start();
    fails(
        &broker,
        &["produce", "nowhere"],
        Some(b"x\n"),
        "topic 'nowhere' does not exist: UNKNOWN_TOPIC_OR_PARTITION (3)",
    );
    fails(
        &broker,
        &["consume", "nowhere", "--num", "1"],
        None,
        "UNKNOWN_TOPIC_OR_PARTITION (3)",
    );
    ok(
        &broker,
        &["topics", "create", "t", "--partitions", "2"],
        None,
    );
    fails(
        &broker,
        &["produce", "t", "--key-separator", ":"],
        Some(b"a:1\nno key\n"),
        "line 2 has no key separator ':'",
    );
    fails(
        &broker,
        &["produce", "t", "--partition", "5"],
        Some(b"x\n"),
        "--partition 5: topic 't' has partitions 0 to 1",
    );
    fails(
        &broker,
        &["consume", "t", "--offset", "99", "--exit-at-end"],
        None,
        "OFFSET_OUT_OF_RANGE (1)",
    );
    let bad_time = riffle_client(&broker, &["consume", "t", "--from-time", "yesterday"], None);
    assert_eq!(bad_time.code, Some(2), "clap's usage error: {bad_time:?}");
    assert!(
        bad_time.stderr.contains("is not an ISO 8601 time"),
        "{}",
        bad_time.stderr
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = closed.local_addr().expect("address").to_string();
    drop(closed);
    for args in [
        &["topics", "list"][..],
        &["produce", "t"],
        &["consume", "t"],
        &["cluster", "info"],
    ] {
        let down = run_riffle(args, &["--bootstrap", &address], Some(b"x\n"));
        assert_failed(&down, args, &format!("cannot connect to {address}"));
    }
}

#[test]
fn kafka_python_reads_riffle_produce_and_describes_log_dirs() {
    // Proves a second client family agrees: kafka-python reads keys, values and headers that
    // `riffle produce` wrote, `riffle consume` reads what kafka-python's idempotent gzip
    // producer wrote, and KafkaAdminClient.describe_log_dirs gets the partition's size.
    let broker = Broker::start();
    ok(
        &broker,
        &["topics", "create", "mixed", "--partitions", "1"],
        None,
    );
    let lines: String = (0..20).map(|i| format!("key-{i}:value-{i}\n")).collect();
    ok(
        &broker,
        &[
            "produce",
            "mixed",
            "--key-separator",
            ":",
            "--header",
            "app=riffle",
        ],
        Some(lines.as_bytes()),
    );
    let output = riffle_integration_tests::run_python(
        &broker,
        "cli_interop.py",
        &["--topic", "mixed", "--count", "20"],
    );
    assert!(output.contains("describe_log_dirs:"), "{output}");
    let read = ok(
        &broker,
        &[
            "consume",
            "mixed",
            "--from-beginning",
            "--exit-at-end",
            "--format",
            "json",
        ],
        None,
    );
    let records = json_lines(&read);
    assert_eq!(records.len(), 40);
    for (index, record) in records.iter().enumerate() {
        assert_eq!(record["offset"], index);
        assert_eq!(record["key"], format!("key-{index}"));
        assert_eq!(record["value"], format!("value-{index}"));
        let app = if index < 20 { "riffle" } else { "kafka-python" };
        assert_eq!(record["headers"][0]["value"], app, "{record}");
    }
}
