//! The ACL authorizer (`--authorizer acl`): decides whether a principal, from an address, may
//! perform an operation on a resource, as Kafka's `StandardAuthorizer` decides it.
//!
//! # The decision
//! 1. A super user (`--super-users`) may do anything.
//! 2. The ACLs that apply are those whose pattern covers the resource (the literal name, the
//!    literal `*`, any prefix of the name) and whose principal (or `User:*`) and host (or
//!    `*`) match the request.
//! 3. A matching deny for the operation (or for All) denies, whatever allows it.
//! 4. Otherwise a matching allow for the operation, or one implying it (see
//!    [`AclOperation::allows`]), allows.
//! 5. Otherwise the request is denied, unless no ACL at all covers the resource (for any
//!    principal) and `--allow-everyone-if-no-acl-found` is set.
//!
//! # Cost
//! Produce and Fetch check every topic of every request, so a check must be cheap: it never
//! allocates and never scans the whole ACL list. ACLs are indexed by resource type, then by
//! name (literal names and prefixes in hash maps, the wildcard apart), then by principal.
//! A check looks up the literal name, the wildcard, and the name's prefixes of the lengths
//! that prefixed ACLs of that type actually have (usually none or one): a few hash lookups,
//! then a scan of the handful of entries one principal has on one pattern.
//!
//! The index is rebuilt whole on each change (ACL changes are rare admin operations) and
//! swapped in under a write lock held only for the swap; checks take the read lock.
//! Without `--authorizer acl` there is no [`Authorizer`] at all, and handlers skip the check
//! on a `None` (see `handler::Access`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard};

use riffle_storage::{MutexRecover, RwLockRecover};

use super::Principal;
use super::acl::{
    AccessControlEntry, AclBinding, AclFilter, AclHost, AclOperation, AclPermission, PatternType,
    ResourceType, WILDCARD, is_wildcard_principal,
};

/// The authorizer's settings, from the flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// Principals that may do anything (Kafka's `super.users`).
    pub super_users: Vec<Principal>,
    /// Whether a resource no ACL covers is open to everyone (Kafka's
    /// `allow.everyone.if.no.acl.found`); by default it is closed.
    pub allow_everyone_if_no_acl_found: bool,
}

/// The ACL authorizer: the ACLs, their index and the decision.
pub struct Authorizer {
    super_users: HashSet<Principal>,
    allow_everyone_if_no_acl_found: bool,
    /// Every ACL, sorted. A change holds this lock from reading the set to publishing the
    /// new index (and, in `Cluster`, across the metadata-log append in between), so changes
    /// apply one at a time and in the order they were logged. Checks never take it.
    acls: Mutex<BTreeSet<AclBinding>>,
    /// What checks read: built from `acls` after each change. The write lock is held only to
    /// swap in a new index, never while building it.
    index: RwLock<AclIndex>,
}

impl Authorizer {
    /// An authorizer holding `acls` (replayed from the metadata log).
    pub fn new(config: AuthorizerConfig, acls: BTreeSet<AclBinding>) -> Authorizer {
        let index = AclIndex::build(&acls);
        Authorizer {
            super_users: config.super_users.into_iter().collect(),
            allow_everyone_if_no_acl_found: config.allow_everyone_if_no_acl_found,
            acls: Mutex::new(acls),
            index: RwLock::new(index),
        }
    }

    /// Whether `principal`, connected from `address`, may perform `operation` on the
    /// resource `resource_type`/`name`. See the module doc for the rules.
    pub fn authorize(
        &self,
        principal: &Principal,
        address: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if self.is_super_user(principal) {
            return true;
        }
        let index = self.read_index();
        let mut covered = false;
        let mut allowed = false;
        for patterns in index.patterns_covering(resource_type, name) {
            covered = true;
            match patterns.decide(principal, address, operation) {
                Some(AclPermission::Deny) => return false,
                Some(AclPermission::Allow) => allowed = true,
                None => {}
            }
        }
        allowed || (!covered && self.allow_everyone_if_no_acl_found)
    }

