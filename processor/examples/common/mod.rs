//! The command line every example shares: the flags of `riffle serve`, plus `--remote`.
//!
//! Without `--remote`, the example is a broker with its topology running inside it
//! (`riffle_broker::embedded`): it prints `riffle listening on ADDR` first, serves Kafka
//! clients, and stops cleanly on Ctrl-C or SIGTERM. With `--remote HOST:PORT`, no broker is
//! started and the topology runs against that Kafka-compatible cluster over rdkafka.
//!
//! ```text
//! cargo run -p riffle-processor --example fraud_alerts -- --listen 127.0.0.1:9092 --data-dir /tmp/riffle
//! cargo run -p riffle-processor --example fraud_alerts -- --remote kafka-1:9092
//! ```
//!
//! A leading `serve` is accepted too, so scripts written for `riffle serve` start an
//! example unchanged.
//!
//! `--processing-guarantee exactly-once` runs the topology with Kafka Streams'
//! `exactly_once_v2` semantics (outputs, changelogs and offsets committed together in one
//! transaction every 100 ms; read the outputs with `isolation.level=read_committed`).
//! `--instance-id` names the instance for its transactional id; give each remote instance
//! its own, stable across restarts. `--state-dir` keeps a remote instance's stores on disk.
//! `--http-listen ADDR` given to a remote instance serves `/metrics`, `/healthz`, `/readyz`
//! and `/apps` (summary and state queries) there, as the broker does for co-located
//! topologies; without it a remote instance has no HTTP listener.
//!
//! `--shadow HOST:PORT` checks this build before it replaces the running one (safe
//! upgrades, `riffle_processor::upgrade`): it runs the topology as the shadow application
//! `<application>-shadow` over the retained input on that cluster, prints the diff of each
//! output topic against the live application's, deletes the shadow (unless
//! `--shadow-keep`) and exits: 0 when nothing differs, 1 when something does, 2 on error.
//! `--shadow-key-window` and `--shadow-value-format` say how keys and values are shown.

use std::process::ExitCode;

use std::net::SocketAddr;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use riffle_broker::config::{BrokerConfig, HttpListen};
use riffle_broker::embedded::{Broker, serve_http};
use riffle_processor::observe::RuntimeKind;
use riffle_processor::runtime::remote::remote_runner_with_settings;
use riffle_processor::runtime::{ProcessingGuarantee, RuntimeConfig};
use riffle_processor::upgrade::{DataFormat, KeyFormat, KeyWindow, OutputDiff, ShadowRun};
use riffle_processor::{Topology, TopologyError};

/// A Riffle broker running a stream-processing example.
#[derive(Debug, Parser)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(flatten)]
    args: ExampleArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The same flags, spelled like `riffle serve`.
    Serve(ExampleArgs),
}

#[derive(Debug, Args)]
struct ExampleArgs {
    #[command(flatten)]
    broker: BrokerConfig,
    /// Run the topology against this Kafka-compatible cluster (bootstrap servers) instead
    /// of starting a broker with the topology inside it.
    #[arg(long, env = "RIFFLE_REMOTE")]
    remote: Option<String>,
    /// `at-least-once`, or `exactly-once` (Kafka Streams' `exactly_once_v2`).
    #[arg(long, env = "RIFFLE_PROCESSING_GUARANTEE", default_value_t = ProcessingGuarantee::AtLeastOnce)]
    processing_guarantee: ProcessingGuarantee,
    /// This instance's name, stable across restarts and unique among the application's
    /// instances; under exactly-once its transactional id is `<application id>-<instance id>`
    /// (default: `node-<node id>` co-located, a random one per start with `--remote`).
    #[arg(long, env = "RIFFLE_INSTANCE_ID")]
    instance_id: Option<String>,
    /// With `--remote`: where persistent stores and checkpoints live (the instance keeps
    /// `<state-dir>/<application id>/`, locked against a second instance). Without it every
    /// store is in memory and restored from its whole changelog at each start. Co-located,
    /// state lives under `--data-dir`.
    #[arg(long, env = "RIFFLE_STATE_DIR")]
    state_dir: Option<std::path::PathBuf>,
    /// With `--remote` and `--state-dir`: warm copies of other instances' stores this
    /// instance keeps (Kafka Streams' `num.standby.replicas`), so taking over a task
    /// restores only the changelog's tail.
    #[arg(long, env = "RIFFLE_STANDBY_REPLICAS", default_value_t = 0)]
    standby_replicas: usize,
    /// With `--remote`: how long the group waits for an instance that stopped answering
    /// before its tasks move (the consumer's `session.timeout.ms`).
    #[arg(long, env = "RIFFLE_SESSION_TIMEOUT_MS", default_value_t = 45_000)]
    session_timeout_ms: u32,
    /// Run this build of the topology as a shadow of the live application on this cluster
    /// (over the retained input, under `<application>-shadow`), print how each output topic
    /// differs from the live one, and exit: 0 no differences, 1 differences, 2 error.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "remote")]
    shadow: Option<String>,
    /// With `--shadow`: the window in output keys (none, time, session), so keys show as
    /// key and window.
    #[arg(long, default_value = "none", value_name = "WINDOW")]
    shadow_key_window: KeyWindow,
    /// With `--shadow`: how output values are shown (string, i64, f64, json, hex); json
    /// values compare as JSON.
    #[arg(long, default_value = "string", value_name = "FORMAT")]
    shadow_value_format: DataFormat,
    /// With `--shadow`: keep the shadow's group and topics (for `riffle apps diff`); the
    /// next shadow run deletes them first anyway.
    #[arg(long)]
    shadow_keep: bool,
}

