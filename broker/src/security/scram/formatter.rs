//! RFC 5802's functions, generic over the hash: `Hi`, the client and server keys, the
//! signatures and the proof, and the `saslname` escaping of user names.
//!
//! ```text
//! SaltedPassword  := Hi(password, salt, i)          (PBKDF2 with HMAC-H)
//! ClientKey       := HMAC(SaltedPassword, "Client Key")
//! StoredKey       := H(ClientKey)
//! ServerKey       := HMAC(SaltedPassword, "Server Key")
//! AuthMessage     := client-first-message-bare "," server-first-message ","
//!                    client-final-message-without-proof
//! ClientSignature := HMAC(StoredKey, AuthMessage)
//! ClientProof     := ClientKey XOR ClientSignature
//! ServerSignature := HMAC(ServerKey, AuthMessage)
//! ```
//!
//! The server keeps only the salt, StoredKey, ServerKey and the iteration count. It checks
//! a proof by recovering `ClientKey = ClientProof XOR ClientSignature` and comparing
//! `H(ClientKey)` with StoredKey in constant time. Passwords are used as their UTF-8 bytes
//! without SASLprep, as Kafka does, so a password works the same against both.
//!
//! Generic so that the tests can run RFC 5802's own example, which is SCRAM-SHA-1;
//! [`ScramMechanism`](super::ScramMechanism) picks SHA-256 or SHA-512 for real use.

use hmac::{EagerHash, Hmac, KeyInit, Mac};

/// `H(data)`.
pub fn hash<D: EagerHash>(data: &[u8]) -> Vec<u8> {
    D::digest(data).to_vec()
}

/// `HMAC(key, data)`.
pub fn hmac<D: EagerHash>(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC hashes long keys and pads short ones: every length is valid, so this cannot fail.
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `Hi(password, salt, iterations)`, which RFC 5802 defines as PBKDF2 with HMAC-H and an
/// output as long as H's.
pub fn salted_password<D: EagerHash>(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut salted = vec![0u8; <D as hmac::digest::OutputSizeUser>::output_size()];
    pbkdf2::pbkdf2_hmac::<D>(password, salt, iterations, &mut salted);
    salted
}

/// `ClientKey := HMAC(SaltedPassword, "Client Key")`.
pub fn client_key<D: EagerHash>(salted_password: &[u8]) -> Vec<u8> {
    hmac::<D>(salted_password, b"Client Key")
}

/// `StoredKey := H(ClientKey)`, derived from the salted password.
pub fn stored_key<D: EagerHash>(salted_password: &[u8]) -> Vec<u8> {
    hash::<D>(&client_key::<D>(salted_password))
}

/// `ServerKey := HMAC(SaltedPassword, "Server Key")`.
pub fn server_key<D: EagerHash>(salted_password: &[u8]) -> Vec<u8> {
    hmac::<D>(salted_password, b"Server Key")
}

/// `ClientProof := ClientKey XOR HMAC(StoredKey, AuthMessage)`.
pub fn client_proof<D: EagerHash>(salted_password: &[u8], auth_message: &[u8]) -> Vec<u8> {
    let client_key = client_key::<D>(salted_password);
    let client_signature = hmac::<D>(&hash::<D>(&client_key), auth_message);
    xor(&client_key, &client_signature)
}

/// `ServerSignature := HMAC(ServerKey, AuthMessage)`.
pub fn server_signature<D: EagerHash>(server_key: &[u8], auth_message: &[u8]) -> Vec<u8> {
    hmac::<D>(server_key, auth_message)
}

/// `AuthMessage`: the three messages as they were sent, joined by commas.
pub fn auth_message(
    client_first_bare: &str,
    server_first: &str,
    client_final_without_proof: &str,
) -> Vec<u8> {
    [client_first_bare, server_first, client_final_without_proof]
        .join(",")
        .into_bytes()
}

/// Byte-wise XOR of two equally long values.
///
/// # Panics
/// When the lengths differ: callers check a proof's length against the hash's first.
pub fn xor(first: &[u8], second: &[u8]) -> Vec<u8> {
    assert_eq!(
        first.len(),
        second.len(),
        "XOR of values of different lengths"
    );
    first.iter().zip(second).map(|(a, b)| a ^ b).collect()
}

/// A user name as a SCRAM `saslname`: `=` becomes `=3D` and `,` becomes `=2C`, so the
/// name cannot end the attribute early.
pub fn sasl_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// Why a `saslname` does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaslNameError {
    /// The name is empty.
    #[error("empty")]
    Empty,
    /// An `=` not followed by `2C` or `3D`.
    #[error("'=' not followed by 2C or 3D")]
    BadEscape,
    /// A NUL or a raw comma.
    #[error("contains a NUL or an unescaped comma")]
    ForbiddenCharacter,
}

