//! OffsetCommit (key 8): store a group's progress per partition.
//!
//! Versions 0-8. Members commit with their generation; consumers using assign() commit
//! with generation -1 and no member id, which is allowed while the group has no members.
//! The metadata string is stored and returned as committed. Answered once the commit is
//! in the offsets log (and, with `--flush-policy acks-all`, fsynced).
//!
//! Errors: INVALID_GROUP_ID, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS,
//! FENCED_INSTANCE_ID, OFFSET_METADATA_TOO_LARGE, UNKNOWN_TOPIC_OR_PARTITION,
//! KAFKA_STORAGE_ERROR.

use std::sync::Arc;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::offset_commit::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetCommitResponsePartition,
    OffsetCommitResponseTopic,
};

use crate::cluster::{Cluster, now_ms};
use crate::config::FlushPolicy;
use crate::group::records::CommittedOffset;

/// A partition and, if it was refused before reaching the coordinator, why.
type PartitionAnswer = (i32, Option<ErrorCode>);

/// Answers OffsetCommit.
pub async fn handle(
    cluster: &Arc<Cluster>,
    _version: i16,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let now_ms = now_ms();
    let mut commits = Vec::new();
    let mut answers: Vec<(String, Vec<PartitionAnswer>)> = Vec::new();
    for topic in request.topics {
        let known = cluster.topic(&topic.name);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for partition in topic.partitions {
            if known
                .as_ref()
                .and_then(|known| known.partition(partition.partition_index))
                .is_none()
            {
                partitions.push((
                    partition.partition_index,
                    Some(ErrorCode::UnknownTopicOrPartition),
                ));
                continue;
            }
            partitions.push((partition.partition_index, None));
            let committed = CommittedOffset {
                offset: partition.committed_offset,
                leader_epoch: partition.committed_leader_epoch,
                metadata: partition.committed_metadata.unwrap_or_default(),
                commit_timestamp_ms: now_ms,
            };
            commits.push((topic.name.clone(), partition.partition_index, committed));
        }
        answers.push((topic.name, partitions));
    }
    let (mut errors, last_offset) = if request.group_id.is_empty() {
        (vec![ErrorCode::InvalidGroupId; commits.len()], None)
    } else {
        cluster.groups().commit_offsets(
            &request.group_id,
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id_or_member_epoch,
            commits,
        )
    };
    if let Some(last_offset) = last_offset
        && let Err(error) = wait_durable(cluster, last_offset).await
    {
        tracing::warn!(group = %request.group_id, %error, "offsets fsync failed");
        errors
            .iter_mut()
            .for_each(|code| *code = ErrorCode::KafkaStorageError);
    }
    let mut errors = errors.into_iter();
    let topics = answers
        .into_iter()
        .map(|(name, partitions)| OffsetCommitResponseTopic {
            name,
            partitions: partitions
                .into_iter()
                .map(|(partition_index, known_error)| {
                    let error = known_error
                        .unwrap_or_else(|| errors.next().unwrap_or(ErrorCode::UnknownServerError));
                    OffsetCommitResponsePartition {
                        partition_index,
                        error_code: error.code(),
                    }
                })
                .collect(),
        })
        .collect();
    OffsetCommitResponse {
        topics,
        ..Default::default()
    }
}

/// Waits for the offsets log to be fsynced through `last_offset`, when the flush policy
/// says acknowledged writes are durable.
pub async fn wait_durable(cluster: &Arc<Cluster>, last_offset: i64) -> Result<(), String> {
    if cluster.config.flush_policy != FlushPolicy::AcksAll {
        return Ok(());
    }
    let cluster = cluster.clone();
    tokio::task::spawn_blocking(move || cluster.groups().sync_through(last_offset))
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| error.to_string())
}
