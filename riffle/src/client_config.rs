//! How `riffle`'s client commands (`riffle topics`, `produce`, `consume`, `groups`, `acls`,
//! `cluster`) reach a broker:
//! `--bootstrap HOST:PORT` and `--command-config FILE`, the Kafka client properties file that
//! `kafka-acls.sh --command-config` and kcat's `-F` take.
//!
//! [`ClientConfig::load`] reads the file; [`ConnectionArgs::connect`] opens an
//! [`AdminClient`] with it. The properties understood, under Java's or librdkafka's names:
//!
//! | property | values |
//! |---|---|
//! | `security.protocol` | `PLAINTEXT` (default), `SSL`, `SASL_PLAINTEXT`, `SASL_SSL` |
//! | `sasl.mechanism` (Java), `sasl.mechanisms` (librdkafka) | `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` |
//! | `sasl.username`, `sasl.password` | the SASL credentials |
//! | `sasl.jaas.config` | `...PlainLoginModule required username="..." password="...";` or `ScramLoginModule` |
//! | `ssl.ca.location`, or `ssl.truststore.location` with `ssl.truststore.type=PEM` | the CA certificates (PEM) to trust; the system's otherwise |
//! | `ssl.certificate.location` + `ssl.key.location`, or `ssl.keystore.location` with `ssl.keystore.type=PEM` | a client certificate and key (PEM), for mutual TLS |
//! | `enable.ssl.certificate.verification` | `true` (default) or `false`: do not check the broker's certificate at all |
//! | `ssl.endpoint.identification.algorithm` | `https` (default), or empty / `none`: do not check the host name |
//!
//! Like Kafka's tools, other properties (`client.id`, `request.timeout.ms`, ...) are ignored;
//! a known property with a value riffle cannot use is an error that names it. The file is
//! Java's `.properties` format, read by [`riffle_server::properties`]. No error message ever holds a
//! password.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::admin_client::routing::Brokers;
use crate::admin_client::{AdminClient, AdminClientError};
use riffle_server::properties::{MalformedEscape, Properties, PropertiesError};
use riffle_server::security::scram::ScramMechanism;
use riffle_server::security::tls::{ClientIdentity, ServerVerification};

/// `--bootstrap` and `--command-config`, shared by the client commands.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// The broker to connect to, HOST:PORT (a comma-separated list is tried in order).
    #[arg(
        long,
        visible_alias = "bootstrap-server",
        env = "RIFFLE_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub bootstrap: String,

    /// A Kafka client properties file: security.protocol, sasl.mechanism, sasl.username,
    /// sasl.password (or sasl.jaas.config), ssl.ca.location, ssl.certificate.location,
    /// ssl.key.location, enable.ssl.certificate.verification. Other properties are ignored.
    #[arg(long, value_name = "FILE", global = true)]
    pub command_config: Option<PathBuf>,
}

impl ConnectionArgs {
    /// Reads `--command-config` (if given) and connects to `--bootstrap` with it.
    ///
    /// # Errors
    /// A file that cannot be read or holds a bad value, or a failed connection, TLS
    /// handshake or SASL authentication.
    pub fn connect(&self) -> Result<AdminClient, ConnectError> {
        Ok(AdminClient::connect_with(&self.bootstrap, &self.config()?)?)
    }

    /// As [`connect`](Self::connect), for commands that reach several brokers (partition
    /// leaders, group coordinators).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub fn connect_brokers(&self) -> Result<Brokers, ConnectError> {
        Ok(Brokers::connect(&self.bootstrap, self.config()?)?)
    }

    /// The `--command-config` file's settings, or the defaults without one.
    fn config(&self) -> Result<ClientConfig, ClientConfigError> {
        match &self.command_config {
            Some(path) => ClientConfig::load(path),
            None => Ok(ClientConfig::default()),
        }
    }
}

/// Why a client command could not connect.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The `--command-config` file.
    #[error(transparent)]
    Config(#[from] ClientConfigError),
    /// The connection, TLS or SASL.
    #[error(transparent)]
    Client(#[from] AdminClientError),
}

/// How to reach a broker: the security protocol and what it needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientConfig {
    /// `security.protocol`.
    pub security_protocol: SecurityProtocol,
    /// The SASL mechanism and credentials; set exactly for the SASL protocols.
    pub sasl: Option<SaslCredentials>,
    /// What TLS trusts and presents; set exactly for the SSL protocols.
    pub tls: Option<TlsClientSettings>,
}

