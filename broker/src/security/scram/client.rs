//! The client side of a SCRAM exchange, for Riffle's own tools (`riffle acls`, tests): the
//! messages a Kafka client sends, and the checks it makes of the server.
//!
//! ```ignore
//! let mut client = ScramClient::new(ScramMechanism::Sha512, "alice", "secret")?;
//! let server_first = send(client.first_message());
//! let server_final = send(client.final_message(&server_first)?);
//! client.verify_server_final(&server_final)?;
//! ```
//!
//! It refuses a server that drops or changes the client nonce, asks for fewer than
//! [`ITERATIONS_MIN`] or more than [`ITERATIONS_MAX`] iterations, or cannot sign the
//! exchange with the ServerKey (it does not know the password either).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

use super::formatter::{auth_message, xor};
use super::messages::{ClientFinal, ClientFirst, ScramMessageError, ServerFinal, ServerFirst};
use super::{ITERATIONS_MAX, ITERATIONS_MIN, ScramMechanism};
use crate::security::random::{RandomUnavailable, random_bytes};

/// Random bytes in the client's nonce: 192 bits, 32 base64 characters.
const CLIENT_NONCE_BYTES: usize = 24;

/// Why the client gave up on an exchange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramClientError {
    /// No random bytes for the nonce.
    #[error(transparent)]
    Random(#[from] RandomUnavailable),
    /// A server message does not parse.
    #[error("malformed server message: {0}")]
    Malformed(#[from] ScramMessageError),
    /// The server-first nonce does not start with ours, or adds nothing to it.
    #[error("the server's nonce does not extend the client's")]
    NonceMismatch,
    /// The server asks for an iteration count outside the accepted range.
    #[error(
        "the server asks for {iterations} iterations, outside {ITERATIONS_MIN}..={ITERATIONS_MAX}"
    )]
    Iterations {
        /// What it asked for.
        iterations: u32,
    },
    /// The server answered `e=`.
    #[error("the server refused the exchange: {0}")]
    ServerError(String),
    /// The server's signature is wrong: it does not hold this user's ServerKey.
    #[error("the server's signature does not verify")]
    ServerSignature,
    /// A call out of order (`verify_server_final` before `final_message`).
    #[error("the SCRAM client was called out of order")]
    OutOfOrder,
}

/// One SCRAM login, client side.
pub struct ScramClient {
    mechanism: ScramMechanism,
    user: String,
    password: String,
    nonce: String,
    /// The ServerSignature the server-final must carry, once the final message is built.
    expected_server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// A login as `user` with `password`, with a fresh random nonce.
    ///
    /// # Errors
    /// When the operating system's random source fails.
    pub fn new(
        mechanism: ScramMechanism,
        user: &str,
        password: &str,
    ) -> Result<ScramClient, ScramClientError> {
        let nonce = STANDARD.encode(random_bytes::<CLIENT_NONCE_BYTES>()?);
        Ok(ScramClient::with_nonce(mechanism, user, password, &nonce))
    }

    /// A login with a chosen nonce: for test vectors, never for real use.
    pub fn with_nonce(
        mechanism: ScramMechanism,
        user: &str,
        password: &str,
        nonce: &str,
    ) -> ScramClient {
        ScramClient {
            mechanism,
            user: user.to_string(),
            password: password.to_string(),
            nonce: nonce.to_string(),
            expected_server_signature: None,
        }
    }

    /// The client-first message: `n,,n=<user>,r=<nonce>`.
    pub fn first_message(&self) -> Vec<u8> {
        ClientFirst::format(&self.user, &self.nonce).into_bytes()
    }

    /// The client-final message answering `server_first`, with the proof. This runs
    /// PBKDF2, the costly step (milliseconds).
    ///
    /// # Errors
    /// When the server-first is malformed, does not extend our nonce, or asks for an
    /// iteration count outside the accepted range.
    pub fn final_message(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramClientError> {
        let server_first = ServerFirst::parse(server_first)?;
        let extends_ours = server_first.nonce.starts_with(&self.nonce)
            && server_first.nonce.len() > self.nonce.len();
        if !extends_ours {
            return Err(ScramClientError::NonceMismatch);
        }
        if !(ITERATIONS_MIN..=ITERATIONS_MAX).contains(&server_first.iterations) {
            return Err(ScramClientError::Iterations {
                iterations: server_first.iterations,
            });
        }
        let mechanism = self.mechanism;
        let salted = mechanism.salted_password(
            self.password.as_bytes(),
            &server_first.salt,
            server_first.iterations,
        );
        let client_first = ClientFirst::format(&self.user, &self.nonce);
        let (_, client_first_bare) = client_first.split_at("n,,".len());
        let without_proof = ClientFinal::format_without_proof("n,,", &server_first.nonce);
        let auth = auth_message(client_first_bare, &server_first.text, &without_proof);
        let client_key = mechanism.hmac(&salted, b"Client Key");
        let client_signature = mechanism.hmac(&mechanism.hash(&client_key), &auth);
        let proof = xor(&client_key, &client_signature);
        let server_key = mechanism.hmac(&salted, b"Server Key");
        self.expected_server_signature = Some(mechanism.hmac(&server_key, &auth));
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the server proved it holds the ServerKey.
    ///
    /// # Errors
    /// When it is malformed, an `e=` error, or carries the wrong signature.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), ScramClientError> {
        let expected = self
            .expected_server_signature
            .as_ref()
            .ok_or(ScramClientError::OutOfOrder)?;
        match ServerFinal::parse(server_final)? {
            ServerFinal::Error(error) => Err(ScramClientError::ServerError(error)),
            ServerFinal::Verifier(signature) if bool::from(signature.ct_eq(expected)) => Ok(()),
            ServerFinal::Verifier(_) => Err(ScramClientError::ServerSignature),
        }
    }
}
