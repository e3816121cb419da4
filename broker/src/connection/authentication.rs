//! SASL authentication of a connection on a SASL_PLAINTEXT or SASL_SSL listener, before
//! any other request: Kafka's `SaslServerAuthenticator`.
//!
//! [`SaslAuthenticator`] is the state machine, fed one frame at a time and answering what
//! to send; [`authenticate`] is the thin driver that reads frames from the socket, writes
//! the answers and waits out the failed-authentication delay. The exchange runs one frame
//! at a time (no pipelining), as in Kafka, under the listener's authentication deadline
//! and with frames capped at `sasl_server_max_receive_bytes`.
//!
//! # Wire flow
//! ```text
//! ApiVersions (optional, once)  ->  SaslHandshake v0 | v1 (picks the mechanism)
//!   v0: raw tokens, each a 4-byte size and the bytes, answered the same way
//!   v1: SaslAuthenticate v0-v2 requests carrying the tokens, answered in kind
//! ```
//! Anything else before authentication closes the connection at once (Kafka's
//! ILLEGAL_SASL_STATE). An unknown mechanism is answered UNSUPPORTED_SASL_MECHANISM with
//! the enabled list, a refused exchange SASL_AUTHENTICATION_FAILED with the exchange's
//! message; both then close after `connection_failed_authentication_delay_ms`. Tokens are
//! never logged. Re-authentication (KIP-368) is not offered: `session_lifetime_ms` is 0.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use riffle_protocol::api::sasl_authenticate::SaslAuthenticateResponse;
use riffle_protocol::api::sasl_handshake::{SaslHandshakeRequest, SaslHandshakeResponse};
use riffle_protocol::frame::{FRAME_SIZE_PREFIX_BYTES, FrameCheck, check_frame};
use riffle_protocol::{ApiKey, ErrorCode, Request, RequestHeader, Response, encode_response};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{ConnectionError, Inbound, Transport, decode, starts_with_tls_handshake};
use crate::handler::api_versions;
use crate::security::Principal;
use crate::security::sasl::{SaslExchange, SaslStep};

/// Where a connection is in its SASL exchange.
enum SaslState {
    /// Nothing yet: ApiVersions or SaslHandshake may come.
    Initial,
    /// ApiVersions answered: only SaslHandshake may come.
    Handshake,
    /// A mechanism is chosen; tokens come raw (after a v0 handshake) or in
    /// SaslAuthenticate requests (v1).
    Authenticate {
        exchange: Box<dyn SaslExchange>,
        framing: TokenFraming,
    },
}

/// How client tokens arrive after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenFraming {
    /// After SaslHandshake v0: each frame is a bare token, answered by a bare token.
    Raw,
    /// After SaslHandshake v1: tokens come in SaslAuthenticate requests.
    SaslAuthenticate,
}

/// What to do after one frame.
#[derive(Debug)]
pub(crate) enum SaslOutcome {
    /// Send `reply` (whole frames) and read the next frame.
    Reply(BytesMut),
    /// Authenticated as `principal`: send `reply`, then serve requests.
    Authenticated {
        /// Who the client proved to be.
        principal: Principal,
        /// The last answer of the exchange.
        reply: BytesMut,
    },
    /// Refused: send `reply` if there is one, wait the failed-authentication delay, close.
    Failed {
        /// The error response, when the flow has one.
        reply: Option<BytesMut>,
        /// Why, for the log: never a token or a secret.
        reason: String,
    },
}

/// One connection's SASL exchange, as a state machine: [`SaslAuthenticator::handle_frame`]
/// takes each frame the client sends and says what to answer. No I/O and no clock.
pub(crate) struct SaslAuthenticator<'a, Start> {
    state: SaslState,
    /// The enabled mechanisms, answered in every handshake.
    mechanisms: &'a [String],
    /// Starts an exchange of a mechanism; `None` if it is not implemented.
    start: Start,
}