/// The `riffle` binary's allocator, as README "Running it" advises for embedding programs.
#[global_allocator]
static ALLOCATOR: riffle_broker::embedded::Jemalloc = riffle_broker::embedded::Jemalloc;

/// Parses the command line and runs `topology` embedded in a broker, or remotely with
/// `--remote`, until Ctrl-C or SIGTERM.
fn run(topology: Topology) -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let remote_http = remote_http_listen(&matches);
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        None => cli.args,
    };
    let config = RuntimeConfig {
        instance_id: args.instance_id,
        state_dir: args.state_dir,
        standby_replicas: args.standby_replicas,
        ..RuntimeConfig::for_guarantee(args.processing_guarantee)
    };
    if let Some(bootstrap) = &args.shadow {
        let key_format = KeyFormat {
            window: args.shadow_key_window,
            ..KeyFormat::default()
        };
        let check = ShadowCheck {
            key_format,
            value_format: args.shadow_value_format,
            keep: args.shadow_keep,
        };
        return run_shadow(topology, bootstrap, config, check, &args.broker.log_level);
    }
    match args.remote {
        None => Broker::builder(args.broker)
            .processor_with(topology, config)
            .run(),
        Some(bootstrap) => {
            let log_level = &args.broker.log_level;
            let http_listen = remote_http.then_some(args.broker.http_listen);
            let http_listen = match http_listen {
                Some(HttpListen::Address(address)) => Some(address),
                Some(HttpListen::Disabled) | None => None,
            };
            let session_timeout_ms = args.session_timeout_ms;
            let remote = RemoteOptions {
                http_listen,
                session_timeout_ms,
            };
            run_remote(topology, &bootstrap, config, remote, log_level)
        }
    }
}

/// Whether `--http-listen` (or `RIFFLE_HTTP_LISTEN`) was given: a remote instance serves
/// HTTP only then, as its default address is the broker's.
fn remote_http_listen(matches: &ArgMatches) -> bool {
    let args = matches.subcommand_matches("serve").unwrap_or(matches);
    matches!(
        args.value_source("http_listen"),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// Runs the topology `example` built, as [`run`] does; if it did not build, says so on
/// stderr and fails.
pub fn run_built(example: &str, topology: Result<Topology, TopologyError>) -> ExitCode {
    match topology {
        Ok(topology) => run(topology),
        Err(error) => {
            eprintln!("{example}: the topology does not build: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the topology against `bootstrap`, with the HTTP listener on `http_listen` if
/// given; prints `riffle http listening on ADDR` once it is bound, as the broker does.
/// What only a remote instance takes.
struct RemoteOptions {
    http_listen: Option<SocketAddr>,
    session_timeout_ms: u32,
}

fn run_remote(
    topology: Topology,
    bootstrap: &str,
    config: RuntimeConfig,
    remote: RemoteOptions,
    log_level: &str,
) -> ExitCode {
    let RemoteOptions {
        http_listen,
        session_timeout_ms,
    } = remote;
    riffle_broker::cli::init_logging(log_level);
    riffle_broker::cli::block_on(async {
        let stop = riffle_broker::cli::stop_signal()
            .map_err(|error| format!("cannot listen for SIGTERM: {error}"))?;
        let session_timeout_ms = session_timeout_ms.to_string();
        let settings = [("session.timeout.ms", session_timeout_ms.as_str())];
        let runner = remote_runner_with_settings(topology, bootstrap, config, &settings)
            .map_err(|error| error.to_string())?;
        // Kept until the runner stops: dropping the server stops the listener.
        let _http = match http_listen {
            Some(address) => {
                let apps = vec![runner.app_handle(RuntimeKind::Remote)];
                let server = serve_http(address, apps).await.map_err(|error| {
                    format!("cannot listen for HTTP (--http-listen) on {address}: {error}")
                })?;
                println!("riffle http listening on {}", server.local_address());
                Some(server)
            }
            None => None,
        };
        runner
            .run_until(stop)
            .await
            .map_err(|error| error.to_string())
    })
}

/// How `--shadow` shows and keeps what it compared.
struct ShadowCheck {
    key_format: KeyFormat,
    value_format: DataFormat,
    keep: bool,
}

/// `--shadow`: runs the topology as a shadow of the live application on `bootstrap`, prints
/// each output topic's diff, and exits 0 (no differences), 1 (differences) or 2 (error, or
/// stopped by Ctrl-C or SIGTERM before the end).
fn run_shadow(
    topology: Topology,
    bootstrap: &str,
    config: RuntimeConfig,
    check: ShadowCheck,
    log_level: &str,
) -> ExitCode {
    riffle_broker::cli::init_logging(log_level);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let compared = runtime.block_on(async {
        let shadow = ShadowRun::new(topology, bootstrap).runtime_config(config);
        let stop = riffle_broker::cli::stop_signal().map_err(|error| error.to_string())?;
        let outcome = shadow.run_until(stop).await.map_err(|e| e.to_string())?;
        if !outcome.progress.done {
            return Err("stopped before the shadow processed its input".to_owned());
        }
        let mut identical = true;
        for (live, shadow_topic) in &outcome.sinks {
            let diff = OutputDiff::new(check.key_format, check.value_format);
            let report = shadow.diff(live, shadow_topic, diff).await;
            let report = report.map_err(|error| error.to_string())?;
            print!("{live} vs {shadow_topic}: {report}");
            identical &= report.is_identical();
        }
        if !check.keep {
            shadow.clean_up().await.map_err(|error| error.to_string())?;
        }
        Ok::<bool, String>(identical)
    });
    match compared {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(2)
        }
    }
}
