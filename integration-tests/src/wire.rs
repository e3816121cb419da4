//! Hand-built Kafka requests over a raw TCP socket.
//!
//! This module is deliberately independent of `riffle-protocol`: it writes the few request
//! layouts the tests need byte by byte, from the Kafka schemas, so a codec bug in the broker
//! fails a test instead of being mirrored here. Integers are big-endian; classic strings carry an
//! `i16` length (-1 for null), byte arrays an `i32` length; flexible versions use unsigned
//! varint lengths plus one (0 for null) and end each structure with tagged fields.
//!
//! Start with [`RawConnection`]; [`RequestWriter`] builds bodies and [`ResponseReader`] takes
//! answers apart. [`api_versions`], [`first_batch_compression`] and [`topic_id`] are probes the
//! tests use to look at what the broker advertises and stores; [`latest_offset`] and
//! [`fetch_transaction_state`] show what a partition's open and aborted transactions look like
//! to each [`IsolationLevel`], and [`offset_fetch`] whether a group's offsets are stable.
//! [`fetch_in_session`] sends Fetch v7 with a fetch session's id and epoch (KIP-227).

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a raw connection waits for a response (or for the broker to close it).
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest response frame [`RawConnection::read_frame`] accepts.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// The client id the raw requests send.
pub const CLIENT_ID: &str = "riffle-it-raw";

/// Kafka API keys used by the raw tests.
pub mod api_key {
    /// Produce.
    pub const PRODUCE: i16 = 0;
    /// Fetch.
    pub const FETCH: i16 = 1;
    /// ListOffsets.
    pub const LIST_OFFSETS: i16 = 2;
    /// Metadata.
    pub const METADATA: i16 = 3;
    /// OffsetFetch.
    pub const OFFSET_FETCH: i16 = 9;
    /// ApiVersions.
    pub const API_VERSIONS: i16 = 18;
}

/// Kafka error codes the tests expect.
pub mod error_code {
    /// No error.
    pub const NONE: i16 = 0;
    /// CORRUPT_MESSAGE: a batch failed its CRC or size checks.
    pub const CORRUPT_MESSAGE: i16 = 2;
    /// UNKNOWN_TOPIC_OR_PARTITION.
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    /// MESSAGE_TOO_LARGE: a batch above the topic's `max.message.bytes`.
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    /// UNSUPPORTED_VERSION.
    pub const UNSUPPORTED_VERSION: i16 = 35;
    /// FETCH_SESSION_ID_NOT_FOUND: an incremental Fetch named a session the broker does not hold.
    pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
    /// INVALID_FETCH_SESSION_EPOCH: an incremental Fetch carried an epoch its session did not
    /// expect.
    pub const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
    /// UNSTABLE_OFFSET_COMMIT: offsets for the partition are pending in an open transaction
    /// (OffsetFetch with require_stable, KIP-447).
    pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;
}

/// Which request header layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestHeaderVersion {
    /// api_key, api_version, correlation_id, client_id (i16-length nullable string).
    V1,
    /// V1 followed by tagged fields (flexible request versions).
    V2,
}

/// Builds a request body (or a whole frame) field by field.
#[derive(Debug, Default, Clone)]
pub struct RequestWriter {
    bytes: Vec<u8>,
}

