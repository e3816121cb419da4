//! `riffle cluster info`: who the cluster is and what its brokers speak, as
//! `kafka-cluster.sh cluster-id` and `kafka-broker-api-versions.sh` show it.
//!
//! ```text
//! Cluster ID:  Y2x1c3Rlci1pZC1leGFtcGxl
//! Controller:  1
//! Connected:   127.0.0.1:9092 (broker 1)
//! Version:     not reported (the Kafka protocol has no software version; see the API versions)
//!
//! BROKER  ADDRESS         RACK
//! 1       127.0.0.1:9092  -
//!
//! API       KEY  VERSIONS
//! Produce   0    3-10
//! ...
//! ```
//!
//! The cluster id, controller and brokers come from DescribeCluster, or from Metadata when
//! the broker predates it; the API versions from the connected broker's ApiVersions. The
//! Kafka protocol carries no broker software version: a KRaft Kafka broker reports its
//! `metadata.version` feature level, which is shown when present.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;

use riffle_protocol::ApiKey;

use crate::admin_client::AdminClientError;
use crate::admin_client::groups::host_port;
use crate::admin_client::routing::Brokers;
use crate::cli_support::output::to_json;
use crate::cli_support::{CommandError, OutputFormat, finish, format_table};
use crate::client_config::ConnectionArgs;

/// `riffle cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The broker to ask and how to connect.
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// How to print the result: `text` (tables, for people) or `json` (for scripts).
    #[arg(long, value_enum, default_value_t, global = true)]
    pub format: OutputFormat,

    /// What to show.
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// The `riffle cluster` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show the cluster id, the controller, every broker's id and address, and the API
    /// versions the connected broker speaks.
    Info,
}

/// What `riffle cluster info` found, as `--format json` prints it.
#[derive(Debug, Serialize)]
pub struct ClusterInfo {
    /// The cluster id.
    pub cluster_id: Option<String>,
    /// The controller's broker id; -1 when unknown.
    pub controller_id: i32,
    /// The address connected to.
    pub connected: String,
    /// The finalized feature levels the connected broker reported (`metadata.version`).
    pub features: Vec<Feature>,
    /// Every broker.
    pub brokers: Vec<BrokerInfo>,
    /// The APIs the connected broker speaks.
    pub api_versions: Vec<ApiVersionInfo>,
}

/// A finalized feature level.
#[derive(Debug, Serialize)]
pub struct Feature {
    /// Its name, such as `metadata.version`.
    pub name: String,
    /// Its level.
    pub level: i16,
}

/// A broker of the cluster.
#[derive(Debug, Serialize)]
pub struct BrokerInfo {
    /// Its id.
    pub id: i32,
    /// `HOST:PORT`.
    pub address: String,
    /// Its rack, if set.
    pub rack: Option<String>,
}

/// One API the connected broker advertises.
#[derive(Debug, Serialize)]
pub struct ApiVersionInfo {
    /// Kafka's name, or `key N` for one this client does not know.
    pub api: String,
    /// The API key.
    pub key: i16,
    /// The lowest version.
    pub min_version: i16,
    /// The highest version.
    pub max_version: i16,
}

/// Runs `riffle cluster ...`.
pub fn run(args: ClusterArgs) -> ExitCode {
    let format = args.format;
    let result = args
        .connection
        .connect_brokers()
        .map_err(CommandError::from)
        .and_then(|mut brokers| match args.command {
            ClusterCommand::Info => info(&mut brokers).map(|info| match format {
                OutputFormat::Json => to_json(&info),
                OutputFormat::Text => text(&info),
            }),
        });
    finish(result)
}

/// Gathers [`ClusterInfo`].
fn info(brokers: &mut Brokers) -> Result<ClusterInfo, CommandError> {
    let (cluster_id, controller_id, mut members) = match brokers.any().describe_cluster() {
        Ok(described) => (
            Some(described.cluster_id),
            described.controller_id,
            described
                .brokers
                .into_iter()
                .map(|broker| BrokerInfo {
                    id: broker.broker_id,
                    address: host_port(&broker.host, broker.port),
                    rack: broker.rack,
                })
                .collect::<Vec<_>>(),
        ),
        // Brokers before Kafka 2.8 answer Metadata only.
        Err(AdminClientError::Unsupported { .. }) => {
            let metadata = brokers.metadata(Some(&[]))?;
            let members = metadata
                .brokers
                .into_iter()
                .map(|broker| BrokerInfo {
                    id: broker.node_id,
                    address: host_port(&broker.host, broker.port),
                    rack: broker.rack,
                })
                .collect();
            (metadata.cluster_id, metadata.controller_id, members)
        }
        Err(error) => return Err(error.into()),
    };
    members.sort_by_key(|broker| broker.id);
    let client = brokers.any();
    let mut api_versions: Vec<ApiVersionInfo> = client
        .api_versions()
        .iter()
        .map(|range| ApiVersionInfo {
            api: ApiKey::from_i16(range.api_key).map_or_else(
                || format!("key {}", range.api_key),
                |key| key.name().to_owned(),
            ),
            key: range.api_key,
            min_version: range.min_version,
            max_version: range.max_version,
        })
        .collect();
    api_versions.sort_by_key(|api| api.key);
    Ok(ClusterInfo {
        cluster_id,
        controller_id,
        connected: client.peer().to_string(),
        features: client
            .finalized_features()
            .iter()
            .map(|(name, level)| Feature {
                name: name.clone(),
                level: *level,
            })
            .collect(),
        brokers: members,
        api_versions,
    })
}

/// The text form: a few facts, the brokers and the APIs.
fn text(info: &ClusterInfo) -> String {
    let version = match info.features.iter().find(|f| f.name == "metadata.version") {
        Some(feature) => format!("metadata.version level {}", feature.level),
        None => "not reported (the Kafka protocol has no software version; see the API \
                 versions)"
            .to_owned(),
    };
    let connected_id = info
        .brokers
        .iter()
        .find(|broker| broker.address == info.connected)
        .map_or_else(String::new, |broker| format!(" (broker {})", broker.id));
    let mut output = format!(
        "Cluster ID:  {}\nController:  {}\nConnected:   {}{connected_id}\nVersion:     {version}\n\n",
        info.cluster_id.as_deref().unwrap_or("-"),
        info.controller_id,
        info.connected,
    );
    let rows: Vec<Vec<String>> = info
        .brokers
        .iter()
        .map(|broker| {
            vec![
                broker.id.to_string(),
                broker.address.clone(),
                broker.rack.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    output.push_str(&format_table(&["BROKER", "ADDRESS", "RACK"], &rows));
    output.push('\n');
    let rows: Vec<Vec<String>> = info
        .api_versions
        .iter()
        .map(|api| {
            vec![
                api.api.clone(),
                api.key.to_string(),
                format!("{}-{}", api.min_version, api.max_version),
            ]
        })
        .collect();
    output.push_str(&format_table(&["API", "KEY", "VERSIONS"], &rows));
    output
}
