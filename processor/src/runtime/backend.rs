//! The small trait through which a runtime reaches a cluster.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use crate::record::{InputRecord, OutputRecord, TopicPartition};
use crate::topology::InternalTopic;

/// A failure talking to the cluster, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct BackendError {
    /// What the runtime asked for (`"commit"`, `"create topic x"`).
    pub operation: String,
    /// What went wrong.
    pub message: String,
}

impl BackendError {
    /// A new error.
    pub fn new(operation: impl Into<String>, message: impl std::fmt::Display) -> BackendError {
        BackendError {
            operation: operation.into(),
            message: message.to_string(),
        }
    }
}

/// What happened since the last poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendEvent {
    /// The group gave this member these partitions (in addition to those it keeps).
    Assigned(Vec<TopicPartition>),
    /// The group took these partitions away.
    Revoked(Vec<TopicPartition>),
    /// Records read from assigned partitions, in offset order per partition.
    Records(Vec<InputRecord>),
}

/// A bounded piece of a partition, read to restore a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreChunk {
    /// Records from the offset asked for, in offset order.
    pub records: Vec<InputRecord>,
    /// Where the next read starts: past these records, and past offsets that hold none
    /// (compacted gaps, transaction markers, aborted records).
    pub next_offset: i64,
    /// The partition's readable end as this read saw it: the high watermark of the fetch
    /// (under read_committed, its last stable offset).
    pub end_offset: i64,
}

/// A group's committed position for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset to read.
    pub offset: i64,
    /// The metadata string committed with it.
    pub metadata: String,
}

/// The application's consumer group as the coordinator describes it: what standby
/// placement reads (see the `standby` module).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupMembers {
    /// This instance's member id.
    pub own_member_id: String,
    /// Every member with the partitions assigned to it.
    pub members: Vec<(String, Vec<TopicPartition>)>,
    /// Whether the group is stable: during a rebalance the assignments are incomplete,
    /// and standbys stay where they are.
    pub stable: bool,
}

/// What a runtime needs from a Kafka-compatible cluster. Each call is one request or a
/// short exchange; none of them may block the thread (they are async).
pub trait Backend: Send {
    /// The partition count of `topic`, or `None` if it does not exist.
    fn partition_count(
        &mut self,
        topic: &str,
    ) -> impl Future<Output = Result<Option<i32>, BackendError>> + Send;

