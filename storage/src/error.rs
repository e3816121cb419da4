//! The one error type of the storage crate.
//!
//! Each variant names what went wrong here and carries the file, partition or position it
//! went wrong at, so the broker can log it once and map it to a Kafka error code.

use std::io;
use std::path::{Path, PathBuf};

use crate::topic_partition::TopicPartition;

/// Everything a storage call can fail with.
///
/// Bytes read from disk that do not make sense are reported here (`CorruptSegment`,
/// `CorruptCheckpoint`), never by a panic; a panic in this crate means its own code is wrong.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An operating-system call on a file or directory failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory the call was about.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// Another process holds the data directory's lock file.
    #[error(
        "data directory lock {} is held by another process; \
         is another broker using this directory?",
        path.display()
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
    },

    /// A batch handed to `Log::append` has a header the storage format cannot hold. Nothing
    /// of that append was written.
    #[error("invalid batch at position {position} of an append to {topic_partition}: {reason}")]
    InvalidBatch {
        /// The partition appended to.
        topic_partition: TopicPartition,
        /// Byte position of the bad batch inside the appended buffer.
        position: usize,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// One append is larger than a whole segment may be, or spans more offsets than one
    /// segment can number. Nothing of that append was written.
    #[error(
        "append of {size_bytes} bytes to {topic_partition} cannot fit in one segment: {reason}"
    )]
    AppendTooLarge {
        /// The partition appended to.
        topic_partition: TopicPartition,
        /// Size of the whole append.
        size_bytes: usize,
        /// Which limit it exceeds.
        reason: &'static str,
    },

    /// A read, a DeleteRecords or a timestamp lookup asked for an offset the log does not
    /// hold.
    #[error(
        "offset {offset} is out of range for {topic_partition}: log start offset \
         {log_start_offset}, next offset {next_offset}"
    )]
    OffsetOutOfRange {
        /// The partition read from.
        topic_partition: TopicPartition,
        /// The offset asked for.
        offset: i64,
        /// The first offset the log holds.
        log_start_offset: i64,
        /// The offset the next append will get.
        next_offset: i64,
    },

    /// Bytes below a segment's written end are not a valid batch. Recovery truncates such
    /// bytes in the active segment; finding them elsewhere means the disk changed under us.
    #[error("corrupt segment {} at position {position}: {reason}", path.display())]
    CorruptSegment {
        /// The segment's `.log` file.
        path: PathBuf,
        /// Byte position of the bad batch in that file.
        position: u64,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// An offset checkpoint of a partition, or its newest producer snapshot, cannot be parsed
    /// or fails its CRC.
    #[error("corrupt checkpoint {}: {reason}", path.display())]
    CorruptCheckpoint {
        /// The checkpoint or snapshot file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Compaction could not read the records of a batch, or the record codec returned a
    /// rewritten batch that does not match the original. The pass stops; nothing of the
    /// segment being cleaned was swapped in.
    #[error("cannot compact the batch at position {position} of {}: {reason}", path.display())]
    UnreadableRecords {
        /// The segment's `.log` file.
        path: PathBuf,
        /// Byte position of the batch in that file.
        position: u64,
        /// What the codec said, or what is wrong with its output.
        reason: String,
    },

    /// A compaction swap failed (or panicked) after its commit point, so the files on disk
    /// are part-way between the old and the new segments. Readers still see the old ones;
    /// recovery finishes the swap when the log is next opened, and until then the log is not
    /// compacted again.
    #[error("compaction of {topic_partition} is halted until the log is reopened")]
    CompactionHalted {
        /// The partition whose swap failed.
        topic_partition: TopicPartition,
    },

    /// A producer snapshot payload is larger than `MAX_PRODUCER_SNAPSHOT_PAYLOAD_BYTES`.
    /// Nothing was written.
    #[error(
        "producer snapshot of {payload_bytes} bytes for {topic_partition} is larger than \
         {max_bytes} bytes"
    )]
    SnapshotTooLarge {
        /// The partition the snapshot is for.
        topic_partition: TopicPartition,
        /// The payload's size.
        payload_bytes: usize,
        /// The limit.
        max_bytes: usize,
    },

    /// A topic name or partition number cannot name a directory safely.
    #[error("invalid topic partition {topic:?}-{partition}: {reason}")]
    InvalidTopicPartition {
        /// The topic name as given.
        topic: String,
        /// The partition number as given.
        partition: i32,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Wraps an `io::Error` with the path it happened on, for `map_err`.
pub(crate) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}
