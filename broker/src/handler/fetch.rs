//! Fetch (key 1): read record batches from partitions, waiting for data if asked to.
//!
//! Versions 4-16 (record batch v2 only; 13+ name topics by id). Each partition returns
//! whole batches as stored, starting with the batch that holds `fetch_offset` (the
//! client skips records it already has). The first batch of the response is returned
//! whole even when it exceeds the byte limits (KIP-74), so a large batch never stalls a
//! consumer. With less than `min_bytes` available the request waits, woken by appends,
//! until `max_wait_ms`; it never polls.
//!
//! A response holds at most `fetch_max_bytes` of records (Kafka's `fetch.max.bytes`),
//! whatever the request's `max_bytes`, apart from a first batch larger than that.
//!
//! Record sets of at least `SENDFILE_MIN_BYTES` are not read here: the response names
//! their file range (`FetchRecords::Deferred`) and the connection sends it with `sendfile`,
//! so those bytes never pass through user space. Smaller ones are copied, which costs less
//! than the extra system calls.
//!
//! Fetch sessions (KIP-227, from v7): [`crate::fetch_session`] decides what a request reads
//! (its own partitions, or an incremental request's whole session) and which of the
//! partitions read the response carries; this handler only reads and waits in between.
//!
//! Every answer carries the partition's last stable offset: below it, every transaction
//! has ended. A read_committed fetch returns only batches below it, with the aborted
//! transactions that overlap them (from the log's transaction index), so the client drops
//! their records and the control batches; a read_uncommitted one returns everything up to
//! the high watermark.
//!
//! With `--authorizer acl` a consumer needs Read on each topic (one check per topic, no
//! allocation); without it that check is one branch.
//!
//! Errors: FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH,
//! FETCH_SESSION_TOPIC_ID_ERROR (whole request); per partition
//! TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_ID,
//! OFFSET_OUT_OF_RANGE, KAFKA_STORAGE_ERROR.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use riffle_protocol::api::fetch::{
    AbortedTransaction, FetchRequest, FetchResponse, FetchableTopicResponse, PartitionData,
};
use riffle_protocol::{DeferredRecords, ErrorCode, FetchRecords};
use riffle_storage::{FileRange, FirstBatch, StorageError};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::cluster::{Cluster, Topic};
use crate::config::FETCH_MAX_WAIT_MS_LIMIT;
use crate::fetch_session::{FetchResponseParts, RequestedTopic, TopicKey};
use crate::handler::Access;
use crate::handler::RequestContext;
use crate::partition::Partition;
use crate::security::acl::{AclOperation, ResourceType};

/// Kafka's isolation level for read_committed consumers.
const READ_COMMITTED: i8 = 1;

/// Record sets this large go to the socket by `sendfile`; smaller ones are copied. Below
/// this, the copy costs less than the extra writes around the range.
const SENDFILE_MIN_BYTES: usize = 64 * 1024;

/// One requested partition, resolved against the topic registry once per request.
struct Wanted {
    /// The authorizer's refusal (TOPIC_AUTHORIZATION_FAILED), which answers first.
    refused: Option<ErrorCode>,
    topic: Option<Arc<Topic>>,
    partition: Option<Arc<Partition>>,
    index: i32,
    fetch_offset: i64,
    partition_max_bytes: usize,
}

/// Answers Fetch.
pub async fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    version: i16,
    request: FetchRequest,
) -> FetchResponse {
    let session_fetch =
        match cluster
            .fetch_sessions()
            .begin(version, &request, std::time::Instant::now())
        {
            Ok(session_fetch) => session_fetch,
            Err(error) => return response_of(FetchResponseParts::error(error)),
        };
    let by_id = version >= 13;
    let access = context.access(cluster);
    let topics: Vec<(&RequestedTopic, Vec<Wanted>)> = session_fetch
        .topics()
        .iter()
        .map(|topic| (topic, resolve(cluster, &access, topic, by_id)))
        .collect();
    let max_wait = Duration::from_millis(
        u64::try_from(request.max_wait_ms.clamp(0, FETCH_MAX_WAIT_MS_LIMIT)).unwrap_or(0),
    );
    let limits = ReadLimits {
        deadline: Instant::now() + max_wait,
        min_bytes: usize::try_from(request.min_bytes).unwrap_or(0),
        // The broker's cap, as Kafka's fetch.max.bytes: copied record sets live in memory.
        max_bytes: usize::try_from(request.max_bytes)
            .unwrap_or(0)
            .min(cluster.config.fetch_max_bytes),
        by_id,
        read_committed: request.isolation_level == READ_COMMITTED,
    };
    let responses = read_when_ready(&topics, &limits).await;
    drop(topics);
    response_of(session_fetch.respond(responses, std::time::Instant::now()))
}

