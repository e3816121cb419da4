//! IncrementalAlterConfigs (key 44): changes some configs of a topic, or some dynamic
//! configs of a broker entity (see [`crate::broker_config`]), and leaves the others alone
//! (KIP-339), or with `validate_only` only checks the change. Versions 0-1:
//! v1 is the first flexible version.
//!
//! Each operation works on the topic's current overrides: SET (0) sets a value, DELETE (1)
//! removes the override so the broker default applies again, APPEND (2) and SUBTRACT (3)
//! add or remove items of a list config (cleanup.policy), starting from its effective
//! value. The whole new set of overrides is validated and stored at once, so a resource
//! either changes completely or not at all. A broker setting Kafka cannot change while
//! running is refused.
//!
//! With `--authorizer acl`: AlterConfigs on the topic (else TOPIC_AUTHORIZATION_FAILED) or,
//! for the broker, on the cluster (else CLUSTER_AUTHORIZATION_FAILED), as in Kafka.
//!
//! Errors per resource: TOPIC_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED,
//! UNKNOWN_TOPIC_OR_PARTITION, INVALID_CONFIG (an unknown config, a
//! bad value, APPEND or SUBTRACT on a config that is not a list), INVALID_REQUEST (a null
//! value outside DELETE, a config named twice, an unknown operation, a resource named
//! twice, another broker's id, a broker setting that is not dynamic, another resource
//! type), KAFKA_STORAGE_ERROR.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::incremental_alter_configs::{
    AlterConfigsResource, AlterConfigsResourceResponse, AlterableConfig,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

use super::describe_configs::{RESOURCE_TYPE_BROKER, RESOURCE_TYPE_TOPIC, broker_entity};
use crate::broker_config::{BrokerConfigError, DynamicKind, dynamic_kind};
use crate::cluster::{Cluster, Topic, TopicError, Validation};
use crate::handler::{Access, RequestContext};
use crate::security::acl::{AclOperation, ResourceType};
use crate::topic_config::{ConfigType, config_def};

/// Sets the value.
const OPERATION_SET: i8 = 0;
/// Removes the value set on the resource.
const OPERATION_DELETE: i8 = 1;
/// Adds items to a list value.
const OPERATION_APPEND: i8 = 2;
/// Removes items from a list value.
const OPERATION_SUBTRACT: i8 = 3;

/// Answers IncrementalAlterConfigs: one response per resource, in request order.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let validation = if request.validate_only {
        Validation::Only
    } else {
        Validation::Apply
    };
    let repeated = repeated_resources(
        request
            .resources
            .iter()
            .map(|resource| (resource.resource_type, resource.resource_name.as_str())),
    );
    let access = context.access(cluster);
    let responses = request
        .resources
        .into_iter()
        .map(|resource| {
            let key = (resource.resource_type, resource.resource_name.clone());
            // Kafka refuses every copy of a repeated resource: which one should win is unclear.
            let result = if repeated.contains(&key) {
                Err(invalid_request("Each resource must appear at most once."))
            } else if let Some(code) =
                refusal(&access, resource.resource_type, &resource.resource_name)
            {
                Err(super::describe_configs::refused(code))
            } else {
                alter_resource(cluster, &resource, validation)
            };
            resource_response(resource, result)
        })
        .collect();
    IncrementalAlterConfigsResponse {
        throttle_time_ms: 0,
        responses,
    }
}

/// The (type, name) pairs named more than once. AlterConfigs shares this.
pub(super) fn repeated_resources<'a>(
    resources: impl Iterator<Item = (i8, &'a str)>,
) -> HashSet<(i8, String)> {
    let mut occurrences: HashMap<(i8, &str), usize> = HashMap::new();
    for key in resources {
        *occurrences.entry(key).or_default() += 1;
    }
    occurrences
        .into_iter()
        .filter(|(_, count)| *count > 1)
        .map(|((resource_type, name), _)| (resource_type, name.to_string()))
        .collect()
}

