//! DescribeCluster (key 60): the cluster id, the controller and the brokers, for admin
//! clients. Versions 0-1 (both flexible): v1 adds `endpoint_type`, asking for brokers (1)
//! or controllers (2).
//!
//! On one node this broker is the whole cluster and its own controller. No ACL is needed
//! to ask, as in Kafka; asked for, the cluster's authorized operations are reported: all of
//! them without an authorizer, those allowed with `--authorizer acl`, and none (0) to a
//! principal that may not describe the cluster.
//!
//! Errors: INVALID_REQUEST for an endpoint type other than brokers. Kafka answers
//! UNSUPPORTED_ENDPOINT_TYPE (115) there, a code our `ErrorCode` does not have; the
//! message says the same.

use riffle_protocol::ErrorCode;
use riffle_protocol::api::describe_cluster::{
    DescribeClusterBroker, DescribeClusterRequest, DescribeClusterResponse,
};

use crate::cluster::Cluster;
use crate::handler::{AUTHORIZED_OPERATIONS_OMITTED, RequestContext};
use crate::security::acl::{AclOperation, CLUSTER_NAME, ResourceType};

/// The endpoint type that lists brokers.
const ENDPOINT_TYPE_BROKERS: i8 = 1;

/// Answers DescribeCluster.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    // v0 has no endpoint type; it decodes as 1, brokers.
    if request.endpoint_type != ENDPOINT_TYPE_BROKERS {
        let message = format!(
            "unsupported endpoint type {}: this broker only describes brokers (endpoint type 1)",
            request.endpoint_type
        );
        // Kafka's error answer leaves every other field at its default.
        return DescribeClusterResponse {
            error_code: ErrorCode::InvalidRequest.code(),
            error_message: Some(message),
            ..Default::default()
        };
    }
    let access = context.access(cluster);
    let cluster_authorized_operations = match request.include_cluster_authorized_operations {
        false => AUTHORIZED_OPERATIONS_OMITTED,
        true if access.allows_cluster(AclOperation::Describe) => {
            access.authorized_operations(ResourceType::Cluster, CLUSTER_NAME)
        }
        true => 0,
    };
    DescribeClusterResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None.code(),
        error_message: None,
        endpoint_type: ENDPOINT_TYPE_BROKERS,
        cluster_id: cluster.cluster_id.clone(),
        controller_id: cluster.node_id,
        brokers: vec![DescribeClusterBroker {
            broker_id: cluster.node_id,
            host: context.advertised_host.clone(),
            port: context.advertised_port,
            rack: None,
        }],
        cluster_authorized_operations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_cluster;

    #[test]
    fn describes_this_node_as_the_whole_cluster() {
        // v1 brokers: one broker, this node, which is also the controller.
        let (_dir, cluster) = test_cluster();
        let request = DescribeClusterRequest {
            include_cluster_authorized_operations: true,
            endpoint_type: 1,
        };
        let response = handle(&cluster, &RequestContext::internal(&cluster), 1, request);
        assert_eq!(response.error_code, 0);
        assert_eq!(response.cluster_id, cluster.cluster_id);
        assert_eq!(response.controller_id, cluster.node_id);
        let broker = &response.brokers[0];
        assert_eq!(
            (broker.broker_id, broker.host.as_str(), broker.port),
            (cluster.node_id, "127.0.0.1", 9092)
        );
        // Without an authorizer every cluster operation is reported, as Kafka does.
        let every_operation = ResourceType::Cluster
            .operations()
            .iter()
            .fold(0, |bits, operation| bits | (1 << operation.code()));
        assert_eq!(response.cluster_authorized_operations, every_operation);
    }

    #[test]
    fn controllers_are_not_described() {
        // Endpoint type 2 (controllers) gets INVALID_REQUEST with a message and no brokers.
        let (_dir, cluster) = test_cluster();
        let request = DescribeClusterRequest {
            include_cluster_authorized_operations: false,
            endpoint_type: 2,
        };
        let response = handle(&cluster, &RequestContext::internal(&cluster), 1, request);
        assert_eq!(response.error_code, 42);
        assert!(response.error_message.is_some());
        assert!(response.brokers.is_empty());
    }
}
