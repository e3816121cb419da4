//! The broker's Prometheus metrics: one registry per [`Cluster`](crate::cluster::Cluster)
//! ([`BrokerMetrics`]), which the HTTP listener ([`crate::http`]) encodes on `/metrics`.
//!
//! Two kinds of metric live here:
//!
//! - **Counted as things happen**, on the hot paths, so they cost an atomic add and
//!   nothing else: each partition holds its topic's [`TopicTraffic`] handles (taken once,
//!   when the partition opens), requests find their api/version slot in a fixed table
//!   ([`RequestMetrics`]), the accept loops hold their counters. No lock, no allocation and
//!   no label lookup per record.
//! - **Read at scrape time** ([`scrape::ClusterCollector`]): log offsets and sizes per
//!   partition, committed offsets and lag per consumer group, open and refused
//!   connections (the connection limits count those under their own lock anyway). These are
//!   state the broker keeps anyway; maintaining gauges per request would cost the produce
//!   path for a value read every 15 seconds.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `riffle_topic_bytes_in_total`, `riffle_topic_records_in_total` | counter | `topic` |
//! | `riffle_topic_bytes_out_total`, `riffle_topic_records_out_total` | counter | `topic` |
//! | `riffle_requests_total` | counter | `api`, `version` |
//! | `riffle_request_duration_seconds` | histogram | `api`, `version` |
//! | `riffle_log_fsync_duration_seconds` | histogram | |
//! | `riffle_log_group_commit_requests` | histogram | |
//! | `riffle_connections_accepted_total` | counter | `listener` |
//! | `riffle_connections_refused_total` | counter | `reason` |
//! | `riffle_connections_open` | gauge | |
//! | `riffle_partition_log_end_offset`, `riffle_partition_log_start_offset`, `riffle_partition_size_bytes` | gauge | `topic`, `partition` |
//! | `riffle_group_committed_offset`, `riffle_group_lag` | gauge | `group`, `topic`, `partition` |

pub mod scrape;

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use riffle_protocol::api::ApiKey;
use riffle_storage::MutexRecover;

/// Request latency buckets: 100 µs doubling to about 52 s, past the longest Fetch wait
/// (30 s) a client can ask for.
const REQUEST_DURATION_BUCKETS: (f64, f64, u16) = (0.000_1, 2.0, 20);
/// Fsync latency buckets: 50 µs doubling to about 1.6 s.
const FSYNC_DURATION_BUCKETS: (f64, f64, u16) = (0.000_05, 2.0, 16);
/// Group-commit size buckets: 1 request doubling to 1024.
const GROUP_COMMIT_BUCKETS: (f64, f64, u16) = (1.0, 2.0, 11);
/// API keys with a slot of their own in the request table (every key we serve is below).
const API_KEY_SLOTS: usize = 67;
/// Versions with a slot of their own per API key (Fetch's 16 is the highest we serve).
const VERSION_SLOTS: usize = 17;

const _: () = assert!(API_KEY_SLOTS * VERSION_SLOTS <= 2048);

/// Labels of per-topic counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    /// The topic's name.
    pub topic: String,
}

/// Labels of per-request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The API's name as Kafka spells it (`Produce`).
    pub api: String,
    /// The request's version.
    pub version: String,
}

/// Labels of the accepted-connection counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    /// The listener's name (`PLAINTEXT`).
    pub listener: String,
}

/// Every metric of one broker, and the registry that encodes them.
pub struct BrokerMetrics {
    /// Held to register a collector and to encode a scrape; never on a request's path.
    registry: Mutex<Registry>,
    topic_bytes_in: Family<TopicLabels, Counter>,
    topic_records_in: Family<TopicLabels, Counter>,
    topic_bytes_out: Family<TopicLabels, Counter>,
    topic_records_out: Family<TopicLabels, Counter>,
    /// Requests by API and version.
    pub requests: RequestMetrics,
    /// Fsyncs of partition logs.
    pub log_sync: LogSyncMetrics,
    connections_accepted: Family<ListenerLabels, Counter>,
}

impl std::fmt::Debug for BrokerMetrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("BrokerMetrics")
            .finish_non_exhaustive()
    }
}

impl Default for BrokerMetrics {
    fn default() -> Self {
        BrokerMetrics::new()
    }
}

