//! Dynamic broker configs: the broker settings that may change while it runs, as Kafka's
//! `DynamicBrokerConfig` allows (`kafka-configs --entity-type brokers`).
//!
//! A value is set either for this broker (resource name = its node id) or as the
//! cluster-wide default (resource name empty). The broker then reads each setting, in
//! Kafka's order of precedence: its own dynamic value, the cluster default, its flag, and
//! Kafka's built-in default. Values are stored in the metadata log, so they survive
//! restarts.
//!
//! Which settings have an effect: every `log.*` default of a topic config (topics that do
//! not set the config follow at once) and the connection limits. The others Kafka lists
//! as dynamic (thread pools, the cleaner's buffers, Kerberos) are accepted and described,
//! and their documentation says why they change nothing here. Every other name is refused
//! with INVALID_REQUEST, as Kafka refuses a static config.

use std::collections::BTreeMap;

use crate::config::TopicDefaults;
use crate::topic_config::{
    self, ConfigDef, ConfigSource, ConfigType, MAX_MESSAGE_BYTES, RETENTION_BYTES, RETENTION_MS,
    SEGMENT_BYTES, SEGMENT_MS, TOPIC_CONFIGS, ValueProblem, ValueRule,
};

/// Who a dynamic value is set for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerConfigEntity {
    /// Every broker of the cluster (the resource name is empty).
    ClusterDefault,
    /// This broker alone (the resource name is its node id).
    ThisBroker,
}

/// One broker setting that may change while running, other than the `log.*` topic
/// defaults (those follow the topic config table).
pub struct DynamicConfigDef {
    /// Kafka's name.
    pub name: &'static str,
    /// Its kind.
    pub config_type: ConfigType,
    /// The values it accepts.
    pub rule: ValueRule,
    /// Kafka's default, unless a flag provides it (see [`static_value`]).
    pub kafka_default: &'static str,
    /// Kafka allows it only per broker, not as a cluster default (listener settings).
    pub per_broker_only: bool,
    /// One or two sentences for DescribeConfigs' documentation field.
    pub documentation: &'static str,
}

/// max.connections: the connections the broker holds at once.
pub const MAX_CONNECTIONS: &str = "max.connections";
/// max.connections.per.ip: the connections one client address may hold.
pub const MAX_CONNECTIONS_PER_IP: &str = "max.connections.per.ip";
/// max.connections.per.ip.overrides: per-address exceptions, `host:count,...`.
pub const MAX_CONNECTIONS_PER_IP_OVERRIDES: &str = "max.connections.per.ip.overrides";

/// Says that a setting is accepted and described but changes nothing here.
macro_rules! no_effect {
    ($what:literal, $why:literal) => {
        concat!($what, " Riffle accepts it but it has no effect: ", $why)
    };
}