impl RequestWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// A request header; see [`RequestHeaderVersion`].
    pub fn header(
        &mut self,
        version: RequestHeaderVersion,
        api_key: i16,
        api_version: i16,
        correlation_id: i32,
    ) -> &mut Self {
        self.i16(api_key)
            .i16(api_version)
            .i32(correlation_id)
            .nullable_string(Some(CLIENT_ID));
        if version == RequestHeaderVersion::V2 {
            self.empty_tagged_fields();
        }
        self
    }

    /// Raw bytes, no length.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(bytes);
        self
    }

    /// INT8.
    pub fn i8(&mut self, value: i8) -> &mut Self {
        self.raw(&value.to_be_bytes())
    }

    /// INT16.
    pub fn i16(&mut self, value: i16) -> &mut Self {
        self.raw(&value.to_be_bytes())
    }

    /// INT32.
    pub fn i32(&mut self, value: i32) -> &mut Self {
        self.raw(&value.to_be_bytes())
    }

    /// INT64.
    pub fn i64(&mut self, value: i64) -> &mut Self {
        self.raw(&value.to_be_bytes())
    }

    /// UINT32 (a batch CRC).
    pub fn u32(&mut self, value: u32) -> &mut Self {
        self.raw(&value.to_be_bytes())
    }

    /// BOOLEAN.
    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.raw(&[u8::from(value)])
    }

    /// STRING: i16 length, then UTF-8 bytes.
    pub fn string(&mut self, value: &str) -> &mut Self {
        self.i16(i16::try_from(value.len()).expect("string fits an i16 length"))
            .raw(value.as_bytes())
    }

    /// NULLABLE_STRING: like [`RequestWriter::string`], -1 for null.
    pub fn nullable_string(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => self.string(value),
            None => self.i16(-1),
        }
    }

    /// BYTES / RECORDS: i32 length, then the bytes.
    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.i32(i32::try_from(value.len()).expect("bytes fit an i32 length"))
            .raw(value)
    }

    /// ARRAY length (classic): i32 element count.
    pub fn array_len(&mut self, count: usize) -> &mut Self {
        self.i32(i32::try_from(count).expect("array length fits an i32"))
    }

    /// UNSIGNED_VARINT.
    pub fn uvarint(&mut self, mut value: u64) -> &mut Self {
        while value >= 0x80 {
            // Low seven bits with the continuation bit set; the truncation is the point.
            self.bytes.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
        self
    }

    /// VARINT: zig-zag encoded i32.
    pub fn varint(&mut self, value: i32) -> &mut Self {
        self.varlong(i64::from(value))
    }

    /// VARLONG: zig-zag encoded i64.
    pub fn varlong(&mut self, value: i64) -> &mut Self {
        self.uvarint(((value << 1) ^ (value >> 63)) as u64)
    }

    /// COMPACT_STRING: length + 1 as an unsigned varint, then UTF-8 bytes.
    pub fn compact_string(&mut self, value: &str) -> &mut Self {
        self.uvarint(value.len() as u64 + 1).raw(value.as_bytes())
    }

    /// COMPACT_ARRAY length: element count + 1 as an unsigned varint.
    pub fn compact_array_len(&mut self, count: usize) -> &mut Self {
        self.uvarint(count as u64 + 1)
    }

    /// UUID: 16 raw bytes.
    pub fn uuid(&mut self, value: [u8; 16]) -> &mut Self {
        self.raw(&value)
    }

    /// An empty tagged-fields section (a single zero varint).
    pub fn empty_tagged_fields(&mut self) -> &mut Self {
        self.uvarint(0)
    }
}

/// Reads a response field by field, panicking with the position when it runs short.
#[derive(Debug)]
pub struct ResponseReader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> ResponseReader<'a> {
    /// A reader over `bytes`, starting at the first byte.
    pub fn new(bytes: &'a [u8]) -> Self {
        ResponseReader { bytes, position: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    /// The next `count` bytes.
    ///
    /// # Panics
    /// If fewer than `count` bytes are left.
    pub fn take(&mut self, count: usize, what: &str) -> &'a [u8] {
        assert!(
            count <= self.remaining(),
            "response truncated reading {what}: need {count} bytes at position {} of {}",
            self.position,
            self.bytes.len()
        );
        let slice = &self.bytes[self.position..self.position + count];
        self.position += count;
        slice
    }

    /// INT8.
    pub fn i8(&mut self, what: &str) -> i8 {
        i8::from_be_bytes(self.array(what))
    }

    /// INT16.
    pub fn i16(&mut self, what: &str) -> i16 {
        i16::from_be_bytes(self.array(what))
    }

    /// INT32.
    pub fn i32(&mut self, what: &str) -> i32 {
        i32::from_be_bytes(self.array(what))
    }

    /// INT64.
    pub fn i64(&mut self, what: &str) -> i64 {
        i64::from_be_bytes(self.array(what))
    }

    /// BOOLEAN.
    pub fn bool(&mut self, what: &str) -> bool {
        self.i8(what) != 0
    }

    /// UUID.
    pub fn uuid(&mut self, what: &str) -> [u8; 16] {
        self.array(what)
    }

    /// NULLABLE_STRING (classic, i16 length).
    pub fn nullable_string(&mut self, what: &str) -> Option<String> {
        let length = self.i16(what);
        let length = usize::try_from(length).ok()?;
        Some(String::from_utf8_lossy(self.take(length, what)).into_owned())
    }

    /// STRING (classic, i16 length).
    ///
    /// # Panics
    /// If the string is null.
    pub fn string(&mut self, what: &str) -> String {
        self.nullable_string(what)
            .unwrap_or_else(|| panic!("{what} is null, expected a string"))
    }

    /// NULLABLE_BYTES / RECORDS (classic, i32 length).
    pub fn nullable_bytes(&mut self, what: &str) -> Option<&'a [u8]> {
        let length = self.i32(what);
        let length = usize::try_from(length).ok()?;
        Some(self.take(length, what))
    }

    /// ARRAY length (classic); `None` for a null array.
    pub fn array_len(&mut self, what: &str) -> Option<usize> {
        usize::try_from(self.i32(what)).ok()
    }

    /// UNSIGNED_VARINT.
    pub fn uvarint(&mut self, what: &str) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1, what)[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return value;
            }
        }
        panic!("unsigned varint longer than 10 bytes reading {what}");
    }

    /// COMPACT_NULLABLE_STRING.
    pub fn compact_nullable_string(&mut self, what: &str) -> Option<String> {
        let length = self.compact_len(what)?;
        Some(String::from_utf8_lossy(self.take(length, what)).into_owned())
    }

    /// COMPACT_ARRAY length; `None` for a null array.
    pub fn compact_array_len(&mut self, what: &str) -> Option<usize> {
        self.compact_len(what)
    }

    /// Skips a tagged-fields section.
    pub fn skip_tagged_fields(&mut self, what: &str) {
        let count = self.uvarint(what);
        for _ in 0..count {
            let _tag = self.uvarint(what);
            let size = self.uvarint(what);
            let size = usize::try_from(size).expect("tagged field size fits usize");
            self.take(size, what);
        }
    }

    fn compact_len(&mut self, what: &str) -> Option<usize> {
        let length_plus_one = self.uvarint(what);
        let length = length_plus_one.checked_sub(1)?;
        Some(usize::try_from(length).expect("compact length fits usize"))
    }

    fn array<const N: usize>(&mut self, what: &str) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what));
        out
    }
}

