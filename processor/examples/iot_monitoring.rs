//! IoT monitoring: rolling temperature averages per sensor, and alerts that say where the
//! sensor is.
//!
//! Topics (all keyed by sensor id, UTF-8):
//!
//! - `sensor-readings` (input): `{"sensor":"s1","temperature_c":21.5}`, event time = the
//!   record timestamp.
//! - `sensors` (input, compacted): `{"location":"cold room"}`, the latest per sensor; a
//!   tombstone forgets the sensor. Must have as many partitions as `sensor-readings`: the
//!   join reads partition p of both.
//! - `sensor-averages` (output): one record per sensor and 10-second window, every 5 seconds
//!   (hopping windows), emitted once the window has closed:
//!   `{"sensor":"s1","window_start_ms":0,"window_end_ms":10000,"average_c":21.0,"readings":2}`.
//! - `sensor-alerts` (output): every reading outside 0..=40 °C, with the sensor's location
//!   if `sensors` knows it:
//!   `{"sensor":"s2","temperature_c":45.0,"breach":"too_hot","location":"cold room"}`.
//!
//! Run it: `cargo run -p riffle-processor --example iot_monitoring` starts a broker on
//! 127.0.0.1:9092 with this topology running inside it (the usual `riffle serve` flags
//! apply); `-- --remote HOST:PORT` runs the topology against another Kafka-compatible broker
//! instead. Then, for example:
//!
//! ```text
//! echo 's2:{"location":"cold room"}' | kcat -b 127.0.0.1:9092 -P -t sensors -K:
//! echo 's2:{"sensor":"s2","temperature_c":45.0}' | kcat -b 127.0.0.1:9092 -P -t sensor-readings -K:
//! kcat -b 127.0.0.1:9092 -C -t sensor-alerts -K' => '
//! ```
//!
//! Time only moves with data: a window's average appears once a later reading of the same
//! partition pushes stream time past the window's end plus the grace period.
//!
//! To make it yours: change `Reading` and `breach`, the temperature limits, or the window
//! constants.

mod common;

use std::time::Duration;

use riffle_processor::{
    Emit, JsonSerde, Materialized, StreamsBuilder, StringSerde, TimeWindows, Topology,
    TopologyError, Windowed,
};
use serde::{Deserialize, Serialize};

/// Readings outside this range raise an alert.
const MIN_TEMPERATURE_C: f64 = 0.0;
const MAX_TEMPERATURE_C: f64 = 40.0;

/// Each average covers this much time...
const AVERAGE_WINDOW: Duration = Duration::from_secs(10);
/// ...and a new one starts this often, so every reading counts in two averages.
const AVERAGE_ADVANCE: Duration = Duration::from_secs(5);
/// Readings arriving this late (after their window's end) still count.
const AVERAGE_GRACE: Duration = Duration::from_secs(2);

/// A value of `sensor-readings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    temperature_c: f64,
}

/// A value of the `sensors` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SensorInfo {
    location: String,
}

/// What the window store keeps per sensor and window: enough to compute the mean.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct TemperatureSum {
    total_c: f64,
    readings: u64,
}

/// A value of `sensor-averages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SensorAverage {
    sensor: String,
    window_start_ms: i64,
    window_end_ms: i64,
    average_c: f64,
    readings: u64,
}

/// Which side of the allowed range a reading fell off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Breach {
    TooCold,
    TooHot,
}

/// A value of `sensor-alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Alert {
    sensor: String,
    temperature_c: f64,
    breach: Breach,
    /// `None` when the `sensors` table has no row for the sensor (yet).
    location: Option<String>,
}

fn breach(reading: &Reading) -> Option<Breach> {
    if reading.temperature_c < MIN_TEMPERATURE_C {
        Some(Breach::TooCold)
    } else if reading.temperature_c > MAX_TEMPERATURE_C {
        Some(Breach::TooHot)
    } else {
        None
    }
}

fn alert(sensor: &str, breaching: &(Reading, Breach), info: Option<&SensorInfo>) -> Alert {
    let (reading, breach) = breaching;
    Alert {
        sensor: sensor.to_string(),
        temperature_c: reading.temperature_c,
        breach: *breach,
        location: info.map(|info| info.location.clone()),
    }
}

fn add_reading(_sensor: &String, reading: &Reading, mut sum: TemperatureSum) -> TemperatureSum {
    sum.total_c += reading.temperature_c;
    sum.readings += 1;
    sum
}

fn average(window: &Windowed<String>, sum: &TemperatureSum) -> (String, SensorAverage) {
    let average = SensorAverage {
        sensor: window.key.clone(),
        window_start_ms: window.start_ms,
        window_end_ms: window.end_ms,
        // An aggregate exists only once a reading went in, so `readings` is at least 1.
        average_c: sum.total_c / sum.readings as f64,
        readings: sum.readings,
    };
    (window.key.clone(), average)
}

