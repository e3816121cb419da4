//! Reading partitions for the embedded runtime, straight from their logs: what Fetch does,
//! without the wire. Each assigned partition has a position (the next offset to return);
//! an empty read waits on the partitions' append notifications, never in a sleep loop.
//!
//! [`Isolation::ReadCommitted`] (exactly-once) reads as a read_committed consumer does:
//! only below the partition's last stable offset (records past it belong to transactions
//! not decided yet), without the records of aborted transactions, and never control
//! batches, which carry no records.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use riffle_processor::runtime::{BackendError, RestoreChunk};
use riffle_processor::{InputRecord, TopicPartition, headers_of};
use riffle_protocol::record::{RecordBatchView, TimestampType, batches};
use riffle_storage::{AbortedTransaction, FirstBatch, StorageError};
use tokio::sync::Notify;
use tracing::warn;

use riffle_server::cluster::Cluster;
use riffle_server::partition::Partition;

/// Bytes read from one partition per read (Kafka's `max.partition.fetch.bytes`); the first
/// batch comes whole even when larger, so a big batch never stalls the reader.
pub const PARTITION_READ_MAX_BYTES: usize = 1024 * 1024;

/// Which records a read returns: Kafka's `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Everything below the high watermark (at-least-once).
    ReadUncommitted,
    /// Committed records only (exactly-once): see the module doc.
    ReadCommitted,
}

/// An assigned partition and how far it has been returned.
struct Assigned {
    partition: Arc<Partition>,
    /// The next offset to return.
    position: i64,
}

impl Assigned {
    /// Whether every readable record was returned.
    fn is_caught_up(&self, isolation: Isolation) -> bool {
        // A failed read of the stable offset reads as "behind": the next read reports it.
        readable_end(&self.partition, isolation).is_ok_and(|end| self.position >= end)
    }
}

/// The assigned partitions and their positions.
pub struct Reader {
    assigned: BTreeMap<TopicPartition, Assigned>,
    /// Most bytes of batches one [`Reader::read_available`] returns, over all partitions.
    max_poll_bytes: usize,
    /// Where the next read starts, so one busy partition cannot starve the others.
    next_start: usize,
    isolation: Isolation,
    /// Assigned partitions not read for now (the runner's buffer of them is full).
    paused: HashSet<TopicPartition>,
}

impl Reader {
    /// A reader with nothing assigned, reading uncommitted records until
    /// [`Reader::set_isolation`] says otherwise.
    pub fn new(max_poll_bytes: usize) -> Reader {
        Reader {
            assigned: BTreeMap::new(),
            max_poll_bytes,
            next_start: 0,
            isolation: Isolation::ReadUncommitted,
            paused: HashSet::new(),
        }
    }

    /// Reads skip `partitions` until a later call leaves them out.
    pub fn set_paused(&mut self, partitions: &[TopicPartition]) {
        self.paused.clear();
        self.paused.extend(partitions.iter().cloned());
    }

    /// Which records reads return from now on.
    pub fn set_isolation(&mut self, isolation: Isolation) {
        self.isolation = isolation;
    }

    /// Which records reads return.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// Starts reading `topic_partition` at `position` (its committed offset), or at the log
    /// start when nothing is committed (Kafka's `auto.offset.reset=earliest`).
    ///
    /// # Errors
    /// When the partition does not exist.
    pub fn assign(
        &mut self,
        cluster: &Cluster,
        topic_partition: &TopicPartition,
        position: Option<i64>,
    ) -> Result<(), BackendError> {
        let partition = find_partition(cluster, topic_partition)?;
        let position = position.unwrap_or_else(|| partition.log_start_offset());
        self.assigned.insert(
            topic_partition.clone(),
            Assigned {
                partition,
                position,
            },
        );
        Ok(())
    }

    /// Stops reading every partition; returns the ones that were assigned.
    pub fn revoke_all(&mut self) -> Vec<TopicPartition> {
        std::mem::take(&mut self.assigned).into_keys().collect()
    }

    /// The next offset to read from `topic_partition`, past whatever reads skipped.
    pub fn position(&self, topic_partition: &TopicPartition) -> Option<i64> {
        let assigned = self.assigned.get(topic_partition)?;
        Some(assigned.position)
    }

    /// Whether every readable record of `topic_partition` was returned.
    pub fn is_caught_up(&self, topic_partition: &TopicPartition) -> bool {
        self.assigned
            .get(topic_partition)
            .is_some_and(|assigned| assigned.is_caught_up(self.isolation))
    }

