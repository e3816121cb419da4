//! OffsetFetch (key 9): a group's committed offsets.
//!
//! Versions 0-8; v8 asks for several groups at once. A null topic list means every
//! committed partition. A partition with no commit answers offset -1.
//!
//! With `--authorizer acl`, as in Kafka: Describe on the group (else
//! GROUP_AUTHORIZATION_FAILED for it) and on each topic: a topic asked for that the
//! principal may not describe answers TOPIC_AUTHORIZATION_FAILED per partition, and one it
//! did not ask for (a null topic list) is left out.
//!
//! Offsets committed in a transaction that has not ended are not answered: the last
//! committed one is. With `require_stable` (v7+, what read_committed consumers send), such
//! a partition answers UNSTABLE_OFFSET_COMMIT instead, which the client retries until the
//! transaction ends.

use riffle_protocol::ErrorCode;
use riffle_protocol::api::offset_fetch::{
    OffsetFetchRequest, OffsetFetchResponse, OffsetFetchResponseGroup,
    OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};

use crate::cluster::Cluster;
use crate::group::coordinator::GroupOffsets;
use crate::handler::{Access, RequestContext};
use crate::security::acl::{AclOperation, ResourceType};

/// The first version with several groups per request.
const FIRST_BATCHED_VERSION: i16 = 8;

/// The first version with a response-level error code.
const FIRST_VERSION_WITH_ERROR_CODE: i16 = 2;

/// One partition's answer: (partition, offset, leader epoch, metadata, error).
type Answer = (i32, i64, i32, String, ErrorCode);

/// A partition of a topic the principal may not describe.
fn refused_partition(partition: i32) -> Answer {
    (
        partition,
        -1,
        -1,
        String::new(),
        ErrorCode::TopicAuthorizationFailed,
    )
}

/// Answers OffsetFetch.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    version: i16,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let access = context.access(cluster);
    if version < FIRST_BATCHED_VERSION {
        let wanted: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|topics| {
            topics
                .into_iter()
                .map(|topic| (topic.name, topic.partition_indexes))
                .collect()
        });
        if !access.allows(
            AclOperation::Describe,
            ResourceType::Group,
            &request.group_id,
        ) {
            return refused_group(version, wanted);
        }
        let group_id = &request.group_id;
        let topics = lookup(cluster, &access, group_id, wanted, request.require_stable)
            .into_iter()
            .map(|(name, partitions)| OffsetFetchResponseTopic {
                name,
                partitions: partitions
                    .into_iter()
                    .map(
                        |(
                            partition_index,
                            committed_offset,
                            committed_leader_epoch,
                            metadata,
                            error,
                        )| {
                            OffsetFetchResponsePartition {
                                partition_index,
                                committed_offset,
                                committed_leader_epoch,
                                metadata: Some(metadata),
                                error_code: error.code(),
                            }
                        },
                    )
                    .collect(),
            })
            .collect();
        return OffsetFetchResponse {
            topics,
            ..Default::default()
        };
    }
    let groups = request.groups.into_iter().map(|group| {
        if !access.allows(AclOperation::Describe, ResourceType::Group, &group.group_id) {
            return OffsetFetchResponseGroup {
                group_id: group.group_id,
                topics: Vec::new(),
                error_code: ErrorCode::GroupAuthorizationFailed.code(),
            };
        }
        let wanted = group.topics.map(|topics| {
            topics
                .into_iter()
                .map(|topic| (topic.name, topic.partition_indexes))
                .collect()
        });
        let group_id = &group.group_id;
        let topics = lookup(cluster, &access, group_id, wanted, request.require_stable)
            .into_iter()
            .map(|(name, partitions)| OffsetFetchResponseTopics {
                name,
                partitions: partitions
                    .into_iter()
                    .map(
                        |(
                            partition_index,
                            committed_offset,
                            committed_leader_epoch,
                            metadata,
                            error,
                        )| {
                            OffsetFetchResponsePartitions {
                                partition_index,
                                committed_offset,
                                committed_leader_epoch,
                                metadata: Some(metadata),
                                error_code: error.code(),
                            }
                        },
                    )
                    .collect(),
            })
            .collect();
        OffsetFetchResponseGroup {
            group_id: group.group_id,
            topics,
            error_code: ErrorCode::None.code(),
        }
    });
    OffsetFetchResponse {
        groups: groups.collect(),
        ..Default::default()
    }
}

/// The answer to a group the principal may not describe: from v2 the response's error
/// code; before, each wanted partition's, as those versions have no other place for it.
fn refused_group(version: i16, wanted: Option<Vec<(String, Vec<i32>)>>) -> OffsetFetchResponse {
    let code = ErrorCode::GroupAuthorizationFailed;
    if version >= FIRST_VERSION_WITH_ERROR_CODE {
        return OffsetFetchResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    let topics = wanted
        .unwrap_or_default()
        .into_iter()
        .map(|(name, partitions)| OffsetFetchResponseTopic {
            name,
            partitions: partitions
                .into_iter()
                .map(|partition_index| OffsetFetchResponsePartition {
                    partition_index,
                    committed_offset: -1,
                    committed_leader_epoch: -1,
                    metadata: Some(String::new()),
                    error_code: code.code(),
                })
                .collect(),
        })
        .collect();
    OffsetFetchResponse {
        topics,
        ..Default::default()
    }
}

/// The answers for the wanted partitions (or every committed one), grouped by topic. A
/// wanted topic the principal may not describe answers TOPIC_AUTHORIZATION_FAILED; among
/// every committed one, those are left out, as Kafka does.
fn lookup(
    cluster: &Cluster,
    access: &Access<'_>,
    group_id: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Vec<(String, Vec<Answer>)> {
    let groups = cluster.groups();
    let committed: GroupOffsets = groups.fetch_offsets(group_id);
    let answer = |topic: &str, partition: i32| {
        if require_stable && groups.has_pending_offset(group_id, topic, partition) {
            return (
                partition,
                -1,
                -1,
                String::new(),
                ErrorCode::UnstableOffsetCommit,
            );
        }
        match committed.get(&(topic.to_string(), partition)) {
            Some(offset) => (
                partition,
                offset.offset,
                offset.leader_epoch,
                offset.metadata.clone(),
                ErrorCode::None,
            ),
            None => (partition, -1, -1, String::new(), ErrorCode::None),
        }
    };
    match wanted {
        Some(wanted) => wanted
            .into_iter()
            .map(|(topic, partitions)| {
                let describable =
                    access.allows(AclOperation::Describe, ResourceType::Topic, &topic);
                let answers = partitions
                    .into_iter()
                    .map(|partition| match describable {
                        true => answer(&topic, partition),
                        false => refused_partition(partition),
                    })
                    .collect();
                (topic, answers)
            })
            .collect(),
        None => {
            let mut topics: Vec<(String, Vec<Answer>)> = Vec::new();
            let describable = committed.keys().filter(|(topic, _)| {
                access.filters(AclOperation::Describe, ResourceType::Topic, topic)
            });
            for (topic, partition) in describable {
                match topics.last_mut() {
                    Some((last, answers)) if last == topic => {
                        answers.push(answer(topic, *partition))
                    }
                    _ => topics.push((topic.clone(), vec![answer(topic, *partition)])),
                }
            }
            topics
        }
    }
}
