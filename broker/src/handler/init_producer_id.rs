//! InitProducerId (key 22): gives a producer its producer id and epoch.
//! Versions 0-4: v2 is the first flexible version; v3 lets a producer send its current id
//! and epoch to have the epoch bumped instead of starting over (KIP-360); v4 adds
//! PRODUCER_FENCED (older versions get INVALID_PRODUCER_EPOCH instead, KIP-588).
//!
//! Without a transactional id (idempotent producers): a producer that sends no id gets a
//! fresh one with epoch 0. One that sends an id we handed out gets the same id with the
//! next epoch, which resets its sequence numbers; when the epoch would reach `i16::MAX`, or
//! the id is not one of ours, it gets a fresh id instead. Ids are never reused, even across
//! restarts (see `Cluster`).
//!
//! With a transactional id, the transaction coordinator answers: the id keeps its producer
//! id across producers and restarts, each InitProducerId bumps its epoch (fencing the
//! previous producer), and an open transaction of the previous producer is aborted first.
//!
//! With `--authorizer acl`: a transactional producer needs Write on its transactional id
//! (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED), an idempotent one IdempotentWrite on the
//! cluster or Write on some topic (else CLUSTER_AUTHORIZATION_FAILED), as in Kafka.
//!
//! Errors (producer id -1, epoch -1): TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
//! CLUSTER_AUTHORIZATION_FAILED, INVALID_REQUEST (an empty transactional id, or only
//! one of producer id and epoch), INVALID_TRANSACTION_TIMEOUT (above
//! `--transaction-max-timeout-ms`, or not positive), PRODUCER_FENCED,
//! CONCURRENT_TRANSACTIONS, KAFKA_STORAGE_ERROR (a new block of ids could not be recorded).

use std::sync::Arc;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use tracing::warn;

use crate::cluster::Cluster;
use crate::handler::{Access, RequestContext};
use crate::security::acl::{AclOperation, CLUSTER_NAME, ResourceType};
use crate::transaction::metadata::error_for_version;

/// Kafka's "no producer id".
const NO_PRODUCER_ID: i64 = -1;
/// Kafka's "no producer epoch".
const NO_PRODUCER_EPOCH: i16 = -1;
/// The first version that knows PRODUCER_FENCED.
const FIRST_FENCED_VERSION: i16 = 4;

/// Answers InitProducerId.
pub async fn handle(
    cluster: &Arc<Cluster>,
    context: &RequestContext,
    version: i16,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    if let Some(code) = refusal(
        &context.access(cluster),
        request.transactional_id.as_deref(),
    ) {
        return InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code: code.code(),
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
        };
    }
    let expected = match (request.producer_id, request.producer_epoch) {
        // v0-2 carry neither field, and they decode as -1.
        (NO_PRODUCER_ID, NO_PRODUCER_EPOCH) => Ok(None),
        (NO_PRODUCER_ID, _) | (_, NO_PRODUCER_EPOCH) => Err(ErrorCode::InvalidRequest),
        (producer_id, producer_epoch) => Ok(Some((producer_id, producer_epoch))),
    };
    let answer = match (expected, request.transactional_id.as_deref()) {
        (Err(code), _) => Err(code),
        (Ok(expected), Some(transactional_id)) => {
            cluster
                .transactions()
                .init_producer_id(
                    cluster,
                    transactional_id,
                    request.transaction_timeout_ms,
                    expected,
                )
                .await
        }
        (Ok(None), None) => tokio::task::block_in_place(|| fresh_producer_id(cluster)),
        (Ok(Some((producer_id, producer_epoch))), None) => {
            tokio::task::block_in_place(|| bumped_epoch(cluster, producer_id, producer_epoch))
        }
    };
    let (error_code, producer_id, producer_epoch) = match answer {
        Ok((producer_id, producer_epoch)) => (ErrorCode::None, producer_id, producer_epoch),
        Err(code) => (
            error_for_version(code, version, FIRST_FENCED_VERSION),
            NO_PRODUCER_ID,
            NO_PRODUCER_EPOCH,
        ),
    };
    InitProducerIdResponse {
        throttle_time_ms: 0,
        error_code: error_code.code(),
        producer_id,
        producer_epoch,
    }
}

