//! Kafka's consumer protocol (protocol type `consumer`): the subscription a member sends in
//! JoinGroup, the assignment the leader sends in SyncGroup, and the range assignor.
//!
//! One codec for every user in the broker: `riffle groups describe` reads members'
//! assignments; the embedded runtime shares its group with remote instances that use
//! librdkafka or the Java client, so it writes and reads their layouts exactly.
//!
//! # Format
//! ```text
//! Subscription (v0 written; v1-v3 read, their extra fields ignored):
//!     version    INT16
//!     topics     ARRAY (INT32 count) of STRING (INT16 length)
//!     user_data  NULLABLE_BYTES (INT32 length, -1 for null)
//! Assignment (v0 written, v0-v3 read by decode_consumer_assignment):
//!     version    INT16
//!     partitions ARRAY of (topic STRING, partitions ARRAY of INT32)
//!     user_data  NULLABLE_BYTES
//! ```

use std::collections::BTreeMap;

/// The protocol type of consumer groups.
pub const PROTOCOL_TYPE: &str = "consumer";
/// The assignor name, as librdkafka and the Java client spell it.
pub const RANGE_ASSIGNOR: &str = "range";

/// Encodes a v0 subscription to `topics`, without user data.
pub fn encode_subscription(topics: &[String]) -> Vec<u8> {
    let mut bytes = 0i16.to_be_bytes().to_vec();
    put_array_len(&mut bytes, topics.len());
    for topic in topics {
        put_string(&mut bytes, topic);
    }
    bytes.extend_from_slice(&(-1i32).to_be_bytes());
    bytes
}

/// The topics of a subscription, or `None` when the bytes are not one. Fields after the
/// topic list (user data, owned partitions, rack) are ignored.
pub fn decode_subscription_topics(bytes: &[u8]) -> Option<Vec<String>> {
    let mut reader = ProtocolReader { bytes, position: 0 };
    let _version = reader.i16("version").ok()?;
    // Each topic takes at least its 2-byte length.
    let count = reader.count("topics", 2).ok()?;
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        topics.push(reader.string("topic").ok()?);
    }
    Some(topics)
}

/// Encodes a v0 assignment of `partitions`, grouped by topic, without user data.
pub fn encode_assignment(partitions: &BTreeMap<String, Vec<i32>>) -> Vec<u8> {
    let mut bytes = 0i16.to_be_bytes().to_vec();
    put_array_len(&mut bytes, partitions.len());
    for (topic, indexes) in partitions {
        put_string(&mut bytes, topic);
        put_array_len(&mut bytes, indexes.len());
        for index in indexes {
            bytes.extend_from_slice(&index.to_be_bytes());
        }
    }
    bytes.extend_from_slice(&(-1i32).to_be_bytes());
    bytes
}

/// Kafka's RangeAssignor: per topic, the members subscribed to it sorted by member id; each
/// gets `partitions / members` consecutive partitions and the first `partitions % members`
/// one more. Topics with equal partition counts therefore give partition p of each to the
/// same member, which a task reading partition p of every input needs.
///
/// `members` maps member id to its subscribed topics; `partition_count` says how many
/// partitions a topic has (`None`: unknown, assigned to no one).
pub fn range_assign(
    members: &BTreeMap<String, Vec<String>>,
    partition_count: impl Fn(&str) -> Option<i32>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut subscribers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (member_id, topics) in members {
        for topic in topics {
            subscribers.entry(topic).or_default().push(member_id);
        }
    }
    let mut assignment: BTreeMap<String, BTreeMap<String, Vec<i32>>> = members
        .keys()
        .map(|member_id| (member_id.clone(), BTreeMap::new()))
        .collect();
    for (topic, mut member_ids) in subscribers {
        let Some(count) = partition_count(topic).filter(|count| *count > 0) else {
            continue;
        };
        member_ids.sort_unstable();
        member_ids.dedup();
        let member_count = i32::try_from(member_ids.len()).unwrap_or(i32::MAX);
        let (per_member, extra) = (count / member_count, count % member_count);
        let mut next = 0;
        for (position, member_id) in (0..).zip(member_ids) {
            let take = per_member + i32::from(position < extra);
            if take > 0 {
                let partitions: Vec<i32> = (next..next + take).collect();
                if let Some(member) = assignment.get_mut(member_id) {
                    member.insert(topic.to_string(), partitions);
                }
            }
            next += take;
        }
    }
    assignment
}

