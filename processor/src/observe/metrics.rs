//! Processor metrics in Prometheus' text format: counters and gauges read from each
//! application's [`RuntimeStatus`] and stores at scrape time, and two histograms the
//! runner records into as it goes ([`RuntimeMetrics`]).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `riffle_processor_records_processed_total` | counter | `application` |
//! | `riffle_processor_records_dropped_total` | counter | `application`, `reason` (`late`, `null_key_or_value`, `deserialization`, `negative_timestamp`, `expired`) |
//! | `riffle_processor_end_to_end_latency_seconds` | histogram | `application` |
//! | `riffle_processor_commit_duration_seconds` | histogram | `application` |
//! | `riffle_processor_commits_total` | counter | `application` |
//! | `riffle_processor_tasks` | gauge | `application` |
//! | `riffle_processor_restored_records_total` | counter | `application` |
//! | `riffle_processor_restore_remaining_records`, `riffle_processor_restore_total_records` | gauge | `application`, `task`, `store` |
//! | `riffle_processor_store_entries` | gauge | `application`, `task`, `store` |

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use super::app::AppHandle;
use crate::graph::DropReason;
use crate::runtime::RuntimeStatus;
use crate::store::json_query::task_entries;

/// End-to-end latency buckets: 1 ms doubling to about 2.3 hours (old input replayed
/// lands in the last ones).
const END_TO_END_LATENCY_BUCKETS: (f64, f64, u16) = (0.001, 2.0, 24);
/// Commit duration buckets: 1 ms doubling to about 65 s.
const COMMIT_DURATION_BUCKETS: (f64, f64, u16) = (0.001, 2.0, 17);

/// What the runner measures as it goes, for the collector to encode.
#[derive(Debug)]
pub struct RuntimeMetrics {
    /// Wall-clock time at sending minus the record's timestamp, per record written to a
    /// sink topic (Kafka Streams' `record-e2e-latency` at the sink).
    pub(crate) end_to_end_latency: Histogram,
    /// From the start of a commit (flushing outputs) to its offsets or transaction
    /// committed.
    pub(crate) commit_duration: Histogram,
}

impl Default for RuntimeMetrics {
    fn default() -> Self {
        let (start, factor, count) = END_TO_END_LATENCY_BUCKETS;
        let end_to_end_latency = Histogram::new(exponential_buckets(start, factor, count));
        let (start, factor, count) = COMMIT_DURATION_BUCKETS;
        let commit_duration = Histogram::new(exponential_buckets(start, factor, count));
        RuntimeMetrics {
            end_to_end_latency,
            commit_duration,
        }
    }
}

impl RuntimeMetrics {
    /// Records the latency of a record stamped `timestamp_ms` and written at `now_ms`.
    pub(crate) fn observe_end_to_end(&self, now_ms: i64, timestamp_ms: i64) {
        let latency_ms = now_ms.saturating_sub(timestamp_ms).max(0);
        // Far below 2^53 ms: exact as a float.
        self.end_to_end_latency.observe(latency_ms as f64 / 1000.0);
    }

    /// Records a commit that took `elapsed`.
    pub(crate) fn observe_commit(&self, elapsed: std::time::Duration) {
        self.commit_duration.observe(elapsed.as_secs_f64());
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLabels {
    application: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    application: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    application: String,
    task: String,
    store: String,
}

/// Encodes the metrics of every application given, at each scrape. Register it in the
/// host's registry (`Registry::register_collector`); encoding reads each application's
/// status and takes each store's lock briefly, so scrape from a blocking thread.
#[derive(Debug)]
pub struct ProcessorCollector {
    apps: Vec<AppHandle>,
}

impl ProcessorCollector {
    /// A collector for `apps`.
    pub fn new(apps: Vec<AppHandle>) -> ProcessorCollector {
        ProcessorCollector { apps }
    }
}

/// The metrics of `apps` alone, in the OpenMetrics text format ending with `# EOF`: what a
/// program without a broker serves on `/metrics`. Call from a blocking thread, as for
/// [`ProcessorCollector`].
///
/// # Errors
/// Only if a metric fails to format.
pub fn encode_metrics(apps: &[AppHandle]) -> Result<String, std::fmt::Error> {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(ProcessorCollector::new(apps.to_vec())));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

/// What one scrape reads of one application.
struct Snapshot<'a> {
    app: &'a AppHandle,
    status: RuntimeStatus,
}

impl Collector for ProcessorCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshots: Vec<Snapshot<'_>> = self
            .apps
            .iter()
            .map(|app| Snapshot {
                app,
                status: app.status_now(),
            })
            .collect();
        encode_counts(&snapshots, &mut encoder)?;
        encode_histograms(&snapshots, &mut encoder)?;
        encode_restores(&snapshots, &mut encoder)?;
        encode_store_entries(&snapshots, &mut encoder)
    }
}

fn app_labels(snapshot: &Snapshot<'_>) -> AppLabels {
    AppLabels {
        application: snapshot.app.application_id().to_string(),
    }
}

