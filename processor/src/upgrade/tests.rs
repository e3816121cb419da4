//! A shadow run over the in-memory test cluster, with the unchanged runner: it reads the
//! live inputs up to their ends at its start, writes only the shadow's topics, stops by
//! itself, and its outputs diff as identical to a live run of the same topology and as
//! different, on exactly the changed keys, for a changed one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{DataFormat, KeyFormat, OutputDiff, ShadowBackend, ShadowNames};
use crate::lock_policy::MutexRecover;
use crate::runtime::testing::{FakeBackend, FakeCluster};
use crate::runtime::{Runner, RuntimeConfig};
use crate::{Grouped, I64Serde, StreamsBuilder, StringSerde, Topology};

const APPLICATION_ID: &str = "page-counts-app";

/// Clicks (user → page) counted per page, through a repartition topic; `keep` filters
/// pages first (the "new version" drops some).
fn page_counts(keep: fn(&str) -> bool) -> Topology {
    let builder = StreamsBuilder::new(APPLICATION_ID);
    builder
        .stream("clicks", StringSerde, StringSerde)
        .filter(move |_, page| keep(page))
        .select_key(|_, page| page.clone())
        .group_by_key_with(Grouped::new(StringSerde, StringSerde).name("by-page"))
        .count("per-page")
        .to_stream()
        .to("page-counts", StringSerde, I64Serde);
    builder.build().expect("the topology builds")
}

fn config() -> RuntimeConfig {
    RuntimeConfig {
        commit_interval: Duration::from_millis(1),
        poll_timeout: Duration::from_millis(1),
        cache_max_bytes: 0,
        ..RuntimeConfig::default()
    }
}

/// A cluster holding `clicks` (2 partitions) with 60 clicks over 6 pages.
fn cluster_with_clicks() -> Arc<Mutex<FakeCluster>> {
    let mut cluster = FakeCluster::default();
    cluster.create("clicks", 2);
    cluster.create("page-counts", 2);
    for click in 0..60 {
        let user = format!("user-{}", click % 7);
        let page = format!("page-{}", click % 6);
        cluster.append(
            "clicks",
            click % 2,
            user.as_bytes(),
            page.as_bytes(),
            click.into(),
        );
    }
    Arc::new(Mutex::new(cluster))
}

/// Runs `topology` live until it has consumed all its input.
async fn run_live(cluster: &Arc<Mutex<FakeCluster>>, topology: Topology) {
    let runner = Runner::new(topology, FakeBackend::new(cluster.clone()), config());
    let watched = cluster.clone();
    let consumed = async move {
        while !watched
            .lock_or_recover()
            .consumed(&["clicks", "page-counts-app-by-page-repartition"])
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let ran = tokio::time::timeout(Duration::from_secs(30), runner.run_until(consumed)).await;
    ran.expect("the live run consumes its input in 30 s")
        .expect("the live run runs");
    // The test cluster keeps one group's offsets; the shadow's group starts with none.
    cluster.lock_or_recover().committed.clear();
}

/// Runs `topology` as a shadow; `late_clicks` are appended after it started, so past its
/// input range. Returns the skipped record count.
async fn run_shadow(
    cluster: &Arc<Mutex<FakeCluster>>,
    topology: Topology,
    late_clicks: usize,
) -> u64 {
    let names = Arc::new(ShadowNames::with_default_id(&topology));
    let backend = FakeBackend::new(cluster.clone());
    let shadow = ShadowBackend::start(backend, &topology, names)
        .await
        .expect("the input range is found");
    for _ in 0..late_clicks {
        cluster
            .lock_or_recover()
            .append("clicks", 0, b"late-user", b"page-0", 1_000);
    }
    let progress = shadow.progress();
    let mut done = shadow.done();
    let finished = async move {
        let _ = done.wait_for(|done| *done).await;
    };
    let runner = Runner::new(topology, shadow, config());
    let ran = tokio::time::timeout(Duration::from_secs(30), runner.run_until(finished)).await;
    ran.expect("the shadow run stops by itself in 30 s")
        .expect("the shadow run runs");
    let progress = progress.lock_or_recover().clone();
    assert!(progress.done, "{progress:?}");
    for (partition, end) in &progress.input_ends {
        assert_eq!(
            progress.committed.get(partition),
            Some(end),
            "the shadow commits {partition} up to its end at the start, not past it"
        );
    }
    progress.skipped_records
}

fn diff(cluster: &FakeCluster, live_topic: &str, shadow_topic: &str) -> super::DiffReport {
    let mut diff = OutputDiff::new(KeyFormat::default(), DataFormat::I64);
    for record in cluster.records(live_topic) {
        diff.add_live(record.key.as_deref(), record.value.as_deref());
    }
    for record in cluster.records(shadow_topic) {
        diff.add_shadow(record.key.as_deref(), record.value.as_deref());
    }
    diff.finish()
}

/// An identical topology run as a shadow writes only the shadow's topics, ignores input
/// that arrived after it started, stops by itself, and diffs as identical.
#[tokio::test]
async fn identical_shadow_reports_no_difference() {
    let cluster = cluster_with_clicks();
    run_live(&cluster, page_counts(|_| true)).await;
    let live_topics: Vec<String> = cluster
        .lock_or_recover()
        .partition_counts
        .keys()
        .cloned()
        .collect();

    let skipped = run_shadow(&cluster, page_counts(|_| true), 3).await;
    assert_eq!(
        skipped, 3,
        "the clicks appended after the start are not processed"
    );

    let cluster = cluster.lock_or_recover();
    let new_topics: Vec<&String> = cluster
        .partition_counts
        .keys()
        .chain(cluster.logs.keys().map(|partition| &partition.topic))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|topic| !live_topics.contains(topic))
        .collect();
    assert_eq!(
        new_topics,
        [
            "page-counts-app-shadow-by-page-repartition",
            "page-counts-app-shadow-per-page-changelog",
            "page-counts-app-shadow.page-counts",
        ],
        "the shadow writes only topics of its own"
    );
    let report = diff(
        &cluster,
        "page-counts",
        "page-counts-app-shadow.page-counts",
    );
    assert!(report.is_identical(), "{report}");
    assert_eq!(report.same, 6, "{report}");
}

/// A topology that drops one page diffs as exactly that page removed.
#[tokio::test]
async fn changed_shadow_reports_the_changed_keys() {
    let cluster = cluster_with_clicks();
    run_live(&cluster, page_counts(|_| true)).await;
    run_shadow(&cluster, page_counts(|page| page != "page-3"), 0).await;
    let report = diff(
        &cluster.lock_or_recover(),
        "page-counts",
        "page-counts-app-shadow.page-counts",
    );
    assert_eq!(
        (report.same, report.removed, report.changed, report.added),
        (5, 1, 0, 0)
    );
    assert_eq!(report.differences[0].key.key, "page-3");
    assert_eq!(report.differences[0].live.as_deref(), Some("10"));
}
