//! Security fixtures: certificates made at test time, brokers with every kind of listener,
//! users added with `riffle users add`, ACLs with `riffle acls`, and the client settings the
//! test scripts take.
//!
//! Start with [`Pki::generate`] (a CA, a server certificate for `127.0.0.1` and `localhost`,
//! and client certificates on demand), then [`secure_broker`] (all four listeners, TLS from
//! the `Pki`, the users given), then a [`ClientSecurity`] per client: its
//! [`ClientSecurity::script_args`] go to the Python and Node scripts, its
//! [`ClientSecurity::librdkafka_settings`] to kcat. No private key is ever written outside a
//! temp directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use tempfile::TempDir;

use crate::kcat::run_kcat;
use crate::process::run_with_timeout;
use crate::riffle_cli::{CLI_TIMEOUT, CliOutput};
use crate::{Broker, broker_binary, run_node_at, run_python_at};

/// Every listener kind on a free port: `PLAINTEXT` first, so [`Broker::bootstrap`] is it.
pub const ALL_LISTENERS: &str = "PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0,\
                                 SASL_PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0";

/// Every SASL mechanism the broker implements, as `--sasl-enabled-mechanisms` takes them.
pub const ALL_MECHANISMS: &str = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512";

/// The subject of [`Pki::generate`]'s CA certificate.
const CA_COMMON_NAME: &str = "Riffle Test CA";

/// A test certificate authority and the server certificate it signed, as PEM files in a temp
/// directory that lives as long as the `Pki`.
pub struct Pki {
    /// Holds `ca.pem`, `server.pem`, `server.key` and every client certificate made.
    dir: TempDir,
    /// The CA's certificate and key, to sign client certificates.
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A client certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    /// The certificate (PEM).
    pub certificate_file: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub key_file: PathBuf,
}

impl Pki {
    /// Makes a CA and a server certificate valid for `127.0.0.1` and `localhost` (librdkafka
    /// 2.x, kafka-python and kafkajs all check the host name by default).
    ///
    /// # Panics
    /// If a key cannot be generated or a file cannot be written.
    pub fn generate() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("riffle-it-pki-")
            .tempdir()
            .expect("cannot create a temp directory for certificates");
        let mut params = base_params(&[("CN", CA_COMMON_NAME)]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("generate the CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-sign the CA");
        let pki = Pki { dir, issuer };
        write_file(&pki.ca_file(), &pki.issuer.pem());

        let mut params = base_params(&[("CN", "localhost")]);
        params.subject_alt_names = vec![
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::DnsName("localhost".try_into().expect("a valid DNS name")),
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        pki.sign(params, "server");
        pki
    }

    /// The CA certificate (PEM): the clients' trust store and `--ssl-truststore`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server certificate (PEM), for `--ssl-certificate`.
    pub fn server_certificate_file(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    /// The server's key (PEM), for `--ssl-key`.
    pub fn server_key_file(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// `--ssl-certificate` and `--ssl-key` for this server certificate.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--ssl-certificate".to_owned(),
            path_text(&self.server_certificate_file()),
            "--ssl-key".to_owned(),
            path_text(&self.server_key_file()),
        ]
    }

    /// Signs a client certificate whose subject has `subject`'s attributes in that order
    /// (`("O", "Riffle"), ("CN", "client")` is encoded O first, so Kafka's RFC 2253 name,
    /// which lists the last attribute first, is `CN=client,O=Riffle`). Files are named
    /// `<stem>.pem` and `<stem>.key`.
    ///
    /// # Panics
    /// If an attribute is not one of CN, O, OU, C, ST, L, or a file cannot be written.
    pub fn client_certificate(&self, stem: &str, subject: &[(&str, &str)]) -> ClientCertificate {
        let mut params = base_params(subject);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, stem)
    }

