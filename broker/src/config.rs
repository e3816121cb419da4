//! Every broker setting and limit, with its unit, its default and its flag, in one place.
//!
//! [`BrokerConfig`] is what `riffle serve` parses (flags and `RIFFLE_*` environment
//! variables, through clap). Topic-level settings live in [`crate::topic_config`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::connection_limits::PerIpOverrides;
use crate::security::Principal;
use crate::security::authorizer::AuthorizerConfig;
use crate::security::principal::PrincipalParseError;

/// Largest request frame we accept, as Kafka's `socket.request.max.bytes`.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;
/// How many client connections may be open at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// How long a started request may take to arrive in full; as a client's default
/// `request.timeout.ms`, which gives up on the request by then anyway.
pub const DEFAULT_REQUEST_READ_TIMEOUT_MS: u64 = 30_000;
/// How long a connection may sit idle, as Kafka's `connections.max.idle.ms`.
pub const DEFAULT_CONNECTIONS_MAX_IDLE_MS: u64 = 600_000;
/// How many requests one connection may have read but not yet answered.
pub const DEFAULT_MAX_IN_FLIGHT_REQUESTS: usize = 16;
/// The longest a Fetch may wait for data, whatever the client asks.
pub const FETCH_MAX_WAIT_MS_LIMIT: i32 = 30_000;
/// The most record bytes one Fetch response holds, whatever the client asks, as Kafka's
/// `fetch.max.bytes` (55 MiB).
pub const DEFAULT_FETCH_MAX_BYTES: usize = 55 * 1024 * 1024;
/// How many fetch sessions (KIP-227) the broker keeps, as Kafka's
/// `max.incremental.fetch.session.cache.slots`.
pub const DEFAULT_MAX_INCREMENTAL_FETCH_SESSION_CACHE_SLOTS: usize = 1000;
/// How long a failed authentication waits before its connection closes, as Kafka's
/// `connection.failed.authentication.delay.ms`.
pub const DEFAULT_CONNECTION_FAILED_AUTHENTICATION_DELAY_MS: u64 = 100;
/// How long a new connection on a TLS or SASL listener may take to authenticate.
pub const DEFAULT_AUTHENTICATION_TIMEOUT_MS: u64 = 10_000;
/// The largest frame read before a SASL connection is authenticated, as Kafka's
/// `sasl.server.max.receive.size`: SASL tokens are small, so an unauthenticated client
/// cannot make the broker buffer `max_request_bytes`.
pub const DEFAULT_SASL_SERVER_MAX_RECEIVE_BYTES: usize = 512 * 1024;

/// Where the HTTP listener (metrics and health) binds unless told otherwise: the port
/// Redpanda's admin API uses, on loopback only, as the Kafka listener's default is.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:9644";

const _: () = assert!(DEFAULT_MAX_IN_FLIGHT_REQUESTS >= 1);
const _: () = assert!(DEFAULT_MAX_REQUEST_BYTES <= i32::MAX as usize);

/// When appended bytes are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlushPolicy {
    /// acks=all is answered only after an fsync that covers the batch (group commit:
    /// one fsync serves every batch appended before it). acks=1 does not wait.
    AcksAll,
    /// A background task fsyncs every log each `flush_interval_ms`; no produce waits.
    Interval,
    /// Never fsync explicitly; the operating system writes back when it likes.
    Never,
}

/// What CreateTopics does with a replication factor above 1, which one node cannot hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReplicationFactorPolicy {
    /// Refuse the topic with INVALID_REPLICATION_FACTOR, as a one-broker Kafka does.
    Reject,
    /// Create it with its one replica and log a warning: for tools and test suites written
    /// for three-broker clusters, run against one node.
    Accept,
}

/// Whether a TLS client must, may or must not present a certificate (Kafka's
/// `ssl.client.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SslClientAuth {
    /// No client certificate is asked for; an SSL connection is `User:ANONYMOUS`.
    None,
    /// A certificate is asked for; a client without one is `User:ANONYMOUS`.
    Requested,
    /// A client without a certificate signed by `--ssl-truststore` is refused.
    Required,
}

/// Whether requests are authorized, as Kafka's `authorizer.class.name` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthorizerKind {
    /// No authorizer: every principal may do everything, as in Kafka without one; the ACL
    /// APIs answer SECURITY_DISABLED.
    None,
    /// Kafka's ACL model: a principal may do what the ACLs (or `--super-users`) allow.
    Acl,
}

