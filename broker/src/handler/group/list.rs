//! ListGroups (key 16): every group, optionally filtered by state (v4+).
//!
//! Versions 0-4. State names are Kafka's; the filter matches them case-insensitively.

use riffle_protocol::api::list_groups::{ListGroupsRequest, ListGroupsResponse, ListedGroup};

use crate::cluster::Cluster;
use crate::handler::RequestContext;

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
    let groups = cluster
        .groups()
        .list_groups()
        .into_iter()
        .filter(|group| wanted(group.state.name()))
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