/// Why the authorizer refuses the request, as Kafka checks it: a transactional producer
/// needs Write on its transactional id; an idempotent one IdempotentWrite on the cluster,
/// or Write on some topic (KIP-679, so that idempotence can be on by default).
fn refusal(access: &Access<'_>, transactional_id: Option<&str>) -> Option<ErrorCode> {
    match transactional_id {
        Some(transactional_id)
            if !access.allows(
                AclOperation::Write,
                ResourceType::TransactionalId,
                transactional_id,
            ) =>
        {
            Some(ErrorCode::TransactionalIdAuthorizationFailed)
        }
        Some(_) => None,
        None if !access.filters(
            AclOperation::IdempotentWrite,
            ResourceType::Cluster,
            CLUSTER_NAME,
        ) && !access.allows_any(AclOperation::Write, ResourceType::Topic) =>
        {
            Some(ErrorCode::ClusterAuthorizationFailed)
        }
        None => None,
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
        cluster: &Arc<Cluster>,
        version: i16,
        transactional_id: Option<&str>,
        producer_id: i64,
        producer_epoch: i16,
    ) -> (i16, i64, i16) {
        let request = InitProducerIdRequest {
            transactional_id: transactional_id.map(str::to_string),
            transaction_timeout_ms: 60_000,
            producer_id,
            producer_epoch,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let response = runtime.block_on(handle(
            cluster,
            &crate::handler::RequestContext::internal(cluster),
            version,
            request,
        ));
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
        let cluster = Arc::new(cluster);
        let (first_code, first_id, first_epoch) = init(&cluster, 1, None, -1, -1);
        let (second_code, second_id, second_epoch) = init(&cluster, 4, None, -1, -1);
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
        let cluster = Arc::new(cluster);
        let (_, producer_id, _) = init(&cluster, 4, None, -1, -1);
        assert_eq!(init(&cluster, 3, None, producer_id, 0), (0, producer_id, 1));
        let (code, exhausted_id, epoch) = init(&cluster, 4, None, producer_id, i16::MAX - 1);
        assert_eq!((code, epoch), (0, 0));
        assert_ne!(exhausted_id, producer_id);
        let (code, foreign_id, epoch) = init(&cluster, 4, None, 1_000_000_000, 5);
        assert_eq!((code, epoch), (0, 0));
        assert_ne!(foreign_id, 1_000_000_000);
        assert_eq!(init(&cluster, 4, None, producer_id, -1), (42, -1, -1));
    }

    #[test]
    fn a_transactional_id_keeps_its_producer_id_and_each_init_fences_the_last() {
        // The same transactional id maps to the same producer id with a higher epoch each
        // time; a v3 request naming a stale epoch is fenced (PRODUCER_FENCED at v4,
        // INVALID_PRODUCER_EPOCH at v3); a timeout above the maximum is refused.
        let (_dir, cluster) = test_cluster();
        let cluster = Arc::new(cluster);
        let (code, producer_id, epoch) = init(&cluster, 4, Some("txn"), -1, -1);
        assert_eq!((code, epoch), (0, 0));
        assert_eq!(init(&cluster, 4, Some("txn"), -1, -1), (0, producer_id, 1));
        let fenced = ErrorCode::ProducerFenced.code();
        assert_eq!(
            init(&cluster, 4, Some("txn"), producer_id, 0),
            (fenced, -1, -1)
        );
        let epoch_code = ErrorCode::InvalidProducerEpoch.code();
        assert_eq!(
            init(&cluster, 3, Some("txn"), producer_id, 0),
            (epoch_code, -1, -1)
        );
        let request = InitProducerIdRequest {
            transactional_id: Some("txn".into()),
            transaction_timeout_ms: 900_001,
            ..Default::default()
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let response = runtime.block_on(handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            4,
            request,
        ));
        assert_eq!(
            response.error_code,
            ErrorCode::InvalidTransactionTimeout.code()
        );
    }
}
