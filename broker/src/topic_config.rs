//! Topic-level configs: which ones we support, their defaults, parsing and validation.
//!
//! A topic stores only the configs set on it (Kafka's "dynamic topic config"); every
//! other value comes from the broker-wide default in [`LogDefaults`]. DescribeConfigs
//! reports both, with their source, like Kafka.

use std::collections::BTreeMap;
use std::sync::Arc;

use riffle_storage::LogConfig;

use crate::broker_config::LogDefaults;
#[cfg(test)]
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
/// compression.type: the codec batches are stored in, or `producer` to keep the producer's.
pub const COMPRESSION_TYPE: &str = "compression.type";
/// compression.gzip.level: the gzip level when compression.type is gzip.
pub const COMPRESSION_GZIP_LEVEL: &str = "compression.gzip.level";
/// compression.lz4.level: the lz4 level when compression.type is lz4.
pub const COMPRESSION_LZ4_LEVEL: &str = "compression.lz4.level";
/// compression.zstd.level: the zstd level when compression.type is zstd.
pub const COMPRESSION_ZSTD_LEVEL: &str = "compression.zstd.level";
/// message.timestamp.before.max.ms: how far in the past a CreateTime timestamp may be.
pub const MESSAGE_TIMESTAMP_BEFORE_MAX_MS: &str = "message.timestamp.before.max.ms";
/// message.timestamp.after.max.ms: how far in the future a CreateTime timestamp may be.
pub const MESSAGE_TIMESTAMP_AFTER_MAX_MS: &str = "message.timestamp.after.max.ms";
/// message.timestamp.difference.max.ms: the deprecated bound both of the above fall back on.
pub const MESSAGE_TIMESTAMP_DIFFERENCE_MAX_MS: &str = "message.timestamp.difference.max.ms";
/// min.compaction.lag.ms: how old a record must be before compaction may remove it.
pub const MIN_COMPACTION_LAG_MS: &str = "min.compaction.lag.ms";
/// max.compaction.lag.ms: how old a dirty record may get before compaction must run.
pub const MAX_COMPACTION_LAG_MS: &str = "max.compaction.lag.ms";
/// min.cleanable.dirty.ratio: the dirty share of a log that makes compaction worth it.
pub const MIN_CLEANABLE_DIRTY_RATIO: &str = "min.cleanable.dirty.ratio";
/// segment.index.bytes: the size of each segment's index files.
pub const SEGMENT_INDEX_BYTES: &str = "segment.index.bytes";
/// index.interval.bytes: bytes of batches between two index entries.
pub const INDEX_INTERVAL_BYTES: &str = "index.interval.bytes";
/// flush.messages: fsync once this many records are unsynced.
pub const FLUSH_MESSAGES: &str = "flush.messages";
/// flush.ms: fsync a log whose last timed fsync is this old.
pub const FLUSH_MS: &str = "flush.ms";
/// remote.storage.enable: tiered storage, which Riffle does not have.
pub const REMOTE_STORAGE_ENABLE: &str = "remote.storage.enable";

/// The largest 64-bit value, as Kafka writes its "never" defaults.
const LONG_MAX: &str = "9223372036854775807";

/// The smallest segment.bytes Kafka allows (a legacy v0 record's overhead).
const SEGMENT_BYTES_MIN: i64 = 14;

/// The kind of a config value, as DescribeConfigs v3+ reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// true or false.
    Boolean = 1,
    /// A string.
    String = 2,
    /// A 32-bit integer.
    Int = 3,
    /// A 64-bit integer.
    Long = 5,
    /// A floating-point number.
    Double = 6,
    /// A comma-separated list.
    List = 7,
}

/// What values a config accepts, as Kafka's validator for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRule {
    /// An integer of the config's type, at least this.
    AtLeast(i64),
    /// An integer between the two, inclusive.
    Between(i64, i64),
    /// A gzip level: 1 to 9, or -1 for zlib's default.
    GzipLevel,
    /// A number between 0 and 1.
    Ratio,
    /// true or false, in any case.
    Boolean,
    /// Only false: the feature is not there (Kafka's answer on a broker without it).
    FalseOnly,
    /// Exactly one of these words.
    OneOf(&'static [&'static str]),
    /// A non-empty comma-separated list of these words.
    ListOf(&'static [&'static str]),
    /// Kafka's throttled replicas: empty, `*`, or `partition:broker` pairs.
    ThrottledReplicas,
    /// A Kafka version such as 3.0 or 3.0-IV1.
    KafkaVersion,
    /// A number of at least 0, with a fraction or not.
    NonNegative,
    /// Any text.
    AnyText,
    /// Kafka's `max.connections.per.ip.overrides`: empty, or `host:count` pairs.
    ConnectionOverrides,
}

/// One supported topic config.
pub struct ConfigDef {
    /// Kafka's name.
    pub name: &'static str,
    /// The broker setting that provides its default, as Kafka names it; none for the
    /// configs Kafka has no broker default for.
    pub broker_synonym: Option<&'static str>,
    /// Its kind.
    pub config_type: ConfigType,
    /// The values it accepts.
    pub rule: ValueRule,
    /// Kafka's default, unless a broker flag or dynamic config provides it (see
    /// `LogDefaults::topic_default`).
    pub kafka_default: &'static str,
    /// One or two sentences for DescribeConfigs' documentation field.
    pub documentation: &'static str,
}

/// Says that a config is accepted and described but changes nothing here.
macro_rules! no_effect {
    ($what:literal, $why:literal) => {
        concat!($what, " Riffle accepts it but it has no effect: ", $why)
    };
}

