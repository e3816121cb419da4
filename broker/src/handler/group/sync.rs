//! SyncGroup (key 14): the leader hands out assignments; every member receives its own.
//!
//! Versions 0-5. A follower's call waits until the leader's arrives. Errors:
//! GROUP_AUTHORIZATION_FAILED (with `--authorizer acl`, no Read on the group),
//! UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID,
//! INCONSISTENT_GROUP_PROTOCOL (v5+ protocol type or name that is not the group's).

use std::time::Instant;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::sync_group::{SyncGroupRequest, SyncGroupResponse};

use crate::cluster::Cluster;
use crate::group::SyncResult;
use crate::handler::RequestContext;
use crate::security::acl::{AclOperation, ResourceType};

/// Answers SyncGroup, once the leader's assignment is in.
pub async fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    if !context
        .access(cluster)
        .allows(AclOperation::Read, ResourceType::Group, &request.group_id)
    {
        return SyncGroupResponse {
            error_code: ErrorCode::GroupAuthorizationFailed.code(),
            ..Default::default()
        };
    }
    let assignments = request
        .assignments
        .into_iter()
        .map(|assignment| (assignment.member_id, assignment.assignment))
        .collect();
    let answer = cluster.groups().sync(
        Instant::now(),
        &request.group_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
        assignments,
    );
    let mut result = answer
        .await
        .unwrap_or_else(|_| SyncResult::error(ErrorCode::RebalanceInProgress));
    let mismatched = |asked: &Option<String>, actual: &Option<String>| {
        asked.is_some() && actual.is_some() && asked != actual
    };
    if result.error == ErrorCode::None
        && (mismatched(&request.protocol_type, &result.protocol_type)
            || mismatched(&request.protocol_name, &result.protocol_name))
    {
        result = SyncResult::error(ErrorCode::InconsistentGroupProtocol);
    }
    SyncGroupResponse {
        error_code: result.error.code(),
        protocol_type: result.protocol_type,
        protocol_name: result.protocol_name,
        assignment: result.assignment,
        ..Default::default()
    }
}
