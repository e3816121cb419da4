//! The embedded runtime's membership of its consumer group, through the group handlers in
//! process: JoinGroup, SyncGroup (as leader, the range assignment for every member),
//! Heartbeat, OffsetCommit (or, under exactly-once, TxnOffsetCommit) and LeaveGroup.
//!
//! The requests are the ones a Kafka client would send, so the group looks like any other
//! consumer group in `riffle groups` and Kafka tools, and remote instances of the same
//! topology (librdkafka, range assignor) can share it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use riffle_processor::TopicPartition;
use riffle_processor::runtime::{BackendError, CommittedOffset};
use riffle_protocol::ErrorCode;
use riffle_protocol::api::heartbeat::HeartbeatRequest;
use riffle_protocol::api::join_group::{
    JoinGroupRequest, JoinGroupRequestProtocol, JoinGroupResponse,
};
use riffle_protocol::api::leave_group::{LeaveGroupRequest, MemberIdentity};
use riffle_protocol::api::offset_commit::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use riffle_protocol::api::sync_group::{SyncGroupRequest, SyncGroupRequestAssignment};
use riffle_protocol::api::txn_offset_commit::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use tracing::{info, warn};

use super::transaction::TransactionalProducer;
use riffle_server::cluster::Cluster;
use riffle_server::group::consumer_protocol::{
    self, PROTOCOL_TYPE, RANGE_ASSIGNOR, decode_consumer_assignment,
};
use riffle_server::handler::{RequestContext, group, txn_offset_commit};

/// The request versions used: the newest each handler serves, so static membership and
/// the two-step join (MEMBER_ID_REQUIRED) behave as for current clients.
const JOIN_GROUP_VERSION: i16 = 7;
const SYNC_GROUP_VERSION: i16 = 5;
const HEARTBEAT_VERSION: i16 = 4;
const OFFSET_COMMIT_VERSION: i16 = 8;
/// TxnOffsetCommit v3 carries the member id, generation and group instance id, so the
/// group fences a member it has moved past (KIP-447).
const TXN_OFFSET_COMMIT_VERSION: i16 = 3;
const LEAVE_GROUP_VERSION: i16 = 5;
/// The client id the group shows for embedded members.
const CLIENT_ID: &str = "riffle-embedded";
/// How many join attempts (each may wait for a whole rebalance) before giving up.
const JOIN_ATTEMPTS_MAX: u32 = 20;
/// Pause between join attempts refused with a retriable error.
const JOIN_RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// Group timings, as a consumer configures them.
#[derive(Debug, Clone)]
pub struct GroupTimeouts {
    /// Kafka's `session.timeout.ms`: without a heartbeat for this long the member is dropped.
    pub session_timeout: Duration,
    /// Kafka's `max.poll.interval.ms` as sent in JoinGroup: how long a rebalance waits for
    /// members to rejoin.
    pub rebalance_timeout: Duration,
    /// Kafka's `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
}

/// What a heartbeat learned.
pub enum HeartbeatOutcome {
    /// Still a member of the current generation.
    Member,
    /// The group is rebalancing or dropped this member: give up the partitions, rejoin.
    Rejoin,
}

/// One member of one group, after `subscribe`.
pub struct Membership {
    group_id: String,
    topics: Vec<String>,
    /// Static membership (KIP-345): a restarted broker takes its old place at once instead
    /// of waiting for its previous member to time out.
    group_instance_id: Option<String>,
    member_id: String,
    generation_id: i32,
    timeouts: GroupTimeouts,
    next_heartbeat: Instant,
    /// Who the group requests come from: the topology's principal.
    context: RequestContext,
}

impl Membership {
    /// A member that has not joined yet, whose requests come from `context`.
    pub fn new(
        group_id: &str,
        topics: &[String],
        group_instance_id: Option<String>,
        timeouts: GroupTimeouts,
        context: RequestContext,
    ) -> Membership {
        Membership {
            group_id: group_id.to_string(),
            topics: topics.to_vec(),
            group_instance_id,
            member_id: String::new(),
            generation_id: -1,
            timeouts,
            next_heartbeat: Instant::now(),
            context,
        }
    }

    /// The group this member belongs to.
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// When the next heartbeat is due.
    pub fn next_heartbeat(&self) -> Instant {
        self.next_heartbeat
    }

