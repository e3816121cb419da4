//! DeleteTopics (key 20): deletes topics and their data. Versions 0-6: v0-5 name topics
//! in `topic_names`; v4 is the first flexible version; v5 adds per-topic error messages;
//! v6 names each topic by name or by id (`topics`) and answers the id.
//!
//! With `--authorizer acl` deleting needs Delete on the topic; a topic named by id that the
//! principal may not describe is refused without its name, as in Kafka.
//!
//! Errors per topic: TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_OR_PARTITION (no topic of
//! that name), UNKNOWN_TOPIC_ID
//! (v6, no topic with that id), INVALID_REQUEST (a topic named twice, or v6 with both or
//! neither of name and id), KAFKA_STORAGE_ERROR (the deletion could not be recorded).

use std::collections::HashMap;

use riffle_protocol::api::delete_topics::{
    DeletableTopicResult, DeleteTopicState, DeleteTopicsRequest, DeleteTopicsResponse,
};
use riffle_protocol::{ErrorCode, Uuid};

use crate::cluster::{Cluster, Topic, TopicError};
use crate::handler::{Access, RequestContext};
use crate::security::acl::{AclOperation, ResourceType};

/// First version that names topics by name or id in `topics`.
const FIRST_VERSION_WITH_TOPIC_IDS: i16 = 6;

/// How a request names one topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TopicKey {
    Name(String),
    Id(Uuid),
}

/// Answers DeleteTopics: one result per distinct topic, in request order.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    version: i16,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let keys: Vec<Result<TopicKey, TopicError>> = if version >= FIRST_VERSION_WITH_TOPIC_IDS {
        request.topics.into_iter().map(topic_key).collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|name| Ok(TopicKey::Name(name)))
            .collect()
    };
    let mut occurrences: HashMap<TopicKey, usize> = HashMap::new();
    for key in keys.iter().flatten() {
        *occurrences.entry(key.clone()).or_default() += 1;
    }
    let access = context.access(cluster);
    let mut responses = Vec::with_capacity(keys.len());
    for key in keys {
        let result = match key {
            Err(error) => invalid_result(error),
            Ok(key) => match occurrences.get_mut(&key) {
                // Kafka keys its results by topic, so a repeated one gets one answer.
                Some(0) => continue,
                Some(count) if *count > 1 => {
                    *count = 0;
                    duplicate_result(key)
                }
                _ => delete_one(cluster, &access, key),
            },
        };
        responses.push(result);
    }
    DeleteTopicsResponse {
        throttle_time_ms: 0,
        responses,
    }
}

/// The answer when the authorizer refuses, in Kafka's order: an unknown id has no name to
/// check (UNKNOWN_TOPIC_ID follows); a topic named by id that the principal may not
/// describe is refused without its name; then Delete on the topic is needed.
fn refusal(
    access: &Access<'_>,
    key: &TopicKey,
    found: Option<&Topic>,
) -> Option<DeletableTopicResult> {
    let (name, topic_id) = match (key, found) {
        (TopicKey::Id(id), Some(topic)) => (topic.name.as_str(), *id),
        (TopicKey::Id(_), None) => return None,
        (TopicKey::Name(name), _) => (name.as_str(), Uuid::ZERO),
    };
    let refused = |name: Option<&str>| DeletableTopicResult {
        name: name.map(str::to_string),
        topic_id,
        error_code: ErrorCode::TopicAuthorizationFailed.code(),
        error_message: None,
    };
    let by_id = matches!(key, TopicKey::Id(_));
    if by_id && !access.allows(AclOperation::Describe, ResourceType::Topic, name) {
        return Some(refused(None));
    }
    (!access.allows(AclOperation::Delete, ResourceType::Topic, name)).then(|| refused(Some(name)))
}

/// A v6 entry's name or id; exactly one of them must be set.
fn topic_key(state: DeleteTopicState) -> Result<TopicKey, TopicError> {
    match (state.name, state.topic_id.is_zero()) {
        (Some(name), true) => Ok(TopicKey::Name(name)),
        (None, false) => Ok(TopicKey::Id(state.topic_id)),
        (Some(_), false) => Err(topic_error(
            "You may not specify both topic name and topic id.",
        )),
        (None, true) => Err(topic_error("Neither topic name nor id were specified.")),
    }
}

