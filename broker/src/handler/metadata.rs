//! Metadata (key 3): brokers, the controller, topics and their partitions' leaders.
//!
//! Versions 0-12. The broker is listed at the address of the listener the client came in
//! on, so it stays on that listener. On one node we lead every partition, so each partition reports us as
//! leader, sole replica and sole in-sync replica. Leader epochs are reported as -1:
//! clients then skip OffsetForLeaderEpoch, which a single node has no use for.
//!
//! With `--authorizer acl`, as in Kafka: a request for all topics lists only those the
//! principal may describe; a topic asked for by name (or id) that it may not describe
//! answers TOPIC_AUTHORIZATION_FAILED (by id, without its name), so the client can report
//! it; auto-creating an unknown topic needs Create on the cluster or the topic, and without
//! it the topic answers TOPIC_AUTHORIZATION_FAILED. Asked for (v8+), each topic's authorized
//! operations are reported, and (v8-10) the cluster's when the principal may describe it.
//!
//! Errors per topic: TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_OR_PARTITION (unknown and not
//! auto-created), UNKNOWN_TOPIC_ID, INVALID_TOPIC_EXCEPTION (an illegal name asked to be
//! created).

use riffle_protocol::api::metadata::{
    MetadataRequest, MetadataResponse, MetadataResponseBroker, MetadataResponsePartition,
    MetadataResponseTopic,
};
use riffle_protocol::{ErrorCode, Uuid};

use crate::cluster::{Cluster, Topic};
use crate::handler::{AUTHORIZED_OPERATIONS_OMITTED, Access, RequestContext};
use crate::security::acl::{AclOperation, ResourceType};

/// Answers Metadata.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    version: i16,
    request: MetadataRequest,
) -> MetadataResponse {
    let access = context.access(cluster);
    let include_operations = request.include_topic_authorized_operations;
    // v0 has no null topic list: an empty list means "all topics" there.
    let mut topics: Vec<MetadataResponseTopic> = match request.topics {
        Some(topics) if !(version == 0 && topics.is_empty()) => topics
            .into_iter()
            .map(|wanted| {
                let auto_create = request.allow_auto_topic_creation || version < 4;
                requested_topic(cluster, &access, wanted.name, wanted.topic_id, auto_create)
            })
            .collect(),
        _ => cluster
            .all_topics()
            .iter()
            .filter(|topic| {
                access.filters(AclOperation::Describe, ResourceType::Topic, &topic.name)
            })
            .map(|topic| topic_metadata(cluster, topic))
            .collect(),
    };
    if include_operations {
        for topic in topics.iter_mut().filter(|topic| topic.error_code == 0) {
            let name = topic.name.as_deref().unwrap_or_default();
            topic.topic_authorized_operations =
                access.authorized_operations(ResourceType::Topic, name);
        }
    }
    let cluster_authorized_operations = match request.include_cluster_authorized_operations {
        false => AUTHORIZED_OPERATIONS_OMITTED,
        true if access.allows_cluster(AclOperation::Describe) => {
            access.authorized_operations(ResourceType::Cluster, crate::security::acl::CLUSTER_NAME)
        }
        true => 0,
    };
    MetadataResponse {
        throttle_time_ms: 0,
        brokers: vec![MetadataResponseBroker {
            node_id: cluster.node_id,
            host: context.advertised_host.clone(),
            port: context.advertised_port,
            rack: None,
        }],
        cluster_id: Some(cluster.cluster_id.clone()),
        controller_id: cluster.node_id,
        topics,
        cluster_authorized_operations,
    }
}

