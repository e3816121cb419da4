//! ApiVersions (key 18): which APIs and versions this broker speaks.
//!
//! Versions 0-4. Clients send this first and then use, for each API, the highest version
//! both sides know; so every version in [`SUPPORTED_APIS`] must work. An unsupported
//! ApiVersions version gets UNSUPPORTED_VERSION with a v0 body that still lists our
//! ranges (KIP-511), so the client can retry with one we speak; the connection stays open.

use riffle_protocol::api::api_versions::{ApiVersion, ApiVersionsRequest, ApiVersionsResponse};
use riffle_protocol::{ApiKey, ErrorCode};

/// Every API we advertise, with the lowest and highest version we answer.
///
/// Why these ranges: Produce starts at 3 and Fetch at 4 because we store only v2 record
/// batches (magic 2); ListOffsets starts at 1 because v0's multi-offset answer is long
/// gone from clients. Fetch stops at 16 (17 adds replica directory ids, for followers
/// only); Produce stops at 10 (11 is for KIP-1102 redirects we do not need on one node);
/// InitProducerId stops at 4, and AddPartitionsToTxn, AddOffsetsToTxn, EndTxn and
/// TxnOffsetCommit at 3: the next versions add only TRANSACTION_ABORTABLE and Kafka's
/// transactions v2 (KIP-890), and AddPartitionsToTxn 4+ is for brokers. The group APIs stop before KIP-848's
/// versions (OffsetCommit/OffsetFetch 9; ListGroups 5 is there: its groups are all
/// `classic`) and before
/// JoinGroup 8-9 (reasons and skip_assignment), which no client needs. FindCoordinator must
/// be listed in any case: librdkafka uses lz4 only with brokers that list it.
/// SaslHandshake (0-1) and SaslAuthenticate (0-2, all there is) are listed on every
/// listener, as Kafka lists them; the connection answers them, not `dispatch`. The ACL APIs
/// are listed whether or not an authorizer is on: without one they answer
/// SECURITY_DISABLED, as Kafka does. DescribeUserScramCredentials and
/// AlterUserScramCredentials have only version 0;
/// AlterConfigs 0-2 is all there is (older admin clients need it), and so is DescribeLogDirs
/// 0-4 (`kafka-log-dirs.sh`, partition sizes in `riffle topics describe`).
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 10),
    (ApiKey::Fetch, 4, 16),
    (ApiKey::ListOffsets, 1, 8),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 0, 8),
    (ApiKey::OffsetFetch, 0, 8),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 7),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 0, 7),
    (ApiKey::DeleteTopics, 0, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 0, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::DescribeLogDirs, 0, 4),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeAcls, 0, 3),
    (ApiKey::CreateAcls, 0, 3),
    (ApiKey::DeleteAcls, 0, 3),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
];

/// The version range we answer for an API, if we advertise it.
pub fn supported_versions(api_key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS
        .iter()
        .find(|(key, _, _)| *key == api_key)
        .map(|(_, min, max)| (*min, *max))
}

/// Answers ApiVersions.
pub fn handle(_request: ApiVersionsRequest) -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: ErrorCode::None.code(),
        api_keys: api_list(),
        ..Default::default()
    }
}

/// The answer to an ApiVersions version we do not speak (KIP-511).
pub fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: ErrorCode::UnsupportedVersion.code(),
        api_keys: api_list(),
        ..Default::default()
    }
}

fn api_list() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|(key, min, max)| ApiVersion {
            api_key: *key as i16,
            min_version: *min,
            max_version: *max,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_range_is_decodable_by_the_codec() {
        for (key, min, max) in SUPPORTED_APIS {
            let (schema_min, schema_max) = key.schema_versions();
            assert!(schema_min <= *min, "{key:?}");
            assert!(*max <= schema_max, "{key:?}");
        }
    }

    #[test]
    fn record_apis_start_at_magic_v2_versions() {
        assert_eq!(supported_versions(ApiKey::Produce), Some((3, 10)));
        assert_eq!(supported_versions(ApiKey::Fetch), Some((4, 16)));
        assert_eq!(supported_versions(ApiKey::JoinGroup), Some((0, 7)));
    }
}