    /// Joins (or rejoins) the group and returns this member's partitions.
    ///
    /// # Errors
    /// When the coordinator keeps refusing, or fences this instance.
    pub async fn join(
        &mut self,
        cluster: &Arc<Cluster>,
    ) -> Result<Vec<TopicPartition>, BackendError> {
        for _ in 0..JOIN_ATTEMPTS_MAX {
            let joined = group::join::handle(
                cluster,
                &self.context,
                JOIN_GROUP_VERSION,
                CLIENT_ID,
                self.join_request(),
            )
            .await;
            if !self.accept_join(&joined)? {
                tokio::time::sleep(JOIN_RETRY_BACKOFF).await;
                continue;
            }
            let assignments = if joined.leader == self.member_id {
                leader_assignments(cluster, &joined)
            } else {
                Vec::new()
            };
            if let Some(partitions) = self.sync(cluster, assignments).await? {
                self.next_heartbeat = Instant::now() + self.timeouts.heartbeat_interval;
                info!(group = %self.group_id, generation = self.generation_id, ?partitions, "joined group");
                return Ok(partitions);
            }
        }
        Err(BackendError::new(
            format!("join group {}", self.group_id),
            format!("no stable generation after {JOIN_ATTEMPTS_MAX} attempts"),
        ))
    }

    fn join_request(&self) -> JoinGroupRequest {
        JoinGroupRequest {
            group_id: self.group_id.clone(),
            session_timeout_ms: millis(self.timeouts.session_timeout),
            rebalance_timeout_ms: millis(self.timeouts.rebalance_timeout),
            member_id: self.member_id.clone(),
            group_instance_id: self.group_instance_id.clone(),
            protocol_type: PROTOCOL_TYPE.to_string(),
            protocols: vec![JoinGroupRequestProtocol {
                name: RANGE_ASSIGNOR.to_string(),
                metadata: consumer_protocol::encode_subscription(&self.topics).into(),
            }],
            ..Default::default()
        }
    }

    /// Takes in a JoinGroup answer: `Ok(true)` when joined, `Ok(false)` to retry.
    fn accept_join(&mut self, joined: &JoinGroupResponse) -> Result<bool, BackendError> {
        match ErrorCode::from_code(joined.error_code) {
            Some(ErrorCode::None) => {
                self.member_id = joined.member_id.clone();
                self.generation_id = joined.generation_id;
                Ok(true)
            }
            Some(ErrorCode::MemberIdRequired) => {
                self.member_id = joined.member_id.clone();
                Ok(false)
            }
            Some(ErrorCode::UnknownMemberId) => {
                self.member_id.clear();
                Ok(false)
            }
            Some(ErrorCode::RebalanceInProgress | ErrorCode::NotCoordinator) => Ok(false),
            _ => Err(self.refused("join group", joined.error_code)),
        }
    }

    /// SyncGroup; `None` when the generation moved on and the member must join again.
    async fn sync(
        &mut self,
        cluster: &Arc<Cluster>,
        assignments: Vec<SyncGroupRequestAssignment>,
    ) -> Result<Option<Vec<TopicPartition>>, BackendError> {
        let request = SyncGroupRequest {
            group_id: self.group_id.clone(),
            generation_id: self.generation_id,
            member_id: self.member_id.clone(),
            group_instance_id: self.group_instance_id.clone(),
            protocol_type: Some(PROTOCOL_TYPE.to_string()),
            protocol_name: Some(RANGE_ASSIGNOR.to_string()),
            assignments,
        };
        let synced = group::sync::handle(cluster, &self.context, SYNC_GROUP_VERSION, request).await;
        match ErrorCode::from_code(synced.error_code) {
            Some(ErrorCode::None) => {}
            Some(ErrorCode::UnknownMemberId) => {
                self.member_id.clear();
                return Ok(None);
            }
            Some(ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration) => return Ok(None),
            _ => return Err(self.refused("sync group", synced.error_code)),
        }
        let assignment = decode_consumer_assignment(&synced.assignment)
            .map_err(|error| BackendError::new(format!("sync group {}", self.group_id), error))?;
        let partitions = assignment
            .partitions
            .into_iter()
            .filter(|(topic, _)| self.topics.contains(topic))
            .map(|(topic, partition)| TopicPartition::new(topic, partition))
            .collect();
        Ok(Some(partitions))
    }

