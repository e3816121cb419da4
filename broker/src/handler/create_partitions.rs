//! CreatePartitions (key 37): grows topics to a larger partition count, or with
//! `validate_only` only checks that they could grow. Versions 0-3: v2 is the first
//! flexible version; v1 and v3 change nothing on the wire.
//!
//! A single node can only hold one replica, so `assignments` must be null or give every
//! new partition exactly `[node_id]`.
//!
//! Errors per topic: TOPIC_AUTHORIZATION_FAILED (with `--authorizer acl`, no Alter on the
//! topic), UNKNOWN_TOPIC_OR_PARTITION, INVALID_PARTITIONS (the count is not
//! larger than today's, or above the limit), INVALID_REPLICA_ASSIGNMENT, INVALID_REQUEST
//! (the topic appears more than once), KAFKA_STORAGE_ERROR.

use std::collections::HashMap;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::create_partitions::{
    CreatePartitionsAssignment, CreatePartitionsRequest, CreatePartitionsResponse,
    CreatePartitionsTopic, CreatePartitionsTopicResult,
};

use crate::cluster::{Cluster, TopicError, Validation};
use crate::handler::RequestContext;
use crate::security::acl::{AclOperation, ResourceType};

/// Answers CreatePartitions: one result per distinct topic name, in request order.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let validation = if request.validate_only {
        Validation::Only
    } else {
        Validation::Apply
    };
    let mut occurrences: HashMap<String, usize> = HashMap::new();
    for topic in &request.topics {
        *occurrences.entry(topic.name.clone()).or_default() += 1;
    }
    let access = context.access(cluster);
    let mut results = Vec::with_capacity(occurrences.len());
    for topic in request.topics {
        let result = match occurrences.get_mut(&topic.name) {
            // Kafka keys its results by name, so a repeated name gets one answer.
            Some(0) => continue,
            Some(count) if *count > 1 => {
                *count = 0;
                Err(topic_error(
                    ErrorCode::InvalidRequest,
                    "Duplicate topic name.",
                ))
            }
            _ if !access.allows(AclOperation::Alter, ResourceType::Topic, &topic.name) => {
                Err(topic_error(
                    ErrorCode::TopicAuthorizationFailed,
                    "The topic authorization is failed.",
                ))
            }
            _ => create_partitions(cluster, &topic, validation),
        };
        results.push(topic_result(topic.name, result));
    }
    CreatePartitionsResponse {
        throttle_time_ms: 0,
        results,
    }
}

/// Checks the assignment of the new partitions, then asks the cluster to grow the topic
/// (which checks the count).
fn create_partitions(
    cluster: &Cluster,
    topic: &CreatePartitionsTopic,
    validation: Validation,
) -> Result<(), TopicError> {
    let Some(current) = cluster.topic(&topic.name) else {
        let message = format!("unknown topic '{}'", topic.name);
        return Err(topic_error(ErrorCode::UnknownTopicOrPartition, message));
    };
    let added_count =
        i64::from(topic.count) - i64::try_from(current.partitions.len()).unwrap_or(i64::MAX);
    // A count that does not grow the topic is the cluster's INVALID_PARTITIONS, whatever
    // the assignment says.
    if let (Some(assignments), true) = (&topic.assignments, added_count > 0) {
        check_assignments(cluster.node_id, assignments, added_count)?;
    }
    cluster.create_partitions(&topic.name, topic.count, validation)
}

/// One assignment per new partition, each placing it on this node alone.
fn check_assignments(
    node_id: i32,
    assignments: &[CreatePartitionsAssignment],
    added_count: i64,
) -> Result<(), TopicError> {
    if i64::try_from(assignments.len()) != Ok(added_count) {
        let message = format!(
            "Increasing the number of partitions by {added_count} but {} assignments provided.",
            assignments.len()
        );
        return Err(topic_error(ErrorCode::InvalidReplicaAssignment, message));
    }
    if let Some(bad) = assignments
        .iter()
        .find(|assignment| assignment.broker_ids != [node_id])
    {
        let message = format!(
            "a new partition is assigned to brokers {:?}; this single-node cluster can only \
             place it on [{node_id}]",
            bad.broker_ids
        );
        return Err(topic_error(ErrorCode::InvalidReplicaAssignment, message));
    }
    Ok(())
}

fn topic_result(name: String, result: Result<(), TopicError>) -> CreatePartitionsTopicResult {
    match result {
        Ok(()) => CreatePartitionsTopicResult {
            name,
            error_code: ErrorCode::None.code(),
            error_message: None,
        },
        Err(error) => CreatePartitionsTopicResult {
            name,
            error_code: error.code.code(),
            error_message: Some(error.message),
        },
    }
}

fn topic_error(code: ErrorCode, message: impl Into<String>) -> TopicError {
    TopicError {
        code,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::testing::test_cluster;

    fn grow(name: &str, count: i32, assignments: Option<Vec<Vec<i32>>>) -> CreatePartitionsTopic {
        let assignments = assignments.map(|lists| {
            lists
                .into_iter()
                .map(|broker_ids| CreatePartitionsAssignment { broker_ids })
                .collect()
        });
        CreatePartitionsTopic {
            name: name.into(),
            count,
            assignments,
        }
    }

    fn codes(response: &CreatePartitionsResponse) -> Vec<(&str, i16)> {
        response
            .results
            .iter()
            .map(|result| (result.name.as_str(), result.error_code))
            .collect()
    }

    #[test]
    fn grows_topics_and_rejects_bad_requests_per_topic() {
        // One topic grows; shrinking, another broker, a wrong assignment count, an unknown
        // topic and a repeated name each fail without stopping the others.
        let (_dir, cluster) = test_cluster();
        for name in ["grow", "shrink", "elsewhere", "short", "twice"] {
            cluster
                .create_topic(name, 2, BTreeMap::new(), Validation::Apply)
                .expect("create");
        }
        let node = cluster.node_id;
        let topics = vec![
            grow("grow", 4, Some(vec![vec![node], vec![node]])),
            grow("shrink", 1, None),
            grow("elsewhere", 3, Some(vec![vec![node + 1]])),
            grow("short", 4, Some(vec![vec![node]])),
            grow("missing", 3, None),
            grow("twice", 3, None),
            grow("twice", 3, None),
        ];
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            3,
            CreatePartitionsRequest {
                topics,
                timeout_ms: 1000,
                validate_only: false,
            },
        );
        assert_eq!(
            codes(&response),
            vec![
                ("grow", 0),
                ("shrink", 37),
                ("elsewhere", 39),
                ("short", 39),
                ("missing", 3),
                ("twice", 42)
            ]
        );
        assert_eq!(cluster.topic("grow").expect("exists").partitions.len(), 4);
        assert_eq!(cluster.topic("twice").expect("exists").partitions.len(), 2);
        assert!(response.results[1].error_message.is_some());
    }

    #[test]
    fn validate_only_leaves_the_topic_unchanged() {
        // validate_only answers success and the partition count stays as it was.
        let (_dir, cluster) = test_cluster();
        cluster
            .create_topic("dry-run", 1, BTreeMap::new(), Validation::Apply)
            .expect("create");
        let request = CreatePartitionsRequest {
            topics: vec![grow("dry-run", 5, None)],
            timeout_ms: 1000,
            validate_only: true,
        };
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            0,
            request,
        );
        assert_eq!(codes(&response), vec![("dry-run", 0)]);
        assert_eq!(
            cluster.topic("dry-run").expect("exists").partitions.len(),
            1
        );
    }
}
