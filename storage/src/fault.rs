//! The test seam: faults and counters that tests switch on per thread, compiled only into
//! the crate's own tests. Production code calls in at the two places a fault can enter
//! (the segment write and the segment fsync), so tests never edit code to break it.

use std::cell::Cell;

thread_local! {
    /// When set, the next segment write on this thread writes this many bytes and then
    /// fails, like a disk that fills up part-way.
    static WRITE_FAULT_AFTER_BYTES: Cell<Option<usize>> = const { Cell::new(None) };
    /// Segment fsyncs made on this thread.
    static DATA_SYNCS_COUNT: Cell<u64> = const { Cell::new(0) };
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
