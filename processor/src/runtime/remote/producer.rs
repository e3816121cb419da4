//! Outputs, changelog and repartition records: one idempotent producer, its delivery
//! futures kept until a flush, so a commit knows exactly what was acknowledged.
//!
//! Under exactly-once the producer is transactional: a transaction begins with the first
//! record after a commit or abort, and [`OutputProducer::commit_transaction`] adds the
//! input offsets to it (with the group consumer's metadata, whose generation fences
//! zombies) and commits. A producer that librdkafka declares failed for good (fenced by a
//! newer one with its transactional id, or past its transaction timeout) cannot even
//! abort; [`OutputProducer::abort_transaction`] then replaces it with a new one, whose
//! `init_transactions` bumps the epoch and aborts whatever the old one left open.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, TopicPartitionList};

use super::blocking;
use super::consumer::GroupConsumer;
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

/// Kafka Streams' `transaction.timeout.ms` under exactly-once: how long the broker keeps a
/// transaction open without a commit before aborting it, so a crashed instance holds
/// back read_committed readers of its partitions this long at most. Used unless the
/// caller's settings name one.
const TRANSACTION_TIMEOUT_MS: &str = "10000";

/// How long one transactional request (init, offsets, commit, abort) may take.
const TRANSACTION_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The producer with the deliveries it has not reported yet.
pub(super) struct OutputProducer {
    producer: FutureProducer,
    /// Sent records' topics and delivery futures, oldest first.
    in_flight: VecDeque<(String, DeliveryFuture)>,
    /// Per partition, the offset after the last record acknowledged since the last flush.
    acknowledged: BTreeMap<TopicPartition, i64>,
    /// Under exactly-once, the producer's transactional state.
    transaction: Option<Transaction>,
}

/// A transactional producer's settings and whether a transaction is open.
struct Transaction {
    /// The producer's whole configuration, `transactional.id` included, to replace it.
    config: ClientConfig,
    /// Whether `begin_transaction` was called since the last commit or abort.
    open: bool,
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
            transaction: None,
        })
    }

    /// A transactional producer with `transactional_id`, initialized: any earlier producer
    /// with that id is fenced and its open transaction aborted.
    ///
    /// # Errors
    /// When librdkafka rejects the configuration or `init_transactions` fails.
    pub(super) async fn transactional(
        base: &ClientConfig,
        transactional_id: &str,
    ) -> Result<OutputProducer, BackendError> {
        let mut config = base.clone();
        if config.get("transaction.timeout.ms").is_none() {
            config.set("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS);
        }
        for (key, value) in PRODUCER_SETTINGS {
            config.set(*key, *value);
        }
        // librdkafka refuses a message timeout past the transaction timeout; a record not
        // delivered by then belongs to a transaction the broker has aborted anyway.
        let transaction_timeout_ms = config.get("transaction.timeout.ms").unwrap_or_default();
        config.set("message.timeout.ms", transaction_timeout_ms.to_string());
        config.set("transactional.id", transactional_id);
        let producer = init_transactional(&config).await?;
        Ok(OutputProducer {
            producer,
            in_flight: VecDeque::new(),
            acknowledged: BTreeMap::new(),
            transaction: Some(Transaction {
                config,
                open: false,
            }),
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
        self.begin_transaction()?;
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

    /// Begins a transaction unless one is open (or the producer is not transactional).
    fn begin_transaction(&mut self) -> Result<(), BackendError> {
        let Some(transaction) = self.transaction.as_mut().filter(|t| !t.open) else {
            return Ok(());
        };
        // Local to librdkafka: no request, no blocking.
        self.producer
            .begin_transaction()
            .map_err(|error| BackendError::new("begin transaction", error))?;
        transaction.open = true;
        Ok(())
    }

    /// Commits the open transaction (beginning one if nothing was sent since the last)
    /// with `offsets` as `group`'s position, sent with its current generation.
    ///
    /// # Errors
    /// When the offsets or the commit are refused, or the producer failed: the caller
    /// then aborts.
    pub(super) async fn commit_transaction(
        &mut self,
        offsets: TopicPartitionList,
        group: Arc<GroupConsumer>,
    ) -> Result<(), BackendError> {
        self.begin_transaction()?;
        let producer = self.producer.clone();
        blocking("commit transaction", move || {
            let metadata = group.group_metadata().ok_or_else(|| {
                BackendError::new("commit transaction", "the consumer has no group metadata")
            })?;
            let timeout = TRANSACTION_REQUEST_TIMEOUT;
            producer
                .send_offsets_to_transaction(&offsets, &metadata, timeout)
                .map_err(|error| BackendError::new("send offsets to transaction", error))?;
            producer
                .commit_transaction(timeout)
                .map_err(|error| BackendError::new("commit transaction", error))
        })
        .await?;
        if let Some(transaction) = self.transaction.as_mut() {
            transaction.open = false;
        }
        Ok(())
    }

    /// Aborts the open transaction and forgets its deliveries. A producer that cannot
    /// abort (fenced, or failed for good) is replaced by a new one with the same
    /// transactional id, which fences it and aborts what it left open.
    ///
    /// # Errors
    /// When the replacement cannot be created or initialized.
    pub(super) async fn abort_transaction(&mut self) -> Result<(), BackendError> {
        self.in_flight.clear();
        self.acknowledged.clear();
        let Some(transaction) = self.transaction.as_mut() else {
            return Ok(());
        };
        let open = std::mem::take(&mut transaction.open);
        let failure = match self.producer.client().fatal_error() {
            Some((code, reason)) => BackendError::new("producer", format!("{code}: {reason}")),
            None if !open => return Ok(()),
            None => {
                let producer = self.producer.clone();
                let aborted = blocking("abort transaction", move || {
                    producer
                        .abort_transaction(TRANSACTION_REQUEST_TIMEOUT)
                        .map_err(|error| BackendError::new("abort transaction", error))
                })
                .await;
                match aborted {
                    Ok(()) => return Ok(()),
                    Err(error) => error,
                }
            }
        };
        let transactional_id = transaction.config.get("transactional.id").unwrap_or("");
        tracing::warn!(
            error = %failure,
            transactional_id,
            "the producer cannot go on (fenced by an instance with the same transactional \
             id, or failed for good); replacing it with a new one"
        );
        let replacement = init_transactional(&transaction.config).await?;
        let fenced = std::mem::replace(&mut self.producer, replacement);
        // Dropping a producer purges, flushes for up to 500 ms and joins its threads: not
        // on a runtime worker.
        tokio::task::spawn_blocking(move || drop(fenced));
        Ok(())
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

/// Creates a transactional producer from `config` and runs `init_transactions`.
async fn init_transactional(config: &ClientConfig) -> Result<FutureProducer, BackendError> {
    let producer: FutureProducer = config
        .create()
        .map_err(|error| BackendError::new("create transactional producer", error))?;
    let initializing = producer.clone();
    blocking("init transactions", move || {
        initializing
            .init_transactions(TRANSACTION_REQUEST_TIMEOUT)
            .map_err(|error| BackendError::new("init transactions", error))
    })
    .await?;
    Ok(producer)
}
