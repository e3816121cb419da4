//! Scenario 9: durable produce over SASL_SSL against PLAINTEXT, on one broker, in the
//! same run.
//!
//! riffle-bench starts a broker of its own with a PLAINTEXT and a SASL_SSL listener. Its
//! CA and server certificate are made here ([`write_certificates`]) in a temp directory,
//! so no private key is ever committed, and its SCRAM-SHA-512 user is added with
//! `riffle users add` before the start. Each round produces scenario 1's shape once per
//! protocol, back to back with the order alternating ([`rounds::run_paired`]), each run to
//! a topic of its own. Before each run a fresh producer times its connection set-up.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

use crate::broker_process::{BrokerProcess, ProcUsage, find_riffle_binary};
use crate::disk;
use crate::produce::{self, ConnectionSetup, ProduceSpec, Throughput};
use crate::report::{self, Scenario, TargetCheck};
use crate::rounds::{self, RoundPair};
use crate::topic::{self, Security};

/// The target: produce over SASL_SSL reaches this share of PLAINTEXT's rate,
/// measured in the same run.
pub const TARGET_RATIO: f64 = 0.70;

/// The report's title for this scenario.
pub const TITLE: &str = "9. Produce over SASL_SSL against PLAINTEXT, 100 B, 1 partition, acks=all";

/// The SCRAM user the SASL_SSL producers log in as.
const USER: &str = "riffle-bench";

#[derive(clap::Args, Debug, Clone)]
pub struct TlsArgs {
    /// The riffle binary; default: next to riffle-bench in target/<profile>/.
    #[arg(long)]
    pub riffle_bin: Option<PathBuf>,
    /// Messages per protocol and round (scenario 1's 2,000,000 values of 100 B).
    #[arg(long, default_value_t = 2_000_000)]
    pub messages: u64,
    /// Rounds, each producing over both protocols; the figures are their medians.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
}

pub fn run_cli(args: TlsArgs) -> Result<()> {
    let binary = find_riffle_binary(args.riffle_bin.as_deref())?;
    let spec = ProduceSpec::scenario_1(format!("bench-tls-{}", topic::run_suffix()), args.messages);
    let scenario = run(&binary, &spec, args.rounds)?;
    print!("{}", report::scenario_markdown(&scenario));
    for target in &scenario.targets {
        let verdict = if target.met { "PASS" } else { "FAIL" };
        println!("{verdict}: {} (measured {})", target.what, target.measured);
    }
    Ok(())
}

/// Starts the broker, runs `rounds` rounds of `spec` over both protocols and stops it;
/// returns the report's section.
pub fn run(binary: &Path, spec: &ProduceSpec, rounds: u32) -> Result<Scenario> {
    let broker = SecuredBroker::start(binary)?;
    let measured = measure(&broker, spec, rounds)?;
    let batch_note = stored_batches_note(&broker, spec, rounds)?;
    broker.stop()?;
    let mut scenario = scenario(spec, &measured)?;
    scenario.notes.push(batch_note);
    Ok(scenario)
}

/// A broker with a PLAINTEXT and a SASL_SSL listener, and the files it runs on.
struct SecuredBroker {
    /// Declared before the directories, so a broker left running is killed before they
    /// are removed.
    process: BrokerProcess,
    plaintext_bootstrap: String,
    sasl_ssl_bootstrap: String,
    /// What a SASL_SSL producer sets: the user, its password and the CA to trust.
    sasl_ssl: Security,
    data_dir: TempDir,
    /// The certificates, the server's key and the password file.
    _files: TempDir,
}

