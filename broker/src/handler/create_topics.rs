//! CreateTopics (key 19): creates topics, or with `validate_only` only checks that they
//! could be created. Versions 0-7: v1 adds `validate_only` and per-topic error messages,
//! v4 lets the partition count and replication factor be -1 ("the broker's default"),
//! v5 (flexible) answers each created topic's partition count, replication factor and
//! effective configs, v7 its topic id.
//!
//! A single node can only hold one replica, so the replication factor must be -1 or 1
//! and a manual assignment must put every partition on this node alone. With
//! `--replication-factor-above-one accept`, a larger factor creates the topic with its one
//! replica (and a warning) instead, for tools written for three-broker clusters.
//!
//! With `--authorizer acl`, creating needs Create on the cluster or the topic (else
//! TOPIC_AUTHORIZATION_FAILED), and a created topic's configs (v5+) are shown only with
//! DescribeConfigs on it (else its `topic_config_error_code` is TOPIC_AUTHORIZATION_FAILED).
//!
//! Errors per topic: INVALID_REQUEST (the name appears more than once in the request, or
//! both a count and an assignment are given), TOPIC_AUTHORIZATION_FAILED, INVALID_TOPIC_EXCEPTION, TOPIC_ALREADY_EXISTS,
//! INVALID_REPLICATION_FACTOR, INVALID_REPLICA_ASSIGNMENT, INVALID_PARTITIONS,
//! INVALID_CONFIG, KAFKA_STORAGE_ERROR.

use std::collections::{BTreeMap, HashMap, HashSet};

use riffle_protocol::ErrorCode;
use riffle_protocol::api::create_topics::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig, CreatableTopicConfigs,
    CreatableTopicResult, CreateTopicsRequest, CreateTopicsResponse,
};

use crate::cluster::{Cluster, CreatedTopic, TopicError, Validation, validate_topic_name};
use crate::config::ReplicationFactorPolicy;
use crate::handler::RequestContext;
use crate::security::acl::{AclOperation, CLUSTER_NAME, ResourceType};
use crate::topic_config::TOPIC_CONFIGS;
use crate::topic_config::TopicConfig;

/// Kafka's "use the broker default" marker for `num_partitions`.
const DEFAULT_NUM_PARTITIONS: i32 = -1;
/// Kafka's "use the broker default" marker for `replication_factor`.
const DEFAULT_REPLICATION_FACTOR: i16 = -1;
/// The only replication factor one node can honour.
const SINGLE_NODE_REPLICATION_FACTOR: i16 = 1;
/// First version whose results carry partition count, replication factor and configs.
const FIRST_VERSION_WITH_TOPIC_DETAILS: i16 = 5;

/// Answers CreateTopics: one result per distinct topic name, in request order.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    version: i16,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let validation = if request.validate_only {
        Validation::Only
    } else {
        Validation::Apply
    };
    let mut occurrences: HashMap<String, usize> = HashMap::new();
    for topic in &request.topics {
        *occurrences.entry(topic.name.clone()).or_default() += 1;
    }
    let access = context.access(cluster);
    // Create on the cluster covers every topic; checked quietly, as Kafka does.
    let may_create_any = access.filters(AclOperation::Create, ResourceType::Cluster, CLUSTER_NAME);
    let mut answered = HashSet::new();
    let mut topics = Vec::with_capacity(occurrences.len());
    for topic in request.topics {
        // Kafka keys its results by name, so a repeated name gets one answer.
        if !answered.insert(topic.name.clone()) {
            continue;
        }
        let name = topic.name.clone();
        let result = if occurrences.get(&name).copied().unwrap_or(0) > 1 {
            Err(topic_error(
                ErrorCode::InvalidRequest,
                "Duplicate topic name.",
            ))
        } else if !may_create_any
            && !access.allows(AclOperation::Create, ResourceType::Topic, &name)
        {
            Err(topic_error(
                ErrorCode::TopicAuthorizationFailed,
                "Authorization failed.",
            ))
        } else {
            create_one(cluster, topic, validation)
        };
        let mut result = topic_result(version, name, result);
        // The configs are shown only to a principal that may describe them.
        if result.error_code == ErrorCode::None.code()
            && version >= FIRST_VERSION_WITH_TOPIC_DETAILS
            && !access.filters(
                AclOperation::DescribeConfigs,
                ResourceType::Topic,
                &result.name,
            )
        {
            result.topic_config_error_code = ErrorCode::TopicAuthorizationFailed.code();
            result.configs = Some(Vec::new());
        }
        topics.push(result);
    }
    CreateTopicsResponse {
        throttle_time_ms: 0,
        topics,
    }
}

