//! One partition of a topic: its log, its idempotent-producer state, and the fetches
//! waiting for it to grow.

use std::sync::{Arc, Mutex, Weak};

use riffle_protocol::record::batches;
use riffle_storage::{FirstBatch, Log, StorageError};
use tokio::sync::{Notify, oneshot};
use tracing::info;

use crate::producer_state::{BatchSequence, ProducerStateTable};

/// How far back from the log end the producer state is rebuilt after a restart, in
/// offsets. Producers whose last batch is older than this are forgotten and get
/// UNKNOWN_PRODUCER_ID on their next batch, which clients handle by resetting.
pub const PRODUCER_STATE_REBUILD_MAX_OFFSETS: i64 = 10_000;
/// The rebuild reads the log in chunks of this size.
const PRODUCER_STATE_REBUILD_CHUNK_BYTES: usize = 1024 * 1024;
/// The most the rebuild reads before giving up, so one partition of huge batches cannot
/// stall its first produce for long.
const PRODUCER_STATE_REBUILD_MAX_BYTES: usize = 64 * 1024 * 1024;

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
    /// acks=all requests waiting for an fsync, and whether a blocking task is running fsyncs
    /// for them. A std Mutex: held for a push or a drain, never across an await or an fsync.
    sync_queue: Mutex<SyncQueue>,
}

/// What `Partition::request_sync` answers: `Err` with a message if the fsync failed.
pub type SyncOutcome = Result<(), String>;

/// The fsync requests of one partition.
#[derive(Default)]
struct SyncQueue {
    /// Each request's last offset and where to send the outcome. Bounded by the requests in
    /// flight: `max_in_flight_requests` per connection, and `max_connections`.
    waiting: Vec<(i64, oneshot::Sender<SyncOutcome>)>,
    /// Whether a blocking task is running fsyncs; it drains `waiting` until it is empty.
    running: bool,
}

/// Ends a sync task's turn if the fsync panicked: the queued requests are dropped (their
/// receivers see an error) and the next request starts a new task. A task that ends normally
/// clears `running` itself, under the same lock as its check that nothing is queued.
struct SyncTaskGuard<'a>(&'a Mutex<SyncQueue>);

impl Drop for SyncTaskGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut queue = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
            queue.running = false;
            queue.waiting.clear();
        }
    }
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
            sync_queue: Mutex::new(SyncQueue::default()),
        }
    }

    /// Asks for an fsync covering every offset up to `last_offset`; the receiver gets the
    /// outcome. At most one blocking task per partition runs fsyncs: requests that arrive
    /// while it runs queue up and share its next fsync, so a busy partition costs one
    /// hand-off to the blocking pool per fsync rather than one per request.
    pub fn request_sync(self: &Arc<Self>, last_offset: i64) -> oneshot::Receiver<SyncOutcome> {
        let (sender, receiver) = oneshot::channel();
        let start_task = {
            let mut queue = self.lock_sync_queue();
            queue.waiting.push((last_offset, sender));
            !std::mem::replace(&mut queue.running, true)
        };
        if start_task {
            let partition = Arc::clone(self);
            tokio::task::spawn_blocking(move || partition.run_syncs());
        }
        receiver
    }

    /// The sync task: fsyncs through the largest offset queued, answers every request that
    /// fsync covered, and repeats until no request is left.
    fn run_syncs(&self) {
        let _guard = SyncTaskGuard(&self.sync_queue);
        loop {
            let waiting = {
                let mut queue = self.lock_sync_queue();
                if queue.waiting.is_empty() {
                    // Under the lock: a request queued after this sees `running` false and
                    // starts the next task.
                    queue.running = false;
                    return;
                }
                std::mem::take(&mut queue.waiting)
            };
            let through = waiting
                .iter()
                .map(|(offset, _)| *offset)
                .max()
                .expect("the queue was not empty");
            let outcome = self
                .log
                .sync_through(through)
                .map_err(|error| error.to_string());
            for (_, sender) in waiting {
                // A request whose connection went away no longer listens; that is fine.
                let _ = sender.send(outcome.clone());
            }
        }
    }

    fn lock_sync_queue(&self) -> std::sync::MutexGuard<'_, SyncQueue> {
        self.sync_queue
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Rebuilds the idempotent-producer table from the log's tail, once per start.
    ///
    /// Done lazily, on the partition's first idempotent produce, so that start-up does
    /// not read every partition. Called with the append lock held: no append can slip in
    /// between the scan and the first check.
    pub fn rebuild_producer_state(
        &self,
        producers: &mut ProducerStateTable,
    ) -> Result<(), StorageError> {
        producers.mark_rebuilt();
        let end_offset = self.log.next_offset();
        let mut offset = self
            .log
            .log_start_offset()
            .max(end_offset - PRODUCER_STATE_REBUILD_MAX_OFFSETS);
        let mut read_bytes = 0;
        while offset < end_offset && read_bytes < PRODUCER_STATE_REBUILD_MAX_BYTES {
            let chunk = self.log.read(
                offset,
                PRODUCER_STATE_REBUILD_CHUNK_BYTES,
                FirstBatch::AlwaysWhole,
            )?;
            if chunk.is_empty() {
                break;
            }
            read_bytes += chunk.len();
            for batch in batches(chunk) {
                // The log holds only batches that passed validation; a bad one ends the scan.
                let Ok(batch) = batch else { return Ok(()) };
                offset = batch.last_offset() + 1;
                if batch.producer_id() >= 0 && !batch.is_control() {
                    let sequence = BatchSequence {
                        producer_id: batch.producer_id(),
                        producer_epoch: batch.producer_epoch(),
                        base_sequence: batch.base_sequence(),
                        last_sequence: batch.last_sequence(),
                    };
                    producers.record(sequence, batch.base_offset());
                }
            }
        }
        info!(topic = %self.topic, partition = self.index, read_bytes, "producer state rebuilt from the log");
        Ok(())
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

#[cfg(test)]
mod tests {
    use riffle_protocol::record::{Compression, RecordBatchBuilder};
    use riffle_storage::{DataDir, LogConfig};

    use super::*;

    /// Many acks=all requests racing on one partition, each appending and then asking for an
    /// fsync, all get `Ok`: none is dropped between a sync task's last check of its queue and
    /// its exit, and each is answered only once its offset is durable.
    #[test]
    fn concurrent_sync_requests_are_all_answered() {
        let dir = tempfile::Builder::new()
            .prefix("concurrent_sync_requests_are_all_answered")
            .tempdir()
            .expect("temp dir");
        let data_dir = DataDir::open(dir.path()).expect("open data dir");
        let log = data_dir
            .open_log("events", 0, LogConfig::default())
            .expect("open log");
        let partition = Arc::new(Partition::new("events".into(), 0, log));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let requests: Vec<_> = (0..400)
                .map(|_| {
                    let partition = Arc::clone(&partition);
                    tokio::spawn(async move {
                        let mut builder = RecordBatchBuilder::new(Compression::None);
                        builder.append(1_000, None, Some(b"value"), &[]);
                        let batch = builder.build().expect("a valid batch");
                        let outcome = partition.log.append(&batch, 0);
                        let last_offset = outcome.expect("append").last_offset;
                        partition.request_sync(last_offset).await
                    })
                })
                .collect();
            for request in requests {
                let outcome = request.await.expect("request task");
                assert_eq!(outcome, Ok(Ok(())));
            }
        });
    }
}
