//! The classic group state machine: a plain struct, fed requests and the time, answering
//! through the oneshot senders handlers wait on. No I/O, no clock of its own.
//!
//! ```text
//!            join                        all joined / deadline          leader syncs
//! Empty ------------> PreparingRebalance ----------------> CompletingRebalance ------> Stable
//!   ^                  ^        |                                   |                    |
//!   |  last member     |        +-- member joins, leaves, expires --+--------------------+
//!   +- leaves/expires -+
//! ```
//! Generations count completed rebalances. JoinGroup v4+ first hands out a member id with
//! MEMBER_ID_REQUIRED (KIP-394); static members (KIP-345) keep their assignment across a
//! restart within the session timeout, without a rebalance.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use riffle_protocol::ErrorCode;
use tokio::sync::oneshot;

use super::member::Member;

/// Where a group is in its life, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members (offsets may remain).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted.
    Dead,
}

impl GroupState {
    /// Kafka's name, as ListGroups and DescribeGroups report it.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Limits and delays the coordinator applies to every group.
#[derive(Debug, Clone, Copy)]
pub struct GroupLimits {
    /// Smallest session timeout a member may ask for (Kafka: group.min.session.timeout.ms).
    pub min_session_timeout: Duration,
    /// Largest session timeout (group.max.session.timeout.ms).
    pub max_session_timeout: Duration,
    /// How long a new group waits for more members before its first rebalance completes
    /// (group.initial.rebalance.delay.ms), so a fleet starting together rebalances once.
    pub initial_rebalance_delay: Duration,
    /// Most members one group may hold (group.max.size).
    pub max_members: usize,
}

/// A JoinGroup as the state machine needs it.
pub struct JoinRequest {
    /// Empty for a member joining for the first time.
    pub member_id: String,
    /// The static identity, if any.
    pub group_instance_id: Option<String>,
    /// The client's name.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout: Duration,
    /// Rebalance timeout (the session timeout for JoinGroup v0).
    pub rebalance_timeout: Duration,
    /// "consumer" for consumers; other kinds of groups use their own.
    pub protocol_type: String,
    /// Supported protocols with metadata, in preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a first join gets MEMBER_ID_REQUIRED and must rejoin with the id.
    pub require_known_member_id: bool,
}

/// What a JoinGroup is answered with.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinResult {
    /// Error, or NONE.
    pub error: ErrorCode,
    /// The new generation.
    pub generation_id: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The protocol chosen for this generation.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// For the leader: every member and its metadata for the chosen protocol.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    /// A failed join.
    pub fn error(error: ErrorCode, member_id: String) -> Self {
        JoinResult {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id,
            members: Vec::new(),
        }
    }
}

/// What a SyncGroup is answered with.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncResult {
    /// Error, or NONE.
    pub error: ErrorCode,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The generation's protocol.
    pub protocol_name: Option<String>,
    /// This member's assignment.
    pub assignment: Bytes,
}

