//! Rewriting a batch with some of its records removed: what log compaction does to each
//! batch it keeps.
//!
//! The rewritten batch is what Kafka's cleaner (`MemoryRecords.filterTo`) writes: the same
//! base offset, `last_offset_delta`, codec, timestamp type, transactional and control flags,
//! producer id, epoch and base sequence, and partition leader epoch; fewer records, each
//! with its own offset, timestamp, key, value and headers; a new CRC. Keeping the offset
//! span keeps the producer's last sequence right and leaves the gap where removed records
//! were, which readers skip.

use bytes::Bytes;

use super::RecordError;
use super::builder::RecordBatchBuilder;
use super::compression::{Compression, MAX_DECOMPRESSED_BYTES, decompress};
use super::format::RECORDS_POSITION;
use super::records::{BatchContext, Record, decode_records};
use super::view::{RecordBatchView, TimestampType};

/// The batch keeping only the records whose offsets `keep` returns true for; `None` if it
/// keeps none. A batch that keeps every record comes back as the same bytes, not re-encoded.
///
/// Record timestamps are written as stored, so a LogAppendTime batch keeps its producers'
/// timestamps underneath the append time (its `max_timestamp`), which readers still see
/// for every record. Decompression is limited to [`MAX_DECOMPRESSED_BYTES`]. The record
/// attributes byte, unused in v2, is written as 0, as Kafka's builder does.
///
/// ```
/// use riffle_protocol::record::{Compression, RecordBatchBuilder, RecordBatchView, retain_records};
///
/// let mut builder = RecordBatchBuilder::new(Compression::Zstd);
/// builder
///     .base_offset(10)
///     .append(1_000, Some(b"a"), Some(b"1"), &[])
///     .append(1_001, Some(b"a"), Some(b"2"), &[]);
/// let batch = RecordBatchView::parse(builder.build()?)?;
/// let kept = retain_records(&batch, |offset| offset == 11)?.expect("one record kept");
/// let kept = RecordBatchView::parse(kept)?;
/// assert_eq!((kept.base_offset(), kept.last_offset(), kept.records_count()), (10, 11, 1));
/// assert_eq!(kept.records()?[0].value.as_deref(), Some(&b"2"[..]));
/// # Ok::<(), riffle_protocol::record::RecordError>(())
/// ```
///
/// # Errors
/// What [`RecordBatchView::records`] returns for records that do not decode, and what
/// [`RecordBatchBuilder::build`] returns if the kept records cannot be written back (a
/// codec failure, or offsets outside the batch's span).
pub fn retain_records(
    batch: &RecordBatchView,
    keep: impl Fn(i64) -> bool,
) -> Result<Option<Bytes>, RecordError> {
    let records = stored_records(batch)?;
    let kept: Vec<&Record> = records
        .iter()
        .filter(|record| keep(record.offset))
        .collect();
    if kept.is_empty() {
        return Ok(None);
    }
    if kept.len() == records.len() {
        return Ok(Some(batch.as_bytes().clone()));
    }
    rebuild(batch, batch.compression()?, &kept).map(Some)
}

/// The same batch, its records compressed with `target`: what the broker stores when a
/// topic's `compression.type` names a codec other than the producer's, as Kafka does.
/// Offsets, timestamps (as stored), producer fields and flags stay; the CRC is new.
///
/// # Errors
/// As [`retain_records`].
pub fn recompress(batch: &RecordBatchView, target: Compression) -> Result<Bytes, RecordError> {
    let records = stored_records(batch)?;
    let all: Vec<&Record> = records.iter().collect();
    rebuild(batch, target, &all)
}

/// Writes `records` (of `batch`) as a batch with `batch`'s header fields, in `codec`.
fn rebuild(
    batch: &RecordBatchView,
    codec: Compression,
    records: &[&Record],
) -> Result<Bytes, RecordError> {
    let mut builder = header_builder(batch, codec);
    for record in records {
        let offset_delta = record
            .offset
            .checked_sub(batch.base_offset())
            .and_then(|delta| i32::try_from(delta).ok())
            .ok_or(RecordError::MalformedRecord("offset delta"))?;
        let headers: Vec<(&str, Option<&[u8]>)> = record
            .headers
            .iter()
            .map(|header| (header.key.as_str(), header.value.as_deref()))
            .collect();
        builder.append_at(
            offset_delta,
            record.timestamp_ms,
            record.key.as_deref(),
            record.value.as_deref(),
            &headers,
        );
    }
    builder.build()
}

/// The batch's records with their timestamps as stored: for a LogAppendTime batch,
/// `RecordBatchView::records` reports the append time instead, which a rewrite must not
/// bake into the records.
fn stored_records(batch: &RecordBatchView) -> Result<Vec<Record>, RecordError> {
    let compression = batch.compression()?;
    let payload = batch.as_bytes().slice(RECORDS_POSITION..);
    let records = match compression {
        Compression::None => payload,
        codec => Bytes::from(decompress(codec, &payload, MAX_DECOMPRESSED_BYTES)?),
    };
    let context = BatchContext {
        base_offset: batch.base_offset(),
        base_timestamp_ms: batch.base_timestamp(),
        max_timestamp_ms: batch.max_timestamp(),
        timestamp_type: TimestampType::CreateTime,
        records_count: batch.records_count(),
    };
    decode_records(&records, &context)
}

