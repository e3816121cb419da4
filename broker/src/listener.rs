//! Listeners: the addresses the broker accepts connections on, each with its security
//! protocol, in Kafka's syntax.
//!
//! `--listeners PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9093` names each listener
//! after its protocol, unless `--listener-security-protocol-map INTERNAL:SASL_SSL` maps
//! other names; `--advertised-listeners` gives, per name, the address clients are sent to
//! in Metadata, so a client that came in on one listener stays on it (and on its
//! security). Names are upper-cased, as Kafka normalises them. Without `--listeners`, the
//! older `--listen`/`--advertise` pair is one PLAINTEXT listener.
//!
//! [`bind`] turns the flags into [`BoundListener`]s: a socket each, and the [`Listener`]
//! that every connection accepted on it shares.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::warn;

use crate::cluster::Cluster;
use crate::config::{BrokerConfig, HttpListen};
use crate::security::sasl::{self, SaslExchange};
use crate::security::tls::{TlsError, TlsServer, TlsSettings};

/// How a listener protects and authenticates its connections (Kafka's
/// `security.protocol`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    /// Neither encryption nor authentication; Kafka's default.
    #[default]
    Plaintext,
    /// TLS; a client certificate, if asked for and given, names the principal.
    Ssl,
    /// SASL authentication without encryption.
    SaslPlaintext,
    /// SASL authentication inside TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Every protocol, for parsing and messages.
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// Kafka's name for it.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// The protocol called `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<SecurityProtocol> {
        SecurityProtocol::ALL
            .into_iter()
            .find(|protocol| protocol.name().eq_ignore_ascii_case(name))
    }

    /// Whether connections start with a TLS handshake.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections must authenticate with SASL before any other request.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// Why the listener flags cannot be used; the message names the flag and the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListenerError {
    /// An entry is not `NAME://HOST:PORT`.
    #[error("{flag} entry '{entry}' is not NAME://HOST:PORT")]
    Syntax {
        /// The flag it came from.
        flag: &'static str,
        /// The entry as given.
        entry: String,
    },
    /// A port is not a number from 0 to 65535.
    #[error("{flag} entry '{entry}' has an invalid port")]
    Port {
        /// The flag it came from.
        flag: &'static str,
        /// The entry as given.
        entry: String,
    },
    /// A protocol-map entry is not `NAME:PROTOCOL` with a known protocol.
    #[error(
        "--listener-security-protocol-map entry '{0}' is not NAME:PROTOCOL with PROTOCOL one of \
         PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
    )]
    ProtocolMap(String),
    /// A listener name that is neither mapped nor a protocol.
    #[error(
        "listener {0} has no security protocol: name it after one (PLAINTEXT, SSL, \
         SASL_PLAINTEXT, SASL_SSL) or map it with --listener-security-protocol-map"
    )]
    UnknownProtocol(String),
    /// Two listeners with one name.
    #[error("{flag} names listener {name} twice")]
    Duplicate {
        /// The flag it came from.
        flag: &'static str,
        /// The repeated name.
        name: String,
    },
    /// An advertised listener that is not a listener.
    #[error("--advertised-listeners names {0}, which is not in --listeners")]
    NotAListener(String),
    /// An advertised listener without a host.
    #[error("--advertised-listeners entry for {0} needs a host")]
    NoAdvertisedHost(String),
    /// `--listeners` is empty.
    #[error("--listeners names no listener")]
    Empty,
}

/// Why the listeners could not be set up and bound; the message names the flag, listener,
/// address or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The listener flags are wrong.
    #[error(transparent)]
    Flags(#[from] ListenerError),
    /// A TLS listener without the certificate or key flag.
    #[error("listener {listener} uses TLS ({protocol}) and needs {flag}")]
    TlsFlagMissing {
        /// The first TLS listener.
        listener: String,
        /// Its protocol.
        protocol: SecurityProtocol,
        /// The flag it needs.
        flag: &'static str,
    },
    /// The certificate, key or truststore cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// `--sasl-enabled-mechanisms` names a mechanism this broker does not implement.
    #[error(
        "--sasl-enabled-mechanisms: {mechanism} is not implemented; choose from {}",
        sasl::MECHANISMS.join(", ")
    )]
    UnknownSaslMechanism {
        /// The mechanism, upper-cased.
        mechanism: String,
    },
    /// A SASL listener, but no mechanism to offer on it.
    #[error("listener {listener} uses SASL but --sasl-enabled-mechanisms names none")]
    NoSaslMechanism {
        /// The first SASL listener.
        listener: String,
    },
    /// The operating system refused to bind the address.
    #[error("cannot listen on {listener}://{address}: {source}")]
    Listen {
        /// The listener's name.
        listener: String,
        /// The address, `host:port`.
        address: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// The operating system refused to bind the HTTP listener's address.
    #[error("cannot listen for HTTP (--http-listen) on {address}: {source}")]
    HttpListen {
        /// The address, `host:port`.
        address: SocketAddr,
        /// What the operating system said.
        source: io::Error,
    },
    /// The bound socket's address could not be read.
    #[error("cannot read the bound address of {address}: {source}")]
    BoundAddress {
        /// The address asked for, `host:port`.
        address: String,
        /// What the operating system said.
        source: io::Error,
    },
}

