//! Output records as the join tests compare them: `(key, value, timestamp)`, a deletion's
//! value as `None`.

use riffle_processor::{StringSerde, TestDriver};

/// One output record: key, value (`None` for a deletion), timestamp.
pub type Row = (String, Option<String>, i64);

pub fn row(key: &str, value: Option<&str>, timestamp_ms: i64) -> Row {
    (key.to_string(), value.map(str::to_string), timestamp_ms)
}

/// `(key, value, timestamp)` of every unread record of `topic`, deletions as `None`.
pub fn read_rows(driver: &TestDriver, topic: &str) -> Vec<Row> {
    driver
        .output_topic(topic, StringSerde, StringSerde)
        .read_records()
        .into_iter()
        .map(|record| (record.key, record.value, record.timestamp_ms))
        .collect()
}
