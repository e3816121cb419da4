//! The on-disk format: every file and directory name, and the byte layout of index entries,
//! checkpoints and producer snapshots. Nothing else in the crate formats a path.
//!
//! # Layout
//!
//! Kafka's own, so operators feel at home:
//!
//! ```text
//! <data-dir>/.lock                              exclusive lock, held while a broker runs
//! <data-dir>/.riffle-clean-shutdown             present only after a clean stop
//! <data-dir>/<topic>-<partition>/
//!     00000000000000000000.log                  record batches, as received
//!     00000000000000000000.index                offset index: (relative offset u32, position u32)
//!     00000000000000000000.timeindex            time index: (timestamp i64, relative offset u32)
//!     00000000000000000000.txnindex             transaction index: the aborted transactions
//!                                               whose ABORT markers the segment holds; absent
//!                                               until the first one
//!     00000000000000000042.snapshot             the broker's producer state as of offset 42
//!                                               (opaque to storage; only the newest is kept)
//!     log-start-offset.checkpoint               written by DeleteRecords
//!     cleaner-offset-checkpoint                 where the log cleaner's next pass starts
//!     recovery-point.checkpoint                 how much of the active segment is durable
//!     00000000000000000000.log.cleaned          a segment the cleaner is writing (also
//!                                               .index.cleaned, .timeindex.cleaned,
//!                                               .txnindex.cleaned)
//!     00000000000000000000.log.swap             a cleaned segment committed to replace the
//!                                               segments it was cleaned from
//! <data-dir>/<topic>-<partition>.<hex>-delete/  a partition being deleted
//! ```
//!
//! A segment is named after its base offset, zero-padded to 20 digits so names sort in
//! offset order. Index entries are big-endian, like Kafka's. A segment file staged by the
//! cleaner carries one more suffix, `.cleaned` while it is written and `.swap` once the swap
//! is committed (Kafka's names); start-up deletes the first and completes the second.
//!
//! # Transaction index entries
//!
//! Kafka's `.txnindex` layout, so the files are Kafka's byte for byte: entries of
//! `TRANSACTION_INDEX_ENTRY_BYTES`, big-endian, appended in the order of their `last_offset`,
//! with no header and no preallocation (unlike the other two indexes, the file grows by one
//! entry per aborted transaction, and most segments have none):
//!
//! ```text
//! position  field
//!        0  version             i16 (= 0)
//!        2  producer_id         i64
//!       10  first_offset        i64  the transaction's first offset
//!       18  last_offset         i64  the offset of its ABORT marker
//!       26  last_stable_offset  i64  the partition's last stable offset when it was aborted
//! ```
//!
//! # Producer snapshots
//!
//! `<offset>.snapshot`, Kafka's name, holds a payload only the broker reads, in our own framing
//! (Kafka's has its own, which we do not need to share: the broker, not storage, is Kafka's
//! counterpart here):
//!
//! ```text
//! position  field
//!        0  version         i16 (= 0)
//!        2  crc             u32  CRC-32C of the bytes from position 6 to the end
//!        6  offset          i64  the offset the payload is the state before (as in the name)
//!       14  payload_length  u32
//!       18  payload         payload_length bytes
//! ```

use std::path::{Path, PathBuf};

use crate::error::StorageError;
use crate::topic_partition::TopicPartition;

