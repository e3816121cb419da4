//! The four SCRAM messages (RFC 5802 section 7), read and written.
//!
//! ```text
//! client-first  = gs2-header [ "m=" ext "," ] "n=" saslname "," "r=" c-nonce ["," extensions]
//! gs2-header    = ("n" / "y" / "p=" cb-name) "," [ "a=" saslname ] ","
//! server-first  = "r=" c-nonce s-nonce "," "s=" base64(salt) "," "i=" iterations ["," extensions]
//! client-final  = "c=" base64(gs2-header) "," "r=" nonce ["," extensions] "," "p=" base64(proof)
//! server-final  = ("v=" base64(server-signature) / "e=" error) ["," extensions]
//! ```
//!
//! No attribute value may hold a comma, so each message splits on commas into its
//! attributes. What Kafka and we accept beyond the grammar: extensions are `[A-Za-z]+` names
//! (Kafka's `tokenauth` is nine letters); user names may be any UTF-8 (Kafka allows only
//! ASCII). What we refuse: channel binding (`p=`), and the mandatory-extension attribute
//! `m=`, which RFC 5802 says a server that does not know it must refuse (Kafka ignores it).
//! Every message is at most [`MESSAGE_MAX_BYTES`].
//!
//! Messages keep the exact text they were read from, because the `AuthMessage` both sides
//! sign is built from the messages as sent.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::formatter::{self, SaslNameError};

/// Longest SCRAM message either side accepts. Real ones are under 300 bytes (a user name,
/// two nonces, a salt and a proof); the limit keeps a client from making the server copy
/// megabytes into its answer, or a server from doing it to a client.
pub const MESSAGE_MAX_BYTES: usize = 8 * 1024;

/// The client-first extension through which Kafka's clients present a delegation token.
pub const TOKEN_AUTH_EXTENSION: &str = "tokenauth";

/// Why a SCRAM message was refused, by the attribute at fault. None of them carries the
/// message's text, which may hold a user name or a password typed into the wrong field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramMessageError {
    /// Longer than [`MESSAGE_MAX_BYTES`].
    #[error("message of {bytes} bytes is longer than {MESSAGE_MAX_BYTES}")]
    TooLong {
        /// Its length.
        bytes: usize,
    },
    /// Not UTF-8.
    #[error("message is not UTF-8")]
    NotUtf8,
    /// The client asked for channel binding (`p=`), which this broker does not offer.
    #[error("channel binding is not supported")]
    ChannelBindingRequested,
    /// The GS2 header is not `n,` or `y,` followed by an optional authzid and a comma.
    #[error("malformed GS2 header")]
    Gs2Header,
    /// The authzid (`a=`) is not a valid saslname.
    #[error("malformed authorization id: {0}")]
    AuthorizationId(SaslNameError),
    /// The mandatory-extension attribute (`m=`) is present.
    #[error("mandatory extension (m=) is not supported")]
    MandatoryExtension,
    /// The user name (`n=`) is missing or is not a valid saslname.
    #[error("malformed user name")]
    UserName(Option<SaslNameError>),
    /// The nonce (`r=`) is missing, empty, or has a character outside 0x21-0x7E.
    #[error("malformed nonce")]
    Nonce,
    /// An extension is not `name=value` with a letters-only name and a non-empty value.
    #[error("malformed extension")]
    Extension,
    /// The salt (`s=`) is missing, not base64, or empty.
    #[error("malformed salt")]
    Salt,
    /// The iteration count (`i=`) is missing or not a positive decimal number.
    #[error("malformed iteration count")]
    Iterations,
    /// The channel binding (`c=`) is missing or not base64.
    #[error("malformed channel binding")]
    ChannelBinding,
    /// The proof (`p=`) is missing, not last, or not base64.
    #[error("malformed proof")]
    Proof,
    /// The server final message has neither `v=` nor `e=`, or its signature is not base64.
    #[error("malformed server final message")]
    ServerFinal,
}

