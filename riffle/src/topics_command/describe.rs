//! `riffle topics describe TOPIC`: the topic's partitions and configs.
//!
//! ```text
//! Topic: orders  ID: 5n2Jd0HbQYuS7c9sEo6B2w  Partitions: 2  Replication factor: 1  Internal: no
//!
//! PARTITION  LEADER  REPLICAS  ISR  LOG-START-OFFSET  HIGH-WATERMARK  SIZE
//! 0          1       1         1    0                 120             9.6 KiB
//! 1          1       1         1    0                 80              6.4 KiB
//!
//! CONFIG           VALUE      SOURCE
//! cleanup.policy   delete     DEFAULT_CONFIG
//! retention.ms     3600000    DYNAMIC_TOPIC_CONFIG
//! ```
//!
//! Replicas come from Metadata; offsets from ListOffsets (earliest and latest) and sizes
//! from DescribeLogDirs, both asked of each partition's leader; configs from DescribeConfigs.
//! A broker without DescribeLogDirs leaves SIZE as `-`; a partition whose offsets cannot be
//! read shows `-` with the error code underneath.

use std::collections::BTreeMap;

use serde::Serialize;

use riffle_protocol::api::describe_configs::DescribeConfigsResourceResult;
use riffle_protocol::api::metadata::MetadataResponse;

use super::{existing_topic, topic_id_text, yes_no};
use crate::admin_client::BrokerErrorCode;
use crate::admin_client::records::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use crate::admin_client::routing::{Brokers, partition_leaders};
use crate::cli_support::output::{human_bytes, to_json};
use crate::cli_support::{CommandError, OutputFormat, format_table};

/// A described topic, as `--format json` prints it.
#[derive(Debug, Serialize)]
pub struct DescribedTopic {
    /// The name.
    pub name: String,
    /// The topic id (URL-safe base64), empty when the broker gives none.
    pub id: String,
    /// Whether the broker keeps it for itself.
    pub internal: bool,
    /// Its partitions, by index.
    pub partitions: Vec<DescribedPartition>,
    /// Its configs, by name.
    pub configs: Vec<DescribedConfig>,
}

/// One partition of a described topic.
#[derive(Debug, Serialize)]
pub struct DescribedPartition {
    /// The partition index.
    pub partition: i32,
    /// The leader's broker id; -1 for none.
    pub leader: i32,
    /// The brokers holding a copy.
    pub replicas: Vec<i32>,
    /// The replicas in sync with the leader.
    pub isr: Vec<i32>,
    /// The first offset still in the log; `None` when it could not be read.
    pub log_start_offset: Option<i64>,
    /// The offset after the last committed record; `None` when it could not be read.
    pub high_watermark: Option<i64>,
    /// The bytes of its log on the leader; `None` when the leader does not say.
    pub size_bytes: Option<u64>,
    /// Why offsets are missing, e.g. `LEADER_NOT_AVAILABLE (5)`.
    pub error: Option<String>,
}

/// One config of a described topic.
#[derive(Debug, Serialize)]
pub struct DescribedConfig {
    /// The config name.
    pub name: String,
    /// Its value; `None` for a sensitive or unset one.
    pub value: Option<String>,
    /// Where the value comes from, in Kafka's words (`DYNAMIC_TOPIC_CONFIG`, `DEFAULT_CONFIG`).
    pub source: String,
    /// Whether it cannot be changed.
    pub read_only: bool,
    /// Whether the broker hides its value.
    pub sensitive: bool,
}

/// Runs `riffle topics describe TOPIC`.
pub fn describe(
    brokers: &mut Brokers,
    topic: &str,
    format: OutputFormat,
) -> Result<String, CommandError> {
    let metadata = brokers.metadata(Some(&[topic.to_owned()]))?;
    let described = existing_topic(&metadata, topic)?;
    let (id, internal) = (topic_id_text(&described.topic_id), described.is_internal);
    let mut partitions: Vec<DescribedPartition> = described
        .partitions
        .iter()
        .map(|partition| DescribedPartition {
            partition: partition.partition_index,
            leader: partition.leader_id,
            replicas: partition.replica_nodes.clone(),
            isr: partition.isr_nodes.clone(),
            log_start_offset: None,
            high_watermark: None,
            size_bytes: None,
            error: None,
        })
        .collect();
    partitions.sort_by_key(|partition| partition.partition);
    fill_offsets(brokers, &metadata, topic, &mut partitions)?;
    let sizes = partition_sizes(brokers, &metadata, topic);
    for partition in &mut partitions {
        partition.size_bytes = sizes.get(&partition.partition).copied();
    }
    let configs = brokers
        .any()
        .describe_topic_configs(topic)?
        .into_iter()
        .map(described_config)
        .collect();
    let topic = DescribedTopic {
        name: topic.to_owned(),
        id,
        internal,
        partitions,
        configs,
    };
    Ok(match format {
        OutputFormat::Json => to_json(&topic),
        OutputFormat::Text => text(&topic),
    })
}