/// `--http-listen`: an address to bind the HTTP listener to, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpListen {
    /// No HTTP listener: no metrics and no health endpoints.
    Disabled,
    /// Bind here (port 0: a free port).
    Address(SocketAddr),
}

impl std::str::FromStr for HttpListen {
    type Err = String;

    /// `none` (any case) or `HOST:PORT` with an IP address for HOST.
    fn from_str(text: &str) -> Result<HttpListen, String> {
        if text.trim().eq_ignore_ascii_case("none") {
            return Ok(HttpListen::Disabled);
        }
        text.trim().parse().map(HttpListen::Address).map_err(|_| {
            format!("'{text}' is neither HOST:PORT (an IP address and a port) nor none")
        })
    }
}

/// `--super-users`: principals separated by semicolons, Kafka's `super.users` syntax
/// (`User:admin;User:ops`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuperUsers(pub Vec<Principal>);

impl SuperUsers {
    /// Reads `User:admin;User:ops`; blanks around each principal and empty items are ignored.
    ///
    /// # Errors
    /// The first item that is not `TYPE:NAME`.
    pub fn parse(text: &str) -> Result<SuperUsers, PrincipalParseError> {
        text.split(';')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(Principal::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(SuperUsers)
    }
}

/// The settings of `riffle serve`.
#[derive(Debug, Clone, Args)]
pub struct BrokerConfig {
    /// A Kafka `server.properties` file to read settings from, under Kafka's names
    /// (`listeners`, `log.dirs`, `num.partitions`, ...); flags and `RIFFLE_*` variables
    /// override it. See [`crate::config_file`].
    #[arg(long, env = "RIFFLE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on, as one PLAINTEXT listener. Port 0 picks a free port; the bound
    /// address is printed on the first line of standard output. Not with `--listeners`.
    #[arg(long, env = "RIFFLE_LISTEN", default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,

    /// Address of the HTTP listener serving `/metrics` (Prometheus), `/healthz` and
    /// `/readyz`, or `none` for no HTTP listener. Port 0 picks a free port; the bound
    /// address is printed as `riffle http listening on ADDR` after the listening lines.
    /// In a `--config` file: `riffle.http.listen` (Kafka has no name for it).
    #[arg(long, env = "RIFFLE_HTTP_LISTEN", default_value = DEFAULT_HTTP_LISTEN)]
    pub http_listen: HttpListen,

    /// Address clients are told to connect to, in Metadata. Defaults to the bound address.
    /// Not with `--listeners` (use `--advertised-listeners`).
    #[arg(long, env = "RIFFLE_ADVERTISE")]
    pub advertise: Option<String>,

    /// Listeners in Kafka's syntax, `NAME://HOST:PORT` separated by commas, such as
    /// `PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9093`. The name is the security
    /// protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) unless
    /// `--listener-security-protocol-map` maps it; an empty host listens on every
    /// interface; port 0 picks a free port. Replaces `--listen` and `--advertise`.
    #[arg(long, env = "RIFFLE_LISTENERS", conflicts_with_all = ["listen", "advertise"])]
    pub listeners: Option<String>,

    /// The address each listener gives clients in Metadata, FindCoordinator and
    /// DescribeCluster, in the same syntax (`NAME://HOST:PORT`; port 0 means the port
    /// bound). A listener not named here advertises its bound address.
    #[arg(long, env = "RIFFLE_ADVERTISED_LISTENERS", requires = "listeners")]
    pub advertised_listeners: Option<String>,