/// The client's first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The GS2 header as sent, commas included (`n,,`); the client-final's `c=` must be it.
    pub gs2_header: String,
    /// The requested authorization id, unescaped; `None` when the header has none.
    pub authorization_id: Option<String>,
    /// The user name, unescaped.
    pub user: String,
    /// The client's nonce.
    pub nonce: String,
    /// The extensions, in order, as `(name, value)`.
    pub extensions: Vec<(String, String)>,
    /// Everything after the GS2 header, as sent: the first part of the `AuthMessage`.
    pub bare: String,
}

impl ClientFirst {
    /// The client-first message a client sends: `n,,n=<saslname>,r=<nonce>`.
    pub fn format(user: &str, nonce: &str) -> String {
        format!("n,,n={},r={nonce}", formatter::sasl_name(user))
    }

    /// Reads a client-first message.
    ///
    /// # Errors
    /// The attribute at fault.
    pub fn parse(token: &[u8]) -> Result<ClientFirst, ScramMessageError> {
        let text = text(token)?;
        let mut attributes = text.split(',');
        let flag = attributes.next().unwrap_or_default();
        match flag {
            "n" | "y" => {}
            _ if flag.starts_with("p=") => return Err(ScramMessageError::ChannelBindingRequested),
            _ => return Err(ScramMessageError::Gs2Header),
        }
        let authorization = attributes.next().ok_or(ScramMessageError::Gs2Header)?;
        let authorization_id = match authorization {
            "" => None,
            _ => {
                let escaped = authorization
                    .strip_prefix("a=")
                    .ok_or(ScramMessageError::Gs2Header)?;
                Some(formatter::user_name(escaped).map_err(ScramMessageError::AuthorizationId)?)
            }
        };
        let header_bytes = flag.len() + authorization.len() + 2;
        let bare = text
            .get(header_bytes..)
            .ok_or(ScramMessageError::Gs2Header)?;
        let mut attributes = bare.split(',').peekable();
        if attributes
            .peek()
            .is_some_and(|first| first.starts_with("m="))
        {
            return Err(ScramMessageError::MandatoryExtension);
        }
        let user = attributes
            .next()
            .and_then(|attribute| attribute.strip_prefix("n="))
            .ok_or(ScramMessageError::UserName(None))?;
        let user =
            formatter::user_name(user).map_err(|error| ScramMessageError::UserName(Some(error)))?;
        let nonce = nonce(attributes.next())?;
        Ok(ClientFirst {
            gs2_header: text[..header_bytes].to_string(),
            authorization_id,
            user,
            nonce: nonce.to_string(),
            extensions: extensions(attributes)?,
            bare: bare.to_string(),
        })
    }

    /// Whether the client presents a delegation token (`tokenauth=true`, compared as Kafka
    /// does, ignoring case).
    pub fn token_authentication(&self) -> bool {
        self.extensions
            .iter()
            .any(|(name, value)| name == TOKEN_AUTH_EXTENSION && value.eq_ignore_ascii_case("true"))
    }
}

/// The server's first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFirst {
    /// The client's nonce followed by the server's.
    pub nonce: String,
    /// The credential's salt.
    pub salt: Vec<u8>,
    /// The credential's iteration count.
    pub iterations: u32,
    /// The message as sent: the second part of the `AuthMessage`.
    pub text: String,
}

impl ServerFirst {
    /// The server-first message: `r=<nonce>,s=<base64 salt>,i=<iterations>`.
    pub fn format(nonce: &str, salt: &[u8], iterations: u32) -> String {
        format!("r={nonce},s={},i={iterations}", STANDARD.encode(salt))
    }

