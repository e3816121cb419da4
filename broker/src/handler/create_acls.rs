//! CreateAcls (key 30): stores ACLs, which the authorizer applies from the next check on.
//!
//! Versions 0-3: v1 adds the pattern type (v0 creates literal ACLs only), v2 is the first
//! flexible version, v3 changes nothing on the wire. The caller needs Alter on the cluster.
//! Every valid ACL of the request is recorded in one metadata-log event, fsynced before the
//! answer; creating an ACL that exists succeeds and changes nothing.
//!
//! Errors per ACL: CLUSTER_AUTHORIZATION_FAILED (every ACL, when the caller may not alter
//! the cluster), SECURITY_DISABLED (every ACL, without `--authorizer acl`),
//! INVALID_REQUEST (a bad field: see `AclBinding::from_fields`), KAFKA_STORAGE_ERROR.

use riffle_protocol::ErrorCode;
use riffle_protocol::api::create_acls::{
    AclCreation, AclCreationResult, CreateAclsRequest, CreateAclsResponse,
};

use crate::cluster::{AclStoreError, Cluster};
use crate::handler::RequestContext;
use crate::security::acl::{AclBinding, AclFields, AclOperation, InvalidAcl};

/// Answers CreateAcls: one result per creation, in request order.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: CreateAclsRequest,
) -> CreateAclsResponse {
    let count = request.creations.len();
    if !context.access(cluster).allows_cluster(AclOperation::Alter) {
        return every_result(count, ErrorCode::ClusterAuthorizationFailed, None);
    }
    if cluster.authorizer().is_none() {
        let message = AclStoreError::SecurityDisabled.to_string();
        return every_result(count, ErrorCode::SecurityDisabled, Some(message));
    }
    let parsed: Vec<Result<AclBinding, InvalidAcl>> =
        request.creations.iter().map(binding_of).collect();
    let valid: Vec<AclBinding> = parsed.iter().flatten().cloned().collect();
    let stored = cluster.create_acls(&valid);
    let results = parsed
        .into_iter()
        .map(|parsed| match (parsed, &stored) {
            (Err(invalid), _) => result(ErrorCode::InvalidRequest, Some(invalid.0)),
            (Ok(_), Ok(())) => result(ErrorCode::None, None),
            (Ok(_), Err(error)) => result(store_error_code(error), Some(error.to_string())),
        })
        .collect();
    CreateAclsResponse {
        throttle_time_ms: 0,
        results,
    }
}

fn binding_of(creation: &AclCreation) -> Result<AclBinding, InvalidAcl> {
    AclBinding::from_fields(&AclFields {
        resource_type: creation.resource_type,
        resource_name: &creation.resource_name,
        pattern_type: creation.resource_pattern_type,
        principal: &creation.principal,
        host: &creation.host,
        operation: creation.operation,
        permission: creation.permission_type,
    })
}

/// The code for an ACL change that could not be made.
pub(crate) fn store_error_code(error: &AclStoreError) -> ErrorCode {
    match error {
        AclStoreError::SecurityDisabled => ErrorCode::SecurityDisabled,
        AclStoreError::MetadataLog(_) => ErrorCode::KafkaStorageError,
    }
}

fn result(code: ErrorCode, message: Option<String>) -> AclCreationResult {
    AclCreationResult {
        error_code: code.code(),
        error_message: message,
    }
}

fn every_result(count: usize, code: ErrorCode, message: Option<String>) -> CreateAclsResponse {
    CreateAclsResponse {
        throttle_time_ms: 0,
        results: vec![result(code, message); count],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{acl_cluster, context_of, test_cluster};

    fn creation(principal: &str, name: &str, operation: i8) -> AclCreation {
        AclCreation {
            resource_type: 2,
            resource_name: name.into(),
            resource_pattern_type: 3,
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission_type: 3,
        }
    }

    fn codes(response: &CreateAclsResponse) -> Vec<i16> {
        response
            .results
            .iter()
            .map(|result| result.error_code)
            .collect()
    }

    #[test]
    fn creations_need_alter_on_the_cluster_and_an_authorizer() {
        // Without an authorizer every creation is SECURITY_DISABLED; with one, a principal
        // without Alter on the cluster gets CLUSTER_AUTHORIZATION_FAILED for each and a
        // super user succeeds, one bad creation failing alone with INVALID_REQUEST.
        let request = || CreateAclsRequest {
            creations: vec![creation("User:alice", "t", 3), creation("alice", "t", 3)],
        };
        let (_dir, plain) = test_cluster();
        let context = context_of(&plain, "User:admin");
        let disabled = handle(&plain, &context, 3, request());
        let security_disabled = ErrorCode::SecurityDisabled.code();
        assert_eq!(codes(&disabled), vec![security_disabled; 2]);

        let (_dir, cluster) = acl_cluster(&["--super-users", "User:admin"]);
        let alice = context_of(&cluster, "User:alice");
        let denied = handle(&cluster, &alice, 3, request());
        let cluster_denied = ErrorCode::ClusterAuthorizationFailed.code();
        assert_eq!(codes(&denied), vec![cluster_denied; 2]);
        let admin = context_of(&cluster, "User:admin");
        let created = handle(&cluster, &admin, 3, request());
        assert_eq!(codes(&created), vec![0, ErrorCode::InvalidRequest.code()]);
        assert!(created.results[0].error_message.is_none());
        let authorizer = cluster.authorizer().expect("on");
        assert_eq!(authorizer.acl_count(), 1);
        let again = handle(&cluster, &admin, 3, request());
        assert_eq!(again.results[0].error_code, 0);
        assert_eq!(authorizer.acl_count(), 1);
    }
}
