//! The `iot_monitoring` example as a user runs it: one process that is a broker with the
//! topology inside it, fed and read by rdkafka clients.

mod example_apps;

use example_apps::{Input, json, produce, read_until, start_example, start_ms, text};
use riffle_integration_tests::clients::create_topic;
use serde_json::json as value;

fn reading(sensor: &str, temperature_c: f64) -> Vec<u8> {
    value!({"sensor": sensor, "temperature_c": temperature_c})
        .to_string()
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn iot_monitoring_averages_and_located_alerts() {
    // Proves the example end to end: each 10-second window's averages appear once stream
    // time passes its end plus the 2 s grace, one per sensor (the window 5 s before the
    // start closes first; it holds only the first reading), and each out-of-range reading
    // raises one alert carrying the location from the compacted `sensors` topic (or none).
    let mut broker = start_example("iot_monitoring");
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "sensors", 1, &[("cleanup.policy", "compact")]).await;
    for topic in ["sensor-readings", "sensor-averages", "sensor-alerts"] {
        create_topic(&bootstrap, topic, 1, &[]).await;
    }
    let start_ms = start_ms();
    let cold_room = br#"{"location":"cold room"}"#;
    let sensors = [Input {
        key: "s2",
        value: Some(cold_room),
        timestamp_ms: start_ms,
    }];
    produce(&bootstrap, "sensors", &sensors).await;
    let values = [
        ("s1", 20.0, 1_000),
        ("s1", 22.0, 6_000),
        ("s2", 45.0, 7_000),
        ("s3", -5.0, 8_000),
        ("s1", 24.0, 12_000), // stream time reaches 10 s + 2 s grace: [0, 10 s) closes
    ]
    .map(|(sensor, temperature_c, offset_ms)| (sensor, reading(sensor, temperature_c), offset_ms));
    let readings: Vec<Input> = values
        .iter()
        .map(|(sensor, bytes, offset_ms)| Input {
            key: sensor,
            value: Some(bytes),
            timestamp_ms: start_ms + offset_ms,
        })
        .collect();
    produce(&bootstrap, "sensor-readings", &readings).await;

    let alerts = read_until(&broker, "sensor-alerts", |records| records.len() >= 2);
    let alerts: Vec<(String, serde_json::Value)> = alerts
        .iter()
        .map(|(key, value)| (text(key), json(value.as_deref().expect("an alert"))))
        .collect();
    let expected_alerts = vec![
        (
            "s2".to_string(),
            value!({"sensor": "s2", "temperature_c": 45.0, "breach": "too_hot", "location": "cold room"}),
        ),
        (
            "s3".to_string(),
            value!({"sensor": "s3", "temperature_c": -5.0, "breach": "too_cold", "location": null}),
        ),
    ];
    assert_eq!(alerts, expected_alerts);

    let averages = read_until(&broker, "sensor-averages", |records| records.len() >= 4);
    let averages: Vec<(String, serde_json::Value)> = averages
        .iter()
        .map(|(key, value)| (text(key), json(value.as_deref().expect("an average"))))
        .collect();
    let window = |sensor: &str, offset_ms: i64, average_c: f64, readings: u64| {
        let average = value!({
            "sensor": sensor,
            "window_start_ms": start_ms + offset_ms,
            "window_end_ms": start_ms + offset_ms + 10_000,
            "average_c": average_c,
            "readings": readings,
        });
        (sensor.to_string(), average)
    };
    let expected_averages = vec![
        window("s1", -5_000, 20.0, 1), // closed by the reading at 7 s
        window("s1", 0, 21.0, 2),      // these three by the reading at 12 s
        window("s2", 0, 45.0, 1),
        window("s3", 0, -5.0, 1),
    ];
    assert_eq!(averages, expected_averages);
    broker.stop();
}
