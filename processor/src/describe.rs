//! `Topology::describe`: the built graph as data, and as Kafka Streams prints it.
//!
//! The data ([`TopologyDescription`]) is what a console draws: sub-topologies with their
//! nodes, stores and the repartition topics between them; it serializes to JSON with
//! serde. Its `Display` is Kafka Streams' `TopologyDescription.toString()` layout, so tools
//! that read that text (topology visualizers) read ours:
//!
//! ```text
//! Topologies:
//!    Sub-topology: 0
//!     Source: KSTREAM-SOURCE-0000000000 (topics: [input])
//!       --> KSTREAM-FILTER-0000000001
//!     Processor: KSTREAM-FILTER-0000000001 (stores: [])
//!       --> KSTREAM-SINK-0000000002
//!       <-- KSTREAM-SOURCE-0000000000
//!     Sink: KSTREAM-SINK-0000000002 (topic: output)
//!       <-- KSTREAM-FILTER-0000000001
//! ```
//!
//! As in Kafka Streams, the nodes of a sub-topology (and each node's successors and
//! predecessors) are listed by the size of the graph below them, largest first, then by
//! name, so sources come first and sinks last.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;

use crate::graph::NodeId;
use crate::store::{StoreBacking, StoreKind};
use crate::topology::Topology;

/// A topology's structure, from [`Topology::describe`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopologyDescription {
    /// The application id.
    pub application_id: String,
    /// The sub-topologies, by id.
    pub subtopologies: Vec<SubtopologyDescription>,
    /// The repartition topics, each with the sub-topology that writes it and the one that
    /// reads it: the edges between sub-topologies.
    pub repartition_topics: Vec<RepartitionTopicDescription>,
}

/// One sub-topology: nodes that run together in one task per partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubtopologyDescription {
    /// Its id, as in task ids (`0_3` is partition 3 of sub-topology 0).
    pub id: u32,
    /// Its nodes, in Kafka Streams' order (see the module documentation).
    pub nodes: Vec<NodeDescription>,
    /// The stores its tasks own.
    pub stores: Vec<StoreDescription>,
}

/// One node of a sub-topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeDescription {
    /// The node's name, e.g. `KSTREAM-FILTER-0000000001`.
    pub name: String,
    /// Source, processor or sink.
    #[serde(flatten)]
    pub kind: NodeKind,
    /// The stores it reads or writes (a table source's store too).
    pub stores: Vec<String>,
    /// The nodes it forwards to.
    pub successors: Vec<String>,
    /// The nodes that forward to it.
    pub predecessors: Vec<String>,
}

/// What a node is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeKind {
    /// Reads topics.
    Source {
        /// The topics it reads.
        topics: Vec<String>,
    },
    /// An operator between sources and sinks.
    Processor,
    /// Writes a topic.
    Sink {
        /// The topic it writes.
        topic: String,
    },
}

/// A state store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreDescription {
    /// The store's name.
    pub name: String,
    /// Its shape.
    pub kind: StoreType,
    /// Its changelog topic (a table's store: the table's own topic).
    pub changelog_topic: String,
    /// Whether it is kept on disk.
    pub persistent: bool,
    /// Whether its writes go to the changelog (its `Materialized` may turn that off).
    pub logging: bool,
    /// Whether a record cache may sit in front of it.
    pub caching: bool,
}

/// A store's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreType {
    /// Latest value per key.
    KeyValue,
    /// Values per key and window.
    Window,
    /// Values per key and session.
    Session,
}

/// A repartition topic: an edge from the sub-topology that writes it to the one that
/// reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepartitionTopicDescription {
    /// The topic, `<application>-<name>-repartition`.
    pub topic: String,
    /// The sub-topology whose sink writes it.
    pub from_subtopology: u32,
    /// The sub-topology whose source reads it.
    pub to_subtopology: u32,
}

impl TopologyDescription {
    /// The description of `topology`.
    pub(crate) fn of(topology: &Topology) -> TopologyDescription {
        let inner = &topology.inner;
        let sizes = subgraph_sizes(topology);
        let subtopologies = inner
            .subtopologies
            .iter()
            .map(|sub| SubtopologyDescription {
                id: sub.id,
                nodes: describe_nodes(topology, &sub.nodes, &sizes),
                stores: sub.stores.iter().map(describe_store).collect(),
            })
            .collect();
        let repartition_topics = inner
            .repartition_writers
            .iter()
            .filter_map(|(topic, writer)| {
                Some(RepartitionTopicDescription {
                    topic: topic.clone(),
                    from_subtopology: *writer,
                    to_subtopology: topology.subtopology_of(topic)?,
                })
            })
            .collect();
        TopologyDescription {
            application_id: inner.application_id.clone(),
            subtopologies,
            repartition_topics,
        }
    }
}