/// Width of the zero-padded base offset in segment file names; `u64::MAX` has 20 digits.
pub const BASE_OFFSET_DIGITS: usize = 20;
/// Suffix of a segment's batch file.
pub const LOG_SUFFIX: &str = ".log";
/// Suffix of a segment's offset index.
pub const OFFSET_INDEX_SUFFIX: &str = ".index";
/// Suffix of a segment's time index.
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";
/// Suffix of a segment's transaction index.
pub const TRANSACTION_INDEX_SUFFIX: &str = ".txnindex";
/// Suffix of a producer state snapshot.
pub const PRODUCER_SNAPSHOT_SUFFIX: &str = ".snapshot";
/// The data directory's lock file.
pub const LOCK_FILE_NAME: &str = ".lock";
/// Where co-located stream processors keep their state stores and checkpoints, inside the
/// data directory (hidden, so it is never taken for a partition).
pub const PROCESSOR_STATE_DIR_NAME: &str = ".processor-state";
/// Present in the data directory only if the previous broker stopped cleanly.
pub const CLEAN_SHUTDOWN_FILE_NAME: &str = ".riffle-clean-shutdown";
/// A partition's persisted log start offset, moved by DeleteRecords.
pub const LOG_START_OFFSET_CHECKPOINT_FILE_NAME: &str = "log-start-offset.checkpoint";
/// Where the log cleaner's next pass starts mapping keys (Kafka keeps the same offset in a
/// file of this name per data directory; we keep one per partition).
pub const CLEANER_OFFSET_CHECKPOINT_FILE_NAME: &str = "cleaner-offset-checkpoint";
/// How far the partition's active segment was known durable (Kafka keeps recovery points in
/// one `recovery-point-offset-checkpoint` per data directory; we keep one per partition, so
/// deleting a partition's directory deletes its recovery point too).
pub const RECOVERY_POINT_CHECKPOINT_FILE_NAME: &str = "recovery-point.checkpoint";
/// Suffix of a file being written before it is renamed over the real one.
pub const TEMP_FILE_SUFFIX: &str = ".tmp";
/// Extra suffix of a segment file the log cleaner is still writing.
pub const CLEANED_FILE_SUFFIX: &str = ".cleaned";
/// Extra suffix of a cleaned segment file whose swap is committed but not yet finished.
pub const SWAP_FILE_SUFFIX: &str = ".swap";
/// Suffix of a partition directory renamed for deletion.
pub const DELETE_DIR_SUFFIX: &str = "-delete";
/// Kafka's limit on topic name length; longer names cannot be legal topics.
pub const TOPIC_NAME_MAX_BYTES: usize = 249;

/// Bytes in one offset index entry: relative offset u32, position u32.
pub const OFFSET_INDEX_ENTRY_BYTES: usize = 8;
/// Bytes in one time index entry: timestamp i64, relative offset u32.
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;
/// Bytes in one transaction index entry: version i16, then four i64 (Kafka's `AbortedTxn`).
pub const TRANSACTION_INDEX_ENTRY_BYTES: usize = 34;
/// The only transaction index entry version, Kafka's `AbortedTxn.CURRENT_VERSION`.
pub const TRANSACTION_INDEX_VERSION: i16 = 0;
/// Bytes of a producer snapshot before its payload.
pub const PRODUCER_SNAPSHOT_HEADER_BYTES: usize = 18;
/// The only producer snapshot version.
pub const PRODUCER_SNAPSHOT_VERSION: i16 = 0;
/// The CRC of a producer snapshot covers its bytes from here to the end.
pub const PRODUCER_SNAPSHOT_CRC_COVERED_FROM_POSITION: usize = 6;

const _: () = assert!(OFFSET_INDEX_ENTRY_BYTES == 4 + 4);
const _: () = assert!(TIME_INDEX_ENTRY_BYTES == 8 + 4);
const _: () = assert!(TRANSACTION_INDEX_ENTRY_BYTES == 2 + 4 * 8);
const _: () = assert!(PRODUCER_SNAPSHOT_CRC_COVERED_FROM_POSITION == 2 + 4);
const _: () = assert!(PRODUCER_SNAPSHOT_HEADER_BYTES == 2 + 4 + 8 + 4);
const _: () = assert!(u64::MAX.ilog10() + 1 == 20);

/// Version written on the first line of an offset checkpoint.
const CHECKPOINT_VERSION: &str = "0";

/// The four files of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentFileKind {
    /// `<base>.log`: the record batches.
    Log,
    /// `<base>.index`: the sparse offset index.
    OffsetIndex,
    /// `<base>.timeindex`: the sparse time index.
    TimeIndex,
    /// `<base>.txnindex`: the aborted transactions whose markers the segment holds. May be
    /// absent, which means none.
    TransactionIndex,
}

impl SegmentFileKind {
    /// Every kind, the `.log` last: the order a segment's files are removed in, so that a
    /// crash part-way leaves a `.log` without some of its indexes rather than the reverse.
    pub const ALL: [SegmentFileKind; 4] = [
        SegmentFileKind::OffsetIndex,
        SegmentFileKind::TimeIndex,
        SegmentFileKind::TransactionIndex,
        SegmentFileKind::Log,
    ];

    fn suffix(self) -> &'static str {
        match self {
            SegmentFileKind::Log => LOG_SUFFIX,
            SegmentFileKind::OffsetIndex => OFFSET_INDEX_SUFFIX,
            SegmentFileKind::TimeIndex => TIME_INDEX_SUFFIX,
            SegmentFileKind::TransactionIndex => TRANSACTION_INDEX_SUFFIX,
        }
    }
}

/// The two stages of a segment file the log cleaner writes before it replaces a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapStage {
    /// `<base>.<kind>.cleaned`: being written; the swap has not happened.
    Cleaned,
    /// `<base>.<kind>.swap`: ready; for the `.log`, the swap is committed.
    Swap,
}

