//! The compression codecs of a record batch, and a size limit on what they inflate to.
//!
//! A compressed batch stores all its records as one blob after the header. Readers of
//! individual records (the processor, tests, CLI consumers) come here, and the broker
//! when a topic's `compression.type` differs from the producer's; every codec a Kafka
//! client can write must decode: gzip, snappy (xerial-framed and raw, see
//! [`super::snappy`]), LZ4 frame and zstd. Produce's check streams instead (`scan`).

use std::io::{Read, Write};

use super::{RecordError, snappy};

/// The most bytes one batch's records may decompress to, unless the caller picks a limit.
///
/// Kafka's own default `message.max.bytes` is 1 MiB, and compression ratios above 100:1
/// are rare, so 256 MiB leaves real batches far behind while a decompression bomb
/// becomes an error instead of an out-of-memory kill. Memory briefly peaks at up to twice
/// this while the output buffer grows.
pub const MAX_DECOMPRESSED_BYTES: usize = 256 * 1024 * 1024;

/// zstd level the builder uses: Kafka's default `compression.zstd.level`.
const ZSTD_LEVEL: i32 = 3;

/// How the records of a batch are compressed: attribute bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Records stored as they are (codec 0).
    #[default]
    None,
    /// A gzip stream (codec 1).
    Gzip,
    /// Snappy, xerial-framed or a raw block (codec 2).
    Snappy,
    /// The LZ4 frame format (codec 3).
    Lz4,
    /// A zstd frame (codec 4); Produce v7+ and Fetch v10+ only.
    Zstd,
}

impl Compression {
    /// The codec named by a batch's attributes (bits 0-2; the other bits are ignored).
    ///
    /// # Errors
    /// `UnsupportedCompression` for codecs 5, 6 and 7.
    pub fn from_attributes(attributes: i16) -> Result<Self, RecordError> {
        Self::try_from(attributes & super::format::COMPRESSION_MASK)
    }

    /// The codec number Kafka writes in attribute bits 0-2.
    pub fn id(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }

    /// The codec's name as Kafka's `compression.type` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

impl TryFrom<i16> for Compression {
    type Error = RecordError;

    /// Reads a codec number (not a whole attributes field; see [`Compression::from_attributes`]).
    fn try_from(id: i16) -> Result<Self, RecordError> {
        match id {
            0 => Ok(Self::None),
            1 => Ok(Self::Gzip),
            2 => Ok(Self::Snappy),
            3 => Ok(Self::Lz4),
            4 => Ok(Self::Zstd),
            other => Err(RecordError::UnsupportedCompression(other)),
        }
    }
}

impl TryFrom<u8> for Compression {
    type Error = RecordError;