/// The user name a `saslname` stands for: `=2C` becomes `,` and `=3D` becomes `=`; any
/// other `=` is an error (RFC 5802 section 5.1, and Kafka's `ScramFormatter.username`).
pub fn user_name(sasl_name: &str) -> Result<String, SaslNameError> {
    if sasl_name.is_empty() {
        return Err(SaslNameError::Empty);
    }
    let mut user = String::with_capacity(sasl_name.len());
    let mut rest = sasl_name;
    while let Some(character) = rest.chars().next() {
        rest = &rest[character.len_utf8()..];
        match character {
            '=' => {
                let escaped = rest.get(..2).ok_or(SaslNameError::BadEscape)?;
                user.push(match escaped {
                    "2C" => ',',
                    "3D" => '=',
                    _ => return Err(SaslNameError::BadEscape),
                });
                rest = &rest[2..];
            }
            '\0' | ',' => return Err(SaslNameError::ForbiddenCharacter),
            other => user.push(other),
        }
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use sha1::Sha1;

    use super::*;

    #[test]
    fn rfc_5802_example_exchange_gives_its_proof_and_signature() {
        // RFC 5802 section 5 (SCRAM-SHA-1, user "user", password "pencil"): the formatter
        // computes the proof and the server signature the RFC prints.
        let salt = STANDARD.decode("QSXCR+Q6sek8bf92").expect("base64");
        let salted = salted_password::<Sha1>(b"pencil", &salt, 4096);
        let nonce = "fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j";
        let auth = auth_message(
            "n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            &format!("r={nonce},s=QSXCR+Q6sek8bf92,i=4096"),
            &format!("c=biws,r={nonce}"),
        );
        let proof = client_proof::<Sha1>(&salted, &auth);
        assert_eq!(STANDARD.encode(proof), "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
        let signature = server_signature::<Sha1>(&server_key::<Sha1>(&salted), &auth);
        assert_eq!(STANDARD.encode(signature), "rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    }

    #[test]
    fn sasl_names_escape_and_unescape_commas_and_equals() {
        // Escaping round-trips every awkward name, and the decoder refuses what RFC 5802
        // forbids: empty names, stray '=', raw commas and NULs.
        for user in ["alice", "a,b", "a=b", "=2C", "=3D=", "ünïcode,="] {
            assert_eq!(user_name(&sasl_name(user)), Ok(user.to_string()), "{user}");
        }
        assert_eq!(sasl_name("a=b,c"), "a=3Db=2Cc");
        assert_eq!(user_name("=3D2C"), Ok("=2C".to_string()));
        assert_eq!(user_name(""), Err(SaslNameError::Empty));
        for bad in ["=", "a=", "a=2", "a=2c", "a=41", "=é9"] {
            assert_eq!(user_name(bad), Err(SaslNameError::BadEscape), "{bad}");
        }
        for bad in ["a,b", "a\0b"] {
            assert_eq!(
                user_name(bad),
                Err(SaslNameError::ForbiddenCharacter),
                "{bad}"
            );
        }
    }
}
