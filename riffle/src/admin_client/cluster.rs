//! DescribeCluster: the cluster id, the controller and every broker's address.

use std::ops::RangeInclusive;

use riffle_protocol::api::describe_cluster::{DescribeClusterRequest, DescribeClusterResponse};
use riffle_protocol::{ApiKey, Request, Response};

use super::{AdminClient, AdminClientError, check_error};

/// DescribeCluster versions: v1 adds the endpoint type (brokers).
const DESCRIBE_CLUSTER_VERSIONS: RangeInclusive<i16> = 0..=1;
/// DescribeCluster's endpoint type of brokers.
const ENDPOINT_TYPE_BROKERS: i8 = 1;

impl AdminClient {
    /// Describes the cluster: its id, the controller and the brokers.
    ///
    /// # Errors
    /// A request error (UNSUPPORTED when the broker predates DescribeCluster, Kafka 2.8), or
    /// the response's error code with its message.
    pub fn describe_cluster(&mut self) -> Result<DescribeClusterResponse, AdminClientError> {
        let version = self.negotiate(ApiKey::DescribeCluster, DESCRIBE_CLUSTER_VERSIONS)?;
        let request = Request::DescribeCluster(DescribeClusterRequest {
            include_cluster_authorized_operations: false,
            endpoint_type: ENDPOINT_TYPE_BROKERS,
        });
        let Response::DescribeCluster(response) =
            self.send(ApiKey::DescribeCluster, version, request)?
        else {
            unreachable!("decode_response answers with the requested API");
        };
        check_error(
            ApiKey::DescribeCluster,
            "",
            response.error_code,
            response.error_message.clone(),
        )?;
        Ok(response)
    }
}