    /// Whether `principal` may perform `operation` on at least one resource of the type:
    /// Kafka's `authorizeByResourceType` (KIP-679), which lets an idempotent producer with
    /// Write on some topic have a producer id without IdempotentWrite on the cluster.
    ///
    /// As in Kafka: a super user, or anyone allowed on a resource named `hardcode` (so a
    /// wildcard allow and allow-everyone count), may; otherwise some allow of the principal
    /// must cover a name that no deny of the principal covers. This scans the type's ACLs,
    /// which is fine for InitProducerId, once per producer.
    pub fn authorize_any(
        &self,
        principal: &Principal,
        address: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if self.authorize(principal, address, operation, resource_type, "hardcode") {
            return true;
        }
        let acls = self.lock_acls();
        let applicable = acls.iter().filter(|binding| {
            binding.pattern.resource_type == resource_type
                && (binding.entry.principal == *principal || binding.entry.is_any_principal())
                && binding.entry.host.matches(address)
                && binding.entry.operation.denies(operation)
        });
        let (denies, allows): (Vec<&AclBinding>, Vec<&AclBinding>) =
            applicable.partition(|binding| binding.entry.permission == AclPermission::Deny);
        let denied = |pattern_type: PatternType, name: &str| {
            denies
                .iter()
                .any(|deny| deny.pattern.pattern_type == pattern_type && deny.pattern.name == name)
        };
        if denied(PatternType::Literal, WILDCARD) {
            return false;
        }
        allows.iter().any(|allow| {
            let name = allow.pattern.name.as_str();
            let literal_denied = allow.pattern.pattern_type == PatternType::Literal
                && denied(PatternType::Literal, name);
            let prefix_denied = (1..=name.len())
                .filter(|end| name.is_char_boundary(*end))
                .any(|end| denied(PatternType::Prefixed, &name[..end]));
            (allow.pattern.name == WILDCARD && allow.pattern.pattern_type == PatternType::Literal)
                || (!literal_denied && !prefix_denied)
        })
    }

    /// The bit field of `resource_type`'s operations `principal` may perform on `name`, as
    /// the authorized-operations fields of Metadata, DescribeGroups and DescribeCluster report
    /// it: bit `code` set for each allowed operation.
    pub fn authorized_operations(
        &self,
        principal: &Principal,
        address: IpAddr,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        resource_type
            .operations()
            .iter()
            .filter(|operation| {
                self.authorize(principal, address, **operation, resource_type, name)
            })
            .fold(0, |bits, operation| bits | (1 << operation.code()))
    }

    /// Whether `principal` is a super user.
    pub fn is_super_user(&self, principal: &Principal) -> bool {
        !self.super_users.is_empty() && self.super_users.contains(principal)
    }

    /// The ACLs `filter` selects, sorted.
    pub fn acls(&self, filter: &AclFilter) -> Vec<AclBinding> {
        self.lock_acls()
            .iter()
            .filter(|binding| filter.matches(binding))
            .cloned()
            .collect()
    }

    /// How many ACLs there are.
    pub fn acl_count(&self) -> usize {
        self.lock_acls().len()
    }

    /// Starts a change: holds the ACL set until the returned [`AclChange`] is dropped, so the
    /// caller can decide, record the change durably, then apply it, without another change
    /// slipping in between.
    pub fn begin_change(&self) -> AclChange<'_> {
        AclChange {
            authorizer: self,
            acls: self.lock_acls(),
        }
    }

    fn lock_acls(&self) -> MutexGuard<'_, BTreeSet<AclBinding>> {
        self.acls.lock_or_recover()
    }

    fn read_index(&self) -> RwLockReadGuard<'_, AclIndex> {
        self.index.read_or_recover()
    }

    fn publish(&self, acls: &BTreeSet<AclBinding>) {
        let index = AclIndex::build(acls);
        let old = std::mem::replace(&mut *self.index.write_or_recover(), index);
        // Freed here, after the write lock is released.
        drop(old);
    }
}

/// A change to the ACLs in progress; see [`Authorizer::begin_change`].
pub struct AclChange<'a> {
    authorizer: &'a Authorizer,
    acls: MutexGuard<'a, BTreeSet<AclBinding>>,
}

