//! ListGroups (key 16): every group, optionally filtered by state (v4+).
//!
//! Versions 0-4. State names are Kafka's; the filter matches them case-insensitively.
//! With `--authorizer acl`, a principal without Describe on the cluster sees only the
//! groups it may describe.

use riffle_protocol::api::list_groups::{ListGroupsRequest, ListGroupsResponse, ListedGroup};

use crate::cluster::Cluster;
use crate::handler::RequestContext;
use crate::security::acl::{AclOperation, CLUSTER_NAME, ResourceType};

/// Answers ListGroups.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    let wanted = |state: &str| {
        request.states_filter.is_empty()
            || request
                .states_filter
                .iter()
                .any(|filter| filter.eq_ignore_ascii_case(state))
    };
    let access = context.access(cluster);
    // Describe on the cluster lists every group (Kafka keeps this for compatibility);
    // otherwise only the groups the principal may describe.
    let every_group = access.filters(AclOperation::Describe, ResourceType::Cluster, CLUSTER_NAME);
    let groups = cluster
        .groups()
        .list_groups()
        .into_iter()
        .filter(|group| wanted(group.state.name()))
        .filter(|group| {
            every_group
                || access.filters(AclOperation::Describe, ResourceType::Group, &group.group_id)
        })
        .map(|group| ListedGroup {
            group_id: group.group_id,
            protocol_type: group.protocol_type,
            group_state: group.state.name().to_string(),
            ..Default::default()
        })
        .collect();
    ListGroupsResponse {
        groups,
        ..Default::default()
    }
}