/// Kafka's `security.protocol`: the same four protocols a listener speaks.
pub use riffle_server::listener::SecurityProtocol;

/// A SASL mechanism this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// The user name and password in one token (RFC 4616).
    Plain,
    /// SCRAM-SHA-256 or SCRAM-SHA-512.
    Scram(ScramMechanism),
}

impl SaslMechanism {
    /// The SASL name, as SaslHandshake carries it.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => riffle_server::security::sasl::PLAIN,
            SaslMechanism::Scram(mechanism) => mechanism.name(),
        }
    }

    /// The mechanism named `name` (exactly, as Kafka compares them).
    pub fn from_name(name: &str) -> Option<SaslMechanism> {
        if name == riffle_server::security::sasl::PLAIN {
            return Some(SaslMechanism::Plain);
        }
        ScramMechanism::from_name(name).map(SaslMechanism::Scram)
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// A SASL mechanism with a user name and password. `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for SaslCredentials {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The TLS side of a client configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsClientSettings {
    /// The CA certificates (PEM) to trust; the system's CA store when `None`.
    pub ca_file: Option<PathBuf>,
    /// The client certificate and key to present, for mutual TLS.
    pub identity: Option<ClientIdentity>,
    /// How the broker's certificate is checked.
    pub verification: ServerVerification,
}

