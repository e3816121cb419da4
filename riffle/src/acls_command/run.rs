//! Running `riffle acls`: options to a plan ([`super::plan`]), the plan to requests over an
//! [`AdminClient`], the answers to text ([`super::output`]).
//!
//! - `add` asks DescribeAcls for each resource pattern first, reports the ACLs that exist
//!   ("Acl ... already exists.") and creates the others with one CreateAcls per pattern, as
//!   kafka-acls does.
//! - `list` asks DescribeAcls once per resource filter (once for everything without one).
//! - `remove` asks for confirmation of each filter unless `--force` (and refuses when stdin
//!   is not a terminal, where nobody can answer), then sends one DeleteAcls.
//!
//! Exit codes: 0 done, 1 a broker, network or per-ACL error (each named by its error code),
//! 2 options that describe no ACLs (shown as clap shows a usage error).

use std::fmt;
use std::io::{self, BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::CommandFactory;
use clap::error::ErrorKind;
use riffle_protocol::ErrorCode;
use riffle_protocol::api::create_acls::AclCreation;
use riffle_protocol::api::delete_acls::DeleteAclsFilter;
use riffle_protocol::api::describe_acls::DescribeAclsRequest;

use super::options::{AclsArgs, AclsCommand, OutputFormat};
use super::output::{
    ListedAcl, added_text, confirmation_question, list_json, list_text, removed_text,
};
use super::plan::{
    Grant, Listing, PlanError, Removal, ResourceFilter, add_plan, list_plan, remove_plan,
};
use crate::admin_client::{AdminClient, AdminClientError, BrokerErrorCode};
use crate::client_config::{ConnectError, ConnectionArgs};
use riffle_server::security::acl::{AccessControlEntry, AclBinding, PatternSelect};

/// The exit code of a usage error, as clap uses.
const USAGE_EXIT_CODE: u8 = 2;

/// Kafka's filter code for "any" resource type, operation or permission.
const ANY_CODE: i8 = 1;

/// Why a `riffle acls` command failed.
#[derive(Debug, thiserror::Error)]
pub enum AclsCommandError {
    /// The options describe no ACLs: a usage error.
    #[error("{source}")]
    Plan {
        /// `add`, `list` or `remove`.
        subcommand: &'static str,
        /// What is wrong.
        source: PlanError,
    },
    /// The command config could not be read, or the connection failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A request failed as a whole.
    #[error(transparent)]
    Client(#[from] AdminClientError),
    /// The broker refused some ACLs; `done` says what it did with the others.
    #[error("cannot {action} {} ACL(s):{}", failures.len(), failure_lines(failures))]
    Refused {
        /// `add` or `remove`.
        action: &'static str,
        /// The output for what succeeded.
        done: String,
        /// What failed, and why.
        failures: Vec<AclFailure>,
    },
    /// `remove` without `--force` where nobody can answer the question.
    #[error(
        "riffle acls remove asks before removing, and stdin is not a terminal: \
         pass --force to remove without asking"
    )]
    NotConfirmable,
    /// The answer to the question could not be read.
    #[error("cannot read the answer from stdin: {0}")]
    Answer(io::Error),
}

/// One ACL, or one filter, the broker refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFailure {
    /// The ACL or filter, in kafka-acls's words.
    pub what: String,
    /// The error code.
    pub code: BrokerErrorCode,
    /// The broker's message, if any.
    pub message: Option<String>,
}

impl fmt::Display for AclFailure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.what, self.code)?;
        match self.message.as_deref() {
            Some(message) if !message.is_empty() => write!(formatter, ": {message}"),
            _ => Ok(()),
        }
    }
}

fn failure_lines(failures: &[AclFailure]) -> String {
    failures
        .iter()
        .map(|failure| format!("\n  {failure}"))
        .collect()
}

