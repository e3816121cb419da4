//! SASL/PLAIN (RFC 4616), server side, checked against the stored SCRAM credentials.
//!
//! ```text
//! message = [authzid] NUL authcid NUL passwd      (UTF-8, no NUL inside a field)
//! ```
//!
//! Kafka's PLAIN checks passwords from a JAAS file; Riffle keeps no passwords, so PLAIN
//! derives `Hi(password, salt, iterations)` with the user's stored SCRAM salt and
//! iterations and compares the resulting StoredKey in constant time. A user therefore
//! needs a SCRAM credential for PLAIN to work: its **SCRAM-SHA-512** one if it has it,
//! else its SCRAM-SHA-256 one. Only one is tried, so a login costs one PBKDF2 whatever
//! the user has; if the two were set with different passwords, PLAIN takes SHA-512's.
//!
//! That PBKDF2 (a few milliseconds at 4096 iterations, four times that at the 16384
//! maximum) runs inside [`step`](SaslExchange::step): the connection should call it off
//! the async worker threads (`spawn_blocking` or `block_in_place`). An unknown user costs
//! the same: the derivation runs against a [fake credential](CredentialStore::fake_credential).
//!
//! PLAIN sends the password itself: offer it on TLS listeners only.

use std::sync::Arc;

use subtle::ConstantTimeEq;
use tracing::debug;

use super::Principal;
use super::credentials::{CredentialStore, ScramCredential};
use super::sasl::{AuthenticationFailure, PLAIN, SaslExchange, SaslStep};
use super::scram::ScramMechanism;

/// Longest PLAIN message accepted. RFC 4616 asks servers to take at least 255 bytes per
/// field; this is four times that for each of the three.
pub const MESSAGE_MAX_BYTES: usize = 3 * 1024;

/// The order in which PLAIN looks for a user's SCRAM credential.
pub const CREDENTIAL_PREFERENCE: [ScramMechanism; 2] =
    [ScramMechanism::Sha512, ScramMechanism::Sha256];

/// Why a PLAIN message was refused. None of them carries the message, which holds the
/// password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlainMessageError {
    /// Longer than [`MESSAGE_MAX_BYTES`].
    #[error("message of {bytes} bytes is longer than {MESSAGE_MAX_BYTES}")]
    TooLong {
        /// Its length.
        bytes: usize,
    },
    /// Not UTF-8.
    #[error("message is not UTF-8")]
    NotUtf8,
    /// Not three NUL-separated fields.
    #[error("expected 3 NUL-separated fields, got {fields}")]
    Fields {
        /// How many there were.
        fields: usize,
    },
    /// The user name (authcid) is empty.
    #[error("the user name is empty")]
    EmptyUser,
    /// The password is empty.
    #[error("the password is empty")]
    EmptyPassword,
}

/// One connection's PLAIN exchange: a single client token, then done.
pub struct PlainServer {
    store: Arc<CredentialStore>,
    finished: bool,
    /// Why the exchange failed, once it has.
    failure: Option<AuthenticationFailure>,
}

impl PlainServer {
    /// A new exchange against `store`.
    pub fn new(store: Arc<CredentialStore>) -> PlainServer {
        PlainServer {
            store,
            finished: false,
            failure: None,
        }
    }

    /// Why the exchange failed, for the connection's log; `None` while it has not.
    pub fn failure(&self) -> Option<&AuthenticationFailure> {
        self.failure.as_ref()
    }

    fn authenticate(&self, token: &[u8]) -> Result<String, AuthenticationFailure> {
        let (authorization_id, user, password) = parse(token)?;
        if !authorization_id.is_empty() && authorization_id != user {
            return Err(AuthenticationFailure::AuthorizationIdMismatch);
        }
        let stored = CREDENTIAL_PREFERENCE.into_iter().find_map(|mechanism| {
            let credential = self.store.get(user, mechanism)?;
            Some((mechanism, credential))
        });
        match stored {
            Some((mechanism, credential)) if password_matches(mechanism, &credential, password) => {
                Ok(user.to_string())
            }
            Some(_) => Err(AuthenticationFailure::InvalidCredentials),
            None => {
                // The same derivation a real user costs, so the time taken does not tell.
                let mechanism = CREDENTIAL_PREFERENCE[0];
                let fake = self.store.fake_credential(user, mechanism);
                let _ = password_matches(mechanism, &fake, password);
                Err(AuthenticationFailure::UnknownUser)
            }
        }
    }
}

