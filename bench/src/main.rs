//! riffle-bench: load for Riffle or any Kafka-compatible broker, measured against the
//! client's own ceiling (librdkafka's in-process mock cluster) and the raw disk rate.
//!
//! Start with [`all`], which runs every scenario against a broker it starts itself and
//! writes `bench/REPORT.md`. The other subcommands run one scenario against any
//! `--bootstrap` address, so the same load can be pointed at another broker.

mod all;
mod broker_process;
mod chart;
mod connections;
mod consume;
mod disk;
mod latency;
mod processing;
mod processor;
mod produce;
mod report;
mod rounds;
mod startup;
mod tls;
mod topic;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// jemalloc, as the `riffle` binary: the brokers scenarios 8 and 11 start in this process
/// (and their topologies) then allocate as a real broker does.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The command line.
#[derive(Parser, Debug)]
#[command(
    name = "riffle-bench",
    about = "Benchmarks for Riffle and other Kafka-compatible brokers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a riffle broker and run every scenario against it, the mock-cluster ceiling
    /// and the raw disk; write bench/REPORT.md and bench/latency.svg.
    All(all::AllArgs),
    /// Produce fixed-size messages as fast as the client can (scenarios 1, 2 and 5).
    Produce(produce::ProduceArgs),
    /// Consume a topic from its start with assign() (scenario 3).
    Consume(consume::ConsumeArgs),
    /// End-to-end latency at a fixed rate (scenario 4).
    Latency(latency::LatencyArgs),
    /// The cost of exactly-once processing (scenario 8): a windowed count co-located in a
    /// broker this process starts, at-least-once against exactly-once, throughput over a
    /// backlog and end-to-end latency at a fixed rate.
    Processing(processing::ProcessingArgs),
    /// The stream processor's speed (scenario 11): a co-located windowed count over a
    /// backlog on one partition against the raw consume rate and the remote runtime, and
    /// a 1M-key store's restore against the raw consume rate of its changelog.
    Processor(processor::ProcessorArgs),
    /// Time to the first Metadata answer after a clean stop and after kill -9 (scenario 6).
    /// Needs to start the broker itself, so it takes the riffle binary, not a bootstrap.
    Startup(startup::StartupArgs),
    /// Produce over SASL_SSL against PLAINTEXT on one broker it starts itself, with a
    /// certificate made at run time and a SCRAM-SHA-512 user (scenario 9).
    Tls(tls::TlsArgs),
    /// A new client's produce+consume round trip while 2,000 stalled connections are held,
    /// against the idle broker's, on one broker it starts itself (scenario 10).
    Connections(connections::ConnectionsArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::All(args) => all::run(args),
        Command::Produce(args) => produce::run_cli(args),
        Command::Consume(args) => consume::run_cli(args),
        Command::Latency(args) => latency::run_cli(args),
        Command::Processing(args) => processing::run_cli(args),
        Command::Processor(args) => processor::run_cli(args),
        Command::Startup(args) => startup::run_cli(args),
        Command::Tls(args) => tls::run_cli(args),
        Command::Connections(args) => connections::run_cli(args),
    }
}

/// The workspace's `bench/` folder, where the report and chart go by default.
fn default_output_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
