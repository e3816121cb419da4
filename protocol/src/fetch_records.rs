//! A Fetch response's record batches, which may stay on disk until the socket write.
//!
//! A broker answering a large fetch wants to send the batches straight from the segment
//! file to the socket (`sendfile`), as Kafka does, instead of copying them into the
//! response. The codec cannot do I/O, so it encodes such records as a length only: it
//! writes the length prefix, notes where in its buffer the bytes belong, and counts them in
//! the frame's size. The I/O layer then writes the buffer up to that point, sends the
//! bytes, and goes on with the rest. Decoding always yields bytes in memory.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{BufMut as _, Bytes, BytesMut};

use crate::api::FetchResponse;
use crate::codec::{Ctx, LengthKind, Wire, decode_bytes, put_length};
use crate::{DecodeError, Response};

/// A Fetch response partition's record batches.
#[derive(Clone, Debug, PartialEq)]
pub enum FetchRecords {
    /// The bytes themselves: what decoding yields, and what a small read sends.
    Bytes(Bytes),
    /// Bytes the encoder leaves out for the I/O layer to send in their place.
    Deferred(DeferredRecords),
}

impl FetchRecords {
    /// The records' length in bytes, in memory or not.
    pub fn len(&self) -> usize {
        match self {
            FetchRecords::Bytes(bytes) => bytes.len(),
            FetchRecords::Deferred(deferred) => deferred.len(),
        }
    }

    /// Whether there are no record bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, if they are in memory.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            FetchRecords::Bytes(bytes) => Some(bytes),
            FetchRecords::Deferred(_) => None,
        }
    }
}

impl From<Bytes> for FetchRecords {
    fn from(bytes: Bytes) -> Self {
        FetchRecords::Bytes(bytes)
    }
}

/// Records the encoder does not copy: a length, the caller's handle on the bytes (a file
/// range, say), and, once encoded, where the bytes belong in the encoder's buffer.
#[derive(Clone)]
pub struct DeferredRecords {
    length: usize,
    source: Arc<dyn Any + Send + Sync>,
    /// The index in the encode buffer where the bytes go; `NOT_ENCODED` until then. Shared
    /// by clones, so the I/O layer reads it from its own copy after encoding.
    position: Arc<AtomicUsize>,
}

const NOT_ENCODED: usize = usize::MAX;

impl DeferredRecords {
    /// `length` bytes that `source` stands for.
    pub fn new(length: usize, source: Arc<dyn Any + Send + Sync>) -> Self {
        DeferredRecords {
            length,
            source,
            position: Arc::new(AtomicUsize::new(NOT_ENCODED)),
        }
    }

    /// The records' length in bytes.
    pub fn len(&self) -> usize {
        self.length
    }

    /// Whether there are no record bytes.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// The caller's handle on the bytes, as given to `new`.
    pub fn source(&self) -> &Arc<dyn Any + Send + Sync> {
        &self.source
    }

    /// Where the last encode put the bytes: an index into that encode's buffer. `None` if
    /// this has not been encoded.
    pub fn position(&self) -> Option<usize> {
        let position = self.position.load(Ordering::Acquire);
        (position != NOT_ENCODED).then_some(position)
    }
}

impl fmt::Debug for DeferredRecords {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("DeferredRecords")
            .field("length", &self.length)
            .field("position", &self.position())
            .finish_non_exhaustive()
    }
}

/// Two handles are equal when they stand for the same bytes: clones of one another.
impl PartialEq for DeferredRecords {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.position, &other.position)
    }
}

impl Wire for Option<FetchRecords> {
    fn encode(&self, buf: &mut BytesMut, ctx: Ctx) {
        match self {
            None => put_length(buf, ctx, None, LengthKind::Int32),
            Some(FetchRecords::Bytes(bytes)) => {
                put_length(buf, ctx, Some(bytes.len()), LengthKind::Int32);
                buf.put_slice(bytes);
            }
            Some(FetchRecords::Deferred(deferred)) => {
                put_length(buf, ctx, Some(deferred.length), LengthKind::Int32);
                deferred.position.store(buf.len(), Ordering::Release);
            }
        }
    }
    fn decode(buf: &mut Bytes, ctx: Ctx) -> Result<Self, DecodeError> {
        Ok(decode_bytes(buf, ctx)?.map(FetchRecords::Bytes))
    }
}