impl SaslExchange for PlainServer {
    /// Checks the one PLAIN token; runs one PBKDF2 (see the module doc).
    fn step(&mut self, client_token: &[u8]) -> SaslStep {
        let outcome = if self.finished {
            Err(AuthenticationFailure::UnexpectedToken)
        } else {
            self.authenticate(client_token)
        };
        self.finished = true;
        match outcome {
            Ok(user) => SaslStep::Done {
                principal: Principal::user(user),
                server_final: Vec::new(),
            },
            Err(failure) => {
                debug!(mechanism = PLAIN, %failure, "SASL authentication failed");
                let message = failure.client_message(PLAIN);
                self.failure = Some(failure);
                SaslStep::Failed(message)
            }
        }
    }
}

/// The three fields: authzid (maybe empty), user, password.
fn parse(token: &[u8]) -> Result<(&str, &str, &str), PlainMessageError> {
    if token.len() > MESSAGE_MAX_BYTES {
        return Err(PlainMessageError::TooLong { bytes: token.len() });
    }
    let text = std::str::from_utf8(token).map_err(|_| PlainMessageError::NotUtf8)?;
    let fields: Vec<&str> = text.split('\0').collect();
    let [authorization_id, user, password] = fields[..] else {
        return Err(PlainMessageError::Fields {
            fields: fields.len(),
        });
    };
    if user.is_empty() {
        return Err(PlainMessageError::EmptyUser);
    }
    if password.is_empty() {
        return Err(PlainMessageError::EmptyPassword);
    }
    Ok((authorization_id, user, password))
}

