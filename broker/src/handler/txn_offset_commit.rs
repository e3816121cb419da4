//! TxnOffsetCommit (key 28): a group's offsets committed inside the producer's transaction
//! (Kafka Streams' and Flink's consume-transform-produce). They become visible to
//! OffsetFetch only when the transaction commits, and vanish if it aborts.
//!
//! Versions 0-3 (v2 adds the leader epoch; v3 adds the member id, generation and group
//! instance id, so a consumer that lost its partitions in a rebalance, a zombie, is fenced
//! through the group; v3 is flexible). The producer must have added the offsets partition
//! with AddOffsetsToTxn first. Answered once the offsets are in the log (and, with
//! `--flush-policy acks-all`, fsynced).
//!
//! Errors per partition: INVALID_GROUP_ID, UNKNOWN_TOPIC_OR_PARTITION,
//! OFFSET_METADATA_TOO_LARGE, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID,
//! INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v2),
//! INVALID_TXN_STATE (the offsets partition is not in the transaction),
//! KAFKA_STORAGE_ERROR.

use std::sync::Arc;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::txn_offset_commit::{
    TxnOffsetCommitRequest, TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition,
    TxnOffsetCommitResponseTopic,
};

use crate::cluster::{Cluster, now_ms};
use crate::group::coordinator::TxnCommitter;
use crate::group::records::CommittedOffset;
use crate::handler::group::offset_commit::wait_durable;
use crate::transaction::metadata::error_for_version;

/// The first version whose clients know PRODUCER_FENCED here.
const FIRST_FENCED_VERSION: i16 = 2;

/// A partition and, if it was refused before reaching the coordinator, why.
type PartitionAnswer = (i32, Option<ErrorCode>);

/// Answers TxnOffsetCommit.
pub async fn handle(
    cluster: &Arc<Cluster>,
    version: i16,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let now_ms = now_ms();
    let mut commits = Vec::new();
    let mut answers: Vec<(String, Vec<PartitionAnswer>)> = Vec::new();
    for topic in request.topics {
        let known = cluster.topic(&topic.name);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for partition in topic.partitions {
            let index = partition.partition_index;
            if known
                .as_ref()
                .and_then(|known| known.partition(index))
                .is_none()
            {
                partitions.push((index, Some(ErrorCode::UnknownTopicOrPartition)));
                continue;
            }
            partitions.push((index, None));
            let committed = CommittedOffset {
                offset: partition.committed_offset,
                leader_epoch: partition.committed_leader_epoch,
                metadata: partition.committed_metadata.unwrap_or_default(),
                commit_timestamp_ms: now_ms,
                expire_timestamp_ms: None,
            };
            commits.push((topic.name.clone(), index, committed));
        }
        answers.push((topic.name, partitions));
    }
    let committer = TxnCommitter {
        transactional_id: &request.transactional_id,
        producer_id: request.producer_id,
        producer_epoch: request.producer_epoch,
        member_id: &request.member_id,
        group_instance_id: request.group_instance_id.as_deref(),
        generation_id: request.generation_id,
    };
    let (mut errors, last_offset) = if request.group_id.is_empty() {
        (vec![ErrorCode::InvalidGroupId; commits.len()], None)
    } else {
        let transactions = cluster.transactions();
        cluster
            .groups()
            .commit_txn_offsets(&request.group_id, committer, transactions, commits)
    };
    if let Some(last_offset) = last_offset
        && let Err(error) = wait_durable(cluster, last_offset).await
    {
        tracing::warn!(group = %request.group_id, %error, "offsets fsync failed");
        errors.fill(ErrorCode::KafkaStorageError);
    }
    let mut errors = errors.into_iter();
    let topics = answers
        .into_iter()
        .map(|(name, partitions)| TxnOffsetCommitResponseTopic {
            name,
            partitions: partitions
                .into_iter()
                .map(|(partition_index, known_error)| {
                    let error = known_error
                        .unwrap_or_else(|| errors.next().unwrap_or(ErrorCode::UnknownServerError));
                    let error = error_for_version(error, version, FIRST_FENCED_VERSION);
                    TxnOffsetCommitResponsePartition {
                        partition_index,
                        error_code: error.code(),
                    }
                })
                .collect(),
        })
        .collect();
    TxnOffsetCommitResponse {
        throttle_time_ms: 0,
        topics,
    }
}
