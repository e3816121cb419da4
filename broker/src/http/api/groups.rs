//! `/api/groups` and `/api/groups/{group}`: consumer groups, their members and what each
//! is assigned, committed offsets and lag, as `riffle groups describe` shows them.

use serde::Serialize;

use super::ApiError;
use crate::cluster::Cluster;
use crate::group::GroupDescription;
use crate::group::consumer_protocol::decode_consumer_assignment;
use crate::group::coordinator::GroupOffsets;

/// One group in the list.
#[derive(Debug, Serialize)]
pub struct GroupSummary {
    /// The group id.
    pub group_id: String,
    /// Kafka's state name (`Stable`, `Empty`, ...).
    pub state: &'static str,
    /// `consumer` for consumer groups; empty for groups that only commit offsets.
    pub protocol_type: String,
    /// Members now.
    pub member_count: usize,
    /// Partitions with a committed offset.
    pub partition_count: usize,
    /// Lag summed over those partitions.
    pub total_lag: i64,
}

/// The answer of `/api/groups`.
#[derive(Debug, Serialize)]
pub struct GroupList {
    /// Groups by id.
    pub groups: Vec<GroupSummary>,
}

/// The answer of `/api/groups/{group}`.
#[derive(Debug, Serialize)]
pub struct GroupDetail {
    /// The group id.
    pub group_id: String,
    /// Kafka's state name.
    pub state: &'static str,
    /// The protocol type.
    pub protocol_type: String,
    /// The chosen protocol (the assignor, for consumers).
    pub protocol: String,
    /// Members with their assignments.
    pub members: Vec<MemberJson>,
    /// Committed offsets with lag, by topic and partition.
    pub offsets: Vec<OffsetJson>,
}

/// One member.
#[derive(Debug, Serialize)]
pub struct MemberJson {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its static identity, if any.
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's host as the broker saw it.
    pub client_host: String,
    /// Its assigned partitions, when the consumer protocol's assignment decodes.
    pub assignment: Vec<TopicPartitionJson>,
}

/// A topic partition.
#[derive(Debug, Serialize)]
pub struct TopicPartitionJson {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

/// One committed offset.
#[derive(Debug, Serialize)]
pub struct OffsetJson {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset the group will read.
    pub committed_offset: i64,
    /// The partition's high watermark; `null` when the topic is gone.
    pub high_watermark: Option<i64>,
    /// High watermark minus the committed offset (never below 0); `null` without one.
    pub lag: Option<i64>,
    /// When it was committed, ms since the epoch.
    pub commit_timestamp_ms: i64,
}

/// Every group with members or committed offsets, by id.
pub fn list(cluster: &Cluster) -> GroupList {
    let committed = cluster.groups().all_committed_offsets();
    let groups = cluster
        .groups()
        .list_groups()
        .into_iter()
        .map(|group| {
            let offsets = committed
                .iter()
                .find(|(id, _)| *id == group.group_id)
                .map(|(_, offsets)| offset_rows(cluster, offsets))
                .unwrap_or_default();
            GroupSummary {
                state: group.state.name(),
                member_count: group.members.len(),
                partition_count: offsets.len(),
                total_lag: offsets.iter().filter_map(|row| row.lag).sum(),
                protocol_type: group.protocol_type,
                group_id: group.group_id,
            }
        })
        .collect();
    GroupList { groups }
}

/// One group.
///
/// # Errors
/// `NotFound` for a group with neither members nor committed offsets.
pub fn describe(cluster: &Cluster, group_id: &str) -> Result<GroupDetail, ApiError> {
    let group = cluster
        .groups()
        .describe_group(group_id)
        .ok_or_else(|| ApiError::NotFound(format!("no consumer group {group_id:?}")))?;
    let offsets = offset_rows(cluster, &cluster.groups().fetch_offsets(group_id));
    Ok(GroupDetail {
        state: group.state.name(),
        members: members(&group),
        protocol: group.protocol_name,
        protocol_type: group.protocol_type,
        group_id: group.group_id,
        offsets,
    })
}

/// The members, with the partitions their consumer-protocol assignment names.
fn members(group: &GroupDescription) -> Vec<MemberJson> {
    group
        .members
        .iter()
        .map(|member| {
            let assignment = match group.protocol_type.as_str() {
                "consumer" => decode_consumer_assignment(&member.assignment)
                    .map(|decoded| decoded.partitions)
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            MemberJson {
                member_id: member.member_id.clone(),
                group_instance_id: member.group_instance_id.clone(),
                client_id: member.client_id.clone(),
                client_host: member.client_host.clone(),
                assignment: assignment
                    .into_iter()
                    .map(|(topic, partition)| TopicPartitionJson { topic, partition })
                    .collect(),
            }
        })
        .collect()
}

/// Committed offsets with their lag ([`Cluster::committed_lag`]).
fn offset_rows(cluster: &Cluster, offsets: &GroupOffsets) -> Vec<OffsetJson> {
    offsets
        .iter()
        .map(|((topic, partition), committed)| {
            let lag = cluster.committed_lag(topic, *partition, committed.offset);
            OffsetJson {
                topic: topic.clone(),
                partition: *partition,
                committed_offset: committed.offset,
                high_watermark: lag.map(|(high_watermark, _)| high_watermark),
                lag: lag.map(|(_, lag)| lag),
                commit_timestamp_ms: committed.commit_timestamp_ms,
            }
        })
        .collect()
}