/// Asks each leader for its partitions' earliest and latest offsets.
fn fill_offsets(
    brokers: &mut Brokers,
    metadata: &MetadataResponse,
    topic: &str,
    partitions: &mut [DescribedPartition],
) -> Result<(), CommandError> {
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (partition, leader) in partition_leaders(metadata, topic) {
        match leader {
            Ok(leader) => by_leader.entry(leader).or_default().push(partition),
            Err(code) => set_error(partitions, partition, code),
        }
    }
    for (leader, indexes) in by_leader {
        let client = brokers.broker(leader)?;
        for (timestamp, is_start) in [(EARLIEST_TIMESTAMP, true), (LATEST_TIMESTAMP, false)] {
            let queries = indexes
                .iter()
                .map(|&index| ((topic.to_owned(), index), timestamp))
                .collect();
            for ((_, index), found) in client.list_offsets(&queries)? {
                match (found, partitions.iter_mut().find(|p| p.partition == index)) {
                    (Ok(found), Some(partition)) if is_start => {
                        partition.log_start_offset = Some(found.offset)
                    }
                    (Ok(found), Some(partition)) => partition.high_watermark = Some(found.offset),
                    (Err(code), _) => set_error(partitions, index, code),
                    (Ok(_), None) => {}
                }
            }
        }
    }
    Ok(())
}

fn set_error(partitions: &mut [DescribedPartition], index: i32, code: BrokerErrorCode) {
    if let Some(partition) = partitions.iter_mut().find(|p| p.partition == index) {
        partition.error = Some(code.to_string());
    }
}

/// Each partition's size on its leader, from DescribeLogDirs; partitions whose leader does
/// not answer it are left out.
fn partition_sizes(
    brokers: &mut Brokers,
    metadata: &MetadataResponse,
    topic: &str,
) -> BTreeMap<i32, u64> {
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (partition, leader) in partition_leaders(metadata, topic) {
        if let Ok(leader) = leader {
            by_leader.entry(leader).or_default().push(partition);
        }
    }
    let mut sizes = BTreeMap::new();
    for (leader, indexes) in by_leader {
        let results = brokers
            .broker(leader)
            .and_then(|client| client.describe_log_dirs(topic, indexes.clone()));
        // Sizes are a nicety: a broker that does not answer leaves them out.
        let Ok(results) = results else { continue };
        let reported = results
            .iter()
            .filter(|result| result.error_code == 0)
            .flat_map(|result| &result.topics)
            .filter(|described| described.name == topic)
            .flat_map(|described| &described.partitions)
            .filter(|partition| {
                !partition.is_future_key && indexes.contains(&partition.partition_index)
            });
        for partition in reported {
            let bytes = u64::try_from(partition.partition_size).unwrap_or(0);
            *sizes.entry(partition.partition_index).or_insert(0) += bytes;
        }
    }
    sizes
}

/// The topic's bytes over all partitions, when every leader reports its partitions' sizes.
pub fn topic_size_bytes(
    brokers: &mut Brokers,
    metadata: &MetadataResponse,
    topic: &str,
) -> Option<u64> {
    let partition_count = partition_leaders(metadata, topic).len();
    let sizes = partition_sizes(brokers, metadata, topic);
    (sizes.len() == partition_count).then(|| sizes.values().sum())
}

/// A DescribeConfigs entry in Kafka's words.
fn described_config(config: DescribeConfigsResourceResult) -> DescribedConfig {
    DescribedConfig {
        name: config.name,
        value: config.value,
        source: config_source_name(config.config_source).to_owned(),
        read_only: config.read_only,
        sensitive: config.is_sensitive,
    }
}

/// Kafka's `ConfigSource` names, by wire id.
pub fn config_source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

/// The columns of the partition table.
const PARTITION_HEADERS: [&str; 7] = [
    "PARTITION",
    "LEADER",
    "REPLICAS",
    "ISR",
    "LOG-START-OFFSET",
    "HIGH-WATERMARK",
    "SIZE",
];

/// The columns of the config table.
const CONFIG_HEADERS: [&str; 3] = ["CONFIG", "VALUE", "SOURCE"];

/// The text form: a summary line, the partition table, errors, then the config table.
fn text(topic: &DescribedTopic) -> String {
    let id = if topic.id.is_empty() { "-" } else { &topic.id };
    let replication = topic.partitions.first().map_or(0, |p| p.replicas.len());
    let mut output = format!(
        "Topic: {}  ID: {id}  Partitions: {}  Replication factor: {replication}  Internal: {}\n\n",
        topic.name,
        topic.partitions.len(),
        yes_no(topic.internal)
    );
    let number = |value: Option<i64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let list = |ids: &[i32]| {
        let joined: Vec<String> = ids.iter().map(ToString::to_string).collect();
        if joined.is_empty() {
            "-".to_owned()
        } else {
            joined.join(",")
        }
    };
    let rows: Vec<Vec<String>> = topic
        .partitions
        .iter()
        .map(|partition| {
            vec![
                partition.partition.to_string(),
                partition.leader.to_string(),
                list(&partition.replicas),
                list(&partition.isr),
                number(partition.log_start_offset),
                number(partition.high_watermark),
                partition
                    .size_bytes
                    .map_or_else(|| "-".to_owned(), human_bytes),
            ]
        })
        .collect();
    output.push_str(&format_table(&PARTITION_HEADERS, &rows));
    for partition in &topic.partitions {
        if let Some(error) = &partition.error {
            output.push_str(&format!("Partition {}: {error}\n", partition.partition));
        }
    }
    let rows: Vec<Vec<String>> = topic
        .configs
        .iter()
        .map(|config| {
            let value = match (&config.value, config.sensitive) {
                (_, true) => "(sensitive)".to_owned(),
                (None, false) => "(null)".to_owned(),
                (Some(value), false) if value.is_empty() => "(empty)".to_owned(),
                (Some(value), false) => value.clone(),
            };
            vec![config.name.clone(), value, config.source.clone()]
        })
        .collect();
    output.push('\n');
    output.push_str(&format_table(&CONFIG_HEADERS, &rows));
    output
}