/// One listener as the flags describe it, before binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Its name, upper-cased: the protocol's name unless mapped.
    pub name: String,
    /// Its security protocol.
    pub protocol: SecurityProtocol,
    /// The host to bind (empty: every interface).
    pub host: String,
    /// The port to bind (0: a free one).
    pub port: u16,
    /// The address to advertise, if given; port 0 there means the bound port.
    pub advertised: Option<(String, u16)>,
}

/// What a connection needs to know of the listener it was accepted on; shared by all of
/// that listener's connections.
pub struct Listener {
    /// The listener's name, reported to handlers (`RequestContext::listener_name`).
    pub name: String,
    /// Its security protocol.
    pub protocol: SecurityProtocol,
    /// The host clients are told to connect to, to stay on this listener.
    pub advertised_host: String,
    /// The port clients are told to connect to.
    pub advertised_port: i32,
    /// The TLS server, on SSL and SASL_SSL listeners.
    pub tls: Option<Arc<TlsServer>>,
    /// The SASL mechanisms offered, on SASL listeners: `--sasl-enabled-mechanisms`.
    pub sasl_mechanisms: Arc<[String]>,
    /// Starts a SASL exchange; [`sasl::start`] except in tests, which use a fake.
    pub sasl_start: SaslStart,
}

/// Starts one connection's exchange of a mechanism: see [`sasl::start`].
pub type SaslStart = fn(&Cluster, &str) -> Option<Box<dyn SaslExchange>>;

impl fmt::Debug for Listener {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Listener")
            .field("name", &self.name)
            .field("protocol", &self.protocol)
            .field("advertised_host", &self.advertised_host)
            .field("advertised_port", &self.advertised_port)
            .finish_non_exhaustive()
    }
}

/// A listener's socket, bound, with the [`Listener`] its connections share.
#[derive(Debug)]
pub struct BoundListener {
    /// The socket to accept on.
    pub socket: TcpListener,
    /// The address it is bound to (the real port when asked for port 0).
    pub local_address: SocketAddr,
    /// Its name, protocol, advertised address and security.
    pub listener: Arc<Listener>,
}

/// Reads the listeners from the flags: `--listeners` (with the protocol map and the
/// advertised listeners), else `--listen`/`--advertise` as one PLAINTEXT listener.
///
/// # Errors
/// A [`ListenerError`] naming the flag and the entry at fault.
pub fn listener_configs(config: &BrokerConfig) -> Result<Vec<ListenerConfig>, ListenerError> {
    let Some(listeners) = &config.listeners else {
        let advertised = match &config.advertise {
            Some(advertise) => Some(parse_host_port("--advertise", advertise)?),
            None => None,
        };
        return Ok(vec![ListenerConfig {
            name: SecurityProtocol::Plaintext.name().to_string(),
            protocol: SecurityProtocol::Plaintext,
            host: config.listen.ip().to_string(),
            port: config.listen.port(),
            advertised,
        }]);
    };
    let protocol_map = parse_protocol_map(config.listener_security_protocol_map.as_deref())?;
    let mut configs = Vec::new();
    for (name, host, port) in parse_entries("--listeners", listeners)? {
        let protocol = match protocol_map.get(&name) {
            Some(protocol) => *protocol,
            None => SecurityProtocol::from_name(&name)
                .ok_or_else(|| ListenerError::UnknownProtocol(name.clone()))?,
        };
        configs.push(ListenerConfig {
            name,
            protocol,
            host,
            port,
            advertised: None,
        });
    }
    if configs.is_empty() {
        return Err(ListenerError::Empty);
    }
    let advertised = config.advertised_listeners.as_deref().unwrap_or("");
    for (name, host, port) in parse_entries("--advertised-listeners", advertised)? {
        if host.is_empty() {
            return Err(ListenerError::NoAdvertisedHost(name));
        }
        let listener = configs
            .iter_mut()
            .find(|listener| listener.name == name)
            .ok_or_else(|| ListenerError::NotAListener(name.clone()))?;
        listener.advertised = Some((host, port));
    }
    Ok(configs)
}

