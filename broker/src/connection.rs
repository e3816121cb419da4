//! One client connection: a reader that frames and decodes requests, and a writer that
//! runs them in order and writes the responses in that same order.
//!
//! The reader may read ahead of the writer by `max_in_flight_requests` (pipelining), and
//! that bounded channel is the backpressure: a client that stops reading responses stops
//! being read. Requests on one connection are handled one at a time, as Kafka does, so an
//! idempotent producer's pipelined batches reach a partition in the order they were sent;
//! only a Produce's wait for its fsync overlaps with the appends of the produces after it.
//!
//! A frame larger than `max_request_bytes`, a malformed request, or a version we do not
//! advertise closes this connection with a log line; other connections are unaffected.
//! An unsupported ApiVersions version is answered instead (KIP-511).
//!
//! # Timeouts
//! A request whose first bytes arrived must arrive in full within
//! `request_read_timeout_ms`, and a connection with no request read, none in hand and no
//! response written for `connections_max_idle_ms` is idle; either closes the connection,
//! so a client that stalls cannot hold a connection slot for ever. A response the socket
//! accepts no byte of for `response_write_timeout_ms` (by default the idle limit, as Kafka
//! closes such a connection) closes it too ([`write_stall`]).
//!
//! # Memory
//! A client that sends requests and never reads the answers holds at most: the read
//! buffer (one frame, up to `max_request_bytes`), `max_in_flight_requests` decoded requests
//! in the reader's channel, as many answered produces waiting their turn, and the one
//! response being written (a Fetch copies at most `fetch_max_bytes` of records into it;
//! record sets of 64 KiB and more stay in their files and go out with `sendfile`). Then
//! the reader stops reading, so the client's further requests wait in the kernel's
//! buffers, as Kafka mutes such a connection, until the write stall closes it.
//!
//! # Security
//! Before the reader and writer start, the listener's security runs, bounded together by
//! `authentication_timeout_ms` so a stalled client cannot hold a connection slot: on SSL
//! and SASL_SSL listeners the TLS handshake (a client certificate names the principal),
//! on SASL listeners the SASL exchange ([`authentication`]). A plaintext client on a TLS
//! listener, or a TLS handshake on a plaintext one, is closed at once with one log line.
//! Over TLS the reader and writer work on the decrypted stream, and Fetch record sets that
//! plaintext connections send with `sendfile` are read from their file and encrypted
//! ([`ResponseSocket`]); the plaintext path is compiled separately and stays as it was.

mod authentication;
#[cfg(test)]
mod security_tests;
pub(crate) mod write_stall;

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use riffle_protocol::api::produce::{ProduceRequest, ProduceResponse};
use riffle_protocol::frame::{FRAME_SIZE_PREFIX_BYTES, FrameCheck, check_frame};
use riffle_protocol::{
    ApiKey, DecodeError, DeferredRecords, Request, RequestHeader, Response, TrailingBytes,
    decode_request_with, encode_response,
};
use riffle_storage::FileRange;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::cluster::Cluster;
use crate::handler::produce::{self, Acknowledgement};
use crate::handler::{RequestContext, api_versions, dispatch};
use crate::listener::Listener;
use crate::security::Principal;
use crate::security::subject::SubjectError;
use crate::security::tls::{TlsServer, client_certificate_principal};
use crate::sendfile::{send_file_range, write_file_range};
use crate::shutdown::Shutdown;
use authentication::{AuthenticationLimits, SaslAuthenticator, authenticate};
use write_stall::{StallGuard, write_stalled};

/// Read buffer size; grows to the frame size when a larger frame arrives.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// How much of a malformed frame is logged, in bytes, at debug level.
const MALFORMED_FRAME_LOG_BYTES: usize = 256;

/// The first bytes of a TLS handshake record (content type 22, version 3.x). As a Kafka
/// size prefix they announce a frame of over 369 MB, so a TLS client on a plaintext
/// listener is recognised rather than reported as an oversized frame.
const TLS_HANDSHAKE_PREFIX: [u8; 2] = [0x16, 0x03];

/// The first byte of every TLS client's first record: a handshake.
const TLS_HANDSHAKE_CONTENT_TYPE: u8 = 0x16;

/// A request read off the wire, waiting for the writer.
enum Inbound {
    /// A request we advertise.
    Request(RequestHeader, Request),
    /// ApiVersions at a version we do not speak: answered with our ranges (KIP-511).
    UnsupportedApiVersions { correlation_id: i32 },
}