/// Runs `riffle acls ...`: what was done on stdout, an error on stderr.
pub fn run(args: AclsArgs) -> ExitCode {
    let AclsArgs {
        connection,
        command,
    } = args;
    let result = match command {
        AclsCommand::Add(add) => add_plan(&add)
            .map_err(|source| plan_error("add", source))
            .and_then(|grants| add_acls(&connection, grants)),
        AclsCommand::List(list) => list_plan(&list)
            .map_err(|source| plan_error("list", source))
            .and_then(|listing| list_acls(&connection, &listing, list.format)),
        AclsCommand::Remove(remove) => remove_plan(&remove)
            .map_err(|source| plan_error("remove", source))
            .and_then(|removals| remove_acls(&connection, removals, remove.force)),
    };
    match result {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(AclsCommandError::Plan { subcommand, source }) => {
            let _ = usage_error(subcommand, &source).print();
            ExitCode::from(USAGE_EXIT_CODE)
        }
        Err(error) => {
            if let AclsCommandError::Refused { done, .. } = &error {
                print!("{done}");
            }
            eprintln!("riffle: {error}");
            ExitCode::FAILURE
        }
    }
}

fn plan_error(subcommand: &'static str, source: PlanError) -> AclsCommandError {
    AclsCommandError::Plan { subcommand, source }
}

/// `error` as clap reports a usage error of `riffle acls <subcommand>`, with its usage line.
fn usage_error(subcommand: &str, error: &PlanError) -> clap::Error {
    let mut command = crate::cli::Cli::command();
    command.build();
    let acls = command.find_subcommand_mut("acls");
    match acls.and_then(|acls| acls.find_subcommand_mut(subcommand)) {
        Some(target) => target.error(ErrorKind::ArgumentConflict, error),
        None => command.error(ErrorKind::ArgumentConflict, error),
    }
}

/// `riffle acls add`: the grants, minus the ACLs that exist.
fn add_acls(connection: &ConnectionArgs, grants: Vec<Grant>) -> Result<String, AclsCommandError> {
    let mut client = connection.connect()?;
    let mut existing = Vec::new();
    let mut added = Vec::new();
    let mut failures = Vec::new();
    for mut grant in grants {
        let filter = ResourceFilter {
            resource_type: grant.pattern.resource_type,
            name: grant.pattern.name.clone(),
            pattern: PatternSelect::Exactly(grant.pattern.pattern_type),
        };
        let present = ListedAcl::from_described(client.describe_acls(describe_request(&filter))?);
        let mut new_entries = grant.entries.clone();
        for entry in &grant.entries {
            let binding = AclBinding {
                pattern: grant.pattern.clone(),
                entry: entry.clone(),
            };
            if present.contains(&ListedAcl::from_binding(&binding)) {
                new_entries.remove(entry);
                existing.push(binding);
            }
        }
        grant.entries = new_entries;
        if grant.entries.is_empty() {
            continue;
        }
        let (created, refused) = create(&mut client, grant)?;
        added.extend(created);
        failures.extend(refused);
    }
    let done = added_text(&existing, &added);
    match failures.is_empty() {
        true => Ok(done),
        false => Err(AclsCommandError::Refused {
            action: "add",
            done,
            failures,
        }),
    }
}

/// One CreateAcls for `grant`'s entries: the grant of those created, and the failures.
fn create(
    client: &mut AdminClient,
    grant: Grant,
) -> Result<(Option<Grant>, Vec<AclFailure>), AclsCommandError> {
    let pattern = &grant.pattern;
    let creations = grant
        .entries
        .iter()
        .map(|entry| AclCreation {
            resource_type: pattern.resource_type.code(),
            resource_name: pattern.name.clone(),
            resource_pattern_type: pattern.pattern_type.code(),
            principal: entry.principal.to_string(),
            host: entry.host.to_string(),
            operation: entry.operation.code(),
            permission_type: entry.permission.code(),
        })
        .collect();
    let results = client.create_acls(creations)?;
    let mut created = Grant {
        pattern: pattern.clone(),
        entries: Default::default(),
    };
    let mut failures = Vec::new();
    for (entry, result) in grant.entries.iter().zip(results) {
        if result.error_code == ErrorCode::None.code() {
            created.entries.insert(entry.clone());
            continue;
        }
        failures.push(AclFailure {
            what: format!("{pattern} {entry}"),
            code: BrokerErrorCode(result.error_code),
            message: result.error_message,
        });
    }
    let created = (!created.entries.is_empty()).then_some(created);
    Ok((created, failures))
}