    /// Signs `params` with the CA and writes `<stem>.pem` and `<stem>.key`.
    fn sign(&self, mut params: CertificateParams, stem: &str) -> ClientCertificate {
        params.use_authority_key_identifier_extension = true;
        // ECDSA keys sign the TLS handshake; they never encipher a key.
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("generate a key");
        let certificate = params
            .signed_by(&key, &self.issuer)
            .unwrap_or_else(|error| panic!("cannot sign the {stem} certificate: {error}"));
        let files = ClientCertificate {
            certificate_file: self.dir.path().join(format!("{stem}.pem")),
            key_file: self.dir.path().join(format!("{stem}.key")),
        };
        write_file(&files.certificate_file, &certificate.pem());
        write_file(&files.key_file, &key.serialize_pem());
        files
    }
}

/// Certificate parameters with `subject` (attributes in encoding order) and a validity that
/// started in the past and ends before 2050 (UTCTime, which every TLS stack reads).
fn base_params(subject: &[(&str, &str)]) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2049, 12, 31);
    let mut name = DistinguishedName::new();
    for (attribute, value) in subject {
        let kind = match *attribute {
            "CN" => DnType::CommonName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "C" => DnType::CountryName,
            "ST" => DnType::StateOrProvinceName,
            "L" => DnType::LocalityName,
            other => panic!("unsupported subject attribute {other}"),
        };
        name.push(kind, *value);
    }
    params.distinguished_name = name;
    params
}

/// A user name, its password and the mechanism `riffle users add` stores it for.
#[derive(Debug, Clone, Copy)]
pub struct User<'a> {
    /// The SASL user name.
    pub name: &'a str,
    /// The password.
    pub password: &'a str,
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: &'a str,
}

/// The user most tests connect as: SCRAM-SHA-512 credentials, also good for PLAIN.
pub const ALICE: User<'static> = User {
    name: "alice",
    password: "alice-secret",
    mechanism: "SCRAM-SHA-512",
};

/// A second user, stored for SCRAM-SHA-256.
pub const BOB: User<'static> = User {
    name: "bob",
    password: "bob-secret",
    mechanism: "SCRAM-SHA-256",
};

/// The super user of the ACL tests (`--super-users User:admin`).
pub const ADMIN: User<'static> = User {
    name: "admin",
    password: "admin-secret",
    mechanism: "SCRAM-SHA-512",
};

