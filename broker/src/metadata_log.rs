//! The cluster's own metadata (cluster id, topics, their ids, partition counts, configs,
//! dynamic broker configs, producer-id blocks, SCRAM credentials, ACLs), kept as JSON
//! events in an internal log, `__cluster_metadata-0`.
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
use crate::security::credentials::ScramCredential;
use crate::security::scram::ScramMechanism;

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
    /// The dynamic broker configs of an entity were replaced.
    BrokerConfigsAltered {
        /// Empty for the cluster-wide default, else the node id the values are set for.
        broker: String,
        /// The complete new set of dynamic configs of that entity.
        configs: BTreeMap<String, String>,
    },
    /// Producer ids below `next_block_start` may have been handed out.
    ProducerIdBlock {
        /// The first id of the next block.
        next_block_start: i64,
    },
    /// A user's SCRAM credential for a mechanism was set (added or replaced). Written as
    /// `{"event":"scram_credential_set","user":"alice","mechanism":"SCRAM-SHA-512",
    /// "salt":"<base64>","stored_key":"<base64>","server_key":"<base64>","iterations":4096}`:
    /// the salted keys only, never a password.
    ScramCredentialSet {
        /// The user name.
        user: String,
        /// The mechanism, by its SASL name.
        mechanism: ScramMechanism,
        /// Salt, StoredKey, ServerKey and iterations.
        #[serde(flatten)]
        credential: ScramCredential,
    },
    /// A user's SCRAM credential for a mechanism was removed.
    ScramCredentialDeleted {
        /// The user name.
        user: String,
        /// The mechanism, by its SASL name.
        mechanism: ScramMechanism,
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
        self.append_all(std::slice::from_ref(event), now_ms)
    }

    /// Appends events as one record batch, so they are replayed all or none (recovery
    /// truncates a torn batch whole), and waits until it is on disk.
    pub fn append_all(
        &self,
        events: &[MetadataEvent],
        now_ms: i64,
    ) -> Result<(), MetadataLogError> {
        assert!(!events.is_empty(), "an empty metadata append");
        let mut builder = RecordBatchBuilder::new(Compression::None);
        for event in events {
            let value = serde_json::to_vec(event).map_err(|error| MetadataLogError::Corrupt {
                offset: self.log.next_offset(),
                reason: error.to_string(),
            })?;
            builder.append(now_ms, None, Some(&value), &[]);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scram_credential_events_are_flat_json_with_base64_keys() {
        // The credential events keep the file's style: a snake_case "event" tag, the
        // mechanism by its SASL name, byte fields as base64, and they read back equal.
        let event = MetadataEvent::ScramCredentialSet {
            user: "alice".into(),
            mechanism: ScramMechanism::Sha512,
            credential: ScramCredential {
                salt: vec![0, 1, 2],
                stored_key: vec![3; 3],
                server_key: vec![4; 3],
                iterations: 4096,
            },
        };
        let json = serde_json::to_string(&event).expect("serializes");
        assert_eq!(
            json,
            r#"{"event":"scram_credential_set","user":"alice","mechanism":"SCRAM-SHA-512","salt":"AAEC","stored_key":"AwMD","server_key":"BAQE","iterations":4096}"#
        );
        assert_eq!(
            serde_json::from_str::<MetadataEvent>(&json).expect("parses"),
            event
        );
        let deleted = MetadataEvent::ScramCredentialDeleted {
            user: "alice".into(),
            mechanism: ScramMechanism::Sha256,
        };
        let json = serde_json::to_string(&deleted).expect("serializes");
        assert_eq!(
            json,
            r#"{"event":"scram_credential_deleted","user":"alice","mechanism":"SCRAM-SHA-256"}"#
        );
        assert_eq!(
            serde_json::from_str::<MetadataEvent>(&json).expect("parses"),
            deleted
        );
        for bad in [
            r#"{"event":"scram_credential_deleted","user":"a","mechanism":"SCRAM-SHA-1"}"#,
            r#"{"event":"scram_credential_set","user":"a","mechanism":"SCRAM-SHA-256","salt":"!","stored_key":"","server_key":"","iterations":1}"#,
        ] {
            assert!(serde_json::from_str::<MetadataEvent>(bad).is_err(), "{bad}");
        }
    }
}
