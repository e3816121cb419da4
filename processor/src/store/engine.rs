//! The embedded storage engine under persistent stores: one fjall database per runtime
//! instance, in `<state dir>/<application id>/`, locked against a second instance.
//!
//! Why fjall (an LSM tree in pure Rust): it measured close to RocksDB on restore-style
//! batched writes and point reads, builds in about half a minute with no C++ toolchain
//! (RocksDB took over ten on the same two cores), and dropping a keyspace is how a window
//! segment expires (README, "State stores on disk", has the figures).
//!
//! Every call here may block on disk: callers run them off the async worker threads.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use super::layout::MAX_KEYSPACE_NAME_BYTES;

/// Block cache of one instance's stores, in bytes: reads of hot keys stay in memory.
pub const STATE_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Each store keyspace's memtable, in bytes, before it is flushed to a table on disk:
/// with the block cache, what bounds the engine's memory (a window store has a keyspace
/// per live segment).
pub const STATE_MEMTABLE_BYTES: u64 = 16 * 1024 * 1024;

/// Background threads for flushes and compactions; the machine runs tasks too.
const ENGINE_WORKER_THREADS: usize = 2;

/// The lock file of an instance's state directory.
pub const STATE_LOCK_FILE_NAME: &str = ".lock";

/// The engine's own folder inside the application's state directory.
const ENGINE_DIR_NAME: &str = "stores";

/// A failure of local state: the state directory, the engine, or a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another instance holds the state directory.
    #[error(
        "state directory {path} is locked: another instance of this application runs on it; give each instance its own state directory"
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A file operation failed.
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// On what.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The storage engine failed.
    #[error("state store engine: {operation}: {message}")]
    Engine {
        /// What was being done.
        operation: String,
        /// The engine's error.
        message: String,
    },
    /// A store's keyspace name would pass the engine's limit.
    #[error(
        "keyspace name '{name}' is longer than {MAX_KEYSPACE_NAME_BYTES} bytes: shorten the store name or keep this store in memory"
    )]
    NameTooLong {
        /// The name.
        name: String,
    },
    /// A suppression buffer configured to shut down when full is full.
    #[error(
        "suppression buffer {store} is full ({limit}) and set to shut down when full: raise its limit or let it emit early"
    )]
    SuppressionBufferFull {
        /// The buffer's store.
        store: String,
        /// The limit it reached, e.g. `max 100 records`.
        limit: String,
    },
    /// A checkpoint file does not parse.
    #[error("checkpoint {path} is unreadable: {reason}")]
    CorruptCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl StateError {
    pub(crate) fn engine(operation: impl Into<String>, error: impl std::fmt::Display) -> Self {
        StateError::Engine {
            operation: operation.into(),
            message: error.to_string(),
        }
    }

    pub(crate) fn io(
        operation: &'static str,
        path: &Path,
    ) -> impl FnOnce(std::io::Error) -> StateError + use<> {
        let path = path.to_path_buf();
        move |source| StateError::Io {
            operation,
            path,
            source,
        }
    }
}

/// One instance's state: the locked directory and the engine in it.
pub struct StateEngine {
    path: PathBuf,
    db: fjall::Database,
    /// Held while the instance runs: the OS drops the lock when the process dies.
    _lock: File,
}

impl std::fmt::Debug for StateEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateEngine")
            .field("path", &self.path)
            .finish()
    }
}

impl StateEngine {
    /// Opens (creating) the state directory `path`, locks it, and opens the engine in it.
    /// Blocks.
    ///
    /// # Errors
    /// [`StateError::Locked`] when another instance holds it; I/O and engine errors.
    pub fn open(path: &Path) -> Result<StateEngine, StateError> {
        std::fs::create_dir_all(path).map_err(StateError::io("create state directory", path))?;
        let lock_path = path.join(STATE_LOCK_FILE_NAME);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(StateError::io("open lock file", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StateError::Locked { path: lock_path }),
            Err(TryLockError::Error(error)) => {
                return Err(StateError::io("lock", &lock_path)(error));
            }
        }
        let engine_path = path.join(ENGINE_DIR_NAME);
        let db = fjall::Database::builder(&engine_path)
            .cache_size(STATE_CACHE_BYTES)
            .worker_threads(ENGINE_WORKER_THREADS)
            // Commits fsync through `persist`; batches between them need not.
            .manual_journal_persist(true)
            .open()
            .map_err(|error| {
                StateError::engine(format!("open {}", engine_path.display()), error)
            })?;
        Ok(StateEngine {
            path: path.to_path_buf(),
            db,
            _lock: lock,
        })
    }

    /// The state directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keyspace `name`, created if missing.
    pub(crate) fn keyspace(&self, name: &str) -> Result<fjall::Keyspace, StateError> {
        if name.len() > MAX_KEYSPACE_NAME_BYTES || name.is_empty() {
            return Err(StateError::NameTooLong {
                name: name.to_string(),
            });
        }
        self.db
            .keyspace(name, || {
                fjall::KeyspaceCreateOptions::default().max_memtable_size(STATE_MEMTABLE_BYTES)
            })
            .map_err(|error| StateError::engine(format!("open keyspace {name}"), error))
    }

    /// Names of every keyspace.
    pub(crate) fn keyspace_names(&self) -> Vec<String> {
        self.db
            .list_keyspace_names()
            .iter()
            .map(|name| AsRef::<str>::as_ref(name).to_string())
            .collect()
    }

    /// Deletes a keyspace and its files.
    pub(crate) fn delete_keyspace(&self, keyspace: fjall::Keyspace) -> Result<(), StateError> {
        self.db
            .delete_keyspace(keyspace)
            .map_err(|error| StateError::engine("delete keyspace", error))
    }

    /// A batch of writes that [`StateEngine::commit`] applies atomically.
    pub(crate) fn batch(&self) -> fjall::OwnedWriteBatch {
        self.db.batch()
    }

    /// Applies `batch` (atomically) without syncing it.
    pub(crate) fn commit(&self, batch: fjall::OwnedWriteBatch) -> Result<(), StateError> {
        batch
            .commit()
            .map_err(|error| StateError::engine("commit batch", error))
    }

    /// Makes every committed batch durable (fsyncs the journal).
    pub(crate) fn persist(&self) -> Result<(), StateError> {
        self.db
            .persist(fjall::PersistMode::SyncAll)
            .map_err(|error| StateError::engine("persist", error))
    }
}
