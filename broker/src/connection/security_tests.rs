//! The connection's security against real sockets: several listeners at once, TLS 1.2 and
//! 1.3 with a rustls client, client certificates, misdirected clients, the authentication
//! deadline, and the SASL flows with a fake exchange.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use riffle_protocol::api::api_versions::ApiVersionsRequest;
use riffle_protocol::api::fetch::{FetchPartition, FetchRequest, FetchTopic};
use riffle_protocol::api::metadata::MetadataRequest;
use riffle_protocol::api::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};
use riffle_protocol::api::sasl_authenticate::SaslAuthenticateRequest;
use riffle_protocol::api::sasl_handshake::SaslHandshakeRequest;
use riffle_protocol::record::{Compression, RecordBatchBuilder};
use riffle_protocol::{
    ApiKey, ErrorCode, FetchRecords, Request, RequestHeader, Response, decode_response,
    encode_request,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;

use super::authentication::tests::{FAKE_FAILURE, FAKE_MECHANISM, fake_start};
use super::tls_handshake;
use crate::cluster::{Cluster, Validation};
use crate::config::SslClientAuth;
use crate::listener::{BoundListener, Listener};
use crate::security::Principal;
use crate::security::sasl::SaslExchange;
use crate::security::test_pki::{CLIENT_SUBJECT, TestPki};
use crate::security::tls::{TlsServer, TlsSettings, client_config};
use crate::startup;
use crate::testing::test_config;

/// How long a test waits for something that should happen at once.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A broker serving on its listeners, stopped when dropped.
struct TestBroker {
    _dir: tempfile::TempDir,
    cluster: Arc<Cluster>,
    addresses: BTreeMap<String, SocketAddr>,
    _stop: oneshot::Sender<()>,
}

impl TestBroker {
    /// Starts a broker with `flags` (after `--data-dir`), its SASL listeners using the
    /// fake exchange.
    async fn start(flags: &[&str]) -> TestBroker {
        let dir = tempfile::tempdir().expect("temp dir");
        let opened = startup::open(test_config(dir.path(), flags))
            .await
            .expect("the broker starts");
        let listeners: Vec<BoundListener> =
            opened.listeners.into_iter().map(with_fake_sasl).collect();
        let addresses = listeners
            .iter()
            .map(|bound| (bound.listener.name.clone(), bound.local_address))
            .collect();
        let cluster = opened.cluster;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(crate::server::run(listeners, cluster.clone(), async {
            let _ = stopped.await;
        }));
        TestBroker {
            _dir: dir,
            cluster,
            addresses,
            _stop: stop,
        }
    }

    fn address(&self, listener: &str) -> SocketAddr {
        self.addresses[listener]
    }

    async fn connect(&self, listener: &str) -> TcpStream {
        TcpStream::connect(self.address(listener))
            .await
            .expect("connect")
    }
}

fn fake_sasl_start(_cluster: &Cluster, mechanism: &str) -> Option<Box<dyn SaslExchange>> {
    fake_start(mechanism)
}

fn with_fake_sasl(mut bound: BoundListener) -> BoundListener {
    let listener = Arc::try_unwrap(bound.listener).expect("not shared before serving");
    bound.listener = Arc::new(Listener {
        sasl_start: fake_sasl_start,
        ..listener
    });
    bound
}

/// The TLS flags of a broker whose certificate comes from `pki`.
fn tls_flags(pki: &TestPki) -> Vec<String> {
    let path = |name: &str| pki.path(name).display().to_string();
    vec![
        "--ssl-certificate".into(),
        path("server.pem"),
        "--ssl-key".into(),
        path("server.key"),
    ]
}

fn strs(flags: &[String]) -> Vec<&str> {
    flags.iter().map(String::as_str).collect()
}

/// A TLS connector trusting `pki`'s CA, offering only `version`, presenting the client
/// certificate if `identity` says so.
fn connector(
    pki: &TestPki,
    version: &'static rustls::SupportedProtocolVersion,
    identity: Identity,
) -> TlsConnector {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(pki.ca()).expect("CA file") {
        roots.add(certificate.expect("CA")).expect("a CA");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[version])
    .expect("versions")
    .with_root_certificates(roots);
    let config = match identity {
        Identity::None => builder.with_no_client_auth(),
        Identity::Client => {
            let chain = CertificateDer::pem_file_iter(pki.path("client.pem"))
                .expect("client certificate")
                .collect::<Result<Vec<_>, _>>()
                .expect("PEM");
            let key = PrivateKeyDer::from_pem_file(pki.path("client.key")).expect("client key");
            builder.with_client_auth_cert(chain, key).expect("identity")
        }
    };
    TlsConnector::from(Arc::new(config))
}

/// Whether a test client presents its certificate.
#[derive(Clone, Copy)]
enum Identity {
    None,
    Client,
}

async fn tls_connect(
    broker: &TestBroker,
    listener: &str,
    connector: &TlsConnector,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = broker.connect(listener).await;
    let name = ServerName::try_from("localhost").expect("a name");
    connector.connect(name, tcp).await
}

/// Sends one request and reads its response.
async fn call<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    api_key: ApiKey,
    api_version: i16,
    request: Request,
) -> Response {
    send(stream, api_key, api_version, request).await;
    read_response(stream, api_key, api_version)
        .await
        .expect("a response")
}

