//! A user's [`Processor`] as an operator: it builds the [`ProcessorContext`] for each
//! record, keeps the processor's punctuation schedules and runs the due ones.

use std::marker::PhantomData;

use crate::graph::{Ctx, DropReason, Msg, Operator, Payload};
use crate::processor_api::{Processor, ProcessorContext, PunctuationType, Record, Schedule};
use crate::processor_stores::ProcessorStores;
use crate::record::Headers;

/// One task's instance of a user processor.
pub(crate) struct UserProcessor<P, KIn, VIn, KOut, VOut> {
    pub processor: P,
    /// The stores named in `process(..)`, by name.
    pub stores: ProcessorStores,
    /// Its punctuations, in the order they were scheduled.
    pub schedules: Vec<Schedule<KOut, VOut>>,
    pub node_name: String,
    pub _types: PhantomData<fn(KIn, VIn)>,
}

impl<P, KIn, VIn, KOut, VOut> UserProcessor<P, KIn, VIn, KOut, VOut>
where
    KOut: Send + Sync + 'static,
    VOut: Send + Sync + 'static,
{
    /// A context over `ctx` whose forwards and writes carry `timestamp_ms` and `headers`;
    /// schedules it makes go to `new_schedules`.
    fn context<'c>(
        ctx: &'c mut Ctx<'_>,
        stores: &'c ProcessorStores,
        new_schedules: &'c mut Vec<Schedule<KOut, VOut>>,
        node_name: &'c str,
        (timestamp_ms, headers, current_key): (i64, Headers, Option<Payload>),
    ) -> ProcessorContext<'c, KOut, VOut> {
        ProcessorContext {
            outputs: &mut *ctx.outputs,
            forwards: &mut ctx.forwards,
            stores,
            new_schedules,
            source: ctx.source,
            timestamp_ms,
            headers,
            current_key,
            stream_time_ms: ctx.stream_time_ms,
            wall_clock_ms: ctx.wall_clock_ms,
            node_name,
            _types: PhantomData,
        }
    }
}

impl<P, KIn, VIn, KOut, VOut> Operator for UserProcessor<P, KIn, VIn, KOut, VOut>
where
    P: Processor<KIn, VIn, KOut, VOut>,
    KIn: Send + Sync + 'static,
    VIn: Send + Sync + 'static,
    KOut: Send + Sync + 'static,
    VOut: Send + Sync + 'static,
{
    fn process(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        let (Some(key), Some(value)) = (msg.key::<KIn>(), msg.value::<VIn>()) else {
            ctx.drop_record(DropReason::NullKeyOrValue);
            return;
        };
        let record = Record {
            key,
            value,
            timestamp_ms: msg.timestamp_ms,
            headers: &msg.headers,
        };
        let time = (msg.timestamp_ms, msg.headers.clone(), msg.key.clone());
        let mut added = Vec::new();
        let mut context = Self::context(ctx, &self.stores, &mut added, &self.node_name, time);
        let result = self.processor.process(&mut context, record);
        self.schedules.append(&mut added);
        if let Err(error) = result {
            tracing::warn!(processor = %self.node_name, %error, "a processor failed on a record; record dropped");
            ctx.drop_record(DropReason::Deserialization);
        }
    }

    fn may_punctuate(&self) -> bool {
        true
    }

    fn init(&mut self, ctx: &mut Ctx<'_>) {
        let time = (ctx.stream_time_ms.max(0), Headers::default(), None);
        let mut added = Vec::new();
        let mut context = Self::context(ctx, &self.stores, &mut added, &self.node_name, time);
        self.processor.init(&mut context);
        self.schedules.append(&mut added);
    }

    fn punctuate(&mut self, ctx: &mut Ctx<'_>, kind: PunctuationType, time_ms: i64) -> bool {
        if !self.schedules.iter().any(|s| s.is_due(kind, time_ms)) {
            return false;
        }
        let mut schedules = std::mem::take(&mut self.schedules);
        let mut added = Vec::new();
        for schedule in schedules.iter_mut().filter(|s| s.is_due(kind, time_ms)) {
            let time = (time_ms, Headers::default(), None);
            let mut context = Self::context(ctx, &self.stores, &mut added, &self.node_name, time);
            if let Err(error) = (schedule.callback)(&mut context, time_ms) {
                tracing::warn!(processor = %self.node_name, %error, "a punctuation failed");
            }
            schedule.advance(time_ms);
        }
        schedules.retain(|schedule| !schedule.is_cancelled());
        schedules.append(&mut added);
        self.schedules = schedules;
        true
    }
}
