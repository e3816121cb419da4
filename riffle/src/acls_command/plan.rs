//! From options to what to ask the broker, with kafka-acls's rules, and no I/O.
//!
//! - `add`: each principal (`--allow-principal` with each `--allow-host`, `--deny-principal`
//!   with each `--deny-host`; hosts default to `*`) gets each `--operation` (default All) on
//!   each resource: a [`Grant`] per resource pattern.
//! - `remove`: the same entries, as a [`Removal`] per resource filter; with no principal, a
//!   removal of every ACL of the filter.
//! - `list`: a [`Listing`] of resource filters, none meaning every ACL.
//!
//! `--producer` and `--consumer` choose the operations per resource type instead of
//! `--operation`. Refusals are [`PlanError`]s, which the command reports as usage errors.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::options::{
    AddArgs, EntryArgs, ListArgs, PatternTypeArg, RemoveArgs, ResourceArgs, RoleArgs,
};
use riffle_server::security::Principal;
use riffle_server::security::acl::{
    AccessControlEntry, AclHost, AclOperation, AclPermission, CLUSTER_NAME, PatternSelect,
    PatternType, ResourcePattern, ResourceType,
};

/// ACLs to add to one resource pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The resource pattern.
    pub pattern: ResourcePattern,
    /// The entries, each at most once.
    pub entries: BTreeSet<AccessControlEntry>,
}

/// ACLs to remove from the resource patterns one filter selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// Which resource patterns.
    pub filter: ResourceFilter,
    /// The entries to remove; empty means every ACL of the selected patterns.
    pub entries: BTreeSet<AccessControlEntry>,
}

/// What `list` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The resource filters; none means every ACL.
    pub filters: Vec<ResourceFilter>,
    /// Only ACLs of these principals, if any are given.
    pub principals: Vec<Principal>,
}

/// A resource type and name with a pattern selection: Kafka's `ResourcePatternFilter`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResourceFilter {
    /// The resource type.
    pub resource_type: ResourceType,
    /// The name (for the cluster, `kafka-cluster`).
    pub name: String,
    /// Which pattern types, and how the name matches.
    pub pattern: PatternSelect,
}

impl fmt::Display for ResourceFilter {
    /// Kafka's `ResourcePatternFilter.toString`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "ResourcePatternFilter(resourceType={}, name={}, patternType={})",
            self.resource_type,
            self.name,
            self.pattern.name()
        )
    }
}

