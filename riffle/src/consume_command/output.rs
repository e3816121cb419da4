//! How `riffle consume` prints a record.
//!
//! Text: the value, one record per line (with `--key-separator SEP`: key, SEP, value; a
//! null key or value prints `null`, as `kafka-console-consumer.sh` prints it). Bytes are
//! written as they are.
//!
//! JSON: one object per line.
//!
//! ```text
//! {"topic":"orders","partition":0,"offset":7,"timestamp":1714566600000,
//!  "timestamp_type":"CreateTime","key":"user-1","value":"clicked",
//!  "headers":[{"key":"source","value":"web"}]}
//! ```
//!
//! A key, value or header value is a string when its bytes are UTF-8, `{"base64": "..."}`
//! when they are not, and `null` when null.

use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};

use riffle_protocol::record::{Record, TimestampType};

/// Appends `record` as a text line to `line`.
pub fn text_line(record: &Record, key_separator: Option<&str>, line: &mut Vec<u8>) {
    if let Some(separator) = key_separator {
        line.extend_from_slice(record.key.as_deref().unwrap_or(b"null"));
        line.extend_from_slice(separator.as_bytes());
    }
    line.extend_from_slice(record.value.as_deref().unwrap_or(b"null"));
    line.push(b'\n');
}

/// A record as one JSON line; fields in this order.
#[derive(Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    timestamp_type: &'static str,
    key: Value,
    value: Value,
    headers: Vec<JsonHeader<'a>>,
}

/// A header of [`JsonRecord`].
#[derive(Serialize)]
struct JsonHeader<'a> {
    key: &'a str,
    value: Value,
}

/// Appends `record` of `topic`-`partition` as a JSON line to `line`.
pub fn json_line(
    topic: &str,
    partition: i32,
    timestamp_type: TimestampType,
    record: &Record,
    line: &mut Vec<u8>,
) {
    let object = JsonRecord {
        topic,
        partition,
        offset: record.offset,
        timestamp: record.timestamp_ms,
        timestamp_type: match timestamp_type {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        },
        key: bytes_value(record.key.as_ref()),
        value: bytes_value(record.value.as_ref()),
        headers: record
            .headers
            .iter()
            .map(|header| JsonHeader {
                key: &header.key,
                value: bytes_value(header.value.as_ref()),
            })
            .collect(),
    };
    // Strings, numbers and JSON values always serialize.
    let _ = serde_json::to_writer(&mut *line, &object);
    line.push(b'\n');
}

/// Bytes as JSON: a string when UTF-8, `{"base64": ...}` otherwise, `null` for none.
fn bytes_value(bytes: Option<&Bytes>) -> Value {
    match bytes {
        None => Value::Null,
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Value::String(text.to_owned()),
            Err(_) => json!({"base64": base64::engine::general_purpose::STANDARD.encode(bytes)}),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riffle_protocol::record::RecordHeader;

    fn record(key: Option<&'static [u8]>, value: Option<&'static [u8]>) -> Record {
        Record {
            offset: 7,
            timestamp_ms: 1_714_566_600_000,
            key: key.map(Bytes::from_static),
            value: value.map(Bytes::from_static),
            headers: vec![RecordHeader {
                key: "source".into(),
                value: Some(Bytes::from_static(b"web")),
            }],
            attributes: 0,
        }
    }

    #[test]
    fn text_prints_the_value_and_the_key_on_request() {
        // Proves the value alone by default, key and separator with one, and null for
        // missing fields.
        let mut line = Vec::new();
        text_line(&record(Some(b"k"), Some(b"v")), None, &mut line);
        text_line(&record(Some(b"k"), Some(b"v")), Some("\t"), &mut line);
        text_line(&record(None, None), Some(":"), &mut line);
        assert_eq!(line, b"v\nk\tv\nnull:null\n");
    }

    #[test]
    fn json_has_every_field_and_base64_for_binary() {
        // Proves the field names and values scripts rely on, with a binary value.
        let mut line = Vec::new();
        let binary = record(Some(b"user-1"), Some(&[0xff, 0x00]));
        json_line("orders", 2, TimestampType::CreateTime, &binary, &mut line);
        let parsed: Value = serde_json::from_slice(&line).expect("one JSON line");
        assert_eq!(
            parsed,
            json!({
                "topic": "orders", "partition": 2, "offset": 7,
                "timestamp": 1_714_566_600_000_i64, "timestamp_type": "CreateTime",
                "key": "user-1", "value": {"base64": "/wA="},
                "headers": [{"key": "source", "value": "web"}],
            })
        );
        assert_eq!(line.last(), Some(&b'\n'));
        let text = String::from_utf8(line).expect("utf-8");
        assert!(
            text.starts_with(r#"{"topic":"orders","partition":2,"offset":7,"#),
            "{text}"
        );
    }
}
