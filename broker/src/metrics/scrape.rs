//! Metrics read from the broker's state at scrape time: per-partition log offsets and
//! sizes, per-group committed offsets and lag, open connections.
//!
//! The collector holds a weak reference to the cluster, whose registry holds the
//! collector: a strong one would keep both alive for ever.

use std::sync::{Arc, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};

use crate::cluster::Cluster;

/// Labels of per-partition gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: String,
}

/// Labels of the refused-connection counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    reason: String,
}

/// Labels of per-group gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
    topic: String,
    partition: String,
}

/// Reads the cluster's state on each scrape.
#[derive(Debug)]
pub struct ClusterCollector {
    cluster: Weak<Cluster>,
}

/// Registers the scrape-time collector of `cluster` in its own registry.
pub fn register(cluster: &Arc<Cluster>) {
    let collector = ClusterCollector {
        cluster: Arc::downgrade(cluster),
    };
    cluster.metrics().register_collector(Box::new(collector));
}

impl Collector for ClusterCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // A cluster being dropped has nothing left to report.
        let Some(cluster) = self.cluster.upgrade() else {
            return Ok(());
        };
        encode_connections(&cluster, &mut encoder)?;
        encode_partitions(&cluster, &mut encoder)?;
        encode_groups(&cluster, &mut encoder)
    }
}

fn encode_connections(
    cluster: &Cluster,
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let open = i64::try_from(cluster.connection_limits().open_connections()).unwrap_or(i64::MAX);
    let gauge = ConstGauge::new(open);
    let metric = encoder.encode_descriptor(
        "riffle_connections_open",
        "Client connections open now, over all listeners",
        None,
        gauge.metric_type(),
    )?;
    gauge.encode(metric)?;
    let refused = cluster.connection_limits().refused_by_reason();
    let metric = encoder.encode_descriptor(
        "riffle_connections_refused",
        "Client connections closed at once at a connection limit, by the limit: \
         max_connections, max_connections_per_ip or max_connections_per_ip_override",
        None,
        MetricType::Counter,
    );
    let mut metric = metric?;
    for (reason, count) in [
        ("max_connections", refused.max_connections),
        ("max_connections_per_ip", refused.max_connections_per_ip),
        (
            "max_connections_per_ip_override",
            refused.max_connections_per_ip_override,
        ),
    ] {
        let labels = RefusalLabels {
            reason: reason.to_string(),
        };
        ConstCounter::new(count).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn encode_partitions(
    cluster: &Cluster,
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let end_offsets = Family::<PartitionLabels, Gauge>::default();
    let start_offsets = Family::<PartitionLabels, Gauge>::default();
    let sizes = Family::<PartitionLabels, Gauge>::default();
    for topic in cluster.all_topics() {
        for partition in &topic.partitions {
            let labels = PartitionLabels {
                topic: topic.name.clone(),
                partition: partition.index.to_string(),
            };
            end_offsets
                .get_or_create(&labels)
                .set(partition.next_offset());
            start_offsets
                .get_or_create(&labels)
                .set(partition.log_start_offset());
            let size = i64::try_from(partition.size_bytes()).unwrap_or(i64::MAX);
            sizes.get_or_create(&labels).set(size);
        }
    }
    encode_family(
        encoder,
        "riffle_partition_log_end_offset",
        "The offset the next record appended to the partition gets",
        &end_offsets,
    )?;
    encode_family(
        encoder,
        "riffle_partition_log_start_offset",
        "The first offset readers of the partition may see",
        &start_offsets,
    )?;
    encode_family(
        encoder,
        "riffle_partition_size_bytes",
        "Bytes of record batches in the partition's log",
        &sizes,
    )
}

fn encode_groups(
    cluster: &Cluster,
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let committed = Family::<GroupLabels, Gauge>::default();
    let lags = Family::<GroupLabels, Gauge>::default();
    for (group, offsets) in cluster.groups().all_committed_offsets() {
        for ((topic, partition), offset) in offsets {
            let labels = GroupLabels {
                group: group.clone(),
                topic: topic.clone(),
                partition: partition.to_string(),
            };
            committed.get_or_create(&labels).set(offset.offset);
            // A partition gone with its topic has no lag.
            if let Some((_, lag)) = cluster.committed_lag(&topic, partition, offset.offset) {
                lags.get_or_create(&labels).set(lag);
            }
        }
    }
    encode_family(
        encoder,
        "riffle_group_committed_offset",
        "The offset a consumer group committed for a partition",
        &committed,
    )?;
    encode_family(
        encoder,
        "riffle_group_lag",
        "Records of a partition a consumer group has not committed past: the high \
         watermark minus the committed offset",
        &lags,
    )
}

fn encode_family<L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    family: &Family<L, Gauge>,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, family.metric_type())?;
    family.encode(metric)
}
