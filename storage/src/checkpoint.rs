//! The two offset checkpoints of a partition, each one small file:
//!
//! - the log start offset, written when DeleteRecords moves it into the middle of a segment,
//!   where the segment files alone cannot say where the log starts;
//! - the cleaner offset, where the log cleaner's next pass starts mapping keys.
//!
//! Both are replaced atomically and hold one offset in the same text form (see
//! [`format`](crate::format)).
//!
//! A third file, the recovery point, is only a hint: how much of the active segment was
//! durable when it was written. It is replaced without fsyncs, since a lost or torn one only
//! makes the next recovery scan more (see `recovery.rs`).

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

use tracing::warn;

use crate::error::{StorageError, io_error};
use crate::format::{
    CLEANER_OFFSET_CHECKPOINT_FILE_NAME, LOG_START_OFFSET_CHECKPOINT_FILE_NAME,
    RECOVERY_POINT_CHECKPOINT_FILE_NAME, TEMP_FILE_SUFFIX, encode_offset_checkpoint,
    encode_recovery_point, parse_offset_checkpoint, parse_recovery_point,
};
use crate::fs::sync_dir;

/// Reads the partition's checkpointed log start offset, `None` if there is no checkpoint.
///
/// # Errors
/// `CorruptCheckpoint` if the file exists but does not parse: guessing could expose deleted
/// records again, so the operator has to look.
pub(crate) fn read_log_start_offset(partition_dir: &Path) -> Result<Option<i64>, StorageError> {
    read_offset(partition_dir, LOG_START_OFFSET_CHECKPOINT_FILE_NAME)
}

/// Replaces the log start offset checkpoint; see `write_offset`.
pub(crate) fn write_log_start_offset(
    partition_dir: &Path,
    log_start_offset: i64,
) -> Result<(), StorageError> {
    write_offset(
        partition_dir,
        LOG_START_OFFSET_CHECKPOINT_FILE_NAME,
        log_start_offset,
    )
}

/// Reads the partition's cleaner offset checkpoint, `None` if there is none.
///
/// # Errors
/// `CorruptCheckpoint` if the file does not parse; the cleaner then starts from the log
/// start, which costs work and nothing else.
pub(crate) fn read_cleaner_offset(partition_dir: &Path) -> Result<Option<i64>, StorageError> {
    read_offset(partition_dir, CLEANER_OFFSET_CHECKPOINT_FILE_NAME)
}

/// Replaces the cleaner offset checkpoint; see `write_offset`.
pub(crate) fn write_cleaner_offset(
    partition_dir: &Path,
    cleaner_offset: i64,
) -> Result<(), StorageError> {
    write_offset(
        partition_dir,
        CLEANER_OFFSET_CHECKPOINT_FILE_NAME,
        cleaner_offset,
    )
}

/// How much of a partition's active segment was durable: every byte of segment
/// `segment_base_offset` below `durable_position` had been fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecoveryPoint {
    pub segment_base_offset: i64,
    pub durable_position: u64,
}

/// Reads the partition's recovery point; `None` if there is none. An unreadable or malformed
/// file is `None` too, with a warning: recovery then scans the whole active segment, which
/// costs time only.
pub(crate) fn read_recovery_point(partition_dir: &Path) -> Option<RecoveryPoint> {
    let path = partition_dir.join(RECOVERY_POINT_CHECKPOINT_FILE_NAME);
    let parsed = match std::fs::read_to_string(&path) {
        Ok(text) => parse_recovery_point(&text).map_err(str::to_string),
        Err(error) if error.kind() == io::ErrorKind::NotFound => return None,
        Err(error) => Err(error.to_string()),
    };
    match parsed {
        Ok((segment_base_offset, durable_position)) => Some(RecoveryPoint {
            segment_base_offset,
            durable_position,
        }),
        Err(reason) => {
            warn!(path = %path.display(), reason, "ignoring an unusable recovery point");
            None
        }
    }
}

