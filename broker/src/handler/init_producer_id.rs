//! InitProducerId (key 22): gives an idempotent producer its producer id and epoch.
//! Versions 0-4: v2 is the first flexible version; v3 lets a producer send its current id
//! and epoch to have the epoch bumped instead of starting over (KIP-360); v4 only adds an
//! error code we never send.
//!
//! A producer that sends no id gets a fresh one with epoch 0. One that sends an id we
//! handed out gets the same id with the next epoch, which resets its sequence numbers;
//! when the epoch would reach `i16::MAX`, or the id is not one of ours, it gets a fresh
//! id instead. Ids are never reused, even across restarts (see `Cluster`).
//!
//! Errors (producer id -1, epoch -1): INVALID_REQUEST (a transactional id, which we do
//! not support yet, or only one of producer id and epoch), KAFKA_STORAGE_ERROR (a new
//! block of ids could not be recorded).

use riffle_protocol::ErrorCode;
use riffle_protocol::api::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use tracing::warn;

use crate::cluster::Cluster;

/// Kafka's "no producer id".
const NO_PRODUCER_ID: i64 = -1;
/// Kafka's "no producer epoch".
const NO_PRODUCER_EPOCH: i16 = -1;

/// Answers InitProducerId.
pub fn handle(
    cluster: &Cluster,
    _version: i16,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let (error_code, producer_id, producer_epoch) = match producer_id_and_epoch(cluster, &request) {
        Ok((producer_id, producer_epoch)) => (ErrorCode::None, producer_id, producer_epoch),
        Err(code) => (code, NO_PRODUCER_ID, NO_PRODUCER_EPOCH),
    };
    InitProducerIdResponse {
        throttle_time_ms: 0,
        error_code: error_code.code(),
        producer_id,
        producer_epoch,
    }
}

fn producer_id_and_epoch(
    cluster: &Cluster,
    request: &InitProducerIdRequest,
) -> Result<(i64, i16), ErrorCode> {
    if request.transactional_id.is_some() {
        // Transactions are not supported yet: they also need FindCoordinator for
        // transaction coordinators, AddPartitionsToTxn, EndTxn and control batches.
        // COORDINATOR_NOT_AVAILABLE would make clients retry for ever, and an authorization
        // error would mislead; INVALID_REQUEST fails the producer at once, which says it.
        return Err(ErrorCode::InvalidRequest);
    }
    // v0-2 carry neither field, and they decode as -1: a fresh id.
    match (request.producer_id, request.producer_epoch) {
        (NO_PRODUCER_ID, NO_PRODUCER_EPOCH) => fresh_producer_id(cluster),
        (NO_PRODUCER_ID, _) | (_, NO_PRODUCER_EPOCH) => Err(ErrorCode::InvalidRequest),
        (producer_id, producer_epoch) => bumped_epoch(cluster, producer_id, producer_epoch),
    }
}

/// The same id with the next epoch (KIP-360), if the id is ours and the epoch has room.
fn bumped_epoch(
    cluster: &Cluster,
    producer_id: i64,
    producer_epoch: i16,
) -> Result<(i64, i16), ErrorCode> {
    if producer_epoch < 0 || !cluster.producer_id_was_allocated(producer_id) {
        return fresh_producer_id(cluster);
    }
    // Kafka treats an epoch of i16::MAX - 1 as exhausted, so i16::MAX is never handed out.
    match producer_epoch.checked_add(1) {
        Some(next_epoch) if next_epoch < i16::MAX => Ok((producer_id, next_epoch)),
        _ => fresh_producer_id(cluster),
    }
}

fn fresh_producer_id(cluster: &Cluster) -> Result<(i64, i16), ErrorCode> {
    match cluster.allocate_producer_id() {
        Ok(producer_id) => Ok((producer_id, 0)),
        Err(error) => {
            warn!(%error, "cannot allocate a producer id");
            Err(error.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_cluster;

    fn init(
        cluster: &Cluster,
        version: i16,
        producer_id: i64,
        producer_epoch: i16,
    ) -> (i16, i64, i16) {
        let request = InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            producer_id,
            producer_epoch,
        };
        let response = handle(cluster, version, request);
        (
            response.error_code,
            response.producer_id,
            response.producer_epoch,
        )
    }

    #[test]
    fn fresh_ids_are_distinct_and_start_at_epoch_zero() {
        // Two requests without an id get two different ids, each with epoch 0.
        let (_dir, cluster) = test_cluster();
        let (first_code, first_id, first_epoch) = init(&cluster, 1, -1, -1);
        let (second_code, second_id, second_epoch) = init(&cluster, 4, -1, -1);
        assert_eq!(
            (first_code, first_epoch, second_code, second_epoch),
            (0, 0, 0, 0)
        );
        assert_ne!(first_id, second_id);
        assert!(first_id >= 0 && second_id >= 0);
    }

    #[test]
    fn a_known_id_gets_its_epoch_bumped() {
        // v3+: our id comes back with epoch + 1; an exhausted epoch or a foreign id gets a
        // fresh id; an id without an epoch is refused.
        let (_dir, cluster) = test_cluster();
        let (_, producer_id, _) = init(&cluster, 4, -1, -1);
        assert_eq!(init(&cluster, 3, producer_id, 0), (0, producer_id, 1));
        let (code, exhausted_id, epoch) = init(&cluster, 4, producer_id, i16::MAX - 1);
        assert_eq!((code, epoch), (0, 0));
        assert_ne!(exhausted_id, producer_id);
        let (code, foreign_id, epoch) = init(&cluster, 4, 1_000_000_000, 5);
        assert_eq!((code, epoch), (0, 0));
        assert_ne!(foreign_id, 1_000_000_000);
        assert_eq!(init(&cluster, 4, producer_id, -1), (42, -1, -1));
    }

    #[test]
    fn transactional_producers_are_refused() {
        // A transactional id gets INVALID_REQUEST with no id and no epoch.
        let (_dir, cluster) = test_cluster();
        let request = InitProducerIdRequest {
            transactional_id: Some("txn".into()),
            ..Default::default()
        };
        let response = handle(&cluster, 4, request);
        assert_eq!(
            (
                response.error_code,
                response.producer_id,
                response.producer_epoch
            ),
            (42, -1, -1)
        );
    }
}
