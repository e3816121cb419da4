//! The console's memory: a bounded ring of samples of the broker's throughput, request
//! rate and latency, and each consumer group's lag per partition, taken every
//! [`HISTORY_SAMPLE_INTERVAL`] for the last [`HISTORY_WINDOW`], so charts have a past
//! when a page opens. `/api/history` serves it ([`super::api`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use riffle_storage::MutexRecover;
use serde::Serialize;
use tracing::warn;

use crate::cluster::{Cluster, now_ms};
use crate::metrics::{RequestTotals, TrafficTotals};

/// How often a sample is taken.
pub const HISTORY_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);
/// How far back samples are kept.
pub const HISTORY_WINDOW: Duration = Duration::from_secs(30 * 60);
/// Samples kept: the window over the interval.
pub const HISTORY_MAX_SAMPLES: usize = 360;
/// Most (group, topic, partition) lag series kept; partitions past it are not charted,
/// so a broker with very many groups keeps the history's memory bounded.
pub const HISTORY_MAX_LAG_SERIES: usize = 1000;

const _: () = assert!(
    HISTORY_MAX_SAMPLES as u64 * HISTORY_SAMPLE_INTERVAL.as_secs() == HISTORY_WINDOW.as_secs()
);

/// The samples; shared by the sampler task and the `/api/history` handler.
#[derive(Debug, Default)]
pub struct History {
    /// Held to add a sample or copy samples out; never across an `.await`.
    samples: Mutex<Samples>,
}

#[derive(Debug, Default)]
struct Samples {
    broker: VecDeque<BrokerSample>,
    lag: BTreeMap<LagSeriesKey, VecDeque<LagPoint>>,
    /// The counters at the previous sample: rates are the difference over the interval.
    previous: Option<Totals>,
}

/// One broker sample: rates and mean latencies over the interval before `time_ms`.
#[derive(Debug, Clone, Serialize)]
pub struct BrokerSample {
    /// When it was taken, ms since the epoch.
    pub time_ms: i64,
    /// Record batch bytes appended by Produce, per second.
    pub bytes_in_per_second: f64,
    /// Record batch bytes sent by Fetch, per second.
    pub bytes_out_per_second: f64,
    /// Records appended, per second.
    pub records_in_per_second: f64,
    /// Offsets consumers fetched past, per second.
    pub records_out_per_second: f64,
    /// Requests answered, per second, over all APIs.
    pub requests_per_second: f64,
    /// Mean latency in ms per API (Kafka's name) that had requests in the interval.
    pub latency_ms: BTreeMap<&'static str, f64>,
}

/// A lag series: group, topic, partition.
type LagSeriesKey = (String, String, i32);

/// One lag reading: ms since the epoch and the lag in records.
type LagPoint = (i64, i64);

#[derive(Debug)]
struct Totals {
    taken: Instant,
    traffic: TrafficTotals,
    requests: BTreeMap<&'static str, RequestTotals>,
}

/// What `/api/history` answers.
#[derive(Debug, Serialize)]
pub struct HistorySnapshot {
    /// [`HISTORY_SAMPLE_INTERVAL`] in ms.
    pub interval_ms: u64,
    /// [`HISTORY_WINDOW`] in ms.
    pub window_ms: u64,
    /// Broker samples, oldest first.
    pub samples: Vec<BrokerSample>,
    /// The lag series of the group asked for, by topic and partition.
    pub lag: Vec<LagSeries>,
}

/// One partition's lag over time.
#[derive(Debug, Serialize)]
pub struct LagSeries {
    /// The group.
    pub group: String,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// `[time_ms, lag]` pairs, oldest first.
    pub points: Vec<LagPoint>,
}

impl History {
    /// Reads the cluster's counters and lag and adds a sample. The first call only sets
    /// the baseline rates are measured from. Takes topic and group locks briefly: call it
    /// from a blocking thread.
    pub fn record(&self, cluster: &Cluster, taken: Instant, time_ms: i64) {
        let totals = read_totals(cluster, taken);
        let lags = read_lags(cluster);
        let mut samples = self.samples.lock_or_recover();
        if let Some(previous) = samples.previous.take() {
            let sample = rates(&previous, &totals, time_ms);
            if samples.broker.len() == HISTORY_MAX_SAMPLES {
                samples.broker.pop_front();
            }
            samples.broker.push_back(sample);
        }
        samples.previous = Some(totals);
        samples.add_lags(lags, time_ms);
    }

    /// A copy of the samples, and the lag series of `group` if one is named.
    pub fn snapshot(&self, group: Option<&str>) -> HistorySnapshot {
        let samples = self.samples.lock_or_recover();
        let lag = samples
            .lag
            .iter()
            .filter(|((series_group, _, _), _)| Some(series_group.as_str()) == group)
            .map(|((group, topic, partition), points)| LagSeries {
                group: group.clone(),
                topic: topic.clone(),
                partition: *partition,
                points: points.iter().copied().collect(),
            })
            .collect();
        HistorySnapshot {
            interval_ms: duration_ms(HISTORY_SAMPLE_INTERVAL),
            window_ms: duration_ms(HISTORY_WINDOW),
            samples: samples.broker.iter().cloned().collect(),
            lag,
        }
    }
}

