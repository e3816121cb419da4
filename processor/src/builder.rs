//! `StreamsBuilder`: where a topology starts, and the graph it records.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use crate::graph::{NodeId, NodeSpec, OperatorFactory, PassThrough, SourceDecoder};
use crate::materialized::{Materialized, StoreOptions};
use crate::operator::source::{StreamDecoder, TableDecoder, TableSource};
use crate::serdes::{Serde, SharedSerde};
use crate::store::codec::StoreCodec;
use crate::store::query::KeyValueStoreHandle;
use crate::store::{StoreBacking, StoreKind, StoreSpec};
use crate::stream::KStream;
use crate::table::KTable;
use crate::topology::{Topology, TopologyError};

/// Anything that can flow through a topology: shared by every task, so `Send + Sync`.
pub trait Data: Send + Sync + 'static {}
impl<T: Send + Sync + 'static> Data for T {}

/// The graph as the DSL records it; shared by every stream and table handle of one builder.
pub(crate) struct GraphBuilder {
    pub application_id: String,
    pub nodes: Vec<NodeSpec>,
    /// Each store with the node that owns it (its sub-topology's tasks hold it).
    pub stores: Vec<(StoreSpec, NodeId)>,
    pub repartition_topics: BTreeSet<String>,
    pub table_source_topics: BTreeSet<String>,
    /// A mistake found while building, reported by `build`.
    pub error: Option<TopologyError>,
    /// Stores declared with `add_key_value_store`, which `process` may connect; until one
    /// does, such a store's owner is [`UNOWNED`] and it belongs to no sub-topology.
    pub user_stores: BTreeSet<String>,
    /// Each store's serdes, where the builder knows them, for queries by store name.
    pub store_codecs: HashMap<String, StoreCodec>,
}

/// The owner of a declared store no processor uses yet.
pub(crate) const UNOWNED: NodeId = NodeId::MAX;

pub(crate) type Graph = Rc<RefCell<GraphBuilder>>;

impl GraphBuilder {
    /// A generated node name in Kafka Streams' style: `KSTREAM-FILTER-0000000003`.
    fn node_name(&self, kind: &str) -> String {
        format!("KSTREAM-{kind}-{:010}", self.nodes.len())
    }

    /// Adds an operator node below `parents`.
    pub fn add_node(
        &mut self,
        kind: &str,
        parents: &[NodeId],
        factory: OperatorFactory,
        stores: Vec<String>,
    ) -> NodeId {
        let id = self.nodes.len();
        self.nodes.push(NodeSpec {
            name: self.node_name(kind),
            factory,
            children: Vec::new(),
            stores,
            source_topics: Vec::new(),
            sink_topics: Vec::new(),
            decoder: None,
        });
        for parent in parents {
            self.nodes[*parent].children.push(id);
        }
        id
    }

    /// Adds a source node reading `topic`.
    pub fn add_source(
        &mut self,
        kind: &str,
        topic: &str,
        decoder: Arc<dyn SourceDecoder>,
        factory: OperatorFactory,
        stores: Vec<String>,
    ) -> NodeId {
        let id = self.add_node(kind, &[], factory, stores);
        self.nodes[id].source_topics.push(topic.to_string());
        self.nodes[id].decoder = Some(decoder);
        id
    }

    /// Declares a store owned by `owner`, with its changelog `<application>-<store>-changelog`.
    pub fn add_store(&mut self, name: &str, kind: StoreKind, owner: NodeId) {
        let changelog_topic = format!("{}-{name}-changelog", self.application_id);
        self.add_store_with_changelog(name, kind, owner, changelog_topic);
    }

    pub fn add_store_with_changelog(
        &mut self,
        name: &str,
        kind: StoreKind,
        owner: NodeId,
        changelog_topic: String,
    ) {
        let spec = StoreSpec {
            name: name.to_string(),
            kind,
            changelog_topic,
            backing: StoreBacking::default(),
            logging: true,
            changelog_configs: Vec::new(),
            caching: true,
        };
        self.stores.push((spec, owner));
    }

