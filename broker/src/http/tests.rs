use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::testing::test_cluster;

async fn started() -> HttpServer {
    let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = socket.local_addr().expect("address");
    HttpServer::start(socket, address)
}

/// Sends `request` as written and returns the status code and the body.
async fn exchange(address: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(request).await.expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let answer = String::from_utf8(answer).expect("UTF-8");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

async fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    exchange(address, request.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_at_once_readiness_and_metrics_once_open_and_serving() {
    // Proves /healthz is up before the data directory opens, /readyz and /metrics wait
    // for it (and /readyz for the listeners), and readiness drops again at shutdown.
    let server = started().await;
    let address = server.local_address();
    assert_eq!(get(address, "/healthz").await, (200, "ok\n".to_string()));
    assert_eq!(get(address, "/readyz").await.0, 503);
    assert_eq!(get(address, "/metrics").await.0, 503);

    let (_dir, cluster) = test_cluster();
    let cluster = Arc::new(cluster);
    crate::metrics::scrape::register(&cluster);
    server.cluster_opened(&cluster);
    let (status, body) = get(address, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("not serving"), "{body}");
    server.set_serving(true);
    assert_eq!(get(address, "/readyz").await, (200, "ready\n".to_string()));
    let (status, body) = get(address, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains(
            "riffle_partition_log_end_offset{topic=\"__consumer_offsets\",partition=\"0\"}"
        ),
        "{body}"
    );
    assert!(body.contains("riffle_connections_open 0"), "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    server.set_serving(false);
    assert_eq!(get(address, "/readyz").await.0, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_defined_answers() {
    // Proves an unknown path is 404, another method 405, and a request head past the
    // limit is refused without the connection staying open.
    let server = started().await;
    let address = server.local_address();
    assert_eq!(get(address, "/nothing").await.0, 404);
    let post = b"POST /metrics HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(exchange(address, post).await.0, 405);
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: test\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(HTTP_MAX_REQUEST_HEAD_BYTES * 2)
    );
    let (status, _) = exchange(address, huge.as_bytes()).await;
    assert_ne!(status, 200, "an oversized head must not be served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_closed_and_the_limit_frees_its_slot() {
    // Proves a client that sends nothing is closed after the header timeout, and that
    // connections past HTTP_MAX_CONNECTIONS are closed at once while the others stay.
    let server = started().await;
    let address = server.local_address();
    let mut silent = Vec::new();
    for _ in 0..HTTP_MAX_CONNECTIONS {
        silent.push(TcpStream::connect(address).await.expect("connect"));
    }
    // Let the accept loop take them all before the next one.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(address).await.expect("connect");
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buffer)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "one past the limit is closed at once: {read:?}"
    );
    // The silent ones are closed after the header timeout.
    let first = &mut silent[0];
    let read = tokio::time::timeout(
        HTTP_HEADER_READ_TIMEOUT + Duration::from_secs(5),
        first.read(&mut buffer),
    )
    .await
    .expect("closed within the header timeout");
    assert!(read.map_or(true, |count| count == 0
        || buffer.starts_with(b"HTTP/1.1 408")));
    drop(silent);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get(address, "/healthz").await.0, 200);
}

/// A fixed metrics text, standing in for a remote application's registry.
struct FixedMetrics;

impl MetricsSource for FixedMetrics {
    fn encode(&self) -> Result<String, std::fmt::Error> {
        Ok("# TYPE app_up gauge\napp_up 1\n# EOF\n".to_string())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_without_a_broker_serves_its_metrics_source() {
    // Proves a listener started by a remote application's program serves its own metrics
    // and is ready once serving, with no cluster, and takes one source only.
    let server = started().await;
    let address = server.local_address();
    assert_eq!(get(address, "/metrics").await.0, 503);
    assert!(server.serve_metrics(Arc::new(FixedMetrics)).is_ok());
    assert!(server.serve_metrics(Arc::new(FixedMetrics)).is_err());
    assert_eq!(get(address, "/readyz").await.0, 503);
    server.set_serving(true);
    assert_eq!(get(address, "/readyz").await.0, 200);
    let (status, body) = get(address, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("app_up 1"), "{body}");
}
