//! A [`Backend`] that runs a topology as its own shadow: under the shadow's names, over a
//! bounded range of its inputs, and knowing when that range is done.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::names::ShadowNames;
use crate::lock_policy::MutexRecover;
use crate::record::{InputRecord, OutputRecord, TopicPartition};
use crate::runtime::{Backend, BackendError, BackendEvent, CommittedOffset, RestoreChunk};
use crate::topology::{InternalTopic, Topology};

/// Where a shadow run is: the input range it processes and how far it has committed.
/// Partitions are named as the topology names them (live names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShadowProgress {
    /// Per input partition with records, the end offset when the run started: records at
    /// or past it are not processed.
    pub input_ends: BTreeMap<TopicPartition, i64>,
    /// The shadow group's committed offsets so far.
    pub committed: BTreeMap<TopicPartition, i64>,
    /// Per partition of a topic the shadow both writes and reads (repartition topics), the
    /// offset after the last record written.
    pub written_ends: BTreeMap<TopicPartition, i64>,
    /// Input records read past the end and not processed.
    pub skipped_records: u64,
    /// Whether every input record below its end, and every record written to a topic the
    /// shadow reads back, is processed and committed.
    pub done: bool,
}

impl ShadowProgress {
    fn is_done(&self) -> bool {
        let covered = |ends: &BTreeMap<TopicPartition, i64>| {
            ends.iter().all(|(partition, end)| {
                self.committed
                    .get(partition)
                    .is_some_and(|committed| committed >= end)
            })
        };
        covered(&self.input_ends) && covered(&self.written_ends)
    }
}

/// Wraps the backend of a shadow run. The runner and the topology see the live names; the
/// cluster sees the shadow's ([`ShadowNames`]): its group, its internal topics, its sink
/// topics. Input records at or past each partition's end at the start are dropped, so the
/// run ends; [`ShadowBackend::done`] turns true once everything before those ends is
/// processed and committed, repartitioned records included (known from what
/// [`Backend::flush`] reports written, as its contract says it does).
pub struct ShadowBackend<B: Backend> {
    inner: B,
    names: Arc<ShadowNames>,
    /// Topics (live names) the shadow writes and reads back.
    read_back: BTreeSet<String>,
    /// [`ShadowProgress::input_ends`], read for every record without the lock.
    input_ends: BTreeMap<TopicPartition, i64>,
    /// Per bounded input partition, the next offset handed to the runner.
    next_offsets: BTreeMap<TopicPartition, i64>,
    progress: Arc<Mutex<ShadowProgress>>,
    done: watch::Sender<bool>,
}

/// Most bytes read to find where an input partition starts and ends: one record.
const PROBE_BYTES: usize = 1;

impl<B: Backend> ShadowBackend<B> {
    /// Finds where each input partition of `topology` ends now (through `inner`, with the
    /// live names of the inputs), and wraps `inner` to run `topology` under `names`.
    ///
    /// # Errors
    /// When the cluster does not answer, or an input topic does not exist.
    pub async fn start(
        mut inner: B,
        topology: &Topology,
        names: Arc<ShadowNames>,
    ) -> Result<ShadowBackend<B>, BackendError> {
        let mut input_ends = BTreeMap::new();
        for topic in topology.external_source_topics() {
            if names.is_renamed(&topic) {
                // Written by the shadow itself: bounded by what it writes, not by an end.
                continue;
            }
            let Some(partitions) = inner.partition_count(&topic).await? else {
                return Err(BackendError::new(
                    format!("input range of {topic}"),
                    "the topic does not exist",
                ));
            };
            for partition in 0..partitions {
                let partition = TopicPartition::new(topic.clone(), partition);
                let probe = inner.read_chunk(&partition, 0, None, PROBE_BYTES).await?;
                let start = probe.records.first().map_or(probe.end_offset, |r| r.offset);
                if start < probe.end_offset {
                    // A read that ends where it starts: ends the probe's session, so the
                    // reader stops fetching this partition.
                    let end = probe.end_offset;
                    inner
                        .read_chunk(&partition, end, Some(end), PROBE_BYTES)
                        .await?;
                    input_ends.insert(partition, end);
                }
            }
        }
        let read_back = topology
            .source_topics()
            .into_iter()
            .filter(|topic| names.is_renamed(topic))
            .collect();
        let mut progress = ShadowProgress {
            input_ends: input_ends.clone(),
            ..ShadowProgress::default()
        };
        progress.done = progress.is_done();
        let (done, _) = watch::channel(progress.done);
        Ok(ShadowBackend {
            inner,
            names,
            read_back,
            input_ends,
            next_offsets: BTreeMap::new(),
            progress: Arc::new(Mutex::new(progress)),
            done,
        })
    }