    /// A store name in Kafka Streams' style for an operation given none:
    /// `KSTREAM-AGGREGATE-STATE-STORE-0000000004`.
    pub fn generated_store_name(&self, operator: &str) -> String {
        format!("KSTREAM-{operator}-STATE-STORE-{:010}", self.nodes.len())
    }

    /// Applies a `Materialized`'s options to the declared store `name`: backing, logging,
    /// changelog configs, retention and caching.
    pub fn configure_store(&mut self, name: &str, options: &StoreOptions) {
        let Some((spec, _)) = self.stores.iter_mut().find(|(spec, _)| spec.name == name) else {
            return self.fail(TopologyError::UnknownStore(name.to_string()));
        };
        if let Some(backing) = options.backing {
            spec.backing = backing;
        }
        // A table's store has its source topic as changelog: that cannot be turned off.
        let table_source = self.table_source_topics.contains(&spec.changelog_topic);
        spec.logging = !options.logging_disabled || table_source;
        spec.changelog_configs = options.changelog_configs.clone();
        spec.caching = !options.caching_disabled;
        match options.apply_retention(name, spec.kind) {
            Ok(kind) => spec.kind = kind,
            Err(error) => self.fail(error),
        }
    }

    /// Records how the store `name` reads keys and shows values (see `store/codec.rs`).
    pub fn set_store_codec(&mut self, name: &str, codec: StoreCodec) {
        self.store_codecs.insert(name.to_string(), codec);
    }

    /// Remembers the first mistake; `build` reports it.
    pub fn fail(&mut self, error: TopologyError) {
        self.error.get_or_insert(error);
    }
}

/// Builds a topology: sources first, then operators on the streams and tables they give.
///
/// ```
/// use riffle_processor::{StreamsBuilder, StringSerde};
///
/// let builder = StreamsBuilder::new("uppercase-app");
/// builder
///     .stream("words", StringSerde, StringSerde)
///     .map_values(|word: &String| word.to_uppercase())
///     .to("shouted", StringSerde, StringSerde);
/// let topology = builder.build().unwrap();
/// assert_eq!(topology.source_topics(), vec!["words".to_string()]);
/// ```
pub struct StreamsBuilder {
    pub(crate) graph: Graph,
}

impl StreamsBuilder {
    /// A builder for the application `application_id`: its consumer group, and the prefix
    /// of its internal topics.
    pub fn new(application_id: &str) -> StreamsBuilder {
        let graph = GraphBuilder {
            application_id: application_id.to_string(),
            nodes: Vec::new(),
            stores: Vec::new(),
            repartition_topics: BTreeSet::new(),
            table_source_topics: BTreeSet::new(),
            error: None,
            user_stores: BTreeSet::new(),
            store_codecs: HashMap::new(),
        };
        StreamsBuilder {
            graph: Rc::new(RefCell::new(graph)),
        }
    }

