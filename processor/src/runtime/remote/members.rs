//! The group's members and assignments, from DescribeGroups: what standby placement reads.

use std::ffi::CStr;

use rdkafka::consumer::Consumer;

use super::consumer::GroupConsumer;
use super::restore::REQUEST_TIMEOUT;
use crate::record::TopicPartition;
use crate::runtime::backend::{BackendError, GroupMembers};

/// Describes `group_id` (DescribeGroups) and decodes each member's assignment. Blocks: run
/// it on a blocking thread. `None` before this member has joined (no member id yet).
pub(super) fn group_members_blocking(
    consumer: &GroupConsumer,
    group_id: &str,
) -> Result<Option<GroupMembers>, BackendError> {
    let operation = || format!("describe group {group_id}");
    let Some(own_member_id) = member_id(consumer) else {
        return Ok(None);
    };
    let list = consumer
        .fetch_group_list(Some(group_id), REQUEST_TIMEOUT)
        .map_err(|error| BackendError::new(operation(), error))?;
    let Some(group) = list.groups().iter().find(|g| g.name() == group_id) else {
        return Ok(None);
    };
    let mut members = Vec::with_capacity(group.members().len());
    for member in group.members() {
        let bytes = member.assignment().unwrap_or_default();
        let partitions = decode_assignment(bytes).map_err(|reason| {
            BackendError::new(operation(), format!("member {}: {reason}", member.id()))
        })?;
        members.push((member.id().to_string(), partitions));
    }
    Ok(Some(GroupMembers {
        own_member_id,
        members,
        stable: group.state() == "Stable",
    }))
}

/// This consumer's member id in its group, `None` before it joined.
fn member_id(consumer: &GroupConsumer) -> Option<String> {
    // SAFETY: the client pointer is valid while `consumer` lives; librdkafka returns a
    // NUL-terminated copy (or null) that the caller frees with rd_kafka_mem_free, done
    // below after copying it. rdkafka 0.39 has no safe wrapper.
    unsafe {
        let native = consumer.client().native_ptr();
        let raw = rdkafka::bindings::rd_kafka_memberid(native);
        if raw.is_null() {
            return None;
        }
        let id = CStr::from_ptr(raw).to_string_lossy().into_owned();
        rdkafka::bindings::rd_kafka_mem_free(native, raw.cast());
        (!id.is_empty()).then_some(id)
    }
}

/// The partitions of a consumer protocol `MemberAssignment` (version, then per topic its
/// name and partitions, then user data, which is ignored). Empty bytes: no assignment.
pub(super) fn decode_assignment(bytes: &[u8]) -> Result<Vec<TopicPartition>, String> {
    let mut partitions = Vec::new();
    if bytes.is_empty() {
        return Ok(partitions);
    }
    let mut reader = Reader { bytes };
    let _version = reader.i16()?;
    let topics = reader.count()?;
    for _ in 0..topics {
        let length = usize::try_from(reader.i16()?).map_err(|_| "a null topic name")?;
        let name = reader.take(length)?;
        let topic = std::str::from_utf8(name).map_err(|_| "a topic name that is not UTF-8")?;
        let count = reader.count()?;
        for _ in 0..count {
            partitions.push(TopicPartition::new(topic, reader.i32()?));
        }
    }
    Ok(partitions)
}

/// Big-endian reads off a byte slice, each failing on a short input.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < length {
            return Err(format!("assignment truncated ({length} bytes wanted)"));
        }
        let (taken, rest) = self.bytes.split_at(length);
        self.bytes = rest;
        Ok(taken)
    }

    fn i16(&mut self) -> Result<i16, String> {
        let bytes = self.take(2)?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn i32(&mut self) -> Result<i32, String> {
        let bytes = self.take(4)?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// An array length; a null array (-1) counts as empty.
    fn count(&mut self) -> Result<usize, String> {
        Ok(usize::try_from(self.i32()?).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the decoding of a consumer protocol assignment, and that a truncated one is
    /// an error rather than a panic.
    #[test]
    fn assignments_decode_and_truncation_is_an_error() {
        let mut bytes = vec![0, 1, 0, 0, 0, 1, 0, 2, b'i', b'n', 0, 0, 0, 2];
        bytes.extend([0, 0, 0, 0, 0, 0, 0, 3]);
        bytes.extend([0, 0, 0, 0]);
        let expected = vec![TopicPartition::new("in", 0), TopicPartition::new("in", 3)];
        assert_eq!(decode_assignment(&bytes), Ok(expected));
        assert_eq!(decode_assignment(&[]), Ok(Vec::new()));
        assert!(decode_assignment(&bytes[..9]).is_err());
    }
}
