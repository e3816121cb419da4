//! riffle-protocol: the Kafka wire protocol, sans-IO.
//!
//! # Design
//! Bytes in, typed messages out; no sockets, no async runtime, no clock. The broker reads a
//! frame, hands its body to [`decode_request`], and gets back the header and a typed
//! [`Request`]; it builds a typed [`Response`] and [`encode_response`] writes the framed
//! bytes. Every message is described once, in `api/<name>.rs`, through a declarative macro
//! that lists each field with the versions it exists in; encoding, decoding, compact
//! (flexible) forms and tagged fields all come from that description. Record batches
//! travel as `Bytes` slices of the request frame (zero-copy); [`record`] reads and builds
//! them for the code that needs individual records. A Fetch response's records may be
//! [`FetchRecords::Deferred`]: encoded as a length only, for the I/O layer to send from
//! their file.
//!
//! Start with [`decode_request`] and [`encode_response`], then an API module such as
//! [`api::produce`].
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use riffle_protocol::{decode_request, encode_request, Request, RequestHeader};
//! use riffle_protocol::api::ApiVersionsRequest;
//!
//! // A client's ApiVersions v3 request, encoded and decoded back.
//! let header = RequestHeader {
//!     api_key: 18, api_version: 3, correlation_id: 7, client_id: Some("demo".into()),
//! };
//! let body = Request::ApiVersions(ApiVersionsRequest {
//!     client_software_name: "demo".into(),
//!     client_software_version: "1.0".into(),
//! });
//! let mut frame = BytesMut::new();
//! encode_request(&header, &body, &mut frame);
//! let (decoded_header, decoded) = decode_request(Bytes::from(frame).slice(4..)).unwrap();
//! assert_eq!(decoded_header, header);
//! assert_eq!(decoded, body);
//! ```
//!
//! ```
//! use bytes::Bytes;
//! use riffle_protocol::{decode_request, Request};
//!
//! // Metadata v1 asking for every topic (a null topics array).
//! let frame = Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
//! let (header, request) = decode_request(frame).unwrap();
//! assert_eq!(header.correlation_id, 9);
//! let Request::Metadata(metadata) = request else { panic!("not metadata") };
//! assert_eq!(metadata.topics, None);
//! ```

#![warn(missing_docs)]

#[macro_use]
mod message;

pub mod api;
mod codec;
mod error;
mod error_code;
mod fetch_records;
pub mod frame;
mod header;
pub mod record;
pub mod varint;

use bytes::{BufMut, Bytes, BytesMut};

pub use api::{ApiKey, Request, Response};
pub use codec::{Ctx, Uuid, Wire};
pub use error::DecodeError;
pub use error_code::ErrorCode;
pub use fetch_records::{DeferredRecords, FetchRecords};
pub use header::{RequestHeader, is_flexible, response_header_is_flexible};

/// Decodes a request frame (without its size prefix) into its header and body, strictly:
/// bytes left after the body make the frame malformed.
///
/// # Errors
/// [`DecodeError::UnknownApiKey`] and [`DecodeError::UnsupportedVersion`] when the header
/// names something this codec cannot decode (the broker answers those); anything else
/// means the frame is malformed.
pub fn decode_request(frame: Bytes) -> Result<(RequestHeader, Request), DecodeError> {
    let (header, request, _) = decode_request_with(frame, TrailingBytes::Reject)?;
    Ok((header, request))
}

/// What to do with bytes left in a frame after the request body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrailingBytes {
    /// The frame is malformed ([`DecodeError::TrailingBytes`]).
    Reject,
    /// Ignore them, as Kafka's own broker does: it never checks that a request was read
    /// to its end, so some clients in the field send extra bytes (librdkafka 2.12 sends
    /// three after a Metadata v12 body) and work against Kafka.
    Ignore,
}

/// Decodes a request frame with the given policy for trailing bytes. Returns the header,
/// the body and how many trailing bytes were ignored.
///
/// # Errors
/// As [`decode_request`]; with [`TrailingBytes::Ignore`] never `TrailingBytes`.
pub fn decode_request_with(
    mut frame: Bytes,
    trailing: TrailingBytes,
) -> Result<(RequestHeader, Request, usize), DecodeError> {
    let (api_key, api_version, _) = RequestHeader::peek(&frame)?;
    let key = ApiKey::from_i16(api_key).ok_or(DecodeError::UnknownApiKey(api_key))?;
    let (min_version, max_version) = key.schema_versions();
    if !(min_version..=max_version).contains(&api_version) {
        return Err(DecodeError::UnsupportedVersion {
            api_key,
            version: api_version,
        });
    }
    let flexible = is_flexible(key, api_version);
    let header = RequestHeader::decode(&mut frame, flexible)?;
    let ctx = Ctx {
        version: api_version,
        flexible,
    };
    let request = Request::decode_body(key, &mut frame, ctx)?;
    if !frame.is_empty() && trailing == TrailingBytes::Reject {
        return Err(DecodeError::TrailingBytes(frame.len()));
    }
    Ok((header, request, frame.len()))
}