    /// Security protocols of listener names that are not protocol names themselves:
    /// `NAME:PROTOCOL` separated by commas, such as `INTERNAL:SASL_SSL,EXTERNAL:SSL`.
    #[arg(
        long,
        env = "RIFFLE_LISTENER_SECURITY_PROTOCOL_MAP",
        requires = "listeners"
    )]
    pub listener_security_protocol_map: Option<String>,

    /// The server's certificate chain (PEM, leaf first), for SSL and SASL_SSL listeners.
    /// Reloaded with the key on SIGHUP.
    #[arg(long, env = "RIFFLE_SSL_CERTIFICATE")]
    pub ssl_certificate: Option<PathBuf>,

    /// The private key of `--ssl-certificate` (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "RIFFLE_SSL_KEY")]
    pub ssl_key: Option<PathBuf>,

    /// Client certificates on SSL listeners: `none`, `requested` or `required` (Kafka's
    /// `ssl.client.auth`). A certificate makes the connection `User:<subject DN>`.
    #[arg(long, env = "RIFFLE_SSL_CLIENT_AUTH", value_enum, default_value_t = SslClientAuth::None)]
    pub ssl_client_auth: SslClientAuth,

    /// The CA certificates (PEM) that client certificates must chain to; needed with
    /// `--ssl-client-auth requested` or `required`.
    #[arg(long, env = "RIFFLE_SSL_TRUSTSTORE")]
    pub ssl_truststore: Option<PathBuf>,

    /// SASL mechanisms offered on SASL listeners, separated by commas. PLAIN sends the
    /// password itself, so it is offered only when named here.
    #[arg(
        long,
        env = "RIFFLE_SASL_ENABLED_MECHANISMS",
        value_delimiter = ',',
        default_value = "SCRAM-SHA-256,SCRAM-SHA-512"
    )]
    pub sasl_enabled_mechanisms: Vec<String>,

    /// How long a connection whose authentication failed waits before it closes (Kafka's
    /// `connection.failed.authentication.delay.ms`): it slows password guessing, and over
    /// TLS it lets the error response reach the client before the close.
    #[arg(
        long,
        env = "RIFFLE_CONNECTION_FAILED_AUTHENTICATION_DELAY_MS",
        default_value_t = DEFAULT_CONNECTION_FAILED_AUTHENTICATION_DELAY_MS
    )]
    pub connection_failed_authentication_delay_ms: u64,

    /// How long a new connection may take to finish its TLS handshake and its SASL
    /// exchange, together; a client that stalls is dropped, freeing its connection slot.
    #[arg(
        long,
        env = "RIFFLE_AUTHENTICATION_TIMEOUT_MS",
        default_value_t = DEFAULT_AUTHENTICATION_TIMEOUT_MS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub authentication_timeout_ms: u64,

    /// The largest frame (request or SASL token) accepted before a SASL connection is
    /// authenticated (Kafka's `sasl.server.max.receive.size`); a larger one closes it.
    #[arg(
        long,
        env = "RIFFLE_SASL_SERVER_MAX_RECEIVE_BYTES",
        default_value_t = DEFAULT_SASL_SERVER_MAX_RECEIVE_BYTES
    )]
    pub sasl_server_max_receive_bytes: usize,

    /// Where partitions and cluster metadata live.
    #[arg(long, env = "RIFFLE_DATA_DIR", default_value = "./riffle-data")]
    pub data_dir: PathBuf,

    /// This broker's node id, as reported in Metadata.
    #[arg(long, env = "RIFFLE_NODE_ID", default_value_t = 1)]
    pub node_id: i32,

    /// Partitions of an auto-created topic, or of one created with -1 partitions.
    #[arg(long, env = "RIFFLE_DEFAULT_PARTITIONS", default_value_t = 1)]
    pub default_partitions: i32,

    /// Create a topic when a client asks for metadata of, or produces to, an unknown one.
    #[arg(long, env = "RIFFLE_AUTO_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_create_topics: bool,

    /// Log filter, as tracing's EnvFilter understands it (error, warn, info, debug, trace,
    /// or per-module directives).
    #[arg(long, env = "RIFFLE_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// What CreateTopics does with a replication factor above 1: `reject` it as a
    /// one-broker Kafka does, or `accept` it and keep the one replica a single node can hold.
    #[arg(
        long,
        env = "RIFFLE_REPLICATION_FACTOR_ABOVE_ONE",
        value_enum,
        default_value_t = ReplicationFactorPolicy::Reject
    )]
    pub replication_factor_above_one: ReplicationFactorPolicy,

    /// When appended data is fsynced.
    #[arg(long, env = "RIFFLE_FLUSH_POLICY", value_enum, default_value_t = FlushPolicy::AcksAll)]
    pub flush_policy: FlushPolicy,

    /// Period of the background fsync with `--flush-policy interval`.
    #[arg(long, env = "RIFFLE_FLUSH_INTERVAL_MS", default_value_t = 1000)]
    pub flush_interval_ms: u64,

    /// How often each partition's recovery point (how far its log is known durable) is
    /// written, as Kafka's `log.flush.offset.checkpoint.interval.ms`. Recovery after a crash
    /// scans the active segment from there; it is also written at a clean stop.
    #[arg(
        long,
        env = "RIFFLE_RECOVERY_POINT_CHECKPOINT_INTERVAL_MS",
        default_value_t = 60_000
    )]
    pub recovery_point_checkpoint_interval_ms: u64,

    /// How often retention (retention.ms, retention.bytes) is enforced, as Kafka's
    /// `log.retention.check.interval.ms`.
    #[arg(
        long,
        env = "RIFFLE_RETENTION_CHECK_INTERVAL_MS",
        default_value_t = 300_000
    )]
    pub retention_check_interval_ms: u64,

    /// How long after start-up the first retention pass waits, as Kafka's
    /// `log.initial.task.delay.ms`: a broker restarted on data with old timestamps does not
    /// delete it before an operator can change its retention.
    #[arg(
        long,
        env = "RIFFLE_LOG_INITIAL_TASK_DELAY_MS",
        default_value_t = 30_000
    )]
    pub log_initial_task_delay_ms: u64,

    /// Largest request frame accepted; a larger one closes the connection.
    #[arg(long, env = "RIFFLE_MAX_REQUEST_BYTES", default_value_t = DEFAULT_MAX_REQUEST_BYTES)]
    pub max_request_bytes: usize,

    /// Most client connections open at once, over all listeners; a connection past it is
    /// accepted and closed at once (counted, and logged at most once a second).
    #[arg(long, env = "RIFFLE_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Most connections open at once from one IP address (Kafka's
    /// `max.connections.per.ip`); unlimited unless set. Past it a connection is closed at once.
    #[arg(
        long,
        env = "RIFFLE_MAX_CONNECTIONS_PER_IP",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_connections_per_ip: Option<u64>,

    /// Connection limits for particular hosts, replacing `--max-connections-per-ip` for
    /// them (Kafka's `max.connections.per.ip.overrides`): `HOST:COUNT` separated by commas,
    /// HOST an IP address or a hostname (resolved at start-up, the limit applying to each
    /// of its addresses), COUNT 0 to refuse the host.
    #[arg(
        long,
        env = "RIFFLE_MAX_CONNECTIONS_PER_IP_OVERRIDES",
        default_value = "",
        value_parser = |text: &str| PerIpOverrides::parse(text).map_err(|error| error.to_string())
    )]
    pub max_connections_per_ip_overrides: PerIpOverrides,

    /// How long a request may take to arrive once its first bytes have: a connection whose
    /// frame is still incomplete then is closed, so a stalled client cannot hold its slot.
    #[arg(
        long,
        env = "RIFFLE_REQUEST_READ_TIMEOUT_MS",
        default_value_t = DEFAULT_REQUEST_READ_TIMEOUT_MS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub request_read_timeout_ms: u64,

    /// How long a connection may stay idle (no request read, none in hand, no response
    /// written) before it is closed (Kafka's `connections.max.idle.ms`).
    #[arg(
        long,
        env = "RIFFLE_CONNECTIONS_MAX_IDLE_MS",
        default_value_t = DEFAULT_CONNECTIONS_MAX_IDLE_MS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub connections_max_idle_ms: u64,

    /// How long a response may wait for the client to take a byte of it before the
    /// connection is closed: a client that sends requests and never reads the answers
    /// holds its slot and buffers no longer. Defaults to `--connections-max-idle-ms`, as
    /// Kafka closes such a connection once no byte has moved for `connections.max.idle.ms`.
    #[arg(
        long,
        env = "RIFFLE_RESPONSE_WRITE_TIMEOUT_MS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub response_write_timeout_ms: Option<u64>,

    /// The most record bytes one Fetch response holds, whatever the client's `max_bytes`
    /// (Kafka's `fetch.max.bytes`): record sets under 64 KiB are copied into the response,
    /// so this bounds what one response holds in memory. The first batch still comes
    /// whole, however large (KIP-74).
    #[arg(long, env = "RIFFLE_FETCH_MAX_BYTES", default_value_t = DEFAULT_FETCH_MAX_BYTES)]
    pub fetch_max_bytes: usize,

    /// Requests one connection may have read ahead of their responses.
    #[arg(long, env = "RIFFLE_MAX_IN_FLIGHT_REQUESTS", default_value_t = DEFAULT_MAX_IN_FLIGHT_REQUESTS)]
    pub max_in_flight_requests: usize,

    /// Most fetch sessions (KIP-227) kept at once (Kafka:
    /// max.incremental.fetch.session.cache.slots); 0 turns them off, so every fetch is full.
    #[arg(
        long,
        env = "RIFFLE_MAX_INCREMENTAL_FETCH_SESSION_CACHE_SLOTS",
        default_value_t = DEFAULT_MAX_INCREMENTAL_FETCH_SESSION_CACHE_SLOTS
    )]
    pub max_incremental_fetch_session_cache_slots: usize,

    /// How long a new group waits for more members before its first rebalance completes
    /// (Kafka: group.initial.rebalance.delay.ms), so a fleet starting together rebalances once.
    #[arg(
        long,
        env = "RIFFLE_GROUP_INITIAL_REBALANCE_DELAY_MS",
        default_value_t = 3000
    )]
    pub group_initial_rebalance_delay_ms: u64,

    /// Smallest session timeout a consumer may ask for (Kafka: group.min.session.timeout.ms).
    #[arg(
        long,
        env = "RIFFLE_GROUP_MIN_SESSION_TIMEOUT_MS",
        default_value_t = 6000
    )]
    pub group_min_session_timeout_ms: u64,

    /// Largest session timeout a consumer may ask for (Kafka: group.max.session.timeout.ms).
    #[arg(
        long,
        env = "RIFFLE_GROUP_MAX_SESSION_TIMEOUT_MS",
        default_value_t = 1_800_000
    )]
    pub group_max_session_timeout_ms: u64,

    /// Most members one group may hold (Kafka: group.max.size).
    #[arg(long, env = "RIFFLE_GROUP_MAX_SIZE", default_value_t = 1000)]
    pub group_max_size: usize,

    /// How long the committed offsets of a group without members are kept after their
    /// commit (Kafka: offsets.retention.minutes), unless the commit set its own retention
    /// (OffsetCommit v2-v4 `retention_time_ms`).
    #[arg(
        long,
        env = "RIFFLE_OFFSETS_RETENTION_MINUTES",
        default_value_t = 10_080
    )]
    pub offsets_retention_minutes: i64,

    /// How often compacted topics are cleaned (Kafka: log.cleaner.backoff.ms).
    #[arg(long, env = "RIFFLE_LOG_CLEANER_BACKOFF_MS", default_value_t = 15_000)]
    pub log_cleaner_backoff_ms: u64,

    /// The longest transaction.timeout.ms a transactional producer may ask for (Kafka:
    /// transaction.max.timeout.ms); a longer one gets INVALID_TRANSACTION_TIMEOUT.
    #[arg(
        long,
        env = "RIFFLE_TRANSACTION_MAX_TIMEOUT_MS",
        default_value_t = 900_000,
        value_parser = clap::value_parser!(i32).range(1..)
    )]
    pub transaction_max_timeout_ms: i32,

    /// How often transactions open longer than their timeout are aborted (Kafka:
    /// transaction.abort.timed.out.transaction.cleanup.interval.ms).
    #[arg(
        long,
        env = "RIFFLE_TRANSACTION_ABORT_TIMED_OUT_INTERVAL_MS",
        default_value_t = 10_000
    )]
    pub transaction_abort_timed_out_interval_ms: u64,

    /// How long a transactional id without an open transaction is remembered after its
    /// last use (Kafka: transactional.id.expiration.ms).
    #[arg(
        long,
        env = "RIFFLE_TRANSACTIONAL_ID_EXPIRATION_MS",
        default_value_t = 604_800_000
    )]
    pub transactional_id_expiration_ms: i64,

    /// `acl` checks every request against the ACLs (Kafka's `StandardAuthorizer`); `none`
    /// lets everyone do everything, as Kafka without an authorizer.
    #[arg(long, env = "RIFFLE_AUTHORIZER", value_enum, default_value_t = AuthorizerKind::None)]
    pub authorizer: AuthorizerKind,

    /// Principals allowed everything whatever the ACLs say, separated by semicolons
    /// (Kafka: super.users), e.g. `User:admin;User:ops`.
    #[arg(
        long,
        env = "RIFFLE_SUPER_USERS",
        default_value = "",
        value_parser = SuperUsers::parse
    )]
    pub super_users: SuperUsers,

    /// With `--authorizer acl`, whether a resource that no ACL names is open to every
    /// principal (Kafka: allow.everyone.if.no.acl.found). Closed by default.
    #[arg(
        long,
        env = "RIFFLE_ALLOW_EVERYONE_IF_NO_ACL_FOUND",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub allow_everyone_if_no_acl_found: bool,

    /// The principal co-located (embedded) topologies act as: their group, reads, writes
    /// and transactions are authorized as this principal's would be over the network.
    #[arg(
        long,
        env = "RIFFLE_PROCESSOR_PRINCIPAL",
        default_value = "User:ANONYMOUS",
        value_parser = |text: &str| Principal::parse(text).map_err(|error| error.to_string())
    )]
    pub processor_principal: Principal,

    /// Broker-wide defaults for topic configs (retention.ms and friends).
    #[command(flatten)]
    pub topic_defaults: TopicDefaults,
}

