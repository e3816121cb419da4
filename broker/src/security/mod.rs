//! Who a client is and what it may do: principals, SASL authentication and the ACL
//! authorizer.
//!
//! A connection starts as [`Principal::anonymous`] (a PLAINTEXT or SSL listener without a
//! client certificate) and becomes the principal its client certificate or SASL exchange
//! proves. Handlers see it in their [`RequestContext`](crate::handler::RequestContext).
//!
//! SASL: [`sasl::start`] begins an exchange of PLAIN ([`plain`]) or SCRAM ([`scram`]),
//! both checked against the [`CredentialStore`] of salted SCRAM keys that the metadata log
//! keeps ([`credentials`]).
//!
//! With `--authorizer acl`, [`authorizer::Authorizer`] decides what each principal may do
//! from the ACLs ([`acl`]) that CreateAcls stores; without it everyone may do everything.

pub mod acl;
pub mod authorizer;
pub mod credentials;
pub mod plain;
pub mod principal;
pub mod random;
pub mod sasl;
pub mod scram;
pub mod subject;
pub mod tls;

pub use authorizer::Authorizer;
pub use credentials::{CredentialStore, ScramCredential};
pub use principal::Principal;
pub use scram::{ScramClient, ScramMechanism};
#[cfg(any(test, feature = "testing"))]
pub mod test_pki;
