//! EndTxn (key 26): commits or aborts the producer's open transaction.
//!
//! Versions 0-3 (v2 adds PRODUCER_FENCED, older versions get INVALID_PRODUCER_EPOCH
//! instead; v3 is flexible). The decision is made durable, then a marker is appended to
//! every partition of the transaction; the answer comes once they are written, so a
//! read_committed consumer sees the outcome by the time the producer does. A retry of an
//! EndTxn that already completed the same way succeeds again.
//!
//! Errors: TRANSACTIONAL_ID_AUTHORIZATION_FAILED (with `--authorizer acl`, no Write on the
//! transactional id), INVALID_REQUEST (empty transactional id), INVALID_PRODUCER_ID_MAPPING,
//! PRODUCER_FENCED, INVALID_TXN_STATE (no open transaction, or the opposite outcome),
//! CONCURRENT_TRANSACTIONS, KAFKA_STORAGE_ERROR.

use std::sync::Arc;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::end_txn::{EndTxnRequest, EndTxnResponse};

use crate::cluster::Cluster;
use crate::handler::RequestContext;
use crate::security::acl::{AclOperation, ResourceType};
use crate::transaction::metadata::error_for_version;

/// The first version that knows PRODUCER_FENCED.
const FIRST_FENCED_VERSION: i16 = 2;

/// Answers EndTxn.
pub async fn handle(
    cluster: &Arc<Cluster>,
    context: &RequestContext,
    version: i16,
    request: EndTxnRequest,
) -> EndTxnResponse {
    let access = context.access(cluster);
    let transactional_id = &request.transactional_id;
    let outcome = if !access.allows(
        AclOperation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    ) {
        Err(ErrorCode::TransactionalIdAuthorizationFailed)
    } else if request.transactional_id.is_empty() {
        Err(ErrorCode::InvalidRequest)
    } else {
        cluster
            .transactions()
            .end_transaction(
                cluster,
                &request.transactional_id,
                request.producer_id,
                request.producer_epoch,
                request.committed,
            )
            .await
    };
    let code = outcome.err().unwrap_or(ErrorCode::None);
    EndTxnResponse {
        error_code: error_for_version(code, version, FIRST_FENCED_VERSION).code(),
        ..Default::default()
    }
}
