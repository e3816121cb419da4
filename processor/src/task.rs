//! A task: one sub-topology on one partition, as a state machine without I/O.
//!
//! A runtime drives it in this order: [`Task::restore`] each changelog record, then
//! [`Task::add_records`] as records arrive and [`Task::process_next`] while it returns
//! true, sending the outputs it collects; on commit, send and flush those outputs first,
//! then commit [`Task::committable_offsets`] with [`Task::commit_metadata`].
//!
//! Record choice follows Kafka Streams: among its input partitions the task takes the head
//! record with the lowest timestamp, and it waits while an empty partition may still have
//! data on the broker (`max.task.idle.ms = 0`): the runtime says which partitions are
//! caught up.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::graph::{Ctx, DropReason, Forward, Msg, NodeId, Operator};
use crate::processor_api::PunctuationType;
use crate::record::{InputRecord, OutputRecord, TopicPartition};
use crate::store::cache::CacheBudget;
use crate::store::engine::StateError;
use crate::store::{StateHome, TaskStores};
use crate::topology::Topology;

/// A task's identity: sub-topology and partition, shown as `0_3` like Kafka Streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    /// The sub-topology.
    pub subtopology: u32,
    /// The partition of its source topics.
    pub partition: i32,
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.subtopology, self.partition)
    }
}

/// Counters a task keeps, as Kafka Streams' task metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskMetrics {
    /// Records taken for processing.
    pub processed_records: u64,
    /// Dropped records by reason (`dropped-records-total` is their sum).
    pub dropped_records: BTreeMap<DropReason, u64>,
}

impl TaskMetrics {
    pub(crate) fn record_dropped(&mut self, reason: DropReason) {
        *self.dropped_records.entry(reason).or_default() += 1;
    }

    /// Every dropped record, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_records.values().sum()
    }

    /// Records dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped_records.get(&reason).copied().unwrap_or(0)
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &TaskMetrics) {
        self.processed_records += other.processed_records;
        for (reason, count) in &other.dropped_records {
            *self.dropped_records.entry(*reason).or_default() += count;
        }
    }
}

/// Records buffered for one input partition.
#[derive(Debug, Default)]
struct PartitionQueue {
    records: VecDeque<InputRecord>,
    /// The runtime knows nothing more is on the broker right now (lag 0).
    caught_up: bool,
}

/// Limit on the operator steps one input record may cause: a topology is a finite graph,
/// so hitting it means an operator forwards without end (a bug), not slow input.
const MAX_STEPS_PER_RECORD: usize = 1_000_000;

/// Records buffered for one input partition before the task stops waiting for its other,
/// empty partitions and processes what it has.
const MAX_BUFFERED_RECORDS_PER_PARTITION: usize = 10_000;

/// What a task writes with its offsets so that a restart resumes consistently.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommitMetadata {
    /// The task's stream time at commit.
    pub stream_time_ms: i64,
    /// For each changelog partition, the offset after the last write this commit covers.
    /// Restoring stops there, so state matches the committed input position exactly.
    pub changelog_end_offsets: BTreeMap<String, i64>,
    /// Per windowed operator (by node name), its stream time and how far it has emitted
    /// final results, so a restarted task neither re-emits nor skips a closed window.
    #[serde(default)]
    pub operator_progress: BTreeMap<String, OperatorProgress>,
}

/// A windowed operator's own clock, kept across restarts through the commit metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OperatorProgress {
    /// The largest timestamp the operator has seen.
    pub observed_ms: i64,
    /// Windows ending at or before this have been emitted as final results.
    pub emitted_through_ms: i64,
}

const COMMIT_METADATA_PREFIX: &str = "riffle:";

impl CommitMetadata {
    /// The metadata string committed with the offsets.
    pub fn encode(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        format!("{COMMIT_METADATA_PREFIX}{json}")
    }

    /// Reads metadata a task committed; anything else (another client's) is ignored.
    pub fn decode(text: &str) -> Option<CommitMetadata> {
        let json = text.strip_prefix(COMMIT_METADATA_PREFIX)?;
        serde_json::from_str(json).ok()
    }