/// One counter (or gauge) per application, its value read from the status.
fn encode_per_app(
    snapshots: &[Snapshot<'_>],
    encoder: &mut DescriptorEncoder,
    (name, help, metric_type): (&str, &str, MetricType),
    value: impl Fn(&RuntimeStatus) -> u64,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for snapshot in snapshots {
        let labels = app_labels(snapshot);
        let family = metric.encode_family(&labels)?;
        let count = value(&snapshot.status);
        match metric_type {
            MetricType::Gauge => {
                ConstGauge::new(i64::try_from(count).unwrap_or(i64::MAX)).encode(family)?
            }
            _ => ConstCounter::new(count).encode(family)?,
        }
    }
    Ok(())
}

fn encode_counts(
    snapshots: &[Snapshot<'_>],
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let processed = (
        "riffle_processor_records_processed",
        "Records the application's tasks took for processing",
        MetricType::Counter,
    );
    encode_per_app(snapshots, encoder, processed, |status| {
        status.metrics.processed_records
    })?;
    let commits = (
        "riffle_processor_commits",
        "Commits made (under exactly-once, transactions committed)",
        MetricType::Counter,
    );
    encode_per_app(snapshots, encoder, commits, |status| status.commits)?;
    let tasks = (
        "riffle_processor_tasks",
        "Tasks this instance runs now",
        MetricType::Gauge,
    );
    encode_per_app(snapshots, encoder, tasks, |status| {
        status.tasks.len() as u64
    })?;
    let restored = (
        "riffle_processor_restored_records",
        "Changelog records applied to stores by restores since the start",
        MetricType::Counter,
    );
    encode_per_app(snapshots, encoder, restored, |status| {
        status.restored_records
    })?;
    let mut metric = encoder.encode_descriptor(
        "riffle_processor_records_dropped",
        "Records dropped, by reason: late (after their window closed), null_key_or_value, \
         deserialization, negative_timestamp, expired (older than the store keeps)",
        None,
        MetricType::Counter,
    )?;
    for snapshot in snapshots {
        for reason in DropReason::ALL {
            let labels = DropLabels {
                application: snapshot.app.application_id().to_string(),
                reason: reason.label().to_string(),
            };
            let count = snapshot.status.metrics.dropped(reason);
            ConstCounter::new(count).encode(metric.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

fn encode_histograms(
    snapshots: &[Snapshot<'_>],
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(
        "riffle_processor_end_to_end_latency_seconds",
        "Wall-clock time when a record is written to a sink topic minus its timestamp",
        None,
        MetricType::Histogram,
    )?;
    for snapshot in snapshots {
        let histogram = &snapshot.app.metrics().end_to_end_latency;
        let labels = app_labels(snapshot);
        histogram.encode(metric.encode_family(&labels)?)?;
    }
    let mut metric = encoder.encode_descriptor(
        "riffle_processor_commit_duration_seconds",
        "One commit: flushing the outputs, then committing offsets (or the transaction)",
        None,
        MetricType::Histogram,
    )?;
    for snapshot in snapshots {
        let histogram = &snapshot.app.metrics().commit_duration;
        let labels = app_labels(snapshot);
        histogram.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// The changelog being restored now, if any, by the store it fills.
fn encode_restores(
    snapshots: &[Snapshot<'_>],
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let restoring: Vec<(StoreLabels, i64, i64)> = snapshots
        .iter()
        .filter_map(|snapshot| {
            let progress = snapshot.status.restoring.as_ref()?;
            let store = snapshot.app.store_of_changelog(&progress.changelog.topic)?;
            let labels = StoreLabels {
                application: snapshot.app.application_id().to_string(),
                task: progress.task.to_string(),
                store,
            };
            let total = progress
                .end_offset
                .saturating_sub(progress.from_offset)
                .max(0);
            let remaining = progress.end_offset.saturating_sub(progress.position).max(0);
            Some((labels, remaining, total))
        })
        .collect();
    let mut metric = encoder.encode_descriptor(
        "riffle_processor_restore_remaining_records",
        "Offsets of the changelog being restored now still to read, by the store it fills",
        None,
        MetricType::Gauge,
    )?;
    for (labels, remaining, _) in &restoring {
        ConstGauge::new(*remaining).encode(metric.encode_family(labels)?)?;
    }
    let mut metric = encoder.encode_descriptor(
        "riffle_processor_restore_total_records",
        "Offsets of the changelog being restored now, from where the restore started to its end",
        None,
        MetricType::Gauge,
    )?;
    for (labels, _, total) in &restoring {
        ConstGauge::new(*total).encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

fn encode_store_entries(
    snapshots: &[Snapshot<'_>],
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(
        "riffle_processor_store_entries",
        "About how many entries a task's store holds (exact in memory; on disk the \
         engine's estimate, which counts deletions not yet compacted away)",
        None,
        MetricType::Gauge,
    )?;
    for snapshot in snapshots {
        let application = snapshot.app.application_id();
        for (store, kind) in snapshot.app.store_kinds() {
            for (task, entries) in task_entries(snapshot.app.registry(), &store, kind) {
                let labels = StoreLabels {
                    application: application.to_string(),
                    task: task.to_string(),
                    store: store.clone(),
                };
                let entries = i64::try_from(entries).unwrap_or(i64::MAX);
                ConstGauge::new(entries).encode(metric.encode_family(&labels)?)?;
            }
        }
    }
    Ok(())
}
