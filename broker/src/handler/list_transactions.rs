//! ListTransactions (key 66, KIP-664): every transactional id with its producer and
//! state, optionally filtered, as `kafka-transactions.sh list` shows; the way to find
//! transactions that hold a partition's last stable offset back.
//!
//! Versions 0-1 (flexible; v1 adds `duration_filter`: only transactions open longer than
//! that many milliseconds). An empty filter list matches everything; a state name Kafka does
//! not define is returned in `unknown_state_filters` and matches nothing. With
//! `--authorizer acl`, only the ids the principal may describe are listed, as in Kafka.

use riffle_protocol::ErrorCode;
use riffle_protocol::api::list_transactions::{
    ListTransactionsRequest, ListTransactionsResponse, TransactionState as ListedTransaction,
};

use crate::cluster::{Cluster, now_ms};
use crate::handler::RequestContext;
use crate::security::acl::{AclOperation, ResourceType};
use crate::transaction::TransactionState;

/// Answers ListTransactions.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let mut states = Vec::new();
    let mut unknown_state_filters = Vec::new();
    for name in &request.state_filters {
        match TransactionState::from_name(name) {
            Some(state) => states.push(state),
            None => unknown_state_filters.push(name.clone()),
        }
    }
    let now_ms = now_ms();
    let access = context.access(cluster);
    let matches_state = |state| request.state_filters.is_empty() || states.contains(&state);
    let transaction_states = cluster
        .transactions()
        .list()
        .into_iter()
        .filter(|metadata| metadata.state != TransactionState::Dead)
        .filter(|metadata| {
            let id = &metadata.transactional_id;
            access.filters(AclOperation::Describe, ResourceType::TransactionalId, id)
        })
        .filter(|metadata| matches_state(metadata.state))
        .filter(|metadata| {
            request.producer_id_filters.is_empty()
                || request.producer_id_filters.contains(&metadata.producer_id)
        })
        .filter(|metadata| {
            // -1 (and v0, which lacks the field) lists every transaction.
            request.duration_filter < 0
                || (metadata.start_timestamp_ms >= 0
                    && now_ms.saturating_sub(metadata.start_timestamp_ms) > request.duration_filter)
        })
        .map(|metadata| ListedTransaction {
            transactional_id: metadata.transactional_id,
            producer_id: metadata.producer_id,
            transaction_state: metadata.state.name().to_string(),
        })
        .collect();
    ListTransactionsResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None.code(),
        unknown_state_filters,
        transaction_states,
    }
}
