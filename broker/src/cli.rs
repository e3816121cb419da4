//! The `riffle` command line: `riffle serve` and its flags, `riffle groups`, `riffle acls`,
//! `riffle users` and `riffle check`.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

use crate::cluster::Cluster;
use crate::config::BrokerConfig;
use crate::listener::{self, BoundListener};

/// Riffle: a Kafka-compatible log broker.
#[derive(Debug, Parser)]
#[command(name = "riffle", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker. Boxed: the settings are far larger than the other variant.
    Serve(Box<BrokerConfig>),
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
        Command::Groups(args) => crate::groups_command::run(args),
        Command::Acls(args) => crate::acls_command::run(args),
        Command::Users(args) => crate::users_command::run(args),
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
pub fn block_on(future: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
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
        Err(message) => {
            error!("{message}");
            eprintln!("riffle: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: BrokerConfig) -> Result<(), String> {
    let opened = open(config).await?;
    // Listen for SIGTERM before announcing the address: a supervisor may signal as soon
    // as it reads the first line, and the default action would kill us uncleanly.
    let stop = stop_signal().map_err(|error| format!("cannot listen for SIGTERM: {error}"))?;
    announce(&opened);
    crate::server::run(opened.listeners, opened.cluster, stop).await;
    Ok(())
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
}

/// Binds every listener (reading the TLS files they need) and opens the data directory
/// (recovering it if needed).
///
/// # Errors
/// A message naming the flag, address, file or directory that failed.
pub async fn open(config: BrokerConfig) -> Result<OpenedBroker, String> {
    let listeners = listener::bind(&config).await?;
    let first = listeners
        .first()
        .ok_or_else(|| "no listener to serve on".to_string())?;
    let bound = first.local_address;
    // Requests the broker makes of itself report the first listener.
    let advertised = (
        first.listener.advertised_host.clone(),
        first.listener.advertised_port,
    );
    let cluster = tokio::task::spawn_blocking(move || Cluster::open(config, advertised))
        .await
        .map_err(|error| format!("start-up panicked: {error}"))?
        .map_err(|error| format!("cannot open the data directory: {error}"))?;
    Ok(OpenedBroker {
        listeners,
        bound,
        cluster: Arc::new(cluster),
    })
}

/// Logs the start and prints the listening lines, the contract tests and scripts rely on:
///
/// ```text
/// riffle listening on 127.0.0.1:9092             the first listener's bound address
/// riffle listening on PLAINTEXT://127.0.0.1:9092  then one line per listener, in order:
/// riffle listening on SASL_SSL://127.0.0.1:9093   NAME://bound address
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
    let _ = stdout.flush();
}

/// Installs the Ctrl-C and SIGTERM handlers now, and returns a future that resolves on
/// either.
///
/// # Errors
/// When the SIGTERM handler cannot be installed.
pub fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
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