    /// The key used for `topic_partition` in [`CommitMetadata::changelog_end_offsets`].
    pub fn changelog_key(topic_partition: &TopicPartition) -> String {
        topic_partition.to_string()
    }
}

/// One sub-topology running on one partition.
pub struct Task {
    id: TaskId,
    topology: Topology,
    operators: HashMap<NodeId, Box<dyn Operator>>,
    /// Source nodes by topic; shared, so a record's sources are not copied to run them.
    sources: HashMap<String, Arc<[NodeId]>>,
    stores: TaskStores,
    queues: BTreeMap<TopicPartition, PartitionQueue>,
    next_offsets: BTreeMap<TopicPartition, i64>,
    stream_time_ms: i64,
    metrics: TaskMetrics,
    /// Nodes running user processors, which may punctuate; empty for DSL-only topologies.
    punctuating: Vec<NodeId>,
    /// Nodes with a record cache, in node order (upstream first), flushed at each commit.
    caching: Vec<NodeId>,
    /// Whether the user processors' `init` ran (before the first record or punctuation).
    initialized: bool,
    /// The wall-clock time last given by the runtime, in ms since the epoch.
    wall_clock_ms: i64,
    /// The graph walk's stack and forwards, kept between records so that running one
    /// allocates neither.
    stack: Vec<(NodeId, Msg)>,
    forwards: Vec<Forward>,
}

impl Task {
    pub(crate) fn open(
        topology: Topology,
        id: TaskId,
        home: &StateHome,
        cache: &CacheBudget,
    ) -> Result<Task, StateError> {
        let sub = &topology.inner.subtopologies[id.subtopology as usize];
        let mut stores = TaskStores::open(&sub.stores, id, home, cache)?;
        stores.uncached = stores_used_twice(&topology, &sub.nodes);
        let mut operators = HashMap::new();
        let mut sources: HashMap<String, Vec<NodeId>> = HashMap::new();
        let mut queues = BTreeMap::new();
        let (mut punctuating, mut caching) = (Vec::new(), Vec::new());
        for node in &sub.nodes {
            let spec = &topology.inner.nodes[*node];
            let operator = (spec.factory)(&stores);
            if operator.may_punctuate() {
                punctuating.push(*node);
            }
            if operator.has_cache() {
                caching.push(*node);
            }
            operators.insert(*node, operator);
            for topic in &spec.source_topics {
                sources.entry(topic.clone()).or_default().push(*node);
                queues.insert(
                    TopicPartition::new(topic.clone(), id.partition),
                    PartitionQueue::default(),
                );
            }
        }
        let sources = sources
            .into_iter()
            .map(|(topic, nodes)| (topic, Arc::from(nodes)))
            .collect();
        Ok(Task {
            id,
            topology,
            operators,
            sources,
            stores,
            queues,
            next_offsets: BTreeMap::new(),
            stream_time_ms: -1,
            metrics: TaskMetrics::default(),
            punctuating,
            caching,
            initialized: false,
            wall_clock_ms: crate::processor_api::system_time_ms(),
            stack: Vec::new(),
            forwards: Vec::new(),
        })
    }

    /// This task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The partitions this task reads.
    pub fn input_partitions(&self) -> Vec<TopicPartition> {
        self.queues.keys().cloned().collect()
    }

    /// The changelog partitions to replay before processing: one per store, on the task's
    /// partition (a table's store replays its own source topic); none for a store whose
    /// logging is off.
    pub fn changelog_partitions(&self) -> Vec<TopicPartition> {
        let sub = &self.topology.inner.subtopologies[self.id.subtopology as usize];
        sub.stores
            .iter()
            .filter(|store| store.logging)
            .map(|store| TopicPartition::new(store.changelog_topic.clone(), self.id.partition))
            .collect()
    }