/// Why [`RawConnection::read_frame`] returned no frame.
#[derive(Debug)]
pub enum FrameError {
    /// The broker closed the connection (EOF or reset).
    Closed,
    /// Nothing arrived within [`READ_TIMEOUT`].
    TimedOut,
    /// The length prefix was negative or above [`MAX_RESPONSE_BYTES`].
    BadLength(i32),
    /// Any other socket error.
    Io(io::Error),
}

/// One TCP connection to the broker, speaking length-prefixed frames.
#[derive(Debug)]
pub struct RawConnection {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl RawConnection {
    /// Connects to `address` (`127.0.0.1:PORT`) with [`READ_TIMEOUT`] on reads and writes.
    ///
    /// # Panics
    /// If the connection cannot be made.
    pub fn connect(address: &str) -> RawConnection {
        let socket_address: SocketAddr = address
            .parse()
            .unwrap_or_else(|error| panic!("bad broker address {address:?}: {error}"));
        let stream = TcpStream::connect_timeout(&socket_address, READ_TIMEOUT)
            .unwrap_or_else(|error| panic!("cannot connect to the broker at {address}: {error}"));
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("set the read timeout");
        stream
            .set_write_timeout(Some(READ_TIMEOUT))
            .expect("set the write timeout");
        RawConnection {
            stream,
            next_correlation_id: 1,
        }
    }

    /// A fresh correlation id for the next request.
    pub fn next_correlation_id(&mut self) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id += 1;
        id
    }

    /// Writes bytes as they are (no length prefix).
    ///
    /// # Errors
    /// The socket error, e.g. when the broker has already closed the connection.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Writes a frame: an i32 length, then `payload`.
    ///
    /// # Errors
    /// As [`RawConnection::send_raw`].
    pub fn send_frame(&mut self, payload: &[u8]) -> io::Result<()> {
        let length = i32::try_from(payload.len()).expect("frame fits an i32 length");
        let mut frame = Vec::with_capacity(payload.len() + 4);
        frame.extend_from_slice(&length.to_be_bytes());
        frame.extend_from_slice(payload);
        self.send_raw(&frame)
    }

    /// Reads one length-prefixed frame and returns its payload.
    ///
    /// # Errors
    /// [`FrameError::Closed`] when the broker closed the connection, [`FrameError::TimedOut`]
    /// after [`READ_TIMEOUT`] without a complete frame, [`FrameError::BadLength`] for a length
    /// prefix out of range.
    pub fn read_frame(&mut self) -> Result<Vec<u8>, FrameError> {
        let mut prefix = [0u8; 4];
        self.stream.read_exact(&mut prefix).map_err(frame_error)?;
        let length = i32::from_be_bytes(prefix);
        let size = usize::try_from(length).map_err(|_| FrameError::BadLength(length))?;
        if size > MAX_RESPONSE_BYTES {
            return Err(FrameError::BadLength(length));
        }
        let mut payload = vec![0u8; size];
        self.stream.read_exact(&mut payload).map_err(frame_error)?;
        Ok(payload)
    }

    /// Sends a request with header v1 and returns the response body after header v0.
    ///
    /// # Panics
    /// If the broker closes the connection, does not answer in time, or answers with another
    /// correlation id.
    pub fn request(&mut self, api_key: i16, api_version: i16, body: &[u8]) -> Vec<u8> {
        self.exchange(RequestHeaderVersion::V1, api_key, api_version, body)
    }

