//! SASL authentication: the mechanisms a SASL listener offers, and one exchange per
//! connection.
//!
//! The connection runs SaslHandshake (which picks a mechanism) and then feeds each client
//! token (SaslAuthenticate, or a raw frame after a version-0 handshake) to the exchange
//! [`start`] returned, until it is [`SaslStep::Done`] or [`SaslStep::Failed`]. The
//! exchange is a plain state machine: no I/O, no clock.

use crate::cluster::Cluster;
use crate::security::Principal;

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

/// Starts an exchange of `mechanism` (one of [`MECHANISMS`]) against the broker's stored
/// credentials; `None` for a mechanism this broker does not implement.
pub fn start(cluster: &Cluster, mechanism: &str) -> Option<Box<dyn SaslExchange>> {
    // The mechanisms are being built: nothing is offered until they land.
    let _ = (cluster, mechanism);
    None
}
