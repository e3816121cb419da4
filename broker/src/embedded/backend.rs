//! [`EmbeddedBackend`]: the processor runtime's [`Backend`] inside the broker process.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use riffle_processor::runtime::{Backend, BackendError, BackendEvent, CommittedOffset};
use riffle_processor::{InputRecord, InternalTopic, OutputRecord, TopicPartition};
use riffle_protocol::ErrorCode;

use super::membership::{self, GroupTimeouts, HeartbeatOutcome, Membership};
use super::reader::{self, Reader};
use super::writer::Writer;
use crate::cluster::{Cluster, Validation};

/// Limits and timings of an embedded runtime.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// The group's session, rebalance and heartbeat timings.
    pub group: GroupTimeouts,
    /// Static membership id; `None` joins as a dynamic member. The broker builder sets
    /// `riffle-embedded-node-<node id>`, so a restarted broker takes its old place at once.
    pub group_instance_id: Option<String>,
    /// Most bytes of batches one poll reads over all partitions (Kafka's
    /// `fetch.max.bytes`): the bound on records waiting in the runner.
    pub max_poll_bytes: usize,
    /// Uncompressed bytes at which a partition's output batch is appended.
    pub max_batch_bytes: usize,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            group: GroupTimeouts {
                session_timeout: Duration::from_secs(10),
                rebalance_timeout: Duration::from_secs(60),
                heartbeat_interval: Duration::from_secs(1),
            },
            group_instance_id: None,
            max_poll_bytes: 4 * 1024 * 1024,
            max_batch_bytes: 512 * 1024,
        }
    }
}

/// A [`Backend`] that calls the broker's own code: the group handlers for membership and
/// commits, the partition logs for reads, the Produce handler for writes. No sockets.
pub struct EmbeddedBackend {
    cluster: Arc<Cluster>,
    config: EmbeddedConfig,
    /// Set by `subscribe`.
    membership: Option<Membership>,
    /// Whether the member must (re)join before reading again.
    needs_join: bool,
    reader: Reader,
    writer: Writer,
    /// Events to return from the next poll; at most a revocation and an assignment.
    events: VecDeque<BackendEvent>,
}

impl EmbeddedBackend {
    /// A backend over `cluster`; nothing happens until the runner subscribes.
    pub fn new(cluster: Arc<Cluster>, config: EmbeddedConfig) -> EmbeddedBackend {
        EmbeddedBackend {
            reader: Reader::new(config.max_poll_bytes),
            writer: Writer::new(config.max_batch_bytes),
            cluster,
            config,
            membership: None,
            needs_join: false,
            events: VecDeque::new(),
        }
    }

    /// Joins when needed and heartbeats when due; queues the resulting events.
    async fn group_duties(&mut self) -> Result<(), BackendError> {
        let Some(membership) = self.membership.as_mut() else {
            return Ok(());
        };
        if self.needs_join {
            let partitions = membership.join(&self.cluster).await?;
            let committed = membership.committed(&self.cluster, &partitions);
            for (topic_partition, offset) in &committed {
                let position = offset.as_ref().map(|committed| committed.offset);
                self.reader
                    .assign(&self.cluster, topic_partition, position)?;
            }
            self.needs_join = false;
            self.events.push_back(BackendEvent::Assigned(partitions));
        } else if Instant::now() >= membership.next_heartbeat()
            && let HeartbeatOutcome::Rejoin = membership.heartbeat(&self.cluster)?
        {
            self.start_rejoin();
        }
        Ok(())
    }

    /// Gives up every partition before rejoining (the eager protocol the range assignor
    /// uses): the runner commits in its revocation, then the next poll joins.
    fn start_rejoin(&mut self) {
        self.needs_join = true;
        let revoked = self.reader.revoke_all();
        if !revoked.is_empty() {
            self.events.push_back(BackendEvent::Revoked(revoked));
        }
    }

