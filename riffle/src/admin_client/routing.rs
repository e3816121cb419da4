//! Reaching the right broker: a partition's leader or a group's coordinator.
//!
//! [`Brokers`] holds the bootstrap connection and one connection per broker id, opened the
//! first time a request must go there, with the same security settings. Addresses come from
//! the last Metadata answer ([`Brokers::metadata`] refreshes them) and from FindCoordinator.
//! A broker whose address resolves to the bootstrap connection's peer reuses it, so a single
//! node needs one connection.

use std::collections::BTreeMap;
use std::net::ToSocketAddrs;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::metadata::MetadataResponse;

use super::groups::host_port;
use super::{AdminClient, AdminClientError, BrokerErrorCode};
use crate::client_config::ClientConfig;

/// Connections to the brokers of one cluster.
pub struct Brokers {
    /// How to connect: TLS and SASL settings.
    config: ClientConfig,
    /// The connection to the bootstrap broker, whose id is learned from addresses.
    bootstrap: AdminClient,
    /// The bootstrap broker's id, once an address resolved to its peer.
    bootstrap_id: Option<i32>,
    /// `HOST:PORT` of each broker, by id.
    addresses: BTreeMap<i32, String>,
    /// Connections to brokers other than the bootstrap one, by id.
    connections: BTreeMap<i32, AdminClient>,
}

impl Brokers {
    /// Connects to `bootstrap` with `config`.
    ///
    /// # Errors
    /// As [`AdminClient::connect_with`].
    pub fn connect(bootstrap: &str, config: ClientConfig) -> Result<Brokers, AdminClientError> {
        let bootstrap = AdminClient::connect_with(bootstrap, &config)?;
        Ok(Brokers::from_bootstrap(bootstrap, config))
    }

    /// Wraps an open bootstrap connection.
    pub fn from_bootstrap(bootstrap: AdminClient, config: ClientConfig) -> Brokers {
        Brokers {
            config,
            bootstrap,
            bootstrap_id: None,
            addresses: BTreeMap::new(),
            connections: BTreeMap::new(),
        }
    }

    /// The bootstrap connection, for requests any broker answers.
    pub fn any(&mut self) -> &mut AdminClient {
        &mut self.bootstrap
    }

    /// Metadata of `topics` (all for `None`) from the bootstrap broker; remembers the
    /// brokers' addresses.
    ///
    /// # Errors
    /// A request error.
    pub fn metadata(
        &mut self,
        topics: Option<&[String]>,
    ) -> Result<MetadataResponse, AdminClientError> {
        let response = self.bootstrap.metadata(topics)?;
        for broker in &response.brokers {
            self.addresses
                .insert(broker.node_id, host_port(&broker.host, broker.port));
        }
        Ok(response)
    }

    /// The connection to broker `broker_id`, opened now if needed. The broker must have been
    /// in the last Metadata answer or named by FindCoordinator.
    ///
    /// # Errors
    /// [`AdminClientError::UnknownBroker`], or a connection error.
    pub fn broker(&mut self, broker_id: i32) -> Result<&mut AdminClient, AdminClientError> {
        if self.bootstrap_id == Some(broker_id) {
            return Ok(&mut self.bootstrap);
        }
        if !self.connections.contains_key(&broker_id) {
            let address = self
                .addresses
                .get(&broker_id)
                .ok_or(AdminClientError::UnknownBroker { broker_id })?;
            if self.bootstrap_id.is_none() && resolves_to_bootstrap(address, &self.bootstrap) {
                self.bootstrap_id = Some(broker_id);
                return Ok(&mut self.bootstrap);
            }
            let client = AdminClient::connect_with(address, &self.config)?;
            self.connections.insert(broker_id, client);
        }
        self.connections
            .get_mut(&broker_id)
            .ok_or(AdminClientError::UnknownBroker { broker_id })
    }

    /// The connection to the coordinator of `group_id`.
    ///
    /// # Errors
    /// FindCoordinator's error, or a connection error.
    pub fn coordinator(&mut self, group_id: &str) -> Result<&mut AdminClient, AdminClientError> {
        let node_id = self.find_coordinator(group_id)?;
        self.broker(node_id)
    }

    /// The broker id of the coordinator of `group_id`, whose connection
    /// [`broker`](Self::broker) then gives.
    ///
    /// # Errors
    /// FindCoordinator's error.
    pub fn find_coordinator(&mut self, group_id: &str) -> Result<i32, AdminClientError> {
        let coordinator = self.bootstrap.find_coordinator(group_id)?;
        self.addresses
            .entry(coordinator.node_id)
            .or_insert(coordinator.address);
        Ok(coordinator.node_id)
    }