    /// Reads a server-first message (the client's side).
    ///
    /// # Errors
    /// The attribute at fault.
    pub fn parse(token: &[u8]) -> Result<ServerFirst, ScramMessageError> {
        let text = text(token)?;
        let mut attributes = text.split(',').peekable();
        if attributes
            .peek()
            .is_some_and(|first| first.starts_with("m="))
        {
            return Err(ScramMessageError::MandatoryExtension);
        }
        let nonce = nonce(attributes.next())?.to_string();
        let salt = attributes
            .next()
            .and_then(|attribute| attribute.strip_prefix("s="))
            .and_then(|salt| STANDARD.decode(salt).ok())
            .filter(|salt| !salt.is_empty())
            .ok_or(ScramMessageError::Salt)?;
        let iterations = attributes
            .next()
            .and_then(|attribute| attribute.strip_prefix("i="))
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u32>().ok())
            .filter(|iterations| *iterations > 0)
            .ok_or(ScramMessageError::Iterations)?;
        extensions(attributes)?;
        Ok(ServerFirst {
            nonce,
            salt,
            iterations,
            text: text.to_string(),
        })
    }
}

/// The client's final message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFinal {
    /// The decoded `c=`: the GS2 header (and channel binding data, which we refuse).
    pub channel_binding: Vec<u8>,
    /// The nonce the client repeats.
    pub nonce: String,
    /// The decoded proof.
    pub proof: Vec<u8>,
    /// Everything before `,p=`, as sent: the third part of the `AuthMessage`.
    pub without_proof: String,
}

impl ClientFinal {
    /// The client-final message without its proof: `c=<base64 gs2 header>,r=<nonce>`.
    pub fn format_without_proof(gs2_header: &str, nonce: &str) -> String {
        format!("c={},r={nonce}", STANDARD.encode(gs2_header))
    }

    /// Reads a client-final message.
    ///
    /// # Errors
    /// The attribute at fault.
    pub fn parse(token: &[u8]) -> Result<ClientFinal, ScramMessageError> {
        let text = text(token)?;
        let (without_proof, proof) = text.rsplit_once(',').ok_or(ScramMessageError::Proof)?;
        let proof = proof
            .strip_prefix("p=")
            .and_then(|proof| STANDARD.decode(proof).ok())
            .ok_or(ScramMessageError::Proof)?;
        let mut attributes = without_proof.split(',');
        let channel_binding = attributes
            .next()
            .and_then(|attribute| attribute.strip_prefix("c="))
            .and_then(|binding| STANDARD.decode(binding).ok())
            .ok_or(ScramMessageError::ChannelBinding)?;
        let nonce = nonce(attributes.next())?.to_string();
        extensions(attributes)?;
        Ok(ClientFinal {
            channel_binding,
            nonce,
            proof,
            without_proof: without_proof.to_string(),
        })
    }
}

/// The server's final message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFinal {
    /// `v=`: the server signature, which proves the server knew the ServerKey.
    Verifier(Vec<u8>),
    /// `e=`: the server's error value.
    Error(String),
}

impl ServerFinal {
    /// The success message: `v=<base64 server signature>`.
    pub fn format(server_signature: &[u8]) -> String {
        format!("v={}", STANDARD.encode(server_signature))
    }

    /// Reads a server-final message (the client's side).
    ///
    /// # Errors
    /// [`ScramMessageError::ServerFinal`] when it is neither form.
    pub fn parse(token: &[u8]) -> Result<ServerFinal, ScramMessageError> {
        let text = text(token)?;
        let mut attributes = text.split(',');
        let first = attributes.next().unwrap_or_default();
        let parsed = if let Some(signature) = first.strip_prefix("v=") {
            let signature = STANDARD
                .decode(signature)
                .map_err(|_| ScramMessageError::ServerFinal)?;
            ServerFinal::Verifier(signature)
        } else if let Some(error) = first.strip_prefix("e=") {
            ServerFinal::Error(error.to_string())
        } else {
            return Err(ScramMessageError::ServerFinal);
        };
        extensions(attributes)?;
        Ok(parsed)
    }
}

