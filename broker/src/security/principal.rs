//! A principal, as Kafka names them: a type and a name, written `User:alice`.

use std::fmt;

/// Kafka's principal type for users, the only one its authenticators produce.
pub const USER_TYPE: &str = "User";
/// The name of the principal of a connection that did not authenticate.
pub const ANONYMOUS_NAME: &str = "ANONYMOUS";

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    /// The type, `User` for every principal an authenticator makes.
    pub principal_type: String,
    /// The name: a SASL user name, or a client certificate's subject.
    pub name: String,
}

/// Why a principal could not be read from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a principal: expected TYPE:NAME, such as User:alice")]
pub struct PrincipalParseError(pub String);

impl Principal {
    /// `User:<name>`.
    pub fn user(name: impl Into<String>) -> Principal {
        Principal {
            principal_type: USER_TYPE.to_string(),
            name: name.into(),
        }
    }

    /// `User:ANONYMOUS`: a connection that did not authenticate.
    pub fn anonymous() -> Principal {
        Principal::user(ANONYMOUS_NAME)
    }

    /// Reads `TYPE:NAME` (the name may itself contain colons, as a certificate subject can).
    ///
    /// # Errors
    /// When there is no colon, or either side is empty.
    pub fn parse(text: &str) -> Result<Principal, PrincipalParseError> {
        match text.split_once(':') {
            Some((principal_type, name)) if !principal_type.is_empty() && !name.is_empty() => {
                Ok(Principal {
                    principal_type: principal_type.to_string(),
                    name: name.to_string(),
                })
            }
            _ => Err(PrincipalParseError(text.to_string())),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.principal_type, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_read_and_write_as_type_colon_name() {
        let subject = Principal::parse("User:CN=client,O=Riffle:1").expect("parses");
        assert_eq!(subject.name, "CN=client,O=Riffle:1");
        assert_eq!(subject.to_string(), "User:CN=client,O=Riffle:1");
        assert_eq!(Principal::anonymous().to_string(), "User:ANONYMOUS");
        for bad in ["alice", ":alice", "User:"] {
            assert!(Principal::parse(bad).is_err(), "{bad}");
        }
    }
}
