//! The record requests: ListOffsets, Produce and Fetch. Each goes to one broker, which must
//! lead the partitions asked about; [`super::routing::Brokers`] picks it.
//!
//! They return each partition's outcome as it came (an offset, or the partition's error
//! code): which failures matter is for the command to say. Record batches travel as bytes;
//! building and reading them is `riffle_protocol::record`'s job.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use bytes::Bytes;
use riffle_protocol::api::fetch::{FetchPartition, FetchRequest, FetchTopic};
use riffle_protocol::api::list_offsets::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use riffle_protocol::api::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};
use riffle_protocol::{ApiKey, FetchRecords, Request, Response};

use super::{AdminClient, AdminClientError, BrokerErrorCode, IO_TIMEOUT};

/// ListOffsets timestamp asking for the log start offset.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets timestamp asking for the log end offset (the high watermark).
pub const LATEST_TIMESTAMP: i64 = -1;

/// ListOffsets versions: v1 answers one offset with its timestamp; v7 is the last before the
/// tiered-storage timeout field.
const LIST_OFFSETS_VERSIONS: RangeInclusive<i16> = 1..=7;
/// Produce versions: v3 is the first with record batches v2; v9 the first flexible one.
const PRODUCE_VERSIONS: RangeInclusive<i16> = 3..=9;
/// Fetch versions: v4 is the first with record batches v2; v12 the last naming topics.
const FETCH_VERSIONS: RangeInclusive<i16> = 4..=12;

/// The most record bytes one Fetch response may carry, over all partitions (Kafka's
/// `fetch.max.bytes` default).
pub const FETCH_MAX_BYTES: i32 = 50 * 1024 * 1024;
/// The most record bytes one partition contributes to a Fetch response (Kafka's
/// `max.partition.fetch.bytes` default). The first batch comes whole even when larger.
pub const FETCH_PARTITION_MAX_BYTES: i32 = 1024 * 1024;

const _: () = assert!(FETCH_MAX_BYTES as usize <= super::MAX_RESPONSE_BYTES);

/// Kafka's "read uncommitted": records of open and aborted transactions are returned too.
const READ_UNCOMMITTED: i8 = 0;
/// Kafka's replica id of a consumer.
const CONSUMER_REPLICA_ID: i32 = -1;
/// Session id and epoch of a full fetch outside any fetch session (KIP-227).
const NO_FETCH_SESSION: (i32, i32) = (0, -1);

/// A partition, as (topic, partition index).
pub type TopicPartitionKey = (String, i32);

/// What ListOffsets found in one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundOffset {
    /// The offset; -1 when a time query found no record at or after the time.
    pub offset: i64,
    /// The found record's timestamp, -1 for the log's ends.
    pub timestamp_ms: i64,
}

/// A partition's outcome: the value, or the error code the broker gave for it, with its
/// message where the response carries one.
pub type PartitionResult<T> = Result<T, (BrokerErrorCode, Option<String>)>;

/// The acknowledgement a Produce request asks for (Kafka's `acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: the broker sends no response at all.
    None,
    /// `acks=1`: the leader has appended the records.
    Leader,
    /// `acks=all` (-1): every in-sync replica has them.
    All,
}

