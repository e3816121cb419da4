//! A zero-copy view of one record batch, and an iterator over concatenated batches.
//!
//! The Produce path parses a view over the request's bytes, checks it (`verify_crc`,
//! the header fields) and stores the same bytes; it never calls `records()`. Readers of
//! individual records (the processor, tests) call `records()`, which decompresses.

use std::iter::FusedIterator;

use bytes::{Buf, Bytes};
use nom::number::complete::{be_i8, be_i16, be_i32, be_i64, be_u32};
use nom::{IResult, Parser};

use super::RecordError;
use super::compression::{Compression, MAX_DECOMPRESSED_BYTES, decompress};
use super::format::{
    CONTROL_BIT, LOG_APPEND_TIME_BIT, NO_SEQUENCE, RECORDS_POSITION, TRANSACTIONAL_BIT,
    batch_total_bytes, crc_of,
};
use super::records::{BatchContext, Record, decode_records};

/// How the timestamps of a batch were set: attribute bit 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Each record carries the time its producer gave it (bit 3 clear).
    #[default]
    CreateTime,
    /// The broker's append time, stored once as the batch's `max_timestamp`, applies to
    /// every record (bit 3 set; the topic has `message.timestamp.type=LogAppendTime`).
    LogAppendTime,
}

impl TimestampType {
    /// The timestamp type a batch's attributes name.
    pub fn from_attributes(attributes: i16) -> Self {
        if attributes & LOG_APPEND_TIME_BIT == 0 {
            Self::CreateTime
        } else {
            Self::LogAppendTime
        }
    }
}

/// One v2 record batch over the bytes it arrived in, header decoded, records untouched.
///
/// Parsing checks that the header is complete, the magic is 2, `batch_length` covers at
/// least a header and the whole batch is present. It does not check the CRC (call
/// [`verify_crc`](Self::verify_crc)) nor decode records (call [`records`](Self::records)),
/// so each caller pays only for what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatchView {
    header: Header,
    /// Exactly this batch's bytes, `total_bytes()` long, at least a header.
    bytes: Bytes,
}

/// The fixed-size fields of a batch, in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    base_offset: i64,
    batch_length: i32,
    partition_leader_epoch: i32,
    magic: i8,
    crc: u32,
    attributes: i16,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    records_count: i32,
}

impl RecordBatchView {
    /// Parses `bytes` as exactly one batch, as Produce v3+ requires of each partition.
    ///
    /// # Errors
    /// `Incomplete` if the batch is cut short, `BadMagic`, `InvalidLength` for a
    /// `batch_length` below a header, `TrailingBytes` if bytes follow the batch.
    pub fn parse(bytes: Bytes) -> Result<Self, RecordError> {
        let view = Self::parse_first(&bytes)?;
        match bytes.len() - view.total_bytes() {
            0 => Ok(view),
            trailing_bytes => Err(RecordError::TrailingBytes(trailing_bytes)),
        }
    }

    /// Parses the batch at the front of `bytes`, which may hold more after it; the view's
    /// [`total_bytes`](Self::total_bytes) says where the next one starts. The view shares
    /// `bytes`' buffer.
    ///
    /// # Errors
    /// As [`parse`](Self::parse), without `TrailingBytes`.
    pub fn parse_first(bytes: &Bytes) -> Result<Self, RecordError> {
        let total_bytes = batch_total_bytes(bytes)?;
        if bytes.len() < total_bytes {
            return Err(RecordError::Incomplete);
        }
        let bytes = bytes.slice(..total_bytes);
        let header = parse_header(&bytes)?;
        Ok(Self { header, bytes })
    }

    /// The offset of the batch's first record. The broker rewrites it on append.
    pub fn base_offset(&self) -> i64 {
        self.header.base_offset
    }

    /// Bytes after the `batch_length` field: `total_bytes() - 12`.
    pub fn batch_length(&self) -> i32 {
        self.header.batch_length
    }

    /// The leader epoch of the broker that appended the batch; -1 from a producer.
    pub fn partition_leader_epoch(&self) -> i32 {
        self.header.partition_leader_epoch
    }

    /// The format version; always 2 for a parsed view.
    pub fn magic(&self) -> i8 {
        self.header.magic
    }

