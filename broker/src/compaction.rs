//! Log compaction for topics with `cleanup.policy=compact`: the cleaner pass, and the
//! record codec it lends storage so that storage never decodes records itself.

use bytes::Bytes;
use riffle_protocol::record::{RecordBatchView, retain_records};
use riffle_storage::{CleanerConfig, RecordCodec, RecordSummary};
use tracing::{info, warn};

use crate::cluster::{Cluster, now_ms};

/// Reads and rewrites records for `Log::compact` with riffle-protocol.
pub struct ProtocolRecordCodec;

impl RecordCodec for ProtocolRecordCodec {
    fn records(&self, batch: &[u8]) -> Result<Vec<RecordSummary>, String> {
        let records = parse(batch)?.records().map_err(|error| error.to_string())?;
        Ok(records
            .into_iter()
            .map(|record| RecordSummary {
                offset: record.offset,
                key: record.key.map(|key| key.to_vec()),
                is_tombstone: record.value.is_none(),
                timestamp_ms: record.timestamp_ms,
            })
            .collect())
    }

    fn retain(&self, batch: &[u8], keep: &dyn Fn(i64) -> bool) -> Result<Option<Vec<u8>>, String> {
        let kept = retain_records(&parse(batch)?, keep).map_err(|error| error.to_string())?;
        Ok(kept.map(|bytes| bytes.to_vec()))
    }
}

/// One stored batch as a view; storage already checked its header and CRC.
fn parse(batch: &[u8]) -> Result<RecordBatchView, String> {
    RecordBatchView::parse(Bytes::copy_from_slice(batch)).map_err(|error| error.to_string())
}

/// One cleaner pass over every compacted topic (including `__consumer_offsets`).
pub fn compact_logs(cluster: &Cluster) {
    let now_ms = now_ms();
    let cleaner = CleanerConfig::default();
    for topic in cluster
        .all_topics()
        .into_iter()
        .filter(|topic| topic.config.is_compacted())
    {
        for partition in &topic.partitions {
            match partition.compact(now_ms, &ProtocolRecordCodec, &cleaner) {
                Ok(outcome) if outcome.segments_cleaned == 0 => {}
                Ok(outcome) => {
                    info!(topic = %topic.name, partition = partition.index, ?outcome, "compacted")
                }
                Err(error) => {
                    warn!(topic = %topic.name, partition = partition.index, %error, "compaction failed")
                }
            }
        }
    }
}
