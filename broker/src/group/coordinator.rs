//! The group coordinator: every group's state machine, the committed offsets, and their
//! persistence in `__consumer_offsets`.
//!
//! Requests arrive from the handlers; time arrives from [`GroupCoordinator::tick`], which
//! a background task calls on a short period. Every change worth keeping (an offset
//! commit, a group that became stable or empty, a deletion) is appended to the offsets
//! log before the request is answered, and start-up replays that log, so a broker
//! restart keeps every group and every committed offset.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use riffle_protocol::ErrorCode;
use riffle_protocol::record::{
    Compression, ControlRecordType, EndTxnMarker, RecordBatchBuilder, RecordBatchView,
};
use riffle_storage::{MutexRecover, StorageError};
use tokio::sync::oneshot;
use tracing::warn;

use super::consumer_protocol;
use super::records::{self, CommittedOffset, GroupSnapshot, OffsetsRecord, SavedMember};
use super::state::{Group, GroupLimits, GroupState, JoinRequest, JoinResult, SyncResult};
use crate::partition::{Partition, Scan};
use crate::producer_state::NO_SEQUENCE;
use crate::transaction::TransactionCoordinator;

/// The internal topic holding offsets and groups.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Longest metadata string a commit may carry (Kafka: offset.metadata.max.bytes).
pub const OFFSET_METADATA_MAX_BYTES: usize = 4096;

/// A group's committed offsets by topic and partition.
pub type GroupOffsets = BTreeMap<(String, i32), CommittedOffset>;

/// An offset committed in a transaction that has not ended: (group, topic, partition, offset).
type PendingOffset = (String, String, i32, CommittedOffset);

/// Who commits offsets in a transaction (TxnOffsetCommit), and as which group member.
#[derive(Debug, Clone, Copy)]
pub struct TxnCommitter<'a> {
    /// The producer's transactional id.
    pub transactional_id: &'a str,
    /// Its producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The group member id, empty for producers outside a group's generation.
    pub member_id: &'a str,
    /// The member's static instance id.
    pub group_instance_id: Option<&'a str>,
    /// The member's generation, -1 when not known (TxnOffsetCommit before v3).
    pub generation_id: i32,
}

/// One group as DescribeGroups and ListGroups show it.
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// State name.
    pub state: GroupState,
    /// Protocol type, empty for groups that only commit offsets.
    pub protocol_type: String,
    /// Chosen protocol.
    pub protocol_name: String,
    /// Members: id, instance id, client id, host, metadata, assignment.
    pub members: Vec<SavedMember>,
}

/// The topics a group's members consume, for OffsetDelete (see
/// `GroupCoordinator::delete_offsets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumedTopics {
    /// The group has no members: none of its offsets are in use.
    NoMembers,
    /// A consumer group whose members subscribe to these topics.
    Subscribed(BTreeSet<String>),
    /// A consumer group with a subscription we cannot read: treat every topic as in use.
    Unreadable,
    /// Members of another protocol type (Connect, say), whose metadata says nothing we can
    /// read about topics: Kafka refuses the whole request with NON_EMPTY_GROUP.
    OtherProtocol,
}

/// Which topics a group's members consume; `None` is a group that does not exist.
fn consumed_topics(group: Option<&Group>) -> ConsumedTopics {
    let Some(group) = group.filter(|group| !group.members.is_empty()) else {
        return ConsumedTopics::NoMembers;
    };
    if group.protocol_type.as_deref() != Some(consumer_protocol::PROTOCOL_TYPE) {
        return ConsumedTopics::OtherProtocol;
    }
    // Every protocol a member offers carries its subscription; a member may still be
    // joining, before a protocol is chosen, so all of them count.
    let mut topics = BTreeSet::new();
    for (_, metadata) in group.members.values().flat_map(|member| &member.protocols) {
        match consumer_protocol::decode_subscription_topics(metadata) {
            Some(subscribed) => topics.extend(subscribed),
            None => return ConsumedTopics::Unreadable,
        }
    }
    ConsumedTopics::Subscribed(topics)
}

