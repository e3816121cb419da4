//! Starting the server: [`open`] binds the listeners, starts the HTTP listener and opens
//! the data directory; [`announce`] prints the listening lines; [`OpenedBroker::serve`]
//! serves until a stop. `riffle serve` and the embedded broker both start this way.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinError;
use tracing::info;

use crate::cluster::{Cluster, ClusterOpenError};
use crate::config::BrokerConfig;
use crate::http::HttpServer;
use crate::listener::{self, BindError, BoundListener};

/// Why [`open`] failed; the message names the flag, address, file or directory at fault.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A listener could not be set up or bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The flags name no listener.
    #[error("no listener to serve on")]
    NoListener,
    /// Opening the data directory panicked: a bug, reported as one.
    #[error("start-up panicked: {0}")]
    Panicked(#[source] JoinError),
    /// The data directory could not be opened or recovered.
    #[error("cannot open the data directory: {0}")]
    DataDir(#[source] ClusterOpenError),
}

/// A broker bound to its addresses with its data directory open, not serving yet.
pub struct OpenedBroker {
    /// The bound listeners, in the order of `--listeners`, handed to
    /// [`crate::server::run`].
    pub listeners: Vec<BoundListener>,
    /// The first listener's address (the real port when asked for port 0).
    pub bound: SocketAddr,
    /// The topics, logs and group coordinator.
    pub cluster: Arc<Cluster>,
    /// The HTTP listener (metrics and health), unless `--http-listen none`; serving since
    /// before the data directory opened. Dropping it stops it.
    pub http: Option<HttpServer>,
}

impl OpenedBroker {
    /// Marks the broker ready on its HTTP listener (`/readyz` answers 200): call it as the
    /// Kafka listeners are handed to [`crate::server::run`]. Their sockets are bound, so a
    /// client that connects from now on is queued until the accept loops start.
    pub fn mark_serving(&self) {
        if let Some(http) = &self.http {
            http.set_serving(true);
        }
    }

    /// Every Kafka listener's name and bound address, in the order of `--listeners`.
    pub fn listener_addresses(&self) -> Vec<(String, SocketAddr)> {
        let address = |bound: &BoundListener| (bound.listener.name.clone(), bound.local_address);
        self.listeners.iter().map(address).collect()
    }

    /// The HTTP listener's bound address, unless `--http-listen none`.
    pub fn http_address(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(HttpServer::local_address)
    }

    /// Serves clients until `stop`; then marks the broker not ready on the HTTP listener
    /// (shutdown begins and connections drain), and stops that listener last, once the
    /// server has stopped.
    pub async fn serve(self, stop: impl Future<Output = ()>) {
        let OpenedBroker {
            listeners,
            cluster,
            http,
            ..
        } = self;
        let stop = async {
            stop.await;
            if let Some(http) = &http {
                http.set_serving(false);
            }
        };
        crate::server::run(listeners, cluster, stop).await;
    }
}

/// Binds every listener (reading the TLS files they need) and opens the data directory
/// (recovering it if needed).
///
/// # Errors
/// An [`OpenError`] naming the flag, address, file or directory that failed.
pub async fn open(config: BrokerConfig) -> Result<OpenedBroker, OpenError> {
    let listeners = listener::bind(&config).await?;
    // Serving at once: /healthz answers through a long recovery below.
    let http = listener::bind_http(&config)
        .await?
        .map(|(socket, address)| HttpServer::start(socket, address));
    let first = listeners.first().ok_or(OpenError::NoListener)?;
    let bound = first.local_address;
    // Requests the broker makes of itself report the first listener.
    let advertised = (
        first.listener.advertised_host.clone(),
        first.listener.advertised_port,
    );
    let cluster = tokio::task::spawn_blocking(move || Cluster::open(config, advertised))
        .await
        .map_err(OpenError::Panicked)?
        .map_err(OpenError::DataDir)?;
    let cluster = Arc::new(cluster);
    crate::metrics::scrape::register(&cluster);
    if let Some(http) = &http {
        http.cluster_opened(&cluster);
    }
    Ok(OpenedBroker {
        listeners,
        bound,
        cluster,
        http,
    })
}

/// Logs the start and prints the listening lines, the contract tests and scripts rely on:
///
/// ```text
/// riffle listening on 127.0.0.1:9092             the first listener's bound address
/// riffle listening on PLAINTEXT://127.0.0.1:9092  then one line per listener, in order:
/// riffle listening on SASL_SSL://127.0.0.1:9093   NAME://bound address
/// riffle http listening on 127.0.0.1:9644         the HTTP listener, unless --http-listen none
/// ```
pub fn announce(opened: &OpenedBroker) {
    let cluster = &opened.cluster;
    let bound = opened.bound;
    info!(%bound, cluster_id = %cluster.cluster_id, node_id = cluster.node_id, "riffle started");
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "riffle listening on {bound}");
    for listener in &opened.listeners {
        let name = &listener.listener.name;
        info!(listener = %name, protocol = %listener.listener.protocol, address = %listener.local_address, "listening");
        let _ = writeln!(
            stdout,
            "riffle listening on {name}://{}",
            listener.local_address
        );
    }
    if let Some(http) = &opened.http {
        let address = http.local_address();
        info!(%address, "http listening (/metrics, /healthz, /readyz)");
        let _ = writeln!(stdout, "riffle http listening on {address}");
    }
    let _ = stdout.flush();
}
