//! Kafka's ACL model: what an ACL names (a resource pattern), whom it names (a principal and
//! a host), what it says (an operation, allowed or denied), and the filters that DescribeAcls
//! and DeleteAcls select ACLs with.
//!
//! Every enum carries Kafka's wire code, so an ACL written by `kafka-acls.sh` reads back the
//! same here and the other way round. The decision (which ACLs apply to a request, and what
//! they add up to) is [`super::authorizer`]'s; this module only describes and validates.
//!
//! Riffle authorizes four resource types: topics, groups, the cluster and transactional ids.
//! Kafka's delegation-token and user resources have nothing to protect here, so an ACL on
//! them is refused (INVALID_REQUEST) rather than stored and never consulted.
//!
//! Hosts are `*` or one IP address. Kafka accepts any string and compares it with the client's
//! address as text, so an ACL naming a host by name silently never matches; here it is
//! refused when created, and addresses compare as addresses (`::1` is `0:0:0:0:0:0:0:1`).

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::Principal;

/// The name of the one cluster resource, as Kafka names it.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The resource name, host or principal name that matches any.
pub const WILDCARD: &str = "*";

/// Kafka's filter code for "any resource type / pattern type / operation / permission".
const ANY_CODE: i8 = 1;
/// Kafka's pattern-type filter code for "the patterns that match this name" (MATCH).
const MATCH_CODE: i8 = 2;

/// What an ACL, or an authorization check, is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    /// A topic, by name.
    Topic,
    /// A consumer group, by id.
    Group,
    /// The cluster itself, always named [`CLUSTER_NAME`].
    Cluster,
    /// A transactional id.
    TransactionalId,
}

impl ResourceType {
    /// Every type, in Kafka's code order.
    pub const ALL: [ResourceType; 4] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
    ];

    /// Kafka's wire code.
    pub fn code(self) -> i8 {
        match self {
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
        }
    }

    /// The type with Kafka's wire `code`, if Riffle authorizes it.
    pub fn from_code(code: i8) -> Option<ResourceType> {
        ResourceType::ALL
            .into_iter()
            .find(|kind| kind.code() == code)
    }

    /// Kafka's name, as `kafka-acls.sh` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::Cluster => "CLUSTER",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
        }
    }

    /// The operations an ACL on this type can grant, as Kafka lists them
    /// (`AclEntry.supportedOperations`): what `riffle acls` accepts and what the
    /// authorized-operations fields report.
    pub fn operations(self) -> &'static [AclOperation] {
        use AclOperation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write],
        }
    }

    /// Kafka's codes of Riffle-unsupported resource types a filter may still name: they
    /// match no ACL here (DELEGATION_TOKEN 6, USER 7).
    fn is_known_elsewhere(code: i8) -> bool {
        matches!(code, 6 | 7)
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// How an ACL's resource name is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternType {
    /// The name exactly, or every name when it is `*`.
    Literal,
    /// Every name that starts with it.
    Prefixed,
}

impl PatternType {
    /// Kafka's wire code.
    pub fn code(self) -> i8 {
        match self {
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    /// The pattern type with Kafka's wire `code`.
    pub fn from_code(code: i8) -> Option<PatternType> {
        match code {
            3 => Some(PatternType::Literal),
            4 => Some(PatternType::Prefixed),
            _ => None,
        }
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            PatternType::Literal => "LITERAL",
            PatternType::Prefixed => "PREFIXED",
        }
    }
}

/// What an ACL lets a principal do, or forbids it to do.
///
/// Kafka's implied operations apply to allow ACLs only: an allowed Read, Write, Delete or
/// Alter also allows Describe, an allowed AlterConfigs also allows DescribeConfigs, and All
/// allows everything; a denied Read denies Read alone (a denied All denies everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AclOperation {
    /// Every operation.
    All,
    /// Consume (topics), join and commit (groups).
    Read,
    /// Produce (topics), use a transactional id.
    Write,
    /// Create topics.
    Create,
    /// Delete topics, records, groups and their offsets.
    Delete,
    /// Grow topics; change ACLs (cluster).
    Alter,
    /// See that a resource exists and read its metadata.
    Describe,
    /// Broker-to-broker requests.
    ClusterAction,
    /// Read configs.
    DescribeConfigs,
    /// Change configs.
    AlterConfigs,
    /// Get a producer id without a transactional id (cluster).
    IdempotentWrite,
    /// Create delegation tokens (Kafka's user resources).
    CreateTokens,
    /// Describe delegation tokens.
    DescribeTokens,
    /// Two-phase commit transactions (KIP-939).
    TwoPhaseCommit,
}

