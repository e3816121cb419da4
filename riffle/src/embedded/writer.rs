//! Writing for the embedded runtime: records are buffered per partition as record batches
//! and appended through the Produce handler with acks=all, so they take exactly the path a
//! client's batches take (validation, offsets, fsync under the `acks-all` flush policy).
//!
//! Under exactly-once the writer holds a [`TransactionalProducer`]: each partition joins
//! the open transaction before its first batch, and batches go out stamped with the
//! producer's id, epoch and sequences and the transactional id, as a transactional
//! client's would.

use std::collections::BTreeMap;
use std::sync::Arc;

use riffle_processor::runtime::BackendError;
use riffle_processor::{OutputRecord, TopicPartition};
use riffle_protocol::ErrorCode;
use riffle_protocol::api::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};
use riffle_protocol::record::{Compression, RecordBatchBuilder};

use super::refusal::refused;
use super::transaction::TransactionalProducer;
use riffle_server::cluster::Cluster;
use riffle_server::handler::{RequestContext, produce};

/// The Produce version used; the handler treats 3-10 alike for v2 batches.
const PRODUCE_VERSION: i16 = 9;
/// acks=all: answered once the batch is as durable as the flush policy makes anything.
const ACKS_ALL: i16 = -1;
/// How long Produce may take, as a client would say it.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;

/// At most this many bytes of varints frame a record in a v2 batch: its length, timestamp
/// and offset deltas, key and value lengths and header count (the attributes byte included).
const RECORD_FRAMING_BYTES_MAX: usize = 5 + 1 + 10 + 5 + 5 + 5 + 5;
/// At most this many bytes of varints frame one header: its name and value lengths.
const HEADER_FRAMING_BYTES_MAX: usize = 5 + 5;

/// An upper bound on the bytes `record` adds to a batch's records.
fn record_bytes_bound(record: &OutputRecord) -> usize {
    let headers_bytes: usize = record
        .headers
        .iter()
        .map(|(name, value)| {
            HEADER_FRAMING_BYTES_MAX + name.len() + value.as_ref().map_or(0, Vec::len)
        })
        .sum();
    let key_bytes = record.key.as_ref().map_or(0, Vec::len);
    let value_bytes = record.value.as_ref().map_or(0, Vec::len);
    RECORD_FRAMING_BYTES_MAX + key_bytes + value_bytes + headers_bytes
}

/// The buffered batches and what was written since the last flush.
pub struct Writer {
    /// One open batch per partition. Bounded: a batch reaching `max_batch_bytes` is
    /// appended at once by [`Writer::send`].
    buffers: BTreeMap<TopicPartition, RecordBatchBuilder>,
    /// Per partition written since the last flush, the offset after its last record.
    written: BTreeMap<TopicPartition, i64>,
    /// Uncompressed record bytes at which a partition's batch is appended; below the
    /// default `max.message.bytes` (1 MiB) so a batch is never refused for its size.
    max_batch_bytes: usize,
    /// Under exactly-once, the producer whose transactions the batches belong to.
    producer: Option<TransactionalProducer>,
    /// Who the Produce requests come from: the topology's principal.
    context: RequestContext,
}

impl Writer {
    /// An empty writer, producing as `context`'s principal.
    pub fn new(max_batch_bytes: usize, context: RequestContext) -> Writer {
        Writer {
            buffers: BTreeMap::new(),
            written: BTreeMap::new(),
            max_batch_bytes,
            producer: None,
            context,
        }
    }

    /// Writes every later batch in transactions of `producer`.
    pub fn set_producer(&mut self, producer: TransactionalProducer) {
        self.producer = Some(producer);
    }

    /// The transactional producer, under exactly-once.
    pub fn producer_mut(&mut self) -> Option<&mut TransactionalProducer> {
        self.producer.as_mut()
    }

    /// Drops the buffered batches and what was written since the last flush: they belong
    /// to a transaction being aborted.
    pub fn discard(&mut self) {
        self.buffers.clear();
        self.written.clear();
    }

