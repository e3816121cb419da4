//! The accept loop: connection limit, back-off on accept errors, graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tracing::{error, info, warn};

use crate::cluster::Cluster;
use crate::connection;
use crate::shutdown::Shutdown;

/// The longest accept back-off before giving up on the listener.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(64);
/// How long shutdown waits for connections to finish their requests in hand.
const SHUTDOWN_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves clients until `stop` resolves, then drains connections and flushes the logs.
pub async fn run(listener: TcpListener, cluster: Arc<Cluster>, stop: impl Future<Output = ()>) {
    let (notify_shutdown, shutdown) = Shutdown::new();
    // Each connection task holds a sender; recv() returns None once all have ended.
    let (connection_done, mut all_connections_done) = mpsc::channel::<()>(1);
    // A permit per connection, taken before accept, so a flood waits in the backlog.
    let limit = Arc::new(Semaphore::new(cluster.config.max_connections.max(1)));
    let background = crate::background::spawn(cluster.clone(), shutdown.clone());

    tokio::select! {
        result = accept_loop(&listener, &cluster, &limit, &shutdown, &connection_done) => {
            if let Err(error) = result {
                error!(%error, "listener failed; shutting down");
            }
        }
        () = stop => info!("shutdown requested"),
    }
    let _ = notify_shutdown.send(true);
    // A JoinGroup may wait minutes for a rebalance; answer it now instead.
    cluster.groups().release_waiters();
    drop(connection_done);
    if tokio::time::timeout(SHUTDOWN_DRAIN_TIMEOUT, all_connections_done.recv())
        .await
        .is_err()
    {
        warn!("connections did not finish in time; closing them");
    }
    let _ = background.await;
    let cluster_for_flush = cluster.clone();
    match tokio::task::spawn_blocking(move || cluster_for_flush.shutdown()).await {
        Ok(Ok(())) => info!("logs flushed; clean shutdown"),
        Ok(Err(error)) => error!(%error, "flush at shutdown failed; the next start will recover"),
        Err(error) => error!(%error, "flush at shutdown panicked"),
    }
}

async fn accept_loop(
    listener: &TcpListener,
    cluster: &Arc<Cluster>,
    limit: &Arc<Semaphore>,
    shutdown: &Shutdown,
    connection_done: &mpsc::Sender<()>,
) -> std::io::Result<()> {
    let mut backoff = Duration::from_millis(1);
    loop {
        let permit = limit
            .clone()
            .acquire_owned()
            .await
            .map_err(std::io::Error::other)?;
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => {
                backoff = Duration::from_millis(1);
                accepted
            }
            Err(error) if backoff < ACCEPT_BACKOFF_MAX => {
                warn!(%error, ?backoff, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                continue;
            }
            Err(error) => return Err(error),
        };
        let cluster = cluster.clone();
        let shutdown = shutdown.clone();
        let done = connection_done.clone();
        tokio::spawn(async move {
            connection::serve(stream, peer, cluster, shutdown).await;
            drop(permit);
            drop(done);
        });
    }
}
