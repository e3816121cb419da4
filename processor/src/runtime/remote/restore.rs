//! Reading a partition range outside the group: how stores are restored from changelogs.
//!
//! One `BaseConsumer` that never subscribes and never commits, so it leaves the group's
//! positions alone; a restore assigns just the partition it reads and keeps it assigned
//! from one bounded chunk to the next. The end of a changelog comes from the fetches
//! themselves (EOF at the high watermark), never from a ListOffsets request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::consumer::input_record;
use crate::record::{InputRecord, TopicPartition};
use crate::runtime::backend::{BackendError, RestoreChunk};

/// How long a read may go without a new record before it fails: the broker stopped
/// answering, since the range is known to exist.
const RESTORE_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one wait for a record lasts, between stall checks.
const RESTORE_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How long a watermark or metadata request may take.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of the restore consumer; set after the caller's, so they win.
const RESTORE_SETTINGS: &[(&str, &str)] = &[
    // librdkafka wants a group id to poll its consumer queue; this one never joins or
    // commits, so no group by this name ever exists on the broker.
    ("group.id", "riffle-processor-restore"),
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("auto.offset.reset", "earliest"),
    // The end of a compacted changelog may have no record at `end - 1`: EOF ends the read.
    ("enable.partition.eof", "true"),
    ("allow.auto.create.topics", "false"),
    // Reads switch partitions often; a fetch parked on an idle one would delay the next.
    ("fetch.wait.max.ms", "10"),
    // See `FETCH_QUEUE_BACKOFF_MS`.
    ("fetch.queue.backoff.ms", super::FETCH_QUEUE_BACKOFF_MS),
];

/// The consumer used for restores, watermarks and metadata.
pub(super) type RestoreConsumer = Arc<BaseConsumer>;

pub(super) fn restore_consumer(base: &ClientConfig) -> Result<RestoreConsumer, BackendError> {
    let mut config = base.clone();
    for (key, value) in RESTORE_SETTINGS {
        config.set(*key, *value);
    }
    let consumer: BaseConsumer = config
        .create()
        .map_err(|error| BackendError::new("create restore consumer", error))?;
    Ok(Arc::new(consumer))
}

/// Where the restore consumer is: the partition it has assigned and its next offset, so a
/// restore's next chunk goes on without assigning (and refetching) again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RestoreSession {
    partition: TopicPartition,
    next_offset: i64,
}

/// Records of `partition` from `from_offset` below `end_offset` (when given) or below the
/// end the fetch reports, about `max_bytes` of them. Blocks: run it on a blocking thread.
/// `session` carries the assignment from one chunk to the next.
pub(super) fn read_chunk_blocking(
    consumer: &BaseConsumer,
    session: &mut Option<RestoreSession>,
    partition: &TopicPartition,
    from_offset: i64,
    end_offset: Option<i64>,
    max_bytes: usize,
) -> Result<RestoreChunk, BackendError> {
    let operation = || format!("read {partition} from {from_offset}");
    let continuing = session.as_ref().is_some_and(|session| {
        session.partition == *partition && session.next_offset == from_offset
    });
    if !continuing {
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(
                &partition.topic,
                partition.partition,
                Offset::Offset(from_offset),
            )
            .map_err(|error| BackendError::new(operation(), error))?;
        consumer
            .assign(&assignment)
            .map_err(|error| BackendError::new(operation(), error))?;
    }
    *session = None;
    let read = read_until(consumer, partition, from_offset, end_offset, max_bytes);
    let chunk = read.map_err(|message| BackendError::new(operation(), message))?;
    let finished = end_offset.map_or(chunk.next_offset >= chunk.end_offset, |end| {
        chunk.next_offset >= end
    }) || chunk.records.is_empty();
    if finished {
        // Stop fetching: the next restore assigns its own partition.
        let _ = consumer.unassign();
    } else {
        *session = Some(RestoreSession {
            partition: partition.clone(),
            next_offset: chunk.next_offset,
        });
    }
    Ok(chunk)
}

