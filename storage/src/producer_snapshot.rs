//! Producer state snapshots, `<offset>.snapshot`: the broker's producer state (ids, epochs,
//! sequences, open transactions) as of an offset, so that a restart replays the log from
//! there instead of from the start.
//!
//! Storage keeps the payload opaque and only frames it (version, offset, length, CRC-32C;
//! see [`format`](crate::format)), writes it atomically, and keeps the newest: each write
//! deletes the older ones. A snapshot must never describe offsets the log no longer has, so
//! `Log::write_producer_snapshot` makes the log durable through its offset first, and an open
//! that finds the log ending before a snapshot (recovery truncated it) deletes that snapshot.
//! At open only the names are listed; no snapshot is read until the broker asks.
//!
//! # Limits
//!
//! A payload is at most `MAX_PRODUCER_SNAPSHOT_PAYLOAD_BYTES`; reading one allocates its size
//! once, after checking the file's length against that limit.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tracing::warn;

use crate::error::{StorageError, io_error};
use crate::format::{
    PRODUCER_SNAPSHOT_HEADER_BYTES, TEMP_FILE_SUFFIX, encode_producer_snapshot,
    parse_producer_snapshot, parse_producer_snapshot_file_name, producer_snapshot_file_name,
};
use crate::fs::sync_dir;
use crate::topic_partition::TopicPartition;

/// The largest producer snapshot payload: 256 MiB, some millions of producers' state, far
/// more than a partition has while producer ids expire.
pub const MAX_PRODUCER_SNAPSHOT_PAYLOAD_BYTES: usize = 256 * 1024 * 1024;

const _: () = assert!(MAX_PRODUCER_SNAPSHOT_PAYLOAD_BYTES <= u32::MAX as usize);

/// The newest producer snapshot of a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerSnapshot {
    /// The offset the state is as of: it covers every batch below this offset.
    pub offset: i64,
    /// The broker's encoding of its producer state, as it was written.
    pub payload: Bytes,
}

/// Writes the snapshot for `offset` atomically (temporary file, fsync, rename, fsync of the
/// directory), then deletes the older ones.
pub(crate) fn write_producer_snapshot(
    partition_dir: &Path,
    offset: i64,
    payload: &[u8],
) -> Result<(), StorageError> {
    assert!(payload.len() <= MAX_PRODUCER_SNAPSHOT_PAYLOAD_BYTES);
    let path = partition_dir.join(producer_snapshot_file_name(offset));
    let temp_path = temp_path(&path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp_path)
        .map_err(io_error(&temp_path))?;
    file.write_all(&encode_producer_snapshot(offset, payload))
        .map_err(io_error(&temp_path))?;
    // The contents must be durable before the rename can make them the snapshot.
    file.sync_all().map_err(io_error(&temp_path))?;
    std::fs::rename(&temp_path, &path).map_err(io_error(&path))?;
    // And the rename must be durable before older snapshots go, or a power loss could leave
    // none.
    sync_dir(partition_dir)?;
    // Not fsynced: an older snapshot that comes back is harmless, as only the newest is read.
    for older_offset in snapshot_offsets(partition_dir)? {
        if older_offset < offset {
            remove_snapshot(partition_dir, older_offset)?;
        }
    }
    Ok(())
}

/// Reads the newest snapshot; `None` if there is none.
///
/// # Errors
/// `CorruptCheckpoint` if the newest one does not parse or fails its CRC (older ones are
/// not tried: they are deleted once a newer one is durable).
pub(crate) fn read_newest_producer_snapshot(
    partition_dir: &Path,
) -> Result<Option<ProducerSnapshot>, StorageError> {
    let Some(offset) = snapshot_offsets(partition_dir)?.into_iter().max() else {
        return Ok(None);
    };
    let path = partition_dir.join(producer_snapshot_file_name(offset));
    let corrupt = |reason| StorageError::CorruptCheckpoint {
        path: path.clone(),
        reason,
    };
    let length_bytes = std::fs::metadata(&path).map_err(io_error(&path))?.len();
    let max_bytes = PRODUCER_SNAPSHOT_HEADER_BYTES + MAX_PRODUCER_SNAPSHOT_PAYLOAD_BYTES;
    if usize::try_from(length_bytes).map_or(true, |length| length > max_bytes) {
        return Err(corrupt("larger than the largest snapshot"));
    }
    let bytes = std::fs::read(&path).map_err(io_error(&path))?;
    let framed_offset = parse_producer_snapshot(&bytes).map_err(corrupt)?;
    if framed_offset != offset {
        return Err(corrupt("offset differs from the file name's"));
    }
    let payload = Bytes::from(bytes).slice(PRODUCER_SNAPSHOT_HEADER_BYTES..);
    Ok(Some(ProducerSnapshot { offset, payload }))
}

/// Deletes, with a warning, the snapshots in `snapshot_offsets` past `next_offset`: the log
/// was truncated below them, so the state they hold includes batches that are gone.
pub(crate) fn remove_snapshots_past(
    partition_dir: &Path,
    topic_partition: &TopicPartition,
    snapshot_offsets: &[i64],
    next_offset: i64,
) -> Result<(), StorageError> {
    let past: Vec<i64> = snapshot_offsets
        .iter()
        .copied()
        .filter(|offset| *offset > next_offset)
        .collect();
    if past.is_empty() {
        return Ok(());
    }
    for offset in &past {
        warn!(%topic_partition, snapshot_offset = offset, next_offset,
            "removing a producer snapshot past the end of the recovered log");
        remove_snapshot(partition_dir, *offset)?;
    }
    // Before anything is appended: were the snapshot to come back after a crash, the log might
    // by then have grown past its offset again, with other batches.
    sync_dir(partition_dir)
}

/// The temporary name a snapshot is written under, `<offset>.snapshot.tmp`.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TEMP_FILE_SUFFIX);
    PathBuf::from(name)
}

/// Whether `name` is a snapshot's temporary file, left by a write a crash interrupted.
pub(crate) fn is_snapshot_temp_file_name(name: &str) -> bool {
    name.strip_suffix(TEMP_FILE_SUFFIX)
        .and_then(parse_producer_snapshot_file_name)
        .is_some()
}

/// The offsets of the snapshots in a partition directory.
fn snapshot_offsets(partition_dir: &Path) -> Result<Vec<i64>, StorageError> {
    let mut offsets = Vec::new();
    for entry in std::fs::read_dir(partition_dir).map_err(io_error(partition_dir))? {
        let name = entry.map_err(io_error(partition_dir))?.file_name();
        if let Some(offset) = name.to_str().and_then(parse_producer_snapshot_file_name) {
            offsets.push(offset);
        }
    }
    Ok(offsets)
}

fn remove_snapshot(partition_dir: &Path, offset: i64) -> Result<(), StorageError> {
    let path = partition_dir.join(producer_snapshot_file_name(offset));
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(io_error(&path)(error)),
    }
}
