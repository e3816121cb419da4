//! The records of `__consumer_offsets`: committed offsets and group snapshots.
//!
//! Keys follow Kafka's layout, so compaction keeps exactly the latest record per group
//! and per group-topic-partition, and a tombstone (null value) deletes one:
//! ```text
//! offset key (version 1): version INT16, group STRING, topic STRING, partition INT32
//! group key  (version 2): version INT16, group STRING
//! offset value (version 3): version INT16, offset INT64, leader_epoch INT32,
//!                           metadata STRING, commit_timestamp INT64
//! offset value (version 1, for commits with their own retention, as Kafka writes them):
//!                           version INT16, offset INT64, metadata STRING,
//!                           commit_timestamp INT64, expire_timestamp INT64
//! group value: JSON (a GroupSnapshot); Kafka's binary group layout is not needed,
//!              since only this broker reads it.
//! ```

use bytes::{Buf, BufMut};
use serde::{Deserialize, Serialize};

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
/// Kafka's offset value layout with an expire timestamp (and no leader epoch).
const OFFSET_VALUE_WITH_EXPIRY_VERSION: i16 = 1;

/// An offset a group committed for a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will read.
    pub offset: i64,
    /// The leader epoch the client saw, or -1.
    pub leader_epoch: i32,
    /// The client's metadata string, returned as committed.
    pub metadata: String,
    /// When it was committed, in ms since the epoch.
    pub commit_timestamp_ms: i64,
    /// When it expires (for a group without members), in ms since the epoch, if the
    /// commit asked for its own retention (OffsetCommit v2-v4 `retention_time_ms`); `None`
    /// expires it the broker's `--offsets-retention-minutes` after `commit_timestamp_ms`.
    pub expire_timestamp_ms: Option<i64>,
}

/// A group's membership, persisted when it becomes stable or empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSnapshot {
    /// The generation.
    pub generation_id: i32,
    /// The protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: Option<String>,
    /// Every member.
    pub members: Vec<SavedMember>,
}

/// One member of a [`GroupSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedMember {
    /// Member id.
    pub member_id: String,
    /// Static identity.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: u64,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: u64,
    /// Its metadata for the chosen protocol.
    pub metadata: Vec<u8>,
    /// Its assignment.
    pub assignment: Vec<u8>,
}

/// One decoded `__consumer_offsets` record; `None` values are tombstones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsRecord {
    /// A committed offset, or its deletion.
    Offset {
        /// The group.
        group_id: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset, or None when deleted.
        value: Option<CommittedOffset>,
    },
    /// A group's membership, or its deletion.
    Group {
        /// The group.
        group_id: String,
        /// The snapshot, or None when the group was deleted.
        value: Option<GroupSnapshot>,
    },
}

/// The key of a committed offset.
pub fn offset_key(group_id: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut key = Vec::with_capacity(12 + group_id.len() + topic.len());
    key.put_i16(OFFSET_KEY_VERSION);
    put_string(&mut key, group_id);
    put_string(&mut key, topic);
    key.put_i32(partition);
    key
}

/// The key of a group snapshot.
pub fn group_key(group_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + group_id.len());
    key.put_i16(GROUP_KEY_VERSION);
    put_string(&mut key, group_id);
    key
}

/// The value of a committed offset: version 3, or version 1 when it has its own expiry
/// (which, as in Kafka, drops the leader epoch).
pub fn offset_value(offset: &CommittedOffset) -> Vec<u8> {
    let mut value = Vec::with_capacity(32 + offset.metadata.len());
    match offset.expire_timestamp_ms {
        None => {
            value.put_i16(OFFSET_VALUE_VERSION);
            value.put_i64(offset.offset);
            value.put_i32(offset.leader_epoch);
            put_string(&mut value, &offset.metadata);
            value.put_i64(offset.commit_timestamp_ms);
        }
        Some(expire_timestamp_ms) => {
            value.put_i16(OFFSET_VALUE_WITH_EXPIRY_VERSION);
            value.put_i64(offset.offset);
            put_string(&mut value, &offset.metadata);
            value.put_i64(offset.commit_timestamp_ms);
            value.put_i64(expire_timestamp_ms);
        }
    }
    value
}

/// The value of a group snapshot.
pub fn group_value(snapshot: &GroupSnapshot) -> Vec<u8> {
    // Serialising plain strings, numbers and byte vectors cannot fail.
    serde_json::to_vec(snapshot).unwrap_or_default()
}

/// Why a record of `__consumer_offsets` could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// A key or value version this broker does not write.
    #[error("unknown {what} version {version}")]
    UnknownVersion {
        /// "key" or "offset value".
        what: &'static str,
        /// The version read.
        version: i16,
    },
    /// The bytes end before a field does.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A string field with a negative length or bytes that are not UTF-8.
    #[error("invalid string")]
    InvalidString,
    /// A group snapshot's JSON does not parse.
    #[error("group value: {0}")]
    GroupValue(#[from] serde_json::Error),
}