impl SyncResult {
    /// A failed sync.
    pub fn error(error: ErrorCode) -> Self {
        SyncResult {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// One consumer group's membership.
pub struct Group {
    /// The group id.
    pub group_id: String,
    /// Where it is in its life.
    pub state: GroupState,
    /// Completed rebalances so far.
    pub generation_id: i32,
    /// The protocol type every member shares ("consumer" for consumers).
    pub protocol_type: Option<String>,
    /// The protocol chosen for the current generation.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: Option<String>,
    /// Members by id, ordered so the first to join leads a fresh group.
    pub members: BTreeMap<String, Member>,
    /// Static members: group.instance.id to member id.
    pub static_members: HashMap<String, String>,
    /// Ids handed out with MEMBER_ID_REQUIRED, until the member rejoins or times out.
    pending_members: HashMap<String, Instant>,
    /// When the current rebalance completes even if some members have not rejoined.
    rebalance_deadline: Option<Instant>,
    /// Set while a new group waits for more members (the initial rebalance delay).
    initial_join_started: Option<Instant>,
    /// Whether something worth persisting changed since [`Group::take_dirty`].
    dirty: bool,
    /// The next member's join sequence.
    next_join_sequence: u64,
}

impl Group {
    /// A new, empty group.
    pub fn new(group_id: String) -> Self {
        Group {
            group_id,
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            rebalance_deadline: None,
            initial_join_started: None,
            dirty: false,
            next_join_sequence: 0,
        }
    }

    /// Whether the group changed in a way worth persisting since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Handles a JoinGroup; the answer goes to `responder`, now or when the rebalance ends.
    pub fn join(
        &mut self,
        now: Instant,
        request: JoinRequest,
        limits: &GroupLimits,
        responder: oneshot::Sender<JoinResult>,
    ) {
        if let Err(error) = self.check_join(&request, limits) {
            let _ = responder.send(JoinResult::error(error, request.member_id));
            return;
        }
        if request.member_id.is_empty() {
            self.join_new_member(now, request, limits, responder);
        } else {
            self.join_known_member(now, request, limits, responder);
        }
    }

    fn check_join(&self, request: &JoinRequest, limits: &GroupLimits) -> Result<(), ErrorCode> {
        if !(limits.min_session_timeout..=limits.max_session_timeout)
            .contains(&request.session_timeout)
        {
            return Err(ErrorCode::InvalidSessionTimeout);
        }
        if request.protocols.is_empty() || request.protocol_type.is_empty() {
            return Err(ErrorCode::InconsistentGroupProtocol);
        }
        let is_known = self.members.contains_key(&request.member_id);
        let others_exist = self.members.len() > usize::from(is_known);
        if others_exist {
            let same_type = self.protocol_type.as_deref() == Some(request.protocol_type.as_str());
            let shares_protocol = request
                .protocols
                .iter()
                .any(|(name, _)| self.all_others_support(name, &request.member_id));
            if !same_type || !shares_protocol {
                return Err(ErrorCode::InconsistentGroupProtocol);
            }
        }
        if !is_known && self.members.len() >= limits.max_members {
            return Err(ErrorCode::GroupMaxSizeReached);
        }
        Ok(())
    }

    fn all_others_support(&self, protocol: &str, except_member_id: &str) -> bool {
        self.members
            .values()
            .filter(|member| member.member_id != except_member_id)
            .all(|member| member.metadata_for(protocol).is_some())
    }

    fn join_new_member(
        &mut self,
        now: Instant,
        request: JoinRequest,
        limits: &GroupLimits,
        responder: oneshot::Sender<JoinResult>,
    ) {
        if let Some(instance_id) = request.group_instance_id.clone() {
            if let Some(old_member_id) = self.static_members.get(&instance_id).cloned() {
                self.rejoin_static_member(now, &old_member_id, request, limits, responder);
                return;
            }
        } else if request.require_known_member_id {
            // KIP-394: hand out the id first, so a client that never comes back does not
            // hold up the rebalance as a member.
            let member_id = self.new_member_id(&request.client_id);
            self.pending_members
                .insert(member_id.clone(), now + request.session_timeout);
            let _ = responder.send(JoinResult::error(ErrorCode::MemberIdRequired, member_id));
            return;
        }
        let member_id = self.new_member_id(&request.client_id);
        self.add_member(now, member_id, request, limits, responder);
    }

    fn new_member_id(&self, client_id: &str) -> String {
        format!("{client_id}-{}", uuid::Uuid::new_v4())
    }

    fn add_member(
        &mut self,
        now: Instant,
        member_id: String,
        request: JoinRequest,
        limits: &GroupLimits,
        responder: oneshot::Sender<JoinResult>,
    ) {
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        if let Some(instance_id) = &request.group_instance_id {
            self.static_members
                .insert(instance_id.clone(), member_id.clone());
        }
        let mut member = new_member(now, member_id.clone(), request, responder);
        member.join_sequence = self.next_join_sequence;
        self.next_join_sequence += 1;
        self.members.insert(member_id, member);
        match self.state {
            GroupState::PreparingRebalance => self.extend_initial_delay(now, limits),
            _ => self.prepare_rebalance(now, limits),
        }
        self.maybe_complete_join(now);
    }

    fn join_known_member(
        &mut self,
        now: Instant,
        request: JoinRequest,
        limits: &GroupLimits,
        responder: oneshot::Sender<JoinResult>,
    ) {
        let member_id = request.member_id.clone();
        if self.pending_members.remove(&member_id).is_some() {
            self.add_member(now, member_id, request, limits, responder);
            return;
        }
        if let Err(error) = self.check_member(&member_id, request.group_instance_id.as_deref()) {
            let _ = responder.send(JoinResult::error(error, member_id));
            return;
        }
        let Some(member) = self.members.get_mut(&member_id) else {
            return;
        };
        let protocols_changed = member.protocols != request.protocols;
        member.protocols = request.protocols;
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        member.touch(now);
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => {
                self.set_join_waiter(&member_id, responder);
                self.maybe_complete_join(now);
            }
            GroupState::CompletingRebalance | GroupState::Stable
                if !(protocols_changed || is_leader && self.state == GroupState::Stable) =>
            {
                // Nothing changed: repeat this generation's answer.
                let _ = responder.send(self.join_result(&member_id));
            }
            _ => {
                self.set_join_waiter(&member_id, responder);
                self.prepare_rebalance(now, limits);
                self.maybe_complete_join(now);
            }
        }
    }

    /// A static member restarting: it takes a new member id and keeps its place, and a
    /// stable group does not rebalance (KIP-345).
    fn rejoin_static_member(
        &mut self,
        now: Instant,
        old_member_id: &str,
        request: JoinRequest,
        limits: &GroupLimits,
        responder: oneshot::Sender<JoinResult>,
    ) {
        // The leader as the other members know it, before the replacement below.
        let previous_leader = self.leader.clone().unwrap_or_default();
        let Some(mut member) = self.members.remove(old_member_id) else {
            return;
        };
        fence(&mut member);
        let member_id = self.new_member_id(&request.client_id);
        let protocols_changed = member.protocols != request.protocols;
        member.member_id = member_id.clone();
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        member.protocols = request.protocols;
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        member.touch(now);
        self.members.insert(member_id.clone(), member);
        if let Some(instance_id) = request.group_instance_id {
            self.static_members.insert(instance_id, member_id.clone());
        }
        if self.leader.as_deref() == Some(old_member_id) {
            self.leader = Some(member_id.clone());
        }
        self.dirty = true;
        if self.state == GroupState::Stable && !protocols_changed {
            // As Kafka does: answer with the previous leader id and no members, so a
            // restarted leader acts as a follower. A stable group would not pass on an
            // assignment it computed anyway, and computing one could only revoke others.
            let result = JoinResult {
                leader: previous_leader,
                members: Vec::new(),
                ..self.join_result(&member_id)
            };
            let _ = responder.send(result);
            return;
        }
        self.set_join_waiter(&member_id, responder);
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now, limits);
        }
        self.maybe_complete_join(now);
    }