/// Replaces the recovery point: write a temporary file, rename it over the old one. No fsync:
/// a crash may keep the old point (still true, since a segment's durable bytes never change)
/// or leave a torn file (ignored), and either way costs only a longer scan.
pub(crate) fn write_recovery_point(
    partition_dir: &Path,
    point: RecoveryPoint,
) -> Result<(), StorageError> {
    let file_name = RECOVERY_POINT_CHECKPOINT_FILE_NAME;
    let path = partition_dir.join(file_name);
    let temp_path = partition_dir.join(checkpoint_temp_file_name(file_name));
    let text = encode_recovery_point(point.segment_base_offset, point.durable_position);
    std::fs::write(&temp_path, text).map_err(io_error(&temp_path))?;
    std::fs::rename(&temp_path, &path).map_err(io_error(&path))
}

/// Removes the recovery point, for a log whose segments were all replaced.
pub(crate) fn remove_recovery_point(partition_dir: &Path) -> Result<(), StorageError> {
    let path = partition_dir.join(RECOVERY_POINT_CHECKPOINT_FILE_NAME);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(io_error(&path)(error)),
    }
}

/// The temporary name a checkpoint is written under before it is renamed into place.
pub(crate) fn checkpoint_temp_file_name(file_name: &str) -> String {
    format!("{file_name}{TEMP_FILE_SUFFIX}")
}

fn read_offset(partition_dir: &Path, file_name: &str) -> Result<Option<i64>, StorageError> {
    let path = partition_dir.join(file_name);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) if error.kind() == io::ErrorKind::InvalidData => {
            return Err(StorageError::CorruptCheckpoint {
                path,
                reason: "not UTF-8",
            });
        }
        Err(error) => return Err(io_error(&path)(error)),
    };
    parse_offset_checkpoint(&text)
        .map(Some)
        .map_err(|reason| StorageError::CorruptCheckpoint { path, reason })
}

/// Replaces a checkpoint atomically: write a temporary file, fsync it, rename it over the
/// checkpoint, fsync the directory. A crash at any point leaves the old or the new value,
/// never a torn one.
fn write_offset(partition_dir: &Path, file_name: &str, offset: i64) -> Result<(), StorageError> {
    let path = partition_dir.join(file_name);
    let temp_path = partition_dir.join(checkpoint_temp_file_name(file_name));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp_path)
        .map_err(io_error(&temp_path))?;
    file.write_all(encode_offset_checkpoint(offset).as_bytes())
        .map_err(io_error(&temp_path))?;
    // The contents must be durable before the rename can make them the checkpoint.
    file.sync_all().map_err(io_error(&temp_path))?;
    std::fs::rename(&temp_path, &path).map_err(io_error(&path))?;
    // And the rename itself must be durable before DeleteRecords answers.
    sync_dir(partition_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A written checkpoint reads back; a missing one is `None`; a garbled one is an error.
    #[test]
    fn checkpoint_round_trip() {
        let dir = tempfile::Builder::new()
            .prefix("checkpoint_round_trip")
            .tempdir()
            .expect("temp dir");
        assert_eq!(read_log_start_offset(dir.path()).expect("read"), None);
        write_log_start_offset(dir.path(), 42).expect("write");
        write_log_start_offset(dir.path(), 77).expect("write");
        assert_eq!(read_log_start_offset(dir.path()).expect("read"), Some(77));
        assert_eq!(read_cleaner_offset(dir.path()).expect("read"), None);
        write_cleaner_offset(dir.path(), 5).expect("write");
        assert_eq!(read_cleaner_offset(dir.path()).expect("read"), Some(5));
        assert_eq!(read_log_start_offset(dir.path()).expect("read"), Some(77));
        std::fs::write(
            dir.path().join(LOG_START_OFFSET_CHECKPOINT_FILE_NAME),
            "0\nx\n",
        )
        .expect("garble");
        assert!(matches!(
            read_log_start_offset(dir.path()),
            Err(StorageError::CorruptCheckpoint { .. })
        ));
    }
}
