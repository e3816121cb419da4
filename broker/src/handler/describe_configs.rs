//! DescribeConfigs (key 32): lists the configs of topics and of this broker, with their
//! values and where each comes from. Versions 0-4: v0 says `is_default`; v1 replaces it
//! with `config_source` and adds synonyms (the settings a value falls back to, on
//! request); v2 changes nothing on the wire; v3 adds each config's type and, on request,
//! its documentation; v4 is the first flexible version.
//!
//! Topic configs are read-write (AlterConfigs and IncrementalAlterConfigs change them): a
//! value set on the topic has source DYNAMIC_TOPIC_CONFIG; any other is the broker default:
//! DYNAMIC_BROKER_CONFIG or DYNAMIC_DEFAULT_BROKER_CONFIG when a dynamic broker config sets
//! it, else DEFAULT_CONFIG.
//! A broker's settings are its flags (read-only, STATIC_BROKER_CONFIG) and the dynamic
//! broker configs (see [`crate::broker_config`]), each with its source and synonyms. The
//! cluster-wide default (an empty name) lists only the values set there, as in Kafka.
//!
//! With `--authorizer acl`, as in Kafka: DescribeConfigs on the topic (else
//! TOPIC_AUTHORIZATION_FAILED) or, for the broker, on the cluster (else
//! CLUSTER_AUTHORIZATION_FAILED); AlterConfigs implies it.
//!
//! Errors per resource: TOPIC_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED,
//! UNKNOWN_TOPIC_OR_PARTITION (no such topic), INVALID_REQUEST (a
//! broker other than this one, or a resource type other than topic and broker).

use riffle_protocol::ErrorCode;
use riffle_protocol::api::describe_configs::{
    DescribeConfigsRequest, DescribeConfigsResource, DescribeConfigsResourceResult,
    DescribeConfigsResponse, DescribeConfigsResult, DescribeConfigsSynonym,
};

use crate::broker_config::{
    BrokerConfigEntity, DYNAMIC_BROKER_CONFIGS, DynamicBrokerConfigs, DynamicKind, MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_IP, dynamic_kind,
};
use crate::cluster::{Cluster, Topic, TopicError};
use crate::handler::{Access, RequestContext};
use crate::security::acl::{AclOperation, ResourceType};
use crate::topic_config::{ConfigDef, ConfigSource, ConfigType, TOPIC_CONFIGS};

/// Kafka's resource type of a topic.
pub const RESOURCE_TYPE_TOPIC: i8 = 2;
/// Kafka's resource type of a broker.
pub const RESOURCE_TYPE_BROKER: i8 = 4;

/// What the request asked to include besides names and values.
struct Include {
    synonyms: bool,
    documentation: bool,
}

/// One config as this module describes it, before it is shaped for the wire.
struct ConfigEntry {
    name: &'static str,
    value: String,
    source: ConfigSource,
    read_only: bool,
    config_type: i8,
    documentation: &'static str,
    synonyms: Vec<DescribeConfigsSynonym>,
}

/// Answers DescribeConfigs: one result per resource, in request order.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    // Fields a version lacks decode as false, so v0 never includes synonyms and v0-2
    // never include documentation.
    let include = Include {
        synonyms: request.include_synonyms,
        documentation: request.include_documentation,
    };
    let results = request
        .resources
        .into_iter()
        .map(|resource| describe_resource(cluster, &context.access(cluster), &include, resource))
        .collect();
    DescribeConfigsResponse {
        throttle_time_ms: 0,
        results,
    }
}

