//! AddOffsetsToTxn (key 25): the group's offsets partition joins the producer's open
//! transaction, so TxnOffsetCommit may commit offsets in it (consume-transform-produce).
//!
//! Versions 0-3 (v2 adds PRODUCER_FENCED, older versions get INVALID_PRODUCER_EPOCH
//! instead; v3 is flexible). One node keeps every group's offsets in partition 0 of
//! `__consumer_offsets`, so that partition is added whatever the group.
//!
//! Errors: TRANSACTIONAL_ID_AUTHORIZATION_FAILED and GROUP_AUTHORIZATION_FAILED (with
//! `--authorizer acl`, no Write on the transactional id or no Read on the group), INVALID_REQUEST
//! (empty transactional id), INVALID_GROUP_ID,
//! INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS,
//! KAFKA_STORAGE_ERROR.

use std::sync::Arc;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::add_offsets_to_txn::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use crate::cluster::Cluster;
use crate::group::OFFSETS_TOPIC;
use crate::handler::RequestContext;
use crate::security::acl::{AclOperation, ResourceType};
use crate::transaction::metadata::error_for_version;

/// The first version that knows PRODUCER_FENCED.
const FIRST_FENCED_VERSION: i16 = 2;

/// Answers AddOffsetsToTxn.
pub async fn handle(
    cluster: &Arc<Cluster>,
    context: &RequestContext,
    version: i16,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let access = context.access(cluster);
    let transactional_id = &request.transactional_id;
    let outcome = if !access.allows(
        AclOperation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    ) {
        Err(ErrorCode::TransactionalIdAuthorizationFailed)
    } else if !access.allows(AclOperation::Read, ResourceType::Group, &request.group_id) {
        Err(ErrorCode::GroupAuthorizationFailed)
    } else if request.transactional_id.is_empty() {
        Err(ErrorCode::InvalidRequest)
    } else if request.group_id.is_empty() {
        Err(ErrorCode::InvalidGroupId)
    } else {
        let offsets_partition = [(OFFSETS_TOPIC.to_string(), 0)];
        cluster
            .transactions()
            .add_partitions(
                cluster,
                &request.transactional_id,
                request.producer_id,
                request.producer_epoch,
                &offsets_partition,
            )
            .await
    };
    let code = outcome.err().unwrap_or(ErrorCode::None);
    AddOffsetsToTxnResponse {
        throttle_time_ms: 0,
        error_code: error_for_version(code, version, FIRST_FENCED_VERSION).code(),
    }
}
