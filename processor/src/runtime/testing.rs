//! An in-memory cluster and a [`Backend`] over it, for the runner's own tests: partitions
//! are vectors, a transaction is a buffer that a commit appends and an abort drops, and
//! faults are counters a test sets. Read committed is the only isolation there is, since
//! nothing uncommitted is ever in a partition.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::backend::{Backend, BackendError, BackendEvent, CommittedOffset, RestoreChunk};
use crate::lock_policy::MutexRecover;
use crate::record::{Headers, InputRecord, OutputRecord, TopicPartition};
use crate::topology::InternalTopic;

/// What the cluster holds, shared by every backend a test creates over it.
#[derive(Debug, Default)]
pub(crate) struct FakeCluster {
    /// Committed records of each partition; a record's offset is its index.
    pub logs: BTreeMap<TopicPartition, Vec<InputRecord>>,
    /// Partition counts by topic.
    pub partition_counts: BTreeMap<String, i32>,
    /// The group's committed offsets.
    pub committed: BTreeMap<TopicPartition, CommittedOffset>,
    /// Refuses every n-th transaction commit (the n-th, the 2n-th, ...), before it changes
    /// anything, as a broker refusing a commit would.
    pub fail_every_commits: Option<u64>,
    /// Commit attempts so far.
    pub commit_attempts: u64,
    /// Transactions aborted so far.
    pub aborts: u64,
    /// Keeps committed offsets but not their metadata, as some Kafka-compatible brokers
    /// do: the stand-in for such a broker.
    pub drop_commit_metadata: bool,
}

impl FakeCluster {
    /// Creates `topic` with `partitions` empty partitions.
    pub fn create(&mut self, topic: &str, partitions: i32) {
        self.partition_counts.insert(topic.to_string(), partitions);
        for partition in 0..partitions {
            let topic_partition = TopicPartition::new(topic, partition);
            self.logs.entry(topic_partition).or_default();
        }
    }

    /// Appends a record to `partition` of `topic` as a committed write.
    pub fn append(&mut self, topic: &str, partition: i32, key: &[u8], value: &[u8], ts: i64) {
        let topic_partition = TopicPartition::new(topic, partition);
        let log = self.logs.entry(topic_partition).or_default();
        let offset = i64::try_from(log.len()).expect("a test log fits an i64");
        log.push(InputRecord {
            topic: topic.to_string(),
            partition,
            offset,
            timestamp_ms: ts,
            key: Some(key.to_vec()),
            value: Some(value.to_vec()),
            headers: Headers::default(),
        });
    }

    /// The records of every partition of `topic`, partition by partition.
    pub fn records(&self, topic: &str) -> Vec<InputRecord> {
        self.logs
            .iter()
            .filter(|(topic_partition, _)| topic_partition.topic == topic)
            .flat_map(|(_, log)| log.iter().cloned())
            .collect()
    }

    /// Whether the group has committed the end of every partition of `topics`.
    pub fn consumed(&self, topics: &[&str]) -> bool {
        self.logs
            .iter()
            .filter(|(topic_partition, _)| topics.contains(&topic_partition.topic.as_str()))
            .all(|(topic_partition, log)| {
                let end = i64::try_from(log.len()).unwrap_or(i64::MAX);
                let committed = self.committed.get(topic_partition);
                committed.map_or(end == 0, |committed| committed.offset == end)
            })
    }

    /// Appends an output record (tombstones stay tombstones).
    fn append_output(&mut self, topic_partition: &TopicPartition, record: OutputRecord) {
        let log = self.logs.entry(topic_partition.clone()).or_default();
        let offset = i64::try_from(log.len()).expect("a test log fits an i64");
        log.push(InputRecord {
            topic: topic_partition.topic.clone(),
            partition: topic_partition.partition,
            offset,
            timestamp_ms: record.timestamp_ms,
            key: record.key,
            value: record.value,
            headers: record.headers,
        });
    }

