//! The Kafka v2 record batch header: the one part of a batch the storage crate reads.
//!
//! Batches are stored as the broker received them; storage only needs their lengths,
//! offsets and timestamps to frame, index and recover them.
//!
//! # Format
//!
//! Big-endian; `batch_length` counts the bytes after itself, so a batch is
//! `LOG_OVERHEAD_BYTES + batch_length` bytes. The CRC-32C covers `attributes` to the end,
//! not `base_offset`, so offsets are assigned by rewriting bytes 0..8 alone.
//!
//! ```text
//! position  field
//!        0  base_offset            i64
//!        8  batch_length           i32
//!       12  partition_leader_epoch i32
//!       16  magic                  i8 (= 2)
//!       17  crc                    u32
//!       21  attributes             i16
//!       23  last_offset_delta      i32
//!       27  base_timestamp         i64
//!       35  max_timestamp          i64
//!       43  producer_id            i64
//!       51  producer_epoch         i16
//!       53  base_sequence          i32
//!       57  records_count          i32
//!       61  records ...
//! ```

/// Bytes in a v2 batch header, up to the first record.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before `batch_length` starts counting: `base_offset` and `batch_length` themselves.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// The only batch format we store.
pub const MAGIC_V2: i8 = 2;
/// Attribute bit of a batch written inside a transaction (data or marker).
pub const TRANSACTIONAL_ATTRIBUTE_BIT: i16 = 1 << 4;
/// Attribute bit of a batch of control records (transaction markers).
pub const CONTROL_ATTRIBUTE_BIT: i16 = 1 << 5;

const BASE_OFFSET_POSITION: usize = 0;
const BATCH_LENGTH_POSITION: usize = 8;
const PARTITION_LEADER_EPOCH_POSITION: usize = 12;
const MAGIC_POSITION: usize = 16;
const CRC_POSITION: usize = 17;
/// The CRC covers the batch from here to its end.
pub const CRC_COVERED_FROM_POSITION: usize = 21;
const ATTRIBUTES_POSITION: usize = 21;
const LAST_OFFSET_DELTA_POSITION: usize = 23;
const BASE_TIMESTAMP_POSITION: usize = 27;
const MAX_TIMESTAMP_POSITION: usize = 35;
const PRODUCER_ID_POSITION: usize = 43;
const PRODUCER_EPOCH_POSITION: usize = 51;
const BASE_SEQUENCE_POSITION: usize = 53;
const RECORDS_COUNT_POSITION: usize = 57;
const RECORDS_POSITION: usize = 61;

const _: () = assert!(BATCH_LENGTH_POSITION == BASE_OFFSET_POSITION + 8);
const _: () = assert!(LOG_OVERHEAD_BYTES == BATCH_LENGTH_POSITION + 4);
const _: () = assert!(PARTITION_LEADER_EPOCH_POSITION == LOG_OVERHEAD_BYTES);
const _: () = assert!(MAGIC_POSITION == PARTITION_LEADER_EPOCH_POSITION + 4);
const _: () = assert!(CRC_POSITION == MAGIC_POSITION + 1);
const _: () = assert!(CRC_COVERED_FROM_POSITION == CRC_POSITION + 4);
const _: () = assert!(ATTRIBUTES_POSITION == CRC_COVERED_FROM_POSITION);
const _: () = assert!(LAST_OFFSET_DELTA_POSITION == ATTRIBUTES_POSITION + 2);
const _: () = assert!(BASE_TIMESTAMP_POSITION == LAST_OFFSET_DELTA_POSITION + 4);
const _: () = assert!(MAX_TIMESTAMP_POSITION == BASE_TIMESTAMP_POSITION + 8);
const _: () = assert!(PRODUCER_ID_POSITION == MAX_TIMESTAMP_POSITION + 8);
const _: () = assert!(PRODUCER_EPOCH_POSITION == PRODUCER_ID_POSITION + 8);
const _: () = assert!(BASE_SEQUENCE_POSITION == PRODUCER_EPOCH_POSITION + 2);
const _: () = assert!(RECORDS_COUNT_POSITION == BASE_SEQUENCE_POSITION + 4);
const _: () = assert!(RECORDS_POSITION == RECORDS_COUNT_POSITION + 4);
const _: () = assert!(BATCH_HEADER_BYTES == RECORDS_POSITION);

