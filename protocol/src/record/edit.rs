//! In-place edits the broker makes to a producer's batch before appending it.
//!
//! Each function takes the buffer holding one batch at its front, checks the header as
//! [`batch_total_bytes`] does and that the whole batch is present, then rewrites fields.
//! Base offset and partition leader epoch lie outside the CRC; the append time does not,
//! so [`set_log_append_time`] recomputes it.

use super::RecordError;
use super::format::{
    ATTRIBUTES_POSITION, BASE_OFFSET_POSITION, CRC_POSITION, LOG_APPEND_TIME_BIT,
    MAX_TIMESTAMP_POSITION, PARTITION_LEADER_EPOCH_POSITION, batch_total_bytes, crc_of, field,
    put_field,
};

/// Rewrites the batch's base offset: how the broker assigns offsets. The CRC does not
/// cover it, so it stays valid.
///
/// # Errors
/// `Incomplete`, `BadMagic` or `InvalidLength` if `batch` does not start with a whole v2
/// batch; nothing is written then.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), RecordError> {
    let batch = whole_batch(batch)?;
    put_field(batch, BASE_OFFSET_POSITION, &base_offset.to_be_bytes())
}

/// Rewrites the batch's partition leader epoch to the leader's current epoch. The CRC
/// does not cover it, so it stays valid.
///
/// # Errors
/// As [`set_base_offset`].
pub fn set_partition_leader_epoch(
    batch: &mut [u8],
    partition_leader_epoch: i32,
) -> Result<(), RecordError> {
    let batch = whole_batch(batch)?;
    put_field(
        batch,
        PARTITION_LEADER_EPOCH_POSITION,
        &partition_leader_epoch.to_be_bytes(),
    )
}

/// Stamps a batch for a topic with `message.timestamp.type=LogAppendTime`, as Kafka's
/// log validator does: sets attribute bit 3, sets `max_timestamp` to `now_ms` (records
/// then all read as `now_ms`), leaves `base_timestamp` alone, and recomputes the CRC.
///
/// The stored CRC is checked first, because recomputing it would otherwise make a
/// corrupted batch look sound.
///
/// # Errors
/// As [`set_base_offset`], and `CrcMismatch` if the batch was already corrupt; nothing is
/// written then.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) -> Result<(), RecordError> {
    let batch = whole_batch(batch)?;
    let stored_crc = u32::from_be_bytes(field(batch, CRC_POSITION)?);
    let computed_crc = crc_of(batch);
    if stored_crc != computed_crc {
        return Err(RecordError::CrcMismatch {
            expected: stored_crc,
            computed: computed_crc,
        });
    }
    let attributes = i16::from_be_bytes(field(batch, ATTRIBUTES_POSITION)?) | LOG_APPEND_TIME_BIT;
    put_field(batch, ATTRIBUTES_POSITION, &attributes.to_be_bytes())?;
    put_field(batch, MAX_TIMESTAMP_POSITION, &now_ms.to_be_bytes())?;
    let crc = crc_of(batch);
    put_field(batch, CRC_POSITION, &crc.to_be_bytes())
}

