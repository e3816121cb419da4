//! Produce (key 0): append record batches to partitions.
//!
//! Versions 3-10 (record batch v2 only). Each partition's batch is checked (one v2 batch,
//! its size against max.message.bytes, CRC-32C, record count, not a control batch, a
//! known codec), every record is walked (inflated as a stream if compressed) to check its
//! framing and the topic's per-record rules, and the idempotent producer's sequence is
//! verified; then the batch bytes are appended as received, with only the base offset
//! rewritten (outside the CRC), or the timestamp too for LogAppendTime topics. A batch
//! refused for some of its records names them in `record_errors` (KIP-467).
//!
//! acks=0 gets no response at all; acks=1 is answered once the bytes are in the page
//! cache; acks=all (-1) once an fsync covers them, when the flush policy is `acks-all`.
//!
//! Transactional batches need the request's `transactional_id`; the batch that opens a
//! producer's transaction in a partition is checked with the transaction coordinator (the
//! partition must have been added to the producer's open transaction), under the
//! partition's producer lock, so it cannot land after the transaction's marker.
//!
//! Errors per partition: UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC_EXCEPTION,
//! MESSAGE_TOO_LARGE, CORRUPT_MESSAGE, INVALID_RECORD (also a keyless record on a
//! compacted topic), UNSUPPORTED_COMPRESSION_TYPE,
//! INVALID_REQUIRED_ACKS, OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID,
//! INVALID_PRODUCER_EPOCH (a fenced producer), INVALID_TXN_STATE (a transactional batch for
//! a partition not in the producer's transaction, or a plain batch while it has one open),
//! INVALID_PRODUCER_ID_MAPPING, INVALID_REQUEST (a transactional batch without a
//! transactional id), KAFKA_STORAGE_ERROR.
//!
//! With `--authorizer acl`: Write on each topic (else TOPIC_AUTHORIZATION_FAILED for its
//! partitions), Write on the transactional id when any batch is transactional (else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every partition), and Create to auto-create a
//! topic (else UNKNOWN_TOPIC_OR_PARTITION, as with auto-creation off). Without it the
//! checks cost one branch per topic and allocate nothing.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use riffle_protocol::ErrorCode;
use riffle_protocol::api::produce::{
    BatchIndexAndErrorMessage, PartitionProduceData, PartitionProduceResponse, ProduceRequest,
    ProduceResponse, TopicProduceResponse,
};
use riffle_protocol::record::{
    Compression, MAX_DECOMPRESSED_BYTES, RecordBatchView, RecordError, TimestampType, recompress,
    set_log_append_time,
};
use tokio::runtime::RuntimeFlavor;
use tracing::warn;

use crate::cluster::{Cluster, Topic, TopicError, now_ms};
use crate::config::FlushPolicy;
use crate::handler::{Access, RequestContext};
use crate::partition::{Appended, Partition, SyncError};
use crate::security::acl::{AclOperation, ResourceType};
use crate::topic_config::CompressionType;

/// A partition's outcome before the durability wait.
#[derive(Clone)]
struct Written {
    partition: Arc<Partition>,
    last_offset: i64,
}

/// Answers Produce; `None` for acks=0, which expects no response.
pub async fn handle(
    cluster: &Arc<Cluster>,
    context: &RequestContext,
    version: i16,
    request: ProduceRequest,
) -> Option<ProduceResponse> {
    match append_request(cluster, context, version, request) {
        Acknowledgement::Ready(response) => response,
        Acknowledgement::AfterFsync(wait) => Some(wait.wait().await),
    }
}

/// What remains of a produce request once its batches are appended.
///
/// Appending is the in-order half of Produce: a connection appends its requests one after
/// the other, so an idempotent producer's batches land in the order they were sent. The
/// fsync wait of acks=all is the other half, and may overlap with the appends of the
/// requests that follow, which then share one fsync (group commit in `Log::sync_through`).
#[must_use = "the producer waits for this acknowledgement"]
pub enum Acknowledgement {
    /// Nothing to wait for (acks=0 or 1, or a flush policy that does not fsync per
    /// request): the response, or `None` for acks=0, which expects none.
    Ready(Option<ProduceResponse>),
    /// acks=all under the `acks-all` flush policy: answered once an fsync covers every
    /// appended batch.
    AfterFsync(FsyncWait),
}

