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

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use riffle_protocol::api::produce::{ProduceRequest, ProduceResponse};
use riffle_protocol::frame::{FRAME_SIZE_PREFIX_BYTES, FrameCheck, check_frame};
use riffle_protocol::{
    ApiKey, DecodeError, DeferredRecords, Request, RequestHeader, Response, TrailingBytes,
    decode_request_with, encode_response,
};
use riffle_storage::FileRange;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info_span, warn};

use crate::cluster::Cluster;
use crate::handler::produce::{self, Acknowledgement};
use crate::handler::{RequestContext, api_versions, dispatch};
use crate::security::Principal;
use crate::sendfile::send_file_range;
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

/// Runs requests in order and writes their responses in that order.
///
/// Whatever ends the loop (the reader is done, shutdown, a socket error), the fsync waits
/// already started are awaited before the connection ends, so shutdown's final flush
/// comes after every fsync this connection began.
async fn write_responses(
    socket: OwnedWriteHalf,
    mut requests: mpsc::Receiver<Inbound>,
    cluster: Arc<Cluster>,
    peer: SocketAddr,
) -> Result<(), ConnectionError> {
    let mut writer = ResponseWriter::new(socket, cluster, peer);
    let served = writer.serve(&mut requests).await;
    let answered = writer.answer_in_flight_produces().await;
    served?;
    answered?;
    writer.write_buffer().await?;
    writer.socket.flush().await?;
    Ok(())
}

/// The writer half of a connection.
///
/// Produce requests are split: the append runs in order here, the fsync wait of acks=all
/// runs in a task of its own, so the next pipelined produce appends while the previous
/// one waits, and both share one fsync. Any other request first waits for every produce
/// in flight, so responses keep request order and a request that reads (Fetch,
/// ListOffsets) sees what the producer was told is written.
struct ResponseWriter {
    socket: BufWriter<OwnedWriteHalf>,
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
}

/// A produce request appended in order, waiting to be answered.
struct InFlightProduce {
    correlation_id: i32,
    api_version: i16,
    acknowledgement: InFlightAcknowledgement,
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
}

impl ResponseWriter {
    fn new(socket: OwnedWriteHalf, cluster: Arc<Cluster>, peer: SocketAddr) -> Self {
        let max_in_flight_requests = cluster.config.max_in_flight_requests.max(1);
        ResponseWriter {
            socket: BufWriter::new(socket),
            buffer: BytesMut::new(),
            deferred_records: Vec::new(),
            context: RequestContext {
                principal: Principal::anonymous(),
                client_address: peer.ip(),
                client_host: format!("/{}", peer.ip()),
                listener_name: "PLAINTEXT".to_string(),
                advertised_host: cluster.advertised_host.clone(),
                advertised_port: cluster.advertised_port,
            },
            cluster,
            in_flight_produces: VecDeque::new(),
            max_in_flight_requests,
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
                let span = request_span(&header, request.api_key());
                let response = dispatch(&self.cluster, &self.context, &header, request)
                    .instrument(span)
                    .await;
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
            }
            Inbound::UnsupportedApiVersions { correlation_id } => {
                let response = Response::ApiVersions(api_versions::unsupported_version_response());
                encode_response(correlation_id, 0, &response, &mut self.buffer);
            }
        }
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
            send_file_range(self.socket.get_ref().as_ref(), range)
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

            let log = &cluster.topic("events").expect("topic").partitions[0].log;
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
            serve(stream, peer, cluster, shutdown).await;
        });
        TcpStream::connect(address).await.expect("connect")
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
