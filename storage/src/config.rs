//! Per-log settings, mirroring Kafka's topic configs of the same names, and the log
//! cleaner's broker-wide settings.

use crate::batch_header::BATCH_HEADER_BYTES;
use crate::format::{OFFSET_INDEX_ENTRY_BYTES, TIME_INDEX_ENTRY_BYTES};

/// Largest segment file: index entries store positions as `u32`, and Kafka caps
/// `segment.bytes` at `i32::MAX`, so we do too.
pub const MAX_SEGMENT_BYTES: u64 = 2_147_483_647;

/// Smallest index file we preallocate: room for a few entries, so a tiny
/// `segment_index_bytes` cannot make every append roll a new segment.
pub const MIN_SEGMENT_INDEX_BYTES: u64 = 4 * TIME_INDEX_ENTRY_BYTES as u64;

/// Largest index file: positions in an index are `u32`, and more entries than fit in
/// `MAX_SEGMENT_BYTES` of batches would be useless.
pub const MAX_SEGMENT_INDEX_BYTES: u64 = MAX_SEGMENT_BYTES;

const _: () = assert!(MAX_SEGMENT_BYTES <= u32::MAX as u64);
const _: () = assert!(MIN_SEGMENT_INDEX_BYTES.is_multiple_of(OFFSET_INDEX_ENTRY_BYTES as u64));
const _: () = assert!(MIN_SEGMENT_INDEX_BYTES < MAX_SEGMENT_INDEX_BYTES);
const _: () = assert!((BATCH_HEADER_BYTES as u64) < MAX_SEGMENT_BYTES);

/// How one partition's log rolls, indexes and expires its segments.
///
/// Values outside what the format can hold are clamped where they are used (see each field),
/// not rejected: the broker validates topic configs against Kafka's ranges first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: the active segment is rolled when an append would make it larger
    /// than this. Clamped to at most `MAX_SEGMENT_BYTES`. An append larger than this on its
    /// own still goes into an empty segment.
    pub segment_bytes: u64,
    /// `segment.ms`: the active segment is rolled once its first batch is older than this.
    pub segment_ms: i64,
    /// `index.interval.bytes`: one offset index entry and one time index entry per this many
    /// bytes of batches.
    pub index_interval_bytes: u64,
    /// `segment.index.bytes`: the size each index file is preallocated to; a segment whose
    /// index is full is rolled. Clamped to `MIN_SEGMENT_INDEX_BYTES..=MAX_SEGMENT_INDEX_BYTES`.
    pub segment_index_bytes: u64,
    /// `retention.ms`: sealed segments whose newest batch is older than this are deleted;
    /// -1 keeps them forever.
    pub retention_ms: i64,
    /// `retention.bytes`: oldest sealed segments are deleted while the log is larger than
    /// this; -1 means no limit.
    pub retention_bytes: i64,
    /// `delete.retention.ms`: compaction keeps a tombstone (a record with a null value) that
    /// is the latest for its key until its batch's max timestamp is this much older than
    /// the pass, so consumers that read the key earlier get to see the delete.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: compaction leaves alone every segment from the first one
    /// holding a batch younger than this; 0 lets it clean every sealed segment.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a pass cleans the log, however small its dirty part, once its
    /// oldest dirty batch is older than this; `i64::MAX` never forces a pass.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`, between 0 and 1: a pass cleans the log only when its dirty
    /// bytes are more than this share of its cleanable bytes (or `max_compaction_lag_ms`
    /// forces it), so the cleaner does not rewrite a mostly clean log for a few new records.
    pub min_cleanable_dirty_ratio: f64,
}

impl Default for LogConfig {
    /// Kafka's defaults: 1 GiB segments, rolled weekly, an index entry per 4 KiB, 10 MiB
    /// index files, kept for a week with no size limit; tombstones kept a day after they
    /// are compacted, no compaction lag, and a pass once half of the log is dirty.
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
        }
    }
}

impl LogConfig {
    /// `segment_bytes`, clamped to what a segment can hold.
    pub(crate) fn effective_segment_bytes(&self) -> u64 {
        self.segment_bytes.clamp(1, MAX_SEGMENT_BYTES)
    }

    /// `segment_index_bytes`, clamped to the range we preallocate.
    pub(crate) fn effective_segment_index_bytes(&self) -> u64 {
        self.segment_index_bytes
            .clamp(MIN_SEGMENT_INDEX_BYTES, MAX_SEGMENT_INDEX_BYTES)
    }
}

/// The log cleaner's settings, the same for every log (Kafka's broker-wide `log.cleaner.*`
/// configs), as opposed to the per-topic [`LogConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanerConfig {
    /// The most keys one compaction pass maps (Kafka sizes the same map in bytes, with
    /// `log.cleaner.dedupe.buffer.size`). Each entry is a 128-bit key hash and an offset, about
    /// 30 bytes in the map and up to twice that while it grows. A pass whose dirty records
    /// have more keys maps the batches that fit, cleans up to there, and leaves the rest to
    /// the next pass; it always maps at least one batch.
    pub max_compaction_map_entries: usize,
}

impl Default for CleanerConfig {
    /// Two million keys per pass: at most about 128 MiB of map, Kafka's default buffer size.
    fn default() -> CleanerConfig {
        CleanerConfig {
            max_compaction_map_entries: 2 * 1024 * 1024,
        }
    }
}