async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    api_key: ApiKey,
    api_version: i16,
    request: Request,
) {
    let header = RequestHeader {
        api_key: api_key as i16,
        api_version,
        correlation_id: 1,
        client_id: Some("security-test".into()),
    };
    let mut frame = BytesMut::new();
    encode_request(&header, &request, &mut frame);
    stream.write_all(&frame).await.expect("send");
    stream.flush().await.expect("flush");
}

/// Reads one response frame; `None` if the connection closed instead.
async fn read_response<S: AsyncRead + Unpin>(
    stream: &mut S,
    api_key: ApiKey,
    api_version: i16,
) -> Option<Response> {
    let frame = read_frame(stream).await?;
    let (_, response) = decode_response(api_key, api_version, Bytes::from(frame)).expect("decode");
    Some(response)
}

async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    let read = async {
        let size = stream.read_i32().await.ok()?;
        let mut frame = vec![0u8; usize::try_from(size).ok()?];
        stream.read_exact(&mut frame).await.ok()?;
        Some(frame)
    };
    tokio::time::timeout(EVENT_TIMEOUT, read)
        .await
        .expect("an answer or a close in time")
}

/// Waits for the broker to close `stream`; returns how long that took.
async fn closed_within<S: AsyncRead + Unpin>(stream: &mut S) -> Duration {
    let started = Instant::now();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(EVENT_TIMEOUT, stream.read(&mut byte))
        .await
        .expect("closed in time");
    assert!(
        !matches!(read, Ok(n) if n > 0),
        "got data instead of a close"
    );
    started.elapsed()
}

fn api_versions_request() -> Request {
    Request::ApiVersions(ApiVersionsRequest::default())
}

/// The broker's (host, port) in a Metadata response.
fn metadata_broker(response: &Response) -> (String, i32) {
    let Response::Metadata(metadata) = response else {
        panic!("not Metadata: {response:?}");
    };
    (metadata.brokers[0].host.clone(), metadata.brokers[0].port)
}