/// Appends a whole response frame (size prefix, header, body) to `buf`.
///
/// # Panics
/// If the encoded frame exceeds 2 GiB, which no response we build can.
pub fn encode_response(
    correlation_id: i32,
    api_version: i16,
    response: &Response,
    buf: &mut BytesMut,
) {
    let key = response.api_key();
    let start = buf.len();
    buf.put_i32(0); // size, patched below
    buf.put_i32(correlation_id);
    if response_header_is_flexible(key, api_version) {
        buf.put_u8(0); // no tagged fields in the header
    }
    let ctx = Ctx {
        version: api_version,
        flexible: is_flexible(key, api_version),
    };
    response.encode_body(buf, ctx);
    // Deferred records are part of the frame, though not of `buf` (see `FetchRecords`).
    let deferred_bytes = response.deferred_records().map(DeferredRecords::len).sum();
    patch_size_prefix(buf, start, deferred_bytes);
}

/// Appends a whole request frame (size prefix, header, body) to `buf`: the client side,
/// for tests, tools and the processor.
pub fn encode_request(header: &RequestHeader, request: &Request, buf: &mut BytesMut) {
    let key = request.api_key();
    let flexible = is_flexible(key, header.api_version);
    let start = buf.len();
    buf.put_i32(0);
    header.encode(buf, flexible);
    request.encode_body(
        buf,
        Ctx {
            version: header.api_version,
            flexible,
        },
    );
    patch_size_prefix(buf, start, 0);
}

/// Decodes a response frame (without its size prefix) for a request of `api_key` at
/// `api_version`: the client side. Returns the correlation id and the body.
pub fn decode_response(
    api_key: ApiKey,
    api_version: i16,
    mut frame: Bytes,
) -> Result<(i32, Response), DecodeError> {
    let classic = Ctx {
        version: 0,
        flexible: false,
    };
    let correlation_id = i32::decode(&mut frame, classic)?;
    if response_header_is_flexible(api_key, api_version) {
        codec::skip_tagged_fields(&mut frame)?;
    }
    let ctx = Ctx {
        version: api_version,
        flexible: is_flexible(api_key, api_version),
    };
    let response = Response::decode_body(api_key, &mut frame, ctx)?;
    if !frame.is_empty() {
        return Err(DecodeError::TrailingBytes(frame.len()));
    }
    Ok((correlation_id, response))
}

fn patch_size_prefix(buf: &mut BytesMut, start: usize, deferred_bytes: usize) {
    let body_bytes = buf.len() - start - frame::FRAME_SIZE_PREFIX_BYTES + deferred_bytes;
    let size = i32::try_from(body_bytes).expect("a response frame is below 2 GiB");
    buf[start..start + frame::FRAME_SIZE_PREFIX_BYTES].copy_from_slice(&size.to_be_bytes());
}

#[cfg(test)]
mod round_trip_tests {
    //! Every request and response of every API, at every version the schema defines,
    //! survives encode then decode unchanged.

    use bytes::{Bytes, BytesMut};
    use proptest::prelude::*;

    use super::*;
    use crate::api::dispatch::{ALL_API_KEYS, sample_messages};
    use crate::codec::sample::SampleRng;

    fn round_trip(api_key: ApiKey, version: i16, seed: u64) {
        let ctx = Ctx {
            version,
            flexible: is_flexible(api_key, version),
        };
        let (request, response) = sample_messages(api_key, &mut SampleRng::new(seed), ctx);

        let header = RequestHeader {
            api_key: api_key as i16,
            api_version: version,
            correlation_id: 42,
            client_id: Some("round-trip".into()),
        };
        let mut frame = BytesMut::new();
        encode_request(&header, &request, &mut frame);
        let decoded = decode_request(Bytes::from(frame).slice(4..));
        assert_eq!(
            decoded,
            Ok((header, request)),
            "{api_key:?} v{version} request"
        );

        let mut frame = BytesMut::new();
        encode_response(42, version, &response, &mut frame);
        let decoded = decode_response(api_key, version, Bytes::from(frame).slice(4..));
        assert_eq!(
            decoded,
            Ok((42, response)),
            "{api_key:?} v{version} response"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn every_message_round_trips_at_every_version(seed: u64) {
            for &api_key in ALL_API_KEYS {
                let (min_version, max_version) = api_key.schema_versions();
                for version in min_version..=max_version {
                    round_trip(api_key, version, seed);
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes: Vec<u8>, api_key in 0i16..70, version in 0i16..20) {
            let mut frame = Vec::with_capacity(bytes.len() + 8);
            frame.extend_from_slice(&api_key.to_be_bytes());
            frame.extend_from_slice(&version.to_be_bytes());
            frame.extend_from_slice(&bytes);
            let _ = decode_request(Bytes::from(frame));
        }
    }
}
