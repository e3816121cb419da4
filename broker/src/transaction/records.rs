//! The records of `__transaction_state`: one per transactional id, in Kafka's layout, so
//! compaction keeps exactly the latest state of each id and a tombstone forgets one.
//!
//! ```text
//! key   (version 0): version INT16, transactional_id STRING
//! value (version 0): version INT16, producer_id INT64, producer_epoch INT16,
//!                    transaction_timeout_ms INT32, transaction_status INT8,
//!                    transaction_partitions ARRAY of (topic STRING, partition_ids ARRAY INT32),
//!                    transaction_last_update_timestamp_ms INT64,
//!                    transaction_start_timestamp_ms INT64
//! ```
//! Kafka's `TransactionLogKey` and `TransactionLogValue` version 0 (version 1, the flexible
//! form of Kafka's transactions v2, is not written here and not read). Strings and arrays
//! are classic: INT16 and INT32 lengths, -1 for a null array.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut};

use super::metadata::{TransactionMetadata, TransactionState};

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

/// Why a `__transaction_state` record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionRecordError {
    /// The record ends early, or a length in it is negative.
    #[error("truncated or malformed {0}")]
    Malformed(&'static str),
    /// A key or value version this broker does not read.
    #[error("unknown {what} version {version}")]
    UnknownVersion {
        /// "key" or "value".
        what: &'static str,
        /// The version found.
        version: i16,
    },
    /// A transaction status Kafka does not define.
    #[error("unknown transaction status {0}")]
    UnknownStatus(i8),
}

/// The key of a transactional id's record.
pub fn key(transactional_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + transactional_id.len());
    key.put_i16(KEY_VERSION);
    put_string(&mut key, transactional_id);
    key
}

/// The value recording `metadata`'s producer, epoch, state and partitions.
pub fn value(metadata: &TransactionMetadata) -> Vec<u8> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in &metadata.partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let mut value = Vec::with_capacity(64);
    value.put_i16(VALUE_VERSION);
    value.put_i64(metadata.producer_id);
    value.put_i16(metadata.producer_epoch);
    value.put_i32(metadata.timeout_ms);
    value.put_i8(metadata.state.id());
    value.put_i32(i32::try_from(by_topic.len()).expect("partitions are bounded"));
    for (topic, partitions) in by_topic {
        put_string(&mut value, topic);
        value.put_i32(i32::try_from(partitions.len()).expect("partitions are bounded"));
        for partition in partitions {
            value.put_i32(partition);
        }
    }
    value.put_i64(metadata.last_update_timestamp_ms);
    value.put_i64(metadata.start_timestamp_ms);
    value
}