impl Samples {
    /// Adds a point to each series, starts series for new partitions (up to the cap) and
    /// forgets points older than the window and series left with none.
    fn add_lags(&mut self, lags: Vec<(LagSeriesKey, i64)>, time_ms: i64) {
        for (key, lag) in lags {
            let room = self.lag.len() < HISTORY_MAX_LAG_SERIES;
            match self.lag.get_mut(&key) {
                Some(points) => points.push_back((time_ms, lag)),
                None if room => {
                    self.lag.insert(key, VecDeque::from([(time_ms, lag)]));
                }
                None => {}
            }
        }
        let oldest_ms =
            time_ms.saturating_sub(i64::try_from(duration_ms(HISTORY_WINDOW)).unwrap_or(i64::MAX));
        for points in self.lag.values_mut() {
            while points.front().is_some_and(|(at, _)| *at < oldest_ms) {
                points.pop_front();
            }
        }
        self.lag.retain(|_, points| !points.is_empty());
    }
}

/// Samples into `history` every [`HISTORY_SAMPLE_INTERVAL`] until the cluster is dropped
/// (or the task aborted with the HTTP server).
pub async fn sample_until_dropped(cluster: Weak<Cluster>, history: std::sync::Arc<History>) {
    let mut ticker = tokio::time::interval(HISTORY_SAMPLE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        let history = history.clone();
        let sampled = tokio::task::spawn_blocking(move || {
            history.record(&cluster, Instant::now(), now_ms());
        })
        .await;
        if let Err(error) = sampled {
            warn!(%error, "a console history sample failed");
        }
    }
}

fn read_totals(cluster: &Cluster, taken: Instant) -> Totals {
    let metrics = cluster.metrics();
    let mut traffic = TrafficTotals::default();
    for topic in cluster.all_topics() {
        let topic_totals = metrics.topic_traffic_totals(&topic.name);
        traffic.bytes_in += topic_totals.bytes_in;
        traffic.records_in += topic_totals.records_in;
        traffic.bytes_out += topic_totals.bytes_out;
        traffic.records_out += topic_totals.records_out;
    }
    Totals {
        taken,
        traffic,
        requests: metrics.requests.totals(),
    }
}

fn read_lags(cluster: &Cluster) -> Vec<(LagSeriesKey, i64)> {
    let mut lags = Vec::new();
    for (group, offsets) in cluster.groups().all_committed_offsets() {
        for ((topic, partition), committed) in offsets {
            if let Some((_, lag)) = cluster.committed_lag(&topic, partition, committed.offset) {
                lags.push(((group.clone(), topic, partition), lag));
            }
        }
    }
    lags
}

/// Rates over the interval between two readings; a counter that went down (its topic
/// deleted) counts as no traffic.
fn rates(previous: &Totals, now: &Totals, time_ms: i64) -> BrokerSample {
    let seconds = now
        .taken
        .saturating_duration_since(previous.taken)
        .as_secs_f64()
        .max(f64::EPSILON);
    let per_second = |before: u64, after: u64| after.saturating_sub(before) as f64 / seconds;
    let mut requests_per_second = 0.0;
    let mut latency_ms = BTreeMap::new();
    for (api, after) in &now.requests {
        let before = previous.requests.get(api).copied().unwrap_or_default();
        let count = after.count.saturating_sub(before.count);
        if count == 0 {
            continue;
        }
        requests_per_second += count as f64 / seconds;
        let duration_seconds = (after.duration_seconds_sum - before.duration_seconds_sum).max(0.0);
        latency_ms.insert(*api, duration_seconds * 1000.0 / count as f64);
    }
    BrokerSample {
        time_ms,
        bytes_in_per_second: per_second(previous.traffic.bytes_in, now.traffic.bytes_in),
        bytes_out_per_second: per_second(previous.traffic.bytes_out, now.traffic.bytes_out),
        records_in_per_second: per_second(previous.traffic.records_in, now.traffic.records_in),
        records_out_per_second: per_second(previous.traffic.records_out, now.traffic.records_out),
        requests_per_second,
        latency_ms,
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_cluster;

    #[test]
    fn samples_stay_within_the_window_and_rates_follow_the_counters() {
        // Proves the first reading is only a baseline, rates are per second over the
        // interval, and the ring never holds more than HISTORY_MAX_SAMPLES.
        let (_dir, cluster) = test_cluster();
        let history = History::default();
        let start = Instant::now();
        history.record(&cluster, start, 0);
        assert!(history.snapshot(None).samples.is_empty());

        let traffic = cluster.metrics().topic_traffic("__consumer_offsets");
        traffic.appended(1000, 10);
        history.record(&cluster, start + HISTORY_SAMPLE_INTERVAL, 5_000);
        let samples = history.snapshot(None).samples;
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].bytes_in_per_second, 200.0);
        assert_eq!(samples[0].records_in_per_second, 2.0);

        for step in 2..(HISTORY_MAX_SAMPLES as u32 + 10) {
            let taken = start + HISTORY_SAMPLE_INTERVAL * step;
            history.record(&cluster, taken, i64::from(step) * 5_000);
        }
        let samples = history.snapshot(None).samples;
        assert_eq!(samples.len(), HISTORY_MAX_SAMPLES);
        assert!(
            samples
                .iter()
                .all(|sample| sample.bytes_in_per_second == 0.0)
        );
    }
}
