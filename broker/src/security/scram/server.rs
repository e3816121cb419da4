//! The server side of a SCRAM exchange, as a state machine: client-first in, server-first
//! out; client-final in, server-final out and the principal proven.
//!
//! What it checks, in order, and how it differs from the RFC where Kafka does:
//! - client-first: the grammar ([`ClientFirst::parse`]); no `tokenauth=true` (we have no
//!   delegation tokens); an authzid, if any, equal to the user name (checked before the
//!   store is consulted, so the answer says nothing about the user).
//! - The user is looked up. An unknown user, or one whose stored credential has fewer
//!   than [`ITERATIONS_MIN`] iterations, gets a server-first built from a
//!   [fake credential](CredentialStore::fake_credential): same shape, same cost, and the
//!   failure comes at the proof, as for a wrong password.
//! - client-final: the grammar; `c=` must be the base64 of the client-first's GS2 header;
//!   the nonce must *end with* the server-first's nonce. RFC 5802 says *equal*; Kafka 3.x
//!   accepted a suffix, and librdkafka before 2.6.1 (kcat on Debian among its users)
//!   relies on that: it sends the client nonce again in front of the combined one. The
//!   proof covers the nonce as sent and the server-first holds our random part, so the
//!   extra prefix gives an attacker nothing.
//! - The proof, compared in constant time with the StoredKey.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;
use tracing::debug;

use super::formatter::{auth_message, xor};
use super::messages::{ClientFinal, ClientFirst, ServerFinal, ServerFirst};
use super::{ITERATIONS_MIN, ScramMechanism};
use crate::security::Principal;
use crate::security::credentials::{CredentialStore, ScramCredential};
use crate::security::random::random_bytes;
use crate::security::sasl::{AuthenticationFailure, SaslExchange, SaslStep};

/// Random bytes in the server's nonce: 192 bits (Kafka's has 130), 32 base64 characters.
const SERVER_NONCE_BYTES: usize = 24;

/// One connection's SCRAM exchange, server side.
pub struct ScramServer {
    mechanism: ScramMechanism,
    store: Arc<CredentialStore>,
    state: State,
    /// Why the exchange failed, once it has.
    failure: Option<AuthenticationFailure>,
    /// Tests pin the server nonce to replay RFC 7677's example.
    #[cfg(test)]
    fixed_server_nonce: Option<String>,
}

enum State {
    AwaitingClientFirst,
    AwaitingClientFinal(Box<Pending>),
    Complete,
    Failed,
}

/// What the client-final is checked against.
struct Pending {
    user: String,
    /// Whether `credential` is the user's own rather than a fake.
    known: bool,
    credential: ScramCredential,
    gs2_header: String,
    client_first_bare: String,
    server_first: ServerFirst,
}

impl ScramServer {
    /// A new exchange of `mechanism` against `store`.
    pub fn new(mechanism: ScramMechanism, store: Arc<CredentialStore>) -> ScramServer {
        ScramServer {
            mechanism,
            store,
            state: State::AwaitingClientFirst,
            failure: None,
            #[cfg(test)]
            fixed_server_nonce: None,
        }
    }

    /// Why the exchange failed, for the connection's log; `None` while it has not.
    pub fn failure(&self) -> Option<&AuthenticationFailure> {
        self.failure.as_ref()
    }

    #[cfg(test)]
    pub(crate) fn with_server_nonce(mut self, nonce: &str) -> ScramServer {
        self.fixed_server_nonce = Some(nonce.to_string());
        self
    }

    fn client_first(&self, token: &[u8]) -> Result<(Pending, Vec<u8>), AuthenticationFailure> {
        let message = ClientFirst::parse(token)?;
        if message.token_authentication() {
            return Err(AuthenticationFailure::TokenAuthentication);
        }
        if message
            .authorization_id
            .as_ref()
            .is_some_and(|authorization_id| *authorization_id != message.user)
        {
            return Err(AuthenticationFailure::AuthorizationIdMismatch);
        }
        let server_nonce = self.server_nonce()?;
        let stored = self
            .store
            .get(&message.user, self.mechanism)
            .filter(|credential| credential.iterations >= ITERATIONS_MIN);
        let known = stored.is_some();
        let credential =
            stored.unwrap_or_else(|| self.store.fake_credential(&message.user, self.mechanism));
        let nonce = format!("{}{server_nonce}", message.nonce);
        let text = ServerFirst::format(&nonce, &credential.salt, credential.iterations);
        let server_first = ServerFirst {
            nonce,
            salt: credential.salt.clone(),
            iterations: credential.iterations,
            text,
        };
        let reply = server_first.text.clone().into_bytes();
        let pending = Pending {
            user: message.user,
            known,
            credential,
            gs2_header: message.gs2_header,
            client_first_bare: message.bare,
            server_first,
        };
        Ok((pending, reply))
    }