/// Broker-wide defaults for the topic configs, as Kafka's `log.*` broker settings.
#[derive(Debug, Clone, Args)]
pub struct TopicDefaults {
    /// Default retention.ms (Kafka: log.retention.ms). -1 keeps data forever.
    #[arg(
        long = "log-retention-ms",
        env = "RIFFLE_LOG_RETENTION_MS",
        default_value_t = 604_800_000
    )]
    pub retention_ms: i64,
    /// Default retention.bytes (Kafka: log.retention.bytes). -1 means no size limit.
    #[arg(long = "log-retention-bytes", env = "RIFFLE_LOG_RETENTION_BYTES", default_value_t = -1)]
    pub retention_bytes: i64,
    /// Default segment.bytes (Kafka: log.segment.bytes).
    #[arg(
        long = "log-segment-bytes",
        env = "RIFFLE_LOG_SEGMENT_BYTES",
        default_value_t = 1_073_741_824
    )]
    pub segment_bytes: i64,
    /// Default segment.ms (Kafka: log.roll.ms).
    #[arg(
        long = "log-segment-ms",
        env = "RIFFLE_LOG_SEGMENT_MS",
        default_value_t = 604_800_000
    )]
    pub segment_ms: i64,
    /// Default max.message.bytes (Kafka: message.max.bytes): the largest record batch.
    #[arg(
        long = "message-max-bytes",
        env = "RIFFLE_MESSAGE_MAX_BYTES",
        default_value_t = 1_048_588
    )]
    pub max_message_bytes: i64,
}

