//! Each API's authorization through its handler, with `--authorizer acl`: a principal
//! without the ACL gets Kafka's error code, and with it the request goes on to its usual
//! answer. Produce, Fetch, Metadata, ListOffsets and the ACL APIs have their own tests in
//! their files.

use std::collections::BTreeMap;
use std::sync::Arc;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::add_offsets_to_txn::AddOffsetsToTxnRequest;
use riffle_protocol::api::add_partitions_to_txn::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use riffle_protocol::api::alter_configs as legacy_alter;
use riffle_protocol::api::create_partitions::{CreatePartitionsRequest, CreatePartitionsTopic};
use riffle_protocol::api::create_topics::{CreatableTopic, CreateTopicsRequest};
use riffle_protocol::api::delete_groups::DeleteGroupsRequest;
use riffle_protocol::api::delete_records::{
    DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
};
use riffle_protocol::api::delete_topics::DeleteTopicsRequest;
use riffle_protocol::api::describe_configs::{DescribeConfigsRequest, DescribeConfigsResource};
use riffle_protocol::api::describe_groups::DescribeGroupsRequest;
use riffle_protocol::api::describe_producers::{DescribeProducersRequest, TopicRequest};
use riffle_protocol::api::describe_transactions::DescribeTransactionsRequest;
use riffle_protocol::api::end_txn::EndTxnRequest;
use riffle_protocol::api::find_coordinator::FindCoordinatorRequest;
use riffle_protocol::api::heartbeat::HeartbeatRequest;
use riffle_protocol::api::incremental_alter_configs::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use riffle_protocol::api::init_producer_id::InitProducerIdRequest;
use riffle_protocol::api::join_group::{JoinGroupRequest, JoinGroupRequestProtocol};
use riffle_protocol::api::leave_group::LeaveGroupRequest;
use riffle_protocol::api::list_groups::ListGroupsRequest;
use riffle_protocol::api::list_transactions::ListTransactionsRequest;
use riffle_protocol::api::offset_commit::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use riffle_protocol::api::offset_delete::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use riffle_protocol::api::offset_fetch::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use riffle_protocol::api::sync_group::SyncGroupRequest;
use riffle_protocol::api::txn_offset_commit::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};

use super::*;
use crate::cluster::{Cluster, Validation};
use crate::security::acl::AclOperation::{self, *};
use crate::testing::{acl_cluster, allow, context_of};

const GROUP_DENIED: i16 = ErrorCode::GroupAuthorizationFailed as i16;
const TOPIC_DENIED: i16 = ErrorCode::TopicAuthorizationFailed as i16;
const CLUSTER_DENIED: i16 = ErrorCode::ClusterAuthorizationFailed as i16;
const TRANSACTION_DENIED: i16 = ErrorCode::TransactionalIdAuthorizationFailed as i16;

/// An ACL cluster with topics `t` and `u` of one partition each.
fn cluster() -> (tempfile::TempDir, Arc<Cluster>) {
    let (dir, cluster) = acl_cluster(&[]);
    for name in ["t", "u"] {
        cluster
            .create_topic(name, 1, BTreeMap::new(), Validation::Apply)
            .expect("create");
    }
    (dir, Arc::new(cluster))
}

