//! The `riffle` command line: `riffle serve` and its flags; the client commands `topics`,
//! `produce`, `consume`, `groups`, `acls`, `cluster` and `apps` (each in its `*_command` module,
//! sharing `cli_support`); and the offline `users` and `check`.

use std::fmt;
use std::future::Future;
use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use riffle_server::config::BrokerConfig;
use riffle_server::config_file::{self, ConfigFileError};
use riffle_server::startup::{self, OpenError};
use tracing::error;
use tracing_subscriber::EnvFilter;

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
    /// Stream-processing applications: diff a live output topic against its shadow's
    /// (safe upgrades).
    Apps(crate::apps_command::AppsArgs),
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
        Command::Apps(args) => crate::apps_command::run(args),
        Command::Check(args) => crate::check_command::run(args),
    }
}

fn serve(config: BrokerConfig) -> ExitCode {
    let (config, file_report) = match serve_config(config) {
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

/// `riffle serve`'s settings with `--config` applied: the process's arguments after
/// `serve` parsed again, with the file's settings under the flags and environment.
fn serve_config(
    parsed: BrokerConfig,
) -> Result<(BrokerConfig, Option<config_file::FileReport>), ConfigFileError> {
    if parsed.config.is_none() {
        return Ok((parsed, None));
    }
    let cli = Cli::command();
    let serve = cli
        .find_subcommand("serve")
        .ok_or_else(|| ConfigFileError::Command("no serve subcommand".into()))?;
    // `riffle` has no options of its own before the subcommand.
    let args = std::iter::once("riffle serve".into())
        .chain(std::env::args_os().skip_while(|arg| arg != "serve").skip(1))
        .collect();
    config_file::parse_serve(serve, args)
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
    let opened = startup::open(config).await?;
    // Listen for SIGTERM before announcing the address: a supervisor may signal as soon
    // as it reads the first line, and the default action would kill us uncleanly.
    let stop = stop_signal().map_err(ServeError::StopSignal)?;
    // Ready before the listening lines: whoever reads them may probe /readyz at once.
    opened.mark_serving();
    startup::announce(&opened);
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
