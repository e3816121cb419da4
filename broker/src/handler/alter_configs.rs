//! AlterConfigs (key 33): replaces the whole set of configs set on a topic, or of dynamic
//! configs set on a broker entity (see [`crate::broker_config`]), or with `validate_only`
//! only checks the new set. Versions 0-2: v1 changes nothing on the wire
//! (only when throttling happens), v2 is the first flexible version. Older admin clients
//! (librdkafka's `AlterConfigs`, the rdkafka crate's `alter_configs`) use this instead of
//! IncrementalAlterConfigs.
//!
//! A config left out of the request, or sent with a null value, goes back to its broker
//! default, as in Kafka. The new set is validated and stored at once, so a resource changes
//! completely or not at all. A broker setting Kafka cannot change while running is refused.
//! The checks are IncrementalAlterConfigs' own, shared with it.
//!
//! With `--authorizer acl`: AlterConfigs on the topic (else TOPIC_AUTHORIZATION_FAILED) or,
//! for the broker, on the cluster (else CLUSTER_AUTHORIZATION_FAILED), as in Kafka.
//!
//! Errors per resource: TOPIC_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED,
//! UNKNOWN_TOPIC_OR_PARTITION, INVALID_CONFIG (an unknown config or a bad value),
//! INVALID_REQUEST (a config named twice, a resource named twice, another broker's id, a
//! broker setting that is not dynamic, another resource type), KAFKA_STORAGE_ERROR.

use std::collections::BTreeMap;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::alter_configs::{
    AlterConfigsRequest, AlterConfigsResource, AlterConfigsResourceResponse, AlterConfigsResponse,
};

use super::describe_configs::{RESOURCE_TYPE_BROKER, RESOURCE_TYPE_TOPIC, broker_entity};
use super::incremental_alter_configs::{
    distinct_config_names, existing_topic, invalid_request, refusal, repeated_resources,
    unknown_resource_type,
};
use crate::cluster::{Cluster, TopicError, Validation};
use crate::handler::RequestContext;

/// Answers AlterConfigs: one response per resource, in request order.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
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
    AlterConfigsResponse {
        throttle_time_ms: 0,
        responses,
    }
}