fn describe_resource(
    cluster: &Cluster,
    access: &Access<'_>,
    include: &Include,
    resource: DescribeConfigsResource,
) -> DescribeConfigsResult {
    let name = &resource.resource_name;
    let described = match resource.resource_type {
        RESOURCE_TYPE_TOPIC
            if !access.allows(AclOperation::DescribeConfigs, ResourceType::Topic, name) =>
        {
            Err(refused(ErrorCode::TopicAuthorizationFailed))
        }
        RESOURCE_TYPE_BROKER if !access.allows_cluster(AclOperation::DescribeConfigs) => {
            Err(refused(ErrorCode::ClusterAuthorizationFailed))
        }
        RESOURCE_TYPE_TOPIC => topic_entries(cluster, name),
        RESOURCE_TYPE_BROKER => broker_entries(cluster, name),
        other => {
            let message = format!(
                "unsupported resource type {other}; Riffle describes topics (2) and brokers (4)"
            );
            Err(TopicError {
                code: ErrorCode::InvalidRequest,
                message,
            })
        }
    };
    let wanted = |entry: &ConfigEntry| match &resource.configuration_keys {
        // A null or empty list means every config, as in Kafka; otherwise only those
        // named, and unknown names are skipped.
        Some(keys) if !keys.is_empty() => keys.iter().any(|key| key == entry.name),
        _ => true,
    };
    match described {
        Ok(entries) => DescribeConfigsResult {
            error_code: ErrorCode::None.code(),
            error_message: None,
            resource_type: resource.resource_type,
            resource_name: resource.resource_name,
            configs: entries
                .into_iter()
                .filter(wanted)
                .map(|entry| wire_entry(include, entry))
                .collect(),
        },
        Err(error) => DescribeConfigsResult {
            error_code: error.code.code(),
            error_message: Some(error.message),
            resource_type: resource.resource_type,
            resource_name: resource.resource_name,
            configs: Vec::new(),
        },
    }
}

/// A resource the principal may not describe the configs of, with Kafka's message.
pub(crate) fn refused(code: ErrorCode) -> TopicError {
    let message = match code {
        ErrorCode::ClusterAuthorizationFailed => "Cluster authorization failed.",
        _ => "Topic authorization failed.",
    };
    TopicError {
        code,
        message: message.to_string(),
    }
}

/// Every supported config of a topic with its effective value.
fn topic_entries(cluster: &Cluster, name: &str) -> Result<Vec<ConfigEntry>, TopicError> {
    let Some(topic) = cluster.topic(name) else {
        let message = format!("unknown topic '{name}'");
        return Err(TopicError {
            code: ErrorCode::UnknownTopicOrPartition,
            message,
        });
    };
    Ok(TOPIC_CONFIGS
        .iter()
        .map(|def| topic_entry(&topic, def))
        .collect())
}

/// One topic config. Its synonyms are, in Kafka's order of precedence, the value set on
/// the topic (if any), then under its broker name (if Kafka has one) the dynamic broker
/// values and the static default.
fn topic_entry(topic: &Topic, def: &ConfigDef) -> ConfigEntry {
    let (value, source) = topic.config.value(def.name);
    let mut synonyms = Vec::new();
    if source == ConfigSource::DynamicTopic {
        synonyms.push(synonym(def.name, value.clone(), source));
    }
    if let Some(broker_name) = def.broker_synonym {
        let defaults = topic.config.defaults();
        for (value, source) in defaults.dynamic.layers(broker_name) {
            synonyms.push(synonym(broker_name, value.to_string(), source));
        }
        let default = defaults.static_topic_default(def);
        synonyms.push(synonym(broker_name, default, ConfigSource::Default));
    }
    ConfigEntry {
        name: def.name,
        value,
        source,
        read_only: false,
        config_type: def.config_type as i8,
        documentation: def.documentation,
        synonyms,
    }
}

/// The broker entity a resource name stands for: empty for the cluster-wide default,
/// else this node's id. AlterConfigs and IncrementalAlterConfigs share this.
pub(crate) fn broker_entity(
    cluster: &Cluster,
    name: &str,
) -> Result<BrokerConfigEntity, TopicError> {
    if name.is_empty() {
        return Ok(BrokerConfigEntity::ClusterDefault);
    }
    if name.parse::<i32>().ok() == Some(cluster.node_id) {
        return Ok(BrokerConfigEntity::ThisBroker);
    }
    let message = format!(
        "Unexpected broker id, expected {} or empty string, but received {name}; \
         ask that broker instead",
        cluster.node_id
    );
    Err(TopicError {
        code: ErrorCode::InvalidRequest,
        message,
    })
}

