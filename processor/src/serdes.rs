//! Serdes: how typed keys and values become bytes on topics and in state stores.
//!
//! Each built-in serde writes what the matching Kafka serializer writes, so a topology's
//! output can be read by any client with the usual deserializers: strings are UTF-8,
//! `i64`/`u64`/`i32` are big-endian like Kafka's `LongSerializer`/`IntegerSerializer`, JSON is
//! serde_json.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::window::Windowed;

/// A serialization failure, carrying the topic the bytes were for.
#[derive(Debug, thiserror::Error)]
#[error("serde error on topic {topic}: {message}")]
pub struct SerdeError {
    /// The topic (or store changelog) the bytes came from or were going to.
    pub topic: String,
    /// What went wrong.
    pub message: String,
}

impl SerdeError {
    /// A new error for `topic`.
    pub fn new(topic: &str, message: impl Into<String>) -> SerdeError {
        SerdeError {
            topic: topic.to_string(),
            message: message.into(),
        }
    }
}

/// Turns a `T` into bytes and back. Shared by every task, so it must be `Send + Sync`.
pub trait Serde<T>: Send + Sync + 'static {
    /// The bytes for `value` on `topic`.
    fn serialize(&self, topic: &str, value: &T) -> Result<Vec<u8>, SerdeError>;
    /// The value read from `bytes` on `topic`.
    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<T, SerdeError>;

    /// The value a null key or value stands for, if this type has one. Sources drop records
    /// whose key or value is null unless the serde gives a value here ([`UnitSerde`] does,
    /// so keyless topics can be read as `KStream<(), V>`).
    fn null_value(&self) -> Option<T> {
        None
    }

    /// Bytes for `value`, or `None` to write a null (what [`UnitSerde`] writes for `()`).
    fn serialize_nullable(&self, topic: &str, value: &T) -> Result<Option<Vec<u8>>, SerdeError> {
        self.serialize(topic, value).map(Some)
    }

    /// `bytes` (written by this serde) as JSON, for state queries over HTTP; `None` where
    /// they have no JSON form, and the query shows them in base64 instead (the default, so
    /// a serde of your own shows its bytes until it says how to show its values).
    fn to_json(&self, _topic: &str, _bytes: &[u8]) -> Option<serde_json::Value> {
        None
    }

    /// The bytes of the value `text` spells, for keys given in a query URL: strings as they
    /// are, numbers in decimal, JSON as JSON.
    ///
    /// # Errors
    /// When `text` spells no value, or (the default) this serde reads no text.
    fn parse_text(&self, topic: &str, _text: &str) -> Result<Vec<u8>, SerdeError> {
        Err(SerdeError::new(
            topic,
            "this serde reads no keys from text (it does not implement Serde::parse_text)",
        ))
    }
}

/// `()`, for keyless topics: reads any key (null included) as `()`, writes a null key.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitSerde;

impl Serde<()> for UnitSerde {
    fn serialize(&self, _topic: &str, _value: &()) -> Result<Vec<u8>, SerdeError> {
        Ok(Vec::new())
    }
    fn deserialize(&self, _topic: &str, _bytes: &[u8]) -> Result<(), SerdeError> {
        Ok(())
    }
    fn null_value(&self) -> Option<()> {
        Some(())
    }
    fn serialize_nullable(&self, _topic: &str, _value: &()) -> Result<Option<Vec<u8>>, SerdeError> {
        Ok(None)
    }
    fn to_json(&self, _topic: &str, _bytes: &[u8]) -> Option<serde_json::Value> {
        Some(serde_json::Value::Null)
    }
    fn parse_text(&self, _topic: &str, _text: &str) -> Result<Vec<u8>, SerdeError> {
        Ok(Vec::new())
    }
}

/// A shareable serde, as the topology keeps them.
pub type SharedSerde<T> = Arc<dyn Serde<T>>;

/// Raw bytes, as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerde;