/// The dynamic settings that are not topic defaults, as Kafka 3.9 lists them.
pub const DYNAMIC_BROKER_CONFIGS: &[DynamicConfigDef] = &[
    DynamicConfigDef {
        name: MAX_CONNECTIONS,
        config_type: ConfigType::Int,
        rule: ValueRule::AtLeast(0),
        kafka_default: "2147483647",
        per_broker_only: false,
        documentation: "The connections the broker holds at once; past it a new connection is \
                        accepted and closed. Lowering it closes no open connection.",
    },
    DynamicConfigDef {
        name: MAX_CONNECTIONS_PER_IP,
        config_type: ConfigType::Int,
        rule: ValueRule::AtLeast(0),
        kafka_default: "2147483647",
        per_broker_only: false,
        documentation: "The connections one client address may hold at once.",
    },
    DynamicConfigDef {
        name: MAX_CONNECTIONS_PER_IP_OVERRIDES,
        config_type: ConfigType::String,
        rule: ValueRule::ConnectionOverrides,
        kafka_default: "",
        per_broker_only: false,
        documentation: "Per-address exceptions to max.connections.per.ip, as host:count pairs \
                        separated by commas.",
    },
    DynamicConfigDef {
        name: "max.connection.creation.rate",
        config_type: ConfigType::Int,
        rule: ValueRule::AtLeast(0),
        kafka_default: "2147483647",
        per_broker_only: false,
        documentation: no_effect!(
            "The new connections accepted per second.",
            "Riffle bounds connections by count, not by rate."
        ),
    },
    DynamicConfigDef {
        name: "background.threads",
        config_type: ConfigType::Int,
        rule: ValueRule::AtLeast(1),
        kafka_default: "10",
        per_broker_only: false,
        documentation: no_effect!("Threads for background tasks.", "see num.io.threads."),
    },
    DynamicConfigDef {
        name: "num.io.threads",
        config_type: ConfigType::Int,
        rule: ValueRule::AtLeast(1),
        kafka_default: "8",
        per_broker_only: false,
        documentation: no_effect!(
            "Threads that process requests.",
            "Riffle runs every request on one tokio runtime sized at start-up."
        ),
    },
    DynamicConfigDef {
        name: "num.network.threads",
        config_type: ConfigType::Int,
        rule: ValueRule::AtLeast(1),
        kafka_default: "3",
        per_broker_only: false,
        documentation: no_effect!(
            "Threads that read and write sockets.",
            "see num.io.threads."
        ),
    },
    DynamicConfigDef {
        name: "num.recovery.threads.per.data.dir",
        config_type: ConfigType::Int,
        rule: ValueRule::AtLeast(1),
        kafka_default: "1",
        per_broker_only: false,
        documentation: no_effect!(
            "Threads that recover logs at start-up.",
            "see num.io.threads."
        ),
    },
    DynamicConfigDef {
        name: "num.replica.fetchers",
        config_type: ConfigType::Int,
        rule: ValueRule::AtLeast(1),
        kafka_default: "1",
        per_broker_only: false,
        documentation: no_effect!(
            "Threads that copy partitions from their leaders.",
            "Riffle is a single node."
        ),
    },
    DynamicConfigDef {
        name: "log.cleaner.threads",
        config_type: ConfigType::Int,
        rule: ValueRule::AtLeast(0),
        kafka_default: "1",
        per_broker_only: false,
        documentation: no_effect!(
            "Threads that compact logs.",
            "Riffle compacts on its background task, one partition at a time."
        ),
    },
    DynamicConfigDef {
        name: "log.cleaner.dedupe.buffer.size",
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(0),
        kafka_default: "134217728",
        per_broker_only: false,
        documentation: no_effect!(
            "Memory for the cleaner's key map.",
            "Riffle's compaction sizes its own map."
        ),
    },
    DynamicConfigDef {
        name: "log.cleaner.io.buffer.size",
        config_type: ConfigType::Int,
        rule: ValueRule::AtLeast(0),
        kafka_default: "524288",
        per_broker_only: false,
        documentation: no_effect!(
            "The cleaner's read and write buffers.",
            "Riffle's compaction sizes its own buffers."
        ),
    },
    DynamicConfigDef {
        name: "log.cleaner.io.buffer.load.factor",
        config_type: ConfigType::Double,
        rule: ValueRule::NonNegative,
        kafka_default: "0.9",
        per_broker_only: false,
        documentation: no_effect!(
            "How full the cleaner's key map may get.",
            "Riffle's compaction sizes its own map."
        ),
    },
    DynamicConfigDef {
        name: "log.cleaner.io.max.bytes.per.second",
        config_type: ConfigType::Double,
        rule: ValueRule::NonNegative,
        kafka_default: "1.7976931348623157E308",
        per_broker_only: false,
        documentation: no_effect!(
            "A throttle on the cleaner's I/O.",
            "Riffle does not throttle compaction."
        ),
    },
    DynamicConfigDef {
        name: "leader.replication.throttled.rate",
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(0),
        kafka_default: "9223372036854775807",
        per_broker_only: false,
        documentation: no_effect!(
            "A throttle on replication from leaders.",
            "Riffle is a single node."
        ),
    },
    DynamicConfigDef {
        name: "follower.replication.throttled.rate",
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(0),
        kafka_default: "9223372036854775807",
        per_broker_only: false,
        documentation: no_effect!(
            "A throttle on replication to followers.",
            "Riffle is a single node."
        ),
    },
    DynamicConfigDef {
        name: "sasl.kerberos.service.name",
        config_type: ConfigType::String,
        rule: ValueRule::AnyText,
        kafka_default: "",
        per_broker_only: true,
        documentation: no_effect!("The Kerberos principal name.", "Riffle has no GSSAPI."),
    },
    DynamicConfigDef {
        name: "sasl.kerberos.kinit.cmd",
        config_type: ConfigType::String,
        rule: ValueRule::AnyText,
        kafka_default: "/usr/bin/kinit",
        per_broker_only: true,
        documentation: no_effect!("The kinit command.", "Riffle has no GSSAPI."),
    },
    DynamicConfigDef {
        name: "sasl.kerberos.min.time.before.relogin",
        config_type: ConfigType::Long,
        rule: ValueRule::AtLeast(0),
        kafka_default: "60000",
        per_broker_only: true,
        documentation: no_effect!(
            "The login thread's sleep between refresh attempts.",
            "Riffle has no GSSAPI."
        ),
    },
    DynamicConfigDef {
        name: "sasl.kerberos.ticket.renew.jitter",
        config_type: ConfigType::Double,
        rule: ValueRule::NonNegative,
        kafka_default: "0.05",
        per_broker_only: true,
        documentation: no_effect!("Random jitter on ticket renewal.", "Riffle has no GSSAPI."),
    },
    DynamicConfigDef {
        name: "sasl.kerberos.ticket.renew.window.factor",
        config_type: ConfigType::Double,
        rule: ValueRule::NonNegative,
        kafka_default: "0.8",
        per_broker_only: true,
        documentation: no_effect!(
            "How far into a ticket's life it is renewed.",
            "Riffle has no GSSAPI."
        ),
    },
    DynamicConfigDef {
        name: "sasl.kerberos.principal.to.local.rules",
        config_type: ConfigType::List,
        rule: ValueRule::AnyText,
        kafka_default: "DEFAULT",
        per_broker_only: true,
        documentation: no_effect!(
            "Rules that map Kerberos principals to short names.",
            "Riffle has no GSSAPI."
        ),
    },
];