/// Resolves the topic, checks the principal may delete it, then deletes it. The id is read
/// before deleting, because the deletion answers only success or failure.
fn delete_one(cluster: &Cluster, access: &Access<'_>, key: TopicKey) -> DeletableTopicResult {
    let found = match &key {
        TopicKey::Name(name) => cluster.topic(name),
        TopicKey::Id(id) => cluster.topic_by_id(id),
    };
    if let Some(refused) = refusal(access, &key, found.as_deref()) {
        return refused;
    }
    let Some(topic) = found else {
        let (name, topic_id, code, message) = match key {
            TopicKey::Name(name) => {
                let message = format!("unknown topic '{name}'");
                (
                    Some(name),
                    Uuid::ZERO,
                    ErrorCode::UnknownTopicOrPartition,
                    message,
                )
            }
            TopicKey::Id(id) => (
                None,
                id,
                ErrorCode::UnknownTopicId,
                "unknown topic id".to_string(),
            ),
        };
        return DeletableTopicResult {
            name,
            topic_id,
            error_code: code.code(),
            error_message: Some(message),
        };
    };
    let (name, topic_id) = (topic.name.clone(), topic.id);
    // Drop our handle so the partitions' files are not kept open by this request.
    drop(topic);
    match cluster.delete_topic(&name) {
        Ok(_) => DeletableTopicResult {
            name: Some(name),
            topic_id,
            error_code: ErrorCode::None.code(),
            error_message: None,
        },
        Err(error) => DeletableTopicResult {
            name: Some(name),
            topic_id,
            error_code: error.code.code(),
            error_message: Some(error.message),
        },
    }
}

fn duplicate_result(key: TopicKey) -> DeletableTopicResult {
    let (name, topic_id, message) = match key {
        TopicKey::Name(name) => (Some(name), Uuid::ZERO, "Duplicate topic name."),
        TopicKey::Id(id) => (None, id, "Duplicate topic id."),
    };
    let error_message = Some(message.to_string());
    DeletableTopicResult {
        name,
        topic_id,
        error_code: ErrorCode::InvalidRequest.code(),
        error_message,
    }
}

fn invalid_result(error: TopicError) -> DeletableTopicResult {
    DeletableTopicResult {
        name: None,
        topic_id: Uuid::ZERO,
        error_code: error.code.code(),
        error_message: Some(error.message),
    }
}

fn topic_error(message: &str) -> TopicError {
    TopicError {
        code: ErrorCode::InvalidRequest,
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cluster::Validation;
    use crate::testing::test_cluster;

    fn create(cluster: &Cluster, name: &str) -> Uuid {
        cluster
            .create_topic(name, 1, BTreeMap::new(), Validation::Apply)
            .expect("create")
            .id
    }

    fn by_names(names: &[&str]) -> DeleteTopicsRequest {
        DeleteTopicsRequest {
            topic_names: names.iter().map(|name| name.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn deletes_by_name_and_reports_unknown_and_repeated_names() {
        // v5: a known topic is deleted, an unknown one fails, a repeated one fails once.
        let (_dir, cluster) = test_cluster();
        create(&cluster, "gone");
        create(&cluster, "twice");
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            5,
            by_names(&["gone", "missing", "twice", "twice"]),
        );
        let codes: Vec<(Option<&str>, i16)> = response
            .responses
            .iter()
            .map(|result| (result.name.as_deref(), result.error_code))
            .collect();
        assert_eq!(
            codes,
            vec![(Some("gone"), 0), (Some("missing"), 3), (Some("twice"), 42)]
        );
        assert!(cluster.topic("gone").is_none());
        assert!(cluster.topic("twice").is_some());
    }

    #[test]
    fn v6_deletes_by_id_and_answers_name_and_id() {
        // v6: a topic named only by id is deleted and answered with its name; an unknown
        // id gets UNKNOWN_TOPIC_ID; name and id together are refused.
        let (_dir, cluster) = test_cluster();
        let id = create(&cluster, "by-id");
        let state = |name: Option<&str>, topic_id: Uuid| DeleteTopicState {
            name: name.map(str::to_string),
            topic_id,
        };
        let request = DeleteTopicsRequest {
            topics: vec![
                state(None, id),
                state(None, Uuid([9; 16])),
                state(Some("x"), Uuid([8; 16])),
            ],
            ..Default::default()
        };
        let response = handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            6,
            request,
        );
        let first = &response.responses[0];
        assert_eq!(
            (first.name.as_deref(), first.topic_id, first.error_code),
            (Some("by-id"), id, 0)
        );
        assert_eq!(response.responses[1].error_code, 100);
        assert_eq!(response.responses[2].error_code, 42);
        assert!(cluster.topic_by_id(&id).is_none());
    }
}