/// The parsed, checked header of one v2 batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of the batch's last record: `base_offset + last_offset_delta`.
    pub last_offset: i64,
    /// Whole batch size, `LOG_OVERHEAD_BYTES + batch_length`.
    pub size_bytes: u64,
    /// Leader epoch the batch was appended under.
    pub partition_leader_epoch: i32,
    /// CRC-32C of the batch from `attributes` to its end, as stored.
    pub crc: u32,
    /// Compression, timestamp type, transactional and control flags.
    pub attributes: i16,
    /// `last_offset - base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record, in ms since the epoch.
    pub base_timestamp_ms: i64,
    /// Largest record timestamp in the batch, in ms since the epoch (-1 if none).
    pub max_timestamp_ms: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Idempotent producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `bytes`, checking only what the header alone can
    /// tell: its length, magic, a batch length at least a header long, and offsets that do
    /// not overflow. Whether the whole batch is present and its CRC is the caller's check.
    ///
    /// # Errors
    /// A short reason, if these bytes cannot be a v2 batch header.
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, &'static str> {
        let header: &[u8; BATCH_HEADER_BYTES] = bytes
            .get(..BATCH_HEADER_BYTES)
            .and_then(|header| header.try_into().ok())
            .ok_or("incomplete batch header")?;
        let magic = i8::from_be_bytes([header[MAGIC_POSITION]]);
        if magic != MAGIC_V2 {
            return Err("magic is not 2");
        }
        let base_offset = read_i64(header, BASE_OFFSET_POSITION);
        let batch_length = read_i32(header, BATCH_LENGTH_POSITION);
        let minimum_length = BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES;
        let batch_length = usize::try_from(batch_length)
            .ok()
            .filter(|length| *length >= minimum_length)
            .ok_or("batch length shorter than a batch header")?;
        let size_bytes = u64::try_from(LOG_OVERHEAD_BYTES + batch_length)
            .map_err(|_| "batch length does not fit in a file position")?;
        let last_offset_delta = read_i32(header, LAST_OFFSET_DELTA_POSITION);
        if last_offset_delta < 0 {
            return Err("negative last offset delta");
        }
        let last_offset = base_offset
            .checked_add(i64::from(last_offset_delta))
            .ok_or("last offset overflows")?;
        Ok(BatchHeader {
            base_offset,
            last_offset,
            size_bytes,
            partition_leader_epoch: read_i32(header, PARTITION_LEADER_EPOCH_POSITION),
            crc: u32::from_be_bytes(read_array(header, CRC_POSITION)),
            attributes: i16::from_be_bytes(read_array(header, ATTRIBUTES_POSITION)),
            last_offset_delta,
            base_timestamp_ms: read_i64(header, BASE_TIMESTAMP_POSITION),
            max_timestamp_ms: read_i64(header, MAX_TIMESTAMP_POSITION),
            producer_id: read_i64(header, PRODUCER_ID_POSITION),
            producer_epoch: i16::from_be_bytes(read_array(header, PRODUCER_EPOCH_POSITION)),
            base_sequence: read_i32(header, BASE_SEQUENCE_POSITION),
            records_count: read_i32(header, RECORDS_COUNT_POSITION),
        })
    }

    /// Number of offsets the batch takes: `last_offset_delta + 1`.
    pub fn offsets_count(&self) -> i64 {
        i64::from(self.last_offset_delta) + 1
    }

    /// Whether the batch holds control records (transaction markers), which compaction never
    /// maps and removes only whole.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_ATTRIBUTE_BIT != 0
    }

    /// Whether the batch belongs to a transaction of its producer.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_ATTRIBUTE_BIT != 0
    }
}

/// Rewrites a batch's base offset in place. The CRC does not cover it, so nothing else
/// changes.
///
/// # Panics
/// If `batch` is shorter than a batch header; callers pass batches `parse` accepted.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    assert!(batch.len() >= BATCH_HEADER_BYTES);
    batch[BASE_OFFSET_POSITION..BASE_OFFSET_POSITION + 8]
        .copy_from_slice(&base_offset.to_be_bytes());
}

/// Splits a buffer of concatenated batches into their headers, in order.
///
/// # Errors
/// The position of the first bad batch in `buffer` and why it is bad: a header that does not
/// parse, a batch that runs past the end of the buffer, or an empty buffer.
pub fn split_batches(buffer: &[u8]) -> Result<Vec<BatchHeader>, (usize, &'static str)> {
    if buffer.is_empty() {
        return Err((0, "no batches"));
    }
    let mut headers = Vec::new();
    let mut position = 0;
    while position < buffer.len() {
        let header =
            BatchHeader::parse(&buffer[position..]).map_err(|reason| (position, reason))?;
        let size_bytes = usize::try_from(header.size_bytes)
            .map_err(|_| (position, "batch length does not fit in memory"))?;
        if size_bytes > buffer.len() - position {
            return Err((position, "batch runs past the end of the buffer"));
        }
        headers.push(header);
        position += size_bytes;
    }
    Ok(headers)
}

/// CRC-32C of the bytes a batch's CRC covers, given that part of its header; callers feed
/// the rest of the batch with `crc32c::crc32c_append`.
pub fn crc_of_header(header_bytes: &[u8; BATCH_HEADER_BYTES]) -> u32 {
    crc32c::crc32c(&header_bytes[CRC_COVERED_FROM_POSITION..])
}