impl AclOperation {
    /// Every operation, in Kafka's code order.
    pub const ALL: [AclOperation; 14] = [
        AclOperation::All,
        AclOperation::Read,
        AclOperation::Write,
        AclOperation::Create,
        AclOperation::Delete,
        AclOperation::Alter,
        AclOperation::Describe,
        AclOperation::ClusterAction,
        AclOperation::DescribeConfigs,
        AclOperation::AlterConfigs,
        AclOperation::IdempotentWrite,
        AclOperation::CreateTokens,
        AclOperation::DescribeTokens,
        AclOperation::TwoPhaseCommit,
    ];

    /// Kafka's wire code: All is 2, then one more for each operation in [`Self::ALL`].
    pub fn code(self) -> i8 {
        match self {
            AclOperation::All => 2,
            AclOperation::Read => 3,
            AclOperation::Write => 4,
            AclOperation::Create => 5,
            AclOperation::Delete => 6,
            AclOperation::Alter => 7,
            AclOperation::Describe => 8,
            AclOperation::ClusterAction => 9,
            AclOperation::DescribeConfigs => 10,
            AclOperation::AlterConfigs => 11,
            AclOperation::IdempotentWrite => 12,
            AclOperation::CreateTokens => 13,
            AclOperation::DescribeTokens => 14,
            AclOperation::TwoPhaseCommit => 15,
        }
    }

    /// The operation with Kafka's wire `code`.
    pub fn from_code(code: i8) -> Option<AclOperation> {
        AclOperation::ALL
            .into_iter()
            .find(|operation| operation.code() == code)
    }

    /// Kafka's name, as `kafka-acls.sh` prints it.
    pub fn name(self) -> &'static str {
        match self {
            AclOperation::All => "ALL",
            AclOperation::Read => "READ",
            AclOperation::Write => "WRITE",
            AclOperation::Create => "CREATE",
            AclOperation::Delete => "DELETE",
            AclOperation::Alter => "ALTER",
            AclOperation::Describe => "DESCRIBE",
            AclOperation::ClusterAction => "CLUSTER_ACTION",
            AclOperation::DescribeConfigs => "DESCRIBE_CONFIGS",
            AclOperation::AlterConfigs => "ALTER_CONFIGS",
            AclOperation::IdempotentWrite => "IDEMPOTENT_WRITE",
            AclOperation::CreateTokens => "CREATE_TOKENS",
            AclOperation::DescribeTokens => "DESCRIBE_TOKENS",
            AclOperation::TwoPhaseCommit => "TWO_PHASE_COMMIT",
        }
    }

    /// Reads an operation as `kafka-acls.sh --operation` takes it (`IdempotentWrite`), or as
    /// Kafka prints it (`IDEMPOTENT_WRITE`), in any case, with `-` or `_` or neither.
    pub fn parse(text: &str) -> Option<AclOperation> {
        let wanted = squash(text);
        AclOperation::ALL
            .into_iter()
            .find(|operation| squash(operation.name()) == wanted)
    }

    /// Whether an allow ACL for `self` allows `requested`: the same operation, All, or one
    /// that implies it (see the type's doc).
    pub fn allows(self, requested: AclOperation) -> bool {
        use AclOperation::*;
        self == All
            || self == requested
            || (requested == Describe && matches!(self, Read | Write | Delete | Alter))
            || (requested == DescribeConfigs && self == AlterConfigs)
    }

    /// Whether a deny ACL for `self` denies `requested`: the same operation, or All. Denials
    /// imply nothing, so denying Read leaves Describe alone.
    pub fn denies(self, requested: AclOperation) -> bool {
        self == AclOperation::All || self == requested
    }
}