/// What one Fetch may read and how long it may wait, from the request.
#[derive(Clone, Copy)]
struct ReadLimits {
    deadline: Instant,
    min_bytes: usize,
    max_bytes: usize,
    by_id: bool,
    read_committed: bool,
}

/// Reads every partition, waiting (woken by appends) until there are `min_bytes`, an
/// error, or the deadline. An incremental fetch with nothing new waits the same way.
async fn read_when_ready(
    topics: &[(&RequestedTopic, Vec<Wanted>)],
    limits: &ReadLimits,
) -> Vec<FetchableTopicResponse> {
    let waiter = Arc::new(Notify::new());
    loop {
        // Register before reading, so an append between the read and the wait still wakes us.
        for (_, wanted) in topics {
            for partition in wanted.iter().filter_map(|wanted| wanted.partition.as_ref()) {
                partition.register_waiter(&waiter);
            }
        }
        let read = read_all(topics, limits);
        let now = Instant::now();
        if read.total_bytes >= limits.min_bytes || read.any_error || now >= limits.deadline {
            return read.answered();
        }
        if tokio::time::timeout(limits.deadline - now, waiter.notified())
            .await
            .is_err()
        {
            return read_all(topics, limits).answered();
        }
    }
}

/// The outcome of reading one partition: the records, the last stable offset, the
/// aborted transactions for read_committed, and the offset after the records read (`None`
/// when none were).
type Visible = (
    FetchRecords,
    i64,
    Option<Vec<AbortedTransaction>>,
    Option<i64>,
);

/// One read of every requested partition.
#[derive(Default)]
struct Read {
    responses: Vec<FetchableTopicResponse>,
    /// The record bytes in `responses`.
    total_bytes: usize,
    /// Whether a partition had an error (an error answers at once, as in Kafka).
    any_error: bool,
    /// What each partition's records hold, for the traffic counters.
    delivered: Vec<Delivered>,
}

impl Read {
    /// The responses of the read the Fetch answers with, counted into each topic's
    /// traffic; a read that a long poll discards is not counted.
    fn answered(self) -> Vec<FetchableTopicResponse> {
        for delivered in &self.delivered {
            let traffic = delivered.partition.traffic();
            traffic.fetched(delivered.bytes, delivered.offsets);
        }
        self.responses
    }
}

/// The response: the session's verdict and the partitions to send.
fn response_of(parts: FetchResponseParts) -> FetchResponse {
    FetchResponse {
        error_code: parts.error_code.code(),
        session_id: parts.session_id,
        responses: parts.responses,
        ..Default::default()
    }
}

