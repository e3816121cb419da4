//! What a handler knows of the request beyond its body: who sent it, from where, and
//! through which listener; and [`Access`], what the authorizer lets that principal do.

use std::net::{IpAddr, Ipv4Addr};

use tracing::info;

use crate::cluster::Cluster;
use crate::security::acl::{AclOperation, CLUSTER_NAME, ResourceType};
use crate::security::{Authorizer, Principal};

/// Kafka's "authorized operations not requested" marker in Metadata, DescribeGroups and
/// DescribeCluster.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// The connection a request came in on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// Who sent it: the authenticated principal, or `User:ANONYMOUS`.
    pub principal: Principal,
    /// The client's address, for host-limited ACLs.
    pub client_address: IpAddr,
    /// The client's address as Kafka reports a group member's host: "/address".
    pub client_host: String,
    /// The name of the listener the connection came in on (`PLAINTEXT`, `SASL_SSL`, ...).
    pub listener_name: String,
    /// The host that listener advertises: Metadata, FindCoordinator and DescribeCluster
    /// answer with it, so a client stays on the listener (and the security) it chose.
    pub advertised_host: String,
    /// The port that listener advertises.
    pub advertised_port: i32,
}

impl RequestContext {
    /// A request the broker makes of itself (tests): anonymous, from the loopback address,
    /// through the broker's first advertised listener.
    pub fn internal(cluster: &Cluster) -> RequestContext {
        RequestContext {
            principal: Principal::anonymous(),
            client_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            client_host: format!("/{}", Ipv4Addr::LOCALHOST),
            listener_name: "PLAINTEXT".to_string(),
            advertised_host: cluster.advertised_host.clone(),
            advertised_port: cluster.advertised_port,
        }
    }

    /// The requests of co-located topologies: made in process as `--processor-principal`,
    /// from the loopback address, so ACLs treat them as that principal's clients; their
    /// group members show the host `/in-process`.
    pub fn processor(cluster: &Cluster) -> RequestContext {
        RequestContext {
            principal: cluster.config.processor_principal.clone(),
            client_host: "/in-process".to_string(),
            listener_name: "EMBEDDED".to_string(),
            ..RequestContext::internal(cluster)
        }
    }

    /// What the authorizer lets this request's principal do on `cluster`.
    pub fn access<'a>(&'a self, cluster: &'a Cluster) -> Access<'a> {
        Access {
            authorizer: cluster.authorizer(),
            context: self,
        }
    }
}

/// One request's view of the authorizer. Without `--authorizer acl` every check answers
/// yes after one branch: no lookup, no allocation.
#[derive(Clone, Copy)]
pub struct Access<'a> {
    authorizer: Option<&'a Authorizer>,
    context: &'a RequestContext,
}

impl Access<'_> {
    /// Whether an authorizer is on: handlers skip work that only serves checks without one.
    pub fn is_enforced(&self) -> bool {
        self.authorizer.is_some()
    }

    /// Whether the principal may perform `operation` on the resource. A denial is logged at
    /// INFO, as Kafka's authorizer logs denied requests, so an operator sees who was refused
    /// what; use [`Access::filters`] where a denial only hides a resource from a list.
    pub fn allows(&self, operation: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        let Some(authorizer) = self.authorizer else {
            return true;
        };
        let context = self.context;
        let allowed = authorizer.authorize(
            &context.principal,
            context.client_address,
            operation,
            resource_type,
            name,
        );
        if !allowed {
            info!(
                principal = %context.principal,
                host = %context.client_address,
                %operation,
                %resource_type,
                resource = name,
                "authorization denied"
            );
        }
        allowed
    }

    /// [`Access::allows`] without the log line: for listings that leave out what the
    /// principal may not see (all topics in Metadata, ListGroups, ListTransactions).
    pub fn filters(
        &self,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.authorizer.is_none_or(|authorizer| {
            let context = self.context;
            authorizer.authorize(
                &context.principal,
                context.client_address,
                operation,
                resource_type,
                name,
            )
        })
    }

    /// Whether the principal may perform `operation` on the cluster.
    pub fn allows_cluster(&self, operation: AclOperation) -> bool {
        self.allows(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Whether the principal may create topic `name`: Create on the cluster (checked
    /// quietly, as Kafka does) or on the topic.
    pub fn may_create_topic(&self, name: &str) -> bool {
        self.filters(AclOperation::Create, ResourceType::Cluster, CLUSTER_NAME)
            || self.allows(AclOperation::Create, ResourceType::Topic, name)
    }

    /// Whether the principal may perform `operation` on some resource of the type (Kafka's
    /// `authorizeByResourceType`).
    pub fn allows_any(&self, operation: AclOperation, resource_type: ResourceType) -> bool {
        self.authorizer.is_none_or(|authorizer| {
            let context = self.context;
            authorizer.authorize_any(
                &context.principal,
                context.client_address,
                operation,
                resource_type,
            )
        })
    }

    /// The authorized-operations bit field of a resource, as Kafka reports it: every
    /// operation of the type without an authorizer, the allowed ones with it.
    pub fn authorized_operations(&self, resource_type: ResourceType, name: &str) -> i32 {
        let context = self.context;
        match self.authorizer {
            None => resource_type
                .operations()
                .iter()
                .fold(0, |bits, operation| bits | (1 << operation.code())),
            Some(authorizer) => authorizer.authorized_operations(
                &context.principal,
                context.client_address,
                resource_type,
                name,
            ),
        }
    }
}