impl ConsumedTopics {
    /// Whether a member may be reading `topic`.
    pub fn includes(&self, topic: &str) -> bool {
        match self {
            ConsumedTopics::NoMembers => false,
            ConsumedTopics::Subscribed(topics) => topics.contains(topic),
            ConsumedTopics::Unreadable | ConsumedTopics::OtherProtocol => true,
        }
    }
}

/// All groups of this broker.
pub struct GroupCoordinator {
    limits: GroupLimits,
    /// Lock order: `groups`, then `offsets`, then `pending`, then the log's producer lock.
    /// Held for state changes and the page-cache append of their records; never across an
    /// await.
    groups: Mutex<HashMap<String, Group>>,
    offsets: Mutex<HashMap<String, GroupOffsets>>,
    /// Offsets committed in open transactions, by producer id: applied to `offsets` when the
    /// transaction's COMMIT marker is written, dropped at its ABORT. Held while their batch
    /// or marker is appended, so memory follows the log's order.
    pending: Mutex<HashMap<i64, Vec<PendingOffset>>>,
    log: Arc<Partition>,
}

impl GroupCoordinator {
    /// Opens the coordinator over the offsets partition, replaying what it holds.
    pub fn open(
        log: Arc<Partition>,
        limits: GroupLimits,
    ) -> Result<GroupCoordinator, StorageError> {
        let coordinator = GroupCoordinator {
            limits,
            groups: Mutex::new(HashMap::new()),
            offsets: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            log,
        };
        coordinator.replay(Instant::now())?;
        Ok(coordinator)
    }

    fn replay(&self, now: Instant) -> Result<(), StorageError> {
        let (mut groups, mut offsets) = (self.lock_groups(), self.lock_offsets());
        let mut pending = self.lock_pending();
        self.log.scan_batches(Scan::whole(&self.log), |batch| {
            replay_batch(now, batch, &mut groups, &mut offsets, &mut pending);
            Ok(())
        })?;
        tracing::info!(
            groups = groups.len(),
            open_transactions = pending.len(),
            "consumer groups loaded"
        );
        Ok(())
    }

    fn lock_groups(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock_or_recover()
    }