impl Serde<Vec<u8>> for BytesSerde {
    fn serialize(&self, _topic: &str, value: &Vec<u8>) -> Result<Vec<u8>, SerdeError> {
        Ok(value.clone())
    }
    fn deserialize(&self, _topic: &str, bytes: &[u8]) -> Result<Vec<u8>, SerdeError> {
        Ok(bytes.to_vec())
    }
    /// A key typed in a URL is its UTF-8 bytes; values have no JSON form (base64).
    fn parse_text(&self, _topic: &str, text: &str) -> Result<Vec<u8>, SerdeError> {
        Ok(text.as_bytes().to_vec())
    }
}

/// UTF-8 strings; invalid UTF-8 is an error.
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerde;

impl Serde<String> for StringSerde {
    fn serialize(&self, _topic: &str, value: &String) -> Result<Vec<u8>, SerdeError> {
        Ok(value.as_bytes().to_vec())
    }
    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<String, SerdeError> {
        String::from_utf8(bytes.to_vec()).map_err(|error| SerdeError::new(topic, error.to_string()))
    }
    fn to_json(&self, _topic: &str, bytes: &[u8]) -> Option<serde_json::Value> {
        let text = std::str::from_utf8(bytes).ok()?;
        Some(serde_json::Value::String(text.to_string()))
    }
    fn parse_text(&self, _topic: &str, text: &str) -> Result<Vec<u8>, SerdeError> {
        Ok(text.as_bytes().to_vec())
    }
}

/// Any serde-serializable type as JSON.
pub struct JsonSerde<T>(PhantomData<fn() -> T>);

impl<T> JsonSerde<T> {
    /// A JSON serde for `T`.
    pub fn new() -> JsonSerde<T> {
        JsonSerde(PhantomData)
    }
}

impl<T> Default for JsonSerde<T> {
    fn default() -> Self {
        JsonSerde::new()
    }
}

impl<T> Clone for JsonSerde<T> {
    fn clone(&self) -> Self {
        JsonSerde::new()
    }
}

impl<T> Serde<T> for JsonSerde<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    fn serialize(&self, topic: &str, value: &T) -> Result<Vec<u8>, SerdeError> {
        serde_json::to_vec(value).map_err(|error| SerdeError::new(topic, error.to_string()))
    }
    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<T, SerdeError> {
        serde_json::from_slice(bytes).map_err(|error| SerdeError::new(topic, error.to_string()))
    }
    /// Through `T`, so what shows is what the topology reads.
    fn to_json(&self, topic: &str, bytes: &[u8]) -> Option<serde_json::Value> {
        let value = self.deserialize(topic, bytes).ok()?;
        serde_json::to_value(&value).ok()
    }
    /// The text is JSON for a `T` (a string key in quotes), written back as this serde
    /// writes it: the bytes the store holds.
    fn parse_text(&self, topic: &str, text: &str) -> Result<Vec<u8>, SerdeError> {
        let value = self.deserialize(topic, text.as_bytes())?;
        self.serialize(topic, &value)
    }
}

/// Fixed-width big-endian integers and floats, as Kafka's own serializers write them.
macro_rules! big_endian_serde {
    ($name:ident, $type:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl Serde<$type> for $name {
            fn serialize(&self, _topic: &str, value: &$type) -> Result<Vec<u8>, SerdeError> {
                Ok(value.to_be_bytes().to_vec())
            }
            fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<$type, SerdeError> {
                let array = bytes.try_into().map_err(|_| {
                    SerdeError::new(
                        topic,
                        format!(
                            "expected {} bytes, got {}",
                            std::mem::size_of::<$type>(),
                            bytes.len()
                        ),
                    )
                })?;
                Ok(<$type>::from_be_bytes(array))
            }
            fn to_json(&self, topic: &str, bytes: &[u8]) -> Option<serde_json::Value> {
                let value = self.deserialize(topic, bytes).ok()?;
                serde_json::to_value(value)
                    .ok()
                    .filter(|json| !json.is_null())
            }
            fn parse_text(&self, topic: &str, text: &str) -> Result<Vec<u8>, SerdeError> {
                let value: $type = text.trim().parse().map_err(|_| {
                    SerdeError::new(topic, format!("{text:?} is not a {}", stringify!($type)))
                })?;
                self.serialize(topic, &value)
            }
        }
    };
}

