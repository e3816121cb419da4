//! AlterUserScramCredentials (key 51, KIP-554): adds, replaces and deletes users' SCRAM
//! credentials.
//!
//! Version 0 (flexible), all there is. The caller needs Alter on the cluster. An upsertion
//! carries the salt, the iterations and the password already salted by the client
//! (`Hi(password, salt, iterations)`); the broker derives StoredKey and ServerKey from it
//! and never sees the password. Every accepted change of the request is written to the
//! metadata log in one batch, fsynced before the answer, and applies from the next login.
//!
//! As Kafka's controller does, a request changes each user at most once: a user named again
//! (deleted twice, upserted twice, or both) gets DUPLICATE_RESOURCE and none of its changes
//! apply. One result per user, in the order first named.
//!
//! Errors per user: CLUSTER_AUTHORIZATION_FAILED (every user, when the caller may not alter
//! the cluster), UNACCEPTABLE_CREDENTIAL (an empty name, iterations outside 4096..=16384, a
//! bad salt or salted password), UNSUPPORTED_SASL_MECHANISM (a mechanism other than
//! SCRAM-SHA-256 and SCRAM-SHA-512), RESOURCE_NOT_FOUND (deleting a credential that does
//! not exist), DUPLICATE_RESOURCE, KAFKA_STORAGE_ERROR.

use std::collections::{BTreeSet, HashMap};

use riffle_protocol::ErrorCode;
use riffle_protocol::api::alter_user_scram_credentials::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    AlterUserScramCredentialsResult, ScramCredentialDeletion, ScramCredentialUpsertion,
};

use super::describe_user_scram_credentials::CLUSTER_DENIED;
use crate::cluster::Cluster;
use crate::handler::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::credentials::{CredentialChange, ScramCredential, check_user_name};
use crate::security::scram::ScramMechanism;

/// Kafka's message for a user changed twice in one request.
const DUPLICATE_USER: &str = "A user credential cannot be altered twice in the same request";
/// Kafka's message for deleting a credential that does not exist.
const UNKNOWN_CREDENTIAL: &str = "Attempt to delete a user credential that does not exist";

/// Why one user's change is not made: the code and message of its result.
type Refusal = (ErrorCode, String);

/// Answers AlterUserScramCredentials.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    if !context.access(cluster).allows_cluster(AclOperation::Alter) {
        return denied(&request);
    }
    let planned = plan(cluster, request);
    let changes: Vec<CredentialChange> = planned
        .iter()
        .filter_map(|(_, plan)| plan.as_ref().ok().cloned())
        .collect();
    let stored = match changes.is_empty() {
        true => Ok(Vec::new()),
        false => cluster.alter_scram_credentials(changes),
    };
    let results = planned
        .into_iter()
        .map(|(user, plan)| {
            let refusal = match (plan, &stored) {
                (Err(refusal), _) => Some(refusal),
                (Ok(_), Err(error)) => Some((ErrorCode::KafkaStorageError, error.to_string())),
                // Deleted by a concurrent request after `plan` looked.
                (Ok(_), Ok(missing)) if missing.contains(&user) => {
                    Some((ErrorCode::ResourceNotFound, UNKNOWN_CREDENTIAL.to_string()))
                }
                (Ok(_), Ok(_)) => None,
            };
            result(user, refusal)
        })
        .collect();
    AlterUserScramCredentialsResponse {
        throttle_time_ms: 0,
        results,
    }
}

/// Each user named in the request, in the order first named, with its checked change or
/// why it is refused.
fn plan(
    cluster: &Cluster,
    request: AlterUserScramCredentialsRequest,
) -> Vec<(String, Result<CredentialChange, Refusal>)> {
    let mut planned: Vec<(String, Result<CredentialChange, Refusal>)> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    let checked = request
        .deletions
        .iter()
        .map(|deletion| (deletion.name.clone(), check_deletion(cluster, deletion)))
        .chain(
            request
                .upsertions
                .iter()
                .map(|upsertion| (upsertion.name.clone(), check_upsertion(upsertion))),
        );
    for (user, change) in checked {
        match position.get(&user) {
            // A user already refused keeps its first reason, as in Kafka.
            Some(&index) => {
                if planned[index].1.is_ok() {
                    planned[index].1 = Err((ErrorCode::DuplicateResource, DUPLICATE_USER.into()));
                }
            }
            None => {
                position.insert(user.clone(), planned.len());
                planned.push((user, change));
            }
        }
    }
    planned
}

