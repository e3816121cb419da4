//! Table `filter` and `map_values`: a new value per table update, optionally materialized.
//!
//! An update whose value the transform drops (a filter saying no) or that is itself a
//! deletion becomes a deletion downstream, so a row that stops passing a filter leaves
//! the filtered table too. Without a store every such update is forwarded as a deletion
//! (Kafka Streams does the same without old values); with one, only keys the store held
//! are, since downstream never saw the others.

use std::sync::Arc;

use crate::graph::{Ctx, DropReason, Msg, Operator, Payload};
use crate::serdes::SharedSerde;
use crate::store::KeyValueStore;

/// The new value of an update, or `None` to delete the row.
pub(crate) type TableTransformFn<K, V, V2> = Arc<dyn Fn(&K, &V) -> Option<V2> + Send + Sync>;

/// The store a transformed table is materialized in.
pub(crate) struct TableMaterialization<K, V2> {
    pub store_name: String,
    pub store: KeyValueStore,
    pub key_serde: SharedSerde<K>,
    pub value_serde: SharedSerde<V2>,
}

/// Transforms each update of a table.
pub(crate) struct TableTransform<K, V, V2> {
    pub transform: TableTransformFn<K, V, V2>,
    pub materialization: Option<TableMaterialization<K, V2>>,
}

impl<K, V, V2> Operator for TableTransform<K, V, V2>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
    V2: Send + Sync + 'static,
{
    fn process(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        let Some(key) = msg.key::<K>() else {
            ctx.drop_record(DropReason::NullKeyOrValue);
            return;
        };
        let new_value = msg
            .value::<V>()
            .and_then(|value| (self.transform)(key, value));
        if let Some(materialization) = &self.materialization
            && !materialization.write(ctx, key, new_value.as_ref(), msg.timestamp_ms)
        {
            return;
        }
        ctx.forward(Msg {
            key: msg.key.clone(),
            value: new_value.map(|value| Arc::new(value) as Payload),
            timestamp_ms: msg.timestamp_ms,
            headers: msg.headers.clone(),
        });
    }
}

impl<K: 'static, V2: 'static> TableMaterialization<K, V2> {
    /// Writes the new value (or deletes the row); false when there is nothing to forward:
    /// a deletion of a row the store never held, or bytes a serde could not make.
    fn write(&self, ctx: &mut Ctx<'_>, key: &K, value: Option<&V2>, timestamp_ms: i64) -> bool {
        let name = self.store_name.as_str();
        let Ok(key_bytes) = self.key_serde.serialize(name, key) else {
            ctx.drop_record(DropReason::Deserialization);
            return false;
        };
        let Some(value) = value else {
            if self.store.get(&key_bytes).is_none() {
                return false;
            }
            self.store.delete(ctx.outputs, key_bytes, timestamp_ms);
            return true;
        };
        let Ok(value_bytes) = self.value_serde.serialize(name, value) else {
            ctx.drop_record(DropReason::Deserialization);
            return false;
        };
        self.store
            .put(ctx.outputs, key_bytes, value_bytes, timestamp_ms);
        true
    }
}