impl SecuredBroker {
    fn start(binary: &Path) -> Result<Self> {
        let files = tempfile::Builder::new()
            .prefix("riffle-bench-tls-")
            .tempdir()
            .context("cannot create a directory for the certificates")?;
        let certificates = write_certificates(files.path())?;
        // Unique per run; it guards a loopback broker that lives as long as this run.
        let password = format!("bench-{}-{}", std::process::id(), topic::run_suffix());
        let data_dir = tempfile::tempdir().context("cannot create a data directory")?;
        add_user(binary, data_dir.path(), files.path(), &password)?;
        let extra_args = [
            "--ssl-certificate".to_string(),
            path_text(&certificates.certificate_file)?,
            "--ssl-key".to_string(),
            path_text(&certificates.key_file)?,
            "--sasl-enabled-mechanisms".to_string(),
            "SCRAM-SHA-512".to_string(),
        ];
        let process = BrokerProcess::start_with_listeners(
            binary,
            data_dir.path(),
            &["PLAINTEXT", "SASL_SSL"],
            &extra_args,
        )?;
        let plaintext_bootstrap = process.listener("PLAINTEXT")?.to_string();
        let sasl_ssl_bootstrap = process.listener("SASL_SSL")?.to_string();
        let sasl_ssl =
            Security::sasl_ssl_scram_sha_512(USER, &password, &path_text(&certificates.ca_file)?);
        Ok(Self {
            process,
            plaintext_bootstrap,
            sasl_ssl_bootstrap,
            sasl_ssl,
            data_dir,
            _files: files,
        })
    }

    fn stop(self) -> Result<()> {
        self.process
            .stop()
            .context("the TLS scenario's broker did not stop cleanly")
    }
}

/// The PEM files of a CA and of the server certificate it signed.
struct Certificates {
    ca_file: PathBuf,
    certificate_file: PathBuf,
    key_file: PathBuf,
}

/// Makes a CA and a server certificate for `localhost` and `127.0.0.1` (librdkafka checks
/// the host name it connects to), ECDSA P-256 keys, and writes them into `dir`.
fn write_certificates(dir: &Path) -> Result<Certificates> {
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "riffle-bench CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().context("cannot generate the CA key")?;
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).context("cannot sign the CA")?;

    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".into()])
        .context("invalid server names")?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().context("cannot generate the server key")?;
    let certificate = params
        .signed_by(&key, &ca)
        .context("cannot sign the server certificate")?;

    let files = Certificates {
        ca_file: dir.join("ca.pem"),
        certificate_file: dir.join("server.pem"),
        key_file: dir.join("server.key"),
    };
    write_file(&files.ca_file, &ca.pem())?;
    write_file(&files.certificate_file, &certificate.pem())?;
    write_file(&files.key_file, &key.serialize_pem())?;
    Ok(files)
}