/// Every topic config Riffle understands (all that Kafka 3.9 documents), in the order
/// DescribeConfigs lists them.
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    ConfigDef {
        name: CLEANUP_POLICY,
        broker_synonym: Some("log.cleanup.policy"),
        config_type: ConfigType::List,
        rule: ValueRule::ListOf(&["compact", "delete"]),
        kafka_default: "delete",
        documentation: "delete: old segments are removed by retention; compact: the latest value per key is kept.",
    },
    ConfigDef {
        name: COMPRESSION_GZIP_LEVEL,
        broker_synonym: Some(COMPRESSION_GZIP_LEVEL),
        config_type: ConfigType::Int,
        rule: ValueRule::GzipLevel,
        kafka_default: "-1",
        documentation: "The gzip level (1 to 9, -1 for the default) when compression.type is gzip.",
    },
    ConfigDef {
        name: COMPRESSION_LZ4_LEVEL,
        broker_synonym: Some(COMPRESSION_LZ4_LEVEL),
        config_type: ConfigType::Int,
        rule: ValueRule::Between(1, 17),
        kafka_default: "9",
        documentation: "The lz4 level (1 to 17) when compression.type is lz4.",
    },
    ConfigDef {
        name: COMPRESSION_TYPE,
        broker_synonym: Some(COMPRESSION_TYPE),
        config_type: ConfigType::String,
        rule: ValueRule::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        kafka_default: "producer",
        documentation: "The codec batches are stored in; producer keeps the codec the producer used.",
    },
    ConfigDef {
        name: COMPRESSION_ZSTD_LEVEL,
        broker_synonym: Some(COMPRESSION_ZSTD_LEVEL),
        config_type: ConfigType::Int,
        rule: ValueRule::Between(-131_072, 22),
        kafka_default: "3",
        documentation: "The zstd level (-131072 to 22) when compression.type is zstd.",
    },
    ConfigDef {
        name: DELETE_RETENTION_MS,
        broker_synonym: Some("log.cleaner.delete.retention.ms"),
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(0),
        kafka_default: "86400000",
        documentation: "How long compaction keeps a tombstone (a record with a null value), so consumers see the delete.",
    },
    ConfigDef {
        name: "file.delete.delay.ms",
        broker_synonym: Some("log.segment.delete.delay.ms"),
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(0),
        kafka_default: "60000",
        documentation: no_effect!(
            "How long a deleted segment's files wait before removal.",
            "Riffle removes them at once; readers still holding one finish from the unlinked file."
        ),
    },
    ConfigDef {
        name: FLUSH_MESSAGES,
        broker_synonym: Some("log.flush.interval.messages"),
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(1),
        kafka_default: LONG_MAX,
        documentation: "Force an fsync once this many records are unsynced; a produce that \
                        reaches it is answered after the fsync, whatever its acks. Independent of \
                        --flush-policy, which fsyncs before every acks=all answer by default.",
    },
    ConfigDef {
        name: FLUSH_MS,
        broker_synonym: Some("log.flush.interval.ms"),
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(0),
        kafka_default: LONG_MAX,
        documentation: "Force an fsync of a log holding unsynced records when its last such \
                        fsync is this old; checked every second, as Kafka's log flusher checks.",
    },
    ConfigDef {
        name: "follower.replication.throttled.replicas",
        broker_synonym: None,
        config_type: ConfigType::List,
        rule: ValueRule::ThrottledReplicas,
        kafka_default: "",
        documentation: no_effect!(
            "Replicas whose follower-side replication is throttled.",
            "Riffle is a single node with one replica per partition."
        ),
    },
    ConfigDef {
        name: INDEX_INTERVAL_BYTES,
        broker_synonym: Some("log.index.interval.bytes"),
        config_type: ConfigType::Int,
        rule: ValueRule::AtLeast(0),
        kafka_default: "4096",
        documentation: "Bytes of batches between two offset index entries; smaller gives finer seeks and larger indexes.",
    },
    ConfigDef {
        name: "leader.replication.throttled.replicas",
        broker_synonym: None,
        config_type: ConfigType::List,
        rule: ValueRule::ThrottledReplicas,
        kafka_default: "",
        documentation: no_effect!(
            "Replicas whose leader-side replication is throttled.",
            "Riffle is a single node with one replica per partition."
        ),
    },
    ConfigDef {
        name: "local.retention.bytes",
        broker_synonym: Some("log.local.retention.bytes"),
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(-2),
        kafka_default: "-2",
        documentation: no_effect!(
            "Local retention by size with tiered storage; -2 follows retention.bytes.",
            "Riffle has no tiered storage, so retention.bytes applies."
        ),
    },
    ConfigDef {
        name: "local.retention.ms",
        broker_synonym: Some("log.local.retention.ms"),
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(-2),
        kafka_default: "-2",
        documentation: no_effect!(
            "Local retention by time with tiered storage; -2 follows retention.ms.",
            "Riffle has no tiered storage, so retention.ms applies."
        ),
    },
    ConfigDef {
        name: MAX_COMPACTION_LAG_MS,
        broker_synonym: Some("log.cleaner.max.compaction.lag.ms"),
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(1),
        kafka_default: LONG_MAX,
        documentation: "A compacted log whose oldest uncompacted record is older than this is cleaned whatever its dirty ratio; it also caps segment.ms.",
    },
    ConfigDef {
        name: MAX_MESSAGE_BYTES,
        broker_synonym: Some("message.max.bytes"),
        config_type: ConfigType::Int,
        rule: ValueRule::AtLeast(0),
        kafka_default: "1048588",
        documentation: "The largest record batch size allowed.",
    },
    ConfigDef {
        name: "message.downconversion.enable",
        broker_synonym: Some("log.message.downconversion.enable"),
        config_type: ConfigType::Boolean,
        rule: ValueRule::Boolean,
        kafka_default: "true",
        documentation: no_effect!(
            "Whether old consumers get batches converted to their format.",
            "Riffle serves Fetch 4+ only, which reads the stored v2 batches as they are."
        ),
    },
    ConfigDef {
        name: "message.format.version",
        broker_synonym: Some("log.message.format.version"),
        config_type: ConfigType::String,
        rule: ValueRule::KafkaVersion,
        kafka_default: "3.0-IV1",
        documentation: no_effect!(
            "Deprecated: the record format version.",
            "Riffle always stores v2 record batches, as Kafka 3.0+ does."
        ),
    },
    ConfigDef {
        name: MESSAGE_TIMESTAMP_AFTER_MAX_MS,
        broker_synonym: Some("log.message.timestamp.after.max.ms"),
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(0),
        kafka_default: LONG_MAX,
        documentation: "How far ahead of the broker's clock a CreateTime timestamp may be (Kafka 3.9's default).",
    },
    ConfigDef {
        name: MESSAGE_TIMESTAMP_BEFORE_MAX_MS,
        broker_synonym: Some("log.message.timestamp.before.max.ms"),
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(0),
        kafka_default: LONG_MAX,
        documentation: "How far behind the broker's clock a CreateTime timestamp may be.",
    },
    ConfigDef {
        name: MESSAGE_TIMESTAMP_DIFFERENCE_MAX_MS,
        broker_synonym: Some("log.message.timestamp.difference.max.ms"),
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(0),
        kafka_default: LONG_MAX,
        documentation: "Deprecated: the bound for the before and after configs when they are left at their defaults.",
    },
    ConfigDef {
        name: MESSAGE_TIMESTAMP_TYPE,
        broker_synonym: Some("log.message.timestamp.type"),
        config_type: ConfigType::String,
        rule: ValueRule::OneOf(&["CreateTime", "LogAppendTime"]),
        kafka_default: "CreateTime",
        documentation: "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the broker's clock.",
    },
    ConfigDef {
        name: MIN_CLEANABLE_DIRTY_RATIO,
        broker_synonym: Some("log.cleaner.min.cleanable.ratio"),
        config_type: ConfigType::Double,
        rule: ValueRule::Ratio,
        kafka_default: "0.5",
        documentation: "Compaction cleans a log only once its uncompacted share is above this ratio (or max.compaction.lag.ms passed).",
    },
    ConfigDef {
        name: MIN_COMPACTION_LAG_MS,
        broker_synonym: Some("log.cleaner.min.compaction.lag.ms"),
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(0),
        kafka_default: "0",
        documentation: "Compaction leaves alone segments holding records younger than this.",
    },
    ConfigDef {
        name: "min.insync.replicas",
        broker_synonym: Some("min.insync.replicas"),
        config_type: ConfigType::Int,
        rule: ValueRule::AtLeast(1),
        kafka_default: "1",
        documentation: no_effect!(
            "How many replicas must have a write before acks=all succeeds.",
            "Riffle is a single node with one replica per partition."
        ),
    },
    ConfigDef {
        name: "preallocate",
        broker_synonym: Some("log.preallocate"),
        config_type: ConfigType::Boolean,
        rule: ValueRule::Boolean,
        kafka_default: "false",
        documentation: no_effect!(
            "Whether a new segment's file is preallocated to segment.bytes.",
            "Riffle grows segment files as it writes (its index files are always preallocated)."
        ),
    },
    ConfigDef {
        name: "remote.log.copy.disable",
        broker_synonym: None,
        config_type: ConfigType::Boolean,
        rule: ValueRule::Boolean,
        kafka_default: "false",
        documentation: no_effect!(
            "Stops copying segments to tiered storage.",
            "Riffle has no tiered storage."
        ),
    },
    ConfigDef {
        name: "remote.log.delete.on.disable",
        broker_synonym: None,
        config_type: ConfigType::Boolean,
        rule: ValueRule::Boolean,
        kafka_default: "false",
        documentation: no_effect!(
            "Deletes tiered segments when tiered storage is turned off.",
            "Riffle has no tiered storage."
        ),
    },
    ConfigDef {
        name: REMOTE_STORAGE_ENABLE,
        broker_synonym: None,
        config_type: ConfigType::Boolean,
        rule: ValueRule::FalseOnly,
        kafka_default: "false",
        documentation: "Tiered storage. Riffle has none, so only false is accepted, as on a Kafka broker without it.",
    },
    ConfigDef {
        name: RETENTION_BYTES,
        broker_synonym: Some("log.retention.bytes"),
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(i64::MIN),
        kafka_default: "-1",
        documentation: "The largest a partition may grow before old segments are deleted; negative for no limit.",
    },
    ConfigDef {
        name: RETENTION_MS,
        broker_synonym: Some("log.retention.ms"),
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(-1),
        kafka_default: "604800000",
        documentation: "How long a segment is kept after its newest record; -1 for ever.",
    },
    ConfigDef {
        name: SEGMENT_BYTES,
        broker_synonym: Some("log.segment.bytes"),
        config_type: ConfigType::Int,
        rule: ValueRule::AtLeast(SEGMENT_BYTES_MIN),
        kafka_default: "1073741824",
        documentation: "The size at which the active segment is rolled.",
    },
    ConfigDef {
        name: SEGMENT_INDEX_BYTES,
        broker_synonym: Some("log.index.size.max.bytes"),
        config_type: ConfigType::Int,
        rule: ValueRule::AtLeast(4),
        kafka_default: "10485760",
        documentation: "The size of each segment's offset and time index files; a segment whose index is full is rolled. Riffle uses at least 32.",
    },
    ConfigDef {
        name: "segment.jitter.ms",
        broker_synonym: Some("log.roll.jitter.ms"),
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(0),
        kafka_default: "0",
        documentation: no_effect!(
            "A random amount taken off segment.ms so that segments do not all roll at once.",
            "Riffle rolls at segment.ms exactly."
        ),
    },
    ConfigDef {
        name: SEGMENT_MS,
        broker_synonym: Some("log.roll.ms"),
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(1),
        kafka_default: "604800000",
        documentation: "The age at which the active segment is rolled.",
    },
    ConfigDef {
        name: "unclean.leader.election.enable",
        broker_synonym: Some("unclean.leader.election.enable"),
        config_type: ConfigType::Boolean,
        rule: ValueRule::Boolean,
        kafka_default: "false",
        documentation: no_effect!(
            "Whether an out-of-sync replica may become leader.",
            "Riffle is a single node with one replica per partition."
        ),
    },
];

