//! Background work on a schedule: the group and transaction coordinators' clocks,
//! retention (first after `--log-initial-task-delay-ms`), compaction, recovery point
//! checkpoints with producer-state snapshots, and the periodic fsync of the `interval`
//! flush policy. Storage work runs on the blocking pool;
//! the group coordinator's tick only touches memory and appends (page cache) to its log;
//! the transaction coordinator's tick completes and times out transactions, which writes
//! markers and waits for their fsyncs (asynchronously).

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, interval, interval_at};
use tracing::{info, warn};

use crate::cluster::{Cluster, now_ms};
use crate::compaction::compact_logs;
use crate::config::{FlushPolicy, GROUP_TICK_INTERVAL};
use crate::shutdown::Shutdown;

/// How often logs are checked against their topic's `flush.ms` (Kafka's
/// `log.flush.scheduler.interval.ms`); a smaller `flush.ms` acts as this.
const FLUSH_MS_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts the background tasks; the handle resolves once they stop at shutdown.
pub fn spawn(cluster: Arc<Cluster>, mut shutdown: Shutdown) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Kafka's log.initial.task.delay.ms: no deletion right at start-up.
        let first_retention = Instant::now() + cluster.config.log_initial_task_delay();
        let mut retention = interval_at(first_retention, cluster.config.retention_check_interval());
        retention.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut flush = interval(cluster.config.flush_interval());
        flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let flush_periodically = cluster.config.flush_policy == FlushPolicy::Interval;
        let mut cleaner = interval(cluster.config.log_cleaner_backoff());
        cleaner.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut recovery_points = interval(cluster.config.recovery_point_checkpoint_interval());
        recovery_points.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut aged_flush = interval(FLUSH_MS_CHECK_INTERVAL);
        aged_flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut group_tick = interval(GROUP_TICK_INTERVAL);
        group_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The first tick fires at once: transactions a crash left between their decision and
        // their last marker are completed right after start-up.
        let mut transaction_tick = interval(cluster.config.transaction_tick_interval());
        transaction_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = group_tick.tick() => cluster.groups().tick(std::time::Instant::now()),
                _ = transaction_tick.tick() => cluster.transactions().tick(&cluster).await,
                _ = retention.tick() => run_blocking(&cluster, enforce_retention).await,
                _ = cleaner.tick() => run_blocking(&cluster, compact_logs).await,
                _ = flush.tick(), if flush_periodically => run_blocking(&cluster, flush_all).await,
                _ = aged_flush.tick() => run_blocking(&cluster, flush_aged_logs).await,
                _ = recovery_points.tick() => {
                    run_blocking(&cluster, checkpoint_recovery_points).await
                }
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
    let offsets_retention_ms = cluster
        .config
        .offsets_retention_minutes
        .saturating_mul(60_000);
    let expired = cluster
        .groups()
        .expire_offsets(now_ms, offsets_retention_ms);
    if expired > 0 {
        info!(
            expired,
            "expired committed offsets of groups without members"
        );
    }
    for topic in cluster.all_topics() {
        for partition in &topic.partitions {
            match partition.apply_retention(now_ms) {
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
            if let Err(error) = partition.flush() {
                warn!(topic = %topic.name, partition = partition.index, %error, "periodic flush failed");
            }
        }
    }
}

/// Fsyncs the logs of topics with a `flush.ms` whose last timed fsync is that old.
pub(crate) fn flush_aged_logs(cluster: &Cluster) {
    let now_ms = now_ms();
    for topic in cluster.all_topics() {
        let flush_ms = topic.config.flush_ms();
        if flush_ms == i64::MAX {
            continue;
        }
        for partition in &topic.partitions {
            if let Err(error) = partition.flush_if_older_than(flush_ms, now_ms) {
                warn!(topic = %topic.name, partition = partition.index, %error, "flush.ms fsync failed");
            }
        }
    }
}

/// Records how far each log is durable and snapshots its producer state, so the scan and
/// the replay after a crash both start from there.
fn checkpoint_recovery_points(cluster: &Cluster) {
    for topic in cluster.all_topics() {
        for partition in &topic.partitions {
            if let Err(error) = partition.checkpoint_recovery_point() {
                warn!(topic = %topic.name, partition = partition.index, %error,
                    "could not write the recovery point; a crash would scan more");
            }
            if let Err(error) = partition.snapshot_producer_state() {
                warn!(topic = %topic.name, partition = partition.index, %error,
                    "could not snapshot the producer state; a crash would replay more");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use riffle_protocol::record::{Compression, RecordBatchBuilder};

    use super::*;
    use crate::cluster::Validation;
    use crate::testing::test_cluster;

    #[test]
    fn flush_ms_fsyncs_logs_holding_unsynced_records() {
        // A topic with flush.ms=0 is fsynced by the next check; one without keeps its
        // unsynced records (acks=1 appends are not fsynced otherwise).
        let (_dir, cluster) = test_cluster();
        let flushed = BTreeMap::from([("flush.ms".to_string(), "0".to_string())]);
        cluster
            .create_topic("flushed", 1, flushed, Validation::Apply)
            .expect("create");
        cluster
            .create_topic("lazy", 1, BTreeMap::new(), Validation::Apply)
            .expect("create");
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder.append(1_000, None, Some(b"v"), &[]);
        let batch = builder.build().expect("a batch");
        let partition = |name: &str| cluster.topic(name).expect("exists").partitions[0].clone();
        for name in ["flushed", "lazy"] {
            partition(name)
                .append_records(&batch, 1_000)
                .expect("append");
            assert_eq!(partition(name).unsynced_offsets(), 1);
        }
        flush_aged_logs(&cluster);
        assert_eq!(partition("flushed").unsynced_offsets(), 0);
        assert_eq!(partition("lazy").unsynced_offsets(), 1);
    }
}
