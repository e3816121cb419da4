//! What `riffle acls` prints: ACLs grouped per resource pattern in kafka-acls's words, or a
//! JSON array.
//!
//! ```text
//! Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)`:
//!     (principal=User:alice, host=*, operation=READ, permissionType=ALLOW)
//!     (principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW)
//!
//! ```
//!
//! Each entry line starts with a tab, as in kafka-acls. ACLs read from the broker are
//! [`ListedAcl`]s: the wire codes turned into Kafka's names, with an `UNKNOWN(code)` name for
//! a code this build does not know (a newer Kafka's), so listing never fails on an ACL it
//! cannot interpret.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde::Serialize;

use riffle_protocol::api::delete_acls::DeleteAclsMatchingAcl;
use riffle_protocol::api::describe_acls::DescribeAclsResource;

use super::plan::Grant;
use riffle_server::security::Principal;
use riffle_server::security::acl::{
    AccessControlEntry, AclBinding, AclOperation, AclPermission, PatternType, ResourceType,
};

/// One ACL as the broker described it, in Kafka's names. Fields are in sort order:
/// resource first, so sorted ACLs group by resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ListedAcl {
    /// `TOPIC`, `GROUP`, `CLUSTER`, `TRANSACTIONAL_ID`, ...
    pub resource_type: String,
    /// The resource name or prefix.
    pub resource_name: String,
    /// `LITERAL` or `PREFIXED`.
    pub pattern_type: String,
    /// `TYPE:NAME`.
    pub principal: String,
    /// `*` or an address.
    pub host: String,
    /// `READ`, `WRITE`, ...
    pub operation: String,
    /// `ALLOW` or `DENY`.
    pub permission_type: String,
}

impl ListedAcl {
    /// Every ACL of a DescribeAcls response.
    pub fn from_described(resources: Vec<DescribeAclsResource>) -> Vec<ListedAcl> {
        resources
            .into_iter()
            .flat_map(|resource| {
                let resource_type = resource_type_name(resource.resource_type);
                let pattern_type = pattern_type_name(resource.pattern_type);
                let resource_name = resource.resource_name;
                resource.acls.into_iter().map(move |acl| ListedAcl {
                    resource_type: resource_type.clone(),
                    resource_name: resource_name.clone(),
                    pattern_type: pattern_type.clone(),
                    principal: acl.principal,
                    host: acl.host,
                    operation: operation_name(acl.operation),
                    permission_type: permission_name(acl.permission_type),
                })
            })
            .collect()
    }

    /// An ACL a DeleteAcls filter matched.
    pub fn from_deleted(acl: DeleteAclsMatchingAcl) -> ListedAcl {
        ListedAcl {
            resource_type: resource_type_name(acl.resource_type),
            resource_name: acl.resource_name,
            pattern_type: pattern_type_name(acl.pattern_type),
            principal: acl.principal,
            host: acl.host,
            operation: operation_name(acl.operation),
            permission_type: permission_name(acl.permission_type),
        }
    }

    /// The same ACL as a binding we built, in the same words.
    pub fn from_binding(binding: &AclBinding) -> ListedAcl {
        let AclBinding { pattern, entry } = binding;
        ListedAcl {
            resource_type: pattern.resource_type.name().to_string(),
            resource_name: pattern.name.clone(),
            pattern_type: pattern.pattern_type.name().to_string(),
            principal: entry.principal.to_string(),
            host: entry.host.to_string(),
            operation: entry.operation.name().to_string(),
            permission_type: entry.permission.name().to_string(),
        }
    }

    /// Kafka's `ResourcePattern.toString`.
    fn resource(&self) -> String {
        format!(
            "ResourcePattern(resourceType={}, name={}, patternType={})",
            self.resource_type, self.resource_name, self.pattern_type
        )
    }

    /// Kafka's `AccessControlEntry.toString`.
    fn entry(&self) -> String {
        format!(
            "(principal={}, host={}, operation={}, permissionType={})",
            self.principal, self.host, self.operation, self.permission_type
        )
    }
}

impl fmt::Display for ListedAcl {
    /// The resource pattern and the entry, as kafka-acls prints a binding.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.resource(), self.entry())
    }
}

