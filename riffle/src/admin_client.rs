//! A small blocking Kafka client for the `riffle` client subcommands (`riffle topics`,
//! `produce`, `consume`, `groups`, `acls`, `cluster`).
//!
//! An [`AdminClient`] is one connection to one broker, one request at a time: write a frame,
//! read one length-prefixed response, decode it with `riffle-protocol`. No async runtime, so
//! the CLI starts instantly and never needs the broker's tokio machinery. Requests that must
//! reach a particular broker (a partition's leader, a group's coordinator) go through
//! [`routing::Brokers`], which keeps one connection per broker id, opened on demand from the
//! addresses Metadata gives; so the commands work against a cluster of several brokers too.
//!
//! [`AdminClient::connect_with`] connects as a [`ClientConfig`] says: over TCP or TLS
//! (`transport`), then asks for the broker's API versions, so a request the broker does
//! not advertise fails with [`AdminClientError::Unsupported`] instead of a closed socket, then
//! authenticates with SASL if configured (`sasl`). Requests live by subject: [`acls`],
//! [`topics`] (Metadata, CreateTopics, DeleteTopics, configs, log dirs), [`records`]
//! (Produce, Fetch, ListOffsets), [`groups`] (FindCoordinator, OffsetCommit) and
//! [`cluster`] (DescribeCluster). Every wait is bounded by [`CONNECT_TIMEOUT`] and
//! [`IO_TIMEOUT`] (longer for a request that says so); nothing read from the network is
//! trusted: lengths are checked against [`MAX_RESPONSE_BYTES`] before allocating, and a
//! response that does not decode is an error, never a panic.
//!
//! # Versions
//! The older requests use one version; the newer ones send the highest version of a range
//! that the broker also advertises ([`AdminClient::negotiate`]), so they work against older
//! brokers too. Each range stops where the fields used change meaning (Fetch at 12, before
//! topic ids).
//!
//! | API | version | why |
//! |---|---|---|
//! | ApiVersions | 3 | the first flexible version; answers with the ranges we check against |
//! | SaslHandshake | 1 | tokens then travel in SaslAuthenticate requests |
//! | SaslAuthenticate | 2 | flexible; carries the broker's error message |
//! | ListGroups | 4 | adds `states_filter` and each group's state |
//! | DescribeGroups | 5 | flexible; members carry `group_instance_id` |
//! | OffsetFetch | 8 | the batched-groups layout; `topics: null` asks for every committed partition |
//! | ListOffsets | 1-7 | timestamps -2 (earliest), -1 (latest) or a time |
//! | DescribeAcls, CreateAcls, DeleteAcls | 3 | flexible, with pattern types |
//! | Metadata | 4-12 | v4 can refuse auto-creation; names, not topic ids, identify topics |
//! | CreateTopics | 4-7 | v4 takes -1 partitions or replicas for the broker's default |
//! | DeleteTopics | 1-6 | by name |
//! | DescribeConfigs | 1-4 | v1 reports each config's source |
//! | IncrementalAlterConfigs | 0-1 | |
//! | DescribeLogDirs | 1-4 | partition sizes |
//! | Produce | 3-9 | record batches v2 |
//! | Fetch | 4-12 | by topic name (13+ uses topic ids) |
//! | FindCoordinator | 1-3 | one key per request |
//! | OffsetCommit | 2-8 | generation -1: a commit outside any group generation |
//! | DescribeCluster | 0-1 | |

pub mod acls;
pub mod cluster;
pub mod groups;
pub mod records;
pub mod routing;
mod sasl;
#[cfg(test)]
mod security_tests;
pub mod topics;
mod transport;

use std::collections::BTreeMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use riffle_protocol::api::api_versions::{ApiVersion, ApiVersionsRequest};
use riffle_protocol::api::describe_groups::{DescribeGroupsRequest, DescribedGroup};
use riffle_protocol::api::list_groups::{ListGroupsRequest, ListedGroup};
use riffle_protocol::api::offset_fetch::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchResponseTopics,
};
use riffle_protocol::{
    ApiKey, DecodeError, ErrorCode, Request, RequestHeader, Response, decode_response,
    encode_request,
};