fn put_array_len(bytes: &mut Vec<u8>, len: usize) {
    let len = i32::try_from(len).expect("fewer than 2^31 topics or partitions");
    bytes.extend_from_slice(&len.to_be_bytes());
}

fn put_string(bytes: &mut Vec<u8>, value: &str) {
    // Topic names are at most 249 bytes (checked when topics are created).
    let len = i16::try_from(value.len()).expect("a topic name fits an INT16 length");
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(value.as_bytes());
}

/// A member's assignment in the consumer protocol (`ConsumerProtocolAssignment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerAssignment {
    /// The layout version the client wrote (0-3 share this layout).
    pub version: i16,
    /// Assigned partitions as (topic, partition), in the order the client wrote them.
    pub partitions: Vec<(String, i32)>,
    /// The assignor's user data; `None` when null or absent.
    pub user_data: Option<Vec<u8>>,
}

/// Why a member assignment could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentError {
    /// The bytes end inside a field.
    #[error("the assignment ends at byte {position} inside {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Where it started.
        position: usize,
    },
    /// A length or count is negative, or larger than the bytes that remain.
    #[error("invalid {field} length {length} at byte {position}")]
    InvalidLength {
        /// The field being read.
        field: &'static str,
        /// The length on the wire.
        length: i64,
        /// Where it was read.
        position: usize,
    },
    /// A topic name is not UTF-8.
    #[error("the topic name at byte {position} is not UTF-8")]
    InvalidUtf8 {
        /// Where the string starts.
        position: usize,
    },
}

/// Decodes a `ConsumerProtocolAssignment`.
///
/// # Format
/// ```text
/// version            INT16
/// assigned_partitions ARRAY (INT32 count) of
///     topic          STRING (INT16 length)
///     partitions     ARRAY (INT32 count) of INT32
/// user_data          NULLABLE_BYTES (INT32 length, -1 for null)
/// ```
/// Versions 0-3 share this layout and none is flexible. Empty bytes (a member that has not
/// synced yet) decode to no partitions. Bytes after `user_data`, or a missing `user_data`,
/// are tolerated: newer versions may append fields, and this is for display only.
///
/// # Errors
/// [`AssignmentError`] when a field is cut short, a length is out of range or a topic name is
/// not UTF-8.
pub fn decode_consumer_assignment(bytes: &[u8]) -> Result<ConsumerAssignment, AssignmentError> {
    if bytes.is_empty() {
        return Ok(ConsumerAssignment {
            version: 0,
            partitions: Vec::new(),
            user_data: None,
        });
    }
    let mut reader = ProtocolReader { bytes, position: 0 };
    let version = reader.i16("version")?;
    // A topic takes at least 2 (name length) + 4 (partition count) bytes.
    let topic_count = reader.count("assigned_partitions", 6)?;
    let mut partitions = Vec::new();
    for _ in 0..topic_count {
        let topic = reader.string("topic")?;
        let partition_count = reader.count("partitions", 4)?;
        partitions.reserve(partition_count);
        for _ in 0..partition_count {
            partitions.push((topic.clone(), reader.i32("partition")?));
        }
    }
    let user_data = if reader.remaining() == 0 {
        None
    } else {
        reader.nullable_bytes("user_data")?
    };
    Ok(ConsumerAssignment {
        version,
        partitions,
        user_data,
    })
}

