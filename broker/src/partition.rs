//! One partition of a topic: its log, its idempotent-producer state, and the fetches
//! waiting for it to grow.

use std::sync::{Arc, Mutex, Weak};

use riffle_storage::Log;
use tokio::sync::Notify;

use crate::producer_state::ProducerStateTable;

/// A partition this broker leads (on a single node: every partition).
pub struct Partition {
    /// The topic's name.
    pub topic: String,
    /// The partition index.
    pub index: i32,
    /// The partition's log on disk.
    pub log: Log,
    /// Serialises "check the producer's sequence, then append": the two must be atomic or
    /// two retries of one batch could both pass the check. Held only for the check, the
    /// append (a write to the page cache) and the state update; never across an await.
    pub append_lock: Mutex<ProducerStateTable>,
    /// Fetches waiting for this partition to grow. Each is woken once per append; dead
    /// entries are dropped then. A std Mutex: held for a push or a drain, never across an
    /// await.
    waiters: Mutex<Vec<Weak<Notify>>>,
}

impl Partition {
    /// A partition over an opened log.
    pub fn new(topic: String, index: i32, log: Log) -> Self {
        Partition {
            topic,
            index,
            log,
            append_lock: Mutex::new(ProducerStateTable::default()),
            waiters: Mutex::new(Vec::new()),
        }
    }

    /// Registers a fetch to be woken at the next append.
    pub fn register_waiter(&self, waiter: &Arc<Notify>) {
        let mut waiters = self
            .waiters
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        waiters.retain(|weak| weak.strong_count() > 0);
        waiters.push(Arc::downgrade(waiter));
    }

    /// Wakes every fetch waiting on this partition; called after each append.
    pub fn wake_waiters(&self) {
        let waiters = {
            let mut waiters = self
                .waiters
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            std::mem::take(&mut *waiters)
        };
        for waiter in waiters.iter().filter_map(Weak::upgrade) {
            // notify_one stores a permit if the fetch is not awaiting yet, so a wake-up
            // between its last read and its await is not lost.
            waiter.notify_one();
        }
    }
}
