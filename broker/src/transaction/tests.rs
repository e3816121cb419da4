//! Transactions through the handlers, without sockets: what a transactional client does,
//! request by request, and what a read_committed reader then sees.

use std::collections::BTreeMap;
use std::sync::Arc;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::add_offsets_to_txn::AddOffsetsToTxnRequest;
use riffle_protocol::api::add_partitions_to_txn::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use riffle_protocol::api::end_txn::EndTxnRequest;
use riffle_protocol::api::init_producer_id::InitProducerIdRequest;
use riffle_protocol::api::offset_fetch::{OffsetFetchRequest, OffsetFetchRequestTopic};
use riffle_protocol::api::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};
use riffle_protocol::api::txn_offset_commit::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use riffle_protocol::record::{Compression, RecordBatchBuilder};

use crate::cluster::{Cluster, Validation};
use crate::handler::group::offset_fetch;
use crate::handler::{
    add_offsets_to_txn, add_partitions_to_txn, end_txn, init_producer_id, produce,
    txn_offset_commit,
};
use crate::testing::{open_test_cluster, test_config};
use crate::transaction::TransactionState;

/// The topic every test writes to.
const TOPIC: &str = "events";

/// A transactional producer as a client drives it: its id, producer id, epoch and the
/// next sequence of each partition.
struct Producer {
    transactional_id: String,
    producer_id: i64,
    producer_epoch: i16,
    sequences: BTreeMap<i32, i32>,
}

fn cluster_with_flags(flags: &[&str]) -> (tempfile::TempDir, Arc<Cluster>) {
    let dir = tempfile::Builder::new()
        .prefix("riffle-transaction-test-")
        .tempdir()
        .expect("temp dir");
    let config = test_config(dir.path(), flags);
    let cluster = Cluster::open(config, ("127.0.0.1".into(), 9092)).expect("open");
    cluster
        .create_topic(TOPIC, 2, BTreeMap::new(), Validation::Apply)
        .expect("create");
    (dir, Arc::new(cluster))
}

fn cluster() -> (tempfile::TempDir, Arc<Cluster>) {
    cluster_with_flags(&[])
}

async fn init(cluster: &Arc<Cluster>, transactional_id: &str) -> Producer {
    let request = InitProducerIdRequest {
        transactional_id: Some(transactional_id.into()),
        transaction_timeout_ms: 60_000,
        producer_id: -1,
        producer_epoch: -1,
    };
    let response = init_producer_id::handle(
        cluster,
        &crate::handler::RequestContext::internal(cluster),
        4,
        request,
    )
    .await;
    assert_eq!(response.error_code, 0, "InitProducerId");
    Producer {
        transactional_id: transactional_id.into(),
        producer_id: response.producer_id,
        producer_epoch: response.producer_epoch,
        sequences: BTreeMap::new(),
    }
}

async fn add_partition(cluster: &Arc<Cluster>, producer: &Producer, partition: i32) -> i16 {
    let request = AddPartitionsToTxnRequest {
        v3_and_below_transactional_id: producer.transactional_id.clone(),
        v3_and_below_producer_id: producer.producer_id,
        v3_and_below_producer_epoch: producer.producer_epoch,
        v3_and_below_topics: vec![AddPartitionsToTxnTopic {
            name: TOPIC.into(),
            partitions: vec![partition],
        }],
        ..Default::default()
    };
    let response = add_partitions_to_txn::handle(
        cluster,
        &crate::handler::RequestContext::internal(cluster),
        3,
        request,
    )
    .await;
    response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

/// Produces `values` to `partition` in one transactional batch; returns the error code.
async fn send(
    cluster: &Arc<Cluster>,
    producer: &mut Producer,
    partition: i32,
    values: &[&str],
) -> i16 {
    let sequence = producer.sequences.entry(partition).or_insert(0);
    let mut builder = RecordBatchBuilder::new(Compression::None);
    builder
        .producer(producer.producer_id, producer.producer_epoch, *sequence)
        .transactional();
    for value in values {
        builder.append(1_000, None, Some(value.as_bytes()), &[]);
    }
    let request = ProduceRequest {
        transactional_id: Some(producer.transactional_id.clone()),
        acks: -1,
        timeout_ms: 5_000,
        topic_data: vec![TopicProduceData {
            name: TOPIC.into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(builder.build().expect("a batch")),
            }],
        }],
    };
    let response = produce::handle(
        cluster,
        &crate::handler::RequestContext::internal(cluster),
        9,
        request,
    )
    .await
    .expect("acks=all");
    let code = response.responses[0].partition_responses[0].error_code;
    if code == 0 {
        *sequence += i32::try_from(values.len()).expect("few values");
    }
    code
}