/// One topic asked for by name or id: described, created, or refused. The principal must
/// be allowed to describe it (an unknown id has no name to check, and answers
/// UNKNOWN_TOPIC_ID), and to create it when it is auto-created.
fn requested_topic(
    cluster: &Cluster,
    access: &Access<'_>,
    name: Option<String>,
    topic_id: Uuid,
    auto_create: bool,
) -> MetadataResponseTopic {
    let existing = match &name {
        Some(name) => cluster.topic(name),
        None => cluster.topic_by_id(&topic_id),
    };
    let described = existing
        .as_ref()
        .map(|topic| topic.name.as_str())
        .or(name.as_deref());
    if let Some(described) = described
        && !access.allows(AclOperation::Describe, ResourceType::Topic, described)
    {
        // By id, the name is not revealed; by name, the id is not.
        return refused(
            name,
            if existing.is_some() {
                topic_id
            } else {
                Uuid::ZERO
            },
        );
    }
    let found = match (existing, &name) {
        (Some(topic), _) => Ok(topic),
        (None, Some(name)) if auto_create && cluster.config.auto_create_topics => {
            if !access.may_create_topic(name) {
                let mut refused = refused(Some(name.clone()), Uuid::ZERO);
                refused.is_internal = Cluster::is_internal_topic(name);
                return refused;
            }
            cluster.topic_or_auto_create(name)
        }
        (None, Some(_)) => Err(unknown(ErrorCode::UnknownTopicOrPartition)),
        (None, None) => Err(unknown(ErrorCode::UnknownTopicId)),
    };
    match found {
        Ok(topic) => topic_metadata(cluster, &topic),
        Err(error) => MetadataResponseTopic {
            error_code: error.code.code(),
            name,
            topic_id,
            topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
            ..Default::default()
        },
    }
}

/// A topic the principal may not describe, or create.
fn refused(name: Option<String>, topic_id: Uuid) -> MetadataResponseTopic {
    MetadataResponseTopic {
        error_code: ErrorCode::TopicAuthorizationFailed.code(),
        name,
        topic_id,
        topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        ..Default::default()
    }
}

fn unknown(code: ErrorCode) -> crate::cluster::TopicError {
    crate::cluster::TopicError {
        code,
        message: String::new(),
    }
}