big_endian_serde!(
    I64Serde,
    i64,
    "`i64`, 8 bytes big-endian (Kafka's `LongSerializer`)."
);
big_endian_serde!(U64Serde, u64, "`u64`, 8 bytes big-endian.");
big_endian_serde!(
    I32Serde,
    i32,
    "`i32`, 4 bytes big-endian (Kafka's `IntegerSerializer`)."
);
big_endian_serde!(
    F64Serde,
    f64,
    "`f64`, 8 bytes big-endian (Kafka's `DoubleSerializer`)."
);

/// Windowed keys on output topics, in Kafka Streams' layout: `key ‖ start` (i64 BE) for time
/// windows, whose end the reader derives from the size; `key ‖ end ‖ start` for sessions.
pub struct WindowedSerde<K> {
    inner: SharedSerde<K>,
    layout: WindowedLayout,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum WindowedLayout {
    Time { size_ms: i64 },
    Session,
}

const TIMESTAMP_BYTES: usize = 8;

impl<K: 'static> WindowedSerde<K> {
    /// Time windows of `size`: `key ‖ start`. In a topology, a windowed table gives one
    /// with its own size (`WindowedKTable::windowed_key_serde`, or its `to`); this is for
    /// reading a windowed topic elsewhere.
    pub fn time(inner: impl Serde<K>, size: std::time::Duration) -> WindowedSerde<K> {
        let size_ms = i64::try_from(size.as_millis()).unwrap_or(i64::MAX);
        WindowedSerde::time_ms(inner, size_ms)
    }

    pub(crate) fn with_layout(inner: impl Serde<K>, layout: WindowedLayout) -> WindowedSerde<K> {
        WindowedSerde {
            inner: Arc::new(inner),
            layout,
        }
    }

    pub(crate) fn time_ms(inner: impl Serde<K>, size_ms: i64) -> WindowedSerde<K> {
        WindowedSerde {
            inner: Arc::new(inner),
            layout: WindowedLayout::Time { size_ms },
        }
    }

    /// Session windows: `key ‖ end ‖ start`.
    pub fn session(inner: impl Serde<K>) -> WindowedSerde<K> {
        WindowedSerde {
            inner: Arc::new(inner),
            layout: WindowedLayout::Session,
        }
    }
}

impl<K: 'static> Serde<Windowed<K>> for WindowedSerde<K> {
    fn serialize(&self, topic: &str, value: &Windowed<K>) -> Result<Vec<u8>, SerdeError> {
        let mut bytes = self.inner.serialize(topic, &value.key)?;
        match self.layout {
            WindowedLayout::Time { .. } => bytes.extend_from_slice(&value.start_ms.to_be_bytes()),
            WindowedLayout::Session => {
                bytes.extend_from_slice(&value.end_ms.to_be_bytes());
                bytes.extend_from_slice(&value.start_ms.to_be_bytes());
            }
        }
        Ok(bytes)
    }

    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<Windowed<K>, SerdeError> {
        let suffix_bytes = match self.layout {
            WindowedLayout::Time { .. } => TIMESTAMP_BYTES,
            WindowedLayout::Session => 2 * TIMESTAMP_BYTES,
        };
        let Some(key_bytes) = bytes.len().checked_sub(suffix_bytes) else {
            return Err(SerdeError::new(
                topic,
                "windowed key shorter than its window",
            ));
        };
        let key = self.inner.deserialize(topic, &bytes[..key_bytes])?;
        let read = |at: usize| {
            let mut array = [0u8; TIMESTAMP_BYTES];
            array.copy_from_slice(&bytes[at..at + TIMESTAMP_BYTES]);
            i64::from_be_bytes(array)
        };
        let (start_ms, end_ms) = match self.layout {
            WindowedLayout::Time { size_ms } => {
                let start_ms = read(key_bytes);
                (start_ms, start_ms.saturating_add(size_ms))
            }
            WindowedLayout::Session => (read(key_bytes + TIMESTAMP_BYTES), read(key_bytes)),
        };
        Ok(Windowed {
            key,
            start_ms,
            end_ms,
        })
    }
}

