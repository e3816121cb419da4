//! Where a task's restore starts and stops, and how far it has got.
//!
//! A task's state must match the input position it resumes from, or reprocessing applies
//! input twice. The *restore point* is that pair, found in this order:
//!
//! 1. Nothing committed: the task starts empty and reads its input from the start.
//! 2. The group's commit with this runtime's metadata (changelog end offsets, stream time):
//!    the normal case on a Kafka broker. Under exactly-once the metadata is not needed
//!    for the changelogs (read_committed reads the committed state exactly).
//! 3. A commit without readable metadata (some brokers drop OffsetCommit metadata): the
//!    task's local checkpoint, with the input offsets it names; reading moves there if the
//!    group's offsets differ (a crash between the commit and the checkpoint).
//! 4. Neither: the runtime stops with [`RuntimeError::RestorePointMissing`], naming the
//!    broker's missing behaviour, rather than double-apply input.
//!
//! Each changelog then restores from where its persistent store already is (the
//! checkpoint) or from the start (in-memory stores, no checkpoint, or a store ahead of the
//! restore point, which is wiped), to the restore point. Every choice is logged.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::backend::CommittedOffset;
use super::config::ProcessingGuarantee;
use super::runner::RuntimeError;
use crate::record::TopicPartition;
use crate::store::checkpoint::Checkpoint;
use crate::task::{CommitMetadata, TaskId};

/// How often restore progress is logged while a changelog is read.
pub(crate) const RESTORE_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// What a task resumes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RestorePoint {
    /// Nothing committed: empty stores, input from the start.
    Fresh,
    /// The group's commit and its metadata (at-least-once).
    Broker(CommitMetadata),
    /// The group's commit under exactly-once, its metadata if the broker kept it: the
    /// changelogs are restored to their committed end.
    Transactional(Option<CommitMetadata>),
    /// The local checkpoint, because the broker's commit has no metadata.
    Local(Checkpoint),
}