/// The responses of an acks=all request whose batches are appended but not yet durable.
#[must_use = "the producer waits for this acknowledgement"]
pub struct FsyncWait {
    responses: Vec<TopicProduceResponse>,
    to_sync: Vec<Written>,
}

impl FsyncWait {
    /// Waits for fsyncs covering every appended batch; a partition whose fsync failed is
    /// answered KAFKA_STORAGE_ERROR.
    pub async fn wait(self) -> ProduceResponse {
        let FsyncWait {
            mut responses,
            to_sync,
        } = self;
        wait_until_durable(to_sync, &mut responses).await;
        ProduceResponse {
            responses,
            ..Default::default()
        }
    }
}

/// Checks and appends every partition's batch; does not wait for any fsync.
pub fn append_request(
    cluster: &Arc<Cluster>,
    context: &RequestContext,
    _version: i16,
    request: ProduceRequest,
) -> Acknowledgement {
    let acks = request.acks;
    let now_ms = now_ms();
    let access = context.access(cluster);
    // Kafka refuses every partition of a request with transactional batches when the
    // principal may not write the transactional id.
    let transaction_denied =
        access.is_enforced() && !transactional_write_allowed(&access, &request);
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut to_sync = Vec::new();
    // Partitions whose topic's flush.messages this append reached: fsynced whatever acks.
    let mut flush_due = Vec::new();
    for topic_data in request.topic_data {
        let denial = if transaction_denied {
            Some(ErrorCode::TransactionalIdAuthorizationFailed)
        } else if !access.allows(AclOperation::Write, ResourceType::Topic, &topic_data.name) {
            Some(ErrorCode::TopicAuthorizationFailed)
        } else {
            None
        };
        let topic = match denial {
            None => writable_topic(cluster, &access, &topic_data.name),
            Some(code) => Err(TopicError {
                code,
                message: String::new(),
            }),
        };
        let mut partition_responses = Vec::with_capacity(topic_data.partition_data.len());
        for data in topic_data.partition_data {
            let index = data.index;
            let outcome = if let Some(code) = denial {
                Err(denied(code))
            } else if !matches!(acks, -1..=1) {
                Err(rejected(
                    ErrorCode::InvalidRequiredAcks,
                    "acks must be -1, 0 or 1",
                ))
            } else if Cluster::is_internal_topic(&topic_data.name) {
                Err(rejected(
                    ErrorCode::InvalidTopicException,
                    "internal topics are written by the broker only",
                ))
            } else {
                let transactional_id = request.transactional_id.as_deref();
                match &topic {
                    Ok(topic) => {
                        produce_to_partition(cluster, topic, transactional_id, data, now_ms)
                    }
                    Err(error) => Err(rejected(error.code, &error.message)),
                }
            };
            partition_responses.push(match outcome {
                Ok((response, appended)) => {
                    // The unsynced count takes the log's sync lock: asked only of topics
                    // that set flush.messages.
                    if let (Some(written), Ok(topic)) = (&appended, &topic)
                        && topic.config.flush_messages() != i64::MAX
                        && written.partition.unsynced_offsets() >= topic.config.flush_messages()
                    {
                        flush_due.push(written.clone());
                    }
                    to_sync.extend(appended);
                    response
                }
                Err(response) => PartitionProduceResponse { index, ..response },
            });
        }
        responses.push(TopicProduceResponse {
            name: topic_data.name,
            partition_responses,
        });
    }
    acknowledgement(cluster, acks, responses, to_sync, flush_due)
}

/// Whether the principal may write the request's transactional batches: true when there
/// are none, as Kafka checks only requests that carry some (their first batch per
/// partition says so); parsing a batch header here allocates nothing.
fn transactional_write_allowed(access: &Access<'_>, request: &ProduceRequest) -> bool {
    let transactional = request
        .topic_data
        .iter()
        .flat_map(|topic| &topic.partition_data)
        .filter_map(|data| data.records.as_ref())
        .any(|records| {
            RecordBatchView::parse_first(records).is_ok_and(|batch| batch.is_transactional())
        });
    !transactional
        || request
            .transactional_id
            .as_deref()
            .is_some_and(|transactional_id| {
                access.allows(
                    AclOperation::Write,
                    ResourceType::TransactionalId,
                    transactional_id,
                )
            })
}