/// Finds a topic's requested partitions. A consumer needs Read on the topic: checked once
/// per topic, after an unknown id (which reveals no name) and before an unknown name, as
/// Kafka orders them. Checked on every request, incremental ones included.
fn resolve(
    cluster: &Cluster,
    access: &Access<'_>,
    topic: &RequestedTopic,
    by_id: bool,
) -> Vec<Wanted> {
    let found = match &topic.topic {
        TopicKey::Id(id) => cluster.topic_by_id(id),
        TopicKey::Name(name) => cluster.topic(name),
    };
    let name = match &found {
        Some(found) => Some(found.name.as_str()),
        None if by_id => None,
        None => Some(topic.topic.name()),
    };
    let refused = name
        .filter(|name| !access.allows(AclOperation::Read, ResourceType::Topic, name))
        .map(|_| ErrorCode::TopicAuthorizationFailed);
    let found = found.filter(|_| refused.is_none());
    topic
        .partitions
        .iter()
        .map(|requested| Wanted {
            refused,
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

/// Reads every partition once.
fn read_all(topics: &[(&RequestedTopic, Vec<Wanted>)], limits: &ReadLimits) -> Read {
    let ReadLimits {
        max_bytes,
        by_id,
        read_committed,
        ..
    } = *limits;
    let mut read = Read {
        responses: Vec::with_capacity(topics.len()),
        ..Read::default()
    };
    for (requested, wanted) in topics {
        let mut partitions = Vec::with_capacity(wanted.len());
        for wanted in wanted {
            let limit = wanted
                .partition_max_bytes
                .min(max_bytes.saturating_sub(read.total_bytes));
            // KIP-74: only the response's first batch may exceed the limits.
            let first_batch = if read.total_bytes == 0 {
                FirstBatch::AlwaysWhole
            } else {
                FirstBatch::WithinMaxBytes
            };
            let data = read_partition(
                wanted,
                limit,
                first_batch,
                by_id,
                read_committed,
                &mut read.delivered,
            );
            read.total_bytes += data.records.as_ref().map_or(0, FetchRecords::len);
            read.any_error |= data.error_code != ErrorCode::None.code();
            partitions.push(data);
        }
        read.responses.push(FetchableTopicResponse {
            topic: requested.topic.name().to_string(),
            topic_id: requested.topic.id(),
            partitions,
        });
    }
    read
}

/// Records one read sent to a consumer, counted once the read is the one answered.
struct Delivered {
    partition: Arc<Partition>,
    bytes: usize,
    offsets: u64,
}

fn read_partition(
    wanted: &Wanted,
    limit_bytes: usize,
    first_batch: FirstBatch,
    by_id: bool,
    read_committed: bool,
    delivered: &mut Vec<Delivered>,
) -> PartitionData {
    let unknown = if by_id && wanted.topic.is_none() {
        ErrorCode::UnknownTopicId
    } else {
        ErrorCode::UnknownTopicOrPartition
    };
    if let Some(code) = wanted.refused {
        return failed(wanted.index, code, -1, -1);
    }
    let Some(partition) = &wanted.partition else {
        return failed(wanted.index, unknown, -1, -1);
    };
    let read = read_visible(
        partition,
        wanted.fetch_offset,
        limit_bytes,
        first_batch,
        read_committed,
    );
    // Loaded after the read, so it is at least the last stable offset and the records' end.
    let high_watermark = partition.high_watermark();
    let log_start_offset = partition.log_start_offset();
    let (records, last_stable_offset, aborted_transactions, next_offset) = match read {
        Ok(read) => read,
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
    if let Some(next_offset) = next_offset {
        let offsets = next_offset.saturating_sub(wanted.fetch_offset).max(0);
        delivered.push(Delivered {
            partition: partition.clone(),
            bytes: records.len(),
            offsets: u64::try_from(offsets).unwrap_or(0),
        });
    }
    PartitionData {
        partition_index: wanted.index,
        error_code: ErrorCode::None.code(),
        high_watermark,
        last_stable_offset,
        log_start_offset,
        aborted_transactions,
        preferred_read_replica: -1,
        records: Some(records),
        ..Default::default()
    }
}

/// What a reader at `isolation` may see from `fetch_offset`: the records (below the last
/// stable offset for read_committed, the high watermark otherwise), the last stable offset,
/// and for read_committed the aborted transactions that overlap the records returned. Those
/// are bounded by the records, as Kafka bounds them, so a reader catching up on a long log
/// gets a short list with each fetch.
fn read_visible(
    partition: &Partition,
    fetch_offset: i64,
    limit_bytes: usize,
    first_batch: FirstBatch,
    read_committed: bool,
) -> Result<Visible, StorageError> {
    let last_stable_offset = partition.last_stable_offset()?;
    let upper_bound_offset = match read_committed {
        true => last_stable_offset,
        false => partition.high_watermark(),
    };
    let range =
        partition.read_range_below(fetch_offset, limit_bytes, first_batch, upper_bound_offset)?;

    let aborted = match read_committed {
        true => {
            let end_offset = range.as_ref().map_or(fetch_offset, FileRange::next_offset);
            Some(aborted_transactions(partition, fetch_offset, end_offset)?)
        }
        false => None,
    };
    let next_offset = range.as_ref().map(FileRange::next_offset);
    Ok((
        records_from(range)?,
        last_stable_offset,
        aborted,
        next_offset,
    ))
}

/// The aborted transactions a read_committed reader of `[fetch_offset, end_offset)` needs,
/// in the wire's shape.
fn aborted_transactions(
    partition: &Partition,
    fetch_offset: i64,
    end_offset: i64,
) -> Result<Vec<AbortedTransaction>, StorageError> {
    let aborted = partition.aborted_transactions(fetch_offset, end_offset)?;
    Ok(aborted
        .into_iter()
        .map(|aborted| AbortedTransaction {
            producer_id: aborted.producer_id,
            first_offset: aborted.first_offset,
        })
        .collect())
}

/// The range to send with `sendfile` if it is large, else its bytes.
fn records_from(range: Option<FileRange>) -> Result<FetchRecords, StorageError> {
    match range {
        None => Ok(FetchRecords::Bytes(Bytes::new())),
        Some(range) if range.len() < SENDFILE_MIN_BYTES => range.read().map(FetchRecords::Bytes),
        Some(range) => Ok(FetchRecords::Deferred(DeferredRecords::new(
            range.len(),
            Arc::new(range),
        ))),
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
        records: Some(FetchRecords::Bytes(Bytes::new())),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use riffle_protocol::api::fetch::{FetchPartition, FetchTopic};
    use riffle_protocol::api::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};
    use riffle_protocol::record::{
        Compression, ControlRecordType, EndTxnMarker, RecordBatchBuilder,
    };

    use super::*;
    use crate::cluster::Validation;
    use crate::handler::produce;
    use crate::testing::test_cluster;

    /// The Fetch version the tests speak: the newest that names topics.
    const VERSION: i16 = 12;

    /// The value size of each test record: a batch is a little over 1 KiB.
    const VALUE_BYTES: usize = 1_000;

    /// One batch holding one record with a [`VALUE_BYTES`] value.
    fn batch() -> Bytes {
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder.append(1_000, None, Some(&[b'v'; VALUE_BYTES]), &[]);
        builder.build().expect("a valid batch")
    }

    /// A cluster with `topic` of `partitions` partitions, each holding `batches` batches.
    fn cluster_with(
        topic: &str,
        partitions: i32,
        batches: usize,
    ) -> (tempfile::TempDir, Arc<Cluster>) {
        let (dir, cluster) = test_cluster();
        cluster
            .create_topic(topic, partitions, BTreeMap::new(), Validation::Apply)
            .expect("create");
        for partition in &cluster.topic(topic).expect("created").partitions {
            for _ in 0..batches {
                let bytes = batch().to_vec();
                partition.append_records(&bytes, 1_000).expect("append");
            }
        }
        (dir, Arc::new(cluster))
    }

    /// A read_uncommitted Fetch of `partitions` of `topic` from offset 0, with no byte limits.
    fn request(topic: &str, partitions: i32, min_bytes: i32, max_wait_ms: i32) -> FetchRequest {
        let partitions = (0..partitions)
            .map(|partition| FetchPartition {
                partition,
                fetch_offset: 0,
                partition_max_bytes: i32::MAX,
                ..Default::default()
            })
            .collect();
        FetchRequest {
            max_wait_ms,
            min_bytes,
            max_bytes: i32::MAX,
            topics: vec![FetchTopic {
                topic: topic.into(),
                partitions,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// Sets every partition's `partition_max_bytes`.
    fn with_partition_max_bytes(mut request: FetchRequest, limit: usize) -> FetchRequest {
        let limit = i32::try_from(limit).expect("a small limit");
        for partition in &mut request.topics[0].partitions {
            partition.partition_max_bytes = limit;
        }
        request
    }

    /// The record bytes returned for each partition of the first topic.
    fn record_bytes(response: &FetchResponse) -> Vec<usize> {
        response.responses[0]
            .partitions
            .iter()
            .map(|partition| partition.records.as_ref().map_or(0, FetchRecords::len))
            .collect()
    }

    /// Produces one batch to partition 0 of `topic` with acks=1, through the handler.
    async fn produce_one(cluster: &Arc<Cluster>, topic: &str) {
        let request = ProduceRequest {
            acks: 1,
            timeout_ms: 1_000,
            topic_data: vec![TopicProduceData {
                name: topic.into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(batch()),
                }],
            }],
            ..Default::default()
        };
        let response = produce::handle(
            cluster,
            &crate::handler::RequestContext::internal(cluster),
            9,
            request,
        )
        .await
        .expect("acks=1 answers");
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    }

    #[tokio::test]
    async fn fetch_short_of_min_bytes_waits_max_wait_then_returns_what_there_is() {
        // Proves the long poll's deadline: with one batch stored and min_bytes far above
        // it, the Fetch is answered no sooner than max_wait_ms, not long after it, and
        // carries the batch it has, counted once in the topic's traffic although the
        // first read also found it.
        let (_dir, cluster) = cluster_with("t", 1, 1);
        let max_wait = Duration::from_millis(1_000);
        let started = std::time::Instant::now();
        let request = request("t", 1, 1 << 20, 1_000);
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            VERSION,
            request,
        )
        .await;
        let elapsed = started.elapsed();
        assert!(elapsed >= max_wait, "answered after {elapsed:?}");
        assert!(
            elapsed < max_wait + Duration::from_secs(4),
            "answered after {elapsed:?}"
        );
        let partition = &response.responses[0].partitions[0];
        assert_eq!(partition.error_code, 0);
        assert_eq!(partition.high_watermark, 1);
        assert_eq!(record_bytes(&response), vec![batch().len()]);
        let metrics = cluster.metrics().encode().expect("encodes");
        let bytes_out = format!(
            "riffle_topic_bytes_out_total{{topic=\"t\"}} {}\n",
            batch().len()
        );
        assert!(metrics.contains(&bytes_out), "{metrics}");
        assert!(
            metrics.contains("riffle_topic_records_out_total{topic=\"t\"} 1\n"),
            "{metrics}"
        );
    }

    #[tokio::test]
    async fn waiting_fetch_is_answered_as_soon_as_a_produce_arrives() {
        // Proves a waiting Fetch is woken by an append: on an empty partition a Fetch with
        // max_wait 5 s is still waiting after 300 ms, and once a produce lands it is
        // answered with that batch well before half of max_wait has passed.
        let (_dir, cluster) = cluster_with("t", 1, 0);
        let max_wait = Duration::from_secs(5);
        let fetching = {
            let cluster = cluster.clone();
            tokio::spawn(async move {
                handle(
                    &cluster,
                    &crate::handler::RequestContext::internal(&cluster),
                    VERSION,
                    request("t", 1, 1, 5_000),
                )
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!fetching.is_finished(), "answered with nothing to return");

        let produced = std::time::Instant::now();
        produce_one(&cluster, "t").await;
        let response = tokio::time::timeout(max_wait, fetching)
            .await
            .expect("answered within max_wait")
            .expect("the fetch task");
        let elapsed = produced.elapsed();
        assert!(
            elapsed < max_wait / 2,
            "answered {elapsed:?} after the produce"
        );
        assert_eq!(response.responses[0].partitions[0].high_watermark, 1);
        assert_eq!(record_bytes(&response), vec![batch().len()]);
    }

    /// `request` in fetch session `session_id` at `session_epoch`.
    fn in_session(mut request: FetchRequest, session_id: i32, session_epoch: i32) -> FetchRequest {
        request.session_id = session_id;
        request.session_epoch = session_epoch;
        request
    }

    /// The (partition, high watermark, record bytes) of every partition in a response.
    fn partitions_of(response: &FetchResponse) -> Vec<(i32, i64, usize)> {
        response
            .responses
            .iter()
            .flat_map(|topic| &topic.partitions)
            .map(|data| {
                let bytes = data.records.as_ref().map_or(0, FetchRecords::len);
                (data.partition_index, data.high_watermark, bytes)
            })
            .collect()
    }

    #[tokio::test]
    async fn incremental_fetch_answers_only_news_and_long_polls_when_there_is_none() {
        // Proves sessions end to end through the handler: epoch 0 answers all 3 partitions
        // with a session id; the next incremental fetch (offsets moved past the data) has
        // nothing new, waits max_wait and answers no partition in the same session; the one
        // after is woken by a produce to partition 0 and answers that partition alone.
        let (_dir, cluster) = cluster_with("t", 3, 1);
        let context = crate::handler::RequestContext::internal(&cluster);
        let full = handle(
            &cluster,
            &context,
            VERSION,
            in_session(request("t", 3, 0, 0), 0, 0),
        )
        .await;
        assert_eq!(full.error_code, 0);
        assert_ne!(full.session_id, 0);
        assert_eq!(
            partitions_of(&full),
            (0..3).map(|p| (p, 1, batch().len())).collect::<Vec<_>>()
        );

        let mut moved = in_session(request("t", 3, 1, 300), full.session_id, 1);
        for partition in &mut moved.topics[0].partitions {
            partition.fetch_offset = 1;
        }
        let started = std::time::Instant::now();
        let quiet = handle(&cluster, &context, VERSION, moved).await;
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "did not wait"
        );
        assert_eq!((quiet.error_code, quiet.session_id), (0, full.session_id));
        assert_eq!(partitions_of(&quiet), Vec::new());

        let mut nothing_changed = in_session(request("t", 0, 1, 5_000), full.session_id, 2);
        nothing_changed.topics.clear();
        let fetching = {
            let cluster = cluster.clone();
            tokio::spawn(async move {
                let context = crate::handler::RequestContext::internal(&cluster);
                handle(&cluster, &context, VERSION, nothing_changed).await
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!fetching.is_finished(), "answered with nothing new");
        produce_one(&cluster, "t").await;
        let news = tokio::time::timeout(Duration::from_secs(5), fetching)
            .await
            .expect("woken by the append")
            .expect("the fetch task");
        assert_eq!(news.session_id, full.session_id);
        assert_eq!(partitions_of(&news), vec![(0, 2, batch().len())]);
    }

    #[tokio::test]
    async fn sessions_from_fetch_13_name_topics_by_id() {
        // Proves topic ids in sessions: a v13 session reads and answers by id, a v12
        // request on it is refused with FETCH_SESSION_TOPIC_ID_ERROR, and an unknown
        // session id with FETCH_SESSION_ID_NOT_FOUND.
        let (_dir, cluster) = cluster_with("t", 1, 1);
        let context = crate::handler::RequestContext::internal(&cluster);
        let topic_id = cluster.topic("t").expect("topic").id;
        let mut by_id = in_session(request("t", 1, 0, 0), 0, 0);
        by_id.topics[0].topic = String::new();
        by_id.topics[0].topic_id = topic_id;
        let full = handle(&cluster, &context, 13, by_id).await;
        assert_eq!(partitions_of(&full), vec![(0, 1, batch().len())]);
        assert_ne!(full.session_id, 0);

        let partition = cluster.topic("t").expect("topic").partitions[0].clone();
        partition.append_records(&batch(), 1_000).expect("append");
        let mut incremental = in_session(request("t", 0, 0, 0), full.session_id, 1);
        incremental.topics.clear();
        let news = handle(&cluster, &context, 13, incremental.clone()).await;
        assert_eq!(
            (news.responses[0].topic_id, news.responses[0].topic.as_str()),
            (topic_id, "")
        );
        assert_eq!(partitions_of(&news), vec![(0, 2, 2 * batch().len())]);

        incremental.session_epoch = 2;
        let by_name = handle(&cluster, &context, 12, incremental.clone()).await;
        assert_eq!(
            by_name.error_code,
            ErrorCode::FetchSessionTopicIdError.code()
        );
        incremental.session_id = full.session_id.wrapping_add(1);
        let unknown = handle(&cluster, &context, 13, incremental).await;
        assert_eq!(unknown.error_code, ErrorCode::FetchSessionIdNotFound.code());
    }

    #[tokio::test]
    async fn partition_max_bytes_limits_each_partition_but_the_first_batch_comes_whole() {
        // Proves per-partition limits and KIP-74: with a limit of 2.5 batches each of two
        // partitions returns 2 whole batches; with a limit below one batch the first
        // partition still returns its first batch whole and the second returns nothing.
        let (_dir, cluster) = cluster_with("t", 2, 3);
        let batch_bytes = batch().len();

        let roomy = with_partition_max_bytes(request("t", 2, 1, 0), batch_bytes * 5 / 2);
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            VERSION,
            roomy,
        )
        .await;
        assert_eq!(record_bytes(&response), vec![2 * batch_bytes; 2]);

        let tiny = with_partition_max_bytes(request("t", 2, 1, 0), 10);
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            VERSION,
            tiny,
        )
        .await;
        assert_eq!(record_bytes(&response), vec![batch_bytes, 0]);
    }

    #[tokio::test]
    async fn max_bytes_limits_the_response_but_the_first_batch_comes_whole() {
        // Proves the response-wide limit and KIP-74: max_bytes of 1.5 batches returns one
        // batch from the first partition and nothing from the second (half a batch left);
        // max_bytes below one batch still returns the first batch whole.
        let (_dir, cluster) = cluster_with("t", 2, 3);
        let batch_bytes = batch().len();

        let mut limited = request("t", 2, 1, 0);
        limited.max_bytes = i32::try_from(batch_bytes * 3 / 2).expect("small");
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            VERSION,
            limited,
        )
        .await;
        assert_eq!(record_bytes(&response), vec![batch_bytes, 0]);

        let mut tiny = request("t", 2, 1, 0);
        tiny.max_bytes = 10;
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            VERSION,
            tiny,
        )
        .await;
        assert_eq!(record_bytes(&response), vec![batch_bytes, 0]);
    }

    #[tokio::test]
    async fn fetch_max_bytes_caps_what_the_client_asks_for() {
        // Proves the broker's cap: with --fetch-max-bytes of 1.5 batches, a request allowing
        // 2 GB gets one batch from the first partition and none from the second; the first
        // batch still comes whole under a cap smaller than it.
        let batch_bytes = batch().len();
        for (cap, expected) in [
            (batch_bytes * 3 / 2, vec![batch_bytes, 0]),
            (10, vec![batch_bytes, 0]),
        ] {
            let dir = tempfile::tempdir().expect("temp dir");
            let cap_flag = cap.to_string();
            let config = crate::testing::test_config(dir.path(), &["--fetch-max-bytes", &cap_flag]);
            let cluster = Cluster::open(config, ("127.0.0.1".into(), 9092)).expect("open");
            cluster
                .create_topic("t", 2, BTreeMap::new(), Validation::Apply)
                .expect("create");
            for partition in &cluster.topic("t").expect("created").partitions {
                for _ in 0..3 {
                    partition.append_records(&batch(), 1_000).expect("append");
                }
            }
            let context = crate::handler::RequestContext::internal(&cluster);
            let response = handle(&cluster, &context, VERSION, request("t", 2, 1, 0)).await;
            assert_eq!(record_bytes(&response), expected, "cap {cap}");
        }
    }

    /// Appends a one-record transactional batch of `producer_id` to `partition`.
    fn append_transactional(partition: &Partition, producer_id: i64, base_sequence: i32) {
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder
            .producer(producer_id, 0, base_sequence)
            .transactional()
            .append(1_000, None, Some(&[b'v'; VALUE_BYTES]), &[]);
        let batch =
            riffle_protocol::record::RecordBatchView::parse(builder.build().expect("a batch"))
                .expect("parses");
        partition
            .append_batch(&batch, batch.as_bytes(), 1_000, &|_, _| Ok(()))
            .expect("appended");
    }

    fn end(partition: &Partition, producer_id: i64, control_type: ControlRecordType) {
        let marker = EndTxnMarker {
            control_type,
            coordinator_epoch: 0,
        };
        partition
            .append_end_txn_marker(producer_id, 0, marker, 1_000)
            .expect("marker");
    }

    #[tokio::test]
    async fn read_committed_stops_at_the_last_stable_offset_and_lists_aborts_it_returns() {
        // Offsets: 0 aborted (1), 1 its marker, 2 committed (2), 3 its marker, 4 open (3).
        // read_committed gets offsets below 4 and the one aborted transaction; from offset 2
        // it gets no aborted transaction, as none overlaps what it returns; read_uncommitted
        // gets everything and reports the same last stable offset.
        let (_dir, cluster) = cluster_with("t", 1, 0);
        let partition = cluster.topic("t").expect("topic").partitions[0].clone();
        append_transactional(&partition, 1, 0);
        end(&partition, 1, ControlRecordType::Abort);
        append_transactional(&partition, 2, 0);
        end(&partition, 2, ControlRecordType::Commit);
        append_transactional(&partition, 3, 0);
        let fetch = |offset, isolation_level| {
            let mut request = request("t", 1, 1, 0);
            request.topics[0].partitions[0].fetch_offset = offset;
            request.isolation_level = isolation_level;
            request
        };
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            VERSION,
            fetch(0, READ_COMMITTED),
        )
        .await;
        let data = &response.responses[0].partitions[0];
        assert_eq!((data.high_watermark, data.last_stable_offset), (5, 4));
        let aborted = data.aborted_transactions.clone().expect("listed");
        assert_eq!(
            aborted
                .iter()
                .map(|txn| (txn.producer_id, txn.first_offset))
                .collect::<Vec<_>>(),
            vec![(1, 0)]
        );
        let stored = partition
            .read(0, usize::MAX, FirstBatch::AlwaysWhole)
            .expect("read");
        let below_lso = partition
            .read_range_below(0, usize::MAX, FirstBatch::AlwaysWhole, 4)
            .expect("read")
            .expect("records")
            .read()
            .expect("bytes");
        let returned = data.records.as_ref().and_then(FetchRecords::as_bytes);
        assert_eq!(returned, Some(&below_lso));
        assert!(below_lso.len() < stored.len());

        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            VERSION,
            fetch(2, READ_COMMITTED),
        )
        .await;
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.aborted_transactions, Some(Vec::new()));

        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            VERSION,
            fetch(0, 0),
        )
        .await;
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.last_stable_offset, 4);
        assert_eq!(data.aborted_transactions, None);
        assert_eq!(record_bytes(&response), vec![stored.len()]);
    }

    #[tokio::test]
    async fn read_committed_answers_last_stable_offset_at_the_high_watermark() {
        // Proves the isolation levels without transactions: read_committed sees every
        // record, its last stable offset is the high watermark, and its aborted
        // transactions list is present and empty; read_uncommitted reports the same LSO.
        let (_dir, cluster) = cluster_with("t", 1, 2);
        let mut committed = request("t", 1, 1, 0);
        committed.isolation_level = READ_COMMITTED;
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            VERSION,
            committed,
        )
        .await;
        let partition = &response.responses[0].partitions[0];
        assert_eq!(partition.error_code, 0);
        assert_eq!(partition.high_watermark, 2);
        assert_eq!(partition.last_stable_offset, 2);
        assert_eq!(partition.aborted_transactions, Some(Vec::new()));
        assert_eq!(record_bytes(&response), vec![2 * batch().len()]);

        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            VERSION,
            request("t", 1, 1, 0),
        )
        .await;
        assert_eq!(response.responses[0].partitions[0].last_stable_offset, 2);
    }

    #[tokio::test]
    async fn large_record_sets_are_deferred_to_sendfile_and_small_ones_copied() {
        // Proves the split at SENDFILE_MIN_BYTES: a partition with more than that returns
        // a file range (the connection sends it with sendfile) holding exactly the stored
        // batches, and one with less returns the bytes themselves.
        let batches_above_threshold = SENDFILE_MIN_BYTES / batch().len() + 1;
        let (_dir, cluster) = cluster_with("t", 1, batches_above_threshold);
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            VERSION,
            request("t", 1, 1, 0),
        )
        .await;
        let records = response.responses[0].partitions[0]
            .records
            .as_ref()
            .expect("records");
        let FetchRecords::Deferred(deferred) = records else {
            panic!("a large read should be deferred, got {records:?}");
        };
        let range = deferred
            .source()
            .downcast_ref::<FileRange>()
            .expect("a file range");
        let stored = range.read().expect("read the range");
        assert_eq!(stored.len(), batches_above_threshold * batch().len());
        let expected = cluster.topic("t").expect("topic").partitions[0]
            .read(0, usize::MAX, FirstBatch::AlwaysWhole)
            .expect("read");
        assert_eq!(stored, expected);

        let (_dir, cluster) = cluster_with("small", 1, 2);
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            VERSION,
            request("small", 1, 1, 0),
        )
        .await;
        let records = response.responses[0].partitions[0].records.as_ref();
        assert_eq!(
            records.and_then(FetchRecords::as_bytes).map(Bytes::len),
            Some(2 * batch().len()),
            "a small read is copied"
        );
    }

    #[tokio::test]
    async fn fetch_needs_read_on_the_topic() {
        // Proves Fetch's check: without Read a partition answers TOPIC_AUTHORIZATION_FAILED
        // with no records, the same as for a topic that does not exist (which then reveals
        // nothing); with Read on a prefix the records come back.
        use crate::security::acl::AclOperation::Read;
        let (_dir, cluster) = crate::testing::acl_cluster(&[]);
        cluster
            .create_topic("events", 1, BTreeMap::new(), Validation::Apply)
            .expect("create");
        let partition = cluster.topic("events").expect("created").partitions[0].clone();
        partition.append_records(&batch(), 1_000).expect("append");
        let cluster = Arc::new(cluster);
        let alice = crate::testing::context_of(&cluster, "User:alice");
        let denied = ErrorCode::TopicAuthorizationFailed.code();
        for topic in ["events", "missing"] {
            let response = handle(&cluster, &alice, VERSION, request(topic, 1, 0, 0)).await;
            let data = &response.responses[0].partitions[0];
            let record_bytes = data.records.as_ref().map_or(0, FetchRecords::len);
            assert_eq!((data.error_code, record_bytes), (denied, 0), "{topic}");
        }
        crate::testing::allow(&cluster, "topic:prefixed:ev", "User:alice", Read);
        let response = handle(&cluster, &alice, VERSION, request("events", 1, 0, 0)).await;
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.error_code, 0);
        assert!(
            data.records
                .as_ref()
                .is_some_and(|records| !records.is_empty())
        );
    }
}