impl fmt::Display for AclOperation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// Lower case without separators, so `IdempotentWrite`, `IDEMPOTENT_WRITE` and
/// `idempotent-write` compare equal.
fn squash(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether an ACL allows or denies. A matching deny always wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AclPermission {
    /// Forbid the operation, whatever else allows it.
    Deny,
    /// Allow the operation, unless a matching deny forbids it.
    Allow,
}

impl AclPermission {
    /// Kafka's wire code.
    pub fn code(self) -> i8 {
        match self {
            AclPermission::Deny => 2,
            AclPermission::Allow => 3,
        }
    }

    /// The permission with Kafka's wire `code`.
    pub fn from_code(code: i8) -> Option<AclPermission> {
        match code {
            2 => Some(AclPermission::Deny),
            3 => Some(AclPermission::Allow),
            _ => None,
        }
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            AclPermission::Deny => "DENY",
            AclPermission::Allow => "ALLOW",
        }
    }
}

/// The client address an ACL applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AclHost {
    /// Any address (`*`).
    Any,
    /// This address only.
    Ip(IpAddr),
}

impl AclHost {
    /// Reads `*` or an IP address.
    ///
    /// # Errors
    /// For anything else, such as a host name.
    pub fn parse(text: &str) -> Result<AclHost, InvalidAcl> {
        if text == WILDCARD {
            return Ok(AclHost::Any);
        }
        text.parse::<IpAddr>()
            .map(|address| AclHost::Ip(address.to_canonical()))
            .map_err(|_| {
                InvalidAcl(format!(
                    "invalid host '{text}': an ACL names '*' or one IP address"
                ))
            })
    }

    /// Whether a client at `address` is covered. An IPv4 client seen through an IPv6 socket
    /// (`::ffff:10.0.0.1`) is its IPv4 address, as the ACL's author meant it.
    pub fn matches(self, address: IpAddr) -> bool {
        match self {
            AclHost::Any => true,
            AclHost::Ip(host) => host == address.to_canonical(),
        }
    }
}

impl fmt::Display for AclHost {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AclHost::Any => formatter.write_str(WILDCARD),
            AclHost::Ip(address) => write!(formatter, "{address}"),
        }
    }
}

/// The resources an ACL covers: a type, a name and how the name matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourcePattern {
    /// The resource type.
    pub resource_type: ResourceType,
    /// The name, prefix, or `*` (literal) for every resource of the type.
    pub name: String,
    /// How `name` matches.
    pub pattern_type: PatternType,
}

impl fmt::Display for ResourcePattern {
    /// Kafka's `ResourcePattern.toString`, which `kafka-acls.sh` prints.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "ResourcePattern(resourceType={}, name={}, patternType={})",
            self.resource_type,
            self.name,
            self.pattern_type.name()
        )
    }
}

/// Who an ACL names and what it says about them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessControlEntry {
    /// The principal; `User:*` names every principal.
    pub principal: Principal,
    /// The client address.
    pub host: AclHost,
    /// The operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission: AclPermission,
}

impl AccessControlEntry {
    /// Whether this entry names every principal (`User:*`).
    pub fn is_any_principal(&self) -> bool {
        is_wildcard_principal(&self.principal)
    }
}

/// Whether `principal` is Kafka's wildcard `User:*`.
pub fn is_wildcard_principal(principal: &Principal) -> bool {
    principal.principal_type == super::principal::USER_TYPE && principal.name == WILDCARD
}

