//! Deleting from the head of a log: DeleteRecords and retention. Both only ever delete whole
//! sealed segments and move the log start offset forward.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tracing::debug;

use super::Log;
use crate::checkpoint::write_log_start_offset;
use crate::config::LogConfig;
use crate::error::StorageError;
use crate::fs::sync_dir;
use crate::lock_policy::MutexRecover;
use crate::segment::Segment;

impl Log {
    /// DeleteRecords: moves the log start offset forward to `offset`, deletes the segments
    /// wholly below it, and returns the new log start offset. An `offset` at or below the
    /// current start changes nothing.
    ///
    /// The new start is checkpointed durably before anything else, so once this returns the
    /// records stay deleted across restarts, even those in a segment that is kept.
    ///
    /// # Errors
    /// `OffsetOutOfRange` if `offset` is past the high watermark (or negative).
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, StorageError> {
        let _maintenance = self.maintenance.lock_or_recover();
        if offset < 0 || offset > self.high_watermark() {
            return Err(self.out_of_range(offset));
        }
        let current = self.log_start_offset();
        if offset <= current {
            return Ok(current);
        }
        write_log_start_offset(&self.partition_dir, offset)?;
        self.log_start_offset.fetch_max(offset, Ordering::AcqRel);
        let sealed = self.sealed_segments();
        let below_count = count_below(&sealed, self.active_base_offset(), offset);
        self.delete_head_segments(&sealed[..below_count])?;
        debug!(topic_partition = %self.topic_partition, log_start_offset = offset,
            deleted_segments_count = below_count, "deleted records");
        Ok(offset)
    }

    /// Retention: deletes the oldest sealed segments whose newest batch is older than
    /// `retention_ms`, and the oldest sealed segments while the log exceeds `retention_bytes`
    /// by at least a whole segment. The active segment is never deleted, but it is rolled
    /// first if it holds batches and `segment_ms` has passed, so an idle partition's data can
    /// still expire. Returns the number of segments deleted.
    pub fn apply_retention(&self, now_ms: i64) -> Result<usize, StorageError> {
        let _maintenance = self.maintenance.lock_or_recover();
        let config = self.config();
        self.roll_if_segment_ms_passed(&config, now_ms)?;
        let sealed = self.sealed_segments();
        let expired_count = count_expired(&sealed, &config, now_ms)?;
        let oversize_count = count_oversize(&sealed, self.size_bytes(), &config);
        let delete_count = expired_count.max(oversize_count);
        if delete_count == 0 {
            return Ok(0);
        }
        let new_log_start_offset = sealed.get(delete_count).map_or_else(
            || self.active_base_offset(),
            |segment| segment.base_offset(),
        );
        self.log_start_offset
            .fetch_max(new_log_start_offset, Ordering::AcqRel);
        self.delete_head_segments(&sealed[..delete_count])?;
        // Without this a power loss could bring deleted segments back, and with them the old,
        // lower log start offset.
        sync_dir(&self.partition_dir)?;
        debug!(topic_partition = %self.topic_partition, expired_count, oversize_count,
            log_start_offset = self.log_start_offset(), "applied retention");
        Ok(delete_count)
    }

    fn roll_if_segment_ms_passed(
        &self,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let mut state = self.append.lock_or_recover();
        if state.active.is_empty() {
            return Ok(());
        }
        let age_ms = super::segment_age_ms(&state, now_ms);
        state.roll_clock_start_ms.get_or_insert(now_ms);
        if age_ms <= config.segment_ms {
            return Ok(());
        }
        self.roll(&mut state, config)
    }

    /// Every segment but the active one, oldest first.
    fn sealed_segments(&self) -> Vec<Arc<Segment>> {
        let mut segments = self.segments_snapshot();
        segments.pop();
        segments
    }

    fn active_base_offset(&self) -> i64 {
        self.active_segment().base_offset()
    }

    /// Removes `victims`, the oldest segments, from the list and deletes their files. The log
    /// start offset must already be past them, so no reader is sent to them any more; readers
    /// already holding one finish from the unlinked file.
    fn delete_head_segments(&self, victims: &[Arc<Segment>]) -> Result<(), StorageError> {
        assert!(
            victims
                .iter()
                .all(|segment| segment.base_offset() < self.log_start_offset())
        );
        {
            let mut segments = self.segments_mut();
            // Checked before the first removal, so a failed check leaves the list whole.
            assert!(
                victims.len() < segments.len(),
                "the active segment is never deleted"
            );
            let mut heads = segments.keys().zip(victims);
            assert!(
                heads.all(|(base_offset, victim)| *base_offset == victim.base_offset()),
                "only head segments are deleted"
            );
            for victim in victims {
                segments.remove(&victim.base_offset());
            }
        }
        for victim in victims {
            victim.delete_files()?;
        }
        Ok(())
    }
}

/// How many of the oldest sealed segments end at or before `offset`: those whose next
/// segment starts at or before it.
fn count_below(sealed: &[Arc<Segment>], active_base_offset: i64, offset: i64) -> usize {
    let next_base_offsets = sealed
        .iter()
        .skip(1)
        .map(|segment| segment.base_offset())
        .chain([active_base_offset])
        // One "next base" per sealed segment; with none sealed there is nothing to delete.
        .take(sealed.len());
    next_base_offsets
        .take_while(|next_base_offset| *next_base_offset <= offset)
        .count()
}

/// How many of the oldest sealed segments have no batch newer than `retention_ms`.
fn count_expired(
    sealed: &[Arc<Segment>],
    config: &LogConfig,
    now_ms: i64,
) -> Result<usize, StorageError> {
    if config.retention_ms < 0 {
        return Ok(0);
    }
    let mut count = 0;
    for segment in sealed {
        let age_ms = now_ms.saturating_sub(segment.largest_timestamp_ms()?);
        if age_ms <= config.retention_ms {
            break;
        }
        count += 1;
    }
    Ok(count)
}

/// How many of the oldest sealed segments can go while the log stays at or above
/// `retention_bytes` (Kafka's rule: delete a segment only if the excess covers all of it).
fn count_oversize(sealed: &[Arc<Segment>], size_bytes: u64, config: &LogConfig) -> usize {
    let Ok(retention_bytes) = u64::try_from(config.retention_bytes) else {
        return 0;
    };
    let mut excess_bytes = size_bytes.saturating_sub(retention_bytes);
    let mut count = 0;
    for segment in sealed {
        let Some(remaining) = excess_bytes.checked_sub(segment.bytes_written()) else {
            break;
        };
        excess_bytes = remaining;
        count += 1;
    }
    count
}
