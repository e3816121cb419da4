//! The Processor API: operators written by the user, as Kafka Streams 3.x's
//! `KStream#process(ProcessorSupplier, String... stateStoreNames)`.
//!
//! A [`Processor`] gets each record with a [`ProcessorContext`]: forward results to the
//! next operators, read the record's metadata, read and write the key-value stores
//! connected to it (declared with [`crate::StreamsBuilder::add_key_value_store`],
//! changelogged and restored like the DSL's stores), and schedule punctuations on stream
//! time or wall-clock time.
//!
//! Punctuation follows Kafka Streams' `PunctuationQueue` and `PunctuationSchedule`:
//!
//! - **Stream time** punctuations are aligned to 0: the first is due at 0, so it fires
//!   after the first record; each fires once stream time reaches its due time, with the
//!   current stream time, after the record that advanced it. A jump over several intervals
//!   fires once (at most once per advance) and the next one is due at the first multiple of
//!   the interval past stream time: missed punctuations are skipped, not caught up.
//! - **Wall-clock** punctuations are due `interval` after the processor was initialized,
//!   then every `interval`, with missed ones skipped the same way; the runtime checks them
//!   once per processing round, the test driver on `advance_wall_clock`.
//!
//! Records forwarded from a punctuation carry the punctuation time as their timestamp
//! (as Kafka Streams' record context during punctuation does) and no headers.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::graph::{Forward, Msg, Payload};
use crate::processor_stores::ProcessorStores;
use crate::record::{Headers, InputRecord, OutputRecord};
use crate::serdes::SerdeError;
use crate::store::KeyValueStore;
use crate::store::query::KeyValueStoreHandle;

/// A user-written operator, created per task by the supplier given to
/// [`crate::KStream::process`].
///
/// An error from [`Processor::process`] (a serde failure of a store access, say) drops
/// the record: it is logged and counted as [`crate::DropReason::Deserialization`], as the
/// DSL's aggregations count values they cannot serialize.
pub trait Processor<KIn, VIn, KOut, VOut>: Send + 'static {
    /// Called once per task, after its stores were restored and before its first record:
    /// the place to schedule punctuations.
    fn init(&mut self, context: &mut ProcessorContext<'_, KOut, VOut>) {
        let _ = context;
    }

    /// Handles one record.
    ///
    /// # Errors
    /// When the record cannot be handled; it is then dropped and counted.
    fn process(
        &mut self,
        context: &mut ProcessorContext<'_, KOut, VOut>,
        record: Record<'_, KIn, VIn>,
    ) -> Result<(), SerdeError>;
}

/// The record a [`Processor`] handles.
#[derive(Debug)]
pub struct Record<'r, K, V> {
    /// The key.
    pub key: &'r K,
    /// The value.
    pub value: &'r V,
    /// Its timestamp (event time).
    pub timestamp_ms: i64,
    /// Its headers.
    pub headers: &'r Headers,
}

/// Where the record being processed was read: the task's input topic (a repartition
/// topic for sub-topologies behind one), partition and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata<'r> {
    /// The topic.
    pub topic: &'r str,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
}

/// Which clock a punctuation follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PunctuationType {
    /// The task's stream time: advanced by record timestamps only.
    StreamTime,
    /// The wall clock of the runtime (the test driver's mocked one in tests).
    WallClockTime,
}

/// Cancels a scheduled punctuation; returned by [`ProcessorContext::schedule`].
#[derive(Debug, Clone)]
pub struct Cancellable {
    cancelled: Arc<AtomicBool>,
}

