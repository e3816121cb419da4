//! A store's serdes without their types: how state queries over HTTP turn a key typed in
//! a URL into the bytes the store holds, and stored bytes into JSON.
//!
//! The builder records one [`StoreCodec`] per store where it knows the store's serdes (an
//! aggregation's, a table's, a declared store's); stores the topology keeps for itself
//! (join buffers, suppress buffers) get [`StoreCodec::raw`]: keys as UTF-8 text, values in
//! base64.

use std::sync::Arc;

use crate::serdes::{BytesSerde, SerdeError, SharedSerde};

/// The half of a serde a query needs, for one type it no longer names.
pub(crate) trait ErasedSerde: Send + Sync {
    /// See [`crate::Serde::to_json`].
    fn to_json(&self, store: &str, bytes: &[u8]) -> Option<serde_json::Value>;
    /// See [`crate::Serde::parse_text`].
    fn parse_text(&self, store: &str, text: &str) -> Result<Vec<u8>, SerdeError>;
}

impl<T: 'static> ErasedSerde for SharedSerde<T> {
    fn to_json(&self, store: &str, bytes: &[u8]) -> Option<serde_json::Value> {
        self.as_ref().to_json(store, bytes)
    }
    fn parse_text(&self, store: &str, text: &str) -> Result<Vec<u8>, SerdeError> {
        self.as_ref().parse_text(store, text)
    }
}

/// How one store's keys and values are read and shown.
#[derive(Clone)]
pub(crate) struct StoreCodec {
    pub key: Arc<dyn ErasedSerde>,
    pub value: Arc<dyn ErasedSerde>,
    /// A window store's window size: a window ends `size` after its start. `None` for
    /// other stores, and for window stores whose windows are points (join buffers).
    pub window_size_ms: Option<i64>,
}

impl StoreCodec {
    /// The codec of a store with these serdes.
    pub fn new<K: 'static, V: 'static>(key: SharedSerde<K>, value: SharedSerde<V>) -> StoreCodec {
        StoreCodec {
            key: Arc::new(key),
            value: Arc::new(value),
            window_size_ms: None,
        }
    }

    /// The codec of a window store whose windows last `size_ms`.
    pub fn windowed<K: 'static, V: 'static>(
        key: SharedSerde<K>,
        value: SharedSerde<V>,
        size_ms: i64,
    ) -> StoreCodec {
        StoreCodec {
            window_size_ms: Some(size_ms),
            ..StoreCodec::new(key, value)
        }
    }

    /// For a store whose serdes the builder does not know: keys as the UTF-8 bytes of the
    /// text, values in base64.
    pub fn raw() -> StoreCodec {
        let bytes: SharedSerde<Vec<u8>> = Arc::new(BytesSerde);
        StoreCodec::new(bytes.clone(), bytes)
    }

    /// `bytes` as JSON, or `{"base64": ...}` where the serde gives them no JSON form.
    pub fn show(serde: &dyn ErasedSerde, store: &str, bytes: &[u8]) -> serde_json::Value {
        use base64::Engine as _;
        match serde.to_json(store, bytes) {
            Some(json) => json,
            None => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
                serde_json::json!({ "base64": encoded })
            }
        }
    }
}