/// Why the options do not describe ACLs. The messages follow kafka-acls's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `add` or `remove` without a resource.
    #[error(
        "you must provide at least one resource: --topic, --group, --cluster or --transactional-id"
    )]
    NoResource,
    /// `add` without a principal.
    #[error("you must specify one of --allow-principal, --deny-principal when adding ACLs")]
    NoPrincipal,
    /// `add` with `--resource-pattern-type any` or `match`.
    #[error(
        "a --resource-pattern-type of '{0}' is not valid when adding ACLs: use literal or prefixed"
    )]
    FilterPatternOnAdd(&'static str),
    /// `--cluster` with a prefixed pattern.
    #[error("--cluster has one resource, {CLUSTER_NAME}: it takes no prefixed pattern")]
    PrefixedCluster,
    /// An empty resource name.
    #[error("{0} needs a name")]
    EmptyName(&'static str),
    /// An operation an ACL on this resource type cannot grant.
    #[error("ResourceType {resource_type} only supports operations {supported}")]
    UnsupportedOperation {
        /// The resource type.
        resource_type: ResourceType,
        /// The operations it supports, comma-separated.
        supported: String,
    },
    /// `--producer` without a topic.
    #[error("with --producer you must specify a --topic")]
    ProducerWithoutTopic,
    /// `--consumer` without a topic or a group.
    #[error("with --consumer you must specify a --topic and a --group")]
    ConsumerWithoutTopicOrGroup,
    /// A resource option no chosen role uses.
    #[error("{option} is not used with {roles}: {hint}")]
    UnusedResource {
        /// The option.
        option: &'static str,
        /// The roles given.
        roles: &'static str,
        /// What does use it.
        hint: &'static str,
    },
}

/// The grants of `riffle acls add`.
///
/// # Errors
/// A [`PlanError`] when the options do not describe ACLs to add.
pub fn add_plan(args: &AddArgs) -> Result<Vec<Grant>, PlanError> {
    if let PatternTypeArg::Any | PatternTypeArg::Match = args.resources.resource_pattern_type {
        return Err(PlanError::FilterPatternOnAdd(pattern_name(
            args.resources.resource_pattern_type,
        )));
    }
    let by_filter = entries_by_filter(&args.entries, &args.roles, &args.resources)?;
    if by_filter.values().any(BTreeSet::is_empty) {
        return Err(PlanError::NoPrincipal);
    }
    let grants = by_filter
        .into_iter()
        .filter_map(|(filter, entries)| {
            let PatternSelect::Exactly(pattern_type) = filter.pattern else {
                return None;
            };
            let pattern = ResourcePattern {
                resource_type: filter.resource_type,
                name: filter.name,
                pattern_type,
            };
            Some(Grant { pattern, entries })
        })
        .collect();
    Ok(grants)
}

/// The removals of `riffle acls remove`.
///
/// # Errors
/// A [`PlanError`] when the options do not describe ACLs to remove.
pub fn remove_plan(args: &RemoveArgs) -> Result<Vec<Removal>, PlanError> {
    let by_filter = entries_by_filter(&args.entries, &args.roles, &args.resources)?;
    Ok(by_filter
        .into_iter()
        .map(|(filter, entries)| Removal { filter, entries })
        .collect())
}

/// What `riffle acls list` asks for.
///
/// # Errors
/// A [`PlanError`] for an empty name or a prefixed cluster.
pub fn list_plan(args: &ListArgs) -> Result<Listing, PlanError> {
    Ok(Listing {
        filters: resource_filters(&args.resources)?,
        principals: args.principals.clone(),
    })
}

/// Each resource filter with the entries to add or remove on it: from `--operation`, or
/// from the roles.
fn entries_by_filter(
    entries: &EntryArgs,
    roles: &RoleArgs,
    resources: &ResourceArgs,
) -> Result<BTreeMap<ResourceFilter, BTreeSet<AccessControlEntry>>, PlanError> {
    let filters = resource_filters(resources)?;
    let by_filter = match roles.producer || roles.consumer {
        true => role_entries(entries, roles, resources, &filters)?,
        false => {
            if filters.is_empty() {
                return Err(PlanError::NoResource);
            }
            let operations: Vec<AclOperation> = match entries.operations.is_empty() {
                true => vec![AclOperation::All],
                false => entries.operations.clone(),
            };
            let acl_entries = access_control_entries(entries, &operations);
            filters
                .into_iter()
                .map(|filter| (filter, acl_entries.clone()))
                .collect()
        }
    };
    for (filter, acl_entries) in &by_filter {
        check_operations(filter.resource_type, acl_entries)?;
    }
    Ok(by_filter)
}

/// Kafka's roles: `--producer` gives Write, Describe, Create on topics and Write, Describe on
/// transactional ids (and IdempotentWrite on the cluster with `--idempotent`); `--consumer`
/// gives Read, Describe on topics and Read on groups. Both together add up per resource.
fn role_entries(
    entries: &EntryArgs,
    roles: &RoleArgs,
    resources: &ResourceArgs,
    filters: &[ResourceFilter],
) -> Result<BTreeMap<ResourceFilter, BTreeSet<AccessControlEntry>>, PlanError> {
    check_role_resources(roles, resources)?;
    use AclOperation::*;
    let mut by_filter: BTreeMap<ResourceFilter, BTreeSet<AccessControlEntry>> = BTreeMap::new();
    let mut give = |filter: &ResourceFilter, operations: &[AclOperation]| {
        by_filter
            .entry(filter.clone())
            .or_default()
            .extend(access_control_entries(entries, operations));
    };
    for filter in filters {
        match filter.resource_type {
            ResourceType::Topic if roles.producer => give(filter, &[Write, Describe, Create]),
            ResourceType::TransactionalId if roles.producer => give(filter, &[Write, Describe]),
            _ => {}
        }
        match filter.resource_type {
            ResourceType::Topic if roles.consumer => give(filter, &[Read, Describe]),
            ResourceType::Group if roles.consumer => give(filter, &[Read]),
            _ => {}
        }
    }
    if roles.idempotent {
        give(&cluster_filter(), &[IdempotentWrite]);
    }
    Ok(by_filter)
}

/// kafka-acls's rules for the roles' resources, plus: a resource no given role uses is an
/// error rather than silently ignored.
fn check_role_resources(roles: &RoleArgs, resources: &ResourceArgs) -> Result<(), PlanError> {
    let role_names = match (roles.producer, roles.consumer) {
        (true, true) => "--producer and --consumer",
        (true, false) => "--producer",
        _ => "--consumer",
    };
    if roles.producer && resources.topics.is_empty() {
        return Err(PlanError::ProducerWithoutTopic);
    }
    if roles.consumer && (resources.topics.is_empty() || resources.groups.is_empty()) {
        return Err(PlanError::ConsumerWithoutTopicOrGroup);
    }
    let unused = |option, hint| PlanError::UnusedResource {
        option,
        roles: role_names,
        hint,
    };
    if resources.cluster {
        return Err(unused(
            "--cluster",
            "--idempotent with --producer adds IdempotentWrite on the cluster",
        ));
    }
    if !roles.consumer && !resources.groups.is_empty() {
        return Err(unused("--group", "--consumer adds Read on groups"));
    }
    if !roles.producer && !resources.transactional_ids.is_empty() {
        return Err(unused(
            "--transactional-id",
            "--producer adds Write and Describe on transactional ids",
        ));
    }
    Ok(())
}

/// Every (principal, host, operation) of the allow and deny options. A principal without
/// hosts gets `*`.
fn access_control_entries(
    entries: &EntryArgs,
    operations: &[AclOperation],
) -> BTreeSet<AccessControlEntry> {
    let sides = [
        (
            &entries.allow_principals,
            &entries.allow_hosts,
            AclPermission::Allow,
        ),
        (
            &entries.deny_principals,
            &entries.deny_hosts,
            AclPermission::Deny,
        ),
    ];
    let mut acl_entries = BTreeSet::new();
    for (principals, hosts, permission) in sides {
        let hosts: &[AclHost] = match hosts.is_empty() {
            true => &[AclHost::Any],
            false => hosts,
        };
        for principal in principals {
            for host in hosts {
                for operation in operations {
                    acl_entries.insert(AccessControlEntry {
                        principal: principal.clone(),
                        host: *host,
                        operation: *operation,
                        permission,
                    });
                }
            }
        }
    }
    acl_entries
}

/// Refuses an operation the resource type does not support (All always is).
fn check_operations(
    resource_type: ResourceType,
    acl_entries: &BTreeSet<AccessControlEntry>,
) -> Result<(), PlanError> {
    let supported = resource_type.operations();
    let unsupported = acl_entries
        .iter()
        .any(|entry| entry.operation != AclOperation::All && !supported.contains(&entry.operation));
    if !unsupported {
        return Ok(());
    }
    let names: Vec<&str> = std::iter::once(AclOperation::All)
        .chain(supported.iter().copied())
        .map(AclOperation::name)
        .collect();
    Err(PlanError::UnsupportedOperation {
        resource_type,
        supported: names.join(", "),
    })
}

/// The filters of `--topic`, `--group`, `--cluster` and `--transactional-id`, in that order,
/// each with `--resource-pattern-type`.
fn resource_filters(resources: &ResourceArgs) -> Result<Vec<ResourceFilter>, PlanError> {
    let pattern = pattern_select(resources.resource_pattern_type);
    let mut filters = Vec::new();
    let named = [
        (ResourceType::Topic, &resources.topics, "--topic"),
        (ResourceType::Group, &resources.groups, "--group"),
    ];
    for (resource_type, names, option) in named {
        for name in names {
            filters.push(named_filter(resource_type, name, pattern, option)?);
        }
    }
    if resources.cluster {
        if pattern == PatternSelect::Exactly(PatternType::Prefixed) {
            return Err(PlanError::PrefixedCluster);
        }
        filters.push(ResourceFilter {
            pattern,
            ..cluster_filter()
        });
    }
    for name in &resources.transactional_ids {
        filters.push(named_filter(
            ResourceType::TransactionalId,
            name,
            pattern,
            "--transactional-id",
        )?);
    }
    Ok(filters)
}

fn named_filter(
    resource_type: ResourceType,
    name: &str,
    pattern: PatternSelect,
    option: &'static str,
) -> Result<ResourceFilter, PlanError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(PlanError::EmptyName(option));
    }
    Ok(ResourceFilter {
        resource_type,
        name: name.to_string(),
        pattern,
    })
}