/// The topic a produce appends to, created with the defaults if it does not exist and
/// auto-creation is on. With an authorizer, creating needs Create (on the cluster or the
/// topic), as Metadata's auto-creation does in Kafka; without it the topic is unknown, as
/// when auto-creation is off.
fn writable_topic(
    cluster: &Cluster,
    access: &Access<'_>,
    name: &str,
) -> Result<Arc<Topic>, TopicError> {
    if access.is_enforced()
        && cluster.config.auto_create_topics
        && cluster.topic(name).is_none()
        && !access.may_create_topic(name)
    {
        return Err(TopicError {
            code: ErrorCode::UnknownTopicOrPartition,
            message: format!("unknown topic '{name}'"),
        });
    }
    match cluster.topic(name) {
        Some(topic) => Ok(topic),
        // Creating fsyncs the metadata log.
        None => off_the_async_worker(|| cluster.topic_or_auto_create(name)),
    }
}

/// A partition refused by the authorizer: Kafka answers only the code.
fn denied(code: ErrorCode) -> PartitionProduceResponse {
    PartitionProduceResponse {
        error_code: code.code(),
        base_offset: -1,
        error_message: None,
        ..Default::default()
    }
}

/// Decides what the appended request waits for before it is answered.
fn acknowledgement(
    cluster: &Cluster,
    acks: i16,
    responses: Vec<TopicProduceResponse>,
    to_sync: Vec<Written>,
    flush_due: Vec<Written>,
) -> Acknowledgement {
    if acks == 0 {
        // No answer to hold back; the fsync runs on its own (its outcome has no listener).
        for written in flush_due {
            drop(written.partition.request_sync(written.last_offset));
        }
        return Acknowledgement::Ready(None);
    }
    if acks == -1 && cluster.config.flush_policy == FlushPolicy::AcksAll {
        return Acknowledgement::AfterFsync(FsyncWait { responses, to_sync });
    }
    if !flush_due.is_empty() {
        // flush.messages: Kafka fsyncs inside the append, so the answer follows the fsync.
        return Acknowledgement::AfterFsync(FsyncWait {
            responses,
            to_sync: flush_due,
        });
    }
    Acknowledgement::Ready(Some(ProduceResponse {
        responses,
        ..Default::default()
    }))
}

fn rejected(code: ErrorCode, message: &str) -> PartitionProduceResponse {
    PartitionProduceResponse {
        error_code: code.code(),
        base_offset: -1,
        error_message: Some(message.to_string()),
        ..Default::default()
    }
}

/// Checks and appends one partition's batch.
fn produce_to_partition(
    cluster: &Cluster,
    topic: &Topic,
    transactional_id: Option<&str>,
    data: PartitionProduceData,
    now_ms: i64,
) -> Result<(PartitionProduceResponse, Option<Written>), PartitionProduceResponse> {
    let Some(partition) = usize::try_from(data.index)
        .ok()
        .and_then(|index| topic.partitions.get(index))
    else {
        return Err(rejected(
            ErrorCode::UnknownTopicOrPartition,
            "no such partition",
        ));
    };
    let records = data.records.unwrap_or_default();
    let max_message_bytes = topic.config.max_message_bytes();
    if records.len() > max_message_bytes {
        let message = format!(
            "batch of {} bytes exceeds max.message.bytes {max_message_bytes}",
            records.len()
        );
        return Err(rejected(ErrorCode::MessageTooLarge, &message));
    }
    let batch = validate_batch(records)?;
    // Most appends are a page-cache write and stay on the async worker. Work that blocks
    // (inflating or recompressing records, a segment roll's fsyncs, rebuilding producer state)
    // leaves it, as the admin handlers' disk work does.
    let inflates = batch.compression() != Ok(Compression::None)
        || target_codec(topic.config.compression_type())
            .is_some_and(|codec| batch.compression() != Ok(codec));
    let append = || {
        check_and_append(
            cluster,
            topic,
            partition,
            transactional_id,
            data.index,
            &batch,
            now_ms,
        )
    };
    if inflates || partition.append_may_block(&batch, now_ms) {
        off_the_async_worker(append)
    } else {
        append()
    }
}

