//! Where `riffle consume` starts in each partition.
//!
//! `--offset N` and `--from-time` always win. Otherwise a group's committed offset wins,
//! and a partition without one starts at its first offset with `--from-beginning`, else at
//! its end (only new records), as `kafka-console-consumer.sh` does. A time after the last
//! record starts at the end. Offsets are asked of each partition's leader.

use std::collections::BTreeMap;

use crate::admin_client::records::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use crate::admin_client::routing::Brokers;
use crate::cli_support::CommandError;

/// The start position the options ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The end: only records produced from now on.
    Latest,
    /// The first offset still in the log.
    Earliest,
    /// This offset in every partition read.
    Offset(i64),
    /// The first record at or after this time (ms since the epoch).
    Time(i64),
}

impl StartAt {
    /// Whether a committed offset gives way to this start.
    pub fn overrides_committed(self) -> bool {
        matches!(self, StartAt::Offset(_) | StartAt::Time(_))
    }
}

/// The first offset to read in each partition of `partitions` (partition, leader).
///
/// # Errors
/// A request error, or a partition's ListOffsets error code.
pub fn start_offsets(
    brokers: &mut Brokers,
    topic: &str,
    partitions: &BTreeMap<i32, i32>,
    start: StartAt,
    committed: &BTreeMap<i32, i64>,
) -> Result<BTreeMap<i32, i64>, CommandError> {
    let mut offsets = BTreeMap::new();
    let mut to_look_up: BTreeMap<i32, i32> = BTreeMap::new();
    for (&partition, &leader) in partitions {
        match (committed.get(&partition), start) {
            (_, StartAt::Offset(offset)) => {
                offsets.insert(partition, offset);
            }
            (Some(&offset), start) if offset >= 0 && !start.overrides_committed() => {
                offsets.insert(partition, offset);
            }
            _ => {
                to_look_up.insert(partition, leader);
            }
        }
    }
    let timestamp = match start {
        StartAt::Earliest => EARLIEST_TIMESTAMP,
        StartAt::Time(time_ms) => time_ms,
        StartAt::Latest | StartAt::Offset(_) => LATEST_TIMESTAMP,
    };
    let found = look_up(brokers, topic, &to_look_up, timestamp)?;
    let mut past_the_end = BTreeMap::new();
    for (partition, offset) in found {
        match (offset, to_look_up.get(&partition)) {
            // No record at or after the time: start at the end.
            (-1, Some(&leader)) => {
                past_the_end.insert(partition, leader);
            }
            (-1, None) => {}
            (offset, _) => {
                offsets.insert(partition, offset);
            }
        }
    }
    offsets.extend(look_up(brokers, topic, &past_the_end, LATEST_TIMESTAMP)?);
    Ok(offsets)
}

/// ListOffsets for `partitions` (partition, leader) at `timestamp`, per leader.
fn look_up(
    brokers: &mut Brokers,
    topic: &str,
    partitions: &BTreeMap<i32, i32>,
    timestamp: i64,
) -> Result<BTreeMap<i32, i64>, CommandError> {
    let mut by_leader: BTreeMap<i32, BTreeMap<(String, i32), i64>> = BTreeMap::new();
    for (&partition, &leader) in partitions {
        by_leader
            .entry(leader)
            .or_default()
            .insert((topic.to_owned(), partition), timestamp);
    }
    let mut offsets = BTreeMap::new();
    for (leader, queries) in by_leader {
        for ((_, partition), found) in brokers.broker(leader)?.list_offsets(&queries)? {
            let found = found.map_err(|code| CommandError::Partition {
                what: format!("finding the start offset of {topic}-{partition}"),
                code,
                message: None,
            })?;
            offsets.insert(partition, found.offset);
        }
    }
    Ok(offsets)
}