/// Why a dynamic broker config cannot be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerConfigError {
    /// Not a setting Kafka changes while running (or not one Riffle knows).
    #[error(
        "Cannot update these configs dynamically: {0} (Riffle reads it from its flags at start-up)"
    )]
    NotDynamic(String),
    /// A listener setting set as a cluster default; Kafka wants a broker id.
    #[error(
        "Cannot update these configs at default cluster level, broker id must be specified: {0}"
    )]
    PerBrokerOnly(String),
    /// The value does not parse or is out of range.
    #[error("invalid value '{value}' for {name}: {problem}")]
    InvalidValue {
        /// The setting.
        name: String,
        /// What was given.
        value: String,
        /// What is wrong with it.
        problem: ValueProblem,
    },
}

/// What a dynamic broker config name stands for.
#[derive(Clone, Copy)]
pub enum DynamicKind {
    /// The broker default of this topic config (`log.retention.ms` for `retention.ms`).
    TopicDefault(&'static ConfigDef),
    /// Another setting.
    Broker(&'static DynamicConfigDef),
}

impl DynamicKind {
    /// The name's kind of value.
    pub fn config_type(&self) -> ConfigType {
        match self {
            DynamicKind::TopicDefault(def) => def.config_type,
            DynamicKind::Broker(def) => def.config_type,
        }
    }
}

/// What `name` stands for, if it may change while running.
pub fn dynamic_kind(name: &str) -> Option<DynamicKind> {
    if let Some(def) = TOPIC_CONFIGS
        .iter()
        .find(|def| def.broker_synonym == Some(name))
    {
        return Some(DynamicKind::TopicDefault(def));
    }
    DYNAMIC_BROKER_CONFIGS
        .iter()
        .find(|def| def.name == name)
        .map(DynamicKind::Broker)
}

/// Checks one dynamic value for `entity`; returns it normalised as Kafka parses it.
///
/// # Errors
/// `NotDynamic`, `PerBrokerOnly` or `InvalidValue`.
pub fn validate(
    name: &str,
    value: &str,
    entity: BrokerConfigEntity,
) -> Result<String, BrokerConfigError> {
    let kind = dynamic_kind(name).ok_or_else(|| BrokerConfigError::NotDynamic(name.into()))?;
    let invalid = |problem| BrokerConfigError::InvalidValue {
        name: name.into(),
        value: value.into(),
        problem,
    };
    match kind {
        DynamicKind::TopicDefault(def) => {
            topic_config::check_value(def.config_type, def.rule, value.trim()).map_err(invalid)
        }
        DynamicKind::Broker(def) => {
            if def.per_broker_only && entity == BrokerConfigEntity::ClusterDefault {
                return Err(BrokerConfigError::PerBrokerOnly(name.into()));
            }
            topic_config::check_value(def.config_type, def.rule, value.trim()).map_err(invalid)
        }
    }
}

/// The dynamic values set, per entity, as the metadata log holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamicBrokerConfigs {
    /// Set for every broker.
    pub cluster_default: BTreeMap<String, String>,
    /// Set for this broker.
    pub this_broker: BTreeMap<String, String>,
}

impl DynamicBrokerConfigs {
    /// The values set for `entity`.
    pub fn of(&self, entity: BrokerConfigEntity) -> &BTreeMap<String, String> {
        match entity {
            BrokerConfigEntity::ClusterDefault => &self.cluster_default,
            BrokerConfigEntity::ThisBroker => &self.this_broker,
        }
    }