impl SwapStage {
    fn suffix(self) -> &'static str {
        match self {
            SwapStage::Cleaned => CLEANED_FILE_SUFFIX,
            SwapStage::Swap => SWAP_FILE_SUFFIX,
        }
    }
}

/// The name of a segment file, e.g. `00000000000000000042.log`.
///
/// # Panics
/// If `base_offset` is negative: offsets we assign start at zero.
pub fn segment_file_name(base_offset: i64, kind: SegmentFileKind) -> String {
    assert!(base_offset >= 0, "negative base offset {base_offset}");
    format!(
        "{base_offset:0width$}{suffix}",
        width = BASE_OFFSET_DIGITS,
        suffix = kind.suffix()
    )
}

/// The path of a segment file inside a partition directory.
pub fn segment_file_path(partition_dir: &Path, base_offset: i64, kind: SegmentFileKind) -> PathBuf {
    partition_dir.join(segment_file_name(base_offset, kind))
}

/// The name of a segment file staged by the cleaner, e.g. `00000000000000000042.log.swap`.
///
/// # Panics
/// If `base_offset` is negative, as `segment_file_name`.
pub fn staged_segment_file_name(
    base_offset: i64,
    kind: SegmentFileKind,
    stage: SwapStage,
) -> String {
    format!("{}{}", segment_file_name(base_offset, kind), stage.suffix())
}

/// The path of a segment file staged by the cleaner inside a partition directory.
pub fn staged_segment_file_path(
    partition_dir: &Path,
    base_offset: i64,
    kind: SegmentFileKind,
    stage: SwapStage,
) -> PathBuf {
    partition_dir.join(staged_segment_file_name(base_offset, kind, stage))
}

/// Parses a staged segment file name back into its base offset, kind and stage; `None` for
/// any other name, plain segment files included.
pub fn parse_staged_segment_file_name(name: &str) -> Option<(i64, SegmentFileKind, SwapStage)> {
    let stages = [SwapStage::Cleaned, SwapStage::Swap];
    let (segment_name, stage) = stages
        .iter()
        .find_map(|stage| Some((name.strip_suffix(stage.suffix())?, *stage)))?;
    let (base_offset, kind) = parse_segment_file_name(segment_name)?;
    Some((base_offset, kind, stage))
}

/// Parses a segment file name back into its base offset and kind; `None` for any other name.
pub fn parse_segment_file_name(name: &str) -> Option<(i64, SegmentFileKind)> {
    let (digits, kind) = SegmentFileKind::ALL
        .iter()
        .find_map(|kind| Some((name.strip_suffix(kind.suffix())?, *kind)))?;
    Some((parse_offset_digits(digits)?, kind))
}

/// The name of a producer snapshot, e.g. `00000000000000000042.snapshot`.
///
/// # Panics
/// If `offset` is negative.
pub fn producer_snapshot_file_name(offset: i64) -> String {
    assert!(offset >= 0, "negative snapshot offset {offset}");
    format!(
        "{offset:0width$}{suffix}",
        width = BASE_OFFSET_DIGITS,
        suffix = PRODUCER_SNAPSHOT_SUFFIX
    )
}

/// Parses a producer snapshot name back into its offset; `None` for any other name.
pub fn parse_producer_snapshot_file_name(name: &str) -> Option<i64> {
    parse_offset_digits(name.strip_suffix(PRODUCER_SNAPSHOT_SUFFIX)?)
}

