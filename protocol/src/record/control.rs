//! Control records: the COMMIT and ABORT markers a transaction coordinator writes into
//! every partition of a transaction, and that read_committed consumers act on.
//!
//! # Format
//! A marker is a batch of its own: attributes with the control and transactional bits,
//! the transaction's producer id and epoch, base sequence -1, no compression, and one
//! record whose key and value are:
//! ```text
//! key:   version INT16 (0), type INT16 (0 = ABORT, 1 = COMMIT)
//! value: version INT16 (0), coordinator_epoch INT32
//! ```
//! Kafka's `EndTransactionMarker` layout; clients skip control batches by their attribute
//! and read the key only to learn which kind of marker ends an aborted transaction.

use bytes::Bytes;

use super::RecordError;
use super::builder::RecordBatchBuilder;
use super::compression::Compression;
use super::view::RecordBatchView;

/// The version of a control record key and of a marker value we write and read.
const CONTROL_RECORD_VERSION: i16 = 0;
/// Bytes of a control record key: version and type.
const CONTROL_KEY_BYTES: usize = 4;
/// Bytes of an end-transaction marker value: version and coordinator epoch.
const MARKER_VALUE_BYTES: usize = 6;

/// What a control record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// The transaction's records are discarded.
    Abort,
    /// The transaction's records become visible to read_committed consumers.
    Commit,
}

impl ControlRecordType {
    /// The type's number on the wire.
    pub fn id(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
        }
    }

    /// The type for a wire number, if it is a transaction marker.
    pub fn from_id(id: i16) -> Option<ControlRecordType> {
        match id {
            0 => Some(ControlRecordType::Abort),
            1 => Some(ControlRecordType::Commit),
            _ => None,
        }
    }
}

/// An end-transaction marker, as read from a control batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnMarker {
    /// Commit or abort.
    pub control_type: ControlRecordType,
    /// The epoch of the coordinator that wrote it.
    pub coordinator_epoch: i32,
}

/// Builds the control batch of one end-transaction marker for `producer_id` at
/// `producer_epoch`, stamped `timestamp_ms`, ready to append (base offset 0, to be assigned
/// by the log).
///
/// # Errors
/// Only what [`RecordBatchBuilder::build`] returns, which a one-record batch never hits.
pub fn end_txn_marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    marker: EndTxnMarker,
    timestamp_ms: i64,
) -> Result<Bytes, RecordError> {
    let mut key = Vec::with_capacity(CONTROL_KEY_BYTES);
    key.extend_from_slice(&CONTROL_RECORD_VERSION.to_be_bytes());
    key.extend_from_slice(&marker.control_type.id().to_be_bytes());
    let mut value = Vec::with_capacity(MARKER_VALUE_BYTES);
    value.extend_from_slice(&CONTROL_RECORD_VERSION.to_be_bytes());
    value.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    let mut builder = RecordBatchBuilder::new(Compression::None);
    builder
        .producer(producer_id, producer_epoch, -1)
        .transactional()
        .control()
        .append(timestamp_ms, Some(&key), Some(&value), &[]);
    builder.build()
}

/// The type a control record key names; `None` for a key too short, of an unknown
/// version, or of a type other than ABORT and COMMIT.
pub fn control_record_type(key: &[u8]) -> Option<ControlRecordType> {
    let version = i16::from_be_bytes(key.get(0..2)?.try_into().ok()?);
    if version != CONTROL_RECORD_VERSION {
        return None;
    }
    ControlRecordType::from_id(i16::from_be_bytes(key.get(2..4)?.try_into().ok()?))
}

impl RecordBatchView {
    /// The end-transaction marker this batch holds, if it is a control batch whose first
    /// record is one; `None` for data batches and other control records.
    ///
    /// # Errors
    /// When the control batch's records do not decode.
    pub fn end_txn_marker(&self) -> Result<Option<EndTxnMarker>, RecordError> {
        if !self.is_control() {
            return Ok(None);
        }
        let records = self.records()?;
        let Some(record) = records.first() else {
            return Ok(None);
        };
        let Some(control_type) = record.key.as_deref().and_then(control_record_type) else {
            return Ok(None);
        };
        let coordinator_epoch = record
            .value
            .as_deref()
            .and_then(|value| value.get(2..6))
            .and_then(|epoch| epoch.try_into().ok())
            .map_or(0, i32::from_be_bytes);
        Ok(Some(EndTxnMarker {
            control_type,
            coordinator_epoch,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_batch_reads_back_as_the_marker_it_was_built_from() {
        // The batch carries Kafka's control layout: control and transactional bits, the
        // producer's id and epoch, no sequence, and the marker in its one record.
        let marker = EndTxnMarker {
            control_type: ControlRecordType::Commit,
            coordinator_epoch: 7,
        };
        let bytes = end_txn_marker_batch(42, 3, marker, 1_000).expect("a marker batch");
        let view = RecordBatchView::parse(bytes).expect("parses");
        view.verify_crc().expect("crc");
        assert!(view.is_control() && view.is_transactional());
        assert_eq!(
            (
                view.producer_id(),
                view.producer_epoch(),
                view.base_sequence()
            ),
            (42, 3, -1)
        );
        assert_eq!(view.end_txn_marker(), Ok(Some(marker)));
        let records = view.records().expect("records");
        assert_eq!(records[0].key.as_deref(), Some(&[0u8, 0, 0, 1][..]));
        assert_eq!(records[0].value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 7][..]));
    }

    #[test]
    fn control_keys_of_unknown_versions_or_types_are_not_markers() {
        assert_eq!(
            control_record_type(&[0, 0, 0, 0]),
            Some(ControlRecordType::Abort)
        );
        assert_eq!(control_record_type(&[0, 1, 0, 0]), None);
        assert_eq!(control_record_type(&[0, 0, 0, 5]), None);
        assert_eq!(control_record_type(&[0, 0]), None);
    }
}