/// The one cluster resource, literally.
fn cluster_filter() -> ResourceFilter {
    ResourceFilter {
        resource_type: ResourceType::Cluster,
        name: CLUSTER_NAME.to_string(),
        pattern: PatternSelect::Exactly(PatternType::Literal),
    }
}

fn pattern_select(pattern: PatternTypeArg) -> PatternSelect {
    match pattern {
        PatternTypeArg::Literal => PatternSelect::Exactly(PatternType::Literal),
        PatternTypeArg::Prefixed => PatternSelect::Exactly(PatternType::Prefixed),
        PatternTypeArg::Any => PatternSelect::Any,
        PatternTypeArg::Match => PatternSelect::Match,
    }
}

fn pattern_name(pattern: PatternTypeArg) -> &'static str {
    match pattern {
        PatternTypeArg::Literal => "literal",
        PatternTypeArg::Prefixed => "prefixed",
        PatternTypeArg::Any => "any",
        PatternTypeArg::Match => "match",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acls_command::options::{AclsArgs, AclsCommand};
    use clap::Parser;

    /// `riffle acls ...` as clap parses it.
    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(flatten)]
        acls: AclsArgs,
    }

    fn parse(args: &str) -> Result<AclsCommand, clap::Error> {
        let words = std::iter::once("riffle-acls").chain(args.split_whitespace());
        TestCli::try_parse_from(words).map(|cli| cli.acls.command)
    }

    fn add(args: &str) -> Result<Vec<Grant>, PlanError> {
        match parse(&format!("add {args}")) {
            Ok(AclsCommand::Add(add)) => add_plan(&add),
            other => panic!("not an add: {other:?}"),
        }
    }

    fn remove(args: &str) -> Result<Vec<Removal>, PlanError> {
        match parse(&format!("remove {args}")) {
            Ok(AclsCommand::Remove(remove)) => remove_plan(&remove),
            other => panic!("not a remove: {other:?}"),
        }
    }

    /// Each grant as `TYPE:PATTERN:NAME PERMISSION principal host OPERATION` lines.
    fn lines(grants: &[Grant]) -> Vec<String> {
        grants
            .iter()
            .flat_map(|grant| {
                grant.entries.iter().map(move |entry| {
                    format!(
                        "{}:{}:{} {} {} {} {}",
                        grant.pattern.resource_type,
                        grant.pattern.pattern_type.name(),
                        grant.pattern.name,
                        entry.permission.name(),
                        entry.principal,
                        entry.host,
                        entry.operation
                    )
                })
            })
            .collect()
    }

    #[test]
    fn add_gives_each_principal_each_operation_on_each_resource() {
        // The integration test's first add, plus a second topic, a deny with its own host,
        // case-insensitive operations and a trailing --bootstrap: the cross product, host *
        // by default.
        let grants = add(
            "--allow-principal User:alice --operation read --operation WRITE \
                          --topic cli-orders --topic audit --deny-principal User:bob \
                          --deny-host 10.0.0.1 --bootstrap 127.0.0.1:1",
        )
        .expect("a plan");
        assert_eq!(
            lines(&grants),
            [
                "TOPIC:LITERAL:audit ALLOW User:alice * READ",
                "TOPIC:LITERAL:audit ALLOW User:alice * WRITE",
                "TOPIC:LITERAL:audit DENY User:bob 10.0.0.1 READ",
                "TOPIC:LITERAL:audit DENY User:bob 10.0.0.1 WRITE",
                "TOPIC:LITERAL:cli-orders ALLOW User:alice * READ",
                "TOPIC:LITERAL:cli-orders ALLOW User:alice * WRITE",
                "TOPIC:LITERAL:cli-orders DENY User:bob 10.0.0.1 READ",
                "TOPIC:LITERAL:cli-orders DENY User:bob 10.0.0.1 WRITE",
            ]
        );
    }

    #[test]
    fn add_defaults_to_all_and_takes_every_resource_kind() {
        // No --operation means All, as in kafka-acls; prefixed patterns apply to named
        // resources; the cluster is kafka-cluster.
        let grants = add(
            "--allow-principal User:ops --group app- --transactional-id tx- \
                          --resource-pattern-type PREFIXED",
        )
        .expect("a plan");
        assert_eq!(
            lines(&grants),
            [
                "GROUP:PREFIXED:app- ALLOW User:ops * ALL",
                "TRANSACTIONAL_ID:PREFIXED:tx- ALLOW User:ops * ALL",
            ]
        );
        let grants = add("--allow-principal User:bob --operation Create --cluster").expect("plan");
        assert_eq!(
            lines(&grants),
            ["CLUSTER:LITERAL:kafka-cluster ALLOW User:bob * CREATE"]
        );
    }

    #[test]
    fn producer_and_consumer_choose_the_operations() {
        // Kafka's roles: producer Write, Describe, Create on topics, Write, Describe on
        // transactional ids, IdempotentWrite on the cluster; consumer Read, Describe on topics
        // and Read on groups; both add up on a shared topic.
        let grants = add(
            "--allow-principal User:app --producer --consumer --idempotent \
                          --topic t --group g --transactional-id tx",
        )
        .expect("a plan");
        assert_eq!(
            lines(&grants),
            [
                "TOPIC:LITERAL:t ALLOW User:app * READ",
                "TOPIC:LITERAL:t ALLOW User:app * WRITE",
                "TOPIC:LITERAL:t ALLOW User:app * CREATE",
                "TOPIC:LITERAL:t ALLOW User:app * DESCRIBE",
                "GROUP:LITERAL:g ALLOW User:app * READ",
                "CLUSTER:LITERAL:kafka-cluster ALLOW User:app * IDEMPOTENT_WRITE",
                "TRANSACTIONAL_ID:LITERAL:tx ALLOW User:app * WRITE",
                "TRANSACTIONAL_ID:LITERAL:tx ALLOW User:app * DESCRIBE",
            ]
        );
    }

    #[test]
    fn options_that_describe_no_acls_are_refused() {
        // Each of kafka-acls's refusals, and ours for options a role would ignore.
        let cases: [(&str, PlanError); 9] = [
            (
                "--allow-principal User:a --operation Read",
                PlanError::NoResource,
            ),
            ("--operation Read --topic t", PlanError::NoPrincipal),
            (
                "--allow-principal User:a --topic t --resource-pattern-type match",
                PlanError::FilterPatternOnAdd("match"),
            ),
            (
                "--allow-principal User:a --cluster --resource-pattern-type prefixed",
                PlanError::PrefixedCluster,
            ),
            (
                "--allow-principal User:a --operation IdempotentWrite --topic t",
                PlanError::UnsupportedOperation {
                    resource_type: ResourceType::Topic,
                    supported: "ALL, READ, WRITE, CREATE, DESCRIBE, DELETE, ALTER, \
                                DESCRIBE_CONFIGS, ALTER_CONFIGS"
                        .into(),
                },
            ),
            (
                "--allow-principal User:a --producer --group g",
                PlanError::ProducerWithoutTopic,
            ),
            (
                "--allow-principal User:a --consumer --topic t",
                PlanError::ConsumerWithoutTopicOrGroup,
            ),
            (
                "--allow-principal User:a --consumer --topic t --group g --transactional-id x",
                PlanError::UnusedResource {
                    option: "--transactional-id",
                    roles: "--consumer",
                    hint: "--producer adds Write and Describe on transactional ids",
                },
            ),
            (
                "--allow-principal User:a --topic \"\"",
                PlanError::EmptyName("--topic"),
            ),
        ];
        for (args, expected) in cases {
            // The quotes stand for an empty word, which split_whitespace cannot make.
            let result = if args.contains("\"\"") {
                let words = [
                    "riffle-acls",
                    "add",
                    "--allow-principal",
                    "User:a",
                    "--topic",
                    "",
                ];
                match TestCli::try_parse_from(words).map(|cli| cli.acls.command) {
                    Ok(AclsCommand::Add(add)) => add_plan(&add),
                    other => panic!("{other:?}"),
                }
            } else {
                add(args)
            };
            assert_eq!(result, Err(expected), "{args}");
        }
    }

    #[test]
    fn bad_values_and_conflicting_options_are_usage_errors() {
        // clap refuses them before any plan: a principal without a type, a host name, an
        // unknown operation or pattern type, a host without its principal, a role with
        // --operation, --idempotent alone, and list with add's options.
        for args in [
            "add --allow-principal alice --topic t",
            "add --allow-principal User:a --allow-host example.com --topic t",
            "add --allow-principal User:a --operation Fly --topic t",
            "add --allow-principal User:a --topic t --resource-pattern-type glob",
            "add --allow-host 10.0.0.1 --deny-principal User:a --topic t",
            "add --allow-principal User:a --producer --operation Read --topic t",
            "add --allow-principal User:a --idempotent --topic t",
            "list --allow-principal User:a",
            "list --force",
            "remove --format json",
        ] {
            let error = parse(args).expect_err(args);
            assert!(
                error.kind() != clap::error::ErrorKind::DisplayHelp,
                "{args}: {error}"
            );
        }
        let message = parse("add --allow-principal User:a --operation Fly --topic t")
            .expect_err("unknown operation")
            .to_string();
        assert!(message.contains("unknown operation 'Fly'"), "{message}");
    }

    #[test]
    fn remove_without_principals_removes_everything_on_the_filter() {
        // kafka-acls's remove: entries when principals are given, else the whole filter;
        // any and match are valid filters here.
        let removals = remove(
            "--topic cli- --resource-pattern-type prefixed \
                               --deny-principal User:alice --operation Write --force",
        )
        .expect("a plan");
        assert_eq!(removals.len(), 1);
        assert_eq!(
            removals[0].filter.to_string(),
            "ResourcePatternFilter(resourceType=TOPIC, name=cli-, patternType=PREFIXED)"
        );
        let entries: Vec<String> = removals[0]
            .entries
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            entries,
            ["(principal=User:alice, host=*, operation=WRITE, permissionType=DENY)"]
        );
        let removals = remove("--group g --cluster --resource-pattern-type any").expect("plan");
        let filters: Vec<String> = removals.iter().map(|r| r.filter.to_string()).collect();
        assert_eq!(
            filters,
            [
                "ResourcePatternFilter(resourceType=GROUP, name=g, patternType=ANY)",
                "ResourcePatternFilter(resourceType=CLUSTER, name=kafka-cluster, patternType=ANY)",
            ]
        );
        assert!(removals.iter().all(|removal| removal.entries.is_empty()));
        assert_eq!(remove("--operation Read"), Err(PlanError::NoResource));
    }

    #[test]
    fn list_takes_filters_and_principals() {
        // No resource lists everything; --principal narrows by principal.
        let Ok(AclsCommand::List(list)) =
            parse("list --principal User:alice --topic t --resource-pattern-type match")
        else {
            panic!("a list");
        };
        let listing = list_plan(&list).expect("a plan");
        assert_eq!(listing.principals, [Principal::user("alice")]);
        assert_eq!(
            listing.filters,
            [ResourceFilter {
                resource_type: ResourceType::Topic,
                name: "t".into(),
                pattern: PatternSelect::Match,
            }]
        );
        let Ok(AclsCommand::List(list)) = parse("list --format json") else {
            panic!("a list");
        };
        assert!(list_plan(&list).expect("a plan").filters.is_empty());
    }
}
