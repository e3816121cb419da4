//! DescribeUserScramCredentials (key 50, KIP-554): each user's SCRAM mechanisms and
//! iterations, never a salt or key.
//!
//! Version 0 (flexible), all there is. The caller needs Describe on the cluster. Null or
//! no users means every user with a credential, by name; named users are answered in the
//! order first named.
//!
//! Errors: CLUSTER_AUTHORIZATION_FAILED for the whole request (and each named user), as
//! Kafka answers it; per user, RESOURCE_NOT_FOUND for a user without credentials and
//! DUPLICATE_RESOURCE for a user named twice.

use std::collections::HashMap;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::describe_user_scram_credentials::{
    CredentialInfo, DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
    DescribeUserScramCredentialsResult,
};

use crate::cluster::Cluster;
use crate::handler::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::credentials::{CredentialStore, UserCredentials};

/// Kafka's message for a user that has no credential.
const UNKNOWN_USER: &str = "Attempt to describe a user credential that does not exist";
/// Kafka's message for a user named twice.
const DUPLICATE_USER: &str =
    "Cannot describe SCRAM credentials for the same user twice in a single request";
/// Kafka's message for CLUSTER_AUTHORIZATION_FAILED.
pub(crate) const CLUSTER_DENIED: &str = "Cluster authorization failed.";

/// Answers DescribeUserScramCredentials.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let named: Vec<String> = request
        .users
        .unwrap_or_default()
        .into_iter()
        .map(|user| user.name)
        .collect();
    if !context
        .access(cluster)
        .allows_cluster(AclOperation::Describe)
    {
        return denied(named);
    }
    let store = cluster.credentials();
    let results = match named.is_empty() {
        true => store.users().iter().map(described).collect(),
        false => describe_named(store, named),
    };
    DescribeUserScramCredentialsResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None.code(),
        error_message: None,
        results,
    }
}

/// One result per distinct name, in the order first named.
fn describe_named(
    store: &CredentialStore,
    named: Vec<String>,
) -> Vec<DescribeUserScramCredentialsResult> {
    let mut distinct: Vec<(String, bool)> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for name in named {
        match position.get(&name) {
            Some(&index) => distinct[index].1 = true,
            None => {
                position.insert(name.clone(), distinct.len());
                distinct.push((name, false));
            }
        }
    }
    distinct
        .into_iter()
        .map(|(user, named_twice)| match named_twice {
            true => failed(user, ErrorCode::DuplicateResource, DUPLICATE_USER),
            false => match store.describe(&user) {
                Some(credentials) => described(&credentials),
                None => failed(user, ErrorCode::ResourceNotFound, UNKNOWN_USER),
            },
        })
        .collect()
}

fn described(credentials: &UserCredentials) -> DescribeUserScramCredentialsResult {
    DescribeUserScramCredentialsResult {
        user: credentials.user.clone(),
        error_code: ErrorCode::None.code(),
        error_message: None,
        credential_infos: credentials
            .mechanisms
            .iter()
            .map(|(mechanism, iterations)| CredentialInfo {
                mechanism: mechanism.wire_type(),
                // Stored iterations passed `check_iterations`, so they fit.
                iterations: i32::try_from(*iterations).unwrap_or(i32::MAX),
            })
            .collect(),
    }
}

fn failed(user: String, code: ErrorCode, reason: &str) -> DescribeUserScramCredentialsResult {
    DescribeUserScramCredentialsResult {
        error_message: Some(format!("{reason}: {user}")),
        user,
        error_code: code.code(),
        credential_infos: Vec::new(),
    }
}