/// The whole application: averages and alerts read the same input stream.
fn topology() -> Result<Topology, TopologyError> {
    let builder = StreamsBuilder::new("iot-monitoring");
    let readings = builder.stream("sensor-readings", StringSerde, JsonSerde::<Reading>::new());
    let sensors = builder.table(
        "sensors",
        StringSerde,
        JsonSerde::<SensorInfo>::new(),
        "sensors-store",
    );

    // The key is already the sensor id, so grouping needs no repartition topic.
    readings
        .group_by_key()
        .windowed_by(TimeWindows::hopping(AVERAGE_WINDOW, AVERAGE_ADVANCE).grace(AVERAGE_GRACE))
        .emit(Emit::OnWindowClose)
        .aggregate(
            TemperatureSum::default,
            add_reading,
            Materialized::new("sensor-temperature-sums")
                .with_value_serde(JsonSerde::<TemperatureSum>::new()),
        )
        .to_stream()
        .map(average)
        .to(
            "sensor-averages",
            StringSerde,
            JsonSerde::<SensorAverage>::new(),
        );

    // A left join, so a sensor missing from `sensors` still raises its alert.
    readings
        .flat_map_values(|reading: &Reading| {
            breach(reading).map(|breach| (reading.clone(), breach))
        })
        .left_join_table(&sensors, |sensor: &String, breaching, info| {
            alert(sensor, breaching, info)
        })
        .to("sensor-alerts", StringSerde, JsonSerde::<Alert>::new());

    builder.build()
}

fn main() -> std::process::ExitCode {
    common::run_built("iot_monitoring", topology())
}

#[cfg(test)]
mod tests {
    use riffle_processor::{TestDriver, TestInputTopic, TestOutputTopic};

    use super::*;

    struct Harness {
        driver: TestDriver,
        readings: TestInputTopic<String, Reading>,
        sensors: TestInputTopic<String, SensorInfo>,
        averages: TestOutputTopic<String, SensorAverage>,
        alerts: TestOutputTopic<String, Alert>,
    }

    fn harness() -> Harness {
        harness_with_partitions(1)
    }

    fn harness_with_partitions(partitions: i32) -> Harness {
        let topology = topology().expect("the topology builds");
        let driver = TestDriver::with_partitions(topology, partitions);
        Harness {
            readings: driver.input_topic("sensor-readings", StringSerde, JsonSerde::new()),
            sensors: driver.input_topic("sensors", StringSerde, JsonSerde::new()),
            averages: driver.output_topic("sensor-averages", StringSerde, JsonSerde::new()),
            alerts: driver.output_topic("sensor-alerts", StringSerde, JsonSerde::new()),
            driver,
        }
    }

    impl Harness {
        fn read(&mut self, sensor: &str, temperature_c: f64, timestamp_ms: i64) {
            let reading = Reading {
                sensor: sensor.to_string(),
                temperature_c,
            };
            self.readings
                .pipe_input_at(sensor.to_string(), reading, timestamp_ms);
        }

        fn place(&mut self, sensor: &str, location: &str, timestamp_ms: i64) {
            let info = SensorInfo {
                location: location.to_string(),
            };
            self.sensors
                .pipe_input_at(sensor.to_string(), info, timestamp_ms);
        }
    }

    fn average(
        sensor: &str,
        start_ms: i64,
        average_c: f64,
        readings: u64,
    ) -> (String, SensorAverage) {
        let average = SensorAverage {
            sensor: sensor.to_string(),
            window_start_ms: start_ms,
            window_end_ms: start_ms + 10_000,
            average_c,
            readings,
        };
        (sensor.to_string(), average)
    }

    fn alert(
        sensor: &str,
        temperature_c: f64,
        breach: Breach,
        location: Option<&str>,
    ) -> (String, Alert) {
        let alert = Alert {
            sensor: sensor.to_string(),
            temperature_c,
            breach,
            location: location.map(str::to_string),
        };
        (sensor.to_string(), alert)
    }

    /// Each hopping window is emitted once, when stream time reaches its end plus the 2 s
    /// grace, with the mean of the readings inside `[start, start + 10 s)`.
    #[test]
    fn averages_are_emitted_once_per_hopping_window_when_it_closes() {
        let mut h = harness();
        h.read("s1", 20.0, 1_000); // window [0, 10 s)
        h.read("s1", 22.0, 6_000); // windows [0, 10 s) and [5 s, 15 s)
        h.read("s1", 23.0, 11_000); // [5 s, 15 s) and [10 s, 20 s); [0, 10 s) still in grace
        assert!(h.averages.is_empty());
        h.read("s1", 24.0, 12_000); // stream time 12 s = 10 s + grace: [0, 10 s) closes
        assert_eq!(
            h.averages.read_key_values(),
            vec![average("s1", 0, 21.0, 2)]
        );
        h.read("s1", 30.0, 17_000); // closes [5 s, 15 s)
        assert_eq!(
            h.averages.read_key_values(),
            vec![average("s1", 5_000, 23.0, 3)]
        );
        h.read("s1", 10.0, 22_000); // closes [10 s, 20 s)
        assert_eq!(
            h.averages.read_key_values(),
            vec![average("s1", 10_000, 25.666666666666668, 3)]
        );
    }