    /// Buffers `record` for `partition` of its topic; appends that partition's batch when
    /// it is full, and first, if the record would take the batch past `max_batch_bytes`, so
    /// a batch passes `max_batch_bytes` only by a record it holds alone.
    ///
    /// # Errors
    /// When a full batch cannot be appended.
    pub async fn send(
        &mut self,
        cluster: &Arc<Cluster>,
        partition: i32,
        record: OutputRecord,
    ) -> Result<(), BackendError> {
        let record_bytes = record_bytes_bound(&record);
        let topic_partition = TopicPartition::new(record.topic, partition);
        let overflows = self.buffers.get(&topic_partition).is_some_and(|builder| {
            builder.records_count() > 0
                && builder.uncompressed_records_bytes() + record_bytes > self.max_batch_bytes
        });
        if overflows {
            self.append_partition(cluster, &topic_partition).await?;
        }
        let builder = self
            .buffers
            .entry(topic_partition.clone())
            .or_insert_with(|| RecordBatchBuilder::new(Compression::None));
        let headers: Vec<(&str, Option<&[u8]>)> = record
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_deref()))
            .collect();
        builder.append(
            record.timestamp_ms,
            record.key.as_deref(),
            record.value.as_deref(),
            &headers,
        );
        if builder.uncompressed_records_bytes() >= self.max_batch_bytes {
            self.append_partition(cluster, &topic_partition).await?;
        }
        Ok(())
    }

    /// Appends `topic_partition`'s open batch on its own.
    async fn append_partition(
        &mut self,
        cluster: &Arc<Cluster>,
        topic_partition: &TopicPartition,
    ) -> Result<(), BackendError> {
        match self.buffers.remove(topic_partition) {
            Some(builder) => {
                self.append(
                    cluster,
                    BTreeMap::from([(topic_partition.clone(), builder)]),
                )
                .await
            }
            None => Ok(()),
        }
    }

    /// Appends every buffered batch (in one Produce request, so one fsync covers them) and
    /// returns, per partition written since the last flush, the offset after its last record.
    ///
    /// # Errors
    /// When any partition's append fails; what was written stays counted for the next flush.
    pub async fn flush(
        &mut self,
        cluster: &Arc<Cluster>,
    ) -> Result<BTreeMap<TopicPartition, i64>, BackendError> {
        let batches = std::mem::take(&mut self.buffers);
        if !batches.is_empty() {
            self.append(cluster, batches).await?;
        }
        Ok(std::mem::take(&mut self.written))
    }

    /// Appends one batch per partition through the Produce handler and waits for acks=all;
    /// under exactly-once, as transactional batches of partitions added to the transaction.
    async fn append(
        &mut self,
        cluster: &Arc<Cluster>,
        batches: BTreeMap<TopicPartition, RecordBatchBuilder>,
    ) -> Result<(), BackendError> {
        if let Some(producer) = self.producer.as_mut() {
            producer.add_partitions(cluster, batches.keys()).await?;
        }
        let (request, record_counts) = self.produce_request(batches)?;
        let response = produce::handle(cluster, &self.context, PRODUCE_VERSION, request)
            .await
            .ok_or_else(|| BackendError::new("write", "produce with acks=all got no answer"))?;
        // Every accepted batch is counted before an error is returned, so the next batch
        // of a partition that took this one gets the next sequence.
        let mut first_error = None;
        for topic in response.responses {
            for answer in topic.partition_responses {
                let topic_partition = TopicPartition::new(topic.name.clone(), answer.index);
                if answer.error_code != ErrorCode::None.code() {
                    let operation = format!("write {topic_partition}");
                    let mut error = refused(&self.context, &operation, answer.error_code);
                    if let Some(message) = answer.error_message.filter(|text| !text.is_empty()) {
                        error.message = format!("{} {message}", error.message);
                    }
                    first_error.get_or_insert(error);
                    continue;
                }
                let count = record_counts.get(&topic_partition).copied().unwrap_or(0);
                if let Some(producer) = self.producer.as_mut() {
                    producer.acknowledge(&topic_partition, count);
                }
                let count = i64::try_from(count).unwrap_or(i64::MAX);
                self.written
                    .insert(topic_partition, answer.base_offset + count);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// One Produce request with every batch (stamped by the producer under exactly-once),
    /// and each partition's record count.
    fn produce_request(
        &self,
        batches: BTreeMap<TopicPartition, RecordBatchBuilder>,
    ) -> Result<(ProduceRequest, BTreeMap<TopicPartition, usize>), BackendError> {
        let mut record_counts = BTreeMap::new();
        let mut topics: BTreeMap<String, Vec<PartitionProduceData>> = BTreeMap::new();
        for (topic_partition, mut builder) in batches {
            if let Some(producer) = &self.producer {
                producer.stamp(&mut builder, &topic_partition);
            }
            let bytes = builder
                .build()
                .map_err(|error| BackendError::new(format!("write {topic_partition}"), error))?;
            topics
                .entry(topic_partition.topic.clone())
                .or_default()
                .push(PartitionProduceData {
                    index: topic_partition.partition,
                    records: Some(bytes),
                });
            record_counts.insert(topic_partition, builder.records_count());
        }
        let request = ProduceRequest {
            transactional_id: self
                .producer
                .as_ref()
                .map(|producer| producer.transactional_id().to_string()),
            acks: ACKS_ALL,
            timeout_ms: PRODUCE_TIMEOUT_MS,
            topic_data: topics
                .into_iter()
                .map(|(name, partition_data)| TopicProduceData {
                    name,
                    partition_data,
                })
                .collect(),
        };
        Ok((request, record_counts))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use riffle_processor::{Headers, OutputKind, OutputPartition};
    use riffle_protocol::record::batches;
    use riffle_storage::FirstBatch;

    use super::*;
    use riffle_server::cluster::Validation;
    use riffle_server::testing::test_cluster;

    /// The default `max.message.bytes`: the largest batch a topic accepts.
    const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
    /// The embedded runtime's default batch target.
    const MAX_BATCH_BYTES: usize = 512 * 1024;

    fn record_of(value_bytes: usize, fill: u8) -> OutputRecord {
        OutputRecord {
            topic: "out".into(),
            partition: OutputPartition::Exactly(0),
            key: None,
            value: Some(vec![fill; value_bytes]),
            timestamp_ms: 1_000,
            headers: Headers::default(),
            kind: OutputKind::Sink,
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_record_that_would_overfill_the_open_batch_starts_a_new_one() {
        // Proves the size check comes before the record joins the batch: 400 KiB buffered
        // and then a 700 KiB record, together over max.message.bytes, go out as two
        // batches the topic accepts, not one it refuses with MESSAGE_TOO_LARGE.
        let (_dir, cluster) = test_cluster();
        cluster
            .create_topic("out", 1, BTreeMap::new(), Validation::Apply)
            .expect("create");
        let cluster = Arc::new(cluster);
        let mut writer = Writer::new(MAX_BATCH_BYTES, RequestContext::processor(&cluster));
        let (first_bytes, second_bytes) = (400 * 1024, 700 * 1024);
        assert!(first_bytes < MAX_BATCH_BYTES);
        assert!(first_bytes + second_bytes > MAX_MESSAGE_BYTES);
        writer
            .send(&cluster, 0, record_of(first_bytes, b'a'))
            .await
            .expect("the first record is buffered");
        writer
            .send(&cluster, 0, record_of(second_bytes, b'b'))
            .await
            .expect("the second record is written in a batch of its own");
        let written = writer.flush(&cluster).await.expect("flush");
        assert_eq!(written.values().copied().collect::<Vec<_>>(), vec![2]);

        let log = &cluster.topic("out").expect("topic").partitions[0];
        let stored = log
            .read(0, usize::MAX, FirstBatch::AlwaysWhole)
            .expect("read");
        let values: Vec<Vec<u8>> = batches(stored)
            .map(|batch| batch.expect("a valid batch"))
            .flat_map(|batch| batch.records().expect("records"))
            .map(|record| record.value.expect("a value").to_vec())
            .collect();
        assert_eq!(
            values,
            vec![vec![b'a'; first_bytes], vec![b'b'; second_bytes]]
        );
    }
}