/// Checks the records of a batch whose header is valid, and appends it.
fn check_and_append(
    cluster: &Cluster,
    topic: &Topic,
    partition: &Arc<Partition>,
    transactional_id: Option<&str>,
    partition_index: i32,
    batch: &RecordBatchView,
    now_ms: i64,
) -> Result<(PartitionProduceResponse, Option<Written>), PartitionProduceResponse> {
    check_records(batch, topic, partition_index, now_ms)?;
    // A topic whose compression.type names another codec stores the batch recompressed,
    // as Kafka does.
    let recompressed = match target_codec(topic.config.compression_type()) {
        Some(codec) if batch.compression() != Ok(codec) => Some(
            recompress(batch, codec)
                .map_err(|error| rejected(ErrorCode::CorruptMessage, &error.to_string()))?,
        ),
        _ => None,
    };
    let log_append_time = topic.config.uses_log_append_time();
    // Only a LogAppendTime topic changes bytes the CRC covers, which needs a copy of its own;
    // otherwise the batch is written from the request's buffer (or the recompressed one).
    let rewritten = if log_append_time {
        let source = recompressed.as_deref().unwrap_or(batch.as_bytes());
        let mut bytes = BytesMut::from(source);
        set_log_append_time(&mut bytes, now_ms)
            .map_err(|error| rejected(ErrorCode::CorruptMessage, &error.to_string()))?;
        Some(bytes.freeze())
    } else {
        recompressed
    };
    if batch.is_transactional() && transactional_id.is_none() {
        return Err(rejected(
            ErrorCode::InvalidRequest,
            "a transactional batch needs the request's transactional_id",
        ));
    }
    let verify_transaction = |producer_id, producer_epoch| {
        let transactional_id = transactional_id.unwrap_or_default();
        cluster.transactions().verify_partition(
            transactional_id,
            producer_id,
            producer_epoch,
            &topic.name,
            partition_index,
        )
    };
    let bytes = rewritten.as_deref().unwrap_or(batch.as_bytes());
    let appended = partition
        .append_batch(batch, bytes, now_ms, &verify_transaction)
        .map_err(|error| rejected(error.code, &error.message))?;
    // A duplicate wrote nothing, so it counts nothing. The header's record count was
    // checked against the records above.
    if matches!(appended, Appended::New(_)) {
        let records = u64::try_from(batch.records_count()).unwrap_or(0);
        partition.traffic().appended(bytes.len(), records);
    }
    let base_offset = appended.base_offset();
    let response = PartitionProduceResponse {
        index: partition_index,
        error_code: ErrorCode::None.code(),
        base_offset,
        log_append_time_ms: if log_append_time { now_ms } else { -1 },
        log_start_offset: partition.log_start_offset(),
        ..Default::default()
    };
    let appended = Written {
        partition: partition.clone(),
        last_offset: base_offset + i64::from(batch.last_offset_delta()),
    };
    Ok((response, Some(appended)))
}

/// The checks Kafka makes on a v2 batch's header.
fn validate_batch(records: Bytes) -> Result<RecordBatchView, PartitionProduceResponse> {
    let corrupt = |error: RecordError| match error {
        RecordError::TrailingBytes(_) => rejected(
            ErrorCode::InvalidRecord,
            "Produce v3+ takes exactly one record batch per partition",
        ),
        RecordError::BadMagic(_) => {
            rejected(ErrorCode::UnsupportedForMessageFormat, &error.to_string())
        }
        other => rejected(ErrorCode::CorruptMessage, &other.to_string()),
    };
    let batch = RecordBatchView::parse(records).map_err(corrupt)?;
    batch.verify_crc().map_err(corrupt)?;
    if batch.compression().is_err() {
        return Err(rejected(
            ErrorCode::UnsupportedCompressionType,
            "unknown compression codec",
        ));
    }
    if batch.is_control() {
        return Err(rejected(
            ErrorCode::InvalidRecord,
            "clients may not write control batches",
        ));
    }
    if batch.records_count() < 1
        || i64::from(batch.last_offset_delta()) != i64::from(batch.records_count()) - 1
    {
        return Err(rejected(
            ErrorCode::CorruptMessage,
            "records_count does not match last_offset_delta",
        ));
    }
    Ok(batch)
}