    /// Applies one changelog record to its store, without processing it.
    pub fn restore(&mut self, record: &InputRecord) {
        let Some(key) = record.key.as_deref() else {
            return;
        };
        self.stores.restore(
            &record.topic,
            key,
            record.value.as_deref(),
            record.timestamp_ms,
        );
    }

    /// Buffers records read from one of this task's input partitions.
    pub fn add_records(&mut self, records: impl IntoIterator<Item = InputRecord>) {
        for record in records {
            // A task reads a handful of partitions: a scan beats building a key per record.
            let queue = self.queues.iter_mut().find(|(input, _)| {
                input.partition == record.partition && input.topic == record.topic
            });
            if let Some((_, queue)) = queue {
                queue.records.push_back(record);
            }
        }
    }

    /// Tells the task whether an input partition has nothing more on the broker right now.
    pub fn set_caught_up(&mut self, topic_partition: &TopicPartition, caught_up: bool) {
        if let Some(queue) = self.queues.get_mut(topic_partition) {
            queue.caught_up = caught_up;
        }
    }

    /// Makes `next_offset` the position of `topic_partition` to commit, before anything is
    /// processed: where reading resumes when it is not the group's commit.
    pub fn set_position(&mut self, topic_partition: &TopicPartition, next_offset: i64) {
        if self.queues.contains_key(topic_partition) {
            self.next_offsets
                .insert(topic_partition.clone(), next_offset);
        }
    }

    /// Whether every record buffered for `topic_partition` has been processed.
    pub fn is_drained(&self, topic_partition: &TopicPartition) -> bool {
        self.queues
            .get(topic_partition)
            .is_none_or(|queue| queue.records.is_empty())
    }

