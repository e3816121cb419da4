//! ListOffsets (key 2): finds an offset in each partition by time, or one of its ends.
//! We advertise versions 1-8: v1 answers one offset with its timestamp; v2 adds
//! `isolation_level` and the throttle time; v4 adds leader epochs; v6 is the first
//! flexible version; v7 adds MAX_TIMESTAMP (-3); v8 adds EARLIEST_LOCAL (-4). Version 0
//! is not advertised; if it arrives it gets the single offset in `old_style_offsets`.
//!
//! The `timestamp` of each partition asks for:
//! - -2 EARLIEST and -4 EARLIEST_LOCAL: the log start offset (all storage is local);
//! - -1 LATEST, and -5 LATEST_TIERED kept simple the same way: the high watermark, or for
//!   `isolation_level` read_committed (1) the last stable offset, below which every
//!   transaction has ended;
//! - -3 MAX_TIMESTAMP: the first record with the largest timestamp;
//! - a time >= 0: the first record whose timestamp is at least that;
//! - any other negative value: nothing (offset -1), as Kafka answers an unknown query.
//!
//! Only records below the high watermark (read_committed: the last stable offset) are found. The two ends answer timestamp -1, and
//! a query that finds nothing answers offset -1 and timestamp -1. Leader epochs are -1,
//! as in Metadata.
//!
//! Errors per partition: TOPIC_AUTHORIZATION_FAILED (with `--authorizer acl`, the principal
//! may not describe the topic), UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST (the partition
//! is asked for twice), KAFKA_STORAGE_ERROR (the log or a stored batch cannot be read).

use std::collections::HashMap;

use bytes::Bytes;
use riffle_protocol::ErrorCode;
use riffle_protocol::api::list_offsets::{
    ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse, ListOffsetsTopic,
    ListOffsetsTopicResponse,
};
use riffle_protocol::record::{Record, RecordBatchView};
use riffle_storage::StorageError;
use tracing::warn;

use crate::cluster::Cluster;
use crate::handler::RequestContext;
use crate::partition::Partition;
use crate::security::acl::{AclOperation, ResourceType};

/// The log start offset.
const EARLIEST_TIMESTAMP: i64 = -2;
/// The high watermark.
const LATEST_TIMESTAMP: i64 = -1;
/// The record with the largest timestamp (KIP-734).
const MAX_TIMESTAMP: i64 = -3;
/// The start of the local log (KIP-405); all of ours is local.
const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
/// The last offset in tiered storage (KIP-1005); we have none.
const LATEST_TIERED_TIMESTAMP: i64 = -5;
/// Kafka's "no leader epoch".
const NO_LEADER_EPOCH: i32 = -1;
/// Kafka's isolation level of read_committed readers.
const READ_COMMITTED: i8 = 1;
/// The last version that answers in `old_style_offsets`.
const LAST_VERSION_WITH_OLD_STYLE_OFFSETS: i16 = 0;

/// What a lookup found: an offset and the timestamp that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Found {
    offset: i64,
    timestamp_ms: i64,
}

/// The answer when nothing matches.
const NOT_FOUND: Found = Found {
    offset: -1,
    timestamp_ms: -1,
};

/// Answers ListOffsets: one result per requested partition, in request order.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    version: i16,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let read_committed = request.isolation_level == READ_COMMITTED;
    let access = context.access(cluster);
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            if access.allows(AclOperation::Describe, ResourceType::Topic, &topic.name) {
                list_topic(cluster, version, read_committed, topic)
            } else {
                refused_topic(version, topic)
            }
        })
        .collect();
    ListOffsetsResponse {
        throttle_time_ms: 0,
        topics,
    }
}

fn list_topic(
    cluster: &Cluster,
    version: i16,
    read_committed: bool,
    wanted: ListOffsetsTopic,
) -> ListOffsetsTopicResponse {
    let topic = cluster.topic(&wanted.name);
    let mut occurrences: HashMap<i32, usize> = HashMap::new();
    for partition in &wanted.partitions {
        *occurrences.entry(partition.partition_index).or_default() += 1;
    }
    let partitions = wanted
        .partitions
        .iter()
        .map(|partition| {
            let index = partition.partition_index;
            // Kafka answers INVALID_REQUEST to every copy of a repeated partition.
            let found = if occurrences.get(&index).copied().unwrap_or(0) > 1 {
                Err(ErrorCode::InvalidRequest)
            } else {
                match topic.as_deref().and_then(|topic| topic.partition(index)) {
                    Some(found_partition) => {
                        lookup(found_partition, partition.timestamp, read_committed)
                    }
                    None => Err(ErrorCode::UnknownTopicOrPartition),
                }
            };
            partition_response(version, index, found)
        })
        .collect();
    ListOffsetsTopicResponse {
        name: wanted.name,
        partitions,
    }
}

