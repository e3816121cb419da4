//! FindCoordinator (key 10): which broker coordinates a consumer group or a transaction.
//!
//! Versions 0-6 (v4+ batch several keys in one request). On one node, this broker is the
//! coordinator of every group (key type 0) and every transactional id (key type 1).
//! Share-group keys (key type 2) get INVALID_REQUEST with a message, rather than
//! COORDINATOR_NOT_AVAILABLE, which clients would retry for ever.
//!
//! With `--authorizer acl` the principal needs Describe on the group (else
//! GROUP_AUTHORIZATION_FAILED) or the transactional id (else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED), as in Kafka.
//!
//! Advertising this API matters beyond groups: librdkafka enables lz4 compression only
//! for brokers that list FindCoordinator (its marker for "Kafka 0.9 or newer").

use riffle_protocol::ErrorCode;
use riffle_protocol::api::find_coordinator::{
    Coordinator, FindCoordinatorRequest, FindCoordinatorResponse,
};

use crate::cluster::Cluster;
use crate::handler::RequestContext;
use crate::security::acl::{AclOperation, ResourceType};

/// Kafka's key type for consumer groups.
const KEY_TYPE_GROUP: i8 = 0;
/// Kafka's key type for transactional ids.
const KEY_TYPE_TRANSACTION: i8 = 1;
/// The first version that batches keys.
const FIRST_BATCHED_VERSION: i16 = 4;

/// Answers FindCoordinator.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    if version < FIRST_BATCHED_VERSION {
        let answer = coordinator_for(cluster, context, request.key, request.key_type);
        return FindCoordinatorResponse {
            error_code: answer.error_code,
            error_message: answer.error_message,
            node_id: answer.node_id,
            host: answer.host,
            port: answer.port,
            ..Default::default()
        };
    }
    let coordinators = request
        .coordinator_keys
        .into_iter()
        .map(|key| coordinator_for(cluster, context, key, request.key_type))
        .collect();
    FindCoordinatorResponse {
        coordinators,
        ..Default::default()
    }
}

fn coordinator_for(
    cluster: &Cluster,
    context: &RequestContext,
    key: String,
    key_type: i8,
) -> Coordinator {
    let access = context.access(cluster);
    let refusal = match key_type {
        KEY_TYPE_GROUP if !access.allows(AclOperation::Describe, ResourceType::Group, &key) => {
            Some(ErrorCode::GroupAuthorizationFailed)
        }
        KEY_TYPE_TRANSACTION
            if !access.allows(AclOperation::Describe, ResourceType::TransactionalId, &key) =>
        {
            Some(ErrorCode::TransactionalIdAuthorizationFailed)
        }
        _ => None,
    };
    if let Some(code) = refusal {
        return Coordinator {
            key,
            node_id: -1,
            host: String::new(),
            port: -1,
            error_code: code.code(),
            error_message: None,
        };
    }
    if key_type != KEY_TYPE_GROUP && key_type != KEY_TYPE_TRANSACTION {
        return Coordinator {
            key,
            node_id: -1,
            host: String::new(),
            port: -1,
            error_code: ErrorCode::InvalidRequest.code(),
            error_message: Some(format!(
                "key type {key_type} is not supported: riffle coordinates consumer groups and transactions"
            )),
        };
    }
    Coordinator {
        key,
        node_id: cluster.node_id,
        host: context.advertised_host.clone(),
        port: context.advertised_port,
        error_code: ErrorCode::None.code(),
        error_message: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_cluster;

    #[test]
    fn groups_are_coordinated_here_in_both_layouts() {
        let (_dir, cluster) = test_cluster();
        let single = handle(
            &cluster,
            &RequestContext::internal(&cluster),
            3,
            FindCoordinatorRequest {
                key: "g".into(),
                ..Default::default()
            },
        );
        assert_eq!(
            (single.error_code, single.node_id, single.port),
            (0, cluster.node_id, 9092)
        );
        let batched = handle(
            &cluster,
            &RequestContext::internal(&cluster),
            4,
            FindCoordinatorRequest {
                coordinator_keys: vec!["a".into(), "b".into()],
                ..Default::default()
            },
        );
        let keys: Vec<_> = batched
            .coordinators
            .iter()
            .map(|c| (c.key.as_str(), c.error_code))
            .collect();
        assert_eq!(keys, vec![("a", 0), ("b", 0)]);
    }

    #[test]
    fn transactions_are_coordinated_here_and_share_groups_refused() {
        let (_dir, cluster) = test_cluster();
        let request = |key_type| FindCoordinatorRequest {
            key: "txn".into(),
            key_type,
            ..Default::default()
        };
        let transaction = handle(&cluster, &RequestContext::internal(&cluster), 1, request(1));
        assert_eq!(
            (transaction.error_code, transaction.node_id),
            (0, cluster.node_id)
        );
        let share = handle(&cluster, &RequestContext::internal(&cluster), 1, request(2));
        assert_eq!(share.error_code, ErrorCode::InvalidRequest.code());
        assert!(
            share
                .error_message
                .is_some_and(|message| message.contains("groups and transactions"))
        );
    }
}
