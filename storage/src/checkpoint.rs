//! The log start offset checkpoint: one small file per partition, written when DeleteRecords
//! moves the log start offset into the middle of a segment, where the segment files alone
//! cannot say where the log starts.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

use crate::error::{StorageError, io_error};
use crate::format::{
    LOG_START_OFFSET_CHECKPOINT_FILE_NAME, TEMP_FILE_SUFFIX, encode_log_start_offset_checkpoint,
    parse_log_start_offset_checkpoint,
};
use crate::fs::sync_dir;

/// Reads the partition's checkpointed log start offset, `None` if there is no checkpoint.
///
/// # Errors
/// `CorruptCheckpoint` if the file exists but does not parse: guessing could expose deleted
/// records again, so the operator has to look.
pub(crate) fn read_log_start_offset(partition_dir: &Path) -> Result<Option<i64>, StorageError> {
    let path = partition_dir.join(LOG_START_OFFSET_CHECKPOINT_FILE_NAME);
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
    parse_log_start_offset_checkpoint(&text)
        .map(Some)
        .map_err(|reason| StorageError::CorruptCheckpoint { path, reason })
}

/// Replaces the checkpoint atomically: write a temporary file, fsync it, rename it over the
/// checkpoint, fsync the directory. A crash at any point leaves the old or the new value,
/// never a torn one.
pub(crate) fn write_log_start_offset(
    partition_dir: &Path,
    log_start_offset: i64,
) -> Result<(), StorageError> {
    let path = partition_dir.join(LOG_START_OFFSET_CHECKPOINT_FILE_NAME);
    let temp_path = partition_dir.join(format!(
        "{LOG_START_OFFSET_CHECKPOINT_FILE_NAME}{TEMP_FILE_SUFFIX}"
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp_path)
        .map_err(io_error(&temp_path))?;
    file.write_all(encode_log_start_offset_checkpoint(log_start_offset).as_bytes())
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