    /// Input partitions with a full buffer: reading more of them waits until the task has
    /// processed some (it processes them without waiting for its other inputs then).
    pub fn full_partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.queues
            .iter()
            .filter(|(_, queue)| queue.records.len() >= MAX_BUFFERED_RECORDS_PER_PARTITION)
            .map(|(topic_partition, _)| topic_partition)
    }

    /// Records buffered, not yet processed.
    pub fn buffered_records(&self) -> usize {
        self.queues.values().map(|queue| queue.records.len()).sum()
    }

    /// Whether the task would process a record now: one is buffered and the task is not
    /// waiting for an input that may still have data on the broker.
    pub fn is_ready(&self) -> bool {
        self.next_queue().is_some()
    }

    /// The task's stream time: the largest timestamp taken for processing, -1 before any.
    pub fn stream_time_ms(&self) -> i64 {
        self.stream_time_ms
    }

    /// Counters: processed and dropped records.
    pub fn metrics(&self) -> &TaskMetrics {
        &self.metrics
    }

    pub(crate) fn stores(&self) -> &TaskStores {
        &self.stores
    }

    /// Restores stream time from committed metadata, so windows keep closing where they did.
    pub fn resume_from(&mut self, metadata: &CommitMetadata) {
        self.stream_time_ms = self.stream_time_ms.max(metadata.stream_time_ms);
        for (node, operator) in &mut self.operators {
            let name = &self.topology.inner.nodes[*node].name;
            if let Some(progress) = metadata.operator_progress.get(name) {
                operator.resume(*progress);
            }
        }
    }

    /// The progress of every windowed operator, for the commit metadata.
    pub fn operator_progress(&self) -> BTreeMap<String, OperatorProgress> {
        self.operators
            .iter()
            .filter_map(|(node, operator)| {
                let progress = operator.progress()?;
                Some((self.topology.inner.nodes[*node].name.clone(), progress))
            })
            .collect()
    }

    /// The next offset to read for each input partition this task has processed from.
    pub fn committable_offsets(&self) -> Vec<(TopicPartition, i64)> {
        self.next_offsets
            .iter()
            .map(|(topic_partition, offset)| (topic_partition.clone(), *offset))
            .collect()
    }

    /// Processes the next record if the task is ready; outputs go to `outputs` in order.
    /// Returns false when nothing could be processed.
    pub fn process_next(&mut self, outputs: &mut Vec<OutputRecord>) -> bool {
        self.initialize(outputs);
        let Some(index) = self.next_queue() else {
            return false;
        };
        let Some((topic_partition, queue)) = self.queues.iter_mut().nth(index) else {
            return false;
        };
        let Some(record) = queue.records.pop_front() else {
            return false;
        };
        let next_offset = record.offset.saturating_add(1);
        match self.next_offsets.get_mut(topic_partition) {
            Some(offset) => *offset = next_offset,
            None => {
                self.next_offsets
                    .insert(topic_partition.clone(), next_offset);
            }
        }
        self.metrics.processed_records += 1;
        self.process_record(&record, outputs);
        self.punctuate(PunctuationType::StreamTime, self.stream_time_ms, outputs);
        true
    }

    /// The queue of the partition whose head record has the lowest timestamp (its position
    /// among the queues), if every partition that may still have data on the broker has
    /// some buffered.
    fn next_queue(&self) -> Option<usize> {
        // A partition that has buffered its limit goes ahead without the empty ones (Kafka
        // Streams' enforced processing), so memory stays bounded while one input stalls.
        let enforced = self
            .queues
            .values()
            .any(|queue| queue.records.len() >= MAX_BUFFERED_RECORDS_PER_PARTITION);
        let mut best: Option<(usize, i64)> = None;
        for (index, queue) in self.queues.values().enumerate() {
            match queue.records.front() {
                None if !queue.caught_up && !enforced => return None,
                None => {}
                Some(head) if best.is_none_or(|(_, lowest)| head.timestamp_ms < lowest) => {
                    best = Some((index, head.timestamp_ms));
                }
                Some(_) => {}
            }
        }
        best.map(|(index, _)| index)
    }

    fn process_record(&mut self, record: &InputRecord, outputs: &mut Vec<OutputRecord>) {
        let Some(sources) = self.sources.get(&record.topic).cloned() else {
            return;
        };
        for source in sources.iter() {
            self.process_at_source(*source, record, outputs);
        }
    }

    fn process_at_source(
        &mut self,
        source: NodeId,
        record: &InputRecord,
        outputs: &mut Vec<OutputRecord>,
    ) {
        let Some(decoder) = self.topology.inner.nodes[source].decoder.clone() else {
            return;
        };
        let msg = match decoder.decode(record) {
            Ok(Some(msg)) => msg,
            Ok(None) => {
                self.metrics.record_dropped(DropReason::NullKeyOrValue);
                return;
            }
            Err(error) => {
                tracing::warn!(task = %self.id, offset = record.offset, %error, "record skipped");
                self.metrics.record_dropped(DropReason::Deserialization);
                return;
            }
        };
        if msg.timestamp_ms < 0 {
            self.metrics.record_dropped(DropReason::NegativeTimestamp);
            return;
        }
        self.stream_time_ms = self.stream_time_ms.max(msg.timestamp_ms);
        let mut stack = std::mem::take(&mut self.stack);
        stack.push((source, msg));
        self.run_stack(stack, Some(record), outputs);
    }

    /// Runs the records on `stack` through the graph depth-first, as Kafka Streams'
    /// forward calls do, with an explicit stack instead of recursion; `source` is the
    /// input record they came from, if any.
    fn run_stack(
        &mut self,
        mut stack: Vec<(NodeId, Msg)>,
        source: Option<&InputRecord>,
        outputs: &mut Vec<OutputRecord>,
    ) {
        // One buffer for every step's forwards, drained onto the stack after each.
        let mut forwards = std::mem::take(&mut self.forwards);
        let mut steps = 0usize;
        while let Some((node, msg)) = stack.pop() {
            steps += 1;
            assert!(
                steps <= MAX_STEPS_PER_RECORD,
                "an operator forwards without end"
            );
            let Some(operator) = self.operators.get_mut(&node) else {
                continue;
            };
            let mut ctx = Ctx {
                outputs,
                metrics: &mut self.metrics,
                forwards,
                source,
                stream_time_ms: self.stream_time_ms,
                wall_clock_ms: self.wall_clock_ms,
            };
            operator.process(&mut ctx, msg);
            forwards = ctx.forwards;
            let children = &self.topology.inner.nodes[node].children;
            push_forwards(&mut stack, children, forwards.drain(..));
        }
        self.stack = stack;
        self.forwards = forwards;
    }
}