/// Checks one topic's request and hands it to the cluster, in Kafka's order: the name,
/// whether it exists, then partitions and replicas, then configs.
fn create_one(
    cluster: &Cluster,
    topic: CreatableTopic,
    validation: Validation,
) -> Result<CreatedTopic, TopicError> {
    validate_topic_name(&topic.name)?;
    if cluster.topic(&topic.name).is_some() {
        let message = format!("Topic '{}' already exists.", topic.name);
        return Err(topic_error(ErrorCode::TopicAlreadyExists, message));
    }
    let policy = cluster.config.replication_factor_above_one;
    let partitions_count = requested_partitions_count(cluster.node_id, policy, &topic)?;
    let configs = requested_configs(topic.configs)?;
    cluster.create_topic(&topic.name, partitions_count, configs, validation)
}

/// The partition count asked for (-1 for the default), after checking the replication
/// factor or the manual assignment against what a single node can hold.
fn requested_partitions_count(
    node_id: i32,
    policy: ReplicationFactorPolicy,
    topic: &CreatableTopic,
) -> Result<i32, TopicError> {
    if !topic.assignments.is_empty() {
        if topic.num_partitions != DEFAULT_NUM_PARTITIONS
            || topic.replication_factor != DEFAULT_REPLICATION_FACTOR
        {
            let message = "Both numPartitions or replicationFactor and replicasAssignments \
                           were set. Both cannot be used at the same time.";
            return Err(topic_error(ErrorCode::InvalidRequest, message));
        }
        return assigned_partitions_count(node_id, &topic.assignments);
    }
    let replication_factor = topic.replication_factor;
    if replication_factor == 0 || replication_factor < DEFAULT_REPLICATION_FACTOR {
        let message = "Replication factor must be larger than 0, or -1 to use the default value.";
        return Err(topic_error(ErrorCode::InvalidReplicationFactor, message));
    }
    if replication_factor > SINGLE_NODE_REPLICATION_FACTOR
        && policy == ReplicationFactorPolicy::Accept
    {
        tracing::warn!(topic = %topic.name, replication_factor,
            "creating the topic with one replica: a single node holds no more");
    } else if replication_factor > SINGLE_NODE_REPLICATION_FACTOR {
        let message = format!(
            "Unable to replicate the partition {replication_factor} time(s): the target \
             replication factor of {replication_factor} cannot be reached because only 1 \
             broker(s) are registered."
        );
        return Err(topic_error(ErrorCode::InvalidReplicationFactor, message));
    }
    Ok(topic.num_partitions)
}

/// The partition count of a manual assignment: every partition on this node alone, and
/// the partitions numbered 0..n with no gap or repeat.
fn assigned_partitions_count(
    node_id: i32,
    assignments: &[CreatableReplicaAssignment],
) -> Result<i32, TopicError> {
    if let Some(bad) = assignments
        .iter()
        .find(|assignment| assignment.broker_ids != [node_id])
    {
        let message = format!(
            "partition {} is assigned to brokers {:?}; this single-node cluster can only \
             place it on [{node_id}]",
            bad.partition_index, bad.broker_ids
        );
        return Err(topic_error(ErrorCode::InvalidReplicaAssignment, message));
    }
    let mut indexes: Vec<i32> = assignments
        .iter()
        .map(|assignment| assignment.partition_index)
        .collect();
    indexes.sort_unstable();
    let contiguous = indexes
        .iter()
        .enumerate()
        .all(|(position, index)| usize::try_from(*index) == Ok(position));
    if !contiguous {
        let message = "Partitions should be a consecutive 0-based integer sequence.";
        return Err(topic_error(ErrorCode::InvalidReplicaAssignment, message));
    }
    i32::try_from(assignments.len()).map_err(|_| {
        topic_error(
            ErrorCode::InvalidReplicaAssignment,
            "too many partitions assigned",
        )
    })
}