impl AclChange<'_> {
    /// Those of `candidates` not stored yet, each once, in their order: what creating them
    /// adds (creating an ACL that exists succeeds and changes nothing, as in Kafka).
    pub fn absent(&self, candidates: &[AclBinding]) -> Vec<AclBinding> {
        let mut seen = HashSet::new();
        candidates
            .iter()
            .filter(|binding| !self.acls.contains(*binding) && seen.insert(*binding))
            .cloned()
            .collect()
    }

    /// The stored ACLs `filter` selects, sorted.
    pub fn matching(&self, filter: &AclFilter) -> Vec<AclBinding> {
        self.acls
            .iter()
            .filter(|binding| filter.matches(binding))
            .cloned()
            .collect()
    }

    /// Adds `acls` and publishes the new index.
    pub fn add(&mut self, acls: Vec<AclBinding>) {
        self.acls.extend(acls);
        self.authorizer.publish(&self.acls);
    }

    /// Removes `acls` and publishes the new index.
    pub fn remove(&mut self, acls: &[AclBinding]) {
        for binding in acls {
            self.acls.remove(binding);
        }
        self.authorizer.publish(&self.acls);
    }
}

/// The ACLs arranged for checks: by resource type, then pattern, then principal.
#[derive(Default)]
struct AclIndex {
    /// One entry per [`ResourceType`], at [`type_slot`].
    by_type: [TypeAcls; ResourceType::ALL.len()],
}

/// The ACLs of one resource type.
#[derive(Default)]
struct TypeAcls {
    /// Literal patterns other than `*`, by name.
    literal: HashMap<String, PatternAcls>,
    /// The literal `*` pattern.
    wildcard: Option<PatternAcls>,
    /// Prefixed patterns, by prefix.
    prefixed: HashMap<String, PatternAcls>,
    /// The distinct lengths, in bytes, of the keys of `prefixed`, ascending: a name is
    /// looked up by its prefixes of these lengths only.
    prefix_lengths: Vec<usize>,
}

/// The entries of one pattern, by principal.
#[derive(Default)]
struct PatternAcls {
    by_principal: HashMap<Principal, Vec<Entry>>,
    /// Entries for `User:*`.
    any_principal: Vec<Entry>,
}

/// One entry, without its principal (the key it is filed under).
#[derive(Clone, Copy)]
struct Entry {
    host: AclHost,
    operation: AclOperation,
    permission: AclPermission,
}

fn type_slot(resource_type: ResourceType) -> usize {
    match resource_type {
        ResourceType::Topic => 0,
        ResourceType::Group => 1,
        ResourceType::Cluster => 2,
        ResourceType::TransactionalId => 3,
    }
}

impl AclIndex {
    fn build(acls: &BTreeSet<AclBinding>) -> AclIndex {
        let mut index = AclIndex::default();
        for binding in acls {
            let pattern = &binding.pattern;
            let type_acls = &mut index.by_type[type_slot(pattern.resource_type)];
            let patterns = match pattern.pattern_type {
                PatternType::Literal if pattern.name == WILDCARD => {
                    type_acls.wildcard.get_or_insert_with(PatternAcls::default)
                }
                PatternType::Literal => type_acls.literal.entry(pattern.name.clone()).or_default(),
                PatternType::Prefixed => {
                    type_acls.prefixed.entry(pattern.name.clone()).or_default()
                }
            };
            patterns.insert(&binding.entry);
        }
        for type_acls in &mut index.by_type {
            let lengths: BTreeSet<usize> = type_acls.prefixed.keys().map(String::len).collect();
            type_acls.prefix_lengths = lengths.into_iter().collect();
        }
        index
    }

    /// Every pattern of `resource_type` that covers `name`: its literal name, the wildcard,
    /// and the prefixes. Allocates nothing.
    fn patterns_covering<'a>(
        &'a self,
        resource_type: ResourceType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a PatternAcls> + 'a {
        let type_acls = &self.by_type[type_slot(resource_type)];
        let prefixed = type_acls
            .prefix_lengths
            .iter()
            .take_while(move |length| **length <= name.len())
            .filter_map(move |length| name.get(..*length))
            .filter_map(move |prefix| type_acls.prefixed.get(prefix));
        type_acls
            .literal
            .get(name)
            .into_iter()
            .chain(type_acls.wildcard.as_ref())
            .chain(prefixed)
    }
}

impl PatternAcls {
    fn insert(&mut self, entry: &AccessControlEntry) {
        let stored = Entry {
            host: entry.host,
            operation: entry.operation,
            permission: entry.permission,
        };
        if is_wildcard_principal(&entry.principal) {
            self.any_principal.push(stored);
        } else {
            self.by_principal
                .entry(entry.principal.clone())
                .or_default()
                .push(stored);
        }
    }