use crate::client_config::{ClientConfig, TlsClientSettings};
use riffle_server::security::scram::ScramClientError;
use riffle_server::security::tls::{TlsError, client_config_for};
use transport::Transport;

/// How long connecting to the broker may take, per resolved address.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one socket read or write may block before the request fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest response frame accepted; a larger size prefix means a confused peer.
pub const MAX_RESPONSE_BYTES: usize = 100 * 1024 * 1024;

/// The client id every request carries, so broker logs show who asked.
pub const CLIENT_ID: &str = "riffle-cli";

/// ApiVersions version sent on connect (v3: flexible, carries the client software name).
const API_VERSIONS_VERSION: i16 = 3;
/// ListGroups version: v4 adds the states filter and each group's state.
const LIST_GROUPS_VERSION: i16 = 4;
/// DescribeGroups version: v5 is flexible and reports static member ids.
const DESCRIBE_GROUPS_VERSION: i16 = 5;
/// OffsetFetch version: v8 is the batched-groups layout.
const OFFSET_FETCH_VERSION: i16 = 8;

/// Why an admin request failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminClientError {
    /// The bootstrap address did not resolve to any socket address.
    #[error("cannot resolve {bootstrap}: {source}")]
    Resolve {
        /// The address as given.
        bootstrap: String,
        /// What the resolver said.
        source: io::Error,
    },
    /// No resolved address accepted a connection within [`CONNECT_TIMEOUT`].
    #[error("cannot connect to {bootstrap}: {source}")]
    Connect {
        /// The address as given.
        bootstrap: String,
        /// The last connection error.
        source: io::Error,
    },
    /// The broker did not answer within the read timeout ([`IO_TIMEOUT`] unless a request
    /// set another).
    #[error("{api} request to {peer} timed out after {timeout:?}")]
    TimedOut {
        /// The API being called.
        api: &'static str,
        /// The broker.
        peer: SocketAddr,
        /// How long it waited.
        timeout: Duration,
    },
    /// The broker closed the connection instead of answering.
    #[error("the broker at {peer} closed the connection during a {api} request")]
    Closed {
        /// The API being called.
        api: &'static str,
        /// The broker.
        peer: SocketAddr,
    },
    /// Another socket error.
    #[error("{api} request to {peer} failed: {source}")]
    Io {
        /// The API being called.
        api: &'static str,
        /// The broker.
        peer: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// The response's size prefix is negative or above [`MAX_RESPONSE_BYTES`].
    #[error("{api} response announces {size} bytes; the limit is {MAX_RESPONSE_BYTES}")]
    BadResponseSize {
        /// The API being called.
        api: &'static str,
        /// The announced size.
        size: i32,
    },
    /// The response bytes are not a valid response of that API and version.
    #[error("cannot decode the {api} v{version} response: {source}")]
    Decode {
        /// The API being called.
        api: &'static str,
        /// The version sent.
        version: i16,
        /// What the decoder said.
        source: DecodeError,
    },
    /// The response answers another request.
    #[error("{api} response has correlation id {received}, expected {expected}")]
    CorrelationMismatch {
        /// The API being called.
        api: &'static str,
        /// The id sent.
        expected: i32,
        /// The id received.
        received: i32,
    },
    /// The broker does not advertise the version this client needs.
    #[error("the broker does not support {api} v{version} ({advertised})")]
    Unsupported {
        /// The API being called.
        api: &'static str,
        /// The version this client sends.
        version: i16,
        /// What the broker advertises, in words.
        advertised: String,
    },
    /// The broker answered with an error code for the whole request or for a group.
    #[error("{api} failed{context}: {code}{}", message_suffix(.message))]
    Broker {
        /// The API being called.
        api: &'static str,
        /// Which group or partition, with a leading space, or empty.
        context: String,
        /// The error code (unknown codes are shown as numbers).
        code: BrokerErrorCode,
        /// The broker's error message, where the response carries one.
        message: Option<String>,
    },
    /// The response has another number of results than the request had entries.
    #[error("{api} answered {received} results to {sent} entries")]
    ResultCount {
        /// The API being called.
        api: &'static str,
        /// Entries sent.
        sent: usize,
        /// Results received.
        received: usize,
    },
    /// The response answers about another resource than the one asked about.
    #[error("{api} answered about another resource than the one asked about")]
    UnaskedResult {
        /// The API being called.
        api: &'static str,
    },
    /// A request must go to a broker that Metadata did not list.
    #[error("no address is known for broker {broker_id}: Metadata does not list it")]
    UnknownBroker {
        /// The broker id.
        broker_id: i32,
    },
    /// The TLS settings could not be loaded (a CA, certificate or key file).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The bootstrap host is not a name or address a certificate can be checked against.
    #[error("'{host}' is not a valid TLS server name")]
    InvalidServerName {
        /// The host as given.
        host: String,
    },
    /// The TLS handshake failed: a certificate was refused, or the peer does not speak TLS.
    #[error("TLS handshake with {peer} failed: {source}")]
    TlsHandshake {
        /// The broker.
        peer: SocketAddr,
        /// What rustls or the socket said.
        source: io::Error,
    },
    /// The broker does not enable the SASL mechanism asked for.
    #[error(
        "the broker does not enable SASL mechanism {mechanism} \
         (UNSUPPORTED_SASL_MECHANISM; enabled: {enabled})"
    )]
    MechanismDisabled {
        /// The mechanism asked for.
        mechanism: &'static str,
        /// What it enables, comma-separated.
        enabled: String,
    },
    /// The broker refused the SASL login.
    #[error(
        "SASL authentication of '{username}' with {mechanism} at {peer} failed: {code}: {message}"
    )]
    Authentication {
        /// The broker.
        peer: SocketAddr,
        /// The mechanism.
        mechanism: &'static str,
        /// The user name (never the password).
        username: String,
        /// The error code: SASL_AUTHENTICATION_FAILED.
        code: BrokerErrorCode,
        /// The broker's message.
        message: String,
    },
    /// The SCRAM exchange failed on the client's side: the server's answer is malformed or
    /// does not prove it holds the user's keys.
    #[error("SCRAM authentication failed: {source}")]
    Scram {
        /// What the SCRAM client found.
        source: ScramClientError,
    },
}