impl Cancellable {
    /// Stops the punctuation: it does not fire again.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

/// A punctuation's callback: the context, and the time it fires at (stream time or
/// wall-clock time).
pub type Punctuator<KOut, VOut> =
    Box<dyn FnMut(&mut ProcessorContext<'_, KOut, VOut>, i64) -> Result<(), SerdeError> + Send>;

/// One scheduled punctuation.
pub(crate) struct Schedule<KOut, VOut> {
    pub kind: PunctuationType,
    pub interval_ms: i64,
    /// When it is due next.
    pub next_ms: i64,
    pub callback: Punctuator<KOut, VOut>,
    pub cancelled: Arc<AtomicBool>,
}

impl<KOut, VOut> Schedule<KOut, VOut> {
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Whether it is due at `time_ms` on clock `kind`.
    pub fn is_due(&self, kind: PunctuationType, time_ms: i64) -> bool {
        self.kind == kind && !self.is_cancelled() && self.next_ms <= time_ms
    }

    /// Moves the due time past `time_ms`, the time it just fired at: the next multiple of
    /// the interval on its grid, skipping any it missed (Kafka Streams'
    /// `PunctuationSchedule.next`).
    pub fn advance(&mut self, time_ms: i64) {
        let missed = time_ms.saturating_sub(self.next_ms) / self.interval_ms;
        let intervals = missed.saturating_add(1);
        self.next_ms = self
            .next_ms
            .saturating_add(intervals.saturating_mul(self.interval_ms));
        debug_assert!(
            self.next_ms > time_ms,
            "the next punctuation is in the future"
        );
    }
}

/// What a [`Processor`] (or a punctuation) sees of its task.
pub struct ProcessorContext<'c, KOut, VOut> {
    pub(crate) outputs: &'c mut Vec<OutputRecord>,
    pub(crate) forwards: &'c mut Vec<Forward>,
    pub(crate) stores: &'c ProcessorStores,
    pub(crate) new_schedules: &'c mut Vec<Schedule<KOut, VOut>>,
    pub(crate) source: Option<&'c InputRecord>,
    /// The timestamp forwarded records and store writes carry.
    pub(crate) timestamp_ms: i64,
    pub(crate) headers: Headers,
    /// The key of the record being processed; `None` in `init` and punctuations.
    pub(crate) current_key: Option<Payload>,
    pub(crate) stream_time_ms: i64,
    pub(crate) wall_clock_ms: i64,
    pub(crate) node_name: &'c str,
    pub(crate) _types: PhantomData<fn(KOut, VOut)>,
}

impl<KOut: Send + Sync + 'static, VOut: Send + Sync + 'static> ProcessorContext<'_, KOut, VOut> {
    /// Forwards `key` and `value` to the next operators, with the timestamp and headers of
    /// the record being processed (in a punctuation: the punctuation time, no headers).
    pub fn forward(&mut self, key: KOut, value: VOut) {
        self.forward_at(key, value, self.timestamp_ms);
    }

    /// Forwards `key` and `value` with the timestamp `timestamp_ms`.
    pub fn forward_at(&mut self, key: KOut, value: VOut, timestamp_ms: i64) {
        let msg = Msg::new(key, value, timestamp_ms, self.headers.clone());
        self.forwards.push(Forward {
            child_index: None,
            msg,
        });
    }

    /// The record's topic, partition and offset; `None` in `init` and punctuations.
    pub fn record_metadata(&self) -> Option<RecordMetadata<'_>> {
        self.source.map(|record| RecordMetadata {
            topic: &record.topic,
            partition: record.partition,
            offset: record.offset,
        })
    }

    /// The timestamp of the record being processed (in a punctuation: its time).
    pub fn timestamp_ms(&self) -> i64 {
        self.timestamp_ms
    }

    /// The task's stream time: the largest record timestamp it has processed, -1 before
    /// any.
    pub fn stream_time_ms(&self) -> i64 {
        self.stream_time_ms
    }

    /// The wall-clock time, in ms since the epoch (the test driver's mocked clock).
    pub fn wall_clock_ms(&self) -> i64 {
        self.wall_clock_ms
    }

    /// Schedules `callback` every `interval` on `kind`'s clock (see the module docs for
    /// when it fires); keep the returned [`Cancellable`] to stop it.
    ///
    /// # Panics
    /// If `interval` is under a millisecond, as Kafka Streams refuses it.
    pub fn schedule(
        &mut self,
        interval: Duration,
        kind: PunctuationType,
        callback: impl FnMut(&mut ProcessorContext<'_, KOut, VOut>, i64) -> Result<(), SerdeError>
        + Send
        + 'static,
    ) -> Cancellable {
        let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        assert!(interval_ms >= 1, "a punctuation interval is at least 1 ms");
        let next_ms = match kind {
            PunctuationType::StreamTime => 0,
            PunctuationType::WallClockTime => self.wall_clock_ms.saturating_add(interval_ms),
        };
        let cancelled = Arc::new(AtomicBool::new(false));
        self.new_schedules.push(Schedule {
            kind,
            interval_ms,
            next_ms,
            callback: Box::new(callback),
            cancelled: cancelled.clone(),
        });
        Cancellable { cancelled }
    }

    /// The key-value store `handle` names, typed by its serdes.
    ///
    /// # Panics
    /// If the store is not connected to this processor (named in its `process` call).
    pub fn key_value_store<'s, K, V>(
        &'s mut self,
        handle: &'s KeyValueStoreHandle<K, V>,
    ) -> ProcessorKeyValueStore<'s, K, V> {
        let Some(store) = self.stores.key_value.get(&handle.name) else {
            panic!(
                "store {:?} is not connected to processor {}: name it in process(..)",
                handle.name, self.node_name
            );
        };
        ProcessorKeyValueStore {
            store,
            read_only: self.stores.read_only.contains(&handle.name),
            outputs: self.outputs,
            handle,
            timestamp_ms: self.timestamp_ms,
        }
    }
}