impl BrokerMetrics {
    /// A registry holding every counted metric, at zero.
    pub fn new() -> BrokerMetrics {
        let mut registry = Registry::default();
        let topic_bytes_in = Family::default();
        let topic_records_in = Family::default();
        let topic_bytes_out = Family::default();
        let topic_records_out = Family::default();
        registry.register(
            "riffle_topic_bytes_in",
            "Record batch bytes appended by Produce, per topic",
            topic_bytes_in.clone(),
        );
        registry.register(
            "riffle_topic_records_in",
            "Records appended by Produce, per topic",
            topic_records_in.clone(),
        );
        registry.register(
            "riffle_topic_bytes_out",
            "Record batch bytes sent in Fetch responses, per topic",
            topic_bytes_out.clone(),
        );
        registry.register(
            "riffle_topic_records_out",
            "Offsets consumers advanced past with Fetch responses (records, control records \
             and compacted gaps), per topic",
            topic_records_out.clone(),
        );
        let requests = RequestMetrics::register(&mut registry);
        let log_sync = LogSyncMetrics::register(&mut registry);
        let connections_accepted = Family::default();
        registry.register(
            "riffle_connections_accepted",
            "Client connections accepted, per listener",
            connections_accepted.clone(),
        );
        BrokerMetrics {
            registry: Mutex::new(registry),
            topic_bytes_in,
            topic_records_in,
            topic_bytes_out,
            topic_records_out,
            requests,
            log_sync,
            connections_accepted,
        }
    }

    /// The counters of `topic`, for its partitions to keep: counting through them is an
    /// atomic add.
    pub fn topic_traffic(&self, topic: &str) -> TopicTraffic {
        let labels = TopicLabels {
            topic: topic.to_string(),
        };
        TopicTraffic {
            bytes_in: self.topic_bytes_in.get_or_create_owned(&labels),
            records_in: self.topic_records_in.get_or_create_owned(&labels),
            bytes_out: self.topic_bytes_out.get_or_create_owned(&labels),
            records_out: self.topic_records_out.get_or_create_owned(&labels),
        }
    }

    /// Forgets the counters of a deleted topic, so its series leave the scrape.
    pub fn remove_topic(&self, topic: &str) {
        let labels = TopicLabels {
            topic: topic.to_string(),
        };
        self.topic_bytes_in.remove(&labels);
        self.topic_records_in.remove(&labels);
        self.topic_bytes_out.remove(&labels);
        self.topic_records_out.remove(&labels);
    }

    /// The traffic `topic` has counted since start, for the console's history; zeros for a
    /// topic that has counted nothing.
    pub fn topic_traffic_totals(&self, topic: &str) -> TrafficTotals {
        let labels = TopicLabels {
            topic: topic.to_string(),
        };
        let read = |family: &Family<TopicLabels, Counter>| {
            family.get(&labels).map_or(0, |counter| counter.get())
        };
        TrafficTotals {
            bytes_in: read(&self.topic_bytes_in),
            records_in: read(&self.topic_records_in),
            bytes_out: read(&self.topic_bytes_out),
            records_out: read(&self.topic_records_out),
        }
    }

    /// The accepted-connection counter of the listener `name`, for its accept loop to keep.
    pub fn connections_accepted(&self, name: &str) -> Counter {
        self.connections_accepted
            .get_or_create_owned(&ListenerLabels {
                listener: name.to_string(),
            })
    }

    /// Adds a collector read at each scrape (see [`scrape`]).
    pub fn register_collector(&self, collector: Box<dyn Collector>) {
        self.registry
            .lock_or_recover()
            .register_collector(collector);
    }

    /// Every metric in the OpenMetrics text format (which Prometheus reads), ending with
    /// `# EOF`. Runs the scrape-time collectors, which take the topic and group locks
    /// briefly: call it from a blocking thread.
    ///
    /// # Errors
    /// Only if a collector fails to format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        let registry = self.registry.lock_or_recover();
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        Ok(text)
    }
}

/// What a topic's traffic counters read at one moment (see
/// [`BrokerMetrics::topic_traffic_totals`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrafficTotals {
    /// Record batch bytes appended by Produce.
    pub bytes_in: u64,
    /// Records appended by Produce.
    pub records_in: u64,
    /// Record batch bytes sent by Fetch.
    pub bytes_out: u64,
    /// Offsets Fetch took consumers past.
    pub records_out: u64,
}

