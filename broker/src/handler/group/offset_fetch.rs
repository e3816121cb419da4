//! OffsetFetch (key 9): a group's committed offsets.
//!
//! Versions 0-8; v8 asks for several groups at once. A null topic list means every
//! committed partition. A partition with no commit answers offset -1.
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
use crate::handler::RequestContext;

/// The first version with several groups per request.
const FIRST_BATCHED_VERSION: i16 = 8;

/// One partition's answer: (partition, offset, leader epoch, metadata, error).
type Answer = (i32, i64, i32, String, ErrorCode);

/// Answers OffsetFetch.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    version: i16,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    if version < FIRST_BATCHED_VERSION {
        let wanted = request.topics.map(|topics| {
            topics
                .into_iter()
                .map(|topic| (topic.name, topic.partition_indexes))
                .collect()
        });
        let topics = lookup(cluster, &request.group_id, wanted, request.require_stable)
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
        let wanted = group.topics.map(|topics| {
            topics
                .into_iter()
                .map(|topic| (topic.name, topic.partition_indexes))
                .collect()
        });
        let topics = lookup(cluster, &group.group_id, wanted, request.require_stable)
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

/// The answers for the wanted partitions (or every committed one), grouped by topic.
fn lookup(
    cluster: &Cluster,
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
                let answers = partitions
                    .into_iter()
                    .map(|partition| answer(&topic, partition))
                    .collect();
                (topic, answers)
            })
            .collect(),
        None => {
            let mut topics: Vec<(String, Vec<Answer>)> = Vec::new();
            for (topic, partition) in committed.keys() {
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
