//! Why a buffer could not be decoded.

/// A request, response or record batch could not be decoded.
///
/// `Incomplete` is an expected condition while a frame is still arriving; every other
/// variant means the peer sent bytes that are not valid Kafka, and the connection that
/// sent them should be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The buffer ends before the value does.
    #[error("need more bytes")]
    Incomplete,
    /// The bytes are not a valid encoding.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// A length or count read from the wire is negative where that is not allowed, or
    /// larger than the bytes that remain.
    #[error("invalid length {0}")]
    InvalidLength(i64),
    /// A string is not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// Bytes remain after the message body ended.
    #[error("{0} trailing bytes after the message body")]
    TrailingBytes(usize),
    /// The API key is not one we know.
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    /// The API version is outside what this codec can decode.
    #[error("unsupported version {version} of api key {api_key}")]
    UnsupportedVersion {
        /// The request's API key.
        api_key: i16,
        /// The version that was asked for.
        version: i16,
    },
}
