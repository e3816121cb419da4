//! DescribeAcls (key 29): the ACLs one filter selects, grouped by resource pattern.
//!
//! Versions 0-3: v1 adds the pattern type filter (v0 describes literal ACLs only), v2 is
//! the first flexible version, v3 changes nothing on the wire. The caller needs Describe on
//! the cluster. A filter's name, principal and host may be null (any); its codes may be
//! ANY (1), and the pattern type MATCH (2): every pattern that covers the named resource.
//!
//! Errors (the whole request): CLUSTER_AUTHORIZATION_FAILED, SECURITY_DISABLED (without
//! `--authorizer acl`), INVALID_REQUEST (an unknown code in the filter).

use riffle_protocol::ErrorCode;
use riffle_protocol::api::describe_acls::{
    AclDescription, DescribeAclsRequest, DescribeAclsResource, DescribeAclsResponse,
};

use crate::cluster::{AclStoreError, Cluster};
use crate::handler::RequestContext;
use crate::security::acl::{AclBinding, AclFilter, AclFilterFields, AclOperation};

/// Answers DescribeAcls.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: DescribeAclsRequest,
) -> DescribeAclsResponse {
    if !context
        .access(cluster)
        .allows_cluster(AclOperation::Describe)
    {
        return refused(ErrorCode::ClusterAuthorizationFailed, None);
    }
    let Some(authorizer) = cluster.authorizer() else {
        let message = AclStoreError::SecurityDisabled.to_string();
        return refused(ErrorCode::SecurityDisabled, Some(message));
    };
    let filter = AclFilter::from_fields(&AclFilterFields {
        resource_type: request.resource_type_filter,
        resource_name: request.resource_name_filter.as_deref(),
        pattern_type: request.pattern_type_filter,
        principal: request.principal_filter.as_deref(),
        host: request.host_filter.as_deref(),
        operation: request.operation,
        permission: request.permission_type,
    });
    match filter {
        Ok(filter) => DescribeAclsResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::None.code(),
            error_message: None,
            resources: by_resource(authorizer.acls(&filter)),
        },
        Err(invalid) => refused(ErrorCode::InvalidRequest, Some(invalid.0)),
    }
}

/// Groups sorted ACLs by their pattern: ACLs sort by pattern first, so each pattern's
/// entries are adjacent.
fn by_resource(acls: Vec<AclBinding>) -> Vec<DescribeAclsResource> {
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    let mut last_pattern = None;
    for binding in acls {
        let entry = &binding.entry;
        let description = AclDescription {
            principal: entry.principal.to_string(),
            host: entry.host.to_string(),
            operation: entry.operation.code(),
            permission_type: entry.permission.code(),
        };
        match resources.last_mut() {
            Some(resource) if last_pattern.as_ref() == Some(&binding.pattern) => {
                resource.acls.push(description);
            }
            _ => {
                let pattern = &binding.pattern;
                resources.push(DescribeAclsResource {
                    resource_type: pattern.resource_type.code(),
                    resource_name: pattern.name.clone(),
                    pattern_type: pattern.pattern_type.code(),
                    acls: vec![description],
                });
                last_pattern = Some(binding.pattern);
            }
        }
    }
    resources
}

fn refused(code: ErrorCode, message: Option<String>) -> DescribeAclsResponse {
    DescribeAclsResponse {
        throttle_time_ms: 0,
        error_code: code.code(),
        error_message: message,
        resources: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{acl_cluster, allow, context_of, test_cluster};

    fn filter(name: Option<&str>, pattern_type: i8) -> DescribeAclsRequest {
        DescribeAclsRequest {
            resource_type_filter: 1,
            resource_name_filter: name.map(str::to_string),
            pattern_type_filter: pattern_type,
            principal_filter: None,
            host_filter: None,
            operation: 1,
            permission_type: 1,
        }
    }

    /// (resource name, principals) of each resource described.
    fn described(response: &DescribeAclsResponse) -> Vec<(String, Vec<String>)> {
        response
            .resources
            .iter()
            .map(|resource| {
                let principals = resource.acls.iter().map(|acl| acl.principal.clone());
                (resource.resource_name.clone(), principals.collect())
            })
            .collect()
    }

    #[test]
    fn filters_select_by_name_and_pattern_and_group_by_resource() {
        // Proves DescribeAcls' filters: any, an exact literal name, MATCH (the literal name,
        // the wildcard and covering prefixes), and a bad code refused with INVALID_REQUEST.
        use AclOperation::*;
        let (_dir, cluster) = acl_cluster(&["--super-users", "User:admin"]);
        allow(&cluster, "topic:literal:orders", "User:alice", Read);
        allow(&cluster, "topic:literal:orders", "User:bob", Write);
        allow(&cluster, "topic:literal:*", "User:carol", Describe);
        allow(&cluster, "topic:prefixed:ord", "User:dave", Read);
        allow(&cluster, "group:literal:orders", "User:alice", Read);
        let admin = context_of(&cluster, "User:admin");
        let all = handle(&cluster, &admin, 3, filter(None, 1));
        assert_eq!(all.error_code, 0);
        assert_eq!(all.resources.len(), 4);
        let names = |response: &DescribeAclsResponse| -> Vec<String> {
            described(response)
                .into_iter()
                .map(|(name, _)| name)
                .collect()
        };
        let literal = handle(&cluster, &admin, 3, filter(Some("orders"), 3));
        assert_eq!(
            described(&literal),
            vec![
                (
                    "orders".into(),
                    vec!["User:alice".into(), "User:bob".into()]
                ),
                ("orders".into(), vec!["User:alice".into()]),
            ]
        );
        let matching = handle(&cluster, &admin, 3, filter(Some("orders"), 2));
        assert_eq!(names(&matching), vec!["*", "ord", "orders", "orders"]);
        let bad = handle(&cluster, &admin, 3, filter(None, 0));
        assert_eq!(bad.error_code, ErrorCode::InvalidRequest.code());
    }

    #[test]
    fn describing_needs_describe_on_the_cluster_and_an_authorizer() {
        // Without an authorizer: SECURITY_DISABLED; without Describe on the cluster:
        // CLUSTER_AUTHORIZATION_FAILED; with Alter on it (which implies Describe): allowed.
        let (_dir, plain) = test_cluster();
        let anyone = context_of(&plain, "User:alice");
        let disabled = handle(&plain, &anyone, 1, filter(None, 1));
        assert_eq!(disabled.error_code, ErrorCode::SecurityDisabled.code());

        let (_dir, cluster) = acl_cluster(&[]);
        let alice = context_of(&cluster, "User:alice");
        let denied = handle(&cluster, &alice, 1, filter(None, 1));
        assert_eq!(
            denied.error_code,
            ErrorCode::ClusterAuthorizationFailed.code()
        );
        allow(
            &cluster,
            "cluster:literal:kafka-cluster",
            "User:alice",
            AclOperation::Alter,
        );
        let allowed = handle(&cluster, &alice, 1, filter(None, 1));
        assert_eq!(allowed.error_code, 0);
        assert_eq!(allowed.resources.len(), 1);
    }
}
