//! AddPartitionsToTxn (key 24): partitions join the producer's open transaction, which
//! starts with the first of them. A producer adds a partition before its first
//! transactional batch there; the broker refuses the batch otherwise.
//!
//! Versions 0-3, the client layout (v2 adds PRODUCER_FENCED, older versions get
//! INVALID_PRODUCER_EPOCH instead; v3 is flexible). Versions 4+ batch transactions for
//! brokers verifying on each other's behalf, which one node never needs.
//!
//! With `--authorizer acl`, as in Kafka: Write on the transactional id (else every
//! partition is TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and on each topic (else
//! TOPIC_AUTHORIZATION_FAILED for its partitions; internal topics are always refused).
//!
//! Errors, per partition: TOPIC_AUTHORIZATION_FAILED or UNKNOWN_TOPIC_OR_PARTITION for a
//! partition refused up front, and OPERATION_NOT_ATTEMPTED for the others of that request;
//! otherwise the same code for
//! every partition: INVALID_REQUEST (empty transactional id), INVALID_PRODUCER_ID_MAPPING,
//! PRODUCER_FENCED, CONCURRENT_TRANSACTIONS, KAFKA_STORAGE_ERROR.

use std::sync::Arc;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::add_partitions_to_txn::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    AddPartitionsToTxnTopic, AddPartitionsToTxnTopicResult,
};

use crate::cluster::Cluster;
use crate::handler::{Access, RequestContext};
use crate::security::acl::{AclOperation, ResourceType};
use crate::transaction::metadata::error_for_version;

/// The first version that knows PRODUCER_FENCED.
const FIRST_FENCED_VERSION: i16 = 2;

/// Answers AddPartitionsToTxn.
pub async fn handle(
    cluster: &Arc<Cluster>,
    context: &RequestContext,
    version: i16,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let topics = request.v3_and_below_topics;
    let transactional_id = &request.v3_and_below_transactional_id;
    let access = context.access(cluster);
    let outcome = if !access.allows(
        AclOperation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    ) {
        Outcome::Decided(ErrorCode::TransactionalIdAuthorizationFailed)
    } else {
        let refusals = refusals(cluster, &access, &topics);
        if refusals.iter().flatten().any(Option::is_some) {
            Outcome::Refused(refusals)
        } else if transactional_id.is_empty() {
            Outcome::Decided(ErrorCode::InvalidRequest)
        } else {
            let partitions: Vec<(String, i32)> = topics
                .iter()
                .flat_map(|topic| {
                    let name = &topic.name;
                    topic
                        .partitions
                        .iter()
                        .map(|partition| (name.clone(), *partition))
                })
                .collect();
            let added = cluster
                .transactions()
                .add_partitions(
                    cluster,
                    transactional_id,
                    request.v3_and_below_producer_id,
                    request.v3_and_below_producer_epoch,
                    &partitions,
                )
                .await;
            let code = added.err().unwrap_or(ErrorCode::None);
            Outcome::Decided(error_for_version(code, version, FIRST_FENCED_VERSION))
        }
    };
    let results = topics
        .iter()
        .enumerate()
        .map(|(topic_index, topic)| AddPartitionsToTxnTopicResult {
            name: topic.name.clone(),
            results_by_partition: topic
                .partitions
                .iter()
                .enumerate()
                .map(
                    |(partition_index, partition)| AddPartitionsToTxnPartitionResult {
                        partition_index: *partition,
                        partition_error_code: outcome.code(topic_index, partition_index).code(),
                    },
                )
                .collect(),
        })
        .collect();
    AddPartitionsToTxnResponse {
        results_by_topic_v3_and_below: results,
        ..Default::default()
    }
}

/// What every partition is answered.
enum Outcome {
    /// The same code for every partition: the coordinator's answer, or a refusal of the
    /// transactional id or request.
    Decided(ErrorCode),
    /// Some partitions refused up front (by topic, then partition, in request order); the
    /// others were not attempted.
    Refused(Vec<Vec<Option<ErrorCode>>>),
}

impl Outcome {
    fn code(&self, topic_index: usize, partition_index: usize) -> ErrorCode {
        match self {
            Outcome::Decided(code) => *code,
            Outcome::Refused(refusals) => refusals
                .get(topic_index)
                .and_then(|partitions| partitions.get(partition_index).copied().flatten())
                .unwrap_or(ErrorCode::OperationNotAttempted),
        }
    }
}

/// Each partition's refusal, if any: TOPIC_AUTHORIZATION_FAILED for a topic the principal
/// may not write (with an authorizer, internal topics too, as in Kafka), then
/// UNKNOWN_TOPIC_OR_PARTITION for a partition that does not exist.
fn refusals(
    cluster: &Cluster,
    access: &Access<'_>,
    topics: &[AddPartitionsToTxnTopic],
) -> Vec<Vec<Option<ErrorCode>>> {
    topics
        .iter()
        .map(|topic| {
            let writable = !(access.is_enforced() && Cluster::is_internal_topic(&topic.name))
                && access.allows(AclOperation::Write, ResourceType::Topic, &topic.name);
            let known = cluster.topic(&topic.name);
            topic
                .partitions
                .iter()
                .map(|partition| match &known {
                    _ if !writable => Some(ErrorCode::TopicAuthorizationFailed),
                    Some(known) if known.partition(*partition).is_some() => None,
                    _ => Some(ErrorCode::UnknownTopicOrPartition),
                })
                .collect()
        })
        .collect()
}