    fn lock_offsets(&self) -> MutexGuard<'_, HashMap<String, GroupOffsets>> {
        self.offsets.lock_or_recover()
    }

    fn lock_pending(&self) -> MutexGuard<'_, HashMap<i64, Vec<PendingOffset>>> {
        self.pending.lock_or_recover()
    }

    /// The offsets partition.
    pub fn log(&self) -> &Arc<Partition> {
        &self.log
    }

    /// Handles a JoinGroup; await the receiver for the answer.
    pub fn join(
        &self,
        now: Instant,
        group_id: &str,
        request: JoinRequest,
    ) -> oneshot::Receiver<JoinResult> {
        let (sender, receiver) = oneshot::channel();
        let mut groups = self.lock_groups();
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id.to_string()));
        if group.state == GroupState::Dead {
            *group = Group::new(group_id.to_string());
        }
        group.join(now, request, &self.limits, sender);
        self.persist_if_changed(group);
        receiver
    }

    /// Handles a SyncGroup; await the receiver for the answer.
    pub fn sync(
        &self,
        now: Instant,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> oneshot::Receiver<SyncResult> {
        let (sender, receiver) = oneshot::channel();
        let mut groups = self.lock_groups();
        match groups.get_mut(group_id) {
            Some(group) => {
                group.sync(
                    now,
                    member_id,
                    group_instance_id,
                    generation_id,
                    assignments,
                    sender,
                );
                self.persist_if_changed(group);
            }
            None => {
                let _ = sender.send(SyncResult::error(ErrorCode::UnknownMemberId));
            }
        }
        receiver
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(
        &self,
        now: Instant,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> ErrorCode {
        let mut groups = self.lock_groups();
        match groups.get_mut(group_id) {
            Some(group) => group.heartbeat(now, member_id, group_instance_id, generation_id),
            None => ErrorCode::UnknownMemberId,
        }
    }

    /// Handles a LeaveGroup: one error per leaving member, or the group's error.
    pub fn leave(
        &self,
        now: Instant,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        let mut groups = self.lock_groups();
        let Some(group) = groups.get_mut(group_id) else {
            return Err(ErrorCode::UnknownMemberId);
        };
        let errors = members
            .iter()
            .map(|(member_id, instance_id)| {
                group.leave(now, member_id, instance_id.as_deref(), &self.limits)
            })
            .collect();
        self.persist_if_changed(group);
        Ok(errors)
    }

    /// Answers every request waiting on a rebalance, so shutdown need not wait for it.
    pub fn release_waiters(&self) {
        for group in self.lock_groups().values_mut() {
            group.release_waiters();
        }
    }

    /// Advances time for every group: expired sessions, rebalance deadlines.
    pub fn tick(&self, now: Instant) {
        let mut groups = self.lock_groups();
        for group in groups.values_mut() {
            group.tick(now, &self.limits);
            self.persist_if_changed(group);
        }
    }

    /// Writes a group's snapshot if it changed and is in a state worth keeping.
    fn persist_if_changed(&self, group: &mut Group) {
        if !group.take_dirty() || !matches!(group.state, GroupState::Stable | GroupState::Empty) {
            return;
        }
        let snapshot = snapshot(group);
        let record = (
            records::group_key(&group.group_id),
            Some(records::group_value(&snapshot)),
        );
        if let Err(error) = self.append(vec![record]) {
            warn!(group = %group.group_id, %error, "could not persist group");
        }
    }
}

impl GroupCoordinator {
    /// Checks that a commit may be made: a member of the current generation, or (for
    /// consumers using assign()) a generation of -1 on a group without members.
    fn check_commit(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ErrorCode> {
        let mut groups = self.lock_groups();
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id.to_string()));
        if generation_id < 0 && member_id.is_empty() {
            return if group.members.is_empty() {
                Ok(())
            } else {
                Err(ErrorCode::UnknownMemberId)
            };
        }
        group.check_member(member_id, group_instance_id)?;
        if generation_id != group.generation_id {
            return Err(ErrorCode::IllegalGeneration);
        }
        // Commits stay allowed while members rejoin (PreparingRebalance), as in Kafka, so
        // a consumer can commit in its revocation callback; only between the join and the
        // leader's assignment is the generation's ownership unsettled.
        match group.state {
            GroupState::CompletingRebalance => Err(ErrorCode::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Commits offsets. Returns one error per partition (in order) and the log offset to
    /// wait on for durability, if anything was written.
    pub fn commit_offsets(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        commits: Vec<(String, i32, CommittedOffset)>,
    ) -> (Vec<ErrorCode>, Option<i64>) {
        if let Err(error) = self.check_commit(group_id, member_id, group_instance_id, generation_id)
        {
            return (vec![error; commits.len()], None);
        }
        let (errors, accepted) = check_metadata_sizes(commits);
        if accepted.is_empty() {
            return (errors, None);
        }
        let records = accepted
            .iter()
            .map(|(topic, partition, committed)| {
                (
                    records::offset_key(group_id, topic, *partition),
                    Some(records::offset_value(committed)),
                )
            })
            .collect();
        let mut offsets = self.lock_offsets();
        match self.append(records) {
            Ok(last_offset) => {
                let group = offsets.entry(group_id.to_string()).or_default();
                for (topic, partition, committed) in accepted {
                    group.insert((topic, partition), committed);
                }
                (errors, Some(last_offset))
            }
            Err(error) => {
                warn!(group = group_id, %error, "could not persist offsets");
                (fail_accepted(errors, ErrorCode::KafkaStorageError), None)
            }
        }
    }

    /// Every group's committed offsets, copied out of the lock: for the metrics scrape.
    pub fn all_committed_offsets(&self) -> Vec<(String, GroupOffsets)> {
        self.lock_offsets()
            .iter()
            .map(|(group, offsets)| (group.clone(), offsets.clone()))
            .collect()
    }

    /// The committed offsets of a group (all of them if `partitions` is None).
    pub fn fetch_offsets(&self, group_id: &str) -> GroupOffsets {
        self.lock_offsets()
            .get(group_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Deletes the committed offsets of `partitions` whose topic no member consumes, and
    /// says which topics members consume (their offsets stay). Both under the group lock, so
    /// no member subscribes in between. Returns those topics and the offset of the last
    /// tombstone written, to wait for it to be durable.
    ///
    /// # Errors
    /// GROUP_ID_NOT_FOUND for a group with neither members nor offsets;
    /// KAFKA_STORAGE_ERROR if the tombstones could not be appended.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<(ConsumedTopics, Option<i64>), ErrorCode> {
        let groups = self.lock_groups();
        let consumed = consumed_topics(groups.get(group_id));
        if consumed == ConsumedTopics::OtherProtocol {
            return Ok((consumed, None));
        }
        let mut offsets = self.lock_offsets();
        let Some(group) = offsets.get_mut(group_id) else {
            return match consumed {
                ConsumedTopics::NoMembers => Err(ErrorCode::GroupIdNotFound),
                // Members that have not committed yet: nothing to delete.
                _ => Ok((consumed, None)),
            };
        };
        let deletable: Vec<&(String, i32)> = partitions
            .iter()
            .filter(|(topic, _)| !consumed.includes(topic))
            .collect();
        if deletable.is_empty() {
            return Ok((consumed, None));
        }
        let records = deletable
            .iter()
            .map(|(topic, partition)| (records::offset_key(group_id, topic, *partition), None))
            .collect();
        let last_offset = self
            .append(records)
            .map_err(|_| ErrorCode::KafkaStorageError)?;
        for key in deletable {
            group.remove(key);
        }
        Ok((consumed, Some(last_offset)))
    }

    /// Forgets the expired offsets of groups without members, writing tombstones: those
    /// past their own expire timestamp, and the others committed more than `retention_ms`
    /// before `now_ms` (Kafka's offsets.retention.minutes). Returns how many went.
    pub fn expire_offsets(&self, now_ms: i64, retention_ms: i64) -> usize {
        let groups = self.lock_groups();
        let mut offsets = self.lock_offsets();
        let mut expired: Vec<(String, String, i32)> = Vec::new();
        for (group_id, committed) in offsets.iter() {
            if groups
                .get(group_id)
                .is_some_and(|group| !group.members.is_empty())
            {
                continue;
            }
            let stale = committed
                .iter()
                .filter(|(_, offset)| is_expired(offset, now_ms, retention_ms));
            expired.extend(
                stale.map(|((topic, partition), _)| (group_id.clone(), topic.clone(), *partition)),
            );
        }
        if expired.is_empty() {
            return 0;
        }
        let records = expired
            .iter()
            .map(|(group_id, topic, partition)| {
                (records::offset_key(group_id, topic, *partition), None)
            })
            .collect();
        if let Err(error) = self.append(records) {
            warn!(%error, "could not expire offsets");
            return 0;
        }
        for (group_id, topic, partition) in &expired {
            if let Some(committed) = offsets.get_mut(group_id) {
                committed.remove(&(topic.clone(), *partition));
            }
        }
        offsets.retain(|_, committed| !committed.is_empty());
        expired.len()
    }

    /// Every group, for ListGroups.
    pub fn list_groups(&self) -> Vec<GroupDescription> {
        let groups = self.lock_groups();
        let offsets = self.lock_offsets();
        let mut names: Vec<&String> = groups.keys().chain(offsets.keys()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter_map(|name| describe(groups.get(name), name, offsets.contains_key(name)))
            .collect()
    }

    /// One group, for DescribeGroups; None if it does not exist.
    pub fn describe_group(&self, group_id: &str) -> Option<GroupDescription> {
        let groups = self.lock_groups();
        let has_offsets = self.lock_offsets().contains_key(group_id);
        describe(groups.get(group_id), group_id, has_offsets)
    }

    /// Deletes an empty group and its offsets.
    pub fn delete_group(&self, group_id: &str) -> Result<Option<i64>, ErrorCode> {
        let mut groups = self.lock_groups();
        let mut offsets = self.lock_offsets();
        let exists = groups
            .get(group_id)
            .is_some_and(|group| group.state != GroupState::Dead)
            || offsets.contains_key(group_id);
        if !exists {
            return Err(ErrorCode::GroupIdNotFound);
        }
        if groups
            .get(group_id)
            .is_some_and(|group| !group.members.is_empty())
        {
            return Err(ErrorCode::NonEmptyGroup);
        }
        let mut records: Vec<(Vec<u8>, Option<Vec<u8>>)> = offsets
            .get(group_id)
            .map(|committed| {
                committed
                    .keys()
                    .map(|(topic, partition)| {
                        (records::offset_key(group_id, topic, *partition), None)
                    })
                    .collect()
            })
            .unwrap_or_default();
        records.push((records::group_key(group_id), None));
        let last_offset = self
            .append(records)
            .map_err(|_| ErrorCode::KafkaStorageError)?;
        offsets.remove(group_id);
        if let Some(mut group) = groups.remove(group_id) {
            group.shut_down();
        }
        Ok(Some(last_offset))
    }

    /// Waits until the offsets log is durable through `last_offset`.
    pub fn sync_through(&self, last_offset: i64) -> Result<(), StorageError> {
        self.log.sync_through_blocking(last_offset)
    }

    /// Appends records (key, value-or-tombstone) as one batch; returns its last offset.
    fn append(&self, records: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<i64, String> {
        let now_ms = crate::cluster::now_ms();
        let mut builder = RecordBatchBuilder::new(Compression::None);
        for (key, value) in &records {
            builder.append(now_ms, Some(key), value.as_deref(), &[]);
        }
        let batch = builder.build().map_err(|error| error.to_string())?;
        let appended = self
            .log
            .append_records(&batch, now_ms)
            .map_err(|error| error.to_string())?;
        Ok(appended.last_offset)
    }
}

impl GroupCoordinator {
    /// TxnOffsetCommit: appends the offsets as part of the producer's transaction. They
    /// stay pending, invisible to OffsetFetch, until the transaction's COMMIT marker
    /// ([`Self::write_txn_marker`]). Returns one error per partition and the offset to wait
    /// on for durability, if anything was written.
    ///
    /// The group checks are Kafka's for transactional commits: a member id must be a member
    /// (a static one not fenced), and a generation, if given, the current one; commits are
    /// allowed during a rebalance. The producer check runs under the offsets partition's
    /// producer lock, so the batch cannot land after the transaction's marker.
    pub fn commit_txn_offsets(
        &self,
        group_id: &str,
        committer: TxnCommitter<'_>,
        transactions: &TransactionCoordinator,
        commits: Vec<(String, i32, CommittedOffset)>,
    ) -> (Vec<ErrorCode>, Option<i64>) {
        if let Err(error) = self.check_txn_commit(group_id, &committer) {
            return (vec![error; commits.len()], None);
        }
        let (errors, accepted) = check_metadata_sizes(commits);
        if accepted.is_empty() {
            return (errors, None);
        }
        let accepted = accepted
            .into_iter()
            .map(|(topic, partition, committed)| {
                (group_id.to_string(), topic, partition, committed)
            })
            .collect();
        match self.append_txn_offsets(&committer, transactions, accepted) {
            Ok(last_offset) => (errors, Some(last_offset)),
            Err(code) => (fail_accepted(errors, code), None),
        }
    }

    fn check_txn_commit(
        &self,
        group_id: &str,
        committer: &TxnCommitter<'_>,
    ) -> Result<(), ErrorCode> {
        let mut groups = self.lock_groups();
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id.to_string()));
        if !committer.member_id.is_empty() {
            group.check_member(committer.member_id, committer.group_instance_id)?;
        }
        if committer.generation_id >= 0 && committer.generation_id != group.generation_id {
            return Err(ErrorCode::IllegalGeneration);
        }
        Ok(())
    }

    /// Appends the transactional batch of offsets and records them as pending.
    fn append_txn_offsets(
        &self,
        committer: &TxnCommitter<'_>,
        transactions: &TransactionCoordinator,
        accepted: Vec<PendingOffset>,
    ) -> Result<i64, ErrorCode> {
        let now_ms = crate::cluster::now_ms();
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder
            .producer(committer.producer_id, committer.producer_epoch, NO_SEQUENCE)
            .transactional();
        for (group_id, topic, partition, committed) in &accepted {
            let key = records::offset_key(group_id, topic, *partition);
            builder.append(
                now_ms,
                Some(&key),
                Some(&records::offset_value(committed)),
                &[],
            );
        }
        let batch = builder
            .build()
            .and_then(RecordBatchView::parse)
            .map_err(|_| ErrorCode::InvalidCommitOffsetSize)?;
        let mut pending = self.lock_pending();
        let verify = || {
            transactions.verify_offsets_commit(
                committer.transactional_id,
                committer.producer_id,
                committer.producer_epoch,
            )
        };
        let appended = self
            .log
            .append_coordinator_batch(&batch, now_ms, &verify)
            .map_err(|error| match error.code {
                ErrorCode::InvalidProducerEpoch => ErrorCode::ProducerFenced,
                code => code,
            })?;
        pending
            .entry(committer.producer_id)
            .or_default()
            .extend(accepted);
        Ok(appended.last_offset)
    }

    /// Appends a transaction marker to the offsets partition for `producer_id` and applies
    /// (COMMIT) or drops (ABORT) the offsets its transaction committed. Returns the
    /// marker's offset, to wait on for durability.
    ///
    /// # Errors
    /// Storage errors; the pending offsets stay pending and the coordinator retries.
    pub fn write_txn_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: EndTxnMarker,
    ) -> Result<i64, StorageError> {
        let mut offsets = self.lock_offsets();
        let mut pending = self.lock_pending();
        let now_ms = crate::cluster::now_ms();
        let marker_offset =
            self.log
                .append_end_txn_marker(producer_id, producer_epoch, marker, now_ms)?;
        end_pending(producer_id, marker.control_type, &mut offsets, &mut pending);
        Ok(marker_offset)
    }

    /// Whether a transaction that has not ended committed an offset for this partition:
    /// OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT then.
    pub fn has_pending_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.lock_pending()
            .values()
            .flatten()
            .any(|(group, pending_topic, index, _)| {
                group == group_id && pending_topic == topic && *index == partition
            })
    }
}

/// Applies or drops the offsets `producer_id`'s transaction committed, at its marker.
fn end_pending(
    producer_id: i64,
    control_type: ControlRecordType,
    offsets: &mut HashMap<String, GroupOffsets>,
    pending: &mut HashMap<i64, Vec<PendingOffset>>,
) {
    let Some(ended) = pending.remove(&producer_id) else {
        return;
    };
    if control_type == ControlRecordType::Commit {
        for (group_id, topic, partition, committed) in ended {
            offsets
                .entry(group_id)
                .or_default()
                .insert((topic, partition), committed);
        }
    }
}

/// Replays one batch of the offsets log: a marker ends its producer's transaction, a
/// transactional batch's offsets wait for it, anything else applies at once.
fn replay_batch(
    now: Instant,
    batch: &RecordBatchView,
    groups: &mut HashMap<String, Group>,
    offsets: &mut HashMap<String, GroupOffsets>,
    pending: &mut HashMap<i64, Vec<PendingOffset>>,
) {
    if batch.is_control() {
        if let Ok(Some(marker)) = batch.end_txn_marker() {
            end_pending(batch.producer_id(), marker.control_type, offsets, pending);
        }
        return;
    }
    let Ok(records) = batch.records() else {
        return;
    };
    for record in records {
        let key = record.key.unwrap_or_default();
        let decoded = match records::decode(&key, record.value.as_deref()) {
            Ok(decoded) => decoded,
            Err(error) => {
                warn!(offset = record.offset, %error, "skipping unreadable offsets record");
                continue;
            }
        };
        match decoded {
            OffsetsRecord::Offset {
                group_id,
                topic,
                partition,
                value: Some(committed),
            } if batch.is_transactional() => pending
                .entry(batch.producer_id())
                .or_default()
                .push((group_id, topic, partition, committed)),
            decoded => apply(now, decoded, groups, offsets),
        }
    }
}

/// One error per commit (OFFSET_METADATA_TOO_LARGE, or none), and the commits that pass.
fn check_metadata_sizes(
    commits: Vec<(String, i32, CommittedOffset)>,
) -> (Vec<ErrorCode>, Vec<(String, i32, CommittedOffset)>) {
    let mut errors = Vec::with_capacity(commits.len());
    let mut accepted = Vec::new();
    for (topic, partition, committed) in commits {
        if committed.metadata.len() > OFFSET_METADATA_MAX_BYTES {
            errors.push(ErrorCode::OffsetMetadataTooLarge);
        } else {
            errors.push(ErrorCode::None);
            accepted.push((topic, partition, committed));
        }
    }
    (errors, accepted)
}

/// The errors of commits that passed their checks but could not be written: `code`.
fn fail_accepted(errors: Vec<ErrorCode>, code: ErrorCode) -> Vec<ErrorCode> {
    errors
        .into_iter()
        .map(|error| {
            if error == ErrorCode::None {
                code
            } else {
                error
            }
        })
        .collect()
}

/// Whether a committed offset of a group without members has expired at `now_ms`.
fn is_expired(offset: &CommittedOffset, now_ms: i64, retention_ms: i64) -> bool {
    match offset.expire_timestamp_ms {
        Some(expire_timestamp_ms) => now_ms >= expire_timestamp_ms,
        None => offset.commit_timestamp_ms < now_ms.saturating_sub(retention_ms),
    }
}

fn apply(
    now: Instant,
    record: OffsetsRecord,
    groups: &mut HashMap<String, Group>,
    offsets: &mut HashMap<String, GroupOffsets>,
) {
    match record {
        OffsetsRecord::Offset {
            group_id,
            topic,
            partition,
            value: Some(committed),
        } => {
            offsets
                .entry(group_id)
                .or_default()
                .insert((topic, partition), committed);
        }
        OffsetsRecord::Offset {
            group_id,
            topic,
            partition,
            value: None,
        } => {
            if let Some(group) = offsets.get_mut(&group_id) {
                group.remove(&(topic, partition));
                if group.is_empty() {
                    offsets.remove(&group_id);
                }
            }
        }
        OffsetsRecord::Group {
            group_id,
            value: Some(snapshot),
        } => {
            let group = groups
                .entry(group_id.clone())
                .or_insert_with(|| Group::new(group_id));
            group.restore(now, snapshot);
        }
        OffsetsRecord::Group {
            group_id,
            value: None,
        } => {
            groups.remove(&group_id);
            offsets.remove(&group_id);
        }
    }
}

fn snapshot(group: &Group) -> GroupSnapshot {
    let protocol = group.protocol_name.clone().unwrap_or_default();
    GroupSnapshot {
        generation_id: group.generation_id,
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol_name.clone(),
        leader: group.leader.clone(),
        members: group
            .members
            .values()
            .map(|member| saved_member(member, &protocol))
            .collect(),
    }
}

fn saved_member(member: &super::member::Member, protocol: &str) -> SavedMember {
    SavedMember {
        member_id: member.member_id.clone(),
        group_instance_id: member.group_instance_id.clone(),
        client_id: member.client_id.clone(),
        client_host: member.client_host.clone(),
        session_timeout_ms: u64::try_from(member.session_timeout.as_millis()).unwrap_or(u64::MAX),
        rebalance_timeout_ms: u64::try_from(member.rebalance_timeout.as_millis())
            .unwrap_or(u64::MAX),
        metadata: member
            .metadata_for(protocol)
            .map(|metadata| metadata.to_vec())
            .unwrap_or_default(),
        assignment: member.assignment.to_vec(),
    }
}

fn describe(group: Option<&Group>, group_id: &str, has_offsets: bool) -> Option<GroupDescription> {
    match group {
        Some(group) if group.state != GroupState::Dead => {
            let protocol = group.protocol_name.clone().unwrap_or_default();
            Some(GroupDescription {
                group_id: group_id.to_string(),
                state: group.state,
                protocol_type: group.protocol_type.clone().unwrap_or_default(),
                protocol_name: protocol.clone(),
                members: group
                    .members
                    .values()
                    .map(|member| saved_member(member, &protocol))
                    .collect(),
            })
        }
        // A group that only ever committed offsets (assign() consumers) is Empty.
        _ if has_offsets => Some(GroupDescription {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            protocol_type: String::new(),
            protocol_name: String::new(),
            members: Vec::new(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_cluster;

    fn committed(offset: i64, commit_timestamp_ms: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: "m".into(),
            commit_timestamp_ms,
            expire_timestamp_ms: None,
        }
    }

    #[test]
    fn offsets_survive_a_restart_and_expire_only_for_groups_without_members() {
        // Commits are replayed from __consumer_offsets; retention removes old ones and
        // that removal is itself persisted.
        let (dir, cluster) = test_cluster();
        cluster
            .create_topic(
                "t",
                2,
                Default::default(),
                crate::cluster::Validation::Apply,
            )
            .expect("create");
        let commits = vec![
            ("t".to_string(), 0, committed(5, 1_000)),
            ("t".to_string(), 1, committed(9, 50_000)),
        ];
        let (errors, _) = cluster.groups().commit_offsets("g", "", None, -1, commits);
        assert_eq!(errors, vec![ErrorCode::None, ErrorCode::None]);
        drop(cluster);

        let cluster = crate::testing::open_test_cluster(dir.path());
        let offsets = cluster.groups().fetch_offsets("g");
        assert_eq!(
            offsets
                .get(&("t".to_string(), 0))
                .map(|offset| (offset.offset, offset.metadata.as_str())),
            Some((5, "m"))
        );
        assert_eq!(cluster.groups().expire_offsets(20_000, 10_000), 1);
        drop(cluster);

        let cluster = crate::testing::open_test_cluster(dir.path());
        let offsets = cluster.groups().fetch_offsets("g");
        assert_eq!(
            offsets.keys().cloned().collect::<Vec<_>>(),
            vec![("t".to_string(), 1)]
        );
        assert!(
            cluster
                .groups()
                .describe_group("g")
                .is_some_and(|group| group.state == GroupState::Empty)
        );
    }

    #[test]
    fn members_may_commit_while_the_group_prepares_a_rebalance() {
        // Kafka allows current-generation commits during PreparingRebalance, so consumers
        // can commit in their revocation callbacks.
        use std::time::Duration;

        use crate::group::JoinRequest;

        let (_dir, cluster) = test_cluster();
        cluster
            .create_topic(
                "t",
                1,
                Default::default(),
                crate::cluster::Validation::Apply,
            )
            .expect("create");
        let groups = cluster.groups();
        let join_request = || JoinRequest {
            member_id: String::new(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(10),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::new())],
            require_known_member_id: false,
        };
        let start = Instant::now();
        let mut first = groups.join(start, "g", join_request());
        let now = start + Duration::from_secs(4);
        groups.tick(now);
        let joined = first.try_recv().expect("the initial delay has passed");
        let assignments = vec![(joined.member_id.clone(), Bytes::from_static(b"all"))];
        let mut synced = groups.sync(
            now,
            "g",
            &joined.member_id,
            None,
            joined.generation_id,
            assignments,
        );
        assert_eq!(
            synced.try_recv().expect("leader synced").error,
            ErrorCode::None
        );

        let _second = groups.join(now, "g", join_request());
        let commit = vec![("t".to_string(), 0, committed(3, 0))];
        let (errors, _) =
            groups.commit_offsets("g", &joined.member_id, None, joined.generation_id, commit);
        assert_eq!(errors, vec![ErrorCode::None]);
    }
}
