//! DeleteGroups (key 42): delete empty groups and their committed offsets.
//!
//! Versions 0-2. Errors per group: GROUP_AUTHORIZATION_FAILED (with `--authorizer acl`, no
//! Delete on the group), GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP,
//! KAFKA_STORAGE_ERROR.

use std::sync::Arc;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::delete_groups::{
    DeletableGroupResult, DeleteGroupsRequest, DeleteGroupsResponse,
};

use crate::cluster::Cluster;
use crate::handler::RequestContext;
use crate::handler::group::offset_commit::wait_durable;
use crate::security::acl::{AclOperation, ResourceType};

/// Answers DeleteGroups.
pub async fn handle(
    cluster: &Arc<Cluster>,
    context: &RequestContext,
    _version: i16,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let access = context.access(cluster);
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        let deletable = access.allows(AclOperation::Delete, ResourceType::Group, &group_id);
        let error = if !deletable {
            ErrorCode::GroupAuthorizationFailed
        } else {
            delete(cluster, &group_id).await
        };
        results.push(DeletableGroupResult {
            group_id,
            error_code: error.code(),
        });
    }
    DeleteGroupsResponse {
        results,
        ..Default::default()
    }
}

/// Deletes one group and waits for the deletion to be durable.
async fn delete(cluster: &Arc<Cluster>, group_id: &str) -> ErrorCode {
    match cluster.groups().delete_group(group_id) {
        Err(error) => error,
        Ok(Some(last_offset)) if wait_durable(cluster, last_offset).await.is_err() => {
            ErrorCode::KafkaStorageError
        }
        Ok(_) => ErrorCode::None,
    }
}
