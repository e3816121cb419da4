//! Any bytes as stored or produced record batches: parsing, CRC checks, record decoding
//! (every codec, with the decompression limit) and retain never panic.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use riffle_protocol::record::{RecordBatchView, batches, retain_records};

/// Small, so a fuzzer-made decompression bomb is an error quickly.
const MAX_DECOMPRESSED_BYTES: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    for batch in batches(bytes.clone()).take(64) {
        let Ok(batch) = batch else { break };
        let _ = batch.verify_crc();
        let _ = batch.records_with_limit(MAX_DECOMPRESSED_BYTES);
    }
    if let Ok(batch) = RecordBatchView::parse(bytes) {
        let _ = batch.compression();
        if batch.records_with_limit(MAX_DECOMPRESSED_BYTES).is_ok() {
            let _ = retain_records(&batch, |offset| offset % 2 == 0);
        }
    }
});
