//! DescribeTransactions (key 65, KIP-664): a transactional id's producer, state, timeout
//! and the partitions of its open transaction, as `kafka-transactions.sh describe` shows.
//!
//! Version 0 (flexible).
//!
//! Errors per id: INVALID_REQUEST (an empty id), TRANSACTIONAL_ID_NOT_FOUND.

use std::collections::BTreeMap;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::describe_transactions::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, TopicData, TransactionState,
};

use crate::cluster::Cluster;
use crate::handler::RequestContext;

/// Answers DescribeTransactions.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let transaction_states = request
        .transactional_ids
        .into_iter()
        .map(|transactional_id| describe(cluster, transactional_id))
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
