//! JoinGroup (key 11): join a group, or rejoin it for a rebalance.
//!
//! Versions 0-7. The answer waits until the rebalance completes: every member has
//! rejoined, or the rebalance timeout passed (v0 has no rebalance timeout; the session
//! timeout stands in, as in Kafka). v4+ first answers MEMBER_ID_REQUIRED with an id to
//! rejoin with; v5+ carries static membership (group.instance.id).
//!
//! Errors: GROUP_AUTHORIZATION_FAILED (with `--authorizer acl`, no Read on the group),
//! INVALID_GROUP_ID, INVALID_SESSION_TIMEOUT, INCONSISTENT_GROUP_PROTOCOL,
//! MEMBER_ID_REQUIRED, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, GROUP_MAX_SIZE_REACHED,
//! REBALANCE_IN_PROGRESS (a newer JoinGroup from the same member replaced this one).

use std::time::{Duration, Instant};

use riffle_protocol::ErrorCode;
use riffle_protocol::api::join_group::{
    JoinGroupRequest, JoinGroupResponse, JoinGroupResponseMember,
};

use crate::cluster::Cluster;
use crate::group::{JoinRequest, JoinResult};
use crate::handler::RequestContext;
use crate::security::acl::{AclOperation, ResourceType};

/// The first version with the two-step join (KIP-394).
const FIRST_VERSION_REQUIRING_MEMBER_ID: i16 = 4;

/// Answers JoinGroup, once the rebalance allows.
pub async fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    version: i16,
    client_id: &str,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let access = context.access(cluster);
    if !access.allows(AclOperation::Read, ResourceType::Group, &request.group_id) {
        let refused = JoinResult::error(ErrorCode::GroupAuthorizationFailed, String::new());
        return response(refused);
    }
    if request.group_id.is_empty() {
        return response(JoinResult::error(
            ErrorCode::InvalidGroupId,
            request.member_id,
        ));
    }
    let session_timeout = duration_ms(request.session_timeout_ms);
    let rebalance_timeout = if version == 0 || request.rebalance_timeout_ms < 0 {
        session_timeout
    } else {
        duration_ms(request.rebalance_timeout_ms)
    };
    let join = JoinRequest {
        member_id: request.member_id.clone(),
        group_instance_id: request.group_instance_id,
        client_id: client_id.to_string(),
        client_host: context.client_host.clone(),
        session_timeout,
        rebalance_timeout,
        protocol_type: request.protocol_type,
        protocols: request
            .protocols
            .into_iter()
            .map(|protocol| (protocol.name, protocol.metadata))
            .collect(),
        require_known_member_id: version >= FIRST_VERSION_REQUIRING_MEMBER_ID,
    };
    let answer = cluster
        .groups()
        .join(Instant::now(), &request.group_id, join);
    let result = answer
        .await
        .unwrap_or_else(|_| JoinResult::error(ErrorCode::RebalanceInProgress, request.member_id));
    response(result)
}

fn duration_ms(milliseconds: i32) -> Duration {
    Duration::from_millis(u64::try_from(milliseconds).unwrap_or(0))
}

fn response(result: JoinResult) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: result.error.code(),
        generation_id: result.generation_id,
        protocol_type: result.protocol_type,
        protocol_name: result.protocol_name,
        leader: result.leader,
        member_id: result.member_id,
        members: result
            .members
            .into_iter()
            .map(
                |(member_id, group_instance_id, metadata)| JoinGroupResponseMember {
                    member_id,
                    group_instance_id,
                    metadata,
                },
            )
            .collect(),
        ..Default::default()
    }
}
