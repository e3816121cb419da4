//! [`EmbeddedBackend`]: the processor runtime's [`Backend`] inside the broker process.
//!
//! Under exactly-once, each commit is one transaction of the broker's own coordinator: the
//! writer's batches are transactional, the input offsets go in with TxnOffsetCommit as this
//! member of its generation, and EndTxn writes the markers; reads are read_committed. No
//! sockets, and nothing a client's transaction would not do, so outside read_committed
//! consumers see a topology's outputs and its group's offsets change together.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use riffle_processor::internals::InternalTopic;
use riffle_processor::runtime::{
    Backend, BackendError, BackendEvent, CommittedOffset, RestoreChunk,
};
use riffle_processor::{InputRecord, OutputRecord, TopicPartition};
use riffle_protocol::ErrorCode;

use super::membership::{self, GroupTimeouts, HeartbeatOutcome, Membership};
use super::reader::{self, Isolation, Reader};
use super::refusal::refused;
use super::transaction::TransactionalProducer;
use super::writer::Writer;
use riffle_server::cluster::{Cluster, Validation};
use riffle_server::handler::RequestContext;
use riffle_server::security::acl::{AclOperation, ResourceType};

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
    /// Under exactly-once, how long the coordinator keeps a transaction open before it
    /// aborts it (`transaction.timeout.ms`; Kafka Streams uses 10 s): how long at most a
    /// dead producer's open transaction holds back read_committed readers.
    pub transaction_timeout: Duration,
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
            transaction_timeout: Duration::from_secs(10),
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
    /// Who the topology acts as: `--processor-principal`. Its handler calls carry it, and
    /// what this backend does without a handler (reading logs, creating topics, counting
    /// partitions) is checked against it as Fetch, CreateTopics and Metadata would check.
    context: RequestContext,
}