/// What carries a connection's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// The TCP socket itself.
    Plaintext,
    /// TLS over the socket.
    Tls,
}

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The frame was too large or had a negative size.
    #[error("bad frame: {0}")]
    Frame(#[from] riffle_protocol::frame::FrameError),
    /// The request could not be decoded.
    #[error("malformed request (api key {api_key}, version {api_version}): {error}")]
    Malformed {
        /// The api key from the header, if it was readable.
        api_key: i16,
        /// The version from the header.
        api_version: i16,
        /// What was wrong.
        error: DecodeError,
    },
    /// A produce's fsync wait panicked. That request gets no answer, so the connection
    /// closes rather than answer the requests after it out of step with the client.
    #[error("produce acknowledgement failed: {0}")]
    Acknowledgement(#[from] tokio::task::JoinError),
    /// A Fetch's records could not be sent from their segment file; the response is cut
    /// short, so the connection closes.
    #[error("cannot send fetched records: {0}")]
    SendRecords(std::io::Error),
    /// An API or version we do not advertise.
    #[error("unsupported api key {api_key} version {api_version}")]
    Unsupported {
        /// The api key.
        api_key: i16,
        /// The version.
        api_version: i16,
    },
    /// A TLS client on a plaintext listener: its first bytes are a TLS handshake record.
    #[error("TLS handshake on a plaintext listener")]
    TlsOnPlaintext,
    /// A client on a TLS listener whose first byte is not a TLS handshake record.
    #[error("not a TLS handshake on a TLS listener (a plaintext client?)")]
    PlaintextOnTls,
    /// The TLS handshake failed (a bad or missing client certificate, no common version).
    #[error("TLS handshake failed: {0}")]
    TlsHandshake(std::io::Error),
    /// The client certificate's subject could not be read.
    #[error("{0}")]
    ClientCertificate(#[from] SubjectError),
    /// The TLS handshake and SASL exchange did not finish within the deadline.
    #[error("not authenticated within {timeout_ms} ms")]
    AuthenticationTimeout {
        /// The limit, `authentication_timeout_ms`.
        timeout_ms: u64,
    },
    /// A request not allowed before SASL authentication (Kafka's ILLEGAL_SASL_STATE).
    #[error("api key {api_key} {state}: only ApiVersions, SaslHandshake and SaslAuthenticate")]
    IllegalSaslState {
        /// The request's api key.
        api_key: i16,
        /// Where the exchange was.
        state: &'static str,
    },
    /// SASL authentication failed; the client was told why.
    #[error("authentication failed: {0}")]
    AuthenticationFailed(String),
    /// A request's first bytes arrived, the rest not within `request_read_timeout_ms`.
    #[error(
        "request incomplete {timeout_ms} ms after its first bytes ({buffered_bytes} bytes arrived)"
    )]
    RequestReadTimeout {
        /// The limit, `request_read_timeout_ms`.
        timeout_ms: u64,
        /// What had arrived of the frame.
        buffered_bytes: usize,
    },
    /// No request read, none in hand and no response written for `connections_max_idle_ms`.
    #[error("idle for {idle_ms} ms")]
    Idle {
        /// The limit, `connections_max_idle_ms`.
        idle_ms: u64,
    },
    /// The client stopped reading: the socket accepted no byte of a response for
    /// `response_write_timeout_ms`.
    #[error("response write stalled: {0}")]
    WriteStalled(write_stall::WriteStalled),
}

/// Serves one connection until the client leaves, an error occurs, or shutdown.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<Listener>,
    cluster: Arc<Cluster>,
    shutdown: Shutdown,
) {
    let _ = stream.set_nodelay(true);
    let results = match &listener.tls {
        None => serve_plaintext(stream, peer, &listener, cluster, shutdown).await,
        Some(tls) => serve_tls(stream, tls, peer, &listener, cluster, shutdown).await,
    };
    for result in results {
        match result {
            Ok(()) => {}
            Err(ConnectionError::Io(error)) => {
                debug!(%peer, listener = %listener.name, %error, "connection closed");
            }
            // Expected of clients that go quiet; at debug, so many of them do not flood the log.
            Err(error @ ConnectionError::Idle { .. }) => {
                debug!(%peer, listener = %listener.name, %error, "closing idle connection");
            }
            Err(
                error @ (ConnectionError::RequestReadTimeout { .. }
                | ConnectionError::WriteStalled(_)),
            ) => {
                info!(%peer, listener = %listener.name, %error, "closing stalled connection");
            }
            Err(error) => warn!(%peer, listener = %listener.name, %error, "closing connection"),
        }
    }
}

/// The reader's and the writer's outcomes, or the security phase's alone.
type Outcomes = [Result<(), ConnectionError>; 2];

/// A PLAINTEXT or SASL_PLAINTEXT connection.
async fn serve_plaintext(
    mut stream: TcpStream,
    peer: SocketAddr,
    listener: &Listener,
    cluster: Arc<Cluster>,
    mut shutdown: Shutdown,
) -> Outcomes {
    let deadline = Instant::now() + cluster.config.authentication_timeout();
    let mut buffer = BytesMut::with_capacity(READ_BUFFER_BYTES);
    let principal = if listener.protocol.uses_sasl() {
        let sasl = sasl_phase(
            &mut stream,
            &mut buffer,
            listener,
            &cluster,
            Transport::Plaintext,
        );
        match secured(sasl, deadline, &cluster, &mut shutdown).await {
            Ok(Some(principal)) => principal,
            Ok(None) => return [Ok(()), Ok(())],
            Err(error) => return [Err(error), Ok(())],
        }
    } else {
        Principal::anonymous()
    };
    let context = connection_context(listener, peer, principal);
    let (read_half, write_half) = stream.into_split();
    let parts = ConnectionParts {
        buffer,
        context,
        transport: Transport::Plaintext,
    };
    run(read_half, write_half, parts, cluster, shutdown).await
}

/// An SSL or SASL_SSL connection: the TLS handshake, then SASL on SASL_SSL.
async fn serve_tls(
    stream: TcpStream,
    tls: &TlsServer,
    peer: SocketAddr,
    listener: &Listener,
    cluster: Arc<Cluster>,
    mut shutdown: Shutdown,
) -> Outcomes {
    let deadline = Instant::now() + cluster.config.authentication_timeout();
    let handshake = tls_handshake(stream, tls);
    let (mut stream, certificate_principal) =
        match secured(handshake, deadline, &cluster, &mut shutdown).await {
            Ok(Some(accepted)) => accepted,
            Ok(None) => return [Ok(()), Ok(())],
            Err(error) => return [Err(error), Ok(())],
        };
    let mut buffer = BytesMut::with_capacity(READ_BUFFER_BYTES);
    // On SASL_SSL the SASL principal is the connection's, as in Kafka.
    let principal = if listener.protocol.uses_sasl() {
        let sasl = sasl_phase(&mut stream, &mut buffer, listener, &cluster, Transport::Tls);
        match secured(sasl, deadline, &cluster, &mut shutdown).await {
            Ok(Some(principal)) => principal,
            Ok(None) => return [Ok(()), Ok(())],
            Err(error) => return [Err(error), Ok(())],
        }
    } else {
        certificate_principal.unwrap_or_else(Principal::anonymous)
    };
    let context = connection_context(listener, peer, principal);
    let (read_half, write_half) = tokio::io::split(stream);
    let parts = ConnectionParts {
        buffer,
        context,
        transport: Transport::Tls,
    };
    run(read_half, write_half, parts, cluster, shutdown).await
}