/// Splits `NAME://HOST:PORT,...` into upper-cased names, hosts (brackets of IPv6
/// addresses removed) and ports; a name given twice is an error.
fn parse_entries(
    flag: &'static str,
    text: &str,
) -> Result<Vec<(String, String, u16)>, ListenerError> {
    let mut entries: Vec<(String, String, u16)> = Vec::new();
    for entry in text
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
    {
        let syntax = || ListenerError::Syntax {
            flag,
            entry: entry.to_string(),
        };
        let (name, address) = entry.split_once("://").ok_or_else(syntax)?;
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            return Err(syntax());
        }
        let (host, port) = parse_host_port(flag, address).map_err(|error| match error {
            ListenerError::Port { .. } => ListenerError::Port {
                flag,
                entry: entry.to_string(),
            },
            _ => syntax(),
        })?;
        let name = name.to_ascii_uppercase();
        if entries.iter().any(|(seen, _, _)| *seen == name) {
            return Err(ListenerError::Duplicate { flag, name });
        }
        entries.push((name, host, port));
    }
    Ok(entries)
}

/// `HOST:PORT`, `[IPV6]:PORT` or `:PORT` (no host).
fn parse_host_port(flag: &'static str, address: &str) -> Result<(String, u16), ListenerError> {
    let (host, port) = address.rsplit_once(':').ok_or(ListenerError::Syntax {
        flag,
        entry: address.to_string(),
    })?;
    let port: u16 = port.parse().map_err(|_| ListenerError::Port {
        flag,
        entry: address.to_string(),
    })?;
    let host = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.strip_suffix(']').ok_or(ListenerError::Syntax {
            flag,
            entry: address.to_string(),
        })?,
        None if host.contains(':') => {
            return Err(ListenerError::Syntax {
                flag,
                entry: address.to_string(),
            });
        }
        None => host,
    };
    Ok((host.to_string(), port))
}

fn parse_protocol_map(
    text: Option<&str>,
) -> Result<BTreeMap<String, SecurityProtocol>, ListenerError> {
    let mut map = BTreeMap::new();
    let entries = text
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty());
    for entry in entries {
        let mapped = entry.split_once(':').and_then(|(name, protocol)| {
            let protocol = SecurityProtocol::from_name(protocol.trim())?;
            let name = name.trim();
            (!name.is_empty()).then(|| (name.to_ascii_uppercase(), protocol))
        });
        let (name, protocol) = mapped.ok_or_else(|| ListenerError::ProtocolMap(entry.into()))?;
        map.insert(name, protocol);
    }
    Ok(map)
}

/// Binds every listener and prepares its security: one TLS server for all TLS listeners
/// (one certificate per broker, as Kafka's `ssl.keystore`), the SASL mechanisms for SASL
/// ones.
///
/// # Errors
/// A [`BindError`] naming the flag, address or file at fault.
pub async fn bind(config: &BrokerConfig) -> Result<Vec<BoundListener>, BindError> {
    let configs = listener_configs(config)?;
    let tls = tls_server(config, &configs)?;
    let sasl_mechanisms = sasl_mechanisms(config, &configs)?;
    let mut bound = Vec::with_capacity(configs.len());
    for listener in configs {
        let address = display_address(&listener.host, listener.port);
        let bind_host = if listener.host.is_empty() {
            "0.0.0.0"
        } else {
            listener.host.as_str()
        };
        let socket = TcpListener::bind((bind_host, listener.port))
            .await
            .map_err(|source| BindError::Listen {
                listener: listener.name.clone(),
                address: address.clone(),
                source,
            })?;
        let local_address = socket
            .local_addr()
            .map_err(|source| BindError::BoundAddress { address, source })?;
        let (advertised_host, advertised_port) = advertised_address(&listener, local_address);
        bound.push(BoundListener {
            socket,
            local_address,
            listener: Arc::new(Listener {
                tls: listener.protocol.uses_tls().then(|| tls.clone()).flatten(),
                name: listener.name,
                protocol: listener.protocol,
                advertised_host,
                advertised_port,
                sasl_mechanisms: sasl_mechanisms.clone(),
                sasl_start: sasl::start,
            }),
        });
    }
    Ok(bound)
}

