use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use riffle_protocol::ErrorCode;

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

/// A cluster with topic `orders` (two partitions; partition 0 holds three records with
/// headers) and group `billing` committed at offset 1 of partition 0.
fn cluster_with_data() -> (tempfile::TempDir, Arc<Cluster>) {
    use crate::cluster::Validation;
    use crate::group::records::CommittedOffset;
    use riffle_protocol::record::{Compression, RecordBatchBuilder};

    let (dir, cluster) = test_cluster();
    cluster
        .create_topic("orders", 2, Default::default(), Validation::Apply)
        .expect("create orders");
    let mut builder = RecordBatchBuilder::new(Compression::None);
    for (key, value) in [("a", "{\"n\":1}"), ("b", "two"), ("c", "\u{1}\u{2}")] {
        builder.append(
            1_000,
            Some(key.as_bytes()),
            Some(value.as_bytes()),
            &[("source", Some(b"web".as_slice()))],
        );
    }
    let batch = builder.build().expect("a batch");
    let topic = cluster.topic("orders").expect("orders");
    let partition = topic.partition(0).expect("partition 0");
    partition.append_records(&batch, 1_000).expect("append");
    let commit = CommittedOffset {
        offset: 1,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp_ms: 1_000,
        expire_timestamp_ms: None,
    };
    let (errors, _) = cluster.groups().commit_offsets(
        "billing",
        "",
        None,
        -1,
        vec![("orders".into(), 0, commit)],
    );
    assert!(
        errors.iter().all(|error| *error == ErrorCode::None),
        "{errors:?}"
    );
    (dir, Arc::new(cluster))
}

async fn get_json(address: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let (status, body) = get(address, path).await;
    let json = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: not JSON: {body}"));
    (status, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_reads_topics_records_and_groups() {
    // Proves each /api/ resource answers 200 with the cluster's state: topic list and
    // partition offsets, a page of records in base64 with headers, and a group's lag.
    let server = started().await;
    let address = server.local_address();
    let (_dir, cluster) = cluster_with_data();
    server.cluster_opened(&cluster);

    let (status, cluster_json) = get_json(address, "/api/cluster").await;
    assert_eq!(status, 200);
    assert_eq!(cluster_json["cluster_id"], cluster.cluster_id.as_str());

    let (status, topics) = get_json(address, "/api/topics").await;
    assert_eq!(status, 200);
    let orders = topics["topics"]
        .as_array()
        .and_then(|all| all.iter().find(|topic| topic["name"] == "orders"))
        .expect("orders listed");
    assert_eq!(
        (orders["partitions"].as_i64(), orders["records"].as_i64()),
        (Some(2), Some(3))
    );

    let (status, topic) = get_json(address, "/api/topics/orders").await;
    assert_eq!(status, 200);
    assert_eq!(topic["partitions"][0]["log_end_offset"], 3);
    assert!(topic["configs"].as_array().is_some_and(|configs| {
        configs.iter().any(|config| {
            config["name"] == "cleanup.policy" && config["source"] == "DEFAULT_CONFIG"
        })
    }));

    let (status, page) = get_json(
        address,
        "/api/topics/orders/partitions/0/records?offset=1&max=1",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["next_offset"], 2);
    let record = &page["records"][0];
    assert_eq!(record["offset"], 1);
    assert_eq!(record["key"], "Yg=="); // "b"
    assert_eq!(record["value"], "dHdv"); // "two"
    assert_eq!(record["headers"][0]["key"], "source");
    assert_eq!(record["headers"][0]["value"], "d2Vi"); // "web"

    let (status, group) = get_json(address, "/api/groups/billing").await;
    assert_eq!(status, 200);
    assert_eq!(group["offsets"][0]["lag"], 2);
    let (status, groups) = get_json(address, "/api/groups").await;
    assert_eq!(status, 200);
    assert_eq!(groups["groups"][0]["total_lag"], 2);

    let (status, history) = get_json(address, "/api/history?group=billing").await;
    assert_eq!(status, 200);
    assert_eq!(history["interval_ms"], 5000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_answers_bad_input_with_json_errors() {
    // Proves malformed paths and queries are 400, unknown things 404 and a closed data
    // directory 503, each with a JSON error and no panic.
    let server = started().await;
    let address = server.local_address();
    let (status, body) = get_json(address, "/api/topics").await;
    assert_eq!(status, 503);
    assert!(body["error"].is_string(), "{body}");

    let (_dir, cluster) = cluster_with_data();
    server.cluster_opened(&cluster);
    for (path, expected) in [
        ("/api/topics/bad%zz", 400),
        ("/api/topics/%ff", 400),
        ("/api/topics/orders/partitions/x/records", 400),
        ("/api/topics/orders/partitions/0/records?max=0", 400),
        ("/api/topics/orders/partitions/0/records?max=501", 400),
        ("/api/topics/orders/partitions/0/records?offset=ten", 400),
        ("/api/topics/nothing", 404),
        ("/api/topics/orders/partitions/7/records", 404),
        ("/api/groups/nobody", 404),
        ("/api/unknown", 404),
    ] {
        let (status, body) = get_json(address, path).await;
        assert_eq!(status, expected, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    // Past the end and before the start are not errors: an empty page, and the log start.
    let (status, page) =
        get_json(address, "/api/topics/orders/partitions/0/records?offset=99").await;
    assert_eq!(
        (status, page["records"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (_, page) = get_json(address, "/api/topics/orders/partitions/0/records?offset=-5").await;
    assert_eq!(page["records"][0]["offset"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_refused_when_the_broker_checks_acls() {
    // Proves the unauthenticated listener shows no records past an ACL authorizer.
    let server = started().await;
    let address = server.local_address();
    let (_dir, cluster) = crate::testing::acl_cluster(&[]);
    let cluster = Arc::new(cluster);
    server.cluster_opened(&cluster);
    let (status, body) = get_json(
        address,
        "/api/topics/__consumer_offsets/partitions/0/records",
    )
    .await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_page_and_its_files_are_served() {
    // Proves / serves the page, which names its script and style, and both are served
    // with their content types and a policy that allows nothing but this listener.
    let server = started().await;
    let address = server.local_address();
    let (status, page) = get(address, "/").await;
    assert_eq!(status, 200);
    for file in ["/console/app.js", "/console/style.css"] {
        assert!(page.contains(file), "{page}");
        let request = format!("GET {file} HTTP/1.1\r\nHost: test\r\n\r\n");
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 200"), "{file}: {answer:.200}");
        assert!(
            answer.contains("content-security-policy: default-src 'self'"),
            "{answer:.400}"
        );
    }
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