impl<'a, Start> SaslAuthenticator<'a, Start>
where
    Start: FnMut(&str) -> Option<Box<dyn SaslExchange>>,
{
    /// A connection that has sent nothing yet.
    pub(crate) fn new(mechanisms: &'a [String], start: Start) -> Self {
        SaslAuthenticator {
            state: SaslState::Initial,
            mechanisms,
            start,
        }
    }

    /// Takes one frame (without its size prefix).
    ///
    /// # Errors
    /// A request that is malformed or not allowed before authentication: the connection
    /// closes at once, without an answer.
    pub(crate) fn handle_frame(&mut self, frame: Bytes) -> Result<SaslOutcome, ConnectionError> {
        if let SaslState::Authenticate {
            framing: TokenFraming::Raw,
            exchange,
        } = &mut self.state
        {
            return Ok(raw_step(exchange.step(&frame)));
        }
        match decode(frame)? {
            Inbound::UnsupportedApiVersions { correlation_id } if self.accepts_api_versions() => {
                let response = Response::ApiVersions(api_versions::unsupported_version_response());
                Ok(SaslOutcome::Reply(encoded(correlation_id, 0, &response)))
            }
            Inbound::Request(header, Request::ApiVersions(body)) if self.accepts_api_versions() => {
                self.state = SaslState::Handshake;
                let response = Response::ApiVersions(api_versions::handle(body));
                Ok(SaslOutcome::Reply(encoded_for(&header, &response)))
            }
            Inbound::Request(header, Request::SaslHandshake(body))
                if matches!(self.state, SaslState::Initial | SaslState::Handshake) =>
            {
                Ok(self.handshake(&header, body))
            }
            Inbound::Request(header, Request::SaslAuthenticate(body))
                if matches!(self.state, SaslState::Authenticate { .. }) =>
            {
                let step = self.step(&body.auth_bytes);
                Ok(authenticate_answer(&header, step))
            }
            Inbound::Request(header, _) => Err(self.illegal(header.api_key)),
            Inbound::UnsupportedApiVersions { .. } => Err(self.illegal(ApiKey::ApiVersions as i16)),
        }
    }

    fn accepts_api_versions(&self) -> bool {
        matches!(self.state, SaslState::Initial)
    }

    fn handshake(&mut self, header: &RequestHeader, request: SaslHandshakeRequest) -> SaslOutcome {
        let enabled = self.mechanisms.contains(&request.mechanism);
        let exchange = if enabled {
            (self.start)(&request.mechanism)
        } else {
            None
        };
        let Some(exchange) = exchange else {
            let response = handshake_response(ErrorCode::UnsupportedSaslMechanism, self.mechanisms);
            return SaslOutcome::Failed {
                reply: Some(encoded_for(header, &response)),
                reason: format!(
                    "unsupported SASL mechanism {:?} (enabled: {})",
                    request.mechanism,
                    self.mechanisms.join(", ")
                ),
            };
        };
        let framing = if header.api_version == 0 {
            TokenFraming::Raw
        } else {
            TokenFraming::SaslAuthenticate
        };
        self.state = SaslState::Authenticate { exchange, framing };
        let response = handshake_response(ErrorCode::None, self.mechanisms);
        SaslOutcome::Reply(encoded_for(header, &response))
    }

    fn step(&mut self, token: &[u8]) -> SaslStep {
        match &mut self.state {
            SaslState::Authenticate { exchange, .. } => exchange.step(token),
            // The caller matched the state; keep a defined answer all the same.
            _ => SaslStep::Failed("no SASL exchange in progress".into()),
        }
    }

    fn illegal(&self, api_key: i16) -> ConnectionError {
        let state = match self.state {
            SaslState::Initial => "before the SASL handshake",
            SaslState::Handshake => "after ApiVersions, before the SASL handshake",
            SaslState::Authenticate { .. } => "during SASL authentication",
        };
        ConnectionError::IllegalSaslState { api_key, state }
    }
}

/// The answer to a raw (v0 flow) token: a bare size-prefixed token, or nothing on failure.
fn raw_step(step: SaslStep) -> SaslOutcome {
    let frame = |token: &[u8]| {
        let mut reply = BytesMut::with_capacity(FRAME_SIZE_PREFIX_BYTES + token.len());
        // A token is at most the frame it answers, itself at most a capped i32 size.
        let length = i32::try_from(token.len()).unwrap_or(i32::MAX);
        reply.put_i32(length);
        reply.put_slice(token);
        reply
    };
    match step {
        SaslStep::Continue(token) => SaslOutcome::Reply(frame(&token)),
        SaslStep::Done {
            principal,
            server_final,
        } => SaslOutcome::Authenticated {
            principal,
            reply: frame(&server_final),
        },
        SaslStep::Failed(reason) => SaslOutcome::Failed {
            reply: None,
            reason,
        },
    }
}