    /// The run's progress, shared: readable while it runs.
    pub fn progress(&self) -> Arc<Mutex<ShadowProgress>> {
        self.progress.clone()
    }

    /// Turns true once the bounded run is done: stop the runner then.
    pub fn done(&self) -> watch::Receiver<bool> {
        self.done.subscribe()
    }

    fn to_shadow(&self, partition: &TopicPartition) -> TopicPartition {
        TopicPartition::new(self.names.to_shadow(&partition.topic), partition.partition)
    }

    fn to_live(&self, partition: &TopicPartition) -> TopicPartition {
        TopicPartition::new(self.names.to_live(&partition.topic), partition.partition)
    }

    fn input_end(&self, partition: &TopicPartition) -> Option<i64> {
        self.input_ends.get(partition).copied()
    }

    /// Whether every record of this bounded input partition below its end was handed out.
    fn input_finished(&self, partition: &TopicPartition) -> bool {
        let Some(end) = self.input_end(partition) else {
            return false;
        };
        let handed_out = self.next_offsets.get(partition).copied();
        // The consumer's position counts records poll never returns (transaction markers).
        let position = self.inner.position(&self.to_shadow(partition));
        handed_out.max(position).is_some_and(|next| next >= end)
    }

    /// Live names, and drops input records at or past their partition's end.
    fn records_in_range(&mut self, records: Vec<InputRecord>) -> Vec<InputRecord> {
        let mut kept = Vec::with_capacity(records.len());
        let mut skipped = 0u64;
        for mut record in records {
            record.topic = self.names.to_live(&record.topic).to_owned();
            let partition = TopicPartition::new(record.topic.clone(), record.partition);
            if let Some(end) = self.input_end(&partition) {
                if record.offset >= end {
                    skipped += 1;
                    continue;
                }
                self.next_offsets.insert(partition, record.offset + 1);
            }
            kept.push(record);
        }
        if skipped > 0 {
            self.progress.lock_or_recover().skipped_records += skipped;
        }
        kept
    }

    fn shadow_offsets(
        &self,
        offsets: &[(TopicPartition, i64, String)],
    ) -> Vec<(TopicPartition, i64, String)> {
        offsets
            .iter()
            .map(|(partition, offset, metadata)| {
                (self.to_shadow(partition), *offset, metadata.clone())
            })
            .collect()
    }

    fn note_committed(&self, offsets: &[(TopicPartition, i64, String)]) {
        let mut progress = self.progress.lock_or_recover();
        for (partition, offset, _) in offsets {
            let known = progress
                .committed
                .entry(partition.clone())
                .or_insert(*offset);
            *known = (*known).max(*offset);
        }
        if !progress.done && progress.is_done() {
            progress.done = true;
            tracing::info!(
                shadow = self.names.shadow_application_id(),
                "shadow run processed its input range"
            );
            self.done.send_replace(true);
        }
    }
}

impl<B: Backend> Backend for ShadowBackend<B> {
    async fn partition_count(&mut self, topic: &str) -> Result<Option<i32>, BackendError> {
        let shadow = self.names.to_shadow(topic).to_owned();
        self.inner.partition_count(&shadow).await
    }

    async fn create_topic(&mut self, topic: &InternalTopic) -> Result<(), BackendError> {
        let mut shadow = topic.clone();
        shadow.name = self.names.to_shadow(&topic.name).to_owned();
        self.inner.create_topic(&shadow).await
    }

    async fn subscribe(&mut self, _group_id: &str, topics: &[String]) -> Result<(), BackendError> {
        let topics: Vec<String> = topics
            .iter()
            .map(|topic| self.names.to_shadow(topic).to_owned())
            .collect();
        let group = self.names.shadow_application_id().to_owned();
        self.inner.subscribe(&group, &topics).await
    }

    async fn poll(&mut self, timeout: Duration) -> Result<Vec<BackendEvent>, BackendError> {
        let events = self.inner.poll(timeout).await?;
        let mut renamed = Vec::with_capacity(events.len());
        for event in events {
            renamed.push(match event {
                BackendEvent::Assigned(partitions) => {
                    BackendEvent::Assigned(partitions.iter().map(|p| self.to_live(p)).collect())
                }
                BackendEvent::Revoked(partitions) => {
                    BackendEvent::Revoked(partitions.iter().map(|p| self.to_live(p)).collect())
                }
                BackendEvent::Records(records) => {
                    BackendEvent::Records(self.records_in_range(records))
                }
            });
        }
        Ok(renamed)
    }

