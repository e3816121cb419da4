//! Rewrites a batch with another codec: what the broker does when a topic's
//! `compression.type` names a codec other than the producer's, as Kafka does.

use bytes::Bytes;

use super::{Compression, RecordBatchBuilder, RecordBatchView, RecordError, TimestampType};

/// The same batch, its records compressed with `target`: the same offsets (deltas and
/// `last_offset_delta`), timestamps, producer id, epoch and sequence, transactional flag
/// and timestamp type; a new CRC. Inflates at most `max_decompressed_bytes`.
///
/// # Errors
/// As [`RecordBatchView::records_with_limit`] for the records; `Compress` from the codec.
pub fn recompress(
    batch: &RecordBatchView,
    target: Compression,
    max_decompressed_bytes: usize,
) -> Result<Bytes, RecordError> {
    let records = batch.records_with_limit(max_decompressed_bytes)?;
    let mut builder = RecordBatchBuilder::new(target);
    builder
        .base_offset(batch.base_offset())
        .partition_leader_epoch(batch.partition_leader_epoch());
    if batch.producer_id() >= 0 {
        builder.producer(
            batch.producer_id(),
            batch.producer_epoch(),
            batch.base_sequence(),
        );
    }
    if batch.is_transactional() {
        builder.transactional();
    }
    if batch.timestamp_type() == TimestampType::LogAppendTime {
        builder.log_append_time(batch.max_timestamp());
    }
    for record in &records {
        let offset_delta = i32::try_from(record.offset.wrapping_sub(batch.base_offset()))
            .map_err(|_| RecordError::FieldOverflow("offset delta"))?;
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
    builder.last_offset_delta(batch.last_offset_delta());
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::MAX_DECOMPRESSED_BYTES;

    #[test]
    fn every_codec_pair_round_trips_the_batch() {
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
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
                let rewritten = recompress(&original, target, MAX_DECOMPRESSED_BYTES)
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
