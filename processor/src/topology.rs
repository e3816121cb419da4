//! A built topology: its nodes grouped into sub-topologies, its stores and internal topics.
//!
//! A sub-topology is a connected part of the graph (edges and shared stores connect nodes);
//! a repartition topic separates two. Each sub-topology runs as one task per partition of
//! its source topics, which must all have the same partition count (co-partitioning).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::describe::TopologyDescription;
use crate::graph::{NodeId, NodeSpec};
use crate::store::cache::CacheBudget;
use crate::store::codec::StoreCodec;
use crate::store::engine::StateError;
use crate::store::{StateHome, StoreKind, StoreSpec};
use crate::task::{Task, TaskId};

/// Why a topology cannot be built or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    /// The topology reads no topic.
    #[error("the topology has no source topic")]
    NoSources,
    /// Two stores share a name.
    #[error("store name {0:?} is used twice")]
    DuplicateStore(String),
    /// A source topic does not exist on the cluster.
    #[error("source topic {0:?} does not exist")]
    MissingSourceTopic(String),
    /// A key-based operation follows a key change without a repartition.
    #[error("{0}")]
    NeedsRepartition(String),
    /// The topics one task reads have different partition counts.
    #[error("topics not co-partitioned: {0}")]
    NotCoPartitioned(String),
    /// A table read by key (a join, a store query) that has no store of its own.
    #[error("{0}")]
    NotMaterialized(String),
    /// A `suppress` that cannot keep its promise on this table.
    #[error("{0}")]
    InvalidSuppression(String),
    /// A processor connects a store the topology does not declare.
    #[error("no store is named {0:?}")]
    UnknownStore(String),
    /// Two branches of one `split` share a name.
    #[error("branch name {0:?} is used twice in one split")]
    DuplicateBranch(String),
    /// A store or repartition topic needs a serde the topology was not given.
    #[error("{0}")]
    MissingSerde(String),
    /// A store's `Materialized` options do not fit it.
    #[error("store {store:?}: {reason}")]
    InvalidStoreOptions {
        /// The store.
        store: String,
        /// What does not fit.
        reason: String,
    },
}

/// A sub-topology: nodes that run together in one task per partition.
#[derive(Debug, Clone)]
pub struct SubTopology {
    /// Its number, in node order.
    pub id: u32,
    pub(crate) nodes: Vec<NodeId>,
    /// Every topic it reads, repartition topics included.
    pub source_topics: Vec<String>,
    /// The stores its tasks own.
    pub stores: Vec<StoreSpec>,
}

/// An internal topic the runtime creates before it starts: a changelog or a repartition
/// topic, with its partition count and configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalTopic {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: i32,
    /// Topic configs to create it with.
    pub configs: Vec<(String, String)>,
}

/// Partition counts for every sub-topology and internal topic, resolved against a cluster.
#[derive(Debug, Clone)]
pub struct PartitionPlan {
    /// Partitions (tasks) per sub-topology, by id.
    pub task_counts: Vec<i32>,
    /// Internal topics to create.
    pub internal_topics: Vec<InternalTopic>,
}

impl PartitionPlan {
    /// Every task of the topology.
    pub fn task_ids(&self) -> Vec<TaskId> {
        let mut ids = Vec::new();
        for (subtopology, count) in (0u32..).zip(&self.task_counts) {
            for partition in 0..*count {
                ids.push(TaskId {
                    subtopology,
                    partition,
                });
            }
        }
        ids
    }
}

pub(crate) struct TopologyInner {
    pub application_id: String,
    pub nodes: Vec<NodeSpec>,
    pub subtopologies: Vec<SubTopology>,
    /// Repartition topic name to the sub-topology that writes it.
    pub repartition_writers: BTreeMap<String, u32>,
    pub table_source_topics: BTreeSet<String>,
    /// Source topic to the one sub-topology that reads it: looked up for every record.
    pub readers: HashMap<String, u32>,
    /// Each store's serdes where the builder knew them, for queries by store name.
    pub store_codecs: HashMap<String, StoreCodec>,
}