/// A bounds-checked cursor over consumer-protocol bytes (subscriptions and assignments).
struct ProtocolReader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> ProtocolReader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    fn take(&mut self, length: usize, field: &'static str) -> Result<&'a [u8], AssignmentError> {
        let end = self
            .position
            .checked_add(length)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(AssignmentError::Truncated {
                field,
                position: self.position,
            })?;
        let taken = &self.bytes[self.position..end];
        self.position = end;
        Ok(taken)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, AssignmentError> {
        let taken = self.take(2, field)?;
        Ok(i16::from_be_bytes([taken[0], taken[1]]))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, AssignmentError> {
        let taken = self.take(4, field)?;
        Ok(i32::from_be_bytes([taken[0], taken[1], taken[2], taken[3]]))
    }

    /// An INT32 array count, checked against the bytes left at `min_element_bytes` each.
    fn count(
        &mut self,
        field: &'static str,
        min_element_bytes: usize,
    ) -> Result<usize, AssignmentError> {
        let position = self.position;
        let count = self.i32(field)?;
        usize::try_from(count)
            .ok()
            .filter(|&count| count.saturating_mul(min_element_bytes) <= self.remaining())
            .ok_or(AssignmentError::InvalidLength {
                field,
                length: i64::from(count),
                position,
            })
    }

    fn string(&mut self, field: &'static str) -> Result<String, AssignmentError> {
        let position = self.position;
        let length = self.i16(field)?;
        let length = usize::try_from(length).map_err(|_| AssignmentError::InvalidLength {
            field,
            length: i64::from(length),
            position,
        })?;
        let taken = self.take(length, field)?;
        String::from_utf8(taken.to_vec()).map_err(|_| AssignmentError::InvalidUtf8 { position })
    }

    fn nullable_bytes(&mut self, field: &'static str) -> Result<Option<Vec<u8>>, AssignmentError> {
        let position = self.position;
        let length = self.i32(field)?;
        if length == -1 {
            return Ok(None);
        }
        let length = usize::try_from(length).map_err(|_| AssignmentError::InvalidLength {
            field,
            length: i64::from(length),
            position,
        })?;
        Ok(Some(self.take(length, field)?.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_round_trips_and_reads_newer_versions() {
        // Proves our v0 subscription decodes, and that a v1 one (librdkafka appends owned
        // partitions) still yields its topics.
        let topics = vec!["payments".to_string(), "refunds".to_string()];
        assert_eq!(
            decode_subscription_topics(&encode_subscription(&topics)),
            Some(topics)
        );
        let mut v1 = encode_subscription(&["t".to_string()]);
        v1[1] = 1;
        v1.extend_from_slice(&0i32.to_be_bytes());
        assert_eq!(decode_subscription_topics(&v1), Some(vec!["t".to_string()]));
        assert_eq!(
            decode_subscription_topics(&[0, 0, 0x7f, 0xff, 0xff, 0xff]),
            None
        );
        assert_eq!(decode_subscription_topics(&[0]), None);
    }

    #[test]
    fn assignment_decodes_with_the_shared_decoder() {
        // Proves what the leader writes is what `riffle groups` and clients read.
        let assignment = BTreeMap::from([("payments".to_string(), vec![0, 2])]);
        let decoded = decode_consumer_assignment(&encode_assignment(&assignment)).unwrap();
        assert_eq!(
            decoded.partitions,
            vec![("payments".to_string(), 0), ("payments".to_string(), 2)]
        );
    }

    #[test]
    fn range_gives_the_same_partitions_of_copartitioned_topics_to_one_member() {
        // Proves the Kafka range layout: 5 partitions over 2 members is 0-2 and 3-4, for
        // each topic alike; a topic nobody else reads goes wholly to its subscriber.
        let both = vec!["a".to_string(), "b".to_string()];
        let members = BTreeMap::from([
            ("m1".to_string(), both.clone()),
            ("m2".to_string(), [both, vec!["c".to_string()]].concat()),
        ]);
        let assignment = range_assign(&members, |topic| Some(if topic == "c" { 2 } else { 5 }));
        assert_eq!(assignment["m1"]["a"], vec![0, 1, 2]);
        assert_eq!(assignment["m1"]["b"], vec![0, 1, 2]);
        assert_eq!(assignment["m2"]["a"], vec![3, 4]);
        assert_eq!(assignment["m2"]["c"], vec![0, 1]);
        assert!(!assignment["m1"].contains_key("c"));
    }
}
