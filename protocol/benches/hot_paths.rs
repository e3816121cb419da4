//! Micro-benchmarks of the produce path's protocol work: decoding a Produce request that
//! carries one 16 KiB batch, and the batch checks the handler runs (parse, CRC-32C, the
//! walk over every record).
//!
//! Run with `cargo bench -p riffle-protocol`; the load-level figures are riffle-bench's.

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use riffle_protocol::api::ProduceRequest;
use riffle_protocol::api::produce::{PartitionProduceData, TopicProduceData};
use riffle_protocol::record::{Compression, RecordBatchBuilder, RecordBatchView};
use riffle_protocol::{Request, RequestHeader, decode_request, encode_request};

/// 16 records of 1 KiB values: a 16 KiB batch, librdkafka's typical size at moderate load.
const RECORDS_PER_BATCH: usize = 16;
const VALUE_BYTES: usize = 1024;

fn batch_16_kib() -> Bytes {
    let value = vec![b'v'; VALUE_BYTES];
    let mut builder = RecordBatchBuilder::new(Compression::None);
    for index in 0..RECORDS_PER_BATCH {
        builder.append(1_700_000_000_000 + index as i64, None, Some(&value), &[]);
    }
    builder.build().expect("a valid batch")
}

fn produce_frame(batch: Bytes) -> Bytes {
    let header = RequestHeader {
        api_key: 0,
        api_version: 9,
        correlation_id: 1,
        client_id: Some("bench".into()),
    };
    let request = Request::Produce(ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "bench".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(batch),
            }],
        }],
    });
    let mut frame = BytesMut::new();
    encode_request(&header, &request, &mut frame);
    // decode_request takes the frame without its 4-byte size prefix.
    Bytes::from(frame).slice(4..)
}

fn decode_produce(criterion: &mut Criterion) {
    let frame = produce_frame(batch_16_kib());
    let mut group = criterion.benchmark_group("protocol");
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("decode_produce_16KiB", |bench| {
        bench.iter(|| decode_request(frame.clone()).expect("decodes"))
    });
    let batch = batch_16_kib();
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function("batch_parse_and_crc32c_16KiB", |bench| {
        bench.iter(|| {
            let view = RecordBatchView::parse(batch.clone()).expect("parses");
            view.verify_crc().expect("crc matches");
        })
    });
    // What Produce adds on top: walking every record's framing. 100 B values, as scenario 1
    // of riffle-bench produces, make the per-record cost show.
    let small_records = {
        let value = vec![b'v'; 100];
        let mut builder = RecordBatchBuilder::new(Compression::None);
        for index in 0..160 {
            builder.append(1_700_000_000_000 + index, None, Some(&value), &[]);
        }
        builder.build().expect("a valid batch")
    };
    group.throughput(Throughput::Bytes(small_records.len() as u64));
    group.bench_function("scan_records_160x100B", |bench| {
        let view = RecordBatchView::parse(small_records.clone()).expect("parses");
        bench.iter(|| view.scan_records(usize::MAX, |_| {}).expect("frames"))
    });
    group.bench_function("batch_parse_and_crc32c_160x100B", |bench| {
        bench.iter(|| {
            let view = RecordBatchView::parse(small_records.clone()).expect("parses");
            view.verify_crc().expect("crc matches");
        })
    });
    group.finish();
}

criterion_group!(benches, decode_produce);
criterion_main!(benches);
