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

use bytes::{Bytes, BytesMut};
use riffle_protocol::{Ctx, DecodeError, Wire};

use super::metadata::{TransactionMetadata, TransactionState};

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;
/// Classic (non-flexible) encoding: INT16 string lengths, INT32 array lengths.
const CLASSIC: Ctx = Ctx {
    version: 0,
    flexible: false,
};

/// Why a `__transaction_state` record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionRecordError {
    /// The record ends early, or a length in it is negative or too long.
    #[error("malformed record: {0}")]
    Malformed(#[from] DecodeError),
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

/// One topic's partitions in a value: Kafka's `PartitionsSchema`.
struct TopicPartitions {
    topic: String,
    partition_ids: Vec<i32>,
}

impl Wire for TopicPartitions {
    fn encode(&self, buf: &mut BytesMut, ctx: Ctx) {
        self.topic.encode(buf, ctx);
        self.partition_ids.encode(buf, ctx);
    }

    fn decode(buf: &mut Bytes, ctx: Ctx) -> Result<Self, DecodeError> {
        Ok(TopicPartitions {
            topic: String::decode(buf, ctx)?,
            partition_ids: Vec::decode(buf, ctx)?,
        })
    }
}

/// The key of a transactional id's record.
pub fn key(transactional_id: &str) -> Vec<u8> {
    let mut key = BytesMut::with_capacity(4 + transactional_id.len());
    KEY_VERSION.encode(&mut key, CLASSIC);
    transactional_id.to_string().encode(&mut key, CLASSIC);
    key.to_vec()
}

/// The value recording `metadata`'s producer, epoch, state and partitions.
pub fn value(metadata: &TransactionMetadata) -> Vec<u8> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in &metadata.partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let partitions: Vec<TopicPartitions> = by_topic
        .into_iter()
        .map(|(topic, partition_ids)| TopicPartitions {
            topic: topic.to_string(),
            partition_ids,
        })
        .collect();
    let mut value = BytesMut::with_capacity(64);
    VALUE_VERSION.encode(&mut value, CLASSIC);
    metadata.producer_id.encode(&mut value, CLASSIC);
    metadata.producer_epoch.encode(&mut value, CLASSIC);
    metadata.timeout_ms.encode(&mut value, CLASSIC);
    metadata.state.id().encode(&mut value, CLASSIC);
    partitions.encode(&mut value, CLASSIC);
    metadata
        .last_update_timestamp_ms
        .encode(&mut value, CLASSIC);
    metadata.start_timestamp_ms.encode(&mut value, CLASSIC);
    value.to_vec()
}

/// Decodes a record read back from the log: the transactional id, and its metadata or
/// `None` for a tombstone.
///
/// # Errors
/// When the key or value is not a version-0 record.
pub fn decode(
    key: Bytes,
    value: Option<Bytes>,
) -> Result<(String, Option<TransactionMetadata>), TransactionRecordError> {
    let mut key = key;
    let version = i16::decode(&mut key, CLASSIC)?;
    if version != KEY_VERSION {
        return Err(TransactionRecordError::UnknownVersion {
            what: "key",
            version,
        });
    }
    let transactional_id = String::decode(&mut key, CLASSIC)?;
    let metadata = value
        .map(|value| decode_value(&transactional_id, value))
        .transpose()?;
    Ok((transactional_id, metadata))
}

fn decode_value(
    transactional_id: &str,
    mut value: Bytes,
) -> Result<TransactionMetadata, TransactionRecordError> {
    let version = i16::decode(&mut value, CLASSIC)?;
    if version != VALUE_VERSION {
        return Err(TransactionRecordError::UnknownVersion {
            what: "value",
            version,
        });
    }
    let producer_id = i64::decode(&mut value, CLASSIC)?;
    let producer_epoch = i16::decode(&mut value, CLASSIC)?;
    let timeout_ms = i32::decode(&mut value, CLASSIC)?;
    let status = i8::decode(&mut value, CLASSIC)?;
    let state =
        TransactionState::from_id(status).ok_or(TransactionRecordError::UnknownStatus(status))?;
    // A null array (-1) is no partitions.
    let topics = Option::<Vec<TopicPartitions>>::decode(&mut value, CLASSIC)?;
    let partitions: BTreeSet<(String, i32)> = topics
        .unwrap_or_default()
        .into_iter()
        .flat_map(|topic| {
            let name = topic.topic;
            topic
                .partition_ids
                .into_iter()
                .map(move |partition| (name.clone(), partition))
        })
        .collect();
    let last_update_timestamp_ms = i64::decode(&mut value, CLASSIC)?;
    let start_timestamp_ms = i64::decode(&mut value, CLASSIC)?;
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
        let decoded = decode(key("t").into(), Some(bytes.into())).expect("decodes");
        assert_eq!(decoded, ("t".to_string(), Some(metadata)));
        assert_eq!(decode(key("t").into(), None), Ok(("t".to_string(), None)));
    }

    #[test]
    fn malformed_records_are_errors() {
        assert!(decode(Bytes::from_static(&[0, 1, 0, 0]), None).is_err());
        assert!(decode(Bytes::from_static(&[0, 0, 0, 5, b'a']), None).is_err());
        let mut bad_status = vec![0, 0];
        bad_status.extend([0; 8]);
        bad_status.extend([0, 0, 0, 0, 0, 1, 99]);
        assert_eq!(
            decode(key("t").into(), Some(bad_status.into())),
            Err(TransactionRecordError::UnknownStatus(99))
        );
    }
}