impl fmt::Display for AccessControlEntry {
    /// Kafka's `AccessControlEntry.toString`, which `kafka-acls.sh` prints.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "(principal={}, host={}, operation={}, permissionType={})",
            self.principal,
            self.host,
            self.operation,
            self.permission.name()
        )
    }
}

/// One ACL: a resource pattern and an entry. Two ACLs with the same fields are the same ACL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "AclRecord", try_from = "AclRecord")]
pub struct AclBinding {
    /// What it covers.
    pub pattern: ResourcePattern,
    /// Whom, and what it says.
    pub entry: AccessControlEntry,
}

/// Why an ACL or a filter was refused: answered as INVALID_REQUEST with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidAcl(pub String);

/// The wire fields of one ACL, as CreateAcls carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFields<'a> {
    /// Kafka's resource type code.
    pub resource_type: i8,
    /// The resource name.
    pub resource_name: &'a str,
    /// Kafka's pattern type code.
    pub pattern_type: i8,
    /// `TYPE:NAME`.
    pub principal: &'a str,
    /// `*` or an IP address.
    pub host: &'a str,
    /// Kafka's operation code.
    pub operation: i8,
    /// Kafka's permission code.
    pub permission: i8,
}

impl AclBinding {
    /// Checks a new ACL's wire fields, as Kafka's controller does (no unknown or "any" codes,
    /// a literal or prefixed pattern, a non-empty name, `kafka-cluster` for the cluster), plus
    /// a principal that reads as `TYPE:NAME` and a host that is `*` or an IP address.
    ///
    /// # Errors
    /// The first problem found, in a message for the client.
    pub fn from_fields(fields: &AclFields<'_>) -> Result<AclBinding, InvalidAcl> {
        let resource_type = ResourceType::from_code(fields.resource_type).ok_or_else(|| {
            InvalidAcl(format!(
                "invalid resource type {}: Riffle authorizes topics (2), groups (3), the \
                 cluster (4) and transactional ids (5)",
                fields.resource_type
            ))
        })?;
        let pattern_type = PatternType::from_code(fields.pattern_type).ok_or_else(|| {
            InvalidAcl(format!(
                "invalid pattern type {}: an ACL is literal (3) or prefixed (4)",
                fields.pattern_type
            ))
        })?;
        let operation = AclOperation::from_code(fields.operation)
            .ok_or_else(|| InvalidAcl(format!("invalid operation {}", fields.operation)))?;
        let permission = AclPermission::from_code(fields.permission).ok_or_else(|| {
            InvalidAcl(format!(
                "invalid permission type {}: an ACL allows (3) or denies (2)",
                fields.permission
            ))
        })?;
        if fields.resource_name.is_empty() {
            return Err(InvalidAcl("Resource name should not be empty".into()));
        }
        if resource_type == ResourceType::Cluster && fields.resource_name != CLUSTER_NAME {
            return Err(InvalidAcl(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            )));
        }
        let principal =
            Principal::parse(fields.principal).map_err(|error| InvalidAcl(error.to_string()))?;
        let host = AclHost::parse(fields.host)?;
        Ok(AclBinding {
            pattern: ResourcePattern {
                resource_type,
                name: fields.resource_name.to_string(),
                pattern_type,
            },
            entry: AccessControlEntry {
                principal,
                host,
                operation,
                permission,
            },
        })
    }
}

impl fmt::Display for AclBinding {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.pattern, self.entry)
    }
}

/// An ACL as the metadata log stores it: readable JSON, with the principal and host as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AclRecord {
    resource_type: ResourceType,
    resource_name: String,
    pattern_type: PatternType,
    principal: String,
    host: String,
    operation: AclOperation,
    permission: AclPermission,
}

impl From<AclBinding> for AclRecord {
    fn from(binding: AclBinding) -> AclRecord {
        AclRecord {
            resource_type: binding.pattern.resource_type,
            resource_name: binding.pattern.name,
            pattern_type: binding.pattern.pattern_type,
            principal: binding.entry.principal.to_string(),
            host: binding.entry.host.to_string(),
            operation: binding.entry.operation,
            permission: binding.entry.permission,
        }
    }
}