/// Why a `--command-config` file cannot be used. None holds a password.
#[derive(Debug, thiserror::Error)]
pub enum ClientConfigError {
    /// The file could not be read, or is not a properties file.
    #[error("the command config: {0}")]
    File(#[from] PropertiesError),
    /// A malformed `\u` escape in the properties text.
    #[error(transparent)]
    Malformed(#[from] MalformedEscape),
    /// A property's value is not one riffle can use.
    #[error("invalid value '{value}' for {property}: expected {expected}")]
    InvalidValue {
        /// The property.
        property: &'static str,
        /// The value as written.
        value: String,
        /// What it may be.
        expected: &'static str,
    },
    /// Two properties that say the same thing disagree.
    #[error("{first} and {second} disagree; set one of them")]
    Conflict {
        /// One property.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// The security protocol needs a property that is not set.
    #[error("security.protocol={protocol} needs {needed}")]
    Missing {
        /// The protocol.
        protocol: SecurityProtocol,
        /// The properties it needs, in words.
        needed: &'static str,
    },
    /// One of a pair of properties is set without the other.
    #[error("{set} is set without {missing}")]
    Unpaired {
        /// The one set.
        set: &'static str,
        /// The one missing.
        missing: &'static str,
    },
    /// A known property asks for something riffle does not implement.
    #[error("{property} is not supported: {reason}")]
    Unsupported {
        /// The property.
        property: &'static str,
        /// What to do instead.
        reason: &'static str,
    },
    /// `sasl.jaas.config` does not parse. The value is not shown: it holds the password.
    #[error("invalid sasl.jaas.config: {0}")]
    Jaas(&'static str),
}

/// The names of the properties this module reads.
mod property {
    pub const SECURITY_PROTOCOL: &str = "security.protocol";
    pub const SASL_MECHANISM: &str = "sasl.mechanism";
    pub const SASL_MECHANISMS: &str = "sasl.mechanisms";
    pub const SASL_USERNAME: &str = "sasl.username";
    pub const SASL_PASSWORD: &str = "sasl.password";
    pub const SASL_JAAS_CONFIG: &str = "sasl.jaas.config";
    pub const SSL_CA_LOCATION: &str = "ssl.ca.location";
    pub const SSL_TRUSTSTORE_LOCATION: &str = "ssl.truststore.location";
    pub const SSL_TRUSTSTORE_TYPE: &str = "ssl.truststore.type";
    pub const SSL_CERTIFICATE_LOCATION: &str = "ssl.certificate.location";
    pub const SSL_KEY_LOCATION: &str = "ssl.key.location";
    pub const SSL_KEY_PASSWORD: &str = "ssl.key.password";
    pub const SSL_KEYSTORE_LOCATION: &str = "ssl.keystore.location";
    pub const SSL_KEYSTORE_TYPE: &str = "ssl.keystore.type";
    pub const ENABLE_SSL_CERTIFICATE_VERIFICATION: &str = "enable.ssl.certificate.verification";
    pub const SSL_ENDPOINT_IDENTIFICATION_ALGORITHM: &str = "ssl.endpoint.identification.algorithm";
}

/// The file type Java calls PEM in `ssl.truststore.type` and `ssl.keystore.type`.
const PEM_STORE_TYPE: &str = "PEM";

impl ClientConfig {
    /// Reads and checks the properties file at `path`.
    ///
    /// # Errors
    /// An unreadable, oversized or non-UTF-8 file, or any error of [`ClientConfig::parse`].
    pub fn load(path: &Path) -> Result<ClientConfig, ClientConfigError> {
        ClientConfig::from_properties(Properties::load(path)?.into_map())
    }

    /// Reads properties text: the security protocol, then what it needs. SASL properties
    /// under a protocol without SASL, and TLS properties without TLS, are ignored, as Kafka's
    /// clients ignore them.
    ///
    /// # Errors
    /// A [`ClientConfigError`] naming the property at fault.
    pub fn parse(text: &str) -> Result<ClientConfig, ClientConfigError> {
        ClientConfig::from_properties(Properties::parse(text)?.into_map())
    }

    fn from_properties(
        properties: BTreeMap<String, String>,
    ) -> Result<ClientConfig, ClientConfigError> {
        let security_protocol = security_protocol(&properties)?;
        let sasl = match security_protocol.uses_sasl() {
            true => Some(sasl_credentials(&properties, security_protocol)?),
            false => None,
        };
        let tls = match security_protocol.uses_tls() {
            true => Some(tls_settings(&properties)?),
            false => None,
        };
        Ok(ClientConfig {
            security_protocol,
            sasl,
            tls,
        })
    }
}

/// The value of `name`, if set and not empty.
fn value<'a>(properties: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    properties
        .get(name)
        .map(String::as_str)
        .filter(|value| !value.is_empty())
}

/// The value set under either of two names for the same thing; both may be set if equal.
fn either<'a>(
    properties: &'a BTreeMap<String, String>,
    first: &'static str,
    second: &'static str,
) -> Result<Option<&'a str>, ClientConfigError> {
    match (value(properties, first), value(properties, second)) {
        (Some(a), Some(b)) if a != b => Err(ClientConfigError::Conflict { first, second }),
        (a, b) => Ok(a.or(b)),
    }
}

fn security_protocol(
    properties: &BTreeMap<String, String>,
) -> Result<SecurityProtocol, ClientConfigError> {
    let Some(text) = value(properties, property::SECURITY_PROTOCOL) else {
        return Ok(SecurityProtocol::Plaintext);
    };
    // Kafka's clients compare it without case.
    SecurityProtocol::from_name(text).ok_or_else(|| ClientConfigError::InvalidValue {
        property: property::SECURITY_PROTOCOL,
        value: text.to_string(),
        expected: "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    })
}

fn sasl_credentials(
    properties: &BTreeMap<String, String>,
    protocol: SecurityProtocol,
) -> Result<SaslCredentials, ClientConfigError> {
    let mechanism_name = either(
        properties,
        property::SASL_MECHANISM,
        property::SASL_MECHANISMS,
    )?
    .ok_or(ClientConfigError::Missing {
        protocol,
        needed: "sasl.mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; Kafka's default, \
                 GSSAPI, is not supported)",
    })?;
    let mechanism = SaslMechanism::from_name(mechanism_name).ok_or_else(|| {
        ClientConfigError::InvalidValue {
            property: property::SASL_MECHANISM,
            value: mechanism_name.to_string(),
            expected: "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
        }
    })?;
    let username = value(properties, property::SASL_USERNAME);
    let password = properties.get(property::SASL_PASSWORD);
    let (username, password) = match (username, password) {
        (Some(username), Some(password)) => (username.to_string(), password.clone()),
        (Some(_), None) => {
            return Err(ClientConfigError::Unpaired {
                set: property::SASL_USERNAME,
                missing: property::SASL_PASSWORD,
            });
        }
        (None, Some(_)) => {
            return Err(ClientConfigError::Unpaired {
                set: property::SASL_PASSWORD,
                missing: property::SASL_USERNAME,
            });
        }
        (None, None) => match value(properties, property::SASL_JAAS_CONFIG) {
            Some(jaas) => jaas_credentials(jaas, mechanism)?,
            None => {
                return Err(ClientConfigError::Missing {
                    protocol,
                    needed: "sasl.username and sasl.password, or sasl.jaas.config",
                });
            }
        },
    };
    Ok(SaslCredentials {
        mechanism,
        username,
        password,
    })
}

/// The user name and password of a one-module JAAS configuration, as Kafka's
/// `sasl.jaas.config` holds it:
///
/// ```text
/// org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="secret";
/// ```
///
/// The module must be the one of `mechanism`: `PlainLoginModule` for PLAIN,
/// `ScramLoginModule` for SCRAM.
fn jaas_credentials(
    jaas: &str,
    mechanism: SaslMechanism,
) -> Result<(String, String), ClientConfigError> {
    let tokens = jaas_tokens(jaas)?;
    let mut tokens = tokens.iter();
    let module = match tokens.next() {
        Some(JaasToken::Word(module)) => module,
        _ => {
            return Err(ClientConfigError::Jaas(
                "it does not start with a login module",
            ));
        }
    };
    let expected_module = match mechanism {
        SaslMechanism::Plain => "PlainLoginModule",
        SaslMechanism::Scram(_) => "ScramLoginModule",
    };
    if module.rsplit('.').next() != Some(expected_module) {
        return Err(ClientConfigError::Jaas(match mechanism {
            SaslMechanism::Plain => "sasl.mechanism PLAIN needs the PlainLoginModule",
            SaslMechanism::Scram(_) => "a SCRAM sasl.mechanism needs the ScramLoginModule",
        }));
    }
    match tokens.next() {
        Some(JaasToken::Word(flag))
            if ["required", "requisite", "sufficient", "optional"].contains(&flag.as_str()) => {}
        _ => {
            return Err(ClientConfigError::Jaas(
                "the login module is not followed by required, requisite, sufficient or optional",
            ));
        }
    }
    let mut options = BTreeMap::new();
    loop {
        match (tokens.next(), tokens.next(), tokens.next()) {
            (Some(JaasToken::Word(name)), Some(JaasToken::Equals), Some(value)) => {
                let value = match value {
                    JaasToken::Word(text) | JaasToken::Quoted(text) => text.clone(),
                    _ => return Err(ClientConfigError::Jaas("an option has no value")),
                };
                options.insert(name.clone(), value);
            }
            (Some(JaasToken::Semicolon), None, None) | (None, None, None) => break,
            _ => {
                return Err(ClientConfigError::Jaas(
                    "expected options as name=\"value\", then one ';'",
                ));
            }
        }
    }
    match (options.remove("username"), options.remove("password")) {
        (Some(username), Some(password)) => Ok((username, password)),
        _ => Err(ClientConfigError::Jaas(
            "it needs both a username and a password option",
        )),
    }
}

/// A token of a JAAS configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
enum JaasToken {
    /// A run of characters other than whitespace, `=`, `;` and `"`.
    Word(String),
    /// A double-quoted string, with `\` escaping the next character.
    Quoted(String),
    /// `=`.
    Equals,
    /// `;`.
    Semicolon,
}

fn jaas_tokens(text: &str) -> Result<Vec<JaasToken>, ClientConfigError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            _ if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                tokens.push(JaasToken::Equals);
            }
            ';' => {
                chars.next();
                tokens.push(JaasToken::Semicolon);
            }
            '"' => {
                chars.next();
                let mut quoted = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => quoted.extend(chars.next()),
                        Some(other) => quoted.push(other),
                        None => {
                            return Err(ClientConfigError::Jaas("a quoted value is not closed"));
                        }
                    }
                }
                tokens.push(JaasToken::Quoted(quoted));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '=' | ';' | '"') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(JaasToken::Word(word));
            }
        }
    }
    Ok(tokens)
}

