//! SASL authentication of the admin client, as Kafka's Java client runs it after
//! ApiVersions: SaslHandshake v1 picks the mechanism, then SaslAuthenticate v2 requests
//! carry the tokens.
//!
//! ```text
//! PLAIN:  [authzid] NUL user NUL password                    one token, empty answer
//! SCRAM:  client-first -> server-first, client-final -> server-final (checked)
//! ```
//!
//! A refusal is [`AdminClientError::Authentication`] with the broker's error code
//! (SASL_AUTHENTICATION_FAILED) and message; a SCRAM server that cannot prove it knows the
//! user's keys is [`AdminClientError::Scram`].

use bytes::Bytes;
use riffle_protocol::api::sasl_authenticate::SaslAuthenticateRequest;
use riffle_protocol::api::sasl_handshake::SaslHandshakeRequest;
use riffle_protocol::{ApiKey, ErrorCode, Request, Response};

use super::{AdminClient, AdminClientError, BrokerErrorCode};
use crate::client_config::{SaslCredentials, SaslMechanism};
use riffle_server::security::ScramClient;

/// SaslHandshake version: v1 moves the tokens into SaslAuthenticate requests.
const SASL_HANDSHAKE_VERSION: i16 = 1;
/// SaslAuthenticate version: v2 is flexible; v1 added the session lifetime.
const SASL_AUTHENTICATE_VERSION: i16 = 2;

impl AdminClient {
    /// Authenticates the connection as `credentials` say.
    ///
    /// # Errors
    /// A mechanism the broker does not enable, a refused login, a SCRAM server that fails
    /// its proof, or a request error.
    pub(super) fn authenticate(
        &mut self,
        credentials: &SaslCredentials,
    ) -> Result<(), AdminClientError> {
        self.sasl_handshake(credentials.mechanism)?;
        match credentials.mechanism {
            SaslMechanism::Plain => {
                let token = plain_token(&credentials.username, &credentials.password);
                self.sasl_authenticate(credentials, token)?;
                Ok(())
            }
            SaslMechanism::Scram(mechanism) => {
                let mut scram =
                    ScramClient::new(mechanism, &credentials.username, &credentials.password)
                        .map_err(|source| AdminClientError::Scram { source })?;
                let server_first = self.sasl_authenticate(credentials, scram.first_message())?;
                let client_final = scram
                    .final_message(&server_first)
                    .map_err(|source| AdminClientError::Scram { source })?;
                let server_final = self.sasl_authenticate(credentials, client_final)?;
                scram
                    .verify_server_final(&server_final)
                    .map_err(|source| AdminClientError::Scram { source })
            }
        }
    }

    /// SaslHandshake v1 for `mechanism`.
    fn sasl_handshake(&mut self, mechanism: SaslMechanism) -> Result<(), AdminClientError> {
        let request = Request::SaslHandshake(SaslHandshakeRequest {
            mechanism: mechanism.name().to_owned(),
        });
        let Response::SaslHandshake(response) =
            self.send(ApiKey::SaslHandshake, SASL_HANDSHAKE_VERSION, request)?
        else {
            unreachable!("decode_response answers with the requested API");
        };
        match ErrorCode::from_code(response.error_code) {
            Some(ErrorCode::None) => Ok(()),
            Some(ErrorCode::UnsupportedSaslMechanism) => Err(AdminClientError::MechanismDisabled {
                mechanism: mechanism.name(),
                enabled: response.mechanisms.join(", "),
            }),
            _ => Err(AdminClientError::Broker {
                api: ApiKey::SaslHandshake.name(),
                context: format!(" (is {} a SASL listener?)", self.peer),
                code: BrokerErrorCode(response.error_code),
                message: None,
            }),
        }
    }

    /// Sends one token in SaslAuthenticate v2 and returns the broker's answer token.
    fn sasl_authenticate(
        &mut self,
        credentials: &SaslCredentials,
        token: Vec<u8>,
    ) -> Result<Vec<u8>, AdminClientError> {
        let request = Request::SaslAuthenticate(SaslAuthenticateRequest {
            auth_bytes: Bytes::from(token),
        });
        let Response::SaslAuthenticate(response) =
            self.send(ApiKey::SaslAuthenticate, SASL_AUTHENTICATE_VERSION, request)?
        else {
            unreachable!("decode_response answers with the requested API");
        };
        if response.error_code != ErrorCode::None.code() {
            return Err(AdminClientError::Authentication {
                peer: self.peer,
                mechanism: credentials.mechanism.name(),
                username: credentials.username.clone(),
                code: BrokerErrorCode(response.error_code),
                message: response.error_message.unwrap_or_default(),
            });
        }
        Ok(response.auth_bytes.to_vec())
    }
}

/// PLAIN's one message (RFC 4616), with no authorization id.
fn plain_token(username: &str, password: &str) -> Vec<u8> {
    let mut token = Vec::with_capacity(2 + username.len() + password.len());
    token.push(0);
    token.extend_from_slice(username.as_bytes());
    token.push(0);
    token.extend_from_slice(password.as_bytes());
    token
}
