//! The broker's data directory: its lock, the clean-shutdown marker, and one directory per
//! partition.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing::{info, warn};

use crate::config::LogConfig;
use crate::error::{StorageError, io_error};
use crate::format::{
    CLEAN_SHUTDOWN_FILE_NAME, LOCK_FILE_NAME, delete_dir_name, is_delete_dir_name,
    parse_partition_dir_name, partition_dir_name,
};
use crate::fs::sync_dir;
use crate::lock_policy::MutexRecover;
use crate::log::Log;
use crate::recovery::RecoveryMode;
use crate::recovery_progress::RecoveryProgress;
use crate::topic_partition::TopicPartition;

/// An open, locked data directory. Dropping it releases the lock.
pub struct DataDir {
    path: PathBuf,
    /// `<dir>/.lock`, exclusively locked for as long as this value lives, so a second broker
    /// on the same directory fails at start instead of corrupting it. Never read or written.
    _lock_file: File,
    /// Whether the previous broker left the clean-shutdown marker, which decides how much
    /// recovery `open_log` does.
    was_clean_shutdown: bool,
    /// After an unclean stop, how much of the data to scan the partitions opened so far
    /// hold, for a log line per 10%; `None` after a clean stop. Its lock is taken alone.
    recovery_progress: Mutex<Option<RecoveryProgress>>,
}

