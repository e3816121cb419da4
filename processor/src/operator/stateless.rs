//! Stateless operators (filter, map, flat_map, peek, branch, ...) as one closure each.

use std::sync::Arc;

use crate::graph::{Ctx, Msg, Operator};

/// The per-record logic of a stateless operator.
pub(crate) type StatelessFn = Arc<dyn Fn(&mut Ctx<'_>, Msg) + Send + Sync>;

/// Runs a stateless closure; the same closure serves every task.
pub(crate) struct Stateless {
    pub logic: StatelessFn,
}

impl Operator for Stateless {
    fn process(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        (self.logic)(ctx, msg);
    }
}