    /// Sends a request with header v2 (flexible versions) and returns the response body after
    /// header v1 (correlation id and tagged fields).
    ///
    /// # Panics
    /// As [`RawConnection::request`].
    pub fn request_flexible(&mut self, api_key: i16, api_version: i16, body: &[u8]) -> Vec<u8> {
        let response = self.exchange(RequestHeaderVersion::V2, api_key, api_version, body);
        let mut reader = ResponseReader::new(&response);
        reader.skip_tagged_fields("response header tagged fields");
        let header_length = response.len() - reader.remaining();
        response[header_length..].to_vec()
    }

    /// Sends one request and returns the response payload after the correlation id.
    ///
    /// # Panics
    /// As [`RawConnection::request`].
    pub fn exchange(
        &mut self,
        header_version: RequestHeaderVersion,
        api_key: i16,
        api_version: i16,
        body: &[u8],
    ) -> Vec<u8> {
        let correlation_id = self.next_correlation_id();
        let mut frame = RequestWriter::new();
        frame
            .header(header_version, api_key, api_version, correlation_id)
            .raw(body);
        let what = format!("api key {api_key} v{api_version} (correlation id {correlation_id})");
        self.send_frame(&frame.into_bytes())
            .unwrap_or_else(|error| panic!("cannot send {what}: {error}"));
        let response = self
            .read_frame()
            .unwrap_or_else(|error| panic!("no response to {what}: {error:?}"));
        let mut reader = ResponseReader::new(&response);
        let answered = reader.i32("response correlation id");
        assert_eq!(
            answered, correlation_id,
            "response to {what} has the wrong correlation id"
        );
        response[4..].to_vec()
    }

    /// Waits for the broker to close this connection.
    ///
    /// # Panics
    /// If a frame arrives instead, or the connection is still open after [`READ_TIMEOUT`].
    pub fn expect_closed(&mut self, after: &str) {
        let mut buffer = [0u8; 256];
        match self.stream.read(&mut buffer) {
            Ok(0) => {}
            Ok(count) => panic!(
                "expected the broker to close the connection after {after}, got {count} bytes: \
                 {:02x?}",
                &buffer[..count]
            ),
            Err(error) => match frame_error(error) {
                FrameError::Closed => {}
                FrameError::TimedOut => panic!(
                    "the connection is still open {READ_TIMEOUT:?} after {after}; expected the \
                     broker to close it"
                ),
                other => panic!("unexpected socket error after {after}: {other:?}"),
            },
        }
    }
}

fn frame_error(error: io::Error) -> FrameError {
    match error.kind() {
        ErrorKind::UnexpectedEof
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe => FrameError::Closed,
        ErrorKind::WouldBlock | ErrorKind::TimedOut => FrameError::TimedOut,
        _ => FrameError::Io(error),
    }
}

/// One entry of an ApiVersions response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersionRange {
    /// The API key.
    pub api_key: i16,
    /// The lowest version the broker accepts.
    pub min_version: i16,
    /// The highest version the broker accepts.
    pub max_version: i16,
}

/// Reads the `api_keys` array of an ApiVersions response body (any version: the array comes
/// right after the error code; flexible bodies are not parsed here).
pub fn read_api_version_ranges(reader: &mut ResponseReader<'_>) -> Vec<ApiVersionRange> {
    let count = reader.array_len("api_keys length").unwrap_or(0);
    (0..count)
        .map(|_| ApiVersionRange {
            api_key: reader.i16("api_key"),
            min_version: reader.i16("min_version"),
            max_version: reader.i16("max_version"),
        })
        .collect()
}

/// Asks the broker for its API versions with ApiVersions v0.
///
/// # Panics
/// If the broker answers with an error code.
pub fn api_versions(connection: &mut RawConnection) -> Vec<ApiVersionRange> {
    let body = connection.request(api_key::API_VERSIONS, 0, &[]);
    let mut reader = ResponseReader::new(&body);
    let error = reader.i16("error_code");
    assert_eq!(error, error_code::NONE, "ApiVersions v0 failed");
    read_api_version_ranges(&mut reader)
}

/// A record batch's compression codec (attribute bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// 0.
    None,
    /// 1.
    Gzip,
    /// 2.
    Snappy,
    /// 3.
    Lz4,
    /// 4.
    Zstd,
}

impl Compression {
    /// The codec for a client config name: `none`, `gzip`, `snappy`, `lz4`, `zstd`.
    ///
    /// # Panics
    /// For any other name.
    pub fn from_name(name: &str) -> Compression {
        match name {
            "none" => Compression::None,
            "gzip" => Compression::Gzip,
            "snappy" => Compression::Snappy,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::Zstd,
            other => panic!("unknown compression codec {other:?}"),
        }
    }