async fn end(cluster: &Arc<Cluster>, producer: &Producer, commit: bool) -> i16 {
    let request = EndTxnRequest {
        transactional_id: producer.transactional_id.clone(),
        producer_id: producer.producer_id,
        producer_epoch: producer.producer_epoch,
        committed: commit,
    };
    end_txn::handle(
        cluster,
        &crate::handler::RequestContext::internal(cluster),
        3,
        request,
    )
    .await
    .error_code
}

/// The values a read_committed reader of `partition` sees, as a consumer would filter
/// them: records below the last stable offset, minus aborted transactions and markers.
fn read_committed(cluster: &Cluster, partition: i32) -> Vec<String> {
    let partition = cluster.topic(TOPIC).expect("topic").partitions[partition as usize].clone();
    let last_stable_offset = partition.last_stable_offset().expect("lso");
    let aborted = partition
        .aborted_transactions(0, last_stable_offset)
        .expect("aborted");
    let bytes = partition
        .read(0, usize::MAX, riffle_storage::FirstBatch::AlwaysWhole)
        .expect("read");
    let mut values = Vec::new();
    for batch in riffle_protocol::record::batches(bytes) {
        let batch = batch.expect("a stored batch");
        let is_aborted = aborted.iter().any(|txn| {
            txn.producer_id == batch.producer_id()
                && (txn.first_offset..=txn.last_offset).contains(&batch.base_offset())
        });
        if batch.base_offset() >= last_stable_offset || batch.is_control() || is_aborted {
            continue;
        }
        for record in batch.records().expect("records") {
            values
                .push(String::from_utf8(record.value.unwrap_or_default().to_vec()).expect("utf8"));
        }
    }
    values
}