/// This broker's settings: the flags that cannot change while it runs (read-only), then
/// every dynamic setting with its value and where that comes from. For the cluster-wide
/// default, as Kafka: only the values set there.
fn broker_entries(cluster: &Cluster, name: &str) -> Result<Vec<ConfigEntry>, TopicError> {
    let entity = broker_entity(cluster, name)?;
    let defaults = cluster.log_defaults();
    let dynamic = &defaults.dynamic;
    if entity == BrokerConfigEntity::ClusterDefault {
        return Ok(dynamic
            .cluster_default
            .iter()
            .filter_map(|(name, value)| {
                let (name, config_type, documentation) = describe_kind(dynamic_kind(name)?);
                let source = ConfigSource::DynamicDefaultBroker;
                Some(ConfigEntry {
                    name,
                    value: value.clone(),
                    source,
                    read_only: false,
                    config_type: config_type as i8,
                    documentation,
                    synonyms: vec![synonym(name, value.clone(), source)],
                })
            })
            .collect());
    }
    let config = &cluster.config;
    let statics: [(&'static str, String, ConfigType, &'static str); 4] = [
        (
            "broker.id",
            cluster.node_id.to_string(),
            ConfigType::Int,
            "This broker's node id.",
        ),
        (
            "num.partitions",
            config.default_partitions.to_string(),
            ConfigType::Int,
            "Partitions of a topic created without a count.",
        ),
        (
            "auto.create.topics.enable",
            config.auto_create_topics.to_string(),
            ConfigType::Boolean,
            "Whether unknown topics are created on first use.",
        ),
        (
            "socket.request.max.bytes",
            config.max_request_bytes.to_string(),
            ConfigType::Int,
            "The largest request the broker accepts.",
        ),
    ];
    let mut entries: Vec<ConfigEntry> = statics
        .into_iter()
        .map(|(name, value, config_type, documentation)| ConfigEntry {
            name,
            synonyms: vec![synonym(name, value.clone(), ConfigSource::StaticBroker)],
            value,
            source: ConfigSource::StaticBroker,
            read_only: true,
            config_type: config_type as i8,
            documentation,
        })
        .collect();
    for def in TOPIC_CONFIGS {
        if let Some(name) = def.broker_synonym {
            let fallback = match defaults.flag_value(def) {
                Some(flag) => (flag, ConfigSource::StaticBroker),
                None => (def.kafka_default.to_string(), ConfigSource::Default),
            };
            entries.push(dynamic_entry(
                (name, def.config_type, def.documentation),
                dynamic,
                fallback,
            ));
        }
    }
    for def in DYNAMIC_BROKER_CONFIGS {
        let fallback = match static_broker_value(cluster, def.name) {
            Some(flag) => (flag, ConfigSource::StaticBroker),
            None => (def.kafka_default.to_string(), ConfigSource::Default),
        };
        entries.push(dynamic_entry(
            (def.name, def.config_type, def.documentation),
            dynamic,
            fallback,
        ));
    }
    Ok(entries)
}

/// The name, type and documentation of a dynamic setting.
fn describe_kind(kind: DynamicKind) -> (&'static str, ConfigType, &'static str) {
    match kind {
        DynamicKind::TopicDefault(def) => (
            def.broker_synonym.unwrap_or(def.name),
            def.config_type,
            def.documentation,
        ),
        DynamicKind::Broker(def) => (def.name, def.config_type, def.documentation),
    }
}

/// The flag behind a dynamic setting that is not a topic default, if it has one.
fn static_broker_value(cluster: &Cluster, name: &str) -> Option<String> {
    let config = &cluster.config;
    match name {
        MAX_CONNECTIONS => Some(config.max_connections.to_string()),
        MAX_CONNECTIONS_PER_IP => config.max_connections_per_ip.map(|limit| limit.to_string()),
        _ => None,
    }
}