/// What one API's request metrics read at one moment, over all its versions (see
/// [`RequestMetrics::totals`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RequestTotals {
    /// Requests handled.
    pub count: u64,
    /// Seconds they took, summed.
    pub duration_seconds_sum: f64,
}

/// One topic's traffic counters, shared by its partitions; clones count into the same
/// series.
#[derive(Clone, Debug, Default)]
pub struct TopicTraffic {
    bytes_in: Counter,
    records_in: Counter,
    bytes_out: Counter,
    records_out: Counter,
}

impl TopicTraffic {
    /// Counts a batch appended by Produce.
    pub fn appended(&self, bytes: usize, records: u64) {
        self.bytes_in
            .inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
        self.records_in.inc_by(records);
    }

    /// Counts record bytes sent by Fetch and the offsets they take the consumer past.
    pub fn fetched(&self, bytes: usize, offsets: u64) {
        self.bytes_out
            .inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
        self.records_out.inc_by(offsets);
    }
}

/// Requests by API and version: a count and a latency histogram each, found by index in a
/// fixed table so a request takes no lock to find its series.
pub struct RequestMetrics {
    count: Family<RequestLabels, Counter>,
    duration: Family<RequestLabels, Histogram, fn() -> Histogram>,
    /// Slot `api_key * VERSION_SLOTS + version`, filled on first use.
    slots: Box<[OnceLock<RequestSeries>]>,
}

/// One API version's series, and the latency sum the console reads (the histogram keeps
/// its own sum but does not expose it outside prometheus-client's test utilities).
struct RequestSeries {
    count: Counter,
    duration: Histogram,
    /// Not registered: the summed latency in microseconds, for [`RequestMetrics::totals`].
    duration_micros_sum: Counter,
}

impl RequestSeries {
    fn observe(&self, elapsed: Duration) {
        self.count.inc();
        self.duration.observe(elapsed.as_secs_f64());
        self.duration_micros_sum
            .inc_by(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }
}

impl RequestMetrics {
    fn register(registry: &mut Registry) -> RequestMetrics {
        let count = Family::default();
        let duration: Family<RequestLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| {
                let (start, factor, length) = REQUEST_DURATION_BUCKETS;
                Histogram::new(exponential_buckets(start, factor, length))
            });
        registry.register(
            "riffle_requests",
            "Requests answered (or, for acks=0 Produce, handled), per API and version",
            count.clone(),
        );
        registry.register(
            "riffle_request_duration_seconds",
            "Time from a request's dispatch to its response being encoded (for Produce, \
             including the fsync wait of acks=all), per API and version",
            duration.clone(),
        );
        RequestMetrics {
            count,
            duration,
            slots: (0..API_KEY_SLOTS * VERSION_SLOTS)
                .map(|_| OnceLock::new())
                .collect(),
        }
    }

    /// Counts one request of `api_key` at `version` that took `elapsed`.
    pub fn observe(&self, api_key: ApiKey, version: i16, elapsed: Duration) {
        let key = usize::try_from(api_key as i16).ok();
        let slot = usize::try_from(version)
            .ok()
            .filter(|&version| version < VERSION_SLOTS)
            .zip(key.filter(|&key| key < API_KEY_SLOTS))
            .map(|(version, key)| key * VERSION_SLOTS + version)
            .and_then(|index| self.slots.get(index));
        match slot {
            Some(slot) => slot
                .get_or_init(|| self.series(api_key, version))
                .observe(elapsed),
            // Never for a version we advertise; counted all the same, by label lookup.
            None => self.series(api_key, version).observe(elapsed),
        }
    }