    fn client_final(
        &self,
        pending: &Pending,
        token: &[u8],
    ) -> Result<Vec<u8>, AuthenticationFailure> {
        let message = ClientFinal::parse(token)?;
        if message.channel_binding != pending.gs2_header.as_bytes() {
            return Err(AuthenticationFailure::ChannelBindingMismatch);
        }
        // Kafka 3.x's check (see the module doc): old librdkafka repeats the client nonce.
        if !message.nonce.ends_with(&pending.server_first.nonce) {
            return Err(AuthenticationFailure::NonceMismatch);
        }
        let auth = auth_message(
            &pending.client_first_bare,
            &pending.server_first.text,
            &message.without_proof,
        );
        let credential = &pending.credential;
        let client_signature = self.mechanism.hmac(&credential.stored_key, &auth);
        if message.proof.len() != client_signature.len() {
            return Err(AuthenticationFailure::ProofLength {
                bytes: message.proof.len(),
            });
        }
        let client_key = xor(&message.proof, &client_signature);
        let computed_stored_key = self.mechanism.hash(&client_key);
        let proof_matches: bool = computed_stored_key.ct_eq(&credential.stored_key).into();
        if !pending.known {
            return Err(AuthenticationFailure::UnknownUser);
        }
        if !proof_matches {
            return Err(AuthenticationFailure::InvalidCredentials);
        }
        let server_signature = self.mechanism.hmac(&credential.server_key, &auth);
        Ok(ServerFinal::format(&server_signature).into_bytes())
    }

    fn server_nonce(&self) -> Result<String, AuthenticationFailure> {
        #[cfg(test)]
        if let Some(nonce) = &self.fixed_server_nonce {
            return Ok(nonce.clone());
        }
        let bytes = random_bytes::<SERVER_NONCE_BYTES>().map_err(AuthenticationFailure::Random)?;
        Ok(STANDARD.encode(bytes))
    }

    fn fail(&mut self, failure: AuthenticationFailure, user: Option<&str>) -> SaslStep {
        debug!(mechanism = self.mechanism.name(), user, %failure, "SASL authentication failed");
        let message = failure.client_message(self.mechanism.name());
        self.failure = Some(failure);
        SaslStep::Failed(message)
    }
}

