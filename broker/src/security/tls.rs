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
//! [`client_config`] and [`client_config_for`] build the client side: the CLI's admin client
//! and the tests use them to reach a TLS listener.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use riffle_storage::RwLockRecover;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    ServerConnection, SignatureScheme,
};
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
    /// The server certificate verifier could not be built from the trusted CAs.
    #[error("cannot build the server certificate verifier: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
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
        *self.current.write_or_recover() = loaded;
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
        let current = self.current.read_or_recover();
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

/// How a client checks the certificate a TLS listener presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerVerification {
    /// The chain must lead to a trusted CA and name the host connected to (the default of
    /// Kafka's clients and librdkafka).
    Full,
    /// The chain must lead to a trusted CA; the host name is not checked (Java's empty
    /// `ssl.endpoint.identification.algorithm`).
    SkipHostName,
    /// Nothing is checked (librdkafka's `enable.ssl.certificate.verification=false`): the
    /// connection is encrypted but the broker is not authenticated.
    Off,
}

/// The files a client presents for mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The certificate chain, PEM, leaf first.
    pub certificate: PathBuf,
    /// Its private key, PEM (unencrypted).
    pub key: PathBuf,
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
    client_config_for(ca_file, None, ServerVerification::Full)
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
    let identity = ClientIdentity {
        certificate: certificate.to_path_buf(),
        key: key.to_path_buf(),
    };
    client_config_for(ca_file, Some(&identity), ServerVerification::Full)
}

/// A client configuration trusting `ca_file` (or the system's CAs), presenting `identity`
/// if given, and checking the server's certificate as `verification` says. With
/// [`ServerVerification::Off`] no CA is read.
///
/// # Errors
/// When a file cannot be read, or the key does not fit the certificate.
pub fn client_config_for(
    ca_file: Option<&Path>,
    identity: Option<&ClientIdentity>,
    verification: ServerVerification,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(PROTOCOL_VERSIONS)?;
    let builder = match verification {
        ServerVerification::Full => builder.with_root_certificates(client_roots(ca_file)?),
        ServerVerification::SkipHostName => {
            let roots = Arc::new(client_roots(ca_file)?);
            let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider).build()?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyHostName(verifier)))
        }
        ServerVerification::Off => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider))),
    };
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let chain = load_certificates(&identity.certificate)?;
            let private_key = load_key(&identity.key)?;
            builder
                .with_client_auth_cert(chain, private_key)
                .map_err(|source| TlsError::KeyPair {
                    certificate: identity.certificate.clone(),
                    key: identity.key.clone(),
                    source,
                })?
        }
    };
    Ok(Arc::new(config))
}

/// Checks the chain as WebPKI does but accepts any host name in it.
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified =
            self.0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        match verified {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Accepts any certificate. The handshake signatures are still checked, so the peer holds
/// the key of the certificate it sent, whoever it is.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, certificate, signature, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, certificate, signature, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
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