fn state_of(cluster: &Cluster, transactional_id: &str) -> TransactionState {
    cluster
        .transactions()
        .describe(transactional_id)
        .expect("known id")
        .state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_records_become_visible_and_aborted_ones_never_do() {
    // One producer commits a transaction over two partitions, aborts one, commits again;
    // read_committed sees the committed records only, and nothing of an open transaction.
    let (_dir, cluster) = cluster();
    let mut producer = init(&cluster, "txn").await;
    assert_eq!(add_partition(&cluster, &producer, 0).await, 0);
    assert_eq!(add_partition(&cluster, &producer, 1).await, 0);
    assert_eq!(send(&cluster, &mut producer, 0, &["a", "b"]).await, 0);
    assert_eq!(send(&cluster, &mut producer, 1, &["c"]).await, 0);
    assert!(
        read_committed(&cluster, 0).is_empty(),
        "nothing before the commit"
    );
    assert_eq!(end(&cluster, &producer, true).await, 0);
    assert_eq!(state_of(&cluster, "txn"), TransactionState::CompleteCommit);
    assert_eq!(read_committed(&cluster, 0), ["a", "b"]);
    assert_eq!(read_committed(&cluster, 1), ["c"]);

    assert_eq!(add_partition(&cluster, &producer, 0).await, 0);
    assert_eq!(send(&cluster, &mut producer, 0, &["x"]).await, 0);
    assert_eq!(end(&cluster, &producer, false).await, 0);
    assert_eq!(add_partition(&cluster, &producer, 0).await, 0);
    assert_eq!(send(&cluster, &mut producer, 0, &["d"]).await, 0);
    assert_eq!(read_committed(&cluster, 0), ["a", "b"]);
    assert_eq!(end(&cluster, &producer, true).await, 0);
    assert_eq!(read_committed(&cluster, 0), ["a", "b", "d"]);
    // A retried commit of a completed transaction succeeds; the opposite outcome does not.
    assert_eq!(end(&cluster, &producer, true).await, 0);
    assert_eq!(
        end(&cluster, &producer, false).await,
        ErrorCode::InvalidTxnState.code()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_kafkas_codes_and_disturb_nothing() {
    // A partition not added, an unknown transactional id, a plain batch inside an open
    // transaction and ending a transaction that is not open each get their code; the
    // transaction then still commits.
    let (_dir, cluster) = cluster();
    let mut producer = init(&cluster, "txn").await;
    assert_eq!(
        send(&cluster, &mut producer, 0, &["not added"]).await,
        ErrorCode::InvalidTxnState.code()
    );
    assert_eq!(
        end(&cluster, &producer, true).await,
        ErrorCode::InvalidTxnState.code()
    );
    let stranger = Producer {
        transactional_id: "unknown".into(),
        producer_id: producer.producer_id,
        producer_epoch: 0,
        sequences: BTreeMap::new(),
    };
    assert_eq!(
        add_partition(&cluster, &stranger, 0).await,
        ErrorCode::InvalidProducerIdMapping.code()
    );
    assert_eq!(
        end(&cluster, &stranger, true).await,
        ErrorCode::InvalidProducerIdMapping.code()
    );
    assert_eq!(add_partition(&cluster, &producer, 0).await, 0);
    assert_eq!(send(&cluster, &mut producer, 0, &["a"]).await, 0);
    let mut plain = RecordBatchBuilder::new(Compression::None);
    plain.producer(producer.producer_id, producer.producer_epoch, 1);
    plain.append(1_000, None, Some(b"plain"), &[]);
    let request = ProduceRequest {
        acks: -1,
        timeout_ms: 5_000,
        topic_data: vec![TopicProduceData {
            name: TOPIC.into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(plain.build().expect("a batch")),
            }],
        }],
        ..Default::default()
    };
    let response = produce::handle(
        &cluster,
        &crate::handler::RequestContext::internal(&cluster),
        9,
        request,
    )
    .await
    .expect("acks=all");
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        ErrorCode::InvalidTxnState.code()
    );
    assert_eq!(end(&cluster, &producer, true).await, 0);
    assert_eq!(read_committed(&cluster, 0), ["a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_producer_fences_the_zombie_and_aborts_its_transaction() {
    // Two producers with one id: the second's InitProducerId aborts the first's open
    // transaction; the first then gets INVALID_PRODUCER_EPOCH on Produce and
    // PRODUCER_FENCED on the transactional APIs, and its records never become visible.
    let (_dir, cluster) = cluster();
    let mut zombie = init(&cluster, "txn").await;
    assert_eq!(add_partition(&cluster, &zombie, 0).await, 0);
    assert_eq!(send(&cluster, &mut zombie, 0, &["zombie"]).await, 0);
    let mut fresh = init(&cluster, "txn").await;
    assert_eq!(fresh.producer_id, zombie.producer_id);
    assert!(fresh.producer_epoch > zombie.producer_epoch);
    assert_eq!(
        send(&cluster, &mut zombie, 0, &["late"]).await,
        ErrorCode::InvalidProducerEpoch.code()
    );
    let fenced = ErrorCode::ProducerFenced.code();
    assert_eq!(add_partition(&cluster, &zombie, 1).await, fenced);
    assert_eq!(end(&cluster, &zombie, true).await, fenced);
    assert_eq!(add_partition(&cluster, &fresh, 0).await, 0);
    assert_eq!(send(&cluster, &mut fresh, 0, &["fresh"]).await, 0);
    assert_eq!(end(&cluster, &fresh, true).await, 0);
    assert_eq!(read_committed(&cluster, 0), ["fresh"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_open_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let (_dir, cluster) = cluster();
    let request = InitProducerIdRequest {
        transactional_id: Some("slow".into()),
        transaction_timeout_ms: 100,
        producer_id: -1,
        producer_epoch: -1,
    };
    let response = init_producer_id::handle(
        &cluster,
        &crate::handler::RequestContext::internal(&cluster),
        4,
        request,
    )
    .await;
    let mut producer = Producer {
        transactional_id: "slow".into(),
        producer_id: response.producer_id,
        producer_epoch: response.producer_epoch,
        sequences: BTreeMap::new(),
    };
    assert_eq!(add_partition(&cluster, &producer, 0).await, 0);
    assert_eq!(send(&cluster, &mut producer, 0, &["slow"]).await, 0);
    cluster.transactions().tick(&cluster).await;
    assert_eq!(state_of(&cluster, "slow"), TransactionState::Ongoing);
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    cluster.transactions().tick(&cluster).await;
    assert_eq!(state_of(&cluster, "slow"), TransactionState::CompleteAbort);
    assert!(read_committed(&cluster, 0).is_empty());
    let partition = cluster.topic(TOPIC).expect("topic").partitions[0].clone();
    assert_eq!(
        partition.last_stable_offset().expect("lso"),
        partition.high_watermark()
    );
    assert_eq!(
        end(&cluster, &producer, true).await,
        ErrorCode::ProducerFenced.code()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decided_transaction_is_completed_after_a_restart() {
    // A crash between the commit decision and the markers: PrepareCommit is in the log, no
    // marker is. After the reopen the first tick writes the markers and completes it.
    let (dir, cluster) = cluster();
    let mut producer = init(&cluster, "txn").await;
    assert_eq!(add_partition(&cluster, &producer, 0).await, 0);
    assert_eq!(send(&cluster, &mut producer, 0, &["decided"]).await, 0);
    let prepared = cluster
        .transactions()
        .describe("txn")
        .expect("known")
        .prepare_end(producer.producer_id, producer.producer_epoch, true, 0)
        .expect("allowed")
        .expect("a change");
    cluster
        .transactions()
        .persist_for_tests(&prepared)
        .await
        .expect("persisted");
    cluster.shutdown().expect("shutdown");
    drop(cluster);

    let cluster = Arc::new(open_test_cluster(dir.path()));
    assert_eq!(state_of(&cluster, "txn"), TransactionState::PrepareCommit);
    assert!(read_committed(&cluster, 0).is_empty());
    cluster.transactions().tick(&cluster).await;
    assert_eq!(state_of(&cluster, "txn"), TransactionState::CompleteCommit);
    assert_eq!(read_committed(&cluster, 0), ["decided"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_committed_in_a_transaction_appear_only_when_it_commits() {
    // TxnOffsetCommit's offsets are invisible to OffsetFetch (UNSTABLE_OFFSET_COMMIT with
    // require_stable) until the commit; an aborted transaction's offsets never appear;
    // both survive a restart as they were.
    let (dir, cluster) = cluster();
    let producer = init(&cluster, "txn").await;
    let commit_offset = |offset| TxnOffsetCommitRequest {
        transactional_id: "txn".into(),
        group_id: "group".into(),
        producer_id: producer.producer_id,
        producer_epoch: producer.producer_epoch,
        topics: vec![TxnOffsetCommitRequestTopic {
            name: TOPIC.into(),
            partitions: vec![TxnOffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: offset,
                committed_leader_epoch: -1,
                committed_metadata: Some("m".into()),
            }],
        }],
        ..Default::default()
    };
    let add_offsets = AddOffsetsToTxnRequest {
        transactional_id: "txn".into(),
        producer_id: producer.producer_id,
        producer_epoch: producer.producer_epoch,
        group_id: "group".into(),
    };
    // Without AddOffsetsToTxn first, the commit is refused.
    let refused = txn_offset_commit::handle(
        &cluster,
        &crate::handler::RequestContext::internal(&cluster),
        3,
        commit_offset(1),
    )
    .await;
    assert_eq!(
        refused.topics[0].partitions[0].error_code,
        ErrorCode::InvalidTxnState.code()
    );
    let added = add_offsets_to_txn::handle(
        &cluster,
        &crate::handler::RequestContext::internal(&cluster),
        3,
        add_offsets.clone(),
    )
    .await;
    assert_eq!(added.error_code, 0);
    let committed = txn_offset_commit::handle(
        &cluster,
        &crate::handler::RequestContext::internal(&cluster),
        3,
        commit_offset(7),
    )
    .await;
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    assert_eq!(fetch_offset(&cluster, false), (-1, 0));
    assert_eq!(
        fetch_offset(&cluster, true),
        (-1, ErrorCode::UnstableOffsetCommit.code())
    );
    assert_eq!(end(&cluster, &producer, true).await, 0);
    assert_eq!(fetch_offset(&cluster, true), (7, 0));

    assert_eq!(
        add_offsets_to_txn::handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            3,
            add_offsets
        )
        .await
        .error_code,
        0
    );
    let committed = txn_offset_commit::handle(
        &cluster,
        &crate::handler::RequestContext::internal(&cluster),
        3,
        commit_offset(9),
    )
    .await;
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    assert_eq!(end(&cluster, &producer, false).await, 0);
    assert_eq!(fetch_offset(&cluster, true), (7, 0));
    cluster.shutdown().expect("shutdown");
    drop(cluster);
    let cluster = Arc::new(open_test_cluster(dir.path()));
    assert_eq!(fetch_offset(&cluster, true), (7, 0));
}

/// The group's committed offset of partition 0 and the partition's error code.
fn fetch_offset(cluster: &Cluster, require_stable: bool) -> (i64, i16) {
    let request = OffsetFetchRequest {
        group_id: "group".into(),
        topics: Some(vec![OffsetFetchRequestTopic {
            name: TOPIC.into(),
            partition_indexes: vec![0],
        }]),
        require_stable,
        ..Default::default()
    };
    let response = offset_fetch::handle(
        cluster,
        &crate::handler::RequestContext::internal(cluster),
        7,
        request,
    );
    let partition = &response.topics[0].partitions[0];
    (partition.committed_offset, partition.error_code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_drops_aborted_offsets_and_keeps_the_committed_one() {
    // __consumer_offsets in small segments: offset 7 committed in one transaction, 9 in an
    // aborted one, then a plain record so that both are in sealed segments. A cleaner pass
    // removes the aborted record (it must not count as the key's latest value), and after
    // a restart the group's offset is still 7.
    let (dir, cluster) = cluster();
    let configs = BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("segment.bytes".to_string(), "200".to_string()),
    ]);
    cluster
        .set_topic_configs(crate::group::OFFSETS_TOPIC, configs, Validation::Apply)
        .expect("small segments");
    let producer = init(&cluster, "txn").await;
    for (offset, commit) in [(7, true), (9, false)] {
        let add_offsets = AddOffsetsToTxnRequest {
            transactional_id: "txn".into(),
            producer_id: producer.producer_id,
            producer_epoch: producer.producer_epoch,
            group_id: "group".into(),
        };
        assert_eq!(
            add_offsets_to_txn::handle(
                &cluster,
                &crate::handler::RequestContext::internal(&cluster),
                3,
                add_offsets
            )
            .await
            .error_code,
            0
        );
        let request = TxnOffsetCommitRequest {
            transactional_id: "txn".into(),
            group_id: "group".into(),
            producer_id: producer.producer_id,
            producer_epoch: producer.producer_epoch,
            topics: vec![TxnOffsetCommitRequestTopic {
                name: TOPIC.into(),
                partitions: vec![TxnOffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: offset,
                    committed_leader_epoch: -1,
                    committed_metadata: None,
                }],
            }],
            ..Default::default()
        };
        let response = txn_offset_commit::handle(
            &cluster,
            &crate::handler::RequestContext::internal(&cluster),
            3,
            request,
        )
        .await;
        assert_eq!(response.topics[0].partitions[0].error_code, 0);
        assert_eq!(end(&cluster, &producer, commit).await, 0);
    }
    let sealing = crate::group::records::CommittedOffset {
        offset: 1,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp_ms: 0,
        expire_timestamp_ms: None,
    };
    let commits = vec![(TOPIC.to_string(), 1, sealing)];
    let (errors, _) = cluster
        .groups()
        .commit_offsets("other", "", None, -1, commits);
    assert_eq!(errors, [ErrorCode::None]);
    let offsets = cluster
        .topic(crate::group::OFFSETS_TOPIC)
        .expect("offsets topic");
    let log = &offsets.partitions[0];
    let before_bytes = log.size_bytes();
    tokio::task::block_in_place(|| crate::compaction::compact_logs(&cluster));
    assert!(
        log.size_bytes() < before_bytes,
        "the aborted commit was removed"
    );
    assert_eq!(fetch_offset(&cluster, true), (7, 0));
    cluster.shutdown().expect("shutdown");
    drop(offsets);
    drop(cluster);
    let cluster = Arc::new(open_test_cluster(dir.path()));
    assert_eq!(fetch_offset(&cluster, true), (7, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_transactional_id_expires_and_stays_forgotten() {
    let (dir, cluster) = cluster_with_flags(&["--transactional-id-expiration-ms", "1"]);
    init(&cluster, "idle").await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    cluster.transactions().tick(&cluster).await;
    assert!(cluster.transactions().describe("idle").is_none());
    cluster.shutdown().expect("shutdown");
    drop(cluster);
    let config = test_config(dir.path(), &["--transactional-id-expiration-ms", "1"]);
    let cluster = Cluster::open(config, ("127.0.0.1".into(), 9092)).expect("reopen");
    assert!(cluster.transactions().describe("idle").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_txn_abandoned_by_its_client_still_completes() {
    // The request future is dropped right after its first poll, as when a client
    // disconnects: the commit still completes, and the id takes a new producer at once
    // rather than answering CONCURRENT_TRANSACTIONS for ever.
    let (_dir, cluster) = cluster();
    let mut producer = init(&cluster, "txn").await;
    assert_eq!(add_partition(&cluster, &producer, 0).await, 0);
    assert_eq!(send(&cluster, &mut producer, 0, &["a"]).await, 0);
    let abandoned = end(&cluster, &producer, true);
    let _ = tokio::time::timeout(std::time::Duration::from_micros(1), abandoned).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while state_of(&cluster, "txn") != TransactionState::CompleteCommit {
        assert!(
            std::time::Instant::now() < deadline,
            "the commit never completed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(read_committed(&cluster, 0), ["a"]);
    init(&cluster, "txn").await;
}