/// Per node, the size of the graph below it, itself included, counted as Kafka Streams
/// does (a node reached by two paths counts twice).
fn subgraph_sizes(topology: &Topology) -> Vec<u64> {
    let nodes = &topology.inner.nodes;
    let mut sizes = vec![1u64; nodes.len()];
    // The builder adds a node after its parents, so children have larger ids: walking ids
    // downwards sees every child's final size before its parents.
    for id in (0..nodes.len()).rev() {
        let below: u64 = nodes[id]
            .children
            .iter()
            .map(|child| {
                debug_assert!(*child > id, "children are added after their parents");
                sizes[*child]
            })
            .sum();
        sizes[id] = sizes[id].saturating_add(below);
    }
    sizes
}

fn describe_nodes(topology: &Topology, members: &[NodeId], sizes: &[u64]) -> Vec<NodeDescription> {
    let nodes = &topology.inner.nodes;
    let order = |ids: &mut Vec<NodeId>| {
        ids.sort_by(|a, b| {
            sizes[*b]
                .cmp(&sizes[*a])
                .then(nodes[*a].name.cmp(&nodes[*b].name))
        });
    };
    let mut predecessors: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for id in members {
        for child in &nodes[*id].children {
            predecessors.entry(*child).or_default().push(*id);
        }
    }
    let mut sorted = members.to_vec();
    order(&mut sorted);
    let names = |ids: Vec<NodeId>| ids.into_iter().map(|id| nodes[id].name.clone()).collect();
    sorted
        .into_iter()
        .map(|id| {
            let spec = &nodes[id];
            let kind = if !spec.source_topics.is_empty() {
                NodeKind::Source {
                    topics: spec.source_topics.clone(),
                }
            } else if let Some(topic) = spec.sink_topics.first() {
                NodeKind::Sink {
                    topic: topic.clone(),
                }
            } else {
                NodeKind::Processor
            };
            let mut successors = spec.children.clone();
            order(&mut successors);
            let mut before = predecessors.remove(&id).unwrap_or_default();
            order(&mut before);
            NodeDescription {
                name: spec.name.clone(),
                kind,
                stores: spec.stores.clone(),
                successors: names(successors),
                predecessors: names(before),
            }
        })
        .collect()
}

fn describe_store(spec: &crate::store::StoreSpec) -> StoreDescription {
    let kind = match spec.kind {
        StoreKind::KeyValue => StoreType::KeyValue,
        StoreKind::Window { .. } => StoreType::Window,
        StoreKind::Session { .. } => StoreType::Session,
    };
    StoreDescription {
        name: spec.name.clone(),
        kind,
        changelog_topic: spec.changelog_topic.clone(),
        persistent: spec.backing == StoreBacking::Persistent,
        logging: spec.logging,
        caching: spec.caching,
    }
}

/// `[a, b]`, as Java prints a collection.
fn java_list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// `a, b`, or `none`, as Kafka Streams prints successors and predecessors.
fn node_names(names: &[String]) -> String {
    match names.is_empty() {
        true => "none".to_string(),
        false => names.join(", "),
    }
}

impl fmt::Display for NodeDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let successors = node_names(&self.successors);
        let predecessors = node_names(&self.predecessors);
        match &self.kind {
            NodeKind::Source { topics } => write!(
                f,
                "Source: {} (topics: {})\n      --> {successors}",
                self.name,
                java_list(topics)
            ),
            NodeKind::Processor => write!(
                f,
                "Processor: {} (stores: {})\n      --> {successors}\n      <-- {predecessors}",
                self.name,
                java_list(&self.stores)
            ),
            NodeKind::Sink { topic } => write!(
                f,
                "Sink: {} (topic: {topic})\n      <-- {predecessors}",
                self.name
            ),
        }
    }
}

impl fmt::Display for SubtopologyDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Sub-topology: {}", self.id)?;
        for node in &self.nodes {
            writeln!(f, "    {node}")?;
        }
        writeln!(f)
    }
}

impl fmt::Display for TopologyDescription {
    /// Kafka Streams' layout: `Topologies:` and each sub-topology, separated by blank
    /// lines (the odd first indent is Kafka's too).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Topologies:\n ")?;
        for sub in &self.subtopologies {
            write!(f, "  {sub}")?;
        }
        Ok(())
    }
}

impl TopologyDescription {
    /// The stores of every sub-topology, by name.
    pub fn stores(&self) -> BTreeMap<&str, &StoreDescription> {
        self.subtopologies
            .iter()
            .flat_map(|sub| sub.stores.iter())
            .map(|store| (store.name.as_str(), store))
            .collect()
    }
}