/// The 20 zero-padded digits of a file name, as an offset.
fn parse_offset_digits(digits: &str) -> Option<i64> {
    if digits.len() != BASE_OFFSET_DIGITS || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The directory name of a partition, `<topic>-<partition>`.
///
/// # Errors
/// `InvalidTopicPartition` if the topic is not a legal Kafka topic name (which also keeps
/// `/`, `..` and the like out of paths) or the partition is negative.
pub fn partition_dir_name(topic_partition: &TopicPartition) -> Result<String, StorageError> {
    let invalid = |reason| StorageError::InvalidTopicPartition {
        topic: topic_partition.topic.clone(),
        partition: topic_partition.partition,
        reason,
    };
    if let Some(reason) = topic_name_problem(&topic_partition.topic) {
        return Err(invalid(reason));
    }
    if topic_partition.partition < 0 {
        return Err(invalid("negative partition"));
    }
    Ok(topic_partition.to_string())
}

/// Parses a partition directory name at its last `-`, since topic names may contain `-`.
/// `None` for anything else, including directories being deleted.
pub fn parse_partition_dir_name(name: &str) -> Option<TopicPartition> {
    let (topic, partition) = name.rsplit_once('-')?;
    if topic_name_problem(topic).is_some() {
        return None;
    }
    // Only the canonical spelling, so that building the name again gives the same directory.
    let canonical = partition == "0" || !partition.starts_with('0');
    if !canonical || !partition.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let partition: i32 = partition.parse().ok()?;
    Some(TopicPartition::new(topic, partition))
}

/// The name a partition directory is renamed to before it is removed, like Kafka's
/// `<topic>-<partition>.<unique>-delete`. `unique` keeps two deletions of a recreated
/// partition apart.
pub fn delete_dir_name(partition_dir_name: &str, unique: u64) -> String {
    format!("{partition_dir_name}.{unique:x}{DELETE_DIR_SUFFIX}")
}

/// Whether a directory name is a partition directory renamed for deletion.
pub fn is_delete_dir_name(name: &str) -> bool {
    name.ends_with(DELETE_DIR_SUFFIX) && name.contains('.')
}

/// Why `topic` cannot be a topic name, or `None` if it can. Kafka's rule: 1 to 249 bytes of
/// ASCII letters, digits, `.`, `_` and `-`, and not `.` or `..`.
fn topic_name_problem(topic: &str) -> Option<&'static str> {
    if topic.is_empty() {
        return Some("empty topic name");
    }
    if topic.len() > TOPIC_NAME_MAX_BYTES {
        return Some("topic name longer than 249 bytes");
    }
    if topic == "." || topic == ".." {
        return Some("topic name '.' or '..'");
    }
    let legal = |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-');
    if !topic.bytes().all(legal) {
        return Some("topic name has a character other than [a-zA-Z0-9._-]");
    }
    None
}

/// One entry of a segment's offset index: the batch with base offset
/// `segment base + relative_offset` starts at byte `position` of the `.log` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetIndexEntry {
    /// Offset minus the segment's base offset.
    pub relative_offset: u32,
    /// Byte position of the batch in the segment's `.log` file.
    pub position: u32,
}

impl OffsetIndexEntry {
    /// The entry's on-disk bytes.
    pub fn to_bytes(self) -> [u8; OFFSET_INDEX_ENTRY_BYTES] {
        let mut bytes = [0; OFFSET_INDEX_ENTRY_BYTES];
        bytes[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        bytes[4..].copy_from_slice(&self.position.to_be_bytes());
        bytes
    }

    /// Reads an entry from its on-disk bytes.
    pub fn from_bytes(bytes: [u8; OFFSET_INDEX_ENTRY_BYTES]) -> OffsetIndexEntry {
        let [r0, r1, r2, r3, p0, p1, p2, p3] = bytes;
        OffsetIndexEntry {
            relative_offset: u32::from_be_bytes([r0, r1, r2, r3]),
            position: u32::from_be_bytes([p0, p1, p2, p3]),
        }
    }
}

/// One entry of a segment's time index: among the batches of the segment up to some indexed
/// batch, the largest max timestamp is `timestamp_ms`, first reached by the batch with base
/// offset `segment base + relative_offset` (Kafka's "max timestamp so far" and its offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeIndexEntry {
    /// The largest batch max timestamp so far, in ms since the epoch.
    pub timestamp_ms: i64,
    /// Base offset, minus the segment's, of the first batch with that timestamp.
    pub relative_offset: u32,
}

impl TimeIndexEntry {
    /// The entry's on-disk bytes.
    pub fn to_bytes(self) -> [u8; TIME_INDEX_ENTRY_BYTES] {
        let mut bytes = [0; TIME_INDEX_ENTRY_BYTES];
        bytes[..8].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        bytes[8..].copy_from_slice(&self.relative_offset.to_be_bytes());
        bytes
    }

    /// Reads an entry from its on-disk bytes.
    pub fn from_bytes(bytes: [u8; TIME_INDEX_ENTRY_BYTES]) -> TimeIndexEntry {
        let [t0, t1, t2, t3, t4, t5, t6, t7, r0, r1, r2, r3] = bytes;
        TimeIndexEntry {
            timestamp_ms: i64::from_be_bytes([t0, t1, t2, t3, t4, t5, t6, t7]),
            relative_offset: u32::from_be_bytes([r0, r1, r2, r3]),
        }
    }
}

