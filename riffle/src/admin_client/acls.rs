//! The ACL administration requests: DescribeAcls, CreateAcls and DeleteAcls, all at v3
//! (flexible; the newest Kafka defines).
//!
//! They return the wire results as they are: which of them are failures, and how to show
//! them, is for `riffle acls` to say. A response with a result count other than the request's
//! is refused, so a caller can pair results with what it sent.

use riffle_protocol::api::create_acls::{AclCreation, AclCreationResult, CreateAclsRequest};
use riffle_protocol::api::delete_acls::{
    DeleteAclsFilter, DeleteAclsFilterResult, DeleteAclsRequest,
};
use riffle_protocol::api::describe_acls::{DescribeAclsRequest, DescribeAclsResource};
use riffle_protocol::{ApiKey, Request, Response};

use super::{AdminClient, AdminClientError, check_error};

/// DescribeAcls version: v3 (v1 added pattern types, v2 is flexible).
const DESCRIBE_ACLS_VERSION: i16 = 3;
/// CreateAcls version: v3.
const CREATE_ACLS_VERSION: i16 = 3;
/// DeleteAcls version: v3.
const DELETE_ACLS_VERSION: i16 = 3;

impl AdminClient {
    /// The ACLs `filter` selects, grouped by resource pattern.
    ///
    /// # Errors
    /// A request error, or the response's error code (with its message).
    pub fn describe_acls(
        &mut self,
        filter: DescribeAclsRequest,
    ) -> Result<Vec<DescribeAclsResource>, AdminClientError> {
        let request = Request::DescribeAcls(filter);
        let Response::DescribeAcls(response) =
            self.send(ApiKey::DescribeAcls, DESCRIBE_ACLS_VERSION, request)?
        else {
            unreachable!("decode_response answers with the requested API");
        };
        check_error(
            ApiKey::DescribeAcls,
            "",
            response.error_code,
            response.error_message,
        )?;
        Ok(response.resources)
    }

    /// Creates `creations`; one result per creation, in order, each with its own error code.
    ///
    /// # Errors
    /// A request error, or a response with another number of results.
    pub fn create_acls(
        &mut self,
        creations: Vec<AclCreation>,
    ) -> Result<Vec<AclCreationResult>, AdminClientError> {
        let sent = creations.len();
        let request = Request::CreateAcls(CreateAclsRequest { creations });
        let Response::CreateAcls(response) =
            self.send(ApiKey::CreateAcls, CREATE_ACLS_VERSION, request)?
        else {
            unreachable!("decode_response answers with the requested API");
        };
        check_result_count(ApiKey::CreateAcls, sent, response.results.len())?;
        Ok(response.results)
    }

    /// Deletes the ACLs each filter selects; one result per filter, in order, listing the
    /// ACLs it matched, each with its own error code.
    ///
    /// # Errors
    /// A request error, or a response with another number of results.
    pub fn delete_acls(
        &mut self,
        filters: Vec<DeleteAclsFilter>,
    ) -> Result<Vec<DeleteAclsFilterResult>, AdminClientError> {
        let sent = filters.len();
        let request = Request::DeleteAcls(DeleteAclsRequest { filters });
        let Response::DeleteAcls(response) =
            self.send(ApiKey::DeleteAcls, DELETE_ACLS_VERSION, request)?
        else {
            unreachable!("decode_response answers with the requested API");
        };
        check_result_count(ApiKey::DeleteAcls, sent, response.filter_results.len())?;
        Ok(response.filter_results)
    }
}

fn check_result_count(
    api_key: ApiKey,
    sent: usize,
    received: usize,
) -> Result<(), AdminClientError> {
    match sent == received {
        true => Ok(()),
        false => Err(AdminClientError::ResultCount {
            api: api_key.name(),
            sent,
            received,
        }),
    }
}