    async fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Option<CommittedOffset>)>, BackendError> {
        let shadow: Vec<TopicPartition> = partitions.iter().map(|p| self.to_shadow(p)).collect();
        let committed = self.inner.committed(&shadow).await?;
        Ok(committed
            .into_iter()
            .map(|(partition, offset)| (self.to_live(&partition), offset))
            .collect())
    }

    async fn read_chunk(
        &mut self,
        partition: &TopicPartition,
        from_offset: i64,
        end_offset: Option<i64>,
        max_bytes: usize,
    ) -> Result<RestoreChunk, BackendError> {
        let shadow = self.to_shadow(partition);
        let mut chunk = self
            .inner
            .read_chunk(&shadow, from_offset, end_offset, max_bytes)
            .await?;
        for record in &mut chunk.records {
            record.topic = partition.topic.clone();
        }
        Ok(chunk)
    }

    async fn seek(&mut self, offsets: &[(TopicPartition, i64)]) -> Result<(), BackendError> {
        let shadow: Vec<(TopicPartition, i64)> = offsets
            .iter()
            .map(|(partition, offset)| (self.to_shadow(partition), *offset))
            .collect();
        self.inner.seek(&shadow).await
    }

    async fn send(&mut self, partition: i32, mut record: OutputRecord) -> Result<(), BackendError> {
        record.topic = self.names.to_shadow(&record.topic).to_owned();
        self.inner.send(partition, record).await
    }

    async fn flush(&mut self) -> Result<BTreeMap<TopicPartition, i64>, BackendError> {
        let flushed = self.inner.flush().await?;
        let flushed: BTreeMap<TopicPartition, i64> = flushed
            .into_iter()
            .map(|(partition, end)| (self.to_live(&partition), end))
            .collect();
        let mut progress = self.progress.lock_or_recover();
        for (partition, end) in &flushed {
            if self.read_back.contains(&partition.topic) {
                let known = progress
                    .written_ends
                    .entry(partition.clone())
                    .or_insert(*end);
                *known = (*known).max(*end);
            }
        }
        Ok(flushed)
    }

    async fn commit(
        &mut self,
        offsets: &[(TopicPartition, i64, String)],
    ) -> Result<(), BackendError> {
        self.inner.commit(&self.shadow_offsets(offsets)).await?;
        self.note_committed(offsets);
        Ok(())
    }

    async fn init_transactions(&mut self, transactional_id: &str) -> Result<(), BackendError> {
        let shadow = self.names.transactional_id(transactional_id);
        self.inner.init_transactions(&shadow).await
    }

    async fn commit_transaction(
        &mut self,
        offsets: &[(TopicPartition, i64, String)],
    ) -> Result<(), BackendError> {
        let shadow = self.shadow_offsets(offsets);
        self.inner.commit_transaction(&shadow).await?;
        self.note_committed(offsets);
        Ok(())
    }

    async fn abort_transaction(&mut self) -> Result<(), BackendError> {
        self.inner.abort_transaction().await
    }

    async fn rewind(&mut self, partitions: &[TopicPartition]) -> Result<(), BackendError> {
        let shadow: Vec<TopicPartition> = partitions.iter().map(|p| self.to_shadow(p)).collect();
        for partition in partitions {
            // Read again from the commit; handed out again from there.
            self.next_offsets.remove(partition);
        }
        self.inner.rewind(&shadow).await
    }

    fn is_caught_up(&self, partition: &TopicPartition) -> bool {
        self.input_finished(partition) || self.inner.is_caught_up(&self.to_shadow(partition))
    }

    fn position(&self, partition: &TopicPartition) -> Option<i64> {
        let position = self.inner.position(&self.to_shadow(partition))?;
        // Records past the end were dropped, not processed: never commit past the end.
        Some(
            self.input_end(partition)
                .map_or(position, |end| position.min(end)),
        )
    }

    fn set_paused(&mut self, partitions: &[TopicPartition]) {
        let mut paused: BTreeSet<TopicPartition> =
            partitions.iter().map(|p| self.to_shadow(p)).collect();
        // Finished inputs stay paused: nothing more is read from them.
        let finished: Vec<TopicPartition> = self
            .next_offsets
            .keys()
            .filter(|partition| self.input_finished(partition))
            .map(|partition| self.to_shadow(partition))
            .collect();
        paused.extend(finished);
        let paused: Vec<TopicPartition> = paused.into_iter().collect();
        self.inner.set_paused(&paused);
    }

    async fn close(&mut self) -> Result<(), BackendError> {
        self.inner.close().await
    }
}
