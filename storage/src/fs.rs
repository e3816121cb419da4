//! Small file-system steps whose durability matters: fsyncing a directory so that creating,
//! renaming or removing an entry in it survives power loss.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::error::{StorageError, io_error};

/// Fsyncs a directory, making the creation, rename or removal of its entries durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error(dir))
}

/// Creates `dir` (one level) if it is missing and makes its creation durable by fsyncing the
/// parent. Returns whether it was created.
pub(crate) fn create_dir_durably(dir: &Path) -> Result<bool, StorageError> {
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(error) => return Err(io_error(dir)(error)),
    }
    if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(true)
}