    fn group_id(&self) -> &str {
        // Only called by the runner after subscribe; before it, the empty id has no offsets
        // (OffsetCommit refuses it), so `committed` answers nothing committed.
        self.membership.as_ref().map_or("", Membership::group_id)
    }

    fn records_event(records: Vec<InputRecord>) -> Vec<BackendEvent> {
        if records.is_empty() {
            Vec::new()
        } else {
            vec![BackendEvent::Records(records)]
        }
    }
}

impl Backend for EmbeddedBackend {
    async fn partition_count(&mut self, topic: &str) -> Result<Option<i32>, BackendError> {
        let Some(topic) = self.cluster.topic(topic) else {
            return Ok(None);
        };
        let count = i32::try_from(topic.partitions.len())
            .map_err(|error| BackendError::new(format!("partitions of {}", topic.name), error))?;
        Ok(Some(count))
    }

    async fn create_topic(&mut self, topic: &InternalTopic) -> Result<(), BackendError> {
        let cluster = self.cluster.clone();
        let spec = topic.clone();
        // Creating a topic fsyncs the metadata log and creates directories.
        let created = tokio::task::spawn_blocking(move || {
            let configs = spec.configs.iter().cloned().collect();
            cluster.create_topic(&spec.name, spec.partitions, configs, Validation::Apply)
        })
        .await
        .map_err(|error| BackendError::new(format!("create topic {}", topic.name), error))?;
        match created {
            Ok(_) => Ok(()),
            Err(error) if error.code == ErrorCode::TopicAlreadyExists => Ok(()),
            Err(error) => Err(BackendError::new(
                format!("create topic {}", topic.name),
                error,
            )),
        }
    }

    async fn subscribe(&mut self, group_id: &str, topics: &[String]) -> Result<(), BackendError> {
        self.membership = Some(Membership::new(
            group_id,
            topics,
            self.config.group_instance_id.clone(),
            self.config.group.clone(),
        ));
        self.needs_join = true;
        Ok(())
    }

    async fn poll(&mut self, timeout: Duration) -> Result<Vec<BackendEvent>, BackendError> {
        let deadline = Instant::now() + timeout;
        self.group_duties().await?;
        if !self.events.is_empty() {
            return Ok(self.events.drain(..).collect());
        }
        let records = self.reader.read_available()?;
        if !records.is_empty() {
            return Ok(Self::records_event(records));
        }
        let heartbeat = self.membership.as_ref().map(Membership::next_heartbeat);
        let wait_until = heartbeat.map_or(deadline, |heartbeat| heartbeat.min(deadline));
        self.reader.wait_for_data(wait_until).await;
        Ok(Self::records_event(self.reader.read_available()?))
    }

