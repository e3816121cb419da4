//! Any bytes as a request frame: decoding never panics, and whatever decodes encodes back
//! into a frame that decodes to the same request.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use riffle_protocol::{TrailingBytes, decode_request, decode_request_with, encode_request};

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    let _ = decode_request_with(frame.clone(), TrailingBytes::Ignore);
    if let Ok((header, request)) = decode_request(frame) {
        let mut encoded = BytesMut::new();
        encode_request(&header, &request, &mut encoded);
        let again = decode_request(Bytes::from(encoded).slice(4..)).expect("our own encoding decodes");
        assert_eq!(again, (header, request));
    }
});
