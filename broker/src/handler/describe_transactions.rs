//! DescribeTransactions (key 65, KIP-664): a transactional id's producer, state, timeout
//! and the partitions of its open transaction, as `kafka-transactions.sh describe` shows.
//!
//! Version 0 (flexible).
//!
//! With `--authorizer acl`, as in Kafka: an id the principal may not describe answers
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED, and a described transaction lists only the topics
//! it may describe.
//!
//! Errors per id: TRANSACTIONAL_ID_AUTHORIZATION_FAILED, INVALID_REQUEST (an empty id),
//! TRANSACTIONAL_ID_NOT_FOUND.

use std::collections::BTreeMap;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::describe_transactions::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, TopicData, TransactionState,
};

use crate::cluster::Cluster;
use crate::handler::RequestContext;
use crate::security::acl::{AclOperation, ResourceType};

/// Answers DescribeTransactions.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let access = context.access(cluster);
    let transaction_states = request
        .transactional_ids
        .into_iter()
        .map(|transactional_id| {
            let id = &transactional_id;
            if !access.allows(AclOperation::Describe, ResourceType::TransactionalId, id) {
                return TransactionState {
                    error_code: ErrorCode::TransactionalIdAuthorizationFailed.code(),
                    transactional_id,
                    ..Default::default()
                };
            }
            let mut state = describe(cluster, transactional_id);
            // Only the partitions of topics the principal may describe, as in Kafka.
            state.topics.retain(|topic| {
                access.filters(AclOperation::Describe, ResourceType::Topic, &topic.topic)
            });
            state
        })
        .collect();
    DescribeTransactionsResponse {
        throttle_time_ms: 0,
        transaction_states,
    }
}

fn describe(cluster: &Cluster, transactional_id: String) -> TransactionState {
    let failed = |transactional_id, code: ErrorCode| TransactionState {
        error_code: code.code(),
        transactional_id,
        ..Default::default()
    };
    if transactional_id.is_empty() {
        return failed(transactional_id, ErrorCode::InvalidRequest);
    }
    let Some(metadata) = cluster.transactions().describe(&transactional_id) else {
        return failed(transactional_id, ErrorCode::TransactionalIdNotFound);
    };
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in &metadata.partitions {
        topics.entry(topic).or_default().push(*partition);
    }
    TransactionState {
        error_code: ErrorCode::None.code(),
        transactional_id,
        transaction_state: metadata.state.name().to_string(),
        transaction_timeout_ms: metadata.timeout_ms,
        transaction_start_time_ms: metadata.start_timestamp_ms,
        producer_id: metadata.producer_id,
        producer_epoch: metadata.producer_epoch,
        topics: topics
            .into_iter()
            .map(|(topic, partitions)| TopicData {
                topic: topic.to_string(),
                partitions,
            })
            .collect(),
    }
}