impl Task {
    /// Runs the user processors' `init` once, before the first record or punctuation (so
    /// after the runtime restored the stores).
    fn initialize(&mut self, outputs: &mut Vec<OutputRecord>) {
        if self.initialized {
            return;
        }
        self.initialized = true;
        for node in self.punctuating.clone() {
            self.run_on(node, outputs, |operator, ctx| {
                operator.init(ctx);
                true
            });
        }
    }

    /// Moves the task's wall clock to `now_ms` (ms since the epoch) and runs the
    /// wall-clock punctuations due; the runtime calls it once per processing round, the
    /// test driver when its mocked clock moves. Returns whether any ran.
    pub fn punctuate_wall_clock(&mut self, now_ms: i64, outputs: &mut Vec<OutputRecord>) -> bool {
        self.wall_clock_ms = now_ms;
        self.initialize(outputs);
        self.punctuate(PunctuationType::WallClockTime, now_ms, outputs)
    }

    /// Flushes every record cache of the task: dirty entries are written to their stores
    /// and changelogs and forwarded downstream, where they may fill a later cache, which
    /// is flushed in turn. Before every commit: a commit must cover no update that is only
    /// in a cache. Returns whether anything was flushed.
    pub fn flush_caches(&mut self, outputs: &mut Vec<OutputRecord>) -> bool {
        let mut flushed_any = false;
        // Node order is upstream first, so one pass usually empties every cache; a
        // second finds nothing. A graph has no cycles, so passes are bounded by its size.
        for _ in 0..=self.caching.len() {
            let mut flushed = false;
            for index in 0..self.caching.len() {
                let node = self.caching[index];
                flushed |= self.run_on(node, outputs, |operator, ctx| operator.flush_cache(ctx));
            }
            if !flushed {
                return flushed_any;
            }
            flushed_any = true;
        }
        unreachable!("record caches of an acyclic graph keep refilling each other")
    }

    /// Runs the punctuations of `kind` due at `time_ms`, processor by processor in node
    /// order; stream time before any record (-1) runs none.
    fn punctuate(
        &mut self,
        kind: PunctuationType,
        time_ms: i64,
        outputs: &mut Vec<OutputRecord>,
    ) -> bool {
        if self.punctuating.is_empty() || time_ms < 0 {
            return false;
        }
        let mut punctuated = false;
        // By index: `run_on` needs the task mutably, and this runs after every record.
        for index in 0..self.punctuating.len() {
            let node = self.punctuating[index];
            punctuated |= self.run_on(node, outputs, |operator, ctx| {
                operator.punctuate(ctx, kind, time_ms)
            });
        }
        punctuated
    }