impl SaslExchange for ScramServer {
    /// Client-first, then client-final; anything after the end fails. Cheap: the server
    /// runs no PBKDF2 (the stored keys are already salted), only a few HMACs.
    fn step(&mut self, client_token: &[u8]) -> SaslStep {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::AwaitingClientFirst => match self.client_first(client_token) {
                Ok((pending, reply)) => {
                    self.state = State::AwaitingClientFinal(Box::new(pending));
                    SaslStep::Continue(reply)
                }
                Err(failure) => self.fail(failure, None),
            },
            State::AwaitingClientFinal(pending) => {
                match self.client_final(&pending, client_token) {
                    Ok(server_final) => {
                        self.state = State::Complete;
                        SaslStep::Done {
                            principal: Principal::user(pending.user.clone()),
                            server_final,
                        }
                    }
                    Err(failure) => self.fail(failure, Some(&pending.user)),
                }
            }
            State::Complete | State::Failed => {
                self.fail(AuthenticationFailure::UnexpectedToken, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;

    use super::*;
    use crate::security::credentials::CredentialChange;
    use crate::security::scram::{ScramClient, ScramClientError, ScramMessageError};

    /// A store holding `(user, mechanism, password)` credentials at 4096 iterations.
    pub(crate) fn store_with(users: &[(&str, ScramMechanism, &str)]) -> Arc<CredentialStore> {
        let store = CredentialStore::new().expect("random");
        for (user, mechanism, password) in users {
            let salt = mechanism.hash(user.as_bytes())[..crate::security::credentials::SALT_BYTES]
                .to_vec();
            let credential = ScramCredential::from_password(*mechanism, password, salt, 4096);
            let change = CredentialChange::Set {
                user: user.to_string(),
                mechanism: *mechanism,
                credential,
            };
            store.apply(&change.to_event());
        }
        Arc::new(store)
    }

    fn continued(step: SaslStep) -> Vec<u8> {
        match step {
            SaslStep::Continue(reply) => reply,
            other => panic!("expected Continue, got {other:?}"),
        }
    }

    fn failed(step: SaslStep) -> String {
        match step {
            SaslStep::Failed(message) => message,
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    /// Runs `client` against `server`; the server's last step, after the client checked
    /// the server-final when there was one.
    fn login(server: &mut ScramServer, client: &mut ScramClient) -> SaslStep {
        let server_first = continued(server.step(&client.first_message()));
        let client_final = client.final_message(&server_first).expect("client final");
        let last = server.step(&client_final);
        if let SaslStep::Done { server_final, .. } = &last {
            client
                .verify_server_final(server_final)
                .expect("server signature verifies");
        }
        last
    }

    #[test]
    fn rfc_7677_example_exchange_is_reproduced_byte_for_byte() {
        // RFC 7677 section 3 (SCRAM-SHA-256, user "user", password "pencil"): with the
        // RFC's nonces and salt, our server and client send exactly the RFC's messages.
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("base64");
        let store = CredentialStore::new().expect("random");
        let credential =
            ScramCredential::from_password(ScramMechanism::Sha256, "pencil", salt, 4096);
        store.apply(
            &CredentialChange::Set {
                user: "user".into(),
                mechanism: ScramMechanism::Sha256,
                credential,
            }
            .to_event(),
        );
        let mut server = ScramServer::new(ScramMechanism::Sha256, Arc::new(store))
            .with_server_nonce("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        let mut client = ScramClient::with_nonce(
            ScramMechanism::Sha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(client.first_message(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = continued(server.step(&client.first_message()));
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let expected_first = format!("r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
        assert_eq!(String::from_utf8_lossy(&server_first), expected_first);
        let client_final = client.final_message(&server_first).expect("client final");
        let expected_final =
            format!("c=biws,r={nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        assert_eq!(String::from_utf8_lossy(&client_final), expected_final);
        let SaslStep::Done {
            principal,
            server_final,
        } = server.step(&client_final)
        else {
            panic!("the RFC's exchange authenticates");
        };
        assert_eq!(principal, Principal::user("user"));
        assert_eq!(
            server_final,
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        client.verify_server_final(&server_final).expect("verifies");
    }

    #[test]
    fn both_mechanisms_authenticate_our_client_and_names_with_commas() {
        // SHA-256 and SHA-512 logins succeed end to end, the server signature verifies,
        // and a name with ',' and '=' survives the saslname escaping.
        let store = store_with(&[
            ("alice", ScramMechanism::Sha512, "wonderland"),
            ("a,b=c", ScramMechanism::Sha256, "escaped"),
        ]);
        for (user, mechanism, password) in [
            ("alice", ScramMechanism::Sha512, "wonderland"),
            ("a,b=c", ScramMechanism::Sha256, "escaped"),
        ] {
            let mut server = ScramServer::new(mechanism, store.clone());
            let mut client = ScramClient::new(mechanism, user, password).expect("random");
            match login(&mut server, &mut client) {
                SaslStep::Done { principal, .. } => assert_eq!(principal, Principal::user(user)),
                other => panic!("{user} should authenticate, got {other:?}"),
            }
            assert!(server.failure().is_none());
            assert!(matches!(server.step(b"again"), SaslStep::Failed(_)));
            assert_eq!(
                server.failure(),
                Some(&AuthenticationFailure::UnexpectedToken)
            );
        }
    }

    #[test]
    fn unknown_user_and_wrong_password_look_the_same_to_the_client() {
        // An unknown user gets a server-first of the same shape (a salt of the same length,
        // the default iterations, stable across attempts) and fails at the proof with the
        // message a wrong password gets; only the broker's log tells them apart.
        let store = store_with(&[("alice", ScramMechanism::Sha512, "right")]);
        let mut attempts = Vec::new();
        for (user, password) in [("alice", "wrong"), ("mallory", "any"), ("mallory", "other")] {
            let mut server = ScramServer::new(ScramMechanism::Sha512, store.clone());
            let mut client =
                ScramClient::new(ScramMechanism::Sha512, user, password).expect("random");
            let server_first = continued(server.step(&client.first_message()));
            let parsed = super::super::messages::ServerFirst::parse(&server_first).expect("parses");
            let message = failed(server.step(&client.final_message(&server_first).expect("final")));
            attempts.push((parsed, message, server.failure().cloned()));
        }
        let (alice, unknown, unknown_again) = (&attempts[0], &attempts[1], &attempts[2]);
        assert_eq!(alice.0.salt.len(), unknown.0.salt.len());
        assert_eq!(alice.0.iterations, unknown.0.iterations);
        assert_eq!(alice.0.nonce.len(), unknown.0.nonce.len());
        assert_eq!(
            unknown.0.salt, unknown_again.0.salt,
            "an unknown user's salt is stable"
        );
        assert_eq!(alice.1, unknown.1);
        assert_eq!(
            alice.1,
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
        );
        assert_eq!(alice.2, Some(AuthenticationFailure::InvalidCredentials));
        assert_eq!(unknown.2, Some(AuthenticationFailure::UnknownUser));
    }

    #[test]
    fn old_librdkafka_client_final_nonce_is_accepted() {
        // librdkafka before 2.6.1 puts its client nonce in front of the combined nonce
        // again (r=<client><client><server>), with a proof computed over that message;
        // Kafka 3.x accepted it and so do we. A nonce that does not end with ours is not.
        let store = store_with(&[("kcat", ScramMechanism::Sha256, "secret")]);
        let client_nonce = "bGlicmRrYWZrYW5vbmNl";
        let mut server = ScramServer::new(ScramMechanism::Sha256, store.clone());
        let server_first = continued(server.step(format!("n,,n=kcat,r={client_nonce}").as_bytes()));
        let parsed = super::super::messages::ServerFirst::parse(&server_first).expect("parses");
        let doubled_nonce = format!("{client_nonce}{}", parsed.nonce);
        let without_proof = format!("c=biws,r={doubled_nonce}");
        let salted =
            ScramMechanism::Sha256.salted_password(b"secret", &parsed.salt, parsed.iterations);
        let auth = auth_message(
            &format!("n=kcat,r={client_nonce}"),
            &parsed.text,
            &without_proof,
        );
        let proof = super::super::formatter::client_proof::<sha2::Sha256>(&salted, &auth);
        let token = format!("{without_proof},p={}", STANDARD.encode(proof));
        assert!(matches!(
            server.step(token.as_bytes()),
            SaslStep::Done { .. }
        ));

        let mut server = ScramServer::new(ScramMechanism::Sha256, store);
        let server_first = continued(server.step(format!("n,,n=kcat,r={client_nonce}").as_bytes()));
        let parsed = super::super::messages::ServerFirst::parse(&server_first).expect("parses");
        let truncated = &parsed.nonce[..parsed.nonce.len() - 1];
        let token = format!("c=biws,r={truncated},p={}", STANDARD.encode([0u8; 32]));
        failed(server.step(token.as_bytes()));
        assert_eq!(
            server.failure(),
            Some(&AuthenticationFailure::NonceMismatch)
        );
    }

    #[test]
    fn tokens_channel_binding_and_foreign_authzids_are_refused() {
        // Delegation tokens, channel binding (asked for in the header, or a c= that is not
        // our header) and an authzid naming someone else all fail, each for its reason.
        let store = store_with(&[("alice", ScramMechanism::Sha256, "pw")]);
        let first_failures: [(&[u8], AuthenticationFailure); 3] = [
            (
                b"n,,n=alice,r=abc,tokenauth=true",
                AuthenticationFailure::TokenAuthentication,
            ),
            (
                b"p=tls-unique,,n=alice,r=abc",
                ScramMessageError::ChannelBindingRequested.into(),
            ),
            (
                b"n,a=bob,n=alice,r=abc",
                AuthenticationFailure::AuthorizationIdMismatch,
            ),
        ];
        for (token, expected) in first_failures {
            let mut server = ScramServer::new(ScramMechanism::Sha256, store.clone());
            failed(server.step(token));
            assert_eq!(server.failure(), Some(&expected));
        }
        let mut server = ScramServer::new(ScramMechanism::Sha256, store.clone());
        let authzid = continued(server.step(b"n,a=alice,n=alice,r=abc"));
        let nonce = super::super::messages::ServerFirst::parse(&authzid)
            .expect("parses")
            .nonce;
        let token = format!("c=biws,r={nonce},p={}", STANDARD.encode([0u8; 32]));
        failed(server.step(token.as_bytes()));
        assert_eq!(
            server.failure(),
            Some(&AuthenticationFailure::ChannelBindingMismatch)
        );
        let mut client = ScramClient::new(ScramMechanism::Sha256, "alice", "pw").expect("random");
        let mut server = ScramServer::new(ScramMechanism::Sha256, store);
        let server_first = continued(server.step(&client.first_message()));
        let token =
            String::from_utf8(client.final_message(&server_first).expect("final")).expect("utf8");
        let short_proof = format!("{},p=AAAA", token.rsplit_once(',').expect("proof").0);
        failed(server.step(short_proof.as_bytes()));
        assert_eq!(
            server.failure(),
            Some(&AuthenticationFailure::ProofLength { bytes: 3 })
        );
    }

    #[test]
    fn client_refuses_servers_that_break_the_protocol() {
        // The client refuses a nonce it did not start, iterations out of range, an error
        // answer, a wrong signature, and a verify before its final message.
        let mut client = ScramClient::with_nonce(ScramMechanism::Sha256, "u", "p", "abc");
        assert_eq!(
            client.verify_server_final(b"v=AAAA"),
            Err(ScramClientError::OutOfOrder)
        );
        let cases: [(&[u8], ScramClientError); 4] = [
            (
                b"r=xyzdef,s=c2FsdA==,i=4096",
                ScramClientError::NonceMismatch,
            ),
            (b"r=abc,s=c2FsdA==,i=4096", ScramClientError::NonceMismatch),
            (
                b"r=abcdef,s=c2FsdA==,i=4095",
                ScramClientError::Iterations { iterations: 4095 },
            ),
            (
                b"r=abcdef,s=c2FsdA==,i=16385",
                ScramClientError::Iterations { iterations: 16385 },
            ),
        ];
        for (server_first, expected) in cases {
            assert_eq!(client.final_message(server_first), Err(expected));
        }
        client
            .final_message(b"r=abcdef,s=c2FsdA==,i=4096")
            .expect("final");
        assert_eq!(
            client.verify_server_final(b"e=invalid-proof"),
            Err(ScramClientError::ServerError("invalid-proof".into()))
        );
        let wrong = ServerFinal::format(&[0; 32]);
        assert_eq!(
            client.verify_server_final(wrong.as_bytes()),
            Err(ScramClientError::ServerSignature)
        );
    }

    /// One store and one valid client-final (fixed nonces, so the server accepts it
    /// again each time), shared by the property tests so each case runs no PBKDF2.
    fn shared_exchange() -> &'static (Arc<CredentialStore>, Vec<u8>, Vec<u8>) {
        static SHARED: std::sync::OnceLock<(Arc<CredentialStore>, Vec<u8>, Vec<u8>)> =
            std::sync::OnceLock::new();
        SHARED.get_or_init(|| {
            let store = store_with(&[("alice", ScramMechanism::Sha256, "pw")]);
            let mut client = ScramClient::with_nonce(ScramMechanism::Sha256, "alice", "pw", "cn");
            let mut server = fixed_server(&store);
            let server_first = continued(server.step(&client.first_message()));
            let client_final = client.final_message(&server_first).expect("final");
            assert!(matches!(server.step(&client_final), SaslStep::Done { .. }));
            (store, client.first_message(), client_final)
        })
    }

    fn fixed_server(store: &Arc<CredentialStore>) -> ScramServer {
        ScramServer::new(ScramMechanism::Sha256, store.clone()).with_server_nonce("sn")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_tokens_never_panic_the_exchange(
            first in proptest::collection::vec(any::<u8>(), 0..300),
            second in proptest::collection::vec(any::<u8>(), 0..300),
            third in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            // Any bytes, at any step, give an answer, and never Done without the password.
            let (store, client_first, _) = shared_exchange();
            let mut server = fixed_server(store);
            let steps = [server.step(&first), server.step(&second), server.step(&third)];
            let authenticated = steps.iter().any(|step| matches!(step, SaslStep::Done { .. }));
            prop_assert!(!authenticated);
            // The same after a well-formed client-first.
            let mut server = fixed_server(store);
            continued(server.step(client_first));
            let step = server.step(&second);
            prop_assert!(!matches!(step, SaslStep::Done { .. }), "{:?}", step);
        }

        #[test]
        fn mangled_client_finals_never_authenticate(
            position in 0usize..200,
            byte in any::<u8>(),
        ) {
            // Changing any one byte of a valid client-final makes it fail, without a panic.
            let (store, client_first, client_final) = shared_exchange();
            let mut server = fixed_server(store);
            continued(server.step(client_first));
            let mut token = client_final.clone();
            let index = position % token.len();
            prop_assume!(token[index] != byte);
            token[index] = byte;
            let step = server.step(&token);
            prop_assert!(matches!(step, SaslStep::Failed(_)), "{:?}", step);
        }
    }
}
