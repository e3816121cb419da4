//! Snappy as Kafka clients write it: xerial-framed, or one raw block.
//!
//! # Format
//! ```text
//! xerial (Java client, kafka-python):
//!   82 53 4e 41 50 50 59 00        magic "\x82SNAPPY\0"
//!   version i32, compatible i32    both 1 when we write; not checked when we read
//!   then until the end:
//!   chunk_length i32               big-endian
//!   chunk                          one raw snappy block
//!
//! raw (librdkafka, sarama and others):
//!   one raw snappy block           uncompressed length varint, then elements
//! ```
//! A reader tells them apart by the magic, as the Java client and librdkafka do. The
//! snappy *framing* format (`ff 06 00 00 sNaPpY`) is not something Kafka clients write,
//! and is not accepted.

use super::RecordError;

/// The first 8 bytes of a xerial-framed stream.
const XERIAL_MAGIC: [u8; 8] = *b"\x82SNAPPY\x00";
/// Version and compatible version, after the magic.
const XERIAL_VERSIONS_BYTES: usize = 8;
/// What we write as both version and compatible version: what Java's snappy-java writes.
const XERIAL_VERSION: i32 = 1;
/// Uncompressed bytes per xerial chunk: snappy-java's default block size.
const XERIAL_CHUNK_BYTES: usize = 32 * 1024;

/// Inflates a Kafka snappy blob, xerial-framed or raw, up to `max_bytes`.
///
/// # Errors
/// `Decompress` for a truncated frame or an invalid block, `DecompressedTooLarge` when a
/// block's declared length would take the output past `max_bytes` (checked before
/// allocating).
pub(crate) fn decompress(compressed: &[u8], max_bytes: usize) -> Result<Vec<u8>, RecordError> {
    let mut output = Vec::new();
    match compressed.strip_prefix(&XERIAL_MAGIC) {
        Some(after_magic) => decompress_xerial(after_magic, &mut output, max_bytes)?,
        None => decompress_block(compressed, &mut output, max_bytes)?,
    }
    Ok(output)
}

/// Inflates a Kafka snappy blob one block at a time, for readers that stream: memory holds
/// one block's output (a xerial chunk, or the whole of a raw block), never more than
/// `max_bytes` in all.
pub(crate) struct SnappyReader<'a> {
    pending: PendingBlocks<'a>,
    inflated: Vec<u8>,
    position: usize,
    max_bytes: usize,
    inflated_total_bytes: usize,
}

/// The blocks a [`SnappyReader`] has not inflated yet.
enum PendingBlocks<'a> {
    /// Xerial chunks, each `chunk_length` then a block.
    Xerial(&'a [u8]),
    /// One raw block.
    Raw(&'a [u8]),
    /// Everything was read.
    Done,
}

impl<'a> SnappyReader<'a> {
    pub(crate) fn new(compressed: &'a [u8], max_bytes: usize) -> Self {
        let pending = match compressed.strip_prefix(&XERIAL_MAGIC) {
            // A header cut short reads as a truncated chunk below.
            Some(after_magic) => {
                PendingBlocks::Xerial(after_magic.get(XERIAL_VERSIONS_BYTES..).unwrap_or(&[0]))
            }
            None => PendingBlocks::Raw(compressed),
        };
        SnappyReader {
            pending,
            inflated: Vec::new(),
            position: 0,
            max_bytes,
            inflated_total_bytes: 0,
        }
    }

    /// The next block to inflate, `None` at the end.
    fn next_block(&mut self) -> Result<Option<&'a [u8]>, RecordError> {
        let failed = |reason: &str| RecordError::Decompress(format!("snappy: {reason}"));
        match std::mem::replace(&mut self.pending, PendingBlocks::Done) {
            PendingBlocks::Done => Ok(None),
            PendingBlocks::Raw(block) => Ok(Some(block)),
            PendingBlocks::Xerial([]) => Ok(None),
            PendingBlocks::Xerial(chunks) => {
                let (length_bytes, rest) = chunks
                    .split_first_chunk::<4>()
                    .ok_or_else(|| failed("truncated xerial chunk length"))?;
                let chunk_bytes = usize::try_from(i32::from_be_bytes(*length_bytes))
                    .map_err(|_| failed("negative xerial chunk length"))?;
                let (chunk, rest) = rest
                    .split_at_checked(chunk_bytes)
                    .ok_or_else(|| failed("truncated xerial chunk"))?;
                self.pending = PendingBlocks::Xerial(rest);
                Ok(Some(chunk))
            }
        }
    }
}

