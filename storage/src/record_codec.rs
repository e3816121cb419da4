//! What compaction needs to know about records, without the storage crate decoding them.
//!
//! Storage reads batch headers only; records may be compressed with any of Kafka's codecs,
//! which this crate knows nothing of. The broker implements [`RecordCodec`] with
//! `riffle-protocol`'s record batch view, and passes it to `Log::compact`.

/// Reads and rewrites the records of v2 batches for the log cleaner.
///
/// Both methods get one batch's bytes exactly as stored (base offset rewritten by the
/// append, CRC already checked by storage). An `Err` stops the compaction pass with
/// `StorageError::UnreadableRecords`; nothing already swapped in is undone.
pub trait RecordCodec: Send + Sync {
    /// The batch's records in offset order.
    ///
    /// # Errors
    /// A reason, if the records do not decode.
    fn records(&self, batch: &[u8]) -> Result<Vec<RecordSummary>, String>;

    /// The same batch keeping only the records whose offsets `keep` returns true for, or
    /// `None` if it keeps none. The rewritten batch keeps the base offset, the
    /// `last_offset_delta` (so it spans the same offsets), the attributes (codec, timestamp
    /// type, flags), producer id, epoch and base sequence and the partition leader epoch;
    /// each kept record keeps its offset, timestamp, key, value and headers; `records_count`
    /// and the CRC are recomputed.
    ///
    /// # Errors
    /// A reason, if the records do not decode or cannot be encoded again.
    fn retain(&self, batch: &[u8], keep: &dyn Fn(i64) -> bool) -> Result<Option<Vec<u8>>, String>;
}

/// What compaction needs of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSummary {
    /// The record's offset.
    pub offset: i64,
    /// The key; `None` if null. Keyless records are always kept (the broker refuses them on
    /// compacted topics, as Kafka does).
    pub key: Option<Vec<u8>>,
    /// Whether the value is null: a tombstone, which deletes the key.
    pub is_tombstone: bool,
    /// The record's timestamp in ms since the epoch.
    pub timestamp_ms: i64,
}