/// Runs a security step until `deadline`; `None` if shutdown came first.
async fn secured<T>(
    step: impl Future<Output = Result<T, ConnectionError>>,
    deadline: Instant,
    cluster: &Cluster,
    shutdown: &mut Shutdown,
) -> Result<Option<T>, ConnectionError> {
    tokio::select! {
        result = tokio::time::timeout_at(deadline, step) => match result {
            Ok(done) => done.map(Some),
            Err(_elapsed) => Err(ConnectionError::AuthenticationTimeout {
                timeout_ms: cluster.config.authentication_timeout_ms,
            }),
        },
        () = shutdown.recv() => Ok(None),
    }
}

/// The TLS handshake, after checking that the client starts one at all; returns the
/// stream and the principal of the client certificate, if one was sent.
async fn tls_handshake(
    stream: TcpStream,
    tls: &TlsServer,
) -> Result<(TlsStream<TcpStream>, Option<Principal>), ConnectionError> {
    let mut first_byte = [0u8; 1];
    let peeked = stream.peek(&mut first_byte).await?;
    if peeked == 0 {
        return Err(ConnectionError::Io(
            std::io::ErrorKind::UnexpectedEof.into(),
        ));
    }
    if first_byte[0] != TLS_HANDSHAKE_CONTENT_TYPE {
        return Err(ConnectionError::PlaintextOnTls);
    }
    let stream = tls
        .acceptor()
        .accept(stream)
        .await
        .map_err(ConnectionError::TlsHandshake)?;
    let principal = client_certificate_principal(stream.get_ref().1)?;
    Ok((stream, principal))
}

/// The SASL exchange of a SASL listener; returns the authenticated principal.
async fn sasl_phase<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    buffer: &mut BytesMut,
    listener: &Listener,
    cluster: &Cluster,
    transport: Transport,
) -> Result<Principal, ConnectionError> {
    let start = |mechanism: &str| (listener.sasl_start)(cluster, mechanism);
    let mut authenticator = SaslAuthenticator::new(&listener.sasl_mechanisms, start);
    let limits = AuthenticationLimits {
        max_receive_bytes: cluster.config.sasl_server_max_receive_bytes,
        failed_authentication_delay: cluster.config.connection_failed_authentication_delay(),
    };
    authenticate(stream, buffer, &mut authenticator, limits, transport).await
}

/// Who the client is and where it came from, for every request on the connection.
fn connection_context(
    listener: &Listener,
    peer: SocketAddr,
    principal: Principal,
) -> RequestContext {
    RequestContext {
        principal,
        client_address: peer.ip(),
        client_host: format!("/{}", peer.ip()),
        listener_name: listener.name.clone(),
        advertised_host: listener.advertised_host.clone(),
        advertised_port: listener.advertised_port,
    }
}

/// What the security phase hands to the reader and writer.
struct ConnectionParts {
    /// Bytes the client sent after its last authentication frame.
    buffer: BytesMut,
    context: RequestContext,
    transport: Transport,
}

/// The reader and writer over a secured stream.
async fn run<R, W>(
    read_half: R,
    write_half: W,
    parts: ConnectionParts,
    cluster: Arc<Cluster>,
    shutdown: Shutdown,
) -> Outcomes
where
    R: AsyncRead + Unpin,
    W: ResponseSocket,
{
    let (sender, receiver) = mpsc::channel(cluster.config.max_in_flight_requests.max(1));
    let activity = Arc::new(ConnectionActivity::new());
    let limits = ReadLimits {
        max_request_bytes: cluster.config.max_request_bytes,
        request_read_timeout: cluster.config.request_read_timeout(),
        connections_max_idle: cluster.config.connections_max_idle(),
        // A TLS handshake can only be misdirected at the start of a plaintext connection.
        detect_tls: parts.transport == Transport::Plaintext && parts.buffer.is_empty(),
    };
    let reader = read_requests(
        read_half,
        parts.buffer,
        sender,
        limits,
        activity.clone(),
        shutdown,
    );
    let writer = write_responses(write_half, receiver, cluster, parts.context, activity);
    tokio::pin!(reader, writer);
    tokio::select! {
        // The writer ends when the reader drops its sender, after answering what was read.
        read_result = &mut reader => [read_result, writer.await],
        // Or first, on an error (a stalled write, a socket error): the reader, which may be
        // waiting for a request that never comes, is dropped and the connection closes.
        write_result = &mut writer => [Ok(()), write_result],
    }
}

/// Whether `buffered` starts like a TLS handshake record.
fn starts_with_tls_handshake(buffered: &[u8]) -> bool {
    buffered.starts_with(&TLS_HANDSHAKE_PREFIX)
}

/// What the reader enforces.
struct ReadLimits {
    max_request_bytes: usize,
    request_read_timeout: Duration,
    connections_max_idle: Duration,
    /// Whether the first bytes may be a misdirected TLS handshake.
    detect_tls: bool,
}

/// What the reader and writer tell each other for the idle timeout: a connection with a
/// request in hand (a JoinGroup may wait minutes) is not idle, and a response written is
/// activity.
struct ConnectionActivity {
    started: Instant,
    requests_in_hand: AtomicUsize,
    /// When the last response was encoded, in ms after `started`.
    last_answer_ms: AtomicU64,
}

impl ConnectionActivity {
    fn new() -> Self {
        ConnectionActivity {
            started: Instant::now(),
            requests_in_hand: AtomicUsize::new(0),
            last_answer_ms: AtomicU64::new(0),
        }
    }

    fn request_read(&self) {
        self.requests_in_hand.fetch_add(1, Ordering::Relaxed);
    }

    fn request_answered(&self) {
        let answered_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_answer_ms.store(answered_ms, Ordering::Relaxed);
        // Saturating: an answer without a counted read (never expected) must not wrap.
        let _ =
            self.requests_in_hand
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |in_hand| {
                    in_hand.checked_sub(1)
                });
    }

    fn has_requests_in_hand(&self) -> bool {
        self.requests_in_hand.load(Ordering::Relaxed) > 0
    }

    fn last_answer(&self) -> Instant {
        self.started + Duration::from_millis(self.last_answer_ms.load(Ordering::Relaxed))
    }
}