    /// The codec in a batch's `attributes`.
    pub fn from_attributes(attributes: i16) -> Option<Compression> {
        match attributes & 0x07 {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// Fetches offset 0 of `topic`/`partition` with Fetch v4 and returns the first batch's codec.
///
/// The broker stores batches as the client sent them, so this tells whether a client really
/// compressed (librdkafka silently falls back to no compression when the broker's advertised
/// versions are too low for a codec).
///
/// # Panics
/// If the fetch fails or returns no magic-v2 batch.
pub fn first_batch_compression(bootstrap: &str, topic: &str, partition: i32) -> Compression {
    let fetched = fetch_v4(
        bootstrap,
        topic,
        partition,
        0,
        IsolationLevel::ReadUncommitted,
        500,
    );
    let records = fetched.records;
    // base_offset i64, batch_length i32, partition_leader_epoch i32, magic i8, crc u32,
    // attributes i16: the attributes start at byte 21.
    assert!(
        records.len() >= 23,
        "Fetch v4 of {topic}/{partition} from offset 0 returned {} record bytes, expected a batch",
        records.len()
    );
    assert_eq!(
        records[16], 2,
        "the first batch of {topic}/{partition} is not magic v2"
    );
    let attributes = i16::from_be_bytes([records[21], records[22]]);
    Compression::from_attributes(attributes)
        .unwrap_or_else(|| panic!("unknown codec in batch attributes {attributes:#06x}"))
}

/// A consumer's isolation level, as ListOffsets (v2+) and Fetch (v4+) carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationLevel {
    /// 0: everything up to the high watermark, records of open and aborted transactions too.
    ReadUncommitted,
    /// 1: only up to the last stable offset, and aborted transactions' records filtered out.
    ReadCommitted,
}

impl IsolationLevel {
    /// The INT8 the requests carry.
    pub fn wire_value(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }

    /// The value of a client's `isolation.level` setting.
    pub fn config_value(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "read_uncommitted",
            IsolationLevel::ReadCommitted => "read_committed",
        }
    }
}

/// The latest offset ListOffsets v2 answers for `topic`/`partition` (timestamp -1).
///
/// With [`IsolationLevel::ReadUncommitted`] Kafka answers the high watermark; with
/// [`IsolationLevel::ReadCommitted`] the last stable offset, which stops at the first record
/// of the oldest transaction still open on the partition.
///
/// # Panics
/// If the broker does not answer or reports an error for the partition.
pub fn latest_offset(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    isolation: IsolationLevel,
) -> i64 {
    let mut body = RequestWriter::new();
    body.i32(-1) // replica_id: a consumer
        .i8(isolation.wire_value())
        .array_len(1)
        .string(topic)
        .array_len(1)
        .i32(partition)
        .i64(-1); // timestamp: latest
    let mut connection = RawConnection::connect(bootstrap);
    let response = connection.request(api_key::LIST_OFFSETS, 2, &body.into_bytes());
    let mut reader = ResponseReader::new(&response);
    reader.i32("throttle_time_ms");
    assert_eq!(
        reader.array_len("topics length"),
        Some(1),
        "ListOffsets v2: one topic expected"
    );
    assert_eq!(
        reader.string("topic name"),
        topic,
        "ListOffsets v2 answered another topic"
    );
    assert_eq!(
        reader.array_len("partitions length"),
        Some(1),
        "ListOffsets v2: one partition expected"
    );
    assert_eq!(
        reader.i32("partition_index"),
        partition,
        "ListOffsets v2 partition"
    );
    let error = reader.i16("error_code");
    assert_eq!(
        error,
        error_code::NONE,
        "ListOffsets v2 ({isolation:?}) of {topic}/{partition} failed"
    );
    reader.i64("timestamp");
    reader.i64("offset")
}

/// One entry of a Fetch response's `aborted_transactions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    /// The producer id whose transaction was aborted.
    pub producer_id: i64,
    /// The offset of that transaction's first record on the partition.
    pub first_offset: i64,
}

/// What a Fetch v4 answer says about one partition's transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedTransactionState {
    /// The high watermark.
    pub high_watermark: i64,
    /// The last stable offset.
    pub last_stable_offset: i64,
    /// Aborted transactions overlapping the fetched range (read_committed only, per Kafka).
    pub aborted_transactions: Vec<AbortedTransaction>,
    /// How many record bytes came back.
    pub record_bytes: usize,
}

/// Fetches `topic`/`partition` from `fetch_offset` with Fetch v4 at `isolation` (waiting at most
/// 100 ms) and returns the watermarks and aborted transactions the broker reports.
///
/// # Panics
/// If the fetch fails or reports an error for the partition.
pub fn fetch_transaction_state(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    fetch_offset: i64,
    isolation: IsolationLevel,
) -> FetchedTransactionState {
    let fetched = fetch_v4(bootstrap, topic, partition, fetch_offset, isolation, 100);
    FetchedTransactionState {
        high_watermark: fetched.high_watermark,
        last_stable_offset: fetched.last_stable_offset,
        aborted_transactions: fetched.aborted_transactions,
        record_bytes: fetched.records.len(),
    }
}

