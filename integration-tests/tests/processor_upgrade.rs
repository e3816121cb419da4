//! Safe upgrades against the real `riffle` binary: a live page count runs over some clicks
//! (the remote runtime, in this process); then `ShadowRun` runs a new version of it over
//! the same retained clicks under `<application>-shadow`, and both the library's diff and
//! `riffle apps diff` compare the live output with the shadow's. An identical version
//! reports no difference; a version that drops one page and counts another twice reports
//! exactly those two keys. Clean-up (`riffle apps delete-shadow`, `ShadowRun::clean_up`)
//! removes the shadow's group and topics and nothing of the live application. The `fraud_alerts` example's `--shadow` flag does the same from
//! the command line against the example running as a broker.

mod example_apps;

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use example_apps::MINUTE_MS;
use example_apps::fraud_alerts::{
    ALERTS_TOPIC, expected_alerts, payments, produce_payments, produce_window_closers, read_alerts,
};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use riffle_integration_tests::Broker;
use riffle_integration_tests::clients::{
    CLIENT_TIMEOUT, client_config, create_topic, future_producer, read_to_end,
};
use riffle_integration_tests::riffle_cli::riffle_client;
use riffle_processor::runtime::RuntimeConfig;
use riffle_processor::runtime::remote::run_remote;
use riffle_processor::upgrade::{DataFormat, KeyFormat, OutputDiff, ShadowRun};
use riffle_processor::{Grouped, I64Serde, StreamsBuilder, StringSerde, TimeWindows, Topology};
use tokio::sync::oneshot;

/// No initial rebalance delay, so a new group's first join completes at once.
const GROUP_BROKER_ARGS: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];

const APPLICATION_ID: &str = "page-counts-app";
const SHADOW_SINK: &str = "page-counts-app-shadow.page-counts";
const SHADOW_MINUTE_SINK: &str = "page-counts-app-shadow.page-minute-counts";
/// Event time of the first click: the start of a minute, so the clicks (one a second)
/// fill exactly two one-minute windows.
const BASE_TIMESTAMP_MS: i64 = 1_699_999_980_000;
const PARTITION_COUNT: i32 = 2;
const CLICK_COUNT: usize = 120;
const PAGE_COUNT: usize = 6;

/// Longest the live application may take to count every click.
const WAIT_TIMEOUT: Duration = Duration::from_secs(60);

/// A version of the page count: clicks (user → page) re-keyed by page (a repartition
/// topic) and counted, in all and per minute. `changed` drops page-3 and counts page-1
/// twice.
fn page_counts(changed: bool) -> Topology {
    let builder = StreamsBuilder::new(APPLICATION_ID);
    let by_page = builder
        .stream("clicks", StringSerde, StringSerde)
        .flat_map_values(move |page: &String| {
            let copies = match (changed, page.as_str()) {
                (true, "page-3") => 0,
                (true, "page-1") => 2,
                _ => 1,
            };
            vec![page.clone(); copies]
        })
        .select_key(|_, page| page.clone())
        .group_by_key_with(Grouped::new(StringSerde, StringSerde).name("by-page"));
    by_page
        .count("per-page")
        .to_stream()
        .to("page-counts", StringSerde, I64Serde);
    by_page
        // Grace for the whole input: after the repartition, clicks arrive in an order that
        // differs from run to run, and a record dropped as late in one run and not in the
        // other would differ for that reason alone.
        .windowed_by(
            TimeWindows::tumbling(Duration::from_secs(60)).grace(Duration::from_secs(3_600)),
        )
        .count("per-page-minute")
        .to("page-minute-counts", StringSerde, I64Serde);
    builder.build().expect("the topology builds")
}

