//! OffsetDelete (key 47): forget a group's committed offsets for some partitions.
//!
//! Version 0. As in Kafka, offsets of a topic that a member of the group subscribes to stay
//! (GROUP_SUBSCRIBED_TO_TOPIC for those partitions) and the rest go, so an operator can
//! clean up after a topic the group stopped reading without stopping the group. A group
//! with members of another protocol type is refused as a whole (NON_EMPTY_GROUP): their
//! metadata does not say which topics they read.
//! With `--authorizer acl`: Delete on the group (else GROUP_AUTHORIZATION_FAILED for the
//! request) and Read on each topic (else TOPIC_AUTHORIZATION_FAILED for its partitions).
//! Errors: GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED, GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, GROUP_SUBSCRIBED_TO_TOPIC,
//! KAFKA_STORAGE_ERROR.

use std::sync::Arc;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::offset_delete::{
    OffsetDeleteRequest, OffsetDeleteResponse, OffsetDeleteResponsePartition,
    OffsetDeleteResponseTopic,
};

use crate::cluster::Cluster;
use crate::group::ConsumedTopics;
use crate::handler::RequestContext;
use crate::handler::group::offset_commit::wait_durable;
use crate::security::acl::{AclOperation, ResourceType};

/// Answers OffsetDelete.
pub async fn handle(
    cluster: &Arc<Cluster>,
    context: &RequestContext,
    _version: i16,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let access = context.access(cluster);
    if !access.allows(AclOperation::Delete, ResourceType::Group, &request.group_id) {
        return refused(ErrorCode::GroupAuthorizationFailed);
    }
    // One check per topic; an unreadable topic's offsets are not touched.
    let readable: Vec<bool> = request
        .topics
        .iter()
        .map(|topic| access.allows(AclOperation::Read, ResourceType::Topic, &topic.name))
        .collect();
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .zip(&readable)
        .filter(|(_, readable)| **readable)
        .flat_map(|(topic, _)| {
            topic
                .partitions
                .iter()
                .map(|partition| (topic.name.clone(), partition.partition_index))
        })
        .collect();
    let (consumed, deleted_error) = match cluster
        .groups()
        .delete_offsets(&request.group_id, &partitions)
    {
        Err(error) => return refused(error),
        Ok((ConsumedTopics::OtherProtocol, _)) => return refused(ErrorCode::NonEmptyGroup),
        Ok((consumed, Some(last_offset))) if wait_durable(cluster, last_offset).await.is_err() => {
            (consumed, ErrorCode::KafkaStorageError)
        }
        Ok((consumed, _)) => (consumed, ErrorCode::None),
    };
    let topics = request
        .topics
        .into_iter()
        .zip(readable)
        .map(|(topic, readable)| {
            let error = if !readable {
                ErrorCode::TopicAuthorizationFailed
            } else if consumed.includes(&topic.name) {
                ErrorCode::GroupSubscribedToTopic
            } else {
                deleted_error
            };
            OffsetDeleteResponseTopic {
                name: topic.name,
                partitions: topic
                    .partitions
                    .into_iter()
                    .map(|partition| OffsetDeleteResponsePartition {
                        partition_index: partition.partition_index,
                        error_code: error.code(),
                    })
                    .collect(),
            }
        })
        .collect();
    OffsetDeleteResponse {
        topics,
        ..Default::default()
    }
}