async fn metadata<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Response {
    let request = Request::Metadata(MetadataRequest {
        topics: Some(Vec::new()),
        ..Default::default()
    });
    call(stream, ApiKey::Metadata, 12, request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_answer_metadata_with_their_own_advertised_address() {
    // Proves three listeners of different protocols serve at once, and Metadata on each
    // names that listener's advertised address (an explicit host, or the bound one).
    let pki = TestPki::new();
    let mut flags = vec![
        "--listeners".to_string(),
        "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0".into(),
        "--advertised-listeners".into(),
        "SSL://localhost:0".into(),
    ];
    flags.extend(tls_flags(&pki));
    let broker = TestBroker::start(&strs(&flags)).await;
    let plaintext = broker.address("PLAINTEXT");
    let mut stream = broker.connect("PLAINTEXT").await;
    let advertised = metadata_broker(&metadata(&mut stream).await);
    assert_eq!(
        advertised,
        ("127.0.0.1".into(), i32::from(plaintext.port()))
    );
    let tls = connector(&pki, &rustls::version::TLS13, Identity::None);
    let mut stream = tls_connect(&broker, "SSL", &tls).await.expect("handshake");
    let advertised = metadata_broker(&metadata(&mut stream).await);
    let ssl_port = i32::from(broker.address("SSL").port());
    assert_eq!(advertised, ("localhost".into(), ssl_port));
    // A SASL listener serves Metadata only after authentication.
    let mut stream = broker.connect("SASL_PLAINTEXT").await;
    authenticate_v1(&mut stream).await;
    let advertised = metadata_broker(&metadata(&mut stream).await);
    let sasl_port = i32::from(broker.address("SASL_PLAINTEXT").port());
    assert_eq!(advertised, ("127.0.0.1".into(), sasl_port));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_2_and_1_3_clients_produce_and_fetch_large_record_sets() {
    // Proves both TLS versions are negotiated and serve requests, and a record set large
    // enough to be sent from its file (sendfile on plaintext) arrives whole through TLS.
    let pki = TestPki::new();
    let mut flags = vec!["--listeners".to_string(), "SSL://127.0.0.1:0".into()];
    flags.extend(tls_flags(&pki));
    let broker = TestBroker::start(&strs(&flags)).await;
    broker
        .cluster
        .create_topic("events", 1, BTreeMap::new(), Validation::Apply)
        .expect("create");
    let value = vec![b'x'; 300 * 1024];
    let mut batch = RecordBatchBuilder::new(Compression::None);
    batch.append(1_000, None, Some(&value), &[]);
    let batch = batch.build().expect("a batch");
    for (version, expected) in [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let tls = connector(&pki, version, Identity::None);
        let mut stream = tls_connect(&broker, "SSL", &tls).await.expect("handshake");
        assert_eq!(stream.get_ref().1.protocol_version(), Some(expected));
        let response = call(&mut stream, ApiKey::ApiVersions, 3, api_versions_request()).await;
        assert!(matches!(response, Response::ApiVersions(ref body) if body.error_code == 0));
        let produce = Request::Produce(ProduceRequest {
            acks: -1,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: "events".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(batch.clone()),
                }],
            }],
            ..Default::default()
        });
        let Response::Produce(produced) = call(&mut stream, ApiKey::Produce, 8, produce).await
        else {
            panic!("not a Produce response");
        };
        assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
        let Response::Fetch(fetched) = call(&mut stream, ApiKey::Fetch, 11, fetch_all()).await
        else {
            panic!("not a Fetch response");
        };
        let records = fetched.responses[0].partitions[0].records.as_ref();
        let Some(FetchRecords::Bytes(records)) = records else {
            panic!("no records");
        };
        // Every batch produced so far, whole and byte for byte.
        assert!(records.len() >= batch.len(), "{} bytes", records.len());
        assert_eq!(&records[records.len() - batch.len() + 8..], &batch[8..]);
    }
}

