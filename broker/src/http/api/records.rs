//! `/api/topics/{topic}/partitions/{partition}/records?offset=N&max=M`: a page of records
//! for the console's message browser, read from the log as a read_uncommitted consumer
//! sees it (control records left out). Keys, values and header values are base64; the page
//! shows them as text, JSON or hex.
//!
//! The HTTP listener has no authentication, so with an ACL authorizer configured this
//! route refuses (403) rather than let anyone past the ACLs.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use riffle_protocol::record::{Record, RecordBatchView, TimestampType, batches};
use riffle_storage::FirstBatch;
use serde::Serialize;

use super::ApiError;
use super::topics::find;
use crate::cluster::Cluster;
use crate::partition::Partition;

/// Records in a page when the query does not say (`max`).
pub const RECORDS_DEFAULT_COUNT: usize = 50;
/// Most records in a page; a larger `max` is refused.
pub const RECORDS_MAX_COUNT: usize = 500;
/// Most bytes of record batches read from the log for one page (a batch larger than this
/// is still read whole, as a Fetch would, up to the topic's `max.message.bytes`).
pub const RECORDS_MAX_READ_BYTES: usize = 1024 * 1024;

/// What a page asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordsQuery {
    /// The topic.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
    /// The first offset wanted; `None` is the log start. Below the log start reads from
    /// it; at or past the high watermark gives no records.
    pub offset: Option<i64>,
    /// Most records wanted, 1 to [`RECORDS_MAX_COUNT`].
    pub max_count: usize,
}

/// The answer: the records and where to read on from.
#[derive(Debug, Serialize)]
pub struct RecordPage {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The partition's first readable offset now.
    pub log_start_offset: i64,
    /// The partition's high watermark now.
    pub high_watermark: i64,
    /// The offset to ask for next.
    pub next_offset: i64,
    /// The records, by offset.
    pub records: Vec<RecordJson>,
}

/// One record, its bytes in base64.
#[derive(Debug, Serialize)]
pub struct RecordJson {
    /// Its offset.
    pub offset: i64,
    /// Its timestamp, ms since the epoch.
    pub timestamp_ms: i64,
    /// `CreateTime` or `LogAppendTime`.
    pub timestamp_type: &'static str,
    /// The key in base64, `null` when null.
    pub key: Option<String>,
    /// The value in base64, `null` for a tombstone.
    pub value: Option<String>,
    /// Headers in wire order.
    pub headers: Vec<HeaderJson>,
}

/// One record header.
#[derive(Debug, Serialize)]
pub struct HeaderJson {
    /// Its key.
    pub key: String,
    /// Its value in base64, `null` when null.
    pub value: Option<String>,
}

impl RecordsQuery {
    /// Checks `max` and builds the query.
    ///
    /// # Errors
    /// `BadRequest` for a partition that is not a number or a `max` out of range.
    pub fn new(
        topic: String,
        partition: &str,
        offset: Option<i64>,
        max_count: Option<i64>,
    ) -> Result<RecordsQuery, ApiError> {
        let partition = partition.parse().map_err(|_| {
            ApiError::BadRequest(format!("partition {partition:?} is not a number"))
        })?;
        let max_count = match max_count {
            None => RECORDS_DEFAULT_COUNT,
            Some(max) => usize::try_from(max)
                .ok()
                .filter(|max| (1..=RECORDS_MAX_COUNT).contains(max))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("max must be 1 to {RECORDS_MAX_COUNT}"))
                })?,
        };
        Ok(RecordsQuery {
            topic,
            partition,
            offset,
            max_count,
        })
    }
}

