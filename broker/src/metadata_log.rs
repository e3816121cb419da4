//! The cluster's own metadata (cluster id, topics, their ids, partition counts, configs,
//! producer-id blocks, ACLs), kept as JSON events in an internal log, `__cluster_metadata-0`.
//!
//! Using a log of our own storage engine makes metadata crash-safe by the same mechanism
//! as user data: each event is appended as a record batch and fsynced before the change
//! is visible; start-up replays the events in order.

use std::collections::BTreeMap;

use bytes::Bytes;
use riffle_protocol::record::{Compression, RecordBatchBuilder, batches};
use riffle_storage::{DataDir, FirstBatch, Log, LogConfig, StorageError};
use serde::{Deserialize, Serialize};

use crate::security::acl::AclBinding;

/// The internal topic name; clients never see it in Metadata.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// Replay reads the log in chunks of this size.
const REPLAY_CHUNK_BYTES: usize = 1024 * 1024;

/// One change to the cluster's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum MetadataEvent {
    /// The cluster id was chosen (once, at first start).
    ClusterCreated {
        /// The id reported in Metadata and DescribeCluster.
        cluster_id: String,
    },
    /// A topic was created.
    TopicCreated {
        /// Topic name.
        name: String,
        /// Topic id, as 32 hex digits.
        id: String,
        /// Partition count.
        partitions: i32,
        /// Configs set on the topic.
        configs: BTreeMap<String, String>,
    },
    /// A topic was deleted.
    TopicDeleted {
        /// Topic name.
        name: String,
    },
    /// A topic's partition count grew.
    PartitionsCreated {
        /// Topic name.
        name: String,
        /// The new total partition count.
        partitions: i32,
    },
    /// A topic's configs were replaced.
    ConfigsAltered {
        /// Topic name.
        name: String,
        /// The complete new set of configs set on the topic.
        configs: BTreeMap<String, String>,
    },
    /// Producer ids below `next_block_start` may have been handed out.
    ProducerIdBlock {
        /// The first id of the next block.
        next_block_start: i64,
    },
    /// ACLs were created (CreateAcls): one event per request, none of them stored before.
    AclsCreated {
        /// The new ACLs.
        acls: Vec<AclBinding>,
    },
    /// ACLs were deleted (DeleteAcls): one event per request, every ACL its filters matched.
    AclsDeleted {
        /// The deleted ACLs.
        acls: Vec<AclBinding>,
    },
}

/// Why the metadata log could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MetadataLogError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored batch or event does not decode.
    #[error("corrupt metadata log at offset {offset}: {reason}")]
    Corrupt {
        /// Where.
        offset: i64,
        /// What.
        reason: String,
    },
}

/// The open metadata log.
pub struct MetadataLog {
    log: Log,
}

impl MetadataLog {
    /// Opens the metadata log and returns it with every event stored so far.
    pub fn open(data_dir: &DataDir) -> Result<(MetadataLog, Vec<MetadataEvent>), MetadataLogError> {
        let log = data_dir.open_log(METADATA_TOPIC, 0, LogConfig::default())?;
        let events = replay(&log)?;
        Ok((MetadataLog { log }, events))
    }

    /// Appends one event and waits until it is on disk.
    pub fn append(&self, event: &MetadataEvent, now_ms: i64) -> Result<(), MetadataLogError> {
        let value = serde_json::to_vec(event).map_err(|error| MetadataLogError::Corrupt {
            offset: self.log.next_offset(),
            reason: error.to_string(),
        })?;
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder.append(now_ms, None, Some(&value), &[]);
        let batch = builder.build().map_err(|error| MetadataLogError::Corrupt {
            offset: self.log.next_offset(),
            reason: error.to_string(),
        })?;
        let appended = self.log.append(&batch, now_ms)?;
        self.log.sync_through(appended.last_offset)?;
        Ok(())
    }

    /// Forces everything to disk (shutdown).
    pub fn flush(&self) -> Result<(), StorageError> {
        self.log.flush()
    }
}

fn replay(log: &Log) -> Result<Vec<MetadataEvent>, MetadataLogError> {
    let mut events = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.next_offset() {
        let chunk: Bytes = log.read(offset, REPLAY_CHUNK_BYTES, FirstBatch::AlwaysWhole)?;
        if chunk.is_empty() {
            break;
        }
        for batch in batches(chunk) {
            let batch = batch.map_err(|error| corrupt(offset, error))?;
            for record in batch
                .records()
                .map_err(|error| corrupt(batch.base_offset(), error))?
            {
                let value = record.value.unwrap_or_default();
                let event = serde_json::from_slice(&value)
                    .map_err(|error| corrupt(record.offset, error))?;
                events.push(event);
            }
            offset = batch.last_offset() + 1;
        }
    }
    Ok(events)
}

fn corrupt(offset: i64, error: impl ToString) -> MetadataLogError {
    MetadataLogError::Corrupt {
        offset,
        reason: error.to_string(),
    }
}
