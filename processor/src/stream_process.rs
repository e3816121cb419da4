//! `KStream::process`: a user [`Processor`] as a node of the DSL graph.

use std::collections::HashSet;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::builder::{Data, UNOWNED};
use crate::graph::{NodeId, OperatorFactory};
use crate::operator::user_processor::UserProcessor;
use crate::processor_api::Processor;
use crate::processor_stores::ProcessorStores;
use crate::stream::KStream;
use crate::topology::TopologyError;

impl<K: Data, V: Data> KStream<K, V> {
    /// Runs a user [`Processor`] on every record (Kafka Streams 3.x
    /// `process(ProcessorSupplier, String... stateStoreNames)`): `supplier` makes one
    /// processor per task, and `stores` names the key-value stores it may use, declared
    /// with [`crate::StreamsBuilder::add_key_value_store`]. Processors naming the same
    /// store run in the same tasks. The result is the stream of what the processor
    /// forwards; since it may change keys, key-based state after it repartitions first.
    ///
    /// A store the DSL created before this call (a table's, an aggregate's) may be named
    /// too, as with Kafka Streams' `connectProcessorAndStateStores`: read it with its
    /// handle (`table.store()`); a table source's store is read-only, since its changelog
    /// is the table's topic. `build` fails with [`TopologyError::UnknownStore`] for a name
    /// no store has.
    pub fn process<KOut: Data, VOut: Data, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
        stores: &[&str],
    ) -> KStream<KOut, VOut>
    where
        P: Processor<K, V, KOut, VOut>,
    {
        let node = add_processor_node(self, supplier, stores);
        KStream::new(self.graph.clone(), node, true)
    }
}

/// Adds a user processor node below `stream`, connected to the stores `stores` names.
pub(crate) fn add_processor_node<K: Data, V: Data, KOut: Data, VOut: Data, P>(
    stream: &KStream<K, V>,
    supplier: impl Fn() -> P + Send + Sync + 'static,
    stores: &[&str],
) -> NodeId
where
    P: Processor<K, V, KOut, VOut>,
{
    let mut graph = stream.graph.borrow_mut();
    let mut valid = Vec::new();
    let mut read_only = HashSet::new();
    for name in stores {
        let Some((spec, _)) = graph.stores.iter().find(|(spec, _)| spec.name == *name) else {
            graph.fail(TopologyError::UnknownStore(name.to_string()));
            continue;
        };
        if graph.table_source_topics.contains(&spec.changelog_topic) {
            read_only.insert(name.to_string());
        }
        valid.push(name.to_string());
    }
    let node_name = format!("KSTREAM-PROCESSOR-{:010}", graph.nodes.len());
    let store_names = valid.clone();
    let factory: OperatorFactory = Arc::new(move |task_stores| {
        let mut stores = ProcessorStores {
            read_only: read_only.clone(),
            ..ProcessorStores::default()
        };
        for name in &store_names {
            if let Some(store) = task_stores.key_value.get(name) {
                stores.key_value.insert(name.clone(), store.clone());
            } else if let Some(store) = task_stores.window.get(name) {
                stores.window.insert(name.clone(), store.clone());
            } else if let Some(store) = task_stores.session.get(name) {
                stores.session.insert(name.clone(), store.clone());
            }
        }
        Box::new(UserProcessor {
            processor: supplier(),
            stores,
            schedules: Vec::new(),
            node_name: node_name.clone(),
            _types: PhantomData,
        })
    });
    let node = graph.add_node("PROCESSOR", &[stream.node], factory, valid.clone());
    // Stores declared for processors belong to the first processor naming them; the
    // DSL's keep their owners, and the processor joins their sub-topology.
    for (spec, owner) in graph.stores.iter_mut() {
        if *owner == UNOWNED && valid.contains(&spec.name) {
            *owner = node;
        }
    }
    node
}
