//! Where standby replicas go ([`super::RuntimeConfig::standby_replicas`]).
//!
//! Kafka Streams places standbys in its own partition assignor. librdkafka takes no custom
//! assignor, so each instance decides for itself from what the group coordinator says
//! (DescribeGroups: the members and their assignments), by a rule every instance applies
//! to the same answer and so agrees on:
//!
//! - the members are ordered by member id, in a ring;
//! - a task's standbys are the `standby_replicas` members that follow its active member
//!   in the ring (fewer when the group is smaller), so a standby is never on the active's
//!   instance and two standbys of one task are never on one instance.
//!
//! The group's assignor, not this rule, picks the next owner when an active dies; with
//! two instances (or `standby_replicas` = instances - 1) that owner always holds the
//! standby. Otherwise the failover finds a warm store only when the assignor happens to
//! pick a standby's instance; every other store a task ever had on an instance is still
//! on disk with its checkpoint, and restores only what came after it.

use std::collections::{BTreeMap, BTreeSet};

use super::backend::GroupMembers;
use crate::record::TopicPartition;
use crate::task::TaskId;

/// The tasks this instance keeps standbys of: those whose active member is followed, within
/// `standby_replicas` places of the ring, by this one; never a task with a partition
/// assigned to this instance. `task_of` maps an input partition to its task.
pub(crate) fn standby_tasks(
    group: &GroupMembers,
    standby_replicas: usize,
    task_of: impl Fn(&TopicPartition) -> Option<TaskId>,
) -> BTreeSet<TaskId> {
    let mut members: Vec<&(String, Vec<TopicPartition>)> = group.members.iter().collect();
    members.sort_by(|a, b| a.0.cmp(&b.0));
    let Some(own_index) = members.iter().position(|m| m.0 == group.own_member_id) else {
        return BTreeSet::new();
    };
    let count = members.len();
    let replicas = standby_replicas.min(count.saturating_sub(1));
    let mut active: BTreeMap<TaskId, usize> = BTreeMap::new();
    for (index, (_, partitions)) in members.iter().enumerate() {
        for id in partitions.iter().filter_map(&task_of) {
            active.entry(id).or_insert(index);
        }
    }
    let own_tasks: BTreeSet<TaskId> = members[own_index].1.iter().filter_map(&task_of).collect();
    active
        .into_iter()
        .filter(|(id, owner)| {
            let distance = (own_index + count - owner) % count;
            (1..=replicas).contains(&distance) && !own_tasks.contains(id)
        })
        .map(|(id, _)| id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task_of(partition: &TopicPartition) -> Option<TaskId> {
        (partition.topic == "in").then_some(TaskId {
            subtopology: 0,
            partition: partition.partition,
        })
    }

    fn group(own: &str, members: &[(&str, &[i32])]) -> GroupMembers {
        GroupMembers {
            own_member_id: own.to_string(),
            members: members
                .iter()
                .map(|(id, partitions)| {
                    let partitions = partitions
                        .iter()
                        .map(|p| TopicPartition::new("in", *p))
                        .collect();
                    (id.to_string(), partitions)
                })
                .collect(),
            stable: true,
        }
    }

    fn ids(partitions: &[i32]) -> BTreeSet<TaskId> {
        partitions
            .iter()
            .map(|p| TaskId {
                subtopology: 0,
                partition: *p,
            })
            .collect()
    }

    /// Proves the ring: each task gets `standby_replicas` standbys on the members after its
    /// owner, never on the owner, and every member computes the same placement.
    #[test]
    fn standbys_follow_the_active_member_in_the_ring() {
        let members: &[(&str, &[i32])] = &[("c", &[2]), ("a", &[0]), ("b", &[1])];
        assert_eq!(standby_tasks(&group("a", members), 1, task_of), ids(&[2]));
        assert_eq!(standby_tasks(&group("b", members), 1, task_of), ids(&[0]));
        assert_eq!(standby_tasks(&group("c", members), 1, task_of), ids(&[1]));
        assert_eq!(
            standby_tasks(&group("a", members), 2, task_of),
            ids(&[1, 2])
        );
        // More replicas than other members: one per other member, none on the owner.
        assert_eq!(
            standby_tasks(&group("a", members), 5, task_of),
            ids(&[1, 2])
        );
        assert!(standby_tasks(&group("a", members), 0, task_of).is_empty());
        // Alone, or not in the group (yet): no standbys.
        assert!(standby_tasks(&group("a", &[("a", &[0, 1])]), 1, task_of).is_empty());
        assert!(standby_tasks(&group("z", members), 1, task_of).is_empty());
        // Two instances: each keeps standbys of every task of the other.
        let two: &[(&str, &[i32])] = &[("a", &[0, 2]), ("b", &[1, 3])];
        assert_eq!(standby_tasks(&group("a", two), 1, task_of), ids(&[1, 3]));
        assert_eq!(standby_tasks(&group("b", two), 1, task_of), ids(&[0, 2]));
    }
}
