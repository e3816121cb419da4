//! Variable-length integers, as Kafka writes them.
//!
//! Two encodings share one wire shape (7 bits per byte, high bit = "more follows"):
//! - *unsigned* varints count compact-string lengths, compact-array lengths and tagged
//!   fields in flexible versions;
//! - *signed* varints are zig-zag encoded first, and appear inside v2 records.
//!
//! A 32-bit varint takes at most 5 bytes and a 64-bit one at most 10; longer input is
//! malformed rather than "needs more bytes", so a hostile peer cannot make us loop.

use bytes::BufMut;

use crate::DecodeError;

/// The most bytes a 32-bit varint may take on the wire.
pub const VARINT32_MAX_BYTES: usize = 5;
/// The most bytes a 64-bit varint may take on the wire.
pub const VARINT64_MAX_BYTES: usize = 10;

/// Reads an unsigned 32-bit varint from the front of `input`.
///
/// Returns the value and how many bytes it took.
pub fn read_unsigned_varint(input: &[u8]) -> Result<(u32, usize), DecodeError> {
    let (value, used) = read_varint_u64(input, VARINT32_MAX_BYTES)?;
    let value =
        u32::try_from(value).map_err(|_| DecodeError::Malformed("varint exceeds 32 bits"))?;
    Ok((value, used))
}

/// Reads a zig-zag encoded signed 32-bit varint from the front of `input`.
pub fn read_varint(input: &[u8]) -> Result<(i32, usize), DecodeError> {
    let (raw, used) = read_unsigned_varint(input)?;
    Ok((((raw >> 1) as i32) ^ -((raw & 1) as i32), used))
}

/// Reads a zig-zag encoded signed 64-bit varint ("varlong") from the front of `input`.
pub fn read_varlong(input: &[u8]) -> Result<(i64, usize), DecodeError> {
    let (raw, used) = read_varint_u64(input, VARINT64_MAX_BYTES)?;
    Ok((((raw >> 1) as i64) ^ -((raw & 1) as i64), used))
}

fn read_varint_u64(input: &[u8], max_bytes: usize) -> Result<(u64, usize), DecodeError> {
    let mut value: u64 = 0;
    for (index, byte) in input.iter().take(max_bytes).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Ok((value, index + 1));
        }
    }
    if input.len() >= max_bytes {
        Err(DecodeError::Malformed("varint too long"))
    } else {
        Err(DecodeError::Incomplete)
    }
}

/// Writes `value` as an unsigned varint.
pub fn put_unsigned_varint(buf: &mut impl BufMut, value: u32) {
    put_varint_u64(buf, u64::from(value));
}

/// Writes `value` zig-zag encoded as a signed varint.
pub fn put_varint(buf: &mut impl BufMut, value: i32) {
    put_varint_u64(buf, u64::from(((value << 1) ^ (value >> 31)) as u32));
}

/// Writes `value` zig-zag encoded as a signed varlong.
pub fn put_varlong(buf: &mut impl BufMut, value: i64) {
    put_varint_u64(buf, ((value << 1) ^ (value >> 63)) as u64);
}

/// How many bytes `put_unsigned_varint(value)` writes.
pub fn unsigned_varint_len(value: u32) -> usize {
    varint_u64_len(u64::from(value))
}

/// How many bytes `put_varint(value)` writes.
pub fn varint_len(value: i32) -> usize {
    varint_u64_len(u64::from(((value << 1) ^ (value >> 31)) as u32))
}

/// How many bytes `put_varlong(value)` writes.
pub fn varlong_len(value: i64) -> usize {
    varint_u64_len(((value << 1) ^ (value >> 63)) as u64)
}

fn put_varint_u64(buf: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

fn varint_u64_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.max(1).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        // Values and bytes from the Kafka protocol guide's varint examples.
        let mut buf = Vec::new();
        put_varint(&mut buf, 300);
        assert_eq!(buf, [0xd8, 0x04]);
        let mut buf = Vec::new();
        put_unsigned_varint(&mut buf, 300);
        assert_eq!(buf, [0xac, 0x02]);
        let mut buf = Vec::new();
        put_varint(&mut buf, -1);
        assert_eq!(buf, [0x01]);
    }

    #[test]
    fn truncated_is_incomplete_and_overlong_is_malformed() {
        assert_eq!(
            read_unsigned_varint(&[0x80, 0x80]),
            Err(DecodeError::Incomplete)
        );
        assert_eq!(
            read_unsigned_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(DecodeError::Malformed("varint too long"))
        );
    }

    proptest! {
        #[test]
        fn unsigned_round_trip(value: u32) {
            let mut buf = Vec::new();
            put_unsigned_varint(&mut buf, value);
            prop_assert_eq!(buf.len(), unsigned_varint_len(value));
            prop_assert_eq!(read_unsigned_varint(&buf), Ok((value, buf.len())));
        }

        #[test]
        fn signed_round_trip(value: i32) {
            let mut buf = Vec::new();
            put_varint(&mut buf, value);
            prop_assert_eq!(buf.len(), varint_len(value));
            prop_assert_eq!(read_varint(&buf), Ok((value, buf.len())));
        }

        #[test]
        fn varlong_round_trip(value: i64) {
            let mut buf = Vec::new();
            put_varlong(&mut buf, value);
            prop_assert_eq!(buf.len(), varlong_len(value));
            prop_assert_eq!(read_varlong(&buf), Ok((value, buf.len())));
        }
    }
}
