//! What a handler knows of the request beyond its body: who sent it, from where, and
//! through which listener.

use std::net::{IpAddr, Ipv4Addr};

use crate::cluster::Cluster;
use crate::security::Principal;

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
    /// A request the broker makes of itself (co-located topologies, tests): anonymous,
    /// from the loopback address, through the broker's first advertised listener.
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
}