/// `": message"`, or nothing for no or an empty message.
fn message_suffix(message: &Option<String>) -> String {
    match message.as_deref() {
        Some(text) if !text.is_empty() => format!(": {text}"),
        _ => String::new(),
    }
}

/// An error code from a response: a known [`ErrorCode`] or a number this codec does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerErrorCode(pub i16);

impl BrokerErrorCode {
    /// The named code, if the codec knows it.
    pub fn known(self) -> Option<ErrorCode> {
        ErrorCode::from_code(self.0)
    }
}

impl std::fmt::Display for BrokerErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.known() {
            Some(code) => write!(f, "{code}"),
            None => write!(f, "error code {}", self.0),
        }
    }
}

/// The committed offset of one partition, from OffsetFetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The committed offset (the next one to consume); -1 when none is committed.
    pub offset: i64,
    /// The metadata string committed with it.
    pub metadata: Option<String>,
    /// The partition's error code, 0 when fine.
    pub error_code: i16,
}

/// A partition's log end offset, or the error ListOffsets gave for it.
pub type LogEndOffset = Result<i64, BrokerErrorCode>;

/// A blocking connection to one broker.
pub struct AdminClient {
    /// The connected stream, TCP or TLS, with read and write timeouts of [`IO_TIMEOUT`].
    stream: Transport,
    /// The broker's address, for error messages.
    peer: SocketAddr,
    /// The correlation id of the next request.
    next_correlation_id: i32,
    /// What the broker advertised in ApiVersions.
    api_versions: Vec<ApiVersion>,
    /// The finalized feature levels the broker reported (ApiVersions v3), such as KRaft
    /// Kafka's `metadata.version`, as name and maximum level.
    finalized_features: Vec<(String, i16)>,
    /// The socket's current read and write timeout.
    io_timeout: Duration,
}

impl AdminClient {
    /// Connects to `bootstrap` (`HOST:PORT`) over PLAINTEXT and reads the broker's API
    /// versions.
    ///
    /// # Errors
    /// As [`AdminClient::connect_with`].
    pub fn connect(bootstrap: &str) -> Result<AdminClient, AdminClientError> {
        AdminClient::connect_with(bootstrap, &ClientConfig::default())
    }