    /// The CRC-32C the batch carries.
    pub fn crc(&self) -> u32 {
        self.header.crc
    }

    /// The raw attributes: codec, timestamp type, transactional and control bits.
    pub fn attributes(&self) -> i16 {
        self.header.attributes
    }

    /// The codec the records are compressed with.
    ///
    /// # Errors
    /// `UnsupportedCompression` for codecs 5-7.
    pub fn compression(&self) -> Result<Compression, RecordError> {
        Compression::from_attributes(self.header.attributes)
    }

    /// Whether record timestamps are the producer's or the broker's append time.
    pub fn timestamp_type(&self) -> TimestampType {
        TimestampType::from_attributes(self.header.attributes)
    }

    /// Whether the batch is part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.header.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch holds control records (transaction commit/abort markers).
    pub fn is_control(&self) -> bool {
        self.header.attributes & CONTROL_BIT != 0
    }

    /// The offset delta of the last record; `records_count - 1` unless compacted.
    pub fn last_offset_delta(&self) -> i32 {
        self.header.last_offset_delta
    }

    /// The offset of the last record (wrapping on overflow, as Kafka's Java code does).
    pub fn last_offset(&self) -> i64 {
        self.header
            .base_offset
            .wrapping_add(i64::from(self.header.last_offset_delta))
    }

    /// The first record's timestamp in milliseconds, the base of the records' deltas.
    pub fn base_timestamp(&self) -> i64 {
        self.header.base_timestamp
    }

    /// The largest record timestamp in milliseconds, or the append time for a
    /// LogAppendTime batch.
    pub fn max_timestamp(&self) -> i64 {
        self.header.max_timestamp
    }

    /// The idempotent producer's id; -1 without idempotence.
    pub fn producer_id(&self) -> i64 {
        self.header.producer_id
    }

    /// The idempotent producer's epoch; -1 without idempotence.
    pub fn producer_epoch(&self) -> i16 {
        self.header.producer_epoch
    }

    /// The sequence number of the first record; -1 without idempotence.
    pub fn base_sequence(&self) -> i32 {
        self.header.base_sequence
    }

    /// The sequence number of the last record: `base_sequence + last_offset_delta`,
    /// wrapping from `i32::MAX` to 0 as Kafka's sequences do; -1 when `base_sequence` is.
    pub fn last_sequence(&self) -> i32 {
        let base_sequence = self.header.base_sequence;
        let delta = self.header.last_offset_delta;
        if base_sequence == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        // Kafka's DefaultRecordBatch.incrementSequence: past i32::MAX, count on from 0.
        if delta >= 0 && base_sequence > i32::MAX - delta {
            delta - (i32::MAX - base_sequence) - 1
        } else {
            base_sequence.wrapping_add(delta)
        }
    }

    /// How many records the header says the batch holds (not checked until `records()`).
    pub fn records_count(&self) -> i32 {
        self.header.records_count
    }

    /// The batch's size on the wire and on disk, header included.
    pub fn total_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The CRC-32C of the batch's bytes from `attributes` to the end.
    pub fn computed_crc(&self) -> u32 {
        crc_of(&self.bytes)
    }

    /// Checks the stored CRC against the bytes.
    ///
    /// # Errors
    /// `CrcMismatch` when they differ: the batch was corrupted on the way or on disk.
    pub fn verify_crc(&self) -> Result<(), RecordError> {
        let computed = self.computed_crc();
        if computed != self.header.crc {
            return Err(RecordError::CrcMismatch {
                expected: self.header.crc,
                computed,
            });
        }
        Ok(())
    }

    /// Decompresses the records if needed and decodes them all, with at most
    /// [`MAX_DECOMPRESSED_BYTES`] of decompressed data.
    ///
    /// Keys, values and header values are slices of the batch's buffer when it is not
    /// compressed. Does not check the CRC.
    ///
    /// # Errors
    /// As [`records_with_limit`](Self::records_with_limit).
    pub fn records(&self) -> Result<Vec<Record>, RecordError> {
        self.records_with_limit(MAX_DECOMPRESSED_BYTES)
    }