/// `riffle acls list` as text: per resource, a heading and its entries, then a blank line;
/// with `principals`, one such listing per principal under its own heading, as kafka-acls
/// prints them. "No ACLs found." when there is nothing to show.
pub fn list_text(acls: &[ListedAcl], principals: &[Principal]) -> String {
    if principals.is_empty() {
        return grouped("Current ACLs for resource", acls)
            .unwrap_or_else(|| "No ACLs found.\n".to_string());
    }
    let mut output = String::new();
    for principal in principals {
        let name = principal.to_string();
        let own: Vec<ListedAcl> = acls
            .iter()
            .filter(|acl| acl.principal == name)
            .cloned()
            .collect();
        let _ = writeln!(output, "ACLs for principal `{name}`");
        output.push_str(
            &grouped("Current ACLs for resource", &own)
                .unwrap_or_else(|| "No ACLs found.\n\n".to_string()),
        );
    }
    output
}

/// `riffle acls list --format json`: a pretty JSON array of the ACLs (of `principals` only,
/// if given), sorted by resource, then entry.
pub fn list_json(acls: &[ListedAcl], principals: &[Principal]) -> String {
    let names: Vec<String> = principals.iter().map(ToString::to_string).collect();
    let mut selected: Vec<&ListedAcl> = acls
        .iter()
        .filter(|acl| names.is_empty() || names.contains(&acl.principal))
        .collect();
    selected.sort();
    selected.dedup();
    // Strings and a Vec of them always serialize.
    let mut text = serde_json::to_string_pretty(&selected).unwrap_or_else(|_| "[]".into());
    text.push('\n');
    text
}

/// What `add` did: "Acl ... already exists." for each entry that was there, then the added
/// ones grouped under "Added ACLs for resource".
pub fn added_text(existing: &[AclBinding], added: &[Grant]) -> String {
    let mut output = String::new();
    for binding in existing {
        let _ = writeln!(output, "Acl {binding} already exists.");
    }
    let added: Vec<ListedAcl> = added
        .iter()
        .flat_map(|grant| {
            grant.entries.iter().map(|entry| {
                ListedAcl::from_binding(&AclBinding {
                    pattern: grant.pattern.clone(),
                    entry: entry.clone(),
                })
            })
        })
        .collect();
    output.push_str(&grouped("Added ACLs for resource", &added).unwrap_or_default());
    output
}

/// What `remove` did: the removed ACLs grouped under "Removed ACLs for resource", or a line
/// saying nothing matched.
pub fn removed_text(removed: &[ListedAcl]) -> String {
    grouped("Removed ACLs for resource", removed)
        .unwrap_or_else(|| "No ACLs matched: nothing was removed.\n".to_string())
}

/// The question `remove` asks before removing what `filter_text` selects.
pub fn confirmation_question(filter_text: &str, entries: &[AccessControlEntry]) -> String {
    if entries.is_empty() {
        return format!(
            "Are you sure you want to delete all ACLs for resource filter `{filter_text}`? (y/n) "
        );
    }
    let mut question = String::from("Are you sure you want to remove ACLs:\n");
    for entry in entries {
        let _ = writeln!(question, "\t{entry}");
    }
    let _ = write!(question, " from resource filter `{filter_text}`? (y/n) ");
    question
}

/// `acls` sorted and grouped by resource, each group under "`heading` `resource`:", or
/// `None` when there are none.
fn grouped(heading: &str, acls: &[ListedAcl]) -> Option<String> {
    if acls.is_empty() {
        return None;
    }
    let mut by_resource: BTreeMap<(&str, &str, &str), Vec<&ListedAcl>> = BTreeMap::new();
    let mut sorted: Vec<&ListedAcl> = acls.iter().collect();
    sorted.sort();
    sorted.dedup();
    for acl in sorted {
        let resource = (
            acl.resource_type.as_str(),
            acl.resource_name.as_str(),
            acl.pattern_type.as_str(),
        );
        by_resource.entry(resource).or_default().push(acl);
    }
    let mut output = String::new();
    for acls in by_resource.values() {
        let resource = acls.first().map(|acl| acl.resource()).unwrap_or_default();
        let _ = writeln!(output, "{heading} `{resource}`:");
        for acl in acls {
            let _ = writeln!(output, "\t{}", acl.entry());
        }
        output.push('\n');
    }
    Some(output)
}