    /// Connects to `bootstrap` (`HOST:PORT`, or a comma-separated list tried in order) with
    /// `config`'s security: TLS if it says so, then ApiVersions, then SASL if it says so.
    ///
    /// # Errors
    /// [`AdminClientError::Tls`] for unusable TLS files (before connecting);
    /// [`AdminClientError::Resolve`] or [`AdminClientError::Connect`] when no connection can be
    /// made; [`AdminClientError::TlsHandshake`]; [`AdminClientError::Authentication`] and the
    /// other SASL errors; any request error of these exchanges.
    pub fn connect_with(
        bootstrap: &str,
        config: &ClientConfig,
    ) -> Result<AdminClient, AdminClientError> {
        let tls = config.tls.as_ref().map(rustls_config).transpose()?;
        let (stream, peer) = transport::connect(bootstrap, tls)?;
        let mut client = AdminClient {
            stream,
            peer,
            next_correlation_id: 1,
            api_versions: Vec::new(),
            finalized_features: Vec::new(),
            io_timeout: IO_TIMEOUT,
        };
        let request = Request::ApiVersions(ApiVersionsRequest {
            client_software_name: CLIENT_ID.to_owned(),
            client_software_version: env!("CARGO_PKG_VERSION").to_owned(),
        });
        let response = client.exchange(ApiKey::ApiVersions, API_VERSIONS_VERSION, request)?;
        let Response::ApiVersions(versions) = response else {
            unreachable!("decode_response answers with the requested API");
        };
        check_error_code(ApiKey::ApiVersions, "", versions.error_code)?;
        client.api_versions = versions.api_keys;
        client.finalized_features = versions
            .finalized_features
            .into_iter()
            .map(|feature| (feature.name, feature.max_version_level))
            .collect();
        if let Some(credentials) = &config.sasl {
            client.authenticate(credentials)?;
        }
        Ok(client)
    }

    /// Lists every group the broker knows (ListGroups v4, no states filter).
    ///
    /// # Errors
    /// A request error, or the response's top-level error code.
    pub fn list_groups(&mut self) -> Result<Vec<ListedGroup>, AdminClientError> {
        let request = Request::ListGroups(ListGroupsRequest {
            states_filter: Vec::new(),
            ..Default::default()
        });
        let Response::ListGroups(response) =
            self.send(ApiKey::ListGroups, LIST_GROUPS_VERSION, request)?
        else {
            unreachable!("decode_response answers with the requested API");
        };
        check_error_code(ApiKey::ListGroups, "", response.error_code)?;
        Ok(response.groups)
    }

    /// Describes one group (DescribeGroups v5). The group's own error code is left for the
    /// caller, since GROUP_ID_NOT_FOUND is an answer, not a failure.
    ///
    /// # Errors
    /// A request error, or a response that does not describe exactly this group.
    pub fn describe_group(&mut self, group_id: &str) -> Result<DescribedGroup, AdminClientError> {
        let request = Request::DescribeGroups(DescribeGroupsRequest {
            groups: vec![group_id.to_owned()],
            include_authorized_operations: false,
        });
        let Response::DescribeGroups(response) =
            self.send(ApiKey::DescribeGroups, DESCRIBE_GROUPS_VERSION, request)?
        else {
            unreachable!("decode_response answers with the requested API");
        };
        response
            .groups
            .into_iter()
            .find(|group| group.group_id == group_id)
            .ok_or_else(|| AdminClientError::Broker {
                api: ApiKey::DescribeGroups.name(),
                context: format!(" for group '{group_id}'"),
                code: BrokerErrorCode(ErrorCode::UnknownServerError.code()),
                message: None,
            })
    }

