//! Builds valid Kafka v2 record batches for storage tests: a correct header and CRC-32C over
//! dummy record bytes. Storage never decodes records, so the records need not be real.
//!
//! Compaction tests need keys, so `keyed_batch` lays out real, uncompressed v2 records, and
//! `TestCodec` reads and rewrites them for `Log::compact` as the broker's codec does with
//! riffle-protocol. Transactions need two more kinds, built the same way:
//! `transactional_batch` (data of a producer's transaction) and `control_batch` (the COMMIT or
//! ABORT marker that ends it), laid out as Kafka writes them.
//!
//! Shared by the integration tests and, through `#[path]`, by the crate's unit tests, so it
//! uses nothing but `crc32c` and the crate's public API (`riffle_storage` names the crate
//! itself in unit tests).
#![allow(dead_code)]

/// Header bytes of a v2 batch, before the first record.
pub const TEST_BATCH_HEADER_BYTES: usize = 61;

/// The fields of a test batch that storage cares about.
#[derive(Debug, Clone, Copy)]
pub struct TestBatch {
    /// Number of records, and so of offsets, in the batch (at least 1).
    pub records_count: i32,
    /// Dummy bytes standing in for the records.
    pub payload_bytes: usize,
    /// `base_timestamp` field.
    pub base_timestamp_ms: i64,
    /// `max_timestamp` field.
    pub max_timestamp_ms: i64,
}

impl TestBatch {
    /// The batch's bytes, base offset 0, with a correct CRC.
    pub fn build(&self) -> Vec<u8> {
        assert!(self.records_count >= 1);
        let size_bytes = TEST_BATCH_HEADER_BYTES + self.payload_bytes;
        let batch_length = i32::try_from(size_bytes - 12).expect("test batch fits in i32");
        let mut bytes = Vec::with_capacity(size_bytes);
        bytes.extend_from_slice(&0_i64.to_be_bytes()); // base_offset
        bytes.extend_from_slice(&batch_length.to_be_bytes());
        bytes.extend_from_slice(&0_i32.to_be_bytes()); // partition_leader_epoch
        bytes.push(2); // magic
        bytes.extend_from_slice(&0_u32.to_be_bytes()); // crc, filled in below
        bytes.extend_from_slice(&0_i16.to_be_bytes()); // attributes
        bytes.extend_from_slice(&(self.records_count - 1).to_be_bytes()); // last_offset_delta
        bytes.extend_from_slice(&self.base_timestamp_ms.to_be_bytes());
        bytes.extend_from_slice(&self.max_timestamp_ms.to_be_bytes());
        bytes.extend_from_slice(&(-1_i64).to_be_bytes()); // producer_id
        bytes.extend_from_slice(&(-1_i16).to_be_bytes()); // producer_epoch
        bytes.extend_from_slice(&(-1_i32).to_be_bytes()); // base_sequence
        bytes.extend_from_slice(&self.records_count.to_be_bytes());
        assert_eq!(bytes.len(), TEST_BATCH_HEADER_BYTES);
        // Dummy records: a repeating pattern, so a misplaced read shows up in comparisons.
        bytes.extend(
            (0..self.payload_bytes).map(|index| u8::try_from(index % 251).expect("below 251")),
        );
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        bytes
    }
}

/// A batch of `records_count` records with `payload_bytes` of dummy records and timestamp
/// 1000 ms.
pub fn batch(records_count: i32, payload_bytes: usize) -> Vec<u8> {
    batch_at(records_count, payload_bytes, 1_000)
}

/// A batch whose records all carry `timestamp_ms`.
pub fn batch_at(records_count: i32, payload_bytes: usize, timestamp_ms: i64) -> Vec<u8> {
    TestBatch {
        records_count,
        payload_bytes,
        base_timestamp_ms: timestamp_ms,
        max_timestamp_ms: timestamp_ms,
    }
    .build()
}

/// The base offset stored in a batch's first 8 bytes.
pub fn base_offset_of(batch: &[u8]) -> i64 {
    i64::from_be_bytes(batch[..8].try_into().expect("batch has a header"))
}

/// The `max_timestamp` field of a batch.
pub fn max_timestamp_of(batch: &[u8]) -> i64 {
    i64::from_be_bytes(batch[35..43].try_into().expect("batch has a header"))
}

/// Splits concatenated batches (as `Log::read` returns them) into `(base_offset, bytes)`.
pub fn split(mut bytes: &[u8]) -> Vec<(i64, Vec<u8>)> {
    let mut batches = Vec::new();
    while !bytes.is_empty() {
        let batch_length = i32::from_be_bytes(bytes[8..12].try_into().expect("header"));
        let size_bytes = 12 + usize::try_from(batch_length).expect("positive length");
        let (batch, rest) = bytes.split_at(size_bytes);
        batches.push((base_offset_of(batch), batch.to_vec()));
        bytes = rest;
    }
    batches
}