/// A builder carrying every header field the rewritten batch keeps from `batch`.
fn header_builder(batch: &RecordBatchView, codec: Compression) -> RecordBatchBuilder {
    let mut builder = RecordBatchBuilder::new(codec);
    builder
        .base_offset(batch.base_offset())
        .partition_leader_epoch(batch.partition_leader_epoch())
        .producer(
            batch.producer_id(),
            batch.producer_epoch(),
            batch.base_sequence(),
        )
        .last_offset_delta(batch.last_offset_delta());
    if batch.is_transactional() {
        builder.transactional();
    }
    if batch.is_control() {
        builder.control();
    }
    if batch.timestamp_type() == TimestampType::LogAppendTime {
        builder.log_append_time(batch.max_timestamp());
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordHeader;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    const BASE_MS: i64 = 1_700_000_000_000;

    /// Five records at offsets 500..=504 from an idempotent, transactional producer, with
    /// keys, values, a tombstone and headers, timestamps out of order.
    fn five_record_batch(compression: Compression) -> RecordBatchView {
        let mut builder = RecordBatchBuilder::new(compression);
        builder
            .base_offset(500)
            .partition_leader_epoch(9)
            .producer(77, 4, 1_000)
            .transactional()
            .append(BASE_MS, Some(b"k0"), Some(b"v0"), &[("h", Some(b"x"))])
            .append(BASE_MS + 30, Some(b"k1"), Some(b"v1"), &[])
            .append(
                BASE_MS + 10,
                Some(b"k2"),
                None,
                &[("a", None), ("b", Some(b""))],
            )
            .append(BASE_MS - 5, Some(b"k3"), Some(b"v3"), &[])
            .append(BASE_MS + 20, Some(b"k4"), Some(b"v4"), &[("t", Some(b"y"))]);
        RecordBatchView::parse(builder.build().expect("build")).expect("parse")
    }

    fn retained(batch: &RecordBatchView, offsets: &[i64]) -> RecordBatchView {
        let bytes = retain_records(batch, |offset| offsets.contains(&offset))
            .expect("retain")
            .expect("some records kept");
        RecordBatchView::parse(bytes).expect("parse the rewritten batch")
    }

    #[test]
    fn retain_keeps_header_fields_for_every_codec() {
        // For each codec, a batch keeping records 1 and 2 of 0..=4 has the original base
        // offset, offset span, codec, flags, producer fields and leader epoch, two records,
        // and a CRC that verifies.
        for compression in ALL {
            let original = five_record_batch(compression);
            let kept = retained(&original, &[501, 502]);
            assert_eq!(kept.verify_crc(), Ok(()), "{compression}");
            assert_eq!(kept.compression(), Ok(compression));
            assert_eq!(kept.base_offset(), 500);
            assert_eq!(kept.last_offset_delta(), 4);
            assert_eq!(kept.last_offset(), 504);
            assert_eq!(kept.records_count(), 2);
            assert_eq!(kept.attributes(), original.attributes());
            assert_eq!(kept.partition_leader_epoch(), 9);
            assert_eq!(
                (
                    kept.producer_id(),
                    kept.producer_epoch(),
                    kept.base_sequence()
                ),
                (77, 4, 1_000)
            );
            assert_eq!(kept.last_sequence(), original.last_sequence());
            assert_eq!(kept.base_timestamp(), BASE_MS + 30, "first kept record's");
            assert_eq!(kept.max_timestamp(), BASE_MS + 30, "largest kept record's");
        }
    }

    #[test]
    fn retain_keeps_offsets_timestamps_and_headers_of_kept_records() {
        // The kept records decode exactly as they did in the original batch, gaps and all.
        for compression in ALL {
            let original = five_record_batch(compression);
            let records = original.records().expect("records");
            let kept = retained(&original, &[500, 502, 504]);
            let expected: Vec<Record> = [0, 2, 4].map(|index| records[index].clone()).into();
            assert_eq!(kept.records(), Ok(expected), "{compression}");
            let tombstone = &kept.records().expect("records")[1];
            assert_eq!(tombstone.value, None);
            assert_eq!(
                tombstone.headers[0],
                RecordHeader {
                    key: "a".into(),
                    value: None
                }
            );
        }
    }

    #[test]
    fn retain_dropping_every_record_is_none() {
        // A batch with nothing left to keep disappears from the compacted log.
        for compression in ALL {
            let original = five_record_batch(compression);
            assert_eq!(retain_records(&original, |_| false), Ok(None));
        }
    }

    #[test]
    fn retain_keeping_every_record_returns_the_same_bytes() {
        // Nothing to remove means nothing to re-encode: the stored bytes come back as they
        // are, CRC and compression included.
        let original = five_record_batch(Compression::Gzip);
        let kept = retain_records(&original, |_| true).expect("retain");
        assert_eq!(kept.as_ref(), Some(original.as_bytes()));
    }

    #[test]
    fn retain_keeps_log_append_time_and_stored_timestamps() {
        // A LogAppendTime batch stays one: same max timestamp, every record read as it, and
        // the records' own timestamps written back as stored, not as the append time.
        let mut builder = RecordBatchBuilder::new(Compression::Lz4);
        builder
            .base_offset(7)
            .log_append_time(BASE_MS + 999)
            .append(BASE_MS, Some(b"a"), Some(b"1"), &[])
            .append(BASE_MS + 1, Some(b"b"), Some(b"2"), &[])
            .append(BASE_MS + 2, Some(b"c"), Some(b"3"), &[]);
        let original = RecordBatchView::parse(builder.build().expect("build")).expect("parse");
        let kept = retained(&original, &[8, 9]);
        assert_eq!(kept.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(kept.max_timestamp(), BASE_MS + 999);
        assert_eq!(
            kept.base_timestamp(),
            BASE_MS + 1,
            "the stored timestamp of offset 8"
        );
        let records = kept.records().expect("records");
        assert!(
            records
                .iter()
                .all(|record| record.timestamp_ms == BASE_MS + 999)
        );
    }

    #[test]
    fn retain_of_a_control_batch_stays_control() {
        // Compaction normally keeps control batches whole; if one is rewritten it keeps its
        // control and transactional bits.
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder
            .producer(5, 0, -1)
            .transactional()
            .control()
            .append(BASE_MS, Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 0, 0, 0]), &[])
            .append(BASE_MS, Some(&[0, 0, 0, 0]), Some(&[0, 0, 0, 0, 0, 0]), &[]);
        let original = RecordBatchView::parse(builder.build().expect("build")).expect("parse");
        let kept = retained(&original, &[1]);
        assert!(kept.is_control());
        assert!(kept.is_transactional());
        assert_eq!(kept.records().expect("records")[0].offset, 1);
    }

    #[test]
    fn retain_of_malformed_records_is_an_error() {
        // Records that do not decode are reported, never rewritten into a fresh CRC.
        let original = five_record_batch(Compression::None);
        let mut bytes = original.as_bytes().to_vec();
        let records_count_position = RECORDS_POSITION - 4;
        bytes[records_count_position..RECORDS_POSITION].copy_from_slice(&9_i32.to_be_bytes());
        let corrupt = RecordBatchView::parse(Bytes::from(bytes)).expect("header still parses");
        assert!(matches!(
            retain_records(&corrupt, |offset| offset == 500),
            Err(RecordError::RecordCountMismatch { .. })
        ));
    }

    #[test]
    fn builder_append_at_rejects_offsets_that_do_not_ascend() {
        // The builder keeps offsets strictly ascending and within the batch's span.
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder
            .append_at(3, 0, None, Some(b"x"), &[])
            .append_at(3, 0, None, Some(b"y"), &[]);
        assert!(matches!(
            builder.build(),
            Err(RecordError::InvalidLength {
                field: "offset delta",
                ..
            })
        ));
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder
            .append_at(3, 0, None, Some(b"x"), &[])
            .last_offset_delta(2);
        assert!(matches!(
            builder.build(),
            Err(RecordError::InvalidLength {
                field: "last_offset_delta",
                ..
            })
        ));
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder
            .append_at(3, 0, None, Some(b"x"), &[])
            .append(0, None, None, &[]);
        let view = RecordBatchView::parse(builder.build().expect("build")).expect("parse");
        let offsets: Vec<i64> = view
            .records()
            .expect("records")
            .iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, [3, 4]);
    }

    #[test]
    fn every_codec_pair_round_trips_the_batch() {
        let codecs = ALL;
        for source in codecs {
            let mut builder = RecordBatchBuilder::new(source);
            builder
                .base_offset(40)
                .producer(7, 2, 11)
                .transactional()
                .append(1_000, Some(b"k"), Some(b"v"), &[("h", Some(b"x"))])
                .append(1_005, None, Some(b"w"), &[]);
            let original =
                RecordBatchView::parse(builder.build().expect("builds")).expect("parses");
            for target in codecs {
                let rewritten = recompress(&original, target)
                    .and_then(RecordBatchView::parse)
                    .expect("recompressed");
                rewritten.verify_crc().expect("a fresh CRC");
                assert_eq!(rewritten.compression(), Ok(target));
                assert_eq!(
                    rewritten.records(),
                    original.records(),
                    "{source} -> {target}"
                );
                assert_eq!(
                    (
                        rewritten.producer_id(),
                        rewritten.producer_epoch(),
                        rewritten.base_sequence()
                    ),
                    (7, 2, 11)
                );
                assert!(rewritten.is_transactional());
                assert_eq!(rewritten.last_offset_delta(), original.last_offset_delta());
                assert_eq!(rewritten.max_timestamp(), original.max_timestamp());
            }
        }
    }
}