impl std::io::Read for SnappyReader<'_> {
    fn read(&mut self, output: &mut [u8]) -> std::io::Result<usize> {
        let invalid =
            |error: RecordError| std::io::Error::new(std::io::ErrorKind::InvalidData, error);
        while self.position == self.inflated.len() {
            let Some(block) = self.next_block().map_err(invalid)? else {
                return Ok(0);
            };
            self.inflated.clear();
            self.position = 0;
            let budget_bytes = self.max_bytes.saturating_sub(self.inflated_total_bytes);
            decompress_block(block, &mut self.inflated, budget_bytes).map_err(invalid)?;
            self.inflated_total_bytes += self.inflated.len();
        }
        let available = &self.inflated[self.position..];
        let copied = available.len().min(output.len());
        output[..copied].copy_from_slice(&available[..copied]);
        self.position += copied;
        Ok(copied)
    }
}

/// Writes `records` xerial-framed, in chunks of [`XERIAL_CHUNK_BYTES`].
pub(crate) fn compress_xerial(records: &[u8]) -> Result<Vec<u8>, RecordError> {
    let mut output = Vec::with_capacity(XERIAL_MAGIC.len() + XERIAL_VERSIONS_BYTES + records.len());
    output.extend_from_slice(&XERIAL_MAGIC);
    output.extend_from_slice(&XERIAL_VERSION.to_be_bytes());
    output.extend_from_slice(&XERIAL_VERSION.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for chunk in records.chunks(XERIAL_CHUNK_BYTES) {
        let block = encoder
            .compress_vec(chunk)
            .map_err(|error| RecordError::Compress(format!("snappy: {error}")))?;
        // A 32 KiB chunk compresses to at most snap::raw::max_compress_len(32 KiB) bytes.
        let block_length = i32::try_from(block.len())
            .map_err(|_| RecordError::FieldOverflow("xerial chunk length"))?;
        output.extend_from_slice(&block_length.to_be_bytes());
        output.extend_from_slice(&block);
    }
    Ok(output)
}

fn decompress_xerial(
    after_magic: &[u8],
    output: &mut Vec<u8>,
    max_bytes: usize,
) -> Result<(), RecordError> {
    let failed = |reason: &str| RecordError::Decompress(format!("snappy: {reason}"));
    // The versions are not checked: every writer uses 1, and readers (Java, librdkafka)
    // do not refuse other values either.
    let mut chunks = after_magic
        .get(XERIAL_VERSIONS_BYTES..)
        .ok_or_else(|| failed("truncated xerial header"))?;
    while let Some((length_bytes, rest)) = chunks.split_first_chunk::<4>() {
        let chunk_length = i32::from_be_bytes(*length_bytes);
        let chunk_bytes =
            usize::try_from(chunk_length).map_err(|_| failed("negative xerial chunk length"))?;
        let (chunk, rest) = rest
            .split_at_checked(chunk_bytes)
            .ok_or_else(|| failed("truncated xerial chunk"))?;
        decompress_block(chunk, output, max_bytes)?;
        chunks = rest;
    }
    if !chunks.is_empty() {
        return Err(failed("truncated xerial chunk length"));
    }
    Ok(())
}

/// Appends the inflated raw snappy `block` to `output`.
fn decompress_block(
    block: &[u8],
    output: &mut Vec<u8>,
    max_bytes: usize,
) -> Result<(), RecordError> {
    let failed = |error: snap::Error| RecordError::Decompress(format!("snappy: {error}"));
    let block_bytes = snap::raw::decompress_len(block).map_err(failed)?;
    let start = output.len();
    if block_bytes > max_bytes.saturating_sub(start) {
        return Err(RecordError::DecompressedTooLarge {
            limit_bytes: max_bytes,
        });
    }
    output.resize(start + block_bytes, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut output[start..])
        .map_err(failed)?;
    output.truncate(start + written);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNLIMITED_BYTES: usize = usize::MAX;

    fn sample_records(size_bytes: usize) -> Vec<u8> {
        (0..size_bytes)
            .map(|index| b"kafka snappy xerial"[index % 19])
            .collect()
    }

    /// Lays out a xerial stream from the library's raw blocks, without our encoder.
    fn xerial_by_hand(chunks: &[&[u8]]) -> Vec<u8> {
        let mut stream = b"\x82SNAPPY\x00".to_vec();
        stream.extend_from_slice(&1_i32.to_be_bytes());
        stream.extend_from_slice(&1_i32.to_be_bytes());
        for chunk in chunks {
            let block = snap::raw::Encoder::new()
                .compress_vec(chunk)
                .expect("compress");
            stream.extend_from_slice(&i32::try_from(block.len()).expect("small").to_be_bytes());
            stream.extend_from_slice(&block);
        }
        stream
    }

    #[test]
    fn raw_block_from_snap_decodes() {
        // librdkafka-style input: one raw block, no framing.
        let records = sample_records(100_000);
        let block = snap::raw::Encoder::new()
            .compress_vec(&records)
            .expect("compress");
        assert_eq!(decompress(&block, UNLIMITED_BYTES), Ok(records));
    }

    #[test]
    fn xerial_chunks_laid_out_by_hand_decode() {
        // Java-style input: the xerial header, then several length-prefixed raw blocks.
        let records = sample_records(80_000);
        let (first, rest) = records.split_at(32 * 1024);
        let (second, third) = rest.split_at(32 * 1024);
        let stream = xerial_by_hand(&[first, second, third]);
        assert_eq!(decompress(&stream, UNLIMITED_BYTES), Ok(records));
    }

    #[test]
    fn our_xerial_output_has_java_header_and_chunks() {
        // compress_xerial writes the magic, versions 1 and 1, and 32 KiB chunks.
        let records = sample_records(70_000);
        let stream = compress_xerial(&records).expect("compress");
        assert_eq!(
            &stream[..16],
            b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01"
        );
        let first_length = i32::from_be_bytes(stream[16..20].try_into().expect("4 bytes"));
        let first_block = &stream[20..20 + usize::try_from(first_length).expect("positive")];
        assert_eq!(snap::raw::decompress_len(first_block).ok(), Some(32 * 1024));
        assert_eq!(decompress(&stream, UNLIMITED_BYTES), Ok(records));
    }

    #[test]
    fn broken_xerial_streams_are_errors() {
        // Truncations at each level of the framing and a negative chunk length.
        let stream = xerial_by_hand(&[b"hello hello hello"]);
        for cut in [10, 17, stream.len() - 1] {
            let result = decompress(&stream[..cut], UNLIMITED_BYTES);
            assert!(
                matches!(result, Err(RecordError::Decompress(_))),
                "cut at {cut}: {result:?}"
            );
        }
        let mut negative = stream.clone();
        negative[16..20].copy_from_slice(&(-5_i32).to_be_bytes());
        assert!(matches!(
            decompress(&negative, UNLIMITED_BYTES),
            Err(RecordError::Decompress(_))
        ));
    }

    #[test]
    fn declared_length_over_the_limit_is_refused_before_allocating() {
        // A 3-byte raw block that claims 1 MiB is refused by its header alone.
        let claim = [0x80_u8, 0x80, 0x40];
        assert_eq!(
            decompress(&claim, 1024),
            Err(RecordError::DecompressedTooLarge { limit_bytes: 1024 })
        );
    }
}
