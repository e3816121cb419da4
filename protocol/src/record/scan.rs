//! Walks a batch's records without keeping them: the check Produce makes before it stores
//! a batch, as Kafka's log validator does.
//!
//! Compressed records are inflated as a stream through a fixed buffer, so a batch that
//! inflates to hundreds of megabytes (a decompression bomb) costs CPU time but not memory,
//! and a malformed one is refused at the first bad byte. Every field of every record is
//! framed and checked; keys and values are skipped, never copied.

use std::io::{BufRead, BufReader, Read};

use super::compression::Compression;
use super::format::RECORDS_POSITION;
use super::{RecordBatchView, RecordError, TimestampType, snappy};
use crate::varint::{read_varint, read_varlong};

/// The read buffer between a decompressor and the record parser.
const INFLATE_BUFFER_BYTES: usize = 64 * 1024;

/// What the validator learns about one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScannedRecord {
    /// The record's position in its batch, from 0 (KIP-467's `batch_index`).
    pub batch_index: i32,
    /// Its timestamp: the batch's base timestamp plus the record's delta (for a
    /// LogAppendTime batch, the batch's max timestamp).
    pub timestamp_ms: i64,
    /// Whether the key is non-null.
    pub has_key: bool,
}

impl RecordBatchView {
    /// Checks the framing of every record (lengths, varints, headers, offset deltas that
    /// count up from 0, exactly `records_count` records and nothing after them) and calls
    /// `visit` with each, inflating at most `max_decompressed_bytes` in a fixed buffer.
    ///
    /// # Errors
    /// `Decompress`, `DecompressedTooLarge`, `UnsupportedCompression` from the codec;
    /// `RecordCountMismatch`, `TrailingBytes`, `MalformedRecord`, `InvalidLength` for bad
    /// framing; `UnexpectedOffsetDelta` for deltas that skip or repeat.
    pub fn scan_records(
        &self,
        max_decompressed_bytes: usize,
        visit: impl FnMut(ScannedRecord),
    ) -> Result<(), RecordError> {
        let compression = self.compression()?;
        let payload = self.as_bytes().get(RECORDS_POSITION..).unwrap_or_default();
        let inflate_failed =
            |error: std::io::Error| RecordError::Decompress(format!("{compression}: {error}"));
        match compression {
            // Plain records are already a buffer: parsed in place, the hot path of Produce.
            Compression::None => return self.scan_plain(payload, visit),
            Compression::Gzip => self.scan_from(
                buffered(flate2::read::MultiGzDecoder::new(payload)),
                max_decompressed_bytes,
                visit,
            ),
            Compression::Snappy => self.scan_from(
                buffered(snappy::SnappyReader::new(payload, max_decompressed_bytes)),
                max_decompressed_bytes,
                visit,
            ),
            Compression::Lz4 => self.scan_from(
                buffered(lz4_flex::frame::FrameDecoder::new(payload)),
                max_decompressed_bytes,
                visit,
            ),
            Compression::Zstd => {
                let decoder = zstd::stream::read::Decoder::new(payload).map_err(inflate_failed)?;
                self.scan_from(buffered(decoder), max_decompressed_bytes, visit)
            }
        }
        .map_err(|error| match error {
            ScanError::Record(error) => error,
            // A codec that speaks RecordError (snappy) passes it through io::Error.
            ScanError::Io(error) => match error.get_ref().and_then(|inner| inner.downcast_ref()) {
                Some(record_error) => RecordError::clone(record_error),
                None => inflate_failed(error),
            },
        })
    }

