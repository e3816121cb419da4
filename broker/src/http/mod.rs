//! The HTTP listener (`--http-listen`, default `127.0.0.1:9644`): Prometheus metrics,
//! health checks and the web console for operators and orchestrators.
//!
//! | path | answer |
//! |---|---|
//! | `/healthz` | 200 as soon as the listener is bound, through start-up recovery: the process is alive |
//! | `/readyz` | 503 until the data directory is open and the Kafka listeners serve, 200 then, 503 again once shutdown begins |
//! | `/metrics` | 503 until the data directory is open; then every metric ([`crate::metrics`]) in the OpenMetrics text format; without a broker, what a [`MetricsSource`] encodes ([`HttpServer::serve_metrics`]) |
//! | `/apps`, `/apps/...` | the stream processor's applications, answered by the [`AppRoutes`] their host installed ([`HttpServer::set_apps`]); `{"apps":[]}` and 404 without one |
//! | `/`, `/console/...` | the web console: a page and its script and style, embedded in the binary ([`console`]) |
//! | `/api/...` | the console's read-only JSON: topics, records, groups, history ([`api`]) |
//!
//! The listener is bound with the Kafka listeners ([`crate::listener::bind_http`]), so a
//! busy port stops the start with a message naming it, and starts serving before the data
//! directory opens ([`HttpServer::start`]). It is not a new way to hurt the broker: it
//! holds at most [`HTTP_MAX_CONNECTIONS`] connections (one past it is closed at once),
//! reads at most [`HTTP_MAX_REQUEST_HEAD_BYTES`] of request head, closes a connection whose
//! head takes longer than [`HTTP_HEADER_READ_TIMEOUT`] or that lives longer than
//! [`HTTP_CONNECTION_TIMEOUT`], answers one request per connection, and encodes metrics and
//! reads `/api/` answers on blocking threads.
//!
//! The listener has no authentication: it binds loopback by default, and with an ACL
//! authorizer configured `/api/` shows no records ([`api`]).

pub mod api;
pub mod console;
pub mod history;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue, X_CONTENT_TYPE_OPTIONS};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, warn};

use crate::cluster::Cluster;

/// Most HTTP connections open at once; one past it is closed at once. Scrapers and probes
/// need a handful.
pub const HTTP_MAX_CONNECTIONS: usize = 32;
/// Most bytes of request line and headers read (hyper's smallest buffer limit); a longer
/// head gets 431 and the connection closes. Bodies are never read.
pub const HTTP_MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;
/// How long a client may take to send its request head.
pub const HTTP_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection may last, head, handling and response together: a client that
/// reads its response slowly cannot hold a slot longer.
pub const HTTP_CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// The content type of `/metrics`: what `prometheus-client` writes.
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The routes under `/apps`, which the server does not own: the stream processor's
/// applications (topologies, tasks, state stores), answered by whatever hosts them. The
/// server depends on no processor; the host installs its routes with
/// [`HttpServer::set_apps`].
pub trait AppRoutes: Send + Sync + 'static {
    /// The answer to a GET of `path` (which is `/apps` or starts with `/apps/`, still
    /// percent-encoded) with `query`, the part after `?` (empty when there is none). An
    /// answer that takes long must not hold up the processing it reads from.
    fn answer(&self, path: &str, query: &str) -> Pin<Box<dyn Future<Output = HttpAnswer> + Send>>;
}

/// What `/metrics` encodes where no broker runs: a listener started by a remote stream
/// application's program serves its own registry through this ([`HttpServer::serve_metrics`]).
pub trait MetricsSource: Send + Sync + 'static {
    /// Every metric in the OpenMetrics text format, ending with `# EOF`; called on a
    /// blocking thread.
    ///
    /// # Errors
    /// Only if a metric fails to format.
    fn encode(&self) -> Result<String, std::fmt::Error>;
}

/// One answer from [`AppRoutes`]: the status, the content type and the whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
}

impl HttpAnswer {
    /// A JSON answer.
    pub fn json(status: u16, body: impl Into<Bytes>) -> HttpAnswer {
        HttpAnswer {
            status,
            content_type: "application/json",
            body: body.into(),
        }
    }
}

/// What the HTTP listener knows of the broker's start: shared with [`HttpServer`].
struct HttpState {
    /// Set once the data directory is open; `/metrics` encodes its registry. Weak: a
    /// connection still being torn down after shutdown must not keep the cluster (and its
    /// data directory's lock) alive.
    cluster: OnceLock<Weak<Cluster>>,
    /// Whether the Kafka listeners accept clients: set as serving starts, cleared as
    /// shutdown begins.
    serving: AtomicBool,
    /// The routes under `/apps`, once their host installs them.
    apps: OnceLock<Arc<dyn AppRoutes>>,
    /// Where no broker runs: what `/metrics` encodes instead of a cluster's registry.
    metrics_source: OnceLock<Arc<dyn MetricsSource>>,
    /// When the listener started, for the console's uptime.
    started: Instant,
    /// The console's samples, taken once the cluster is open.
    history: Arc<history::History>,
}

impl HttpState {
    fn new() -> HttpState {
        HttpState {
            cluster: OnceLock::new(),
            serving: AtomicBool::new(false),
            apps: OnceLock::new(),
            metrics_source: OnceLock::new(),
            started: Instant::now(),
            history: Arc::default(),
        }
    }
}

/// The running HTTP listener. Dropping it stops the listener and its connections.
pub struct HttpServer {
    local_address: SocketAddr,
    state: Arc<HttpState>,
    task: JoinHandle<()>,
    /// The console's history sampler, started with the cluster.
    sampler: OnceLock<JoinHandle<()>>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every connection.
        self.task.abort();
        if let Some(sampler) = self.sampler.get() {
            sampler.abort();
        }
    }
}

