//! Metadata (key 3): brokers, the controller, topics and their partitions' leaders.
//!
//! Versions 0-12. The broker is listed at the address of the listener the client came in
//! on, so it stays on that listener. On one node we lead every partition, so each partition reports us as
//! leader, sole replica and sole in-sync replica. Leader epochs are reported as -1:
//! clients then skip OffsetForLeaderEpoch, which a single node has no use for.
//!
//! Errors per topic: UNKNOWN_TOPIC_OR_PARTITION (unknown and not auto-created),
//! UNKNOWN_TOPIC_ID, INVALID_TOPIC_EXCEPTION (an illegal name asked to be created).

use riffle_protocol::api::metadata::{
    MetadataRequest, MetadataResponse, MetadataResponseBroker, MetadataResponsePartition,
    MetadataResponseTopic,
};
use riffle_protocol::{ErrorCode, Uuid};

use crate::cluster::{Cluster, Topic};
use crate::handler::RequestContext;

/// Kafka's "authorized operations not requested" marker.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// Answers Metadata.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    version: i16,
    request: MetadataRequest,
) -> MetadataResponse {
    // v0 has no null topic list: an empty list means "all topics" there.
    let topics = match request.topics {
        Some(topics) if !(version == 0 && topics.is_empty()) => topics
            .into_iter()
            .map(|wanted| {
                requested_topic(
                    cluster,
                    version,
                    wanted.name,
                    wanted.topic_id,
                    request.allow_auto_topic_creation,
                )
            })
            .collect(),
        _ => cluster
            .all_topics()
            .iter()
            .map(|topic| topic_metadata(cluster, topic))
            .collect(),
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
        cluster_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
    }
}

fn requested_topic(
    cluster: &Cluster,
    version: i16,
    name: Option<String>,
    topic_id: Uuid,
    allow_auto_topic_creation: bool,
) -> MetadataResponseTopic {
    let found = match &name {
        Some(name) if allow_auto_topic_creation || version < 4 => {
            cluster.topic_or_auto_create(name)
        }
        Some(name) => cluster
            .topic(name)
            .ok_or_else(|| unknown(ErrorCode::UnknownTopicOrPartition)),
        None => cluster
            .topic_by_id(&topic_id)
            .ok_or_else(|| unknown(ErrorCode::UnknownTopicId)),
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
