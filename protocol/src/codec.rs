//! The primitive wire types and the [`Wire`] trait every message field implements.
//!
//! A type encodes itself in one of two shapes, chosen by [`Ctx::flexible`]: the classic
//! shape (INT16-length strings, INT32-length bytes and arrays) or the compact shape of
//! flexible versions (unsigned-varint lengths stored as `length + 1`, so that 0 means
//! null). `Option<T>` is the nullable form of `T`.
//!
//! Decoding reads from the front of a [`Bytes`] and splits values off it, so `Bytes`
//! fields (record batches above all) are zero-copy slices of the request frame.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::DecodeError;
use crate::varint::{put_unsigned_varint, read_unsigned_varint};

/// What a value needs to know to pick its wire shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ctx {
    /// The API version of the message being coded.
    pub version: i16,
    /// Whether that version is flexible (compact types and tagged fields, KIP-482).
    pub flexible: bool,
}

/// A value that can be written to and read from the Kafka wire.
pub trait Wire: Sized {
    /// Appends the encoding of `self` to `buf`.
    fn encode(&self, buf: &mut BytesMut, ctx: Ctx);
    /// Splits one value off the front of `buf`.
    ///
    /// # Errors
    /// [`DecodeError::Incomplete`] if `buf` ends early, another variant if the bytes are
    /// not a valid encoding.
    fn decode(buf: &mut Bytes, ctx: Ctx) -> Result<Self, DecodeError>;
}

/// A 16-byte topic id, as Kafka's `uuid` type. All zeroes means "no id".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero id Kafka uses for "unknown" or "not set".
    pub const ZERO: Uuid = Uuid([0; 16]);

    /// Whether this is the all-zero id.
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }
}

/// Makes sure `buf` holds at least `len` more bytes.
pub(crate) fn need(buf: &Bytes, len: usize) -> Result<(), DecodeError> {
    if buf.remaining() < len {
        Err(DecodeError::Incomplete)
    } else {
        Ok(())
    }
}

/// Splits `len` bytes off the front of `buf`, zero-copy.
pub(crate) fn take(buf: &mut Bytes, len: usize) -> Result<Bytes, DecodeError> {
    need(buf, len)?;
    Ok(buf.split_to(len))
}

/// Reads an unsigned varint from the front of `buf`, advancing past it.
pub(crate) fn get_unsigned_varint(buf: &mut Bytes) -> Result<u32, DecodeError> {
    let (value, used) = read_unsigned_varint(buf)?;
    buf.advance(used);
    Ok(value)
}

macro_rules! fixed_width {
    ($($ty:ty => $get:ident, $put:ident;)*) => {$(
        impl Wire for $ty {
            fn encode(&self, buf: &mut BytesMut, _ctx: Ctx) {
                buf.$put(*self);
            }
            fn decode(buf: &mut Bytes, _ctx: Ctx) -> Result<Self, DecodeError> {
                need(buf, std::mem::size_of::<$ty>())?;
                Ok(buf.$get())
            }
        }
    )*};
}

fixed_width! {
    i8 => get_i8, put_i8;
    i16 => get_i16, put_i16;
    i32 => get_i32, put_i32;
    i64 => get_i64, put_i64;
    u16 => get_u16, put_u16;
    u32 => get_u32, put_u32;
    f64 => get_f64, put_f64;
}

impl Wire for bool {
    fn encode(&self, buf: &mut BytesMut, _ctx: Ctx) {
        buf.put_u8(u8::from(*self));
    }
    fn decode(buf: &mut Bytes, _ctx: Ctx) -> Result<Self, DecodeError> {
        need(buf, 1)?;
        // Kafka reads any non-zero byte as true.
        Ok(buf.get_u8() != 0)
    }
}

impl Wire for Uuid {
    fn encode(&self, buf: &mut BytesMut, _ctx: Ctx) {
        buf.put_slice(&self.0);
    }
    fn decode(buf: &mut Bytes, _ctx: Ctx) -> Result<Self, DecodeError> {
        let mut id = [0u8; 16];
        need(buf, id.len())?;
        buf.copy_to_slice(&mut id);
        Ok(Uuid(id))
    }
}