    /// Reads a codec number.
    fn try_from(id: u8) -> Result<Self, RecordError> {
        Self::try_from(i16::from(id))
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

/// Compresses `records` the way a Kafka producer does for `compression`.
///
/// Snappy is written xerial-framed, as the Java client and kafka-python write it; LZ4 as a
/// frame of independent 64 KiB blocks, as the Java client writes it.
///
/// # Errors
/// `Compress` if the codec fails, which writing to memory does not do in practice.
pub fn compress(compression: Compression, records: &[u8]) -> Result<Vec<u8>, RecordError> {
    let failed = |error: std::io::Error| RecordError::Compress(format!("{compression}: {error}"));
    match compression {
        Compression::None => Ok(records.to_vec()),
        Compression::Gzip => {
            let level = flate2::Compression::default();
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
            encoder.write_all(records).map_err(failed)?;
            encoder.finish().map_err(failed)
        }
        Compression::Snappy => snappy::compress_xerial(records),
        Compression::Lz4 => {
            let frame_info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut encoder =
                lz4_flex::frame::FrameEncoder::with_frame_info(frame_info, Vec::new());
            encoder.write_all(records).map_err(failed)?;
            encoder.finish().map_err(|error| failed(error.into()))
        }
        Compression::Zstd => zstd::stream::encode_all(records, ZSTD_LEVEL).map_err(failed),
    }
}

/// Inflates the records blob of a batch compressed with `compression`.
///
/// # Errors
/// `Decompress` if the bytes are not a valid stream for the codec, `DecompressedTooLarge`
/// as soon as the output would pass `max_decompressed_bytes`.
pub fn decompress(
    compression: Compression,
    compressed: &[u8],
    max_decompressed_bytes: usize,
) -> Result<Vec<u8>, RecordError> {
    match compression {
        Compression::None => read_to_limit(compressed, compression, max_decompressed_bytes),
        // Multi-member: concatenated gzip streams are one valid gzip file, and Java's
        // GZIPInputStream reads them all.
        Compression::Gzip => {
            let decoder = flate2::read::MultiGzDecoder::new(compressed);
            read_to_limit(decoder, compression, max_decompressed_bytes)
        }
        Compression::Snappy => snappy::decompress(compressed, max_decompressed_bytes),
        Compression::Lz4 => {
            let decoder = lz4_flex::frame::FrameDecoder::new(compressed);
            read_to_limit(decoder, compression, max_decompressed_bytes)
        }
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(compressed)
                .map_err(|error| RecordError::Decompress(format!("{compression}: {error}")))?;
            read_to_limit(decoder, compression, max_decompressed_bytes)
        }
    }
}

/// Reads `reader` to its end, but never more than one byte past `max_bytes`.
fn read_to_limit(
    reader: impl Read,
    compression: Compression,
    max_bytes: usize,
) -> Result<Vec<u8>, RecordError> {
    // One byte more than the limit tells "exactly at the limit" from "over it".
    let max_read_bytes = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut output = Vec::new();
    reader
        .take(max_read_bytes)
        .read_to_end(&mut output)
        .map_err(|error| RecordError::Decompress(format!("{compression}: {error}")))?;
    if output.len() > max_bytes {
        return Err(RecordError::DecompressedTooLarge {
            limit_bytes: max_bytes,
        });
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn sample_records() -> Vec<u8> {
        // Compressible but not trivial: repeated text with a counter.
        (0..2000)
            .flat_map(|index: u32| format!("record {index} of many;").into_bytes())
            .collect()
    }

    #[test]
    fn codec_ids_round_trip_and_5_to_7_are_rejected() {
        // Every defined codec maps to its id and back; the three spare ids are errors.
        for compression in ALL {
            assert_eq!(Compression::try_from(compression.id()), Ok(compression));
        }
        for id in 5_u8..=7 {
            assert_eq!(
                Compression::try_from(id),
                Err(RecordError::UnsupportedCompression(i16::from(id)))
            );
        }
        // Attributes with other bits set (timestamp type, transactional, control) still
        // name their codec.
        assert_eq!(
            Compression::from_attributes(0b11_1011),
            Ok(Compression::Lz4)
        );
        assert_eq!(
            Compression::from_attributes(0b1111),
            Err(RecordError::UnsupportedCompression(7))
        );
    }

    #[test]
    fn every_codec_round_trips() {
        // compress then decompress gives back the input, for each codec.
        let records = sample_records();
        for compression in ALL {
            let compressed = compress(compression, &records).expect("compress");
            let inflated = decompress(compression, &compressed, MAX_DECOMPRESSED_BYTES);
            assert_eq!(inflated.as_deref(), Ok(&records[..]), "{compression}");
        }
    }

    #[test]
    fn gzip_written_by_flate2_directly_decodes() {
        // Interop: a plain gzip stream from the library, and two concatenated members.
        let records = sample_records();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&records).expect("write");
        let member = encoder.finish().expect("finish");
        let inflated = decompress(Compression::Gzip, &member, MAX_DECOMPRESSED_BYTES);
        assert_eq!(inflated.as_deref(), Ok(&records[..]));

        let two_members = [member.clone(), member].concat();
        let inflated = decompress(Compression::Gzip, &two_members, MAX_DECOMPRESSED_BYTES);
        assert_eq!(inflated, Ok([records.clone(), records].concat()));
    }

    #[test]
    fn lz4_frame_written_by_lz4_flex_directly_decodes() {
        // Interop: a default lz4_flex frame (auto block size, no checksums) and one with
        // linked blocks and a content checksum, as other LZ4 writers may choose.
        let records = sample_records();
        let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
        encoder.write_all(&records).expect("write");
        let frame = encoder.finish().expect("finish");
        assert_eq!(
            decompress(Compression::Lz4, &frame, MAX_DECOMPRESSED_BYTES),
            Ok(records.clone())
        );

        let frame_info = lz4_flex::frame::FrameInfo::new()
            .block_mode(lz4_flex::frame::BlockMode::Linked)
            .content_checksum(true);
        let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(frame_info, Vec::new());
        encoder.write_all(&records).expect("write");
        let frame = encoder.finish().expect("finish");
        assert_eq!(
            decompress(Compression::Lz4, &frame, MAX_DECOMPRESSED_BYTES),
            Ok(records)
        );
    }

    #[test]
    fn zstd_written_by_zstd_directly_decodes() {
        // Interop: a single-shot frame (content size in the header) and a streamed one.
        let records = sample_records();
        let bulk = zstd::bulk::compress(&records, 19).expect("compress");
        assert_eq!(
            decompress(Compression::Zstd, &bulk, MAX_DECOMPRESSED_BYTES),
            Ok(records.clone())
        );
        let streamed = zstd::stream::encode_all(&records[..], 1).expect("compress");
        assert_eq!(
            decompress(Compression::Zstd, &streamed, MAX_DECOMPRESSED_BYTES),
            Ok(records)
        );
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_limit() {
        // 1 MiB of zeros compresses to a few KiB; with a 64 KiB limit every codec refuses
        // it instead of inflating it whole.
        let zeros = vec![0_u8; 1024 * 1024];
        let limit_bytes = 64 * 1024;
        for compression in ALL {
            let bomb = compress(compression, &zeros).expect("compress");
            assert_eq!(
                decompress(compression, &bomb, limit_bytes),
                Err(RecordError::DecompressedTooLarge { limit_bytes }),
                "{compression}"
            );
        }
        // Exactly at the limit is fine.
        let exact = compress(Compression::Zstd, &zeros[..limit_bytes]).expect("compress");
        assert_eq!(
            decompress(Compression::Zstd, &exact, limit_bytes).map(|v| v.len()),
            Ok(limit_bytes)
        );
    }

    #[test]
    fn garbage_is_a_decompress_error_for_every_codec() {
        // Bytes that are no valid stream for any codec give an error, not a panic.
        let garbage = [0x05_u8, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02];
        for compression in ALL.into_iter().filter(|c| *c != Compression::None) {
            let result = decompress(compression, &garbage, MAX_DECOMPRESSED_BYTES);
            assert!(
                matches!(result, Err(RecordError::Decompress(_))),
                "{compression}: {result:?}"
            );
        }
    }
}