/// Why a config could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not a config we know.
    #[error("unknown topic config '{0}'")]
    Unknown(String),
    /// Known, but the value does not parse or is out of range.
    #[error("invalid value '{value}' for {name}: {problem}")]
    InvalidValue {
        /// The config.
        name: String,
        /// What was given.
        value: String,
        /// What is wrong with it.
        problem: ValueProblem,
    },
    /// Each value is valid, but together they contradict each other.
    #[error(
        "conflict topic config setting min.compaction.lag.ms ({min_ms}) > max.compaction.lag.ms ({max_ms})"
    )]
    CompactionLagConflict {
        /// The effective min.compaction.lag.ms.
        min_ms: i64,
        /// The effective max.compaction.lag.ms.
        max_ms: i64,
    },
}

/// What is wrong with one value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueProblem {
    /// Not an integer, or one too large for the config's type.
    #[error("not a {0}-bit integer")]
    NotAnInteger(u8),
    /// Below the config's minimum.
    #[error("value must be at least {0}")]
    BelowMinimum(i64),
    /// Above the config's maximum.
    #[error("value must be at most {0}")]
    AboveMaximum(i64),
    /// Not a gzip level.
    #[error("value must be between 1 and 9 or equal to -1")]
    NotAGzipLevel,
    /// Not a number from 0 to 1.
    #[error("value must be a number between 0 and 1")]
    NotARatio,
    /// Not true or false.
    #[error("value must be true or false")]
    NotABoolean,
    /// A feature Riffle does not have.
    #[error("Riffle has no tiered storage, so only false is accepted")]
    Unavailable,
    /// Not one of the allowed words.
    #[error("value must be one of: {}", .0.join(", "))]
    NotOneOf(&'static [&'static str]),
    /// Not a throttled-replica list.
    #[error("value must be empty, * or a list of partition:broker pairs")]
    NotAReplicaList,
    /// Not a Kafka version.
    #[error("value must be a Kafka version such as 3.0-IV1")]
    NotAVersion,
    /// Not a number of at least 0.
    #[error("value must be a number of at least 0")]
    Negative,
    /// Not a list of host:count pairs.
    #[error("value must be empty or a list of host:count pairs")]
    NotConnectionOverrides,
}

