//! Stream applications on the HTTP listener: the processor's `/apps` routes (summaries and
//! state queries, `riffle_processor::observe::routes`) and its metrics. Co-located
//! topologies get both on the broker's listener ([`install`]); a remote application's
//! program starts the same listener with [`serve_http`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use riffle_processor::observe::{AppHandle, ProcessorCollector, answer_blocking, encode_metrics};
use tokio::net::TcpListener;

use riffle_server::cluster::Cluster;
use riffle_server::http::{AppRoutes, HttpAnswer, HttpServer, MetricsSource};

/// The `/apps` routes of this process's applications. Store reads may wait on the disk,
/// so they run on tokio's blocking pool, where the runtimes read stores too.
struct ProcessorRoutes {
    apps: Arc<[AppHandle]>,
}

impl AppRoutes for ProcessorRoutes {
    fn answer(&self, path: &str, query: &str) -> Pin<Box<dyn Future<Output = HttpAnswer> + Send>> {
        let (apps, path, query) = (self.apps.clone(), path.to_string(), query.to_string());
        Box::pin(async move {
            let answer = answer_blocking(apps, path, query).await;
            HttpAnswer::json(answer.status, answer.body)
        })
    }
}

/// Serves `apps` on the broker's HTTP listener (if it has one) and adds their metrics to
/// the cluster's registry, so `/metrics` shows them beside the broker's.
pub(crate) fn install(http: Option<&HttpServer>, cluster: &Cluster, apps: Vec<AppHandle>) {
    if let Some(http) = http {
        let routes = ProcessorRoutes {
            apps: apps.clone().into(),
        };
        // One host of applications per broker: this is the only call.
        let _ = http.set_apps(Arc::new(routes));
    }
    let collector = ProcessorCollector::new(apps);
    cluster.metrics().register_collector(Box::new(collector));
}

/// The metrics of a program's applications alone, for a listener without a broker.
struct ProcessorMetrics {
    apps: Vec<AppHandle>,
}

impl MetricsSource for ProcessorMetrics {
    fn encode(&self) -> Result<String, std::fmt::Error> {
        encode_metrics(&self.apps)
    }
}

/// Starts the HTTP listener on `address` for a remote application's program: `/metrics`
/// with the metrics of `apps`, `/healthz`, `/readyz` (ready at once) and `/apps` with their
/// summaries and state queries, as a broker with co-located topologies serves them.
/// Dropping the returned server stops it.
///
/// # Errors
/// When `address` cannot be bound.
pub async fn serve_http(address: SocketAddr, apps: Vec<AppHandle>) -> io::Result<HttpServer> {
    let socket = TcpListener::bind(address).await?;
    let bound = socket.local_addr()?;
    let server = HttpServer::start(socket, bound);
    let metrics = ProcessorMetrics { apps: apps.clone() };
    // A new server: neither is set yet.
    let _ = server.serve_metrics(Arc::new(metrics));
    let routes = ProcessorRoutes { apps: apps.into() };
    let _ = server.set_apps(Arc::new(routes));
    server.set_serving(true);
    Ok(server)
}