    /// Creates `topic` with its partitions and configs; one that exists already is fine.
    fn create_topic(
        &mut self,
        topic: &InternalTopic,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Joins the consumer group `group_id`, subscribed to `topics`. Partitions arrive as
    /// [`BackendEvent::Assigned`] from [`Backend::poll`]; the assignment must give one
    /// member the same partition number of every topic with that many partitions (the
    /// range assignor does), since a task reads partition p of all its topics.
    fn subscribe(
        &mut self,
        group_id: &str,
        topics: &[String],
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Waits at most `timeout` for events, and returns what arrived (maybe nothing).
    fn poll(
        &mut self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<BackendEvent>, BackendError>> + Send;

    /// The group's committed offsets for `partitions` (`None` where nothing is committed).
    fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> impl Future<Output = Result<Vec<(TopicPartition, Option<CommittedOffset>)>, BackendError>> + Send;

    /// Records of `partition` from `from_offset`, below `end_offset` when given and below
    /// the partition's readable end in any case, about `max_bytes` of them at most (the
    /// first record whole): how stores are restored, one bounded chunk at a time. The
    /// chunk says where the next read starts and where the partition ends, read from the
    /// fetch itself (its high watermark, or last stable offset under read_committed)
    /// rather than from a separate ListOffsets answer. Outside the group's assignment; it
    /// must not move the group's positions. Blocking work happens off the async threads.
    fn read_chunk(
        &mut self,
        partition: &TopicPartition,
        from_offset: i64,
        end_offset: Option<i64>,
        max_bytes: usize,
    ) -> impl Future<Output = Result<RestoreChunk, BackendError>> + Send;

    /// Moves reading of these assigned partitions to the given next offsets, dropping
    /// whatever was read before: how a task resumes from its local checkpoint when the
    /// group's commit cannot be used (a broker that drops commit metadata).
    ///
    /// The default refuses.
    fn seek(
        &mut self,
        offsets: &[(TopicPartition, i64)],
    ) -> impl Future<Output = Result<(), BackendError>> + Send {
        let error = BackendError::new(
            format!("seek {} partitions", offsets.len()),
            "this backend cannot seek",
        );
        std::future::ready(Err(error))
    }

    /// Starts writing `record` to `partition` of its topic; [`Backend::flush`] waits for it.
    fn send(
        &mut self,
        partition: i32,
        record: OutputRecord,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Waits until every record sent so far is durably acknowledged. Returns, for each
    /// partition written since the previous flush, the offset after its last record.
    fn flush(
        &mut self,
    ) -> impl Future<Output = Result<BTreeMap<TopicPartition, i64>, BackendError>> + Send;

    /// Commits `(partition, next offset, metadata)` for the group, as its member.
    fn commit(
        &mut self,
        offsets: &[(TopicPartition, i64, String)],
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Turns on exactly-once, before [`Backend::subscribe`]: from now on every record sent
    /// belongs to a transaction of the producer `transactional_id`, and reads ([`Backend::poll`],
    /// [`Backend::read_chunk`]) return committed records only (`isolation.level=read_committed`).
    /// Fences any earlier producer with the same id and aborts its open transaction.
    ///
    /// The default refuses: a backend without transactions cannot run exactly-once.
    fn init_transactions(
        &mut self,
        transactional_id: &str,
    ) -> impl Future<Output = Result<(), BackendError>> + Send {
        let error = BackendError::new(
            format!("init transactions {transactional_id}"),
            "this backend does not support exactly-once",
        );
        std::future::ready(Err(error))
    }

    /// Commits, as one transaction, every record sent since the previous commit or abort
    /// together with `(partition, next offset, metadata)` as the group's position, sent as
    /// this member of its current generation (a member the group has moved past is
    /// refused: that is how a zombie is fenced). Only after [`Backend::init_transactions`].
    ///
    /// # Errors
    /// When anything in the transaction failed: the runtime then calls
    /// [`Backend::abort_transaction`].
    fn commit_transaction(
        &mut self,
        offsets: &[(TopicPartition, i64, String)],
    ) -> impl Future<Output = Result<(), BackendError>> + Send {
        let error = BackendError::new(
            format!("commit transaction of {} offsets", offsets.len()),
            "this backend does not support exactly-once",
        );
        std::future::ready(Err(error))
    }

    /// Aborts the open transaction: no record sent since the previous commit becomes
    /// visible to read_committed readers, and the group's offsets stay where that commit
    /// put them. Leaves the backend ready for the next transaction; a producer that was
    /// fenced or failed for good is replaced by a new one (a new `init_transactions`).
    fn abort_transaction(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send {
        let error = BackendError::new(
            "abort transaction",
            "this backend does not support exactly-once",
        );
        std::future::ready(Err(error))
    }

    /// Moves reading of these assigned `partitions` back to the group's committed offsets,
    /// dropping whatever was read past them; [`Backend::committed`] then answers those
    /// commits. How the runtime goes on after an aborted transaction.
    fn rewind(
        &mut self,
        partitions: &[TopicPartition],
    ) -> impl Future<Output = Result<(), BackendError>> + Send {
        let error = BackendError::new(
            format!("rewind {} partitions", partitions.len()),
            "this backend does not support exactly-once",
        );
        std::future::ready(Err(error))
    }

    /// Whether everything readable on the broker of this assigned partition has been
    /// returned by [`Backend::poll`] (lag 0; under read_committed, up to the last stable
    /// offset). `false` when unknown: a task then waits for that
    /// partition before it picks records by timestamp.
    fn is_caught_up(&self, partition: &TopicPartition) -> bool;

    /// The next offset [`Backend::poll`] reads from this assigned partition, counting the
    /// records it skipped (transaction markers, aborted records); `None` when unknown.
    /// The default knows none: commits then name the offset after the last processed
    /// record.
    fn position(&self, partition: &TopicPartition) -> Option<i64> {
        let _ = partition;
        None
    }

    /// Stops returning records of `partitions` from [`Backend::poll`], and resumes every
    /// other assigned partition: the runner names, every round, the partitions whose task
    /// has a full buffer of them, so memory stays bounded while a backlog is read faster
    /// than it is processed. The default ignores it (a poll's own limit bounds reading).
    fn set_paused(&mut self, partitions: &[TopicPartition]) {
        let _ = partitions;
    }

    /// The group's members and their assignments, for placing standby replicas; `None`
    /// when this backend cannot tell (the default), and then the instance keeps no
    /// standbys.
    fn group_members(
        &mut self,
    ) -> impl Future<Output = Result<Option<GroupMembers>, BackendError>> + Send {
        std::future::ready(Ok(None))
    }

    /// Deletes the records of these repartition topic partitions below the given offsets
    /// (DeleteRecords): called after a commit with the offsets it committed, since no
    /// task will read those records again. The default keeps them.
    fn delete_records(
        &mut self,
        offsets: &[(TopicPartition, i64)],
    ) -> impl Future<Output = Result<(), BackendError>> + Send {
        let _ = offsets;
        std::future::ready(Ok(()))
    }

    /// Leaves the group and releases resources; called once, after the last commit.
    fn close(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send;
}
