//! AddPartitionsToTxn (key 24): partitions join the producer's open transaction, which
//! starts with the first of them. A producer adds a partition before its first
//! transactional batch there; the broker refuses the batch otherwise.
//!
//! Versions 0-3, the client layout (v2 adds PRODUCER_FENCED, older versions get
//! INVALID_PRODUCER_EPOCH instead; v3 is flexible). Versions 4+ batch transactions for
//! brokers verifying on each other's behalf, which one node never needs.
//!
//! Errors, per partition: UNKNOWN_TOPIC_OR_PARTITION for a partition that does not exist,
//! and OPERATION_NOT_ATTEMPTED for the others of that request; otherwise the same code for
//! every partition: INVALID_REQUEST (empty transactional id), INVALID_PRODUCER_ID_MAPPING,
//! PRODUCER_FENCED, CONCURRENT_TRANSACTIONS, KAFKA_STORAGE_ERROR.

use std::sync::Arc;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::add_partitions_to_txn::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    AddPartitionsToTxnTopic, AddPartitionsToTxnTopicResult,
};

use crate::cluster::Cluster;
use crate::handler::RequestContext;
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
    let unknown = |topic: &AddPartitionsToTxnTopic, partition: i32| {
        cluster
            .topic(&topic.name)
            .is_none_or(|known| known.partition(partition).is_none())
    };
    let any_unknown = topics.iter().any(|topic| {
        topic
            .partitions
            .iter()
            .any(|partition| unknown(topic, *partition))
    });
    let outcome = if any_unknown {
        None
    } else if request.v3_and_below_transactional_id.is_empty() {
        Some(ErrorCode::InvalidRequest)
    } else {
        let partitions: Vec<(String, i32)> = topics
            .iter()
            .flat_map(|topic| {
                topic
                    .partitions
                    .iter()
                    .map(|partition| (topic.name.clone(), *partition))
            })
            .collect();
        let added = cluster
            .transactions()
            .add_partitions(
                cluster,
                &request.v3_and_below_transactional_id,
                request.v3_and_below_producer_id,
                request.v3_and_below_producer_epoch,
                &partitions,
            )
            .await;
        Some(added.err().unwrap_or(ErrorCode::None))
    };
    let code_for = |topic: &AddPartitionsToTxnTopic, partition: i32| match outcome {
        Some(code) => error_for_version(code, version, FIRST_FENCED_VERSION),
        None if unknown(topic, partition) => ErrorCode::UnknownTopicOrPartition,
        None => ErrorCode::OperationNotAttempted,
    };
    let results = topics
        .iter()
        .map(|topic| AddPartitionsToTxnTopicResult {
            name: topic.name.clone(),
            results_by_partition: topic
                .partitions
                .iter()
                .map(|partition| AddPartitionsToTxnPartitionResult {
                    partition_index: *partition,
                    partition_error_code: code_for(topic, *partition).code(),
                })
                .collect(),
        })
        .collect();
    AddPartitionsToTxnResponse {
        results_by_topic_v3_and_below: results,
        ..Default::default()
    }
}