    /// Sends a heartbeat.
    ///
    /// # Errors
    /// When this instance was fenced by another with the same `group.instance.id`.
    pub fn heartbeat(&mut self, cluster: &Cluster) -> Result<HeartbeatOutcome, BackendError> {
        self.next_heartbeat = Instant::now() + self.timeouts.heartbeat_interval;
        let request = HeartbeatRequest {
            group_id: self.group_id.clone(),
            generation_id: self.generation_id,
            member_id: self.member_id.clone(),
            group_instance_id: self.group_instance_id.clone(),
        };
        let answer = group::heartbeat::handle(cluster, &self.context, HEARTBEAT_VERSION, request);
        match ErrorCode::from_code(answer.error_code) {
            Some(ErrorCode::None) => Ok(HeartbeatOutcome::Member),
            Some(ErrorCode::FencedInstanceId) => Err(self.refused("heartbeat", answer.error_code)),
            Some(ErrorCode::UnknownMemberId) => {
                self.member_id.clear();
                Ok(HeartbeatOutcome::Rejoin)
            }
            code => {
                info!(group = %self.group_id, ?code, "rejoining group");
                Ok(HeartbeatOutcome::Rejoin)
            }
        }
    }

    /// Commits offsets as this member of this generation.
    ///
    /// A commit refused because the group moved on (a rebalance, this member dropped) is
    /// returned as `Ok(HeartbeatOutcome::Rejoin)`: under at-least-once that only means the
    /// next owner reprocesses from the previous commit.
    ///
    /// # Errors
    /// Any other refusal (storage, metadata too large).
    pub async fn commit(
        &mut self,
        cluster: &Arc<Cluster>,
        offsets: &[(TopicPartition, i64, String)],
    ) -> Result<HeartbeatOutcome, BackendError> {
        let request = self.commit_request(offsets);
        let answer =
            group::offset_commit::handle(cluster, &self.context, OFFSET_COMMIT_VERSION, request)
                .await;
        let errors = answer
            .topics
            .iter()
            .flat_map(|topic| topic.partitions.iter().map(|p| p.error_code));
        self.commit_outcome("commit", errors)
    }

    /// Commits offsets inside `producer`'s open transaction (TxnOffsetCommit), as this
    /// member of this generation; they count only if the transaction commits. The caller
    /// has added the group's offsets to the transaction (AddOffsetsToTxn).
    ///
    /// A refusal because the group moved on is `Ok(HeartbeatOutcome::Rejoin)`: this member
    /// is a zombie for those partitions, and its transaction must be aborted.
    ///
    /// # Errors
    /// Any other refusal.
    pub async fn commit_in_transaction(
        &mut self,
        cluster: &Arc<Cluster>,
        producer: &TransactionalProducer,
        offsets: &[(TopicPartition, i64, String)],
    ) -> Result<HeartbeatOutcome, BackendError> {
        let (producer_id, producer_epoch) = producer.producer_id_and_epoch();
        let topics = by_topic(offsets)
            .into_iter()
            .map(|(name, partitions)| TxnOffsetCommitRequestTopic {
                name: name.to_string(),
                partitions: partitions
                    .into_iter()
                    .map(
                        |(partition_index, offset, metadata)| TxnOffsetCommitRequestPartition {
                            partition_index,
                            committed_offset: offset,
                            committed_metadata: Some(metadata.to_string()),
                            ..Default::default()
                        },
                    )
                    .collect(),
            })
            .collect();
        let request = TxnOffsetCommitRequest {
            transactional_id: producer.transactional_id().to_string(),
            group_id: self.group_id.clone(),
            producer_id,
            producer_epoch,
            generation_id: self.generation_id,
            member_id: self.member_id.clone(),
            group_instance_id: self.group_instance_id.clone(),
            topics,
        };
        let answer =
            txn_offset_commit::handle(cluster, &self.context, TXN_OFFSET_COMMIT_VERSION, request)
                .await;
        let errors = answer
            .topics
            .iter()
            .flat_map(|topic| topic.partitions.iter().map(|p| p.error_code));
        self.commit_outcome("commit in transaction", errors)
    }

    /// What the partitions' error codes of a commit mean: the group moved on (rejoin),
    /// or a refusal.
    fn commit_outcome(
        &self,
        operation: &str,
        codes: impl Iterator<Item = i16>,
    ) -> Result<HeartbeatOutcome, BackendError> {
        let errors = codes.filter(|code| *code != ErrorCode::None.code());
        let mut outcome = HeartbeatOutcome::Member;
        for code in errors {
            match ErrorCode::from_code(code) {
                Some(
                    ErrorCode::RebalanceInProgress
                    | ErrorCode::IllegalGeneration
                    | ErrorCode::UnknownMemberId,
                ) => {
                    warn!(group = %self.group_id, code, "commit refused by a rebalance; rejoining");
                    outcome = HeartbeatOutcome::Rejoin;
                }
                _ => return Err(self.refused(operation, code)),
            }
        }
        Ok(outcome)
    }

