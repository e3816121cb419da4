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
//! With `--authorizer acl`, as in Kafka: Write on the transactional id (else every
//! partition is TRANSACTIONAL_ID_AUTHORIZATION_FAILED), Read on the group (else
//! GROUP_AUTHORIZATION_FAILED), Read on each topic (else TOPIC_AUTHORIZATION_FAILED for its
//! partitions).
//!
//! Errors per partition: TRANSACTIONAL_ID_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED,
//! TOPIC_AUTHORIZATION_FAILED, INVALID_GROUP_ID, UNKNOWN_TOPIC_OR_PARTITION,
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
use crate::handler::group::commit_answers::{
    RequestedCommit, TopicCodes, refuse_all, sort_commits,
};
use crate::handler::group::offset_commit::wait_durable_or_fail;
use crate::handler::{Access, RequestContext};
use crate::security::acl::{AclOperation, ResourceType};
use crate::transaction::metadata::error_for_version;

/// The first version whose clients know PRODUCER_FENCED here.
const FIRST_FENCED_VERSION: i16 = 2;

/// Answers TxnOffsetCommit.
pub async fn handle(
    cluster: &Arc<Cluster>,
    context: &RequestContext,
    version: i16,
    mut request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let now_ms = now_ms();
    let requested: Vec<(String, Vec<RequestedCommit>)> = std::mem::take(&mut request.topics)
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .into_iter()
                .map(|partition| RequestedCommit {
                    partition_index: partition.partition_index,
                    committed: CommittedOffset {
                        offset: partition.committed_offset,
                        leader_epoch: partition.committed_leader_epoch,
                        metadata: partition.committed_metadata.unwrap_or_default(),
                        commit_timestamp_ms: now_ms,
                        expire_timestamp_ms: None,
                    },
                })
                .collect();
            (topic.name, partitions)
        })
        .collect();
    let access = context.access(cluster);
    let transactional_id = &request.transactional_id;
    let codes = if !access.allows(
        AclOperation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    ) {
        refuse_all(requested, ErrorCode::TransactionalIdAuthorizationFailed)
    } else if !access.allows(AclOperation::Read, ResourceType::Group, &request.group_id) {
        refuse_all(requested, ErrorCode::GroupAuthorizationFailed)
    } else {
        commit(cluster, &access, &request, requested).await
    };
    let topics = codes
        .into_iter()
        .map(|(name, partitions)| TxnOffsetCommitResponseTopic {
            name,
            partitions: partitions
                .into_iter()
                .map(
                    |(partition_index, error)| TxnOffsetCommitResponsePartition {
                        partition_index,
                        error_code: error_for_version(error, version, FIRST_FENCED_VERSION).code(),
                    },
                )
                .collect(),
        })
        .collect();
    TxnOffsetCommitResponse {
        throttle_time_ms: 0,
        topics,
    }
}

/// Commits the partitions not refused up front in the producer's transaction, and answers
/// every one.
async fn commit(
    cluster: &Arc<Cluster>,
    access: &Access<'_>,
    request: &TxnOffsetCommitRequest,
    requested: Vec<(String, Vec<RequestedCommit>)>,
) -> TopicCodes {
    let (commits, answers) = sort_commits(cluster, access, requested);
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
    wait_durable_or_fail(cluster, &request.group_id, last_offset, &mut errors).await;
    answers.with_errors(errors)
}
