//! `KStream::process_values`: a user processor that cannot change keys (Kafka Streams'
//! `processValues` with a `FixedKeyProcessor`), so key-based state after it needs no
//! repartition.
//!
//! A [`FixedKeyProcessor`] forwards values only; each goes out with the key of the record
//! being processed. It runs as an ordinary user processor behind an adapter.

use std::marker::PhantomData;
use std::time::Duration;

use crate::builder::Data;
use crate::graph::{Forward, Msg};
use crate::processor_api::{
    Cancellable, Processor, ProcessorContext, ProcessorKeyValueStore, PunctuationType, Record,
    RecordMetadata,
};
use crate::processor_stores::{ProcessorSessionStore, ProcessorWindowStore};
use crate::serdes::SerdeError;
use crate::store::query::{KeyValueStoreHandle, SessionStoreHandle, WindowStoreHandle};
use crate::stream::KStream;

/// A user operator that keeps each record's key, created per task by the supplier given
/// to [`KStream::process_values`]. Errors drop the record as [`Processor::process`]'s do.
pub trait FixedKeyProcessor<K, VIn, VOut>: Send + 'static {
    /// Called once per task, after its stores were restored and before its first record.
    fn init(&mut self, context: &mut FixedKeyProcessorContext<'_, '_, K, VOut>) {
        let _ = context;
    }

    /// Handles one record.
    ///
    /// # Errors
    /// When the record cannot be handled; it is then dropped and counted.
    fn process(
        &mut self,
        context: &mut FixedKeyProcessorContext<'_, '_, K, VOut>,
        record: Record<'_, K, VIn>,
    ) -> Result<(), SerdeError>;
}

/// What a [`FixedKeyProcessor`] sees of its task: a [`ProcessorContext`] whose forwards
/// keep the record's key.
pub struct FixedKeyProcessorContext<'a, 'c, K, VOut> {
    inner: &'a mut ProcessorContext<'c, K, VOut>,
}

impl<K: Send + Sync + 'static, VOut: Send + Sync + 'static>
    FixedKeyProcessorContext<'_, '_, K, VOut>
{
    /// Forwards `value` with the key, timestamp and headers of the record being processed.
    /// In `init` and punctuations there is no such record: nothing is forwarded (Kafka
    /// Streams' fixed-key punctuations cannot forward either) and a warning is logged.
    pub fn forward(&mut self, value: VOut) {
        let timestamp_ms = self.inner.timestamp_ms;
        self.forward_at(value, timestamp_ms);
    }

    /// Forwards `value` with the record's key and headers and the timestamp `timestamp_ms`.
    pub fn forward_at(&mut self, value: VOut, timestamp_ms: i64) {
        let Some(key) = self.inner.current_key.clone() else {
            tracing::warn!(
                processor = %self.inner.node_name,
                "a fixed-key processor forwarded outside a record; nothing forwarded"
            );
            return;
        };
        let msg = Msg {
            key: Some(key),
            value: Some(std::sync::Arc::new(value)),
            timestamp_ms,
            headers: self.inner.headers.clone(),
        };
        self.inner.forwards.push(Forward {
            child_index: None,
            msg,
        });
    }

    /// The record's topic, partition and offset; `None` in `init` and punctuations.
    pub fn record_metadata(&self) -> Option<RecordMetadata<'_>> {
        self.inner.record_metadata()
    }

    /// The timestamp of the record being processed (in a punctuation: its time).
    pub fn timestamp_ms(&self) -> i64 {
        self.inner.timestamp_ms()
    }

    /// The task's stream time, -1 before any record.
    pub fn stream_time_ms(&self) -> i64 {
        self.inner.stream_time_ms()
    }

    /// The wall-clock time, in ms since the epoch (the test driver's mocked clock).
    pub fn wall_clock_ms(&self) -> i64 {
        self.inner.wall_clock_ms()
    }

    /// Schedules `callback` every `interval` on `kind`'s clock, as
    /// [`ProcessorContext::schedule`] does; it may use stores but not forward.
    ///
    /// # Panics
    /// If `interval` is under a millisecond.
    pub fn schedule(
        &mut self,
        interval: Duration,
        kind: PunctuationType,
        mut callback: impl FnMut(
            &mut FixedKeyProcessorContext<'_, '_, K, VOut>,
            i64,
        ) -> Result<(), SerdeError>
        + Send
        + 'static,
    ) -> Cancellable {
        self.inner.schedule(interval, kind, move |inner, time_ms| {
            callback(&mut FixedKeyProcessorContext { inner }, time_ms)
        })
    }

    /// The key-value store `handle` names; see [`ProcessorContext::key_value_store`].
    pub fn key_value_store<'s, KS, VS>(
        &'s mut self,
        handle: &'s KeyValueStoreHandle<KS, VS>,
    ) -> ProcessorKeyValueStore<'s, KS, VS> {
        self.inner.key_value_store(handle)
    }

    /// The window store `handle` names; see [`ProcessorContext::window_store`].
    pub fn window_store<'s, KS, VS>(
        &'s mut self,
        handle: &'s WindowStoreHandle<KS, VS>,
    ) -> ProcessorWindowStore<'s, KS, VS> {
        self.inner.window_store(handle)
    }

    /// The session store `handle` names; see [`ProcessorContext::session_store`].
    pub fn session_store<'s, KS, VS>(
        &'s mut self,
        handle: &'s SessionStoreHandle<KS, VS>,
    ) -> ProcessorSessionStore<'s, KS, VS> {
        self.inner.session_store(handle)
    }
}

/// A [`FixedKeyProcessor`] as a [`Processor`] whose output key is its input key.
struct FixedKey<P, V> {
    processor: P,
    _types: PhantomData<fn(V)>,
}

impl<K, VIn, VOut, P> Processor<K, VIn, K, VOut> for FixedKey<P, VIn>
where
    K: Send + Sync + 'static,
    VIn: Send + Sync + 'static,
    VOut: Send + Sync + 'static,
    P: FixedKeyProcessor<K, VIn, VOut>,
{
    fn init(&mut self, context: &mut ProcessorContext<'_, K, VOut>) {
        self.processor
            .init(&mut FixedKeyProcessorContext { inner: context });
    }

    fn process(
        &mut self,
        context: &mut ProcessorContext<'_, K, VOut>,
        record: Record<'_, K, VIn>,
    ) -> Result<(), SerdeError> {
        self.processor
            .process(&mut FixedKeyProcessorContext { inner: context }, record)
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    /// Runs a user [`FixedKeyProcessor`] on every record (Kafka Streams'
    /// `processValues`): like [`KStream::process`], with the same stores, but the
    /// processor forwards values only, under the record's key, so a later `group_by_key`
    /// or join repartitions only if the stream was already re-keyed before it.
    pub fn process_values<VOut: Data, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
        stores: &[&str],
    ) -> KStream<K, VOut>
    where
        P: FixedKeyProcessor<K, V, VOut>,
    {
        let adapted = move || FixedKey {
            processor: supplier(),
            _types: PhantomData,
        };
        let node = crate::stream_process::add_processor_node(self, adapted, stores);
        KStream::new(self.graph.clone(), node, self.key_changed)
    }
}
