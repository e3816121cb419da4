//! DeleteAcls (key 31): deletes every ACL that one of the filters selects.
//!
//! Versions 0-3: v1 adds the pattern type filter (v0 deletes literal ACLs only), v2 is the
//! first flexible version, v3 changes nothing on the wire. The caller needs Alter on the
//! cluster. Filters are DescribeAcls' (see there); each result lists the ACLs its filter
//! selected, so an ACL two filters select appears in both. The deletions of the whole
//! request are one metadata-log event, fsynced before the answer.
//!
//! Errors per filter: CLUSTER_AUTHORIZATION_FAILED and SECURITY_DISABLED (every filter),
//! INVALID_REQUEST (an unknown code in that filter), KAFKA_STORAGE_ERROR.

use riffle_protocol::ErrorCode;
use riffle_protocol::api::delete_acls::{
    DeleteAclsFilter, DeleteAclsFilterResult, DeleteAclsMatchingAcl, DeleteAclsRequest,
    DeleteAclsResponse,
};

use super::create_acls::store_error_code;
use crate::cluster::{AclStoreError, Cluster};
use crate::handler::RequestContext;
use crate::security::acl::{AclBinding, AclFilter, AclFilterFields, AclOperation, InvalidAcl};

/// Answers DeleteAcls: one result per filter, in request order.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let count = request.filters.len();
    if !context.access(cluster).allows_cluster(AclOperation::Alter) {
        return every_result(count, ErrorCode::ClusterAuthorizationFailed, None);
    }
    if cluster.authorizer().is_none() {
        let message = AclStoreError::SecurityDisabled.to_string();
        return every_result(count, ErrorCode::SecurityDisabled, Some(message));
    }
    let parsed: Vec<Result<AclFilter, InvalidAcl>> =
        request.filters.iter().map(filter_of).collect();
    let valid: Vec<AclFilter> = parsed.iter().flatten().cloned().collect();
    let mut deleted = match cluster.delete_acls(&valid) {
        Ok(deleted) => deleted.into_iter(),
        Err(error) => {
            return every_result(count, store_error_code(&error), Some(error.to_string()));
        }
    };
    let filter_results = parsed
        .into_iter()
        .map(|parsed| match parsed {
            Err(invalid) => failed(ErrorCode::InvalidRequest, Some(invalid.0)),
            // `delete_acls` answers each valid filter, in order.
            Ok(_) => matched(deleted.next().unwrap_or_default()),
        })
        .collect();
    DeleteAclsResponse {
        throttle_time_ms: 0,
        filter_results,
    }
}

fn filter_of(filter: &DeleteAclsFilter) -> Result<AclFilter, InvalidAcl> {
    AclFilter::from_fields(&AclFilterFields {
        resource_type: filter.resource_type_filter,
        resource_name: filter.resource_name_filter.as_deref(),
        pattern_type: filter.pattern_type_filter,
        principal: filter.principal_filter.as_deref(),
        host: filter.host_filter.as_deref(),
        operation: filter.operation,
        permission: filter.permission_type,
    })
}

fn matched(acls: Vec<AclBinding>) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult {
        error_code: ErrorCode::None.code(),
        error_message: None,
        matching_acls: acls
            .into_iter()
            .map(|binding| DeleteAclsMatchingAcl {
                error_code: ErrorCode::None.code(),
                error_message: None,
                resource_type: binding.pattern.resource_type.code(),
                resource_name: binding.pattern.name,
                pattern_type: binding.pattern.pattern_type.code(),
                principal: binding.entry.principal.to_string(),
                host: binding.entry.host.to_string(),
                operation: binding.entry.operation.code(),
                permission_type: binding.entry.permission.code(),
            })
            .collect(),
    }
}

fn failed(code: ErrorCode, message: Option<String>) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult {
        error_code: code.code(),
        error_message: message,
        matching_acls: Vec::new(),
    }
}

fn every_result(count: usize, code: ErrorCode, message: Option<String>) -> DeleteAclsResponse {
    DeleteAclsResponse {
        throttle_time_ms: 0,
        filter_results: vec![failed(code, message); count],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{acl_cluster, allow, context_of};

    fn by_principal(principal: Option<&str>, pattern_type: i8) -> DeleteAclsFilter {
        DeleteAclsFilter {
            resource_type_filter: 1,
            resource_name_filter: None,
            pattern_type_filter: pattern_type,
            principal_filter: principal.map(str::to_string),
            host_filter: None,
            operation: 1,
            permission_type: 1,
        }
    }

    #[test]
    fn each_filter_answers_what_it_deleted_and_a_bad_one_fails_alone() {
        // Two filters selecting overlapping ACLs each list what they selected; a filter with
        // an unknown code gets INVALID_REQUEST and the others still delete; the ACLs are gone.
        use AclOperation::*;
        let (_dir, cluster) = acl_cluster(&["--super-users", "User:admin"]);
        allow(&cluster, "topic:literal:t", "User:alice", Read);
        allow(&cluster, "topic:prefixed:t", "User:bob", Write);
        allow(&cluster, "group:literal:g", "User:carol", Read);
        let request = DeleteAclsRequest {
            filters: vec![
                by_principal(Some("User:alice"), 1),
                by_principal(None, 3),
                by_principal(None, 0),
            ],
        };
        let admin = context_of(&cluster, "User:admin");
        let response = handle(&cluster, &admin, 3, request);
        let results: Vec<(i16, Vec<&str>)> = response
            .filter_results
            .iter()
            .map(|result| {
                let principals = result
                    .matching_acls
                    .iter()
                    .map(|acl| acl.principal.as_str());
                (result.error_code, principals.collect())
            })
            .collect();
        let invalid = ErrorCode::InvalidRequest.code();
        assert_eq!(
            results,
            vec![
                (0, vec!["User:alice"]),
                (0, vec!["User:alice", "User:carol"]),
                (invalid, vec![]),
            ]
        );
        let left = cluster.authorizer().expect("on").acls(&AclFilter::any());
        let left: Vec<String> = left
            .iter()
            .map(|acl| acl.entry.principal.to_string())
            .collect();
        assert_eq!(left, vec!["User:bob"]);

        let alice = context_of(&cluster, "User:alice");
        let denied = handle(
            &cluster,
            &alice,
            3,
            DeleteAclsRequest {
                filters: vec![by_principal(None, 1)],
            },
        );
        let code = denied.filter_results[0].error_code;
        assert_eq!(code, ErrorCode::ClusterAuthorizationFailed.code());
    }
}