fn tls_settings(
    properties: &BTreeMap<String, String>,
) -> Result<TlsClientSettings, ClientConfigError> {
    require_pem_store(properties, property::SSL_TRUSTSTORE_TYPE)?;
    require_pem_store(properties, property::SSL_KEYSTORE_TYPE)?;
    if value(properties, property::SSL_KEY_PASSWORD).is_some() {
        return Err(ClientConfigError::Unsupported {
            property: property::SSL_KEY_PASSWORD,
            reason: "encrypted private keys cannot be read; use an unencrypted PEM key",
        });
    }
    let ca_file = either(
        properties,
        property::SSL_CA_LOCATION,
        property::SSL_TRUSTSTORE_LOCATION,
    )?
    .map(PathBuf::from);
    Ok(TlsClientSettings {
        ca_file,
        identity: client_identity(properties)?,
        verification: verification(properties)?,
    })
}

/// Refuses a Java keystore or truststore type other than PEM: riffle reads PEM files only.
fn require_pem_store(
    properties: &BTreeMap<String, String>,
    type_property: &'static str,
) -> Result<(), ClientConfigError> {
    match value(properties, type_property) {
        Some(store_type) if !store_type.eq_ignore_ascii_case(PEM_STORE_TYPE) => {
            Err(ClientConfigError::InvalidValue {
                property: type_property,
                value: store_type.to_string(),
                expected: "PEM (riffle reads PEM files, not JKS or PKCS12 stores)",
            })
        }
        _ => Ok(()),
    }
}