/// The offset of a batch's last record: base offset plus `last_offset_delta`.
pub fn last_offset_of(batch: &[u8]) -> i64 {
    let delta = i32::from_be_bytes(batch[23..27].try_into().expect("batch has a header"));
    base_offset_of(batch) + i64::from(delta)
}

/// A record of a keyed test batch as `keyed_records` decodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord {
    /// The record's offset.
    pub offset: i64,
    /// The key, `None` if null.
    pub key: Option<Vec<u8>>,
    /// The value, `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

/// A record's key and value, each `None` if null.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// A batch of real, uncompressed v2 records, one per `(key, value)`, at offsets 0.. and
/// all with timestamp `timestamp_ms`, laid out as Kafka does (zig-zag varints, no headers).
pub fn keyed_batch(records: &[KeyValue<'_>], timestamp_ms: i64) -> Vec<u8> {
    assert!(!records.is_empty());
    let mut encoded = Vec::new();
    for (offset_delta, (key, value)) in records.iter().enumerate() {
        let mut body = vec![0]; // attributes
        put_varint(&mut body, 0); // timestamp delta
        put_varint(&mut body, i64::try_from(offset_delta).expect("small"));
        put_nullable(&mut body, *key);
        put_nullable(&mut body, *value);
        put_varint(&mut body, 0); // headers count
        put_varint(&mut encoded, i64::try_from(body.len()).expect("small"));
        encoded.extend_from_slice(&body);
    }
    let records_count = i32::try_from(records.len()).expect("small");
    let mut batch = TestBatch {
        records_count,
        payload_bytes: 0,
        base_timestamp_ms: timestamp_ms,
        max_timestamp_ms: timestamp_ms,
    }
    .build();
    batch.extend_from_slice(&encoded);
    fix_length_and_crc(&mut batch);
    batch
}

/// Attribute bit of a transactional batch.
pub const TRANSACTIONAL_ATTRIBUTE_BIT: i16 = 1 << 4;
/// Attribute bit of a control batch.
pub const CONTROL_ATTRIBUTE_BIT: i16 = 1 << 5;

/// How a transaction ended: the type in a control record's key (Kafka's `ControlRecordType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    /// Type 0: the transaction was aborted.
    Abort,
    /// Type 1: the transaction was committed.
    Commit,
}

