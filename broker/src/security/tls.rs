//! TLS for SSL and SASL_SSL listeners, and the client side for Riffle's own tools.
//!
//! rustls with the `ring` provider: no OpenSSL, nothing to install beside a C compiler.
//! TLS 1.2 and 1.3 are offered, as Kafka's default `ssl.enabled.protocols`. The server's
//! certificate chain and key are PEM files (`--ssl-certificate`, `--ssl-key`); they are
//! read through a resolver that [`TlsServer::reload`] swaps (on SIGHUP), so a renewed
//! certificate takes effect for new handshakes without dropping a connection. Client
//! certificates are asked for with `--ssl-client-auth requested|required` and checked
//! against the CAs of `--ssl-truststore`; one names the connection's principal
//! `User:<subject>` (see [`super::subject`]).
//!
//! [`client_config`] builds the client side: the CLI's admin client and the tests use it
//! to reach a TLS listener.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig, ServerConnection};
use tokio_rustls::TlsAcceptor;

use crate::config::SslClientAuth;
use crate::security::Principal;
use crate::security::subject::{SubjectError, subject_name};

/// The protocol versions offered, newest first.
static PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Why TLS could not be set up; each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate file could not be read or holds no PEM certificate.
    #[error("cannot read certificates from {path}: {reason}")]
    Certificates {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The key file could not be read or holds no PEM private key.
    #[error("cannot read a private key from {path}: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The key does not fit the certificate, or rustls refused the pair.
    #[error("cannot use {certificate} with {key}: {source}")]
    KeyPair {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// A CA file's certificates could not be used as trust anchors.
    #[error("cannot trust the certificates in {path}: {reason}")]
    Truststore {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Client certificates were asked for without a truststore to check them.
    #[error("--ssl-client-auth {0} needs --ssl-truststore")]
    NoTruststore(&'static str),
    /// The platform's CA store could not be read.
    #[error("cannot read the system's CA certificates: {0}")]
    SystemRoots(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The server's TLS settings, from the flags.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The certificate chain, PEM, leaf first.
    pub certificate: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
    /// Whether client certificates are asked for.
    pub client_auth: SslClientAuth,
    /// The CAs client certificates must chain to.
    pub truststore: Option<PathBuf>,
}

/// The TLS side of the broker's TLS listeners: the acceptor their connections use, and the
/// certificate it presents, which [`TlsServer::reload`] replaces.
pub struct TlsServer {
    acceptor: TlsAcceptor,
    certificate: Arc<ReloadableCertificate>,
}

impl fmt::Debug for TlsServer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TlsServer")
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

impl TlsServer {
    /// Reads the certificate, key and truststore and builds the server configuration.
    ///
    /// # Errors
    /// A [`TlsError`] naming the file that is missing, unreadable or unusable.
    pub fn new(settings: TlsSettings) -> Result<TlsServer, TlsError> {
        let provider = provider();
        let certificate = Arc::new(ReloadableCertificate {
            current: RwLock::new(load_certified_key(&settings, &provider)?),
            settings: settings.clone(),
            provider: provider.clone(),
        });
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(PROTOCOL_VERSIONS)?;
        let builder = match settings.client_auth {
            SslClientAuth::None => builder.with_no_client_auth(),
            SslClientAuth::Requested | SslClientAuth::Required => {
                let flag = if settings.client_auth == SslClientAuth::Required {
                    "required"
                } else {
                    "requested"
                };
                let path = settings
                    .truststore
                    .as_deref()
                    .ok_or(TlsError::NoTruststore(flag))?;
                let roots = Arc::new(load_roots(path)?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
                let verifier = if settings.client_auth == SslClientAuth::Requested {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier.build().map_err(|error| TlsError::Truststore {
                    path: path.to_path_buf(),
                    reason: error.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_cert_resolver(certificate.clone());
        Ok(TlsServer {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificate,
        })
    }

    /// The acceptor for new connections.
    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// Reads the certificate and key files again; new handshakes present them, open
    /// connections are untouched. On an error the old pair stays in use.
    ///
    /// # Errors
    /// As [`TlsServer::new`], for the certificate and key.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.certificate.reload()
    }

    /// The certificate file, for log lines.
    pub fn certificate_path(&self) -> &Path {
        &self.certificate.settings.certificate
    }
}

/// The certificate the server presents, replaceable while connections are accepted.
struct ReloadableCertificate {
    /// Held only to clone or replace the `Arc`: never across I/O or a handshake.
    current: RwLock<Arc<CertifiedKey>>,
    settings: TlsSettings,
    provider: Arc<CryptoProvider>,
}

impl ReloadableCertificate {
    fn reload(&self) -> Result<(), TlsError> {
        let loaded = load_certified_key(&self.settings, &self.provider)?;
        // A poisoned lock only means a panic elsewhere while swapping an Arc; the value
        // is whole either way.
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = loaded;
        Ok(())
    }
}

impl fmt::Debug for ReloadableCertificate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ReloadableCertificate")
            .field("certificate", &self.settings.certificate)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for ReloadableCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(current.clone())
    }
}

/// The principal a TLS connection proves with its client certificate, if it sent one:
/// `User:<subject>` in Kafka's format.
///
/// # Errors
/// When the certificate's subject cannot be read.
pub fn client_certificate_principal(
    connection: &ServerConnection,
) -> Result<Option<Principal>, SubjectError> {
    let Some(leaf) = connection
        .peer_certificates()
        .and_then(|certificates| certificates.first())
    else {
        return Ok(None);
    };
    subject_name(leaf).map(|subject| Some(Principal::user(subject)))
}

/// A client configuration for reaching a TLS listener (TLS 1.2 or 1.3), trusting the PEM
/// CA certificates of `ca_file`, or the system's CA store when `None`. No client
/// certificate: see [`client_config_with_certificate`] for mutual TLS.
///
/// Use it with a server name: `rustls::ClientConnection::new(config, server_name)` and
/// `rustls::StreamOwned` for a blocking socket, or `tokio_rustls::TlsConnector`.
///
/// # Errors
/// When the CA file cannot be read or holds no usable certificate.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_root_certificates(client_roots(ca_file)?);
    Ok(Arc::new(builder.with_no_client_auth()))
}

/// As [`client_config`], presenting the PEM certificate chain and key given: the
/// connection's principal is then `User:<the certificate's subject>`.
///
/// # Errors
/// When a file cannot be read, or the key does not fit the certificate.
pub fn client_config_with_certificate(
    ca_file: Option<&Path>,
    certificate: &Path,
    key: &Path,
) -> Result<Arc<ClientConfig>, TlsError> {
    let chain = load_certificates(certificate)?;
    let private_key = load_key(key)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_root_certificates(client_roots(ca_file)?);
    let config = builder
        .with_client_auth_cert(chain, private_key)
        .map_err(|source| TlsError::KeyPair {
            certificate: certificate.to_path_buf(),
            key: key.to_path_buf(),
            source,
        })?;
    Ok(Arc::new(config))
}

/// The crypto provider every configuration uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_roots(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    match ca_file {
        Some(path) => load_roots(path),
        None => {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let reason = found
                    .errors
                    .first()
                    .map_or_else(|| "none found".to_string(), ToString::to_string);
                return Err(TlsError::SystemRoots(reason));
            }
            Ok(roots)
        }
    }
}

fn load_certified_key(
    settings: &TlsSettings,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = load_certificates(&settings.certificate)?;
    let key = load_key(&settings.key)?;
    let pair_error = |source| TlsError::KeyPair {
        certificate: settings.certificate.clone(),
        key: settings.key.clone(),
        source,
    };
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(pair_error)?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(pair_error)?;
    Ok(Arc::new(certified))
}

fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |reason: String| TlsError::Certificates {
        path: path.to_path_buf(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|source| error(source.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| error(source.to_string()))?;
    if certificates.is_empty() {
        return Err(error("no PEM certificate in it".into()));
    }
    Ok(certificates)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| TlsError::Key {
        path: path.to_path_buf(),
        reason: source.to_string(),
    })
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let certificates = load_certificates(path)?;
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|error| TlsError::Truststore {
                path: path.to_path_buf(),
                reason: error.to_string(),
            })?;
    }
    Ok(roots)
}