    /// A copy with `entity`'s values replaced.
    pub fn with(&self, entity: BrokerConfigEntity, configs: BTreeMap<String, String>) -> Self {
        let mut changed = self.clone();
        match entity {
            BrokerConfigEntity::ClusterDefault => changed.cluster_default = configs,
            BrokerConfigEntity::ThisBroker => changed.this_broker = configs,
        }
        changed
    }

    /// The dynamic value of `name` and its source, this broker's before the cluster's.
    pub fn value(&self, name: &str) -> Option<(&str, ConfigSource)> {
        if let Some(value) = self.this_broker.get(name) {
            return Some((value, ConfigSource::DynamicBroker));
        }
        self.cluster_default
            .get(name)
            .map(|value| (value.as_str(), ConfigSource::DynamicDefaultBroker))
    }

    /// Every dynamic value of `name`, in order of precedence, for DescribeConfigs' synonyms.
    pub fn layers(&self, name: &str) -> Vec<(&str, ConfigSource)> {
        let this_broker = self
            .this_broker
            .get(name)
            .map(|value| (value.as_str(), ConfigSource::DynamicBroker));
        let cluster = self
            .cluster_default
            .get(name)
            .map(|value| (value.as_str(), ConfigSource::DynamicDefaultBroker));
        this_broker.into_iter().chain(cluster).collect()
    }
}

/// The defaults topics inherit: the dynamic values over the flags over Kafka's defaults.
#[derive(Debug, Clone)]
pub struct LogDefaults {
    /// The `log.*` flags the broker started with.
    pub flags: TopicDefaults,
    /// The dynamic broker configs.
    pub dynamic: DynamicBrokerConfigs,
}

impl LogDefaults {
    /// Defaults from the flags alone.
    pub fn from_flags(flags: TopicDefaults) -> Self {
        LogDefaults {
            flags,
            dynamic: DynamicBrokerConfigs::default(),
        }
    }

