//! The workspace's lock-poisoning policy, as `riffle_storage::MutexRecover` and
//! `RwLockRecover` define and explain it: a lock a panic poisoned is recovered, with one
//! warning, because the panic is already reported and confined to its task, and critical
//! sections check before they mutate so the data is whole. This crate does not depend on
//! riffle-storage, so it keeps this copy, with the same names.

use std::panic::Location;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tracing::warn;

/// Taking a [`Mutex`] under the workspace's poisoning policy (see the module doc).
pub(crate) trait MutexRecover<T> {
    /// Locks; if a panic poisoned the mutex, logs it once and returns the data as it is.
    fn lock_or_recover(&self) -> MutexGuard<'_, T>;
}

/// Taking a [`RwLock`] under the workspace's poisoning policy (see the module doc).
pub(crate) trait RwLockRecover<T> {
    /// Read-locks; if a panic poisoned the lock, logs it once and returns the data as it is.
    fn read_or_recover(&self) -> RwLockReadGuard<'_, T>;

    /// Write-locks; if a panic poisoned the lock, logs it once and returns the data as it is.
    fn write_or_recover(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T> MutexRecover<T> for Mutex<T> {
    #[track_caller]
    fn lock_or_recover(&self) -> MutexGuard<'_, T> {
        // Taken here: a closure does not see its caller's location.
        let caller = Location::caller();
        self.lock().unwrap_or_else(|poisoned| {
            warn_recovered(caller);
            self.clear_poison();
            poisoned.into_inner()
        })
    }
}

impl<T> RwLockRecover<T> for RwLock<T> {
    #[track_caller]
    fn read_or_recover(&self) -> RwLockReadGuard<'_, T> {
        // Taken here: a closure does not see its caller's location.
        let caller = Location::caller();
        self.read().unwrap_or_else(|poisoned| {
            warn_recovered(caller);
            self.clear_poison();
            poisoned.into_inner()
        })
    }

    #[track_caller]
    fn write_or_recover(&self) -> RwLockWriteGuard<'_, T> {
        // Taken here: a closure does not see its caller's location.
        let caller = Location::caller();
        self.write().unwrap_or_else(|poisoned| {
            warn_recovered(caller);
            self.clear_poison();
            poisoned.into_inner()
        })
    }
}

fn warn_recovered(location: &Location<'_>) {
    warn!(%location, "a panic poisoned this lock earlier; carrying on with its data");
}