/// How often the group coordinator checks session and rebalance deadlines.
pub const GROUP_TICK_INTERVAL: Duration = Duration::from_millis(100);

impl Default for BrokerConfig {
    /// `riffle serve`'s defaults, whatever `RIFFLE_*` variables are set: see
    /// [`BrokerConfig::from_flags`].
    fn default() -> BrokerConfig {
        BrokerConfig::from_flags(std::iter::empty::<&str>())
            .expect("every flag of riffle serve has a default")
    }
}

impl BrokerConfig {
    /// The settings that `riffle serve` would take from `flags` (without the program name:
    /// `["--data-dir", "/var/lib/riffle", "--default-partitions", "6"]`), for programs that
    /// embed the broker. Unlike `riffle serve`, this reads no `RIFFLE_*` variable, so a
    /// program's settings are what it wrote; the `--config` file is not read either.
    ///
    /// # Errors
    /// An unknown flag or a bad value, with clap's message naming it.
    pub fn from_flags<I, T>(flags: I) -> Result<BrokerConfig, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::FromArgMatches;
        let matches = BrokerConfig::embedding_command().try_get_matches_from(flags)?;
        BrokerConfig::from_arg_matches(&matches)
    }

    /// `riffle serve`'s flags without the program name and without their variables.
    fn embedding_command() -> clap::Command {
        BrokerConfig::augment_args(clap::Command::new("riffle serve"))
            .no_binary_name(true)
            .mut_args(|arg| arg.env(None::<&str>))
    }

    /// Listens on `address` as one PLAINTEXT listener (`--listen`; port 0 picks one).
    pub fn with_listen(mut self, address: SocketAddr) -> BrokerConfig {
        self.listen = address;
        self
    }

    /// Keeps the logs in `data_dir` (`--data-dir`).
    pub fn with_data_dir(mut self, data_dir: impl Into<PathBuf>) -> BrokerConfig {
        self.data_dir = data_dir.into();
        self
    }

    /// Serves metrics and health on `http_listen` (`--http-listen`; `HttpListen::Disabled`
    /// for none).
    pub fn with_http_listen(mut self, http_listen: HttpListen) -> BrokerConfig {
        self.http_listen = http_listen;
        self
    }

    /// Gives auto-created topics `partitions` partitions (`--default-partitions`).
    pub fn with_default_partitions(mut self, partitions: i32) -> BrokerConfig {
        self.default_partitions = partitions;
        self
    }

    /// Logs at `level` (`--log-level`: `error`, `warn`, `info`, `debug`, or a filter).
    pub fn with_log_level(mut self, level: impl Into<String>) -> BrokerConfig {
        self.log_level = level.into();
        self
    }

    /// The coordinator's limits, from the flags.
    pub fn group_limits(&self) -> crate::group::GroupLimits {
        crate::group::GroupLimits {
            min_session_timeout: Duration::from_millis(self.group_min_session_timeout_ms),
            max_session_timeout: Duration::from_millis(self.group_max_session_timeout_ms),
            initial_rebalance_delay: Duration::from_millis(self.group_initial_rebalance_delay_ms),
            max_members: self.group_max_size.max(1),
        }
    }

    /// The transaction coordinator's limits, from the flags.
    pub fn transaction_limits(&self) -> crate::transaction::TransactionLimits {
        crate::transaction::TransactionLimits {
            max_timeout_ms: self.transaction_max_timeout_ms,
            transactional_id_expiration_ms: self.transactional_id_expiration_ms,
        }
    }

    /// How long the transaction coordinator's clock waits between ticks.
    pub fn transaction_tick_interval(&self) -> Duration {
        Duration::from_millis(self.transaction_abort_timed_out_interval_ms.max(1))
    }

    /// The authorizer's settings, when `--authorizer acl` asks for one.
    pub fn authorizer_config(&self) -> Option<AuthorizerConfig> {
        (self.authorizer == AuthorizerKind::Acl).then(|| AuthorizerConfig {
            super_users: self.super_users.0.clone(),
            allow_everyone_if_no_acl_found: self.allow_everyone_if_no_acl_found,
        })
    }

    /// How long the cleaner waits between passes.
    pub fn log_cleaner_backoff(&self) -> Duration {
        Duration::from_millis(self.log_cleaner_backoff_ms.max(1))
    }

    /// How long the background flush waits between passes.
    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms.max(1))
    }

    /// How long the recovery point task waits between passes.
    pub fn recovery_point_checkpoint_interval(&self) -> Duration {
        Duration::from_millis(self.recovery_point_checkpoint_interval_ms.max(1))
    }

    /// How long the retention task waits between passes.
    pub fn retention_check_interval(&self) -> Duration {
        Duration::from_millis(self.retention_check_interval_ms.max(1))
    }

    /// How long the first retention pass waits after start-up.
    pub fn log_initial_task_delay(&self) -> Duration {
        Duration::from_millis(self.log_initial_task_delay_ms)
    }

    /// How long a failed authentication waits before its connection closes.
    pub fn connection_failed_authentication_delay(&self) -> Duration {
        Duration::from_millis(self.connection_failed_authentication_delay_ms)
    }

    /// How long a started request may take to arrive in full.
    pub fn request_read_timeout(&self) -> Duration {
        Duration::from_millis(self.request_read_timeout_ms.max(1))
    }

    /// How long a connection may stay idle before it is closed.
    pub fn connections_max_idle(&self) -> Duration {
        Duration::from_millis(self.connections_max_idle_ms.max(1))
    }

    /// How long a response may make no progress before its connection is closed.
    pub fn response_write_timeout(&self) -> Duration {
        let timeout_ms = self
            .response_write_timeout_ms
            .unwrap_or(self.connections_max_idle_ms);
        Duration::from_millis(timeout_ms.max(1))
    }

    /// How long a connection may take to authenticate (TLS handshake and SASL).
    pub fn authentication_timeout(&self) -> Duration {
        Duration::from_millis(self.authentication_timeout_ms.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_programs_build_a_config_without_clap() {
        // Proves the defaults are riffle serve's and ignore RIFFLE_* variables, flags and
        // setters override them, and a bad flag is an error naming it, not a panic.
        // No argument of the embedding command reads a variable (checked on the command
        // rather than by setting one: the environment is shared by every test thread).
        assert!(
            BrokerConfig::embedding_command()
                .get_arguments()
                .all(|arg| arg.get_env().is_none())
        );
        let defaults = BrokerConfig::default();
        assert_eq!(defaults.log_level, "info");
        assert_eq!(defaults.default_partitions, 1);
        assert_eq!(defaults.listen, SocketAddr::from(([127, 0, 0, 1], 9092)));
        assert_eq!(defaults.data_dir, PathBuf::from("./riffle-data"));

        let flagged =
            BrokerConfig::from_flags(["--default-partitions", "6", "--log-level", "warn"])
                .expect("valid flags");
        assert_eq!(flagged.default_partitions, 6);
        assert_eq!(flagged.log_level, "warn");

        let built = BrokerConfig::default()
            .with_listen(SocketAddr::from(([127, 0, 0, 1], 0)))
            .with_data_dir("/tmp/riffle-embedded")
            .with_http_listen(HttpListen::Disabled)
            .with_default_partitions(3)
            .with_log_level("debug");
        assert_eq!(built.listen.port(), 0);
        assert_eq!(built.data_dir, PathBuf::from("/tmp/riffle-embedded"));
        assert_eq!(built.http_listen, HttpListen::Disabled);
        assert_eq!(built.default_partitions, 3);
        assert_eq!(built.log_level, "debug");

        let error =
            BrokerConfig::from_flags(["--default-partitions", "many"]).expect_err("not a number");
        assert!(
            error.to_string().contains("--default-partitions"),
            "{error}"
        );
        assert!(BrokerConfig::from_flags(["--no-such-flag"]).is_err());
    }

    #[test]
    fn super_users_read_kafkas_semicolon_list() {
        // `super.users` syntax: semicolons between principals, blanks and empty items
        // ignored; an item without TYPE:NAME is refused.
        let users = SuperUsers::parse(" User:admin ;User:ops;;").expect("parses");
        assert_eq!(
            users.0,
            vec![Principal::user("admin"), Principal::user("ops")]
        );
        assert_eq!(SuperUsers::parse(""), Ok(SuperUsers::default()));
        assert!(SuperUsers::parse("User:admin;ops").is_err());
    }

    #[test]
    fn http_listen_is_an_address_or_none() {
        // Proves `none` (any case) disables the listener, an IP and port binds there, and
        // anything else is refused with a message naming the value.
        assert_eq!("none".parse(), Ok(HttpListen::Disabled));
        assert_eq!(" NONE ".parse(), Ok(HttpListen::Disabled));
        assert_eq!(
            "127.0.0.1:0".parse(),
            Ok(HttpListen::Address(SocketAddr::from(([127, 0, 0, 1], 0))))
        );
        assert_eq!(
            DEFAULT_HTTP_LISTEN.parse::<HttpListen>(),
            Ok(HttpListen::Address(SocketAddr::from((
                [127, 0, 0, 1],
                9644
            ))))
        );
        let error = "localhost".parse::<HttpListen>().expect_err("no port");
        assert!(error.contains("'localhost'"), "{error}");
    }

    #[test]
    fn the_authorizer_is_off_unless_asked_for() {
        // Without `--authorizer acl` there is no authorizer config; with it, the flags fill it.
        let dir = std::path::Path::new("/nonexistent");
        let off = crate::testing::test_config(dir, &[]);
        assert_eq!(off.authorizer_config(), None);
        assert_eq!(off.processor_principal, Principal::anonymous());
        let on = crate::testing::test_config(
            dir,
            &[
                "--authorizer",
                "acl",
                "--super-users",
                "User:admin",
                "--allow-everyone-if-no-acl-found",
                "true",
            ],
        );
        let config = on.authorizer_config().expect("on");
        assert_eq!(config.super_users, vec![Principal::user("admin")]);
        assert!(config.allow_everyone_if_no_acl_found);
    }
}