/// Decodes a record read back from the log: the transactional id, and its metadata or
/// `None` for a tombstone.
///
/// # Errors
/// When the key or value is not a version-0 record.
pub fn decode(
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<(String, Option<TransactionMetadata>), TransactionRecordError> {
    let mut key = key;
    let version = get_i16(&mut key, "key")?;
    if version != KEY_VERSION {
        return Err(TransactionRecordError::UnknownVersion {
            what: "key",
            version,
        });
    }
    let transactional_id = get_string(&mut key, "transactional id")?;
    let metadata = value
        .map(|value| decode_value(&transactional_id, value))
        .transpose()?;
    Ok((transactional_id, metadata))
}

fn decode_value(
    transactional_id: &str,
    mut value: &[u8],
) -> Result<TransactionMetadata, TransactionRecordError> {
    let version = get_i16(&mut value, "value")?;
    if version != VALUE_VERSION {
        return Err(TransactionRecordError::UnknownVersion {
            what: "value",
            version,
        });
    }
    let producer_id = get_i64(&mut value, "producer id")?;
    let producer_epoch = get_i16(&mut value, "producer epoch")?;
    let timeout_ms = get_i32(&mut value, "timeout")?;
    let status = get_i8(&mut value, "status")?;
    let state =
        TransactionState::from_id(status).ok_or(TransactionRecordError::UnknownStatus(status))?;
    let partitions = get_partitions(&mut value)?;
    let last_update_timestamp_ms = get_i64(&mut value, "last update timestamp")?;
    let start_timestamp_ms = get_i64(&mut value, "start timestamp")?;
    Ok(TransactionMetadata {
        transactional_id: transactional_id.to_string(),
        producer_id,
        producer_epoch,
        last_producer_epoch: -1,
        timeout_ms,
        state,
        partitions,
        start_timestamp_ms,
        last_update_timestamp_ms,
        pending: None,
    })
}

fn get_partitions(value: &mut &[u8]) -> Result<BTreeSet<(String, i32)>, TransactionRecordError> {
    let mut partitions = BTreeSet::new();
    let topics_count = get_i32(value, "partitions")?;
    // -1 is a null array: no partitions.
    for _ in 0..topics_count.max(0) {
        let topic = get_string(value, "topic")?;
        let count = get_i32(value, "partition ids")?;
        if usize::try_from(count).is_ok_and(|count| count > value.len() / 4) {
            return Err(TransactionRecordError::Malformed("partition ids"));
        }
        for _ in 0..count.max(0) {
            partitions.insert((topic.clone(), get_i32(value, "partition id")?));
        }
    }
    Ok(partitions)
}

fn put_string(buf: &mut Vec<u8>, text: &str) {
    // Transactional ids and topic names are bounded well below 32 KiB by the handlers.
    let length = text.len().min(i16::MAX as usize);
    buf.put_i16(i16::try_from(length).expect("bounded above"));
    buf.put_slice(&text.as_bytes()[..length]);
}

fn get_i8(buf: &mut &[u8], what: &'static str) -> Result<i8, TransactionRecordError> {
    (buf.remaining() >= 1)
        .then(|| buf.get_i8())
        .ok_or(TransactionRecordError::Malformed(what))
}

fn get_i16(buf: &mut &[u8], what: &'static str) -> Result<i16, TransactionRecordError> {
    (buf.remaining() >= 2)
        .then(|| buf.get_i16())
        .ok_or(TransactionRecordError::Malformed(what))
}

fn get_i32(buf: &mut &[u8], what: &'static str) -> Result<i32, TransactionRecordError> {
    (buf.remaining() >= 4)
        .then(|| buf.get_i32())
        .ok_or(TransactionRecordError::Malformed(what))
}

fn get_i64(buf: &mut &[u8], what: &'static str) -> Result<i64, TransactionRecordError> {
    (buf.remaining() >= 8)
        .then(|| buf.get_i64())
        .ok_or(TransactionRecordError::Malformed(what))
}

fn get_string(buf: &mut &[u8], what: &'static str) -> Result<String, TransactionRecordError> {
    let length = usize::try_from(get_i16(buf, what)?)
        .map_err(|_| TransactionRecordError::Malformed(what))?;
    if buf.remaining() < length {
        return Err(TransactionRecordError::Malformed(what));
    }
    let text = String::from_utf8(buf[..length].to_vec())
        .map_err(|_| TransactionRecordError::Malformed(what))?;
    buf.advance(length);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_kafkas_version_0_layout_and_reads_back() {
        // Proves the bytes field by field against the layout in the module doc, and the
        // round trip.
        let metadata = TransactionMetadata {
            transactional_id: "t".into(),
            producer_id: 7,
            producer_epoch: 3,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state: TransactionState::Ongoing,
            partitions: BTreeSet::from([("a".to_string(), 1), ("a".to_string(), 0)]),
            start_timestamp_ms: 1_000,
            last_update_timestamp_ms: 2_000,
            pending: None,
        };
        let bytes = value(&metadata);
        let mut expected = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 3, 0, 0, 0xea, 0x60, 1];
        expected.extend([0, 0, 0, 1, 0, 1, b'a', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1]);
        expected.extend(2_000i64.to_be_bytes());
        expected.extend(1_000i64.to_be_bytes());
        assert_eq!(bytes, expected);
        assert_eq!(key("t"), vec![0, 0, 0, 1, b't']);
        let decoded = decode(&key("t"), Some(&bytes)).expect("decodes");
        assert_eq!(decoded, ("t".to_string(), Some(metadata)));
        assert_eq!(decode(&key("t"), None), Ok(("t".to_string(), None)));
    }

    #[test]
    fn malformed_records_are_errors() {
        assert!(decode(&[0, 1, 0, 0], None).is_err());
        assert!(decode(&[0, 0, 0, 5, b'a'], None).is_err());
        let mut bad_status = vec![0, 0];
        bad_status.extend([0; 8]);
        bad_status.extend([0, 0, 0, 0, 0, 1, 99]);
        assert_eq!(
            decode(&key("t"), Some(&bad_status)),
            Err(TransactionRecordError::UnknownStatus(99))
        );
    }
}
