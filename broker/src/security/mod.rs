//! Who a client is and what it may do: principals, SASL authentication and the ACL
//! authorizer.
//!
//! A connection starts as [`Principal::anonymous`] (a PLAINTEXT or SSL listener without a
//! client certificate) and becomes the principal its client certificate or SASL exchange
//! proves. Handlers see it in their [`RequestContext`](crate::handler::RequestContext).
//!
//! With `--authorizer acl`, [`authorizer::Authorizer`] decides what each principal may do
//! from the ACLs ([`acl`]) that CreateAcls stores; without it everyone may do everything.

pub mod acl;
pub mod authorizer;
pub mod principal;
pub mod sasl;

pub use authorizer::Authorizer;
pub use principal::Principal;