/// The definition of a config, if we support it.
pub fn config_def(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|def| def.name == name)
}

/// Checks one value; returns it normalised (trimmed, list spacing removed, booleans in
/// lower case), as Kafka parses it.
///
/// # Errors
/// `Unknown` for a name not in [`TOPIC_CONFIGS`], `InvalidValue` for a value its rule refuses.
pub fn validate(name: &str, value: &str) -> Result<String, ConfigError> {
    let def = config_def(name).ok_or_else(|| ConfigError::Unknown(name.into()))?;
    check_value(def.config_type, def.rule, value.trim()).map_err(|problem| {
        ConfigError::InvalidValue {
            name: name.into(),
            value: value.into(),
            problem,
        }
    })
}

/// Checks what no single value shows: min.compaction.lag.ms must not exceed
/// max.compaction.lag.ms, counting defaults (Kafka's `LogConfig.validateValues`).
///
/// # Errors
/// `CompactionLagConflict`.
pub fn validate_combination(config: &TopicConfig) -> Result<(), ConfigError> {
    let min_ms = config.number(MIN_COMPACTION_LAG_MS);
    let max_ms = config.number(MAX_COMPACTION_LAG_MS);
    if min_ms > max_ms {
        return Err(ConfigError::CompactionLagConflict { min_ms, max_ms });
    }
    Ok(())
}