/// Writes the length prefix of a string, bytes or array; `None` writes null.
pub(crate) fn put_length(buf: &mut BytesMut, ctx: Ctx, length: Option<usize>, kind: LengthKind) {
    if ctx.flexible {
        // Compact lengths store length + 1 so that 0 can mean null.
        let stored = length.map_or(0, |length| length + 1);
        put_unsigned_varint(buf, u32::try_from(stored).unwrap_or(u32::MAX));
        return;
    }
    match kind {
        LengthKind::Int16 => {
            buf.put_i16(length.map_or(-1, |length| i16::try_from(length).unwrap_or(i16::MAX)))
        }
        LengthKind::Int32 => {
            buf.put_i32(length.map_or(-1, |length| i32::try_from(length).unwrap_or(i32::MAX)))
        }
    }
}

/// Reads a length prefix; `None` is null. A length is always checked against the bytes
/// that remain, so a hostile length cannot make us allocate.
fn get_length(
    buf: &mut Bytes,
    ctx: Ctx,
    kind: LengthKind,
    min_item_bytes: usize,
) -> Result<Option<usize>, DecodeError> {
    let length: i64 = if ctx.flexible {
        i64::from(get_unsigned_varint(buf)?) - 1
    } else {
        match kind {
            LengthKind::Int16 => i64::from(i16::decode(buf, ctx)?),
            LengthKind::Int32 => i64::from(i32::decode(buf, ctx)?),
        }
    };
    if length == -1 {
        return Ok(None);
    }
    let invalid = DecodeError::InvalidLength(length);
    let length = usize::try_from(length).map_err(|_| invalid.clone())?;
    if length.saturating_mul(min_item_bytes) > buf.remaining() {
        return Err(invalid);
    }
    Ok(Some(length))
}

/// Strings have INT16 lengths on the classic wire; bytes and arrays INT32.
#[derive(Clone, Copy)]
pub(crate) enum LengthKind {
    Int16,
    Int32,
}

fn decode_string(buf: &mut Bytes, ctx: Ctx) -> Result<Option<String>, DecodeError> {
    let Some(length) = get_length(buf, ctx, LengthKind::Int16, 1)? else {
        return Ok(None);
    };
    let bytes = take(buf, length)?;
    String::from_utf8(bytes.to_vec())
        .map(Some)
        .map_err(|_| DecodeError::InvalidUtf8)
}

impl Wire for String {
    fn encode(&self, buf: &mut BytesMut, ctx: Ctx) {
        put_length(buf, ctx, Some(self.len()), LengthKind::Int16);
        buf.put_slice(self.as_bytes());
    }
    fn decode(buf: &mut Bytes, ctx: Ctx) -> Result<Self, DecodeError> {
        decode_string(buf, ctx)?.ok_or(DecodeError::Malformed("null in a non-nullable string"))
    }
}

impl Wire for Option<String> {
    fn encode(&self, buf: &mut BytesMut, ctx: Ctx) {
        match self {
            Some(value) => value.encode(buf, ctx),
            None => put_length(buf, ctx, None, LengthKind::Int16),
        }
    }
    fn decode(buf: &mut Bytes, ctx: Ctx) -> Result<Self, DecodeError> {
        decode_string(buf, ctx)
    }
}

pub(crate) fn decode_bytes(buf: &mut Bytes, ctx: Ctx) -> Result<Option<Bytes>, DecodeError> {
    match get_length(buf, ctx, LengthKind::Int32, 1)? {
        Some(length) => take(buf, length).map(Some),
        None => Ok(None),
    }
}

impl Wire for Bytes {
    fn encode(&self, buf: &mut BytesMut, ctx: Ctx) {
        put_length(buf, ctx, Some(self.len()), LengthKind::Int32);
        buf.put_slice(self);
    }
    fn decode(buf: &mut Bytes, ctx: Ctx) -> Result<Self, DecodeError> {
        decode_bytes(buf, ctx)?.ok_or(DecodeError::Malformed("null in non-nullable bytes"))
    }
}

