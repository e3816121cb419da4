//! Request and response headers.
//!
//! # Format
//! ```text
//! request header v1:  api_key INT16, api_version INT16, correlation_id INT32,
//!                     client_id NULLABLE_STRING (INT16 length)
//! request header v2:  v1, then a tagged-field section
//! response header v0: correlation_id INT32
//! response header v1: v0, then a tagged-field section
//! ```
//! A request uses header v2 exactly when its API version is flexible. The client id keeps
//! its INT16 length even in v2 (it predates flexible versions), and the tagged-field
//! section must be read even when the client id is null. ApiVersions responses always use
//! header v0, because a client reads them before it knows which versions we speak.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::DecodeError;
use crate::api::ApiKey;
use crate::codec::{Ctx, Wire, skip_tagged_fields};

/// The header every request starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// Which API the body is.
    pub api_key: i16,
    /// Which version of that API.
    pub api_version: i16,
    /// Echoed in the response so the client can match it to this request.
    pub correlation_id: i32,
    /// The client's self-chosen name, for logs and quotas.
    pub client_id: Option<String>,
}

/// The fixed part of a request header: api key, version and correlation id.
pub const REQUEST_HEADER_FIXED_BYTES: usize = 8;

impl RequestHeader {
    /// Reads the api key, version and correlation id, which every header version shares.
    ///
    /// The broker uses this alone when it cannot decode the rest, so that it can still
    /// answer (an unsupported ApiVersions version, say) with the right correlation id.
    pub fn peek(frame: &[u8]) -> Result<(i16, i16, i32), DecodeError> {
        let Some(fixed) = frame.get(..REQUEST_HEADER_FIXED_BYTES) else {
            return Err(DecodeError::Incomplete);
        };
        let mut fixed = fixed;
        Ok((fixed.get_i16(), fixed.get_i16(), fixed.get_i32()))
    }

    /// Splits the header off the front of a request frame.
    ///
    /// `flexible` says whether the API version is flexible, i.e. whether this is header v2.
    pub fn decode(frame: &mut Bytes, flexible: bool) -> Result<RequestHeader, DecodeError> {
        // The client id is always a classic INT16-length string.
        let classic = Ctx {
            version: 0,
            flexible: false,
        };
        let header = RequestHeader {
            api_key: i16::decode(frame, classic)?,
            api_version: i16::decode(frame, classic)?,
            correlation_id: i32::decode(frame, classic)?,
            client_id: Option::<String>::decode(frame, classic)?,
        };
        if flexible {
            skip_tagged_fields(frame)?;
        }
        Ok(header)
    }

    /// Writes the header (clients and tests use this).
    pub fn encode(&self, buf: &mut BytesMut, flexible: bool) {
        let classic = Ctx {
            version: 0,
            flexible: false,
        };
        buf.put_i16(self.api_key);
        buf.put_i16(self.api_version);
        buf.put_i32(self.correlation_id);
        self.client_id.encode(buf, classic);
        if flexible {
            buf.put_u8(0); // no tagged fields
        }
    }
}

/// Whether responses to this API and version carry header v1 (a tagged-field section).
pub fn response_header_is_flexible(api_key: ApiKey, api_version: i16) -> bool {
    // KIP-511: ApiVersions answers with header v0 whatever the version, so that a client
    // can parse the answer to a version the broker does not support.
    api_key != ApiKey::ApiVersions && is_flexible(api_key, api_version)
}

/// Whether this API version uses compact types, tagged fields and request header v2.
pub fn is_flexible(api_key: ApiKey, api_version: i16) -> bool {
    api_key
        .first_flexible_version()
        .is_some_and(|first| api_version >= first)
}