impl RestorePoint {
    /// The restore point of `task` from the group's `committed` offsets and its local
    /// `checkpoint`.
    ///
    /// # Errors
    /// [`RuntimeError::RestorePointMissing`] in case 4 of the module doc.
    pub fn choose(
        task: TaskId,
        guarantee: ProcessingGuarantee,
        committed: &HashMap<TopicPartition, Option<CommittedOffset>>,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<RestorePoint, RuntimeError> {
        let commits: Vec<&CommittedOffset> = committed.values().flatten().collect();
        if commits.is_empty() {
            return Ok(RestorePoint::Fresh);
        }
        let metadata = commits
            .iter()
            .find_map(|commit| CommitMetadata::decode(&commit.metadata));
        if guarantee == ProcessingGuarantee::ExactlyOnce {
            return Ok(RestorePoint::Transactional(metadata));
        }
        if let Some(metadata) = metadata {
            return Ok(RestorePoint::Broker(metadata));
        }
        let Some(checkpoint) = checkpoint else {
            let mut partitions: Vec<String> = committed
                .iter()
                .filter(|(_, commit)| commit.is_some())
                .map(|(partition, _)| partition.to_string())
                .collect();
            partitions.sort();
            return Err(RuntimeError::RestorePointMissing {
                task,
                partitions: partitions.join(", "),
            });
        };
        Ok(RestorePoint::Local(checkpoint.clone()))
    }

    /// The commit metadata to resume operators from, if any.
    pub fn metadata(&self) -> Option<&CommitMetadata> {
        match self {
            RestorePoint::Fresh => None,
            RestorePoint::Broker(metadata) => Some(metadata),
            RestorePoint::Transactional(metadata) => metadata.as_ref(),
            RestorePoint::Local(checkpoint) => Some(&checkpoint.metadata),
        }
    }

    /// Input partitions whose reading must move to the checkpoint's offsets: those where
    /// the group's commit differs from it.
    pub fn seeks(
        &self,
        committed: &HashMap<TopicPartition, Option<CommittedOffset>>,
    ) -> Vec<(TopicPartition, i64)> {
        let RestorePoint::Local(checkpoint) = self else {
            return Vec::new();
        };
        let mut seeks: Vec<(TopicPartition, i64)> = committed
            .iter()
            .filter_map(|(partition, commit)| {
                let wanted = checkpoint.input_offset(partition)?;
                let group = commit.as_ref().map(|commit| commit.offset);
                (group != Some(wanted)).then(|| (partition.clone(), wanted))
            })
            .collect();
        seeks.sort();
        seeks
    }

    /// Where restoring `changelog` stops (exclusive); `None`: at its end.
    pub fn target(
        &self,
        changelog: &TopicPartition,
        is_source: bool,
        committed: &HashMap<TopicPartition, Option<CommittedOffset>>,
    ) -> Option<i64> {
        if is_source {
            // A table's topic is its changelog: replay it up to where processing resumes.
            let resume = match self {
                RestorePoint::Fresh => None,
                RestorePoint::Broker(_) | RestorePoint::Transactional(_) => committed
                    .get(changelog)
                    .cloned()
                    .flatten()
                    .map(|c| c.offset),
                RestorePoint::Local(checkpoint) => checkpoint.input_offset(changelog),
            };
            return Some(resume.unwrap_or(0));
        }
        let key = CommitMetadata::changelog_key(changelog);
        match self {
            RestorePoint::Fresh => Some(0),
            // Changelog writes commit with the input offsets, and restores read
            // read_committed: the whole committed changelog is the state those offsets imply.
            RestorePoint::Transactional(_) => None,
            // At-least-once writes are visible at once, also those past the last commit:
            // stop where that commit's flush had got to.
            RestorePoint::Broker(metadata) => Some(
                metadata
                    .changelog_end_offsets
                    .get(&key)
                    .copied()
                    .unwrap_or(0),
            ),
            RestorePoint::Local(checkpoint) => Some(
                checkpoint
                    .metadata
                    .changelog_end_offsets
                    .get(&key)
                    .copied()
                    .unwrap_or(0),
            ),
        }
    }
}

/// Where a store is on disk: the changelog offset its checkpoint covers.
pub(crate) fn flushed_offset(
    checkpoint: &Checkpoint,
    changelog: &TopicPartition,
    is_source: bool,
) -> i64 {
    if is_source {
        return checkpoint.input_offset(changelog).unwrap_or(0);
    }
    let key = CommitMetadata::changelog_key(changelog);
    checkpoint
        .metadata
        .changelog_end_offsets
        .get(&key)
        .copied()
        .unwrap_or(0)
}

/// What to do with one changelog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChangelogPlan {
    /// Empty the store first.
    pub wipe: bool,
    /// The first offset to read.
    pub from_offset: i64,
    /// Where to stop (exclusive); `None`: at the end the first read sees.
    pub to_offset: Option<i64>,
}

impl ChangelogPlan {
    /// The plan for a store that is `flushed` on disk (`None`: in memory, or no usable
    /// checkpoint) and must reach `target`.
    pub fn new(flushed: Option<i64>, target: Option<i64>) -> ChangelogPlan {
        match flushed {
            Some(flushed) if target.is_none_or(|target| flushed <= target) => ChangelogPlan {
                wipe: false,
                from_offset: flushed,
                to_offset: target,
            },
            _ => ChangelogPlan {
                wipe: true,
                from_offset: 0,
                to_offset: target,
            },
        }
    }
}

/// Counts of one changelog's restore, for logs and the host program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreProgress {
    /// The task restoring.
    pub task: TaskId,
    /// The changelog partition being read.
    pub changelog: TopicPartition,
    /// The first offset read.
    pub from_offset: i64,
    /// Where it stops (exclusive), once known.
    pub end_offset: i64,
    /// The next offset to read.
    pub position: i64,
    /// Records applied so far.
    pub restored_records: u64,
}

impl RestoreProgress {
    /// Percent of the offset range done.
    pub fn percent(&self) -> f64 {
        let total = self.end_offset.saturating_sub(self.from_offset);
        if total <= 0 {
            return 100.0;
        }
        let done = self.position.saturating_sub(self.from_offset).min(total);
        // Offsets are far below 2^53: exact enough for a percentage.
        100.0 * done as f64 / total as f64
    }