    /// Every committed offset of `group_id` (OffsetFetch v8 with `topics: null`), by topic and
    /// partition.
    ///
    /// # Errors
    /// A request error, or a top-level or group-level error code.
    pub fn committed_offsets(
        &mut self,
        group_id: &str,
    ) -> Result<BTreeMap<(String, i32), CommittedOffset>, AdminClientError> {
        let request = Request::OffsetFetch(OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: group_id.to_owned(),
                topics: None,
                ..Default::default()
            }],
            require_stable: false,
            ..Default::default()
        });
        let Response::OffsetFetch(response) =
            self.send(ApiKey::OffsetFetch, OFFSET_FETCH_VERSION, request)?
        else {
            unreachable!("decode_response answers with the requested API");
        };
        let context = format!(" for group '{group_id}'");
        let group = response
            .groups
            .into_iter()
            .find(|group| group.group_id == group_id)
            .ok_or_else(|| AdminClientError::Broker {
                api: ApiKey::OffsetFetch.name(),
                context: context.clone(),
                code: BrokerErrorCode(ErrorCode::UnknownServerError.code()),
                message: None,
            })?;
        check_error_code(ApiKey::OffsetFetch, &context, group.error_code)?;
        Ok(committed_by_partition(group.topics))
    }

    /// The log end offset (ListOffsets, timestamp -1) of each partition in `partitions`.
    /// A partition-level error is returned in the map, not as a failure.
    ///
    /// # Errors
    /// A request error.
    pub fn log_end_offsets(
        &mut self,
        partitions: &BTreeMap<String, Vec<i32>>,
    ) -> Result<BTreeMap<(String, i32), LogEndOffset>, AdminClientError> {
        let queries = partitions
            .iter()
            .flat_map(|(topic, indexes)| {
                indexes
                    .iter()
                    .map(|&partition| ((topic.clone(), partition), records::LATEST_TIMESTAMP))
            })
            .collect();
        let found = self.list_offsets(&queries)?;
        Ok(found
            .into_iter()
            .map(|(key, found)| (key, found.map(|found| found.offset)))
            .collect())
    }

    /// The broker's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The API versions the broker advertised.
    pub fn api_versions(&self) -> &[ApiVersion] {
        &self.api_versions
    }

    /// The finalized feature levels the broker reported, by name (empty when it reports
    /// none, as brokers before Kafka 2.7 and Riffle).
    pub fn finalized_features(&self) -> &[(String, i16)] {
        &self.finalized_features
    }

    /// The highest version in `ours` (the versions this client can send) that the broker
    /// also advertises.
    ///
    /// # Errors
    /// [`AdminClientError::Unsupported`] when the ranges do not meet, naming our highest.
    pub fn negotiate(
        &self,
        api_key: ApiKey,
        ours: std::ops::RangeInclusive<i16>,
    ) -> Result<i16, AdminClientError> {
        let advertised = self
            .api_versions
            .iter()
            .find(|range| range.api_key == api_key as i16);
        let Some(range) = advertised else {
            return Err(AdminClientError::Unsupported {
                api: api_key.name(),
                version: *ours.end(),
                advertised: String::from("it does not advertise the API"),
            });
        };
        let highest = range.max_version.min(*ours.end());
        if highest < range.min_version || highest < *ours.start() {
            return Err(AdminClientError::Unsupported {
                api: api_key.name(),
                version: *ours.end(),
                advertised: format!(
                    "it advertises v{}-v{}; this client sends v{}-v{}",
                    range.min_version,
                    range.max_version,
                    ours.start(),
                    ours.end()
                ),
            });
        }
        Ok(highest)
    }

    /// Sets how long one read or write may block, for a request the broker may take long to
    /// answer (DeleteTopics of a large topic); [`IO_TIMEOUT`] is the default.
    ///
    /// # Errors
    /// When the socket refuses the timeout.
    pub fn set_io_timeout(&mut self, timeout: Duration) -> Result<(), AdminClientError> {
        self.stream
            .set_timeouts(timeout)
            .map_err(|source| AdminClientError::Io {
                api: "socket timeout",
                peer: self.peer,
                source,
            })?;
        self.io_timeout = timeout;
        Ok(())
    }

    /// Sends `request` at `version` after checking the broker advertises it.
    fn send(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: Request,
    ) -> Result<Response, AdminClientError> {
        let advertised = self
            .api_versions
            .iter()
            .find(|range| range.api_key == api_key as i16);
        match advertised {
            Some(range) if (range.min_version..=range.max_version).contains(&version) => {}
            Some(range) => {
                return Err(AdminClientError::Unsupported {
                    api: api_key.name(),
                    version,
                    advertised: format!(
                        "it advertises v{}-v{}",
                        range.min_version, range.max_version
                    ),
                });
            }
            None => {
                return Err(AdminClientError::Unsupported {
                    api: api_key.name(),
                    version,
                    advertised: String::from("it does not advertise the API"),
                });
            }
        }
        self.exchange(api_key, version, request)
    }

    /// Writes one request and reads and decodes its response.
    fn exchange(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: Request,
    ) -> Result<Response, AdminClientError> {
        let correlation_id = self.write_request(api_key, version, &request)?;
        let api = api_key.name();
        let body = self.read_frame(api)?;
        let (received, response) =
            decode_response(api_key, version, body).map_err(|source| AdminClientError::Decode {
                api,
                version,
                source,
            })?;
        if received != correlation_id {
            return Err(AdminClientError::CorrelationMismatch {
                api,
                expected: correlation_id,
                received,
            });
        }
        Ok(response)
    }

    /// Writes one request frame and returns its correlation id.
    fn write_request(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: &Request,
    ) -> Result<i32, AdminClientError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader {
            api_key: api_key as i16,
            api_version: version,
            correlation_id,
            client_id: Some(CLIENT_ID.to_owned()),
        };
        let mut frame = BytesMut::new();
        encode_request(&header, request, &mut frame);
        self.stream
            .write_all(&frame)
            .and_then(|()| self.stream.flush())
            .map_err(|source| self.socket_error(api_key.name(), source))?;
        Ok(correlation_id)
    }

    /// Classifies a socket error of this connection.
    fn socket_error(&self, api: &'static str, source: io::Error) -> AdminClientError {
        match socket_error(api, self.peer, source) {
            AdminClientError::TimedOut { api, peer, .. } => AdminClientError::TimedOut {
                api,
                peer,
                timeout: self.io_timeout,
            },
            other => other,
        }
    }

    /// Reads one length-prefixed frame and returns it without the prefix.
    fn read_frame(&mut self, api: &'static str) -> Result<Bytes, AdminClientError> {
        let mut prefix = [0u8; 4];
        self.stream
            .read_exact(&mut prefix)
            .map_err(|source| self.socket_error(api, source))?;
        let size = i32::from_be_bytes(prefix);
        let size_bytes = usize::try_from(size)
            .ok()
            .filter(|&bytes| bytes <= MAX_RESPONSE_BYTES)
            .ok_or(AdminClientError::BadResponseSize { api, size })?;
        let mut body = vec![0u8; size_bytes];
        self.stream
            .read_exact(&mut body)
            .map_err(|source| self.socket_error(api, source))?;
        Ok(Bytes::from(body))
    }
}

