//! Writing a record batch: for tests, the processor and the broker's internal logs.
//!
//! The broker never builds batches on the Produce path; it stores what producers sent.

use bytes::{BufMut, Bytes, BytesMut};

use super::RecordError;
use super::compression::{Compression, compress};
use super::format::{
    CONTROL_BIT, CRC_POSITION, LOG_APPEND_TIME_BIT, MAGIC_V2, MIN_BATCH_LENGTH_BYTES,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
    RECORD_BATCH_OVERHEAD_BYTES, TRANSACTIONAL_BIT, crc_of, put_field,
};
use super::records::{RecordFields, encode_record};

/// Collects records and writes them as one v2 batch with a correct CRC.
///
/// Records are encoded as they are appended; `build` compresses them and writes the
/// header. The first record's timestamp is the batch's `base_timestamp`, as in Kafka's
/// Java producer.
///
/// ```
/// use riffle_protocol::record::{Compression, RecordBatchBuilder, RecordBatchView};
///
/// let mut builder = RecordBatchBuilder::new(Compression::Lz4);
/// builder
///     .base_offset(100)
///     .append(1_700_000_000_000, Some(b"key"), Some(b"value"), &[("trace", Some(b"abc"))])
///     .append(1_700_000_000_001, None, None, &[]);
/// let view = RecordBatchView::parse(builder.build()?)?;
/// view.verify_crc()?;
/// let records = view.records()?;
/// assert_eq!(records[1].offset, 101);
/// # Ok::<(), riffle_protocol::record::RecordError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    compression: Compression,
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    is_transactional: bool,
    is_control: bool,
    /// The append time of a LogAppendTime batch; `None` for CreateTime.
    log_append_time_ms: Option<i64>,
    records_count: usize,
    /// Offset delta of the last record appended; the next `append` takes the one after it.
    last_record_offset_delta: Option<i32>,
    /// A `last_offset_delta` set with [`last_offset_delta`](Self::last_offset_delta), for a
    /// batch whose last records compaction removed.
    last_offset_delta: Option<i32>,
    base_timestamp_ms: i64,
    max_timestamp_ms: i64,
    /// The encoded records, uncompressed.
    records: Vec<u8>,
    /// Reused space for encoding one record's body before its length is known.
    record_body: Vec<u8>,
    /// The first append that could not be encoded; `build` returns it.
    error: Option<RecordError>,
}

impl RecordBatchBuilder {
    /// An empty builder: base offset 0, no producer id, epoch or sequence (-1 each),
    /// partition leader epoch -1, CreateTime, neither transactional nor control.
    pub fn new(compression: Compression) -> Self {
        Self {
            compression,
            base_offset: 0,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            is_transactional: false,
            is_control: false,
            log_append_time_ms: None,
            records_count: 0,
            last_record_offset_delta: None,
            last_offset_delta: None,
            base_timestamp_ms: 0,
            max_timestamp_ms: 0,
            records: Vec::new(),
            record_body: Vec::new(),
            error: None,
        }
    }

    /// Sets the offset of the first record.
    pub fn base_offset(&mut self, base_offset: i64) -> &mut Self {
        self.base_offset = base_offset;
        self
    }

    /// Sets the partition leader epoch, as the broker stamps its own batches.
    pub fn partition_leader_epoch(&mut self, partition_leader_epoch: i32) -> &mut Self {
        self.partition_leader_epoch = partition_leader_epoch;
        self
    }