/// A topic the principal may not describe: each partition TOPIC_AUTHORIZATION_FAILED.
fn refused_topic(version: i16, wanted: ListOffsetsTopic) -> ListOffsetsTopicResponse {
    let partitions = wanted
        .partitions
        .iter()
        .map(|partition| {
            let refused = Err(ErrorCode::TopicAuthorizationFailed);
            partition_response(version, partition.partition_index, refused)
        })
        .collect();
    ListOffsetsTopicResponse {
        name: wanted.name,
        partitions,
    }
}

/// Answers one partition's query; see the module doc for what each timestamp means.
fn lookup(partition: &Partition, timestamp: i64, read_committed: bool) -> Result<Found, ErrorCode> {
    let visible_end_offset = match read_committed {
        true => partition
            .last_stable_offset()
            .map_err(|error| storage_error(partition, &error))?,
        false => partition.high_watermark(),
    };
    match timestamp {
        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => Ok(Found {
            offset: partition.log_start_offset(),
            timestamp_ms: -1,
        }),
        LATEST_TIMESTAMP | LATEST_TIERED_TIMESTAMP => Ok(Found {
            offset: visible_end_offset,
            timestamp_ms: -1,
        }),
        MAX_TIMESTAMP => {
            let batch = partition
                .batch_with_max_timestamp()
                .map_err(|error| storage_error(partition, &error))?;
            let records = decoded_records(partition, batch)?;
            // The first record holding the batch's largest timestamp, as Kafka since KAFKA-16310.
            let best = records
                .iter()
                .fold(None::<&Record>, |best, record| match best {
                    Some(best) if best.timestamp_ms >= record.timestamp_ms => Some(best),
                    _ => Some(record),
                });
            Ok(visible(visible_end_offset, best))
        }
        timestamp_ms if timestamp_ms >= 0 => {
            let batch = partition
                .batch_for_timestamp(timestamp_ms)
                .map_err(|error| storage_error(partition, &error))?;
            let records = decoded_records(partition, batch)?;
            let log_start_offset = partition.log_start_offset();
            let first = records.iter().find(|record| {
                record.offset >= log_start_offset && record.timestamp_ms >= timestamp_ms
            });
            Ok(visible(visible_end_offset, first))
        }
        _ => Ok(NOT_FOUND),
    }
}

/// The records of a batch the log returned; none if it returned no batch. A stored batch
/// that does not decode is a storage error: it passed the checks when it was appended.
fn decoded_records(partition: &Partition, batch: Option<Bytes>) -> Result<Vec<Record>, ErrorCode> {
    let Some(bytes) = batch else {
        return Ok(Vec::new());
    };
    RecordBatchView::parse_first(&bytes)
        .and_then(|view| view.records())
        .map_err(|error| {
            let topic = &partition.topic;
            warn!(%topic, partition = partition.index, %error, "stored batch does not decode");
            ErrorCode::KafkaStorageError
        })
}

/// The record as an answer, if a reader may see it: Kafka only answers offsets below the
/// high watermark (the last stable offset for read_committed).
fn visible(visible_end_offset: i64, record: Option<&Record>) -> Found {
    match record {
        Some(record) if record.offset < visible_end_offset => Found {
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
        },
        _ => NOT_FOUND,
    }
}

fn storage_error(partition: &Partition, error: &StorageError) -> ErrorCode {
    let topic = &partition.topic;
    warn!(%topic, partition = partition.index, %error, "ListOffsets cannot read the log");
    ErrorCode::KafkaStorageError
}