impl TryFrom<AclRecord> for AclBinding {
    type Error = InvalidAcl;

    fn try_from(record: AclRecord) -> Result<AclBinding, InvalidAcl> {
        let principal =
            Principal::parse(&record.principal).map_err(|error| InvalidAcl(error.to_string()))?;
        Ok(AclBinding {
            pattern: ResourcePattern {
                resource_type: record.resource_type,
                name: record.resource_name,
                pattern_type: record.pattern_type,
            },
            entry: AccessControlEntry {
                principal,
                host: AclHost::parse(&record.host)?,
                operation: record.operation,
                permission: record.permission,
            },
        })
    }
}

/// One field of a filter: any value, exactly one, or (for a value Kafka knows but Riffle
/// never stores) none at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select<T> {
    /// Every value (Kafka's ANY, code 1).
    Any,
    /// This value only.
    Exactly(T),
    /// No value: a Kafka resource type Riffle keeps no ACLs for.
    Nothing,
}

impl<T: PartialEq> Select<T> {
    fn matches(&self, value: &T) -> bool {
        match self {
            Select::Any => true,
            Select::Exactly(wanted) => wanted == value,
            Select::Nothing => false,
        }
    }
}

/// Which pattern types a filter selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatternSelect {
    /// Every pattern type; a name must equal the pattern's name.
    Any,
    /// Every pattern that would match the filter's name as a resource: the literal name, the
    /// literal `*`, and every prefix of it (Kafka's MATCH).
    Match,
    /// This pattern type; a name must equal the pattern's name.
    Exactly(PatternType),
}

impl PatternSelect {
    /// Kafka's wire code: 1 any, 2 match, else the pattern type's own.
    pub fn code(self) -> i8 {
        match self {
            PatternSelect::Any => ANY_CODE,
            PatternSelect::Match => MATCH_CODE,
            PatternSelect::Exactly(pattern_type) => pattern_type.code(),
        }
    }

    /// Kafka's name, as `kafka-acls.sh` prints a filter: `ANY`, `MATCH`, `LITERAL`, `PREFIXED`.
    pub fn name(self) -> &'static str {
        match self {
            PatternSelect::Any => "ANY",
            PatternSelect::Match => "MATCH",
            PatternSelect::Exactly(pattern_type) => pattern_type.name(),
        }
    }
}

/// A DescribeAcls or DeleteAcls filter: each field narrows the ACLs selected; null names,
/// principals and hosts select any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    /// The resource type.
    pub resource_type: Select<ResourceType>,
    /// The resource name, or `None` for any.
    pub resource_name: Option<String>,
    /// The pattern types.
    pub pattern_type: PatternSelect,
    /// The principal as text (`User:alice`), or `None` for any.
    pub principal: Option<String>,
    /// The host as text, or `None` for any.
    pub host: Option<String>,
    /// The operation.
    pub operation: Select<AclOperation>,
    /// The permission.
    pub permission: Select<AclPermission>,
}

/// The wire fields of one filter, as DescribeAcls and DeleteAcls carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilterFields<'a> {
    /// Kafka's resource type code, 1 for any.
    pub resource_type: i8,
    /// The name, or null for any.
    pub resource_name: Option<&'a str>,
    /// Kafka's pattern type code: 1 any, 2 match, 3 literal, 4 prefixed.
    pub pattern_type: i8,
    /// The principal, or null for any.
    pub principal: Option<&'a str>,
    /// The host, or null for any.
    pub host: Option<&'a str>,
    /// Kafka's operation code, 1 for any.
    pub operation: i8,
    /// Kafka's permission code, 1 for any.
    pub permission: i8,
}