    /// Reads what the assigned partitions have past their positions, up to the poll byte
    /// limit, and advances the positions.
    ///
    /// # Errors
    /// When a log cannot be read or holds a batch that does not decode.
    pub fn read_available(&mut self) -> Result<Vec<InputRecord>, BackendError> {
        let count = self.assigned.len();
        if count == 0 {
            return Ok(Vec::new());
        }
        let start = self.next_start % count;
        self.next_start = self.next_start.wrapping_add(1);
        let mut records = Vec::new();
        let mut read_bytes = 0;
        let mut order: Vec<_> = self.assigned.iter_mut().collect();
        order.rotate_left(start);
        for (topic_partition, assigned) in order {
            if read_bytes >= self.max_poll_bytes {
                break;
            }
            if !self.paused.is_empty() && self.paused.contains(topic_partition) {
                continue;
            }
            let end_offset = readable_end(&assigned.partition, self.isolation)
                .map_err(|error| read_error(topic_partition, error))?;
            if assigned.position >= end_offset {
                continue;
            }
            let chunk = read_chunk(topic_partition, assigned)?;
            read_bytes += chunk.len();
            let readable = Readable::new(assigned, end_offset, self.isolation)
                .map_err(|error| read_error(topic_partition, error))?;
            let last_offset = decode_chunk(topic_partition, chunk, &readable, &mut records)?;
            if let Some(last_offset) = last_offset {
                assigned.position = assigned.position.max(last_offset + 1);
            }
        }
        Ok(records)
    }

    /// Waits until an assigned partition grows or `deadline` passes.
    pub async fn wait_for_data(&self, deadline: Instant) {
        let waiter = Arc::new(Notify::new());
        // Register before checking, so an append in between still wakes us.
        for assigned in self.assigned.values() {
            assigned.partition.register_waiter(&waiter);
        }
        if !self
            .assigned
            .values()
            .all(|assigned| assigned.is_caught_up(self.isolation))
        {
            return;
        }
        let deadline = tokio::time::Instant::from_std(deadline);
        let _ = tokio::time::timeout_at(deadline, waiter.notified()).await;
    }
}

/// Every record of `topic_partition` from `from_offset` to `end_offset` (exclusive), or to
/// the readable end as it is now (the high watermark, or with [`Isolation::ReadCommitted`]
/// the last stable offset); positions of the group are not touched.
///
/// # Errors
/// When the partition does not exist, cannot be read, or holds a batch that does not decode.
#[cfg(test)]
pub fn read_range(
    cluster: &Cluster,
    topic_partition: &TopicPartition,
    from_offset: i64,
    end_offset: Option<i64>,
    isolation: Isolation,
) -> Result<Vec<InputRecord>, BackendError> {
    let partition = find_partition(cluster, topic_partition)?;
    let readable_end =
        readable_end(&partition, isolation).map_err(|error| read_error(topic_partition, error))?;
    let end_offset = end_offset.map_or(readable_end, |end| end.min(readable_end));
    let mut assigned = Assigned {
        partition,
        position: from_offset,
    };
    let mut records = Vec::new();
    while assigned.position < end_offset {
        let chunk = read_chunk(topic_partition, &mut assigned)?;
        if chunk.is_empty() {
            break;
        }
        let readable = Readable::new(&assigned, end_offset, isolation)
            .map_err(|error| read_error(topic_partition, error))?;
        let last_offset = decode_chunk(topic_partition, chunk, &readable, &mut records)?;
        // Step by the batches read, not the records kept: a compacted log has gaps.
        assigned.position = last_offset.map_or(end_offset, |offset| offset + 1);
    }
    Ok(records)
}

/// Records of `topic_partition` from `from_offset`, below `end_offset` (when given) and the
/// readable end, about `max_bytes` of them (whole batches; the first one even if larger):
/// one chunk of a restore, read as Fetch would, with the readable end it saw.
///
/// # Errors
/// When the partition does not exist, cannot be read, or holds a batch that does not decode.
pub fn read_bounded(
    cluster: &Cluster,
    topic_partition: &TopicPartition,
    from_offset: i64,
    end_offset: Option<i64>,
    isolation: Isolation,
    max_bytes: usize,
) -> Result<RestoreChunk, BackendError> {
    let partition = find_partition(cluster, topic_partition)?;
    let readable_end =
        readable_end(&partition, isolation).map_err(|error| read_error(topic_partition, error))?;
    let stop = end_offset.map_or(readable_end, |end| end.min(readable_end));
    let mut assigned = Assigned {
        partition,
        position: from_offset,
    };
    let mut records = Vec::new();
    let mut read_bytes = 0usize;
    while assigned.position < stop && read_bytes < max_bytes {
        let chunk = read_chunk(topic_partition, &mut assigned)?;
        if chunk.is_empty() {
            break;
        }
        read_bytes += chunk.len();
        let readable = Readable::new(&assigned, stop, isolation)
            .map_err(|error| read_error(topic_partition, error))?;
        let last_offset = decode_chunk(topic_partition, chunk, &readable, &mut records)?;
        // Step by the batches read, not the records kept: a compacted log has gaps.
        assigned.position = last_offset.map_or(stop, |offset| offset + 1);
    }
    // A batch may run past `stop`; its records there were not returned.
    Ok(RestoreChunk {
        records,
        next_offset: assigned.position.min(stop).max(from_offset),
        end_offset: readable_end,
    })
}

/// Where reading `partition` stops (exclusive): the high watermark, or for read_committed
/// the last stable offset.
fn readable_end(partition: &Partition, isolation: Isolation) -> Result<i64, StorageError> {
    match isolation {
        Isolation::ReadUncommitted => Ok(partition.high_watermark()),
        Isolation::ReadCommitted => partition.last_stable_offset(),
    }
}