fn fetch_all() -> Request {
    Request::Fetch(FetchRequest {
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: i32::MAX,
        topics: vec![FetchTopic {
            topic: "events".into(),
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: 0,
                partition_max_bytes: i32::MAX,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_name_the_principal_and_required_refuses_clients_without() {
    // Proves a client certificate gives `User:<subject DN>`, no certificate gives
    // `User:ANONYMOUS` when requested, and `required` refuses a client without one while
    // serving a client with one.
    let pki = TestPki::new();
    let settings = |client_auth| TlsSettings {
        certificate: pki.path("server.pem"),
        key: pki.path("server.key"),
        client_auth,
        truststore: Some(pki.ca()),
    };
    let requested = TlsServer::new(settings(SslClientAuth::Requested)).expect("TLS server");
    let with = connector(&pki, &rustls::version::TLS13, Identity::Client);
    let without = connector(&pki, &rustls::version::TLS13, Identity::None);
    let principal = handshake_principal(&requested, &with).await;
    assert_eq!(principal, Some(Principal::user(CLIENT_SUBJECT)));
    assert_eq!(handshake_principal(&requested, &without).await, None);

    let mut flags = vec![
        "--listeners".to_string(),
        "SSL://127.0.0.1:0".into(),
        "--ssl-client-auth".into(),
        "required".into(),
        "--ssl-truststore".into(),
        pki.ca().display().to_string(),
    ];
    flags.extend(tls_flags(&pki));
    let broker = TestBroker::start(&strs(&flags)).await;
    let mut stream = tls_connect(&broker, "SSL", &with).await.expect("handshake");
    let response = call(&mut stream, ApiKey::ApiVersions, 3, api_versions_request()).await;
    assert!(matches!(response, Response::ApiVersions(_)));
    // TLS 1.3 clients finish before the server checks them; the refusal shows on read.
    match tls_connect(&broker, "SSL", &without).await {
        Err(_) => {}
        Ok(mut refused) => {
            send(&mut refused, ApiKey::ApiVersions, 3, api_versions_request()).await;
            closed_within(&mut refused).await;
        }
    }
}

/// The principal [`tls_handshake`] finds for a client of `connector`, over a real socket.
async fn handshake_principal(server: &TlsServer, connector: &TlsConnector) -> Option<Principal> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let client = async {
        let tcp = TcpStream::connect(address).await.expect("connect");
        let name = ServerName::try_from("localhost").expect("a name");
        let mut stream = connector.connect(name, tcp).await.expect("handshake");
        // Keep the connection open until the server has looked at it.
        let _ = stream.read(&mut [0u8; 1]).await;
    };
    let server_side = async {
        let (tcp, _) = listener.accept().await.expect("accept");
        let (stream, principal) = tls_handshake(tcp, server).await.expect("handshake");
        drop(stream);
        principal
    };
    let ((), principal) = tokio::join!(client, server_side);
    principal
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misdirected_clients_are_closed_at_once_and_others_keep_working() {
    // Proves a plaintext request on the TLS listener and a TLS handshake on the plaintext
    // listener each close promptly (long before the authentication deadline), while a
    // TLS client connected before them is still served afterwards.
    let pki = TestPki::new();
    let mut flags = vec![
        "--listeners".to_string(),
        "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0".into(),
    ];
    flags.extend(tls_flags(&pki));
    let broker = TestBroker::start(&strs(&flags)).await;
    let tls = connector(&pki, &rustls::version::TLS13, Identity::None);
    let mut bystander = tls_connect(&broker, "SSL", &tls).await.expect("handshake");

    let mut plaintext_on_tls = broker.connect("SSL").await;
    send(
        &mut plaintext_on_tls,
        ApiKey::ApiVersions,
        3,
        api_versions_request(),
    )
    .await;
    assert!(closed_within(&mut plaintext_on_tls).await < Duration::from_secs(2));

    let tcp = broker.connect("PLAINTEXT").await;
    let name = ServerName::try_from("localhost").expect("a name");
    let handshake = tokio::time::timeout(EVENT_TIMEOUT, tls.connect(name, tcp)).await;
    assert!(
        handshake.expect("ended in time").is_err(),
        "no TLS on plaintext"
    );

    let response = call(
        &mut bystander,
        ApiKey::ApiVersions,
        3,
        api_versions_request(),
    )
    .await;
    assert!(matches!(response, Response::ApiVersions(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stalls_before_authenticating_is_dropped_at_the_deadline() {
    // Proves a TLS handshake that never finishes, and a SASL exchange that never starts,
    // are dropped at `--authentication-timeout-ms`, freeing the connection slot.
    let pki = TestPki::new();
    let mut flags = vec![
        "--listeners".to_string(),
        "SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0".into(),
        "--authentication-timeout-ms".into(),
        "300".into(),
        "--max-connections".into(),
        "2".into(),
    ];
    flags.extend(tls_flags(&pki));
    let broker = TestBroker::start(&strs(&flags)).await;
    let mut stalled_tls = broker.connect("SSL").await;
    stalled_tls
        .write_all(&[0x16, 0x03])
        .await
        .expect("half a record header");
    let mut stalled_sasl = broker.connect("SASL_PLAINTEXT").await;
    let connected = Instant::now();
    closed_within(&mut stalled_tls).await;
    let tls_closed = connected.elapsed();
    closed_within(&mut stalled_sasl).await;
    let sasl_closed = connected.elapsed();
    for closed in [tls_closed, sasl_closed] {
        assert!(closed >= Duration::from_millis(200), "{closed:?}");
        assert!(closed < Duration::from_secs(5), "{closed:?}");
    }
    // Both slots are free again.
    let tls = connector(&pki, &rustls::version::TLS12, Identity::None);
    let mut stream = tls_connect(&broker, "SSL", &tls).await.expect("handshake");
    let response = call(&mut stream, ApiKey::ApiVersions, 3, api_versions_request()).await;
    assert!(matches!(response, Response::ApiVersions(_)));
}

/// ApiVersions, SaslHandshake v1 and the fake's two SaslAuthenticate v2 steps.
async fn authenticate_v1<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) {
    call(stream, ApiKey::ApiVersions, 3, api_versions_request()).await;
    let handshake = handshake_request(FAKE_MECHANISM);
    let Response::SaslHandshake(response) = call(stream, ApiKey::SaslHandshake, 1, handshake).await
    else {
        panic!("not a handshake response");
    };
    assert_eq!(response.error_code, 0);
    for (token, expected) in [(&b"alice"[..], &b"challenge"[..]), (b"proof", b"final")] {
        let response = call(stream, ApiKey::SaslAuthenticate, 2, authenticate(token)).await;
        let Response::SaslAuthenticate(response) = response else {
            panic!("not SaslAuthenticate");
        };
        assert_eq!(
            (response.error_code, &response.auth_bytes[..]),
            (0, expected)
        );
    }
}

fn handshake_request(mechanism: &str) -> Request {
    Request::SaslHandshake(SaslHandshakeRequest {
        mechanism: mechanism.into(),
    })
}

fn authenticate(token: &[u8]) -> Request {
    Request::SaslAuthenticate(SaslAuthenticateRequest {
        auth_bytes: Bytes::copy_from_slice(token),
    })
}

/// A broker with SASL_PLAINTEXT, SASL_SSL and PLAINTEXT listeners, the fake exchange, and
/// a failed-authentication delay of [`FAILED_DELAY_MS`].
async fn sasl_broker(pki: &TestPki) -> TestBroker {
    let mut flags = vec![
        "--listeners".to_string(),
        "SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0,PLAINTEXT://127.0.0.1:0".into(),
        "--connection-failed-authentication-delay-ms".into(),
        FAILED_DELAY_MS.to_string(),
    ];
    flags.extend(tls_flags(pki));
    TestBroker::start(&strs(&flags)).await
}

/// The failed-authentication delay of [`sasl_broker`].
const FAILED_DELAY_MS: u64 = 400;

fn is_illegal_sasl_state(response: &Response) -> bool {
    matches!(response, Response::SaslHandshake(handshake)
        if handshake.error_code == ErrorCode::IllegalSaslState.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_listeners_serve_only_after_the_v1_flow() {
    // Proves on SASL listeners a request before authentication closes the connection,
    // the v1 flow (plaintext and inside TLS) authenticates and then requests are served,
    // and a second SaslHandshake afterwards gets ILLEGAL_SASL_STATE.
    let pki = TestPki::new();
    let broker = sasl_broker(&pki).await;
    let mut early = broker.connect("SASL_PLAINTEXT").await;
    let metadata_request = Request::Metadata(MetadataRequest::default());
    send(&mut early, ApiKey::Metadata, 12, metadata_request).await;
    closed_within(&mut early).await;

    let mut stream = broker.connect("SASL_PLAINTEXT").await;
    authenticate_v1(&mut stream).await;
    metadata(&mut stream).await;
    let again = handshake_request(FAKE_MECHANISM);
    assert!(is_illegal_sasl_state(
        &call(&mut stream, ApiKey::SaslHandshake, 1, again).await
    ));

    let tls = connector(&pki, &rustls::version::TLS13, Identity::None);
    let mut stream = tls_connect(&broker, "SASL_SSL", &tls)
        .await
        .expect("handshake");
    authenticate_v1(&mut stream).await;
    metadata(&mut stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_v0_flow_exchanges_raw_tokens_then_serves() {
    // Proves that after SaslHandshake v0 bare size-prefixed tokens are exchanged, with no
    // Kafka header, and requests are served once the exchange is done.
    let pki = TestPki::new();
    let broker = sasl_broker(&pki).await;
    let mut raw = broker.connect("SASL_PLAINTEXT").await;
    call(
        &mut raw,
        ApiKey::SaslHandshake,
        0,
        handshake_request(FAKE_MECHANISM),
    )
    .await;
    for (token, expected) in [(&b"alice"[..], &b"challenge"[..]), (b"proof", b"final")] {
        let length = u32::try_from(token.len()).expect("small");
        raw.write_all(&length.to_be_bytes()).await.expect("size");
        raw.write_all(token).await.expect("token");
        assert_eq!(read_frame(&mut raw).await.as_deref(), Some(expected));
    }
    metadata(&mut raw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_authentication_is_answered_then_closed_after_the_delay() {
    // Proves a refused token is answered SASL_AUTHENTICATION_FAILED with the exchange's
    // message and the connection closes only after the configured delay, and that
    // SaslHandshake on a listener without SASL gets ILLEGAL_SASL_STATE.
    let pki = TestPki::new();
    let broker = sasl_broker(&pki).await;
    let mut refused = broker.connect("SASL_PLAINTEXT").await;
    call(
        &mut refused,
        ApiKey::SaslHandshake,
        1,
        handshake_request(FAKE_MECHANISM),
    )
    .await;
    send(
        &mut refused,
        ApiKey::SaslAuthenticate,
        1,
        authenticate(b"mallory"),
    )
    .await;
    let answered = Instant::now();
    let response = read_response(&mut refused, ApiKey::SaslAuthenticate, 1).await;
    let Some(Response::SaslAuthenticate(response)) = response else {
        panic!("no SaslAuthenticate answer: {response:?}");
    };
    assert_eq!(
        response.error_code,
        ErrorCode::SaslAuthenticationFailed.code()
    );
    assert_eq!(response.error_message.as_deref(), Some(FAKE_FAILURE));
    closed_within(&mut refused).await;
    let waited = answered.elapsed();
    assert!(
        waited >= Duration::from_millis(FAILED_DELAY_MS - 50),
        "{waited:?}"
    );

    let mut plaintext = broker.connect("PLAINTEXT").await;
    let handshake = handshake_request(FAKE_MECHANISM);
    let answer = call(&mut plaintext, ApiKey::SaslHandshake, 1, handshake).await;
    assert!(is_illegal_sasl_state(&answer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_files_that_are_missing_or_wrong_are_named_at_start_up() {
    // Proves a TLS listener without its files, an unreadable certificate, a key that does
    // not fit, and client authentication without a truststore are start-up errors naming
    // the flag or the file.
    let pki = TestPki::new();
    let other = TestPki::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let open = |flags: Vec<String>| {
        let config = test_config(dir.path(), &strs(&flags));
        async move {
            let error = startup::open(config).await.err().expect("a start-up error");
            error.to_string()
        }
    };
    let listeners = || vec!["--listeners".to_string(), "SSL://127.0.0.1:0".into()];
    let error = open(listeners()).await;
    assert!(error.contains("needs --ssl-certificate"), "{error}");
    let mut missing = listeners();
    missing.extend([
        "--ssl-certificate".into(),
        "/nonexistent.pem".into(),
        "--ssl-key".into(),
        "/nonexistent.key".into(),
    ]);
    let error = open(missing).await;
    assert!(error.contains("/nonexistent.pem"), "{error}");
    let mut mismatched = listeners();
    mismatched.extend([
        "--ssl-certificate".into(),
        pki.path("server.pem").display().to_string(),
        "--ssl-key".into(),
        other.path("server.key").display().to_string(),
    ]);
    let error = open(mismatched).await;
    assert!(error.contains("server.key"), "{error}");
    let mut no_truststore = listeners();
    no_truststore.extend(tls_flags(&pki));
    no_truststore.extend(["--ssl-client-auth".into(), "required".into()]);
    let error = open(no_truststore).await;
    assert!(error.contains("needs --ssl-truststore"), "{error}");
}

#[test]
fn the_client_helper_reads_its_ca_file() {
    // Proves `client_config` accepts a PEM CA file and names a missing one.
    let pki = TestPki::new();
    assert!(client_config(Some(&pki.ca())).is_ok());
    let error = client_config(Some(std::path::Path::new("/nonexistent-ca.pem")))
        .expect_err("an error")
        .to_string();
    assert!(error.contains("/nonexistent-ca.pem"), "{error}");
}
