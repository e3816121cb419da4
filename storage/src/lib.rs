//! riffle-storage: Riffle's segmented, Kafka-layout log.
//!
//! # Design
//!
//! Each partition is a [`Log`]: an ordered list of segments, each a `.log` file of record
//! batches exactly as the broker received them, plus a memory-mapped sparse offset index and
//! time index. Appends are serialised and short; readers read by position up to the published
//! high watermark and never wait for them; fsyncs are grouped. After an unclean stop the tail
//! of each log is checked batch by batch and truncated at the first bad byte.
//!
//! Start with [`DataDir`], which locks the directory and opens each partition's [`Log`];
//! then `Log::append`, `Log::read` (or `Log::read_range`, for `sendfile`) and
//! `Log::sync_through`. The on-disk layout is in [`format`](mod@format), the recovery policy
//! in `recovery.rs`, and the lock order on [`Log`]. Retention is in `log/retention.rs`;
//! compaction, `Log::compact`, in `log/compaction.rs`, reading records through the broker's
//! [`RecordCodec`], since this crate never decodes them.
//!
//! Transactions are the broker's; storage keeps what it needs of them on disk, in
//! `log/transactions.rs`: each segment's aborted transactions (`transaction_index.rs`, read by
//! `Log::aborted_transactions` for read_committed fetches, which `Log::read_range_below`
//! bounds by the last stable offset), and the broker's producer state snapshots
//! (`producer_snapshot.rs`). Compaction drops aborted records and, in time, markers.
//!
//! Offline, [`CheckedDataDir`] verifies a stopped broker's files (`riffle check`), in
//! `check.rs`, and repairs them on request, in `check/repair.rs`.
//!
//! Synchronous file I/O only: no async runtime, no network, no clock (callers pass `now_ms`).
//!
//! Every lock in the workspace is taken through [`MutexRecover`] and [`RwLockRecover`]: a
//! lock a panic poisoned is recovered, not fatal, and critical sections check before they
//! mutate so that is safe (`lock_policy.rs` says why).
#![warn(missing_docs)]

// Lets the test helpers shared with the integration tests name this crate as they do.
#[cfg(test)]
extern crate self as riffle_storage;

mod batch_header;
mod check;
mod checkpoint;
mod cleaned_segment;
mod config;
mod data_dir;
mod error;
#[cfg(test)]
mod fault;
mod file_range;
pub mod format;
mod fs;
mod index_file;
mod key_map;
mod lock_policy;
mod log;
mod offset_index;
mod producer_snapshot;
mod record_codec;
mod recovery;
mod recovery_progress;
mod segment;
#[cfg(test)]
#[path = "../tests/common/batch.rs"]
mod test_batch;
mod time_index;
mod topic_partition;
mod transaction_index;

pub use check::{
    CheckedDataDir, MAX_LISTED_PROBLEMS_PER_PARTITION, PartitionReport, Problem, ProblemKind,
    RepairAction,
};
pub use config::{
    CleanerConfig, LogConfig, MAX_SEGMENT_BYTES, MAX_SEGMENT_INDEX_BYTES, MIN_SEGMENT_INDEX_BYTES,
};
pub use data_dir::DataDir;
pub use error::StorageError;
pub use file_range::FileRange;
pub use format::AbortedTransaction;
pub use lock_policy::{MutexRecover, RwLockRecover};
pub use log::{AppendOutcome, CompactionOutcome, FirstBatch, Log};
pub use producer_snapshot::{MAX_PRODUCER_SNAPSHOT_PAYLOAD_BYTES, ProducerSnapshot};
pub use record_codec::{RecordCodec, RecordSummary};
pub use topic_partition::TopicPartition;
pub use transaction_index::MAX_TRANSACTION_INDEX_ENTRIES;