/// What one read may return: records from `from_offset` below `end_offset`, outside the
/// aborted transactions.
struct Readable {
    from_offset: i64,
    end_offset: i64,
    /// Aborted transactions overlapping the range; empty when reading uncommitted.
    aborted: Vec<AbortedTransaction>,
}

impl Readable {
    fn new(
        assigned: &Assigned,
        end_offset: i64,
        isolation: Isolation,
    ) -> Result<Readable, StorageError> {
        let from_offset = assigned.position;
        let aborted = match isolation {
            Isolation::ReadUncommitted => Vec::new(),
            Isolation::ReadCommitted => assigned
                .partition
                .aborted_transactions(from_offset, end_offset)?,
        };
        Ok(Readable {
            from_offset,
            end_offset,
            aborted,
        })
    }

    /// Whether `batch` belongs to an aborted transaction: its producer's records within
    /// that transaction's offsets.
    fn is_aborted(&self, batch: &RecordBatchView) -> bool {
        batch.is_transactional()
            && self.aborted.iter().any(|aborted| {
                aborted.producer_id == batch.producer_id()
                    && (aborted.first_offset..=aborted.last_offset).contains(&batch.base_offset())
            })
    }
}

fn find_partition(
    cluster: &Cluster,
    topic_partition: &TopicPartition,
) -> Result<Arc<Partition>, BackendError> {
    cluster
        .topic(&topic_partition.topic)
        .and_then(|topic| topic.partition(topic_partition.partition).cloned())
        .ok_or_else(|| BackendError::new(format!("read {topic_partition}"), "no such partition"))
}

/// Reads up to [`PARTITION_READ_MAX_BYTES`] of batches at the position. A position outside
/// the log (retention removed it, or the log was truncated) restarts at the log start, as
/// `auto.offset.reset=earliest` does.
fn read_chunk(
    topic_partition: &TopicPartition,
    assigned: &mut Assigned,
) -> Result<Bytes, BackendError> {
    let partition = &assigned.partition;
    match partition.read(
        assigned.position,
        PARTITION_READ_MAX_BYTES,
        FirstBatch::AlwaysWhole,
    ) {
        Ok(chunk) => Ok(chunk),
        Err(StorageError::OffsetOutOfRange { .. }) => {
            let reset = partition.log_start_offset();
            warn!(%topic_partition, position = assigned.position, reset, "position out of range; reading from the log start");
            assigned.position = reset;
            partition
                .read(reset, PARTITION_READ_MAX_BYTES, FirstBatch::AlwaysWhole)
                .map_err(|error| read_error(topic_partition, error))
        }
        Err(error) => Err(read_error(topic_partition, error)),
    }
}

fn read_error(topic_partition: &TopicPartition, error: impl std::fmt::Display) -> BackendError {
    BackendError::new(format!("read {topic_partition}"), error)
}

/// Decodes the records of `chunk` that `readable` allows into `records`. Returns the last
/// offset the batches below the readable end cover, so callers step past batches whose
/// records compaction removed or that carry none (control batches, aborted ones), and
/// never past the end.
fn decode_chunk(
    topic_partition: &TopicPartition,
    chunk: Bytes,
    readable: &Readable,
    records: &mut Vec<InputRecord>,
) -> Result<Option<i64>, BackendError> {
    let mut last_offset = None;
    for batch in batches(chunk) {
        let batch = batch.map_err(|error| read_error(topic_partition, error))?;
        // Transactions are decided batch by batch, so the last stable offset never falls
        // inside a batch: one starting at the end is past it whole.
        if batch.base_offset() >= readable.end_offset {
            break;
        }
        last_offset = Some(batch.last_offset());
        // Control batches mark transactions, which carry no user records.
        let skipped = batch.is_control() || readable.is_aborted(&batch);
        if skipped || batch.last_offset() < readable.from_offset {
            continue;
        }
        decode_batch(topic_partition, &batch, readable, records)?;
    }
    Ok(last_offset)
}

fn decode_batch(
    topic_partition: &TopicPartition,
    batch: &RecordBatchView,
    readable: &Readable,
    records: &mut Vec<InputRecord>,
) -> Result<(), BackendError> {
    let (from_offset, end_offset) = (readable.from_offset, readable.end_offset);
    let log_append_time =
        (batch.timestamp_type() == TimestampType::LogAppendTime).then(|| batch.max_timestamp());
    let decoded = batch
        .records()
        .map_err(|error| read_error(topic_partition, error))?;
    let wanted = decoded
        .into_iter()
        .filter(|record| record.offset >= from_offset && record.offset < end_offset);
    for record in wanted {
        let headers = record
            .headers
            .into_iter()
            .map(|header| (header.key, header.value.map(|value| value.to_vec())))
            .collect();
        records.push(InputRecord {
            topic: topic_partition.topic.clone(),
            partition: topic_partition.partition,
            offset: record.offset,
            timestamp_ms: log_append_time.unwrap_or(record.timestamp_ms),
            key: record.key.map(|key| key.to_vec()),
            value: record.value.map(|value| value.to_vec()),
            headers: headers_of(headers),
        });
    }
    Ok(())
}