fn topic_metadata(cluster: &Cluster, topic: &Topic) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|partition| MetadataResponsePartition {
            error_code: ErrorCode::None.code(),
            partition_index: partition.index,
            leader_id: cluster.node_id,
            leader_epoch: -1,
            replica_nodes: vec![cluster.node_id],
            isr_nodes: vec![cluster.node_id],
            offline_replicas: Vec::new(),
        })
        .collect();
    MetadataResponseTopic {
        error_code: ErrorCode::None.code(),
        name: Some(topic.name.clone()),
        topic_id: topic.id,
        is_internal: Cluster::is_internal_topic(&topic.name),
        partitions,
        topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use riffle_protocol::api::metadata::MetadataRequestTopic;

    use super::*;
    use crate::cluster::Validation;
    use crate::testing::{acl_cluster, allow, context_of};

    /// (name, error code, partition count) of each topic answered.
    fn answered(response: &MetadataResponse) -> Vec<(String, i16, usize)> {
        response
            .topics
            .iter()
            .map(|topic| {
                let name = topic.name.clone().unwrap_or_default();
                (name, topic.error_code, topic.partitions.len())
            })
            .collect()
    }

    fn by_name(names: &[&str], allow_auto_topic_creation: bool) -> MetadataRequest {
        let topics = names
            .iter()
            .map(|name| MetadataRequestTopic {
                name: Some(name.to_string()),
                ..Default::default()
            })
            .collect();
        MetadataRequest {
            topics: Some(topics),
            allow_auto_topic_creation,
            ..Default::default()
        }
    }

    fn cluster_with_topics() -> (tempfile::TempDir, Cluster) {
        let (dir, cluster) = acl_cluster(&[]);
        for name in ["visible", "hidden"] {
            cluster
                .create_topic(name, 1, BTreeMap::new(), Validation::Apply)
                .expect("create");
        }
        allow(
            &cluster,
            "topic:literal:visible",
            "User:alice",
            AclOperation::Read,
        );
        (dir, cluster)
    }

    #[test]
    fn all_topics_leave_out_what_the_principal_may_not_describe() {
        // A request for all topics lists only the describable ones; the same topics asked
        // for by name answer TOPIC_AUTHORIZATION_FAILED for the hidden one, without
        // partitions, so the client can report it.
        let (_dir, cluster) = cluster_with_topics();
        let alice = context_of(&cluster, "User:alice");
        let every_topic = MetadataRequest {
            topics: None,
            ..Default::default()
        };
        let all = handle(&cluster, &alice, 12, every_topic);
        assert_eq!(answered(&all), vec![("visible".into(), 0, 1)]);
        let named = handle(&cluster, &alice, 12, by_name(&["visible", "hidden"], false));
        let denied = ErrorCode::TopicAuthorizationFailed.code();
        assert_eq!(
            answered(&named),
            vec![("visible".into(), 0, 1), ("hidden".into(), denied, 0)]
        );
        assert_eq!(named.topics[1].topic_id, Uuid::ZERO);
    }

    #[test]
    fn a_topic_asked_for_by_id_is_refused_without_its_name() {
        // v12 by id: a hidden topic answers TOPIC_AUTHORIZATION_FAILED with its id and no
        // name; an unknown id is UNKNOWN_TOPIC_ID, as without an authorizer.
        let (_dir, cluster) = cluster_with_topics();
        let hidden = cluster.topic("hidden").expect("created").id;
        let request = MetadataRequest {
            topics: Some(
                [hidden, Uuid([9; 16])]
                    .into_iter()
                    .map(|topic_id| MetadataRequestTopic {
                        topic_id,
                        name: None,
                    })
                    .collect(),
            ),
            ..Default::default()
        };
        let alice = context_of(&cluster, "User:alice");
        let response = handle(&cluster, &alice, 12, request);
        let answers: Vec<(Option<&str>, Uuid, i16)> = response
            .topics
            .iter()
            .map(|topic| (topic.name.as_deref(), topic.topic_id, topic.error_code))
            .collect();
        let denied = ErrorCode::TopicAuthorizationFailed.code();
        let unknown = ErrorCode::UnknownTopicId.code();
        assert_eq!(
            answers,
            vec![(None, hidden, denied), (None, Uuid([9; 16]), unknown)]
        );
    }

    #[test]
    fn auto_creation_needs_create() {
        // With Describe but no Create, an unknown topic is not created and answers
        // TOPIC_AUTHORIZATION_FAILED; with Create on the cluster it is created.
        let (_dir, cluster) = cluster_with_topics();
        allow(
            &cluster,
            "topic:prefixed:new",
            "User:alice",
            AclOperation::Describe,
        );
        let alice = context_of(&cluster, "User:alice");
        let refused = handle(&cluster, &alice, 12, by_name(&["new-topic"], true));
        let denied = ErrorCode::TopicAuthorizationFailed.code();
        assert_eq!(answered(&refused), vec![("new-topic".into(), denied, 0)]);
        assert!(cluster.topic("new-topic").is_none());
        allow(
            &cluster,
            "cluster:literal:kafka-cluster",
            "User:alice",
            AclOperation::Create,
        );
        let created = handle(&cluster, &alice, 12, by_name(&["new-topic"], true));
        assert_eq!(answered(&created), vec![("new-topic".into(), 0, 1)]);
    }

    #[test]
    fn authorized_operations_are_reported_when_asked_for() {
        // Read on a topic reports Read and Describe; the cluster's operations are 0 for a
        // principal that may not describe it.
        let (_dir, cluster) = cluster_with_topics();
        let alice = context_of(&cluster, "User:alice");
        let request = MetadataRequest {
            include_topic_authorized_operations: true,
            include_cluster_authorized_operations: true,
            ..by_name(&["visible"], false)
        };
        let response = handle(&cluster, &alice, 10, request);
        let read_and_describe =
            (1 << AclOperation::Read.code()) | (1 << AclOperation::Describe.code());
        assert_eq!(
            response.topics[0].topic_authorized_operations,
            read_and_describe
        );
        assert_eq!(response.cluster_authorized_operations, 0);
    }
}
