//! Property: whatever batches are appended, with whatever segment and index sizes, a reopen
//! (clean, or after a crash that cut the active segment anywhere) gives back every batch
//! before the cut, byte for byte, with contiguous offsets, and every aborted transaction
//! recorded with a marker before the cut; and appends carry on after it.

mod common;

use common::batch::{base_offset_of, batch, last_offset_of};
use common::{
    active_log_file, append, assert_every_offset_reads_its_batch, close_cleanly, crash, file_len,
    open_log, partition_dir, read_all, temp_dir, truncate_file,
};
use proptest::prelude::*;
use riffle_storage::format::parse_segment_file_name;
use riffle_storage::{AbortedTransaction, Log, LogConfig};

/// How the broker stopped before the reopen.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// Logs closed and the clean-shutdown marker written.
    Clean,
    /// Logs dropped without the marker; the active segment then cut at this many
    /// thousandths of its length.
    UncleanCut(u64),
    /// The process died without closing anything; the active segment then cut.
    CrashCut(u64),
}

fn stop_strategy() -> impl Strategy<Value = Stop> {
    prop_oneof![
        Just(Stop::Clean),
        (0_u64..=1000).prop_map(Stop::UncleanCut),
        (0_u64..=1000).prop_map(Stop::CrashCut),
    ]
}

fn config_strategy() -> impl Strategy<Value = LogConfig> {
    (300_u64..3_000, 0_u64..600, 48_u64..400).prop_map(
        |(segment_bytes, index_interval_bytes, segment_index_bytes)| LogConfig {
            segment_bytes,
            index_interval_bytes,
            segment_index_bytes,
            ..common::small_config()
        },
    )
}

/// Cuts the active segment at `permille` thousandths of its length and returns the batches
/// expected to survive: every batch of earlier segments, and the active segment's batches
/// that end at or before the cut.
fn cut_active_segment(dir: &std::path::Path, stored: &[Vec<u8>], permille: u64) -> Vec<Vec<u8>> {
    let active = active_log_file(&partition_dir(dir));
    let name = active
        .file_name()
        .and_then(|name| name.to_str())
        .expect("name");
    let (active_base, _) = parse_segment_file_name(name).expect("segment name");
    let length = file_len(&active);
    let cut = length * permille / 1000;
    truncate_file(&active, cut);
    let mut position = 0;
    let mut survivors = Vec::new();
    for batch in stored {
        if base_offset_of(batch) < active_base {
            survivors.push(batch.clone());
            continue;
        }
        position += u64::try_from(batch.len()).expect("small");
        if position <= cut {
            survivors.push(batch.clone());
        }
    }
    survivors
}

/// Appends one batch per `(records_count, payload_bytes, ends_an_abort)`; for each batch that
/// ends an abort, records the aborted transaction it ends (from the batch before it), as the
/// broker does right after appending a marker. Returns the batches as stored and the
/// aborted transactions.
fn append_with_aborts(
    log: &Log,
    shapes: &[(i32, usize, bool)],
) -> (Vec<Vec<u8>>, Vec<AbortedTransaction>) {
    let mut stored: Vec<Vec<u8>> = Vec::new();
    let mut aborted = Vec::new();
    for (index, (records_count, payload_bytes, ends_an_abort)) in shapes.iter().enumerate() {
        let (outcome, bytes) = append(log, &batch(*records_count, *payload_bytes), 0);
        let first_offset = stored
            .last()
            .map_or(outcome.base_offset, |previous| base_offset_of(previous));
        stored.push(bytes);
        if *ends_an_abort {
            let entry = AbortedTransaction {
                producer_id: i64::try_from(index).expect("small"),
                first_offset,
                last_offset: outcome.last_offset,
                last_stable_offset: outcome.last_offset + 1,
            };
            log.add_aborted_transaction(entry).expect("add");
            aborted.push(entry);
        }
    }
    (stored, aborted)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn reopen_keeps_every_batch_before_the_cut(
        shapes in prop::collection::vec((1_i32..6, 0_usize..400, any::<bool>()), 1..50),
        config in config_strategy(),
        stop in stop_strategy(),
    ) {
        let dir = temp_dir("reopen_keeps_every_batch_before_the_cut");
        let (data_dir, log) = open_log(dir.path(), config);
        let (stored, aborted) = append_with_aborts(&log, &shapes);
        let expected = match stop {
            Stop::Clean => {
                close_cleanly(data_dir, log);
                stored.clone()
            }
            Stop::UncleanCut(permille) => {
                drop((log, data_dir));
                cut_active_segment(dir.path(), &stored, permille)
            }
            Stop::CrashCut(permille) => {
                crash(log);
                drop(data_dir);
                cut_active_segment(dir.path(), &stored, permille)
            }
        };

        let (_data_dir, log) = open_log(dir.path(), config);
        let read = read_all(&log);
        prop_assert_eq!(&read, &expected);
        let mut next_offset = 0;
        for batch in &read {
            prop_assert_eq!(base_offset_of(batch), next_offset);
            next_offset = last_offset_of(batch) + 1;
        }
        prop_assert_eq!(log.next_offset(), next_offset);
        let aborted_before_cut: Vec<AbortedTransaction> = aborted
            .into_iter()
            .filter(|entry| entry.last_offset < next_offset)
            .collect();
        prop_assert_eq!(log.aborted_transactions(0, i64::MAX).expect("aborted"), aborted_before_cut);
        assert_every_offset_reads_its_batch(&log, &read);
        let more = batch(2, 30);
        let outcome = log.append(&more, 0).expect("append after reopen");
        prop_assert_eq!(outcome.base_offset, next_offset);
    }
}
