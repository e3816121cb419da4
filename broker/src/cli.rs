//! The `riffle` command line: `riffle serve` and its flags; the client commands `topics`,
//! `produce`, `consume`, `groups`, `acls` and `cluster` (each in its `*_command` module,
//! sharing `cli_support`); and the offline `users` and `check`.

use std::fmt;
use std::future::Future;
use std::io::{self, IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio::task::JoinError;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

use crate::cluster::{Cluster, ClusterOpenError};
use crate::config::BrokerConfig;
use crate::http::HttpServer;
use crate::listener::{self, BindError, BoundListener};

/// Riffle: a Kafka-compatible log broker (`riffle serve`) and a command line for it and for
/// any Kafka-compatible cluster (`--bootstrap HOST:PORT`).
#[derive(Debug, Parser)]
#[command(
    name = "riffle",
    version,
    about = "Riffle: a Kafka-compatible broker, and a command line for any Kafka-compatible \
             cluster",
    after_help = "Start a broker with `riffle serve --data-dir DIR`, then: riffle topics \
                  create orders --partitions 3; echo hello | riffle produce orders; riffle \
                  consume orders --from-beginning. Client commands connect to --bootstrap \
                  HOST:PORT (default 127.0.0.1:9092) and read security settings from \
                  --command-config FILE (Kafka client properties)."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker: serve Kafka clients from a data directory.
    // Boxed: the settings are far larger than the other variants.
    Serve(Box<BrokerConfig>),
    /// List, describe, create or delete topics, or change their configs.
    Topics(crate::topics_command::TopicsArgs),
    /// Write records to a topic: one per line of standard input.
    Produce(crate::produce_command::ProduceArgs),
    /// Print a topic's records, from the end, the beginning, an offset or a time.
    Consume(crate::consume_command::ConsumeArgs),
    /// List consumer groups, or describe one's offsets, lag and members.
    Groups(crate::groups_command::GroupsArgs),
    /// Add, list or remove ACLs on a running broker, with kafka-acls's options.
    #[command(
        long_about = "Add, list or remove ACLs on a running broker (CreateAcls, DescribeAcls, \
                      DeleteAcls), with the options of Kafka's kafka-acls.sh. Connect with \
                      --bootstrap HOST:PORT and, for TLS or SASL listeners, --command-config \
                      FILE (a Kafka client properties file). Changing ACLs needs Alter on the \
                      cluster, listing them Describe."
    )]
    Acls(crate::acls_command::AclsArgs),
    /// Add, list or remove SCRAM users in a stopped broker's data directory.
    Users(crate::users_command::UsersArgs),
    /// Show the cluster id, the brokers and the API versions they speak.
    Cluster(crate::cluster_command::ClusterArgs),
    /// Verify a stopped broker's data directory offline: batch CRCs, offsets and indexes.
    #[command(
        long_about = "Verify a stopped broker's data directory offline, as kafka-dump-log \
                      --verify and log recovery do: every batch's framing, CRC-32C and \
                      offsets, the offset, time and transaction indexes, producer snapshots \
                      and checkpoints. Changes nothing unless --repair is given. Exit codes: \
                      0 clean, 1 problems found (or left after --repair), 2 could not check \
                      (e.g. the broker is running), 3 every problem repaired."
    )]
    Check(crate::check_command::CheckArgs),
}

/// Entry point of the `riffle` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(config) => serve(*config),
        Command::Topics(args) => crate::topics_command::run(args),
        Command::Produce(args) => crate::produce_command::run(args),
        Command::Consume(args) => crate::consume_command::run(args),
        Command::Groups(args) => crate::groups_command::run(args),
        Command::Acls(args) => crate::acls_command::run(args),
        Command::Users(args) => crate::users_command::run(args),
        Command::Cluster(args) => crate::cluster_command::run(args),
        Command::Check(args) => crate::check_command::run(args),
    }
}

