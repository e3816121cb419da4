//! DescribeProducers (key 61, KIP-664): the active producers of partitions, with the
//! first offset of each one's open transaction, so an operator can find the producer
//! that holds a partition's last stable offset back (`kafka-transactions.sh
//! describe-producers`).
//!
//! Version 0 (flexible).
//!
//! Errors per partition: TOPIC_AUTHORIZATION_FAILED (with `--authorizer acl`, no Read on
//! the topic, as Kafka checks), UNKNOWN_TOPIC_OR_PARTITION, KAFKA_STORAGE_ERROR (the producer
//! state could not be loaded).

use riffle_protocol::ErrorCode;
use riffle_protocol::api::describe_producers::{
    DescribeProducersRequest, DescribeProducersResponse, PartitionResponse, ProducerState,
    TopicResponse,
};

use crate::cluster::Cluster;
use crate::handler::RequestContext;
use crate::security::acl::{AclOperation, ResourceType};

/// Answers DescribeProducers.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let access = context.access(cluster);
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            if !access.allows(AclOperation::Read, ResourceType::Topic, &topic.name) {
                let partitions = topic.partition_indexes.into_iter();
                let refused = ErrorCode::TopicAuthorizationFailed;
                return TopicResponse {
                    name: topic.name,
                    partitions: partitions
                        .map(|index| failed(index, refused, None))
                        .collect(),
                };
            }
            let known = cluster.topic(&topic.name);
            let partitions = topic
                .partition_indexes
                .into_iter()
                .map(
                    |index| match known.as_ref().and_then(|known| known.partition(index)) {
                        Some(partition) => describe(index, partition.producers()),
                        None => failed(index, ErrorCode::UnknownTopicOrPartition, None),
                    },
                )
                .collect();
            TopicResponse {
                name: topic.name,
                partitions,
            }
        })
        .collect();
    DescribeProducersResponse {
        throttle_time_ms: 0,
        topics,
    }
}

fn describe(
    index: i32,
    producers: Result<Vec<crate::producer_state::ProducerSummary>, riffle_storage::StorageError>,
) -> PartitionResponse {
    let producers = match producers {
        Ok(producers) => producers,
        Err(error) => {
            return failed(index, ErrorCode::KafkaStorageError, Some(error.to_string()));
        }
    };
    PartitionResponse {
        partition_index: index,
        error_code: ErrorCode::None.code(),
        error_message: None,
        active_producers: producers
            .into_iter()
            .map(|producer| ProducerState {
                producer_id: producer.producer_id,
                producer_epoch: i32::from(producer.producer_epoch),
                last_sequence: producer.last_sequence,
                last_timestamp: producer.last_timestamp_ms,
                coordinator_epoch: producer.coordinator_epoch,
                current_txn_start_offset: producer.current_txn_start_offset,
            })
            .collect(),
    }
}

fn failed(index: i32, code: ErrorCode, message: Option<String>) -> PartitionResponse {
    PartitionResponse {
        partition_index: index,
        error_code: code.code(),
        error_message: message,
        active_producers: Vec::new(),
    }
}