    /// Requests and their summed latency per API (Kafka's name) since start, over the
    /// versions with a slot; for the console's history. Only APIs that were called appear.
    pub fn totals(&self) -> BTreeMap<&'static str, RequestTotals> {
        let mut totals: BTreeMap<&'static str, RequestTotals> = BTreeMap::new();
        for (index, slot) in self.slots.iter().enumerate() {
            let Some(series) = slot.get() else {
                continue;
            };
            let key = i16::try_from(index / VERSION_SLOTS).ok();
            let Some(api_key) = key.and_then(ApiKey::from_i16) else {
                continue;
            };
            let total = totals.entry(api_key.name()).or_default();
            total.count += series.count.get();
            // Microseconds to seconds: exact enough for a chart of means.
            total.duration_seconds_sum += series.duration_micros_sum.get() as f64 / 1e6;
        }
        totals
    }

    fn series(&self, api_key: ApiKey, version: i16) -> RequestSeries {
        let labels = RequestLabels {
            api: api_key.name().to_string(),
            version: version.to_string(),
        };
        RequestSeries {
            count: self.count.get_or_create_owned(&labels),
            duration: self.duration.get_or_create_owned(&labels),
            duration_micros_sum: Counter::default(),
        }
    }
}

/// Fsyncs of partition logs: how long each took, and how many acks=all requests each
/// answered (the group commit's batch).
#[derive(Clone, Debug)]
pub struct LogSyncMetrics {
    duration: Histogram,
    group_commit_requests: Histogram,
}

impl Default for LogSyncMetrics {
    /// Histograms in no registry, for partitions opened outside a cluster (tests).
    fn default() -> Self {
        let (start, factor, length) = FSYNC_DURATION_BUCKETS;
        let duration = Histogram::new(exponential_buckets(start, factor, length));
        let (start, factor, length) = GROUP_COMMIT_BUCKETS;
        let group_commit_requests = Histogram::new(exponential_buckets(start, factor, length));
        LogSyncMetrics {
            duration,
            group_commit_requests,
        }
    }
}

impl LogSyncMetrics {
    fn register(registry: &mut Registry) -> LogSyncMetrics {
        let metrics = LogSyncMetrics::default();
        registry.register(
            "riffle_log_fsync_duration_seconds",
            "Time one group-commit fsync of a partition log took, as acks=all and \
             flush.messages wait for it (near zero when an earlier fsync already covered it)",
            metrics.duration.clone(),
        );
        registry.register(
            "riffle_log_group_commit_requests",
            "Produce requests (acks=all) one fsync answered: the group commit's batch size",
            metrics.group_commit_requests.clone(),
        );
        metrics
    }

    /// Records one group-commit fsync that answered `requests` waiting requests.
    pub fn synced(&self, elapsed: Duration, requests: usize) {
        self.duration.observe(elapsed.as_secs_f64());
        self.group_commit_requests.observe(requests as f64);
    }
}

/// What a partition counts into: its topic's traffic and the broker's fsync metrics.
#[derive(Clone, Debug, Default)]
pub struct PartitionMetrics {
    /// Its topic's counters.
    pub traffic: TopicTraffic,
    /// The fsync histograms.
    pub log_sync: LogSyncMetrics,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_metrics_appear_in_the_encoding() {
        // Proves a topic's handles, a request's slot, an fsync and a refusal each reach the
        // text a scrape returns, under the documented names and labels.
        let metrics = BrokerMetrics::new();
        let traffic = metrics.topic_traffic("orders");
        traffic.appended(100, 3);
        traffic.appended(50, 2);
        traffic.fetched(120, 4);
        metrics
            .requests
            .observe(ApiKey::Produce, 9, Duration::from_millis(2));
        metrics
            .requests
            .observe(ApiKey::Produce, 9, Duration::from_millis(3));
        metrics.log_sync.synced(Duration::from_micros(700), 5);
        metrics.connections_accepted("PLAINTEXT").inc();
        let text = metrics.encode().expect("encodes");
        for expected in [
            "riffle_topic_bytes_in_total{topic=\"orders\"} 150",
            "riffle_topic_records_in_total{topic=\"orders\"} 5",
            "riffle_topic_bytes_out_total{topic=\"orders\"} 120",
            "riffle_topic_records_out_total{topic=\"orders\"} 4",
            "riffle_requests_total{api=\"Produce\",version=\"9\"} 2",
            "riffle_request_duration_seconds_count{api=\"Produce\",version=\"9\"} 2",
            "riffle_log_fsync_duration_seconds_count 1",
            "riffle_log_group_commit_requests_sum 5.0",
            "riffle_connections_accepted_total{listener=\"PLAINTEXT\"} 1",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
        metrics.remove_topic("orders");
        let text = metrics.encode().expect("encodes");
        assert!(!text.contains("orders"), "{text}");
    }
}
