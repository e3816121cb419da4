//! `riffle serve --config FILE` against a real riffle process: Kafka's stock KRaft
//! `server.properties` with a few settings added starts the broker and its settings take
//! effect (DescribeConfigs on the broker, the partition count of an auto-created topic); a
//! flag and an environment variable each win over the file; a misspelt property and an
//! invalid value each stop the broker with a message naming the property.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::admin::ResourceSpecifier;
use rdkafka::producer::FutureRecord;

use riffle_integration_tests::clients::{
    CLIENT_TIMEOUT, admin_client, admin_options, future_producer,
};
use riffle_integration_tests::{Broker, broker_binary};

/// Kafka 3.9's config/kraft/server.properties, its comments left out: what an operator
/// moving from Kafka brings. Its listeners and log.dirs give way to the harness's
/// `--listen` and `--data-dir` flags.
const KRAFT_SERVER_PROPERTIES: &str = "\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kraft-combined-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
";

/// The stock file with `extra` lines after it (a later line wins, as in Java).
fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("server.properties");
    std::fs::write(&path, format!("{KRAFT_SERVER_PROPERTIES}{extra}"))
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
    path
}

fn config_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("riffle-it-config-file-")
        .tempdir()
        .expect("a temp dir")
}

/// A broker config's value, as DescribeConfigs on broker `node_id` reports it.
async fn broker_config(bootstrap: &str, node_id: i32, name: &str) -> Option<String> {
    let results = admin_client(bootstrap)
        .describe_configs([&ResourceSpecifier::Broker(node_id)], &admin_options())
        .await
        .expect("DescribeConfigs request");
    let resource = results
        .into_iter()
        .next()
        .expect("one resource")
        .expect("DescribeConfigs succeeds");
    resource
        .entries
        .into_iter()
        .find(|entry| entry.name == name)
        .and_then(|entry| entry.value)
}

/// Produces one record to `topic`, which the broker creates on first use, and returns how
/// many partitions it was given.
async fn auto_created_partition_count(bootstrap: &str, topic: &str) -> usize {
    let producer = future_producer(bootstrap, &[]);
    producer
        .send(
            FutureRecord::<(), str>::to(topic).payload("first"),
            CLIENT_TIMEOUT,
        )
        .await
        .unwrap_or_else(|(error, _)| panic!("produce to {topic}: {error}"));
    let metadata = admin_client(bootstrap)
        .inner()
        .fetch_metadata(Some(topic), CLIENT_TIMEOUT)
        .expect("fetch metadata");
    metadata
        .topics()
        .iter()
        .find(|listed| listed.name() == topic)
        .map(|listed| listed.partitions().len())
        .unwrap_or_else(|| panic!("Metadata does not list {topic}"))
}

#[tokio::test]
async fn kafkas_stock_server_properties_start_the_broker_with_their_settings() {
    // Proves a stock Kafka file starts the broker, and that its node id, partition count,
    // request limit, connection limit and retention (in hours) reach DescribeConfigs and
    // auto-created topics.
    let dir = config_dir();
    let config = write_config(
        dir.path(),
        "node.id=7\n\
         num.partitions=3\n\
         socket.request.max.bytes=52428800\n\
         max.connections=77\n\
         log.retention.hours=48\n",
    );
    let broker = Broker::builder()
        .args(&["--config", config.to_str().expect("UTF-8 path")])
        .start();
    let bootstrap = broker.bootstrap();
    for (name, expected) in [
        ("broker.id", "7"),
        ("num.partitions", "3"),
        ("socket.request.max.bytes", "52428800"),
        ("max.connections", "77"),
        ("log.retention.ms", "172800000"),
    ] {
        assert_eq!(
            broker_config(&bootstrap, 7, name).await.as_deref(),
            Some(expected),
            "{name}"
        );
    }
    assert_eq!(
        auto_created_partition_count(&bootstrap, "from-the-file").await,
        3
    );
    let log = std::fs::read_to_string(broker.log_path()).expect("broker log");
    assert!(
        log.contains("no effect in Riffle: process.roles, controller.quorum.voters"),
        "the warning lists the KRaft settings\n{}",
        broker.log_tail()
    );
    let data_dir_entries = std::fs::read_dir(broker.data_dir())
        .expect("the data directory")
        .count();
    assert!(data_dir_entries > 0, "--data-dir wins over log.dirs");
}

#[tokio::test]
async fn a_flag_and_an_environment_variable_each_override_the_file() {
    // Proves the order flags > environment > file: num.partitions=3 in the file gives way
    // to RIFFLE_DEFAULT_PARTITIONS=4, which gives way to --default-partitions 5, and the
    // environment alone also wins over the file for another setting.
    let dir = config_dir();
    let config = write_config(dir.path(), "num.partitions=3\nmax.connections=77\n");
    let config = config.to_str().expect("UTF-8 path");

    let from_env = Broker::builder()
        .args(&["--config", config])
        .env("RIFFLE_DEFAULT_PARTITIONS", "4")
        .start();
    assert_eq!(
        auto_created_partition_count(&from_env.bootstrap(), "from-the-environment").await,
        4
    );
    assert_eq!(
        broker_config(&from_env.bootstrap(), 1, "max.connections")
            .await
            .as_deref(),
        Some("77"),
        "the file still sets what the environment does not"
    );
    drop(from_env);

    let from_flag = Broker::builder()
        .args(&["--config", config, "--default-partitions", "5"])
        .env("RIFFLE_DEFAULT_PARTITIONS", "4")
        .env("RIFFLE_MAX_CONNECTIONS", "88")
        .start();
    assert_eq!(
        auto_created_partition_count(&from_flag.bootstrap(), "from-the-flag").await,
        5
    );
    assert_eq!(
        broker_config(&from_flag.bootstrap(), 1, "max.connections")
            .await
            .as_deref(),
        Some("88")
    );
}

/// How long a broker refusing its config file may take to exit.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `riffle serve --config FILE` with `extra` added to the stock file, expects it to
/// exit with a failure, and returns its stderr.
fn refused_start(extra: &str) -> String {
    let dir = config_dir();
    let config = write_config(dir.path(), extra);
    let mut child = Command::new(broker_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .env("RIFFLE_HTTP_LISTEN", "127.0.0.1:0")
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run riffle");
    let deadline = Instant::now() + REFUSAL_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for riffle") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("riffle started with {extra:?} instead of refusing it");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let output = child.wait_with_output().expect("riffle's stderr");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !status.success(),
        "{extra:?}: exited with {status}; {stderr}"
    );
    stderr
}

#[test]
fn a_misspelt_property_and_an_invalid_value_stop_the_broker_naming_them() {
    // Proves a name Kafka does not have (with the closest one suggested) and a value the
    // flag refuses each end `riffle serve` at start-up with the file, line and property.
    let typo = refused_start("num.partition=3\n");
    assert!(
        typo.contains("server.properties: line 23: unknown property num.partition (did you mean num.partitions?)"),
        "{typo}"
    );
    let invalid = refused_start("num.partitions=three\n");
    assert!(
        invalid.contains("server.properties: line 23: invalid value 'three' for num.partitions"),
        "{invalid}"
    );
}