/// One aborted transaction in one partition (Kafka's `AbortedTxn`): a read_committed
/// consumer skips the producer's transactional batches from `first_offset` up to the ABORT
/// marker at `last_offset`. The entry lives in the transaction index of the segment that
/// holds that marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    /// The producer whose transaction was aborted.
    pub producer_id: i64,
    /// The offset of the transaction's first record in this partition.
    pub first_offset: i64,
    /// The offset of its ABORT marker.
    pub last_offset: i64,
    /// The partition's last stable offset when the transaction was aborted: reads below it
    /// need no entry after this one (`Log::aborted_transactions` stops there).
    pub last_stable_offset: i64,
}

impl AbortedTransaction {
    /// The entry's on-disk bytes, version `TRANSACTION_INDEX_VERSION`.
    pub fn to_bytes(self) -> [u8; TRANSACTION_INDEX_ENTRY_BYTES] {
        let mut bytes = [0; TRANSACTION_INDEX_ENTRY_BYTES];
        bytes[..2].copy_from_slice(&TRANSACTION_INDEX_VERSION.to_be_bytes());
        bytes[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        bytes[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        bytes[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        bytes[26..].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        bytes
    }

    /// Reads an entry from its on-disk bytes.
    ///
    /// # Errors
    /// A reason, if the version is not `TRANSACTION_INDEX_VERSION`.
    pub fn from_bytes(
        bytes: [u8; TRANSACTION_INDEX_ENTRY_BYTES],
    ) -> Result<AbortedTransaction, &'static str> {
        let read_i64 = |position: usize| {
            let mut field = [0; 8];
            field.copy_from_slice(&bytes[position..position + 8]);
            i64::from_be_bytes(field)
        };
        if i16::from_be_bytes([bytes[0], bytes[1]]) != TRANSACTION_INDEX_VERSION {
            return Err("unknown transaction index entry version");
        }
        Ok(AbortedTransaction {
            producer_id: read_i64(2),
            first_offset: read_i64(10),
            last_offset: read_i64(18),
            last_stable_offset: read_i64(26),
        })
    }
}

/// A producer snapshot's bytes: the header (see the module doc), then `payload`.
///
/// # Panics
/// If `offset` is negative or the payload is longer than its `u32` length field can say; the
/// caller checks its own limit first.
pub fn encode_producer_snapshot(offset: i64, payload: &[u8]) -> Vec<u8> {
    assert!(offset >= 0, "negative snapshot offset");
    let payload_length = u32::try_from(payload.len()).expect("the caller limits the payload");
    let mut bytes = Vec::with_capacity(PRODUCER_SNAPSHOT_HEADER_BYTES + payload.len());
    bytes.extend_from_slice(&PRODUCER_SNAPSHOT_VERSION.to_be_bytes());
    bytes.extend_from_slice(&[0; 4]); // crc, filled in below
    bytes.extend_from_slice(&offset.to_be_bytes());
    bytes.extend_from_slice(&payload_length.to_be_bytes());
    assert_eq!(bytes.len(), PRODUCER_SNAPSHOT_HEADER_BYTES);
    bytes.extend_from_slice(payload);
    let crc = crc32c::crc32c(&bytes[PRODUCER_SNAPSHOT_CRC_COVERED_FROM_POSITION..]);
    bytes[2..6].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// The fixed fields at the front of a producer snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerSnapshotHeader {
    /// The CRC-32C the snapshot carries, over the bytes from
    /// `PRODUCER_SNAPSHOT_CRC_COVERED_FROM_POSITION` on.
    pub stored_crc: u32,
    /// The offset the snapshot was taken at, as framed (not yet checked).
    pub offset: i64,
    /// The payload's length, as framed.
    pub payload_length: u32,
}

/// Reads a producer snapshot's header; checks only its version.
///
/// # Errors
/// A reason, if the version is not the one `encode_producer_snapshot` writes.
pub fn parse_producer_snapshot_header(
    header: &[u8; PRODUCER_SNAPSHOT_HEADER_BYTES],
) -> Result<ProducerSnapshotHeader, &'static str> {
    let [
        v0,
        v1,
        c0,
        c1,
        c2,
        c3,
        o0,
        o1,
        o2,
        o3,
        o4,
        o5,
        o6,
        o7,
        l0,
        l1,
        l2,
        l3,
    ] = *header;
    if i16::from_be_bytes([v0, v1]) != PRODUCER_SNAPSHOT_VERSION {
        return Err("unknown snapshot version");
    }
    Ok(ProducerSnapshotHeader {
        stored_crc: u32::from_be_bytes([c0, c1, c2, c3]),
        offset: i64::from_be_bytes([o0, o1, o2, o3, o4, o5, o6, o7]),
        payload_length: u32::from_be_bytes([l0, l1, l2, l3]),
    })
}

/// Checks a producer snapshot's bytes and returns its offset; the payload is the bytes from
/// `PRODUCER_SNAPSHOT_HEADER_BYTES` on.
///
/// # Errors
/// A reason, if the bytes are not exactly what `encode_producer_snapshot` writes.
pub fn parse_producer_snapshot(bytes: &[u8]) -> Result<i64, &'static str> {
    let header: &[u8; PRODUCER_SNAPSHOT_HEADER_BYTES] = bytes
        .get(..PRODUCER_SNAPSHOT_HEADER_BYTES)
        .and_then(|header| header.try_into().ok())
        .ok_or("shorter than a snapshot header")?;
    let header = parse_producer_snapshot_header(header)?;
    let payload_bytes = bytes.len() - PRODUCER_SNAPSHOT_HEADER_BYTES;
    if usize::try_from(header.payload_length).ok() != Some(payload_bytes) {
        return Err("payload length is not the bytes after the header");
    }
    let crc = crc32c::crc32c(&bytes[PRODUCER_SNAPSHOT_CRC_COVERED_FROM_POSITION..]);
    if crc != header.stored_crc {
        return Err("CRC-32C mismatch");
    }
    if header.offset < 0 {
        return Err("negative offset");
    }
    Ok(header.offset)
}

