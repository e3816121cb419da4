//! LeaveGroup (key 13): members leave, and the rest rebalance at once rather than after
//! a session timeout.
//!
//! Versions 0-5; v3+ lets several members (static ones by instance id) leave in one call.
//! Errors: GROUP_AUTHORIZATION_FAILED (with `--authorizer acl`, no Read on the group),
//! UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID.

use std::time::Instant;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::leave_group::{LeaveGroupRequest, LeaveGroupResponse, MemberResponse};

use crate::cluster::Cluster;
use crate::handler::RequestContext;
use crate::security::acl::{AclOperation, ResourceType};

/// The first version listing several members.
const FIRST_BATCHED_VERSION: i16 = 3;

/// Answers LeaveGroup.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    version: i16,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    if !context
        .access(cluster)
        .allows(AclOperation::Read, ResourceType::Group, &request.group_id)
    {
        return LeaveGroupResponse {
            error_code: ErrorCode::GroupAuthorizationFailed.code(),
            ..Default::default()
        };
    }
    let leaving: Vec<(String, Option<String>)> = if version < FIRST_BATCHED_VERSION {
        vec![(request.member_id, None)]
    } else {
        request
            .members
            .into_iter()
            .map(|member| (member.member_id, member.group_instance_id))
            .collect()
    };
    let errors = match cluster
        .groups()
        .leave(Instant::now(), &request.group_id, &leaving)
    {
        Ok(errors) => errors,
        Err(error) => {
            return LeaveGroupResponse {
                error_code: error.code(),
                ..Default::default()
            };
        }
    };
    if version < FIRST_BATCHED_VERSION {
        let error = errors.first().copied().unwrap_or(ErrorCode::None);
        return LeaveGroupResponse {
            error_code: error.code(),
            ..Default::default()
        };
    }
    let members = leaving
        .into_iter()
        .zip(errors)
        .map(|((member_id, group_instance_id), error)| MemberResponse {
            member_id,
            group_instance_id,
            error_code: error.code(),
        })
        .collect();
    LeaveGroupResponse {
        members,
        ..Default::default()
    }
}