/// Binds the HTTP listener of `--http-listen` (metrics and health, [`crate::http`]), with
/// the Kafka listeners so a busy port stops the start; `None` for `--http-listen none`.
///
/// # Errors
/// [`BindError::HttpListen`] naming the address and what the operating system said.
pub async fn bind_http(
    config: &BrokerConfig,
) -> Result<Option<(TcpListener, SocketAddr)>, BindError> {
    let HttpListen::Address(address) = config.http_listen else {
        return Ok(None);
    };
    let socket = TcpListener::bind(address)
        .await
        .map_err(|source| BindError::HttpListen { address, source })?;
    let local_address = socket
        .local_addr()
        .map_err(|source| BindError::BoundAddress {
            address: address.to_string(),
            source,
        })?;
    Ok(Some((socket, local_address)))
}

/// The TLS server, if any listener uses TLS: its files must be given and readable.
fn tls_server(
    config: &BrokerConfig,
    listeners: &[ListenerConfig],
) -> Result<Option<Arc<TlsServer>>, BindError> {
    let Some(first) = listeners
        .iter()
        .find(|listener| listener.protocol.uses_tls())
    else {
        return Ok(None);
    };
    let missing = |flag| BindError::TlsFlagMissing {
        listener: first.name.clone(),
        protocol: first.protocol,
        flag,
    };
    let certificate: PathBuf = config
        .ssl_certificate
        .clone()
        .ok_or_else(|| missing("--ssl-certificate"))?;
    let key: PathBuf = config.ssl_key.clone().ok_or_else(|| missing("--ssl-key"))?;
    let settings = TlsSettings {
        certificate,
        key,
        client_auth: config.ssl_client_auth,
        truststore: config.ssl_truststore.clone(),
    };
    let server = TlsServer::new(settings)?;
    Ok(Some(Arc::new(server)))
}

/// `--sasl-enabled-mechanisms`, checked against the mechanisms this broker implements.
fn sasl_mechanisms(
    config: &BrokerConfig,
    listeners: &[ListenerConfig],
) -> Result<Arc<[String]>, BindError> {
    let mut mechanisms: Vec<String> = Vec::new();
    for mechanism in &config.sasl_enabled_mechanisms {
        let mechanism = mechanism.trim().to_ascii_uppercase();
        if mechanism.is_empty() || mechanisms.contains(&mechanism) {
            continue;
        }
        if !sasl::MECHANISMS.contains(&mechanism.as_str()) {
            return Err(BindError::UnknownSaslMechanism { mechanism });
        }
        mechanisms.push(mechanism);
    }
    let sasl_listener = listeners
        .iter()
        .find(|listener| listener.protocol.uses_sasl());
    if let Some(listener) = sasl_listener
        && mechanisms.is_empty()
    {
        return Err(BindError::NoSaslMechanism {
            listener: listener.name.clone(),
        });
    }
    Ok(mechanisms.into())
}

/// The advertised address if given (port 0 there: the bound port), else the bound
/// address, with a loopback host when bound to every interface: 0.0.0.0 is not an
/// address a client can reach.
fn advertised_address(listener: &ListenerConfig, bound: SocketAddr) -> (String, i32) {
    match &listener.advertised {
        Some((host, 0)) => (host.clone(), i32::from(bound.port())),
        Some((host, port)) => (host.clone(), i32::from(*port)),
        None if bound.ip().is_unspecified() => {
            warn!(
                listener = %listener.name,
                "listening on all interfaces; advertising 127.0.0.1 (set the advertised address for remote clients)"
            );
            ("127.0.0.1".to_string(), i32::from(bound.port()))
        }
        None => (bound.ip().to_string(), i32::from(bound.port())),
    }
}

