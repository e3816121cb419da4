//! `/api/cluster`: who this broker is and how long it has run.

use std::time::Duration;

use serde::Serialize;

use crate::cluster::Cluster;

/// The answer of `/api/cluster`.
#[derive(Debug, Serialize)]
pub struct ClusterSummary {
    /// The `riffle` version.
    pub version: &'static str,
    /// The cluster id, chosen at first start.
    pub cluster_id: String,
    /// This node's id.
    pub node_id: i32,
    /// The listener spec as configured (`--listeners`), or the `--listen` address.
    pub listeners: String,
    /// The address clients are told to connect to.
    pub advertised: String,
    /// Milliseconds since the HTTP listener started (with the process).
    pub uptime_ms: u64,
    /// Whether an ACL authorizer is configured; the console then shows no records.
    pub authorizer: bool,
    /// Topics, internal ones included.
    pub topic_count: usize,
    /// Consumer groups, with members or committed offsets.
    pub group_count: usize,
}

/// Reads the summary; takes the topic and group locks briefly.
pub fn read(cluster: &Cluster, uptime: Duration) -> ClusterSummary {
    let listeners = match &cluster.config.listeners {
        Some(spec) => spec.clone(),
        None => cluster.config.listen.to_string(),
    };
    ClusterSummary {
        version: env!("CARGO_PKG_VERSION"),
        cluster_id: cluster.cluster_id.clone(),
        node_id: cluster.node_id,
        listeners,
        advertised: format!("{}:{}", cluster.advertised_host, cluster.advertised_port),
        uptime_ms: u64::try_from(uptime.as_millis()).unwrap_or(u64::MAX),
        authorizer: cluster.authorizer().is_some(),
        topic_count: cluster.all_topics().len(),
        group_count: cluster.groups().list_groups().len(),
    }
}
