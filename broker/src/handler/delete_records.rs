//! DeleteRecords (key 21): moves partitions' log start offsets forward, making every
//! record below the given offset unreadable and freeing the segments wholly below it.
//! Versions 0-2: v1 changes nothing on the wire; v2 is the first flexible version.
//!
//! An offset of -1 means "up to the high watermark". The answer's low watermark is the
//! partition's log start offset afterwards; an offset at or below the current start
//! changes nothing and answers the current start, as in Kafka.
//!
//! Errors per partition (low watermark -1): TOPIC_AUTHORIZATION_FAILED (with
//! `--authorizer acl`, no Delete on the topic), UNKNOWN_TOPIC_OR_PARTITION, OFFSET_OUT_OF_RANGE
//! (an offset past the high watermark, or negative other than -1), KAFKA_STORAGE_ERROR.

use riffle_protocol::ErrorCode;
use riffle_protocol::api::delete_records::{
    DeleteRecordsPartition, DeleteRecordsPartitionResult, DeleteRecordsRequest,
    DeleteRecordsResponse, DeleteRecordsTopicResult,
};
use riffle_storage::StorageError;
use tracing::warn;

use crate::cluster::{Cluster, Topic};
use crate::handler::RequestContext;
use crate::partition::Partition;
use crate::security::acl::{AclOperation, ResourceType};

/// Kafka's "delete up to the high watermark" offset.
const HIGH_WATERMARK_OFFSET: i64 = -1;
/// The low watermark answered with an error.
const UNKNOWN_LOW_WATERMARK: i64 = -1;

/// Answers DeleteRecords: one result per requested partition, in request order.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let access = context.access(cluster);
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let deletable = access.allows(AclOperation::Delete, ResourceType::Topic, &topic.name);
            let found = cluster.topic(&topic.name);
            let partitions = topic
                .partitions
                .iter()
                .map(|wanted| match deletable {
                    true => delete_partition(found.as_deref(), wanted),
                    false => DeleteRecordsPartitionResult {
                        partition_index: wanted.partition_index,
                        low_watermark: UNKNOWN_LOW_WATERMARK,
                        error_code: ErrorCode::TopicAuthorizationFailed.code(),
                    },
                })
                .collect();
            DeleteRecordsTopicResult {
                name: topic.name,
                partitions,
            }
        })
        .collect();
    DeleteRecordsResponse {
        throttle_time_ms: 0,
        topics,
    }
}

fn delete_partition(
    topic: Option<&Topic>,
    wanted: &DeleteRecordsPartition,
) -> DeleteRecordsPartitionResult {
    let result = match topic.and_then(|topic| topic.partition(wanted.partition_index)) {
        Some(partition) => delete_before(partition, wanted.offset),
        None => Err(ErrorCode::UnknownTopicOrPartition),
    };
    let (low_watermark, error_code) = match result {
        Ok(log_start_offset) => (log_start_offset, ErrorCode::None),
        Err(code) => (UNKNOWN_LOW_WATERMARK, code),
    };
    DeleteRecordsPartitionResult {
        partition_index: wanted.partition_index,
        low_watermark,
        error_code: error_code.code(),
    }
}

/// Deletes the records below `offset` and returns the new log start offset. The log
/// checks the range: `offset` must lie within 0..=high watermark.
fn delete_before(partition: &Partition, offset: i64) -> Result<i64, ErrorCode> {
    let offset = if offset == HIGH_WATERMARK_OFFSET {
        partition.high_watermark()
    } else {
        offset
    };
    partition
        .delete_records_before(offset)
        .map_err(|error| match error {
            StorageError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            error => {
                let topic = &partition.topic;
                warn!(%topic, partition = partition.index, offset, %error, "DeleteRecords failed");
                ErrorCode::KafkaStorageError
            }
        })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use riffle_protocol::api::delete_records::DeleteRecordsTopic;
    use riffle_protocol::record::{Compression, RecordBatchBuilder};

    use super::*;
    use crate::cluster::Validation;
    use crate::testing::test_cluster;

    /// Appends one batch of `records_count` records to partition 0 of `topic`.
    fn append(cluster: &Cluster, topic: &str, records_count: usize) {
        let mut builder = RecordBatchBuilder::new(Compression::None);
        for _ in 0..records_count {
            builder.append(1_700_000_000_000, None, Some(b"value"), &[]);
        }
        let batch = builder.build().expect("build a batch").to_vec();
        let partition = cluster.topic(topic).expect("exists").partitions[0].clone();
        partition
            .append_records(&batch, 1_700_000_000_000)
            .expect("append");
    }

    fn delete(cluster: &Cluster, topic: &str, offsets: &[(i32, i64)]) -> Vec<(i64, i16)> {
        let partitions = offsets
            .iter()
            .map(|(partition_index, offset)| DeleteRecordsPartition {
                partition_index: *partition_index,
                offset: *offset,
            })
            .collect();
        let request = DeleteRecordsRequest {
            topics: vec![DeleteRecordsTopic {
                name: topic.into(),
                partitions,
            }],
            timeout_ms: 1000,
        };
        let response = handle(
            cluster,
            &crate::handler::RequestContext::internal(cluster),
            2,
            request,
        );
        response.topics[0]
            .partitions
            .iter()
            .map(|result| (result.low_watermark, result.error_code))
            .collect()
    }

    #[test]
    fn moves_the_log_start_and_never_back() {
        // Deleting below 3 answers low watermark 3; a lower offset later keeps it at 3;
        // -1 deletes up to the high watermark.
        let (_dir, cluster) = test_cluster();
        cluster
            .create_topic("orders", 1, BTreeMap::new(), Validation::Apply)
            .expect("create");
        append(&cluster, "orders", 5);
        assert_eq!(delete(&cluster, "orders", &[(0, 3)]), vec![(3, 0)]);
        assert_eq!(delete(&cluster, "orders", &[(0, 1)]), vec![(3, 0)]);
        assert_eq!(delete(&cluster, "orders", &[(0, -1)]), vec![(5, 0)]);
        assert_eq!(
            cluster.topic("orders").expect("exists").partitions[0].log_start_offset(),
            5
        );
    }

    #[test]
    fn errors_are_per_partition() {
        // Past the high watermark, a negative offset other than -1, an unknown partition and an
        // unknown topic each fail with low watermark -1.
        let (_dir, cluster) = test_cluster();
        cluster
            .create_topic("orders", 1, BTreeMap::new(), Validation::Apply)
            .expect("create");
        append(&cluster, "orders", 2);
        assert_eq!(
            delete(&cluster, "orders", &[(0, 3), (0, -2), (7, 0), (-1, 0)]),
            vec![(-1, 1), (-1, 1), (-1, 3), (-1, 3)]
        );
        assert_eq!(delete(&cluster, "missing", &[(0, 0)]), vec![(-1, 3)]);
    }
}