/// A request-level error, with no topics.
fn refused(error: ErrorCode) -> OffsetDeleteResponse {
    OffsetDeleteResponse {
        error_code: error.code(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use riffle_protocol::api::offset_delete::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };

    use super::*;
    use crate::cluster::Validation;
    use crate::group::JoinRequest;
    use crate::group::records::CommittedOffset;
    use crate::testing::test_cluster;

    /// A commit of `offset`, without metadata or expiry.
    fn committed(offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 1_000,
            expire_timestamp_ms: None,
        }
    }

    /// A cluster with topic `t` of two partitions, and group `g` (no members) holding
    /// commits for both, as a consumer using assign() leaves them.
    fn cluster_with_commits() -> (tempfile::TempDir, Arc<Cluster>) {
        let (dir, cluster) = test_cluster();
        cluster
            .create_topic("t", 2, BTreeMap::new(), Validation::Apply)
            .expect("create");
        let commits = (0..2)
            .map(|partition| {
                (
                    "t".to_string(),
                    partition,
                    committed(10 + i64::from(partition)),
                )
            })
            .collect();
        let (errors, _) = cluster.groups().commit_offsets("g", "", None, -1, commits);
        assert_eq!(errors, vec![ErrorCode::None; 2]);
        (dir, Arc::new(cluster))
    }

    /// OffsetDelete of `partitions` of topic `t` for `group_id`.
    fn request(group_id: &str, partitions: &[i32]) -> OffsetDeleteRequest {
        OffsetDeleteRequest {
            group_id: group_id.into(),
            topics: vec![OffsetDeleteRequestTopic {
                name: "t".into(),
                partitions: partitions
                    .iter()
                    .map(|partition_index| OffsetDeleteRequestPartition {
                        partition_index: *partition_index,
                    })
                    .collect(),
            }],
        }
    }

    /// The (partition, error code) pairs of a response's only topic.
    fn partition_errors(response: &OffsetDeleteResponse) -> Vec<(i32, i16)> {
        response.topics[0]
            .partitions
            .iter()
            .map(|partition| (partition.partition_index, partition.error_code))
            .collect()
    }

    /// The partitions of `t` that `group_id` has committed offsets for.
    fn committed_partitions(cluster: &Cluster, group_id: &str) -> Vec<i32> {
        let offsets = cluster.groups().fetch_offsets(group_id);
        offsets.keys().map(|(_, partition)| *partition).collect()
    }

    /// Consumer protocol subscription metadata (version 0) for topic `t`.
    fn subscription_to_t() -> Bytes {
        Bytes::from(crate::group::consumer_protocol::encode_subscription(&[
            "t".to_string()
        ]))
    }

    /// A member joining `g` with `protocol_type` and one protocol carrying `metadata`.
    fn join(cluster: &Cluster, protocol_type: &str, metadata: Bytes) {
        let join = JoinRequest {
            member_id: String::new(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(10),
            protocol_type: protocol_type.into(),
            protocols: vec![("range".into(), metadata)],
            require_known_member_id: false,
        };
        let _joining = cluster.groups().join(Instant::now(), "g", join);
    }

    #[tokio::test]
    async fn deletes_a_committed_offset_of_an_empty_group() {
        // Proves the happy path: a group without members loses exactly the offsets named
        // (partition 0), keeps the others, and the answer has no errors.
        let (_dir, cluster) = cluster_with_commits();
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            0,
            request("g", &[0]),
        )
        .await;
        assert_eq!(response.error_code, 0);
        assert_eq!(partition_errors(&response), vec![(0, 0)]);
        assert_eq!(committed_partitions(&cluster, "g"), vec![1]);
    }

    #[tokio::test]
    async fn refuses_a_topic_an_active_member_is_subscribed_to() {
        // Proves OffsetDelete does not pull offsets from under a consumer: once a member
        // subscribed to `t` has joined, each requested partition of `t` is answered
        // GROUP_SUBSCRIBED_TO_TOPIC and every commit stays.
        let (_dir, cluster) = cluster_with_commits();
        join(&cluster, "consumer", subscription_to_t());
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            0,
            request("g", &[0, 1]),
        )
        .await;
        assert_eq!(response.error_code, 0);
        let subscribed = ErrorCode::GroupSubscribedToTopic.code();
        assert_eq!(
            partition_errors(&response),
            vec![(0, subscribed), (1, subscribed)]
        );
        assert_eq!(committed_partitions(&cluster, "g"), vec![0, 1]);
    }

    #[tokio::test]
    async fn an_unknown_group_is_group_id_not_found() {
        // Proves a group with no offsets and no members gets the request-level error
        // GROUP_ID_NOT_FOUND, and the other group's commits are untouched.
        let (_dir, cluster) = cluster_with_commits();
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            0,
            request("no-such-group", &[0]),
        )
        .await;
        assert_eq!(response.error_code, ErrorCode::GroupIdNotFound.code());
        assert!(response.topics.is_empty());
        assert_eq!(committed_partitions(&cluster, "g"), vec![0, 1]);
    }

    #[tokio::test]
    async fn deletes_offsets_of_a_topic_no_member_subscribes_to_while_the_group_is_active() {
        // Proves Kafka's rule, per topic: with a member subscribed to `t` only, a request
        // naming `t` and `u` keeps `t`'s offset (GROUP_SUBSCRIBED_TO_TOPIC) and deletes
        // `u`'s, so an operator can clean up a topic the group stopped reading.
        let (_dir, cluster) = cluster_with_commits();
        let (errors, _) =
            cluster
                .groups()
                .commit_offsets("g", "", None, -1, vec![("u".into(), 0, committed(7))]);
        assert_eq!(errors, vec![ErrorCode::None]);
        join(&cluster, "consumer", subscription_to_t());

        let mut both = request("g", &[0]);
        both.topics.push(OffsetDeleteRequestTopic {
            name: "u".into(),
            partitions: vec![OffsetDeleteRequestPartition { partition_index: 0 }],
        });
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            0,
            both,
        )
        .await;
        assert_eq!(response.error_code, 0);
        let errors: Vec<(String, i16)> = response
            .topics
            .iter()
            .map(|topic| (topic.name.clone(), topic.partitions[0].error_code))
            .collect();
        let subscribed = ErrorCode::GroupSubscribedToTopic.code();
        assert_eq!(errors, vec![("t".into(), subscribed), ("u".into(), 0)]);
        let left: Vec<(String, i32)> = cluster.groups().fetch_offsets("g").into_keys().collect();
        assert_eq!(left, vec![("t".into(), 0), ("t".into(), 1)]);
    }

    #[tokio::test]
    async fn a_group_with_members_of_another_protocol_type_is_non_empty_group() {
        // Proves the request-level refusal when member metadata says nothing about topics
        // (a Connect-style group): NON_EMPTY_GROUP, no topics, every commit stays.
        let (_dir, cluster) = cluster_with_commits();
        join(&cluster, "connect", Bytes::from_static(b"worker"));
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            0,
            request("g", &[0]),
        )
        .await;
        assert_eq!(response.error_code, ErrorCode::NonEmptyGroup.code());
        assert!(response.topics.is_empty());
        assert_eq!(committed_partitions(&cluster, "g"), vec![0, 1]);
    }
}