    /// Marks the batch as written by an idempotent producer.
    pub fn producer(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> &mut Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch as part of a transaction.
    pub fn transactional(&mut self) -> &mut Self {
        self.is_transactional = true;
        self
    }

    /// Marks the batch as holding control records.
    pub fn control(&mut self) -> &mut Self {
        self.is_control = true;
        self
    }

    /// Makes the batch LogAppendTime, appended at `now_ms`: its `max_timestamp` becomes
    /// `now_ms`, which readers report for every record.
    pub fn log_append_time(&mut self, now_ms: i64) -> &mut Self {
        self.log_append_time_ms = Some(now_ms);
        self
    }

    /// Appends a record with the next offset.
    ///
    /// A record that cannot be encoded (a field over `i32::MAX` bytes, more than
    /// `i32::MAX` records) is dropped and its error returned by [`build`](Self::build).
    pub fn append(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> &mut Self {
        let offset_delta = match self.last_record_offset_delta {
            None => Some(0),
            Some(last) => last.checked_add(1),
        };
        let Some(offset_delta) = offset_delta else {
            self.error
                .get_or_insert(RecordError::FieldOverflow("offset delta"));
            return self;
        };
        self.append_at(offset_delta, timestamp_ms, key, value, headers)
    }

    /// Appends a record `offset_delta` offsets after the base offset instead of at the next
    /// offset, leaving a gap: how compaction rewrites a batch whose other records it removed,
    /// each kept record keeping its offset.
    ///
    /// A delta that is negative or not above the previous record's is an error, returned by
    /// [`build`](Self::build) like any record that cannot be encoded.
    pub fn append_at(
        &mut self,
        offset_delta: i32,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> &mut Self {
        if self.error.is_some() {
            return self;
        }
        let ascends = self
            .last_record_offset_delta
            .map_or(offset_delta >= 0, |last| offset_delta > last);
        let encoded = if ascends {
            self.encode(offset_delta, timestamp_ms, key, value, headers)
        } else {
            Err(RecordError::InvalidLength {
                field: "offset delta",
                length: i64::from(offset_delta),
            })
        };
        if let Err(error) = encoded {
            self.error = Some(error);
        }
        self
    }

    /// Sets the batch's `last_offset_delta` instead of taking the last record's. Kafka's
    /// cleaner keeps a compacted batch's original value, so the batch still spans the same
    /// offsets and the producer's last sequence (`base_sequence + last_offset_delta`) stays
    /// right. Below the last record's delta, [`build`](Self::build) fails.
    pub fn last_offset_delta(&mut self, last_offset_delta: i32) -> &mut Self {
        self.last_offset_delta = Some(last_offset_delta);
        self
    }

    /// How many records have been appended.
    pub fn records_count(&self) -> usize {
        self.records_count
    }

    /// Whether no record has been appended yet.
    pub fn is_empty(&self) -> bool {
        self.records_count == 0
    }

    /// The size of the appended records before compression, without the batch header.
    pub fn uncompressed_records_bytes(&self) -> usize {
        self.records.len()
    }

    /// Compresses the records and writes the whole batch.
    ///
    /// # Errors
    /// The first error of [`append`](Self::append) or [`append_at`](Self::append_at);
    /// `EmptyBatch` without records; `InvalidLength` for a
    /// [`last_offset_delta`](Self::last_offset_delta) below the last record's; `FieldOverflow`
    /// if the batch exceeds `i32::MAX` bytes; `Compress` from the codec.
    pub fn build(&self) -> Result<Bytes, RecordError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let records_count = i32::try_from(self.records_count)
            .map_err(|_| RecordError::FieldOverflow("records_count"))?;
        let Some(last_record_offset_delta) = self.last_record_offset_delta else {
            return Err(RecordError::EmptyBatch);
        };
        let last_offset_delta = self.last_offset_delta.unwrap_or(last_record_offset_delta);
        if last_offset_delta < last_record_offset_delta {
            return Err(RecordError::InvalidLength {
                field: "last_offset_delta",
                length: i64::from(last_offset_delta),
            });
        }
        let compressed;
        let payload = match self.compression {
            Compression::None => &self.records,
            codec => {
                compressed = compress(codec, &self.records)?;
                &compressed
            }
        };
        let batch_length = MIN_BATCH_LENGTH_BYTES
            .checked_add(payload.len())
            .and_then(|length| i32::try_from(length).ok())
            .ok_or(RecordError::FieldOverflow("batch_length"))?;
        let mut batch = BytesMut::with_capacity(RECORD_BATCH_OVERHEAD_BYTES + payload.len());
        batch.put_i64(self.base_offset);
        batch.put_i32(batch_length);
        batch.put_i32(self.partition_leader_epoch);
        batch.put_i8(MAGIC_V2);
        batch.put_u32(0); // the CRC, written below once the bytes it covers are in place
        batch.put_i16(self.attributes());
        batch.put_i32(last_offset_delta);
        batch.put_i64(self.base_timestamp_ms);
        batch.put_i64(self.log_append_time_ms.unwrap_or(self.max_timestamp_ms));
        batch.put_i64(self.producer_id);
        batch.put_i16(self.producer_epoch);
        batch.put_i32(self.base_sequence);
        batch.put_i32(records_count);
        assert_eq!(batch.len(), RECORD_BATCH_OVERHEAD_BYTES);
        batch.put_slice(payload);
        let crc = crc_of(&batch);
        put_field(&mut batch, CRC_POSITION, &crc.to_be_bytes())?;
        Ok(batch.freeze())
    }

    fn attributes(&self) -> i16 {
        let mut attributes = self.compression.id();
        if self.log_append_time_ms.is_some() {
            attributes |= LOG_APPEND_TIME_BIT;
        }
        if self.is_transactional {
            attributes |= TRANSACTIONAL_BIT;
        }
        if self.is_control {
            attributes |= CONTROL_BIT;
        }
        attributes
    }

    fn encode(
        &mut self,
        offset_delta: i32,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> Result<(), RecordError> {
        if self.records_count == 0 {
            self.base_timestamp_ms = timestamp_ms;
            self.max_timestamp_ms = timestamp_ms;
        }
        let record = RecordFields {
            offset_delta,
            // Wrapping, as Kafka's Java producer computes it; the reader adds it back the
            // same way, so any two timestamps round-trip.
            timestamp_delta: timestamp_ms.wrapping_sub(self.base_timestamp_ms),
            key,
            value,
            headers,
        };
        encode_record(&mut self.records, &mut self.record_body, &record)?;
        self.max_timestamp_ms = self.max_timestamp_ms.max(timestamp_ms);
        self.records_count += 1;
        self.last_record_offset_delta = Some(offset_delta);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::record::test_vectors::three_record_batch;
    use crate::record::{Record, RecordBatchView, RecordHeader, TimestampType};

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn three_record_builder(compression: Compression) -> RecordBatchBuilder {
        let base_ms = 1_700_000_000_000;
        let mut builder = RecordBatchBuilder::new(compression);
        builder
            .base_offset(1000)
            .partition_leader_epoch(7)
            .producer(42, 3, 10)
            .append(
                base_ms,
                Some(b"key0"),
                Some(b"value0"),
                &[("h1", Some(b"v1")), ("h2", None)],
            )
            .append(base_ms + 5, None, Some(b"v"), &[])
            .append(base_ms - 3, Some(b"k"), None, &[("", Some(b""))]);
        builder
    }

    #[test]
    fn uncompressed_output_matches_the_hand_laid_bytes() {
        // The builder writes, byte for byte, the batch laid out by hand from the spec.
        let built = three_record_builder(Compression::None)
            .build()
            .expect("build");
        assert_eq!(built.as_ref(), three_record_batch().lay_out().as_slice());
    }

    #[test]
    fn every_codec_round_trips_through_the_view() {
        // For each codec: header fields as set, CRC valid, records as appended.
        let expected = RecordBatchView::parse(
            three_record_builder(Compression::None)
                .build()
                .expect("build"),
        )
        .and_then(|view| view.records())
        .expect("uncompressed records");
        for compression in ALL {
            let view =
                RecordBatchView::parse(three_record_builder(compression).build().expect("build"))
                    .expect("parse");
            assert_eq!(view.verify_crc(), Ok(()), "{compression}");
            assert_eq!(view.compression(), Ok(compression));
            assert_eq!(view.base_offset(), 1000);
            assert_eq!(view.last_offset(), 1002);
            assert_eq!(view.partition_leader_epoch(), 7);
            assert_eq!((view.producer_id(), view.producer_epoch()), (42, 3));
            assert_eq!((view.base_sequence(), view.last_sequence()), (10, 12));
            assert_eq!(view.max_timestamp(), 1_700_000_000_005);
            assert_eq!(view.records(), Ok(expected.clone()), "{compression}");
        }
    }

    #[test]
    fn flags_and_log_append_time_are_written() {
        // transactional, control and LogAppendTime set their bits; max_timestamp is the
        // append time and every record reads as it.
        let mut builder = RecordBatchBuilder::new(Compression::Gzip);
        builder
            .transactional()
            .control()
            .log_append_time(2_000)
            .append(1_000, None, None, &[]);
        let view = RecordBatchView::parse(builder.build().expect("build")).expect("parse");
        assert!(view.is_transactional());
        assert!(view.is_control());
        assert_eq!(view.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(
            (view.base_timestamp(), view.max_timestamp()),
            (1_000, 2_000)
        );
        assert_eq!(view.attributes(), 0b11_1001);
        let records = view.records().expect("records");
        assert_eq!(records[0].timestamp_ms, 2_000);
    }

    #[test]
    fn defaults_are_kafkas_no_producer_values() {
        // A bare builder writes producer id, epoch, sequence and leader epoch as -1.
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder.append(0, None, Some(b"x"), &[]);
        assert_eq!(builder.records_count(), 1);
        assert!(!builder.is_empty());
        let view = RecordBatchView::parse(builder.build().expect("build")).expect("parse");
        assert_eq!(view.base_offset(), 0);
        assert_eq!(view.partition_leader_epoch(), -1);
        assert_eq!(
            (
                view.producer_id(),
                view.producer_epoch(),
                view.base_sequence()
            ),
            (-1, -1, -1)
        );
        assert_eq!(view.timestamp_type(), TimestampType::CreateTime);
    }

    #[test]
    fn an_empty_builder_is_an_error() {
        // Kafka never writes a batch without records, and neither do we.
        assert_eq!(
            RecordBatchBuilder::new(Compression::Zstd).build(),
            Err(RecordError::EmptyBatch)
        );
    }

    type Input = (
        i64,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Vec<(String, Option<Vec<u8>>)>,
    );

    fn input_strategy() -> impl Strategy<Value = Input> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..48);
        let header = (
            ".{0,6}",
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        );
        (
            any::<i64>(),
            proptest::option::of(bytes()),
            proptest::option::of(bytes()),
            proptest::collection::vec(header, 0..4),
        )
    }

    proptest! {
        #[test]
        fn arbitrary_records_round_trip(
            compression in proptest::sample::select(ALL.to_vec()),
            base_offset in 0_i64..i64::MAX / 2,
            inputs in proptest::collection::vec(input_strategy(), 1..12),
        ) {
            // Whatever is appended comes back from the view, for every codec, with any
            // pair of timestamps (deltas wrap both ways).
            let mut builder = RecordBatchBuilder::new(compression);
            builder.base_offset(base_offset);
            for (timestamp_ms, key, value, headers) in &inputs {
                let headers: Vec<(&str, Option<&[u8]>)> =
                    headers.iter().map(|(key, value)| (key.as_str(), value.as_deref())).collect();
                builder.append(*timestamp_ms, key.as_deref(), value.as_deref(), &headers);
            }
            let view = RecordBatchView::parse(builder.build().expect("build")).expect("parse");
            prop_assert_eq!(view.verify_crc(), Ok(()));
            let expected: Vec<Record> = inputs
                .into_iter()
                .zip(base_offset..)
                .map(|((timestamp_ms, key, value, headers), offset)| Record {
                    offset,
                    timestamp_ms,
                    key: key.map(Bytes::from),
                    value: value.map(Bytes::from),
                    headers: headers
                        .into_iter()
                        .map(|(key, value)| RecordHeader { key, value: value.map(Bytes::from) })
                        .collect(),
                    attributes: 0,
                })
                .collect();
            prop_assert_eq!(view.max_timestamp(), expected.iter().map(|r| r.timestamp_ms).max().unwrap_or(0));
            prop_assert_eq!(view.records_count(), i32::try_from(expected.len()).expect("small"));
            prop_assert_eq!(view.records(), Ok(expected));
        }
    }
}
