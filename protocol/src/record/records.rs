//! One record inside a batch: its decoded form, and how it is read and written.
//!
//! # Format
//! ```text
//! length            varint   bytes of the rest of the record
//! attributes        i8       unused in v2, written as 0
//! timestamp_delta   varlong  from the batch's base_timestamp
//! offset_delta      varint   from the batch's base_offset
//! key_length        varint   -1 for a null key
//! key               bytes
//! value_length      varint   -1 for a null value
//! value             bytes
//! headers_count     varint
//! headers: header_key_length varint, header_key UTF-8 (never null),
//!          header_value_length varint (-1 for null), header_value bytes
//! ```
//! Varints are zig-zag encoded (see [`crate::varint`]).

use bytes::Bytes;

use super::RecordError;
use super::TimestampType;
use crate::varint::{put_varint, put_varlong, read_varint, read_varlong};

/// The fewest bytes one record can take: a one-byte length, attributes, and one-byte
/// timestamp delta, offset delta, key length, value length and header count.
const MIN_RECORD_BYTES: usize = 7;
/// The fewest bytes one header can take: one-byte key length and value length.
const MIN_HEADER_BYTES: usize = 2;

/// A decoded record, with its offset and timestamp made absolute.
///
/// Key, value and header values are slices of the batch's bytes when the batch is not
/// compressed, and of the one decompressed buffer when it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's offset: the batch's base offset plus the record's offset delta.
    pub offset: i64,
    /// Milliseconds since the epoch. For a LogAppendTime batch this is the batch's
    /// `max_timestamp` (the broker's append time), whatever the record itself says.
    pub timestamp_ms: i64,
    /// The key, `None` when null.
    pub key: Option<Bytes>,
    /// The value, `None` when null (a tombstone in a compacted topic).
    pub value: Option<Bytes>,
    /// The headers, in wire order; keys may repeat.
    pub headers: Vec<RecordHeader>,
    /// The record's own attributes byte; unused in v2, so normally 0.
    pub attributes: i8,
}

/// One record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    /// The header key. Bytes that are not UTF-8 are replaced with U+FFFD, as the Java
    /// client does, rather than failing the whole batch.
    pub key: String,
    /// The header value, `None` when null.
    pub value: Option<Bytes>,
}

/// What a record needs from its batch to make its offset and timestamp absolute.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchContext {
    pub(crate) base_offset: i64,
    pub(crate) base_timestamp_ms: i64,
    pub(crate) max_timestamp_ms: i64,
    pub(crate) timestamp_type: TimestampType,
    pub(crate) records_count: i32,
}

/// Decodes exactly `batch.records_count` records that fill `records` exactly.
///
/// # Errors
/// `InvalidLength` for a negative count or a length past the bytes, `RecordCountMismatch`
/// when the bytes end before the count is reached, `TrailingBytes` when bytes remain after
/// it, `MalformedRecord` for a record whose fields do not fit its length.
pub(crate) fn decode_records(
    records: &Bytes,
    batch: &BatchContext,
) -> Result<Vec<Record>, RecordError> {
    let declared =
        usize::try_from(batch.records_count).map_err(|_| RecordError::InvalidLength {
            field: "records_count",
            length: i64::from(batch.records_count),
        })?;
    // A count the bytes cannot possibly hold does not get to size the allocation.
    let mut decoded = Vec::with_capacity(declared.min(records.len() / MIN_RECORD_BYTES));
    let mut cursor = Cursor::new(records);
    // Each pass consumes at least one byte or fails, so this ends within records.len().
    for _ in 0..declared {
        if cursor.is_empty() {
            return Err(RecordError::RecordCountMismatch {
                declared: batch.records_count,
                found: decoded.len(),
            });
        }
        decoded.push(decode_record(&mut cursor, batch)?);
    }
    if !cursor.is_empty() {
        return Err(RecordError::TrailingBytes(cursor.remaining_bytes()));
    }
    Ok(decoded)
}

fn decode_record(cursor: &mut Cursor<'_>, batch: &BatchContext) -> Result<Record, RecordError> {
    let length = cursor.varint("record length")?;
    let length_bytes = usize::try_from(length)
        .ok()
        .filter(|bytes| *bytes <= cursor.remaining_bytes())
        .ok_or(RecordError::InvalidLength {
            field: "record length",
            length: i64::from(length),
        })?;
    let mut body = cursor.split_off(length_bytes);
    let attributes = body.i8("record attributes")?;
    let timestamp_delta = body.varlong("timestamp delta")?;
    let offset_delta = body.varint("offset delta")?;
    let key = body.nullable_bytes("key length")?;
    let value = body.nullable_bytes("value length")?;
    let headers = decode_headers(&mut body)?;
    if !body.is_empty() {
        return Err(RecordError::MalformedRecord(
            "record length (longer than its fields)",
        ));
    }
    // Wrapping, as Kafka's Java code computes these: a timestamp delta written with
    // wrapping subtraction comes back exactly.
    let timestamp_ms = match batch.timestamp_type {
        TimestampType::LogAppendTime => batch.max_timestamp_ms,
        TimestampType::CreateTime => batch.base_timestamp_ms.wrapping_add(timestamp_delta),
    };
    Ok(Record {
        offset: batch.base_offset.wrapping_add(i64::from(offset_delta)),
        timestamp_ms,
        key,
        value,
        headers,
        attributes,
    })
}