    /// Stores the group's offsets, without their metadata if this broker drops it.
    fn commit_offsets(&mut self, offsets: &[(TopicPartition, i64, String)]) {
        for (topic_partition, offset, metadata) in offsets {
            let metadata = match self.drop_commit_metadata {
                true => String::new(),
                false => metadata.clone(),
            };
            let commit = CommittedOffset {
                offset: *offset,
                metadata,
            };
            self.committed.insert(topic_partition.clone(), commit);
        }
    }

    fn end_offset(&self, topic_partition: &TopicPartition) -> i64 {
        let length = self.logs.get(topic_partition).map_or(0, Vec::len);
        i64::try_from(length).unwrap_or(i64::MAX)
    }
}

/// A [`Backend`] over a [`FakeCluster`]: one group member that is assigned every partition
/// of its topics at its first poll, and one producer: transactional after
/// `init_transactions`, else writing at once (at-least-once).
pub(crate) struct FakeBackend {
    cluster: Arc<Mutex<FakeCluster>>,
    topics: Vec<String>,
    assigned: bool,
    transactional: bool,
    /// The open transaction's records.
    pending: Vec<(TopicPartition, OutputRecord)>,
    /// The next offset to return per assigned partition.
    positions: BTreeMap<TopicPartition, i64>,
    /// At-least-once: per partition written since the last flush, the offset after the
    /// last record.
    unflushed: BTreeMap<TopicPartition, i64>,
}

impl FakeBackend {
    pub fn new(cluster: Arc<Mutex<FakeCluster>>) -> FakeBackend {
        FakeBackend {
            cluster,
            topics: Vec::new(),
            assigned: false,
            transactional: false,
            pending: Vec::new(),
            positions: BTreeMap::new(),
            unflushed: BTreeMap::new(),
        }
    }

    fn cluster(&self) -> MutexGuard<'_, FakeCluster> {
        self.cluster.lock_or_recover()
    }

    fn assign_all(&mut self) -> BackendEvent {
        let cluster = self.cluster.lock_or_recover();
        let partitions: Vec<TopicPartition> = cluster
            .logs
            .keys()
            .filter(|topic_partition| self.topics.contains(&topic_partition.topic))
            .cloned()
            .collect();
        for partition in &partitions {
            let start = cluster.committed.get(partition).map_or(0, |c| c.offset);
            self.positions.insert(partition.clone(), start);
        }
        self.assigned = true;
        BackendEvent::Assigned(partitions)
    }

    fn read_new(&mut self) -> Vec<InputRecord> {
        let cluster = self.cluster.lock_or_recover();
        let mut records = Vec::new();
        for (partition, position) in &mut self.positions {
            let log = cluster.logs.get(partition).map_or(&[][..], Vec::as_slice);
            let start = usize::try_from(*position).unwrap_or(usize::MAX);
            records.extend(log.iter().skip(start).cloned());
            *position = i64::try_from(log.len()).unwrap_or(i64::MAX);
        }
        records
    }
}

impl Backend for FakeBackend {
    async fn partition_count(&mut self, topic: &str) -> Result<Option<i32>, BackendError> {
        Ok(self.cluster().partition_counts.get(topic).copied())
    }

    async fn create_topic(&mut self, topic: &InternalTopic) -> Result<(), BackendError> {
        self.cluster().create(&topic.name, topic.partitions);
        Ok(())
    }

    async fn subscribe(&mut self, _group_id: &str, topics: &[String]) -> Result<(), BackendError> {
        self.topics = topics.to_vec();
        Ok(())
    }

    async fn poll(&mut self, timeout: Duration) -> Result<Vec<BackendEvent>, BackendError> {
        if !self.assigned {
            return Ok(vec![self.assign_all()]);
        }
        let records = self.read_new();
        if records.is_empty() {
            tokio::time::sleep(timeout).await;
            return Ok(Vec::new());
        }
        Ok(vec![BackendEvent::Records(records)])
    }