/// One partition of a Fetch v4 answer.
struct FetchedPartition {
    high_watermark: i64,
    last_stable_offset: i64,
    aborted_transactions: Vec<AbortedTransaction>,
    records: Vec<u8>,
}

/// Fetches `topic`/`partition` from `fetch_offset` with Fetch v4 at `isolation`, waiting at
/// most `max_wait_ms` for at least one byte.
///
/// # Panics
/// If the fetch fails or reports an error for the partition.
fn fetch_v4(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    fetch_offset: i64,
    isolation: IsolationLevel,
    max_wait_ms: i32,
) -> FetchedPartition {
    let mut body = RequestWriter::new();
    body.i32(-1) // replica_id: a consumer
        .i32(max_wait_ms)
        .i32(1) // min_bytes
        .i32(1 << 20) // max_bytes
        .i8(isolation.wire_value())
        .array_len(1)
        .string(topic)
        .array_len(1)
        .i32(partition)
        .i64(fetch_offset)
        .i32(1 << 20); // partition_max_bytes
    let mut connection = RawConnection::connect(bootstrap);
    let response = connection.request(api_key::FETCH, 4, &body.into_bytes());
    let mut reader = ResponseReader::new(&response);
    reader.i32("throttle_time_ms");
    assert_eq!(
        reader.array_len("responses length"),
        Some(1),
        "Fetch v4: one topic expected"
    );
    assert_eq!(
        reader.string("topic"),
        topic,
        "Fetch v4 answered another topic"
    );
    assert_eq!(
        reader.array_len("partitions length"),
        Some(1),
        "Fetch v4: one partition expected"
    );
    reader.i32("partition_index");
    let error = reader.i16("error_code");
    assert_eq!(
        error,
        error_code::NONE,
        "Fetch v4 ({isolation:?}) of {topic}/{partition} from {fetch_offset} failed"
    );
    let high_watermark = reader.i64("high_watermark");
    let last_stable_offset = reader.i64("last_stable_offset");
    let aborted_count = reader.array_len("aborted_transactions length").unwrap_or(0);
    let aborted_transactions = (0..aborted_count)
        .map(|_| AbortedTransaction {
            producer_id: reader.i64("aborted producer_id"),
            first_offset: reader.i64("aborted first_offset"),
        })
        .collect();
    let records = reader
        .nullable_bytes("records")
        .unwrap_or_default()
        .to_vec();
    FetchedPartition {
        high_watermark,
        last_stable_offset,
        aborted_transactions,
        records,
    }
}

/// A Fetch v7 of one topic's partitions inside a fetch session (KIP-227).
///
/// `session_id` 0 with `session_epoch` 0 opens a session; the id the broker answers with and
/// epochs 1, 2, ... continue it; epoch -1 fetches outside any session (closing the one named).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFetch {
    /// The session, or 0.
    pub session_id: i32,
    /// 0 to open, the session's next epoch to continue, -1 to close.
    pub session_epoch: i32,
    /// The longest the broker may wait for `min_bytes` of 1.
    pub max_wait_ms: i32,
    /// The topic.
    pub topic: String,
    /// Partitions to add to the session or update, with their fetch offsets.
    pub partitions: Vec<(i32, i64)>,
    /// Partitions to remove from the session.
    pub forgotten: Vec<i32>,
}

/// One partition of a Fetch v7 answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionFetchPartition {
    /// The partition index.
    pub partition: i32,
    /// Its error code.
    pub error_code: i16,
    /// Its high watermark.
    pub high_watermark: i64,
    /// How many record bytes came back.
    pub record_bytes: usize,
}

/// A Fetch v7 answer: the top-level error, the session, and the partitions listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFetchResponse {
    /// The top-level error code (a session error refuses the whole request).
    pub error_code: i16,
    /// The session to continue in, or 0.
    pub session_id: i32,
    /// The partitions the response lists, in its order.
    pub partitions: Vec<SessionFetchPartition>,
}

impl SessionFetchResponse {
    /// The partition indexes listed, in order.
    pub fn partition_indexes(&self) -> Vec<i32> {
        self.partitions.iter().map(|data| data.partition).collect()
    }
}

