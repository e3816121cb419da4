//! The two SCRAM mechanisms Kafka defines, their names, their wire numbers (KIP-554) and
//! the hash each one runs the [`formatter`](super::formatter) with.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Sha256, Sha512};

use super::formatter;

/// Fewest PBKDF2 iterations a credential may have: Kafka's minimum (and default) for both
/// mechanisms. The SCRAM server refuses a stored credential below it, the client a server
/// that asks for fewer.
pub const ITERATIONS_MIN: u32 = 4096;
/// Most iterations a credential may have: Kafka's controller refuses more (its
/// `MAX_ITERATIONS`), and the client refuses a server asking for more, which bounds the
/// work a hostile server can make a client do.
pub const ITERATIONS_MAX: u32 = 16384;
/// The iterations `riffle users add` uses unless told otherwise.
pub const ITERATIONS_DEFAULT: u32 = ITERATIONS_MIN;

const _: () = assert!(ITERATIONS_MIN <= ITERATIONS_DEFAULT);
const _: () = assert!(ITERATIONS_DEFAULT <= ITERATIONS_MAX);

/// A SCRAM mechanism. Ordered as Kafka numbers them, so SHA-256 sorts first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256 (RFC 7677).
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    /// SCRAM-SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

/// A mechanism name this broker does not implement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a SCRAM mechanism: expected SCRAM-SHA-256 or SCRAM-SHA-512")]
pub struct UnknownScramMechanism(pub String);

impl ScramMechanism {
    /// Both mechanisms, in Kafka's order.
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name: `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => crate::security::sasl::SCRAM_SHA_256,
            ScramMechanism::Sha512 => crate::security::sasl::SCRAM_SHA_512,
        }
    }

    /// The mechanism with this SASL name (exact, as Kafka compares them).
    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL
            .into_iter()
            .find(|mechanism| mechanism.name() == name)
    }

    /// The number KIP-554's APIs carry (`mechanism: int8`): 1 for SHA-256, 2 for SHA-512;
    /// 0 is Kafka's UNKNOWN.
    pub fn wire_type(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// The mechanism with this wire number, if it is one.
    pub fn from_wire_type(wire_type: i8) -> Option<ScramMechanism> {
        ScramMechanism::ALL
            .into_iter()
            .find(|mechanism| mechanism.wire_type() == wire_type)
    }

    /// Bytes of the hash's output: the length of a salted password, a key, a proof and a
    /// signature.
    pub fn output_bytes(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }

    /// `H(data)`.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => formatter::hash::<Sha256>(data),
            ScramMechanism::Sha512 => formatter::hash::<Sha512>(data),
        }
    }

    /// `HMAC(key, data)`.
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => formatter::hmac::<Sha256>(key, data),
            ScramMechanism::Sha512 => formatter::hmac::<Sha512>(key, data),
        }
    }

    /// `Hi(password, salt, iterations)`: PBKDF2 with this mechanism's HMAC. The expensive
    /// step, run once per `riffle users add`, per PLAIN login and per SCRAM client login.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                formatter::salted_password::<Sha256>(password, salt, iterations)
            }
            ScramMechanism::Sha512 => {
                formatter::salted_password::<Sha512>(password, salt, iterations)
            }
        }
    }
}

impl fmt::Display for ScramMechanism {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl FromStr for ScramMechanism {
    type Err = UnknownScramMechanism;

    fn from_str(name: &str) -> Result<ScramMechanism, UnknownScramMechanism> {
        ScramMechanism::from_name(name).ok_or_else(|| UnknownScramMechanism(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_wire_types_round_trip_as_kafka_numbers_them() {
        for mechanism in ScramMechanism::ALL {
            assert_eq!(ScramMechanism::from_name(mechanism.name()), Some(mechanism));
            assert_eq!(
                ScramMechanism::from_wire_type(mechanism.wire_type()),
                Some(mechanism)
            );
            assert_eq!(mechanism.hash(b"").len(), mechanism.output_bytes());
        }
        assert_eq!(ScramMechanism::Sha256.wire_type(), 1);
        assert_eq!(ScramMechanism::Sha512.wire_type(), 2);
        assert_eq!(ScramMechanism::from_wire_type(0), None);
        assert!("scram-sha-256".parse::<ScramMechanism>().is_err());
        assert!("PLAIN".parse::<ScramMechanism>().is_err());
    }
}
