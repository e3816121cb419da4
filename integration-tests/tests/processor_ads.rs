//! The `ad_counting` example as a user runs it: one process that is a broker with the
//! topology inside it, fed and read by rdkafka clients.

mod example_apps;

use example_apps::{
    Input, MINUTE_MS, Output, json, produce, read_until, start_example, start_ms, text,
    wait_for_log_line,
};
use riffle_integration_tests::Broker;
use riffle_integration_tests::clients::create_topic;
use serde_json::json as value;

const PAYLOAD: &[u8] = br#"{"ad":"banner-7"}"#;

/// Produces one ad event per `(campaign, offset from start)` to `topic`.
async fn produce_events(broker: &Broker, topic: &str, start_ms: i64, events: &[(&str, i64)]) {
    let inputs: Vec<Input> = events
        .iter()
        .map(|(campaign, offset_ms)| Input {
            key: campaign,
            value: Some(PAYLOAD),
            timestamp_ms: start_ms + offset_ms,
        })
        .collect();
    produce(&broker.bootstrap(), topic, &inputs).await;
}

/// Reads `campaign-stats` until it holds `count` records.
fn read_stats(broker: &Broker, count: usize) -> Vec<Output> {
    read_until(broker, "campaign-stats", |records| records.len() >= count)
}

#[tokio::test(flavor = "multi_thread")]
async fn ad_counting_counts_late_events_within_grace_and_drops_later_ones() {
    // Proves the example end to end: impressions and clicks count per campaign and minute;
    // a click 40 s after its minute's end by stream time (grace 30 s) still corrects the
    // count; events arriving after stream time passed their minute's end plus grace change
    // nothing and the running application logs them as dropped. Each step waits for its
    // output so processing order is the order below.
    let mut broker = start_example("ad_counting");
    let bootstrap = broker.bootstrap();
    for topic in ["ad-impressions", "ad-clicks", "campaign-stats"] {
        create_topic(&bootstrap, topic, 1, &[]).await;
    }
    let start_ms = start_ms();
    let events = [("c1", 10_000), ("c1", MINUTE_MS + 29_999)]; // minute 0 stays open
    produce_events(&broker, "ad-impressions", start_ms, &events).await;
    read_stats(&broker, 2);
    produce_events(&broker, "ad-clicks", start_ms, &[("c1", 50_000)]).await; // within grace
    read_stats(&broker, 3);
    let closer = [("c2", MINUTE_MS + 30_000)]; // stream time 90 s: minute 0 closes
    produce_events(&broker, "ad-impressions", start_ms, &closer).await;
    read_stats(&broker, 4);
    produce_events(&broker, "ad-clicks", start_ms, &[("c1", 59_999)]).await; // too late
    produce_events(&broker, "ad-impressions", start_ms, &[("c2", 0)]).await; // too late
    wait_for_log_line(
        &broker,
        &["records dropped so far", "dropped_total=2", "Late: 2"],
    );

    let stats: Vec<(String, serde_json::Value)> = read_stats(&broker, 4)
        .iter()
        .map(|(key, value)| (text(key), json(value.as_deref().expect("campaign stats"))))
        .collect();
    let minute = |campaign: &str, minute: i64, impressions: u64, clicks: u64| {
        let window_start_ms = start_ms + minute * MINUTE_MS;
        let stats = value!({
            "campaign": campaign,
            "window_start_ms": window_start_ms,
            "window_end_ms": window_start_ms + MINUTE_MS,
            "impressions": impressions,
            "clicks": clicks,
        });
        (campaign.to_string(), stats)
    };
    let expected = vec![
        minute("c1", 0, 1, 0),
        minute("c1", 1, 1, 0),
        minute("c1", 0, 1, 1), // the late click, within grace
        minute("c2", 1, 1, 0),
    ];
    assert_eq!(stats, expected);
    broker.stop();
}