impl FetchResponse {
    /// The deferred record sets, in the order the encoder writes them.
    pub fn deferred_records(&self) -> impl Iterator<Item = &DeferredRecords> {
        self.responses
            .iter()
            .flat_map(|topic| &topic.partitions)
            .filter_map(|partition| match &partition.records {
                Some(FetchRecords::Deferred(deferred)) => Some(deferred),
                _ => None,
            })
    }
}

impl Response {
    /// The record sets the encoder leaves for the I/O layer, in frame order: a Fetch
    /// response's deferred records, none for any other response.
    pub fn deferred_records(&self) -> impl Iterator<Item = &DeferredRecords> {
        let fetch = match self {
            Response::Fetch(fetch) => Some(fetch),
            _ => None,
        };
        fetch.into_iter().flat_map(FetchResponse::deferred_records)
    }
}

#[cfg(test)]
impl crate::codec::sample::Sample for FetchRecords {
    fn sample(rng: &mut crate::codec::sample::SampleRng, ctx: Ctx) -> Self {
        FetchRecords::Bytes(Bytes::sample(rng, ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fetch::{FetchableTopicResponse, PartitionData};
    use crate::{Response, encode_response};

    fn response_with(records: [FetchRecords; 2]) -> Response {
        let partitions = records
            .into_iter()
            .enumerate()
            .map(|(index, records)| PartitionData {
                partition_index: i32::try_from(index).expect("small"),
                records: Some(records),
                ..PartitionData::default()
            })
            .collect();
        Response::Fetch(FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic: "t".into(),
                partitions,
                ..FetchableTopicResponse::default()
            }],
            ..FetchResponse::default()
        })
    }

    /// Writing the buffer with each deferred record set's bytes spliced in at its position
    /// gives exactly the frame that encoding the bytes themselves gives, at every version.
    #[test]
    fn deferred_records_splice_into_the_frame_encoding_the_bytes_gives() {
        let first = Bytes::from_static(b"first batch bytes");
        let second = Bytes::from_static(b"second");
        for version in 4..=12 {
            let mut expected = BytesMut::new();
            let in_memory = [first.clone().into(), second.clone().into()];
            encode_response(7, version, &response_with(in_memory), &mut expected);

            let handles = [first.clone(), second.clone()].map(|bytes| {
                DeferredRecords::new(bytes.len(), Arc::new(bytes) as Arc<dyn Any + Send + Sync>)
            });
            let deferred = response_with(handles.clone().map(FetchRecords::Deferred));
            let mut encoded = BytesMut::from(&b"earlier response"[..]);
            let prefix_bytes = encoded.len();
            encode_response(7, version, &deferred, &mut encoded);

            let mut spliced = Vec::new();
            let mut written = prefix_bytes;
            for handle in &handles {
                let position = handle.position().expect("encoded");
                spliced.extend_from_slice(&encoded[written..position]);
                let bytes = handle.source().downcast_ref::<Bytes>().expect("our bytes");
                spliced.extend_from_slice(bytes);
                written = position;
            }
            spliced.extend_from_slice(&encoded[written..]);
            assert_eq!(spliced, expected.to_vec(), "version {version}");
        }
    }

    #[test]
    fn decoding_yields_bytes_in_memory() {
        let mut encoded = BytesMut::new();
        let records = Some(FetchRecords::Bytes(Bytes::from_static(b"abc")));
        let ctx = Ctx {
            version: 12,
            flexible: true,
        };
        records.encode(&mut encoded, ctx);
        let decoded = Option::<FetchRecords>::decode(&mut encoded.freeze(), ctx).expect("decode");
        assert_eq!(decoded, records);
    }
}