fn serve(config: BrokerConfig) -> ExitCode {
    let (config, file_report) = match crate::config_file::serve_config(config) {
        Ok(with_file) => with_file,
        Err(error) => {
            eprintln!("riffle: {error}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(&config.log_level);
    if let Some(report) = file_report {
        report.log();
    }
    block_on(run(config))
}

/// Sends tracing output to stderr with `log_level` as the filter. Does nothing if the host
/// program installed a subscriber already, so embedding programs keep their own.
pub fn init_logging(log_level: &str) {
    let filter = EnvFilter::try_new(log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Runs `future` on a new multi-threaded tokio runtime (the handlers use `block_in_place`,
/// which needs one) and turns its outcome into the process exit code, reporting an error
/// on stderr and in the log.
pub fn block_on<E: fmt::Display>(future: impl Future<Output = Result<(), E>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("riffle: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(future) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            error!("{error}");
            eprintln!("riffle: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: BrokerConfig) -> Result<(), ServeError> {
    let opened = open(config).await?;
    // Listen for SIGTERM before announcing the address: a supervisor may signal as soon
    // as it reads the first line, and the default action would kill us uncleanly.
    let stop = stop_signal().map_err(ServeError::StopSignal)?;
    // Ready before the listening lines: whoever reads them may probe /readyz at once.
    opened.mark_serving();
    announce(&opened);
    opened.serve(stop).await;
    Ok(())
}

/// Why `riffle serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The broker could not start.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The SIGTERM handler could not be installed.
    #[error("cannot listen for SIGTERM: {0}")]
    StopSignal(#[source] io::Error),
}

/// Why [`open`] failed; the message names the flag, address, file or directory at fault.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A listener could not be set up or bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The flags name no listener.
    #[error("no listener to serve on")]
    NoListener,
    /// Opening the data directory panicked: a bug, reported as one.
    #[error("start-up panicked: {0}")]
    Panicked(#[source] JoinError),
    /// The data directory could not be opened or recovered.
    #[error("cannot open the data directory: {0}")]
    DataDir(#[source] ClusterOpenError),
}

/// A broker bound to its addresses with its data directory open, not serving yet.
pub struct OpenedBroker {
    /// The bound listeners, in the order of `--listeners`, handed to
    /// [`crate::server::run`].
    pub listeners: Vec<BoundListener>,
    /// The first listener's address (the real port when asked for port 0).
    pub bound: SocketAddr,
    /// The topics, logs and group coordinator.
    pub cluster: Arc<Cluster>,
    /// The HTTP listener (metrics and health), unless `--http-listen none`; serving since
    /// before the data directory opened. Dropping it stops it.
    pub http: Option<HttpServer>,
}

impl OpenedBroker {
    /// Marks the broker ready on its HTTP listener (`/readyz` answers 200): call it as the
    /// Kafka listeners are handed to [`crate::server::run`]. Their sockets are bound, so a
    /// client that connects from now on is queued until the accept loops start.
    pub fn mark_serving(&self) {
        if let Some(http) = &self.http {
            http.set_serving(true);
        }
    }

    /// Every Kafka listener's name and bound address, in the order of `--listeners`.
    pub fn listener_addresses(&self) -> Vec<(String, SocketAddr)> {
        let address = |bound: &BoundListener| (bound.listener.name.clone(), bound.local_address);
        self.listeners.iter().map(address).collect()
    }

    /// The HTTP listener's bound address, unless `--http-listen none`.
    pub fn http_address(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(HttpServer::local_address)
    }

    /// Serves clients until `stop`; then marks the broker not ready on the HTTP listener
    /// (shutdown begins and connections drain), and stops that listener last, once the
    /// server has stopped.
    pub async fn serve(self, stop: impl Future<Output = ()>) {
        let OpenedBroker {
            listeners,
            cluster,
            http,
            ..
        } = self;
        let stop = async {
            stop.await;
            if let Some(http) = &http {
                http.set_serving(false);
            }
        };
        crate::server::run(listeners, cluster, stop).await;
    }
}

/// Binds every listener (reading the TLS files they need) and opens the data directory
/// (recovering it if needed).
///
/// # Errors
/// An [`OpenError`] naming the flag, address, file or directory that failed.
pub async fn open(config: BrokerConfig) -> Result<OpenedBroker, OpenError> {
    let listeners = listener::bind(&config).await?;
    // Serving at once: /healthz answers through a long recovery below.
    let http = listener::bind_http(&config)
        .await?
        .map(|(socket, address)| HttpServer::start(socket, address));
    let first = listeners.first().ok_or(OpenError::NoListener)?;
    let bound = first.local_address;
    // Requests the broker makes of itself report the first listener.
    let advertised = (
        first.listener.advertised_host.clone(),
        first.listener.advertised_port,
    );
    let cluster = tokio::task::spawn_blocking(move || Cluster::open(config, advertised))
        .await
        .map_err(OpenError::Panicked)?
        .map_err(OpenError::DataDir)?;
    let cluster = Arc::new(cluster);
    crate::metrics::scrape::register(&cluster);
    if let Some(http) = &http {
        http.cluster_opened(&cluster);
    }
    Ok(OpenedBroker {
        listeners,
        bound,
        cluster,
        http,
    })
}

/// Logs the start and prints the listening lines, the contract tests and scripts rely on:
///
/// ```text
/// riffle listening on 127.0.0.1:9092             the first listener's bound address
/// riffle listening on PLAINTEXT://127.0.0.1:9092  then one line per listener, in order:
/// riffle listening on SASL_SSL://127.0.0.1:9093   NAME://bound address
/// riffle http listening on 127.0.0.1:9644         the HTTP listener, unless --http-listen none
/// ```
pub fn announce(opened: &OpenedBroker) {
    let cluster = &opened.cluster;
    let bound = opened.bound;
    info!(%bound, cluster_id = %cluster.cluster_id, node_id = cluster.node_id, "riffle started");
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "riffle listening on {bound}");
    for listener in &opened.listeners {
        let name = &listener.listener.name;
        info!(listener = %name, protocol = %listener.listener.protocol, address = %listener.local_address, "listening");
        let _ = writeln!(
            stdout,
            "riffle listening on {name}://{}",
            listener.local_address
        );
    }
    if let Some(http) = &opened.http {
        let address = http.local_address();
        info!(%address, "http listening (/metrics, /healthz, /readyz)");
        let _ = writeln!(stdout, "riffle http listening on {address}");
    }
    let _ = stdout.flush();
}

/// Installs the Ctrl-C and SIGTERM handlers now, and returns a future that resolves on
/// either.
///
/// # Errors
/// When the SIGTERM handler cannot be installed.
pub fn stop_signal() -> io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        #[cfg(unix)]
        let terminate = terminate.recv();
        #[cfg(not(unix))]
        let terminate = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate => {}
        }
    })
}
