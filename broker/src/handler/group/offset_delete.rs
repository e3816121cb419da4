//! OffsetDelete (key 47): forget a group's committed offsets for some partitions.
//!
//! Version 0. Only for groups that have no members consuming (Kafka refuses while a
//! member is subscribed to the topic; we refuse while the group has members at all).
//! Errors: GROUP_ID_NOT_FOUND, GROUP_SUBSCRIBED_TO_TOPIC, KAFKA_STORAGE_ERROR.

use std::sync::Arc;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::offset_delete::{
    OffsetDeleteRequest, OffsetDeleteResponse, OffsetDeleteResponsePartition,
    OffsetDeleteResponseTopic,
};

use crate::cluster::Cluster;
use crate::handler::group::offset_commit::wait_durable;

/// Answers OffsetDelete.
pub async fn handle(
    cluster: &Arc<Cluster>,
    _version: i16,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(|partition| (topic.name.clone(), partition.partition_index))
        })
        .collect();
    let partition_error = if cluster.groups().is_active_consumer_group(&request.group_id) {
        ErrorCode::GroupSubscribedToTopic
    } else {
        match cluster
            .groups()
            .delete_offsets(&request.group_id, &partitions)
        {
            Err(error) => {
                return OffsetDeleteResponse {
                    error_code: error.code(),
                    ..Default::default()
                };
            }
            Ok(last_offset) => match last_offset {
                Some(last_offset) if wait_durable(cluster, last_offset).await.is_err() => {
                    ErrorCode::KafkaStorageError
                }
                _ => ErrorCode::None,
            },
        }
    };
    let topics = request
        .topics
        .into_iter()
        .map(|topic| OffsetDeleteResponseTopic {
            name: topic.name,
            partitions: topic
                .partitions
                .into_iter()
                .map(|partition| OffsetDeleteResponsePartition {
                    partition_index: partition.partition_index,
                    error_code: partition_error.code(),
                })
                .collect(),
        })
        .collect();
    OffsetDeleteResponse {
        topics,
        ..Default::default()
    }
}