/// Grants `principal` `operation` on each pattern.
fn grant(cluster: &Cluster, principal: &str, operation: AclOperation, patterns: &[&str]) {
    for pattern in patterns {
        allow(cluster, pattern, principal, operation);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_membership_needs_read_on_the_group() {
    // JoinGroup, SyncGroup, Heartbeat and LeaveGroup answer GROUP_AUTHORIZATION_FAILED
    // without Read on the group; with it they reach the coordinator.
    let (_dir, cluster) = cluster();
    let alice = context_of(&cluster, "User:alice");
    let join = || JoinGroupRequest {
        group_id: "g".into(),
        session_timeout_ms: 10_000,
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: Default::default(),
        }],
        ..Default::default()
    };
    let codes = |cluster: Arc<Cluster>, alice: RequestContext| async move {
        let joined = group::join::handle(&cluster, &alice, 7, "c", join()).await;
        let sync = SyncGroupRequest {
            group_id: "g".into(),
            ..Default::default()
        };
        let synced = group::sync::handle(&cluster, &alice, 5, sync).await;
        let heartbeat = HeartbeatRequest {
            group_id: "g".into(),
            ..Default::default()
        };
        let beat = group::heartbeat::handle(&cluster, &alice, 4, heartbeat);
        let leave = LeaveGroupRequest {
            group_id: "g".into(),
            member_id: "m".into(),
            ..Default::default()
        };
        let left = group::leave::handle(&cluster, &alice, 2, leave);
        [
            joined.error_code,
            synced.error_code,
            beat.error_code,
            left.error_code,
        ]
    };
    assert_eq!(
        codes(cluster.clone(), alice.clone()).await,
        [GROUP_DENIED; 4]
    );
    grant(&cluster, "User:alice", Read, &["group:literal:g"]);
    let allowed = codes(cluster.clone(), alice).await;
    let member_id_required = ErrorCode::MemberIdRequired.code();
    let unknown_member = ErrorCode::UnknownMemberId.code();
    assert_eq!(
        allowed,
        [
            member_id_required,
            unknown_member,
            unknown_member,
            unknown_member
        ]
    );
}