    /// As [`records`](Self::records), with a caller-chosen decompression limit.
    ///
    /// # Errors
    /// `UnsupportedCompression`, `Decompress`, `DecompressedTooLarge` from the codec;
    /// `RecordCountMismatch` when fewer records than `records_count` are present,
    /// `TrailingBytes` when bytes follow the last one, `InvalidLength` or `MalformedRecord`
    /// for a record that does not parse.
    pub fn records_with_limit(
        &self,
        max_decompressed_bytes: usize,
    ) -> Result<Vec<Record>, RecordError> {
        let compression = self.compression()?;
        let payload = self.bytes.slice(RECORDS_POSITION..);
        let records = match compression {
            Compression::None => payload,
            codec => Bytes::from(decompress(codec, &payload, max_decompressed_bytes)?),
        };
        decode_records(&records, &self.context())
    }

    /// The batch's bytes, exactly `total_bytes()` of them.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The batch's bytes, for handing on without a copy.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    fn context(&self) -> BatchContext {
        BatchContext {
            base_offset: self.header.base_offset,
            base_timestamp_ms: self.header.base_timestamp,
            max_timestamp_ms: self.header.max_timestamp,
            timestamp_type: self.timestamp_type(),
            records_count: self.header.records_count,
        }
    }
}

/// Reads the fixed header fields from the front of `batch`.
fn parse_header(batch: &[u8]) -> Result<Header, RecordError> {
    let fields: IResult<&[u8], _> = (
        (be_i64, be_i32, be_i32, be_i8, be_u32, be_i16, be_i32),
        (be_i64, be_i64, be_i64, be_i16, be_i32, be_i32),
    )
        .parse(batch);
    let (_, (first, second)) = fields.map_err(|_| RecordError::Incomplete)?;
    let (
        base_offset,
        batch_length,
        partition_leader_epoch,
        magic,
        crc,
        attributes,
        last_offset_delta,
    ) = first;
    let (base_timestamp, max_timestamp, producer_id, producer_epoch, base_sequence, records_count) =
        second;
    Ok(Header {
        base_offset,
        batch_length,
        partition_leader_epoch,
        magic,
        crc,
        attributes,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        records_count,
    })
}

/// Iterates the whole batches in a buffer of concatenated batches: the records of a Fetch
/// response, or a log segment.
///
/// A partial batch at the end ends the iteration quietly (a Fetch response may end with
/// one; a segment being written may too). A malformed batch is yielded as an error, and
/// the iteration ends after it. [`position`](Self::position) then says where the good
/// batches end.
#[derive(Debug, Clone)]
pub struct BatchIter {
    remaining: Bytes,
    position: usize,
    finished: bool,
}

/// Iterates the batches in `bytes`. See [`BatchIter`].
pub fn batches(bytes: Bytes) -> BatchIter {
    BatchIter {
        remaining: bytes,
        position: 0,
        finished: false,
    }
}

impl BatchIter {
    /// Where the next batch starts, counted from the start of the buffer. Once the
    /// iteration has ended, this is the end of the last whole, well-formed batch: the
    /// place to truncate a log after a crash.
    pub fn position(&self) -> usize {
        self.position
    }

    /// How many bytes from [`position`](Self::position) on are not yet yielded.
    pub fn remaining_bytes(&self) -> usize {
        self.remaining.len()
    }
}

impl Iterator for BatchIter {
    type Item = Result<RecordBatchView, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished || self.remaining.is_empty() {
            return None;
        }
        match RecordBatchView::parse_first(&self.remaining) {
            Ok(view) => {
                self.remaining.advance(view.total_bytes());
                self.position += view.total_bytes();
                Some(Ok(view))
            }
            Err(RecordError::Incomplete) => {
                self.finished = true;
                None
            }
            Err(error) => {
                self.finished = true;
                Some(Err(error))
            }
        }
    }
}