/// The client certificate and key: librdkafka's two files, or one PEM keystore holding both.
fn client_identity(
    properties: &BTreeMap<String, String>,
) -> Result<Option<ClientIdentity>, ClientConfigError> {
    let certificate = value(properties, property::SSL_CERTIFICATE_LOCATION);
    let key = value(properties, property::SSL_KEY_LOCATION);
    let keystore = value(properties, property::SSL_KEYSTORE_LOCATION);
    let identity = |certificate: &str, key: &str| ClientIdentity {
        certificate: PathBuf::from(certificate),
        key: PathBuf::from(key),
    };
    match (certificate, key, keystore) {
        (Some(_), _, Some(_)) => Err(ClientConfigError::Conflict {
            first: property::SSL_CERTIFICATE_LOCATION,
            second: property::SSL_KEYSTORE_LOCATION,
        }),
        (Some(certificate), Some(key), None) => Ok(Some(identity(certificate, key))),
        (Some(_), None, None) => Err(ClientConfigError::Unpaired {
            set: property::SSL_CERTIFICATE_LOCATION,
            missing: property::SSL_KEY_LOCATION,
        }),
        (None, Some(_), None) => Err(ClientConfigError::Unpaired {
            set: property::SSL_KEY_LOCATION,
            missing: property::SSL_CERTIFICATE_LOCATION,
        }),
        (None, Some(_), Some(_)) => Err(ClientConfigError::Conflict {
            first: property::SSL_KEY_LOCATION,
            second: property::SSL_KEYSTORE_LOCATION,
        }),
        (None, None, Some(keystore)) => Ok(Some(identity(keystore, keystore))),
        (None, None, None) => Ok(None),
    }
}

