//! Topic-level configs: which ones we support, their defaults, parsing and validation.
//!
//! A topic stores only the configs set on it (Kafka's "dynamic topic config"); every
//! other value comes from the broker-wide default in [`TopicDefaults`]. DescribeConfigs
//! reports both, with their source, like Kafka.

use std::collections::BTreeMap;

use riffle_storage::LogConfig;

use crate::config::TopicDefaults;

/// retention.ms: how long to keep a segment after its newest record, -1 forever.
pub const RETENTION_MS: &str = "retention.ms";
/// retention.bytes: how large a partition may grow before old segments go, -1 unbounded.
pub const RETENTION_BYTES: &str = "retention.bytes";
/// segment.bytes: roll the active segment at this size.
pub const SEGMENT_BYTES: &str = "segment.bytes";
/// segment.ms: roll the active segment at this age.
pub const SEGMENT_MS: &str = "segment.ms";
/// max.message.bytes: the largest record batch a producer may send.
pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";
/// cleanup.policy: delete, compact, or both.
pub const CLEANUP_POLICY: &str = "cleanup.policy";
/// message.timestamp.type: CreateTime (the producer's) or LogAppendTime (the broker's).
pub const MESSAGE_TIMESTAMP_TYPE: &str = "message.timestamp.type";
/// delete.retention.ms: how long compaction keeps a tombstone, so readers see deletes.
pub const DELETE_RETENTION_MS: &str = "delete.retention.ms";

/// Kafka's default delete.retention.ms: one day.
const DEFAULT_DELETE_RETENTION_MS: i64 = 86_400_000;

/// The smallest segment.bytes Kafka allows (it must hold at least a batch header).
const SEGMENT_BYTES_MIN: i64 = 14;

/// The kind of a config value, as DescribeConfigs v3+ reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// A 32-bit integer.
    Int = 3,
    /// A 64-bit integer.
    Long = 5,
    /// A string.
    String = 2,
    /// A comma-separated list.
    List = 7,
}

/// One supported topic config.
pub struct ConfigDef {
    /// Kafka's name.
    pub name: &'static str,
    /// The broker setting that provides its default, as Kafka names it.
    pub broker_synonym: &'static str,
    /// Its kind.
    pub config_type: ConfigType,
    /// One sentence for DescribeConfigs' documentation field.
    pub documentation: &'static str,
}

/// Every topic config Riffle understands, in the order DescribeConfigs lists them.
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    ConfigDef {
        name: CLEANUP_POLICY,
        broker_synonym: "log.cleanup.policy",
        config_type: ConfigType::List,
        documentation: "delete: old segments are removed by retention; compact: the latest value per key is kept.",
    },
    ConfigDef {
        name: DELETE_RETENTION_MS,
        broker_synonym: "log.cleaner.delete.retention.ms",
        config_type: ConfigType::Long,
        documentation: "How long compaction keeps a tombstone (a record with a null value), so consumers see the delete.",
    },
    ConfigDef {
        name: MAX_MESSAGE_BYTES,
        broker_synonym: "message.max.bytes",
        config_type: ConfigType::Int,
        documentation: "The largest record batch size allowed.",
    },
    ConfigDef {
        name: MESSAGE_TIMESTAMP_TYPE,
        broker_synonym: "log.message.timestamp.type",
        config_type: ConfigType::String,
        documentation: "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the broker's clock.",
    },
    ConfigDef {
        name: RETENTION_BYTES,
        broker_synonym: "log.retention.bytes",
        config_type: ConfigType::Long,
        documentation: "The largest a partition may grow before old segments are deleted; -1 for no limit.",
    },
    ConfigDef {
        name: RETENTION_MS,
        broker_synonym: "log.retention.ms",
        config_type: ConfigType::Long,
        documentation: "How long a segment is kept after its newest record; -1 for ever.",
    },
    ConfigDef {
        name: SEGMENT_BYTES,
        broker_synonym: "log.segment.bytes",
        config_type: ConfigType::Int,
        documentation: "The size at which the active segment is rolled.",
    },
    ConfigDef {
        name: SEGMENT_MS,
        broker_synonym: "log.roll.ms",
        config_type: ConfigType::Long,
        documentation: "The age at which the active segment is rolled.",
    },
];

/// Why a config could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not a config we know.
    #[error("unknown topic config '{0}'")]
    Unknown(String),
    /// Known, but the value does not parse or is out of range.
    #[error("invalid value '{value}' for {name}: {reason}")]
    InvalidValue {
        /// The config.
        name: String,
        /// What was given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The definition of a config, if we support it.
pub fn config_def(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|def| def.name == name)
}

/// Checks one value; returns it normalised (e.g. list spacing removed).
pub fn validate(name: &str, value: &str) -> Result<String, ConfigError> {
    let invalid = |reason| ConfigError::InvalidValue {
        name: name.into(),
        value: value.into(),
        reason,
    };
    let def = config_def(name).ok_or_else(|| ConfigError::Unknown(name.into()))?;
    match name {
        CLEANUP_POLICY => {
            let policies: Vec<&str> = value.split(',').map(str::trim).collect();
            if policies.is_empty() || policies.iter().any(|p| *p != "delete" && *p != "compact") {
                return Err(invalid("expected delete, compact or compact,delete"));
            }
            Ok(policies.join(","))
        }
        MESSAGE_TIMESTAMP_TYPE => match value {
            "CreateTime" | "LogAppendTime" => Ok(value.into()),
            _ => Err(invalid("expected CreateTime or LogAppendTime")),
        },
        _ => {
            let number: i64 = value
                .trim()
                .parse()
                .map_err(|_| invalid("not an integer"))?;
            let minimum = match name {
                RETENTION_MS | RETENTION_BYTES => -1,
                DELETE_RETENTION_MS => 0,
                SEGMENT_BYTES => SEGMENT_BYTES_MIN,
                SEGMENT_MS | MAX_MESSAGE_BYTES => 1,
                _ => 0,
            };
            if number < minimum {
                return Err(invalid("below the minimum"));
            }
            if def.config_type == ConfigType::Int && i32::try_from(number).is_err() {
                return Err(invalid("above the maximum of a 32-bit integer"));
            }
            Ok(number.to_string())
        }
    }
}

