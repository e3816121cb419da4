//! The `riffle` command line: `riffle serve` and its flags, and `riffle groups`.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

use crate::cluster::Cluster;
use crate::config::BrokerConfig;

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
    /// Run the broker.
    Serve(BrokerConfig),
    /// List consumer groups, or describe one's offsets, lag and members.
    Groups(crate::groups_command::GroupsArgs),
}

/// Entry point of the `riffle` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(config) => serve(config),
        Command::Groups(args) => crate::groups_command::run(args),
    }
}

fn serve(config: BrokerConfig) -> ExitCode {
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
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
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            error!("{message}");
            eprintln!("riffle: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: BrokerConfig) -> Result<(), String> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", config.listen))?;
    let bound = listener
        .local_addr()
        .map_err(|error| format!("cannot read the bound address: {error}"))?;
    let advertised = advertised_address(&config, bound)?;
    let cluster = tokio::task::spawn_blocking(move || Cluster::open(config, advertised))
        .await
        .map_err(|error| format!("start-up panicked: {error}"))?
        .map_err(|error| format!("cannot open the data directory: {error}"))?;
    let cluster = Arc::new(cluster);
    // Listen for SIGTERM before announcing the address: a supervisor may signal as soon
    // as it reads the first line, and the default action would kill us uncleanly.
    let stop = stop_signal().map_err(|error| format!("cannot listen for SIGTERM: {error}"))?;
    info!(%bound, cluster_id = %cluster.cluster_id, node_id = cluster.node_id, "riffle started");
    // The first line of stdout is the contract tests and scripts rely on.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "riffle listening on {bound}");
    let _ = stdout.flush();
    crate::server::run(listener, cluster, stop).await;
    Ok(())
}

/// `--advertise` if given, else the bound address (with a loopback host when bound to
/// all interfaces, since 0.0.0.0 is not an address a client can reach).
fn advertised_address(config: &BrokerConfig, bound: SocketAddr) -> Result<(String, i32), String> {
    let Some(advertise) = &config.advertise else {
        let host = if bound.ip().is_unspecified() {
            warn!(
                "listening on all interfaces; advertising 127.0.0.1 (set --advertise for remote clients)"
            );
            "127.0.0.1".to_string()
        } else {
            bound.ip().to_string()
        };
        return Ok((host, i32::from(bound.port())));
    };
    let (host, port) = advertise
        .rsplit_once(':')
        .ok_or_else(|| format!("--advertise '{advertise}' must be HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("--advertise '{advertise}' has an invalid port"))?;
    Ok((host.trim_matches(['[', ']']).to_string(), i32::from(port)))
}

/// Installs the Ctrl-C and SIGTERM handlers now, and returns a future that resolves on
/// either.
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
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