/// Why the authorizer refuses altering a resource, as Kafka checks: AlterConfigs on the
/// topic, or on the cluster for a broker. Other types are refused later as invalid.
/// AlterConfigs shares this.
pub(super) fn refusal(access: &Access<'_>, resource_type: i8, name: &str) -> Option<ErrorCode> {
    match resource_type {
        RESOURCE_TYPE_TOPIC
            if !access.allows(AclOperation::AlterConfigs, ResourceType::Topic, name) =>
        {
            Some(ErrorCode::TopicAuthorizationFailed)
        }
        RESOURCE_TYPE_BROKER if !access.allows_cluster(AclOperation::AlterConfigs) => {
            Some(ErrorCode::ClusterAuthorizationFailed)
        }
        _ => None,
    }
}

/// Checks what does not depend on the resource type, then alters a topic.
fn alter_resource(
    cluster: &Cluster,
    resource: &AlterConfigsResource,
    validation: Validation,
) -> Result<(), TopicError> {
    let null_names: Vec<&str> = resource
        .configs
        .iter()
        .filter(|config| config.config_operation != OPERATION_DELETE && config.value.is_none())
        .map(|config| config.name.as_str())
        .collect();
    if !null_names.is_empty() {
        return Err(invalid_request(format!(
            "Null value not supported for : {}",
            null_names.join(", ")
        )));
    }
    match resource.resource_type {
        RESOURCE_TYPE_TOPIC => alter_topic(
            cluster,
            &resource.resource_name,
            &resource.configs,
            validation,
        ),
        RESOURCE_TYPE_BROKER => alter_broker(
            cluster,
            &resource.resource_name,
            &resource.configs,
            validation,
        ),
        other => Err(unknown_resource_type(other)),
    }
}

/// The answer for a resource that is neither a topic nor a broker (Kafka 3.9 has no group
/// configs yet). AlterConfigs shares this.
pub(super) fn unknown_resource_type(resource_type: i8) -> TopicError {
    invalid_request(format!("Unknown resource type {resource_type}"))
}

/// Applies every operation to a copy of the topic's overrides, then stores the result.
fn alter_topic(
    cluster: &Cluster,
    name: &str,
    configs: &[AlterableConfig],
    validation: Validation,
) -> Result<(), TopicError> {
    let topic = existing_topic(cluster, name)?;
    distinct_config_names(configs.iter().map(|config| config.name.as_str()))?;
    let mut overrides = topic.config.overrides().clone();
    for config in configs {
        let name = config.name.as_str();
        let Some(def) = config_def(name) else {
            let message = format!("Unknown topic config name: {name}");
            return Err(TopicError {
                code: ErrorCode::InvalidConfig,
                message,
            });
        };
        let effective = || topic.config.default_value(name);
        apply_operation(def.config_type, effective, &mut overrides, config)?;
    }
    cluster.set_topic_configs(name, overrides, validation)
}

/// Applies every operation to a copy of a broker entity's dynamic configs, then stores
/// the result.
fn alter_broker(
    cluster: &Cluster,
    name: &str,
    configs: &[AlterableConfig],
    validation: Validation,
) -> Result<(), TopicError> {
    let entity = broker_entity(cluster, name)?;
    distinct_config_names(configs.iter().map(|config| config.name.as_str()))?;
    let defaults = cluster.log_defaults();
    let mut values = defaults.dynamic.of(entity).clone();
    for config in configs {
        let name = config.name.as_str();
        let Some(kind) = dynamic_kind(name) else {
            let error = BrokerConfigError::NotDynamic(name.to_string());
            return Err(invalid_request(error.to_string()));
        };
        // A list grows or shrinks from what the broker uses now.
        let effective = || match kind {
            DynamicKind::TopicDefault(def) => defaults.topic_default(def).0,
            DynamicKind::Broker(def) => defaults.dynamic.value(name).map_or_else(
                || def.kafka_default.to_string(),
                |(value, _)| value.to_string(),
            ),
        };
        apply_operation(kind.config_type(), effective, &mut values, config)?;
    }
    cluster.set_broker_configs(entity, values, validation)
}

