//! `/api/topics` and `/api/topics/{topic}`: topics, their partitions' offsets and sizes, and
//! their configs with where each value comes from.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::ApiError;
use crate::cluster::{Cluster, Topic};
use crate::partition::Partition;
use crate::topic_config::{ConfigSource, TOPIC_CONFIGS};

/// One topic in the list.
#[derive(Debug, Serialize)]
pub struct TopicSummary {
    /// The topic's name.
    pub name: String,
    /// Whether the broker keeps it for itself (`__consumer_offsets`, ...).
    pub internal: bool,
    /// Partition count.
    pub partitions: usize,
    /// Offsets between log start and log end, summed: the records kept, less compacted
    /// gaps and control records.
    pub records: i64,
    /// Bytes of record batches, summed over partitions.
    pub size_bytes: u64,
}

/// The answer of `/api/topics`.
#[derive(Debug, Serialize)]
pub struct TopicList {
    /// Topics by name.
    pub topics: Vec<TopicSummary>,
}

/// The answer of `/api/topics/{topic}`.
#[derive(Debug, Serialize)]
pub struct TopicDetail {
    /// The topic's name.
    pub name: String,
    /// Its id as Kafka's tools print it: base64url without padding.
    pub id: String,
    /// Whether the broker keeps it for itself.
    pub internal: bool,
    /// Partitions by index.
    pub partitions: Vec<PartitionSummary>,
    /// Every topic config with its effective value.
    pub configs: Vec<ConfigEntry>,
}

/// One partition's log.
#[derive(Debug, Serialize)]
pub struct PartitionSummary {
    /// Its index.
    pub partition: i32,
    /// The first offset readers may see.
    pub log_start_offset: i64,
    /// The offset the next record gets.
    pub log_end_offset: i64,
    /// The last offset consumers may read past (the same as the log end on one node).
    pub high_watermark: i64,
    /// Bytes of record batches.
    pub size_bytes: u64,
}

/// One topic config.
#[derive(Debug, Serialize)]
pub struct ConfigEntry {
    /// Kafka's name.
    pub name: &'static str,
    /// The effective value.
    pub value: String,
    /// Where the value comes from, as DescribeConfigs names it (`DYNAMIC_TOPIC_CONFIG`).
    pub source: &'static str,
}

/// Every topic, by name.
pub fn list(cluster: &Cluster) -> TopicList {
    let mut topics: Vec<TopicSummary> = cluster
        .all_topics()
        .iter()
        .map(|topic| TopicSummary {
            name: topic.name.clone(),
            internal: Cluster::is_internal_topic(&topic.name),
            partitions: topic.partitions.len(),
            records: topic
                .partitions
                .iter()
                .map(|partition| partition.next_offset() - partition.log_start_offset())
                .sum(),
            size_bytes: topic.partitions.iter().map(|p| p.size_bytes()).sum(),
        })
        .collect();
    topics.sort_by(|left, right| left.name.cmp(&right.name));
    TopicList { topics }
}

/// One topic.
///
/// # Errors
/// `NotFound` when there is no such topic.
pub fn describe(cluster: &Cluster, name: &str) -> Result<TopicDetail, ApiError> {
    let topic = find(cluster, name)?;
    Ok(TopicDetail {
        name: topic.name.clone(),
        id: URL_SAFE_NO_PAD.encode(topic.id.0),
        internal: Cluster::is_internal_topic(&topic.name),
        partitions: topic.partitions.iter().map(|p| summarize(p)).collect(),
        configs: configs(&topic),
    })
}

/// The topic named `name`.
///
/// # Errors
/// `NotFound` naming it.
pub fn find(cluster: &Cluster, name: &str) -> Result<std::sync::Arc<Topic>, ApiError> {
    cluster
        .topic(name)
        .ok_or_else(|| ApiError::NotFound(format!("no topic {name:?}")))
}

fn summarize(partition: &Partition) -> PartitionSummary {
    PartitionSummary {
        partition: partition.index,
        log_start_offset: partition.log_start_offset(),
        log_end_offset: partition.next_offset(),
        high_watermark: partition.high_watermark(),
        size_bytes: partition.size_bytes(),
    }
}

fn configs(topic: &Topic) -> Vec<ConfigEntry> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let (value, source) = topic.config.value(def.name);
            ConfigEntry {
                name: def.name,
                value,
                source: source_name(source),
            }
        })
        .collect()
}

fn source_name(source: ConfigSource) -> &'static str {
    match source {
        ConfigSource::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
        ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
        ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
        ConfigSource::Default => "DEFAULT_CONFIG",
    }
}