    /// A stream of the records of `topic`, with event time from each record's timestamp.
    pub fn stream<K: Data, V: Data>(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> KStream<K, V> {
        self.stream_source(topic, Arc::new(key_serde), Arc::new(value_serde), None)
    }

    /// A stream whose event time comes from `extractor(key, value, record_timestamp_ms)`.
    pub fn stream_with_timestamps<K: Data, V: Data>(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        extractor: impl Fn(&K, &V, i64) -> i64 + Send + Sync + 'static,
    ) -> KStream<K, V> {
        let extractor = Some(Arc::new(extractor) as _);
        self.stream_source(topic, Arc::new(key_serde), Arc::new(value_serde), extractor)
    }

    pub(crate) fn stream_source<K: Data, V: Data>(
        &self,
        topic: &str,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        extractor: Option<crate::operator::source::TimestampExtractor<K, V>>,
    ) -> KStream<K, V> {
        let serdes = (Some(key_serde.clone()), Some(value_serde.clone()));
        let decoder = StreamDecoder {
            key_serde,
            value_serde,
            extractor,
        };
        let factory: OperatorFactory = Arc::new(|_| Box::new(PassThrough));
        let node = self.graph.borrow_mut().add_source(
            "SOURCE",
            topic,
            Arc::new(decoder),
            factory,
            Vec::new(),
        );
        KStream::new(self.graph.clone(), node, false).with_serdes(serdes.0, serdes.1)
    }

    /// The table of the latest value per key of the compacted topic `topic`, kept in the
    /// store `materialized` names (a null value deletes the key). The topic itself is the
    /// store's changelog: restoring replays it, so the store keeps the topic's bytes and
    /// its serdes are `key_serde` and `value_serde` (any in `materialized` are not used).
    pub fn table<K: Data + Clone, V: Data + Clone>(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        materialized: impl Into<Materialized<K, V>>,
    ) -> KTable<K, V> {
        let materialized = materialized.into();
        let store_name = &materialized.resolve_name(&self.graph.borrow(), "TABLE-SOURCE");
        let key_serde: SharedSerde<K> = Arc::new(key_serde);
        let value_serde: SharedSerde<V> = Arc::new(value_serde);
        let decoder = TableDecoder {
            key_serde: key_serde.clone(),
            value_serde: value_serde.clone(),
        };
        let name = store_name.to_string();
        let factory: OperatorFactory = Arc::new(move |stores| {
            Box::new(TableSource::<K> {
                store: stores.key_value(&name),
                _key_type: PhantomData,
            })
        });
        let mut graph = self.graph.borrow_mut();
        let node = graph.add_source(
            "TABLE-SOURCE",
            topic,
            Arc::new(decoder),
            factory,
            vec![store_name.to_string()],
        );
        graph.add_store_with_changelog(store_name, StoreKind::KeyValue, node, topic.to_string());
        graph.table_source_topics.insert(topic.to_string());
        graph.configure_store(store_name, &materialized.options);
        drop(graph);
        KTable::new(self.graph.clone(), node, key_serde, value_serde, store_name)
    }

    /// Declares the key-value store `store` names for processors (Kafka Streams'
    /// `addStateStore`): connect it by naming it in [`KStream::process`], and use the
    /// returned handle in the processor (`context.key_value_store(&handle)`) and for
    /// queries. Like the DSL's stores it is changelogged to
    /// `<application>-<name>-changelog` and restored from it, and kept on disk, unless
    /// its [`Materialized`] says otherwise; `key_serde` and `value_serde` are its serdes.
    pub fn add_key_value_store<K: Data, V: Data>(
        &self,
        store: impl Into<Materialized<K, V>>,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> KeyValueStoreHandle<K, V> {
        let store = store.into();
        let mut graph = self.graph.borrow_mut();
        let name = &store.resolve_name(&graph, "PROCESSOR");
        graph.add_store(name, StoreKind::KeyValue, UNOWNED);
        graph.configure_store(name, &store.options);
        graph.user_stores.insert(name.to_string());
        let handle = KeyValueStoreHandle {
            name: name.to_string(),
            key_serde: Arc::new(key_serde),
            value_serde: Arc::new(value_serde),
        };
        let codec = StoreCodec::new(handle.key_serde.clone(), handle.value_serde.clone());
        graph.set_store_codec(name, codec);
        handle
    }

    /// Checks the graph and freezes it into a [`Topology`].
    pub fn build(self) -> Result<Topology, TopologyError> {
        let mut graph = self.graph.borrow_mut();
        if let Some(error) = graph.error.take() {
            return Err(error);
        }
        Topology::new(
            graph.application_id.clone(),
            std::mem::take(&mut graph.nodes),
            std::mem::take(&mut graph.stores),
            std::mem::take(&mut graph.repartition_topics),
            std::mem::take(&mut graph.table_source_topics),
            std::mem::take(&mut graph.store_codecs),
        )
    }
}
