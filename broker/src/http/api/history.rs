//! `/api/history?group=G`: the sampled broker throughput, request rate and latency, and
//! the lag series of group `G` if named (see [`crate::http::history`]).

use super::super::history::{History, HistorySnapshot};

/// The samples, and `group`'s lag series.
pub fn read(history: &History, group: Option<&str>) -> HistorySnapshot {
    history.snapshot(group)
}