/// Which timeout the reader is waiting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadDeadline {
    /// Part of a frame is buffered: the rest must come by then.
    RequestRead(Instant),
    /// Nothing is buffered: the connection is idle from then on.
    Idle(Instant),
}

impl ReadDeadline {
    /// The deadline for a reader whose current frame began at `frame_started` (`None`:
    /// nothing buffered) and whose connection was last active at `last_activity`.
    fn next(
        frame_started: Option<Instant>,
        last_activity: Instant,
        limits: &ReadLimits,
    ) -> ReadDeadline {
        match frame_started {
            Some(started) => ReadDeadline::RequestRead(started + limits.request_read_timeout),
            None => ReadDeadline::Idle(last_activity + limits.connections_max_idle),
        }
    }

    fn at(self) -> Instant {
        match self {
            ReadDeadline::RequestRead(at) | ReadDeadline::Idle(at) => at,
        }
    }
}

async fn read_requests<R: AsyncRead + Unpin>(
    mut socket: R,
    mut buffer: BytesMut,
    requests: mpsc::Sender<Inbound>,
    limits: ReadLimits,
    activity: Arc<ConnectionActivity>,
    mut shutdown: Shutdown,
) -> Result<(), ConnectionError> {
    let max_request_bytes = limits.max_request_bytes;
    let mut detect_tls = limits.detect_tls;
    let mut last_read = Instant::now();
    // When the first buffered byte of the frame being read arrived.
    let mut frame_started: Option<Instant> = None;
    // One timer, reset rather than re-created for every read.
    let timer = tokio::time::sleep_until(last_read + limits.connections_max_idle);
    tokio::pin!(timer);
    loop {
        if detect_tls {
            if starts_with_tls_handshake(&buffer) {
                return Err(ConnectionError::TlsOnPlaintext);
            }
            detect_tls = buffer.len() < TLS_HANDSHAKE_PREFIX.len();
        }
        let mut frame_completed = false;
        while let FrameCheck::Complete { body_bytes } = check_frame(&buffer, max_request_bytes)? {
            let frame = buffer
                .split_to(FRAME_SIZE_PREFIX_BYTES + body_bytes)
                .freeze()
                .slice(FRAME_SIZE_PREFIX_BYTES..);
            let inbound = decode(frame)?;
            frame_completed = true;
            activity.request_read();
            if requests.send(inbound).await.is_err() {
                return Ok(()); // the writer is gone
            }
        }
        if let FrameCheck::Incomplete {
            frame_bytes: Some(frame_bytes),
        } = check_frame(&buffer, max_request_bytes)?
        {
            buffer.reserve(frame_bytes.saturating_sub(buffer.len()));
        }
        frame_started = match frame_started {
            _ if buffer.is_empty() => None,
            Some(started) if !frame_completed => Some(started),
            _ => Some(Instant::now()),
        };
        let last_activity = last_read.max(activity.last_answer());
        let deadline = ReadDeadline::next(frame_started, last_activity, &limits);
        timer.as_mut().reset(deadline.at());
        let read = tokio::select! {
            read = socket.read_buf(&mut buffer) => read?,
            () = shutdown.recv() => return Ok(()),
            () = &mut timer => match deadline {
                ReadDeadline::RequestRead(_) => {
                    return Err(ConnectionError::RequestReadTimeout {
                        timeout_ms: duration_ms(limits.request_read_timeout),
                        buffered_bytes: buffer.len(),
                    });
                }
                ReadDeadline::Idle(_) if activity.has_requests_in_hand() => {
                    // Busy, not idle: the idle time counts from now at the earliest.
                    last_read = Instant::now();
                    continue;
                }
                // A response written since the deadline was set: idle from then on.
                ReadDeadline::Idle(at)
                    if activity.last_answer() + limits.connections_max_idle > at => continue,
                ReadDeadline::Idle(_) => {
                    return Err(ConnectionError::Idle {
                        idle_ms: duration_ms(limits.connections_max_idle),
                    });
                }
            },
        };
        if read == 0 {
            return Ok(()); // the client closed its side
        }
        last_read = Instant::now();
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Decodes a frame, checking first that we advertise its API and version.
fn decode(frame: Bytes) -> Result<Inbound, ConnectionError> {
    let (api_key, api_version, correlation_id) = riffle_protocol::RequestHeader::peek(&frame)
        .map_err(|error| ConnectionError::Malformed {
            api_key: -1,
            api_version: -1,
            error,
        })?;
    let supported = ApiKey::from_i16(api_key)
        .and_then(api_versions::supported_versions)
        .is_some_and(|(min, max)| (min..=max).contains(&api_version));
    if !supported {
        if api_key == ApiKey::ApiVersions as i16 {
            return Ok(Inbound::UnsupportedApiVersions { correlation_id });
        }
        return Err(ConnectionError::Unsupported {
            api_key,
            api_version,
        });
    }
    let decoded = decode_request_with(frame.clone(), TrailingBytes::Ignore);
    let (header, request, trailing_bytes) = decoded.map_err(|error| {
        // The frame's start, for reporting a client's encoding to its authors or to us.
        let prefix: String = frame
            .iter()
            .take(MALFORMED_FRAME_LOG_BYTES)
            .map(|byte| format!("{byte:02x}"))
            .collect();
        debug!(frame_bytes = frame.len(), prefix, "malformed frame");
        ConnectionError::Malformed {
            api_key,
            api_version,
            error,
        }
    })?;
    if trailing_bytes > 0 {
        debug!(
            api_key,
            api_version, trailing_bytes, "ignored bytes after the request body, as Kafka does"
        );
    }
    Ok(Inbound::Request(header, request))
}

/// Runs requests in order and writes their responses in that order.
///
/// Whatever ends the loop (the reader is done, shutdown, a socket error), the fsync waits
/// already started are awaited before the connection ends, so shutdown's final flush
/// comes after every fsync this connection began.
async fn write_responses<W: ResponseSocket>(
    socket: W,
    mut requests: mpsc::Receiver<Inbound>,
    cluster: Arc<Cluster>,
    context: RequestContext,
    activity: Arc<ConnectionActivity>,
) -> Result<(), ConnectionError> {
    let mut writer = ResponseWriter::new(socket, cluster, context, activity);
    let served = writer.serve(&mut requests).await;
    let answered = writer.answer_in_flight_produces().await;
    let finished = async {
        served?;
        answered?;
        writer.write_buffer().await?;
        writer.socket.flush().await?;
        Ok::<(), ConnectionError>(())
    };
    finished.await.map_err(stall_error)?;
    // Over TLS this sends close_notify; on TCP it is the FIN that dropping would send.
    let _ = writer.socket.shutdown().await;
    Ok(())
}

/// A socket error that is a write stall, as its own error.
fn stall_error(error: ConnectionError) -> ConnectionError {
    let stalled = match &error {
        ConnectionError::Io(io) | ConnectionError::SendRecords(io) => write_stalled(io),
        _ => None,
    };
    match stalled {
        Some(stalled) => ConnectionError::WriteStalled(stalled),
        None => error,
    }
}

/// The write side of a connection as the response writer needs it: bytes, and the Fetch
/// record sets left in their segment files ([`DeferredRecords`]).
trait ResponseSocket: AsyncWrite + Unpin + Send + Sized {
    /// Sends `range` from its file, after everything already written to `socket`, under
    /// the same stall deadline as its other writes.
    fn send_file_range(
        socket: &mut StallGuard<Self>,
        range: &FileRange,
    ) -> impl Future<Output = std::io::Result<()>> + Send;
}

/// Plaintext: the kernel copies the range from the page cache (`sendfile`).
impl ResponseSocket for OwnedWriteHalf {
    fn send_file_range(
        socket: &mut StallGuard<Self>,
        range: &FileRange,
    ) -> impl Future<Output = std::io::Result<()>> + Send {
        let stall_timeout = socket.timeout();
        let tcp: &TcpStream = socket.get_ref().as_ref();
        send_file_range(tcp, range, stall_timeout)
    }
}

/// TLS: the bytes must be encrypted, so they are read from the file and written through.
impl ResponseSocket for tokio::io::WriteHalf<TlsStream<TcpStream>> {
    fn send_file_range(
        socket: &mut StallGuard<Self>,
        range: &FileRange,
    ) -> impl Future<Output = std::io::Result<()>> + Send {
        write_file_range(socket, range)
    }
}

/// The writer half of a connection.
///
/// Produce requests are split: the append runs in order here, the fsync wait of acks=all
/// runs in a task of its own, so the next pipelined produce appends while the previous
/// one waits, and both share one fsync. Any other request first waits for every produce
/// in flight, so responses keep request order and a request that reads (Fetch,
/// ListOffsets) sees what the producer was told is written.
struct ResponseWriter<W> {
    /// Every write fails once the client has taken no byte for `response_write_timeout`.
    socket: BufWriter<StallGuard<W>>,
    /// Encoded responses not yet handed to `socket`.
    buffer: BytesMut,
    /// Fetch record sets that belong inside `buffer`, at their positions, oldest first: sent
    /// from their files with `sendfile` when the buffer is written.
    deferred_records: Vec<DeferredRecords>,
    cluster: Arc<Cluster>,
    /// Who the client is and where it came from, for the handlers.
    context: RequestContext,
    /// Appended produce requests not answered yet, oldest first. At most
    /// `max_in_flight_requests` long: when full, no further request is taken until the
    /// oldest is answered. Each holds only its response, not the request's bytes, so
    /// with the reader's channel a connection holds at most twice that many requests.
    in_flight_produces: VecDeque<InFlightProduce>,
    /// The cap on `in_flight_produces`: the connection's `max_in_flight_requests`.
    max_in_flight_requests: usize,
    /// Told of every request answered, for the reader's idle timeout.
    activity: Arc<ConnectionActivity>,
}

/// A produce request appended in order, waiting to be answered.
struct InFlightProduce {
    correlation_id: i32,
    api_version: i16,
    acknowledgement: InFlightAcknowledgement,
    /// When its append began, for the request duration metric.
    started: Instant,
}

enum InFlightAcknowledgement {
    /// The response is known (`None` for acks=0); only earlier produces hold it back.
    Ready(Option<ProduceResponse>),
    /// The fsync wait, in a task of its own so it runs while later requests append.
    AfterFsync(JoinHandle<ProduceResponse>),
}

/// The oldest in-flight produce, answered.
struct AnsweredProduce {
    correlation_id: i32,
    api_version: i16,
    response: Option<ProduceResponse>,
    started: Instant,
}

impl<W: ResponseSocket> ResponseWriter<W> {
    fn new(
        socket: W,
        cluster: Arc<Cluster>,
        context: RequestContext,
        activity: Arc<ConnectionActivity>,
    ) -> Self {
        let max_in_flight_requests = cluster.config.max_in_flight_requests.max(1);
        let socket = StallGuard::new(socket, cluster.config.response_write_timeout());
        ResponseWriter {
            socket: BufWriter::new(socket),
            buffer: BytesMut::new(),
            deferred_records: Vec::new(),
            context,
            cluster,
            in_flight_produces: VecDeque::new(),
            max_in_flight_requests,
            activity,
        }
    }

    /// Takes requests until the reader is done, answering produces as their fsyncs end.
    async fn serve(
        &mut self,
        requests: &mut mpsc::Receiver<Inbound>,
    ) -> Result<(), ConnectionError> {
        loop {
            let has_room = self.in_flight_produces.len() < self.max_in_flight_requests;
            tokio::select! {
                // Answers first: the oldest produce's response is never held back by a
                // request that arrived after it.
                biased;
                answered = oldest_answer(&mut self.in_flight_produces),
                    if !self.in_flight_produces.is_empty() =>
                {
                    self.in_flight_produces.pop_front();
                    self.encode_produce_response(answered?);
                }
                inbound = requests.recv(), if has_room => match inbound {
                    Some(inbound) => self.take(inbound).await?,
                    None => return Ok(()),
                },
            }
            self.write_buffer().await?;
            // Coalesce responses while more work is at hand; flush before any wait.
            let has_room = self.in_flight_produces.len() < self.max_in_flight_requests;
            let request_waiting = has_room && !requests.is_empty();
            if !request_waiting && !self.oldest_is_answerable() {
                self.socket.flush().await?;
            }
        }
    }

    /// Runs one request: a Produce is appended and joins the produces in flight; any other
    /// request waits for those to be answered, then runs.
    async fn take(&mut self, inbound: Inbound) -> Result<(), ConnectionError> {
        match inbound {
            Inbound::Request(header, Request::Produce(body)) => {
                self.append_produce(&header, body);
                Ok(())
            }
            other => {
                self.answer_in_flight_produces().await?;
                // The answers so far must not wait for this request (a Fetch may long-poll).
                self.write_buffer().await?;
                self.socket.flush().await?;
                self.answer(other).await;
                Ok(())
            }
        }
    }

    fn append_produce(&mut self, header: &RequestHeader, body: ProduceRequest) {
        let started = Instant::now();
        let span = request_span(header, ApiKey::Produce);
        let appended = span.in_scope(|| {
            produce::append_request(&self.cluster, &self.context, header.api_version, body)
        });
        let acknowledgement = match appended {
            Acknowledgement::Ready(response) => InFlightAcknowledgement::Ready(response),
            Acknowledgement::AfterFsync(wait) => {
                InFlightAcknowledgement::AfterFsync(tokio::spawn(wait.wait().instrument(span)))
            }
        };
        self.in_flight_produces.push_back(InFlightProduce {
            correlation_id: header.correlation_id,
            api_version: header.api_version,
            acknowledgement,
            started,
        });
    }

    /// Waits for every produce in flight and encodes their responses, oldest first.
    ///
    /// # Errors
    /// If an fsync wait panicked; the remaining waits are still awaited.
    async fn answer_in_flight_produces(&mut self) -> Result<(), ConnectionError> {
        let mut result = Ok(());
        while !self.in_flight_produces.is_empty() {
            let answered = oldest_answer(&mut self.in_flight_produces).await;
            self.in_flight_produces.pop_front();
            match answered {
                Ok(answered) => self.encode_produce_response(answered),
                Err(error) => result = Err(error),
            }
        }
        result
    }

    /// Whether the oldest produce in flight can be answered without waiting.
    fn oldest_is_answerable(&self) -> bool {
        match self.in_flight_produces.front() {
            None => false,
            Some(produce) => match &produce.acknowledgement {
                InFlightAcknowledgement::Ready(_) => true,
                InFlightAcknowledgement::AfterFsync(task) => task.is_finished(),
            },
        }
    }

    fn encode_produce_response(&mut self, answered: AnsweredProduce) {
        self.activity.request_answered();
        self.cluster.metrics().requests.observe(
            ApiKey::Produce,
            answered.api_version,
            answered.started.elapsed(),
        );
        if let Some(response) = answered.response {
            let response = Response::Produce(response);
            encode_response(
                answered.correlation_id,
                answered.api_version,
                &response,
                &mut self.buffer,
            );
        }
    }

    /// Runs one request that is not a Produce and encodes its response.
    async fn answer(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::Request(header, request) => {
                let started = Instant::now();
                let api_key = request.api_key();
                let span = request_span(&header, api_key);
                // SASL runs before the reader starts; afterwards, or on a listener without
                // SASL, these two are answered ILLEGAL_SASL_STATE, as Kafka does.
                let response = match authentication::illegal_state_response(&request) {
                    Some(response) => Some(response),
                    None => {
                        dispatch(&self.cluster, &self.context, &header, request)
                            .instrument(span)
                            .await
                    }
                };
                if let Some(response) = response {
                    encode_response(
                        header.correlation_id,
                        header.api_version,
                        &response,
                        &mut self.buffer,
                    );
                    self.deferred_records
                        .extend(response.deferred_records().cloned());
                }
                let elapsed = started.elapsed();
                let requests = &self.cluster.metrics().requests;
                requests.observe(api_key, header.api_version, elapsed);
            }
            Inbound::UnsupportedApiVersions { correlation_id } => {
                let response = Response::ApiVersions(api_versions::unsupported_version_response());
                encode_response(correlation_id, 0, &response, &mut self.buffer);
            }
        }
        self.activity.request_answered();
    }

    /// Hands the encoded responses to the socket's buffer, which writes when it fills. A
    /// deferred record set goes out with `sendfile` between the bytes before and after it,
    /// so the socket's buffer is flushed first.
    async fn write_buffer(&mut self) -> Result<(), ConnectionError> {
        let mut written_bytes = 0;
        for deferred in std::mem::take(&mut self.deferred_records) {
            let position = deferred
                .position()
                .expect("deferred records are taken from encoded responses");
            self.socket
                .write_all(&self.buffer[written_bytes..position])
                .await?;
            self.socket.flush().await?;
            let range = deferred
                .source()
                .downcast_ref::<FileRange>()
                .expect("the fetch handler defers only file ranges");
            W::send_file_range(self.socket.get_mut(), range)
                .await
                .map_err(send_error)?;
            written_bytes = position;
        }
        if written_bytes < self.buffer.len() {
            self.socket.write_all(&self.buffer[written_bytes..]).await?;
        }
        self.buffer.clear();
        Ok(())
    }
}

/// A failed `sendfile`: the client's side of it stays an ordinary socket error.
fn send_error(error: std::io::Error) -> ConnectionError {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
            ConnectionError::Io(error)
        }
        _ => ConnectionError::SendRecords(error),
    }
}