    async fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Option<CommittedOffset>)>, BackendError> {
        let cluster = self.cluster();
        let committed = partitions
            .iter()
            .map(|partition| (partition.clone(), cluster.committed.get(partition).cloned()))
            .collect();
        Ok(committed)
    }

    async fn read_chunk(
        &mut self,
        partition: &TopicPartition,
        from_offset: i64,
        end_offset: Option<i64>,
        max_bytes: usize,
    ) -> Result<RestoreChunk, BackendError> {
        let cluster = self.cluster();
        let log_end = cluster.end_offset(partition);
        let end = end_offset.map_or(log_end, |end| end.min(log_end));
        let log = cluster.logs.get(partition).map_or(&[][..], Vec::as_slice);
        let mut chunk = RestoreChunk {
            records: Vec::new(),
            next_offset: from_offset,
            end_offset: log_end,
        };
        let mut read_bytes = 0;
        for record in log
            .iter()
            .filter(|r| r.offset >= from_offset && r.offset < end)
        {
            if read_bytes >= max_bytes {
                break;
            }
            read_bytes += record.value.as_ref().map_or(0, Vec::len) + 1;
            chunk.next_offset = record.offset + 1;
            chunk.records.push(record.clone());
        }
        Ok(chunk)
    }

    async fn seek(&mut self, offsets: &[(TopicPartition, i64)]) -> Result<(), BackendError> {
        for (partition, offset) in offsets {
            self.positions.insert(partition.clone(), *offset);
        }
        Ok(())
    }

    async fn send(&mut self, partition: i32, record: OutputRecord) -> Result<(), BackendError> {
        let topic_partition = TopicPartition::new(record.topic.clone(), partition);
        if self.transactional {
            self.pending.push((topic_partition, record));
            return Ok(());
        }
        let mut cluster = self.cluster.lock_or_recover();
        cluster.append_output(&topic_partition, record);
        let end = cluster.end_offset(&topic_partition);
        self.unflushed.insert(topic_partition, end);
        Ok(())
    }

    async fn flush(&mut self) -> Result<BTreeMap<TopicPartition, i64>, BackendError> {
        // Offsets of a transaction's records are known once it commits: none to report.
        Ok(std::mem::take(&mut self.unflushed))
    }

    async fn commit(
        &mut self,
        offsets: &[(TopicPartition, i64, String)],
    ) -> Result<(), BackendError> {
        let mut cluster = self.cluster.lock_or_recover();
        cluster.commit_offsets(offsets);
        Ok(())
    }

    fn is_caught_up(&self, partition: &TopicPartition) -> bool {
        let end = self.cluster().end_offset(partition);
        self.positions
            .get(partition)
            .is_some_and(|position| *position >= end)
    }

    async fn close(&mut self) -> Result<(), BackendError> {
        Ok(())
    }

    async fn init_transactions(&mut self, _transactional_id: &str) -> Result<(), BackendError> {
        self.transactional = true;
        Ok(())
    }

    async fn commit_transaction(
        &mut self,
        offsets: &[(TopicPartition, i64, String)],
    ) -> Result<(), BackendError> {
        let mut cluster = self.cluster.lock_or_recover();
        cluster.commit_attempts += 1;
        let attempt = cluster.commit_attempts;
        if cluster
            .fail_every_commits
            .is_some_and(|period| attempt.is_multiple_of(period))
        {
            return Err(BackendError::new("commit transaction", "injected failure"));
        }
        for (topic_partition, record) in self.pending.drain(..) {
            cluster.append_output(&topic_partition, record);
        }
        cluster.commit_offsets(offsets);
        Ok(())
    }

    async fn abort_transaction(&mut self) -> Result<(), BackendError> {
        self.pending.clear();
        self.cluster().aborts += 1;
        Ok(())
    }

    async fn rewind(&mut self, partitions: &[TopicPartition]) -> Result<(), BackendError> {
        let cluster = self.cluster.lock_or_recover();
        for partition in partitions {
            let committed = cluster.committed.get(partition).map_or(0, |c| c.offset);
            self.positions.insert(partition.clone(), committed);
        }
        Ok(())
    }
}