fn check_deletion(
    cluster: &Cluster,
    deletion: &ScramCredentialDeletion,
) -> Result<CredentialChange, Refusal> {
    let mechanism = check_user_and_mechanism(&deletion.name, deletion.mechanism)?;
    if !cluster.credentials().contains(&deletion.name, mechanism) {
        return Err((ErrorCode::ResourceNotFound, UNKNOWN_CREDENTIAL.into()));
    }
    Ok(CredentialChange::Delete {
        user: deletion.name.clone(),
        mechanism,
    })
}

fn check_upsertion(upsertion: &ScramCredentialUpsertion) -> Result<CredentialChange, Refusal> {
    let mechanism = check_user_and_mechanism(&upsertion.name, upsertion.mechanism)?;
    let credential = ScramCredential::from_client_salted_password(
        mechanism,
        &upsertion.salt,
        &upsertion.salted_password,
        i64::from(upsertion.iterations),
    )
    .map_err(|unacceptable| (ErrorCode::UnacceptableCredential, unacceptable.to_string()))?;
    Ok(CredentialChange::Set {
        user: upsertion.name.clone(),
        mechanism,
        credential,
    })
}

/// Kafka checks the name before the mechanism.
fn check_user_and_mechanism(user: &str, wire_type: i8) -> Result<ScramMechanism, Refusal> {
    check_user_name(user)
        .map_err(|unacceptable| (ErrorCode::UnacceptableCredential, unacceptable.to_string()))?;
    ScramMechanism::from_wire_type(wire_type).ok_or_else(|| {
        let message = format!(
            "unknown SCRAM mechanism {wire_type}: expected 1 (SCRAM-SHA-256) or 2 (SCRAM-SHA-512)"
        );
        (ErrorCode::UnsupportedSaslMechanism, message)
    })
}

fn result(user: String, refusal: Option<Refusal>) -> AlterUserScramCredentialsResult {
    let (code, message) = match refusal {
        Some((code, message)) => (code, Some(message)),
        None => (ErrorCode::None, None),
    };
    AlterUserScramCredentialsResult {
        user,
        error_code: code.code(),
        error_message: message,
    }
}

