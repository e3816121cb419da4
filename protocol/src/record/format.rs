//! Where each field of a v2 record batch sits, and how long a batch is.
//!
//! Everything else in this module reads and writes batch fields through these positions,
//! so the layout is written down once.
//!
//! # Format
//! ```text
//! position  bytes  field                    type
//!  0        8      base_offset              i64
//!  8        4      batch_length             i32   bytes after this field
//! 12        4      partition_leader_epoch   i32
//! 16        1      magic                    i8    2
//! 17        4      crc                      u32   CRC-32C of bytes 21..end
//! 21        2      attributes               i16   see the bit constants below
//! 23        4      last_offset_delta        i32
//! 27        8      base_timestamp           i64
//! 35        8      max_timestamp            i64
//! 43        8      producer_id              i64
//! 51        2      producer_epoch           i16
//! 53        4      base_sequence            i32
//! 57        4      records_count            i32
//! 61        ...    records                  one compressed blob unless the codec is none
//! ```
//! All integers are big-endian. The CRC starts at `attributes`, so the broker can rewrite
//! the base offset and partition leader epoch without recomputing it.

use super::RecordError;

/// The only magic byte this module reads or writes: record batch v2 (Kafka 0.11+).
pub const MAGIC_V2: i8 = 2;

/// Bytes before `batch_length` counts: base offset (8) and batch length (4). Kafka calls
/// this `LOG_OVERHEAD`.
pub const LOG_OVERHEAD_BYTES: usize = 12;

/// Bytes of a batch header, i.e. of a batch without records. Kafka calls this
/// `RECORD_BATCH_OVERHEAD`.
pub const RECORD_BATCH_OVERHEAD_BYTES: usize = 61;

/// The smallest legal `batch_length`: a header with no records.
pub(crate) const MIN_BATCH_LENGTH_BYTES: usize = RECORD_BATCH_OVERHEAD_BYTES - LOG_OVERHEAD_BYTES;

pub(crate) const BASE_OFFSET_POSITION: usize = 0;
pub(crate) const BATCH_LENGTH_POSITION: usize = 8;
pub(crate) const PARTITION_LEADER_EPOCH_POSITION: usize = 12;
pub(crate) const MAGIC_POSITION: usize = 16;
pub(crate) const CRC_POSITION: usize = 17;
pub(crate) const ATTRIBUTES_POSITION: usize = 21;
pub(crate) const MAX_TIMESTAMP_POSITION: usize = 35;
pub(crate) const RECORDS_POSITION: usize = 61;

/// The CRC covers the batch from here to its end.
pub(crate) const CRC_COVERED_FROM_POSITION: usize = ATTRIBUTES_POSITION;

/// Attribute bits 0-2: the compression codec.
pub(crate) const COMPRESSION_MASK: i16 = 0b111;
/// Attribute bit 3: set when timestamps are the broker's append time.
pub(crate) const LOG_APPEND_TIME_BIT: i16 = 1 << 3;
/// Attribute bit 4: the batch belongs to a transaction.
pub(crate) const TRANSACTIONAL_BIT: i16 = 1 << 4;
/// Attribute bit 5: the batch holds control records (transaction markers).
pub(crate) const CONTROL_BIT: i16 = 1 << 5;

/// `base_sequence` and `producer_id` of a batch from a producer without idempotence.
pub(crate) const NO_SEQUENCE: i32 = -1;
/// `partition_leader_epoch` before the broker stamps it.
pub(crate) const NO_PARTITION_LEADER_EPOCH: i32 = -1;
/// `producer_id` of a batch from a producer without idempotence.
pub(crate) const NO_PRODUCER_ID: i64 = -1;
/// `producer_epoch` of a batch from a producer without idempotence.
pub(crate) const NO_PRODUCER_EPOCH: i16 = -1;

