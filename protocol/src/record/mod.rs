//! Record batches (magic v2): the unit Kafka produces, stores and fetches.
//!
//! Start with [`RecordBatchView`], a zero-copy view over one batch's bytes: the Produce
//! path parses it, checks the CRC and header, rewrites the base offset with
//! [`set_base_offset`] and stores the same bytes. [`batches`] walks the concatenated
//! batches of a Fetch response or a log segment. Only readers of individual records (the
//! processor, tests) call [`RecordBatchView::records`], which decompresses;
//! [`RecordBatchBuilder`] writes new batches.
//!
//! - `format`: where each header field sits; the layout is described there.
//! - `view`: [`RecordBatchView`], [`BatchIter`].
//! - `records`: [`Record`] and the record wire format.
//! - `compression` and `snappy`: the codecs, with a decompression limit.
//! - `edit`: the broker's in-place rewrites.
//! - `builder`: [`RecordBatchBuilder`].
//! - `control`: transaction markers ([`end_txn_marker_batch`], [`EndTxnMarker`]).
//! - `retain`: [`retain_records`], compaction's rewrite of a batch, and [`recompress`],
//!   the rewrite in a topic's `compression.type`.
//! - `scan`: [`RecordBatchView::scan_records`], Produce's streaming check of every record.

mod builder;
mod compression;
mod control;
mod edit;
mod error;
mod format;
mod records;
mod retain;
mod scan;
mod snappy;
#[cfg(test)]
mod test_vectors;
mod view;

pub use builder::RecordBatchBuilder;
pub use compression::{Compression, MAX_DECOMPRESSED_BYTES, compress, decompress};
pub use control::{ControlRecordType, EndTxnMarker, control_record_type, end_txn_marker_batch};
pub use edit::{set_base_offset, set_log_append_time, set_partition_leader_epoch};
pub use error::RecordError;
pub use format::{LOG_OVERHEAD_BYTES, MAGIC_V2, RECORD_BATCH_OVERHEAD_BYTES, batch_total_bytes};
pub use records::{Record, RecordHeader};
pub use retain::{recompress, retain_records};
pub use scan::ScannedRecord;
pub use view::{BatchIter, RecordBatchView, TimestampType, batches};
