//! ListGroups (key 16): every group, optionally filtered by state (v4+) and type (v5+).
//!
//! Versions 0-5. State names are Kafka's; the filter matches them case-insensitively.
//! Every group here speaks the classic protocol (JoinGroup/SyncGroup), so each is of type
//! `classic` (v5, KIP-848's name for it); a filter without `classic` lists none.
//! With `--authorizer acl`, a principal without Describe on the cluster sees only the
//! groups it may describe.

use riffle_protocol::api::list_groups::{ListGroupsRequest, ListGroupsResponse, ListedGroup};

use crate::cluster::Cluster;
use crate::handler::RequestContext;
use crate::security::acl::{AclOperation, CLUSTER_NAME, ResourceType};

/// Kafka's name for a group of the classic protocol.
const CLASSIC_GROUP_TYPE: &str = "classic";

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
    let classic_wanted = request.types_filter.is_empty()
        || request
            .types_filter
            .iter()
            .any(|filter| filter.eq_ignore_ascii_case(CLASSIC_GROUP_TYPE));
    let access = context.access(cluster);
    // Describe on the cluster lists every group (Kafka keeps this for compatibility);
    // otherwise only the groups the principal may describe.
    let every_group = access.filters(AclOperation::Describe, ResourceType::Cluster, CLUSTER_NAME);
    let groups = cluster
        .groups()
        .list_groups()
        .into_iter()
        .filter(|group| classic_wanted && wanted(group.state.name()))
        .filter(|group| {
            every_group
                || access.filters(AclOperation::Describe, ResourceType::Group, &group.group_id)
        })
        .map(|group| ListedGroup {
            group_id: group.group_id,
            protocol_type: group.protocol_type,
            group_state: group.state.name().to_string(),
            group_type: CLASSIC_GROUP_TYPE.to_string(),
        })
        .collect();
    ListGroupsResponse {
        groups,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_cluster;

    fn listed(cluster: &Cluster, types_filter: &[&str]) -> Vec<(String, String)> {
        let request = ListGroupsRequest {
            states_filter: Vec::new(),
            types_filter: types_filter.iter().map(|name| name.to_string()).collect(),
        };
        handle(cluster, &RequestContext::internal(cluster), 5, request)
            .groups
            .into_iter()
            .map(|group| (group.group_id, group.group_type))
            .collect()
    }

    #[test]
    fn every_group_is_classic_and_the_type_filter_applies() {
        // A group made by an offset commit is listed as classic; filtering on another
        // type lists none.
        let (_dir, cluster) = test_cluster();
        let (errors, _) = cluster
            .groups()
            .commit_offsets("g", "", None, -1, Vec::new());
        assert!(errors.is_empty());
        let group = vec![("g".to_string(), "classic".to_string())];
        assert_eq!(listed(&cluster, &[]), group);
        assert_eq!(listed(&cluster, &["Classic"]), group);
        assert_eq!(listed(&cluster, &["consumer"]), Vec::new());
    }
}
