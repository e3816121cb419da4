//! [`AppHandle`]: one running application as its host sees it, and its summary, the JSON
//! `GET /apps/{app}` answers.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::metrics::RuntimeMetrics;
use crate::describe::TopologyDescription;
use crate::lock_policy::MutexRecover;
use crate::runtime::RuntimeStatus;
use crate::store::StoreKind;
use crate::store::json_query::{JsonStores, kind_name};
use crate::store::query::StoreRegistry;
use crate::topology::Topology;

/// Where an application's runtime runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RuntimeKind {
    /// Inside the broker, without sockets.
    #[serde(rename = "co-located")]
    CoLocated,
    /// In a program of its own, against any Kafka-compatible broker.
    #[serde(rename = "remote")]
    Remote,
}

/// A running application, seen from its host: topology, status, stores and metrics.
/// Cheap to clone; every clone sees the runtime as it goes on.
#[derive(Clone)]
pub struct AppHandle {
    stores: JsonStores,
    pub(crate) status: Arc<Mutex<RuntimeStatus>>,
    metrics: Arc<RuntimeMetrics>,
    runtime: RuntimeKind,
    /// This instance's name among the application's instances.
    instance: String,
}

impl std::fmt::Debug for AppHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppHandle")
            .field("application_id", &self.application_id())
            .field("runtime", &self.runtime)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// An application as `GET /apps/{app}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AppSummary {
    /// The application id (its consumer group).
    pub application_id: String,
    /// `co-located` or `remote`.
    pub runtime: RuntimeKind,
    /// The runtime's state: `starting`, `restoring`, `running`, `stopped`, `failed`.
    pub state: &'static str,
    /// The topology, as [`Topology::describe`] gives it.
    pub topology: TopologyDescription,
    /// The tasks this instance runs now.
    pub tasks: Vec<TaskSummary>,
    /// Every store of the topology.
    pub stores: Vec<StoreSummary>,
    /// Records this instance processed since it started.
    pub records_processed_total: u64,
}

/// A task as the summary shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskSummary {
    /// `<sub-topology>_<partition>`, as Kafka Streams names tasks.
    pub id: String,
    /// The partitions it reads.
    pub partitions: Vec<PartitionSummary>,
    /// The instance running it.
    pub instance: String,
}

/// One partition a task reads.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionSummary {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

/// A store as the summary shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StoreSummary {
    /// Its name in the topology.
    pub name: String,
    /// `key_value`, `window` or `session`.
    pub kind: &'static str,
    /// About how many entries this instance's tasks hold; `None` when none of them has
    /// the store.
    pub entries: Option<u64>,
}

impl AppHandle {
    pub(crate) fn new(
        topology: Topology,
        registry: StoreRegistry,
        status: Arc<Mutex<RuntimeStatus>>,
        metrics: Arc<RuntimeMetrics>,
        (runtime, instance): (RuntimeKind, String),
    ) -> AppHandle {
        AppHandle {
            stores: JsonStores::new(topology, registry),
            status,
            metrics,
            runtime,
            instance,
        }
    }

    /// The application id.
    pub fn application_id(&self) -> &str {
        self.stores.topology().application_id()
    }

    /// Its stores, read by name as JSON.
    pub fn stores(&self) -> &JsonStores {
        &self.stores
    }

    /// A copy of the runtime's status now.
    pub fn status_now(&self) -> RuntimeStatus {
        self.status.lock_or_recover().clone()
    }

    pub(crate) fn metrics(&self) -> &RuntimeMetrics {
        &self.metrics
    }

    pub(crate) fn registry(&self) -> &StoreRegistry {
        self.stores.registry()
    }

    /// Every store's name and kind.
    pub(crate) fn store_kinds(&self) -> Vec<(String, StoreKind)> {
        let topology = self.stores.topology();
        let stores = topology.stores();
        stores
            .into_iter()
            .map(|(_, spec)| (spec.name.clone(), spec.kind))
            .collect()
    }

    /// The store a changelog topic fills.
    pub(crate) fn store_of_changelog(&self, changelog_topic: &str) -> Option<String> {
        let topology = self.stores.topology();
        let stores = topology.stores();
        let (_, spec) = stores
            .into_iter()
            .find(|(_, spec)| spec.changelog_topic == changelog_topic)?;
        Some(spec.name.clone())
    }

    /// The summary: state, topology, tasks and stores now. Takes each store's lock
    /// briefly to count its entries; call from a blocking thread.
    pub fn summary(&self) -> AppSummary {
        let status = self.status_now();
        let topology = self.stores.topology();
        let tasks = status
            .tasks
            .iter()
            .map(|task| {
                let sub = topology.subtopologies().get(task.subtopology as usize);
                let topics = sub.map(|sub| sub.source_topics.clone()).unwrap_or_default();
                let partitions = topics
                    .into_iter()
                    .map(|topic| PartitionSummary {
                        topic,
                        partition: task.partition,
                    })
                    .collect();
                TaskSummary {
                    id: task.to_string(),
                    partitions,
                    instance: self.instance.clone(),
                }
            })
            .collect();
        let stores = self
            .store_kinds()
            .into_iter()
            .map(|(name, kind)| StoreSummary {
                entries: self.stores.approximate_entries(&name),
                kind: kind_name(kind),
                name,
            })
            .collect();
        AppSummary {
            application_id: self.application_id().to_string(),
            runtime: self.runtime,
            state: status.state.as_str(),
            topology: topology.describe(),
            tasks,
            stores,
            records_processed_total: status.metrics.processed_records,
        }
    }
}