/// A runnable topology; cheap to clone and shared by every task.
#[derive(Clone)]
pub struct Topology {
    pub(crate) inner: Arc<TopologyInner>,
}

/// Extra retention on window changelogs, as Kafka Streams'
/// `windowstore.changelog.additional.retention.ms`.
const WINDOW_CHANGELOG_ADDITIONAL_RETENTION_MS: i64 = 86_400_000;

impl Topology {
    pub(crate) fn new(
        application_id: String,
        nodes: Vec<NodeSpec>,
        stores: Vec<(StoreSpec, NodeId)>,
        repartition_topics: BTreeSet<String>,
        table_source_topics: BTreeSet<String>,
        store_codecs: HashMap<String, StoreCodec>,
    ) -> Result<Topology, TopologyError> {
        let mut names = BTreeSet::new();
        for (store, _) in &stores {
            if !names.insert(store.name.clone()) {
                return Err(TopologyError::DuplicateStore(store.name.clone()));
            }
        }
        let subtopologies = group_subtopologies(&nodes, &stores);
        if subtopologies.iter().all(|s| s.source_topics.is_empty()) {
            return Err(TopologyError::NoSources);
        }
        let mut repartition_writers = BTreeMap::new();
        for sub in &subtopologies {
            for node in &sub.nodes {
                for topic in &nodes[*node].sink_topics {
                    if repartition_topics.contains(topic) {
                        repartition_writers.insert(topic.clone(), sub.id);
                    }
                }
            }
        }
        let readers = subtopologies
            .iter()
            .flat_map(|sub| {
                sub.source_topics
                    .iter()
                    .map(|topic| (topic.clone(), sub.id))
            })
            .collect();
        let inner = TopologyInner {
            application_id,
            nodes,
            subtopologies,
            repartition_writers,
            table_source_topics,
            readers,
            store_codecs,
        };
        Ok(Topology {
            inner: Arc::new(inner),
        })
    }

    /// The application id: the consumer group and the prefix of internal topics.
    pub fn application_id(&self) -> &str {
        &self.inner.application_id
    }

    /// The sub-topologies, by id.
    pub fn subtopologies(&self) -> &[SubTopology] {
        &self.inner.subtopologies
    }

    /// Every topic the topology reads, repartition topics included, sorted.
    pub fn source_topics(&self) -> Vec<String> {
        let topics: BTreeSet<String> = self
            .inner
            .subtopologies
            .iter()
            .flat_map(|sub| sub.source_topics.iter().cloned())
            .collect();
        topics.into_iter().collect()
    }

    /// Source topics that must exist before the topology runs (not internal ones).
    pub fn external_source_topics(&self) -> Vec<String> {
        self.source_topics()
            .into_iter()
            .filter(|topic| !self.inner.repartition_writers.contains_key(topic))
            .collect()
    }

    /// Whether `topic` is one of this topology's repartition topics.
    pub fn is_repartition_topic(&self, topic: &str) -> bool {
        self.inner.repartition_writers.contains_key(topic)
    }

    /// The sub-topology that reads `topic`.
    pub fn subtopology_of(&self, topic: &str) -> Option<u32> {
        self.inner.readers.get(topic).copied()
    }

    /// Resolves partition counts from the cluster's source topics (`partitions_of` answers
    /// `None` for a topic that does not exist).
    pub fn plan(
        &self,
        partitions_of: impl Fn(&str) -> Option<i32>,
    ) -> Result<PartitionPlan, TopologyError> {
        let subs = &self.inner.subtopologies;
        let mut counts: Vec<Option<i32>> = vec![None; subs.len()];
        for sub in subs {
            counts[sub.id as usize] = self.external_count(sub, &partitions_of)?;
        }
        // Sub-topologies fed only by repartition topics take their writers' largest count.
        for _ in 0..subs.len() {
            for sub in subs {
                if counts[sub.id as usize].is_some() {
                    continue;
                }
                let writers: Vec<Option<i32>> = sub
                    .source_topics
                    .iter()
                    .filter_map(|topic| self.inner.repartition_writers.get(topic))
                    .map(|writer| counts[*writer as usize])
                    .collect();
                if writers.iter().all(Option::is_some) {
                    counts[sub.id as usize] = writers.into_iter().flatten().max();
                }
            }
        }
        let task_counts: Vec<i32> = counts.into_iter().map(|c| c.unwrap_or(1)).collect();
        let internal_topics = self.internal_topics(&task_counts);
        Ok(PartitionPlan {
            task_counts,
            internal_topics,
        })
    }