/// Sends `request` as Fetch v7 (read_uncommitted, 1 MiB per partition) and reads the answer.
///
/// # Panics
/// If the broker does not answer, or answers for another topic.
pub fn fetch_in_session(
    connection: &mut RawConnection,
    request: &SessionFetch,
) -> SessionFetchResponse {
    let mut body = RequestWriter::new();
    body.i32(-1) // replica_id: a consumer
        .i32(request.max_wait_ms)
        .i32(1) // min_bytes
        .i32(1 << 20) // max_bytes
        .i8(IsolationLevel::ReadUncommitted.wire_value())
        .i32(request.session_id)
        .i32(request.session_epoch);
    if request.partitions.is_empty() {
        body.array_len(0);
    } else {
        body.array_len(1)
            .string(&request.topic)
            .array_len(request.partitions.len());
        for &(partition, fetch_offset) in &request.partitions {
            body.i32(partition)
                .i64(fetch_offset)
                .i64(-1) // log_start_offset: only followers send one
                .i32(1 << 20); // partition_max_bytes
        }
    }
    if request.forgotten.is_empty() {
        body.array_len(0);
    } else {
        body.array_len(1)
            .string(&request.topic)
            .array_len(request.forgotten.len());
        for &partition in &request.forgotten {
            body.i32(partition);
        }
    }
    let response = connection.request(api_key::FETCH, 7, &body.into_bytes());
    read_session_fetch_response(&response, &request.topic)
}

/// Takes apart a Fetch v7 response body of `topic`.
fn read_session_fetch_response(response: &[u8], topic: &str) -> SessionFetchResponse {
    let mut reader = ResponseReader::new(response);
    reader.i32("throttle_time_ms");
    let error_code = reader.i16("error_code");
    let session_id = reader.i32("session_id");
    let mut partitions = Vec::new();
    for _ in 0..reader.array_len("responses length").unwrap_or(0) {
        assert_eq!(
            reader.string("topic"),
            topic,
            "Fetch v7 answered another topic"
        );
        for _ in 0..reader.array_len("partitions length").unwrap_or(0) {
            let partition = reader.i32("partition_index");
            let error_code = reader.i16("partition error_code");
            let high_watermark = reader.i64("high_watermark");
            reader.i64("last_stable_offset");
            reader.i64("log_start_offset");
            let aborted_count = reader.array_len("aborted_transactions length").unwrap_or(0);
            reader.take(aborted_count * 16, "aborted_transactions");
            let record_bytes = reader.nullable_bytes("records").map_or(0, <[u8]>::len);
            partitions.push(SessionFetchPartition {
                partition,
                error_code,
                high_watermark,
                record_bytes,
            });
        }
    }
    assert_eq!(
        reader.remaining(),
        0,
        "bytes left after the Fetch v7 response"
    );
    SessionFetchResponse {
        error_code,
        session_id,
        partitions,
    }
}

/// OffsetFetch v7 for one partition of `group`: `(committed_offset, error_code)` of that
/// partition (-1 when nothing is committed).
///
/// With `require_stable` Kafka answers UNSTABLE_OFFSET_COMMIT while a transaction with offsets
/// for the partition is open; without it, the last committed offset.
///
/// # Panics
/// If the broker does not answer or reports a group-level error.
pub fn offset_fetch(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partition: i32,
    require_stable: bool,
) -> (i64, i16) {
    let mut body = RequestWriter::new();
    body.compact_string(group)
        .compact_array_len(1)
        .compact_string(topic)
        .compact_array_len(1)
        .i32(partition)
        .empty_tagged_fields()
        .bool(require_stable)
        .empty_tagged_fields();
    let mut connection = RawConnection::connect(bootstrap);
    let response = connection.request_flexible(api_key::OFFSET_FETCH, 7, &body.into_bytes());
    let mut reader = ResponseReader::new(&response);
    reader.i32("throttle_time_ms");
    assert_eq!(
        reader.compact_array_len("topics length"),
        Some(1),
        "OffsetFetch v7: one topic expected"
    );
    assert_eq!(
        reader.compact_nullable_string("topic name").as_deref(),
        Some(topic),
        "OffsetFetch v7 answered another topic"
    );
    assert_eq!(
        reader.compact_array_len("partitions length"),
        Some(1),
        "OffsetFetch v7: one partition expected"
    );
    assert_eq!(
        reader.i32("partition_index"),
        partition,
        "OffsetFetch v7 partition"
    );
    let offset = reader.i64("committed_offset");
    reader.i32("committed_leader_epoch");
    reader.compact_nullable_string("metadata");
    let partition_error = reader.i16("partition error_code");
    reader.skip_tagged_fields("partition tagged fields");
    reader.skip_tagged_fields("topic tagged fields");
    let group_error = reader.i16("error_code");
    assert_eq!(
        group_error,
        error_code::NONE,
        "OffsetFetch v7 of group {group} failed"
    );
    (offset, partition_error)
}

