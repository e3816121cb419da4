//! SCRAM (RFC 5802, RFC 7677) as Kafka speaks it: SCRAM-SHA-256 and SCRAM-SHA-512.
//!
//! Start with [`ScramServer`], the state machine a SASL connection drives; [`ScramClient`]
//! is its counterpart for Riffle's own tools. [`formatter`] holds the RFC's key and proof
//! functions, [`messages`] the four messages' grammar, [`mechanism`] the two hashes and
//! the iteration limits.

pub mod client;
pub mod formatter;
pub mod mechanism;
pub mod messages;
pub mod server;

pub use client::{ScramClient, ScramClientError};
pub use mechanism::{
    ITERATIONS_DEFAULT, ITERATIONS_MAX, ITERATIONS_MIN, ScramMechanism, UnknownScramMechanism,
};
pub use messages::ScramMessageError;
pub use server::ScramServer;
