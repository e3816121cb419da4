//! `KStream::process`: a user [`Processor`] as a node of the DSL graph.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::builder::{Data, UNOWNED};
use crate::graph::OperatorFactory;
use crate::operator::user_processor::UserProcessor;
use crate::processor_api::Processor;
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
    /// `build` fails with [`TopologyError::UnknownStore`] for a name not declared that
    /// way (the DSL's own stores cannot be connected yet).
    pub fn process<KOut: Data, VOut: Data, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
        stores: &[&str],
    ) -> KStream<KOut, VOut>
    where
        P: Processor<K, V, KOut, VOut>,
    {
        let names: Vec<String> = stores.iter().map(|name| name.to_string()).collect();
        let mut graph = self.graph.borrow_mut();
        for name in &names {
            if !graph.user_stores.contains(name) {
                graph.fail(TopologyError::UnknownStore(name.clone()));
            }
        }
        let node_name = format!("KSTREAM-PROCESSOR-{:010}", graph.nodes.len());
        let store_names = names.clone();
        let factory: OperatorFactory = Arc::new(move |task_stores| {
            let stores: HashMap<String, _> = store_names
                .iter()
                .map(|name| (name.clone(), task_stores.key_value(name)))
                .collect();
            Box::new(UserProcessor {
                processor: supplier(),
                stores,
                schedules: Vec::new(),
                node_name: node_name.clone(),
                _types: PhantomData,
            })
        });
        let valid: Vec<String> = names
            .into_iter()
            .filter(|name| graph.user_stores.contains(name))
            .collect();
        let node = graph.add_node("PROCESSOR", &[self.node], factory, valid.clone());
        for (spec, owner) in graph.stores.iter_mut() {
            if *owner == UNOWNED && valid.contains(&spec.name) {
                *owner = node;
            }
        }
        drop(graph);
        KStream::new(self.graph.clone(), node, true)
    }
}
