//! The accept loops: one per listener, sharing the connection limits
//! ([`ConnectionLimits`]), with back-off on accept errors and one graceful shutdown that
//! drains every listener's connections.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::cluster::Cluster;
use crate::connection;
use crate::connection_limits::ConnectionLimits;
use crate::listener::BoundListener;
use crate::security::tls::TlsServer;
use crate::shutdown::Shutdown;

/// The longest accept back-off before giving up on the listener.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(64);
/// How long shutdown waits for connections to finish their requests in hand.
const SHUTDOWN_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves clients on every listener until `stop` resolves (or a listener fails), then
/// drains connections and flushes the logs.
pub async fn run(
    listeners: Vec<BoundListener>,
    cluster: Arc<Cluster>,
    stop: impl Future<Output = ()>,
) {
    let (notify_shutdown, shutdown) = Shutdown::new();
    // Each connection task holds a sender; recv() returns None once all have ended.
    let (connection_done, mut all_connections_done) = mpsc::channel::<()>(1);
    // One set of limits for all listeners: they protect the process, not a port.
    let limits = cluster.connection_limits().clone();
    let background = crate::background::spawn(cluster.clone(), shutdown.clone());
    let reload = spawn_certificate_reload(&listeners, shutdown.clone());
    let mut accept_loops = JoinSet::new();
    for listener in listeners {
        let accept = accept_loop(
            listener,
            cluster.clone(),
            limits.clone(),
            shutdown.clone(),
            connection_done.clone(),
        );
        accept_loops.spawn(accept);
    }

    tokio::select! {
        Some(ended) = accept_loops.join_next() => match ended {
            Ok((name, Err(error))) => {
                error!(listener = %name, %error, "listener failed; shutting down");
            }
            Ok((name, Ok(()))) => error!(listener = %name, "listener stopped; shutting down"),
            Err(error) => error!(%error, "an accept loop panicked; shutting down"),
        },
        () = stop => info!("shutdown requested"),
    }
    // No more accepts on any listener; the connections already accepted drain below.
    accept_loops.shutdown().await;
    let refused_total = limits.refused_total();
    if refused_total > 0 {
        info!(
            refused_total,
            "connections refused at the connection limits since start"
        );
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
    if let Some(reload) = reload {
        let _ = reload.await;
    }
    let cluster_for_flush = cluster.clone();
    match tokio::task::spawn_blocking(move || cluster_for_flush.shutdown()).await {
        Ok(Ok(())) => info!("logs flushed; clean shutdown"),
        Ok(Err(error)) => error!(%error, "flush at shutdown failed; the next start will recover"),
        Err(error) => error!(%error, "flush at shutdown panicked"),
    }
}

/// Accepts on one listener until its socket fails; returns the listener's name with the
/// outcome.
async fn accept_loop(
    bound: BoundListener,
    cluster: Arc<Cluster>,
    limits: Arc<ConnectionLimits>,
    shutdown: Shutdown,
    connection_done: mpsc::Sender<()>,
) -> (String, std::io::Result<()>) {
    let name = bound.listener.name.clone();
    let result = accept_connections(bound, &cluster, &limits, &shutdown, &connection_done).await;
    (name, result)
}

async fn accept_connections(
    bound: BoundListener,
    cluster: &Arc<Cluster>,
    limits: &Arc<ConnectionLimits>,
    shutdown: &Shutdown,
    connection_done: &mpsc::Sender<()>,
) -> std::io::Result<()> {
    let mut backoff = Duration::from_millis(1);
    // Taken once: counting an accepted connection is then an atomic add.
    let accepted_total = cluster.metrics().connections_accepted(&bound.listener.name);
    loop {
        let (stream, peer) = match bound.socket.accept().await {
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
        let slot = match limits.admit(peer.ip(), std::time::Instant::now()) {
            Ok(slot) => slot,
            Err(report) => {
                // Dropping the stream closes it: the client is told no at once.
                drop(stream);
                if let Some(report) = report {
                    warn!(
                        %peer,
                        listener = %bound.listener.name,
                        reason = %report.refusal,
                        refused_total = report.refused_total,
                        refused_unlogged = report.unlogged_since_last_line,
                        "connection refused"
                    );
                }
                continue;
            }
        };
        accepted_total.inc();
        let listener = bound.listener.clone();
        let cluster = cluster.clone();
        let shutdown = shutdown.clone();
        let done = connection_done.clone();
        tokio::spawn(async move {
            connection::serve(stream, peer, listener, cluster, shutdown).await;
            drop(slot);
            drop(done);
        });
    }
}

/// On SIGHUP, reads the TLS certificate and key again (Unix only); open connections keep
/// theirs, new handshakes get the new pair. `None` without TLS listeners, or if the
/// signal handler cannot be installed (logged).
fn spawn_certificate_reload(
    listeners: &[BoundListener],
    mut shutdown: Shutdown,
) -> Option<tokio::task::JoinHandle<()>> {
    let tls: Arc<TlsServer> = listeners
        .iter()
        .find_map(|bound| bound.listener.tls.clone())?;
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(hangup) => hangup,
            Err(error) => {
                warn!(%error, "cannot listen for SIGHUP; TLS certificates will not reload");
                return None;
            }
        };
        Some(tokio::spawn(async move {
            loop {
                tokio::select! {
                    received = hangup.recv() => if received.is_none() { return },
                    () = shutdown.recv() => return,
                }
                let path = tls.certificate_path().display().to_string();
                match tls.reload() {
                    Ok(()) => info!(certificate = %path, "TLS certificate reloaded"),
                    Err(error) => {
                        error!(%error, "TLS certificate reload failed; keeping the old one")
                    }
                }
            }
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = (tls, &mut shutdown);
        None
    }
}