impl FusedIterator for BatchIter {}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use proptest::prelude::*;

    use super::*;
    use crate::record::test_vectors::{HandBatch, three_record_batch, three_records};
    use crate::record::{RecordBatchBuilder, RecordHeader};

    fn header(key: &str, value: Option<&'static [u8]>) -> RecordHeader {
        RecordHeader {
            key: key.to_owned(),
            value: value.map(Bytes::from_static),
        }
    }

    fn record(
        offset: i64,
        timestamp_ms: i64,
        key: Option<&'static [u8]>,
        value: Option<&'static [u8]>,
        headers: Vec<RecordHeader>,
    ) -> Record {
        Record {
            offset,
            timestamp_ms,
            key: key.map(Bytes::from_static),
            value: value.map(Bytes::from_static),
            headers,
            attributes: 0,
        }
    }

    /// What [`three_records`] decodes to in a CreateTime batch at base offset 1000.
    fn three_records_decoded() -> Vec<Record> {
        let base_ms = 1_700_000_000_000;
        vec![
            record(
                1000,
                base_ms,
                Some(b"key0"),
                Some(b"value0"),
                vec![header("h1", Some(b"v1")), header("h2", None)],
            ),
            record(1001, base_ms + 5, None, Some(b"v"), vec![]),
            record(
                1002,
                base_ms - 3,
                Some(b"k"),
                None,
                vec![header("", Some(b""))],
            ),
        ]
    }

    fn view_of(batch: &HandBatch) -> Result<RecordBatchView, RecordError> {
        RecordBatchView::parse(Bytes::from(batch.lay_out()))
    }

    #[test]
    fn record_batch_v2_uncompressed_hand_laid() {
        // A batch laid out byte by byte from the spec decodes to every header field, the
        // CRC an independent CRC-32C implementation gives, and the three records.
        let bytes = Bytes::from(three_record_batch().lay_out());
        let view = RecordBatchView::parse(bytes.clone()).expect("parse");
        assert_eq!(view.base_offset(), 1000);
        assert_eq!(view.batch_length(), 49 + 45);
        assert_eq!(view.total_bytes(), 61 + 45);
        assert_eq!(view.partition_leader_epoch(), 7);
        assert_eq!(view.magic(), 2);
        assert_eq!(view.crc(), 0xa4f1_16fd);
        assert_eq!(view.computed_crc(), 0xa4f1_16fd);
        assert_eq!(view.verify_crc(), Ok(()));
        assert_eq!(view.attributes(), 0);
        assert_eq!(view.compression(), Ok(Compression::None));
        assert_eq!(view.timestamp_type(), TimestampType::CreateTime);
        assert!(!view.is_transactional());
        assert!(!view.is_control());
        assert_eq!(view.last_offset_delta(), 2);
        assert_eq!(view.last_offset(), 1002);
        assert_eq!(view.base_timestamp(), 1_700_000_000_000);
        assert_eq!(view.max_timestamp(), 1_700_000_000_005);
        assert_eq!(view.producer_id(), 42);
        assert_eq!(view.producer_epoch(), 3);
        assert_eq!(view.base_sequence(), 10);
        assert_eq!(view.last_sequence(), 12);
        assert_eq!(view.records_count(), 3);
        assert_eq!(view.as_bytes(), &bytes);
        assert_eq!(view.records(), Ok(three_records_decoded()));
    }

    #[test]
    fn uncompressed_record_fields_are_slices_of_the_batch() {
        // Zero-copy: the key of an uncompressed record points into the batch's buffer.
        let bytes = Bytes::from(three_record_batch().lay_out());
        let view = RecordBatchView::parse(bytes.clone()).expect("parse");
        let records = view.records().expect("records");
        let key = records[0].key.as_ref().expect("key");
        let buffer = bytes.as_ptr_range();
        assert!(buffer.contains(&key.as_ptr()));
    }

    #[test]
    fn flags_and_log_append_time_read_from_attributes() {
        // Bits 3, 4 and 5 read as LogAppendTime, transactional and control; in a
        // LogAppendTime batch every record's timestamp is max_timestamp.
        let batch = HandBatch {
            attributes: 0b11_1000,
            ..three_record_batch()
        };
        let view = view_of(&batch).expect("parse");
        assert_eq!(view.timestamp_type(), TimestampType::LogAppendTime);
        assert!(view.is_transactional());
        assert!(view.is_control());
        let records = view.records().expect("records");
        assert!(
            records
                .iter()
                .all(|record| record.timestamp_ms == 1_700_000_000_005)
        );
    }

    #[test]
    fn last_sequence_wraps_to_zero_like_kafka() {
        // Sequences MAX-1, MAX, 0, 1: the last is 1. No producer sequence stays -1.
        let batch = HandBatch {
            base_sequence: i32::MAX - 1,
            last_offset_delta: 3,
            ..HandBatch::default()
        };
        assert_eq!(view_of(&batch).expect("parse").last_sequence(), 1);
        let batch = HandBatch {
            base_sequence: -1,
            last_offset_delta: 3,
            ..HandBatch::default()
        };
        assert_eq!(view_of(&batch).expect("parse").last_sequence(), -1);
    }

    #[test]
    fn empty_batch_has_no_records() {
        // A header with records_count 0 and nothing after it (what compaction can leave).
        let view = view_of(&HandBatch::default()).expect("parse");
        assert_eq!(view.total_bytes(), 61);
        assert_eq!(view.records(), Ok(vec![]));
    }

    /// Lays out the three records compressed with `compression` by `compressed`.
    fn compressed_batch(compression: Compression, compressed: Vec<u8>) -> HandBatch {
        HandBatch {
            attributes: compression.id(),
            records: compressed,
            ..three_record_batch()
        }
    }

    #[test]
    fn records_compressed_directly_by_each_library_decode() {
        // Interop: the records blob is made by the codec libraries themselves, not by our
        // compress(); snappy both as one raw block and xerial-framed.
        let records = three_records();
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&records).expect("gzip");
        let mut lz4 = lz4_flex::frame::FrameEncoder::new(Vec::new());
        lz4.write_all(&records).expect("lz4");
        let raw_snappy = snap::raw::Encoder::new()
            .compress_vec(&records)
            .expect("snappy");
        let mut xerial = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
        xerial.extend_from_slice(
            &i32::try_from(raw_snappy.len())
                .expect("small")
                .to_be_bytes(),
        );
        xerial.extend_from_slice(&raw_snappy);
        let cases = [
            (Compression::Gzip, gzip.finish().expect("gzip")),
            (Compression::Snappy, raw_snappy),
            (Compression::Snappy, xerial),
            (Compression::Lz4, lz4.finish().expect("lz4")),
            (
                Compression::Zstd,
                zstd::bulk::compress(&records, 3).expect("zstd"),
            ),
        ];
        for (compression, compressed) in cases {
            let view = view_of(&compressed_batch(compression, compressed)).expect("parse");
            assert_eq!(view.verify_crc(), Ok(()));
            assert_eq!(view.compression(), Ok(compression));
            assert_eq!(view.records(), Ok(three_records_decoded()), "{compression}");
        }
    }

    #[test]
    fn decompression_bomb_is_an_error() {
        // A zstd batch whose records inflate past the caller's limit fails cleanly.
        let bomb = zstd::bulk::compress(&vec![0_u8; 1 << 20], 3).expect("zstd");
        let view = view_of(&compressed_batch(Compression::Zstd, bomb)).expect("parse");
        assert_eq!(
            view.records_with_limit(4096),
            Err(RecordError::DecompressedTooLarge { limit_bytes: 4096 })
        );
    }

    #[test]
    fn unknown_codec_is_refused_when_reading_records() {
        // Codec 5 parses (the broker may still store it) but cannot be read.
        let view = view_of(&HandBatch {
            attributes: 5,
            ..three_record_batch()
        })
        .expect("parse");
        assert_eq!(
            view.compression(),
            Err(RecordError::UnsupportedCompression(5))
        );
        assert_eq!(view.records(), Err(RecordError::UnsupportedCompression(5)));
    }

    #[test]
    fn flipped_byte_fails_the_crc() {
        // A flipped bit anywhere from attributes to the end, or in the CRC itself, is
        // caught; one in the base offset is not covered, by design.
        let good = three_record_batch().lay_out();
        for position in [17, 21, 40, 61, good.len() - 1] {
            let mut bad = good.clone();
            bad[position] ^= 0x10;
            let view = RecordBatchView::parse(Bytes::from(bad)).expect("parse");
            assert!(
                matches!(view.verify_crc(), Err(RecordError::CrcMismatch { .. })),
                "{position}"
            );
        }
        let mut offset_changed = good;
        offset_changed[3] ^= 0x10;
        let view = RecordBatchView::parse(Bytes::from(offset_changed)).expect("parse");
        assert_eq!(view.verify_crc(), Ok(()));
    }

    #[test]
    fn every_truncation_is_incomplete() {
        // Each strict prefix of a batch is Incomplete for parse, and ends batches() quietly.
        let whole = Bytes::from(three_record_batch().lay_out());
        for length in 0..whole.len() {
            let prefix = whole.slice(..length);
            assert_eq!(
                RecordBatchView::parse(prefix.clone()),
                Err(RecordError::Incomplete),
                "{length}"
            );
            assert_eq!(batches(prefix).count(), 0);
        }
    }

    #[test]
    fn bad_magic_and_bad_batch_length_are_rejected() {
        // Magic 1 (a legacy message set), a negative and a too-small batch_length are
        // errors; a huge one is Incomplete (the rest has not arrived); bytes after a
        // batch are TrailingBytes for parse.
        let magic_1 = HandBatch {
            magic: 1,
            ..three_record_batch()
        };
        assert_eq!(view_of(&magic_1), Err(RecordError::BadMagic(1)));
        for length in [-1, i32::MIN, 0, 48] {
            let batch = HandBatch {
                batch_length: Some(length),
                ..three_record_batch()
            };
            let expected = RecordError::InvalidLength {
                field: "batch_length",
                length: length.into(),
            };
            assert_eq!(view_of(&batch), Err(expected));
        }
        let huge = HandBatch {
            batch_length: Some(i32::MAX),
            ..three_record_batch()
        };
        assert_eq!(view_of(&huge), Err(RecordError::Incomplete));
        let mut trailing = three_record_batch().lay_out();
        trailing.extend_from_slice(&[0, 0, 0]);
        assert_eq!(
            RecordBatchView::parse(Bytes::from(trailing)),
            Err(RecordError::TrailingBytes(3))
        );
    }

    #[test]
    fn lying_records_count_is_caught() {
        // records_count above, below, and negative against three real records.
        let count = |records_count| {
            view_of(&HandBatch {
                records_count,
                ..three_record_batch()
            })
        };
        let more = RecordError::RecordCountMismatch {
            declared: 4,
            found: 3,
        };
        assert_eq!(count(4).expect("parse").records(), Err(more));
        assert_eq!(
            count(2).expect("parse").records(),
            Err(RecordError::TrailingBytes(10))
        );
        let negative = RecordError::InvalidLength {
            field: "records_count",
            length: -1,
        };
        assert_eq!(count(-1).expect("parse").records(), Err(negative));
        let huge = RecordError::RecordCountMismatch {
            declared: i32::MAX,
            found: 3,
        };
        assert_eq!(count(i32::MAX).expect("parse").records(), Err(huge));
    }

    #[test]
    fn record_lengths_that_disagree_with_the_batch_are_caught() {
        // A record claiming 63 bytes when 44 remain, a batch_length that cuts the last
        // record, and a record length shorter than its fields.
        let mut records = three_records();
        records[0] = 0x7e; // length 63
        let long = HandBatch {
            records,
            ..three_record_batch()
        };
        let expected = RecordError::InvalidLength {
            field: "record length",
            length: 63,
        };
        assert_eq!(view_of(&long).expect("parse").records(), Err(expected));

        let mut cut = three_record_batch().lay_out();
        let shorter = i32::try_from(cut.len() - 12 - 2).expect("small");
        cut[8..12].copy_from_slice(&shorter.to_be_bytes());
        cut.truncate(cut.len() - 2);
        let view = RecordBatchView::parse(Bytes::from(cut)).expect("parse");
        assert!(matches!(
            view.records(),
            Err(RecordError::InvalidLength { .. })
        ));

        let mut records = three_records();
        records[0] = 0x30; // length 24, two bytes short of the fields
        let short = HandBatch {
            records,
            ..three_record_batch()
        };
        assert!(view_of(&short).expect("parse").records().is_err());
    }

    #[test]
    fn null_header_key_and_huge_header_count_are_caught() {
        // The third record's header key length becomes -1, then its header count 1000.
        let mut records = three_records();
        let last = records.len() - 2;
        records[last] = 0x01;
        let null_key = HandBatch {
            records,
            ..three_record_batch()
        };
        let expected = RecordError::InvalidLength {
            field: "header key length",
            length: -1,
        };
        assert_eq!(view_of(&null_key).expect("parse").records(), Err(expected));

        let mut records = three_records();
        let count_position = records.len() - 3;
        records[count_position] = 0x7e; // 63 headers in 2 bytes
        let many = HandBatch {
            records,
            ..three_record_batch()
        };
        let expected = RecordError::InvalidLength {
            field: "headers count",
            length: 63,
        };
        assert_eq!(view_of(&many).expect("parse").records(), Err(expected));
    }

    #[test]
    fn batches_walks_whole_batches_and_stops_at_a_partial_tail() {
        // Three batches then half of a fourth: three views, and position() marks the end
        // of the third.
        let one = three_record_batch().lay_out();
        let mut buffer = [one.clone(), one.clone(), one.clone()].concat();
        buffer.extend_from_slice(&one[..30]);
        let mut iterator = batches(Bytes::from(buffer));
        let offsets: Vec<i64> = iterator
            .by_ref()
            .map(|view| view.expect("whole batch").base_offset())
            .collect();
        assert_eq!(offsets, [1000, 1000, 1000]);
        assert_eq!(iterator.position(), 3 * one.len());
        assert_eq!(iterator.remaining_bytes(), 30);
        assert!(iterator.next().is_none());
    }

    #[test]
    fn batches_yields_one_error_for_a_malformed_batch_then_stops() {
        // Good batch, bad magic, good batch: one view, one error, then nothing.
        let good = three_record_batch().lay_out();
        let bad = HandBatch {
            magic: 0,
            ..three_record_batch()
        }
        .lay_out();
        let mut iterator = batches(Bytes::from([good.clone(), bad, good.clone()].concat()));
        assert!(matches!(iterator.next(), Some(Ok(_))));
        assert_eq!(iterator.next(), Some(Err(RecordError::BadMagic(0))));
        assert_eq!(iterator.next(), None);
        assert_eq!(iterator.position(), good.len());
    }

    /// Parses, iterates and decodes `bytes` every way there is; must never panic.
    fn read_every_way(bytes: Bytes) {
        if let Ok(view) = RecordBatchView::parse_first(&bytes) {
            let _ = view.verify_crc();
            let _ = view.last_sequence();
            let _ = view.last_offset();
            let _ = view.records_with_limit(1 << 20);
        }
        let _ = RecordBatchView::parse(bytes.clone());
        for view in batches(bytes).flatten() {
            let _ = view.records_with_limit(1 << 20);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            read_every_way(Bytes::from(bytes));
        }

        #[test]
        fn arbitrary_records_behind_a_valid_header_never_panic(
            records in proptest::collection::vec(any::<u8>(), 0..200),
            records_count in -2_i32..8,
            attributes in 0_i16..8,
        ) {
            // A sound header so the record decoder and the codecs see the random bytes.
            let batch = HandBatch { records, records_count, attributes, ..HandBatch::default() };
            read_every_way(Bytes::from(batch.lay_out()));
        }

        #[test]
        fn mutated_real_batches_never_panic(
            compression in prop_oneof![
                Just(Compression::None), Just(Compression::Gzip), Just(Compression::Snappy),
                Just(Compression::Lz4), Just(Compression::Zstd),
            ],
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            // A valid batch with a few bytes overwritten, then cut at a random length.
            let mut builder = RecordBatchBuilder::new(compression);
            builder
                .append(5, Some(b"key"), Some(b"value"), &[("h", Some(b"v"))])
                .append(9, None, Some(&[7; 40]), &[]);
            let mut bytes = builder.build().expect("build").to_vec();
            for (position, byte) in edits {
                let index = position.index(bytes.len());
                bytes[index] = byte;
            }
            let length = cut.index(bytes.len() + 1);
            bytes.truncate(length);
            read_every_way(Bytes::from(bytes));
        }
    }
}