fn verification(
    properties: &BTreeMap<String, String>,
) -> Result<ServerVerification, ClientConfigError> {
    let verify_certificate = match value(properties, property::ENABLE_SSL_CERTIFICATE_VERIFICATION)
    {
        None => true,
        Some(text) if text.eq_ignore_ascii_case("true") => true,
        Some(text) if text.eq_ignore_ascii_case("false") => false,
        Some(text) => {
            return Err(ClientConfigError::InvalidValue {
                property: property::ENABLE_SSL_CERTIFICATE_VERIFICATION,
                value: text.to_string(),
                expected: "true or false",
            });
        }
    };
    // An empty value is meaningful here (Java's way to turn the check off), so read it raw.
    let host_name_check = match properties
        .get(property::SSL_ENDPOINT_IDENTIFICATION_ALGORITHM)
        .map(String::as_str)
    {
        None => true,
        Some(text) if text.eq_ignore_ascii_case("https") => true,
        Some(text) if text.is_empty() || text.eq_ignore_ascii_case("none") => false,
        Some(text) => {
            return Err(ClientConfigError::InvalidValue {
                property: property::SSL_ENDPOINT_IDENTIFICATION_ALGORITHM,
                value: text.to_string(),
                expected: "https, none or an empty value",
            });
        }
    };
    Ok(match (verify_certificate, host_name_check) {
        (false, _) => ServerVerification::Off,
        (true, false) => ServerVerification::SkipHostName,
        (true, true) => ServerVerification::Full,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> ClientConfig {
        ClientConfig::parse(text).unwrap_or_else(|error| panic!("{text:?}: {error}"))
    }

    fn refused(text: &str) -> String {
        match ClientConfig::parse(text) {
            Ok(config) => panic!("{text:?} was accepted: {config:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn librdkafka_settings_for_sasl_plaintext_give_scram_credentials() {
        // The file `riffle_acls` in the integration tests writes.
        let config = parsed(
            "security.protocol=SASL_PLAINTEXT\n\
             sasl.mechanisms=SCRAM-SHA-512\n\
             sasl.username=admin\n\
             sasl.password=admin-secret\n",
        );
        assert_eq!(
            config,
            ClientConfig {
                security_protocol: SecurityProtocol::SaslPlaintext,
                sasl: Some(SaslCredentials {
                    mechanism: SaslMechanism::Scram(ScramMechanism::Sha512),
                    username: "admin".into(),
                    password: "admin-secret".into(),
                }),
                tls: None,
            }
        );
        assert!(!format!("{config:?}").contains("admin-secret"));
    }

    #[test]
    fn java_settings_for_sasl_ssl_read_the_jaas_config_and_pem_stores() {
        // Java's names: sasl.mechanism, sasl.jaas.config (continued over two lines, its
        // quotes escaped once for the properties file and once for JAAS), PEM trust and key
        // stores, and an empty endpoint identification algorithm.
        let config = parsed(
            "security.protocol=sasl_ssl\n\
             sasl.mechanism=PLAIN\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\\n\
             \x20   username=\"alice\" password=\"a \\\\\"quoted\\\\\" secret\";\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location=/etc/ca.pem\n\
             ssl.keystore.type=PEM\n\
             ssl.keystore.location=/etc/client.pem\n\
             ssl.endpoint.identification.algorithm=\n\
             client.id=ignored\n",
        );
        assert_eq!(config.security_protocol, SecurityProtocol::SaslSsl);
        let sasl = config.sasl.expect("SASL");
        assert_eq!(sasl.mechanism, SaslMechanism::Plain);
        assert_eq!(sasl.username, "alice");
        assert_eq!(sasl.password, "a \"quoted\" secret");
        assert_eq!(
            config.tls,
            Some(TlsClientSettings {
                ca_file: Some("/etc/ca.pem".into()),
                identity: Some(ClientIdentity {
                    certificate: "/etc/client.pem".into(),
                    key: "/etc/client.pem".into(),
                }),
                verification: ServerVerification::SkipHostName,
            })
        );
    }

    #[test]
    fn ssl_settings_take_a_ca_a_client_certificate_and_verification() {
        // librdkafka's SSL names; verification off wins over the host name setting.
        let config = parsed(
            "security.protocol=SSL\n\
             ssl.ca.location=ca.pem\n\
             ssl.certificate.location=client.pem\n\
             ssl.key.location=client.key\n\
             enable.ssl.certificate.verification=false\n\
             sasl.mechanism=GSSAPI\n",
        );
        assert_eq!(config.sasl, None, "SASL settings are ignored without SASL");
        let tls = config.tls.expect("TLS");
        assert_eq!(tls.ca_file, Some("ca.pem".into()));
        assert_eq!(
            tls.identity,
            Some(ClientIdentity {
                certificate: "client.pem".into(),
                key: "client.key".into(),
            })
        );
        assert_eq!(tls.verification, ServerVerification::Off);
        assert_eq!(parsed("").security_protocol, SecurityProtocol::Plaintext);
        assert_eq!(
            parsed("security.protocol=SSL\n")
                .tls
                .map(|tls| tls.verification),
            Some(ServerVerification::Full)
        );
    }

    #[test]
    fn bad_values_of_known_properties_are_named() {
        // Each refusal names the property, and none shows a password.
        let sasl = "security.protocol=SASL_SSL\nsasl.username=u\nsasl.password=hunter2\n";
        let cases = [
            (
                "security.protocol=TLS\n",
                "invalid value 'TLS' for security.protocol",
            ),
            (
                "security.protocol=SASL_PLAINTEXT\nsasl.username=u\nsasl.password=p\n",
                "security.protocol=SASL_PLAINTEXT needs sasl.mechanism",
            ),
            (
                &format!("{sasl}sasl.mechanism=GSSAPI\n"),
                "invalid value 'GSSAPI' for sasl.mechanism",
            ),
            (
                &format!("{sasl}sasl.mechanism=PLAIN\nsasl.mechanisms=SCRAM-SHA-256\n"),
                "sasl.mechanism and sasl.mechanisms disagree",
            ),
            (
                "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n",
                "needs sasl.username and sasl.password, or sasl.jaas.config",
            ),
            (
                "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=u\n",
                "sasl.username is set without sasl.password",
            ),
            (
                "security.protocol=SSL\nenable.ssl.certificate.verification=maybe\n",
                "invalid value 'maybe' for enable.ssl.certificate.verification",
            ),
            (
                "security.protocol=SSL\nssl.truststore.type=JKS\nssl.truststore.location=t.jks\n",
                "invalid value 'JKS' for ssl.truststore.type",
            ),
            (
                "security.protocol=SSL\nssl.certificate.location=c.pem\n",
                "ssl.certificate.location is set without ssl.key.location",
            ),
            (
                "security.protocol=SSL\nssl.key.password=hunter2\n",
                "ssl.key.password is not supported",
            ),
        ];
        for (text, expected) in cases {
            let message = refused(text);
            assert!(message.contains(expected), "{text:?}: {message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
    }

    #[test]
    fn jaas_configs_are_checked_without_showing_them() {
        // The module must suit the mechanism, options need values, and the error never
        // repeats the configuration, which holds the password.
        let with = |mechanism: &str, jaas: &str| {
            format!(
                "security.protocol=SASL_PLAINTEXT\nsasl.mechanism={mechanism}\nsasl.jaas.config={jaas}\n"
            )
        };
        let scram = "org.apache.kafka.common.security.scram.ScramLoginModule required \
                     username=\"bob\" password=\"hunter2\";";
        let config = parsed(&with("SCRAM-SHA-256", scram));
        let sasl = config.sasl.expect("SASL");
        assert_eq!(
            (sasl.username.as_str(), sasl.password.as_str()),
            ("bob", "hunter2")
        );
        for (mechanism, jaas, expected) in [
            ("PLAIN", scram, "PLAIN needs the PlainLoginModule"),
            (
                "SCRAM-SHA-256",
                "ScramLoginModule required username=\"bob\";",
                "needs both a username and a password",
            ),
            (
                "SCRAM-SHA-256",
                "ScramLoginModule required username=\"bob\" password=\"hunter2",
                "not closed",
            ),
            (
                "SCRAM-SHA-256",
                "ScramLoginModule username=\"bob\" password=\"hunter2\";",
                "not followed by required",
            ),
        ] {
            let message = refused(&with(mechanism, jaas));
            assert!(message.contains(expected), "{jaas}: {message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
    }

    #[test]
    fn a_missing_or_oversized_file_is_named() {
        // The path appears in the error; a huge file is refused before it is parsed.
        let dir = tempfile::Builder::new()
            .prefix("riffle-client-config-test-")
            .tempdir()
            .expect("temp dir");
        let missing = dir.path().join("missing.properties");
        let message = ClientConfig::load(&missing).err().map(|e| e.to_string());
        assert!(
            message
                .as_deref()
                .is_some_and(|m| m.contains("missing.properties")),
            "{message:?}"
        );
        let large = dir.path().join("large.properties");
        let size =
            usize::try_from(riffle_server::properties::PROPERTIES_MAX_BYTES).expect("fits") + 1;
        std::fs::write(&large, vec![b'#'; size]).expect("write");
        assert!(matches!(
            ClientConfig::load(&large),
            Err(ClientConfigError::File(PropertiesError::TooLarge { .. }))
        ));
        let good = dir.path().join("good.properties");
        std::fs::write(&good, "security.protocol=SSL\n").expect("write");
        assert_eq!(
            ClientConfig::load(&good)
                .map(|config| config.security_protocol)
                .ok(),
            Some(SecurityProtocol::Ssl)
        );
    }
}