    /// A reading whose every window has closed is dropped and counted; one inside the
    /// grace period still changes the average.
    #[test]
    fn late_readings_count_within_grace_and_are_dropped_after() {
        let mut h = harness();
        h.read("s1", 20.0, 1_000);
        h.read("s1", 20.0, 11_000); // stream time 11 s: [0, 10 s) open until 12 s
        h.read("s1", 26.0, 9_000); // late but within grace: joins [0, 10 s) and [5 s, 15 s)
        h.read("s1", 20.0, 14_000); // closes [0, 10 s)
        assert_eq!(
            h.averages.read_key_values(),
            vec![average("s1", 0, 23.0, 2)]
        );
        h.read("s1", 99.0, 4_000); // its only window, [0, 10 s), has closed
        assert_eq!(h.driver.dropped_records(), 1);
        h.read("s1", 20.0, 17_000); // closes [5 s, 15 s): the 99 °C reading is not in it
        assert_eq!(
            h.averages.read_key_values(),
            vec![average("s1", 5_000, 22.0, 3)]
        );
    }

    /// Sensors average separately even when their readings interleave.
    #[test]
    fn each_sensor_has_its_own_average() {
        let mut h = harness();
        h.read("s1", 10.0, 1_000);
        h.read("s2", 30.0, 2_000);
        h.read("s1", 20.0, 3_000);
        h.read("s2", 20.0, 12_000); // closes [0, 10 s) of both sensors
        let mut averages = h.averages.read_key_values();
        averages.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            averages,
            vec![average("s1", 0, 15.0, 2), average("s2", 0, 30.0, 1)]
        );
    }

    /// Out-of-range readings raise one alert each, with the location the table has for the
    /// sensor at that moment; in-range readings and unknown sensors' locations do not.
    #[test]
    fn alerts_name_the_current_location_or_none() {
        let mut h = harness();
        h.place("s2", "cold room", 0);
        h.read("s2", 21.0, 1_000); // in range: no alert
        h.read("s2", 45.0, 2_000);
        h.read("s3", -5.0, 3_000); // not in the table: the left join still alerts
        h.place("s2", "loading dock", 4_000);
        h.read("s2", -0.5, 5_000);
        assert_eq!(
            h.alerts.read_key_values(),
            vec![
                alert("s2", 45.0, Breach::TooHot, Some("cold room")),
                alert("s3", -5.0, Breach::TooCold, None),
                alert("s2", -0.5, Breach::TooCold, Some("loading dock")),
            ]
        );
    }

    /// With several partitions each sensor's readings and table row share a partition (both
    /// topics are keyed by sensor id), so every alert still finds its location.
    #[test]
    fn alerts_find_locations_on_every_partition() {
        let mut h = harness_with_partitions(3);
        let sensors = ["s1", "s2", "s3", "s4", "s5", "s6"];
        for sensor in sensors {
            h.place(sensor, &format!("room of {sensor}"), 0);
        }
        for sensor in sensors {
            h.read(sensor, 41.0, 1_000);
        }
        let mut alerts = h.alerts.read_key_values();
        alerts.sort_by(|a, b| a.0.cmp(&b.0));
        let expected: Vec<(String, Alert)> = sensors
            .iter()
            .map(|sensor| {
                alert(
                    sensor,
                    41.0,
                    Breach::TooHot,
                    Some(&format!("room of {sensor}")),
                )
            })
            .collect();
        assert_eq!(alerts, expected);
    }

    /// The range is inclusive: exactly 0 °C and exactly 40 °C are normal.
    #[test]
    fn range_limits_are_normal_readings() {
        let mut h = harness();
        h.read("s1", MIN_TEMPERATURE_C, 1_000);
        h.read("s1", MAX_TEMPERATURE_C, 2_000);
        assert!(h.alerts.is_empty());
    }

    /// A tombstone on `sensors` forgets the location.
    #[test]
    fn a_deleted_sensor_has_no_location() {
        let mut h = harness();
        h.place("s4", "roof", 0);
        h.sensors.pipe_tombstone_at("s4".to_string(), 1_000);
        h.read("s4", 55.0, 2_000);
        assert_eq!(
            h.alerts.read_key_values(),
            vec![alert("s4", 55.0, Breach::TooHot, None)]
        );
    }
}