/// `riffle users add USER --mechanism SCRAM-SHA-512` on the not yet started broker's data
/// directory, the password passed in a file in `files_dir`.
fn add_user(binary: &Path, data_dir: &Path, files_dir: &Path, password: &str) -> Result<()> {
    let password_file = files_dir.join("user.password");
    write_file(&password_file, &format!("{password}\n"))?;
    let output = Command::new(binary)
        .args(["users", "add", USER, "--mechanism", "SCRAM-SHA-512"])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--password-file")
        .arg(&password_file)
        .output()
        .with_context(|| format!("cannot run {} users add", binary.display()))?;
    if !output.status.success() {
        bail!(
            "riffle users add failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn path_text(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_string)
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// What one protocol's run in one round measured besides its throughput.
#[derive(Clone, Copy, Debug)]
struct SideRound {
    setup: ConnectionSetup,
    /// The broker's CPU and peak RSS over the run.
    broker: ProcUsage,
    /// riffle-bench's own CPU over the run: the producer, librdkafka and its OpenSSL.
    client_cpu_seconds: f64,
    run: Throughput,
}

impl SideRound {
    fn broker_cpu_s_per_gb(&self) -> f64 {
        self.broker.cpu_seconds / (self.run.value_bytes_total as f64 / 1e9)
    }

    fn client_cpu_s_per_gb(&self) -> f64 {
        self.client_cpu_seconds / (self.run.value_bytes_total as f64 / 1e9)
    }
}

/// Every round's pair (SASL_SSL as riffle's side, PLAINTEXT as the reference) and each
/// side's other figures, in round order.
struct Measured {
    pairs: Vec<RoundPair>,
    sasl_ssl: Vec<SideRound>,
    plaintext: Vec<SideRound>,
}

fn measure(broker: &SecuredBroker, spec: &ProduceSpec, rounds: u32) -> Result<Measured> {
    let mut sasl_ssl = Vec::new();
    let mut plaintext = Vec::new();
    let pairs = rounds::run_paired(
        rounds,
        |round| {
            let side = run_side(broker, spec, Protocol::SaslSsl, round)?;
            sasl_ssl.push(side);
            Ok((side.run, side.broker))
        },
        |round| {
            let side = run_side(broker, spec, Protocol::Plaintext, round)?;
            plaintext.push(side);
            Ok(side.run)
        },
    )?;
    Ok(Measured {
        pairs,
        sasl_ssl,
        plaintext,
    })
}

#[derive(Clone, Copy, Debug)]
enum Protocol {
    Plaintext,
    SaslSsl,
}

impl Protocol {
    /// The topic `spec`'s run over this protocol writes in `round`.
    fn topic(self, spec: &ProduceSpec, round: u32) -> String {
        let name = match self {
            Protocol::Plaintext => "plaintext",
            Protocol::SaslSsl => "sasl-ssl",
        };
        format!("{}-{name}-r{round}", spec.topic)
    }
}

/// One protocol's run in one round: a fresh topic (created over PLAINTEXT), the set-up
/// probe, then `spec`'s produce with the broker's and our own CPU measured over it.
fn run_side(
    broker: &SecuredBroker,
    spec: &ProduceSpec,
    protocol: Protocol,
    round: u32,
) -> Result<SideRound> {
    let (bootstrap, security) = match protocol {
        Protocol::Plaintext => (&broker.plaintext_bootstrap, Security::plaintext()),
        Protocol::SaslSsl => (&broker.sasl_ssl_bootstrap, broker.sasl_ssl.clone()),
    };
    let spec = ProduceSpec {
        topic: protocol.topic(spec, round),
        security,
        ..spec.clone()
    };
    topic::create_topic(&broker.plaintext_bootstrap, &spec.topic, spec.partitions)?;
    let setup = produce::connection_setup(bootstrap, &spec).context("connection set-up")?;
    let client_before = ProcUsage::read(std::process::id())?;
    let (run, usage) = broker
        .process
        .usage_over(|| produce::run(bootstrap, &spec))?;
    let client_after = ProcUsage::read(std::process::id())?;
    Ok(SideRound {
        setup,
        broker: usage,
        client_cpu_seconds: client_after.cpu_seconds - client_before.cpu_seconds,
        run,
    })
}

/// The report's section: both protocols' median rows, the ratio's target, the set-up
/// times in each row's note, and notes with every round and the client's CPU.
fn scenario(spec: &ProduceSpec, measured: &Measured) -> Result<Scenario> {
    let [mut sasl_ssl_row, mut plaintext_row] =
        rounds::median_rows(&measured.pairs).context("no rounds were run")?;
    sasl_ssl_row.run = "riffle, SASL_SSL (SCRAM-SHA-512)".into();
    sasl_ssl_row.note = setup_note(&measured.sasl_ssl);
    plaintext_row.run = "riffle, PLAINTEXT (reference)".into();
    plaintext_row.cpu_s_per_gb = median_of(&measured.plaintext, SideRound::broker_cpu_s_per_gb);
    plaintext_row.peak_rss_mb = measured
        .plaintext
        .iter()
        .map(|side| side.broker.peak_rss_bytes)
        .max()
        .map(|bytes| bytes as f64 / 1e6);
    plaintext_row.note = setup_note(&measured.plaintext);
    let ratio = sasl_ssl_row.ratio_to_ceiling.unwrap_or(0.0);
    Ok(Scenario {
        title: TITLE.into(),
        shape: format!(
            "{} messages of {} B values to {} partition, {} producer, acks=all, linger.ms={} \
             (scenario 1's shape), over each of two listeners of a broker started for this \
             scenario: PLAINTEXT, and SASL_SSL with a CA and server certificate made at run \
             time (ECDSA P-256) and a SCRAM-SHA-512 user added with `riffle users add` before \
             the start. Each round runs both protocols back to back, the order alternating, \
             each to a fresh topic.",
            spec.messages, spec.value_bytes, spec.partitions, spec.producers, spec.linger_ms
        ),
        ratio_header: Some("vs PLAINTEXT".into()),
        rows: vec![sasl_ssl_row, plaintext_row],
        targets: vec![TargetCheck {
            what: format!(">= {:.0}% of PLAINTEXT", TARGET_RATIO * 100.0),
            measured: format!("{:.0}%", ratio * 100.0),
            met: ratio >= TARGET_RATIO,
        }],
        notes: notes(measured),
    })
}

/// "set-up: Metadata 12 ms, first ack 25 ms", medians over the rounds.
fn setup_note(sides: &[SideRound]) -> String {
    let metadata = median_of(sides, |side| side.setup.metadata.as_secs_f64() * 1000.0);
    let first_ack = median_of(sides, |side| side.setup.first_ack.as_secs_f64() * 1000.0);
    format!(
        "set-up: Metadata {:.1} ms, first ack {:.1} ms",
        metadata.unwrap_or(f64::NAN),
        first_ack.unwrap_or(f64::NAN)
    )
}

fn notes(measured: &Measured) -> Vec<String> {
    let mut notes = Vec::new();
    // As rounds::rounds_note: a single round's figures are the table's.
    if measured.pairs.len() > 1 {
        let listed: Vec<String> = measured
            .pairs
            .iter()
            .zip(&measured.plaintext)
            .map(|(pair, plaintext)| {
                format!(
                    "{:.0}% {:.2}/{:.2}",
                    pair.ratio_to_ceiling() * 100.0,
                    pair.cpu_s_per_gb(),
                    plaintext.broker_cpu_s_per_gb()
                )
            })
            .collect();
        notes.push(format!(
            "Rounds (SASL_SSL vs PLAINTEXT, broker CPU-s/GB SASL_SSL/PLAINTEXT): {}; medians \
             shown.",
            listed.join(", ")
        ));
    }
    notes.push(format!(
        "riffle-bench's own CPU per GB (the producer, librdkafka and its OpenSSL; it shares the \
         machine with the broker), median: SASL_SSL {:.2}, PLAINTEXT {:.2}.",
        median_of(&measured.sasl_ssl, SideRound::client_cpu_s_per_gb).unwrap_or(f64::NAN),
        median_of(&measured.plaintext, SideRound::client_cpu_s_per_gb).unwrap_or(f64::NAN)
    ));
    notes.push(
        "Set-up (the note column, medians): a fresh producer before each run, timed from its \
         creation to its first Metadata answer (over SASL_SSL: the TLS handshake and the SCRAM \
         exchange first) and to its first acknowledged record (acks=all, so one fsync), not \
         part of the throughput run. librdkafka produces on a second connection, to the \
         partition leader named in Metadata, which does its own handshake and login."
            .into(),
    );
    notes
}

/// The broker's average stored batch per protocol over the rounds' topics, read from its
/// log files after the rounds: a client that sends smaller batches does more work per byte.
fn stored_batches_note(broker: &SecuredBroker, spec: &ProduceSpec, rounds: u32) -> Result<String> {
    let average_kb = |protocol: Protocol| -> Result<f64> {
        let mut per_round_bytes = Vec::new();
        for round in 0..rounds {
            let topic = protocol.topic(spec, round);
            if let Some(bytes) = disk::average_batch_bytes(broker.data_dir.path(), &topic)? {
                per_round_bytes.push(bytes as f64 / 1e3);
            }
        }
        Ok(rounds::median(&per_round_bytes).unwrap_or(f64::NAN))
    };
    Ok(format!(
        "Average stored batch (median over the rounds' topics, read from the broker's log \
         files after the rounds): SASL_SSL {:.0} kB, PLAINTEXT {:.0} kB.",
        average_kb(Protocol::SaslSsl)?,
        average_kb(Protocol::Plaintext)?
    ))
}

fn median_of(sides: &[SideRound], figure: impl Fn(&SideRound) -> f64) -> Option<f64> {
    rounds::median(&sides.iter().map(figure).collect::<Vec<_>>())
}
