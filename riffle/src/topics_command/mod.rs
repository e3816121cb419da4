//! `riffle topics list|describe|create|delete|alter-config`: topics over the wire, in the
//! spirit of `kafka-topics.sh` and `kafka-configs.sh`, against any Kafka-compatible broker.
//!
//! Start with [`run`]. `list` and the changes are here; `describe` (partitions with their
//! leaders, offsets and sizes, then the configs and their sources) is in [`describe`].
//! Requests that any broker answers go to the bootstrap broker; ListOffsets and
//! DescribeLogDirs go to each partition's leader.

mod describe;

use std::process::ExitCode;
use std::time::Instant;

use base64::Engine as _;
use clap::{ArgGroup, Args, Subcommand};
use serde::Serialize;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::metadata::{MetadataResponse, MetadataResponseTopic};

use crate::admin_client::routing::Brokers;
use crate::admin_client::topics::{ConfigChange, NewTopic};
use crate::admin_client::{AdminClientError, BrokerErrorCode};
use crate::cli_support::arguments::key_value;
use crate::cli_support::output::{human_bytes, to_json};
use crate::cli_support::progress::while_waiting;
use crate::cli_support::{CommandError, OutputFormat, finish, format_table};
use crate::client_config::ConnectionArgs;

/// `riffle topics`: the broker to ask and what to do.
#[derive(Debug, Args)]
pub struct TopicsArgs {
    /// The broker to ask and how to connect.
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// How to print the result: `text` (tables, for people) or `json` (for scripts).
    #[arg(long, value_enum, default_value_t, global = true)]
    pub format: OutputFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: TopicsCommand,
}

/// The `riffle topics` subcommands.
#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// List every topic with its partition count and replication factor.
    List {
        /// Leave out internal topics (__consumer_offsets, __transaction_state).
        #[arg(long)]
        exclude_internal: bool,
    },
    /// Show a topic's partitions (leader, replicas, offsets, size) and its configs, each
    /// with its source.
    Describe {
        /// The topic.
        topic: String,
    },
    /// Create a topic.
    Create(CreateArgs),
    /// Delete a topic with all its records.
    Delete {
        /// The topic.
        topic: String,
        /// Succeed without doing anything when the topic does not exist.
        #[arg(long)]
        if_exists: bool,
    },
    /// Set or remove configs of a topic (IncrementalAlterConfigs); a removed config falls
    /// back to the broker's default.
    AlterConfig(AlterConfigArgs),
}

/// `riffle topics create`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  riffle topics create orders --partitions 3 \
                        --config retention.ms=86400000 --config cleanup.policy=delete")]
pub struct CreateArgs {
    /// The topic.
    pub topic: String,
    /// The number of partitions; the broker's num.partitions without it.
    #[arg(long, value_name = "N")]
    pub partitions: Option<i32>,
    /// Copies of each partition; the broker's default.replication.factor without it.
    #[arg(long, value_name = "N")]
    pub replication_factor: Option<i16>,
    /// A topic config, NAME=VALUE (retention.ms=86400000); repeatable.
    #[arg(long = "config", value_name = "NAME=VALUE", value_parser = key_value)]
    pub configs: Vec<(String, String)>,
    /// Succeed without doing anything when the topic exists already.
    #[arg(long)]
    pub if_not_exists: bool,
    /// Ask the broker to check the request (name, partitions, configs) without creating
    /// the topic.
    #[arg(long)]
    pub dry_run: bool,
}

/// `riffle topics alter-config`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("changes").required(true).multiple(true).args(["set", "delete"])))]
#[command(
    after_help = "Example:\n  riffle topics alter-config orders --set retention.ms=3600000 \
                        --delete cleanup.policy"
)]
pub struct AlterConfigArgs {
    /// The topic.
    pub topic: String,
    /// Set a config, NAME=VALUE; repeatable.
    #[arg(long, value_name = "NAME=VALUE", value_parser = key_value)]
    pub set: Vec<(String, String)>,
    /// Remove the topic's own value of a config, so the broker's default applies;
    /// repeatable.
    #[arg(long, value_name = "NAME")]
    pub delete: Vec<String>,
}