    /// Logs the progress, with the rate since `started`.
    pub fn log(&self, started: Instant, finished: bool) {
        let seconds = started.elapsed().as_secs_f64().max(1e-6);
        let records_per_second = (self.restored_records as f64 / seconds).round();
        let percent = (self.percent() * 10.0).round() / 10.0;
        let (task, changelog) = (self.task, &self.changelog);
        let records = self.restored_records;
        if finished {
            tracing::info!(%task, %changelog, records, from = self.from_offset, end = self.end_offset, records_per_second, "changelog restored");
        } else {
            tracing::info!(%task, %changelog, records, percent, records_per_second, "restoring");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn task() -> TaskId {
        TaskId {
            subtopology: 0,
            partition: 0,
        }
    }

    fn committed(offset: i64, metadata: &str) -> HashMap<TopicPartition, Option<CommittedOffset>> {
        let commit = CommittedOffset {
            offset,
            metadata: metadata.to_string(),
        };
        HashMap::from([(TopicPartition::new("in", 0), Some(commit))])
    }

    fn metadata(changelog_end: i64) -> CommitMetadata {
        CommitMetadata {
            stream_time_ms: 5,
            changelog_end_offsets: BTreeMap::from([(
                "app-s-changelog-0".to_string(),
                changelog_end,
            )]),
            operator_progress: BTreeMap::new(),
        }
    }

    /// The restore point follows the module doc's order: nothing committed, the broker's
    /// metadata, the local checkpoint (moving input to it), or a refusal naming the
    /// partitions; under exactly-once a commit without metadata still restores to the end.
    #[test]
    fn restore_point_prefers_metadata_then_checkpoint_then_refuses() {
        let alos = ProcessingGuarantee::AtLeastOnce;
        let changelog = TopicPartition::new("app-s-changelog", 0);
        let none = HashMap::from([(TopicPartition::new("in", 0), None)]);
        assert_eq!(
            RestorePoint::choose(task(), alos, &none, None).unwrap(),
            RestorePoint::Fresh
        );

        let with_metadata = committed(10, &metadata(7).encode());
        let point = RestorePoint::choose(task(), alos, &with_metadata, None).unwrap();
        assert_eq!(point.target(&changelog, false, &with_metadata), Some(7));
        assert!(point.seeks(&with_metadata).is_empty());

        let dropped = committed(10, "");
        let error = RestorePoint::choose(task(), alos, &dropped, None).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("in-0") && message.contains("metadata"),
            "{message}"
        );

        let checkpoint = Checkpoint::new(&[(TopicPartition::new("in", 0), 8)], metadata(6));
        let point = RestorePoint::choose(task(), alos, &dropped, Some(&checkpoint)).unwrap();
        assert_eq!(point.target(&changelog, false, &dropped), Some(6));
        assert_eq!(
            point.seeks(&dropped),
            vec![(TopicPartition::new("in", 0), 8)]
        );

        let eos = ProcessingGuarantee::ExactlyOnce;
        let point = RestorePoint::choose(task(), eos, &dropped, None).unwrap();
        assert_eq!(point.target(&changelog, false, &dropped), None);
    }

    /// A store on disk restores from its checkpoint when that is not past the target, and
    /// is wiped and restored from the start otherwise (or when it has no checkpoint).
    #[test]
    fn changelog_plans_restore_only_the_tail_when_they_can() {
        let tail = ChangelogPlan::new(Some(5), Some(9));
        assert_eq!(
            (tail.wipe, tail.from_offset, tail.to_offset),
            (false, 5, Some(9))
        );
        let ahead = ChangelogPlan::new(Some(12), Some(9));
        assert_eq!((ahead.wipe, ahead.from_offset), (true, 0));
        let memory = ChangelogPlan::new(None, Some(9));
        assert_eq!((memory.wipe, memory.from_offset), (true, 0));
        let to_end = ChangelogPlan::new(Some(5), None);
        assert_eq!(
            (to_end.wipe, to_end.from_offset, to_end.to_offset),
            (false, 5, None)
        );
    }
}