/// The topic to alter, or UNKNOWN_TOPIC_OR_PARTITION. AlterConfigs shares this.
pub(super) fn existing_topic(cluster: &Cluster, name: &str) -> Result<Arc<Topic>, TopicError> {
    cluster.topic(name).ok_or_else(|| TopicError {
        code: ErrorCode::UnknownTopicOrPartition,
        message: format!("unknown topic '{name}'"),
    })
}

/// INVALID_REQUEST if a config is named twice, with Kafka's message. AlterConfigs shares
/// this.
pub(super) fn distinct_config_names<'a>(
    names: impl Iterator<Item = &'a str>,
) -> Result<(), TopicError> {
    let mut seen = HashSet::new();
    let repeated: Vec<&str> = names.filter(|name| !seen.insert(*name)).collect();
    if repeated.is_empty() {
        return Ok(());
    }
    Err(invalid_request(format!(
        "Error due to duplicate config keys : {}",
        repeated.join(",")
    )))
}

/// Applies one operation to `overrides`, the values set on the resource; `effective`
/// gives the value in use when none is set. Values are checked later, all together, by
/// `Cluster::set_topic_configs` or `Cluster::set_broker_configs`.
fn apply_operation(
    config_type: ConfigType,
    effective: impl FnOnce() -> String,
    overrides: &mut BTreeMap<String, String>,
    config: &AlterableConfig,
) -> Result<(), TopicError> {
    let name = config.name.as_str();
    // Null values were refused for every operation but DELETE, which ignores the value.
    let value = config.value.as_deref().unwrap_or_default();
    match config.config_operation {
        OPERATION_SET => {
            overrides.insert(name.to_string(), value.to_string());
        }
        OPERATION_DELETE => {
            overrides.remove(name);
        }
        operation @ (OPERATION_APPEND | OPERATION_SUBTRACT) => {
            if config_type != ConfigType::List {
                let verb = if operation == OPERATION_APPEND {
                    "append"
                } else {
                    "subtract"
                };
                let message = format!("Config value {verb} is not allowed for config key: {name}");
                return Err(TopicError {
                    code: ErrorCode::InvalidConfig,
                    message,
                });
            }
            let effective = overrides.get(name).cloned().unwrap_or_else(effective);
            let changed = if operation == OPERATION_APPEND {
                appended_list(&effective, value)
            } else {
                subtracted_list(&effective, value)
            };
            overrides.insert(name.to_string(), changed);
        }
        other => return Err(invalid_request(format!("Unknown operations type {other}"))),
    }
    Ok(())
}

fn list_items(list: &str) -> Vec<&str> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect()
}

/// `list` followed by the items of `added` it does not hold yet, as Kafka appends.
fn appended_list(list: &str, added: &str) -> String {
    let mut items = list_items(list);
    for item in list_items(added) {
        if !items.contains(&item) {
            items.push(item);
        }
    }
    items.join(",")
}

/// `list` without the items of `removed`.
fn subtracted_list(list: &str, removed: &str) -> String {
    let removed = list_items(removed);
    list_items(list)
        .into_iter()
        .filter(|item| !removed.contains(item))
        .collect::<Vec<_>>()
        .join(",")
}

fn resource_response(
    resource: AlterConfigsResource,
    result: Result<(), TopicError>,
) -> AlterConfigsResourceResponse {
    let (error_code, error_message) = match result {
        Ok(()) => (ErrorCode::None.code(), None),
        Err(error) => (error.code.code(), Some(error.message)),
    };
    AlterConfigsResourceResponse {
        error_code,
        error_message,
        resource_type: resource.resource_type,
        resource_name: resource.resource_name,
    }
}