    fn set_join_waiter(&mut self, member_id: &str, responder: oneshot::Sender<JoinResult>) {
        if let Some(member) = self.members.get_mut(member_id)
            && let Some(previous) = member.join_waiter.replace(responder)
        {
            let _ = previous.send(JoinResult::error(
                ErrorCode::RebalanceInProgress,
                member_id.to_string(),
            ));
        }
    }

    /// Checks that `member_id` belongs to the group and is not a fenced static member.
    pub fn check_member(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<(), ErrorCode> {
        if let Some(instance_id) = group_instance_id {
            match self.static_members.get(instance_id) {
                Some(current) if current != member_id => return Err(ErrorCode::FencedInstanceId),
                _ => {}
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(ErrorCode::UnknownMemberId)
        }
    }

    fn prepare_rebalance(&mut self, now: Instant, limits: &GroupLimits) {
        for member in self.members.values_mut() {
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncResult::error(ErrorCode::RebalanceInProgress));
            }
        }
        let rebalance_timeout = self
            .members
            .values()
            .map(|member| member.rebalance_timeout)
            .max()
            .unwrap_or_default();
        if self.state == GroupState::Empty {
            self.initial_join_started = Some(now);
            self.rebalance_deadline =
                Some(now + limits.initial_rebalance_delay.min(rebalance_timeout));
        } else {
            self.initial_join_started = None;
            self.rebalance_deadline = Some(now + rebalance_timeout);
        }
        self.state = GroupState::PreparingRebalance;
    }

