//! Builds valid Kafka v2 record batches for storage tests: a correct header and CRC-32C over
//! dummy record bytes. Storage never decodes records, so the records need not be real.
//!
//! Shared by the integration tests and, through `#[path]`, by the crate's unit tests, so it
//! uses nothing but `crc32c`.
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
