//! DescribeGroups (key 15): a group's state, protocol and members with their
//! subscriptions and assignments.
//!
//! Versions 0-5. An unknown group is reported in state Dead with no error, as Kafka does
//! for these versions. With `--authorizer acl` a group the principal may not describe
//! answers GROUP_AUTHORIZATION_FAILED; asked for (v3+), a described group's authorized
//! operations are reported.

use bytes::Bytes;
use riffle_protocol::ErrorCode;
use riffle_protocol::api::describe_groups::{
    DescribeGroupsRequest, DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
};

use crate::cluster::Cluster;
use crate::handler::RequestContext;
use crate::security::acl::{AclOperation, ResourceType};

/// Answers DescribeGroups.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let access = context.access(cluster);
    let include_operations = request.include_authorized_operations;
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            if !access.allows(AclOperation::Describe, ResourceType::Group, &group_id) {
                return DescribedGroup {
                    error_code: ErrorCode::GroupAuthorizationFailed.code(),
                    group_id,
                    ..Default::default()
                };
            }
            let mut described = describe(cluster, group_id);
            if include_operations && described.error_code == ErrorCode::None.code() {
                described.authorized_operations =
                    access.authorized_operations(ResourceType::Group, &described.group_id);
            }
            described
        })
        .collect();
    DescribeGroupsResponse {
        groups,
        ..Default::default()
    }
}

/// One group as the coordinator knows it; an unknown one in state Dead.
fn describe(cluster: &Cluster, group_id: String) -> DescribedGroup {
    match cluster.groups().describe_group(&group_id) {
        Some(group) => DescribedGroup {
            error_code: ErrorCode::None.code(),
            group_id,
            group_state: group.state.name().to_string(),
            protocol_type: group.protocol_type,
            protocol_data: group.protocol_name,
            members: group
                .members
                .into_iter()
                .map(|member| DescribedGroupMember {
                    member_id: member.member_id,
                    group_instance_id: member.group_instance_id,
                    client_id: member.client_id,
                    client_host: member.client_host,
                    member_metadata: Bytes::from(member.metadata),
                    member_assignment: Bytes::from(member.assignment),
                })
                .collect(),
            ..Default::default()
        },
        None => DescribedGroup {
            group_id,
            group_state: "Dead".into(),
            ..Default::default()
        },
    }
}