    fn extend_initial_delay(&mut self, now: Instant, limits: &GroupLimits) {
        let Some(started) = self.initial_join_started else {
            return;
        };
        let rebalance_timeout = self
            .members
            .values()
            .map(|member| member.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.rebalance_deadline =
            Some((now + limits.initial_rebalance_delay).min(started + rebalance_timeout));
    }

    fn maybe_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let waiting_for_initial_delay = self.initial_join_started.is_some()
            && self
                .rebalance_deadline
                .is_some_and(|deadline| now < deadline);
        let everyone_joined = self.members.values().all(Member::is_awaiting_join);
        if everyone_joined && !waiting_for_initial_delay {
            self.complete_join();
        }
    }

    /// Ends the join phase: members that did not rejoin leave, a new generation starts,
    /// and every waiting JoinGroup is answered.
    fn complete_join(&mut self) {
        let stale: Vec<String> = self
            .members
            .values()
            .filter(|member| !member.is_awaiting_join())
            .map(|member| member.member_id.clone())
            .collect();
        for member_id in stale {
            self.forget_member(&member_id);
        }
        self.rebalance_deadline = None;
        self.initial_join_started = None;
        self.generation_id += 1;
        self.dirty = true;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol_name = None;
            self.leader = None;
            return;
        }
        self.protocol_name = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|leader| self.members.contains_key(leader))
        {
            self.leader = self
                .members
                .values()
                .min_by_key(|member| member.join_sequence)
                .map(|member| member.member_id.clone());
        }
        self.state = GroupState::CompletingRebalance;
        let member_ids: Vec<String> = self.members.keys().cloned().collect();
        for member_id in member_ids {
            let result = self.join_result(&member_id);
            if let Some(member) = self.members.get_mut(&member_id) {
                member.assignment = Bytes::new();
                if let Some(waiter) = member.join_waiter.take() {
                    let _ = waiter.send(result);
                }
            }
        }
    }

    /// The protocol every member supports with the most first-choice votes (Kafka's rule).
    fn select_protocol(&self) -> Option<String> {
        let first = self
            .members
            .values()
            .min_by_key(|member| member.join_sequence)?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(name, _)| name)
            .filter(|name| {
                self.members
                    .values()
                    .all(|member| member.metadata_for(name).is_some())
            })
            .collect();
        let votes = |candidate: &String| {
            self.members
                .values()
                .filter(|member| {
                    member
                        .protocols
                        .iter()
                        .find(|(name, _)| candidates.contains(&name))
                        .is_some_and(|(name, _)| name == candidate)
                })
                .count()
        };
        // max_by_key keeps the last maximum; iterate in reverse preference so ties go to
        // the first member's preferred protocol.
        candidates
            .iter()
            .rev()
            .max_by_key(|candidate| votes(candidate))
            .map(|name| (*name).clone())
    }

    fn join_result(&self, member_id: &str) -> JoinResult {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let is_leader = self.leader.as_deref() == Some(member_id);
        let members = if is_leader {
            self.members
                .values()
                .map(|member| {
                    let metadata = member.metadata_for(&protocol).cloned().unwrap_or_default();
                    (
                        member.member_id.clone(),
                        member.group_instance_id.clone(),
                        metadata,
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: ErrorCode::None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
        }
    }

    /// Handles a SyncGroup: the leader's call stores every assignment and makes the group
    /// stable; every member's call is answered with its own assignment.
    pub fn sync(
        &mut self,
        now: Instant,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        assignments: Vec<(String, Bytes)>,
        responder: oneshot::Sender<SyncResult>,
    ) {
        if let Err(error) = self.check_member(member_id, group_instance_id) {
            let _ = responder.send(SyncResult::error(error));
            return;
        }
        if generation_id != self.generation_id {
            let _ = responder.send(SyncResult::error(ErrorCode::IllegalGeneration));
            return;
        }
        match self.state {
            GroupState::PreparingRebalance => {
                let _ = responder.send(SyncResult::error(ErrorCode::RebalanceInProgress));
            }
            GroupState::Empty | GroupState::Dead => {
                let _ = responder.send(SyncResult::error(ErrorCode::UnknownMemberId));
            }
            GroupState::Stable => {
                let result = self.sync_result(member_id);
                if let Some(member) = self.members.get_mut(member_id) {
                    member.touch(now);
                }
                let _ = responder.send(result);
            }
            GroupState::CompletingRebalance => {
                self.sync_while_completing(now, member_id, assignments, responder)
            }
        }
    }

    fn sync_while_completing(
        &mut self,
        now: Instant,
        member_id: &str,
        assignments: Vec<(String, Bytes)>,
        responder: oneshot::Sender<SyncResult>,
    ) {
        if let Some(member) = self.members.get_mut(member_id) {
            member.touch(now);
            member.sync_waiter = Some(responder);
        }
        if self.leader.as_deref() != Some(member_id) {
            return;
        }
        for (assigned_member_id, assignment) in assignments {
            if let Some(member) = self.members.get_mut(&assigned_member_id) {
                member.assignment = assignment;
            }
        }
        self.state = GroupState::Stable;
        self.dirty = true;
        let member_ids: Vec<String> = self.members.keys().cloned().collect();
        for id in member_ids {
            let result = self.sync_result(&id);
            if let Some(waiter) = self
                .members
                .get_mut(&id)
                .and_then(|member| member.sync_waiter.take())
            {
                let _ = waiter.send(result);
            }
        }
    }

    fn sync_result(&self, member_id: &str) -> SyncResult {
        SyncResult {
            error: ErrorCode::None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|member| member.assignment.clone())
                .unwrap_or_default(),
        }
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(
        &mut self,
        now: Instant,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> ErrorCode {
        if matches!(self.state, GroupState::Empty | GroupState::Dead) {
            return ErrorCode::UnknownMemberId;
        }
        if let Err(error) = self.check_member(member_id, group_instance_id) {
            return error;
        }
        if generation_id != self.generation_id {
            return ErrorCode::IllegalGeneration;
        }
        if let Some(member) = self.members.get_mut(member_id) {
            member.touch(now);
        }
        match self.state {
            GroupState::PreparingRebalance => ErrorCode::RebalanceInProgress,
            _ => ErrorCode::None,
        }
    }

    /// Handles one member of a LeaveGroup. A static member may leave by instance id alone.
    pub fn leave(
        &mut self,
        now: Instant,
        member_id: &str,
        group_instance_id: Option<&str>,
        limits: &GroupLimits,
    ) -> ErrorCode {
        if self.pending_members.remove(member_id).is_some() {
            return ErrorCode::None;
        }
        let member_id = match (member_id, group_instance_id) {
            ("", Some(instance_id)) => match self.static_members.get(instance_id) {
                Some(current) => current.clone(),
                None => return ErrorCode::UnknownMemberId,
            },
            _ => member_id.to_string(),
        };
        if let Err(error) = self.check_member(&member_id, group_instance_id) {
            return error;
        }
        self.remove_member(now, &member_id, limits);
        ErrorCode::None
    }

    /// Removes a member (left or expired) and rebalances the rest.
    fn remove_member(&mut self, now: Instant, member_id: &str, limits: &GroupLimits) {
        self.forget_member(member_id);
        self.dirty = true;
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, limits);
                self.maybe_complete_join(now);
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    fn forget_member(&mut self, member_id: &str) {
        let Some(mut member) = self.members.remove(member_id) else {
            return;
        };
        if let Some(instance_id) = &member.group_instance_id
            && self
                .static_members
                .get(instance_id)
                .is_some_and(|current| current == member_id)
        {
            self.static_members.remove(instance_id);
        }
        if let Some(waiter) = member.join_waiter.take() {
            let _ = waiter.send(JoinResult::error(
                ErrorCode::UnknownMemberId,
                member_id.to_string(),
            ));
        }
        if let Some(waiter) = member.sync_waiter.take() {
            let _ = waiter.send(SyncResult::error(ErrorCode::UnknownMemberId));
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
    }

    /// Advances time: expired sessions leave, a rebalance past its deadline completes,
    /// unclaimed member ids are forgotten.
    pub fn tick(&mut self, now: Instant, limits: &GroupLimits) {
        self.pending_members.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|member| !member.is_awaiting_join() && member.session_deadline <= now)
            .map(|member| member.member_id.clone())
            .collect();
        for member_id in expired {
            tracing::info!(group = %self.group_id, member = %member_id, "session expired");
            self.remove_member(now, &member_id, limits);
        }
        if self.state == GroupState::PreparingRebalance
            && self
                .rebalance_deadline
                .is_some_and(|deadline| deadline <= now)
        {
            self.complete_join();
        }
    }

    /// Answers every waiting JoinGroup and SyncGroup with NOT_COORDINATOR, as Kafka does
    /// when it unloads a group: the broker is stopping, and clients will find it again.
    pub fn release_waiters(&mut self) {
        for member in self.members.values_mut() {
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(JoinResult::error(
                    ErrorCode::NotCoordinator,
                    member.member_id.clone(),
                ));
            }
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncResult::error(ErrorCode::NotCoordinator));
            }
        }
    }

    /// Drops every member (the group is being deleted or the broker is stopping).
    pub fn shut_down(&mut self) {
        let member_ids: Vec<String> = self.members.keys().cloned().collect();
        for member_id in member_ids {
            self.forget_member(&member_id);
        }
        self.state = GroupState::Dead;
    }

    /// Restores a group as it was persisted: members come back with fresh sessions, so
    /// clients that keep heartbeating after a broker restart carry on without rebalancing.
    pub fn restore(&mut self, now: Instant, snapshot: super::records::GroupSnapshot) {
        self.generation_id = snapshot.generation_id;
        self.protocol_type = snapshot.protocol_type;
        self.protocol_name = snapshot.protocol_name;
        self.leader = snapshot.leader;
        self.members.clear();
        self.static_members.clear();
        for saved in snapshot.members {
            let session_timeout = Duration::from_millis(saved.session_timeout_ms);
            let member = Member {
                member_id: saved.member_id.clone(),
                group_instance_id: saved.group_instance_id.clone(),
                client_id: saved.client_id,
                client_host: saved.client_host,
                session_timeout,
                rebalance_timeout: Duration::from_millis(saved.rebalance_timeout_ms),
                protocols: vec![(
                    self.protocol_name.clone().unwrap_or_default(),
                    Bytes::from(saved.metadata),
                )],
                assignment: Bytes::from(saved.assignment),
                session_deadline: now + session_timeout,
                join_waiter: None,
                sync_waiter: None,
                join_sequence: self.next_join_sequence,
            };
            self.next_join_sequence += 1;
            if let Some(instance_id) = saved.group_instance_id {
                self.static_members
                    .insert(instance_id, saved.member_id.clone());
            }
            self.members.insert(saved.member_id, member);
        }
        self.state = if self.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
    }
}