/// Waits for the oldest produce in flight to be answered, without removing it: the caller
/// pops it afterwards, so a `select!` that takes another branch loses nothing.
///
/// # Errors
/// If its fsync wait panicked: that request gets no answer, and the connection closes
/// rather than answer the later requests out of step with the client.
async fn oldest_answer(
    in_flight_produces: &mut VecDeque<InFlightProduce>,
) -> Result<AnsweredProduce, ConnectionError> {
    let Some(oldest) = in_flight_produces.front_mut() else {
        return std::future::pending().await;
    };
    let response = match &mut oldest.acknowledgement {
        InFlightAcknowledgement::Ready(response) => response.take(),
        InFlightAcknowledgement::AfterFsync(task) => Some(task.await?),
    };
    Ok(AnsweredProduce {
        correlation_id: oldest.correlation_id,
        api_version: oldest.api_version,
        response,
        started: oldest.started,
    })
}

fn request_span(header: &RequestHeader, api_key: ApiKey) -> tracing::Span {
    info_span!(
        "request",
        api = api_key.name(),
        version = header.api_version,
        correlation_id = header.correlation_id,
        client_id = header.client_id.as_deref().unwrap_or(""),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use riffle_protocol::api::api_versions::ApiVersionsRequest;
    use riffle_protocol::api::produce::{PartitionProduceData, TopicProduceData};
    use riffle_protocol::encode_request;
    use riffle_protocol::record::{Compression, RecordBatchBuilder};
    use tokio::net::TcpListener;

    use super::*;
    use crate::cluster::Validation;
    use crate::testing::test_cluster;

    /// How long the test waits for something that should happen at once.
    const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

    /// How long the test watches for a response that must not arrive yet.
    const QUIET_PERIOD: Duration = Duration::from_millis(100);

    #[test]
    fn pipelined_produces_append_while_the_first_fsync_waits() {
        // Proves the pipelining: with the blocking pool (where fsyncs run) held busy, an
        // acks=all produce cannot be acknowledged, yet the produces after it on the same
        // connection are appended; nothing is answered meanwhile, not even ApiVersions,
        // and once the fsync runs the answers come in request order, acks=0 unanswered.
        let (_dir, cluster) = test_cluster();
        cluster
            .create_topic("events", 1, BTreeMap::new(), Validation::Apply)
            .expect("create");
        let cluster = Arc::new(cluster);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (release, held) = std::sync::mpsc::channel::<()>();
        runtime.spawn_blocking(move || held.recv());
        runtime.block_on(async {
            let mut client = connect(cluster.clone()).await;
            let mut frames = BytesMut::new();
            encode_produce(&mut frames, 1, -1);
            encode_produce(&mut frames, 2, 0);
            encode_produce(&mut frames, 3, -1);
            let header = request_header(ApiKey::ApiVersions, 0, 4);
            let api_versions = Request::ApiVersions(ApiVersionsRequest::default());
            encode_request(&header, &api_versions, &mut frames);
            client.write_all(&frames).await.expect("send");

            let log = &cluster.topic("events").expect("topic").partitions[0];
            let appended = async {
                while log.next_offset() < 3 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            };
            tokio::time::timeout(EVENT_TIMEOUT, appended)
                .await
                .expect("the produces behind a waiting fsync must be appended");
            let mut byte = [0u8; 1];
            let early = tokio::time::timeout(QUIET_PERIOD, client.read(&mut byte)).await;
            assert!(early.is_err(), "answered before the first fsync ran");

            release.send(()).expect("release the blocking pool");
            assert_eq!(read_produce_response(&mut client, 1).await, 0);
            assert_eq!(read_produce_response(&mut client, 3).await, 2);
            let (correlation_id, response) = read_response(&mut client, ApiKey::ApiVersions).await;
            assert_eq!(correlation_id, 4);
            assert!(matches!(response, Response::ApiVersions(_)));
        });
    }

    /// Read limits with the given timeouts and the default frame size.
    fn read_limits(request_read_timeout: Duration, connections_max_idle: Duration) -> ReadLimits {
        ReadLimits {
            max_request_bytes: crate::config::DEFAULT_MAX_REQUEST_BYTES,
            request_read_timeout,
            connections_max_idle,
            detect_tls: false,
        }
    }

    #[tokio::test]
    async fn a_frame_dribbled_in_is_dropped_at_the_request_read_timeout() {
        // Proves the timeout counts from the frame's first byte, not from the last read: a
        // client sending a byte every 50 ms is still dropped at 300 ms, long before idle.
        let (mut client, server) = tokio::io::duplex(1024);
        let (sender, _receiver) = mpsc::channel(1);
        let (_stop, shutdown) = Shutdown::new();
        let limits = read_limits(Duration::from_millis(300), Duration::from_secs(60));
        let activity = Arc::new(ConnectionActivity::new());
        let started = Instant::now();
        let reader = tokio::spawn(read_requests(
            server,
            BytesMut::new(),
            sender,
            limits,
            activity,
            shutdown,
        ));
        let dribble = async {
            for byte in [0u8, 0, 0, 20, 0, 18] {
                if client.write_all(&[byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            std::future::pending::<()>().await;
        };
        let result = tokio::select! {
            joined = reader => joined.expect("reader ran"),
            () = dribble => unreachable!("the dribble never ends"),
        };
        let elapsed = started.elapsed();
        assert!(
            matches!(
                result,
                Err(ConnectionError::RequestReadTimeout {
                    buffered_bytes: 6,
                    ..
                })
            ),
            "{result:?}"
        );
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < EVENT_TIMEOUT, "{elapsed:?}");
    }

    #[tokio::test]
    async fn a_connection_with_a_request_in_hand_is_not_idle() {
        // Proves the idle clock stops while the writer holds a request (a JoinGroup may
        // wait minutes) and restarts from its answer.
        let (_client, server) = tokio::io::duplex(1024);
        let (sender, _receiver) = mpsc::channel(1);
        let (_stop, shutdown) = Shutdown::new();
        let idle = Duration::from_millis(100);
        let limits = read_limits(Duration::from_secs(60), idle);
        let activity = Arc::new(ConnectionActivity::new());
        activity.request_read();
        let mut reader = tokio::spawn(read_requests(
            server,
            BytesMut::new(),
            sender,
            limits,
            activity.clone(),
            shutdown,
        ));
        let early = tokio::time::timeout(idle * 4, &mut reader).await;
        assert!(early.is_err(), "closed as idle with a request in hand");
        let answered = Instant::now();
        activity.request_answered();
        let result = tokio::time::timeout(EVENT_TIMEOUT, reader)
            .await
            .expect("idle after the answer")
            .expect("reader ran");
        assert!(
            matches!(result, Err(ConnectionError::Idle { .. })),
            "{result:?}"
        );
        assert!(answered.elapsed() >= idle - Duration::from_millis(5));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_stops_reading_is_closed_when_its_response_stalls() {
        // Proves the write stall ends the whole connection: one Fetch whose answer (32 MB)
        // is far more than the sockets buffer, never read, ends the connection with
        // WriteStalled about --response-write-timeout-ms after the writes stop, though the
        // reader, with nothing more to read, would wait for ever.
        let dir = tempfile::tempdir().expect("temp dir");
        let config =
            crate::testing::test_config(dir.path(), &["--response-write-timeout-ms", "300"]);
        let cluster = Cluster::open(config, ("127.0.0.1".into(), 9092)).expect("open");
        cluster
            .create_topic("big", 1, BTreeMap::new(), Validation::Apply)
            .expect("create");
        let partition = cluster.topic("big").expect("topic").partitions[0].clone();
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder.append(1_000, None, Some(&[b'b'; 1_000_000]), &[]);
        let batch = builder.build().expect("a batch");
        for _ in 0..32 {
            partition.append_records(&batch, 1_000).expect("append");
        }
        let (mut client, serving) = connect_and_serve(Arc::new(cluster)).await;
        let request = riffle_protocol::api::fetch::FetchRequest {
            max_bytes: i32::MAX,
            topics: vec![riffle_protocol::api::fetch::FetchTopic {
                topic: "big".into(),
                partitions: vec![riffle_protocol::api::fetch::FetchPartition {
                    partition_max_bytes: i32::MAX,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut frame = BytesMut::new();
        let header = request_header(ApiKey::Fetch, 12, 1);
        encode_request(&header, &Request::Fetch(request), &mut frame);
        client.write_all(&frame).await.expect("send");
        let outcomes = tokio::time::timeout(EVENT_TIMEOUT, serving)
            .await
            .expect("the connection ends")
            .expect("the connection task");
        assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
        assert!(
            matches!(
                outcomes[1],
                Err(ConnectionError::WriteStalled(write_stall::WriteStalled {
                    timeout_ms: 300
                }))
            ),
            "{:?}",
            outcomes[1]
        );
    }

    /// Serves one connection to `cluster` and returns the client's end.
    async fn connect(cluster: Arc<Cluster>) -> TcpStream {
        // A SocketAddr, not a string: resolving a string could use the blocking pool.
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("bind");
        let address = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            let (stream, peer) = listener.accept().await.expect("accept");
            let (_stop, shutdown) = Shutdown::new();
            let listener = Arc::new(plaintext_listener());
            serve(stream, peer, listener, cluster, shutdown).await;
        });
        TcpStream::connect(address).await.expect("connect")
    }

    /// Serves one plaintext connection to `cluster`; returns the client's end and the task
    /// whose output is the reader's and the writer's outcomes.
    async fn connect_and_serve(cluster: Arc<Cluster>) -> (TcpStream, JoinHandle<Outcomes>) {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("bind");
        let address = listener.local_addr().expect("local address");
        let client = TcpStream::connect(address).await.expect("connect");
        let (stream, peer) = listener.accept().await.expect("accept");
        let serving = tokio::spawn(async move {
            let (_stop, shutdown) = Shutdown::new();
            let listener = plaintext_listener();
            serve_plaintext(stream, peer, &listener, cluster, shutdown).await
        });
        (client, serving)
    }

    /// A PLAINTEXT listener without security.
    fn plaintext_listener() -> Listener {
        Listener {
            name: "PLAINTEXT".into(),
            protocol: crate::listener::SecurityProtocol::Plaintext,
            advertised_host: "127.0.0.1".into(),
            advertised_port: 9092,
            tls: None,
            sasl_mechanisms: Arc::from(Vec::new()),
            sasl_start: crate::security::sasl::start,
        }
    }

    fn request_header(api_key: ApiKey, api_version: i16, correlation_id: i32) -> RequestHeader {
        RequestHeader {
            api_key: api_key as i16,
            api_version,
            correlation_id,
            client_id: Some("connection-test".into()),
        }
    }

    /// Produce v8 of one one-record batch to events/0.
    fn encode_produce(frames: &mut BytesMut, correlation_id: i32, acks: i16) {
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder.append(1_000, None, Some(b"value"), &[]);
        let request = ProduceRequest {
            acks,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: "events".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(builder.build().expect("a valid batch")),
                }],
            }],
            ..Default::default()
        };
        let header = request_header(ApiKey::Produce, 8, correlation_id);
        encode_request(&header, &Request::Produce(request), frames);
    }

    /// Reads a Produce v8 response, checks its correlation id and error code, and returns
    /// its base offset.
    async fn read_produce_response(client: &mut TcpStream, correlation_id: i32) -> i64 {
        let (answered, response) = read_response(client, ApiKey::Produce).await;
        assert_eq!(answered, correlation_id, "responses out of request order");
        let Response::Produce(response) = response else {
            panic!("not a Produce response: {response:?}");
        };
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, 0);
        partition.base_offset
    }

    async fn read_response(client: &mut TcpStream, api_key: ApiKey) -> (i32, Response) {
        let read = async {
            let size = client.read_i32().await.expect("size prefix");
            let mut frame = vec![0u8; usize::try_from(size).expect("a positive size")];
            client.read_exact(&mut frame).await.expect("frame");
            frame
        };
        let frame = tokio::time::timeout(EVENT_TIMEOUT, read)
            .await
            .expect("a response in time");
        let version = if api_key == ApiKey::Produce { 8 } else { 0 };
        riffle_protocol::decode_response(api_key, version, Bytes::from(frame)).expect("decode")
    }
}