/// The SaslAuthenticate response to one step.
fn authenticate_answer(header: &RequestHeader, step: SaslStep) -> SaslOutcome {
    let response = |error: ErrorCode, message: Option<String>, token: Vec<u8>| {
        let response = Response::SaslAuthenticate(SaslAuthenticateResponse {
            error_code: error.code(),
            error_message: message,
            auth_bytes: Bytes::from(token),
            // No re-authentication is required (KIP-368).
            session_lifetime_ms: 0,
        });
        encoded_for(header, &response)
    };
    match step {
        SaslStep::Continue(token) => SaslOutcome::Reply(response(ErrorCode::None, None, token)),
        SaslStep::Done {
            principal,
            server_final,
        } => SaslOutcome::Authenticated {
            principal,
            reply: response(ErrorCode::None, None, server_final),
        },
        SaslStep::Failed(reason) => SaslOutcome::Failed {
            reply: Some(response(
                ErrorCode::SaslAuthenticationFailed,
                Some(reason.clone()),
                Vec::new(),
            )),
            reason,
        },
    }
}

fn handshake_response(error: ErrorCode, mechanisms: &[String]) -> Response {
    Response::SaslHandshake(SaslHandshakeResponse {
        error_code: error.code(),
        mechanisms: mechanisms.to_vec(),
    })
}

/// The answer to SaslHandshake or SaslAuthenticate once authentication is over, or on a
/// listener without SASL: ILLEGAL_SASL_STATE, as Kafka's request handler answers them.
pub(crate) fn illegal_state_response(request: &Request) -> Option<Response> {
    match request {
        Request::SaslHandshake(_) => Some(handshake_response(ErrorCode::IllegalSaslState, &[])),
        Request::SaslAuthenticate(_) => {
            Some(Response::SaslAuthenticate(SaslAuthenticateResponse {
                error_code: ErrorCode::IllegalSaslState.code(),
                error_message: Some(
                    "SaslAuthenticate after authentication, or on a listener without SASL".into(),
                ),
                ..Default::default()
            }))
        }
        _ => None,
    }
}

fn encoded_for(header: &RequestHeader, response: &Response) -> BytesMut {
    encoded(header.correlation_id, header.api_version, response)
}

fn encoded(correlation_id: i32, api_version: i16, response: &Response) -> BytesMut {
    let mut reply = BytesMut::new();
    encode_response(correlation_id, api_version, response, &mut reply);
    reply
}

/// The driver's limits, from the broker's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuthenticationLimits {
    /// The largest frame read before authentication.
    pub max_receive_bytes: usize,
    /// How long a failed authentication waits before the connection closes.
    pub failed_authentication_delay: Duration,
}

/// Runs the SASL exchange on `stream` until the client is authenticated, and returns its
/// principal; `buffer` keeps what the client sent after the last SASL frame.
///
/// The caller bounds this in time (the listener's authentication deadline) and watches
/// for shutdown.
///
/// # Errors
/// A socket error, a frame above the limit, a request not allowed before authentication
/// (closed at once), or a refused authentication (closed after the delay).
pub(crate) async fn authenticate<S, Start>(
    stream: &mut S,
    buffer: &mut BytesMut,
    authenticator: &mut SaslAuthenticator<'_, Start>,
    limits: AuthenticationLimits,
    transport: Transport,
) -> Result<Principal, ConnectionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    Start: FnMut(&str) -> Option<Box<dyn SaslExchange>>,
{
    // Only the first frame on a plaintext socket can be a misdirected TLS handshake.
    let mut detect_tls = transport == Transport::Plaintext;
    loop {
        let frame = next_frame(stream, buffer, limits.max_receive_bytes, detect_tls).await?;
        detect_tls = false;
        match authenticator.handle_frame(frame)? {
            SaslOutcome::Reply(reply) => {
                stream.write_all(&reply).await?;
                stream.flush().await?;
            }
            SaslOutcome::Authenticated { principal, reply } => {
                stream.write_all(&reply).await?;
                stream.flush().await?;
                return Ok(principal);
            }
            SaslOutcome::Failed { reply, reason } => {
                if let Some(reply) = reply {
                    stream.write_all(&reply).await?;
                    stream.flush().await?;
                }
                // Over TLS, closing at once can lose the response; it also slows guessing.
                tokio::time::sleep(limits.failed_authentication_delay).await;
                let _ = stream.shutdown().await;
                return Err(ConnectionError::AuthenticationFailed(reason));
            }
        }
    }
}

