//! Fetch (key 1): read record batches from partitions, waiting for data if asked to.
//!
//! Versions 4-16 (record batch v2 only; 13+ name topics by id). Each partition returns
//! whole batches as stored, starting with the batch that holds `fetch_offset` (the
//! client skips records it already has). The first batch of the response is returned
//! whole even when it exceeds the byte limits (KIP-74), so a large batch never stalls a
//! consumer. With less than `min_bytes` available the request waits, woken by appends,
//! until `max_wait_ms`; it never polls.
//!
//! Fetch sessions (KIP-227) are not kept: we answer session id 0, which tells clients to
//! send full fetch requests. Without transactions, the last stable offset is the high
//! watermark and there are no aborted transactions.
//!
//! Errors: FETCH_SESSION_ID_NOT_FOUND (whole request); per partition
//! UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_ID, OFFSET_OUT_OF_RANGE, KAFKA_STORAGE_ERROR.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use riffle_protocol::api::fetch::{
    FetchRequest, FetchResponse, FetchTopic, FetchableTopicResponse, PartitionData,
};
use riffle_protocol::{ErrorCode, Uuid};
use riffle_storage::{FirstBatch, StorageError};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::cluster::{Cluster, Topic};
use crate::config::FETCH_MAX_WAIT_MS_LIMIT;
use crate::partition::Partition;

/// Kafka's isolation level for read_committed consumers.
const READ_COMMITTED: i8 = 1;

/// One requested partition, resolved against the topic registry once per request.
struct Wanted {
    topic: Option<Arc<Topic>>,
    partition: Option<Arc<Partition>>,
    index: i32,
    fetch_offset: i64,
    partition_max_bytes: usize,
}

/// Answers Fetch.
pub async fn handle(cluster: &Cluster, version: i16, request: FetchRequest) -> FetchResponse {
    if request.session_id != 0 {
        // We never hand out sessions, so any id is one we do not know.
        return FetchResponse {
            error_code: ErrorCode::FetchSessionIdNotFound.code(),
            ..Default::default()
        };
    }
    let by_id = version >= 13;
    let topics: Vec<(FetchTopic, Vec<Wanted>)> = request
        .topics
        .into_iter()
        .map(|topic| {
            let wanted = resolve(cluster, &topic, by_id);
            (topic, wanted)
        })
        .collect();
    let max_wait = Duration::from_millis(
        u64::try_from(request.max_wait_ms.clamp(0, FETCH_MAX_WAIT_MS_LIMIT)).unwrap_or(0),
    );
    let deadline = Instant::now() + max_wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let max_bytes = usize::try_from(request.max_bytes).unwrap_or(0);
    let read_committed = request.isolation_level == READ_COMMITTED;
    let waiter = Arc::new(Notify::new());
    loop {
        // Register before reading, so an append between the read and the wait still wakes us.
        for (_, wanted) in &topics {
            for partition in wanted.iter().filter_map(|wanted| wanted.partition.as_ref()) {
                partition.register_waiter(&waiter);
            }
        }
        let (responses, total_bytes, any_error) =
            read_all(&topics, max_bytes, by_id, read_committed);
        let now = Instant::now();
        if total_bytes >= min_bytes || any_error || now >= deadline {
            return FetchResponse {
                responses,
                ..Default::default()
            };
        }
        if tokio::time::timeout(deadline - now, waiter.notified())
            .await
            .is_err()
        {
            let (responses, _, _) = read_all(&topics, max_bytes, by_id, read_committed);
            return FetchResponse {
                responses,
                ..Default::default()
            };
        }
    }
}

fn resolve(cluster: &Cluster, topic: &FetchTopic, by_id: bool) -> Vec<Wanted> {
    let found = if by_id {
        cluster.topic_by_id(&topic.topic_id)
    } else {
        cluster.topic(&topic.topic)
    };
    topic
        .partitions
        .iter()
        .map(|requested| Wanted {
            topic: found.clone(),
            partition: found
                .as_ref()
                .and_then(|found| found.partition(requested.partition).cloned()),
            index: requested.partition,
            fetch_offset: requested.fetch_offset,
            partition_max_bytes: usize::try_from(requested.partition_max_bytes).unwrap_or(0),
        })
        .collect()
}

/// Reads every partition once. Returns the responses, the record bytes in them, and
/// whether any partition had an error (an error answers at once, as in Kafka).
fn read_all(
    topics: &[(FetchTopic, Vec<Wanted>)],
    max_bytes: usize,
    by_id: bool,
    read_committed: bool,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut total_bytes = 0;
    let mut any_error = false;
    let mut responses = Vec::with_capacity(topics.len());
    for (requested, wanted) in topics {
        let mut partitions = Vec::with_capacity(wanted.len());
        for wanted in wanted {
            let limit = wanted
                .partition_max_bytes
                .min(max_bytes.saturating_sub(total_bytes));
            // KIP-74: only the response's first batch may exceed the limits.
            let first_batch = if total_bytes == 0 {
                FirstBatch::AlwaysWhole
            } else {
                FirstBatch::WithinMaxBytes
            };
            let data = read_partition(wanted, limit, first_batch, by_id, read_committed);
            total_bytes += data.records.as_ref().map_or(0, Bytes::len);
            any_error |= data.error_code != ErrorCode::None.code();
            partitions.push(data);
        }
        responses.push(FetchableTopicResponse {
            topic: if by_id {
                String::new()
            } else {
                requested.topic.clone()
            },
            topic_id: if by_id {
                requested.topic_id
            } else {
                Uuid::ZERO
            },
            partitions,
        });
    }
    (responses, total_bytes, any_error)
}

fn read_partition(
    wanted: &Wanted,
    limit_bytes: usize,
    first_batch: FirstBatch,
    by_id: bool,
    read_committed: bool,
) -> PartitionData {
    let unknown = if by_id && wanted.topic.is_none() {
        ErrorCode::UnknownTopicId
    } else {
        ErrorCode::UnknownTopicOrPartition
    };
    let Some(partition) = &wanted.partition else {
        return failed(wanted.index, unknown, -1, -1);
    };
    let log = &partition.log;
    let high_watermark = log.high_watermark();
    let log_start_offset = log.log_start_offset();
    let records = match log.read(wanted.fetch_offset, limit_bytes, first_batch) {
        Ok(records) => records,
        Err(StorageError::OffsetOutOfRange { .. }) => {
            return failed(
                wanted.index,
                ErrorCode::OffsetOutOfRange,
                high_watermark,
                log_start_offset,
            );
        }
        Err(error) => {
            tracing::warn!(topic = %partition.topic, partition = partition.index, %error, "fetch read failed");
            return failed(
                wanted.index,
                ErrorCode::KafkaStorageError,
                high_watermark,
                log_start_offset,
            );
        }
    };
    PartitionData {
        partition_index: wanted.index,
        error_code: ErrorCode::None.code(),
        high_watermark,
        last_stable_offset: high_watermark,
        log_start_offset,
        aborted_transactions: read_committed.then(Vec::new),
        preferred_read_replica: -1,
        records: Some(records),
        ..Default::default()
    }
}

fn failed(
    index: i32,
    code: ErrorCode,
    high_watermark: i64,
    log_start_offset: i64,
) -> PartitionData {
    PartitionData {
        partition_index: index,
        error_code: code.code(),
        high_watermark,
        last_stable_offset: high_watermark,
        log_start_offset,
        aborted_transactions: None,
        preferred_read_replica: -1,
        // Never null: some clients cannot parse a null record set.
        records: Some(Bytes::new()),
        ..Default::default()
    }
}
