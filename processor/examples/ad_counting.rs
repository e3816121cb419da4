//! Ad counting: impressions and clicks per campaign per minute, with late events counted
//! up to a grace period and dropped after it.
//!
//! Topics (all keyed by campaign id, UTF-8; event time = the record timestamp):
//!
//! - `ad-impressions` (input): one record per ad shown. The value is not read (any
//!   non-null bytes, e.g. `{"ad":"banner-7"}`); a null value is dropped and counted.
//! - `ad-clicks` (input): one record per click, value likewise.
//! - `campaign-stats` (output): after every event, the campaign's updated counts for the
//!   event's minute: `{"campaign":"c1","window_start_ms":0,"window_end_ms":60000,
//!   "impressions":2,"clicks":1}`. The latest record per campaign and minute is the count.
//!
//! An event may arrive up to 30 s after its minute ended and still count, with a new
//! `campaign-stats` record. "After" is by stream time: the largest timestamp processed so
//! far from partition p of both topics. Past that the minute is closed and the event is
//! dropped and counted: the running application logs `records dropped so far
//! dropped_total=N by_reason={Late: N}` at its next commit when the count grew, and tests
//! read `TestDriver::dropped_records`.
//!
//! `ad-impressions` and `ad-clicks` must have the same number of partitions: the merged
//! counts of one campaign must meet in one task.
//!
//! Run it: `cargo run -p riffle-processor --example ad_counting` starts a broker on
//! 127.0.0.1:9092 with this topology running inside it (the usual `riffle serve` flags
//! apply); `-- --remote HOST:PORT` runs it against another Kafka-compatible broker. Then:
//!
//! ```text
//! echo 'c1:{"ad":"banner-7"}' | kcat -b 127.0.0.1:9092 -P -t ad-impressions -K:
//! echo 'c1:{"ad":"banner-7"}' | kcat -b 127.0.0.1:9092 -P -t ad-clicks -K:
//! kcat -b 127.0.0.1:9092 -C -t campaign-stats -K' => '
//! ```
//!
//! To make it yours: add event kinds to `AdEvent` and counters to `Counts`, or change
//! `STATS_WINDOW` and `STATS_GRACE`.

mod common;

use std::time::Duration;

use riffle_processor::{
    BytesSerde, JsonSerde, KStream, Materialized, StreamsBuilder, StringSerde, TimeWindows,
    Topology, TopologyError, WindowStoreHandle, Windowed,
};
use serde::{Deserialize, Serialize};

/// Counts are per campaign and this much time...
const STATS_WINDOW: Duration = Duration::from_secs(60);
/// ...and take events up to this long after the window's end.
const STATS_GRACE: Duration = Duration::from_secs(30);

/// Both inputs as one stream, so one aggregation counts both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AdEvent {
    Impression,
    Click,
}

/// What the window store keeps per campaign and minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Counts {
    impressions: u64,
    clicks: u64,
}

impl Counts {
    fn add(mut self, event: AdEvent) -> Counts {
        match event {
            AdEvent::Impression => self.impressions += 1,
            AdEvent::Click => self.clicks += 1,
        }
        self
    }
}

/// A value of `campaign-stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CampaignStats {
    campaign: String,
    window_start_ms: i64,
    window_end_ms: i64,
    impressions: u64,
    clicks: u64,
}

fn campaign_stats(window: &Windowed<String>, counts: &Counts) -> (String, CampaignStats) {
    let stats = CampaignStats {
        campaign: window.key.clone(),
        window_start_ms: window.start_ms,
        window_end_ms: window.end_ms,
        impressions: counts.impressions,
        clicks: counts.clicks,
    };
    (window.key.clone(), stats)
}

/// Reads `topic` as a stream of `event`s; the payload does not matter for counting.
fn events(builder: &StreamsBuilder, topic: &str, event: AdEvent) -> KStream<String, AdEvent> {
    builder
        .stream(topic, StringSerde, BytesSerde)
        .map_values(move |_payload: &Vec<u8>| event)
}

/// The whole application, and the window store of the counts, for queries.
fn topology() -> Result<(Topology, WindowStoreHandle<String, Counts>), TopologyError> {
    let builder = StreamsBuilder::new("ad-counting");
    let impressions = events(&builder, "ad-impressions", AdEvent::Impression);
    let clicks = events(&builder, "ad-clicks", AdEvent::Click);
    let counts = impressions
        .merge(&clicks)
        .group_by_key()
        .windowed_by(TimeWindows::tumbling(STATS_WINDOW).grace(STATS_GRACE))
        // Every update is emitted (the default), so a late event within the grace period
        // shows up as a corrected count for its minute.
        .aggregate(
            Counts::default,
            |_campaign, event, counts| counts.add(*event),
            Materialized::new("campaign-counts").with_value_serde(JsonSerde::<Counts>::new()),
        );
    counts.to_stream().map(campaign_stats).to(
        "campaign-stats",
        StringSerde,
        JsonSerde::<CampaignStats>::new(),
    );
    Ok((builder.build()?, counts.store()))
}

fn main() -> std::process::ExitCode {
    // The store handle serves queries in tests; `common::run_built` does not expose it.
    let topology = topology().map(|(topology, _counts)| topology);
    common::run_built("ad_counting", topology)
}

#[cfg(test)]
mod tests {
    use riffle_processor::{DropReason, TestDriver, TestInputTopic, TestOutputTopic};