/// The requested configs as a map; a null value is refused, as Kafka does, because
/// CreateTopics has no "unset" to mean.
fn requested_configs(
    configs: Vec<CreatableTopicConfig>,
) -> Result<BTreeMap<String, String>, TopicError> {
    let null_names: Vec<&str> = configs
        .iter()
        .filter(|config| config.value.is_none())
        .map(|config| config.name.as_str())
        .collect();
    if !null_names.is_empty() {
        let message = format!(
            "Null value not supported for topic configs: {}",
            null_names.join(",")
        );
        return Err(topic_error(ErrorCode::InvalidConfig, message));
    }
    Ok(configs
        .into_iter()
        .filter_map(|config| Some((config.name, config.value?)))
        .collect())
}

/// One topic's result. On error v5+ reports -1 partitions and replicas and no configs,
/// as Kafka does.
fn topic_result(
    version: i16,
    name: String,
    result: Result<CreatedTopic, TopicError>,
) -> CreatableTopicResult {
    match result {
        Ok(topic) => CreatableTopicResult {
            name,
            topic_id: topic.id,
            error_code: ErrorCode::None.code(),
            error_message: None,
            num_partitions: topic.partition_count,
            replication_factor: SINGLE_NODE_REPLICATION_FACTOR,
            configs: Some(if version >= FIRST_VERSION_WITH_TOPIC_DETAILS {
                described_configs(&topic.config)
            } else {
                Vec::new()
            }),
            ..Default::default()
        },
        Err(error) => CreatableTopicResult {
            name,
            error_code: error.code.code(),
            error_message: Some(error.message),
            num_partitions: -1,
            replication_factor: -1,
            configs: Some(Vec::new()),
            ..Default::default()
        },
    }
}

/// Every config of the new topic with its effective value and source, as DescribeConfigs
/// would list it (KIP-525).
fn described_configs(config: &TopicConfig) -> Vec<CreatableTopicConfigs> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let (value, source) = config.value(def.name);
            CreatableTopicConfigs {
                name: def.name.to_string(),
                value: Some(value),
                read_only: false,
                config_source: source as i8,
                is_sensitive: false,
            }
        })
        .collect()
}