    fn external_count(
        &self,
        sub: &SubTopology,
        partitions_of: &impl Fn(&str) -> Option<i32>,
    ) -> Result<Option<i32>, TopologyError> {
        let mut counts = BTreeMap::new();
        for topic in &sub.source_topics {
            if self.is_repartition_topic(topic) {
                continue;
            }
            let count = partitions_of(topic)
                .ok_or_else(|| TopologyError::MissingSourceTopic(topic.clone()))?;
            counts.insert(topic.clone(), count);
        }
        let distinct: BTreeSet<i32> = counts.values().copied().collect();
        if distinct.len() > 1 {
            let listed: Vec<String> = counts.iter().map(|(t, c)| format!("{t} ({c})")).collect();
            return Err(TopologyError::NotCoPartitioned(listed.join(", ")));
        }
        Ok(distinct.into_iter().next())
    }

    fn internal_topics(&self, task_counts: &[i32]) -> Vec<InternalTopic> {
        let mut topics = Vec::new();
        for sub in &self.inner.subtopologies {
            let partitions = task_counts[sub.id as usize];
            for topic in &sub.source_topics {
                if self.is_repartition_topic(topic) {
                    topics.push(InternalTopic {
                        name: topic.clone(),
                        partitions,
                        configs: vec![
                            ("cleanup.policy".into(), "delete".into()),
                            ("retention.ms".into(), "-1".into()),
                        ],
                    });
                }
            }
            for store in &sub.stores {
                if !store.logging
                    || self
                        .inner
                        .table_source_topics
                        .contains(&store.changelog_topic)
                {
                    continue;
                }
                topics.push(InternalTopic {
                    name: store.changelog_topic.clone(),
                    partitions,
                    configs: changelog_configs(store),
                });
            }
        }
        topics
    }

    /// Creates the task `id` with every store empty and in memory; restore them before
    /// processing.
    pub fn create_task(&self, id: TaskId) -> Task {
        match Task::open(
            self.clone(),
            id,
            &StateHome::Memory,
            &CacheBudget::disabled(),
        ) {
            Ok(task) => task,
            // In-memory stores touch no disk.
            Err(error) => unreachable!("opening in-memory stores failed: {error}"),
        }
    }

    /// Opens the task `id` with its persistent stores in `home` as they are on disk (the
    /// others empty), its record caches drawing on `cache`; restore the stores before
    /// processing. Blocks on disk.
    pub(crate) fn open_task(
        &self,
        id: TaskId,
        home: &StateHome,
        cache: &CacheBudget,
    ) -> Result<Task, StateError> {
        Task::open(self.clone(), id, home, cache)
    }

    /// Whether this changelog is a table's own source topic (not written by the topology).
    pub fn is_source_changelog(&self, topic: &str) -> bool {
        self.inner.table_source_topics.contains(topic)
    }

    /// Every store of the topology with the sub-topology whose tasks hold it, by name.
    pub fn stores(&self) -> Vec<(u32, &StoreSpec)> {
        let mut stores: Vec<(u32, &StoreSpec)> = self
            .inner
            .subtopologies
            .iter()
            .flat_map(|sub| sub.stores.iter().map(move |spec| (sub.id, spec)))
            .collect();
        stores.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        stores
    }

    /// How the store `name` reads keys and shows values: its serdes, or raw bytes.
    pub(crate) fn store_codec(&self, name: &str) -> StoreCodec {
        match self.inner.store_codecs.get(name) {
            Some(codec) => codec.clone(),
            None => StoreCodec::raw(),
        }
    }

