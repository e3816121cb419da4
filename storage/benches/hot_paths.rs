//! Micro-benchmarks of the log's hot paths: appending 16 KiB batches (page cache only; the
//! fsync is riffle-bench's raw-disk figure), finding a batch by offset through the sparse
//! index, and reading 1 MiB for a fetch.
//!
//! Run with `cargo bench -p riffle-storage`. Batches are built by hand: the storage crate
//! reads only batch headers, so the records are opaque filler.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use riffle_storage::{DataDir, FirstBatch, Log, LogConfig};

const BATCH_BYTES: usize = 16 * 1024;
const RECORDS_PER_BATCH: i32 = 16;
/// Batches in the log the read benchmarks search: 64 MiB.
const PREFILLED_BATCHES: i64 = 4096;
const FETCH_MAX_BYTES: usize = 1024 * 1024;

/// A v2 batch header (61 bytes, Kafka's layout) over zeroed records, with a valid CRC-32C.
fn batch_16_kib() -> Vec<u8> {
    let mut batch = vec![0u8; BATCH_BYTES];
    let batch_length = i32::try_from(BATCH_BYTES - 12).expect("small");
    batch[8..12].copy_from_slice(&batch_length.to_be_bytes());
    batch[16] = 2; // magic
    batch[23..27].copy_from_slice(&(RECORDS_PER_BATCH - 1).to_be_bytes()); // last offset delta
    batch[27..35].copy_from_slice(&1_700_000_000_000_i64.to_be_bytes()); // base timestamp
    batch[35..43].copy_from_slice(&1_700_000_000_000_i64.to_be_bytes()); // max timestamp
    batch[43..51].copy_from_slice(&(-1_i64).to_be_bytes()); // producer id: none
    batch[51..53].copy_from_slice(&(-1_i16).to_be_bytes()); // producer epoch
    batch[53..57].copy_from_slice(&(-1_i32).to_be_bytes()); // base sequence
    batch[57..61].copy_from_slice(&RECORDS_PER_BATCH.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

fn open_log(dir: &std::path::Path) -> (DataDir, Log) {
    let data_dir = DataDir::open(dir).expect("open data dir");
    let log = data_dir
        .open_log("bench", 0, LogConfig::default())
        .expect("open log");
    (data_dir, log)
}

fn append(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("storage");
    group.throughput(Throughput::Bytes(BATCH_BYTES as u64));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2));
    group.bench_function("append_16KiB", |bench| {
        // A fresh log per sample, so the disk use stays at one sample's worth.
        bench.iter_custom(|iterations| {
            let dir = tempfile::tempdir().expect("temp dir");
            let (_data_dir, log) = open_log(dir.path());
            let batch = batch_16_kib();
            let started = Instant::now();
            for _ in 0..iterations {
                log.append(&batch, 0).expect("append");
            }
            started.elapsed()
        })
    });
    group.finish();
}

fn reads(criterion: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_data_dir, log) = open_log(dir.path());
    let batch = batch_16_kib();
    for _ in 0..PREFILLED_BATCHES {
        log.append(&batch, 0).expect("append");
    }
    let offsets_total = PREFILLED_BATCHES * i64::from(RECORDS_PER_BATCH);
    // xorshift: random offsets without a dependency, the same sequence every run.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut random_offset = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        i64::try_from(state % offsets_total as u64).expect("small")
    };
    let mut group = criterion.benchmark_group("storage");
    group.bench_function("index_lookup_random_offset", |bench| {
        bench.iter(|| {
            log.read(random_offset(), 1, FirstBatch::AlwaysWhole)
                .expect("read")
        })
    });
    group.throughput(Throughput::Bytes(FETCH_MAX_BYTES as u64));
    group.bench_function("fetch_read_1MiB", |bench| {
        bench.iter(|| {
            log.read(random_offset(), FETCH_MAX_BYTES, FirstBatch::AlwaysWhole)
                .expect("read")
        })
    });
    group.finish();
}

criterion_group!(benches, append, reads);
criterion_main!(benches);