/// Polls until `max_bytes` are read, `end_offset` is reached, or the partition's end (EOF:
/// the high watermark of the fetch, which enable.partition.eof reports).
fn read_until(
    consumer: &BaseConsumer,
    partition: &TopicPartition,
    from_offset: i64,
    end_offset: Option<i64>,
    max_bytes: usize,
) -> Result<RestoreChunk, String> {
    let mut chunk = RestoreChunk {
        records: Vec::new(),
        next_offset: from_offset,
        end_offset: end_offset.unwrap_or(i64::MAX),
    };
    let mut read_bytes = 0usize;
    let mut last_progress = Instant::now();
    loop {
        if last_progress.elapsed() > RESTORE_STALL_TIMEOUT {
            return Err(format!(
                "no record within {RESTORE_STALL_TIMEOUT:?} (next offset {}, end {end_offset:?})",
                chunk.next_offset
            ));
        }
        match consumer.poll(RESTORE_POLL_INTERVAL) {
            Some(Ok(message)) => {
                let ours = message.topic() == partition.topic
                    && message.partition() == partition.partition;
                if !ours || message.offset() < chunk.next_offset {
                    continue;
                }
                last_progress = Instant::now();
                if end_offset.is_some_and(|end| message.offset() >= end) {
                    return Ok(finish(consumer, partition, chunk, end_offset));
                }
                let record = input_record(&message);
                read_bytes += record_bytes(&record);
                chunk.next_offset = message.offset() + 1;
                chunk.records.push(record);
                let at_end = end_offset.is_some_and(|end| chunk.next_offset >= end);
                if at_end || read_bytes >= max_bytes {
                    return Ok(finish(consumer, partition, chunk, end_offset));
                }
            }
            Some(Err(KafkaError::PartitionEOF(eof_partition)))
                if eof_partition == partition.partition =>
            {
                let mut chunk = finish(consumer, partition, chunk, end_offset);
                // At EOF the position is the fetch's high watermark: past any compacted gap.
                if let Some(high) = cached_high_watermark(consumer, partition) {
                    chunk.next_offset = chunk.next_offset.max(high);
                    if end_offset.is_none() {
                        chunk.end_offset = high;
                    }
                }
                return Ok(chunk);
            }
            Some(Err(error)) => tracing::warn!(%partition, %error, "restore consumer error"),
            None => {}
        }
    }
}

/// The chunk with its end: the target, else the high watermark the fetches reported.
fn finish(
    consumer: &BaseConsumer,
    partition: &TopicPartition,
    mut chunk: RestoreChunk,
    end_offset: Option<i64>,
) -> RestoreChunk {
    chunk.end_offset = match end_offset {
        Some(end) => end,
        None => cached_high_watermark(consumer, partition).unwrap_or(chunk.next_offset),
    };
    chunk
}

/// Bytes a record holds (key, value, headers), for the chunk limit.
fn record_bytes(record: &InputRecord) -> usize {
    let headers: usize = record
        .headers
        .iter()
        .map(|(key, value)| key.len() + value.as_ref().map_or(0, Vec::len))
        .sum();
    record.key.as_ref().map_or(0, Vec::len) + record.value.as_ref().map_or(0, Vec::len) + headers
}

/// The high watermark librdkafka last saw in a fetch response for `partition` (no request
/// is made).
fn cached_high_watermark(consumer: &BaseConsumer, partition: &TopicPartition) -> Option<i64> {
    super::cached_watermarks(consumer, partition).map(|(_, high)| high)
}

/// The partition count of `topic`, `None` if the broker does not know it. The consumer
/// asks with auto-creation off, so asking never creates the topic. Other topic errors
/// (a leader being elected just after creation) are retried for [`REQUEST_TIMEOUT`].
pub(super) fn partition_count_blocking(
    consumer: &BaseConsumer,
    topic: &str,
) -> Result<Option<i32>, BackendError> {
    let operation = || format!("metadata of {topic}");
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    loop {
        let metadata = consumer
            .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .map_err(|error| BackendError::new(operation(), error))?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Ok(None);
        };
        match found.error() {
            None if !found.partitions().is_empty() => {
                let count = i32::try_from(found.partitions().len()).map_err(|_| {
                    BackendError::new(operation(), "more partitions than an i32 holds")
                })?;
                return Ok(Some(count));
            }
            Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) => return Ok(None),
            error if Instant::now() >= deadline => {
                return Err(BackendError::new(operation(), format!("{error:?}")));
            }
            _ => std::thread::sleep(RESTORE_POLL_INTERVAL),
        }
    }
}
