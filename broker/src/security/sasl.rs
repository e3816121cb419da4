//! SASL authentication: the mechanisms a SASL listener offers, and one exchange per
//! connection.
//!
//! The connection runs SaslHandshake (which picks a mechanism) and then feeds each client
//! token (SaslAuthenticate, or a raw frame after a version-0 handshake) to the exchange
//! [`start`] returned, until it is [`SaslStep::Done`] or [`SaslStep::Failed`]. The
//! exchange is a plain state machine: no I/O, no clock.

use crate::cluster::Cluster;
use crate::security::Principal;
use crate::security::plain::{PlainMessageError, PlainServer};
use crate::security::random::RandomUnavailable;
use crate::security::scram::{ScramMechanism, ScramMessageError, ScramServer};

/// The mechanism that sends a user name and password in one token (RFC 4616). Only safe
/// over TLS.
pub const PLAIN: &str = "PLAIN";
/// SCRAM with SHA-256 (RFC 5802, RFC 7677).
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
/// SCRAM with SHA-512.
pub const SCRAM_SHA_512: &str = "SCRAM-SHA-512";
/// Every mechanism this broker implements.
pub const MECHANISMS: [&str; 3] = [PLAIN, SCRAM_SHA_256, SCRAM_SHA_512];

/// What the broker answers to one client token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslStep {
    /// Send this to the client and wait for its next token.
    Continue(Vec<u8>),
    /// Authenticated: send `server_final` (empty for PLAIN); the connection is now
    /// `principal`.
    Done {
        /// Who the client proved to be.
        principal: Principal,
        /// The last server token.
        server_final: Vec<u8>,
    },
    /// Refused: the connection answers SASL_AUTHENTICATION_FAILED with this message, which
    /// never holds a secret, and closes.
    Failed(String),
}

/// One connection's SASL exchange.
pub trait SaslExchange: Send {
    /// Takes the client's next token and says what to answer.
    fn step(&mut self, client_token: &[u8]) -> SaslStep;
}

/// Starts an exchange of `mechanism` (one of [`MECHANISMS`], compared exactly, as Kafka
/// does) against the broker's stored credentials; `None` for a mechanism this broker does
/// not implement.
///
/// PLAIN and both SCRAM mechanisms check the SCRAM credentials of
/// [`Cluster::credentials`]; see [`crate::security::plain`] for which one PLAIN uses.
pub fn start(cluster: &Cluster, mechanism: &str) -> Option<Box<dyn SaslExchange>> {
    let store = cluster.credentials().clone();
    if mechanism == PLAIN {
        return Some(Box::new(PlainServer::new(store)));
    }
    let mechanism = ScramMechanism::from_name(mechanism)?;
    Some(Box::new(ScramServer::new(mechanism, store)))
}

/// Why an exchange failed, for the broker's log. The client sees only
/// [`client_message`](AuthenticationFailure::client_message), which never tells an unknown
/// user from a wrong password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthenticationFailure {
    /// A SCRAM message does not parse.
    #[error("malformed SCRAM message: {0}")]
    ScramMessage(#[from] ScramMessageError),
    /// The PLAIN message does not parse.
    #[error("malformed PLAIN message: {0}")]
    PlainMessage(#[from] PlainMessageError),
    /// No credential for this user and mechanism.
    #[error("unknown user")]
    UnknownUser,
    /// The SCRAM proof or the PLAIN password is wrong.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The SCRAM proof is not as long as the mechanism's hash.
    #[error("a proof of {bytes} bytes")]
    ProofLength {
        /// Its length.
        bytes: usize,
    },
    /// The client-final nonce does not end with the server-first nonce.
    #[error("the client-final nonce does not end with the server-first nonce")]
    NonceMismatch,
    /// The client-final's `c=` is not the client-first's GS2 header.
    #[error("the channel binding is not the client-first's GS2 header")]
    ChannelBindingMismatch,
    /// The client presented a delegation token (`tokenauth=true`); this broker has none.
    #[error("delegation tokens are not supported")]
    TokenAuthentication,
    /// The client asked to act as another user than the one it authenticates as.
    #[error("the authorization id differs from the user name")]
    AuthorizationIdMismatch,
    /// A token arrived after the exchange had ended.
    #[error("a token after the exchange ended")]
    UnexpectedToken,
    /// No random bytes for the server nonce.
    #[error(transparent)]
    Random(#[from] RandomUnavailable),
}

impl AuthenticationFailure {
    /// The message the client gets, in Kafka's words. Every failure that involves the
    /// stored credentials, or the client's messages, gets Kafka's one generic message; only
    /// an authzid that differs from the user name, which the client's own message shows,
    /// gets Kafka's specific one.
    pub fn client_message(&self, mechanism: &str) -> String {
        match self {
            AuthenticationFailure::AuthorizationIdMismatch => {
                "Authentication failed: Client requested an authorization id that is different from username"
                    .to_string()
            }
            _ => format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::credentials::{CredentialChange, ScramCredential};
    use crate::security::scram::ScramClient;
    use crate::testing::test_cluster;

    #[test]
    fn start_offers_plain_and_both_scram_mechanisms_against_the_cluster_store() {
        // start() gives an exchange for each of MECHANISMS that checks the cluster's
        // credentials, and nothing for other names (compared exactly, as Kafka does).
        let (_dir, cluster) = test_cluster();
        let credential =
            ScramCredential::from_password(ScramMechanism::Sha512, "pw", vec![5; 32], 4096);
        let change = CredentialChange::Set {
            user: "alice".into(),
            mechanism: ScramMechanism::Sha512,
            credential,
        };
        cluster
            .alter_scram_credentials(vec![change])
            .expect("stored");
        let mut plain = start(&cluster, PLAIN).expect("PLAIN");
        assert!(matches!(plain.step(b"\0alice\0pw"), SaslStep::Done { .. }));
        let mut scram = start(&cluster, SCRAM_SHA_512).expect("SCRAM-SHA-512");
        let mut client = ScramClient::new(ScramMechanism::Sha512, "alice", "pw").expect("random");
        let SaslStep::Continue(server_first) = scram.step(&client.first_message()) else {
            panic!("server-first");
        };
        let client_final = client.final_message(&server_first).expect("final");
        assert!(matches!(scram.step(&client_final), SaslStep::Done { .. }));
        assert!(start(&cluster, SCRAM_SHA_256).is_some());
        for other in ["GSSAPI", "OAUTHBEARER", "plain", "SCRAM-SHA-1", ""] {
            assert!(start(&cluster, other).is_none(), "{other}");
        }
    }
}