/// A broker with [`ALL_LISTENERS`], TLS from `pki`, every SASL mechanism, groups that
/// rebalance at once, `users` added with `riffle users add` before it starts, and `args` on
/// top (`--authorizer acl`, `--ssl-client-auth required`, ...).
///
/// # Panics
/// If a user cannot be added or the broker does not start.
pub fn secure_broker(pki: &Pki, users: &[User<'_>], args: &[&str]) -> Broker {
    let mut all_args: Vec<String> = pki.server_args();
    all_args.extend(
        [
            "--sasl-enabled-mechanisms",
            ALL_MECHANISMS,
            "--group-initial-rebalance-delay-ms",
            "0",
        ]
        .map(str::to_owned),
    );
    all_args.extend(args.iter().map(|arg| (*arg).to_owned()));
    let all_args: Vec<&str> = all_args.iter().map(String::as_str).collect();
    let mut broker = Broker::builder()
        .listeners(ALL_LISTENERS)
        .args(&all_args)
        .create();
    for user in users {
        add_user(&broker, user);
    }
    broker.launch();
    broker
}

/// Runs `riffle users add NAME --mechanism M --data-dir <broker's> --password-file F` on a
/// broker that is not running, with the password written to a file beside its data directory.
///
/// # Panics
/// If the command fails; the message shows its output.
pub fn add_user(broker: &Broker, user: &User<'_>) {
    let data_dir = broker.data_dir();
    let password_file = data_dir
        .parent()
        .expect("the data directory has a parent")
        .join(format!("{}.password", user.name));
    write_file(&password_file, user.password);
    let output = riffle(&[
        "users",
        "add",
        user.name,
        "--mechanism",
        user.mechanism,
        "--data-dir",
        &path_text(&data_dir),
        "--password-file",
        &path_text(&password_file),
    ]);
    assert_eq!(
        output.code,
        Some(0),
        "riffle users add {} --mechanism {} failed:\n{}{}",
        user.name,
        user.mechanism,
        output.stdout,
        output.stderr
    );
}

/// Runs `riffle acls <args> --bootstrap <bootstrap> --command-config <file>` with `security`'s
/// settings in the file, and returns how it ended (the caller checks the code).
///
/// # Panics
/// If the binary cannot be started or the file cannot be written.
pub fn riffle_acls(bootstrap: &str, security: &ClientSecurity, args: &[&str]) -> CliOutput {
    let dir = tempfile::tempdir().expect("temp dir for the command config");
    let config = dir.path().join("command.properties");
    write_file(&config, &security.properties());
    let mut full_args = vec!["acls"];
    full_args.extend_from_slice(args);
    let config_text = path_text(&config);
    full_args.extend_from_slice(&["--bootstrap", bootstrap, "--command-config", &config_text]);
    riffle(&full_args)
}

/// Runs `command` (stdin closed) for at most `timeout`, echoing its output, and returns how it
/// ended; the caller checks the code (`None`: killed at the time-out).
///
/// # Panics
/// If the program cannot be started.
pub fn run_command(command: &mut Command, timeout: Duration) -> CliOutput {
    let finished = run_with_timeout(command, timeout);
    println!(
        "$ {command:?}\n{}{}{}",
        finished.stdout,
        finished.stderr,
        finished.describe_end(timeout)
    );
    CliOutput {
        code: finished.status.and_then(|status| status.code()),
        stdout: finished.stdout,
        stderr: finished.stderr,
    }
}

/// Runs the `riffle` binary with `args`, echoing the command and its output.
///
/// # Panics
/// If the binary cannot be started.
pub fn riffle(args: &[&str]) -> CliOutput {
    let mut command = Command::new(broker_binary());
    command.args(args);
    let finished = run_with_timeout(&mut command, CLI_TIMEOUT);
    println!(
        "$ riffle {}\n{}{}",
        args.join(" "),
        finished.stdout,
        finished.stderr
    );
    CliOutput {
        code: finished.status.and_then(|status| status.code()),
        stdout: finished.stdout,
        stderr: finished.stderr,
    }
}

/// Runs `integration-tests/python/<script>` against the listener `security` connects to, with
/// `security`'s options before `args`; returns its stdout.
///
/// # Panics
/// As [`run_python_at`].
pub fn run_secure_python(
    broker: &Broker,
    security: &ClientSecurity,
    script: &str,
    args: &[&str],
) -> String {
    let mut all_args = security.script_args();
    all_args.extend(args.iter().map(|arg| (*arg).to_owned()));
    let all_args: Vec<&str> = all_args.iter().map(String::as_str).collect();
    run_python_at(
        broker,
        &broker.bootstrap_for(security.listener()),
        script,
        &all_args,
    )
}

/// [`run_secure_python`] for `integration-tests/node/<script>`.
///
/// # Panics
/// As [`run_node_at`].
pub fn run_secure_node(
    broker: &Broker,
    security: &ClientSecurity,
    script: &str,
    args: &[&str],
) -> String {
    let mut all_args = security.script_args();
    all_args.extend(args.iter().map(|arg| (*arg).to_owned()));
    let all_args: Vec<&str> = all_args.iter().map(String::as_str).collect();
    run_node_at(
        broker,
        &broker.bootstrap_for(security.listener()),
        script,
        &all_args,
    )
}

/// `kcat -b <listener> -X name=value ...` for `security`, then `args`; returns how it ended.
///
/// # Panics
/// If kcat cannot be installed or started.
pub fn run_secure_kcat(broker: &Broker, security: &ClientSecurity, args: &[&str]) -> CliOutput {
    let mut all_args = vec![
        "-b".to_owned(),
        broker.bootstrap_for(security.listener()),
        // IPv4 only: the broker listens on 127.0.0.1.
        "-X".to_owned(),
        "broker.address.family=v4".to_owned(),
    ];
    for (name, value) in security.librdkafka_settings() {
        all_args.extend(["-X".to_owned(), format!("{name}={value}")]);
    }
    all_args.extend(args.iter().map(|arg| (*arg).to_owned()));
    let all_args: Vec<&str> = all_args.iter().map(String::as_str).collect();
    run_kcat(&all_args)
}

/// How a client connects: Kafka's `security.protocol` and what it needs.
#[derive(Debug, Clone)]
pub struct ClientSecurity {
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    pub protocol: &'static str,
    /// The SASL mechanism and credentials, for the SASL protocols.
    pub sasl: Option<SaslCredentials>,
    /// The CA file the client trusts, for the SSL protocols.
    pub ca_file: Option<PathBuf>,
    /// The client certificate it presents, if any.
    pub certificate: Option<ClientCertificate>,
}

/// A SASL mechanism with a user name and password.
#[derive(Debug, Clone)]
pub struct SaslCredentials {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl ClientSecurity {
    /// No TLS, no SASL.
    pub fn plaintext() -> ClientSecurity {
        ClientSecurity {
            protocol: "PLAINTEXT",
            sasl: None,
            ca_file: None,
            certificate: None,
        }
    }

    /// SASL over TLS, trusting `pki`'s CA.
    pub fn sasl_ssl(pki: &Pki, mechanism: &str, username: &str, password: &str) -> Self {
        ClientSecurity {
            protocol: "SASL_SSL",
            sasl: Some(SaslCredentials::new(mechanism, username, password)),
            ca_file: Some(pki.ca_file()),
            certificate: None,
        }
    }

    /// SASL without TLS.
    pub fn sasl_plaintext(mechanism: &str, username: &str, password: &str) -> Self {
        ClientSecurity {
            protocol: "SASL_PLAINTEXT",
            sasl: Some(SaslCredentials::new(mechanism, username, password)),
            ca_file: None,
            certificate: None,
        }
    }

    /// TLS trusting `pki`'s CA, presenting `certificate` if given.
    pub fn ssl(pki: &Pki, certificate: Option<&ClientCertificate>) -> Self {
        ClientSecurity {
            protocol: "SSL",
            sasl: None,
            ca_file: Some(pki.ca_file()),
            certificate: certificate.cloned(),
        }
    }

    /// The listener of [`ALL_LISTENERS`] this protocol connects to (they share names).
    pub fn listener(&self) -> &'static str {
        self.protocol
    }

    /// The options every test script (Python and Node) takes for this security:
    /// `--security-protocol`, and as needed `--sasl-mechanism`, `--username`, `--password`,
    /// `--ca-file`, `--cert-file`, `--key-file`.
    pub fn script_args(&self) -> Vec<String> {
        let mut args = vec!["--security-protocol".to_owned(), self.protocol.to_owned()];
        if let Some(sasl) = &self.sasl {
            args.extend([
                "--sasl-mechanism".to_owned(),
                sasl.mechanism.clone(),
                "--username".to_owned(),
                sasl.username.clone(),
                "--password".to_owned(),
                sasl.password.clone(),
            ]);
        }
        if let Some(ca_file) = &self.ca_file {
            args.extend(["--ca-file".to_owned(), path_text(ca_file)]);
        }
        if let Some(certificate) = &self.certificate {
            args.extend([
                "--cert-file".to_owned(),
                path_text(&certificate.certificate_file),
                "--key-file".to_owned(),
                path_text(&certificate.key_file),
            ]);
        }
        args
    }

    /// The same settings under librdkafka's names (`security.protocol`, `sasl.mechanisms`,
    /// `sasl.username`, `sasl.password`, `ssl.ca.location`, `ssl.certificate.location`,
    /// `ssl.key.location`), for kcat's `-X` and for `--command-config` files.
    pub fn librdkafka_settings(&self) -> Vec<(String, String)> {
        let mut settings = vec![("security.protocol".to_owned(), self.protocol.to_owned())];
        if let Some(sasl) = &self.sasl {
            settings.extend([
                ("sasl.mechanisms".to_owned(), sasl.mechanism.clone()),
                ("sasl.username".to_owned(), sasl.username.clone()),
                ("sasl.password".to_owned(), sasl.password.clone()),
            ]);
        }
        if let Some(ca_file) = &self.ca_file {
            settings.push(("ssl.ca.location".to_owned(), path_text(ca_file)));
        }
        if let Some(certificate) = &self.certificate {
            settings.extend([
                (
                    "ssl.certificate.location".to_owned(),
                    path_text(&certificate.certificate_file),
                ),
                (
                    "ssl.key.location".to_owned(),
                    path_text(&certificate.key_file),
                ),
            ]);
        }
        settings
    }

    /// A `--command-config` file's text: one `name=value` line per librdkafka setting.
    pub fn properties(&self) -> String {
        self.librdkafka_settings()
            .iter()
            .map(|(name, value)| format!("{name}={value}\n"))
            .collect()
    }
}

impl User<'_> {
    /// SASL_SSL with this user's own mechanism, trusting `pki`'s CA.
    pub fn over_sasl_ssl(&self, pki: &Pki) -> ClientSecurity {
        ClientSecurity::sasl_ssl(pki, self.mechanism, self.name, self.password)
    }

    /// SASL_PLAINTEXT with `mechanism` (`PLAIN`, or this user's SCRAM mechanism).
    pub fn over_sasl_plaintext(&self, mechanism: &str) -> ClientSecurity {
        ClientSecurity::sasl_plaintext(mechanism, self.name, self.password)
    }
}