/// The text of an offset checkpoint (the log start offset or the cleaner's): a version line,
/// then the offset.
pub fn encode_offset_checkpoint(offset: i64) -> String {
    assert!(offset >= 0, "negative checkpointed offset");
    format!("{CHECKPOINT_VERSION}\n{offset}\n")
}

/// Parses the text of an offset checkpoint.
///
/// # Errors
/// A reason, if the text is not exactly what `encode_offset_checkpoint` writes.
pub fn parse_offset_checkpoint(text: &str) -> Result<i64, &'static str> {
    let mut lines = text.split_terminator('\n');
    if lines.next() != Some(CHECKPOINT_VERSION) {
        return Err("unknown version");
    }
    let offset_line = lines.next().ok_or("missing offset")?;
    if lines.next().is_some() {
        return Err("trailing lines");
    }
    let offset: i64 = offset_line
        .parse()
        .map_err(|_| "offset is not an integer")?;
    if offset < 0 {
        return Err("negative offset");
    }
    Ok(offset)
}

/// The text of a recovery point checkpoint: a version line, then the active segment's base
/// offset and the position below which its batches were durable.
pub fn encode_recovery_point(segment_base_offset: i64, durable_position: u64) -> String {
    assert!(segment_base_offset >= 0, "negative segment base offset");
    format!("{CHECKPOINT_VERSION}\n{segment_base_offset} {durable_position}\n")
}

