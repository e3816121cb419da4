//! One client connection: a reader that frames and decodes requests, and a writer that
//! runs them in order and writes the responses in that same order.
//!
//! The reader may read ahead of the writer by `max_in_flight_requests` (pipelining), and
//! that bounded channel is the backpressure: a client that stops reading responses stops
//! being read. Requests on one connection are handled one at a time, as Kafka does, so an
//! idempotent producer's pipelined batches reach a partition in the order they were sent.
//!
//! A frame larger than `max_request_bytes`, a malformed request, or a version we do not
//! advertise closes this connection with a log line; other connections are unaffected.
//! An unsupported ApiVersions version is answered instead (KIP-511).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use riffle_protocol::frame::{FRAME_SIZE_PREFIX_BYTES, FrameCheck, check_frame};
use riffle_protocol::{
    ApiKey, DecodeError, Request, RequestHeader, Response, TrailingBytes, decode_request_with,
    encode_response,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info_span, warn};

use crate::cluster::Cluster;
use crate::handler::{api_versions, dispatch};
use crate::shutdown::Shutdown;

/// Read buffer size; grows to the frame size when a larger frame arrives.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// How much of a malformed frame is logged, in bytes, at debug level.
const MALFORMED_FRAME_LOG_BYTES: usize = 256;

/// A request read off the wire, waiting for the writer.
enum Inbound {
    /// A request we advertise.
    Request(RequestHeader, Request),
    /// ApiVersions at a version we do not speak: answered with our ranges (KIP-511).
    UnsupportedApiVersions { correlation_id: i32 },
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
    /// An API or version we do not advertise.
    #[error("unsupported api key {api_key} version {api_version}")]
    Unsupported {
        /// The api key.
        api_key: i16,
        /// The version.
        api_version: i16,
    },
}

/// Serves one connection until the client leaves, an error occurs, or shutdown.
pub async fn serve(stream: TcpStream, peer: SocketAddr, cluster: Arc<Cluster>, shutdown: Shutdown) {
    let _ = stream.set_nodelay(true);
    let (read_half, write_half) = stream.into_split();
    let (sender, receiver) = mpsc::channel(cluster.config.max_in_flight_requests.max(1));
    let max_request_bytes = cluster.config.max_request_bytes;
    let reader = read_requests(read_half, sender, max_request_bytes, shutdown);
    let writer = write_responses(write_half, receiver, cluster, peer);
    // The writer ends when the reader drops its sender, after answering what was read.
    let (read_result, write_result) = tokio::join!(reader, writer);
    for result in [read_result, write_result] {
        match result {
            Ok(()) => {}
            Err(ConnectionError::Io(error)) => debug!(%peer, %error, "connection closed"),
            Err(error) => warn!(%peer, %error, "closing connection"),
        }
    }
}

async fn read_requests(
    mut socket: OwnedReadHalf,
    requests: mpsc::Sender<Inbound>,
    max_request_bytes: usize,
    mut shutdown: Shutdown,
) -> Result<(), ConnectionError> {
    let mut buffer = BytesMut::with_capacity(READ_BUFFER_BYTES);
    loop {
        while let FrameCheck::Complete { body_bytes } = check_frame(&buffer, max_request_bytes)? {
            let frame = buffer
                .split_to(FRAME_SIZE_PREFIX_BYTES + body_bytes)
                .freeze()
                .slice(FRAME_SIZE_PREFIX_BYTES..);
            let inbound = decode(frame)?;
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
        let read = tokio::select! {
            read = socket.read_buf(&mut buffer) => read?,
            () = shutdown.recv() => return Ok(()),
        };
        if read == 0 {
            return Ok(()); // the client closed its side
        }
    }
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

async fn write_responses(
    socket: OwnedWriteHalf,
    mut requests: mpsc::Receiver<Inbound>,
    cluster: Arc<Cluster>,
    peer: SocketAddr,
) -> Result<(), ConnectionError> {
    // Kafka reports a member's host as "/address".
    let client_host = format!("/{}", peer.ip());
    let mut socket = BufWriter::new(socket);
    let mut buffer = BytesMut::new();
    while let Some(inbound) = requests.recv().await {
        match inbound {
            Inbound::Request(header, request) => {
                let span = info_span!(
                    "request",
                    api = request.api_key().name(),
                    version = header.api_version,
                    correlation_id = header.correlation_id,
                    client_id = header.client_id.as_deref().unwrap_or(""),
                );
                let response = dispatch(&cluster, &header, &client_host, request)
                    .instrument(span)
                    .await;
                if let Some(response) = response {
                    encode_response(
                        header.correlation_id,
                        header.api_version,
                        &response,
                        &mut buffer,
                    );
                }
            }
            Inbound::UnsupportedApiVersions { correlation_id } => {
                let response = Response::ApiVersions(api_versions::unsupported_version_response());
                encode_response(correlation_id, 0, &response, &mut buffer);
            }
        }
        socket.write_all(&buffer).await?;
        buffer.clear();
        if requests.is_empty() {
            socket.flush().await?;
        }
    }
    socket.flush().await?;
    Ok(())
}