    fn scan_plain(
        &self,
        payload: &[u8],
        mut visit: impl FnMut(ScannedRecord),
    ) -> Result<(), RecordError> {
        let declared = self.records_count();
        let mut rest = payload;
        for batch_index in 0..declared.max(0) {
            if rest.is_empty() {
                return Err(RecordError::RecordCountMismatch {
                    declared,
                    found: usize::try_from(batch_index).unwrap_or_default(),
                });
            }
            let length = take_varint(&mut rest, "record length")?;
            let length_bytes = usize::try_from(length)
                .ok()
                .filter(|bytes| *bytes > 0 && *bytes <= rest.len())
                .ok_or(RecordError::InvalidLength {
                    field: "record length",
                    length: i64::from(length),
                })?;
            let (mut body, after) = rest.split_at(length_bytes);
            rest = after;
            body = body.get(1..).unwrap_or_default(); // attributes, checked by the length
            let timestamp_delta = take_varlong(&mut body, "timestamp delta")?;
            let offset_delta = take_varint(&mut body, "offset delta")?;
            let has_key = skip_nullable(&mut body, "key length")?;
            skip_nullable(&mut body, "value length")?;
            let headers_count = take_varint(&mut body, "headers count")?;
            if headers_count < 0 {
                return Err(RecordError::InvalidLength {
                    field: "headers count",
                    length: i64::from(headers_count),
                });
            }
            for _ in 0..headers_count {
                if !skip_nullable(&mut body, "header key length")? {
                    return Err(RecordError::InvalidLength {
                        field: "header key length",
                        length: -1,
                    });
                }
                skip_nullable(&mut body, "header value length")?;
            }
            if !body.is_empty() {
                return Err(RecordError::MalformedRecord(
                    "record length (does not match its fields)",
                ));
            }
            if offset_delta != batch_index {
                return Err(RecordError::UnexpectedOffsetDelta {
                    expected: batch_index,
                    found: offset_delta,
                });
            }
            visit(ScannedRecord {
                batch_index,
                timestamp_ms: self.record_timestamp_ms(timestamp_delta),
                has_key,
            });
        }
        if !rest.is_empty() {
            return Err(RecordError::TrailingBytes(rest.len()));
        }
        Ok(())
    }

    fn record_timestamp_ms(&self, timestamp_delta: i64) -> i64 {
        match self.timestamp_type() {
            TimestampType::LogAppendTime => self.max_timestamp(),
            TimestampType::CreateTime => self.base_timestamp().wrapping_add(timestamp_delta),
        }
    }

    fn scan_from(
        &self,
        source: impl BufRead,
        max_decompressed_bytes: usize,
        mut visit: impl FnMut(ScannedRecord),
    ) -> Result<(), ScanError> {
        let declared = self.records_count();
        let mut reader = Reader {
            source,
            read_bytes: 0,
            max_bytes: max_decompressed_bytes,
            record_end: 0,
        };
        for batch_index in 0..declared.max(0) {
            if reader.at_end()? {
                return Err(RecordError::RecordCountMismatch {
                    declared,
                    found: usize::try_from(batch_index).unwrap_or_default(),
                }
                .into());
            }
            let record = reader.record()?;
            if record.offset_delta != batch_index {
                return Err(RecordError::UnexpectedOffsetDelta {
                    expected: batch_index,
                    found: record.offset_delta,
                }
                .into());
            }
            visit(ScannedRecord {
                batch_index,
                timestamp_ms: self.record_timestamp_ms(record.timestamp_delta),
                has_key: record.has_key,
            });
        }
        let trailing_bytes = reader.skip_to_end()?;
        if trailing_bytes > 0 {
            return Err(RecordError::TrailingBytes(trailing_bytes).into());
        }
        Ok(())
    }
}

/// Reads a zig-zag varint off the front of `bytes`.
fn take_varint(bytes: &mut &[u8], field: &'static str) -> Result<i32, RecordError> {
    let (value, used) = read_varint(bytes).map_err(|_| RecordError::MalformedRecord(field))?;
    *bytes = bytes.get(used..).unwrap_or_default();
    Ok(value)
}

/// Reads a zig-zag varlong off the front of `bytes`.
fn take_varlong(bytes: &mut &[u8], field: &'static str) -> Result<i64, RecordError> {
    let (value, used) = read_varlong(bytes).map_err(|_| RecordError::MalformedRecord(field))?;
    *bytes = bytes.get(used..).unwrap_or_default();
    Ok(value)
}