/// Decodes one record read back from the log.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<OffsetsRecord, DecodeError> {
    let mut key = key;
    match get_i16(&mut key)? {
        OFFSET_KEY_VERSION => {
            let group_id = get_string(&mut key)?;
            let topic = get_string(&mut key)?;
            let partition = get_i32(&mut key)?;
            let value = value.map(decode_offset_value).transpose()?;
            Ok(OffsetsRecord::Offset {
                group_id,
                topic,
                partition,
                value,
            })
        }
        GROUP_KEY_VERSION => {
            let group_id = get_string(&mut key)?;
            let value = value.map(serde_json::from_slice).transpose()?;
            Ok(OffsetsRecord::Group { group_id, value })
        }
        version => Err(DecodeError::UnknownVersion {
            what: "key",
            version,
        }),
    }
}

fn decode_offset_value(mut value: &[u8]) -> Result<CommittedOffset, DecodeError> {
    match get_i16(&mut value)? {
        OFFSET_VALUE_VERSION => Ok(CommittedOffset {
            offset: get_i64(&mut value)?,
            leader_epoch: get_i32(&mut value)?,
            metadata: get_string(&mut value)?,
            commit_timestamp_ms: get_i64(&mut value)?,
            expire_timestamp_ms: None,
        }),
        OFFSET_VALUE_WITH_EXPIRY_VERSION => Ok(CommittedOffset {
            offset: get_i64(&mut value)?,
            leader_epoch: -1,
            metadata: get_string(&mut value)?,
            commit_timestamp_ms: get_i64(&mut value)?,
            expire_timestamp_ms: Some(get_i64(&mut value)?),
        }),
        version => Err(DecodeError::UnknownVersion {
            what: "offset value",
            version,
        }),
    }
}

fn put_string(buf: &mut Vec<u8>, text: &str) {
    // Group ids, topics and metadata are bounded well below 32 KiB by the handlers.
    buf.put_i16(i16::try_from(text.len()).unwrap_or(i16::MAX));
    buf.put_slice(&text.as_bytes()[..text.len().min(i16::MAX as usize)]);
}

fn get_i16(buf: &mut &[u8]) -> Result<i16, DecodeError> {
    if buf.remaining() < 2 {
        return Err(DecodeError::Truncated("i16"));
    }
    Ok(buf.get_i16())
}

fn get_i32(buf: &mut &[u8]) -> Result<i32, DecodeError> {
    if buf.remaining() < 4 {
        return Err(DecodeError::Truncated("i32"));
    }
    Ok(buf.get_i32())
}

fn get_i64(buf: &mut &[u8]) -> Result<i64, DecodeError> {
    if buf.remaining() < 8 {
        return Err(DecodeError::Truncated("i64"));
    }
    Ok(buf.get_i64())
}

fn get_string(buf: &mut &[u8]) -> Result<String, DecodeError> {
    let length = usize::try_from(get_i16(buf)?).map_err(|_| DecodeError::InvalidString)?;
    if buf.remaining() < length {
        return Err(DecodeError::Truncated("string"));
    }
    let text = String::from_utf8(buf[..length].to_vec()).map_err(|_| DecodeError::InvalidString)?;
    buf.advance(length);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_with_its_own_expiry_round_trips_as_version_1() {
        // Proves a commit with a retention of its own is written in Kafka's version 1
        // layout (no leader epoch) and reads back with its expire timestamp.
        let committed = CommittedOffset {
            offset: 42,
            leader_epoch: -1,
            metadata: "meta".into(),
            commit_timestamp_ms: 7,
            expire_timestamp_ms: Some(60_007),
        };
        let value = offset_value(&committed);
        assert_eq!(value[..2], OFFSET_VALUE_WITH_EXPIRY_VERSION.to_be_bytes());
        let record = decode(&offset_key("g", "t", 3), Some(&value)).expect("decodes");
        assert_eq!(
            record,
            OffsetsRecord::Offset {
                group_id: "g".into(),
                topic: "t".into(),
                partition: 3,
                value: Some(committed)
            }
        );
    }

    #[test]
    fn offsets_and_groups_round_trip() {
        let committed = CommittedOffset {
            offset: 42,
            leader_epoch: 5,
            metadata: "meta".into(),
            commit_timestamp_ms: 7,
            expire_timestamp_ms: None,
        };
        let record =
            decode(&offset_key("g", "t", 3), Some(&offset_value(&committed))).expect("decodes");
        assert_eq!(
            record,
            OffsetsRecord::Offset {
                group_id: "g".into(),
                topic: "t".into(),
                partition: 3,
                value: Some(committed)
            }
        );
        let tombstone = decode(&group_key("g"), None).expect("decodes");
        assert_eq!(
            tombstone,
            OffsetsRecord::Group {
                group_id: "g".into(),
                value: None
            }
        );
        assert!(decode(&[0, 9], None).is_err());
        assert!(decode(&[0, 1, 0, 5, b'a'], None).is_err());
    }
}