/// Applies a config's rule to a trimmed value. Dynamic broker configs share the rules.
pub(crate) fn check_value(
    config_type: ConfigType,
    rule: ValueRule,
    value: &str,
) -> Result<String, ValueProblem> {
    match rule {
        ValueRule::AtLeast(minimum) => check_integer(config_type, value, minimum, i64::MAX),
        ValueRule::Between(minimum, maximum) => check_integer(config_type, value, minimum, maximum),
        ValueRule::GzipLevel => {
            let level = check_integer(config_type, value, -1, 9)?;
            if level == "0" {
                return Err(ValueProblem::NotAGzipLevel);
            }
            Ok(level)
        }
        ValueRule::Ratio => match value.parse::<f64>() {
            Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(value.to_string()),
            _ => Err(ValueProblem::NotARatio),
        },
        ValueRule::Boolean => parse_boolean(value).map(|flag| flag.to_string()),
        ValueRule::FalseOnly => match parse_boolean(value)? {
            false => Ok("false".to_string()),
            true => Err(ValueProblem::Unavailable),
        },
        ValueRule::OneOf(words) if words.contains(&value) => Ok(value.to_string()),
        ValueRule::OneOf(words) => Err(ValueProblem::NotOneOf(words)),
        ValueRule::ListOf(words) => {
            let items: Vec<&str> = value.split(',').map(str::trim).collect();
            if items.iter().any(|item| !words.contains(item)) {
                return Err(ValueProblem::NotOneOf(words));
            }
            Ok(items.join(","))
        }
        ValueRule::ThrottledReplicas => check_throttled_replicas(value),
        ValueRule::KafkaVersion if is_kafka_version(value) => Ok(value.to_string()),
        ValueRule::KafkaVersion => Err(ValueProblem::NotAVersion),
        ValueRule::NonNegative => match value.parse::<f64>() {
            Ok(number) if number >= 0.0 => Ok(value.to_string()),
            _ => Err(ValueProblem::Negative),
        },
        ValueRule::AnyText => Ok(value.to_string()),
        ValueRule::ConnectionOverrides => check_connection_overrides(value),
    }
}

/// Kafka's `max.connections.per.ip.overrides`: empty, or `host:count` pairs where the host
/// is a name or an address (IPv6 too, so the count follows the last colon). The syntax
/// only; hostnames are resolved when the limits are applied (`PerIpOverrides::parse`).
fn check_connection_overrides(value: &str) -> Result<String, ValueProblem> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let items: Vec<&str> = value.split(',').map(str::trim).collect();
    let pairs_only = items.iter().all(|item| {
        item.rsplit_once(':').is_some_and(|(host, count)| {
            !host.is_empty() && count.parse::<i32>().is_ok_and(|count| count >= 0)
        })
    });
    if !pairs_only {
        return Err(ValueProblem::NotConnectionOverrides);
    }
    Ok(items.join(","))
}

/// An integer of `config_type`'s width in `minimum..=maximum`, written back canonically.
fn check_integer(
    config_type: ConfigType,
    value: &str,
    minimum: i64,
    maximum: i64,
) -> Result<String, ValueProblem> {
    let number = if config_type == ConfigType::Int {
        value
            .parse::<i32>()
            .map(i64::from)
            .map_err(|_| ValueProblem::NotAnInteger(32))?
    } else {
        value
            .parse::<i64>()
            .map_err(|_| ValueProblem::NotAnInteger(64))?
    };
    if number < minimum {
        return Err(ValueProblem::BelowMinimum(minimum));
    }
    if number > maximum {
        return Err(ValueProblem::AboveMaximum(maximum));
    }
    Ok(number.to_string())
}

/// Kafka's boolean parse: true or false in any case.
fn parse_boolean(value: &str) -> Result<bool, ValueProblem> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ValueProblem::NotABoolean)
    }
}

/// Kafka's `ThrottledReplicaListValidator`: empty, `*` alone, or `partition:broker` pairs.
fn check_throttled_replicas(value: &str) -> Result<String, ValueProblem> {
    if value.is_empty() || value == "*" {
        return Ok(value.to_string());
    }
    let is_number = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let items: Vec<&str> = value.split(',').map(str::trim).collect();
    let pairs_only = items.iter().all(|item| {
        item.split_once(':')
            .is_some_and(|(partition, broker)| is_number(partition) && is_number(broker))
    });
    if !pairs_only {
        return Err(ValueProblem::NotAReplicaList);
    }
    Ok(items.join(","))
}

/// The shape of Kafka's version names: `0.10.2`, `2.8`, `3.0-IV1`.
fn is_kafka_version(value: &str) -> bool {
    let (release, iv) = match value.split_once("-IV") {
        Some((release, iv)) => (release, Some(iv)),
        None => (value, None),
    };
    let is_number = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = release.split('.').collect();
    // Kafka also takes the four-part names of 0.x releases, such as 0.10.0.0.
    (2..=4).contains(&parts.len())
        && parts.iter().all(|part| is_number(part))
        && iv.is_none_or(is_number)
}

/// How a topic's batches are stored: Kafka's `BrokerCompressionType`. The produce path
/// reads it through [`TopicConfig::compression_type`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    /// Keep whatever codec the producer used.
    Producer,
    /// Store batches uncompressed.
    Uncompressed,
    /// gzip, at compression.gzip.level.
    Gzip,
    /// snappy.
    Snappy,
    /// lz4, at compression.lz4.level.
    Lz4,
    /// zstd, at compression.zstd.level.
    Zstd,
}

/// A topic's effective configuration: its own overrides over the broker defaults. The
/// values the produce and fetch paths read are parsed once, when the config is made, so
/// reading them costs no allocation.
#[derive(Debug, Clone)]
pub struct TopicConfig {
    overrides: BTreeMap<String, String>,
    defaults: Arc<LogDefaults>,
    resolved: Resolved,
}

/// The parsed values read on every request.
#[derive(Debug, Clone)]
struct Resolved {
    max_message_bytes: usize,
    uses_log_append_time: bool,
    compression_type: CompressionType,
    compression_level: Option<i32>,
    timestamp_before_max_ms: i64,
    timestamp_after_max_ms: i64,
    is_compacted: bool,
    deletes_old_segments: bool,
    flush_messages: i64,
    flush_ms: i64,
}

/// Where a reported value comes from, as DescribeConfigs' config_source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic.
    DynamicTopic = 1,
    /// A dynamic broker config set for this broker.
    DynamicBroker = 2,
    /// A dynamic broker config set as the cluster-wide default.
    DynamicDefaultBroker = 3,
    /// The broker's flag.
    StaticBroker = 4,
    /// Kafka's built-in default (or the flag's, which Riffle cannot tell apart).
    Default = 5,
}

