//! What OffsetCommit and TxnOffsetCommit share: sorting the requested partitions into the
//! commits the coordinator makes and those refused up front (a topic the principal may not
//! read, a partition that does not exist), then putting every partition's code back in
//! request order.

use riffle_protocol::ErrorCode;

use crate::cluster::Cluster;
use crate::group::records::CommittedOffset;
use crate::handler::Access;
use crate::security::acl::{AclOperation, ResourceType};

/// One requested partition and what to commit for it.
pub struct RequestedCommit {
    /// The partition.
    pub partition_index: i32,
    /// The offset, leader epoch, metadata and times to store.
    pub committed: CommittedOffset,
}

/// A topic and, in request order, each partition with the error it was refused with up
/// front, if any.
type TopicRefusals = (String, Vec<(i32, Option<ErrorCode>)>);

/// Per topic, in request order, each partition and the error it was refused with up front.
pub struct CommitAnswers {
    topics: Vec<TopicRefusals>,
}

/// Every partition's code, per topic in request order.
pub type TopicCodes = Vec<(String, Vec<(i32, ErrorCode)>)>;

/// Splits the request's partitions: the commits of existing partitions of topics the
/// principal may read, as the coordinator takes them, and the answers to fill in once it
/// has decided. A topic it may not read is refused (TOPIC_AUTHORIZATION_FAILED) before
/// its existence is looked at, as Kafka orders them.
pub fn sort_commits(
    cluster: &Cluster,
    access: &Access<'_>,
    topics: impl IntoIterator<Item = (String, Vec<RequestedCommit>)>,
) -> (Vec<(String, i32, CommittedOffset)>, CommitAnswers) {
    let mut commits = Vec::new();
    let mut answers = Vec::new();
    for (name, requested) in topics {
        let readable = access.allows(AclOperation::Read, ResourceType::Topic, &name);
        let known = cluster.topic(&name).filter(|_| readable);
        let refusal = if readable {
            ErrorCode::UnknownTopicOrPartition
        } else {
            ErrorCode::TopicAuthorizationFailed
        };
        let mut partitions = Vec::with_capacity(requested.len());
        for RequestedCommit {
            partition_index,
            committed,
        } in requested
        {
            let exists = known
                .as_ref()
                .is_some_and(|known| known.partition(partition_index).is_some());
            if exists {
                partitions.push((partition_index, None));
                commits.push((name.clone(), partition_index, committed));
            } else {
                partitions.push((partition_index, Some(refusal)));
            }
        }
        answers.push((name, partitions));
    }
    (commits, CommitAnswers { topics: answers })
}

/// Every requested partition answered `code`: a request refused whole (no Read on the
/// group, no Write on the transactional id).
pub fn refuse_all(
    topics: impl IntoIterator<Item = (String, Vec<RequestedCommit>)>,
    code: ErrorCode,
) -> TopicCodes {
    topics
        .into_iter()
        .map(|(name, requested)| {
            let codes = requested
                .iter()
                .map(|commit| (commit.partition_index, code))
                .collect();
            (name, codes)
        })
        .collect()
}

impl CommitAnswers {
    /// Every partition's code: its refusal, or the coordinator's answer, which `errors` gives
    /// in the order of the commits `sort_commits` returned.
    pub fn with_errors(self, errors: Vec<ErrorCode>) -> TopicCodes {
        let mut errors = errors.into_iter();
        self.topics
            .into_iter()
            .map(|(name, partitions)| {
                let codes = partitions
                    .into_iter()
                    .map(|(partition_index, refused)| {
                        let code = refused.unwrap_or_else(|| {
                            errors.next().unwrap_or(ErrorCode::UnknownServerError)
                        });
                        (partition_index, code)
                    })
                    .collect();
                (name, codes)
            })
            .collect()
    }
}