/// Walks every record, as Kafka's log validator does: a batch whose records do not frame
/// (or do not inflate) is CORRUPT_MESSAGE, so no consumer ever meets it. Records a topic
/// refuses one by one (no key on a compacted topic) fail the batch with their indexes in
/// `record_errors` (KIP-467), so the client fails only those and retries the rest.
fn check_records(
    batch: &RecordBatchView,
    topic: &Topic,
    partition_index: i32,
    now_ms: i64,
) -> Result<(), PartitionProduceResponse> {
    let needs_key = topic.config.is_compacted();
    let mut keyless = Vec::new();
    // message.timestamp.before/after.max.ms bound CreateTime timestamps around the broker's
    // clock; LogAppendTime batches are stamped by the broker anyway.
    let create_time = batch.timestamp_type() == TimestampType::CreateTime;
    let earliest_ms = now_ms.saturating_sub(topic.config.timestamp_before_max_ms());
    let latest_ms = now_ms.saturating_add(topic.config.timestamp_after_max_ms());
    let mut out_of_range = Vec::new();
    let scanned = batch.scan_records(MAX_DECOMPRESSED_BYTES, |record| {
        if needs_key && !record.has_key {
            keyless.push(record.batch_index);
        }
        if create_time && !(earliest_ms..=latest_ms).contains(&record.timestamp_ms) {
            out_of_range.push(record.batch_index);
        }
    });
    scanned.map_err(|error| match error {
        RecordError::UnexpectedOffsetDelta { .. } => {
            rejected(ErrorCode::InvalidRecord, &error.to_string())
        }
        other => rejected(ErrorCode::CorruptMessage, &other.to_string()),
    })?;
    if !keyless.is_empty() {
        let message = format!(
            "Compacted topic cannot accept message without key in topic partition {}-{partition_index}.",
            topic.name
        );
        return Err(refused_records(
            ErrorCode::InvalidRecord,
            &keyless,
            &message,
        ));
    }
    if !out_of_range.is_empty() {
        let message = format!(
            "Timestamp of the record is out of range. The timestamp should be within \
             [{earliest_ms}, {latest_ms}] (message.timestamp.before.max.ms, \
             message.timestamp.after.max.ms)"
        );
        return Err(refused_records(
            ErrorCode::InvalidTimestamp,
            &out_of_range,
            &message,
        ));
    }
    Ok(())
}

/// The codec a topic's compression.type stores batches in; `None` keeps the producer's.
fn target_codec(compression_type: CompressionType) -> Option<Compression> {
    match compression_type {
        CompressionType::Producer => None,
        CompressionType::Uncompressed => Some(Compression::None),
        CompressionType::Gzip => Some(Compression::Gzip),
        CompressionType::Snappy => Some(Compression::Snappy),
        CompressionType::Lz4 => Some(Compression::Lz4),
        CompressionType::Zstd => Some(Compression::Zstd),
    }
}

/// A batch refused for some of its records (KIP-467): each is named by its index, and
/// the summary says how many.
fn refused_records(
    code: ErrorCode,
    batch_indexes: &[i32],
    message: &str,
) -> PartitionProduceResponse {
    let summary = format!(
        "{} record(s) of the batch were refused; the first: {message}",
        batch_indexes.len()
    );
    PartitionProduceResponse {
        record_errors: batch_indexes
            .iter()
            .map(|&batch_index| BatchIndexAndErrorMessage {
                batch_index,
                batch_index_error_message: Some(message.to_string()),
            })
            .collect(),
        ..rejected(code, &summary)
    }
}