impl TopicConfig {
    /// A config from validated overrides.
    pub fn new(overrides: BTreeMap<String, String>, defaults: Arc<LogDefaults>) -> Self {
        let mut config = TopicConfig {
            overrides,
            defaults,
            resolved: Resolved {
                max_message_bytes: 0,
                uses_log_append_time: false,
                compression_type: CompressionType::Producer,
                compression_level: None,
                timestamp_before_max_ms: i64::MAX,
                timestamp_after_max_ms: i64::MAX,
                is_compacted: false,
                deletes_old_segments: true,
                flush_messages: i64::MAX,
                flush_ms: i64::MAX,
            },
        };
        config.resolved = config.resolve();
        config
    }

    /// The same overrides over other broker defaults.
    pub fn with_defaults(&self, defaults: Arc<LogDefaults>) -> Self {
        TopicConfig::new(self.overrides.clone(), defaults)
    }

    fn resolve(&self) -> Resolved {
        let policies = self.value(CLEANUP_POLICY).0;
        let has_policy = |wanted: &str| policies.split(',').any(|policy| policy == wanted);
        let compression_type = match self.value(COMPRESSION_TYPE).0.as_str() {
            "uncompressed" => CompressionType::Uncompressed,
            "gzip" => CompressionType::Gzip,
            "snappy" => CompressionType::Snappy,
            "lz4" => CompressionType::Lz4,
            "zstd" => CompressionType::Zstd,
            _ => CompressionType::Producer,
        };
        let level_name = match compression_type {
            CompressionType::Gzip => Some(COMPRESSION_GZIP_LEVEL),
            CompressionType::Lz4 => Some(COMPRESSION_LZ4_LEVEL),
            CompressionType::Zstd => Some(COMPRESSION_ZSTD_LEVEL),
            CompressionType::Producer | CompressionType::Uncompressed | CompressionType::Snappy => {
                None
            }
        };
        Resolved {
            max_message_bytes: usize::try_from(self.number(MAX_MESSAGE_BYTES))
                .unwrap_or(usize::MAX),
            uses_log_append_time: self.value(MESSAGE_TIMESTAMP_TYPE).0 == "LogAppendTime",
            compression_type,
            compression_level: level_name.and_then(|name| i32::try_from(self.number(name)).ok()),
            timestamp_before_max_ms: self.timestamp_bound_ms(MESSAGE_TIMESTAMP_BEFORE_MAX_MS),
            timestamp_after_max_ms: self.timestamp_bound_ms(MESSAGE_TIMESTAMP_AFTER_MAX_MS),
            is_compacted: has_policy("compact"),
            deletes_old_segments: has_policy("delete"),
            flush_messages: self.number(FLUSH_MESSAGES),
            flush_ms: self.number(FLUSH_MS),
        }
    }

    /// The values set on the topic.
    pub fn overrides(&self) -> &BTreeMap<String, String> {
        &self.overrides
    }

    /// The broker defaults this config reads.
    pub fn defaults(&self) -> &LogDefaults {
        &self.defaults
    }

    /// The default of a config, as a string: a dynamic broker config, the broker flag, or
    /// Kafka's default; empty for a name we do not know.
    pub fn default_value(&self, name: &str) -> String {
        config_def(name)
            .map(|def| self.defaults.topic_default(def).0)
            .unwrap_or_default()
    }

    /// The effective value and where it comes from.
    pub fn value(&self, name: &str) -> (String, ConfigSource) {
        if let Some(value) = self.overrides.get(name) {
            return (value.clone(), ConfigSource::DynamicTopic);
        }
        match config_def(name) {
            Some(def) => self.defaults.topic_default(def),
            None => (String::new(), ConfigSource::Default),
        }
    }

    fn number(&self, name: &str) -> i64 {
        // Values were validated when set, so a parse failure means a default we wrote.
        self.value(name).0.parse().unwrap_or(-1)
    }

    /// max.message.bytes, in bytes.
    pub fn max_message_bytes(&self) -> usize {
        self.resolved.max_message_bytes
    }

    /// Whether batches are stamped with the broker's clock.
    pub fn uses_log_append_time(&self) -> bool {
        self.resolved.uses_log_append_time
    }

    /// compression.type: the codec batches are stored in, or `Producer` to keep theirs.
    pub fn compression_type(&self) -> CompressionType {
        self.resolved.compression_type
    }

    /// The level of the codec compression.type names (compression.gzip.level, .lz4.level
    /// or .zstd.level); `None` for codecs without levels. Gzip's -1 means zlib's default.
    pub fn compression_level(&self) -> Option<i32> {
        self.resolved.compression_level
    }

    /// message.timestamp.before.max.ms: how far behind the broker's clock a CreateTime
    /// timestamp may be. Left at its default (`i64::MAX`), the deprecated
    /// message.timestamp.difference.max.ms applies instead, as in Kafka 3.6-3.9.
    pub fn timestamp_before_max_ms(&self) -> i64 {
        self.resolved.timestamp_before_max_ms
    }

    /// message.timestamp.after.max.ms: how far ahead of the broker's clock a CreateTime
    /// timestamp may be. Riffle follows Kafka 3.9: the default is `i64::MAX` (Kafka 4.0
    /// lowered it to one hour), and left at it, message.timestamp.difference.max.ms applies.
    pub fn timestamp_after_max_ms(&self) -> i64 {
        self.resolved.timestamp_after_max_ms
    }