fn offset_commit(topics: &[&str]) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: "g".into(),
        generation_id_or_member_epoch: -1,
        topics: topics
            .iter()
            .map(|name| OffsetCommitRequestTopic {
                name: name.to_string(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: 5,
                    ..Default::default()
                }],
            })
            .collect(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_commit_needs_read_on_the_group_then_on_each_topic() {
    // Without Read on the group every partition is GROUP_AUTHORIZATION_FAILED; with it, a
    // topic without Read is TOPIC_AUTHORIZATION_FAILED and the other is committed.
    let (_dir, cluster) = cluster();
    let alice = context_of(&cluster, "User:alice");
    let commit = |cluster: Arc<Cluster>, alice: RequestContext| async move {
        let request = offset_commit(&["t", "u"]);
        let response = group::offset_commit::handle(&cluster, &alice, 8, request).await;
        let partitions = response.topics.iter().flat_map(|topic| &topic.partitions);
        partitions
            .map(|partition| partition.error_code)
            .collect::<Vec<i16>>()
    };
    assert_eq!(
        commit(cluster.clone(), alice.clone()).await,
        vec![GROUP_DENIED; 2]
    );
    grant(
        &cluster,
        "User:alice",
        Read,
        &["group:literal:g", "topic:literal:t"],
    );
    assert_eq!(commit(cluster.clone(), alice).await, vec![0, TOPIC_DENIED]);
    let committed = cluster.groups().fetch_offsets("g");
    assert_eq!(
        committed.keys().collect::<Vec<_>>(),
        vec![&("t".to_string(), 0)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_fetch_needs_describe_on_the_group_and_hides_undescribable_topics() {
    // v8: a group without Describe answers GROUP_AUTHORIZATION_FAILED; with it, a named topic
    // without Describe answers TOPIC_AUTHORIZATION_FAILED, and a null topic list leaves it
    // out. v7 carries the group's refusal in the response's error code.
    let (_dir, cluster) = cluster();
    let admin_commit = offset_commit(&["t", "u"]);
    let anyone = context_of(&cluster, "User:ANONYMOUS");
    grant(
        &cluster,
        "User:ANONYMOUS",
        Read,
        &["group:literal:g", "topic:literal:*"],
    );
    group::offset_commit::handle(&cluster, &anyone, 8, admin_commit).await;
    let alice = context_of(&cluster, "User:alice");
    let fetch = |topics: Option<Vec<OffsetFetchRequestTopics>>| OffsetFetchRequest {
        groups: vec![OffsetFetchRequestGroup {
            group_id: "g".into(),
            topics,
            ..Default::default()
        }],
        ..Default::default()
    };
    let named = || {
        let topic = |name: &str| OffsetFetchRequestTopics {
            name: name.into(),
            partition_indexes: vec![0],
        };
        Some(vec![topic("t"), topic("u")])
    };
    let refused = group::offset_fetch::handle(&cluster, &alice, 8, fetch(named()));
    assert_eq!(refused.groups[0].error_code, GROUP_DENIED);
    let v7 = OffsetFetchRequest {
        group_id: "g".into(),
        topics: Some(vec![OffsetFetchRequestTopic {
            name: "t".into(),
            partition_indexes: vec![0],
        }]),
        ..Default::default()
    };
    assert_eq!(
        group::offset_fetch::handle(&cluster, &alice, 7, v7).error_code,
        GROUP_DENIED
    );

    grant(
        &cluster,
        "User:alice",
        Describe,
        &["group:literal:g", "topic:literal:t"],
    );
    let answered = |response: &riffle_protocol::api::offset_fetch::OffsetFetchResponse| {
        let topics = response.groups[0].topics.iter();
        topics
            .map(|topic| {
                (
                    topic.name.clone(),
                    topic.partitions[0].committed_offset,
                    topic.partitions[0].error_code,
                )
            })
            .collect::<Vec<_>>()
    };
    let by_name = group::offset_fetch::handle(&cluster, &alice, 8, fetch(named()));
    assert_eq!(
        answered(&by_name),
        vec![("t".into(), 5, 0), ("u".into(), -1, TOPIC_DENIED)]
    );
    let every = group::offset_fetch::handle(&cluster, &alice, 8, fetch(None));
    assert_eq!(answered(&every), vec![("t".into(), 5, 0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_administration_checks_each_group() {
    // DescribeGroups needs Describe per group, DeleteGroups and OffsetDelete Delete;
    // ListGroups lists only the describable groups unless the principal may describe the
    // cluster.
    let (_dir, cluster) = cluster();
    let anyone = context_of(&cluster, "User:ANONYMOUS");
    grant(
        &cluster,
        "User:ANONYMOUS",
        Read,
        &["group:literal:*", "topic:literal:*"],
    );
    for group_id in ["g", "h"] {
        let mut commit = offset_commit(&["t"]);
        commit.group_id = group_id.into();
        group::offset_commit::handle(&cluster, &anyone, 8, commit).await;
    }
    let alice = context_of(&cluster, "User:alice");
    grant(&cluster, "User:alice", Describe, &["group:literal:g"]);
    let describe = DescribeGroupsRequest {
        groups: vec!["g".into(), "h".into()],
        include_authorized_operations: true,
    };
    let described = group::describe::handle(&cluster, &alice, 5, describe);
    let codes: Vec<i16> = described
        .groups
        .iter()
        .map(|group| group.error_code)
        .collect();
    assert_eq!(codes, vec![0, GROUP_DENIED]);
    assert_eq!(
        described.groups[0].authorized_operations,
        1 << Describe.code()
    );
    let listed = group::list::handle(&cluster, &alice, 4, ListGroupsRequest::default());
    let ids: Vec<&str> = listed
        .groups
        .iter()
        .map(|group| group.group_id.as_str())
        .collect();
    assert_eq!(ids, vec!["g"]);
    grant(
        &cluster,
        "User:alice",
        Describe,
        &["cluster:literal:kafka-cluster"],
    );
    let listed = group::list::handle(&cluster, &alice, 4, ListGroupsRequest::default());
    assert_eq!(listed.groups.len(), 2);

    let offset_delete = || OffsetDeleteRequest {
        group_id: "g".into(),
        topics: vec![OffsetDeleteRequestTopic {
            name: "t".into(),
            partitions: vec![OffsetDeleteRequestPartition { partition_index: 0 }],
        }],
    };
    let refused = group::offset_delete::handle(&cluster, &alice, 0, offset_delete()).await;
    assert_eq!(refused.error_code, GROUP_DENIED);
    grant(&cluster, "User:alice", Delete, &["group:literal:g"]);
    let topic_refused = group::offset_delete::handle(&cluster, &alice, 0, offset_delete()).await;
    assert_eq!(
        topic_refused.topics[0].partitions[0].error_code,
        TOPIC_DENIED
    );
    let delete = DeleteGroupsRequest {
        groups_names: vec!["g".into(), "h".into()],
    };
    let deleted = group::delete::handle(&cluster, &alice, 2, delete).await;
    let codes: Vec<i16> = deleted
        .results
        .iter()
        .map(|result| result.error_code)
        .collect();
    assert_eq!(codes, vec![0, GROUP_DENIED]);
}

#[test]
fn find_coordinator_needs_describe_on_the_group_or_transactional_id() {
    // A key the principal may not describe is refused with its type's code; batched keys
    // are answered one by one.
    let (_dir, cluster) = cluster();
    let alice = context_of(&cluster, "User:alice");
    grant(
        &cluster,
        "User:alice",
        Describe,
        &["group:literal:g", "transactional_id:literal:tx"],
    );
    let find = |key_type: i8| FindCoordinatorRequest {
        key_type,
        coordinator_keys: vec!["g".into(), "tx".into()],
        ..Default::default()
    };
    let codes = |key_type: i8| -> Vec<i16> {
        let response = find_coordinator::handle(&cluster, &alice, 4, find(key_type));
        response
            .coordinators
            .iter()
            .map(|coordinator| coordinator.error_code)
            .collect()
    };
    assert_eq!(codes(0), vec![0, GROUP_DENIED]);
    assert_eq!(codes(1), vec![TRANSACTION_DENIED, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_producer_id_checks_the_transactional_id_or_idempotent_write() {
    // Transactional: Write on the id. Idempotent: IdempotentWrite on the cluster, or Write
    // on some topic (KIP-679); otherwise CLUSTER_AUTHORIZATION_FAILED.
    let (_dir, cluster) = cluster();
    let init = |transactional_id: Option<&str>| InitProducerIdRequest {
        transactional_id: transactional_id.map(str::to_string),
        transaction_timeout_ms: 60_000,
        producer_id: -1,
        producer_epoch: -1,
    };
    let alice = context_of(&cluster, "User:alice");
    let code = |request| async {
        init_producer_id::handle(&cluster, &alice, 4, request)
            .await
            .error_code
    };
    assert_eq!(code(init(Some("tx"))).await, TRANSACTION_DENIED);
    assert_eq!(code(init(None)).await, CLUSTER_DENIED);
    grant(
        &cluster,
        "User:alice",
        Write,
        &["transactional_id:literal:tx", "topic:literal:t"],
    );
    assert_eq!(code(init(Some("tx"))).await, 0);
    assert_eq!(code(init(None)).await, 0);
    let bob = context_of(&cluster, "User:bob");
    grant(
        &cluster,
        "User:bob",
        IdempotentWrite,
        &["cluster:literal:kafka-cluster"],
    );
    assert_eq!(
        init_producer_id::handle(&cluster, &bob, 4, init(None))
            .await
            .error_code,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_calls_need_write_on_the_transactional_id() {
    // AddPartitionsToTxn, AddOffsetsToTxn, EndTxn and TxnOffsetCommit are refused with
    // TRANSACTIONAL_ID_AUTHORIZATION_FAILED; then AddPartitionsToTxn needs Write on each
    // topic (the others not attempted), AddOffsetsToTxn and TxnOffsetCommit Read on the group.
    let (_dir, cluster) = cluster();
    let alice = context_of(&cluster, "User:alice");
    let add_partitions = AddPartitionsToTxnRequest {
        v3_and_below_transactional_id: "tx".into(),
        v3_and_below_topics: ["t", "u"]
            .iter()
            .map(|name| AddPartitionsToTxnTopic {
                name: name.to_string(),
                partitions: vec![0],
            })
            .collect(),
        ..Default::default()
    };
    let add_offsets = AddOffsetsToTxnRequest {
        transactional_id: "tx".into(),
        group_id: "g".into(),
        ..Default::default()
    };
    let end = EndTxnRequest {
        transactional_id: "tx".into(),
        ..Default::default()
    };
    let txn_commit = TxnOffsetCommitRequest {
        transactional_id: "tx".into(),
        group_id: "g".into(),
        topics: vec![TxnOffsetCommitRequestTopic {
            name: "t".into(),
            partitions: vec![TxnOffsetCommitRequestPartition::default()],
        }],
        ..Default::default()
    };
    let codes = || async {
        let added =
            add_partitions_to_txn::handle(&cluster, &alice, 3, add_partitions.clone()).await;
        let partitions = added
            .results_by_topic_v3_and_below
            .iter()
            .flat_map(|topic| &topic.results_by_partition);
        let added: Vec<i16> = partitions
            .map(|partition| partition.partition_error_code)
            .collect();
        let offsets = add_offsets_to_txn::handle(&cluster, &alice, 3, add_offsets.clone()).await;
        let ended = end_txn::handle(&cluster, &alice, 3, end.clone()).await;
        let committed = txn_offset_commit::handle(&cluster, &alice, 3, txn_commit.clone()).await;
        let committed = committed.topics[0].partitions[0].error_code;
        (added, offsets.error_code, ended.error_code, committed)
    };
    let denied = TRANSACTION_DENIED;
    assert_eq!(
        codes().await,
        (vec![denied, denied], denied, denied, denied)
    );
    grant(
        &cluster,
        "User:alice",
        Write,
        &["transactional_id:literal:tx", "topic:literal:t"],
    );
    let not_attempted = ErrorCode::OperationNotAttempted.code();
    let (added, offsets, _, committed) = codes().await;
    assert_eq!(
        (added, offsets, committed),
        (
            vec![not_attempted, TOPIC_DENIED],
            GROUP_DENIED,
            GROUP_DENIED
        )
    );
}

#[test]
fn transaction_and_producer_descriptions_show_what_the_principal_may_see() {
    // DescribeTransactions refuses an undescribable id; ListTransactions leaves it out;
    // DescribeProducers needs Read on the topic.
    let (_dir, cluster) = cluster();
    let alice = context_of(&cluster, "User:alice");
    let describe = DescribeTransactionsRequest {
        transactional_ids: vec!["tx".into()],
    };
    let described = describe_transactions::handle(&cluster, &alice, 0, describe.clone());
    assert_eq!(
        described.transaction_states[0].error_code,
        TRANSACTION_DENIED
    );
    grant(
        &cluster,
        "User:alice",
        Describe,
        &["transactional_id:literal:tx"],
    );
    let described = describe_transactions::handle(&cluster, &alice, 0, describe);
    let not_found = ErrorCode::TransactionalIdNotFound.code();
    assert_eq!(described.transaction_states[0].error_code, not_found);
    let listed = list_transactions::handle(&cluster, &alice, 1, ListTransactionsRequest::default());
    assert_eq!(listed.error_code, 0);

    let producers = || DescribeProducersRequest {
        topics: vec![TopicRequest {
            name: "t".into(),
            partition_indexes: vec![0],
        }],
    };
    let response = describe_producers::handle(&cluster, &alice, 0, producers());
    assert_eq!(response.topics[0].partitions[0].error_code, TOPIC_DENIED);
    grant(&cluster, "User:alice", Read, &["topic:literal:t"]);
    let response = describe_producers::handle(&cluster, &alice, 0, producers());
    assert_eq!(response.topics[0].partitions[0].error_code, 0);
}

#[test]
fn topic_administration_needs_create_delete_and_alter() {
    // CreateTopics needs Create (cluster or topic) and hides configs without
    // DescribeConfigs; CreatePartitions needs Alter; DeleteRecords and DeleteTopics Delete.
    let (_dir, cluster) = cluster();
    let alice = context_of(&cluster, "User:alice");
    let create = || CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: "new".into(),
            num_partitions: 1,
            replication_factor: 1,
            ..Default::default()
        }],
        ..Default::default()
    };
    let refused = create_topics::handle(&cluster, &alice, 7, create());
    assert_eq!(refused.topics[0].error_code, TOPIC_DENIED);
    grant(&cluster, "User:alice", Create, &["topic:literal:new"]);
    let created = create_topics::handle(&cluster, &alice, 7, create());
    assert_eq!(created.topics[0].error_code, 0);
    assert_eq!(created.topics[0].topic_config_error_code, TOPIC_DENIED);
    assert_eq!(created.topics[0].configs, Some(Vec::new()));

    let grow = || CreatePartitionsRequest {
        topics: vec![CreatePartitionsTopic {
            name: "new".into(),
            count: 2,
            assignments: None,
        }],
        ..Default::default()
    };
    assert_eq!(
        create_partitions::handle(&cluster, &alice, 3, grow()).results[0].error_code,
        TOPIC_DENIED
    );
    grant(&cluster, "User:alice", Alter, &["topic:literal:new"]);
    assert_eq!(
        create_partitions::handle(&cluster, &alice, 3, grow()).results[0].error_code,
        0
    );

    let delete_records = || DeleteRecordsRequest {
        topics: vec![DeleteRecordsTopic {
            name: "new".into(),
            partitions: vec![DeleteRecordsPartition {
                partition_index: 0,
                offset: -1,
            }],
        }],
        ..Default::default()
    };
    let code = |response: riffle_protocol::api::delete_records::DeleteRecordsResponse| {
        response.topics[0].partitions[0].error_code
    };
    assert_eq!(
        code(delete_records::handle(
            &cluster,
            &alice,
            2,
            delete_records()
        )),
        TOPIC_DENIED
    );
    let delete = || DeleteTopicsRequest {
        topic_names: vec!["new".into()],
        ..Default::default()
    };
    assert_eq!(
        delete_topics::handle(&cluster, &alice, 5, delete()).responses[0].error_code,
        TOPIC_DENIED
    );
    grant(&cluster, "User:alice", Delete, &["topic:literal:new"]);
    assert_eq!(
        code(delete_records::handle(
            &cluster,
            &alice,
            2,
            delete_records()
        )),
        0
    );
    assert_eq!(
        delete_topics::handle(&cluster, &alice, 5, delete()).responses[0].error_code,
        0
    );
    assert!(cluster.topic("new").is_none());
}

#[test]
fn configs_need_describe_configs_and_alter_configs() {
    // DescribeConfigs, IncrementalAlterConfigs and AlterConfigs refuse a topic with
    // TOPIC_AUTHORIZATION_FAILED and the broker with CLUSTER_AUTHORIZATION_FAILED;
    // AlterConfigs on the topic also allows describing it.
    let (_dir, cluster) = cluster();
    let alice = context_of(&cluster, "User:alice");
    let resource = |resource_type: i8, name: &str| DescribeConfigsResource {
        resource_type,
        resource_name: name.into(),
        configuration_keys: None,
    };
    let describe = || DescribeConfigsRequest {
        resources: vec![resource(2, "t"), resource(4, "")],
        ..Default::default()
    };
    let codes = |cluster: &Cluster| -> Vec<i16> {
        let response = describe_configs::handle(cluster, &alice, 4, describe());
        response
            .results
            .iter()
            .map(|result| result.error_code)
            .collect()
    };
    assert_eq!(codes(&cluster), vec![TOPIC_DENIED, CLUSTER_DENIED]);
    let alter = || IncrementalAlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type: 2,
            resource_name: "t".into(),
            configs: vec![AlterableConfig {
                name: "retention.ms".into(),
                config_operation: 0,
                value: Some("1000".into()),
            }],
        }],
        validate_only: false,
    };
    let replace = || legacy_alter::AlterConfigsRequest {
        resources: vec![legacy_alter::AlterConfigsResource {
            resource_type: 2,
            resource_name: "t".into(),
            configs: vec![legacy_alter::AlterableConfig {
                name: "retention.ms".into(),
                value: Some("2000".into()),
            }],
        }],
        validate_only: false,
    };
    let altered = incremental_alter_configs::handle(&cluster, &alice, 1, alter());
    assert_eq!(altered.responses[0].error_code, TOPIC_DENIED);
    let replaced = alter_configs::handle(&cluster, &alice, 2, replace());
    assert_eq!(replaced.responses[0].error_code, TOPIC_DENIED);
    grant(&cluster, "User:alice", AlterConfigs, &["topic:literal:t"]);
    let altered = incremental_alter_configs::handle(&cluster, &alice, 1, alter());
    assert_eq!(altered.responses[0].error_code, 0);
    let replaced = alter_configs::handle(&cluster, &alice, 2, replace());
    assert_eq!(replaced.responses[0].error_code, 0);
    assert_eq!(codes(&cluster), vec![0, CLUSTER_DENIED]);
}