/// INVALID_REQUEST with `message`. AlterConfigs shares this.
pub(super) fn invalid_request(message: impl Into<String>) -> TopicError {
    TopicError {
        code: ErrorCode::InvalidRequest,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_cluster;
    use crate::topic_config::ConfigSource;

    fn operation(name: &str, config_operation: i8, value: Option<&str>) -> AlterableConfig {
        AlterableConfig {
            name: name.into(),
            config_operation,
            value: value.map(str::to_string),
        }
    }

    fn alter(
        cluster: &Cluster,
        resource_type: i8,
        name: &str,
        configs: Vec<AlterableConfig>,
    ) -> AlterConfigsResourceResponse {
        let resource = AlterConfigsResource {
            resource_type,
            resource_name: name.into(),
            configs,
        };
        let request = IncrementalAlterConfigsRequest {
            resources: vec![resource],
            validate_only: false,
        };
        handle(
            cluster,
            &crate::handler::RequestContext::internal(cluster),
            1,
            request,
        )
        .responses
        .remove(0)
    }

    fn topic_with(cluster: &Cluster, name: &str, configs: &[(&str, &str)]) {
        let configs = configs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        cluster
            .create_topic(name, 1, configs, Validation::Apply)
            .expect("create");
    }

    #[test]
    fn set_delete_append_and_subtract_change_only_what_they_name() {
        // SET adds an override, DELETE removes one, APPEND and SUBTRACT edit the
        // effective cleanup.policy list; untouched overrides stay.
        let (_dir, cluster) = test_cluster();
        topic_with(
            &cluster,
            "orders",
            &[("retention.ms", "1000"), ("segment.ms", "5000")],
        );
        let configs = vec![
            operation("retention.bytes", OPERATION_SET, Some("2048")),
            operation("retention.ms", OPERATION_DELETE, None),
            operation("cleanup.policy", OPERATION_APPEND, Some("compact")),
        ];
        let response = alter(&cluster, RESOURCE_TYPE_TOPIC, "orders", configs);
        assert_eq!((response.error_code, response.error_message), (0, None));
        let overrides = cluster
            .topic("orders")
            .expect("exists")
            .config
            .overrides()
            .clone();
        let expected = [
            ("cleanup.policy", "delete,compact"),
            ("retention.bytes", "2048"),
            ("segment.ms", "5000"),
        ];
        let expected: BTreeMap<String, String> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(overrides, expected);
        let response = alter(
            &cluster,
            RESOURCE_TYPE_TOPIC,
            "orders",
            vec![operation(
                "cleanup.policy",
                OPERATION_SUBTRACT,
                Some("delete"),
            )],
        );
        assert_eq!(response.error_code, 0);
        let topic = cluster.topic("orders").expect("exists");
        assert_eq!(topic.config.value("cleanup.policy").0, "compact");
    }

    #[test]
    fn dynamic_broker_configs_change_topic_defaults_and_survive_a_restart() {
        // A cluster default, then this broker's own value, change what topics without an
        // override use (and their logs' settings); a topic's own value still wins.
        let (dir, cluster) = test_cluster();
        topic_with(&cluster, "plain", &[]);
        topic_with(&cluster, "own", &[("retention.ms", "5000")]);
        let set = |name: &str, value: &str| operation(name, OPERATION_SET, Some(value));
        let response = alter(
            &cluster,
            RESOURCE_TYPE_BROKER,
            "",
            vec![set("log.retention.ms", "1000")],
        );
        assert_eq!(response.error_code, 0, "{response:?}");
        let retention = |cluster: &Cluster, topic: &str| {
            let topic = cluster.topic(topic).expect("exists");
            let value = topic.config.value("retention.ms");
            let partition = topic.partition(0).expect("one partition");
            (value, partition.log_config().retention_ms)
        };
        assert_eq!(
            retention(&cluster, "plain"),
            (("1000".into(), ConfigSource::DynamicDefaultBroker), 1000)
        );
        let response = alter(
            &cluster,
            RESOURCE_TYPE_BROKER,
            "1",
            vec![
                set("log.retention.ms", "2000"),
                operation("log.cleanup.policy", OPERATION_APPEND, Some("compact")),
            ],
        );
        assert_eq!(response.error_code, 0, "{response:?}");
        assert_eq!(
            retention(&cluster, "plain"),
            (("2000".into(), ConfigSource::DynamicBroker), 2000)
        );
        assert!(
            cluster
                .topic("plain")
                .expect("exists")
                .config
                .is_compacted()
        );
        assert_eq!(
            retention(&cluster, "own"),
            (("5000".into(), ConfigSource::DynamicTopic), 5000)
        );
        drop(cluster);
        let cluster = crate::testing::open_test_cluster(dir.path());
        assert_eq!(
            retention(&cluster, "plain"),
            (("2000".into(), ConfigSource::DynamicBroker), 2000)
        );
        let response = alter(
            &cluster,
            RESOURCE_TYPE_BROKER,
            "1",
            vec![
                operation("log.retention.ms", OPERATION_DELETE, None),
                operation("log.cleanup.policy", OPERATION_SUBTRACT, Some("compact")),
            ],
        );
        assert_eq!(response.error_code, 0, "{response:?}");
        assert_eq!(
            retention(&cluster, "plain"),
            (("1000".into(), ConfigSource::DynamicDefaultBroker), 1000)
        );
        assert!(
            !cluster
                .topic("plain")
                .expect("exists")
                .config
                .is_compacted()
        );
    }

    #[test]
    fn bad_operations_fail_the_resource_and_change_nothing() {
        // Each bad request fails with Kafka's code and leaves the overrides untouched.
        let (_dir, cluster) = test_cluster();
        topic_with(&cluster, "orders", &[("retention.ms", "1000")]);
        let set = |name: &str, value: &str| operation(name, OPERATION_SET, Some(value));
        let topic = |configs: Vec<AlterableConfig>| (RESOURCE_TYPE_TOPIC, "orders", configs);
        let cases = vec![
            (topic(vec![set("no.such.config", "1")]), 40),
            (topic(vec![set("retention.ms", "soon")]), 40),
            (
                topic(vec![operation("retention.ms", OPERATION_APPEND, Some("1"))]),
                40,
            ),
            (
                topic(vec![operation("retention.ms", OPERATION_SET, None)]),
                42,
            ),
            (topic(vec![operation("retention.ms", 9, Some("1"))]), 42),
            (
                topic(vec![
                    set("retention.ms", "1"),
                    operation("retention.ms", OPERATION_DELETE, None),
                ]),
                42,
            ),
            (
                (
                    RESOURCE_TYPE_TOPIC,
                    "missing",
                    vec![set("retention.ms", "1")],
                ),
                3,
            ),
            ((RESOURCE_TYPE_BROKER, "1", vec![set("broker.id", "2")]), 42),
            (
                (
                    RESOURCE_TYPE_BROKER,
                    "1",
                    vec![operation("background.threads", OPERATION_APPEND, Some("2"))],
                ),
                40,
            ),
        ];
        for ((resource_type, name, configs), code) in cases {
            let response = alter(&cluster, resource_type, name, configs);
            assert_eq!(response.error_code, code, "{response:?}");
            assert!(response.error_message.is_some());
        }
        let overrides = cluster
            .topic("orders")
            .expect("exists")
            .config
            .overrides()
            .clone();
        assert_eq!(
            overrides,
            BTreeMap::from([("retention.ms".to_string(), "1000".to_string())])
        );
    }

    #[test]
    fn a_repeated_resource_is_refused_every_time() {
        // Both copies of a resource named twice get INVALID_REQUEST; validate_only changes nothing.
        let (_dir, cluster) = test_cluster();
        topic_with(&cluster, "orders", &[]);
        let resource = AlterConfigsResource {
            resource_type: RESOURCE_TYPE_TOPIC,
            resource_name: "orders".into(),
            configs: vec![operation("retention.ms", OPERATION_SET, Some("1"))],
        };
        let request = IncrementalAlterConfigsRequest {
            resources: vec![resource.clone(), resource.clone()],
            validate_only: false,
        };
        let codes: Vec<i16> = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            0,
            request,
        )
        .responses
        .iter()
        .map(|r| r.error_code)
        .collect();
        assert_eq!(codes, vec![42, 42]);
        let request = IncrementalAlterConfigsRequest {
            resources: vec![resource],
            validate_only: true,
        };
        assert_eq!(
            handle(
                &cluster,
                &crate::handler::RequestContext::internal(&cluster),
                0,
                request
            )
            .responses[0]
                .error_code,
            0
        );
        assert!(
            cluster
                .topic("orders")
                .expect("exists")
                .config
                .overrides()
                .is_empty()
        );
    }
}