/// Skips a length-prefixed byte string in `bytes`: `Ok(false)` for null (-1).
fn skip_nullable(bytes: &mut &[u8], field: &'static str) -> Result<bool, RecordError> {
    let length = take_varint(bytes, field)?;
    if length == -1 {
        return Ok(false);
    }
    let length_bytes = usize::try_from(length)
        .ok()
        .filter(|length_bytes| *length_bytes <= bytes.len())
        .ok_or(RecordError::InvalidLength {
            field,
            length: i64::from(length),
        })?;
    *bytes = bytes.get(length_bytes..).unwrap_or_default();
    Ok(true)
}

fn buffered(reader: impl Read) -> BufReader<impl Read> {
    BufReader::with_capacity(INFLATE_BUFFER_BYTES, reader)
}

/// A record error, or the decompressor's I/O error (a corrupt stream).
enum ScanError {
    Record(RecordError),
    Io(std::io::Error),
}

impl From<RecordError> for ScanError {
    fn from(error: RecordError) -> Self {
        ScanError::Record(error)
    }
}

/// The fields of a record the validator keeps.
struct FramedRecord {
    timestamp_delta: i64,
    offset_delta: i32,
    has_key: bool,
}

/// Reads record fields from a buffered stream, counting bytes against the limit.
struct Reader<R> {
    source: R,
    read_bytes: usize,
    max_bytes: usize,
    /// Where the record being read ends, in `read_bytes`: no field may reach past it.
    record_end: usize,
}

impl<R: BufRead> Reader<R> {
    /// The next buffered bytes; empty at the end of the stream.
    fn buffer(&mut self) -> Result<&[u8], ScanError> {
        self.source.fill_buf().map_err(ScanError::Io)
    }

    fn consume(&mut self, bytes: usize) -> Result<(), ScanError> {
        self.source.consume(bytes);
        self.read_bytes = self.read_bytes.saturating_add(bytes);
        if self.read_bytes > self.max_bytes {
            return Err(RecordError::DecompressedTooLarge {
                limit_bytes: self.max_bytes,
            }
            .into());
        }
        Ok(())
    }

    fn at_end(&mut self) -> Result<bool, ScanError> {
        Ok(self.buffer()?.is_empty())
    }

    fn byte(&mut self, field: &'static str) -> Result<u8, ScanError> {
        let byte = *self
            .buffer()?
            .first()
            .ok_or(RecordError::MalformedRecord(field))?;
        self.consume(1)?;
        Ok(byte)
    }

    /// An unsigned LEB128 value of at most `max_bytes` bytes.
    fn unsigned_varint(&mut self, field: &'static str, max_bytes: u32) -> Result<u64, ScanError> {
        let mut value = 0u64;
        for index in 0..max_bytes {
            let byte = self.byte(field)?;
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError::MalformedRecord(field).into())
    }