/// Reads one page of records.
///
/// # Errors
/// `Forbidden` with an ACL authorizer; `NotFound` for an unknown topic or partition;
/// `Internal` when the log cannot be read or holds a batch that does not decode.
pub fn read(cluster: &Cluster, query: &RecordsQuery) -> Result<RecordPage, ApiError> {
    if cluster.authorizer().is_some() {
        return Err(ApiError::Forbidden(
            "the broker checks ACLs and the HTTP listener has no authentication: \
             records are not shown over HTTP"
                .to_string(),
        ));
    }
    let topic = find(cluster, &query.topic)?;
    let partition = topic.partition(query.partition).ok_or_else(|| {
        ApiError::NotFound(format!(
            "topic {:?} has no partition {}",
            query.topic, query.partition
        ))
    })?;
    let log_start_offset = partition.log_start_offset();
    let high_watermark = partition.high_watermark();
    let first = query
        .offset
        .unwrap_or(log_start_offset)
        .max(log_start_offset);
    let (records, next_offset) = read_records(partition, first, high_watermark, query.max_count)?;
    Ok(RecordPage {
        topic: query.topic.clone(),
        partition: query.partition,
        log_start_offset,
        high_watermark,
        next_offset,
        records,
    })
}

/// Records from `first`, below `high_watermark`, at most `max_count` of them and
/// [`RECORDS_MAX_READ_BYTES`] of batches; returns them and the offset after the last one
/// looked at.
fn read_records(
    partition: &Partition,
    first: i64,
    high_watermark: i64,
    max_count: usize,
) -> Result<(Vec<RecordJson>, i64), ApiError> {
    let mut records = Vec::new();
    let mut position = first;
    let mut budget_bytes = RECORDS_MAX_READ_BYTES;
    while records.len() < max_count && position < high_watermark && budget_bytes > 0 {
        let bytes = partition
            .read(position, budget_bytes, FirstBatch::AlwaysWhole)
            .map_err(|error| ApiError::Internal(format!("reading the log: {error}")))?;
        if bytes.is_empty() {
            break;
        }
        budget_bytes = budget_bytes.saturating_sub(bytes.len());
        let before = position;
        for batch in batches(bytes) {
            let batch = batch.map_err(|error| batch_error(position, error))?;
            position = take_records(&batch, position, max_count, &mut records)?;
            if records.len() >= max_count {
                break;
            }
        }
        if position == before {
            // A read that moves nothing on would only repeat.
            break;
        }
    }
    Ok((records, position))
}

/// Appends the records of `batch` at or past `position` to `records`, up to `max_count`
/// in all; returns the next position.
fn take_records(
    batch: &RecordBatchView,
    position: i64,
    max_count: usize,
    records: &mut Vec<RecordJson>,
) -> Result<i64, ApiError> {
    if batch.last_offset() < position {
        return Ok(position);
    }
    if batch.is_control() {
        return Ok(batch.last_offset() + 1);
    }
    let decoded = batch
        .records()
        .map_err(|error| batch_error(batch.base_offset(), error))?;
    let timestamp_type = match batch.timestamp_type() {
        TimestampType::LogAppendTime => "LogAppendTime",
        TimestampType::CreateTime => "CreateTime",
    };
    for record in decoded.iter().filter(|record| record.offset >= position) {
        if records.len() >= max_count {
            return Ok(record.offset);
        }
        records.push(to_json(record, timestamp_type));
    }
    Ok(batch.last_offset() + 1)
}

fn to_json(record: &Record, timestamp_type: &'static str) -> RecordJson {
    let encode = |bytes: &Option<Bytes>| bytes.as_ref().map(|bytes| BASE64.encode(bytes));
    RecordJson {
        offset: record.offset,
        timestamp_ms: record.timestamp_ms,
        timestamp_type,
        key: encode(&record.key),
        value: encode(&record.value),
        headers: record
            .headers
            .iter()
            .map(|header| HeaderJson {
                key: header.key.clone(),
                value: encode(&header.value),
            })
            .collect(),
    }
}

fn batch_error(offset: i64, error: riffle_protocol::record::RecordError) -> ApiError {
    ApiError::Internal(format!(
        "the batch at offset {offset} does not decode: {error}"
    ))
}