impl AclFilter {
    /// The filter that selects every ACL.
    pub fn any() -> AclFilter {
        AclFilter {
            resource_type: Select::Any,
            resource_name: None,
            pattern_type: PatternSelect::Any,
            principal: None,
            host: None,
            operation: Select::Any,
            permission: Select::Any,
        }
    }

    /// Checks a filter's wire fields: an unknown code (0, or one Kafka does not define) is
    /// refused, as Kafka refuses filters with UNKNOWN elements.
    ///
    /// # Errors
    /// The first unknown code, in a message for the client.
    pub fn from_fields(fields: &AclFilterFields<'_>) -> Result<AclFilter, InvalidAcl> {
        let unknown = |what: &str, code: i8| InvalidAcl(format!("unknown {what} {code} in filter"));
        let resource_type = match fields.resource_type {
            ANY_CODE => Select::Any,
            code if ResourceType::is_known_elsewhere(code) => Select::Nothing,
            code => Select::Exactly(
                ResourceType::from_code(code).ok_or_else(|| unknown("resource type", code))?,
            ),
        };
        let pattern_type = match fields.pattern_type {
            ANY_CODE => PatternSelect::Any,
            MATCH_CODE => PatternSelect::Match,
            code => PatternSelect::Exactly(
                PatternType::from_code(code).ok_or_else(|| unknown("pattern type", code))?,
            ),
        };
        let operation = match fields.operation {
            ANY_CODE => Select::Any,
            code => Select::Exactly(
                AclOperation::from_code(code).ok_or_else(|| unknown("operation", code))?,
            ),
        };
        let permission = match fields.permission {
            ANY_CODE => Select::Any,
            code => Select::Exactly(
                AclPermission::from_code(code).ok_or_else(|| unknown("permission type", code))?,
            ),
        };
        Ok(AclFilter {
            resource_type,
            resource_name: fields.resource_name.map(str::to_string),
            pattern_type,
            principal: fields.principal.map(str::to_string),
            host: fields.host.map(str::to_string),
            operation,
            permission,
        })
    }

