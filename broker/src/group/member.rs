//! One member of a classic consumer group.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::state::{JoinResult, SyncResult};

/// A member as the coordinator sees it.
pub struct Member {
    /// The id the coordinator gave it.
    pub member_id: String,
    /// Its static identity (KIP-345), if it has one.
    pub group_instance_id: Option<String>,
    /// The client's self-chosen name.
    pub client_id: String,
    /// Where it connects from.
    pub client_host: String,
    /// How long it may go without a heartbeat before it is removed.
    pub session_timeout: Duration,
    /// How long a rebalance waits for it to rejoin.
    pub rebalance_timeout: Duration,
    /// The protocols it supports, in its order of preference, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// What the leader assigned it in the current generation.
    pub assignment: Bytes,
    /// When its session ends unless it heartbeats (or joins, or syncs) again.
    pub session_deadline: Instant,
    /// Its JoinGroup, waiting for the rebalance to complete.
    pub join_waiter: Option<oneshot::Sender<JoinResult>>,
    /// Its SyncGroup, waiting for the leader's assignment.
    pub sync_waiter: Option<oneshot::Sender<SyncResult>>,
    /// When it joined relative to the others: a group without a leader picks the
    /// earliest, as Kafka does.
    pub join_sequence: u64,
}

impl Member {
    /// Pushes the session deadline out from `now`.
    pub fn touch(&mut self, now: Instant) {
        self.session_deadline = now + self.session_timeout;
    }

    /// The metadata it sent for `protocol`, if it supports it.
    pub fn metadata_for(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata)
    }

    /// Whether it is waiting in a JoinGroup.
    pub fn is_awaiting_join(&self) -> bool {
        self.join_waiter.is_some()
    }
}
