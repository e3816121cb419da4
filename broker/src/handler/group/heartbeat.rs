//! Heartbeat (key 12): a member is alive; the answer tells it whether to rejoin.
//!
//! Versions 0-4. Errors: GROUP_AUTHORIZATION_FAILED (with `--authorizer acl`, no Read on
//! the group), UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS
//! (rejoin now), FENCED_INSTANCE_ID.

use std::time::Instant;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::heartbeat::{HeartbeatRequest, HeartbeatResponse};

use crate::cluster::Cluster;
use crate::handler::RequestContext;
use crate::security::acl::{AclOperation, ResourceType};

/// Answers Heartbeat.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: HeartbeatRequest,
) -> HeartbeatResponse {
    if !context
        .access(cluster)
        .allows(AclOperation::Read, ResourceType::Group, &request.group_id)
    {
        return HeartbeatResponse {
            error_code: ErrorCode::GroupAuthorizationFailed.code(),
            ..Default::default()
        };
    }
    let error = cluster.groups().heartbeat(
        Instant::now(),
        &request.group_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
    );
    HeartbeatResponse {
        error_code: error.code(),
        ..Default::default()
    }
}