impl Wire for Option<Bytes> {
    fn encode(&self, buf: &mut BytesMut, ctx: Ctx) {
        match self {
            Some(value) => value.encode(buf, ctx),
            None => put_length(buf, ctx, None, LengthKind::Int32),
        }
    }
    fn decode(buf: &mut Bytes, ctx: Ctx) -> Result<Self, DecodeError> {
        decode_bytes(buf, ctx)
    }
}

fn decode_array<T: Wire>(buf: &mut Bytes, ctx: Ctx) -> Result<Option<Vec<T>>, DecodeError> {
    // Every element takes at least one byte on the wire, which bounds the allocation
    // by the frame size rather than by whatever count the peer claims.
    let Some(count) = get_length(buf, ctx, LengthKind::Int32, 1)? else {
        return Ok(None);
    };
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(T::decode(buf, ctx)?);
    }
    Ok(Some(items))
}

impl<T: Wire> Wire for Vec<T> {
    fn encode(&self, buf: &mut BytesMut, ctx: Ctx) {
        put_length(buf, ctx, Some(self.len()), LengthKind::Int32);
        for item in self {
            item.encode(buf, ctx);
        }
    }
    fn decode(buf: &mut Bytes, ctx: Ctx) -> Result<Self, DecodeError> {
        decode_array(buf, ctx)?.ok_or(DecodeError::Malformed("null in a non-nullable array"))
    }
}

impl<T: Wire> Wire for Option<Vec<T>> {
    fn encode(&self, buf: &mut BytesMut, ctx: Ctx) {
        match self {
            Some(items) => items.encode(buf, ctx),
            None => put_length(buf, ctx, None, LengthKind::Int32),
        }
    }
    fn decode(buf: &mut Bytes, ctx: Ctx) -> Result<Self, DecodeError> {
        decode_array(buf, ctx)
    }
}

/// Collects a struct's tagged fields while encoding, then writes the tagged-field section:
/// a count, then for each field its tag, its size and its bytes, in ascending tag order.
#[derive(Default)]
pub(crate) struct TaggedFields {
    fields: Vec<(u32, BytesMut)>,
}

impl TaggedFields {
    /// Adds a field; callers add in ascending tag order.
    pub(crate) fn push(&mut self, tag: u32, value: &impl Wire, ctx: Ctx) {
        debug_assert!(self.fields.last().is_none_or(|(last, _)| *last < tag));
        let mut bytes = BytesMut::new();
        value.encode(&mut bytes, ctx);
        self.fields.push((tag, bytes));
    }

    /// Writes the section.
    pub(crate) fn finish(self, buf: &mut BytesMut) {
        put_unsigned_varint(buf, u32::try_from(self.fields.len()).unwrap_or(u32::MAX));
        for (tag, bytes) in self.fields {
            put_unsigned_varint(buf, tag);
            put_unsigned_varint(buf, u32::try_from(bytes.len()).unwrap_or(u32::MAX));
            buf.put_slice(&bytes);
        }
    }
}

/// Reads the header of one tagged field: its tag and its bytes.
pub(crate) fn get_tagged_field(buf: &mut Bytes) -> Result<(u32, Bytes), DecodeError> {
    let tag = get_unsigned_varint(buf)?;
    let size = usize::try_from(get_unsigned_varint(buf)?)
        .map_err(|_| DecodeError::Malformed("tagged field size"))?;
    Ok((tag, take(buf, size)?))
}

/// Skips a tagged-field section whose fields we do not know (the request header's).
pub(crate) fn skip_tagged_fields(buf: &mut Bytes) -> Result<(), DecodeError> {
    let count = get_unsigned_varint(buf)?;
    for _ in 0..count {
        get_tagged_field(buf)?;
    }
    Ok(())
}

/// Random values for round-trip property tests: every message type implements
/// [`sample::Sample`] through the `message!` macro.
#[cfg(test)]
pub(crate) mod sample {
    use bytes::Bytes;

    use super::{Ctx, Uuid};

    /// A small deterministic generator (xorshift), seeded by proptest.
    pub(crate) struct SampleRng {
        state: u64,
        /// Nesting depth, so nested arrays stay small.
        pub(crate) depth: u32,
    }