/// The rustls configuration for `settings`: its CA (or the system's), client certificate
/// and verification.
fn rustls_config(
    settings: &TlsClientSettings,
) -> Result<std::sync::Arc<rustls::ClientConfig>, AdminClientError> {
    Ok(client_config_for(
        settings.ca_file.as_deref(),
        settings.identity.as_ref(),
        settings.verification,
    )?)
}

/// Classifies a socket error: a timeout, a closed connection, or anything else.
fn socket_error(api: &'static str, peer: SocketAddr, source: io::Error) -> AdminClientError {
    match source.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => AdminClientError::TimedOut {
            api,
            peer,
            timeout: IO_TIMEOUT,
        },
        ErrorKind::UnexpectedEof
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe => AdminClientError::Closed { api, peer },
        _ => AdminClientError::Io { api, peer, source },
    }
}

/// `Ok` for error code 0, else [`AdminClientError::Broker`].
fn check_error_code(api_key: ApiKey, context: &str, code: i16) -> Result<(), AdminClientError> {
    check_error(api_key, context, code, None)
}

/// As [`check_error_code`], keeping the response's error message.
fn check_error(
    api_key: ApiKey,
    context: &str,
    code: i16,
    message: Option<String>,
) -> Result<(), AdminClientError> {
    if code == ErrorCode::None.code() {
        return Ok(());
    }
    Err(AdminClientError::Broker {
        api: api_key.name(),
        context: context.to_owned(),
        code: BrokerErrorCode(code),
        message,
    })
}

