//! The group requests beyond describing and listing: FindCoordinator, to reach the broker
//! that owns a group, and OffsetCommit outside any group generation (generation -1 and no
//! member id), as `kafka-consumer-groups.sh --reset-offsets` and an `assign()` consumer
//! with a group id commit. Brokers accept such commits only while the group has no active
//! members.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use riffle_protocol::api::delete_groups::DeleteGroupsRequest;
use riffle_protocol::api::find_coordinator::FindCoordinatorRequest;
use riffle_protocol::api::offset_commit::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use riffle_protocol::{ApiKey, Request, Response};

use super::records::{PartitionResult, TopicPartitionKey};
use super::{AdminClient, AdminClientError, BrokerErrorCode, check_error};

/// FindCoordinator versions: v1 adds the key type, v3 is flexible; v4 batches keys.
const FIND_COORDINATOR_VERSIONS: RangeInclusive<i16> = 1..=3;
/// OffsetCommit versions: v2 drops the per-partition timestamp; v8 is flexible; v9 is for
/// KIP-848 member epochs.
const OFFSET_COMMIT_VERSIONS: RangeInclusive<i16> = 2..=8;
/// DeleteGroups versions this client speaks.
const DELETE_GROUPS_VERSIONS: RangeInclusive<i16> = 0..=2;

/// FindCoordinator's key type of a consumer group.
const KEY_TYPE_GROUP: i8 = 0;
/// The generation of a commit made outside any group generation.
const NO_GENERATION: i32 = -1;
/// OffsetCommit v2-v4's "keep for the broker's configured retention".
const DEFAULT_RETENTION_MS: i64 = -1;

/// A broker as FindCoordinator names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    /// Its broker id.
    pub node_id: i32,
    /// `HOST:PORT` to connect to.
    pub address: String,
}

impl AdminClient {
    /// Deletes `group_id` and its committed offsets; send it to the group's coordinator.
    ///
    /// # Errors
    /// A request error, or the group's error code (NON_EMPTY_GROUP while it has members,
    /// GROUP_ID_NOT_FOUND when there is no such group).
    pub fn delete_group(&mut self, group_id: &str) -> Result<(), AdminClientError> {
        let version = self.negotiate(ApiKey::DeleteGroups, DELETE_GROUPS_VERSIONS)?;
        let request = Request::DeleteGroups(DeleteGroupsRequest {
            groups_names: vec![group_id.to_owned()],
        });
        let Response::DeleteGroups(response) = self.send(ApiKey::DeleteGroups, version, request)?
        else {
            unreachable!("decode_response answers with the requested API");
        };
        let code = response
            .results
            .iter()
            .find(|result| result.group_id == group_id)
            .map_or(0, |result| result.error_code);
        check_error(
            ApiKey::DeleteGroups,
            &format!(" for group '{group_id}'"),
            code,
            None,
        )
    }

    /// The broker that coordinates `group_id`.
    ///
    /// # Errors
    /// A request error, or the error code (COORDINATOR_NOT_AVAILABLE while the broker is
    /// loading the group) with the broker's message.
    pub fn find_coordinator(&mut self, group_id: &str) -> Result<Coordinator, AdminClientError> {
        let version = self.negotiate(ApiKey::FindCoordinator, FIND_COORDINATOR_VERSIONS)?;
        let request = Request::FindCoordinator(FindCoordinatorRequest {
            key: group_id.to_owned(),
            key_type: KEY_TYPE_GROUP,
            coordinator_keys: Vec::new(),
        });
        let Response::FindCoordinator(response) =
            self.send(ApiKey::FindCoordinator, version, request)?
        else {
            unreachable!("decode_response answers with the requested API");
        };
        check_error(
            ApiKey::FindCoordinator,
            &format!(" for group '{group_id}'"),
            response.error_code,
            response.error_message,
        )?;
        Ok(Coordinator {
            node_id: response.node_id,
            address: host_port(&response.host, response.port),
        })
    }

    /// Commits `offsets` (the next offset to consume, per partition) for `group_id`
    /// outside any generation. Returns each partition's outcome.
    ///
    /// # Errors
    /// A request error.
    pub fn commit_offsets(
        &mut self,
        group_id: &str,
        offsets: &BTreeMap<TopicPartitionKey, i64>,
    ) -> Result<BTreeMap<TopicPartitionKey, PartitionResult<()>>, AdminClientError> {
        let version = self.negotiate(ApiKey::OffsetCommit, OFFSET_COMMIT_VERSIONS)?;
        let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for ((topic, partition_index), &committed_offset) in offsets {
            topics
                .entry(topic)
                .or_default()
                .push(OffsetCommitRequestPartition {
                    partition_index: *partition_index,
                    committed_offset,
                    committed_metadata: Some(String::new()),
                    ..Default::default()
                });
        }
        let request = Request::OffsetCommit(OffsetCommitRequest {
            group_id: group_id.to_owned(),
            generation_id_or_member_epoch: NO_GENERATION,
            member_id: String::new(),
            group_instance_id: None,
            retention_time_ms: DEFAULT_RETENTION_MS,
            topics: topics
                .into_iter()
                .map(|(name, partitions)| OffsetCommitRequestTopic {
                    name: name.to_owned(),
                    partitions,
                })
                .collect(),
        });
        let Response::OffsetCommit(response) = self.send(ApiKey::OffsetCommit, version, request)?
        else {
            unreachable!("decode_response answers with the requested API");
        };
        let mut outcomes = BTreeMap::new();
        for topic in response.topics {
            for partition in topic.partitions {
                let outcome = match partition.error_code {
                    0 => Ok(()),
                    code => Err((BrokerErrorCode(code), None)),
                };
                outcomes.insert((topic.name.clone(), partition.partition_index), outcome);
            }
        }
        Ok(outcomes)
    }
}

/// `HOST:PORT`, with an IPv6 host in brackets.
pub fn host_port(host: &str, port: i32) -> String {
    match host.contains(':') {
        true => format!("[{host}]:{port}"),
        false => format!("{host}:{port}"),
    }
}
