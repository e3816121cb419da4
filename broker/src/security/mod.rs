//! Who a client is and what it may do: principals, SASL authentication, TLS (server and
//! client configurations, certificate subjects) and the ACL authorizer.
//!
//! A connection starts as [`Principal::anonymous`] (a PLAINTEXT or SSL listener without a
//! client certificate) and becomes the principal its client certificate or SASL exchange
//! proves. Handlers see it in their [`RequestContext`](crate::handler::RequestContext).

pub mod principal;
pub mod sasl;
pub mod subject;
pub mod tls;

pub use principal::Principal;
#[cfg(test)]
pub(crate) mod test_pki;