/// A dynamic setting: its dynamic values, in order of precedence, over `fallback`.
fn dynamic_entry(
    (name, config_type, documentation): (&'static str, ConfigType, &'static str),
    dynamic: &DynamicBrokerConfigs,
    fallback: (String, ConfigSource),
) -> ConfigEntry {
    let mut synonyms: Vec<DescribeConfigsSynonym> = dynamic
        .layers(name)
        .into_iter()
        .map(|(value, source)| synonym(name, value.to_string(), source))
        .collect();
    synonyms.push(synonym(name, fallback.0.clone(), fallback.1));
    let (value, source) = dynamic
        .value(name)
        .map(|(value, source)| (value.to_string(), source))
        .unwrap_or(fallback);
    ConfigEntry {
        name,
        value,
        source,
        read_only: false,
        config_type: config_type as i8,
        documentation,
        synonyms,
    }
}

fn synonym(name: &str, value: String, source: ConfigSource) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym {
        name: name.to_string(),
        value: Some(value),
        source: source as i8,
    }
}

/// Shapes an entry for the wire. Fields a version lacks are set anyway; the codec leaves
/// them out.
fn wire_entry(include: &Include, entry: ConfigEntry) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult {
        name: entry.name.to_string(),
        value: Some(entry.value),
        read_only: entry.read_only,
        is_default: entry.source == ConfigSource::Default,
        config_source: entry.source as i8,
        is_sensitive: false,
        synonyms: if include.synonyms {
            entry.synonyms
        } else {
            Vec::new()
        },
        config_type: entry.config_type,
        documentation: include
            .documentation
            .then(|| entry.documentation.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cluster::Validation;
    use crate::testing::test_cluster;

    fn resource(resource_type: i8, name: &str, keys: Option<&[&str]>) -> DescribeConfigsResource {
        DescribeConfigsResource {
            resource_type,
            resource_name: name.into(),
            configuration_keys: keys.map(|keys| keys.iter().map(|key| key.to_string()).collect()),
        }
    }

    fn describe(
        cluster: &Cluster,
        version: i16,
        resources: Vec<DescribeConfigsResource>,
    ) -> DescribeConfigsResponse {
        let request = DescribeConfigsRequest {
            resources,
            include_synonyms: true,
            include_documentation: true,
        };
        handle(
            cluster,
            &crate::handler::RequestContext::internal(cluster),
            version,
            request,
        )
    }

    #[test]
    fn topic_configs_report_overrides_defaults_and_synonyms() {
        // An override is DYNAMIC_TOPIC_CONFIG with the broker default as second synonym;
        // an untouched config is DEFAULT_CONFIG; every supported config is listed, for a
        // null key list and an empty one alike.
        let (_dir, cluster) = test_cluster();
        let configs = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        cluster
            .create_topic("orders", 1, configs, Validation::Apply)
            .expect("create");
        let response = describe(
            &cluster,
            4,
            vec![
                resource(RESOURCE_TYPE_TOPIC, "orders", None),
                resource(RESOURCE_TYPE_TOPIC, "orders", Some(&[])),
            ],
        );
        assert_eq!(
            response.results[0], response.results[1],
            "an empty key list means all"
        );
        let result = &response.results[0];
        assert_eq!(
            (result.error_code, result.error_message.as_deref()),
            (0, None)
        );
        assert_eq!(result.configs.len(), TOPIC_CONFIGS.len());
        let retention = result
            .configs
            .iter()
            .find(|config| config.name == "retention.ms")
            .expect("listed");
        assert_eq!(
            (
                retention.value.as_deref(),
                retention.config_source,
                retention.config_type
            ),
            (Some("1000"), 1, 5)
        );
        let synonyms: Vec<(&str, i8)> = retention
            .synonyms
            .iter()
            .map(|s| (s.name.as_str(), s.source))
            .collect();
        assert_eq!(synonyms, vec![("retention.ms", 1), ("log.retention.ms", 5)]);
        let segment = result
            .configs
            .iter()
            .find(|config| config.name == "segment.bytes")
            .expect("listed");
        assert_eq!((segment.config_source, segment.synonyms.len()), (5, 1));
        assert!(segment.documentation.is_some());
    }

    #[test]
    fn keys_filter_and_errors_are_per_resource() {
        // Named keys narrow the list; an unknown topic, another broker and a logger
        // resource fail alone while this broker's configs are listed read-only.
        let (_dir, cluster) = test_cluster();
        cluster
            .create_topic("orders", 1, BTreeMap::new(), Validation::Apply)
            .expect("create");
        let node = cluster.node_id.to_string();
        let other = (cluster.node_id + 1).to_string();
        let resources = vec![
            resource(
                RESOURCE_TYPE_TOPIC,
                "orders",
                Some(&["cleanup.policy", "no.such.key"]),
            ),
            resource(RESOURCE_TYPE_TOPIC, "missing", None),
            resource(RESOURCE_TYPE_BROKER, &node, Some(&["num.partitions"])),
            resource(RESOURCE_TYPE_BROKER, &other, None),
            resource(8, &node, None),
        ];
        let response = describe(&cluster, 0, resources);
        let codes: Vec<i16> = response
            .results
            .iter()
            .map(|result| result.error_code)
            .collect();
        assert_eq!(codes, vec![0, 3, 0, 42, 42]);
        let policy = &response.results[0].configs;
        assert_eq!(policy.len(), 1);
        assert_eq!(
            (policy[0].value.as_deref(), policy[0].is_default),
            (Some("delete"), true)
        );
        let partitions = &response.results[2].configs[0];
        assert_eq!(
            (partitions.name.as_str(), partitions.value.as_deref()),
            ("num.partitions", Some("1"))
        );
        assert!(partitions.read_only);
        assert_eq!(partitions.config_source, 4);
        assert!(response.results[1].error_message.is_some());
    }

    #[test]
    fn broker_configs_show_dynamic_values_with_their_source() {
        // This broker lists every dynamic setting with its value's source and synonyms;
        // the cluster-default entity lists only what is set there, as in Kafka.
        let (_dir, cluster) = test_cluster();
        let set = |entity, name: &str, value: &str| {
            let configs = BTreeMap::from([(name.to_string(), value.to_string())]);
            cluster
                .set_broker_configs(entity, configs, Validation::Apply)
                .expect("set");
        };
        set(
            BrokerConfigEntity::ClusterDefault,
            "log.retention.ms",
            "1000",
        );
        set(BrokerConfigEntity::ThisBroker, "log.retention.ms", "2000");
        let node = cluster.node_id.to_string();
        let resources = vec![
            resource(
                RESOURCE_TYPE_BROKER,
                &node,
                Some(&["log.retention.ms", "background.threads"]),
            ),
            resource(RESOURCE_TYPE_BROKER, "", None),
        ];
        let response = describe(&cluster, 4, resources);
        let this_broker = &response.results[0].configs;
        let retention = &this_broker[0];
        assert_eq!(
            (
                retention.value.as_deref(),
                retention.config_source,
                retention.read_only
            ),
            (Some("2000"), ConfigSource::DynamicBroker as i8, false)
        );
        let sources: Vec<i8> = retention
            .synonyms
            .iter()
            .map(|synonym| synonym.source)
            .collect();
        assert_eq!(sources, vec![2, 3, 4]);
        let threads = &this_broker[1];
        assert_eq!(
            (threads.value.as_deref(), threads.config_source),
            (Some("10"), ConfigSource::Default as i8)
        );
        let cluster_default = &response.results[1].configs;
        assert_eq!(cluster_default.len(), 1);
        assert_eq!(
            (
                cluster_default[0].name.as_str(),
                cluster_default[0].value.as_deref()
            ),
            ("log.retention.ms", Some("1000"))
        );
    }
}