    /// Whether `binding` is selected, by Kafka's `AclBindingFilter.matches`.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_pattern(&binding.pattern) && self.matches_entry(&binding.entry)
    }

    fn matches_pattern(&self, pattern: &ResourcePattern) -> bool {
        if !self.resource_type.matches(&pattern.resource_type) {
            return false;
        }
        if let PatternSelect::Exactly(wanted) = self.pattern_type
            && wanted != pattern.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        match (self.pattern_type, pattern.pattern_type) {
            (PatternSelect::Match, PatternType::Literal) => {
                *name == pattern.name || pattern.name == WILDCARD
            }
            (PatternSelect::Match, PatternType::Prefixed) => name.starts_with(&pattern.name),
            _ => *name == pattern.name,
        }
    }

    fn matches_entry(&self, entry: &AccessControlEntry) -> bool {
        let principal_matches = self.principal.as_deref().is_none_or(|wanted| {
            Principal::parse(wanted).is_ok_and(|wanted| wanted == entry.principal)
        });
        // Hosts compare as addresses, so a filter for `::1` finds the ACL stored for it; a
        // filter host that is neither `*` nor an address finds nothing.
        let host_matches = self
            .host
            .as_deref()
            .is_none_or(|wanted| AclHost::parse(wanted).is_ok_and(|wanted| wanted == entry.host));
        principal_matches
            && host_matches
            && self.operation.matches(&entry.operation)
            && self.permission.matches(&entry.permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(resource_type: i8, name: &'a str, principal: &'a str) -> AclFields<'a> {
        AclFields {
            resource_type,
            resource_name: name,
            pattern_type: 3,
            principal,
            host: "*",
            operation: 3,
            permission: 3,
        }
    }

    fn binding(name: &str, pattern_type: PatternType) -> AclBinding {
        AclBinding {
            pattern: ResourcePattern {
                resource_type: ResourceType::Topic,
                name: name.into(),
                pattern_type,
            },
            entry: AccessControlEntry {
                principal: Principal::user("alice"),
                host: AclHost::Any,
                operation: AclOperation::Read,
                permission: AclPermission::Allow,
            },
        }
    }

    fn filter(name: Option<&str>, pattern_type: i8) -> AclFilter {
        AclFilter::from_fields(&AclFilterFields {
            resource_type: 2,
            resource_name: name,
            pattern_type,
            principal: None,
            host: None,
            operation: 1,
            permission: 1,
        })
        .expect("a valid filter")
    }

    #[test]
    fn codes_round_trip_with_kafkas_numbers() {
        // Every enum reads back its own code, and a few codes are pinned to Kafka's values.
        for kind in ResourceType::ALL {
            assert_eq!(ResourceType::from_code(kind.code()), Some(kind));
        }
        for operation in AclOperation::ALL {
            assert_eq!(AclOperation::from_code(operation.code()), Some(operation));
            assert_eq!(AclOperation::parse(operation.name()), Some(operation));
        }
        assert_eq!(ResourceType::TransactionalId.code(), 5);
        assert_eq!(AclOperation::IdempotentWrite.code(), 12);
        assert_eq!(AclPermission::Allow.code(), 3);
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(
            AclOperation::parse("IdempotentWrite"),
            Some(AclOperation::IdempotentWrite)
        );
        assert_eq!(
            AclOperation::parse("describe-configs"),
            Some(AclOperation::DescribeConfigs)
        );
        assert_eq!(AclOperation::parse("Fly"), None);
    }

    #[test]
    fn implied_operations_follow_kafka_and_apply_to_allows_only() {
        // Read/Write/Delete/Alter allow Describe, AlterConfigs allows DescribeConfigs, All
        // allows everything; denials deny their own operation or, for All, every one.
        use AclOperation::*;
        for implying in [Read, Write, Delete, Alter, Describe, All] {
            assert!(implying.allows(Describe), "{implying}");
        }
        for not_implying in [Create, ClusterAction, DescribeConfigs, IdempotentWrite] {
            assert!(!not_implying.allows(Describe), "{not_implying}");
        }
        assert!(AlterConfigs.allows(DescribeConfigs));
        assert!(!DescribeConfigs.allows(AlterConfigs));
        assert!(!Write.allows(Read));
        assert!(Read.denies(Read) && !Read.denies(Describe));
        assert!(All.denies(Describe) && All.denies(IdempotentWrite));
    }

    #[test]
    fn new_acls_are_checked_like_kafkas_controller_checks_them() {
        // A good ACL reads; each bad field is refused with a message naming it.
        let good = AclBinding::from_fields(&fields(2, "orders", "User:alice")).expect("valid");
        assert_eq!(good.entry.principal, Principal::user("alice"));
        let cases: [(AclFields<'_>, &str); 8] = [
            (fields(1, "orders", "User:alice"), "resource type 1"),
            (fields(7, "orders", "User:alice"), "resource type 7"),
            (fields(2, "", "User:alice"), "should not be empty"),
            (fields(4, "other", "User:alice"), "kafka-cluster"),
            (fields(2, "orders", "alice"), "not a principal"),
            (
                AclFields {
                    host: "broker.example",
                    ..fields(2, "t", "User:a")
                },
                "invalid host",
            ),
            (
                AclFields {
                    pattern_type: 2,
                    ..fields(2, "t", "User:a")
                },
                "pattern type 2",
            ),
            (
                AclFields {
                    operation: 1,
                    ..fields(2, "t", "User:a")
                },
                "operation 1",
            ),
        ];
        for (bad, expected) in cases {
            let error = AclBinding::from_fields(&bad).expect_err("invalid");
            assert!(
                error.0.contains(expected),
                "{error} should mention {expected}"
            );
        }
    }

    #[test]
    fn hosts_compare_as_addresses() {
        // `::1` and its long form are one host; an IPv4 client through an IPv6 socket is
        // its IPv4 address; `*` covers everyone.
        let long = AclHost::parse("0:0:0:0:0:0:0:1").expect("an address");
        assert_eq!(long, AclHost::parse("::1").expect("an address"));
        let v4 = AclHost::parse("10.0.0.1").expect("an address");
        assert!(v4.matches("::ffff:10.0.0.1".parse().expect("an address")));
        assert!(!v4.matches("10.0.0.2".parse().expect("an address")));
        assert!(AclHost::Any.matches("192.0.2.7".parse().expect("an address")));
        assert_eq!(AclHost::Any.to_string(), "*");
    }

    #[test]
    fn filters_select_like_kafkas_binding_filter() {
        // Literal and any compare names exactly; match finds the literal name, the literal
        // wildcard and every covering prefix; a pattern type narrows; a null name selects all.
        let literal = binding("orders", PatternType::Literal);
        let wildcard = binding("*", PatternType::Literal);
        let prefix = binding("ord", PatternType::Prefixed);
        let other = binding("payments", PatternType::Literal);
        let selected = |filter: &AclFilter| {
            [&literal, &wildcard, &prefix, &other]
                .into_iter()
                .filter(|binding| filter.matches(binding))
                .map(|binding| binding.pattern.name.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(selected(&filter(Some("orders"), 1)), vec!["orders"]);
        assert_eq!(
            selected(&filter(Some("orders"), 2)),
            vec!["orders", "*", "ord"]
        );
        assert_eq!(selected(&filter(Some("ord"), 4)), vec!["ord"]);
        assert_eq!(selected(&filter(Some("ord"), 3)), Vec::<&str>::new());
        assert_eq!(selected(&filter(None, 3)), vec!["orders", "*", "payments"]);
        assert_eq!(selected(&AclFilter::any()).len(), 4);
    }

    #[test]
    fn filters_refuse_unknown_codes_and_select_nothing_for_foreign_types() {
        // Code 0 (UNKNOWN) or an undefined code in any field is INVALID_REQUEST; a delegation
        // token filter is valid and matches nothing.
        let base = AclFilterFields {
            resource_type: 1,
            resource_name: None,
            pattern_type: 1,
            principal: Some("User:alice"),
            host: Some("::1"),
            operation: 1,
            permission: 1,
        };
        for bad in [
            AclFilterFields {
                resource_type: 0,
                ..base.clone()
            },
            AclFilterFields {
                pattern_type: 9,
                ..base.clone()
            },
            AclFilterFields {
                operation: 0,
                ..base.clone()
            },
            AclFilterFields {
                permission: 4,
                ..base.clone()
            },
        ] {
            assert!(AclFilter::from_fields(&bad).is_err(), "{bad:?}");
        }
        let tokens = AclFilter::from_fields(&AclFilterFields {
            resource_type: 6,
            ..base.clone()
        })
        .expect("valid");
        assert!(!tokens.matches(&binding("orders", PatternType::Literal)));
        let by_principal = AclFilter::from_fields(&base).expect("valid");
        let mut on_loopback = binding("orders", PatternType::Literal);
        assert!(!by_principal.matches(&on_loopback));
        on_loopback.entry.host = AclHost::parse("0:0:0:0:0:0:0:1").expect("an address");
        assert!(by_principal.matches(&on_loopback));
    }

    #[test]
    fn stored_acls_read_back_as_written() {
        // The metadata log's JSON form of an ACL reads back to the same ACL, with readable
        // names for the enums.
        let acl = binding("ord", PatternType::Prefixed);
        let json = serde_json::to_string(&acl).expect("serializes");
        assert!(json.contains("\"pattern_type\":\"prefixed\""), "{json}");
        assert!(json.contains("\"principal\":\"User:alice\""), "{json}");
        let back: AclBinding = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, acl);
        let bad = json.replace("User:alice", "alice");
        assert!(serde_json::from_str::<AclBinding>(&bad).is_err());
    }
}