/// Kafka's answer to a caller without Describe on the cluster: the error on the response
/// and on one result per named user (Kafka leaves their names empty; we keep them).
fn denied(named: Vec<String>) -> DescribeUserScramCredentialsResponse {
    let code = ErrorCode::ClusterAuthorizationFailed.code();
    DescribeUserScramCredentialsResponse {
        throttle_time_ms: 0,
        error_code: code,
        error_message: Some(CLUSTER_DENIED.to_string()),
        results: named
            .into_iter()
            .map(|user| DescribeUserScramCredentialsResult {
                user,
                error_code: code,
                error_message: Some(CLUSTER_DENIED.to_string()),
                credential_infos: Vec::new(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use riffle_protocol::api::describe_user_scram_credentials::UserName;

    use super::*;
    use crate::security::acl::AclOperation;
    use crate::security::credentials::{CredentialChange, ScramCredential};
    use crate::security::scram::ScramMechanism;
    use crate::testing::{acl_cluster, allow, context_of, test_cluster};

    fn add(cluster: &Cluster, user: &str, mechanism: ScramMechanism, iterations: u32) {
        let credential = ScramCredential::from_password(mechanism, "pw", vec![1; 16], iterations);
        let change = CredentialChange::Set {
            user: user.into(),
            mechanism,
            credential,
        };
        cluster
            .alter_scram_credentials(vec![change])
            .expect("store the credential");
    }

    fn request(users: Option<&[&str]>) -> DescribeUserScramCredentialsRequest {
        DescribeUserScramCredentialsRequest {
            users: users.map(|users| {
                users
                    .iter()
                    .map(|name| UserName {
                        name: (*name).into(),
                    })
                    .collect()
            }),
        }
    }

    /// A result as (user, error code, [(mechanism, iterations)]).
    type Summary<'a> = (&'a str, i16, Vec<(i8, i32)>);

    fn summary(response: &DescribeUserScramCredentialsResponse) -> Vec<Summary<'_>> {
        response
            .results
            .iter()
            .map(|result| {
                let infos = result
                    .credential_infos
                    .iter()
                    .map(|info| (info.mechanism, info.iterations))
                    .collect();
                (result.user.as_str(), result.error_code, infos)
            })
            .collect()
    }

    #[test]
    fn null_or_no_users_describe_every_user_by_name() {
        // Both forms of "all users" list each user once, mechanisms in Kafka's order with
        // their iterations.
        let (_dir, cluster) = test_cluster();
        add(&cluster, "bob", ScramMechanism::Sha256, 4096);
        add(&cluster, "alice", ScramMechanism::Sha512, 8192);
        add(&cluster, "alice", ScramMechanism::Sha256, 4096);
        let context = RequestContext::internal(&cluster);
        let expected = vec![
            ("alice", 0, vec![(1, 4096), (2, 8192)]),
            ("bob", 0, vec![(1, 4096)]),
        ];
        for users in [None, Some(&[][..])] {
            let response = handle(&cluster, &context, 0, request(users));
            assert_eq!(response.error_code, 0);
            assert_eq!(summary(&response), expected);
        }
    }

    #[test]
    fn named_users_are_found_missing_or_duplicated() {
        // A known user gets its credentials, an unknown one RESOURCE_NOT_FOUND, and a name
        // given twice one DUPLICATE_RESOURCE result, in the order first named.
        let (_dir, cluster) = test_cluster();
        add(&cluster, "alice", ScramMechanism::Sha512, 4096);
        add(&cluster, "bob", ScramMechanism::Sha256, 4096);
        let context = RequestContext::internal(&cluster);
        let users = ["carol", "alice", "bob", "carol", "bob", "bob"];
        let response = handle(&cluster, &context, 0, request(Some(&users)));
        assert_eq!(response.error_code, 0);
        let not_found = ErrorCode::ResourceNotFound.code();
        let duplicate = ErrorCode::DuplicateResource.code();
        assert_eq!(
            summary(&response),
            vec![
                ("carol", duplicate, vec![]),
                ("alice", 0, vec![(2, 4096)]),
                ("bob", duplicate, vec![]),
            ]
        );
        let single = handle(&cluster, &context, 0, request(Some(&["dave"])));
        assert_eq!(summary(&single), vec![("dave", not_found, vec![])]);
        let message = single.results[0].error_message.as_deref().unwrap_or("");
        assert!(message.contains("does not exist"), "{message}");
        assert!(response.results[1].error_message.is_none());
    }

    #[test]
    fn describing_needs_describe_on_the_cluster() {
        // Without Describe on the cluster the response and each named user carry
        // CLUSTER_AUTHORIZATION_FAILED and nothing is shown; with it the users are listed.
        let (_dir, cluster) = acl_cluster(&[]);
        add(&cluster, "alice", ScramMechanism::Sha512, 4096);
        let alice = context_of(&cluster, "User:alice");
        let denied = handle(&cluster, &alice, 0, request(Some(&["alice"])));
        let code = ErrorCode::ClusterAuthorizationFailed.code();
        assert_eq!(denied.error_code, code);
        assert_eq!(summary(&denied), vec![("alice", code, vec![])]);
        let everyone = handle(&cluster, &alice, 0, request(None));
        assert_eq!(everyone.error_code, code);
        assert!(everyone.results.is_empty());

        allow(
            &cluster,
            "cluster:literal:kafka-cluster",
            "User:alice",
            AclOperation::Describe,
        );
        let allowed = handle(&cluster, &alice, 0, request(None));
        assert_eq!(allowed.error_code, 0);
        assert_eq!(summary(&allowed), vec![("alice", 0, vec![(2, 4096)])]);
    }
}