/// A transactional batch of `producer_id` (epoch 0, base sequence 0), one record per
/// `(key, value)`, as `keyed_batch` lays them out.
pub fn transactional_batch(
    producer_id: i64,
    records: &[KeyValue<'_>],
    timestamp_ms: i64,
) -> Vec<u8> {
    let mut batch = keyed_batch(records, timestamp_ms);
    set_producer(&mut batch, TRANSACTIONAL_ATTRIBUTE_BIT, producer_id, 0);
    batch
}

/// A control batch of `producer_id` ending its transaction: one record whose key is
/// `[version i16 = 0][type i16]` and whose value is `[version i16 = 0][coordinator epoch
/// i32 = 0]`, as Kafka's `EndTransactionMarker` writes them.
pub fn control_batch(producer_id: i64, control_type: ControlType, timestamp_ms: i64) -> Vec<u8> {
    let type_id: i16 = match control_type {
        ControlType::Abort => 0,
        ControlType::Commit => 1,
    };
    let mut key = 0_i16.to_be_bytes().to_vec();
    key.extend_from_slice(&type_id.to_be_bytes());
    let mut value = 0_i16.to_be_bytes().to_vec();
    value.extend_from_slice(&0_i32.to_be_bytes());
    let mut batch = keyed_batch(&[(Some(&key), Some(&value))], timestamp_ms);
    let attributes = TRANSACTIONAL_ATTRIBUTE_BIT | CONTROL_ATTRIBUTE_BIT;
    set_producer(&mut batch, attributes, producer_id, -1);
    batch
}

/// Sets a batch's attributes and producer fields (epoch 0), and fixes its CRC.
fn set_producer(batch: &mut [u8], attributes: i16, producer_id: i64, base_sequence: i32) {
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[43..51].copy_from_slice(&producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&0_i16.to_be_bytes());
    batch[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    fix_length_and_crc(batch);
}

/// The records of a keyed test batch, with absolute offsets.
pub fn keyed_records(batch: &[u8]) -> Result<Vec<TestRecord>, String> {
    Ok(record_spans(batch)?
        .into_iter()
        .map(|(record, _)| record)
        .collect())
}

/// A `RecordCodec` over the batches `keyed_batch` builds.
pub struct TestCodec;

impl riffle_storage::RecordCodec for TestCodec {
    fn records(&self, batch: &[u8]) -> Result<Vec<riffle_storage::RecordSummary>, String> {
        let records = keyed_records(batch)?;
        let timestamp_ms = max_timestamp_of(batch);
        Ok(records
            .into_iter()
            .map(|record| riffle_storage::RecordSummary {
                offset: record.offset,
                is_tombstone: record.value.is_none(),
                key: record.key,
                timestamp_ms,
            })
            .collect())
    }

    /// Copies the kept records' bytes unchanged (their deltas are relative to the base
    /// offset and timestamp, which stay), then fixes the count, length and CRC.
    fn retain(&self, batch: &[u8], keep: &dyn Fn(i64) -> bool) -> Result<Option<Vec<u8>>, String> {
        let spans = record_spans(batch)?;
        let kept: Vec<&(TestRecord, std::ops::Range<usize>)> = spans
            .iter()
            .filter(|(record, _)| keep(record.offset))
            .collect();
        if kept.is_empty() {
            return Ok(None);
        }
        let mut rewritten = batch[..TEST_BATCH_HEADER_BYTES].to_vec();
        let records_count = i32::try_from(kept.len()).expect("small");
        rewritten[57..61].copy_from_slice(&records_count.to_be_bytes());
        for (_, span) in kept {
            rewritten.extend_from_slice(&batch[span.clone()]);
        }
        fix_length_and_crc(&mut rewritten);
        Ok(Some(rewritten))
    }
}

/// Each record of a keyed batch and the bytes it spans in the batch.
fn record_spans(batch: &[u8]) -> Result<Vec<(TestRecord, std::ops::Range<usize>)>, String> {
    let header_end = TEST_BATCH_HEADER_BYTES;
    let records_count = i32::from_be_bytes(batch[57..61].try_into().expect("header"));
    let base_offset = base_offset_of(batch);
    let mut position = header_end;
    let mut records = Vec::new();
    for _ in 0..records_count {
        let start = position;
        let length = read_varint(batch, &mut position)?;
        let end = position + usize::try_from(length).map_err(|_| "negative length")?;
        position += 1; // attributes
        read_varint(batch, &mut position)?; // timestamp delta
        let offset_delta = read_varint(batch, &mut position)?;
        let key = read_nullable(batch, &mut position)?;
        let value = read_nullable(batch, &mut position)?;
        let headers_count = read_varint(batch, &mut position)?;
        if headers_count != 0 || position != end {
            return Err("not a keyed test record".into());
        }
        let offset = base_offset + offset_delta;
        records.push((TestRecord { offset, key, value }, start..end));
    }
    if position != batch.len() {
        return Err("trailing bytes after the records".into());
    }
    Ok(records)
}

fn fix_length_and_crc(batch: &mut [u8]) {
    let batch_length = i32::try_from(batch.len() - 12).expect("small");
    batch[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(bytes) => {
            put_varint(out, i64::try_from(bytes.len()).expect("small"));
            out.extend_from_slice(bytes);
        }
    }
}

fn read_nullable(batch: &[u8], position: &mut usize) -> Result<Option<Vec<u8>>, String> {
    let length = read_varint(batch, position)?;
    let Ok(length) = usize::try_from(length) else {
        return Ok(None);
    };
    let bytes = batch
        .get(*position..*position + length)
        .ok_or("field runs past the batch")?;
    *position += length;
    Ok(Some(bytes.to_vec()))
}

/// Zig-zag varint, as Kafka's records use.
fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = u64::from_ne_bytes(((value << 1) ^ (value >> 63)).to_ne_bytes());
    while zigzag >= 0x80 {
        out.push(u8::try_from(zigzag & 0x7f).expect("7 bits") | 0x80);
        zigzag >>= 7;
    }
    out.push(u8::try_from(zigzag).expect("below 0x80"));
}

fn read_varint(batch: &[u8], position: &mut usize) -> Result<i64, String> {
    let mut zigzag = 0_u64;
    for shift in (0..64).step_by(7) {
        let byte = *batch.get(*position).ok_or("varint runs past the batch")?;
        *position += 1;
        zigzag |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            let magnitude = i64::from_ne_bytes((zigzag >> 1).to_ne_bytes());
            return Ok(if zigzag & 1 == 0 {
                magnitude
            } else {
                !magnitude
            });
        }
    }
    Err("varint too long".into())
}
