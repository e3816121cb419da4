//! The flat map from request to handler: one arm per API, each calling its handler.

use std::sync::Arc;

use riffle_protocol::{Request, RequestHeader, Response};
use tokio::task::block_in_place;

use super::*;
use crate::cluster::Cluster;

/// Runs the handler for a request whose API and version we advertise. Returns `None`
/// when the request expects no response (Produce with acks=0).
///
/// Admin handlers change topic metadata, which fsyncs the metadata log: they run under
/// `block_in_place` so the blocking write does not stall other tasks on this thread.
pub async fn dispatch(
    cluster: &Arc<Cluster>,
    context: &RequestContext,
    header: &RequestHeader,
    request: Request,
) -> Option<Response> {
    let version = header.api_version;
    let client_id = header.client_id.as_deref().unwrap_or("");
    let response = match request {
        Request::Produce(body) => {
            return produce::handle(cluster, context, version, body)
                .await
                .map(Response::Produce);
        }
        Request::Fetch(body) => {
            Response::Fetch(fetch::handle(cluster, context, version, body).await)
        }
        Request::ListOffsets(body) => {
            Response::ListOffsets(list_offsets::handle(cluster, context, version, body))
        }
        Request::Metadata(body) => Response::Metadata(block_in_place(|| {
            metadata::handle(cluster, context, version, body)
        })),
        Request::FindCoordinator(body) => {
            Response::FindCoordinator(find_coordinator::handle(cluster, context, version, body))
        }
        Request::ApiVersions(body) => Response::ApiVersions(api_versions::handle(body)),
        Request::CreateTopics(body) => Response::CreateTopics(block_in_place(|| {
            create_topics::handle(cluster, context, version, body)
        })),
        Request::DeleteTopics(body) => Response::DeleteTopics(block_in_place(|| {
            delete_topics::handle(cluster, context, version, body)
        })),
        Request::DeleteRecords(body) => Response::DeleteRecords(block_in_place(|| {
            delete_records::handle(cluster, context, version, body)
        })),
        Request::InitProducerId(body) => Response::InitProducerId(
            init_producer_id::handle(cluster, context, version, body).await,
        ),
        Request::DescribeConfigs(body) => {
            Response::DescribeConfigs(describe_configs::handle(cluster, context, version, body))
        }
        Request::CreatePartitions(body) => Response::CreatePartitions(block_in_place(|| {
            create_partitions::handle(cluster, context, version, body)
        })),
        Request::AlterConfigs(body) => Response::AlterConfigs(block_in_place(|| {
            alter_configs::handle(cluster, context, version, body)
        })),
        Request::IncrementalAlterConfigs(body) => {
            Response::IncrementalAlterConfigs(block_in_place(|| {
                incremental_alter_configs::handle(cluster, context, version, body)
            }))
        }
        Request::DescribeLogDirs(body) => Response::DescribeLogDirs(block_in_place(|| {
            describe_log_dirs::handle(cluster, context, version, body)
        })),
        Request::DescribeCluster(body) => {
            Response::DescribeCluster(describe_cluster::handle(cluster, context, version, body))
        }
        Request::OffsetCommit(body) => Response::OffsetCommit(
            group::offset_commit::handle(cluster, context, version, body).await,
        ),
        Request::OffsetFetch(body) => {
            Response::OffsetFetch(group::offset_fetch::handle(cluster, context, version, body))
        }
        Request::JoinGroup(body) => Response::JoinGroup(
            group::join::handle(cluster, context, version, client_id, body).await,
        ),
        Request::Heartbeat(body) => {
            Response::Heartbeat(group::heartbeat::handle(cluster, context, version, body))
        }
        Request::LeaveGroup(body) => {
            Response::LeaveGroup(group::leave::handle(cluster, context, version, body))
        }
        Request::SyncGroup(body) => {
            Response::SyncGroup(group::sync::handle(cluster, context, version, body).await)
        }
        Request::DescribeGroups(body) => {
            Response::DescribeGroups(group::describe::handle(cluster, context, version, body))
        }
        Request::ListGroups(body) => {
            Response::ListGroups(group::list::handle(cluster, context, version, body))
        }
        Request::DeleteGroups(body) => {
            Response::DeleteGroups(group::delete::handle(cluster, context, version, body).await)
        }
        Request::OffsetDelete(body) => Response::OffsetDelete(
            group::offset_delete::handle(cluster, context, version, body).await,
        ),
        Request::AddPartitionsToTxn(body) => Response::AddPartitionsToTxn(
            add_partitions_to_txn::handle(cluster, context, version, body).await,
        ),
        Request::AddOffsetsToTxn(body) => Response::AddOffsetsToTxn(
            add_offsets_to_txn::handle(cluster, context, version, body).await,
        ),
        Request::EndTxn(body) => {
            Response::EndTxn(end_txn::handle(cluster, context, version, body).await)
        }
        Request::TxnOffsetCommit(body) => Response::TxnOffsetCommit(
            txn_offset_commit::handle(cluster, context, version, body).await,
        ),
        Request::DescribeTransactions(body) => Response::DescribeTransactions(
            describe_transactions::handle(cluster, context, version, body),
        ),
        Request::ListTransactions(body) => {
            Response::ListTransactions(list_transactions::handle(cluster, context, version, body))
        }
        Request::DescribeProducers(body) => Response::DescribeProducers(block_in_place(|| {
            describe_producers::handle(cluster, context, version, body)
        })),
        Request::CreateAcls(body) => Response::CreateAcls(block_in_place(|| {
            create_acls::handle(cluster, context, version, body)
        })),
        Request::DescribeAcls(body) => {
            Response::DescribeAcls(describe_acls::handle(cluster, context, version, body))
        }
        Request::DeleteAcls(body) => Response::DeleteAcls(block_in_place(|| {
            delete_acls::handle(cluster, context, version, body)
        })),
        Request::DescribeUserScramCredentials(body) => Response::DescribeUserScramCredentials(
            describe_user_scram_credentials::handle(cluster, context, version, body),
        ),
        Request::AlterUserScramCredentials(body) => {
            Response::AlterUserScramCredentials(block_in_place(|| {
                alter_user_scram_credentials::handle(cluster, context, version, body)
            }))
        }
        // The connection answers these during authentication (and refuses them after), so
        // they never reach dispatch.
        Request::SaslHandshake(_) | Request::SaslAuthenticate(_) => return None,
    };
    Some(response)
}
