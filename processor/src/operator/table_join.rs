//! Stream-table joins: each stream record looks up the table's current value for its key.
//!
//! Only stream records trigger output; table updates only change the table. The output
//! carries the stream record's timestamp.

use std::sync::Arc;

use super::aggregate::{key_and_value, store_key};
use crate::graph::{Ctx, Msg, Operator};
use crate::serdes::SharedSerde;
use crate::store::KeyValueStore;

/// Inner (`Some` table value required) or left (`None` passed to the joiner) join logic.
pub(crate) type TableJoiner<K, V, T, R> =
    Arc<dyn Fn(&K, &V, Option<&T>) -> Option<R> + Send + Sync>;

/// Looks up the table for every stream record.
pub(crate) struct StreamTableJoin<K, V, T, R> {
    pub table_store_name: String,
    pub table_store: KeyValueStore,
    pub key_serde: SharedSerde<K>,
    pub table_value_serde: SharedSerde<T>,
    pub joiner: TableJoiner<K, V, T, R>,
}

impl<K, V, T, R> Operator for StreamTableJoin<K, V, T, R>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
    T: Send + Sync + 'static,
    R: Send + Sync + 'static,
{
    fn process(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        let Some((key, value)) = key_and_value::<K, V>(ctx, &msg) else {
            return;
        };
        let name = &self.table_store_name;
        let Some(key_bytes) = store_key(ctx, &self.key_serde, name, key) else {
            return;
        };
        let table_value = self
            .table_store
            .get(&key_bytes)
            .and_then(|stored| self.table_value_serde.deserialize(name, &stored.value).ok());
        if let Some(joined) = (self.joiner)(key, value, table_value.as_ref()) {
            ctx.forward(Msg {
                key: msg.key.clone(),
                value: Some(Arc::new(joined)),
                timestamp_ms: msg.timestamp_ms,
                headers: msg.headers.clone(),
            });
        }
    }
}