/// A serde that lets a shared serde be passed where `impl Serde<T>` is expected.
impl<T: 'static> Serde<T> for SharedSerde<T> {
    fn serialize(&self, topic: &str, value: &T) -> Result<Vec<u8>, SerdeError> {
        self.as_ref().serialize(topic, value)
    }
    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<T, SerdeError> {
        self.as_ref().deserialize(topic, bytes)
    }
    fn null_value(&self) -> Option<T> {
        self.as_ref().null_value()
    }
    fn serialize_nullable(&self, topic: &str, value: &T) -> Result<Option<Vec<u8>>, SerdeError> {
        self.as_ref().serialize_nullable(topic, value)
    }
    fn to_json(&self, topic: &str, bytes: &[u8]) -> Option<serde_json::Value> {
        self.as_ref().to_json(topic, bytes)
    }
    fn parse_text(&self, topic: &str, text: &str) -> Result<Vec<u8>, SerdeError> {
        self.as_ref().parse_text(topic, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Integers are written the way Kafka's Java serializers write them.
    #[test]
    fn integers_are_big_endian() {
        assert_eq!(
            I64Serde.serialize("t", &1).unwrap(),
            vec![0, 0, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(
            I64Serde
                .deserialize("t", &[0, 0, 0, 0, 0, 0, 1, 0])
                .unwrap(),
            256
        );
        assert!(I64Serde.deserialize("t", &[1, 2]).is_err());
    }

    /// A windowed key round-trips in both layouts, and a short one is an error, not a panic.
    #[test]
    fn windowed_keys_round_trip() {
        let time = WindowedSerde::time(StringSerde, std::time::Duration::from_secs(60));
        let key = Windowed {
            key: "card-1".to_string(),
            start_ms: 120_000,
            end_ms: 180_000,
        };
        let bytes = time.serialize("t", &key).unwrap();
        assert_eq!(bytes.len(), 6 + 8);
        assert_eq!(time.deserialize("t", &bytes).unwrap(), key);
        let session = WindowedSerde::session(StringSerde);
        let key = Windowed {
            key: "s".to_string(),
            start_ms: 5,
            end_ms: 9,
        };
        let bytes = session.serialize("t", &key).unwrap();
        assert_eq!(session.deserialize("t", &bytes).unwrap(), key);
        assert!(session.deserialize("t", &[1, 2, 3]).is_err());
    }

    /// Keys typed in a URL become the bytes the serde writes, and stored bytes show as
    /// JSON: strings as they are, numbers parsed, JSON through its type; what has no JSON
    /// form (raw bytes, a NaN) says so.
    #[test]
    fn keys_parse_parse_text_and_values_show_as_json() {
        use serde_json::json;
        assert_eq!(StringSerde.parse_text("t", "a b").unwrap(), b"a b".to_vec());
        assert_eq!(StringSerde.to_json("t", b"hi"), Some(json!("hi")));
        assert_eq!(StringSerde.to_json("t", &[0xff]), None);
        assert_eq!(
            I64Serde.parse_text("t", "-2").unwrap(),
            (-2i64).to_be_bytes()
        );
        assert!(I64Serde.parse_text("t", "two").is_err());
        assert_eq!(I64Serde.to_json("t", &7i64.to_be_bytes()), Some(json!(7)));
        assert_eq!(I32Serde.to_json("t", &[1]), None);
        assert_eq!(F64Serde.to_json("t", &f64::NAN.to_be_bytes()), None);
        assert_eq!(
            F64Serde.to_json("t", &1.5f64.to_be_bytes()),
            Some(json!(1.5))
        );
        let json_serde = JsonSerde::<Vec<u32>>::new();
        assert_eq!(
            json_serde.parse_text("t", "[1, 2]").unwrap(),
            b"[1,2]".to_vec()
        );
        assert!(json_serde.parse_text("t", "nope").is_err());
        assert_eq!(json_serde.to_json("t", b"[3]"), Some(json!([3])));
        assert_eq!(BytesSerde.to_json("t", b"x"), None);
        let shared: SharedSerde<String> = Arc::new(StringSerde);
        assert_eq!(shared.parse_text("t", "k").unwrap(), b"k".to_vec());
        let windowed = WindowedSerde::time(StringSerde, std::time::Duration::from_millis(10));
        assert!(windowed.parse_text("t", "k").is_err());
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        assert!(StringSerde.deserialize("t", &[0xff, 0xfe]).is_err());
    }
}