/// Reads one whole frame (without its size prefix) into `buffer` and splits it off.
async fn next_frame<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffer: &mut BytesMut,
    max_frame_bytes: usize,
    detect_tls: bool,
) -> Result<Bytes, ConnectionError> {
    loop {
        if detect_tls && starts_with_tls_handshake(buffer) {
            return Err(ConnectionError::TlsOnPlaintext);
        }
        match check_frame(buffer, max_frame_bytes)? {
            FrameCheck::Complete { body_bytes } => {
                let frame = buffer.split_to(FRAME_SIZE_PREFIX_BYTES + body_bytes);
                return Ok(frame.freeze().slice(FRAME_SIZE_PREFIX_BYTES..));
            }
            FrameCheck::Incomplete { frame_bytes } => {
                if let Some(frame_bytes) = frame_bytes {
                    buffer.reserve(frame_bytes.saturating_sub(buffer.len()));
                }
            }
        }
        if stream.read_buf(buffer).await? == 0 {
            return Err(ConnectionError::Io(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use riffle_protocol::api::api_versions::ApiVersionsRequest;
    use riffle_protocol::api::metadata::MetadataRequest;
    use riffle_protocol::api::sasl_authenticate::SaslAuthenticateRequest;
    use riffle_protocol::{decode_response, encode_request};

    use super::*;

    /// A two-step fake mechanism: `alice` is challenged, `proof` completes as User:alice;
    /// any other token fails. Stands in for SCRAM until the real mechanisms land.
    pub(crate) struct FakeExchange {
        challenged: bool,
    }

    /// The mechanism the fake answers to.
    pub(crate) const FAKE_MECHANISM: &str = "SCRAM-SHA-256";

    /// The fake's failure message, which the client must receive.
    pub(crate) const FAKE_FAILURE: &str = "bad credentials (fake exchange)";

    impl SaslExchange for FakeExchange {
        fn step(&mut self, token: &[u8]) -> SaslStep {
            match (self.challenged, token) {
                (false, b"alice") => {
                    self.challenged = true;
                    SaslStep::Continue(b"challenge".to_vec())
                }
                (true, b"proof") => SaslStep::Done {
                    principal: Principal::user("alice"),
                    server_final: b"final".to_vec(),
                },
                _ => SaslStep::Failed(FAKE_FAILURE.into()),
            }
        }
    }

    /// Starts the fake for [`FAKE_MECHANISM`], nothing for any other.
    pub(crate) fn fake_start(mechanism: &str) -> Option<Box<dyn SaslExchange>> {
        (mechanism == FAKE_MECHANISM)
            .then(|| Box::new(FakeExchange { challenged: false }) as Box<dyn SaslExchange>)
    }

    fn mechanisms() -> Vec<String> {
        vec![FAKE_MECHANISM.to_string(), "PLAIN".to_string()]
    }

    /// A request frame without its size prefix.
    fn frame(api_key: ApiKey, api_version: i16, request: Request) -> Bytes {
        let header = RequestHeader {
            api_key: api_key as i16,
            api_version,
            correlation_id: 7,
            client_id: Some("sasl-test".into()),
        };
        let mut encoded = BytesMut::new();
        encode_request(&header, &request, &mut encoded);
        encoded.freeze().slice(FRAME_SIZE_PREFIX_BYTES..)
    }

    fn handshake(version: i16, mechanism: &str) -> Bytes {
        let request = SaslHandshakeRequest {
            mechanism: mechanism.into(),
        };
        frame(
            ApiKey::SaslHandshake,
            version,
            Request::SaslHandshake(request),
        )
    }

    fn authenticate_request(version: i16, token: &[u8]) -> Bytes {
        let request = SaslAuthenticateRequest {
            auth_bytes: Bytes::copy_from_slice(token),
        };
        frame(
            ApiKey::SaslAuthenticate,
            version,
            Request::SaslAuthenticate(request),
        )
    }

    /// Decodes a reply frame (with its size prefix) of `api_key` at `version`.
    fn reply(api_key: ApiKey, version: i16, reply: &[u8]) -> Response {
        let body = Bytes::copy_from_slice(&reply[FRAME_SIZE_PREFIX_BYTES..]);
        decode_response(api_key, version, body).expect("decodes").1
    }

    fn reply_of(outcome: SaslOutcome) -> BytesMut {
        match outcome {
            SaslOutcome::Reply(reply) => reply,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn authenticated_token(response: &Response) -> (i16, &[u8]) {
        let Response::SaslAuthenticate(response) = response else {
            panic!("not SaslAuthenticate: {response:?}");
        };
        (response.error_code, &response.auth_bytes)
    }

    #[test]
    fn v1_flow_authenticates_through_sasl_authenticate_requests() {
        // Proves ApiVersions, then SaslHandshake v1 (answered with the enabled list), then
        // SaslAuthenticate v2 tokens through the exchange end in the exchange's principal.
        let mechanisms = mechanisms();
        let mut authenticator = SaslAuthenticator::new(&mechanisms, fake_start);
        let versions = frame(
            ApiKey::ApiVersions,
            3,
            Request::ApiVersions(ApiVersionsRequest::default()),
        );
        let answered = reply_of(authenticator.handle_frame(versions).expect("allowed"));
        assert!(matches!(
            reply(ApiKey::ApiVersions, 3, &answered),
            Response::ApiVersions(_)
        ));
        let answered = reply_of(
            authenticator
                .handle_frame(handshake(1, FAKE_MECHANISM))
                .unwrap(),
        );
        let Response::SaslHandshake(response) = reply(ApiKey::SaslHandshake, 1, &answered) else {
            panic!("not a handshake response");
        };
        assert_eq!(
            (response.error_code, response.mechanisms),
            (0, mechanisms.clone())
        );
        let answered = reply_of(
            authenticator
                .handle_frame(authenticate_request(2, b"alice"))
                .unwrap(),
        );
        let response = reply(ApiKey::SaslAuthenticate, 2, &answered);
        assert_eq!(authenticated_token(&response), (0, &b"challenge"[..]));
        match authenticator
            .handle_frame(authenticate_request(2, b"proof"))
            .unwrap()
        {
            SaslOutcome::Authenticated {
                principal,
                reply: answered,
            } => {
                assert_eq!(principal, Principal::user("alice"));
                let response = reply(ApiKey::SaslAuthenticate, 2, &answered);
                assert_eq!(authenticated_token(&response), (0, &b"final"[..]));
            }
            other => panic!("expected authentication, got {other:?}"),
        }
    }

    #[test]
    fn v0_flow_exchanges_raw_tokens() {
        // Proves that after SaslHandshake v0 the frames are bare tokens, answered as bare
        // size-prefixed tokens, with no Kafka header either way.
        let mechanisms = mechanisms();
        let mut authenticator = SaslAuthenticator::new(&mechanisms, fake_start);
        reply_of(
            authenticator
                .handle_frame(handshake(0, FAKE_MECHANISM))
                .unwrap(),
        );
        let answered = reply_of(
            authenticator
                .handle_frame(Bytes::from_static(b"alice"))
                .unwrap(),
        );
        assert_eq!(&answered[..], b"\0\0\0\x09challenge");
        match authenticator
            .handle_frame(Bytes::from_static(b"proof"))
            .unwrap()
        {
            SaslOutcome::Authenticated { principal, reply } => {
                assert_eq!(principal, Principal::user("alice"));
                assert_eq!(&reply[..], b"\0\0\0\x05final");
            }
            other => panic!("expected authentication, got {other:?}"),
        }
    }

    #[test]
    fn failures_answer_with_their_error_and_never_authenticate() {
        // Proves a refused token gets SASL_AUTHENTICATION_FAILED with the exchange's
        // message (v1) or no answer (v0), and an unknown or unimplemented mechanism gets
        // UNSUPPORTED_SASL_MECHANISM with the enabled list.
        let mechanisms = mechanisms();
        let mut authenticator = SaslAuthenticator::new(&mechanisms, fake_start);
        reply_of(
            authenticator
                .handle_frame(handshake(1, FAKE_MECHANISM))
                .unwrap(),
        );
        let SaslOutcome::Failed {
            reply: Some(answered),
            reason,
        } = authenticator
            .handle_frame(authenticate_request(1, b"mallory"))
            .unwrap()
        else {
            panic!("expected a failure with a reply");
        };
        assert_eq!(reason, FAKE_FAILURE);
        let Response::SaslAuthenticate(response) = reply(ApiKey::SaslAuthenticate, 1, &answered)
        else {
            panic!("not SaslAuthenticate");
        };
        assert_eq!(
            response.error_code,
            ErrorCode::SaslAuthenticationFailed.code()
        );
        assert_eq!(response.error_message.as_deref(), Some(FAKE_FAILURE));

        let mut raw = SaslAuthenticator::new(&mechanisms, fake_start);
        reply_of(raw.handle_frame(handshake(0, FAKE_MECHANISM)).unwrap());
        let failed = raw.handle_frame(Bytes::from_static(b"mallory")).unwrap();
        assert!(
            matches!(failed, SaslOutcome::Failed { reply: None, .. }),
            "{failed:?}"
        );

        // GSSAPI is not enabled; PLAIN is enabled but the fake does not implement it.
        for mechanism in ["GSSAPI", "PLAIN"] {
            let mut authenticator = SaslAuthenticator::new(&mechanisms, fake_start);
            let SaslOutcome::Failed {
                reply: Some(answered),
                ..
            } = authenticator.handle_frame(handshake(1, mechanism)).unwrap()
            else {
                panic!("{mechanism} must fail with a reply");
            };
            let Response::SaslHandshake(response) = reply(ApiKey::SaslHandshake, 1, &answered)
            else {
                panic!("not a handshake response");
            };
            assert_eq!(
                response.error_code,
                ErrorCode::UnsupportedSaslMechanism.code()
            );
            assert_eq!(response.mechanisms, mechanisms);
        }
    }

    #[test]
    fn only_sasl_requests_are_allowed_before_authentication() {
        // Proves any other request, a second ApiVersions, or SaslAuthenticate before the
        // handshake is refused (the connection closes), as Kafka's ILLEGAL_SASL_STATE.
        let mechanisms = mechanisms();
        let metadata = || {
            frame(
                ApiKey::Metadata,
                12,
                Request::Metadata(MetadataRequest::default()),
            )
        };
        let versions = || {
            frame(
                ApiKey::ApiVersions,
                3,
                Request::ApiVersions(ApiVersionsRequest::default()),
            )
        };
        let mut authenticator = SaslAuthenticator::new(&mechanisms, fake_start);
        assert!(matches!(
            authenticator.handle_frame(metadata()),
            Err(ConnectionError::IllegalSaslState { api_key: 3, .. })
        ));
        let mut authenticator = SaslAuthenticator::new(&mechanisms, fake_start);
        reply_of(authenticator.handle_frame(versions()).unwrap());
        assert!(authenticator.handle_frame(versions()).is_err());
        let mut authenticator = SaslAuthenticator::new(&mechanisms, fake_start);
        assert!(
            authenticator
                .handle_frame(authenticate_request(1, b"alice"))
                .is_err()
        );
        let mut authenticator = SaslAuthenticator::new(&mechanisms, fake_start);
        reply_of(
            authenticator
                .handle_frame(handshake(1, FAKE_MECHANISM))
                .unwrap(),
        );
        assert!(authenticator.handle_frame(metadata()).is_err());
        assert!(
            authenticator
                .handle_frame(Bytes::from_static(b"\0\x01"))
                .is_err()
        );
    }
}