fn new_member(
    now: Instant,
    member_id: String,
    request: JoinRequest,
    responder: oneshot::Sender<JoinResult>,
) -> Member {
    Member {
        member_id,
        group_instance_id: request.group_instance_id,
        client_id: request.client_id,
        client_host: request.client_host,
        session_timeout: request.session_timeout,
        rebalance_timeout: request.rebalance_timeout,
        protocols: request.protocols,
        assignment: Bytes::new(),
        session_deadline: now + request.session_timeout,
        join_waiter: Some(responder),
        sync_waiter: None,
        join_sequence: 0,
    }
}

/// Answers a replaced static member's waiting requests with FENCED_INSTANCE_ID.
fn fence(member: &mut Member) {
    if let Some(waiter) = member.join_waiter.take() {
        let _ = waiter.send(JoinResult::error(
            ErrorCode::FencedInstanceId,
            member.member_id.clone(),
        ));
    }
    if let Some(waiter) = member.sync_waiter.take() {
        let _ = waiter.send(SyncResult::error(ErrorCode::FencedInstanceId));
    }
}

#[cfg(test)]
mod tests {
    //! The group state machine, driven with a fake clock: joins, syncs, heartbeats,
    //! leaves and expiries, with no sockets and no real time.

    use super::*;

    const SESSION: Duration = Duration::from_secs(10);