    fn timestamp_bound_ms(&self, name: &str) -> i64 {
        match self.number(name) {
            i64::MAX => self.number(MESSAGE_TIMESTAMP_DIFFERENCE_MAX_MS),
            bound_ms => bound_ms,
        }
    }

    /// Whether compaction keeps only the latest record per key (cleanup.policy contains
    /// compact).
    pub fn is_compacted(&self) -> bool {
        self.resolved.is_compacted
    }

    /// flush.messages: how many unsynced records force an fsync; `i64::MAX` never.
    pub fn flush_messages(&self) -> i64 {
        self.resolved.flush_messages
    }

    /// flush.ms: how old a log's last timed fsync may get while it holds unsynced records;
    /// `i64::MAX` never.
    pub fn flush_ms(&self) -> i64 {
        self.resolved.flush_ms
    }

    /// Whether retention deletes old segments (cleanup.policy contains delete).
    pub fn deletes_old_segments(&self) -> bool {
        self.resolved.deletes_old_segments
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
        let max_compaction_lag_ms = self.number(MAX_COMPACTION_LAG_MS);
        // As Kafka: a compacted log rolls by max.compaction.lag.ms at the latest, since the
        // active segment is never cleaned.
        let segment_ms = if self.is_compacted() {
            self.number(SEGMENT_MS).min(max_compaction_lag_ms)
        } else {
            self.number(SEGMENT_MS)
        };
        LogConfig {
            segment_bytes: u64::try_from(self.number(SEGMENT_BYTES)).unwrap_or(u64::MAX),
            segment_ms,
            index_interval_bytes: u64::try_from(self.number(INDEX_INTERVAL_BYTES)).unwrap_or(0),
            segment_index_bytes: u64::try_from(self.number(SEGMENT_INDEX_BYTES)).unwrap_or(0),
            retention_ms: unbounded_if_not_deleting(self.number(RETENTION_MS)),
            retention_bytes: unbounded_if_not_deleting(self.number(RETENTION_BYTES)),
            delete_retention_ms: self.number(DELETE_RETENTION_MS),
            min_compaction_lag_ms: self.number(MIN_COMPACTION_LAG_MS),
            max_compaction_lag_ms,
            min_cleanable_dirty_ratio: self
                .value(MIN_CLEANABLE_DIRTY_RATIO)
                .0
                .parse()
                .unwrap_or(0.5),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn defaults() -> TopicDefaults {
        TopicDefaults {
            retention_ms: 604_800_000,
            retention_bytes: -1,
            segment_bytes: 1_073_741_824,
            segment_ms: 604_800_000,
            max_message_bytes: 1_048_588,
        }
    }

    fn config_with(overrides: &[(&str, &str)]) -> TopicConfig {
        let overrides = overrides
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        TopicConfig::new(overrides, Arc::new(LogDefaults::from_flags(defaults())))
    }

    #[test]
    fn every_kafka_topic_config_is_defined_once_with_a_valid_default() {
        // The table holds each of Kafka 3.9's topic configs once, and each default passes
        // its own rule (so describing a fresh topic never shows a value we would refuse).
        let kafka_names = [
            "cleanup.policy",
            "compression.gzip.level",
            "compression.lz4.level",
            "compression.type",
            "compression.zstd.level",
            "delete.retention.ms",
            "file.delete.delay.ms",
            "flush.messages",
            "flush.ms",
            "follower.replication.throttled.replicas",
            "index.interval.bytes",
            "leader.replication.throttled.replicas",
            "local.retention.bytes",
            "local.retention.ms",
            "max.compaction.lag.ms",
            "max.message.bytes",
            "message.downconversion.enable",
            "message.format.version",
            "message.timestamp.after.max.ms",
            "message.timestamp.before.max.ms",
            "message.timestamp.difference.max.ms",
            "message.timestamp.type",
            "min.cleanable.dirty.ratio",
            "min.compaction.lag.ms",
            "min.insync.replicas",
            "preallocate",
            "remote.log.copy.disable",
            "remote.log.delete.on.disable",
            "remote.storage.enable",
            "retention.bytes",
            "retention.ms",
            "segment.bytes",
            "segment.index.bytes",
            "segment.jitter.ms",
            "segment.ms",
            "unclean.leader.election.enable",
        ];
        let defined: HashSet<&str> = TOPIC_CONFIGS.iter().map(|def| def.name).collect();
        assert_eq!(
            defined.len(),
            TOPIC_CONFIGS.len(),
            "a name is defined twice"
        );
        assert_eq!(defined, kafka_names.into_iter().collect());
        let config = config_with(&[]);
        for def in TOPIC_CONFIGS {
            let default = config.default_value(def.name);
            assert_eq!(
                validate(def.name, &default),
                Ok(default.clone()),
                "{}",
                def.name
            );
        }
    }

    #[test]
    fn validation_accepts_kafka_values_and_rejects_others() {
        // Each rule takes what Kafka's validator takes, normalised, and refuses the rest.
        let accepted = [
            (CLEANUP_POLICY, "compact, delete", "compact,delete"),
            (COMPRESSION_TYPE, " zstd ", "zstd"),
            (COMPRESSION_TYPE, "producer", "producer"),
            (COMPRESSION_GZIP_LEVEL, "-1", "-1"),
            (COMPRESSION_GZIP_LEVEL, "9", "9"),
            (COMPRESSION_ZSTD_LEVEL, "-131072", "-131072"),
            (RETENTION_MS, "-1", "-1"),
            (RETENTION_BYTES, "-5", "-5"),
            (MIN_CLEANABLE_DIRTY_RATIO, "0.01", "0.01"),
            ("preallocate", "TRUE", "true"),
            (REMOTE_STORAGE_ENABLE, "false", "false"),
            (
                "leader.replication.throttled.replicas",
                "0:1, 1:1",
                "0:1,1:1",
            ),
            ("follower.replication.throttled.replicas", "*", "*"),
            ("message.format.version", "3.0-IV1", "3.0-IV1"),
            ("message.format.version", "0.10.2", "0.10.2"),
            (SEGMENT_INDEX_BYTES, "4", "4"),
        ];
        for (name, value, normalised) in accepted {
            assert_eq!(
                validate(name, value),
                Ok(normalised.to_string()),
                "{name}={value}"
            );
        }
        let refused = [
            (CLEANUP_POLICY, "shred"),
            (COMPRESSION_TYPE, "ZSTD"),
            (COMPRESSION_TYPE, "brotli"),
            (COMPRESSION_GZIP_LEVEL, "0"),
            (COMPRESSION_GZIP_LEVEL, "10"),
            (COMPRESSION_LZ4_LEVEL, "18"),
            (COMPRESSION_ZSTD_LEVEL, "23"),
            (RETENTION_MS, "-2"),
            (SEGMENT_BYTES, "13"),
            (SEGMENT_BYTES, "3000000000"),
            (SEGMENT_INDEX_BYTES, "3"),
            (MAX_COMPACTION_LAG_MS, "0"),
            ("min.insync.replicas", "0"),
            ("flush.messages", "0"),
            (MIN_CLEANABLE_DIRTY_RATIO, "1.5"),
            (MIN_CLEANABLE_DIRTY_RATIO, "NaN"),
            ("preallocate", "yes"),
            (REMOTE_STORAGE_ENABLE, "true"),
            ("leader.replication.throttled.replicas", "0:1,*"),
            ("message.format.version", "three"),
            (MESSAGE_TIMESTAMP_TYPE, "createtime"),
            (MESSAGE_TIMESTAMP_AFTER_MAX_MS, "-1"),
        ];
        for (name, value) in refused {
            assert!(
                matches!(validate(name, value), Err(ConfigError::InvalidValue { .. })),
                "{name}={value} should be refused"
            );
        }
        assert!(matches!(
            validate("no.such.config", "1"),
            Err(ConfigError::Unknown(_))
        ));
    }

    #[test]
    fn compaction_lags_must_not_cross() {
        // min.compaction.lag.ms above max.compaction.lag.ms is refused, defaults included.
        assert!(validate_combination(&config_with(&[(MIN_COMPACTION_LAG_MS, "5000")])).is_ok());
        let crossed = config_with(&[
            (MIN_COMPACTION_LAG_MS, "5000"),
            (MAX_COMPACTION_LAG_MS, "1000"),
        ]);
        assert_eq!(
            validate_combination(&crossed),
            Err(ConfigError::CompactionLagConflict {
                min_ms: 5000,
                max_ms: 1000
            })
        );
    }

    #[test]
    fn accessors_read_the_produce_path_configs_with_kafka_defaults() {
        // compression.type and its level, and the timestamp bounds with Kafka 3.9's
        // defaults and their fallback on message.timestamp.difference.max.ms.
        let fresh = config_with(&[]);
        assert_eq!(fresh.compression_type(), CompressionType::Producer);
        assert_eq!(fresh.compression_level(), None);
        assert_eq!(fresh.timestamp_before_max_ms(), i64::MAX);
        assert_eq!(fresh.timestamp_after_max_ms(), i64::MAX);
        let zstd = config_with(&[(COMPRESSION_TYPE, "zstd")]);
        assert_eq!(
            (zstd.compression_type(), zstd.compression_level()),
            (CompressionType::Zstd, Some(3))
        );
        let gzip = config_with(&[(COMPRESSION_TYPE, "gzip"), (COMPRESSION_GZIP_LEVEL, "6")]);
        assert_eq!(gzip.compression_level(), Some(6));
        let bounded = config_with(&[
            (MESSAGE_TIMESTAMP_DIFFERENCE_MAX_MS, "60000"),
            (MESSAGE_TIMESTAMP_AFTER_MAX_MS, "1000"),
        ]);
        assert_eq!(bounded.timestamp_before_max_ms(), 60_000);
        assert_eq!(bounded.timestamp_after_max_ms(), 1_000);
    }

    #[test]
    fn log_config_carries_the_storage_configs() {
        // The index, compaction and roll configs reach storage; a compacted topic rolls by
        // max.compaction.lag.ms at the latest, as in Kafka.
        let config = config_with(&[
            (CLEANUP_POLICY, "compact"),
            (SEGMENT_INDEX_BYTES, "4096"),
            (INDEX_INTERVAL_BYTES, "128"),
            (MIN_COMPACTION_LAG_MS, "10"),
            (MAX_COMPACTION_LAG_MS, "60000"),
            (MIN_CLEANABLE_DIRTY_RATIO, "0.25"),
        ]);
        let log_config = config.log_config();
        let expected = LogConfig {
            segment_bytes: 1_073_741_824,
            segment_ms: 60_000,
            index_interval_bytes: 128,
            segment_index_bytes: 4096,
            retention_ms: -1,
            retention_bytes: -1,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 10,
            max_compaction_lag_ms: 60_000,
            min_cleanable_dirty_ratio: 0.25,
        };
        assert_eq!(log_config, expected);
        let deleting = config_with(&[(MAX_COMPACTION_LAG_MS, "60000")]).log_config();
        assert_eq!(deleting.segment_ms, 604_800_000);
        assert_eq!(deleting.min_cleanable_dirty_ratio, 0.5);
    }
}
