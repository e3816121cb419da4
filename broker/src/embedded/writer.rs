//! Writing for the embedded runtime: records are buffered per partition as record batches
//! and appended through the Produce handler with acks=all, so they take exactly the path a
//! client's batches take (validation, offsets, fsync under the `acks-all` flush policy).

use std::collections::BTreeMap;
use std::sync::Arc;

use riffle_processor::runtime::BackendError;
use riffle_processor::{OutputRecord, TopicPartition};
use riffle_protocol::ErrorCode;
use riffle_protocol::api::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};
use riffle_protocol::record::{Compression, RecordBatchBuilder};

use crate::cluster::Cluster;
use crate::handler::produce;

/// The Produce version used; the handler treats 3-10 alike for v2 batches.
const PRODUCE_VERSION: i16 = 9;
/// acks=all: answered once the batch is as durable as the flush policy makes anything.
const ACKS_ALL: i16 = -1;
/// How long Produce may take, as a client would say it.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;

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
}

impl Writer {
    /// An empty writer.
    pub fn new(max_batch_bytes: usize) -> Writer {
        Writer {
            buffers: BTreeMap::new(),
            written: BTreeMap::new(),
            max_batch_bytes,
        }
    }

    /// Buffers `record` for `partition` of its topic; appends that partition's batch when
    /// it is full.
    ///
    /// # Errors
    /// When a full batch cannot be appended.
    pub async fn send(
        &mut self,
        cluster: &Arc<Cluster>,
        partition: i32,
        record: OutputRecord,
    ) -> Result<(), BackendError> {
        let topic_partition = TopicPartition::new(record.topic, partition);
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
        let full = builder.uncompressed_records_bytes() >= self.max_batch_bytes;
        if full && let Some(builder) = self.buffers.remove(&topic_partition) {
            self.append(cluster, BTreeMap::from([(topic_partition, builder)]))
                .await?;
        }
        Ok(())
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

    /// Appends one batch per partition through the Produce handler and waits for acks=all.
    async fn append(
        &mut self,
        cluster: &Arc<Cluster>,
        batches: BTreeMap<TopicPartition, RecordBatchBuilder>,
    ) -> Result<(), BackendError> {
        let mut record_counts = BTreeMap::new();
        let mut topics: BTreeMap<String, Vec<PartitionProduceData>> = BTreeMap::new();
        for (topic_partition, builder) in batches {
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
            acks: ACKS_ALL,
            timeout_ms: PRODUCE_TIMEOUT_MS,
            topic_data: topics
                .into_iter()
                .map(|(name, partition_data)| TopicProduceData {
                    name,
                    partition_data,
                })
                .collect(),
            ..Default::default()
        };
        let response = produce::handle(cluster, PRODUCE_VERSION, request)
            .await
            .ok_or_else(|| BackendError::new("write", "produce with acks=all got no answer"))?;
        for topic in response.responses {
            for answer in topic.partition_responses {
                let topic_partition = TopicPartition::new(topic.name.clone(), answer.index);
                if answer.error_code != ErrorCode::None.code() {
                    let code = ErrorCode::from_code(answer.error_code)
                        .map_or_else(|| answer.error_code.to_string(), |code| code.to_string());
                    let message = answer.error_message.unwrap_or_default();
                    return Err(BackendError::new(
                        format!("write {topic_partition}"),
                        format!("{code} {message}"),
                    ));
                }
                let count = record_counts.get(&topic_partition).copied().unwrap_or(0);
                let count = i64::try_from(count).unwrap_or(i64::MAX);
                self.written
                    .insert(topic_partition, answer.base_offset + count);
            }
        }
        Ok(())
    }
}
