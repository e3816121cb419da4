//! The test seam: faults and counters that tests switch on per thread, compiled only into
//! the crate's own tests. Production code calls in at the places a fault can enter (the
//! segment write, the segment fsync, and each step of a compaction swap), so tests never
//! edit code to break it.

use std::cell::Cell;

thread_local! {
    /// When set, the next segment write on this thread writes this many bytes and then
    /// fails, like a disk that fills up part-way.
    static WRITE_FAULT_AFTER_BYTES: Cell<Option<usize>> = const { Cell::new(None) };
    /// Segment fsyncs made on this thread.
    static DATA_SYNCS_COUNT: Cell<u64> = const { Cell::new(0) };
    /// When set, the compaction swap on this thread "crashes" once it reaches this step.
    static CRASH_AT_SWAP_STEP: Cell<Option<SwapStep>> = const { Cell::new(None) };
}

/// The points of a compaction swap a crash can fall between, in order (see
/// `log/compaction.rs`). Each names what is done when the crash comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SwapStep {
    /// The `.cleaned` files are written and fsynced; nothing is renamed.
    CleanedWritten,
    /// The index files are renamed to `.swap`; the `.log` is still `.cleaned`.
    IndexesStaged,
    /// The `.log` is renamed to `.swap` and the directory fsynced: the commit point.
    Committed,
    /// The first segment the cleaned one replaces, after its base, is deleted.
    FirstOldSegmentDeleted,
    /// The index `.swap` files are renamed into place; the `.log` is still `.swap`.
    IndexesInstalled,
    /// Every file is in place and the directory fsynced; readers still see the old list.
    Installed,
}

impl SwapStep {
    /// Every step, in the order the swap reaches them.
    pub const ALL: [SwapStep; 6] = [
        SwapStep::CleanedWritten,
        SwapStep::IndexesStaged,
        SwapStep::Committed,
        SwapStep::FirstOldSegmentDeleted,
        SwapStep::IndexesInstalled,
        SwapStep::Installed,
    ];
}

/// Makes the next compaction swap on this thread panic at `step`, without running any of
/// its error handling: the files are left as a crash there would leave them. The test
/// catches the panic and forgets the log, as `crash` does.
pub(crate) fn crash_at_swap_step(step: SwapStep) {
    CRASH_AT_SWAP_STEP.with(|crash| crash.set(Some(step)));
}

/// Called by the swap as it reaches `step`.
pub(crate) fn reached_swap_step(step: SwapStep) {
    if CRASH_AT_SWAP_STEP.with(|crash| crash.get()) == Some(step) {
        CRASH_AT_SWAP_STEP.with(|crash| crash.set(None));
        panic!("injected crash at {step:?}");
    }
}

/// Makes the next segment write on this thread fail after writing `written_bytes`.
pub(crate) fn fail_next_write_after(written_bytes: usize) {
    WRITE_FAULT_AFTER_BYTES.with(|fault| fault.set(Some(written_bytes)));
}

/// Takes the pending write fault, if any.
pub(crate) fn take_write_fault() -> Option<usize> {
    WRITE_FAULT_AFTER_BYTES.with(Cell::take)
}

/// Counts one segment fsync.
pub(crate) fn record_data_sync() {
    DATA_SYNCS_COUNT.with(|count| count.set(count.get() + 1));
}

/// Segment fsyncs made on this thread so far.
pub(crate) fn data_syncs_count() -> u64 {
    DATA_SYNCS_COUNT.with(Cell::get)
}