const _: () = assert!(RECORDS_POSITION == RECORD_BATCH_OVERHEAD_BYTES);
const _: () = assert!(BATCH_LENGTH_POSITION + 4 == LOG_OVERHEAD_BYTES);
const _: () = assert!(MAGIC_POSITION + 1 == CRC_POSITION);
const _: () = assert!(CRC_POSITION + 4 == ATTRIBUTES_POSITION);
const _: () = assert!(MIN_BATCH_LENGTH_BYTES == 49);

/// How many bytes the batch at the front of `prefix` takes, header included.
///
/// Needs only the first 17 bytes (up to the magic byte), so a reader can learn how much to
/// read before it has the batch; it does not check that the rest is there.
///
/// # Errors
/// `Incomplete` if `prefix` is shorter than 17 bytes, `BadMagic` unless the magic is 2,
/// `InvalidLength` if `batch_length` is smaller than a header.
pub fn batch_total_bytes(prefix: &[u8]) -> Result<usize, RecordError> {
    let magic = i8::from_be_bytes(field(prefix, MAGIC_POSITION)?);
    if magic != MAGIC_V2 {
        return Err(RecordError::BadMagic(magic));
    }
    let batch_length = i32::from_be_bytes(field(prefix, BATCH_LENGTH_POSITION)?);
    let invalid = RecordError::InvalidLength {
        field: "batch_length",
        length: i64::from(batch_length),
    };
    let batch_length_bytes = usize::try_from(batch_length).map_err(|_| invalid.clone())?;
    if batch_length_bytes < MIN_BATCH_LENGTH_BYTES {
        return Err(invalid);
    }
    // Cannot overflow: batch_length is at most i32::MAX.
    Ok(LOG_OVERHEAD_BYTES + batch_length_bytes)
}

/// The `N` bytes of `bytes` starting at `position`.
pub(crate) fn field<const N: usize>(bytes: &[u8], position: usize) -> Result<[u8; N], RecordError> {
    bytes
        .get(position..position + N)
        .and_then(|slice| <[u8; N]>::try_from(slice).ok())
        .ok_or(RecordError::Incomplete)
}

/// Overwrites the bytes of `bytes` starting at `position` with `value`.
pub(crate) fn put_field(
    bytes: &mut [u8],
    position: usize,
    value: &[u8],
) -> Result<(), RecordError> {
    let target = bytes
        .get_mut(position..position + value.len())
        .ok_or(RecordError::Incomplete)?;
    target.copy_from_slice(value);
    Ok(())
}

/// The CRC-32C (Castagnoli) Kafka stores in a v2 batch: over `attributes` to the end.
///
/// `batch` must hold exactly one batch; bytes shorter than a header give the CRC of
/// whatever follows position 21 (nothing, if there is nothing).
pub(crate) fn crc_of(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(CRC_COVERED_FROM_POSITION..).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_castagnoli_not_ieee() {
        // The CRC-32C check value from the CRC catalogue; CRC-32/IEEE would give 0xcbf43926.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn batch_total_bytes_needs_magic_and_a_sane_length() {
        // Checks the three outcomes of reading a batch prefix: incomplete, bad, and sized.
        let mut prefix = [0_u8; 17];
        assert_eq!(
            batch_total_bytes(&prefix[..16]),
            Err(RecordError::Incomplete)
        );
        assert_eq!(batch_total_bytes(&prefix), Err(RecordError::BadMagic(0)));
        prefix[MAGIC_POSITION] = 2;
        prefix[8..12].copy_from_slice(&48_i32.to_be_bytes());
        let too_short = RecordError::InvalidLength {
            field: "batch_length",
            length: 48,
        };
        assert_eq!(batch_total_bytes(&prefix), Err(too_short));
        prefix[8..12].copy_from_slice(&(-1_i32).to_be_bytes());
        let negative = RecordError::InvalidLength {
            field: "batch_length",
            length: -1,
        };
        assert_eq!(batch_total_bytes(&prefix), Err(negative));
        prefix[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(batch_total_bytes(&prefix), Ok(12 + 2_147_483_647));
    }
}