fn partition_response(
    version: i16,
    partition_index: i32,
    found: Result<Found, ErrorCode>,
) -> ListOffsetsPartitionResponse {
    let (found, error_code) = match found {
        Ok(found) => (found, ErrorCode::None),
        Err(code) => (NOT_FOUND, code),
    };
    let old_style_offsets = if version <= LAST_VERSION_WITH_OLD_STYLE_OFFSETS && found.offset >= 0 {
        vec![found.offset]
    } else {
        Vec::new()
    };
    ListOffsetsPartitionResponse {
        partition_index,
        error_code: error_code.code(),
        old_style_offsets,
        timestamp: found.timestamp_ms,
        offset: found.offset,
        leader_epoch: NO_LEADER_EPOCH,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use riffle_protocol::api::list_offsets::ListOffsetsPartition;
    use riffle_protocol::record::{Compression, RecordBatchBuilder};

    use super::*;
    use crate::cluster::Validation;
    use crate::testing::test_cluster;

    /// Appends one batch to partition 0 of `topic`, one record per timestamp.
    fn append(cluster: &Cluster, topic: &str, timestamps_ms: &[i64]) {
        let mut builder = RecordBatchBuilder::new(Compression::None);
        for timestamp_ms in timestamps_ms {
            builder.append(*timestamp_ms, None, Some(b"value"), &[]);
        }
        let batch = builder.build().expect("build a batch").to_vec();
        let partition = cluster.topic(topic).expect("exists").partitions[0].clone();
        partition
            .append_records(&batch, 1_700_000_000_000)
            .expect("append");
    }

    /// (offset, timestamp, error code) of each partition of one request, at version 8.
    fn list(cluster: &Cluster, topic: &str, queries: &[(i32, i64)]) -> Vec<(i64, i64, i16)> {
        let partitions = queries
            .iter()
            .map(|(partition_index, timestamp)| ListOffsetsPartition {
                partition_index: *partition_index,
                timestamp: *timestamp,
                ..Default::default()
            })
            .collect();
        let request = ListOffsetsRequest {
            replica_id: -1,
            topics: vec![ListOffsetsTopic {
                name: topic.into(),
                partitions,
            }],
            ..Default::default()
        };
        let response = handle(
            cluster,
            &crate::handler::RequestContext::internal(cluster),
            8,
            request,
        );
        response.topics[0]
            .partitions
            .iter()
            .map(|p| (p.offset, p.timestamp, p.error_code))
            .collect()
    }

    /// (offset, timestamp, error code) of each query of partition 0, one request each.
    fn list_each(cluster: &Cluster, topic: &str, timestamps: &[i64]) -> Vec<(i64, i64, i16)> {
        timestamps
            .iter()
            .flat_map(|timestamp| list(cluster, topic, &[(0, *timestamp)]))
            .collect()
    }

    #[test]
    fn finds_ends_times_and_the_max_timestamp() {
        // Two batches with timestamps 100,300,200 and 300,150: the ends are 0 and 5, time 150
        // finds offset 1 (300), time 301 finds nothing, the max timestamp is offset 1's 300.
        let (_dir, cluster) = test_cluster();
        cluster
            .create_topic("orders", 1, BTreeMap::new(), Validation::Apply)
            .expect("create");
        append(&cluster, "orders", &[100, 300, 200]);
        append(&cluster, "orders", &[300, 150]);
        let timestamps = [-2, -1, -4, 150, 301, -3, -7];
        let expected = vec![
            (0, -1, 0),
            (5, -1, 0),
            (0, -1, 0),
            (1, 300, 0),
            (-1, -1, 0),
            (1, 300, 0),
            (-1, -1, 0),
        ];
        assert_eq!(list_each(&cluster, "orders", &timestamps), expected);
    }

    #[test]
    fn an_empty_log_and_bad_partitions() {
        // An empty log answers 0 for both ends and nothing for time queries; unknown and
        // repeated partitions fail alone.
        let (_dir, cluster) = test_cluster();
        cluster
            .create_topic("empty", 1, BTreeMap::new(), Validation::Apply)
            .expect("create");
        assert_eq!(
            list_each(&cluster, "empty", &[-2, -3, 0]),
            vec![(0, -1, 0), (-1, -1, 0), (-1, -1, 0)]
        );
        assert_eq!(
            list(&cluster, "empty", &[(1, -1), (-1, -1)]),
            vec![(-1, -1, 3), (-1, -1, 3)]
        );
        assert_eq!(
            list(&cluster, "empty", &[(0, -1), (0, -2)]),
            vec![(-1, -1, 42), (-1, -1, 42)]
        );
        assert_eq!(list(&cluster, "missing", &[(0, -1)]), vec![(-1, -1, 3)]);
    }

    #[test]
    fn listing_offsets_needs_describe_on_the_topic() {
        // Without Describe (or an operation implying it) each partition answers
        // TOPIC_AUTHORIZATION_FAILED and offset -1; Read implies Describe.
        let (_dir, cluster) = crate::testing::acl_cluster(&[]);
        cluster
            .create_topic("t", 1, BTreeMap::new(), Validation::Apply)
            .expect("create");
        append(&cluster, "t", &[1_000]);
        let denied = ErrorCode::TopicAuthorizationFailed.code();
        assert_eq!(
            list(&cluster, "t", &[(0, LATEST_TIMESTAMP)]),
            vec![(-1, -1, denied)]
        );
        let anonymous = "User:ANONYMOUS";
        crate::testing::allow(&cluster, "topic:literal:t", anonymous, AclOperation::Read);
        assert_eq!(
            list(&cluster, "t", &[(0, LATEST_TIMESTAMP)]),
            vec![(1, -1, 0)]
        );
    }
}