/// `riffle acls list`: every ACL the filters select, printed as `format` says.
fn list_acls(
    connection: &ConnectionArgs,
    listing: &Listing,
    format: OutputFormat,
) -> Result<String, AclsCommandError> {
    let mut client = connection.connect()?;
    let requests: Vec<DescribeAclsRequest> = match listing.filters.is_empty() {
        true => vec![describe_everything()],
        false => listing.filters.iter().map(describe_request).collect(),
    };
    let mut acls = Vec::new();
    for request in requests {
        acls.extend(ListedAcl::from_described(client.describe_acls(request)?));
    }
    Ok(match format {
        OutputFormat::Text => list_text(&acls, &listing.principals),
        OutputFormat::Json => list_json(&acls, &listing.principals),
    })
}

/// `riffle acls remove`: after confirmation, one DeleteAcls for every confirmed removal.
fn remove_acls(
    connection: &ConnectionArgs,
    removals: Vec<Removal>,
    force: bool,
) -> Result<String, AclsCommandError> {
    let confirmed = match force {
        true => removals,
        false => confirm(removals)?,
    };
    if confirmed.is_empty() {
        return Ok("Nothing was removed.\n".to_string());
    }
    let mut client = connection.connect()?;
    let (filters, described): (Vec<DeleteAclsFilter>, Vec<String>) =
        confirmed.iter().flat_map(delete_filters).unzip();
    let results = client.delete_acls(filters)?;
    let mut removed = Vec::new();
    let mut failures = Vec::new();
    for (filter_text, result) in described.into_iter().zip(results) {
        if result.error_code != ErrorCode::None.code() {
            failures.push(AclFailure {
                what: filter_text,
                code: BrokerErrorCode(result.error_code),
                message: result.error_message,
            });
            continue;
        }
        for matching in result.matching_acls {
            let code = matching.error_code;
            let message = matching.error_message.clone();
            let acl = ListedAcl::from_deleted(matching);
            match code == ErrorCode::None.code() {
                true => removed.push(acl),
                false => failures.push(AclFailure {
                    what: acl.to_string(),
                    code: BrokerErrorCode(code),
                    message,
                }),
            }
        }
    }
    let done = removed_text(&removed);
    match failures.is_empty() {
        true => Ok(done),
        false => Err(AclsCommandError::Refused {
            action: "remove",
            done,
            failures,
        }),
    }
}

/// Asks on the terminal about each removal; keeps those answered `y` or `yes`.
fn confirm(removals: Vec<Removal>) -> Result<Vec<Removal>, AclsCommandError> {
    if !io::stdin().is_terminal() {
        return Err(AclsCommandError::NotConfirmable);
    }
    let mut confirmed = Vec::new();
    for removal in removals {
        let entries: Vec<AccessControlEntry> = removal.entries.iter().cloned().collect();
        let question = confirmation_question(&removal.filter.to_string(), &entries);
        let mut stderr = io::stderr();
        write!(stderr, "{question}")
            .and_then(|()| stderr.flush())
            .map_err(AclsCommandError::Answer)?;
        let mut answer = String::new();
        io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(AclsCommandError::Answer)?;
        let answer = answer.trim();
        if answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes") {
            confirmed.push(removal);
        }
    }
    Ok(confirmed)
}

/// The DeleteAcls filters of one removal, each with its text for error messages: one per
/// entry, or one for every ACL of the resource filter.
fn delete_filters(removal: &Removal) -> Vec<(DeleteAclsFilter, String)> {
    let filter = &removal.filter;
    let base = DeleteAclsFilter {
        resource_type_filter: filter.resource_type.code(),
        resource_name_filter: Some(filter.name.clone()),
        pattern_type_filter: filter.pattern.code(),
        principal_filter: None,
        host_filter: None,
        operation: ANY_CODE,
        permission_type: ANY_CODE,
    };
    if removal.entries.is_empty() {
        return vec![(base, filter.to_string())];
    }
    removal
        .entries
        .iter()
        .map(|entry| {
            let one = DeleteAclsFilter {
                principal_filter: Some(entry.principal.to_string()),
                host_filter: Some(entry.host.to_string()),
                operation: entry.operation.code(),
                permission_type: entry.permission.code(),
                ..base.clone()
            };
            (one, format!("{filter} {entry}"))
        })
        .collect()
}