fn runtime_config() -> RuntimeConfig {
    RuntimeConfig {
        commit_interval: Duration::from_millis(200),
        ..RuntimeConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shadow_run_diff_finds_a_change_and_no_difference_for_the_same_topology() {
    let broker = Broker::start_with(GROUP_BROKER_ARGS);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "clicks", PARTITION_COUNT, &[]).await;
    create_topic(&bootstrap, "page-counts", PARTITION_COUNT, &[]).await;
    create_topic(&bootstrap, "page-minute-counts", PARTITION_COUNT, &[]).await;
    produce_clicks(&bootstrap).await;

    // The live application counts every click, then keeps running as in production.
    let (stop_live, stopped) = oneshot::channel::<()>();
    let live_bootstrap = bootstrap.clone();
    let live = tokio::spawn(async move {
        let stop = async move {
            let _ = stopped.await;
        };
        run_remote(page_counts(false), &live_bootstrap, runtime_config(), stop).await
    });
    let per_page = (CLICK_COUNT / PAGE_COUNT) as i64;
    wait_for_counts(&bootstrap, "page-counts", PAGE_COUNT, per_page).await;

    // The same topology as a shadow: no difference.
    let shadow = ShadowRun::new(page_counts(false), &bootstrap).runtime_config(runtime_config());
    let outcome = shadow.run().await.expect("the identical shadow runs");
    assert!(outcome.progress.done, "{:?}", outcome.progress);
    assert_eq!(outcome.shadow_application_id, "page-counts-app-shadow");
    assert_eq!(
        outcome.sinks,
        [
            ("page-counts".to_owned(), SHADOW_SINK.to_owned()),
            (
                "page-minute-counts".to_owned(),
                SHADOW_MINUTE_SINK.to_owned()
            )
        ]
    );
    let report = shadow
        .diff(
            "page-counts",
            SHADOW_SINK,
            OutputDiff::new(KeyFormat::default(), DataFormat::I64),
        )
        .await
        .expect("the topics are read");
    assert!(report.is_identical(), "{report}");
    assert_eq!(report.same, PAGE_COUNT, "{report}");
    let cli = diff_command(&broker, &[]);
    assert_eq!(cli.code, Some(0), "{}{}", cli.stdout, cli.stderr);
    assert!(
        cli.stdout.starts_with("no differences (6 keys the same"),
        "{}",
        cli.stdout
    );
    let windowed = windowed_diff_command(&broker);
    assert_eq!(
        windowed.code,
        Some(0),
        "{}{}",
        windowed.stdout,
        windowed.stderr
    );
    assert!(
        windowed
            .stdout
            .starts_with("no differences (12 keys the same"),
        "six pages in two windows: {}",
        windowed.stdout
    );

    // A changed version, run again under the same shadow id (the first shadow's group and
    // topics are deleted before it starts): exactly page-1 and page-3 differ.
    let shadow = ShadowRun::new(page_counts(true), &bootstrap).runtime_config(runtime_config());
    let outcome = shadow.run().await.expect("the changed shadow runs");
    assert!(outcome.progress.done, "{:?}", outcome.progress);
    let report = shadow
        .diff(
            "page-counts",
            SHADOW_SINK,
            OutputDiff::new(KeyFormat::default(), DataFormat::I64),
        )
        .await
        .expect("the topics are read");
    assert_eq!(
        (report.same, report.changed, report.removed, report.added),
        (PAGE_COUNT - 2, 1, 1, 0),
        "{report}"
    );
    let cli = diff_command(&broker, &[]);
    assert_eq!(cli.code, Some(1), "{}{}", cli.stdout, cli.stderr);
    let lines: Vec<&str> = cli.stdout.lines().collect();
    assert!(
        lines[0].starts_with("2 differences: 1 changed, 1 removed, 0 added (4 keys the same;"),
        "{}",
        cli.stdout
    );
    assert_eq!(
        lines[1..],
        [
            "changed  page-1: live 20 -> shadow 40",
            "removed  page-3: live 20 -> shadow -",
        ]
    );
    // Per key and window: page-1 changed and page-3 removed in each of the two minutes.
    let windowed = windowed_diff_command(&broker);
    assert_eq!(
        windowed.code,
        Some(1),
        "{}{}",
        windowed.stdout,
        windowed.stderr
    );
    let lines: Vec<&str> = windowed.stdout.lines().collect();
    assert!(
        lines[0].starts_with("4 differences: 2 changed, 2 removed, 0 added (8 keys the same;"),
        "{}",
        windowed.stdout
    );
    let (first, second) = (BASE_TIMESTAMP_MS, BASE_TIMESTAMP_MS + MINUTE_MS);
    assert_eq!(
        lines[1..],
        [
            format!("changed  page-1 [{first}..): live 10 -> shadow 20"),
            format!("changed  page-1 [{second}..): live 10 -> shadow 20"),
            format!("removed  page-3 [{first}..): live 10 -> shadow -"),
            format!("removed  page-3 [{second}..): live 10 -> shadow -"),
        ]
    );
    let json = diff_command(&broker, &["--format", "json", "--limit", "1"]);
    assert_eq!(json.code, Some(1), "{}", json.stderr);
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON output");
    assert_eq!(parsed["changed"], 1);
    assert_eq!(parsed["removed"], 1);
    assert_eq!(
        parsed["differences"],
        serde_json::json!([{"kind": "changed", "key": "page-1", "live": "20", "shadow": "40"}])
    );

    // Clean-up, by the command line, then by the library (nothing left: no error), leaves
    // the live application alone.
    let deleted = riffle_client(&broker, &["apps", "delete-shadow", APPLICATION_ID], None);
    assert_eq!(deleted.code, Some(0), "{}", deleted.stderr);
    assert_eq!(
        deleted.stdout.lines().collect::<Vec<_>>(),
        [
            "Deleted group 'page-counts-app-shadow'",
            "Deleted topic 'page-counts-app-shadow-by-page-repartition'",
            "Deleted topic 'page-counts-app-shadow-per-page-changelog'",
            "Deleted topic 'page-counts-app-shadow-per-page-minute-changelog'",
            "Deleted topic 'page-counts-app-shadow.page-counts'",
            "Deleted topic 'page-counts-app-shadow.page-minute-counts'",
        ]
    );
    shadow
        .clean_up()
        .await
        .expect("nothing left to delete is fine");
    let topics = topic_names(&bootstrap);
    assert!(
        topics
            .iter()
            .all(|topic| !topic.starts_with("page-counts-app-shadow")),
        "{topics:?}"
    );
    for live_topic in [
        "clicks",
        "page-counts",
        "page-counts-app-per-page-changelog",
    ] {
        assert!(topics.contains(&live_topic.to_owned()), "{topics:?}");
    }
    let missing = diff_command(&broker, &[]);
    assert_eq!(
        missing.code,
        Some(2),
        "a missing shadow topic: {}",
        missing.stderr
    );

    let _ = stop_live.send(());
    live.await
        .expect("the live task ends")
        .expect("the live application stops cleanly");
}

/// `riffle apps diff` of the live and shadow page counts.
fn diff_command(broker: &Broker, more: &[&str]) -> riffle_integration_tests::riffle_cli::CliOutput {
    let mut args = vec![
        "apps",
        "diff",
        "--live",
        "page-counts",
        "--shadow",
        SHADOW_SINK,
        "--value-format",
        "i64",
    ];
    args.extend_from_slice(more);
    riffle_client(broker, &args, None)
}

/// `riffle apps diff` of the live and shadow counts per page and minute.
fn windowed_diff_command(broker: &Broker) -> riffle_integration_tests::riffle_cli::CliOutput {
    let args = [
        "apps",
        "diff",
        "--live",
        "page-minute-counts",
        "--shadow",
        SHADOW_MINUTE_SINK,
        "--key-window",
        "time",
        "--value-format",
        "i64",
    ];
    riffle_client(broker, &args, None)
}

/// Clicks by 7 users over 6 pages, one a second, spread over both partitions by user.
async fn produce_clicks(bootstrap: &str) {
    let producer = future_producer(bootstrap, &[]);
    for click in 0..CLICK_COUNT {
        let user = format!("user-{}", click % 7);
        let page = format!("page-{}", click % PAGE_COUNT);
        let record = FutureRecord::to("clicks")
            .key(&user)
            .payload(&page)
            .timestamp(BASE_TIMESTAMP_MS + click as i64 * 1_000);
        producer
            .send(record, CLIENT_TIMEOUT)
            .await
            .unwrap_or_else(|(error, _)| panic!("producing a click failed: {error}"));
    }
}

/// Waits until `topic` holds `per_page` as the last count of each of `pages` pages.
async fn wait_for_counts(bootstrap: &str, topic: &str, pages: usize, per_page: i64) {
    let deadline = Instant::now() + WAIT_TIMEOUT;
    loop {
        let mut latest = BTreeMap::new();
        for partition in 0..PARTITION_COUNT {
            for message in read_to_end(bootstrap, topic, partition) {
                let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
                let value = message
                    .payload()
                    .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
                    .map(i64::from_be_bytes);
                latest.insert(key, value);
            }
        }
        if latest.len() == pages && latest.values().all(|count| *count == Some(per_page)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the live counts did not reach {per_page} per page in {WAIT_TIMEOUT:?}: {latest:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The topics the broker lists.
fn topic_names(bootstrap: &str) -> Vec<String> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .create()
        .expect("a metadata consumer");
    let metadata = consumer
        .fetch_metadata(None, CLIENT_TIMEOUT)
        .expect("metadata");
    metadata
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .collect()
}

/// Longest a shadow run of an example may take.
const SHADOW_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread")]
async fn example_shadow_flag_finds_no_difference_against_the_running_example() {
    // The fraud_alerts example runs as a broker with its topology inside; once it has
    // raised its alerts, the same example binary started with `--shadow` runs its topology
    // as `fraud-alerts-shadow` over the retained payments, prints the diff of the alerts
    // topic (no difference: the same build), deletes the shadow and exits 0.
    let broker = example_apps::start_example("fraud_alerts");
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "payments", PARTITION_COUNT, &[]).await;
    let start_ms = example_apps::start_ms();
    let payments = payments(start_ms, 3, 8);
    let expected = expected_alerts(&payments);
    assert!(!expected.is_empty(), "the data must raise alerts");
    produce_payments(&bootstrap, &payments).await;
    produce_window_closers(&bootstrap, PARTITION_COUNT, start_ms + 8 * MINUTE_MS).await;
    read_alerts(&bootstrap, &expected);

    let mut child = Command::new(example_apps::example_binary("fraud_alerts"))
        .args(["--shadow", &bootstrap, "--shadow-value-format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let deadline = Instant::now() + SHADOW_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the example can be waited for") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the shadow run did not finish in {SHADOW_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout).expect("stdout");
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut stderr).expect("stderr");
    }
    println!("{stdout}{stderr}");
    assert_eq!(status.code(), Some(0), "{stdout}{stderr}");
    let prefix = format!("{ALERTS_TOPIC} vs fraud-alerts-shadow.{ALERTS_TOPIC}: no differences");
    assert!(stdout.starts_with(&prefix), "{stdout}");
    let topics = topic_names(&bootstrap);
    assert!(
        topics
            .iter()
            .all(|topic| !topic.starts_with("fraud-alerts-shadow")),
        "the shadow deletes its topics: {topics:?}"
    );
}
