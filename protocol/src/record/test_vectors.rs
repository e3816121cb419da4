//! Batches laid out byte by byte from the format description, so tests of the reader do
//! not depend on the builder.

/// Header fields of a hand-made batch; `batch_length` and `crc` are computed unless set.
#[derive(Debug, Clone)]
pub(crate) struct HandBatch {
    pub(crate) base_offset: i64,
    pub(crate) batch_length: Option<i32>,
    pub(crate) partition_leader_epoch: i32,
    pub(crate) magic: i8,
    pub(crate) crc: Option<u32>,
    pub(crate) attributes: i16,
    pub(crate) last_offset_delta: i32,
    pub(crate) base_timestamp: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) base_sequence: i32,
    pub(crate) records_count: i32,
    /// The bytes after the header, compressed or not, exactly as they go on the wire.
    pub(crate) records: Vec<u8>,
}

impl Default for HandBatch {
    fn default() -> Self {
        Self {
            base_offset: 0,
            batch_length: None,
            partition_leader_epoch: -1,
            magic: 2,
            crc: None,
            attributes: 0,
            last_offset_delta: 0,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records_count: 0,
            records: Vec::new(),
        }
    }
}

impl HandBatch {
    /// The batch's bytes, field by field, big-endian.
    pub(crate) fn lay_out(&self) -> Vec<u8> {
        let computed_length = i32::try_from(49 + self.records.len()).expect("test batch fits i32");
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&self.base_offset.to_be_bytes()); // 0
        bytes.extend_from_slice(&self.batch_length.unwrap_or(computed_length).to_be_bytes()); // 8
        bytes.extend_from_slice(&self.partition_leader_epoch.to_be_bytes()); // 12
        bytes.extend_from_slice(&self.magic.to_be_bytes()); // 16
        bytes.extend_from_slice(&[0, 0, 0, 0]); // 17: crc, filled in below
        bytes.extend_from_slice(&self.attributes.to_be_bytes()); // 21
        bytes.extend_from_slice(&self.last_offset_delta.to_be_bytes()); // 23
        bytes.extend_from_slice(&self.base_timestamp.to_be_bytes()); // 27
        bytes.extend_from_slice(&self.max_timestamp.to_be_bytes()); // 35
        bytes.extend_from_slice(&self.producer_id.to_be_bytes()); // 43
        bytes.extend_from_slice(&self.producer_epoch.to_be_bytes()); // 51
        bytes.extend_from_slice(&self.base_sequence.to_be_bytes()); // 53
        bytes.extend_from_slice(&self.records_count.to_be_bytes()); // 57
        assert_eq!(bytes.len(), 61);
        bytes.extend_from_slice(&self.records); // 61
        let crc = self.crc.unwrap_or_else(|| crc32c::crc32c(&bytes[21..]));
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        bytes
    }
}

/// Three records written out byte by byte (varints zig-zag encoded by hand):
/// - offset delta 0, timestamp delta 0, key "key0", value "value0",
///   headers ("h1", "v1") and ("h2", null);
/// - offset delta 1, timestamp delta +5, null key, value "v", no headers;
/// - offset delta 2, timestamp delta -3, key "k", null value, header ("", "").
pub(crate) fn three_records() -> Vec<u8> {
    let mut records = Vec::new();
    // length 26, attributes 0, timestamp delta 0, offset delta 0, key length 4
    records.extend_from_slice(&[0x34, 0x00, 0x00, 0x00, 0x08]);
    records.extend_from_slice(b"key0");
    records.push(0x0c); // value length 6
    records.extend_from_slice(b"value0");
    records.extend_from_slice(&[0x04, 0x04]); // 2 headers; key length 2
    records.extend_from_slice(b"h1");
    records.push(0x04); // value length 2
    records.extend_from_slice(b"v1");
    records.push(0x04); // key length 2
    records.extend_from_slice(b"h2");
    records.push(0x01); // value length -1: null

    // length 7, attributes 0, timestamp delta 5, offset delta 1, key length -1,
    // value length 1
    records.extend_from_slice(&[0x0e, 0x00, 0x0a, 0x02, 0x01, 0x02]);
    records.push(b'v');
    records.push(0x00); // no headers

    // length 9, attributes 0, timestamp delta -3, offset delta 2, key length 1
    records.extend_from_slice(&[0x12, 0x00, 0x05, 0x04, 0x02]);
    records.push(b'k');
    // value length -1, 1 header, key length 0, value length 0
    records.extend_from_slice(&[0x01, 0x02, 0x00, 0x00]);
    records
}

/// The header of the batch around [`three_records`]: offsets 1000-1002, an idempotent
/// producer, CreateTime.
pub(crate) fn three_record_batch() -> HandBatch {
    HandBatch {
        base_offset: 1000,
        partition_leader_epoch: 7,
        last_offset_delta: 2,
        base_timestamp: 1_700_000_000_000,
        max_timestamp: 1_700_000_000_005,
        producer_id: 42,
        producer_epoch: 3,
        base_sequence: 10,
        records_count: 3,
        records: three_records(),
        ..HandBatch::default()
    }
}