/// `host:port`, with brackets around an IPv6 host.
fn display_address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_config;

    fn configs(flags: &[&str]) -> Result<Vec<ListenerConfig>, ListenerError> {
        let dir = tempfile::tempdir().expect("temp dir");
        listener_configs(&test_config(dir.path(), flags))
    }

    fn listener(name: &str, protocol: SecurityProtocol, host: &str, port: u16) -> ListenerConfig {
        ListenerConfig {
            name: name.into(),
            protocol,
            host: host.into(),
            port,
            advertised: None,
        }
    }

    #[test]
    fn listeners_parse_in_kafka_syntax() {
        // Proves names give protocols, the map overrides, hosts may be empty or IPv6, and
        // advertised addresses attach to their listener by name.
        let parsed = configs(&[
            "--listeners",
            "plaintext://127.0.0.1:0, SASL_SSL://:9093,INTERNAL://[::1]:9094",
            "--listener-security-protocol-map",
            "INTERNAL:SSL",
            "--advertised-listeners",
            "SASL_SSL://broker.example:0",
        ])
        .expect("valid flags");
        let mut sasl_ssl = listener("SASL_SSL", SecurityProtocol::SaslSsl, "", 9093);
        sasl_ssl.advertised = Some(("broker.example".into(), 0));
        assert_eq!(
            parsed,
            vec![
                listener("PLAINTEXT", SecurityProtocol::Plaintext, "127.0.0.1", 0),
                sasl_ssl,
                listener("INTERNAL", SecurityProtocol::Ssl, "::1", 9094),
            ]
        );
    }

    #[test]
    fn listen_alone_is_one_plaintext_listener() {
        // Proves the older flags keep working as one PLAINTEXT listener.
        let parsed =
            configs(&["--listen", "127.0.0.1:0", "--advertise", "host:1234"]).expect("valid flags");
        let mut expected = listener("PLAINTEXT", SecurityProtocol::Plaintext, "127.0.0.1", 0);
        expected.advertised = Some(("host".into(), 1234));
        assert_eq!(parsed, vec![expected]);
    }

    #[test]
    fn bad_listener_flags_are_named_errors() {
        // Proves each malformed entry is refused with a message naming it.
        let cases: &[(&[&str], &str)] = &[
            (
                &["--listeners", "127.0.0.1:9092"],
                "is not NAME://HOST:PORT",
            ),
            (&["--listeners", "PLAINTEXT://127.0.0.1:x"], "invalid port"),
            (
                &["--listeners", "PLAINTEXT://::1:9092"],
                "is not NAME://HOST:PORT",
            ),
            (
                &["--listeners", "OTHER://127.0.0.1:0"],
                "OTHER has no security protocol",
            ),
            (
                &["--listeners", "SSL://:1,ssl://:2"],
                "--listeners names listener SSL twice",
            ),
            (
                &[
                    "--listeners",
                    "SSL://:1",
                    "--advertised-listeners",
                    "PLAINTEXT://h:1",
                ],
                "names PLAINTEXT, which is not in --listeners",
            ),
            (
                &[
                    "--listeners",
                    "SSL://:1",
                    "--advertised-listeners",
                    "SSL://:1",
                ],
                "needs a host",
            ),
            (
                &[
                    "--listeners",
                    "A://:1",
                    "--listener-security-protocol-map",
                    "A:TLS",
                ],
                "entry 'A:TLS'",
            ),
            (&["--listeners", ""], "names no listener"),
        ];
        for (flags, expected) in cases {
            let error = configs(flags).expect_err("invalid flags").to_string();
            assert!(error.contains(expected), "{flags:?}: {error}");
        }
    }

    #[test]
    fn both_listener_styles_at_once_are_refused_by_the_parser() {
        // Proves `--listen` (or `--advertise`) with `--listeners` is a start-up error,
        // while the default `--listen` does not conflict.
        use clap::Parser;
        #[derive(Parser)]
        struct Args {
            #[command(flatten)]
            config: BrokerConfig,
        }
        let both = [
            "riffle",
            "--listen",
            "127.0.0.1:0",
            "--listeners",
            "SSL://:0",
        ];
        let error = Args::try_parse_from(both).err().expect("a conflict");
        assert!(error.to_string().contains("cannot be used with"), "{error}");
        let advertise = ["riffle", "--advertise", "h:1", "--listeners", "SSL://:0"];
        assert!(Args::try_parse_from(advertise).is_err());
        assert!(Args::try_parse_from(["riffle", "--listeners", "SSL://:0"]).is_ok());
    }
}