    fn commit_request(&self, offsets: &[(TopicPartition, i64, String)]) -> OffsetCommitRequest {
        let topics = by_topic(offsets)
            .into_iter()
            .map(|(name, partitions)| OffsetCommitRequestTopic {
                name: name.to_string(),
                partitions: partitions
                    .into_iter()
                    .map(
                        |(partition_index, offset, metadata)| OffsetCommitRequestPartition {
                            partition_index,
                            committed_offset: offset,
                            committed_metadata: Some(metadata.to_string()),
                            ..Default::default()
                        },
                    )
                    .collect(),
            })
            .collect();
        OffsetCommitRequest {
            group_id: self.group_id.clone(),
            generation_id_or_member_epoch: self.generation_id,
            member_id: self.member_id.clone(),
            group_instance_id: self.group_instance_id.clone(),
            topics,
            ..Default::default()
        }
    }

    /// The group's committed offsets for `partitions`.
    pub fn committed(
        &self,
        cluster: &Cluster,
        partitions: &[TopicPartition],
    ) -> Vec<(TopicPartition, Option<CommittedOffset>)> {
        committed_offsets(cluster, &self.group_id, partitions)
    }

    /// Leaves the group, so the others rebalance now rather than after the session timeout.
    pub fn leave(&self, cluster: &Cluster) {
        if self.member_id.is_empty() {
            return;
        }
        let request = LeaveGroupRequest {
            group_id: self.group_id.clone(),
            members: vec![MemberIdentity {
                member_id: self.member_id.clone(),
                group_instance_id: self.group_instance_id.clone(),
                reason: Some("the embedded processor stopped".to_string()),
            }],
            ..Default::default()
        };
        let answer = group::leave::handle(cluster, &self.context, LEAVE_GROUP_VERSION, request);
        let code = answer
            .members
            .first()
            .map_or(answer.error_code, |member| member.error_code);
        if code != ErrorCode::None.code() {
            warn!(group = %self.group_id, code, "leaving the group failed");
        }
    }

    fn refused(&self, operation: &str, code: i16) -> BackendError {
        super::refusal::refused(
            &self.context,
            &format!("{operation} {}", self.group_id),
            code,
        )
    }
}

/// Offsets to commit grouped by topic: `(partition, next offset, metadata)` per topic.
fn by_topic(offsets: &[(TopicPartition, i64, String)]) -> BTreeMap<&str, Vec<(i32, i64, &str)>> {
    let mut topics: BTreeMap<&str, Vec<(i32, i64, &str)>> = BTreeMap::new();
    for (topic_partition, offset, metadata) in offsets {
        topics.entry(&topic_partition.topic).or_default().push((
            topic_partition.partition,
            *offset,
            metadata,
        ));
    }
    topics
}

/// The committed offsets of `group_id` for `partitions`, read from the coordinator.
pub fn committed_offsets(
    cluster: &Cluster,
    group_id: &str,
    partitions: &[TopicPartition],
) -> Vec<(TopicPartition, Option<CommittedOffset>)> {
    let offsets = cluster.groups().fetch_offsets(group_id);
    partitions
        .iter()
        .map(|topic_partition| {
            let key = (topic_partition.topic.clone(), topic_partition.partition);
            let committed = offsets.get(&key).map(|committed| CommittedOffset {
                offset: committed.offset,
                metadata: committed.metadata.clone(),
            });
            (topic_partition.clone(), committed)
        })
        .collect()
}

/// The leader's SyncGroup assignments: the range assignor over every member's subscription.
/// A member whose subscription does not decode gets nothing (and is logged).
fn leader_assignments(
    cluster: &Cluster,
    joined: &JoinGroupResponse,
) -> Vec<SyncGroupRequestAssignment> {
    let mut subscriptions = BTreeMap::new();
    for member in &joined.members {
        let topics = consumer_protocol::decode_subscription_topics(&member.metadata);
        if topics.is_none() {
            warn!(member = %member.member_id, "member subscription does not decode; it gets no partitions");
        }
        subscriptions.insert(member.member_id.clone(), topics.unwrap_or_default());
    }
    let partition_count = |topic: &str| {
        let topic = cluster.topic(topic)?;
        i32::try_from(topic.partitions.len()).ok()
    };
    consumer_protocol::range_assign(&subscriptions, partition_count)
        .into_iter()
        .map(|(member_id, partitions)| SyncGroupRequestAssignment {
            member_id,
            assignment: consumer_protocol::encode_assignment(&partitions).into(),
        })
        .collect()
}

fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}