/// Flattens OffsetFetch v8 topics into one entry per partition.
fn committed_by_partition(
    topics: Vec<OffsetFetchResponseTopics>,
) -> BTreeMap<(String, i32), CommittedOffset> {
    let mut committed = BTreeMap::new();
    for topic in topics {
        for partition in topic.partitions {
            committed.insert(
                (topic.name.clone(), partition.partition_index),
                CommittedOffset {
                    offset: partition.committed_offset,
                    metadata: partition.metadata,
                    error_code: partition.error_code,
                },
            );
        }
    }
    committed
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use riffle_protocol::api::api_versions::ApiVersionsResponse;
    use riffle_protocol::api::list_groups::ListGroupsResponse;
    use riffle_protocol::encode_response;
    use std::net::TcpListener;
    use std::thread;

    /// A one-connection stand-in broker: it answers ApiVersions with `advertised`, then each
    /// following request with the next of `responses`, encoded at the version the request
    /// asked for. Returns its address.
    pub(crate) fn fake_broker(advertised: Vec<ApiVersion>, responses: Vec<Response>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let versions = Response::ApiVersions(ApiVersionsResponse {
                api_keys: advertised,
                ..Default::default()
            });
            for answer in std::iter::once(versions).chain(responses) {
                let mut prefix = [0u8; 4];
                if stream.read_exact(&mut prefix).is_err() {
                    return;
                }
                let size = usize::try_from(i32::from_be_bytes(prefix)).expect("size");
                let mut body = vec![0u8; size];
                stream.read_exact(&mut body).expect("body");
                let version = i16::from_be_bytes([body[2], body[3]]);
                let correlation_id = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                let mut frame = BytesMut::new();
                encode_response(correlation_id, version, &answer, &mut frame);
                stream.write_all(&frame).expect("write");
            }
        });
        address
    }

    /// An ApiVersions entry.
    pub(crate) fn advertise(api_key: ApiKey, min_version: i16, max_version: i16) -> ApiVersion {
        ApiVersion {
            api_key: api_key as i16,
            min_version,
            max_version,
        }
    }

    #[test]
    fn list_groups_round_trips_through_a_fake_broker() {
        // Proves the frame writing, correlation ids and response decoding against a socket
        // that answers with encoded ApiVersions and ListGroups v4 responses.
        let groups = vec![ListedGroup {
            group_id: "orders".into(),
            protocol_type: "consumer".into(),
            group_state: "Stable".into(),
            ..Default::default()
        }];
        let response = Response::ListGroups(ListGroupsResponse {
            groups: groups.clone(),
            ..Default::default()
        });
        let address = fake_broker(vec![advertise(ApiKey::ListGroups, 0, 5)], vec![response]);
        let mut client = AdminClient::connect(&address.to_string()).expect("connect");
        assert_eq!(client.list_groups().expect("list groups"), groups);
    }

    #[test]
    fn an_unadvertised_api_fails_before_sending() {
        // Proves a broker without the group APIs gets a clear "does not support" error.
        let response = Response::ListGroups(ListGroupsResponse::default());
        let address = fake_broker(vec![advertise(ApiKey::ListGroups, 0, 3)], vec![response]);
        let mut client = AdminClient::connect(&address.to_string()).expect("connect");
        let error = client.describe_group("orders").expect_err("not advertised");
        assert_eq!(
            error.to_string(),
            "the broker does not support DescribeGroups v5 (it does not advertise the API)"
        );
        let error = client.list_groups().expect_err("too old");
        assert_eq!(
            error.to_string(),
            "the broker does not support ListGroups v4 (it advertises v0-v3)"
        );
    }

    #[test]
    fn a_refused_connection_names_the_address() {
        // Proves connecting to a closed port fails with the address, not a panic.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        drop(listener);
        let error = AdminClient::connect(&address)
            .err()
            .expect("nothing listens there");
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot connect to {address}")),
            "{error}"
        );
    }
}