impl SaslCredentials {
    fn new(mechanism: &str, username: &str, password: &str) -> SaslCredentials {
        SaslCredentials {
            mechanism: mechanism.to_owned(),
            username: username.to_owned(),
            password: password.to_owned(),
        }
    }
}

/// A path as UTF-8 text for a command line; test paths always are.
fn path_text(path: &Path) -> String {
    path.to_str()
        .unwrap_or_else(|| panic!("{} is not UTF-8", path.display()))
        .to_owned()
}

fn write_file(path: &Path, contents: &str) {
    fs::write(path, contents)
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_verify_against_the_ca_with_openssl() {
        // Proves the generated chain is what TLS stacks accept: OpenSSL verifies the server
        // certificate for 127.0.0.1 and the client certificate for client use, and prints
        // the client's subject in RFC 2253 order as `CN=client,O=Riffle`.
        let pki = Pki::generate();
        let client = pki.client_certificate("client", &[("O", "Riffle"), ("CN", "client")]);
        let ca = path_text(&pki.ca_file());
        let server = path_text(&pki.server_certificate_file());
        let client_file = path_text(&client.certificate_file);
        let checks: [&[&str]; 3] = [
            &[
                "verify",
                "-CAfile",
                &ca,
                "-purpose",
                "sslserver",
                "-verify_ip",
                "127.0.0.1",
                &server,
            ],
            &[
                "verify",
                "-CAfile",
                &ca,
                "-purpose",
                "sslclient",
                &client_file,
            ],
            &[
                "x509",
                "-noout",
                "-subject",
                "-nameopt",
                "RFC2253",
                "-in",
                &client_file,
            ],
        ];
        let mut outputs = Vec::new();
        for args in checks {
            let mut command = Command::new("openssl");
            command.args(args);
            let finished = run_with_timeout(&mut command, CLI_TIMEOUT);
            assert!(
                finished.succeeded(),
                "openssl {args:?}: {}{}",
                finished.stdout,
                finished.stderr
            );
            outputs.push(finished.stdout);
        }
        assert_eq!(outputs[2].trim(), "subject=CN=client,O=Riffle");
        let key = fs::read_to_string(&client.key_file).expect("key file");
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
    }

    #[test]
    fn client_settings_name_everything_the_protocol_needs() {
        // Proves SASL_SSL settings carry the mechanism, credentials and CA, in both the
        // scripts' option form and librdkafka's property form.
        let pki = Pki::generate();
        let security = ClientSecurity::sasl_ssl(&pki, "SCRAM-SHA-512", "alice", "s3cret");
        let args = security.script_args().join(" ");
        assert!(
            args.starts_with(
                "--security-protocol SASL_SSL --sasl-mechanism SCRAM-SHA-512 --username alice \
                 --password s3cret --ca-file "
            ),
            "{args}"
        );
        let properties = security.properties();
        assert!(
            properties.starts_with(
                "security.protocol=SASL_SSL\nsasl.mechanisms=SCRAM-SHA-512\n\
                 sasl.username=alice\nsasl.password=s3cret\nssl.ca.location="
            ),
            "{properties}"
        );
        assert_eq!(ClientSecurity::plaintext().script_args().len(), 2);
    }
}