    impl SampleRng {
        pub(crate) fn new(seed: u64) -> Self {
            SampleRng {
                state: seed | 1,
                depth: 0,
            }
        }

        pub(crate) fn next(&mut self) -> u64 {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            self.state
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }
    }

    pub(crate) trait Sample {
        fn sample(rng: &mut SampleRng, ctx: Ctx) -> Self;
    }

    macro_rules! sample_int {
        ($($ty:ty),*) => {$(
            impl Sample for $ty {
                fn sample(rng: &mut SampleRng, _ctx: Ctx) -> Self {
                    rng.next() as $ty
                }
            }
        )*};
    }
    sample_int!(i8, i16, i32, i64, u16, u32);

    impl Sample for f64 {
        fn sample(rng: &mut SampleRng, _ctx: Ctx) -> Self {
            // Whole numbers only: NaN would never compare equal after a round trip.
            (rng.next() % 1_000_000) as f64
        }
    }

    impl Sample for bool {
        fn sample(rng: &mut SampleRng, _ctx: Ctx) -> Self {
            rng.next() & 1 == 1
        }
    }

    impl Sample for Uuid {
        fn sample(rng: &mut SampleRng, _ctx: Ctx) -> Self {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&rng.next().to_be_bytes());
            id[8..].copy_from_slice(&rng.next().to_be_bytes());
            Uuid(id)
        }
    }

    impl Sample for String {
        fn sample(rng: &mut SampleRng, _ctx: Ctx) -> Self {
            let length = rng.below(12) as usize;
            (0..length)
                .map(|_| char::from(b'a' + rng.below(26) as u8))
                .collect()
        }
    }

    impl Sample for Bytes {
        fn sample(rng: &mut SampleRng, _ctx: Ctx) -> Self {
            let length = rng.below(40) as usize;
            (0..length)
                .map(|_| rng.next() as u8)
                .collect::<Vec<u8>>()
                .into()
        }
    }

    impl<T: Sample> Sample for Option<T> {
        fn sample(rng: &mut SampleRng, ctx: Ctx) -> Self {
            if rng.below(4) == 0 {
                None
            } else {
                Some(T::sample(rng, ctx))
            }
        }
    }

    impl<T: Sample> Sample for Vec<T> {
        fn sample(rng: &mut SampleRng, ctx: Ctx) -> Self {
            let max_items = if rng.depth >= 3 { 1 } else { 4 };
            let count = rng.below(max_items + 1);
            rng.depth += 1;
            let items = (0..count).map(|_| T::sample(rng, ctx)).collect();
            rng.depth -= 1;
            items
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLASSIC: Ctx = Ctx {
        version: 0,
        flexible: false,
    };
    const FLEXIBLE: Ctx = Ctx {
        version: 0,
        flexible: true,
    };

    fn encoded(value: &impl Wire, ctx: Ctx) -> Vec<u8> {
        let mut buf = BytesMut::new();
        value.encode(&mut buf, ctx);
        buf.to_vec()
    }

    #[test]
    fn strings_classic_and_compact() {
        assert_eq!(encoded(&"ab".to_string(), CLASSIC), [0, 2, b'a', b'b']);
        assert_eq!(encoded(&"ab".to_string(), FLEXIBLE), [3, b'a', b'b']);
        assert_eq!(encoded(&None::<String>, CLASSIC), [0xff, 0xff]);
        assert_eq!(encoded(&None::<String>, FLEXIBLE), [0]);
    }

    #[test]
    fn null_where_not_nullable_is_malformed() {
        let mut buf = Bytes::from_static(&[0xff, 0xff]);
        assert!(matches!(
            String::decode(&mut buf, CLASSIC),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn array_count_larger_than_frame_is_rejected_before_allocating() {
        let mut buf = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0]);
        assert!(matches!(
            Vec::<i32>::decode(&mut buf, CLASSIC),
            Err(DecodeError::InvalidLength(_))
        ));
    }

    #[test]
    fn truncated_fixed_width_is_incomplete() {
        let mut buf = Bytes::from_static(&[0, 0, 1]);
        assert_eq!(i32::decode(&mut buf, CLASSIC), Err(DecodeError::Incomplete));
    }
}