/// Parses the text of a recovery point checkpoint into `(segment_base_offset,
/// durable_position)`.
///
/// # Errors
/// A reason, if the text is not exactly what `encode_recovery_point` writes.
pub fn parse_recovery_point(text: &str) -> Result<(i64, u64), &'static str> {
    let mut lines = text.split_terminator('\n');
    if lines.next() != Some(CHECKPOINT_VERSION) {
        return Err("unknown version");
    }
    let point_line = lines.next().ok_or("missing recovery point")?;
    if lines.next().is_some() {
        return Err("trailing lines");
    }
    let (base_text, position_text) = point_line
        .split_once(' ')
        .ok_or("missing durable position")?;
    let segment_base_offset: i64 = base_text
        .parse()
        .map_err(|_| "base offset is not an integer")?;
    if segment_base_offset < 0 {
        return Err("negative base offset");
    }
    let durable_position: u64 = position_text
        .parse()
        .map_err(|_| "durable position is not an unsigned integer")?;
    Ok((segment_base_offset, durable_position))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recovery point encodes and parses back; malformed text is rejected.
    #[test]
    fn recovery_point_round_trip() {
        for (base_offset, position) in [(0, 0), (42, 4096), (i64::MAX, u64::MAX)] {
            let text = encode_recovery_point(base_offset, position);
            assert_eq!(parse_recovery_point(&text), Ok((base_offset, position)));
        }
        let invalid = [
            "",
            "0\n",
            "1\n0 0\n",
            "0\n0\n",
            "0\n-1 0\n",
            "0\n0 -1\n",
            "0\n0 0\nx\n",
        ];
        for text in invalid {
            assert!(parse_recovery_point(text).is_err(), "{text:?}");
        }
    }

    /// Segment file names build and parse back for each kind, sort by offset, and every
    /// malformed name is rejected.
    #[test]
    fn segment_file_name_round_trip() {
        for base_offset in [0, 1, 42, 4_294_967_296, i64::MAX] {
            for kind in SegmentFileKind::ALL {
                let name = segment_file_name(base_offset, kind);
                assert_eq!(parse_segment_file_name(&name), Some((base_offset, kind)));
            }
        }
        assert_eq!(
            segment_file_name(42, SegmentFileKind::Log),
            "00000000000000000042.log"
        );
        assert_eq!(
            segment_file_name(7, SegmentFileKind::TimeIndex),
            "00000000000000000007.timeindex"
        );
        assert_eq!(
            segment_file_name(7, SegmentFileKind::TransactionIndex),
            "00000000000000000007.txnindex"
        );
        let bad = [
            "",
            ".log",
            "42.log",
            "0000000000000000042.log",
            "000000000000000000042.log",
            "0000000000000000004a.log",
            "00000000000000000042.LOG",
            "00000000000000000042.log.tmp",
            "00000000000000000042.snapshot",
            "+0000000000000000042.log",
            "99999999999999999999.log",
            "log-start-offset.checkpoint",
        ];
        for name in bad {
            assert_eq!(parse_segment_file_name(name), None, "{name}");
        }
    }

    /// Partition directory names build and parse back, split at the last '-', and names that
    /// are not canonical partition directories are rejected.
    #[test]
    fn partition_dir_name_round_trip() {
        for (topic, partition) in [("orders", 0), ("my-topic-v2", 17), ("a.b_c", i32::MAX)] {
            let topic_partition = TopicPartition::new(topic, partition);
            let name = partition_dir_name(&topic_partition).expect("valid name");
            assert_eq!(parse_partition_dir_name(&name), Some(topic_partition));
        }
        assert_eq!(
            parse_partition_dir_name("my-topic-3"),
            Some(TopicPartition::new("my-topic", 3))
        );
        assert_eq!(
            parse_partition_dir_name("trailing--3"),
            Some(TopicPartition::new("trailing-", 3))
        );
        let bad = [
            "orders",
            "orders-",
            "-3",
            "orders-03",
            "orders-+3",
            "orders-2147483648",
            "orders-3.1a2b-delete",
            "or/ders-3",
            "..-3",
            ".-3",
        ];
        for name in bad {
            assert_eq!(parse_partition_dir_name(name), None, "{name}");
        }
    }

    /// Unsafe or illegal topic names never become directory names.
    #[test]
    fn partition_dir_name_rejects_illegal_topics() {
        let long = "t".repeat(TOPIC_NAME_MAX_BYTES + 1);
        for topic in ["", ".", "..", "../etc", "a/b", "a b", long.as_str()] {
            let result = partition_dir_name(&TopicPartition::new(topic, 0));
            assert!(
                matches!(result, Err(StorageError::InvalidTopicPartition { .. })),
                "{topic}"
            );
        }
        let negative = partition_dir_name(&TopicPartition::new("orders", -1));
        assert!(matches!(
            negative,
            Err(StorageError::InvalidTopicPartition { .. })
        ));
    }

    /// A renamed-for-deletion directory is recognised and never parses as a partition.
    #[test]
    fn delete_dir_name_is_not_a_partition() {
        let name = delete_dir_name("orders-3", 0x1a2b);
        assert_eq!(name, "orders-3.1a2b-delete");
        assert!(is_delete_dir_name(&name));
        assert_eq!(parse_partition_dir_name(&name), None);
        assert!(!is_delete_dir_name("orders-3"));
    }

    /// Index entries and checkpoints encode and decode back; bad checkpoints are rejected.
    #[test]
    fn entries_and_checkpoint_round_trip() {
        let offset_entry = OffsetIndexEntry {
            relative_offset: 0x0102_0304,
            position: 0x0506_0708,
        };
        assert_eq!(offset_entry.to_bytes(), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            OffsetIndexEntry::from_bytes(offset_entry.to_bytes()),
            offset_entry
        );
        let time_entry = TimeIndexEntry {
            timestamp_ms: -2,
            relative_offset: 9,
        };
        assert_eq!(
            TimeIndexEntry::from_bytes(time_entry.to_bytes()),
            time_entry
        );

        let text = encode_offset_checkpoint(1234);
        assert_eq!(parse_offset_checkpoint(&text), Ok(1234));
        for bad in ["", "0\n", "1\n5\n", "0\nx\n", "0\n-5\n", "0\n5\n6\n"] {
            assert!(parse_offset_checkpoint(bad).is_err(), "{bad:?}");
        }
    }

    /// Staged segment file names build and parse back for each kind and stage, and are never
    /// mistaken for segment files (nor segment files for them).
    #[test]
    fn staged_segment_file_name_round_trip() {
        for base_offset in [0, 42, i64::MAX] {
            for kind in SegmentFileKind::ALL {
                for stage in [SwapStage::Cleaned, SwapStage::Swap] {
                    let name = staged_segment_file_name(base_offset, kind, stage);
                    let parsed = parse_staged_segment_file_name(&name);
                    assert_eq!(parsed, Some((base_offset, kind, stage)));
                    assert_eq!(parse_segment_file_name(&name), None, "{name}");
                }
                let plain = segment_file_name(base_offset, kind);
                assert_eq!(parse_staged_segment_file_name(&plain), None);
            }
        }
        assert_eq!(
            staged_segment_file_name(42, SegmentFileKind::TimeIndex, SwapStage::Swap),
            "00000000000000000042.timeindex.swap"
        );
        let bad = [
            ".swap",
            "42.log.swap",
            "00000000000000000042.swap",
            "00000000000000000042.log.swap.cleaned",
            "00000000000000000042.log.SWAP",
            "00000000000000000042.log.tmp",
            "cleaner-offset-checkpoint",
        ];
        for name in bad {
            assert_eq!(parse_staged_segment_file_name(name), None, "{name}");
        }
    }

    /// A transaction index entry is Kafka's 34 bytes, as written here by hand from
    /// `AbortedTxn`'s layout, and reads back; another version is rejected.
    #[test]
    fn aborted_transaction_is_kafkas_entry() {
        let aborted = AbortedTransaction {
            producer_id: 0x0102_0304_0506_0708,
            first_offset: 42,
            last_offset: 0x0100,
            last_stable_offset: -1,
        };
        let expected: [u8; TRANSACTION_INDEX_ENTRY_BYTES] = [
            0, 0, // version
            1, 2, 3, 4, 5, 6, 7, 8, // producer id
            0, 0, 0, 0, 0, 0, 0, 42, // first offset
            0, 0, 0, 0, 0, 0, 1, 0, // last offset
            255, 255, 255, 255, 255, 255, 255, 255, // last stable offset
        ];
        assert_eq!(aborted.to_bytes(), expected);
        assert_eq!(AbortedTransaction::from_bytes(expected), Ok(aborted));
        let mut version_1 = expected;
        version_1[1] = 1;
        assert!(AbortedTransaction::from_bytes(version_1).is_err());
    }

    /// Producer snapshot names build and parse back, are not segment names, and the framing
    /// round-trips; a flipped byte, a wrong length or an unknown version is rejected.
    #[test]
    fn producer_snapshot_round_trip() {
        for offset in [0, 42, i64::MAX] {
            let name = producer_snapshot_file_name(offset);
            assert_eq!(parse_producer_snapshot_file_name(&name), Some(offset));
            assert_eq!(parse_segment_file_name(&name), None);
        }
        assert_eq!(
            producer_snapshot_file_name(42),
            "00000000000000000042.snapshot"
        );
        for bad in [
            "42.snapshot",
            "00000000000000000042.snapshot.tmp",
            ".snapshot",
        ] {
            assert_eq!(parse_producer_snapshot_file_name(bad), None, "{bad}");
        }

        let bytes = encode_producer_snapshot(7, b"state");
        assert_eq!(bytes.len(), PRODUCER_SNAPSHOT_HEADER_BYTES + 5);
        assert_eq!(&bytes[..2], &[0, 0]);
        assert_eq!(&bytes[6..18], &[0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 5]);
        assert_eq!(&bytes[PRODUCER_SNAPSHOT_HEADER_BYTES..], b"state");
        assert_eq!(parse_producer_snapshot(&bytes), Ok(7));
        assert_eq!(
            parse_producer_snapshot(&encode_producer_snapshot(0, b"")),
            Ok(0)
        );
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert_eq!(parse_producer_snapshot(&flipped), Err("CRC-32C mismatch"));
        let mut version_1 = bytes.clone();
        version_1[1] = 1;
        assert_eq!(
            parse_producer_snapshot(&version_1),
            Err("unknown snapshot version")
        );
        assert!(parse_producer_snapshot(&bytes[..bytes.len() - 1]).is_err());
        assert!(parse_producer_snapshot(&bytes[..10]).is_err());
    }
}