/// Replaces a topic's configs, or a broker entity's dynamic configs, with the request's
/// non-null values.
fn alter_resource(
    cluster: &Cluster,
    resource: &AlterConfigsResource,
    validation: Validation,
) -> Result<(), TopicError> {
    let name = &resource.resource_name;
    match resource.resource_type {
        RESOURCE_TYPE_TOPIC => {
            existing_topic(cluster, name)?;
        }
        RESOURCE_TYPE_BROKER => {
            broker_entity(cluster, name)?;
        }
        other => return Err(unknown_resource_type(other)),
    }
    distinct_config_names(resource.configs.iter().map(|config| config.name.as_str()))?;
    // A null value unsets the config, as Kafka's legacy AlterConfigs skips it.
    let configs: BTreeMap<String, String> = resource
        .configs
        .iter()
        .filter_map(|config| Some((config.name.clone(), config.value.clone()?)))
        .collect();
    if resource.resource_type == RESOURCE_TYPE_BROKER {
        let entity = broker_entity(cluster, name)?;
        return cluster.set_broker_configs(entity, configs, validation);
    }
    cluster.set_topic_configs(name, configs, validation)
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

#[cfg(test)]
mod tests {
    use riffle_protocol::api::alter_configs::AlterableConfig;

    use super::super::describe_configs::RESOURCE_TYPE_BROKER;
    use super::*;
    use crate::testing::test_cluster;

    fn config(name: &str, value: Option<&str>) -> AlterableConfig {
        AlterableConfig {
            name: name.into(),
            value: value.map(str::to_string),
        }
    }

    fn resource(
        resource_type: i8,
        name: &str,
        configs: Vec<AlterableConfig>,
    ) -> AlterConfigsResource {
        AlterConfigsResource {
            resource_type,
            resource_name: name.into(),
            configs,
        }
    }

    fn alter(
        cluster: &Cluster,
        resources: Vec<AlterConfigsResource>,
        validate_only: bool,
    ) -> Vec<AlterConfigsResourceResponse> {
        let request = AlterConfigsRequest {
            resources,
            validate_only,
        };
        handle(cluster, &RequestContext::internal(cluster), 2, request).responses
    }

    fn overrides(cluster: &Cluster, name: &str) -> BTreeMap<String, String> {
        let topic = cluster.topic(name).expect("exists");
        topic.config.overrides().clone()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn the_new_set_replaces_every_override() {
        // Overrides not named go back to their defaults, a null value unsets its config,
        // and validate_only changes nothing.
        let (_dir, cluster) = test_cluster();
        let created = map(&[("retention.ms", "1000"), ("compression.type", "gzip")]);
        cluster
            .create_topic("orders", 1, created.clone(), Validation::Apply)
            .expect("create");
        let configs = vec![
            config("compression.type", Some("zstd")),
            config("min.cleanable.dirty.ratio", Some("0.1")),
            config("segment.ms", None),
        ];
        let topic = |configs| vec![resource(RESOURCE_TYPE_TOPIC, "orders", configs)];
        let checked = alter(&cluster, topic(configs.clone()), true);
        assert_eq!(
            (checked[0].error_code, checked[0].error_message.as_deref()),
            (0, None)
        );
        assert_eq!(overrides(&cluster, "orders"), created);
        let altered = alter(&cluster, topic(configs), false);
        assert_eq!(
            (altered[0].error_code, altered[0].error_message.as_deref()),
            (0, None)
        );
        let expected = map(&[
            ("compression.type", "zstd"),
            ("min.cleanable.dirty.ratio", "0.1"),
        ]);
        assert_eq!(overrides(&cluster, "orders"), expected);
        let topic_config = cluster.topic("orders").expect("exists").config.clone();
        assert_eq!(topic_config.value("retention.ms").0, "604800000");
    }

    #[test]
    fn bad_resources_fail_alone_and_change_nothing() {
        // Each bad resource gets Kafka's code and a message; the topic keeps its overrides.
        let (_dir, cluster) = test_cluster();
        let created = map(&[("retention.ms", "1000")]);
        cluster
            .create_topic("orders", 1, created.clone(), Validation::Apply)
            .expect("create");
        let set = |name: &str, value: &str| config(name, Some(value));
        let cases = vec![
            (
                resource(
                    RESOURCE_TYPE_TOPIC,
                    "orders",
                    vec![set("no.such.config", "1")],
                ),
                40,
            ),
            (
                resource(
                    RESOURCE_TYPE_TOPIC,
                    "orders",
                    vec![set("compression.type", "brotli")],
                ),
                40,
            ),
            (
                resource(
                    RESOURCE_TYPE_TOPIC,
                    "orders",
                    vec![
                        set("min.compaction.lag.ms", "10"),
                        set("max.compaction.lag.ms", "5"),
                    ],
                ),
                40,
            ),
            (
                resource(
                    RESOURCE_TYPE_TOPIC,
                    "orders",
                    vec![set("retention.ms", "1"), set("retention.ms", "2")],
                ),
                42,
            ),
            (
                resource(
                    RESOURCE_TYPE_TOPIC,
                    "missing",
                    vec![set("retention.ms", "1")],
                ),
                3,
            ),
            (
                resource(RESOURCE_TYPE_BROKER, "1", vec![set("broker.id", "2")]),
                42,
            ),
            (
                resource(
                    RESOURCE_TYPE_BROKER,
                    "",
                    vec![set("sasl.kerberos.min.time.before.relogin", "1")],
                ),
                42,
            ),
            (
                resource(
                    RESOURCE_TYPE_BROKER,
                    "7",
                    vec![set("log.retention.ms", "1")],
                ),
                42,
            ),
            (
                resource(
                    RESOURCE_TYPE_BROKER,
                    "1",
                    vec![set("log.retention.ms", "soon")],
                ),
                40,
            ),
            (resource(8, "1", Vec::new()), 42),
        ];
        for (resource, code) in cases {
            let response = alter(&cluster, vec![resource], false).remove(0);
            assert_eq!(response.error_code, code, "{response:?}");
            assert!(response.error_message.is_some());
        }
        let twice = resource(
            RESOURCE_TYPE_TOPIC,
            "orders",
            vec![set("retention.ms", "5")],
        );
        let codes: Vec<i16> = alter(&cluster, vec![twice.clone(), twice], false)
            .iter()
            .map(|response| response.error_code)
            .collect();
        assert_eq!(codes, vec![42, 42]);
        assert_eq!(overrides(&cluster, "orders"), created);
    }
}