/// The token as text, within the size limit.
fn text(token: &[u8]) -> Result<&str, ScramMessageError> {
    if token.len() > MESSAGE_MAX_BYTES {
        return Err(ScramMessageError::TooLong { bytes: token.len() });
    }
    std::str::from_utf8(token).map_err(|_| ScramMessageError::NotUtf8)
}

/// An `r=` attribute's value: one or more printable ASCII characters other than a comma.
fn nonce(attribute: Option<&str>) -> Result<&str, ScramMessageError> {
    attribute
        .and_then(|attribute| attribute.strip_prefix("r="))
        .filter(|nonce| {
            !nonce.is_empty() && nonce.bytes().all(|byte| (0x21..=0x7e).contains(&byte))
        })
        .ok_or(ScramMessageError::Nonce)
}

/// The remaining attributes as extensions: `name=value`, the name letters only, the value
/// non-empty and without NUL.
fn extensions<'a>(
    attributes: impl Iterator<Item = &'a str>,
) -> Result<Vec<(String, String)>, ScramMessageError> {
    attributes
        .map(|attribute| {
            let (name, value) = attribute
                .split_once('=')
                .ok_or(ScramMessageError::Extension)?;
            let name_ok = !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_alphabetic());
            let value_ok = !value.is_empty() && !value.contains('\0');
            if name_ok && value_ok {
                Ok((name.to_string(), value.to_string()))
            } else {
                Err(ScramMessageError::Extension)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_first(text: &str) -> Result<ClientFirst, ScramMessageError> {
        ClientFirst::parse(text.as_bytes())
    }

    #[test]
    fn client_first_reads_header_user_nonce_and_extensions() {
        // A full client-first message splits into its parts, the bare part kept verbatim.
        let message = client_first("n,a=al=2Cice,n=al=2Cice,r=abc,tokenauth=true").expect("parses");
        assert_eq!(message.gs2_header, "n,a=al=2Cice,");
        assert_eq!(message.authorization_id.as_deref(), Some("al,ice"));
        assert_eq!(message.user, "al,ice");
        assert_eq!(message.nonce, "abc");
        assert_eq!(message.bare, "n=al=2Cice,r=abc,tokenauth=true");
        assert!(message.token_authentication());
        let plain = client_first("y,,n=bob,r=x").expect("parses");
        assert_eq!(plain.authorization_id, None);
        assert!(!plain.token_authentication());
        assert_eq!(
            client_first(&ClientFirst::format("a,b", "n0"))
                .expect("parses")
                .user,
            "a,b"
        );
    }

    #[test]
    fn client_first_refuses_each_malformed_attribute() {
        // Every attribute has a way to be wrong, and each is named in the error.
        use ScramMessageError as E;
        let cases: &[(&str, E)] = &[
            ("p=tls-unique,,n=u,r=x", E::ChannelBindingRequested),
            ("", E::Gs2Header),
            ("n", E::Gs2Header),
            ("n,", E::Gs2Header),
            ("x,,n=u,r=x", E::Gs2Header),
            ("n,b=u,n=u,r=x", E::Gs2Header),
            ("n,a=,n=u,r=x", E::AuthorizationId(SaslNameError::Empty)),
            ("n,,m=ext,n=u,r=x", E::MandatoryExtension),
            ("n,,r=x,n=u", E::UserName(None)),
            ("n,,n=,r=x", E::UserName(Some(SaslNameError::Empty))),
            ("n,,n=a=2,r=x", E::UserName(Some(SaslNameError::BadEscape))),
            ("n,,n=u", E::Nonce),
            ("n,,n=u,r=", E::Nonce),
            ("n,,n=u,r=a b", E::Nonce),
            ("n,,n=u,r=é", E::Nonce),
            ("n,,n=u,r=x,", E::Extension),
            ("n,,n=u,r=x,t0=1", E::Extension),
            ("n,,n=u,r=x,t=", E::Extension),
            ("n,,n=u,r=x,novalue", E::Extension),
        ];
        for (text, expected) in cases {
            assert_eq!(client_first(text).as_ref(), Err(expected), "{text:?}");
        }
        assert_eq!(ClientFirst::parse(b"n,,n=\xff,r=x"), Err(E::NotUtf8));
        let long = format!("n,,n=u,r={}", "x".repeat(MESSAGE_MAX_BYTES));
        assert!(matches!(client_first(&long), Err(E::TooLong { .. })));
    }

    #[test]
    fn server_first_client_final_and_server_final_round_trip() {
        // What one side formats, the other side reads back.
        let text = ServerFirst::format("cnsn", b"salt", 4096);
        let server_first = ServerFirst::parse(text.as_bytes()).expect("parses");
        assert_eq!(
            (server_first.nonce.as_str(), server_first.iterations),
            ("cnsn", 4096)
        );
        assert_eq!(server_first.salt, b"salt");
        let without_proof = ClientFinal::format_without_proof("n,,", "cnsn");
        assert_eq!(without_proof, "c=biws,r=cnsn");
        let final_text = format!("{without_proof},p={}", STANDARD.encode([1, 2, 3]));
        let client_final = ClientFinal::parse(final_text.as_bytes()).expect("parses");
        assert_eq!(client_final.channel_binding, b"n,,");
        assert_eq!(client_final.proof, [1, 2, 3]);
        assert_eq!(client_final.without_proof, without_proof);
        let verifier = ServerFinal::format(&[9, 9]);
        assert_eq!(
            ServerFinal::parse(verifier.as_bytes()),
            Ok(ServerFinal::Verifier(vec![9, 9]))
        );
        assert_eq!(
            ServerFinal::parse(b"e=invalid-proof"),
            Ok(ServerFinal::Error("invalid-proof".into()))
        );
    }

    #[test]
    fn server_first_client_final_and_server_final_refuse_malformed_attributes() {
        // Each later message refuses a missing, misplaced or undecodable attribute.
        use ScramMessageError as E;
        let server_first: &[(&str, E)] = &[
            ("m=x,r=n,s=c2FsdA==,i=1", E::MandatoryExtension),
            ("s=c2FsdA==,i=1", E::Nonce),
            ("r=n,i=1", E::Salt),
            ("r=n,s=!!,i=1", E::Salt),
            ("r=n,s=,i=1", E::Salt),
            ("r=n,s=c2FsdA==", E::Iterations),
            ("r=n,s=c2FsdA==,i=0", E::Iterations),
            ("r=n,s=c2FsdA==,i=-1", E::Iterations),
            ("r=n,s=c2FsdA==,i=+5", E::Iterations),
            ("r=n,s=c2FsdA==,i=99999999999", E::Iterations),
            ("r=n,s=c2FsdA==,i=1,=x", E::Extension),
        ];
        for (text, expected) in server_first {
            assert_eq!(
                ServerFirst::parse(text.as_bytes()).as_ref(),
                Err(expected),
                "{text:?}"
            );
        }
        let client_final: &[(&str, E)] = &[
            ("c=biws,r=n", E::Proof),
            ("c=biws,r=n,p=!!", E::Proof),
            ("p=AAAA", E::Proof),
            ("c=biws,r=n,p=AAAA,x=1", E::Proof),
            ("r=n,c=biws,p=AAAA", E::ChannelBinding),
            ("c=b,r=n,p=AAAA", E::ChannelBinding),
            ("c=biws,p=AAAA", E::Nonce),
            ("c=biws,r=,p=AAAA", E::Nonce),
            ("c=biws,r=n,1=x,p=AAAA", E::Extension),
        ];
        for (text, expected) in client_final {
            assert_eq!(
                ClientFinal::parse(text.as_bytes()).as_ref(),
                Err(expected),
                "{text:?}"
            );
        }
        for text in ["", "x=1", "v=!!", "v=AAAA,bad"] {
            assert!(ServerFinal::parse(text.as_bytes()).is_err(), "{text:?}");
        }
    }
}
