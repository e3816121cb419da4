//! Background work on a schedule: retention, and the periodic fsync of the `interval`
//! flush policy. Both run storage calls on the blocking pool.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, interval};
use tracing::{info, warn};

use crate::cluster::{Cluster, now_ms};
use crate::config::FlushPolicy;
use crate::shutdown::Shutdown;

/// Starts the background tasks; the handle resolves once they stop at shutdown.
pub fn spawn(cluster: Arc<Cluster>, mut shutdown: Shutdown) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut retention = interval(cluster.config.retention_check_interval());
        retention.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut flush = interval(cluster.config.flush_interval());
        flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let flush_periodically = cluster.config.flush_policy == FlushPolicy::Interval;
        loop {
            tokio::select! {
                _ = retention.tick() => run_blocking(&cluster, enforce_retention).await,
                _ = flush.tick(), if flush_periodically => run_blocking(&cluster, flush_all).await,
                () = shutdown.recv() => return,
            }
        }
    })
}

async fn run_blocking(cluster: &Arc<Cluster>, work: fn(&Cluster)) {
    let cluster = cluster.clone();
    if let Err(error) = tokio::task::spawn_blocking(move || work(&cluster)).await {
        warn!(%error, "background task panicked");
    }
}

fn enforce_retention(cluster: &Cluster) {
    let now_ms = now_ms();
    for topic in cluster.all_topics() {
        for partition in &topic.partitions {
            match partition.log.apply_retention(now_ms) {
                Ok(0) => {}
                Ok(deleted) => {
                    info!(topic = %topic.name, partition = partition.index, deleted, "retention deleted segments")
                }
                Err(error) => {
                    warn!(topic = %topic.name, partition = partition.index, %error, "retention failed")
                }
            }
        }
    }
}

fn flush_all(cluster: &Cluster) {
    for topic in cluster.all_topics() {
        for partition in &topic.partitions {
            if let Err(error) = partition.log.flush() {
                warn!(topic = %topic.name, partition = partition.index, %error, "periodic flush failed");
            }
        }
    }
}