/// Runs `riffle topics ...`: prints the result on stdout, or the error on stderr.
pub fn run(args: TopicsArgs) -> ExitCode {
    let format = args.format;
    let result = args
        .connection
        .connect_brokers()
        .map_err(CommandError::from)
        .and_then(|mut brokers| match args.command {
            TopicsCommand::List { exclude_internal } => {
                list(&mut brokers, exclude_internal, format)
            }
            TopicsCommand::Describe { topic } => describe::describe(&mut brokers, &topic, format),
            TopicsCommand::Create(create_args) => create(&mut brokers, &create_args, format),
            TopicsCommand::Delete { topic, if_exists } => {
                delete(&mut brokers, &topic, if_exists, format)
            }
            TopicsCommand::AlterConfig(alter_args) => {
                alter_config(&mut brokers, &alter_args, format)
            }
        });
    finish(result)
}

/// A topic as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedTopic {
    /// The name.
    pub name: String,
    /// The topic id in Kafka's form (URL-safe base64), empty when the broker gives none.
    pub id: String,
    /// The number of partitions.
    pub partitions: usize,
    /// The replicas of its first partition.
    pub replication_factor: usize,
    /// Whether the broker keeps it for itself.
    pub internal: bool,
}

/// The columns of `riffle topics list`.
const LIST_HEADERS: [&str; 4] = ["TOPIC", "PARTITIONS", "REPLICATION-FACTOR", "INTERNAL"];

/// `riffle topics list`.
fn list(
    brokers: &mut Brokers,
    exclude_internal: bool,
    format: OutputFormat,
) -> Result<String, CommandError> {
    let metadata = brokers.metadata(None)?;
    let mut topics: Vec<ListedTopic> = metadata
        .topics
        .iter()
        .filter(|topic| topic.error_code == 0 && !(exclude_internal && topic.is_internal))
        .map(listed_topic)
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(match format {
        OutputFormat::Json => to_json(&topics),
        OutputFormat::Text => {
            let rows: Vec<Vec<String>> = topics
                .iter()
                .map(|topic| {
                    vec![
                        topic.name.clone(),
                        topic.partitions.to_string(),
                        topic.replication_factor.to_string(),
                        yes_no(topic.internal),
                    ]
                })
                .collect();
            format_table(&LIST_HEADERS, &rows)
        }
    })
}

/// A Metadata topic as `list` shows it.
fn listed_topic(topic: &MetadataResponseTopic) -> ListedTopic {
    ListedTopic {
        name: topic.name.clone().unwrap_or_default(),
        id: topic_id_text(&topic.topic_id),
        partitions: topic.partitions.len(),
        replication_factor: topic
            .partitions
            .first()
            .map_or(0, |partition| partition.replica_nodes.len()),
        internal: topic.is_internal,
    }
}

/// A topic id as Kafka prints it: 22 characters of URL-safe base64; empty for none.
pub fn topic_id_text(id: &riffle_protocol::Uuid) -> String {
    match id.is_zero() {
        true => String::new(),
        false => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.0),
    }
}

fn yes_no(value: bool) -> String {
    match value {
        true => "yes".to_owned(),
        false => "no".to_owned(),
    }
}

/// `riffle topics create`.
fn create(
    brokers: &mut Brokers,
    args: &CreateArgs,
    format: OutputFormat,
) -> Result<String, CommandError> {
    let new_topic = NewTopic {
        partitions: args.partitions.unwrap_or(-1),
        replication_factor: args.replication_factor.unwrap_or(-1),
        configs: args.configs.clone(),
    };
    let created = match brokers
        .any()
        .create_topic(&args.topic, &new_topic, args.dry_run)
    {
        Ok(created) => Some(created),
        Err(error) if args.if_not_exists && is_code(&error, ErrorCode::TopicAlreadyExists) => None,
        Err(error) => return Err(error.into()),
    };
    #[derive(Serialize)]
    struct Created<'a> {
        topic: &'a str,
        created: bool,
        dry_run: bool,
        partitions: Option<i32>,
        replication_factor: Option<i16>,
    }
    let summary = Created {
        topic: &args.topic,
        created: created.is_some() && !args.dry_run,
        dry_run: args.dry_run,
        // v4 answers without counts (-1): show what was asked for then.
        partitions: created
            .as_ref()
            .map(|result| result.num_partitions)
            .filter(|count| *count >= 0)
            .or(args.partitions),
        replication_factor: created
            .as_ref()
            .map(|result| result.replication_factor)
            .filter(|count| *count >= 0)
            .or(args.replication_factor),
    };
    Ok(match (format, &created, args.dry_run) {
        (OutputFormat::Json, ..) => to_json(&summary),
        (OutputFormat::Text, None, _) => format!("Topic '{}' exists already.\n", args.topic),
        (OutputFormat::Text, Some(_), true) => {
            format!("Topic '{}' can be created (dry run).\n", args.topic)
        }
        (OutputFormat::Text, Some(_), false) => {
            let counts = match (summary.partitions, summary.replication_factor) {
                (Some(partitions), Some(replicas)) => {
                    format!(" with {partitions} partitions and replication factor {replicas}")
                }
                _ => String::new(),
            };
            format!("Created topic '{}'{counts}.\n", args.topic)
        }
    })
}