    /// The topology's sub-topologies, nodes, stores and repartition topics: data for a
    /// console (serde `Serialize`), and Kafka Streams' `TopologyDescription` text through
    /// `Display`.
    pub fn describe(&self) -> TopologyDescription {
        TopologyDescription::of(self)
    }
}

/// A changelog's topic configs: compaction, retention for window and session stores, then
/// what the store's `Materialized` sets (a later value of one name wins).
fn changelog_configs(store: &StoreSpec) -> Vec<(String, String)> {
    let mut configs = default_changelog_configs(store.kind);
    for (name, value) in &store.changelog_configs {
        match configs.iter_mut().find(|(known, _)| known == name) {
            Some(config) => config.1 = value.clone(),
            None => configs.push((name.clone(), value.clone())),
        }
    }
    configs
}

fn default_changelog_configs(kind: StoreKind) -> Vec<(String, String)> {
    let retention_ms = match kind {
        StoreKind::KeyValue => None,
        StoreKind::Window { retention_ms, .. } | StoreKind::Session { retention_ms } => {
            Some(retention_ms.saturating_add(WINDOW_CHANGELOG_ADDITIONAL_RETENTION_MS))
        }
    };
    match retention_ms {
        None => vec![("cleanup.policy".into(), "compact".into())],
        Some(retention_ms) => vec![
            ("cleanup.policy".into(), "compact,delete".into()),
            ("retention.ms".into(), retention_ms.to_string()),
        ],
    }
}

/// Groups nodes into connected components (union-find over edges and shared stores).
fn group_subtopologies(nodes: &[NodeSpec], stores: &[(StoreSpec, NodeId)]) -> Vec<SubTopology> {
    let mut parent: Vec<usize> = (0..nodes.len()).collect();
    fn find(parent: &mut [usize], mut node: usize) -> usize {
        while parent[node] != node {
            parent[node] = parent[parent[node]];
            node = parent[node];
        }
        node
    }
    let union = |parent: &mut Vec<usize>, a: usize, b: usize| {
        let (root_a, root_b) = (find(parent, a), find(parent, b));
        if root_a != root_b {
            parent[root_a.max(root_b)] = root_a.min(root_b);
        }
    };
    for (id, node) in nodes.iter().enumerate() {
        for child in &node.children {
            union(&mut parent, id, *child);
        }
    }
    // Kafka Streams reads a topic through one source; two sources of one topic share tasks.
    let mut topic_readers: HashMap<&str, NodeId> = HashMap::new();
    for (id, node) in nodes.iter().enumerate() {
        for topic in &node.source_topics {
            match topic_readers.get(topic.as_str()) {
                Some(first) => union(&mut parent, *first, id),
                None => {
                    topic_readers.insert(topic, id);
                }
            }
        }
    }
    let mut store_users: HashMap<&str, NodeId> = HashMap::new();
    for (id, node) in nodes.iter().enumerate() {
        for store in &node.stores {
            match store_users.get(store.as_str()) {
                Some(first) => union(&mut parent, *first, id),
                None => {
                    store_users.insert(store, id);
                }
            }
        }
    }
    let mut by_root: BTreeMap<usize, Vec<NodeId>> = BTreeMap::new();
    for id in 0..nodes.len() {
        let root = find(&mut parent, id);
        by_root.entry(root).or_default().push(id);
    }
    let mut subtopologies = Vec::new();
    for (id, members) in (0u32..).zip(by_root.into_values()) {
        let mut source_topics = BTreeSet::new();
        for node in &members {
            source_topics.extend(nodes[*node].source_topics.iter().cloned());
        }
        let sub_stores = stores
            .iter()
            .filter(|(_, owner)| members.contains(owner))
            .map(|(store, _)| store.clone())
            .collect();
        subtopologies.push(SubTopology {
            id,
            nodes: members,
            source_topics: source_topics.into_iter().collect(),
            stores: sub_stores,
        });
    }
    subtopologies
}