fn read_array<const N: usize>(header: &[u8; BATCH_HEADER_BYTES], position: usize) -> [u8; N] {
    let mut bytes = [0; N];
    bytes.copy_from_slice(&header[position..position + N]);
    bytes
}

fn read_i32(header: &[u8; BATCH_HEADER_BYTES], position: usize) -> i32 {
    i32::from_be_bytes(read_array(header, position))
}

fn read_i64(header: &[u8; BATCH_HEADER_BYTES], position: usize) -> i64 {
    i64::from_be_bytes(read_array(header, position))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_batch::{TestBatch, batch};

    /// A batch built by the test helper parses back to the fields it was built with, and its
    /// CRC matches what `crc_of_header` plus the records compute.
    #[test]
    fn parse_reads_every_field() {
        let bytes = TestBatch {
            records_count: 3,
            payload_bytes: 10,
            base_timestamp_ms: 1_000,
            max_timestamp_ms: 1_002,
        }
        .build();
        let header = BatchHeader::parse(&bytes).expect("valid header");
        assert_eq!(header.base_offset, 0);
        assert_eq!(header.last_offset, 2);
        assert_eq!(header.offsets_count(), 3);
        assert_eq!(
            header.size_bytes,
            u64::try_from(bytes.len()).expect("small")
        );
        assert_eq!(header.records_count, 3);
        assert_eq!(header.base_timestamp_ms, 1_000);
        assert_eq!(header.max_timestamp_ms, 1_002);
        assert_eq!(header.producer_id, -1);
        let header_bytes: &[u8; BATCH_HEADER_BYTES] =
            bytes[..BATCH_HEADER_BYTES].try_into().expect("long enough");
        let crc = crc32c::crc32c_append(crc_of_header(header_bytes), &bytes[BATCH_HEADER_BYTES..]);
        assert_eq!(crc, header.crc);
    }

    /// Rewriting the base offset moves both offsets and leaves the CRC valid.
    #[test]
    fn set_base_offset_keeps_crc() {
        let mut bytes = batch(5, 20);
        set_base_offset(&mut bytes, 1_000);
        let header = BatchHeader::parse(&bytes).expect("valid header");
        assert_eq!(header.base_offset, 1_000);
        assert_eq!(header.last_offset, 1_004);
        let covered = crc32c::crc32c(&bytes[CRC_COVERED_FROM_POSITION..]);
        assert_eq!(covered, header.crc);
    }

    /// Each malformed header is rejected with a reason, never a panic.
    #[test]
    fn parse_rejects_malformed_headers() {
        let good = batch(1, 0);
        assert_eq!(
            BatchHeader::parse(&good[..60]),
            Err("incomplete batch header")
        );
        let mut bad_magic = good.clone();
        bad_magic[MAGIC_POSITION] = 1;
        assert_eq!(BatchHeader::parse(&bad_magic), Err("magic is not 2"));
        for length in [-1_i32, 0, 48] {
            let mut bad_length = good.clone();
            bad_length[8..12].copy_from_slice(&length.to_be_bytes());
            assert!(BatchHeader::parse(&bad_length).is_err());
        }
        let mut bad_delta = good.clone();
        bad_delta[23..27].copy_from_slice(&(-1_i32).to_be_bytes());
        assert_eq!(
            BatchHeader::parse(&bad_delta),
            Err("negative last offset delta")
        );
        let mut overflow = good.clone();
        set_base_offset(&mut overflow, i64::MAX);
        overflow[23..27].copy_from_slice(&1_i32.to_be_bytes());
        assert_eq!(BatchHeader::parse(&overflow), Err("last offset overflows"));
    }

    /// Concatenated batches split at their boundaries; a truncated or empty buffer is an error
    /// naming the position of the bad batch.
    #[test]
    fn split_batches_frames_and_rejects() {
        let first = batch(2, 7);
        let second = batch(1, 30);
        let buffer = [first.clone(), second.clone()].concat();
        let headers = split_batches(&buffer).expect("two batches");
        assert_eq!(headers.len(), 2);
        assert_eq!(
            headers[0].size_bytes,
            u64::try_from(first.len()).expect("small")
        );
        assert_eq!(
            headers[1].size_bytes,
            u64::try_from(second.len()).expect("small")
        );

        let cut = &buffer[..buffer.len() - 1];
        assert_eq!(
            split_batches(cut),
            Err((first.len(), "batch runs past the end of the buffer"))
        );
        assert_eq!(split_batches(&[]), Err((0, "no batches")));
        let trailing = [buffer.as_slice(), &[0; 5]].concat();
        assert_eq!(
            split_batches(&trailing),
            Err((buffer.len(), "incomplete batch header"))
        );
    }
}