/// DescribeAcls for every ACL of the patterns `filter` selects.
fn describe_request(filter: &ResourceFilter) -> DescribeAclsRequest {
    DescribeAclsRequest {
        resource_type_filter: filter.resource_type.code(),
        resource_name_filter: Some(filter.name.clone()),
        pattern_type_filter: filter.pattern.code(),
        ..describe_everything()
    }
}

/// DescribeAcls for every ACL.
fn describe_everything() -> DescribeAclsRequest {
    DescribeAclsRequest {
        resource_type_filter: ANY_CODE,
        resource_name_filter: None,
        pattern_type_filter: PatternSelect::Any.code(),
        principal_filter: None,
        host_filter: None,
        operation: ANY_CODE,
        permission_type: ANY_CODE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acls_command::plan::Grant;
    use crate::admin_client::tests::{advertise, fake_broker};
    use riffle_protocol::api::create_acls::{AclCreationResult, CreateAclsResponse};
    use riffle_protocol::api::delete_acls::{
        DeleteAclsFilterResult, DeleteAclsMatchingAcl, DeleteAclsResponse,
    };
    use riffle_protocol::api::describe_acls::{
        AclDescription, DescribeAclsResource, DescribeAclsResponse,
    };
    use riffle_protocol::{ApiKey, Response};
    use riffle_server::security::Principal;
    use riffle_server::security::acl::{
        AclHost, AclOperation, AclPermission, PatternType, ResourcePattern, ResourceType,
    };

    fn acl_apis() -> Vec<riffle_protocol::api::api_versions::ApiVersion> {
        vec![
            advertise(ApiKey::DescribeAcls, 0, 3),
            advertise(ApiKey::CreateAcls, 0, 3),
            advertise(ApiKey::DeleteAcls, 0, 3),
        ]
    }

    fn connection(address: std::net::SocketAddr) -> ConnectionArgs {
        ConnectionArgs {
            bootstrap: address.to_string(),
            command_config: None,
        }
    }

    fn entry(user: &str, operation: AclOperation) -> AccessControlEntry {
        AccessControlEntry {
            principal: Principal::user(user),
            host: AclHost::Any,
            operation,
            permission: AclPermission::Allow,
        }
    }

    fn orders_grant(entries: &[AccessControlEntry]) -> Grant {
        Grant {
            pattern: ResourcePattern {
                resource_type: ResourceType::Topic,
                name: "orders".into(),
                pattern_type: PatternType::Literal,
            },
            entries: entries.iter().cloned().collect(),
        }
    }

    fn described_read() -> Response {
        Response::DescribeAcls(DescribeAclsResponse {
            resources: vec![DescribeAclsResource {
                resource_type: ResourceType::Topic.code(),
                resource_name: "orders".into(),
                pattern_type: PatternType::Literal.code(),
                acls: vec![AclDescription {
                    principal: "User:alice".into(),
                    host: "*".into(),
                    operation: AclOperation::Read.code(),
                    permission_type: AclPermission::Allow.code(),
                }],
            }],
            error_message: None,
            ..Default::default()
        })
    }

    #[test]
    fn add_skips_existing_acls_and_reports_refused_ones_by_code() {
        // Alice's Read exists, Write and Describe are sent; the broker refuses Describe, so
        // the error names it with its code and message, and the output still says what was
        // added.
        let created = Response::CreateAcls(CreateAclsResponse {
            results: vec![
                AclCreationResult {
                    error_code: 0,
                    error_message: None,
                },
                AclCreationResult {
                    error_code: ErrorCode::InvalidRequest.code(),
                    error_message: Some("no such thing".into()),
                },
            ],
            ..Default::default()
        });
        let address = fake_broker(acl_apis(), vec![described_read(), created]);
        let grant = orders_grant(&[
            entry("alice", AclOperation::Read),
            entry("alice", AclOperation::Write),
            entry("alice", AclOperation::Describe),
        ]);
        let error = add_acls(&connection(address), vec![grant]).expect_err("one refused");
        let AclsCommandError::Refused { done, failures, .. } = &error else {
            panic!("{error}");
        };
        assert_eq!(
            done,
            "Acl ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL) \
             (principal=User:alice, host=*, operation=READ, permissionType=ALLOW) already exists.\n\
             Added ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)`:\n\
             \t(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW)\n\n"
        );
        assert_eq!(failures.len(), 1);
        assert_eq!(
            error.to_string(),
            "cannot add 1 ACL(s):\n  ResourcePattern(resourceType=TOPIC, name=orders, \
             patternType=LITERAL) (principal=User:alice, host=*, operation=DESCRIBE, \
             permissionType=ALLOW): INVALID_REQUEST (42): no such thing"
        );
    }

    #[test]
    fn a_refused_describe_names_the_error_code() {
        // A principal that may not describe ACLs: the whole command fails with the code in
        // words and the broker's message.
        let refused = Response::DescribeAcls(DescribeAclsResponse {
            error_code: ErrorCode::ClusterAuthorizationFailed.code(),
            error_message: Some("not allowed".into()),
            ..Default::default()
        });
        let address = fake_broker(acl_apis(), vec![refused]);
        let listing = Listing {
            filters: Vec::new(),
            principals: Vec::new(),
        };
        let error = list_acls(&connection(address), &listing, OutputFormat::Text)
            .expect_err("refused")
            .to_string();
        assert_eq!(
            error,
            "DescribeAcls failed: CLUSTER_AUTHORIZATION_FAILED (31): not allowed"
        );
    }

    #[test]
    fn list_prints_what_describe_returned() {
        // One DescribeAcls for all ACLs, printed grouped by resource.
        let address = fake_broker(acl_apis(), vec![described_read()]);
        let listing = Listing {
            filters: Vec::new(),
            principals: Vec::new(),
        };
        let output = list_acls(&connection(address), &listing, OutputFormat::Text).expect("list");
        assert_eq!(
            output,
            "Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)`:\n\
             \t(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)\n\n"
        );
    }

    #[test]
    fn remove_with_force_prints_what_was_removed() {
        // One DeleteAcls filter per entry; the matched ACLs are printed by resource.
        let deleted = Response::DeleteAcls(DeleteAclsResponse {
            filter_results: vec![DeleteAclsFilterResult {
                error_code: 0,
                error_message: None,
                matching_acls: vec![DeleteAclsMatchingAcl {
                    error_code: 0,
                    error_message: None,
                    resource_type: ResourceType::Group.code(),
                    resource_name: "app".into(),
                    pattern_type: PatternType::Literal.code(),
                    principal: "User:alice".into(),
                    host: "*".into(),
                    operation: AclOperation::Read.code(),
                    permission_type: AclPermission::Allow.code(),
                }],
            }],
            ..Default::default()
        });
        let address = fake_broker(acl_apis(), vec![deleted]);
        let removal = Removal {
            filter: ResourceFilter {
                resource_type: ResourceType::Group,
                name: "app".into(),
                pattern: PatternSelect::Exactly(PatternType::Literal),
            },
            entries: [entry("alice", AclOperation::Read)].into_iter().collect(),
        };
        let (filters, _) = delete_filters(&removal)
            .into_iter()
            .unzip::<_, _, Vec<_>, Vec<_>>();
        assert_eq!(filters.len(), 1);
        assert_eq!(filters[0].principal_filter.as_deref(), Some("User:alice"));
        assert_eq!(filters[0].operation, AclOperation::Read.code());
        let output = remove_acls(&connection(address), vec![removal], true).expect("removed");
        assert_eq!(
            output,
            "Removed ACLs for resource `ResourcePattern(resourceType=GROUP, name=app, patternType=LITERAL)`:\n\
             \t(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)\n\n"
        );
    }

    #[test]
    fn a_removal_of_a_whole_filter_selects_any_entry() {
        // Without entries the filter leaves principal, host, operation and permission open.
        let removal = Removal {
            filter: ResourceFilter {
                resource_type: ResourceType::Topic,
                name: "t".into(),
                pattern: PatternSelect::Match,
            },
            entries: Default::default(),
        };
        let filters = delete_filters(&removal);
        assert_eq!(filters.len(), 1);
        let (filter, text) = &filters[0];
        assert_eq!(
            (
                filter.principal_filter.as_deref(),
                filter.host_filter.as_deref(),
                filter.operation,
                filter.permission_type,
                filter.pattern_type_filter,
            ),
            (None, None, 1, 1, 2)
        );
        assert_eq!(
            text,
            "ResourcePatternFilter(resourceType=TOPIC, name=t, patternType=MATCH)"
        );
    }
}
