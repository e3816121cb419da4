//! The workspace's one policy for poisoned locks: recover, log once, carry on.
//!
//! A `std::sync` lock is poisoned when a thread panics while holding it. A panic is already a
//! bug, reported by the panic hook, and the broker confines it: tokio ends the one task that
//! panicked, so one request fails or one connection closes. Treating the poisoned lock as
//! fatal too (`.lock().expect(..)`) would make every later user of that partition,
//! coordinator or cache panic in turn, until a restart: a permanent outage for every client
//! of it, in exchange for no information the first panic did not give.
//!
//! So every `Mutex` and `RwLock` in the workspace is taken through these traits: a poisoned
//! lock yields its data as the panicking thread left it, with one warning naming the place
//! that noticed, and the poison is cleared so the warning is not repeated on every call.
//!
//! That is only safe because critical sections **check before they mutate**: assertions and
//! fallible steps come before the first write to guarded data, and a change in several
//! steps publishes its result last, so a panic leaves the data as it was or whole. Where a
//! section cannot promise that and its data can be rebuilt, it repairs on recovery
//! ([`MutexRecover::lock_or_repair`]); where it cannot be rebuilt, the section records
//! first that it is in the middle of something (see `CompactionState::halted`).
//!
//! `riffle-processor` does not depend on this crate; it keeps a copy of these traits with the
//! same names in its `lock_policy` module.

use std::panic::Location;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tracing::warn;

/// Taking a [`Mutex`] under the workspace's poisoning policy (see the module doc).
pub trait MutexRecover<T> {
    /// Locks; if a panic poisoned the mutex, logs it once and returns the data as it is.
    fn lock_or_recover(&self) -> MutexGuard<'_, T>;

    /// Locks; if a panic poisoned the mutex, logs it once and calls `repair` on the data
    /// before returning it: for data derived from something durable, which `repair` marks
    /// to be rebuilt.
    fn lock_or_repair(&self, repair: impl FnOnce(&mut T)) -> MutexGuard<'_, T>;

    /// The data, through an exclusive borrow (no locking); a poisoned mutex as
    /// `lock_or_recover` treats it.
    fn get_mut_or_recover(&mut self) -> &mut T;
}

/// Taking a [`RwLock`] under the workspace's poisoning policy (see the module doc).
pub trait RwLockRecover<T> {
    /// Read-locks; if a panic poisoned the lock, logs it once and returns the data as it is.
    fn read_or_recover(&self) -> RwLockReadGuard<'_, T>;

    /// Write-locks; if a panic poisoned the lock, logs it once and returns the data as it is.
    fn write_or_recover(&self) -> RwLockWriteGuard<'_, T>;

    /// The data, through an exclusive borrow (no locking); a poisoned lock as
    /// `write_or_recover` treats it.
    fn get_mut_or_recover(&mut self) -> &mut T;
}

impl<T> MutexRecover<T> for Mutex<T> {
    #[track_caller]
    fn lock_or_recover(&self) -> MutexGuard<'_, T> {
        self.lock_or_repair(|_| {})
    }

    #[track_caller]
    fn lock_or_repair(&self, repair: impl FnOnce(&mut T)) -> MutexGuard<'_, T> {
        match self.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                warn_recovered(Location::caller());
                let mut guard = poisoned.into_inner();
                self.clear_poison();
                repair(&mut guard);
                guard
            }
        }
    }

    #[track_caller]
    fn get_mut_or_recover(&mut self) -> &mut T {
        if self.is_poisoned() {
            warn_recovered(Location::caller());
            self.clear_poison();
        }
        self.get_mut().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> RwLockRecover<T> for RwLock<T> {
    #[track_caller]
    fn read_or_recover(&self) -> RwLockReadGuard<'_, T> {
        match self.read() {
            Ok(guard) => guard,
            Err(poisoned) => {
                warn_recovered(Location::caller());
                self.clear_poison();
                poisoned.into_inner()
            }
        }
    }

    #[track_caller]
    fn write_or_recover(&self) -> RwLockWriteGuard<'_, T> {
        match self.write() {
            Ok(guard) => guard,
            Err(poisoned) => {
                warn_recovered(Location::caller());
                let guard = poisoned.into_inner();
                self.clear_poison();
                guard
            }
        }
    }

    #[track_caller]
    fn get_mut_or_recover(&mut self) -> &mut T {
        if self.is_poisoned() {
            warn_recovered(Location::caller());
            self.clear_poison();
        }
        self.get_mut().unwrap_or_else(PoisonError::into_inner)
    }
}

fn warn_recovered(location: &Location<'_>) {
    warn!(%location, "a panic poisoned this lock earlier; carrying on with its data");
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, RwLock};

    use super::*;

    /// A mutex poisoned by a panic still yields the data, is no longer poisoned afterwards,
    /// and `lock_or_repair` repairs only when it was.
    #[test]
    fn a_poisoned_mutex_yields_its_data_and_is_repaired_once() {
        let mutex = Arc::new(Mutex::new(1));
        let panicking = Arc::clone(&mutex);
        let panicked = std::thread::spawn(move || {
            let mut value = panicking.lock_or_recover();
            *value = 2;
            panic!("poison it");
        })
        .join();
        assert!(panicked.is_err());
        assert!(mutex.is_poisoned());
        *mutex.lock_or_repair(|value| *value += 10) += 100;
        assert!(!mutex.is_poisoned());
        assert_eq!(*mutex.lock_or_repair(|value| *value = 0), 112);
    }

    /// `get_mut_or_recover` reaches a poisoned mutex's and lock's data and clears the poison.
    #[test]
    fn get_mut_recovers_poisoned_locks() {
        let mut mutex = Mutex::new(1);
        let mut lock = RwLock::new(1);
        let panicked = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let _mutex = mutex.lock_or_recover();
                    let _lock = lock.write_or_recover();
                    panic!("poison them");
                })
                .join()
        });
        assert!(panicked.is_err());
        *mutex.get_mut_or_recover() += 1;
        *lock.get_mut_or_recover() += 1;
        assert!(!mutex.is_poisoned());
        assert!(!lock.is_poisoned());
        assert_eq!((*mutex.lock_or_recover(), *lock.read_or_recover()), (2, 2));
    }

    /// A poisoned `RwLock` still reads and writes, and is no longer poisoned afterwards.
    #[test]
    fn a_poisoned_rwlock_reads_and_writes() {
        let lock = Arc::new(RwLock::new(vec![1]));
        let panicking = Arc::clone(&lock);
        let panicked = std::thread::spawn(move || {
            panicking.write_or_recover().push(2);
            let _guard = panicking.write_or_recover();
            panic!("poison it");
        })
        .join();
        assert!(panicked.is_err());
        assert!(lock.is_poisoned());
        assert_eq!(*lock.read_or_recover(), [1, 2]);
        assert!(!lock.is_poisoned());
        lock.write_or_recover().push(3);
        assert_eq!(*lock.read_or_recover(), [1, 2, 3]);
    }
}