    fn limits() -> GroupLimits {
        GroupLimits {
            min_session_timeout: Duration::from_secs(1),
            max_session_timeout: Duration::from_secs(60),
            initial_rebalance_delay: Duration::from_secs(3),
            max_members: 10,
        }
    }

    fn request(member_id: &str, instance_id: Option<&str>, protocols: &[&str]) -> JoinRequest {
        JoinRequest {
            member_id: member_id.into(),
            group_instance_id: instance_id.map(String::from),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: SESSION,
            rebalance_timeout: SESSION,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|name| (name.to_string(), Bytes::from(format!("{name}-meta"))))
                .collect(),
            require_known_member_id: true,
        }
    }

    fn join(
        group: &mut Group,
        now: Instant,
        request: JoinRequest,
    ) -> oneshot::Receiver<JoinResult> {
        let (sender, receiver) = oneshot::channel();
        group.join(now, request, &limits(), sender);
        receiver
    }

    fn sync(
        group: &mut Group,
        now: Instant,
        member_id: &str,
        assignments: Vec<(String, Bytes)>,
    ) -> oneshot::Receiver<SyncResult> {
        let (sender, receiver) = oneshot::channel();
        let generation = group.generation_id;
        group.sync(now, member_id, None, generation, assignments, sender);
        receiver
    }

    /// Runs the two-step join for a new dynamic member; returns its id and the pending answer.
    fn join_new(
        group: &mut Group,
        now: Instant,
        protocols: &[&str],
    ) -> (String, oneshot::Receiver<JoinResult>) {
        let first = join(group, now, request("", None, protocols))
            .try_recv()
            .expect("answered at once");
        assert_eq!(first.error, ErrorCode::MemberIdRequired);
        let answer = join(group, now, request(&first.member_id, None, protocols));
        (first.member_id, answer)
    }

    /// Two members joined and synced: a stable group at generation 1.
    fn stable_pair(start: Instant) -> (Group, String, String) {
        let mut group = Group::new("g".into());
        let (a, mut a_join) = join_new(&mut group, start, &["range"]);
        let (b, mut b_join) = join_new(&mut group, start, &["range"]);
        assert!(
            a_join.try_recv().is_err(),
            "the initial delay holds the first rebalance"
        );
        group.tick(start + Duration::from_secs(3), &limits());
        let (a_result, b_result) = (
            a_join.try_recv().expect("joined"),
            b_join.try_recv().expect("joined"),
        );
        assert_eq!((a_result.generation_id, b_result.generation_id), (1, 1));
        assert_eq!(a_result.leader, a, "the first member leads");
        assert_eq!(a_result.members.len(), 2, "the leader sees every member");
        assert!(b_result.members.is_empty(), "followers see none");
        let now = start + Duration::from_secs(3);
        let mut b_sync = sync(&mut group, now, &b, Vec::new());
        assert!(
            b_sync.try_recv().is_err(),
            "a follower waits for the leader"
        );
        let assignments = vec![
            (a.clone(), Bytes::from_static(b"A")),
            (b.clone(), Bytes::from_static(b"B")),
        ];
        let a_sync = sync(&mut group, now, &a, assignments)
            .try_recv()
            .expect("leader answered");
        assert_eq!(a_sync.assignment, Bytes::from_static(b"A"));
        assert_eq!(
            b_sync.try_recv().expect("follower answered").assignment,
            Bytes::from_static(b"B")
        );
        assert_eq!(group.state, GroupState::Stable);
        (group, a, b)
    }

    #[test]
    fn members_join_in_two_steps_then_sync_their_assignments() {
        stable_pair(Instant::now());
    }

    #[test]
    fn an_expired_session_rebalances_the_rest() {
        let start = Instant::now();
        let (mut group, a, b) = stable_pair(start);
        let later = start + Duration::from_secs(9);
        assert_eq!(group.heartbeat(later, &a, None, 1), ErrorCode::None);
        group.tick(start + Duration::from_secs(14), &limits());
        assert_eq!(
            group.state,
            GroupState::PreparingRebalance,
            "b stopped heartbeating"
        );
        assert!(!group.members.contains_key(&b));
        let now = start + Duration::from_secs(14);
        assert_eq!(
            group.heartbeat(now, &a, None, 1),
            ErrorCode::RebalanceInProgress
        );
        let rejoin = join(&mut group, now, request(&a, None, &["range"]))
            .try_recv()
            .expect("the only member rejoined");
        assert_eq!((rejoin.generation_id, rejoin.members.len()), (2, 1));
        assert_eq!(
            group.heartbeat(now, &a, None, 1),
            ErrorCode::IllegalGeneration
        );
        assert_eq!(
            group.heartbeat(now, &b, None, 2),
            ErrorCode::UnknownMemberId
        );
    }

    #[test]
    fn leaving_rebalances_and_the_last_leave_empties_the_group() {
        let start = Instant::now();
        let (mut group, a, b) = stable_pair(start);
        assert_eq!(group.leave(start, &b, None, &limits()), ErrorCode::None);
        assert_eq!(group.state, GroupState::PreparingRebalance);
        let rejoin = join(&mut group, start, request(&a, None, &["range"]))
            .try_recv()
            .expect("rejoined");
        assert_eq!(rejoin.generation_id, 2);
        assert_eq!(group.leave(start, &a, None, &limits()), ErrorCode::None);
        assert_eq!(group.state, GroupState::Empty);
        assert_eq!(
            group.leave(start, &a, None, &limits()),
            ErrorCode::UnknownMemberId
        );
    }

    #[test]
    fn a_restarted_static_member_keeps_its_assignment_without_a_rebalance() {
        let start = Instant::now();
        let mut group = Group::new("g".into());
        let mut first = join(
            &mut group,
            start,
            request("", Some("instance-1"), &["range"]),
        );
        group.tick(start + Duration::from_secs(3), &limits());
        let joined = first.try_recv().expect("joined");
        let now = start + Duration::from_secs(3);
        sync(
            &mut group,
            now,
            &joined.member_id,
            vec![(joined.member_id.clone(), Bytes::from_static(b"P0"))],
        );
        assert_eq!(group.state, GroupState::Stable);

        let restarted = join(&mut group, now, request("", Some("instance-1"), &["range"]))
            .try_recv()
            .expect("answered at once");
        assert_eq!(restarted.error, ErrorCode::None);
        assert_eq!(restarted.generation_id, 1, "no new generation");
        assert_eq!(
            restarted.leader, joined.member_id,
            "answered with the previous leader id"
        );
        assert!(restarted.members.is_empty(), "so it does not assign again");
        assert_ne!(restarted.member_id, joined.member_id);
        let assignment = sync(&mut group, now, &restarted.member_id, Vec::new())
            .try_recv()
            .expect("stable answers at once");
        assert_eq!(assignment.assignment, Bytes::from_static(b"P0"));
        assert_eq!(
            group.heartbeat(now, &joined.member_id, Some("instance-1"), 1),
            ErrorCode::FencedInstanceId
        );
    }

    #[test]
    fn the_protocol_every_member_supports_is_chosen() {
        let start = Instant::now();
        let mut group = Group::new("g".into());
        let (_, mut a) = join_new(&mut group, start, &["cooperative-sticky", "range"]);
        let (_, mut b) = join_new(&mut group, start, &["range"]);
        group.tick(start + Duration::from_secs(3), &limits());
        assert_eq!(
            a.try_recv().expect("joined").protocol_name.as_deref(),
            Some("range")
        );
        assert_eq!(
            b.try_recv().expect("joined").protocol_name.as_deref(),
            Some("range")
        );
        let refused = join(&mut group, start, request("", None, &["roundrobin"]))
            .try_recv()
            .expect("answered");
        assert_eq!(refused.error, ErrorCode::InconsistentGroupProtocol);
    }

    #[test]
    fn session_timeouts_outside_the_limits_are_refused() {
        let mut group = Group::new("g".into());
        let mut too_short = request("", None, &["range"]);
        too_short.session_timeout = Duration::from_millis(10);
        let refused = join(&mut group, Instant::now(), too_short)
            .try_recv()
            .expect("answered");
        assert_eq!(refused.error, ErrorCode::InvalidSessionTimeout);
    }
}