    /// A zig-zag varint (i32): at most 5 bytes.
    fn varint(&mut self, field: &'static str) -> Result<i32, ScanError> {
        let raw = self.unsigned_varint(field, 5)?;
        let raw = u32::try_from(raw).map_err(|_| RecordError::MalformedRecord(field))?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// A zig-zag varlong (i64): at most 10 bytes.
    fn varlong(&mut self, field: &'static str) -> Result<i64, ScanError> {
        let raw = self.unsigned_varint(field, 10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    fn skip(&mut self, mut bytes: usize, field: &'static str) -> Result<(), ScanError> {
        while bytes > 0 {
            let available = self.buffer()?.len();
            if available == 0 {
                return Err(RecordError::MalformedRecord(field).into());
            }
            let step = available.min(bytes);
            self.consume(step)?;
            bytes -= step;
        }
        Ok(())
    }

    /// Skips what remains of the stream (within the limit); returns how many bytes.
    fn skip_to_end(&mut self) -> Result<usize, ScanError> {
        let mut skipped = 0usize;
        loop {
            let available = self.buffer()?.len();
            if available == 0 {
                return Ok(skipped);
            }
            self.consume(available)?;
            skipped += available;
        }
    }

    /// A length-prefixed byte string, skipped: `Ok(false)` for null (-1).
    fn skip_nullable_bytes(&mut self, field: &'static str) -> Result<bool, ScanError> {
        let length = self.varint(field)?;
        if length == -1 {
            return Ok(false);
        }
        let left_in_record = self.record_end.saturating_sub(self.read_bytes);
        let length_bytes = usize::try_from(length)
            .ok()
            .filter(|bytes| *bytes <= left_in_record)
            .ok_or(RecordError::InvalidLength {
                field,
                length: i64::from(length),
            })?;
        self.skip(length_bytes, field)?;
        Ok(true)
    }

    /// One record, checked against its length prefix.
    fn record(&mut self) -> Result<FramedRecord, ScanError> {
        let length = self.varint("record length")?;
        let length_bytes = usize::try_from(length)
            .ok()
            .filter(|bytes| *bytes > 0)
            .ok_or(RecordError::InvalidLength {
                field: "record length",
                length: i64::from(length),
            })?;
        let start = self.read_bytes;
        self.record_end = start.saturating_add(length_bytes);
        let _attributes = self.byte("record attributes")?;
        let timestamp_delta = self.varlong("timestamp delta")?;
        let offset_delta = self.varint("offset delta")?;
        let has_key = self.skip_nullable_bytes("key length")?;
        self.skip_nullable_bytes("value length")?;
        let headers_count = self.varint("headers count")?;
        if headers_count < 0 {
            return Err(RecordError::InvalidLength {
                field: "headers count",
                length: i64::from(headers_count),
            }
            .into());
        }
        for _ in 0..headers_count {
            if !self.skip_nullable_bytes("header key length")? {
                return Err(RecordError::InvalidLength {
                    field: "header key length",
                    length: -1,
                }
                .into());
            }
            self.skip_nullable_bytes("header value length")?;
            // A header takes at least two bytes, so a huge count fails the length check.
            if self.read_bytes > self.record_end {
                break;
            }
        }
        if self.read_bytes != self.record_end {
            return Err(
                RecordError::MalformedRecord("record length (does not match its fields)").into(),
            );
        }
        Ok(FramedRecord {
            timestamp_delta,
            offset_delta,
            has_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use bytes::Bytes;

    use super::*;
    use crate::record::test_vectors::{HandBatch, three_record_batch, three_records};
    use crate::record::{MAX_DECOMPRESSED_BYTES, RecordBatchBuilder, compress};

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn scan(batch: &HandBatch, limit_bytes: usize) -> Result<Vec<ScannedRecord>, RecordError> {
        let view = RecordBatchView::parse(Bytes::from(batch.lay_out()))?;
        let mut seen = Vec::new();
        view.scan_records(limit_bytes, |record| seen.push(record))?;
        Ok(seen)
    }

    fn with_records(compression: Compression, records: &[u8]) -> HandBatch {
        HandBatch {
            attributes: compression.id(),
            records: compress(compression, records).expect("compress"),
            ..three_record_batch()
        }
    }

    #[test]
    fn every_codec_yields_each_record_once_in_order() {
        let base_ms = 1_700_000_000_000;
        let expected = vec![
            ScannedRecord {
                batch_index: 0,
                timestamp_ms: base_ms,
                has_key: true,
            },
            ScannedRecord {
                batch_index: 1,
                timestamp_ms: base_ms + 5,
                has_key: false,
            },
            ScannedRecord {
                batch_index: 2,
                timestamp_ms: base_ms - 3,
                has_key: true,
            },
        ];
        for compression in ALL {
            let batch = with_records(compression, &three_records());
            assert_eq!(
                scan(&batch, MAX_DECOMPRESSED_BYTES),
                Ok(expected.clone()),
                "{compression}"
            );
        }
    }

    #[test]
    fn a_payload_that_is_not_its_codec_is_refused() {
        // The case found from outside: gzip named, CRC valid, payload not gzip.
        for compression in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let batch = HandBatch {
                attributes: compression.id(),
                records: b"definitely not compressed records".to_vec(),
                ..three_record_batch()
            };
            let error = scan(&batch, MAX_DECOMPRESSED_BYTES).expect_err("garbage accepted");
            assert!(
                matches!(error, RecordError::Decompress(_)),
                "{compression}: {error:?}"
            );
        }
    }

    #[test]
    fn counts_and_framing_must_match_the_header() {
        let records = three_records();
        for compression in ALL {
            let fewer = HandBatch {
                records_count: 4,
                ..with_records(compression, &records)
            };
            assert_eq!(
                scan(&fewer, MAX_DECOMPRESSED_BYTES),
                Err(RecordError::RecordCountMismatch {
                    declared: 4,
                    found: 3
                }),
                "{compression}"
            );
            let more = HandBatch {
                records_count: 2,
                ..with_records(compression, &records)
            };
            assert!(
                matches!(
                    scan(&more, MAX_DECOMPRESSED_BYTES),
                    Err(RecordError::TrailingBytes(_))
                ),
                "{compression}"
            );
            let cut = with_records(compression, &records[..records.len() - 1]);
            assert!(
                matches!(
                    scan(&cut, MAX_DECOMPRESSED_BYTES),
                    Err(RecordError::MalformedRecord(_) | RecordError::InvalidLength { .. })
                ),
                "{compression}"
            );
        }
    }

    #[test]
    fn a_field_longer_than_its_record_is_refused_without_reading_on() {
        // length 8: attributes, timestamp, offset delta, key length 1000 (varint 0xd0 0x0f).
        let record = [16u8, 0, 0, 0, 0xd0, 0x0f, 0, 0, 0];
        let batch = HandBatch {
            records_count: 1,
            records: record.to_vec(),
            ..three_record_batch()
        };
        assert_eq!(
            scan(&batch, MAX_DECOMPRESSED_BYTES),
            Err(RecordError::InvalidLength {
                field: "key length",
                length: 1000
            })
        );
    }

    #[test]
    fn offset_deltas_must_count_up_from_zero() {
        let mut builder = RecordBatchBuilder::new(Compression::Lz4);
        builder.append_at(0, 1, Some(b"k"), Some(b"v"), &[]);
        builder.append_at(2, 1, Some(b"k"), Some(b"v"), &[]);
        let view = RecordBatchView::parse(builder.build().expect("build")).expect("parse");
        let result = view.scan_records(MAX_DECOMPRESSED_BYTES, |_| {});
        assert_eq!(
            result,
            Err(RecordError::UnexpectedOffsetDelta {
                expected: 1,
                found: 2
            })
        );
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_limit() {
        // 64 MiB of zeros gzip to about 64 KiB; with a 1 MiB limit the scan stops there
        // (zeros read as records of length 0, refused at once, so make them a valid prefix
        // of one huge value instead).
        let value_bytes = 64 * 1024 * 1024;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut prefix = Vec::new();
        let record_length = 1 + 1 + 1 + 1 + 5 + value_bytes + 1;
        crate::varint::put_varint(&mut prefix, record_length);
        prefix.extend_from_slice(&[0, 0, 0, 1]); // attributes, timestamp, offset, null key
        crate::varint::put_varint(&mut prefix, value_bytes);
        encoder.write_all(&prefix).expect("gzip");
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..64 {
            encoder.write_all(&zeros).expect("gzip");
        }
        let compressed = encoder.finish().expect("gzip");
        assert!(compressed.len() < 1024 * 1024, "{} bytes", compressed.len());
        let batch = HandBatch {
            attributes: Compression::Gzip.id(),
            records_count: 1,
            records: compressed,
            ..three_record_batch()
        };
        let limit_bytes = 1024 * 1024;
        assert_eq!(
            scan(&batch, limit_bytes),
            Err(RecordError::DecompressedTooLarge { limit_bytes })
        );
    }
}
