//! Reading a partition range outside the group: how stores are restored from changelogs.
//!
//! One `BaseConsumer` that never subscribes and never commits, so it leaves the group's
//! positions alone; each read assigns just the partition asked for, from the given offset.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::consumer::input_record;
use crate::record::{InputRecord, TopicPartition};
use crate::runtime::backend::BackendError;

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

/// Every record of `partition` in `[from_offset, end_offset)`, or to the high watermark as
/// it is now when `end_offset` is `None`. Blocks: run it on a blocking thread.
pub(super) fn read_range_blocking(
    consumer: &BaseConsumer,
    partition: &TopicPartition,
    from_offset: i64,
    end_offset: Option<i64>,
) -> Result<Vec<InputRecord>, BackendError> {
    let operation = || format!("read {partition} from {from_offset}");
    let end_offset = match end_offset {
        Some(end_offset) => end_offset,
        None => {
            let topic = &partition.topic;
            let (_low, high) = consumer
                .fetch_watermarks(topic, partition.partition, REQUEST_TIMEOUT)
                .map_err(|error| BackendError::new(operation(), error))?;
            high
        }
    };
    if from_offset >= end_offset {
        return Ok(Vec::new());
    }
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
    let records = read_until(consumer, partition, end_offset);
    // Stop fetching: the next restore assigns its own partition.
    let _ = consumer.unassign();
    records.map_err(|message| BackendError::new(operation(), message))
}

fn read_until(
    consumer: &BaseConsumer,
    partition: &TopicPartition,
    end_offset: i64,
) -> Result<Vec<InputRecord>, String> {
    let mut records: Vec<InputRecord> = Vec::new();
    let mut last_progress = Instant::now();
    loop {
        if last_progress.elapsed() > RESTORE_STALL_TIMEOUT {
            let read = records.last().map(|record| record.offset);
            return Err(format!(
                "no record within {RESTORE_STALL_TIMEOUT:?} (last offset read {read:?}, end {end_offset})"
            ));
        }
        match consumer.poll(RESTORE_POLL_INTERVAL) {
            Some(Ok(message)) => {
                let ours = message.topic() == partition.topic
                    && message.partition() == partition.partition;
                if !ours {
                    continue;
                }
                last_progress = Instant::now();
                if message.offset() >= end_offset {
                    return Ok(records);
                }
                records.push(input_record(&message));
                if message.offset() + 1 >= end_offset {
                    return Ok(records);
                }
            }
            Some(Err(KafkaError::PartitionEOF(eof_partition)))
                if eof_partition == partition.partition =>
            {
                return Ok(records);
            }
            Some(Err(error)) => tracing::warn!(%partition, %error, "restore consumer error"),
            None => {}
        }
    }
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