fn topic_error(code: ErrorCode, message: impl Into<String>) -> TopicError {
    TopicError {
        code,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_cluster;

    fn creatable(name: &str, num_partitions: i32, replication_factor: i16) -> CreatableTopic {
        CreatableTopic {
            name: name.into(),
            num_partitions,
            replication_factor,
            ..Default::default()
        }
    }

    fn request(topics: Vec<CreatableTopic>) -> CreateTopicsRequest {
        CreateTopicsRequest {
            topics,
            timeout_ms: 30_000,
            validate_only: false,
        }
    }

    fn error_codes(response: &CreateTopicsResponse) -> Vec<(&str, i16)> {
        response
            .topics
            .iter()
            .map(|topic| (topic.name.as_str(), topic.error_code))
            .collect()
    }

    #[test]
    fn creates_topics_and_describes_them_in_v7() {
        // A default-sized topic and a 3-partition one are created; v7 reports id, counts
        // and configs.
        let (_dir, cluster) = test_cluster();
        let mut orders = creatable("orders", 3, 1);
        orders.configs = vec![CreatableTopicConfig {
            name: "retention.ms".into(),
            value: Some("1000".into()),
        }];
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            7,
            request(vec![creatable("events", -1, -1), orders]),
        );
        assert_eq!(error_codes(&response), vec![("events", 0), ("orders", 0)]);
        let orders = &response.topics[1];
        assert_eq!((orders.num_partitions, orders.replication_factor), (3, 1));
        assert_eq!(
            orders.topic_id,
            cluster.topic("orders").expect("created").id
        );
        let configs = orders.configs.as_ref().expect("v5+ lists configs");
        let retention = configs
            .iter()
            .find(|config| config.name == "retention.ms")
            .expect("listed");
        assert_eq!(
            (retention.value.as_deref(), retention.config_source),
            (Some("1000"), 1)
        );
        assert_eq!(
            cluster.topic("events").expect("created").partitions.len(),
            1
        );
    }

    #[test]
    fn rejects_what_a_single_node_cannot_hold() {
        // Replication factor 3, an assignment to another broker, a gap in the assignment,
        // a null config, a duplicate name and an existing topic each fail alone.
        let (_dir, cluster) = test_cluster();
        handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            4,
            request(vec![creatable("existing", 1, 1)]),
        );
        let assigned = |indexes: &[i32], broker: i32| CreatableTopic {
            name: format!("assigned-{broker}-{}", indexes.len()),
            num_partitions: -1,
            replication_factor: -1,
            assignments: indexes
                .iter()
                .map(|index| CreatableReplicaAssignment {
                    partition_index: *index,
                    broker_ids: vec![broker],
                })
                .collect(),
            configs: Vec::new(),
        };
        let mut null_config = creatable("null-config", 1, 1);
        null_config.configs = vec![CreatableTopicConfig {
            name: "retention.ms".into(),
            value: None,
        }];
        let topics = vec![
            creatable("replicated", 1, 3),
            assigned(&[0, 1], 2),
            assigned(&[0, 2], cluster.node_id),
            assigned(&[1, 0, 2], cluster.node_id),
            null_config,
            creatable("twice", 1, 1),
            creatable("twice", 1, 1),
            creatable("existing", 1, 1),
        ];
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            5,
            request(topics),
        );
        let codes: Vec<i16> = response
            .topics
            .iter()
            .map(|topic| topic.error_code)
            .collect();
        assert_eq!(codes, vec![38, 39, 39, 0, 40, 42, 36]);
        assert_eq!(
            cluster
                .topic("assigned-1-3")
                .expect("created")
                .partitions
                .len(),
            3
        );
        let failed = &response.topics[0];
        assert_eq!((failed.num_partitions, failed.replication_factor), (-1, -1));
        assert!(
            failed
                .error_message
                .as_deref()
                .is_some_and(|message| message.contains("replication factor"))
        );
    }

    #[test]
    fn accepts_replication_factor_three_with_one_replica_when_told_to() {
        // With `--replication-factor-above-one accept`, replication factor 3 creates the
        // topic and answers the one replica it has.
        let dir = tempfile::tempdir().expect("temp dir");
        let config =
            crate::testing::test_config(dir.path(), &["--replication-factor-above-one", "accept"]);
        let cluster = Cluster::open(config, ("127.0.0.1".into(), 9092)).expect("open");
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            5,
            request(vec![creatable("replicated", 2, 3)]),
        );
        let created = &response.topics[0];
        assert_eq!(
            (
                created.error_code,
                created.num_partitions,
                created.replication_factor
            ),
            (0, 2, 1)
        );
        assert!(cluster.topic("replicated").is_some());
    }

    #[test]
    fn validate_only_creates_nothing() {
        // validate_only answers success for a valid topic but the topic does not appear,
        // in memory or on disk.
        let (dir, cluster) = test_cluster();
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            1,
            CreateTopicsRequest {
                validate_only: true,
                ..request(vec![creatable("dry-run", 2, 1)])
            },
        );
        assert_eq!(error_codes(&response), vec![("dry-run", 0)]);
        assert!(cluster.topic("dry-run").is_none());
        assert!(!dir.path().join("dry-run-0").exists());
        assert_eq!(response.topics[0].num_partitions, 2);
    }
}