/// Kafka's answer to a caller without Alter on the cluster: one result per distinct user,
/// sorted by name.
fn denied(request: &AlterUserScramCredentialsRequest) -> AlterUserScramCredentialsResponse {
    let users: BTreeSet<&str> = request
        .deletions
        .iter()
        .map(|deletion| deletion.name.as_str())
        .chain(
            request
                .upsertions
                .iter()
                .map(|upsertion| upsertion.name.as_str()),
        )
        .collect();
    let refusal = || {
        Some((
            ErrorCode::ClusterAuthorizationFailed,
            CLUSTER_DENIED.to_string(),
        ))
    };
    AlterUserScramCredentialsResponse {
        throttle_time_ms: 0,
        results: users
            .into_iter()
            .map(|user| result(user.to_string(), refusal()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::testing::{acl_cluster, allow, context_of, open_test_cluster, test_cluster};

    const SHA_256: i8 = 1;
    const SHA_512: i8 = 2;

    fn upsertion(
        name: &str,
        mechanism: i8,
        password: &str,
        iterations: i32,
    ) -> ScramCredentialUpsertion {
        let salt = b"a salt of sixteen".to_vec();
        let rounds = u32::try_from(iterations.clamp(1, 16384)).unwrap_or(4096);
        let salted = ScramMechanism::from_wire_type(mechanism).map_or_else(
            || vec![0; 32],
            |known| known.salted_password(password.as_bytes(), &salt, rounds),
        );
        ScramCredentialUpsertion {
            name: name.into(),
            mechanism,
            iterations,
            salt: Bytes::from(salt),
            salted_password: Bytes::from(salted),
        }
    }

    fn deletion(name: &str, mechanism: i8) -> ScramCredentialDeletion {
        ScramCredentialDeletion {
            name: name.into(),
            mechanism,
        }
    }

    fn alter(
        cluster: &Cluster,
        deletions: Vec<ScramCredentialDeletion>,
        upsertions: Vec<ScramCredentialUpsertion>,
    ) -> Vec<(String, i16)> {
        let request = AlterUserScramCredentialsRequest {
            deletions,
            upsertions,
        };
        let context = RequestContext::internal(cluster);
        summary(&handle(cluster, &context, 0, request))
    }

    fn summary(response: &AlterUserScramCredentialsResponse) -> Vec<(String, i16)> {
        response
            .results
            .iter()
            .map(|result| (result.user.clone(), result.error_code))
            .collect()
    }

    fn ok(user: &str) -> (String, i16) {
        (user.to_string(), 0)
    }

    fn refused(user: &str, code: ErrorCode) -> (String, i16) {
        (user.to_string(), code.code())
    }

    #[test]
    fn an_upsertion_stores_keys_the_password_logs_in_with_and_survives_a_restart() {
        // The stored credential is the one the password itself derives: a client salting
        // the password gets the same StoredKey and ServerKey. A restart replays it.
        let (dir, cluster) = test_cluster();
        let results = alter(
            &cluster,
            vec![],
            vec![upsertion("carol", SHA_256, "secret", 4096)],
        );
        assert_eq!(results, vec![ok("carol")]);
        let expected = ScramCredential::from_password(
            ScramMechanism::Sha256,
            "secret",
            b"a salt of sixteen".to_vec(),
            4096,
        );
        let stored = cluster.credentials().get("carol", ScramMechanism::Sha256);
        assert_eq!(stored.as_ref(), Some(&expected));
        drop(cluster);
        let reopened = open_test_cluster(dir.path());
        assert_eq!(
            reopened.credentials().get("carol", ScramMechanism::Sha256),
            stored
        );
    }

    #[test]
    fn a_deletion_removes_an_existing_credential_and_refuses_a_missing_one() {
        // Deleting carol's SHA-256 credential works once; again, or for a mechanism she
        // does not have, is RESOURCE_NOT_FOUND.
        let (_dir, cluster) = test_cluster();
        alter(
            &cluster,
            vec![],
            vec![upsertion("carol", SHA_256, "pw", 4096)],
        );
        assert_eq!(
            alter(&cluster, vec![deletion("carol", SHA_512)], vec![]),
            vec![refused("carol", ErrorCode::ResourceNotFound)]
        );
        assert_eq!(
            alter(&cluster, vec![deletion("carol", SHA_256)], vec![]),
            vec![ok("carol")]
        );
        assert!(cluster.credentials().describe("carol").is_none());
        assert_eq!(
            alter(&cluster, vec![deletion("carol", SHA_256)], vec![]),
            vec![refused("carol", ErrorCode::ResourceNotFound)]
        );
    }

    #[test]
    fn bad_upsertions_are_refused_each_with_its_code_while_good_ones_apply() {
        // An empty name, an unknown mechanism and iterations out of Kafka's range are
        // refused per user; the good upsertion in the same request is stored.
        let (_dir, cluster) = test_cluster();
        let mut short_salted = upsertion("frank", SHA_512, "pw", 4096);
        short_salted.salted_password.truncate(32);
        let results = alter(
            &cluster,
            vec![deletion("", SHA_256)],
            vec![
                upsertion("alice", SHA_512, "pw", 4096),
                upsertion("bob", 3, "pw", 4096),
                upsertion("carol", SHA_256, "pw", 4095),
                upsertion("dave", SHA_256, "pw", 16385),
                upsertion("erin", 0, "pw", 4096),
                short_salted,
            ],
        );
        assert_eq!(
            results,
            vec![
                refused("", ErrorCode::UnacceptableCredential),
                ok("alice"),
                refused("bob", ErrorCode::UnsupportedSaslMechanism),
                refused("carol", ErrorCode::UnacceptableCredential),
                refused("dave", ErrorCode::UnacceptableCredential),
                refused("erin", ErrorCode::UnsupportedSaslMechanism),
                refused("frank", ErrorCode::UnacceptableCredential),
            ]
        );
        let users: Vec<String> = cluster
            .credentials()
            .users()
            .into_iter()
            .map(|user| user.user)
            .collect();
        assert_eq!(users, ["alice"]);
    }

    #[test]
    fn a_user_changed_twice_in_one_request_is_a_duplicate_and_nothing_of_it_applies() {
        // Deleted and upserted, upserted for both mechanisms, or deleted twice: the user
        // gets DUPLICATE_RESOURCE and keeps its credentials; others in the request apply.
        let (_dir, cluster) = test_cluster();
        alter(
            &cluster,
            vec![],
            vec![upsertion("alice", SHA_512, "pw", 4096)],
        );
        alter(
            &cluster,
            vec![],
            vec![upsertion("dave", SHA_512, "pw", 4096)],
        );
        let before = cluster.credentials().get("alice", ScramMechanism::Sha512);
        let results = alter(
            &cluster,
            vec![
                deletion("alice", SHA_512),
                deletion("dave", SHA_512),
                deletion("dave", SHA_256),
            ],
            vec![
                upsertion("alice", SHA_512, "other", 8192),
                upsertion("bob", SHA_256, "pw", 4096),
                upsertion("bob", SHA_512, "pw", 4096),
                upsertion("carol", SHA_256, "pw", 4096),
            ],
        );
        let duplicate = ErrorCode::DuplicateResource;
        assert_eq!(
            results,
            vec![
                refused("alice", duplicate),
                refused("dave", duplicate),
                refused("bob", duplicate),
                ok("carol"),
            ]
        );
        let credentials = cluster.credentials();
        assert_eq!(credentials.get("alice", ScramMechanism::Sha512), before);
        assert!(credentials.contains("dave", ScramMechanism::Sha512));
        assert!(credentials.describe("bob").is_none());
        assert!(credentials.contains("carol", ScramMechanism::Sha256));
    }

    #[test]
    fn altering_needs_alter_on_the_cluster() {
        // Without Alter on the cluster each distinct user, sorted, gets
        // CLUSTER_AUTHORIZATION_FAILED and nothing changes; with it the change applies.
        let (_dir, cluster) = acl_cluster(&[]);
        let request = || AlterUserScramCredentialsRequest {
            deletions: vec![deletion("zoe", SHA_256)],
            upsertions: vec![
                upsertion("carol", SHA_256, "pw", 4096),
                upsertion("carol", SHA_512, "pw", 4096),
            ],
        };
        let alice = context_of(&cluster, "User:alice");
        let denied = handle(&cluster, &alice, 0, request());
        let code = ErrorCode::ClusterAuthorizationFailed;
        assert_eq!(
            summary(&denied),
            vec![refused("carol", code), refused("zoe", code)]
        );
        assert!(denied.results[0].error_message.is_some());
        assert!(cluster.credentials().users().is_empty());

        allow(
            &cluster,
            "cluster:literal:kafka-cluster",
            "User:alice",
            AclOperation::Alter,
        );
        let single = AlterUserScramCredentialsRequest {
            deletions: vec![],
            upsertions: vec![upsertion("carol", SHA_256, "pw", 4096)],
        };
        let allowed = handle(&cluster, &alice, 0, single);
        assert_eq!(summary(&allowed), vec![ok("carol")]);
        assert!(
            cluster
                .credentials()
                .contains("carol", ScramMechanism::Sha256)
        );
    }
}