/// The first batch of `buffer`, exactly, once its header checks out.
fn whole_batch(buffer: &mut [u8]) -> Result<&mut [u8], RecordError> {
    let total_bytes = batch_total_bytes(buffer)?;
    buffer.get_mut(..total_bytes).ok_or(RecordError::Incomplete)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::record::test_vectors::three_record_batch;
    use crate::record::{Compression, RecordBatchBuilder, RecordBatchView, TimestampType};

    fn view(batch: &[u8]) -> RecordBatchView {
        RecordBatchView::parse(Bytes::copy_from_slice(batch)).expect("parse")
    }

    #[test]
    fn set_base_offset_keeps_the_crc_valid() {
        // The broker assigns offsets by rewriting the base offset; the CRC still holds
        // and every record's offset moves with it.
        let mut batch = three_record_batch().lay_out();
        set_base_offset(&mut batch, 5_000).expect("set");
        let view = view(&batch);
        assert_eq!(view.verify_crc(), Ok(()));
        assert_eq!(view.base_offset(), 5_000);
        let offsets: Vec<i64> = view
            .records()
            .expect("records")
            .iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, [5_000, 5_001, 5_002]);
    }

    #[test]
    fn set_partition_leader_epoch_keeps_the_crc_valid() {
        // The leader stamps its epoch without touching the CRC.
        let mut batch = three_record_batch().lay_out();
        set_partition_leader_epoch(&mut batch, 12).expect("set");
        let view = view(&batch);
        assert_eq!(view.verify_crc(), Ok(()));
        assert_eq!(view.partition_leader_epoch(), 12);
    }

    #[test]
    fn set_log_append_time_restamps_and_recomputes_the_crc() {
        // For an uncompressed and a compressed batch: bit 3 set, max_timestamp = now,
        // base_timestamp kept, CRC valid, every record reads as now.
        let uncompressed = three_record_batch().lay_out();
        let mut builder = RecordBatchBuilder::new(Compression::Snappy);
        builder
            .append(10, None, Some(b"a"), &[])
            .append(20, None, Some(b"b"), &[]);
        let compressed = builder.build().expect("build").to_vec();
        for mut batch in [uncompressed, compressed] {
            let base_timestamp = view(&batch).base_timestamp();
            set_log_append_time(&mut batch, 9_999).expect("set");
            let view = view(&batch);
            assert_eq!(view.verify_crc(), Ok(()));
            assert_eq!(view.timestamp_type(), TimestampType::LogAppendTime);
            assert_eq!(view.max_timestamp(), 9_999);
            assert_eq!(view.base_timestamp(), base_timestamp);
            let records = view.records().expect("records");
            assert!(records.iter().all(|record| record.timestamp_ms == 9_999));
        }
    }

    #[test]
    fn set_log_append_time_refuses_a_corrupt_batch() {
        // A batch whose CRC is already wrong is left as it is, not blessed with a new CRC.
        let mut batch = three_record_batch().lay_out();
        batch[70] ^= 1;
        let before = batch.clone();
        let result = set_log_append_time(&mut batch, 1);
        assert!(matches!(result, Err(RecordError::CrcMismatch { .. })));
        assert_eq!(batch, before);
    }

    #[test]
    fn edits_refuse_what_is_not_a_whole_batch_and_write_nothing() {
        // Too short, wrong magic, or cut before the end: an error and no change.
        let whole = three_record_batch().lay_out();
        let mut bad_magic = whole.clone();
        bad_magic[16] = 1;
        let cases = [
            (whole[..10].to_vec(), RecordError::Incomplete),
            (whole[..whole.len() - 1].to_vec(), RecordError::Incomplete),
            (bad_magic, RecordError::BadMagic(1)),
        ];
        for (buffer, expected) in cases {
            let mut edited = buffer.clone();
            assert_eq!(set_base_offset(&mut edited, 1), Err(expected.clone()));
            assert_eq!(
                set_partition_leader_epoch(&mut edited, 1),
                Err(expected.clone())
            );
            assert_eq!(set_log_append_time(&mut edited, 1), Err(expected));
            assert_eq!(edited, buffer);
        }
    }

    #[test]
    fn edits_touch_only_the_first_batch_of_a_buffer() {
        // With two batches in the buffer, the CRC is recomputed over the first alone.
        let one = three_record_batch().lay_out();
        let mut buffer = [one.clone(), one.clone()].concat();
        set_log_append_time(&mut buffer, 77).expect("set");
        let views: Vec<RecordBatchView> = crate::record::batches(Bytes::from(buffer))
            .map(|view| view.expect("batch"))
            .collect();
        assert_eq!(views.len(), 2);
        assert_eq!(views[0].verify_crc(), Ok(()));
        assert_eq!(views[0].max_timestamp(), 77);
        assert_eq!(views[1].as_bytes().as_ref(), one.as_slice());
    }
}
