//! The options of `riffle acls add|list|remove`, named as `kafka-acls.sh` names them.
//!
//! Values are checked as clap reads them (a principal is `TYPE:NAME`, a host `*` or an IP
//! address, an operation one of Kafka's names), so a typo is a usage error before anything
//! connects. Rules that join several options are [`super::plan`]'s.

use clap::{Args, Subcommand, ValueEnum};

use crate::client_config::ConnectionArgs;
use riffle_server::security::Principal;
use riffle_server::security::acl::{AclHost, AclOperation, InvalidAcl};
use riffle_server::security::principal::PrincipalParseError;

/// `riffle acls`: the broker and what to do.
#[derive(Debug, Args)]
#[command(after_help = ACLS_EXAMPLES)]
pub struct AclsArgs {
    /// The broker to ask and how to connect.
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// What to do.
    #[command(subcommand)]
    pub command: AclsCommand,
}

/// Shown after `riffle acls --help`.
const ACLS_EXAMPLES: &str = "\
Examples:
  riffle acls add --allow-principal User:alice --operation Read --operation Write --topic orders \\
      --bootstrap 127.0.0.1:9093 --command-config admin.properties
  riffle acls add --allow-principal User:alice --consumer --topic orders --group orders-app
  riffle acls add --deny-principal User:bob --operation Write --topic tmp- --resource-pattern-type prefixed
  riffle acls list --topic orders
  riffle acls list --principal User:alice --format json
  riffle acls remove --allow-principal User:alice --operation Write --topic orders --force

The command config is a Kafka client properties file, e.g.
  security.protocol=SASL_SSL
  sasl.mechanism=SCRAM-SHA-512
  sasl.username=admin
  sasl.password=admin-secret
  ssl.ca.location=ca.pem";

/// The `riffle acls` subcommands.
#[derive(Debug, Subcommand)]
pub enum AclsCommand {
    /// Add ACLs: each principal gets each operation on each resource (kafka-acls --add).
    Add(AddArgs),
    /// List ACLs, of the resources given or all (kafka-acls --list).
    List(ListArgs),
    /// Remove ACLs: the ones the options describe, or with no principal every ACL of the
    /// resources (kafka-acls --remove).
    Remove(RemoveArgs),
}

/// `riffle acls add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Whom and what.
    #[command(flatten)]
    pub entries: EntryArgs,
    /// `--producer`, `--consumer`, `--idempotent`.
    #[command(flatten)]
    pub roles: RoleArgs,
    /// On which resources.
    #[command(flatten)]
    pub resources: ResourceArgs,
}

/// `riffle acls list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only ACLs of this principal (TYPE:NAME); repeatable.
    #[arg(long = "principal", value_name = "PRINCIPAL", value_parser = parse_principal)]
    pub principals: Vec<Principal>,
    /// Text grouped by resource, as kafka-acls prints it, or a JSON array of bindings.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Of which resources; all ACLs without any.
    #[command(flatten)]
    pub resources: ResourceArgs,
}

/// `riffle acls remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Whom and what; without a principal, every ACL of the resources.
    #[command(flatten)]
    pub entries: EntryArgs,
    /// `--producer`, `--consumer`, `--idempotent`.
    #[command(flatten)]
    pub roles: RoleArgs,
    /// On which resources.
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Remove without asking. Without it, remove asks on the terminal, and refuses when
    /// stdin is not a terminal.
    #[arg(long)]
    pub force: bool,
}

/// The principals, hosts and operations of the ACLs to add or remove.
#[derive(Debug, Args)]
pub struct EntryArgs {
    /// A principal (TYPE:NAME, e.g. User:alice; User:* for everyone) to allow; repeatable.
    #[arg(long = "allow-principal", value_name = "PRINCIPAL", value_parser = parse_principal)]
    pub allow_principals: Vec<Principal>,
    /// A principal to deny; repeatable. A deny beats any allow.
    #[arg(long = "deny-principal", value_name = "PRINCIPAL", value_parser = parse_principal)]
    pub deny_principals: Vec<Principal>,
    /// The address (an IP, or * for any) the allowed principals may connect from;
    /// repeatable. Default: *.
    #[arg(
        long = "allow-host",
        value_name = "HOST",
        value_parser = parse_host,
        requires = "allow_principals"
    )]
    pub allow_hosts: Vec<AclHost>,
    /// The address the denied principals are denied from; repeatable. Default: *.
    #[arg(
        long = "deny-host",
        value_name = "HOST",
        value_parser = parse_host,
        requires = "deny_principals"
    )]
    pub deny_hosts: Vec<AclHost>,
    /// An operation: All, Read, Write, Create, Delete, Alter, Describe, ClusterAction,
    /// DescribeConfigs, AlterConfigs, IdempotentWrite (any case); repeatable. Default: All.
    #[arg(long = "operation", value_name = "OPERATION", value_parser = parse_operation)]
    pub operations: Vec<AclOperation>,
}

/// Kafka's convenience roles, which choose the operations.
#[derive(Debug, Args)]
pub struct RoleArgs {
    /// The producer's ACLs: Write, Describe and Create on each --topic, Write and Describe on
    /// each --transactional-id.
    #[arg(long, conflicts_with_all = ["operations", "deny_principals", "deny_hosts"])]
    pub producer: bool,
    /// The consumer's ACLs: Read and Describe on each --topic, Read on each --group.
    #[arg(long, conflicts_with_all = ["operations", "deny_principals", "deny_hosts"])]
    pub consumer: bool,
    /// With --producer: IdempotentWrite on the cluster too.
    #[arg(long, requires = "producer")]
    pub idempotent: bool,
}

/// The resources: any number of each kind.
#[derive(Debug, Args)]
pub struct ResourceArgs {
    /// A topic (* for every topic); repeatable.
    #[arg(long = "topic", value_name = "TOPIC")]
    pub topics: Vec<String>,
    /// A consumer group (* for every group); repeatable.
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// The cluster (kafka-cluster).
    #[arg(long)]
    pub cluster: bool,
    /// A transactional id (* for every one); repeatable.
    #[arg(long = "transactional-id", value_name = "ID")]
    pub transactional_ids: Vec<String>,
    /// How the names match: literal or prefixed patterns (to add, list or remove those),
    /// or, to list or remove, any (either type, same name) or match (every ACL that applies
    /// to the named resources).
    #[arg(
        long,
        value_enum,
        ignore_case = true,
        default_value_t = PatternTypeArg::Literal
    )]
    pub resource_pattern_type: PatternTypeArg,
}

/// `--resource-pattern-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PatternTypeArg {
    /// The name exactly (`*`: every resource of the type).
    Literal,
    /// Every name that starts with it.
    Prefixed,
    /// Literal and prefixed patterns with exactly this name.
    Any,
    /// Every pattern that matches the name: itself, `*`, and its prefixes.
    Match,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// kafka-acls's text.
    Text,
    /// A JSON array, one object per ACL.
    Json,
}

fn parse_principal(text: &str) -> Result<Principal, PrincipalParseError> {
    Principal::parse(text.trim())
}

fn parse_host(text: &str) -> Result<AclHost, InvalidAcl> {
    AclHost::parse(text.trim())
}

/// Why an `--operation` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown operation '{0}': expected All, Read, Write, Create, Delete, Alter, Describe, \
     ClusterAction, DescribeConfigs, AlterConfigs or IdempotentWrite"
)]
pub struct UnknownOperation(String);

fn parse_operation(text: &str) -> Result<AclOperation, UnknownOperation> {
    AclOperation::parse(text.trim()).ok_or_else(|| UnknownOperation(text.to_string()))
}