impl DataDir {
    /// Opens `path`, creating it if missing, and takes its exclusive lock. Then reads and
    /// removes the clean-shutdown marker, remembering whether it was there, and removes
    /// partition directories a crash left half deleted.
    ///
    /// # Errors
    /// `Locked`, naming the lock file, if another process holds the directory.
    pub fn open(path: &Path) -> Result<DataDir, StorageError> {
        // A directory that does not exist yet, or holds nothing, has nothing to recover.
        let is_new = !path.exists()
            || std::fs::read_dir(path)
                .map_err(io_error(path))?
                .next()
                .is_none();
        if !path.exists() {
            std::fs::create_dir_all(path).map_err(io_error(path))?;
            // So that the partitions about to be created here cannot vanish with their
            // directory in a power loss.
            let parent = path
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty());
            sync_dir(parent.unwrap_or(Path::new(".")))?;
        }
        let lock_path = path.join(LOCK_FILE_NAME);
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StorageError::Locked { path: lock_path }),
            Err(TryLockError::Error(error)) => return Err(io_error(&lock_path)(error)),
        }
        let was_clean_shutdown = take_clean_shutdown_marker(path)? || is_new;
        remove_leftover_delete_dirs(path)?;
        if is_new {
            info!(path = %path.display(), "created data directory");
        } else {
            info!(path = %path.display(), was_clean_shutdown, "opened data directory");
        }
        let recovery_progress = match was_clean_shutdown {
            true => None,
            false => Some(RecoveryProgress::measure(path)?),
        };
        Ok(DataDir {
            path: path.to_path_buf(),
            _lock_file: lock_file,
            was_clean_shutdown,
            recovery_progress: Mutex::new(recovery_progress),
        })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the previous broker on this directory stopped cleanly.
    pub fn was_clean_shutdown(&self) -> bool {
        self.was_clean_shutdown
    }

    /// Every partition with a directory here, sorted. Hidden files, the lock, directories
    /// being deleted and (with a warning) anything else that is not a partition directory
    /// are skipped.
    pub fn list_partitions(&self) -> Result<Vec<(String, i32)>, StorageError> {
        let mut partitions = Vec::new();
        for entry in std::fs::read_dir(&self.path).map_err(io_error(&self.path))? {
            let entry = entry.map_err(io_error(&self.path))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_str().unwrap_or_default();
            if name.starts_with('.') || is_delete_dir_name(name) {
                continue;
            }
            let is_dir = entry.file_type().map_err(io_error(&path))?.is_dir();
            match parse_partition_dir_name(name).filter(|_| is_dir) {
                Some(topic_partition) => {
                    partitions.push((topic_partition.topic, topic_partition.partition))
                }
                None => {
                    warn!(path = %path.display(), "ignoring a stray entry in the data directory")
                }
            }
        }
        partitions.sort();
        Ok(partitions)
    }

    /// Opens a partition's log, creating it if absent. If the previous broker did not stop
    /// cleanly, the log is recovered first (see `recovery`), and every tenth of the data to
    /// scan is logged (see `recovery_progress`). Open each partition once.
    ///
    /// # Errors
    /// `InvalidTopicPartition` for a name that cannot be a directory; I/O errors; a corrupt
    /// checkpoint.
    pub fn open_log(
        &self,
        topic: &str,
        partition: i32,
        config: LogConfig,
    ) -> Result<Log, StorageError> {
        let topic_partition = TopicPartition::new(topic, partition);
        let dir = self.path.join(partition_dir_name(&topic_partition)?);
        let mode = match self.was_clean_shutdown {
            true => RecoveryMode::Clean,
            false => RecoveryMode::Unclean,
        };
        let log = Log::open(dir, topic_partition, config, mode)?;
        if let Some(progress) = self.recovery_progress.lock_or_recover().as_mut() {
            progress.partition_opened(topic, partition);
        }
        Ok(log)
    }

    /// Deletes a partition's files. Its `Log` must have been dropped. The directory is first
    /// renamed to `<topic>-<partition>.<n>-delete` and the rename made durable, so a crash
    /// part-way never leaves a half-deleted partition that looks like a real one; the next
    /// `open` finishes the removal. Deleting a partition that has no directory does nothing.
    pub fn delete_log(&self, topic: &str, partition: i32) -> Result<(), StorageError> {
        let name = partition_dir_name(&TopicPartition::new(topic, partition))?;
        let dir = self.path.join(&name);
        match std::fs::symlink_metadata(&dir) {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(io_error(&dir)(error)),
        }
        let deleted = self.unused_delete_dir(&name);
        std::fs::rename(&dir, &deleted).map_err(io_error(&dir))?;
        sync_dir(&self.path)?;
        std::fs::remove_dir_all(&deleted).map_err(io_error(&deleted))
    }

    fn unused_delete_dir(&self, partition_dir_name: &str) -> PathBuf {
        let mut unique = 0;
        loop {
            let candidate = self.path.join(delete_dir_name(partition_dir_name, unique));
            if !candidate.exists() {
                return candidate;
            }
            unique += 1;
        }
    }

    /// Writes the clean-shutdown marker, durably. Call it last at shutdown, after every log
    /// was flushed (or dropped), so the next start may skip recovery.
    pub fn mark_clean_shutdown(&self) -> Result<(), StorageError> {
        let marker = self.path.join(CLEAN_SHUTDOWN_FILE_NAME);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&marker)
            .map_err(io_error(&marker))?;
        file.sync_all().map_err(io_error(&marker))?;
        // The marker counts only once its directory entry is durable.
        sync_dir(&self.path)
    }
}

/// Removes the clean-shutdown marker and says whether it was there.
fn take_clean_shutdown_marker(path: &Path) -> Result<bool, StorageError> {
    let marker = path.join(CLEAN_SHUTDOWN_FILE_NAME);
    match std::fs::remove_file(&marker) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(io_error(&marker)(error)),
    }
    // The removal must be durable before this broker changes any file: otherwise a crash
    // could leave the old marker in place and the next start would skip recovery.
    sync_dir(path)?;
    Ok(true)
}

/// Finishes deletions a crash interrupted.
fn remove_leftover_delete_dirs(path: &Path) -> Result<(), StorageError> {
    for entry in std::fs::read_dir(path).map_err(io_error(path))? {
        let entry = entry.map_err(io_error(path))?;
        let name = entry.file_name();
        let is_dir = entry.file_type().map_err(io_error(path))?.is_dir();
        if is_dir && is_delete_dir_name(name.to_str().unwrap_or_default()) {
            let leftover = entry.path();
            warn!(path = %leftover.display(), "removing a partition directory left half deleted");
            std::fs::remove_dir_all(&leftover).map_err(io_error(&leftover))?;
        }
    }
    Ok(())
}