    /// The default of a topic config and where it comes from.
    pub fn topic_default(&self, def: &ConfigDef) -> (String, ConfigSource) {
        if let Some((value, source)) = def.broker_synonym.and_then(|name| self.dynamic.value(name))
        {
            return (value.to_string(), source);
        }
        (self.static_topic_default(def), ConfigSource::Default)
    }

    /// The default of a topic config before any dynamic value: its flag, for the five
    /// configs that have one, else Kafka's default.
    pub fn static_topic_default(&self, def: &ConfigDef) -> String {
        self.flag_value(def)
            .unwrap_or_else(|| def.kafka_default.to_string())
    }

    /// The flag that sets a topic config's default, for the five that have one.
    pub fn flag_value(&self, def: &ConfigDef) -> Option<String> {
        let flags = &self.flags;
        let value = match def.name {
            RETENTION_MS => flags.retention_ms,
            RETENTION_BYTES => flags.retention_bytes,
            SEGMENT_BYTES => flags.segment_bytes,
            SEGMENT_MS => flags.segment_ms,
            MAX_MESSAGE_BYTES => flags.max_message_bytes,
            _ => return None,
        };
        Some(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_defaults_and_listed_settings_are_dynamic_others_are_not() {
        let entity = BrokerConfigEntity::ThisBroker;
        assert_eq!(
            validate("log.retention.ms", " 1000 ", entity),
            Ok("1000".into())
        );
        assert_eq!(
            validate("log.cleanup.policy", "delete, compact", entity),
            Ok("delete,compact".into())
        );
        assert_eq!(validate("background.threads", "9", entity), Ok("9".into()));
        assert_eq!(
            validate("sasl.kerberos.min.time.before.relogin", "58000", entity),
            Ok("58000".into())
        );
        assert!(matches!(
            validate("broker.id", "3", entity),
            Err(BrokerConfigError::NotDynamic(_))
        ));
        assert!(matches!(
            validate("log.retention.ms", "soon", entity),
            Err(BrokerConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            validate("background.threads", "0", entity),
            Err(BrokerConfigError::InvalidValue { .. })
        ));
    }

    #[test]
    fn listener_settings_need_a_broker_id() {
        let name = "sasl.kerberos.min.time.before.relogin";
        assert_eq!(
            validate(name, "58000", BrokerConfigEntity::ClusterDefault),
            Err(BrokerConfigError::PerBrokerOnly(name.into()))
        );
        assert!(validate("log.retention.ms", "5", BrokerConfigEntity::ClusterDefault).is_ok());
    }

    #[test]
    fn this_broker_wins_over_the_cluster_default_over_the_flag() {
        let def = topic_config::config_def(RETENTION_MS).expect("retention.ms is a topic config");
        let flags = TopicDefaults {
            retention_ms: 100,
            retention_bytes: -1,
            segment_bytes: 1 << 30,
            segment_ms: 1000,
            max_message_bytes: 1 << 20,
        };
        let mut defaults = LogDefaults::from_flags(flags);
        assert_eq!(
            defaults.topic_default(def),
            ("100".into(), ConfigSource::Default)
        );
        defaults.dynamic.cluster_default =
            BTreeMap::from([("log.retention.ms".into(), "200".into())]);
        assert_eq!(
            defaults.topic_default(def),
            ("200".into(), ConfigSource::DynamicDefaultBroker)
        );
        defaults.dynamic.this_broker = BTreeMap::from([("log.retention.ms".into(), "300".into())]);
        assert_eq!(
            defaults.topic_default(def),
            ("300".into(), ConfigSource::DynamicBroker)
        );
        assert_eq!(defaults.dynamic.layers("log.retention.ms").len(), 2);
    }
}