/// A processor's typed view of one of its key-value stores. Writes are logged to the
/// store's changelog with the current record's timestamp, so they survive restarts.
pub struct ProcessorKeyValueStore<'s, K, V> {
    store: &'s KeyValueStore,
    /// A table's store, whose changelog is the table's topic: not for processors to write.
    read_only: bool,
    outputs: &'s mut Vec<OutputRecord>,
    handle: &'s KeyValueStoreHandle<K, V>,
    timestamp_ms: i64,
}

impl<K: 'static, V: 'static> ProcessorKeyValueStore<'_, K, V> {
    /// The value at `key`.
    ///
    /// # Errors
    /// When the key does not serialize or the stored value does not deserialize.
    pub fn get(&self, key: &K) -> Result<Option<V>, SerdeError> {
        let key = self.handle.key_serde.serialize(&self.handle.name, key)?;
        self.store
            .get(&key)
            .map(|stored| {
                self.handle
                    .value_serde
                    .deserialize(&self.handle.name, &stored.value)
            })
            .transpose()
    }

    /// Writes `value` at `key`.
    ///
    /// # Errors
    /// When the key or the value does not serialize, or the store is a table's (read-only).
    pub fn put(&mut self, key: &K, value: &V) -> Result<(), SerdeError> {
        self.check_writable()?;
        let key = self.handle.key_serde.serialize(&self.handle.name, key)?;
        let value = self
            .handle
            .value_serde
            .serialize(&self.handle.name, value)?;
        self.store.put(self.outputs, key, value, self.timestamp_ms);
        Ok(())
    }

    /// Deletes `key`.
    ///
    /// # Errors
    /// When the key does not serialize.
    pub fn delete(&mut self, key: &K) -> Result<(), SerdeError> {
        self.check_writable()?;
        let key = self.handle.key_serde.serialize(&self.handle.name, key)?;
        self.store.delete(self.outputs, key, self.timestamp_ms);
        Ok(())
    }

    fn check_writable(&self) -> Result<(), SerdeError> {
        if self.read_only {
            return Err(SerdeError::new(
                &self.handle.name,
                "a table's store is read-only for processors (its changelog is the table's topic)",
            ));
        }
        Ok(())
    }

    /// Every entry, in the order of the key bytes.
    ///
    /// # Errors
    /// When a stored key or value does not deserialize.
    pub fn all(&self) -> Result<Vec<(K, V)>, SerdeError> {
        let name = &self.handle.name;
        self.store
            .range(None, None)
            .into_iter()
            .map(|(key, stored)| {
                let key = self.handle.key_serde.deserialize(name, &key)?;
                let value = self.handle.value_serde.deserialize(name, &stored.value)?;
                Ok((key, value))
            })
            .collect()
    }
}

/// The system clock in ms since the epoch; 0 if it reads before the epoch.
pub(crate) fn system_time_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}