impl EmbeddedBackend {
    /// A backend over `cluster`; nothing happens until the runner subscribes.
    pub fn new(cluster: Arc<Cluster>, config: EmbeddedConfig) -> EmbeddedBackend {
        let context = RequestContext::processor(&cluster);
        EmbeddedBackend {
            reader: Reader::new(config.max_poll_bytes),
            writer: Writer::new(config.max_batch_bytes, context.clone()),
            context,
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
            for topic_partition in &partitions {
                check_read(&self.cluster, &self.context, &topic_partition.topic)?;
            }
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

/// Reading a topic's log directly is what a Fetch does, so it needs Read on the topic.
fn check_read(
    cluster: &Cluster,
    context: &RequestContext,
    topic: &str,
) -> Result<(), BackendError> {
    if context
        .access(cluster)
        .allows(AclOperation::Read, ResourceType::Topic, topic)
    {
        return Ok(());
    }
    let code = ErrorCode::TopicAuthorizationFailed.code();
    Err(refused(context, &format!("read {topic}"), code))
}

impl Backend for EmbeddedBackend {
    async fn partition_count(&mut self, topic: &str) -> Result<Option<i32>, BackendError> {
        let access = self.context.access(&self.cluster);
        if !access.allows(AclOperation::Describe, ResourceType::Topic, topic) {
            let code = ErrorCode::TopicAuthorizationFailed.code();
            return Err(refused(
                &self.context,
                &format!("describe topic {topic}"),
                code,
            ));
        }
        let Some(topic) = self.cluster.topic(topic) else {
            return Ok(None);
        };
        let count = i32::try_from(topic.partitions.len())
            .map_err(|error| BackendError::new(format!("partitions of {}", topic.name), error))?;
        Ok(Some(count))
    }

    async fn create_topic(&mut self, topic: &InternalTopic) -> Result<(), BackendError> {
        if !self
            .context
            .access(&self.cluster)
            .may_create_topic(&topic.name)
        {
            let code = ErrorCode::TopicAuthorizationFailed.code();
            let operation = format!("create topic {}", topic.name);
            return Err(refused(&self.context, &operation, code));
        }
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
            self.context.clone(),
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

    async fn read_chunk(
        &mut self,
        partition: &TopicPartition,
        from_offset: i64,
        end_offset: Option<i64>,
        max_bytes: usize,
    ) -> Result<RestoreChunk, BackendError> {
        check_read(&self.cluster, &self.context, &partition.topic)?;
        let isolation = self.reader.isolation();
        let (cluster, partition) = (self.cluster.clone(), partition.clone());
        // Reading segments may wait on the disk.
        tokio::task::spawn_blocking(move || {
            reader::read_bounded(
                &cluster,
                &partition,
                from_offset,
                end_offset,
                isolation,
                max_bytes,
            )
        })
        .await
        .map_err(|error| BackendError::new("read chunk", error))?
    }

    async fn seek(&mut self, offsets: &[(TopicPartition, i64)]) -> Result<(), BackendError> {
        for (topic_partition, offset) in offsets {
            self.reader
                .assign(&self.cluster, topic_partition, Some(*offset))?;
        }
        Ok(())
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

    async fn init_transactions(&mut self, transactional_id: &str) -> Result<(), BackendError> {
        let timeout = self.config.transaction_timeout;
        let producer =
            TransactionalProducer::init(&self.cluster, transactional_id, timeout).await?;
        self.writer.set_producer(producer);
        self.reader.set_isolation(Isolation::ReadCommitted);
        Ok(())
    }

    async fn commit_transaction(
        &mut self,
        offsets: &[(TopicPartition, i64, String)],
    ) -> Result<(), BackendError> {
        let operation = "commit transaction";
        self.writer.flush(&self.cluster).await?;
        let Some(membership) = self.membership.as_mut() else {
            return Err(BackendError::new(operation, "not subscribed to a group"));
        };
        let Some(producer) = self.writer.producer_mut() else {
            return Err(BackendError::new(operation, "transactions not initialized"));
        };
        if !offsets.is_empty() {
            producer
                .add_offsets(&self.cluster, membership.group_id())
                .await?;
            let outcome = membership
                .commit_in_transaction(&self.cluster, producer, offsets)
                .await?;
            if let HeartbeatOutcome::Rejoin = outcome {
                self.start_rejoin();
                return Err(BackendError::new(
                    operation,
                    "the group moved on (a rebalance): this member's offsets are fenced",
                ));
            }
        }
        producer.commit(&self.cluster).await
    }

    async fn abort_transaction(&mut self) -> Result<(), BackendError> {
        self.writer.discard();
        match self.writer.producer_mut() {
            Some(producer) => producer.abort(&self.cluster).await,
            None => Ok(()),
        }
    }

    async fn rewind(&mut self, partitions: &[TopicPartition]) -> Result<(), BackendError> {
        for topic_partition in partitions {
            check_read(&self.cluster, &self.context, &topic_partition.topic)?;
        }
        let committed = membership::committed_offsets(&self.cluster, self.group_id(), partitions);
        for (topic_partition, offset) in &committed {
            let position = offset.as_ref().map(|committed| committed.offset);
            self.reader
                .assign(&self.cluster, topic_partition, position)?;
        }
        Ok(())
    }

    fn is_caught_up(&self, partition: &TopicPartition) -> bool {
        self.reader.is_caught_up(partition)
    }

    fn set_paused(&mut self, partitions: &[TopicPartition]) {
        self.reader.set_paused(partitions);
    }

    fn position(&self, partition: &TopicPartition) -> Option<i64> {
        self.reader.position(partition)
    }

    async fn delete_records(
        &mut self,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<(), BackendError> {
        let cluster = self.cluster.clone();
        let offsets = offsets.to_vec();
        // Deleting segments touches the disk.
        tokio::task::spawn_blocking(move || {
            for (topic_partition, offset) in offsets {
                let operation = || format!("delete records of {topic_partition} below {offset}");
                let partition = cluster
                    .topic(&topic_partition.topic)
                    .and_then(|topic| topic.partition(topic_partition.partition).cloned())
                    .ok_or_else(|| BackendError::new(operation(), "no such partition"))?;
                partition
                    .delete_records_before(offset)
                    .map_err(|error| BackendError::new(operation(), error))?;
            }
            Ok(())
        })
        .await
        .map_err(|error| BackendError::new("delete records", error))?
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
    use riffle_storage::MutexRecover;

    use super::*;
    use riffle_server::testing::test_config;
    use riffle_server::transaction::metadata::TransactionState;

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
        // records and catch up, commits read back, and read_chunk leaves positions alone.
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

        let chunk = backend
            .read_chunk(&partitions[1], 1, Some(2), 1024)
            .await
            .unwrap();
        assert_eq!(chunk.records.len(), 1);
        assert_eq!(chunk.records[0].offset, 1);
        assert_eq!((chunk.next_offset, chunk.end_offset), (2, 3));
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

    /// Words re-keyed through a repartition topic and counted, every count written out:
    /// under exactly-once each word's outputs read 1, 2, ..., n with no repeat and no gap.
    fn word_count_topology() -> riffle_processor::Topology {
        use riffle_processor::{Grouped, I64Serde, StreamsBuilder, StringSerde};
        let builder = StreamsBuilder::new("words-app");
        builder
            .stream("lines", StringSerde, StringSerde)
            .select_key(|_key, word: &String| word.clone())
            .group_by_key_with(Grouped::new(StringSerde, StringSerde))
            .count("word-counts-store")
            .to("word-counts", StringSerde, I64Serde);
        builder.build().unwrap()
    }

    const WORDS: [&str; 4] = ["apple", "pear", "plum", "fig"];

    /// Appends input lines `range` (a word each) to both partitions of `lines`.
    async fn write_lines(cluster: &Arc<Cluster>, range: std::ops::Range<usize>) {
        let mut input = EmbeddedBackend::new(cluster.clone(), EmbeddedConfig::default());
        for index in range {
            let partition = i32::from(index % 2 == 1);
            let word = WORDS[(index * 3 + index / 5) % WORDS.len()];
            input
                .send(partition, output("lines", "line", word))
                .await
                .unwrap();
        }
        input.flush().await.unwrap();
    }

    /// A runner committing exactly-once every 200 ms over a backend that appends every
    /// record as its own batch, so its transaction is open nearly all the time.
    fn eos_runner(cluster: &Arc<Cluster>) -> riffle_processor::runtime::Runner<EmbeddedBackend> {
        use riffle_processor::runtime::{ProcessingGuarantee, RuntimeConfig};
        let embedded = EmbeddedConfig {
            max_batch_bytes: 1,
            group_instance_id: Some("node-1".to_string()),
            ..EmbeddedConfig::default()
        };
        let config = RuntimeConfig {
            commit_interval: Duration::from_millis(200),
            poll_timeout: Duration::from_millis(10),
            instance_id: Some("node-1".to_string()),
            // Every update comes out (no record cache): the test reads counts 1, 2, ..., n.
            cache_max_bytes: 0,
            ..RuntimeConfig::for_guarantee(ProcessingGuarantee::ExactlyOnce)
        };
        let backend = EmbeddedBackend::new(cluster.clone(), embedded);
        riffle_processor::runtime::Runner::new(word_count_topology(), backend, config)
    }

    /// Whether the group committed the end of every partition of `lines` and of the
    /// repartition topic, so every line went all the way through.
    fn all_consumed(cluster: &Cluster) -> bool {
        let topics = cluster.all_topics();
        let consumed = topics
            .iter()
            .filter(|topic| topic.name == "lines" || topic.name.ends_with("-repartition"));
        let mut partitions = Vec::new();
        for topic in consumed {
            for partition in &topic.partitions {
                let end = partition.last_stable_offset().unwrap();
                partitions.push((
                    TopicPartition::new(topic.name.clone(), partition.index),
                    end,
                ));
            }
        }
        let wanted: Vec<TopicPartition> = partitions.iter().map(|(p, _)| p.clone()).collect();
        let committed = membership::committed_offsets(cluster, "words-app", &wanted);
        partitions.len() == 4
            && committed
                .iter()
                .zip(&partitions)
                .all(|((_, commit), (_, end))| {
                    let committed = commit.as_ref().map_or(0, |commit| commit.offset);
                    committed >= *end
                })
    }

    /// Waits up to 30 s for `condition`, failing with `what`.
    async fn wait_for(what: &str, condition: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !condition() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_runner_dropped_mid_transaction_is_replaced_without_repeats_or_gaps() {
        // Proves the co-located exactly-once path through a crash inside a transaction: a
        // runner is dropped while the coordinator shows its transaction ongoing (records
        // of it already in the output, changelog and repartition logs); a new runner with
        // the same instance id fences it, which aborts that transaction, restores the
        // committed changelog and reprocesses from the committed offsets; read_committed,
        // each word's counts read 1, 2, ..., n, with no repeat and no gap.
        let dir = tempfile::tempdir().unwrap();
        let config = test_config(dir.path(), &["--group-initial-rebalance-delay-ms", "0"]);
        let cluster = Arc::new(Cluster::open(config, ("127.0.0.1".into(), 9092)).unwrap());
        let lines = InternalTopic {
            name: "lines".to_string(),
            partitions: 2,
            configs: Vec::new(),
        };
        let mut admin = EmbeddedBackend::new(cluster.clone(), EmbeddedConfig::default());
        admin.create_topic(&lines).await.unwrap();
        write_lines(&cluster, 0..60).await;

        let first = eos_runner(&cluster);
        let status = first.status();
        let running = tokio::spawn(first.run_until(std::future::pending()));
        wait_for("the first lines committed", || all_consumed(&cluster)).await;
        write_lines(&cluster, 60..120).await;
        let ongoing = || {
            let transaction = cluster.transactions().describe("words-app-node-1");
            transaction.is_some_and(|t| t.state == TransactionState::Ongoing)
        };
        wait_for("a transaction in progress", ongoing).await;
        running.abort();
        let _ = running.await;
        assert!(ongoing(), "the crash left a transaction open");
        // The first lines may take one commit or several, depending on the machine's pace.
        assert!(status.lock_or_recover().commits >= 1);

        let second = eos_runner(&cluster);
        let consumed = async {
            while !all_consumed(&cluster) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        let finished = tokio::time::timeout(Duration::from_secs(30), second.run_until(consumed));
        finished.await.unwrap().unwrap();

        let mut counts: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
        let out = TopicPartition::new("word-counts", 0);
        for record in reader::read_range(&cluster, &out, 0, None, Isolation::ReadCommitted).unwrap()
        {
            let word = String::from_utf8(record.key.unwrap()).unwrap();
            let bytes: [u8; 8] = record.value.unwrap().try_into().unwrap();
            counts
                .entry(word)
                .or_default()
                .push(i64::from_be_bytes(bytes));
        }
        let mut expected: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
        for index in 0..120 {
            let word = WORDS[(index * 3 + index / 5) % WORDS.len()].to_string();
            let seen = expected.entry(word).or_default();
            seen.push(i64::try_from(seen.len()).unwrap() + 1);
        }
        assert_eq!(counts, expected);
    }

    /// The values of `topic` partition 0 a reader with `isolation` sees.
    fn values(cluster: &Cluster, topic: &str, isolation: Isolation) -> Vec<String> {
        let partition = TopicPartition::new(topic, 0);
        reader::read_range(cluster, &partition, 0, None, isolation)
            .unwrap()
            .into_iter()
            .map(|record| String::from_utf8(record.value.unwrap()).unwrap())
            .collect()
    }

    /// A cluster with one-partition topics `in`, holding 3 records, and `out`.
    async fn cluster_with_input() -> (tempfile::TempDir, Arc<Cluster>) {
        let dir = tempfile::tempdir().unwrap();
        let config = test_config(dir.path(), &["--group-initial-rebalance-delay-ms", "0"]);
        let cluster = Arc::new(Cluster::open(config, ("127.0.0.1".into(), 9092)).unwrap());
        let mut input = EmbeddedBackend::new(cluster.clone(), EmbeddedConfig::default());
        for topic in ["in", "out"] {
            let spec = InternalTopic {
                name: topic.to_string(),
                partitions: 1,
                configs: Vec::new(),
            };
            input.create_topic(&spec).await.unwrap();
        }
        for value in ["i0", "i1", "i2"] {
            input.send(0, output("in", "k", value)).await.unwrap();
        }
        input.flush().await.unwrap();
        (dir, cluster)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_transaction_shows_outputs_with_offsets_and_an_abort_shows_nothing() {
        // Proves the exactly-once path through the broker's own coordinator, in process:
        // outputs and input offsets committed in one transaction appear together to a
        // read_committed reader; an aborted transaction's outputs never appear (though
        // they are in the log) and its offsets stay at the previous commit; rewind reads
        // the input again from that commit; the next transaction (a new producer epoch,
        // sequences from 0) commits normally.
        let (_dir, cluster) = cluster_with_input().await;
        let mut backend = EmbeddedBackend::new(cluster.clone(), EmbeddedConfig::default());
        backend.init_transactions("app-node-1").await.unwrap();
        backend.subscribe("app", &["in".to_string()]).await.unwrap();
        poll_until(&mut backend, |e| matches!(e, BackendEvent::Assigned(_))).await;
        poll_until(&mut backend, |e| matches!(e, BackendEvent::Records(_))).await;
        let input_partition = TopicPartition::new("in", 0);
        let committed_offset = || {
            let partitions = [input_partition.clone()];
            let committed = membership::committed_offsets(&cluster, "app", &partitions);
            committed[0].1.as_ref().map(|c| c.offset)
        };

        for value in ["a", "b"] {
            backend.send(0, output("out", "k", value)).await.unwrap();
        }
        let offsets = [(input_partition.clone(), 2, "meta".to_string())];
        backend.commit_transaction(&offsets).await.unwrap();
        assert_eq!(
            values(&cluster, "out", Isolation::ReadCommitted),
            ["a", "b"]
        );
        assert_eq!(committed_offset(), Some(2));

        backend.send(0, output("out", "k", "c")).await.unwrap();
        backend.flush().await.unwrap();
        assert_eq!(
            values(&cluster, "out", Isolation::ReadCommitted),
            ["a", "b"]
        );
        backend.abort_transaction().await.unwrap();
        assert_eq!(
            values(&cluster, "out", Isolation::ReadUncommitted),
            ["a", "b", "c"]
        );
        assert_eq!(
            values(&cluster, "out", Isolation::ReadCommitted),
            ["a", "b"]
        );
        assert_eq!(committed_offset(), Some(2));

        let rewound = std::slice::from_ref(&input_partition);
        backend.rewind(rewound).await.unwrap();
        let BackendEvent::Records(again) =
            poll_until(&mut backend, |e| matches!(e, BackendEvent::Records(_))).await
        else {
            unreachable!()
        };
        assert_eq!(again.iter().map(|r| r.offset).collect::<Vec<_>>(), [2]);
        backend.send(0, output("out", "k", "d")).await.unwrap();
        let offsets = [(input_partition.clone(), 3, "meta".to_string())];
        backend.commit_transaction(&offsets).await.unwrap();
        assert_eq!(
            values(&cluster, "out", Isolation::ReadCommitted),
            ["a", "b", "d"]
        );
        assert_eq!(committed_offset(), Some(3));
        backend.close().await.unwrap();
    }
}
