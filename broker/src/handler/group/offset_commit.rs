//! OffsetCommit (key 8): store a group's progress per partition.
//!
//! Versions 0-8. Members commit with their generation; consumers using assign() commit
//! with generation -1 and no member id, which is allowed while the group has no members.
//! The metadata string is stored and returned as committed. Answered once the commit is
//! in the offsets log (and, with `--flush-policy acks-all`, fsynced).
//!
//! Versions 2-4 carry `retention_time_ms`: -1 keeps the broker's
//! `--offsets-retention-minutes`; any other value makes the commits expire that long after
//! they were made, once their group has no members (as Kafka does since KIP-211).
//!
//! With `--authorizer acl` the committer needs Read on the group (else every partition is
//! GROUP_AUTHORIZATION_FAILED) and Read on each topic (else TOPIC_AUTHORIZATION_FAILED for
//! its partitions, the others still committed).
//!
//! Errors: GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED, INVALID_GROUP_ID, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS,
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
use crate::handler::group::commit_answers::{
    RequestedCommit, TopicCodes, refuse_all, sort_commits,
};
use crate::handler::{Access, RequestContext};
use crate::partition::SyncError;
use crate::security::acl::{AclOperation, ResourceType};

/// Answers OffsetCommit.
pub async fn handle(
    cluster: &Arc<Cluster>,
    context: &RequestContext,
    _version: i16,
    mut request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let now_ms = now_ms();
    let expire_timestamp_ms = expire_timestamp_ms(request.retention_time_ms, now_ms);
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
                        expire_timestamp_ms,
                    },
                })
                .collect();
            (topic.name, partitions)
        })
        .collect();
    let access = context.access(cluster);
    let codes = if access.allows(AclOperation::Read, ResourceType::Group, &request.group_id) {
        commit(cluster, &access, &request, requested).await
    } else {
        refuse_all(requested, ErrorCode::GroupAuthorizationFailed)
    };
    let topics = codes
        .into_iter()
        .map(|(name, partitions)| OffsetCommitResponseTopic {
            name,
            partitions: partitions
                .into_iter()
                .map(|(partition_index, error)| OffsetCommitResponsePartition {
                    partition_index,
                    error_code: error.code(),
                })
                .collect(),
        })
        .collect();
    OffsetCommitResponse {
        topics,
        ..Default::default()
    }
}

/// Commits the partitions not refused up front, and answers every one.
async fn commit(
    cluster: &Arc<Cluster>,
    access: &Access<'_>,
    request: &OffsetCommitRequest,
    requested: Vec<(String, Vec<RequestedCommit>)>,
) -> TopicCodes {
    let (commits, answers) = sort_commits(cluster, access, requested);
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
    wait_durable_or_fail(cluster, &request.group_id, last_offset, &mut errors).await;
    answers.with_errors(errors)
}

/// When commits made at `now_ms` expire, if the request set its own retention: -1 (also
/// what versions without the field decode to) leaves it to the broker's default.
fn expire_timestamp_ms(retention_time_ms: i64, now_ms: i64) -> Option<i64> {
    (retention_time_ms != -1).then(|| now_ms.saturating_add(retention_time_ms))
}

/// Waits until what a commit wrote (through `last_offset`, if it wrote anything) is as
/// durable as the flush policy makes it; if the fsync fails, every partition's answer
/// becomes KAFKA_STORAGE_ERROR.
pub async fn wait_durable_or_fail(
    cluster: &Arc<Cluster>,
    group_id: &str,
    last_offset: Option<i64>,
    errors: &mut [ErrorCode],
) {
    if let Some(last_offset) = last_offset
        && let Err(error) = wait_durable(cluster, last_offset).await
    {
        tracing::warn!(group = %group_id, %error, "offsets fsync failed");
        errors.fill(ErrorCode::KafkaStorageError);
    }
}

/// Waits for the offsets log to be fsynced through `last_offset`, when the flush policy
/// says acknowledged writes are durable.
pub async fn wait_durable(cluster: &Arc<Cluster>, last_offset: i64) -> Result<(), SyncError> {
    if cluster.config.flush_policy != FlushPolicy::AcksAll {
        return Ok(());
    }
    let cluster = cluster.clone();
    tokio::task::spawn_blocking(move || cluster.groups().sync_through(last_offset))
        .await
        .map_err(|_| SyncError::TaskLost)?
        .map_err(|error| SyncError::Storage(Arc::new(error)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use riffle_protocol::api::offset_commit::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };

    use super::*;
    use crate::cluster::Validation;
    use crate::testing::test_cluster;

    /// The broker default the test passes to expiry: far longer than the test runs.
    const DEFAULT_RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;

    /// An assign()-style (generation -1) OffsetCommit of offset 10 to `t`/`partition`.
    fn commit(partition: i32, retention_time_ms: i64) -> OffsetCommitRequest {
        OffsetCommitRequest {
            group_id: "g".into(),
            generation_id_or_member_epoch: -1,
            retention_time_ms,
            topics: vec![OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: partition,
                    committed_offset: 10,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn v2_retention_time_ms_expires_that_commit_and_minus_one_keeps_the_default() {
        // Proves OffsetCommit v2's retention_time_ms: a commit asking for 60 s expires 60 s
        // after it was made, even though the broker default is a week, while a commit with
        // -1 stays until the default; both are answered without error.
        let (_dir, cluster) = test_cluster();
        cluster
            .create_topic("t", 2, BTreeMap::new(), Validation::Apply)
            .expect("create");
        let cluster = Arc::new(cluster);
        for (partition, retention_time_ms) in [(0, 60_000), (1, -1)] {
            let response = handle(
                &cluster,
                &crate::handler::RequestContext::internal(&cluster),
                2,
                commit(partition, retention_time_ms),
            )
            .await;
            assert_eq!(response.topics[0].partitions[0].error_code, 0);
        }
        let offsets = cluster.groups().fetch_offsets("g");
        let own = &offsets[&("t".to_string(), 0)];
        let default = &offsets[&("t".to_string(), 1)];
        assert_eq!(
            own.expire_timestamp_ms,
            Some(own.commit_timestamp_ms + 60_000)
        );
        assert_eq!(default.expire_timestamp_ms, None);

        let groups = cluster.groups();
        let before = own.commit_timestamp_ms + 59_999;
        assert_eq!(groups.expire_offsets(before, DEFAULT_RETENTION_MS), 0);
        let after = own.commit_timestamp_ms + 60_000;
        assert_eq!(groups.expire_offsets(after, DEFAULT_RETENTION_MS), 1);
        let left: Vec<i32> = groups.fetch_offsets("g").keys().map(|key| key.1).collect();
        assert_eq!(left, vec![1]);
    }
}