impl HttpServer {
    /// Starts serving on `socket` at once: `/healthz` answers from now on, `/readyz` and
    /// `/metrics` once told of the cluster.
    pub fn start(socket: TcpListener, local_address: SocketAddr) -> HttpServer {
        let state = Arc::new(HttpState::new());
        let task = tokio::spawn(accept_loop(socket, state.clone()));
        HttpServer {
            local_address,
            state,
            task,
            sampler: OnceLock::new(),
        }
    }

    /// The bound address (the real port when asked for port 0).
    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    /// The data directory is open: `/metrics` serves this cluster's registry, `/api/`
    /// reads it, and the console's history starts sampling it.
    pub fn cluster_opened(&self, cluster: &Arc<Cluster>) {
        // Opened once per start; a second call would be a bug that changes nothing.
        if self.state.cluster.set(Arc::downgrade(cluster)).is_err() {
            return;
        }
        let sampler =
            history::sample_until_dropped(Arc::downgrade(cluster), self.state.history.clone());
        let _ = self.sampler.set(tokio::spawn(sampler));
    }

    /// Installs the routes under `/apps`. There is one host of applications per broker; a
    /// second call is refused and returns its routes.
    pub fn set_apps(&self, routes: Arc<dyn AppRoutes>) -> Result<(), Arc<dyn AppRoutes>> {
        self.state.apps.set(routes)
    }

    /// For a listener without a broker: `/metrics` encodes `source`, and `/readyz` needs
    /// no cluster, only [`HttpServer::set_serving`]. One source per listener; a second
    /// call is refused and returns its source.
    pub fn serve_metrics(
        &self,
        source: Arc<dyn MetricsSource>,
    ) -> Result<(), Arc<dyn MetricsSource>> {
        self.state.metrics_source.set(source)
    }

    /// Whether the Kafka listeners serve: `/readyz` answers 200 while they do (and the
    /// cluster is open).
    pub fn set_serving(&self, serving: bool) {
        self.state.serving.store(serving, Ordering::Release);
    }
}

/// Accepts until aborted, at most [`HTTP_MAX_CONNECTIONS`] at once.
async fn accept_loop(socket: TcpListener, state: Arc<HttpState>) {
    let permits = Arc::new(Semaphore::new(HTTP_MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        // Reap finished connections so the set stays as small as the open ones.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match socket.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, most likely: wait for some to close.
                warn!(%error, "http accept failed; backing off");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            debug!(%peer, "http connection refused: {HTTP_MAX_CONNECTIONS} are open");
            drop(stream);
            continue;
        };
        let state = state.clone();
        connections.spawn(async move {
            serve_connection(stream, state).await;
            drop(permit);
        });
    }
}

/// Serves one request on `stream`, within the connection limits.
async fn serve_connection(stream: tokio::net::TcpStream, state: Arc<HttpState>) {
    let service = service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(answer(&state, &request).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HTTP_HEADER_READ_TIMEOUT)
        .max_buf_size(HTTP_MAX_REQUEST_HEAD_BYTES)
        .keep_alive(false);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(HTTP_CONNECTION_TIMEOUT, connection).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => debug!(%error, "http connection failed"),
        Err(_) => debug!("http connection closed after {HTTP_CONNECTION_TIMEOUT:?}"),
    }
}

/// The answer to one request: GET or HEAD of a known path.
async fn answer(state: &HttpState, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => readiness(state),
        "/metrics" => metrics(state).await,
        path if path == "/apps" || path.starts_with("/apps/") => {
            apps(state, path, request.uri().query().unwrap_or("")).await
        }
        path if path.starts_with("/api/") => {
            let query = request.uri().query().unwrap_or("");
            into_response(api::answer(state, path, query).await)
        }
        path => match console::asset(path) {
            Some(asset) => into_response(asset),
            None => text(
                StatusCode::NOT_FOUND,
                "not found; try /, /metrics, /healthz or /readyz\n",
            ),
        },
    }
}

fn readiness(state: &HttpState) -> Response<Full<Bytes>> {
    if state.cluster.get().is_none() && state.metrics_source.get().is_none() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: opening the data directory\n",
        );
    }
    if !state.serving.load(Ordering::Acquire) {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the Kafka listeners are not serving\n",
        );
    }
    text(StatusCode::OK, "ready\n")
}

async fn metrics(state: &HttpState) -> Response<Full<Bytes>> {
    let cluster = state.cluster.get().and_then(Weak::upgrade);
    let source = state.metrics_source.get().cloned();
    // The scrape-time collectors take topic, group and store locks: off the async threads.
    let encoded = match (cluster, source) {
        (Some(cluster), _) => tokio::task::spawn_blocking(move || cluster.metrics().encode()).await,
        (None, Some(source)) => tokio::task::spawn_blocking(move || source.encode()).await,
        (None, None) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: opening the data directory\n",
            );
        }
    };
    match encoded {
        Ok(Ok(body)) => {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
            );
            response
        }
        Ok(Err(error)) => {
            warn!(%error, "metrics did not encode");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "metrics did not encode\n",
            )
        }
        Err(error) => {
            warn!(%error, "metrics encoding panicked");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "metrics did not encode\n",
            )
        }
    }
}

async fn apps(state: &HttpState, path: &str, query: &str) -> Response<Full<Bytes>> {
    let answer = match state.apps.get() {
        Some(routes) => routes.answer(path, query).await,
        None if path == "/apps" => HttpAnswer::json(200, r#"{"apps":[]}"#),
        None => HttpAnswer::json(404, r#"{"error":"no stream processor runs here"}"#),
    };
    into_response(answer)
}

fn into_response(answer: HttpAnswer) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(answer.body));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(console::CONSOLE_CONTENT_SECURITY_POLICY),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests;