    /// `group`'s committed offsets in `topic`, by partition, from its coordinator; none
    /// for a group the broker does not know.
    ///
    /// # Errors
    /// FindCoordinator's or OffsetFetch's error, or a connection error.
    pub fn committed_offsets_in(
        &mut self,
        group: &str,
        topic: &str,
    ) -> Result<BTreeMap<i32, i64>, AdminClientError> {
        let committed = match self.coordinator(group)?.committed_offsets(group) {
            Ok(committed) => committed,
            Err(AdminClientError::Broker { code, .. })
                if code.known() == Some(ErrorCode::GroupIdNotFound) =>
            {
                BTreeMap::new()
            }
            Err(error) => return Err(error),
        };
        Ok(committed
            .into_iter()
            .filter(|((name, _), offset)| name == topic && offset.error_code == 0)
            .map(|((_, partition), offset)| (partition, offset.offset))
            .collect())
    }
}

/// Whether `address` resolves to the bootstrap connection's peer.
fn resolves_to_bootstrap(address: &str, bootstrap: &AdminClient) -> bool {
    address
        .to_socket_addrs()
        .is_ok_and(|mut resolved| resolved.any(|socket| socket == bootstrap.peer()))
}

/// The leader of each partition of `topic` in `metadata`: its broker id, or the error code
/// that stands for "no leader" (LEADER_NOT_AVAILABLE for -1, else the partition's code).
pub fn partition_leaders(
    metadata: &MetadataResponse,
    topic: &str,
) -> BTreeMap<i32, Result<i32, BrokerErrorCode>> {
    metadata
        .topics
        .iter()
        .filter(|described| described.name.as_deref() == Some(topic))
        .flat_map(|described| described.partitions.iter())
        .map(|partition| {
            let leader = match (partition.error_code, partition.leader_id) {
                (0, leader) if leader >= 0 => Ok(leader),
                (0, _) => Err(BrokerErrorCode(ErrorCode::LeaderNotAvailable.code())),
                (code, _) => Err(BrokerErrorCode(code)),
            };
            (partition.partition_index, leader)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin_client::tests::{advertise, fake_broker};
    use riffle_protocol::api::metadata::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use riffle_protocol::api::produce::{
        PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
    };
    use riffle_protocol::{ApiKey, Response};
    use std::time::Duration;

    fn metadata_broker(node_id: i32, address: std::net::SocketAddr) -> MetadataResponseBroker {
        MetadataResponseBroker {
            node_id,
            host: address.ip().to_string(),
            port: i32::from(address.port()),
            rack: None,
        }
    }

    #[test]
    fn requests_reach_the_leader_over_its_own_connection() {
        // Proves a partition led by another broker is produced to over a second connection
        // opened from Metadata's address, that a listed broker nobody asks for is never
        // connected to (its port is closed), and that an unlisted id is a clear error.
        let leader = fake_broker(
            vec![advertise(ApiKey::Produce, 3, 9)],
            vec![Response::Produce(ProduceResponse {
                responses: vec![TopicProduceResponse {
                    name: "t".into(),
                    partition_responses: vec![PartitionProduceResponse {
                        index: 0,
                        base_offset: 41,
                        ..Default::default()
                    }],
                }],
                ..Default::default()
            })],
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let closed_address = closed.local_addr().expect("address");
        drop(closed);
        let metadata = MetadataResponse {
            brokers: vec![
                metadata_broker(1, closed_address),
                metadata_broker(2, leader),
            ],
            topics: vec![MetadataResponseTopic {
                name: Some("t".into()),
                partitions: vec![MetadataResponsePartition {
                    partition_index: 0,
                    leader_id: 2,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let bootstrap = fake_broker(
            vec![advertise(ApiKey::Metadata, 0, 12)],
            vec![Response::Metadata(metadata)],
        );
        let mut brokers =
            Brokers::connect(&bootstrap.to_string(), ClientConfig::default()).expect("connect");
        let metadata = brokers.metadata(Some(&["t".to_owned()])).expect("metadata");
        assert_eq!(
            partition_leaders(&metadata, "t"),
            BTreeMap::from([(0, Ok(2))])
        );
        let produced = brokers
            .broker(2)
            .expect("the leader")
            .produce(
                crate::admin_client::records::Acks::All,
                Duration::from_secs(5),
                vec![(("t".to_owned(), 0), bytes::Bytes::from_static(b"batch"))],
            )
            .expect("produce");
        assert_eq!(
            produced,
            Some(BTreeMap::from([(("t".to_owned(), 0), Ok(41))]))
        );
        let error = brokers.broker(3).err().expect("not in Metadata");
        assert_eq!(
            error.to_string(),
            "no address is known for broker 3: Metadata does not list it"
        );
    }
}
