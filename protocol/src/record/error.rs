//! Why a record batch could not be read, checked or built.

/// A record batch could not be parsed, verified, decompressed, decoded or built.
///
/// `Incomplete` is expected at the end of a Fetch response or a log segment that is still
/// being written; every other variant means the bytes are not a valid v2 batch (the broker
/// answers CORRUPT_MESSAGE) or, for the builder, that a value does not fit its wire field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The buffer ends before the batch does.
    #[error("need more bytes")]
    Incomplete,
    /// The magic byte is not 2: a legacy (v0/v1) message set or garbage.
    #[error("unsupported magic {0}: only record batch v2 is supported")]
    BadMagic(i8),
    /// The CRC-32C stored in the batch does not match its bytes.
    #[error("crc mismatch: batch says {expected:#010x}, its bytes give {computed:#010x}")]
    CrcMismatch {
        /// The CRC the batch carries.
        expected: u32,
        /// The CRC of the bytes from `attributes` to the end.
        computed: u32,
    },
    /// A length or count read from the wire is negative where that is not allowed, or
    /// larger than the bytes that hold it.
    #[error("invalid {field} {length}")]
    InvalidLength {
        /// The wire field the length came from, e.g. `"batch_length"`.
        field: &'static str,
        /// The value read.
        length: i64,
    },
    /// The compression bits name a codec Kafka does not define (5, 6 or 7).
    #[error("unsupported compression codec {0}")]
    UnsupportedCompression(i16),
    /// The compressed records are not a valid stream for their codec.
    #[error("cannot decompress records: {0}")]
    Decompress(String),
    /// Decompressing would exceed the limit: a corrupt batch or a decompression bomb.
    #[error("decompressed records exceed {limit_bytes} bytes")]
    DecompressedTooLarge {
        /// The limit that was reached.
        limit_bytes: usize,
    },
    /// The codec failed while compressing (the builder only).
    #[error("cannot compress records: {0}")]
    Compress(String),
    /// The records end before `records_count` of them were read.
    #[error("records_count says {declared} but the batch holds only {found}")]
    RecordCountMismatch {
        /// The batch header's `records_count`.
        declared: i32,
        /// How many whole records the bytes held.
        found: usize,
    },
    /// Bytes remain after the last record, or after the batch where exactly one batch was
    /// expected.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// A record's fields are truncated or inconsistent with its length; names the field.
    #[error("malformed record: bad {0}")]
    MalformedRecord(&'static str),
    /// A record's offset delta is not its position in the batch: Kafka refuses batches
    /// whose inner offsets skip or repeat.
    #[error("record {expected} has offset delta {found}; deltas must count up from 0")]
    UnexpectedOffsetDelta {
        /// The record's position, the delta it should have.
        expected: i32,
        /// The delta it has.
        found: i32,
    },
    /// A value given to the builder does not fit its wire field; names the field.
    #[error("{0} does not fit its wire field")]
    FieldOverflow(&'static str),
    /// The builder was asked for a batch without records, which Kafka never writes.
    #[error("a record batch needs at least one record")]
    EmptyBatch,
}