/// A topic's effective configuration: its own overrides over the broker defaults.
#[derive(Debug, Clone)]
pub struct TopicConfig {
    overrides: BTreeMap<String, String>,
    defaults: TopicDefaults,
}

/// Where a reported value comes from, as DescribeConfigs' config_source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic.
    DynamicTopic = 1,
    /// The broker's flag or its built-in default.
    StaticBroker = 4,
    /// Kafka's built-in default.
    Default = 5,
}

impl TopicConfig {
    /// A config from validated overrides.
    pub fn new(overrides: BTreeMap<String, String>, defaults: TopicDefaults) -> Self {
        TopicConfig {
            overrides,
            defaults,
        }
    }

    /// The values set on the topic.
    pub fn overrides(&self) -> &BTreeMap<String, String> {
        &self.overrides
    }

    /// The broker default of a config, as a string.
    pub fn default_value(&self, name: &str) -> String {
        let defaults = &self.defaults;
        match name {
            RETENTION_MS => defaults.retention_ms.to_string(),
            RETENTION_BYTES => defaults.retention_bytes.to_string(),
            SEGMENT_BYTES => defaults.segment_bytes.to_string(),
            SEGMENT_MS => defaults.segment_ms.to_string(),
            MAX_MESSAGE_BYTES => defaults.max_message_bytes.to_string(),
            CLEANUP_POLICY => "delete".into(),
            MESSAGE_TIMESTAMP_TYPE => "CreateTime".into(),
            DELETE_RETENTION_MS => DEFAULT_DELETE_RETENTION_MS.to_string(),
            _ => String::new(),
        }
    }

    /// The effective value and where it comes from.
    pub fn value(&self, name: &str) -> (String, ConfigSource) {
        match self.overrides.get(name) {
            Some(value) => (value.clone(), ConfigSource::DynamicTopic),
            None => (self.default_value(name), ConfigSource::Default),
        }
    }

    fn number(&self, name: &str) -> i64 {
        // Values were validated when set, so a parse failure means a default we wrote.
        self.value(name).0.parse().unwrap_or(-1)
    }

    /// max.message.bytes, in bytes.
    pub fn max_message_bytes(&self) -> usize {
        usize::try_from(self.number(MAX_MESSAGE_BYTES)).unwrap_or(usize::MAX)
    }

    /// Whether batches are stamped with the broker's clock.
    pub fn uses_log_append_time(&self) -> bool {
        self.value(MESSAGE_TIMESTAMP_TYPE).0 == "LogAppendTime"
    }

    /// Whether compaction keeps only the latest record per key (cleanup.policy contains
    /// compact).
    pub fn is_compacted(&self) -> bool {
        self.value(CLEANUP_POLICY)
            .0
            .split(',')
            .any(|policy| policy == "compact")
    }

    /// Whether retention deletes old segments (cleanup.policy contains delete).
    pub fn deletes_old_segments(&self) -> bool {
        self.value(CLEANUP_POLICY)
            .0
            .split(',')
            .any(|policy| policy == "delete")
    }

    /// The storage settings for this topic's partitions.
    pub fn log_config(&self) -> LogConfig {
        let unbounded_if_not_deleting = |value: i64| {
            if self.deletes_old_segments() {
                value
            } else {
                -1
            }
        };
        LogConfig {
            segment_bytes: u64::try_from(self.number(SEGMENT_BYTES)).unwrap_or(u64::MAX),
            segment_ms: self.number(SEGMENT_MS),
            retention_ms: unbounded_if_not_deleting(self.number(RETENTION_MS)),
            retention_bytes: unbounded_if_not_deleting(self.number(RETENTION_BYTES)),
            delete_retention_ms: self.number(DELETE_RETENTION_MS),
            ..LogConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_config_name_is_defined_once() {
        let names = [
            RETENTION_MS,
            RETENTION_BYTES,
            SEGMENT_BYTES,
            SEGMENT_MS,
            MAX_MESSAGE_BYTES,
            CLEANUP_POLICY,
            MESSAGE_TIMESTAMP_TYPE,
            DELETE_RETENTION_MS,
        ];
        for name in names {
            assert_eq!(
                TOPIC_CONFIGS.iter().filter(|def| def.name == name).count(),
                1,
                "{name}"
            );
        }
        assert_eq!(TOPIC_CONFIGS.len(), names.len());
    }

    #[test]
    fn validation_accepts_kafka_values_and_rejects_others() {
        assert_eq!(
            validate(CLEANUP_POLICY, "compact, delete"),
            Ok("compact,delete".into())
        );
        assert!(validate(CLEANUP_POLICY, "shred").is_err());
        assert_eq!(validate(RETENTION_MS, "-1"), Ok("-1".into()));
        assert!(validate(SEGMENT_BYTES, "3000000000").is_err());
        assert!(matches!(
            validate("no.such.config", "1"),
            Err(ConfigError::Unknown(_))
        ));
    }
}