/// Whether `error` is the broker's answer `code`.
fn is_code(error: &AdminClientError, code: ErrorCode) -> bool {
    matches!(error, AdminClientError::Broker { code: found, .. } if found.known() == Some(code))
}

/// `riffle topics delete`: names the topic's size first, and on a terminal shows the time
/// spent while the broker deletes it.
fn delete(
    brokers: &mut Brokers,
    topic: &str,
    if_exists: bool,
    format: OutputFormat,
) -> Result<String, CommandError> {
    let metadata = brokers.metadata(Some(&[topic.to_owned()]))?;
    if let Err(error) = existing_topic(&metadata, topic) {
        return match (if_exists, &error) {
            (true, CommandError::TopicNotFound { .. }) => Ok(match format {
                OutputFormat::Json => {
                    to_json(&serde_json::json!({"topic": topic, "deleted": false}))
                }
                OutputFormat::Text => format!("Topic '{topic}' does not exist.\n"),
            }),
            _ => Err(error),
        };
    }
    let size_bytes = describe::topic_size_bytes(brokers, &metadata, topic);
    let started = Instant::now();
    let what = match size_bytes {
        Some(bytes) => format!("Deleting topic '{topic}' ({})", human_bytes(bytes)),
        None => format!("Deleting topic '{topic}'"),
    };
    // The request returns once the broker has deleted the files.
    let deleted = while_waiting(&what, || brokers.any().delete_topic(topic));
    match (deleted, if_exists) {
        (Ok(()), _) => {}
        (Err(error), true) if is_code(&error, ErrorCode::UnknownTopicOrPartition) => {}
        (Err(error), _) => return Err(error.into()),
    }
    Ok(match format {
        OutputFormat::Json => to_json(&serde_json::json!({
            "topic": topic,
            "deleted": true,
            "size_bytes": size_bytes,
        })),
        OutputFormat::Text => format!(
            "Deleted topic '{topic}'{} in {:.1?}.\n",
            size_bytes.map_or_else(String::new, |bytes| format!(" ({})", human_bytes(bytes))),
            started.elapsed()
        ),
    })
}

/// The topic's Metadata entry, or [`CommandError::TopicNotFound`] with the code Metadata
/// gave, or the topic's other error.
pub fn existing_topic<'a>(
    metadata: &'a MetadataResponse,
    topic: &str,
) -> Result<&'a MetadataResponseTopic, CommandError> {
    let described = metadata
        .topics
        .iter()
        .find(|described| described.name.as_deref() == Some(topic));
    match described {
        Some(described) if described.error_code == 0 => Ok(described),
        Some(described) => Err(CommandError::TopicNotFound {
            topic: topic.to_owned(),
            code: BrokerErrorCode(described.error_code),
        }),
        None => Err(CommandError::TopicNotFound {
            topic: topic.to_owned(),
            code: BrokerErrorCode(ErrorCode::UnknownTopicOrPartition.code()),
        }),
    }
}

/// `riffle topics alter-config`.
fn alter_config(
    brokers: &mut Brokers,
    args: &AlterConfigArgs,
    format: OutputFormat,
) -> Result<String, CommandError> {
    let changes: Vec<ConfigChange> = args
        .set
        .iter()
        .map(|(name, value)| ConfigChange::Set {
            name: name.clone(),
            value: value.clone(),
        })
        .chain(
            args.delete
                .iter()
                .map(|name| ConfigChange::Delete { name: name.clone() }),
        )
        .collect();
    brokers.any().alter_topic_configs(&args.topic, &changes)?;
    Ok(match format {
        OutputFormat::Json => to_json(&serde_json::json!({
            "topic": args.topic,
            "set": args.set.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            "deleted": args.delete,
        })),
        OutputFormat::Text => {
            let mut lines = String::new();
            for (name, value) in &args.set {
                lines.push_str(&format!("Set {name}={value} on topic '{}'.\n", args.topic));
            }
            for name in &args.delete {
                lines.push_str(&format!(
                    "Removed {name} from topic '{}'; the default applies.\n",
                    args.topic
                ));
            }
            lines
        }
    })
}
