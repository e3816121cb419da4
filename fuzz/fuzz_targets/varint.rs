//! Any bytes as varints: reading never panics, and what reads writes back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riffle_protocol::varint::{put_varlong, read_unsigned_varint, read_varint, read_varlong};

fuzz_target!(|data: &[u8]| {
    let _ = read_unsigned_varint(data);
    let _ = read_varint(data);
    if let Ok((value, _)) = read_varlong(data) {
        let mut buf = Vec::new();
        put_varlong(&mut buf, value);
        assert_eq!(read_varlong(&buf).map(|(again, _)| again), Ok(value));
    }
});