/// Whether `password` derives `credential`'s StoredKey; compared in constant time.
fn password_matches(
    mechanism: ScramMechanism,
    credential: &ScramCredential,
    password: &str,
) -> bool {
    let salted =
        mechanism.salted_password(password.as_bytes(), &credential.salt, credential.iterations);
    let stored_key = mechanism.hash(&mechanism.hmac(&salted, b"Client Key"));
    stored_key.ct_eq(&credential.stored_key).into()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::security::credentials::CredentialChange;

    fn store(users: &[(&str, ScramMechanism, &str)]) -> Arc<CredentialStore> {
        let store = CredentialStore::new().expect("random");
        for (user, mechanism, password) in users {
            let credential =
                ScramCredential::from_password(*mechanism, password, vec![3; 32], 4096);
            let change = CredentialChange::Set {
                user: user.to_string(),
                mechanism: *mechanism,
                credential,
            };
            store.apply(&change.to_event());
        }
        Arc::new(store)
    }

    fn login(
        store: &Arc<CredentialStore>,
        token: &[u8],
    ) -> (SaslStep, Option<AuthenticationFailure>) {
        let mut server = PlainServer::new(store.clone());
        let step = server.step(token);
        (step, server.failure().cloned())
    }

    #[test]
    fn passwords_are_checked_against_the_stored_scram_keys() {
        // The right password authenticates (through SHA-512 or, lacking it, SHA-256), with
        // or without an authzid equal to the user; a wrong one fails.
        let store = store(&[
            ("alice", ScramMechanism::Sha512, "wonderland"),
            ("bob", ScramMechanism::Sha256, "builder"),
        ]);
        for token in [
            &b"\0alice\0wonderland"[..],
            b"alice\0alice\0wonderland",
            b"\0bob\0builder",
        ] {
            let (step, failure) = login(&store, token);
            assert!(
                matches!(step, SaslStep::Done { ref server_final, .. } if server_final.is_empty())
            );
            assert_eq!(failure, None);
        }
        let (step, _) = login(&store, b"\0bob\0builder");
        let SaslStep::Done { principal, .. } = step else {
            panic!("bob authenticates")
        };
        assert_eq!(principal, Principal::user("bob"));
        let (_, failure) = login(&store, b"\0alice\0Wonderland");
        assert_eq!(failure, Some(AuthenticationFailure::InvalidCredentials));
    }

    #[test]
    fn sha_512_is_used_when_the_user_has_both() {
        // A user with different passwords per mechanism logs in with PLAIN by SHA-512's.
        let store = store(&[
            ("carol", ScramMechanism::Sha256, "old"),
            ("carol", ScramMechanism::Sha512, "new"),
        ]);
        assert!(matches!(
            login(&store, b"\0carol\0new").0,
            SaslStep::Done { .. }
        ));
        assert_eq!(
            login(&store, b"\0carol\0old").1,
            Some(AuthenticationFailure::InvalidCredentials)
        );
    }

    #[test]
    fn unknown_user_and_wrong_password_get_the_same_answer() {
        // Both fail with Kafka's generic message; only the log's reason differs.
        let store = store(&[("alice", ScramMechanism::Sha512, "wonderland")]);
        let (wrong, wrong_reason) = login(&store, b"\0alice\0guess");
        let (unknown, unknown_reason) = login(&store, b"\0mallory\0guess");
        assert_eq!(wrong, unknown);
        assert_eq!(
            wrong,
            SaslStep::Failed(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism PLAIN"
                    .into()
            )
        );
        assert_eq!(
            wrong_reason,
            Some(AuthenticationFailure::InvalidCredentials)
        );
        assert_eq!(unknown_reason, Some(AuthenticationFailure::UnknownUser));
    }

    #[test]
    fn malformed_messages_foreign_authzids_and_second_tokens_are_refused() {
        // Each malformed shape fails for its reason, none of which repeats the password.
        let store = store(&[("alice", ScramMechanism::Sha512, "wonderland")]);
        let cases: [(&[u8], AuthenticationFailure); 7] = [
            (
                b"alice\0wonderland",
                PlainMessageError::Fields { fields: 2 }.into(),
            ),
            (
                b"\0alice\0wonder\0land",
                PlainMessageError::Fields { fields: 4 }.into(),
            ),
            (b"\0\0wonderland", PlainMessageError::EmptyUser.into()),
            (b"\0alice\0", PlainMessageError::EmptyPassword.into()),
            (b"\0alice\0\xff", PlainMessageError::NotUtf8.into()),
            (
                &[b'x'; MESSAGE_MAX_BYTES + 1],
                PlainMessageError::TooLong {
                    bytes: MESSAGE_MAX_BYTES + 1,
                }
                .into(),
            ),
            (
                b"bob\0alice\0wonderland",
                AuthenticationFailure::AuthorizationIdMismatch,
            ),
        ];
        for (token, expected) in cases {
            let (step, failure) = login(&store, token);
            let SaslStep::Failed(message) = step else {
                panic!("{token:?} must fail")
            };
            assert!(!message.contains("wonder"), "{message}");
            assert_eq!(failure, Some(expected));
        }
        let mut server = PlainServer::new(store);
        assert!(matches!(
            server.step(b"\0alice\0wonderland"),
            SaslStep::Done { .. }
        ));
        assert!(matches!(
            server.step(b"\0alice\0wonderland"),
            SaslStep::Failed(_)
        ));
        assert_eq!(
            server.failure(),
            Some(&AuthenticationFailure::UnexpectedToken)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn arbitrary_tokens_never_authenticate(token in proptest::collection::vec(any::<u8>(), 0..64)) {
            // Random bytes never log in and never panic.
            let store = store(&[]);
            let (step, _) = login(&store, &token);
            prop_assert!(matches!(step, SaslStep::Failed(_)));
        }
    }
}