impl Acks {
    /// The value on the wire.
    pub fn code(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// One partition of a Fetch response.
#[derive(Debug, Clone)]
pub struct FetchedPartition {
    /// The topic.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
    /// The partition's error code (0 when fine).
    pub error_code: BrokerErrorCode,
    /// The offset after the last committed record.
    pub high_watermark: i64,
    /// The first offset still in the log, -1 when the broker does not say (v4).
    pub log_start_offset: i64,
    /// The record batches, whole ones and perhaps a partial one at the end.
    pub records: Bytes,
}

impl AdminClient {
    /// Finds an offset in each partition of `queries` by its timestamp: [`EARLIEST_TIMESTAMP`],
    /// [`LATEST_TIMESTAMP`], or a time in milliseconds (the first record at or after it).
    ///
    /// # Errors
    /// A request error; a partition's error code is its entry in the map.
    pub fn list_offsets(
        &mut self,
        queries: &BTreeMap<TopicPartitionKey, i64>,
    ) -> Result<BTreeMap<TopicPartitionKey, Result<FoundOffset, BrokerErrorCode>>, AdminClientError>
    {
        if queries.is_empty() {
            return Ok(BTreeMap::new());
        }
        let version = self.negotiate(ApiKey::ListOffsets, LIST_OFFSETS_VERSIONS)?;
        let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
        for ((topic, partition_index), &timestamp) in queries {
            topics.entry(topic).or_default().push(ListOffsetsPartition {
                partition_index: *partition_index,
                timestamp,
                ..Default::default()
            });
        }
        let request = Request::ListOffsets(ListOffsetsRequest {
            replica_id: CONSUMER_REPLICA_ID,
            isolation_level: READ_UNCOMMITTED,
            topics: topics
                .into_iter()
                .map(|(name, partitions)| ListOffsetsTopic {
                    name: name.to_owned(),
                    partitions,
                })
                .collect(),
            ..Default::default()
        });
        let Response::ListOffsets(response) = self.send(ApiKey::ListOffsets, version, request)?
        else {
            unreachable!("decode_response answers with the requested API");
        };
        let mut found = BTreeMap::new();
        for topic in response.topics {
            for partition in topic.partitions {
                let outcome = match partition.error_code {
                    0 => Ok(FoundOffset {
                        offset: partition.offset,
                        timestamp_ms: partition.timestamp,
                    }),
                    code => Err(BrokerErrorCode(code)),
                };
                found.insert((topic.name.clone(), partition.partition_index), outcome);
            }
        }
        Ok(found)
    }

    /// Produces one batch to each partition of `batches`, all led by this broker. Returns
    /// each partition's base offset or error, or `None` for [`Acks::None`], which gets no
    /// response.
    ///
    /// # Errors
    /// A request error.
    #[allow(clippy::type_complexity)]
    pub fn produce(
        &mut self,
        acks: Acks,
        timeout: Duration,
        batches: Vec<(TopicPartitionKey, Bytes)>,
    ) -> Result<Option<BTreeMap<TopicPartitionKey, PartitionResult<i64>>>, AdminClientError> {
        let version = self.negotiate(ApiKey::Produce, PRODUCE_VERSIONS)?;
        let mut topics: BTreeMap<String, Vec<PartitionProduceData>> = BTreeMap::new();
        for ((topic, index), records) in batches {
            topics.entry(topic).or_default().push(PartitionProduceData {
                index,
                records: Some(records),
            });
        }
        let request = Request::Produce(ProduceRequest {
            transactional_id: None,
            acks: acks.code(),
            timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
            topic_data: topics
                .into_iter()
                .map(|(name, partition_data)| TopicProduceData {
                    name,
                    partition_data,
                })
                .collect(),
        });
        if acks == Acks::None {
            self.write_request(ApiKey::Produce, version, &request)?;
            return Ok(None);
        }
        let Response::Produce(response) = self.send(ApiKey::Produce, version, request)? else {
            unreachable!("decode_response answers with the requested API");
        };
        let mut outcomes = BTreeMap::new();
        for topic in response.responses {
            for partition in topic.partition_responses {
                let outcome = match partition.error_code {
                    0 => Ok(partition.base_offset),
                    code => Err((BrokerErrorCode(code), partition.error_message)),
                };
                outcomes.insert((topic.name.clone(), partition.index), outcome);
            }
        }
        Ok(Some(outcomes))
    }

    /// Fetches from each partition at its offset (`positions`), waiting up to `max_wait`
    /// for at least one byte. Uncommitted transactional records are included (read
    /// uncommitted); the reader skips control batches.
    ///
    /// # Errors
    /// A request error, or the response's top-level error code.
    pub fn fetch(
        &mut self,
        positions: &BTreeMap<TopicPartitionKey, i64>,
        max_wait: Duration,
    ) -> Result<Vec<FetchedPartition>, AdminClientError> {
        let version = self.negotiate(ApiKey::Fetch, FETCH_VERSIONS)?;
        let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
        for ((topic, partition), &fetch_offset) in positions {
            topics.entry(topic).or_default().push(FetchPartition {
                partition: *partition,
                fetch_offset,
                partition_max_bytes: FETCH_PARTITION_MAX_BYTES,
                ..Default::default()
            });
        }
        let request = Request::Fetch(FetchRequest {
            replica_id: CONSUMER_REPLICA_ID,
            max_wait_ms: i32::try_from(max_wait.as_millis()).unwrap_or(i32::MAX),
            min_bytes: 1,
            max_bytes: FETCH_MAX_BYTES,
            isolation_level: READ_UNCOMMITTED,
            session_id: NO_FETCH_SESSION.0,
            session_epoch: NO_FETCH_SESSION.1,
            topics: topics
                .into_iter()
                .map(|(topic, partitions)| FetchTopic {
                    topic: topic.to_owned(),
                    partitions,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        // The broker may hold the request for `max_wait` before it answers.
        let timeout = IO_TIMEOUT + max_wait;
        let previous = self.io_timeout;
        self.set_io_timeout(timeout)?;
        let response = self.send(ApiKey::Fetch, version, request);
        self.set_io_timeout(previous)?;
        let Response::Fetch(response) = response? else {
            unreachable!("decode_response answers with the requested API");
        };
        super::check_error_code(ApiKey::Fetch, "", response.error_code)?;
        Ok(response
            .responses
            .into_iter()
            .flat_map(|topic| {
                let name = topic.topic;
                topic
                    .partitions
                    .into_iter()
                    .map(move |partition| FetchedPartition {
                        topic: name.clone(),
                        partition: partition.partition_index,
                        error_code: BrokerErrorCode(partition.error_code),
                        high_watermark: partition.high_watermark,
                        log_start_offset: partition.log_start_offset,
                        records: match partition.records {
                            Some(FetchRecords::Bytes(bytes)) => bytes,
                            // Decoding always yields bytes; deferred records are the encoder's.
                            Some(FetchRecords::Deferred(_)) | None => Bytes::new(),
                        },
                    })
            })
            .collect())
    }
}