fn decode_headers(body: &mut Cursor<'_>) -> Result<Vec<RecordHeader>, RecordError> {
    let count = body.varint("headers count")?;
    let count_fits = |count: &usize| *count <= body.remaining_bytes() / MIN_HEADER_BYTES;
    let count =
        usize::try_from(count)
            .ok()
            .filter(count_fits)
            .ok_or(RecordError::InvalidLength {
                field: "headers count",
                length: i64::from(count),
            })?;
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let key = body
            .nullable_bytes("header key length")?
            .ok_or(RecordError::InvalidLength {
                field: "header key length",
                length: -1,
            })?;
        let value = body.nullable_bytes("header value length")?;
        let key = String::from_utf8_lossy(&key).into_owned();
        headers.push(RecordHeader { key, value });
    }
    Ok(headers)
}

/// A read position inside a `Bytes`, bounded by `end`, that hands out zero-copy slices.
struct Cursor<'a> {
    bytes: &'a Bytes,
    position: usize,
    end: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a Bytes) -> Self {
        Self {
            bytes,
            position: 0,
            end: bytes.len(),
        }
    }

    fn remaining_bytes(&self) -> usize {
        self.end - self.position
    }

    fn is_empty(&self) -> bool {
        self.position == self.end
    }

    fn rest(&self) -> &[u8] {
        self.bytes.get(self.position..self.end).unwrap_or_default()
    }

    /// A cursor over the next `length_bytes` (at most `remaining_bytes()`), skipped here.
    fn split_off(&mut self, length_bytes: usize) -> Cursor<'a> {
        assert!(length_bytes <= self.remaining_bytes());
        let start = self.position;
        self.position += length_bytes;
        Cursor {
            bytes: self.bytes,
            position: start,
            end: self.position,
        }
    }

    fn i8(&mut self, field: &'static str) -> Result<i8, RecordError> {
        let (&byte, _) = self
            .rest()
            .split_first()
            .ok_or(RecordError::MalformedRecord(field))?;
        self.position += 1;
        Ok(i8::from_be_bytes([byte]))
    }

    fn varint(&mut self, field: &'static str) -> Result<i32, RecordError> {
        let (value, used_bytes) =
            read_varint(self.rest()).map_err(|_| RecordError::MalformedRecord(field))?;
        self.position += used_bytes;
        Ok(value)
    }

    fn varlong(&mut self, field: &'static str) -> Result<i64, RecordError> {
        let (value, used_bytes) =
            read_varlong(self.rest()).map_err(|_| RecordError::MalformedRecord(field))?;
        self.position += used_bytes;
        Ok(value)
    }

    /// A length-prefixed byte string; length -1 is null, other negatives are invalid.
    fn nullable_bytes(&mut self, field: &'static str) -> Result<Option<Bytes>, RecordError> {
        let length = self.varint(field)?;
        if length == -1 {
            return Ok(None);
        }
        let length_bytes = usize::try_from(length)
            .ok()
            .filter(|bytes| *bytes <= self.remaining_bytes())
            .ok_or(RecordError::InvalidLength {
                field,
                length: i64::from(length),
            })?;
        let start = self.position;
        self.position += length_bytes;
        Ok(Some(self.bytes.slice(start..self.position)))
    }
}

/// One record for [`encode_record`] to write.
pub(crate) struct RecordFields<'a> {
    pub(crate) offset_delta: i32,
    pub(crate) timestamp_delta: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: &'a [(&'a str, Option<&'a [u8]>)],
}

/// Appends one length-prefixed record to `output`, using `body` as scratch space.
///
/// # Errors
/// `FieldOverflow` when a key, value, header or the record itself is longer than
/// `i32::MAX` bytes, or there are more than `i32::MAX` headers.
pub(crate) fn encode_record(
    output: &mut Vec<u8>,
    body: &mut Vec<u8>,
    record: &RecordFields<'_>,
) -> Result<(), RecordError> {
    body.clear();
    body.push(0); // attributes: unused in v2
    put_varlong(body, record.timestamp_delta);
    put_varint(body, record.offset_delta);
    put_nullable_bytes(body, record.key, "key length")?;
    put_nullable_bytes(body, record.value, "value length")?;
    let headers_count = i32::try_from(record.headers.len())
        .map_err(|_| RecordError::FieldOverflow("headers count"))?;
    put_varint(body, headers_count);
    for (key, value) in record.headers {
        put_nullable_bytes(body, Some(key.as_bytes()), "header key length")?;
        put_nullable_bytes(body, *value, "header value length")?;
    }
    let length =
        i32::try_from(body.len()).map_err(|_| RecordError::FieldOverflow("record length"))?;
    put_varint(output, length);
    output.extend_from_slice(body);
    Ok(())
}

fn put_nullable_bytes(
    output: &mut Vec<u8>,
    bytes: Option<&[u8]>,
    field: &'static str,
) -> Result<(), RecordError> {
    match bytes {
        None => put_varint(output, -1),
        Some(bytes) => {
            let length =
                i32::try_from(bytes.len()).map_err(|_| RecordError::FieldOverflow(field))?;
            put_varint(output, length);
            output.extend_from_slice(bytes);
        }
    }
    Ok(())
}