    use super::*;

    const MINUTE_MS: i64 = 60_000;

    struct Harness {
        driver: TestDriver,
        counts: WindowStoreHandle<String, Counts>,
        impressions: TestInputTopic<String, Vec<u8>>,
        clicks: TestInputTopic<String, Vec<u8>>,
        stats: TestOutputTopic<String, CampaignStats>,
    }

    fn harness() -> Harness {
        let (topology, counts) = topology().expect("the topology builds");
        let driver = TestDriver::new(topology);
        Harness {
            counts,
            impressions: driver.input_topic("ad-impressions", StringSerde, BytesSerde),
            clicks: driver.input_topic("ad-clicks", StringSerde, BytesSerde),
            stats: driver.output_topic("campaign-stats", StringSerde, JsonSerde::new()),
            driver,
        }
    }

    impl Harness {
        fn impression(&mut self, campaign: &str, timestamp_ms: i64) {
            let payload = br#"{"ad":"banner-7"}"#.to_vec();
            self.impressions
                .pipe_input_at(campaign.to_string(), payload, timestamp_ms);
        }

        fn click(&mut self, campaign: &str, timestamp_ms: i64) {
            let payload = br#"{"ad":"banner-7"}"#.to_vec();
            self.clicks
                .pipe_input_at(campaign.to_string(), payload, timestamp_ms);
        }

        fn late_drops(&self) -> u64 {
            self.driver.metrics().dropped(DropReason::Late)
        }
    }

    fn stats(
        campaign: &str,
        minute: i64,
        impressions: u64,
        clicks: u64,
    ) -> (String, CampaignStats) {
        let stats = CampaignStats {
            campaign: campaign.to_string(),
            window_start_ms: minute * MINUTE_MS,
            window_end_ms: (minute + 1) * MINUTE_MS,
            impressions,
            clicks,
        };
        (campaign.to_string(), stats)
    }

    /// Every event updates its campaign's count for the minute it falls in, `[start, end)`.
    #[test]
    fn impressions_and_clicks_are_counted_per_campaign_and_minute() {
        let mut h = harness();
        h.impression("c1", 0);
        h.click("c1", 20_000);
        h.impression("c2", 30_000);
        h.impression("c1", MINUTE_MS - 1); // last millisecond of minute 0
        h.click("c1", MINUTE_MS); // first millisecond of minute 1
        assert_eq!(
            h.stats.read_key_values(),
            vec![
                stats("c1", 0, 1, 0),
                stats("c1", 0, 1, 1),
                stats("c2", 0, 1, 0),
                stats("c1", 0, 2, 1),
                stats("c1", 1, 0, 1),
            ]
        );
    }

    /// An event up to 30 s after its minute's end (by stream time) corrects the count;
    /// one at or past `end + grace` is dropped and counted, and changes nothing.
    #[test]
    fn late_events_count_within_grace_and_are_dropped_after() {
        let mut h = harness();
        h.impression("c1", 10_000);
        h.impression("c1", MINUTE_MS + 29_999); // stream time 89.999 s: minute 0 still open
        h.click("c1", 50_000); // late, within grace
        assert_eq!(
            h.stats.read_key_values(),
            vec![
                stats("c1", 0, 1, 0),
                stats("c1", 1, 1, 0),
                stats("c1", 0, 1, 1)
            ]
        );
        h.impression("c2", MINUTE_MS + 30_000); // stream time 90 s: minute 0 closes
        h.click("c1", 59_999); // too late
        h.impression("c2", 0); // too late, whatever the campaign
        assert_eq!(h.stats.read_key_values(), vec![stats("c2", 1, 1, 0)]);
        assert_eq!(h.late_drops(), 2);
        assert_eq!(h.driver.dropped_records(), 2);
    }

    /// The window store answers "what are the counts of this campaign" for each minute,
    /// late-but-accepted events included.
    #[test]
    fn the_store_holds_each_minute_of_each_campaign() {
        let mut h = harness();
        h.impression("c1", 5_000);
        h.impression("c1", MINUTE_MS + 5_000);
        h.click("c1", 55_000); // within grace
        h.click("c1", MINUTE_MS + 6_000);
        let store = h.driver.window_store(&h.counts);
        let windows = store.fetch(&"c1".to_string(), 0, MINUTE_MS).unwrap();
        let minute = |start_ms: i64| Windowed {
            key: "c1".to_string(),
            start_ms,
            end_ms: start_ms + MINUTE_MS,
        };
        let expected = vec![
            (
                minute(0),
                Counts {
                    impressions: 1,
                    clicks: 1,
                },
            ),
            (
                minute(MINUTE_MS),
                Counts {
                    impressions: 1,
                    clicks: 1,
                },
            ),
        ];
        assert_eq!(windows, expected);
        assert!(
            store
                .fetch(&"c2".to_string(), 0, MINUTE_MS)
                .unwrap()
                .is_empty()
        );
    }

    /// A null value (a tombstone on an input) is not an event: dropped and counted.
    #[test]
    fn null_values_are_dropped() {
        let mut h = harness();
        h.impressions.pipe_raw(Some(b"c1".to_vec()), None, 1_000);
        assert!(h.stats.is_empty());
        assert_eq!(h.driver.dropped_records(), 1);
        assert_eq!(h.late_drops(), 0);
    }
}