/// Kafka's name of a resource type code, including the types Riffle keeps no ACLs for.
fn resource_type_name(code: i8) -> String {
    match (ResourceType::from_code(code), code) {
        (Some(resource_type), _) => resource_type.name().to_string(),
        (None, 6) => "DELEGATION_TOKEN".to_string(),
        (None, 7) => "USER".to_string(),
        (None, code) => unknown(code),
    }
}

fn pattern_type_name(code: i8) -> String {
    PatternType::from_code(code).map_or_else(|| unknown(code), |pattern| pattern.name().into())
}

fn operation_name(code: i8) -> String {
    AclOperation::from_code(code).map_or_else(|| unknown(code), |operation| operation.name().into())
}

fn permission_name(code: i8) -> String {
    AclPermission::from_code(code)
        .map_or_else(|| unknown(code), |permission| permission.name().into())
}

fn unknown(code: i8) -> String {
    format!("UNKNOWN({code})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use riffle_protocol::api::describe_acls::AclDescription;

    fn described() -> Vec<DescribeAclsResource> {
        let acl = |principal: &str, operation: i8, permission_type: i8| AclDescription {
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission_type,
        };
        vec![
            DescribeAclsResource {
                resource_type: 2,
                resource_name: "cli-orders".into(),
                pattern_type: 3,
                acls: vec![acl("User:alice", 4, 3), acl("User:alice", 3, 3)],
            },
            DescribeAclsResource {
                resource_type: 2,
                resource_name: "cli-".into(),
                pattern_type: 4,
                acls: vec![acl("User:bob", 4, 2)],
            },
            DescribeAclsResource {
                resource_type: 7,
                resource_name: "User:carol".into(),
                pattern_type: 3,
                acls: vec![acl("User:carol", 99, 3)],
            },
        ]
    }

    #[test]
    fn list_text_groups_by_resource_in_kafka_acls_words() {
        // Sorted by resource, entries sorted within, kafka-acls's headings; an unknown code
        // is shown, not refused.
        let acls = ListedAcl::from_described(described());
        assert_eq!(
            list_text(&acls, &[]),
            "Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=cli-, patternType=PREFIXED)`:\n\
             \t(principal=User:bob, host=*, operation=WRITE, permissionType=DENY)\n\
             \n\
             Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=cli-orders, patternType=LITERAL)`:\n\
             \t(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)\n\
             \t(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW)\n\
             \n\
             Current ACLs for resource `ResourcePattern(resourceType=USER, name=User:carol, patternType=LITERAL)`:\n\
             \t(principal=User:carol, host=*, operation=UNKNOWN(99), permissionType=ALLOW)\n\
             \n"
        );
        assert_eq!(list_text(&[], &[]), "No ACLs found.\n");
    }

    #[test]
    fn list_by_principal_shows_only_theirs() {
        // --principal in text (a heading per principal) and in JSON (a filter).
        let acls = ListedAcl::from_described(described());
        let text = list_text(&acls, &[Principal::user("bob"), Principal::user("dave")]);
        assert_eq!(
            text,
            "ACLs for principal `User:bob`\n\
             Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=cli-, patternType=PREFIXED)`:\n\
             \t(principal=User:bob, host=*, operation=WRITE, permissionType=DENY)\n\
             \n\
             ACLs for principal `User:dave`\n\
             No ACLs found.\n\n"
        );
        let json = list_json(&acls, &[Principal::user("bob")]);
        let parsed: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(
            parsed,
            serde_json::json!([{
                "resource_type": "TOPIC",
                "resource_name": "cli-",
                "pattern_type": "PREFIXED",
                "principal": "User:bob",
                "host": "*",
                "operation": "WRITE",
                "permission_type": "DENY",
            }])
        );
        assert_eq!(list_json(&[], &[]), "[]\n");
    }

    #[test]
    fn the_remove_question_lists_what_goes() {
        // With entries, each on its own line; without, "all ACLs" of the filter.
        let entry = AccessControlEntry {
            principal: Principal::user("alice"),
            host: riffle_server::security::acl::AclHost::Any,
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        };
        assert_eq!(
            confirmation_question("F", &[entry]),
            "Are you sure you want to remove ACLs:\n\
             \t(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)\n \
             from resource filter `F`? (y/n) "
        );
        assert_eq!(
            confirmation_question("F", &[]),
            "Are you sure you want to delete all ACLs for resource filter `F`? (y/n) "
        );
    }
}
