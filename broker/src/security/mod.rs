//! Who a client is and what it may do: principals, SASL authentication and the ACL
//! authorizer.
//!
//! A connection starts as [`Principal::anonymous`] (a PLAINTEXT or SSL listener without a
//! client certificate) and becomes the principal its client certificate or SASL exchange
//! proves. Handlers see it in their [`RequestContext`](crate::handler::RequestContext).

pub mod principal;
pub mod sasl;

pub use principal::Principal;
