//! The topic requests: Metadata, CreateTopics, DeleteTopics, DescribeConfigs,
//! IncrementalAlterConfigs and DescribeLogDirs.
//!
//! Each result that concerns one topic is checked here: its error code becomes
//! [`AdminClientError::Broker`] naming the topic, with the broker's message. Metadata is
//! returned whole, per-topic error codes included, since UNKNOWN_TOPIC_OR_PARTITION there is
//! an answer the caller words.

use std::ops::RangeInclusive;
use std::time::Duration;

use riffle_protocol::api::create_topics::{
    CreatableTopic, CreatableTopicConfig, CreatableTopicResult, CreateTopicsRequest,
};
use riffle_protocol::api::delete_topics::{DeleteTopicState, DeleteTopicsRequest};
use riffle_protocol::api::describe_configs::{
    DescribeConfigsRequest, DescribeConfigsResource, DescribeConfigsResourceResult,
};
use riffle_protocol::api::describe_log_dirs::{
    DescribableLogDirTopic, DescribeLogDirsRequest, DescribeLogDirsResult,
};
use riffle_protocol::api::incremental_alter_configs::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use riffle_protocol::api::metadata::{MetadataRequest, MetadataRequestTopic, MetadataResponse};
use riffle_protocol::{ApiKey, Request, Response};

use super::{AdminClient, AdminClientError, IO_TIMEOUT, check_error};

/// Metadata versions: v4 can refuse auto-creation; v12 is the newest Riffle speaks.
const METADATA_VERSIONS: RangeInclusive<i16> = 4..=12;
/// CreateTopics versions: v4 takes -1 for the broker's default partitions and replicas.
const CREATE_TOPICS_VERSIONS: RangeInclusive<i16> = 4..=7;
/// DeleteTopics versions: v1 and up carry the throttle time; all delete by name.
const DELETE_TOPICS_VERSIONS: RangeInclusive<i16> = 1..=6;
/// DescribeConfigs versions: v1 reports each config's source.
const DESCRIBE_CONFIGS_VERSIONS: RangeInclusive<i16> = 1..=4;
/// IncrementalAlterConfigs versions: all there are.
const INCREMENTAL_ALTER_CONFIGS_VERSIONS: RangeInclusive<i16> = 0..=1;
/// DescribeLogDirs versions: v0 is deprecated (Kafka 4 removed it).
const DESCRIBE_LOG_DIRS_VERSIONS: RangeInclusive<i16> = 1..=4;

/// Kafka's resource type of a topic, in DescribeConfigs and IncrementalAlterConfigs.
pub const RESOURCE_TYPE_TOPIC: i8 = 2;

/// How long the broker may take to create or delete a topic, sent as the request's
/// `timeout_ms`; the socket waits this long plus [`IO_TIMEOUT`].
pub const TOPIC_CHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// A config change of IncrementalAlterConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    /// Set `name` to `value` (operation 0, SET).
    Set {
        /// The config name.
        name: String,
        /// Its new value.
        value: String,
    },
    /// Remove the topic's own value of `name`, so the default applies (operation 1, DELETE).
    Delete {
        /// The config name.
        name: String,
    },
}

/// What CreateTopics asks for besides the name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewTopic {
    /// The partition count; -1 for the broker's default.
    pub partitions: i32,
    /// The replication factor; -1 for the broker's default.
    pub replication_factor: i16,
    /// Topic configs, as name and value.
    pub configs: Vec<(String, String)>,
}