    /// What this pattern's entries for `principal` (or `User:*`) from `address` say about
    /// `operation`: a deny if any denies, else an allow if any allows, else nothing.
    fn decide(
        &self,
        principal: &Principal,
        address: IpAddr,
        operation: AclOperation,
    ) -> Option<AclPermission> {
        let own = self.by_principal.get(principal).map(Vec::as_slice);
        let mut decision = None;
        for entry in own.unwrap_or_default().iter().chain(&self.any_principal) {
            if !entry.host.matches(address) {
                continue;
            }
            match entry.permission {
                AclPermission::Deny if entry.operation.denies(operation) => {
                    return Some(AclPermission::Deny);
                }
                AclPermission::Allow if entry.operation.allows(operation) => {
                    decision = Some(AclPermission::Allow);
                }
                AclPermission::Deny | AclPermission::Allow => {}
            }
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::acl::ResourcePattern;

    const CLIENT: &str = "10.0.0.1";
    const OTHER_CLIENT: &str = "10.0.0.2";

    /// One ACL, written as a line of the decision table: `"topic:literal:orders"`,
    /// `"User:alice"`, `"*"`, Read, Allow.
    fn acl(
        pattern: &str,
        principal: &str,
        host: &str,
        operation: AclOperation,
        permission: AclPermission,
    ) -> AclBinding {
        let mut parts = pattern.splitn(3, ':');
        let resource_type = match parts.next() {
            Some("topic") => ResourceType::Topic,
            Some("group") => ResourceType::Group,
            Some("cluster") => ResourceType::Cluster,
            _ => ResourceType::TransactionalId,
        };
        let pattern_type = match parts.next() {
            Some("prefixed") => PatternType::Prefixed,
            _ => PatternType::Literal,
        };
        AclBinding {
            pattern: ResourcePattern {
                resource_type,
                name: parts.next().unwrap_or_default().to_string(),
                pattern_type,
            },
            entry: AccessControlEntry {
                principal: Principal::parse(principal).expect("a principal"),
                host: AclHost::parse(host).expect("a host"),
                operation,
                permission,
            },
        }
    }

    fn authorizer(acls: Vec<AclBinding>) -> Authorizer {
        Authorizer::new(AuthorizerConfig::default(), acls.into_iter().collect())
    }

    /// (principal, client, operation, resource type, name) asked of the authorizer.
    fn asks(
        authorizer: &Authorizer,
        principal: &str,
        client: &str,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let principal = Principal::parse(principal).expect("a principal");
        let address = client.parse().expect("an address");
        authorizer.authorize(&principal, address, operation, resource_type, name)
    }

    #[test]
    fn the_decision_table() {
        // Proves each rule of the module doc against one set of ACLs: each row is a question
        // and the answer Kafka's StandardAuthorizer gives for it.
        use AclOperation::*;
        use AclPermission::*;
        use ResourceType::*;
        let acls = authorizer(vec![
            acl("topic:literal:orders", "User:alice", "*", Read, Allow),
            acl("topic:literal:orders", "User:bob", CLIENT, Write, Allow),
            acl("topic:literal:orders", "User:carol", "*", All, Allow),
            acl("topic:literal:orders", "User:carol", "*", Delete, Deny),
            acl("topic:prefixed:pay", "User:alice", "*", Write, Allow),
            acl("topic:prefixed:payments-eu", "User:alice", "*", Write, Deny),
            acl("topic:literal:*", "User:dave", "*", Describe, Allow),
            acl("topic:literal:audit", "User:*", "*", Read, Allow),
            acl("topic:literal:audit", "User:mallory", "*", All, Deny),
            acl(
                "topic:literal:configs",
                "User:alice",
                "*",
                AlterConfigs,
                Allow,
            ),
            acl("group:prefixed:app-", "User:alice", "*", Read, Allow),
            acl(
                "cluster:literal:kafka-cluster",
                "User:ops",
                "*",
                Alter,
                Allow,
            ),
            acl(
                "transactional_id:literal:tx",
                "User:alice",
                "*",
                Write,
                Allow,
            ),
        ]);
        let table: &[(&str, &str, AclOperation, ResourceType, &str, bool)] = &[
            // A literal allow allows its operation, and Describe by implication, nothing else.
            ("User:alice", CLIENT, Read, Topic, "orders", true),
            ("User:alice", CLIENT, Describe, Topic, "orders", true),
            ("User:alice", CLIENT, Write, Topic, "orders", false),
            ("User:alice", CLIENT, Read, Topic, "orders2", false),
            // Another principal gets nothing from alice's ACL.
            ("User:eve", CLIENT, Read, Topic, "orders", false),
            // Hosts: bob is allowed from CLIENT only.
            ("User:bob", CLIENT, Write, Topic, "orders", true),
            ("User:bob", OTHER_CLIENT, Write, Topic, "orders", false),
            // All allows everything but what a deny names: deny wins.
            ("User:carol", CLIENT, Alter, Topic, "orders", true),
            ("User:carol", CLIENT, Delete, Topic, "orders", false),
            // A deny of Delete does not deny the Describe it would imply.
            ("User:carol", CLIENT, Describe, Topic, "orders", true),
            // Prefixed: "pay" covers payments, not "pa"; the longer deny wins under it.
            ("User:alice", CLIENT, Write, Topic, "payments", true),
            ("User:alice", CLIENT, Write, Topic, "pa", false),
            ("User:alice", CLIENT, Write, Topic, "payments-eu-1", false),
            // The literal wildcard covers every topic.
            ("User:dave", CLIENT, Describe, Topic, "anything", true),
            ("User:dave", CLIENT, Read, Topic, "anything", false),
            // User:* covers every principal, and a principal's deny All beats it.
            ("User:eve", CLIENT, Read, Topic, "audit", true),
            ("User:mallory", CLIENT, Read, Topic, "audit", false),
            ("User:mallory", CLIENT, Describe, Topic, "audit", false),
            // AlterConfigs implies DescribeConfigs, not the other way.
            (
                "User:alice",
                CLIENT,
                DescribeConfigs,
                Topic,
                "configs",
                true,
            ),
            ("User:alice", CLIENT, Describe, Topic, "configs", false),
            // Resource types are separate: alice's topic ACLs say nothing of groups.
            ("User:alice", CLIENT, Read, Group, "app-1", true),
            ("User:alice", CLIENT, Read, Group, "orders", false),
            ("User:ops", CLIENT, Alter, Cluster, "kafka-cluster", true),
            ("User:ops", CLIENT, Describe, Cluster, "kafka-cluster", true),
            ("User:ops", CLIENT, Create, Cluster, "kafka-cluster", false),
            ("User:alice", CLIENT, Write, TransactionalId, "tx", true),
            ("User:alice", CLIENT, Describe, TransactionalId, "tx", true),
            // Nothing covers an unnamed topic: denied by default.
            ("User:alice", CLIENT, Read, Topic, "nobody-has-acls", false),
        ];
        for (principal, client, operation, resource_type, name, expected) in table {
            let answer = asks(&acls, principal, client, *operation, *resource_type, name);
            assert_eq!(
                answer, *expected,
                "{principal} from {client}: {operation} on {resource_type} {name}"
            );
        }
    }

    #[test]
    fn super_users_may_do_anything_even_against_denies() {
        // A super user is allowed before any ACL is read; others are not.
        use AclOperation::*;
        let config = AuthorizerConfig {
            super_users: vec![Principal::user("admin")],
            allow_everyone_if_no_acl_found: false,
        };
        let deny = acl("topic:literal:*", "User:*", "*", All, AclPermission::Deny);
        let acls = Authorizer::new(config, [deny].into_iter().collect());
        assert!(asks(
            &acls,
            "User:admin",
            CLIENT,
            Delete,
            ResourceType::Topic,
            "t"
        ));
        assert!(asks(
            &acls,
            "User:admin",
            CLIENT,
            Alter,
            ResourceType::Cluster,
            "kafka-cluster"
        ));
        assert!(!asks(
            &acls,
            "User:alice",
            CLIENT,
            Read,
            ResourceType::Topic,
            "t"
        ));
    }

    #[test]
    fn allow_everyone_applies_only_to_resources_no_acl_covers() {
        // With allow-everyone, a resource without ACLs is open; one with an ACL for someone
        // else is closed to everyone else, as in Kafka.
        use AclOperation::*;
        let config = AuthorizerConfig {
            super_users: Vec::new(),
            allow_everyone_if_no_acl_found: true,
        };
        let bob_only = acl(
            "topic:literal:private",
            "User:bob",
            "*",
            Read,
            AclPermission::Allow,
        );
        let acls = Authorizer::new(config, [bob_only].into_iter().collect());
        assert!(asks(
            &acls,
            "User:alice",
            CLIENT,
            Write,
            ResourceType::Topic,
            "open"
        ));
        assert!(!asks(
            &acls,
            "User:alice",
            CLIENT,
            Read,
            ResourceType::Topic,
            "private"
        ));
        assert!(asks(
            &acls,
            "User:bob",
            CLIENT,
            Read,
            ResourceType::Topic,
            "private"
        ));
        let closed = authorizer(Vec::new());
        assert!(!asks(
            &closed,
            "User:alice",
            CLIENT,
            Write,
            ResourceType::Topic,
            "open"
        ));
    }

    #[test]
    fn changes_apply_to_the_next_check_and_keep_acls_unique() {
        // Adding an ACL grants at once, adding it twice stores it once, removing it revokes.
        use AclOperation::*;
        let acls = authorizer(Vec::new());
        let read = acl(
            "topic:literal:t",
            "User:alice",
            "*",
            Read,
            AclPermission::Allow,
        );
        let mut change = acls.begin_change();
        let added = change.absent(&[read.clone(), read.clone()]);
        assert_eq!(added.len(), 1);
        change.add(added);
        assert!(change.absent(std::slice::from_ref(&read)).is_empty());
        drop(change);
        assert!(asks(
            &acls,
            "User:alice",
            CLIENT,
            Read,
            ResourceType::Topic,
            "t"
        ));
        assert_eq!(acls.acl_count(), 1);
        acls.begin_change().remove(&[read]);
        assert!(!asks(
            &acls,
            "User:alice",
            CLIENT,
            Read,
            ResourceType::Topic,
            "t"
        ));
        assert_eq!(acls.acls(&AclFilter::any()), Vec::new());
    }

    #[test]
    fn authorize_any_follows_kip_679() {
        // Write on some topic lets an idempotent producer in; a wildcard deny, or a deny
        // covering every allowed name, does not.
        use AclOperation::*;
        use AclPermission::*;
        let ask = |acls: &Authorizer, principal: &str| {
            let principal = Principal::parse(principal).expect("a principal");
            let address = CLIENT.parse().expect("an address");
            acls.authorize_any(&principal, address, Write, ResourceType::Topic)
        };
        let acls = authorizer(vec![
            acl("topic:literal:orders", "User:alice", "*", Write, Allow),
            acl("topic:prefixed:logs-", "User:bob", "*", Write, Allow),
            acl("topic:prefixed:log", "User:bob", "*", Write, Deny),
            acl("topic:literal:orders", "User:carol", "*", Write, Allow),
            acl("topic:literal:*", "User:carol", "*", All, Deny),
            acl("topic:literal:orders", "User:dave", "*", Read, Allow),
        ]);
        assert!(ask(&acls, "User:alice"));
        assert!(!ask(&acls, "User:bob"));
        assert!(!ask(&acls, "User:carol"));
        assert!(!ask(&acls, "User:dave"));
    }

    #[test]
    fn authorized_operations_set_one_bit_per_allowed_operation() {
        // Read on a topic reports Read and the implied Describe: bits 3 and 8.
        let acls = authorizer(vec![acl(
            "topic:literal:t",
            "User:alice",
            "*",
            AclOperation::Read,
            AclPermission::Allow,
        )]);
        let principal = Principal::user("alice");
        let address = CLIENT.parse().expect("an address");
        let bits = acls.authorized_operations(&principal, address, ResourceType::Topic, "t");
        assert_eq!(bits, (1 << 3) | (1 << 8));
    }

    #[test]
    fn prefixes_cut_inside_a_character_are_skipped() {
        // A prefix length that falls inside a multi-byte character of the name is not a
        // prefix of it, and must not panic.
        let acls = authorizer(vec![acl(
            "group:prefixed:ab",
            "User:alice",
            "*",
            AclOperation::Read,
            AclPermission::Allow,
        )]);
        assert!(!asks(
            &acls,
            "User:alice",
            CLIENT,
            AclOperation::Read,
            ResourceType::Group,
            "é"
        ));
        assert!(asks(
            &acls,
            "User:alice",
            CLIENT,
            AclOperation::Read,
            ResourceType::Group,
            "abé"
        ));
    }
}