    async fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Option<CommittedOffset>)>, BackendError> {
        Ok(membership::committed_offsets(
            &self.cluster,
            self.group_id(),
            partitions,
        ))
    }

    async fn read_range(
        &mut self,
        partition: &TopicPartition,
        from_offset: i64,
        end_offset: Option<i64>,
    ) -> Result<Vec<InputRecord>, BackendError> {
        reader::read_range(&self.cluster, partition, from_offset, end_offset)
    }

    async fn send(&mut self, partition: i32, record: OutputRecord) -> Result<(), BackendError> {
        self.writer.send(&self.cluster, partition, record).await
    }

    async fn flush(&mut self) -> Result<BTreeMap<TopicPartition, i64>, BackendError> {
        self.writer.flush(&self.cluster).await
    }

    async fn commit(
        &mut self,
        offsets: &[(TopicPartition, i64, String)],
    ) -> Result<(), BackendError> {
        let Some(membership) = self.membership.as_mut() else {
            return Err(BackendError::new("commit", "not subscribed to a group"));
        };
        if let HeartbeatOutcome::Rejoin = membership.commit(&self.cluster, offsets).await? {
            self.start_rejoin();
        }
        Ok(())
    }

    fn is_caught_up(&self, partition: &TopicPartition) -> bool {
        self.reader.is_caught_up(partition)
    }

    async fn close(&mut self) -> Result<(), BackendError> {
        self.flush().await?;
        if let Some(membership) = self.membership.take() {
            membership.leave(&self.cluster);
        }
        self.reader.revoke_all();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use riffle_processor::{Headers, OutputKind, OutputPartition};

    use super::*;
    use crate::testing::test_config;

    fn output(topic: &str, key: &str, value: &str) -> OutputRecord {
        OutputRecord {
            topic: topic.to_string(),
            partition: OutputPartition::ByKey,
            key: Some(key.as_bytes().to_vec()),
            value: Some(value.as_bytes().to_vec()),
            timestamp_ms: 1_000,
            headers: Headers::default(),
            kind: OutputKind::Sink,
        }
    }

    async fn poll_until(
        backend: &mut EmbeddedBackend,
        wanted: impl Fn(&BackendEvent) -> bool,
    ) -> BackendEvent {
        for _ in 0..100 {
            let events = backend.poll(Duration::from_millis(100)).await.unwrap();
            if let Some(event) = events.into_iter().find(|event| wanted(event)) {
                return event;
            }
        }
        panic!("the event never came");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn writes_joins_reads_commits_and_leaves_in_process() {
        // Proves the backend round trip without sockets: flushed writes report the next
        // offsets, the group assigns every partition to its only member, polls return the
        // records and catch up, commits read back, and read_range leaves positions alone.
        let dir = tempfile::tempdir().unwrap();
        let config = test_config(dir.path(), &["--group-initial-rebalance-delay-ms", "0"]);
        let cluster = Arc::new(Cluster::open(config, ("127.0.0.1".into(), 9092)).unwrap());
        let mut backend = EmbeddedBackend::new(cluster.clone(), EmbeddedConfig::default());
        let topic = InternalTopic {
            name: "in".to_string(),
            partitions: 2,
            configs: Vec::new(),
        };
        backend.create_topic(&topic).await.unwrap();
        backend.create_topic(&topic).await.unwrap();
        assert_eq!(backend.partition_count("in").await.unwrap(), Some(2));
        for value in ["a", "b", "c"] {
            backend.send(1, output("in", "k", value)).await.unwrap();
        }
        let flushed = backend.flush().await.unwrap();
        assert_eq!(flushed, BTreeMap::from([(TopicPartition::new("in", 1), 3)]));

        backend.subscribe("app", &["in".to_string()]).await.unwrap();
        let assigned = poll_until(&mut backend, |e| matches!(e, BackendEvent::Assigned(_))).await;
        let partitions = vec![TopicPartition::new("in", 0), TopicPartition::new("in", 1)];
        assert_eq!(assigned, BackendEvent::Assigned(partitions.clone()));
        let BackendEvent::Records(records) =
            poll_until(&mut backend, |e| matches!(e, BackendEvent::Records(_))).await
        else {
            unreachable!()
        };
        let values: Vec<_> = records.iter().map(|r| r.value.clone().unwrap()).collect();
        assert_eq!(values, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert!(backend.is_caught_up(&partitions[1]));

        let range = backend
            .read_range(&partitions[1], 1, Some(2))
            .await
            .unwrap();
        assert_eq!(range.len(), 1);
        assert_eq!(range[0].offset, 1);
        backend
            .commit(&[(partitions[1].clone(), 3, "meta".to_string())])
            .await
            .unwrap();
        let committed = backend.committed(&partitions).await.unwrap();
        assert_eq!(committed[0].1, None);
        let expected = CommittedOffset {
            offset: 3,
            metadata: "meta".to_string(),
        };
        assert_eq!(committed[1].1, Some(expected));
        backend.close().await.unwrap();
        let group = cluster.groups().describe_group("app").unwrap();
        assert!(group.members.is_empty(), "the member left");
    }
}
