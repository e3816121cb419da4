//! Heartbeat (key 12): a member is alive; the answer tells it whether to rejoin.
//!
//! Versions 0-4. Errors: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS
//! (rejoin now), FENCED_INSTANCE_ID.

use std::time::Instant;

use riffle_protocol::api::heartbeat::{HeartbeatRequest, HeartbeatResponse};

use crate::cluster::Cluster;
use crate::handler::RequestContext;

/// Answers Heartbeat.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: HeartbeatRequest,
) -> HeartbeatResponse {
    let error = cluster.groups().heartbeat(
        Instant::now(),
        &request.group_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
    );
    HeartbeatResponse {
        error_code: error.code(),
        ..Default::default()
    }
}