/// The topic id from Metadata v10-12, or `None` when the broker's Metadata stops below v10.
///
/// # Panics
/// If the Metadata answer has an error for the topic or does not list it.
pub fn topic_id(bootstrap: &str, topic: &str) -> Option<[u8; 16]> {
    let mut connection = RawConnection::connect(bootstrap);
    let metadata = api_versions(&mut connection)
        .into_iter()
        .find(|range| range.api_key == api_key::METADATA)
        .expect("the broker advertises Metadata");
    let version = metadata.max_version.min(12);
    if version < 10 || metadata.min_version > version {
        return None;
    }
    let mut body = RequestWriter::new();
    body.compact_array_len(1)
        .uuid([0; 16])
        .compact_string(topic)
        .empty_tagged_fields()
        .bool(false); // allow_auto_topic_creation
    if version == 10 {
        body.bool(false); // include_cluster_authorized_operations (v8-10)
    }
    body.bool(false) // include_topic_authorized_operations
        .empty_tagged_fields();
    let response = connection.request_flexible(api_key::METADATA, version, &body.into_bytes());
    let mut reader = ResponseReader::new(&response);
    reader.i32("throttle_time_ms");
    skip_metadata_brokers(&mut reader);
    reader.compact_nullable_string("cluster_id");
    reader.i32("controller_id");
    let topic_count = reader.compact_array_len("topics length").unwrap_or(0);
    for _ in 0..topic_count {
        let error = reader.i16("topic error_code");
        let name = reader.compact_nullable_string("topic name");
        let id = reader.uuid("topic_id");
        if name.as_deref() == Some(topic) {
            assert_eq!(
                error,
                error_code::NONE,
                "Metadata v{version} error for {topic}"
            );
            return Some(id);
        }
        skip_metadata_topic_rest(&mut reader);
    }
    panic!("Metadata v{version} does not list topic {topic}");
}

fn skip_metadata_brokers(reader: &mut ResponseReader<'_>) {
    let count = reader.compact_array_len("brokers length").unwrap_or(0);
    for _ in 0..count {
        reader.i32("node_id");
        reader.compact_nullable_string("host");
        reader.i32("port");
        reader.compact_nullable_string("rack");
        reader.skip_tagged_fields("broker tagged fields");
    }
}

/// Skips a flexible Metadata topic after its topic id.
fn skip_metadata_topic_rest(reader: &mut ResponseReader<'_>) {
    reader.bool("is_internal");
    let partition_count = reader.compact_array_len("partitions length").unwrap_or(0);
    for _ in 0..partition_count {
        reader.i16("partition error_code");
        reader.i32("partition_index");
        reader.i32("leader_id");
        reader.i32("leader_epoch");
        for what in ["replica_nodes", "isr_nodes", "offline_replicas"] {
            let count = reader.compact_array_len(what).unwrap_or(0);
            reader.take(count * 4, what);
        }
        reader.skip_tagged_fields("partition tagged fields");
    }
    reader.i32("topic_authorized_operations");
    reader.skip_tagged_fields("topic tagged fields");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_the_kafka_examples() {
        // Proves the zig-zag and unsigned varint writers against known encodings, and that the
        // reader takes them back.
        let mut writer = RequestWriter::new();
        writer
            .varint(0)
            .varint(-1)
            .varint(1)
            .varint(-64)
            .varint(300)
            .uvarint(16384);
        let bytes = writer.into_bytes();
        assert_eq!(
            bytes,
            [0x00, 0x01, 0x02, 0x7f, 0xd8, 0x04, 0x80, 0x80, 0x01]
        );
        let mut reader = ResponseReader::new(&bytes[6..]);
        assert_eq!(reader.uvarint("uvarint"), 16384);
    }

    #[test]
    fn header_v2_adds_tagged_fields_after_client_id() {
        // Proves the two header layouts differ only by the trailing tagged-fields byte.
        let mut v1 = RequestWriter::new();
        v1.header(RequestHeaderVersion::V1, 18, 3, 7);
        let mut v2 = RequestWriter::new();
        v2.header(RequestHeaderVersion::V2, 18, 3, 7);
        let v1 = v1.into_bytes();
        let v2 = v2.into_bytes();
        assert_eq!(&v1[..8], &[0, 18, 0, 3, 0, 0, 0, 7]);
        assert_eq!(&v1[8..10], &(CLIENT_ID.len() as u16).to_be_bytes());
        assert_eq!(v2.len(), v1.len() + 1);
        assert_eq!(v2.last(), Some(&0));
    }

    #[test]
    fn truncated_response_names_the_field() {
        // Proves a short response fails with the field name and position, not an index panic.
        let message = crate::broker::tests::panic_message(|| {
            ResponseReader::new(&[0, 1, 0]).i32("throttle_time_ms")
        });
        assert!(message.contains("reading throttle_time_ms: need 4 bytes at position 0 of 3"));
    }
}