    /// Calls `action` on the operator of `node` outside any record, then runs what it
    /// forwarded through its children.
    fn run_on(
        &mut self,
        node: NodeId,
        outputs: &mut Vec<OutputRecord>,
        action: impl FnOnce(&mut dyn Operator, &mut Ctx<'_>) -> bool,
    ) -> bool {
        let Some(operator) = self.operators.get_mut(&node) else {
            return false;
        };
        let mut ctx = Ctx {
            outputs,
            metrics: &mut self.metrics,
            forwards: Vec::new(),
            source: None,
            stream_time_ms: self.stream_time_ms,
            wall_clock_ms: self.wall_clock_ms,
        };
        let acted = action(operator.as_mut(), &mut ctx);
        let forwards = ctx.forwards;
        let mut stack = Vec::new();
        let children = &self.topology.inner.nodes[node].children;
        push_forwards(&mut stack, children, forwards.into_iter());
        self.run_stack(stack, None, outputs);
        acted
    }
}

/// Stores that more than one of `nodes` uses.
fn stores_used_twice(topology: &Topology, nodes: &[NodeId]) -> HashSet<String> {
    let mut users: HashMap<&str, usize> = HashMap::new();
    for node in nodes {
        for store in &topology.inner.nodes[*node].stores {
            *users.entry(store.as_str()).or_default() += 1;
        }
    }
    users
        .into_iter()
        .filter(|(_, count)| *count > 1)
        .map(|(store, _)| store.to_string())
        .collect()
}

/// Pushes forwarded records so the first forward's first child is processed first.
fn push_forwards(
    stack: &mut Vec<(NodeId, Msg)>,
    children: &[NodeId],
    forwards: impl DoubleEndedIterator<Item = Forward>,
) {
    for forward in forwards.rev() {
        match forward.child_index {
            Some(index) => {
                if let Some(child) = children.get(index) {
                    stack.push((*child, forward.msg));
                }
            }
            None => {
                for child in children.iter().rev() {
                    stack.push((*child, forward.msg.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Headers;
    use crate::{StreamsBuilder, StringSerde};

    fn record(topic: &str, offset: i64, timestamp_ms: i64) -> InputRecord {
        InputRecord {
            topic: topic.to_string(),
            partition: 0,
            offset,
            timestamp_ms,
            key: Some(b"k".to_vec()),
            value: Some(b"v".to_vec()),
            headers: Headers::default(),
        }
    }

    fn merge_task() -> Task {
        let builder = StreamsBuilder::new("app");
        let left = builder.stream("left", StringSerde, StringSerde);
        let right = builder.stream("right", StringSerde, StringSerde);
        left.merge(&right).to("out", StringSerde, StringSerde);
        let topology = builder.build().unwrap();
        topology.create_task(TaskId {
            subtopology: 0,
            partition: 0,
        })
    }

    /// The task waits for an empty input that may still have data, takes the lowest
    /// timestamp first once both have some, and stops waiting once the other input has
    /// buffered its limit.
    #[test]
    fn record_choice_waits_for_inputs_then_takes_the_lowest_timestamp() {
        let mut task = merge_task();
        let mut outputs = Vec::new();
        task.add_records([record("left", 0, 50)]);
        assert!(
            !task.process_next(&mut outputs),
            "right may still have older data"
        );
        task.add_records([record("right", 0, 10)]);
        assert!(task.process_next(&mut outputs));
        assert_eq!(outputs.len(), 1);
        assert_eq!(
            outputs[0].timestamp_ms, 10,
            "the lower timestamp goes first"
        );
        assert!(!task.process_next(&mut outputs), "right is empty again");
        task.set_caught_up(&TopicPartition::new("right", 0), true);
        assert!(
            task.process_next(&mut outputs),
            "a caught-up empty input does not block"
        );
        task.set_caught_up(&TopicPartition::new("right", 0), false);
        let many = (1..=MAX_BUFFERED_RECORDS_PER_PARTITION as i64).map(|o| record("left", o, 60));
        task.add_records(many);
        assert!(
            task.process_next(&mut outputs),
            "a full buffer is processed anyway"
        );
    }

    #[test]
    fn a_partition_is_full_at_its_buffer_limit_until_some_is_processed() {
        // Proves the runner pauses reading a partition exactly while its buffer is full,
        // and that the task then processes it without waiting for its empty other input.
        let mut task = merge_task();
        let limit = i64::try_from(MAX_BUFFERED_RECORDS_PER_PARTITION).unwrap();
        task.add_records((0..limit - 1).map(|offset| record("left", offset, offset)));
        assert_eq!(task.full_partitions().count(), 0);
        assert!(!task.is_ready(), "waits for the right input while not full");
        task.add_records([record("left", limit - 1, limit - 1)]);
        let full: Vec<_> = task.full_partitions().cloned().collect();
        assert_eq!(full, vec![TopicPartition::new("left", 0)]);
        assert!(task.is_ready());
        let mut outputs = Vec::new();
        assert!(task.process_next(&mut outputs));
        assert_eq!(task.full_partitions().count(), 0);
    }
}