impl AdminClient {
    /// Metadata of `topics` (every topic for `None`), never creating one.
    ///
    /// # Errors
    /// A request error; per-topic error codes are in the response.
    pub fn metadata(
        &mut self,
        topics: Option<&[String]>,
    ) -> Result<MetadataResponse, AdminClientError> {
        let version = self.negotiate(ApiKey::Metadata, METADATA_VERSIONS)?;
        let request = Request::Metadata(MetadataRequest {
            topics: topics.map(|names| {
                names
                    .iter()
                    .map(|name| MetadataRequestTopic {
                        name: Some(name.clone()),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation: false,
            include_cluster_authorized_operations: false,
            include_topic_authorized_operations: false,
        });
        let Response::Metadata(response) = self.send(ApiKey::Metadata, version, request)? else {
            unreachable!("decode_response answers with the requested API");
        };
        Ok(response)
    }

    /// Creates topic `name` (or, with `validate_only`, checks that it could be).
    ///
    /// # Errors
    /// A request error, or the topic's error code with the broker's message.
    pub fn create_topic(
        &mut self,
        name: &str,
        topic: &NewTopic,
        validate_only: bool,
    ) -> Result<CreatableTopicResult, AdminClientError> {
        let version = self.negotiate(ApiKey::CreateTopics, CREATE_TOPICS_VERSIONS)?;
        let request = Request::CreateTopics(CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.to_owned(),
                num_partitions: topic.partitions,
                replication_factor: topic.replication_factor,
                assignments: Vec::new(),
                configs: topic
                    .configs
                    .iter()
                    .map(|(name, value)| CreatableTopicConfig {
                        name: name.clone(),
                        value: Some(value.clone()),
                    })
                    .collect(),
            }],
            timeout_ms: millis(TOPIC_CHANGE_TIMEOUT),
            validate_only,
        });
        let Response::CreateTopics(response) =
            self.send_slow(ApiKey::CreateTopics, version, request)?
        else {
            unreachable!("decode_response answers with the requested API");
        };
        let result = only_result(ApiKey::CreateTopics, response.topics, |result| {
            result.name == name
        })?;
        check_error(
            ApiKey::CreateTopics,
            &topic_context(name),
            result.error_code,
            result.error_message.clone(),
        )?;
        Ok(result)
    }

    /// Deletes topic `name`, waiting up to [`TOPIC_CHANGE_TIMEOUT`] for the broker.
    ///
    /// # Errors
    /// A request error, or the topic's error code with the broker's message.
    pub fn delete_topic(&mut self, name: &str) -> Result<(), AdminClientError> {
        let version = self.negotiate(ApiKey::DeleteTopics, DELETE_TOPICS_VERSIONS)?;
        // v6 names topics in `topics`, older versions in `topic_names`; the codec writes the
        // field the version has.
        let request = Request::DeleteTopics(DeleteTopicsRequest {
            topics: vec![DeleteTopicState {
                name: Some(name.to_owned()),
                ..Default::default()
            }],
            topic_names: vec![name.to_owned()],
            timeout_ms: millis(TOPIC_CHANGE_TIMEOUT),
        });
        let Response::DeleteTopics(response) =
            self.send_slow(ApiKey::DeleteTopics, version, request)?
        else {
            unreachable!("decode_response answers with the requested API");
        };
        let result = only_result(ApiKey::DeleteTopics, response.responses, |result| {
            result.name.as_deref() == Some(name)
        })?;
        check_error(
            ApiKey::DeleteTopics,
            &topic_context(name),
            result.error_code,
            result.error_message,
        )
    }

    /// Every config of topic `name`, with its value and source.
    ///
    /// # Errors
    /// A request error, or the topic's error code with the broker's message.
    pub fn describe_topic_configs(
        &mut self,
        name: &str,
    ) -> Result<Vec<DescribeConfigsResourceResult>, AdminClientError> {
        let version = self.negotiate(ApiKey::DescribeConfigs, DESCRIBE_CONFIGS_VERSIONS)?;
        let request = Request::DescribeConfigs(DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: RESOURCE_TYPE_TOPIC,
                resource_name: name.to_owned(),
                configuration_keys: None,
            }],
            include_synonyms: false,
            include_documentation: false,
        });
        let Response::DescribeConfigs(response) =
            self.send(ApiKey::DescribeConfigs, version, request)?
        else {
            unreachable!("decode_response answers with the requested API");
        };
        let result = only_result(ApiKey::DescribeConfigs, response.results, |result| {
            result.resource_name == name
        })?;
        check_error(
            ApiKey::DescribeConfigs,
            &topic_context(name),
            result.error_code,
            result.error_message,
        )?;
        Ok(result.configs)
    }

    /// Applies `changes` to topic `name`'s configs.
    ///
    /// # Errors
    /// A request error, or the topic's error code with the broker's message.
    pub fn alter_topic_configs(
        &mut self,
        name: &str,
        changes: &[ConfigChange],
    ) -> Result<(), AdminClientError> {
        let version = self.negotiate(
            ApiKey::IncrementalAlterConfigs,
            INCREMENTAL_ALTER_CONFIGS_VERSIONS,
        )?;
        let configs = changes
            .iter()
            .map(|change| match change {
                ConfigChange::Set { name, value } => AlterableConfig {
                    name: name.clone(),
                    config_operation: 0,
                    value: Some(value.clone()),
                },
                ConfigChange::Delete { name } => AlterableConfig {
                    name: name.clone(),
                    config_operation: 1,
                    value: None,
                },
            })
            .collect();
        let request = Request::IncrementalAlterConfigs(IncrementalAlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: RESOURCE_TYPE_TOPIC,
                resource_name: name.to_owned(),
                configs,
            }],
            validate_only: false,
        });
        let Response::IncrementalAlterConfigs(response) =
            self.send(ApiKey::IncrementalAlterConfigs, version, request)?
        else {
            unreachable!("decode_response answers with the requested API");
        };
        let result = only_result(
            ApiKey::IncrementalAlterConfigs,
            response.responses,
            |result| result.resource_name == name,
        )?;
        check_error(
            ApiKey::IncrementalAlterConfigs,
            &topic_context(name),
            result.error_code,
            result.error_message,
        )
    }

    /// The log directories of this broker holding `topic`'s `partitions`, with each
    /// partition's size.
    ///
    /// # Errors
    /// A request error, or the response's top-level error code (v3+).
    pub fn describe_log_dirs(
        &mut self,
        topic: &str,
        partitions: Vec<i32>,
    ) -> Result<Vec<DescribeLogDirsResult>, AdminClientError> {
        let version = self.negotiate(ApiKey::DescribeLogDirs, DESCRIBE_LOG_DIRS_VERSIONS)?;
        let request = Request::DescribeLogDirs(DescribeLogDirsRequest {
            topics: Some(vec![DescribableLogDirTopic {
                topic: topic.to_owned(),
                partitions,
            }]),
        });
        let Response::DescribeLogDirs(response) =
            self.send(ApiKey::DescribeLogDirs, version, request)?
        else {
            unreachable!("decode_response answers with the requested API");
        };
        check_error(ApiKey::DescribeLogDirs, "", response.error_code, None)?;
        Ok(response.results)
    }

    /// [`send`](Self::send) for a request the broker may take up to
    /// [`TOPIC_CHANGE_TIMEOUT`] to answer.
    fn send_slow(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: Request,
    ) -> Result<Response, AdminClientError> {
        let previous = self.io_timeout;
        self.set_io_timeout(TOPIC_CHANGE_TIMEOUT + IO_TIMEOUT)?;
        let response = self.send(api_key, version, request);
        self.set_io_timeout(previous)?;
        response
    }
}

/// `" for topic 'name'"`, the context of a topic's error.
fn topic_context(name: &str) -> String {
    format!(" for topic '{name}'")
}

/// A duration as a request's `timeout_ms`.
fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}

/// The one result of a one-resource request, which must be about what was asked.
fn only_result<T>(
    api_key: ApiKey,
    results: Vec<T>,
    is_asked: impl Fn(&T) -> bool,
) -> Result<T, AdminClientError> {
    let received = results.len();
    let mut results = results.into_iter();
    match (results.next(), results.next()) {
        (Some(result), None) if is_asked(&result) => Ok(result),
        (Some(_), None) => Err(AdminClientError::UnaskedResult {
            api: api_key.name(),
        }),
        _ => Err(AdminClientError::ResultCount {
            api: api_key.name(),
            sent: 1,
            received,
        }),
    }
}
