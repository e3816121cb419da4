//! Outputs, changelog and repartition records: one idempotent producer, its delivery
//! futures kept until a flush, so a commit knows exactly what was acknowledged.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::record::{OutputRecord, TopicPartition};
use crate::runtime::backend::BackendError;

/// Deliveries awaited at most before [`OutputProducer::send`] waits for the oldest: bounds
/// the memory a fast topology can queue ahead of the broker.
const MAX_IN_FLIGHT_DELIVERIES: usize = 50_000;

/// How long to wait when librdkafka's own queue is full and nothing of ours is in flight.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(10);

/// Producer settings the backend relies on; set after the caller's, so they win.
const PRODUCER_SETTINGS: &[(&str, &str)] = &[
    // A commit must not cover records the broker could still lose or reorder.
    ("acks", "all"),
    ("enable.idempotence", "true"),
    ("linger.ms", "5"),
    ("message.timeout.ms", "30000"),
];

/// The producer with the deliveries it has not reported yet.
pub(super) struct OutputProducer {
    producer: FutureProducer,
    /// Sent records' topics and delivery futures, oldest first.
    in_flight: VecDeque<(String, DeliveryFuture)>,
    /// Per partition, the offset after the last record acknowledged since the last flush.
    acknowledged: BTreeMap<TopicPartition, i64>,
}

impl OutputProducer {
    pub(super) fn new(base: &ClientConfig) -> Result<OutputProducer, BackendError> {
        let mut config = base.clone();
        for (key, value) in PRODUCER_SETTINGS {
            config.set(*key, *value);
        }
        let producer = config
            .create()
            .map_err(|error| BackendError::new("create producer", error))?;
        Ok(OutputProducer {
            producer,
            in_flight: VecDeque::new(),
            acknowledged: BTreeMap::new(),
        })
    }

    /// Queues `output` for `partition` of its topic.
    pub(super) async fn send(
        &mut self,
        partition: i32,
        output: OutputRecord,
    ) -> Result<(), BackendError> {
        if self.in_flight.len() >= MAX_IN_FLIGHT_DELIVERIES {
            self.await_oldest().await?;
        }
        let headers = output
            .headers
            .iter()
            .fold(OwnedHeaders::new(), |headers, (key, value)| {
                headers.insert(Header {
                    key,
                    value: value.as_deref(),
                })
            });
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord {
            topic: &output.topic,
            partition: Some(partition),
            payload: output.value.as_deref(),
            key: output.key.as_deref(),
            // librdkafka stamps the current time on 0 or none; keep a real timestamp only.
            timestamp: (output.timestamp_ms >= 0).then_some(output.timestamp_ms),
            headers: Some(headers),
        };
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    self.in_flight.push_back((output.topic.clone(), delivery));
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    match self.in_flight.is_empty() {
                        true => tokio::time::sleep(QUEUE_FULL_BACKOFF).await,
                        false => self.await_oldest().await?,
                    }
                }
                Err((error, _)) => {
                    return Err(BackendError::new(
                        format!("send to {}", output.topic),
                        error,
                    ));
                }
            }
        }
    }

    /// Waits for every delivery; returns, per partition written since the last flush, the
    /// offset after its last acknowledged record.
    ///
    /// # Errors
    /// The first failed delivery (its record may be lost, so nothing may be committed).
    pub(super) async fn flush(&mut self) -> Result<BTreeMap<TopicPartition, i64>, BackendError> {
        while !self.in_flight.is_empty() {
            self.await_oldest().await?;
        }
        Ok(std::mem::take(&mut self.acknowledged))
    }

    async fn await_oldest(&mut self) -> Result<(), BackendError> {
        let Some((topic, delivery)) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let operation = || format!("deliver to {topic}");
        match delivery.await {
            Ok(Ok(delivery)) => {
                let end_offset = delivery.offset.saturating_add(1);
                let known = self
                    .acknowledged
                    .entry(TopicPartition::new(topic.clone(), delivery.partition))
                    .or_insert(end_offset);
                *known = (*known).max(end_offset);
                Ok(())
            }
            Ok(Err((error, _message))) => Err(BackendError::new(operation(), error)),
            Err(_canceled) => Err(BackendError::new(
                operation(),
                "producer dropped the delivery",
            )),
        }
    }
}
