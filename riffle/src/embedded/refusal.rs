//! A handler's refusal as the runner's error. When the authorizer refused, the error (and a
//! warning in the log) names the principal the topology runs as, so an operator sees which
//! ACL is missing: co-located topologies are checked like any client (`--processor-principal`).

use riffle_processor::runtime::BackendError;
use riffle_protocol::ErrorCode;
use tracing::warn;

use riffle_server::handler::RequestContext;

/// The error for `operation` answered `code`.
pub fn refused(context: &RequestContext, operation: &str, code: i16) -> BackendError {
    let known = ErrorCode::from_code(code);
    let name = known.map_or_else(|| code.to_string(), |known| known.to_string());
    let authorization = matches!(
        known,
        Some(
            ErrorCode::TopicAuthorizationFailed
                | ErrorCode::GroupAuthorizationFailed
                | ErrorCode::ClusterAuthorizationFailed
                | ErrorCode::TransactionalIdAuthorizationFailed
        )
    );
    if !authorization {
        return BackendError::new(operation, name);
    }
    let principal = &context.principal;
    warn!(
        %principal,
        operation,
        code = %name,
        "the topology's principal is not authorized; grant it ACLs (riffle acls add) or run it as another principal (--processor-principal)"
    );
    BackendError::new(
        operation,
        format!("{name}: the topology runs as {principal}, which the ACLs do not allow this"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use riffle_server::testing::{context_of, test_cluster};

    #[test]
    fn an_authorization_refusal_names_the_principal() {
        // Authorization codes name the topology's principal; other codes are passed on.
        let (_dir, cluster) = test_cluster();
        let context = context_of(&cluster, "User:streams");
        let code = ErrorCode::GroupAuthorizationFailed.code();
        let error = refused(&context, "join group g", code);
        assert!(error.message.contains("User:streams"), "{}", error.message);
        let other = refused(&context, "join group g", ErrorCode::InvalidGroupId.code());
        assert!(
            other.message.starts_with("INVALID_GROUP_ID"),
            "{}",
            other.message
        );
        assert!(!other.message.contains("User:streams"));
    }
}