/// Runs `work` where it cannot stall other connections' tasks: through `block_in_place`
/// on the multi-threaded runtime the broker serves on, inline elsewhere (unit tests).
fn off_the_async_worker<T>(work: impl FnOnce() -> T) -> T {
    let multi_threaded = tokio::runtime::Handle::try_current()
        .is_ok_and(|runtime| runtime.runtime_flavor() == RuntimeFlavor::MultiThread);
    if multi_threaded {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// Waits for fsyncs covering every appended batch. Every partition's request is queued
/// before the first wait, so the partitions' fsyncs run side by side; see
/// `Partition::request_sync` for how requests share them.
async fn wait_until_durable(appended: Vec<Written>, responses: &mut [TopicProduceResponse]) {
    let syncs: Vec<_> = appended
        .into_iter()
        .map(|appended| {
            let sync = appended.partition.request_sync(appended.last_offset);
            (appended.partition, sync)
        })
        .collect();
    for (partition, sync) in syncs {
        // A dropped sender means the fsync task panicked: nothing is proven durable.
        let error = match sync.await {
            Ok(Ok(())) => continue,
            Ok(Err(error)) => error,
            Err(_) => SyncError::TaskLost,
        };
        warn!(topic = %partition.topic, partition = partition.index, %error, "fsync failed");
        mark_failed(responses, &partition, &error.to_string());
    }
}

fn mark_failed(responses: &mut [TopicProduceResponse], partition: &Partition, message: &str) {
    let matching = responses
        .iter_mut()
        .filter(|topic| topic.name == partition.topic)
        .flat_map(|topic| topic.partition_responses.iter_mut())
        .filter(|response| response.index == partition.index);
    for response in matching {
        *response = PartitionProduceResponse {
            index: partition.index,
            ..rejected(ErrorCode::KafkaStorageError, message)
        };
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use riffle_protocol::api::produce::TopicProduceData;
    use riffle_protocol::record::{Compression, RecordBatchBuilder};

    use super::*;
    use crate::cluster::Validation;
    use crate::testing::{open_test_cluster, test_cluster};

    fn idempotent_batch(base_sequence: i32, records_count: i32) -> Bytes {
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder.producer(42, 0, base_sequence);
        for index in 0..records_count {
            builder.append(1_000 + i64::from(index), None, Some(b"value"), &[]);
        }
        builder.build().expect("a valid batch")
    }

    fn produce(cluster: &Arc<Cluster>, batch: Bytes) -> PartitionProduceResponse {
        let request = ProduceRequest {
            acks: -1,
            timeout_ms: 1_000,
            topic_data: vec![TopicProduceData {
                name: "events".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(batch),
                }],
            }],
            ..Default::default()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let response = runtime
            .block_on(handle(
                cluster,
                &crate::handler::RequestContext::internal(cluster),
                9,
                request,
            ))
            .expect("acks=-1 answers");
        response.responses[0].partition_responses[0].clone()
    }

    #[test]
    fn a_retry_after_restart_is_acknowledged_as_a_duplicate() {
        // Producer state is rebuilt from the log after a restart, so a batch the client
        // resends (its acknowledgement was lost) is not appended twice, nor counted twice
        // in the topic's traffic.
        let (dir, cluster) = test_cluster();
        cluster
            .create_topic("events", 1, BTreeMap::new(), Validation::Apply)
            .expect("create");
        let cluster = Arc::new(cluster);
        assert_eq!(produce(&cluster, idempotent_batch(0, 3)).base_offset, 0);
        assert_eq!(produce(&cluster, idempotent_batch(3, 2)).base_offset, 3);
        let metrics = cluster.metrics().encode().expect("encodes");
        assert!(
            metrics.contains("riffle_topic_records_in_total{topic=\"events\"} 5\n"),
            "{metrics}"
        );
        drop(cluster);

        let cluster = Arc::new(open_test_cluster(dir.path()));
        let retry = produce(&cluster, idempotent_batch(3, 2));
        // The duplicate wrote nothing, so the topic's traffic counts nothing.
        let metrics = cluster.metrics().encode().expect("encodes");
        assert!(
            metrics.contains("riffle_topic_records_in_total{topic=\"events\"} 0\n"),
            "{metrics}"
        );
        assert_eq!((retry.error_code, retry.base_offset), (0, 3));
        let next = produce(&cluster, idempotent_batch(5, 1));
        assert_eq!((next.error_code, next.base_offset), (0, 5));
        let gap = produce(&cluster, idempotent_batch(9, 1));
        assert_eq!(gap.error_code, ErrorCode::OutOfOrderSequenceNumber.code());
        assert_eq!(
            cluster.topic("events").expect("topic").partitions[0].next_offset(),
            6
        );
    }

    #[test]
    fn a_compacted_topic_refuses_records_without_a_key() {
        let (_dir, cluster) = test_cluster();
        let configs = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
        cluster
            .create_topic("events", 1, configs, Validation::Apply)
            .expect("create");
        let cluster = Arc::new(cluster);
        let batch = |keys: &[Option<&[u8]>]| {
            let mut builder = RecordBatchBuilder::new(Compression::Lz4);
            for key in keys {
                builder.append(1_000, *key, Some(b"value"), &[]);
            }
            builder.build().expect("a valid batch")
        };
        // KIP-467: the refusal names the keyless records, so the client fails only them.
        let mixed = produce(&cluster, batch(&[Some(b"a"), None, Some(b"b"), None]));
        assert_eq!(mixed.error_code, ErrorCode::InvalidRecord.code());
        let indexes: Vec<i32> = mixed
            .record_errors
            .iter()
            .map(|error| error.batch_index)
            .collect();
        assert_eq!(indexes, [1, 3]);
        let keyed = produce(&cluster, batch(&[Some(b"key")]));
        assert_eq!((keyed.error_code, keyed.base_offset), (0, 0));
    }

    #[test]
    fn compression_type_recompresses_and_timestamp_bounds_name_the_records() {
        let (_dir, cluster) = test_cluster();
        let configs = BTreeMap::from([
            ("compression.type".to_string(), "zstd".to_string()),
            (
                "message.timestamp.before.max.ms".to_string(),
                "3600000".to_string(),
            ),
        ]);
        cluster
            .create_topic("events", 1, configs, Validation::Apply)
            .expect("create");
        let cluster = Arc::new(cluster);
        let now = now_ms();
        let batch = |timestamps: &[i64]| {
            let mut builder = RecordBatchBuilder::new(Compression::Gzip);
            for timestamp in timestamps {
                builder.append(*timestamp, Some(b"k"), Some(b"value"), &[]);
            }
            builder.build().expect("a valid batch")
        };
        let two_days_ms = 2 * 24 * 3_600_000;
        let stale = produce(&cluster, batch(&[now, now - two_days_ms, now]));
        assert_eq!(stale.error_code, ErrorCode::InvalidTimestamp.code());
        let indexes: Vec<i32> = stale
            .record_errors
            .iter()
            .map(|error| error.batch_index)
            .collect();
        assert_eq!(indexes, [1]);

        let fresh = produce(&cluster, batch(&[now, now + 1]));
        assert_eq!((fresh.error_code, fresh.base_offset), (0, 0));
        let topic = cluster.topic("events").expect("created");
        let stored = topic.partitions[0]
            .read(0, 1 << 20, riffle_storage::FirstBatch::AlwaysWhole)
            .expect("read");
        let view = RecordBatchView::parse_first(&stored).expect("a batch");
        assert_eq!(
            view.compression(),
            Ok(Compression::Zstd),
            "stored as the topic says"
        );
        view.verify_crc().expect("a fresh CRC");
        assert_eq!(view.records().expect("records").len(), 2);
    }

    #[test]
    fn a_batch_whose_records_do_not_inflate_is_refused_and_not_stored() {
        // gzip named, CRC valid, payload not gzip: Kafka decompresses to find out.
        let (_dir, cluster) = test_cluster();
        let cluster = Arc::new(cluster);
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder.append(1_000, Some(b"k"), Some(b"not gzip at all"), &[]);
        let mut bytes = BytesMut::from(&builder.build().expect("a valid batch")[..]);
        // Flip the codec bits to gzip and fix up the CRC, as a buggy client would send it.
        let attributes_position = 21;
        bytes[attributes_position + 1] |= Compression::Gzip.id() as u8;
        let crc = crc32c::crc32c(&bytes[attributes_position..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        let refused = produce(&cluster, bytes.freeze());
        assert_eq!(
            refused.error_code,
            ErrorCode::CorruptMessage.code(),
            "{refused:?}"
        );
        let topic = cluster.topic("events").expect("auto-created");
        assert_eq!(topic.partitions[0].next_offset(), 0);
    }

    /// The codes of one acks=1 produce of `batch` to partition 0 of each of `topics`, sent
    /// as `principal` with `transactional_id`.
    fn produce_as(
        cluster: &Arc<Cluster>,
        principal: &str,
        transactional_id: Option<&str>,
        topics: &[&str],
        batch: &Bytes,
    ) -> Vec<i16> {
        let request = ProduceRequest {
            transactional_id: transactional_id.map(str::to_string),
            acks: 1,
            timeout_ms: 1_000,
            topic_data: topics
                .iter()
                .map(|name| TopicProduceData {
                    name: name.to_string(),
                    partition_data: vec![PartitionProduceData {
                        index: 0,
                        records: Some(batch.clone()),
                    }],
                })
                .collect(),
        };
        let context = crate::testing::context_of(cluster, principal);
        let Acknowledgement::Ready(Some(response)) = append_request(cluster, &context, 9, request)
        else {
            panic!("acks=1 is answered at once");
        };
        let partitions = response
            .responses
            .iter()
            .flat_map(|topic| &topic.partition_responses);
        partitions.map(|partition| partition.error_code).collect()
    }

    #[test]
    fn produce_needs_write_on_the_topic_and_create_to_auto_create() {
        // Proves Produce's checks: without Write the partition is TOPIC_AUTHORIZATION_FAILED
        // and the other topic still succeeds; an unknown topic is created only with Create.
        use crate::security::acl::AclOperation::{Create, Write};
        let (_dir, cluster) = crate::testing::acl_cluster(&[]);
        cluster
            .create_topic("allowed", 1, BTreeMap::new(), Validation::Apply)
            .expect("create");
        cluster
            .create_topic("closed", 1, BTreeMap::new(), Validation::Apply)
            .expect("create");
        let cluster = Arc::new(cluster);
        crate::testing::allow(&cluster, "topic:literal:allowed", "User:alice", Write);
        crate::testing::allow(&cluster, "topic:prefixed:new-", "User:alice", Write);
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder.append(1_000, None, Some(b"value"), &[]);
        let batch = builder.build().expect("a batch");
        let denied = ErrorCode::TopicAuthorizationFailed.code();
        let codes = produce_as(&cluster, "User:alice", None, &["allowed", "closed"], &batch);
        assert_eq!(codes, vec![0, denied]);
        let unknown = ErrorCode::UnknownTopicOrPartition.code();
        let codes = produce_as(&cluster, "User:alice", None, &["new-topic"], &batch);
        assert_eq!(codes, vec![unknown]);
        assert!(cluster.topic("new-topic").is_none());
        crate::testing::allow(&cluster, "topic:prefixed:new-", "User:alice", Create);
        let codes = produce_as(&cluster, "User:alice", None, &["new-topic"], &batch);
        assert_eq!(codes, vec![0]);
        let codes = produce_as(&cluster, "User:bob", None, &["allowed"], &batch);
        assert_eq!(codes, vec![denied]);
    }

    #[test]
    fn transactional_batches_need_write_on_the_transactional_id() {
        // A request with a transactional batch is refused on every partition with
        // TRANSACTIONAL_ID_AUTHORIZATION_FAILED when the principal may not write the id,
        // even on topics it may write; with the id allowed, the check moves on.
        use crate::security::acl::AclOperation::Write;
        let (_dir, cluster) = crate::testing::acl_cluster(&[]);
        cluster
            .create_topic("t", 1, BTreeMap::new(), Validation::Apply)
            .expect("create");
        let cluster = Arc::new(cluster);
        crate::testing::allow(&cluster, "topic:literal:t", "User:alice", Write);
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder.producer(7, 0, 0).transactional();
        builder.append(1_000, None, Some(b"value"), &[]);
        let batch = builder.build().expect("a batch");
        let refused = ErrorCode::TransactionalIdAuthorizationFailed.code();
        let codes = produce_as(&cluster, "User:alice", Some("tx"), &["t"], &batch);
        assert_eq!(codes, vec![refused]);
        crate::testing::allow(&cluster, "transactional_id:literal:tx", "User:alice", Write);
        let codes = produce_as(&cluster, "User:alice", Some("tx"), &["t"], &batch);
        assert_ne!(codes, vec![refused]);
    }
}
