//! DescribeLogDirs (key 35): the data directory and the size of each partition in it, as
//! `kafka-log-dirs.sh --describe` and `riffle topics describe` show them. Versions 0-4: v1
//! is v0 (throttling moved before the answer); v2 is the first flexible version; v3 adds the
//! top-level error code; v4 adds the volume's total and usable bytes.
//!
//! The broker has one log directory, `--data-dir`, reported as an absolute path. A `null`
//! topic list asks for every partition, internal topics included; otherwise only the listed
//! partitions that exist are reported (an unknown topic or partition is left out, as Kafka
//! leaves out partitions it does not host). A topic with no reported partition is left out.
//! Each partition's size is the bytes of its segments; its offset lag is the log end offset
//! minus the high watermark (0 on one node, where every append is committed at once); no log
//! is a future log.
//!
//! Errors: CLUSTER_AUTHORIZATION_FAILED (with `--authorizer acl`, the principal may not
//! describe the cluster; the top-level code from v3, an empty result list before, as in
//! Kafka). The volume sizes are -1 when the file system cannot be asked.

use std::collections::BTreeMap;
use std::path::Path;

use riffle_protocol::ErrorCode;
use riffle_protocol::api::describe_log_dirs::{
    DescribeLogDirsPartition, DescribeLogDirsRequest, DescribeLogDirsResponse,
    DescribeLogDirsResult, DescribeLogDirsTopic,
};

use crate::cluster::{Cluster, Topic};
use crate::handler::RequestContext;
use crate::security::acl::AclOperation;

/// The value of a volume size that could not be read (the schema's default).
const UNKNOWN_VOLUME_BYTES: i64 = -1;

/// Answers DescribeLogDirs.
pub fn handle(
    cluster: &Cluster,
    context: &RequestContext,
    _version: i16,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    if !context
        .access(cluster)
        .allows_cluster(AclOperation::Describe)
    {
        return DescribeLogDirsResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::ClusterAuthorizationFailed.code(),
            results: Vec::new(),
        };
    }
    let topics: Vec<DescribeLogDirsTopic> = match request.topics {
        None => cluster
            .all_topics()
            .iter()
            .map(|topic| describe_topic(topic, None))
            .collect(),
        Some(asked) => asked_partitions(asked)
            .into_iter()
            .filter_map(|(name, indexes)| {
                let topic = cluster.topic(&name)?;
                Some(describe_topic(&topic, Some(&indexes)))
            })
            .collect(),
    };
    let log_dir = &cluster.config.data_dir;
    let (total_bytes, usable_bytes) = volume_bytes(log_dir);
    let log_dir = std::path::absolute(log_dir).unwrap_or_else(|_| log_dir.clone());
    DescribeLogDirsResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None.code(),
        results: vec![DescribeLogDirsResult {
            error_code: ErrorCode::None.code(),
            log_dir: log_dir.display().to_string(),
            topics: topics
                .into_iter()
                .filter(|topic| !topic.partitions.is_empty())
                .collect(),
            total_bytes,
            usable_bytes,
        }],
    }
}

/// The asked partitions by topic, each topic once and each index once, so a topic listed
/// twice is not reported twice.
fn asked_partitions(
    asked: Vec<riffle_protocol::api::describe_log_dirs::DescribableLogDirTopic>,
) -> BTreeMap<String, Vec<i32>> {
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for topic in asked {
        by_topic
            .entry(topic.topic)
            .or_default()
            .extend(topic.partitions);
    }
    for indexes in by_topic.values_mut() {
        indexes.sort_unstable();
        indexes.dedup();
    }
    by_topic
}

/// A topic's partitions: all of them, or those of `indexes` that exist.
fn describe_topic(topic: &Topic, indexes: Option<&[i32]>) -> DescribeLogDirsTopic {
    let partitions = topic
        .partitions
        .iter()
        .zip(0..)
        .filter(|(_, index)| indexes.is_none_or(|indexes| indexes.contains(index)))
        .map(|(partition, partition_index)| DescribeLogDirsPartition {
            partition_index,
            partition_size: i64::try_from(partition.size_bytes()).unwrap_or(i64::MAX),
            offset_lag: (partition.next_offset() - partition.high_watermark()).max(0),
            is_future_key: false,
        })
        .collect();
    DescribeLogDirsTopic {
        name: topic.name.clone(),
        partitions,
    }
}

/// The total and usable (available to unprivileged users) bytes of the volume holding
/// `path`, or -1 each when `statvfs` fails.
fn volume_bytes(path: &Path) -> (i64, i64) {
    let unknown = (UNKNOWN_VOLUME_BYTES, UNKNOWN_VOLUME_BYTES);
    let Ok(path) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return unknown;
    };
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string that outlives the call, and `stats` is
    // space for one statvfs, which the kernel fills when the call returns 0.
    let status = unsafe { libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) };
    if status != 0 {
        return unknown;
    }
    // SAFETY: statvfs returned 0, so it filled `stats`.
    let stats = unsafe { stats.assume_init() };
    // The field types are `c_ulong` and `fsblkcnt_t`: u64 here, narrower on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let (fragment_bytes, blocks, available_blocks) = (
        u64::from(stats.f_frsize).max(1),
        u64::from(stats.f_blocks),
        u64::from(stats.f_bavail),
    );
    let bytes = |blocks: u64| {
        blocks
            .checked_mul(fragment_bytes)
            .and_then(|bytes| i64::try_from(bytes).ok())
            .unwrap_or(UNKNOWN_VOLUME_BYTES)
    };
    (bytes(blocks), bytes(available_blocks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_cluster;
    use riffle_protocol::api::describe_log_dirs::DescribableLogDirTopic;
    use riffle_protocol::record::{Compression, RecordBatchBuilder};

    fn asked(topic: &str, partitions: &[i32]) -> DescribableLogDirTopic {
        DescribableLogDirTopic {
            topic: topic.to_owned(),
            partitions: partitions.to_vec(),
        }
    }

    fn sizes(response: &DescribeLogDirsResponse) -> Vec<(String, i32, i64)> {
        response.results[0]
            .topics
            .iter()
            .flat_map(|topic| {
                topic.partitions.iter().map(|partition| {
                    (
                        topic.name.clone(),
                        partition.partition_index,
                        partition.partition_size,
                    )
                })
            })
            .collect()
    }

    #[test]
    fn reports_each_partitions_bytes_in_the_one_data_dir() {
        // Proves sizes follow appends, a null list covers internal topics too, and an asked
        // list reports only the partitions that exist, each once.
        let (dir, cluster) = test_cluster();
        cluster
            .create_topic(
                "orders",
                2,
                BTreeMap::new(),
                crate::cluster::Validation::Apply,
            )
            .expect("create");
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder.append(1_000, None, Some(b"value"), &[]);
        let batch = builder.build().expect("batch");
        let topic = cluster.topic("orders").expect("topic");
        let partition = topic.partition(1).expect("partition 1");
        partition.append_records(&batch, 1_000).expect("append");
        let context = RequestContext::internal(&cluster);

        let request = DescribeLogDirsRequest {
            topics: Some(vec![
                asked("orders", &[1, 0, 1, 7]),
                asked("orders", &[0]),
                asked("missing", &[0]),
            ]),
        };
        let response = handle(&cluster, &context, 4, request);
        assert_eq!(response.error_code, 0);
        let batch_bytes = i64::try_from(batch.len()).expect("small");
        assert_eq!(
            sizes(&response),
            vec![("orders".into(), 0, 0), ("orders".into(), 1, batch_bytes)]
        );
        let result = &response.results[0];
        assert_eq!(
            Path::new(&result.log_dir),
            std::path::absolute(dir.path()).expect("absolute")
        );
        assert!(
            result.total_bytes > 0 && result.usable_bytes >= 0,
            "{result:?}"
        );

        let every = handle(
            &cluster,
            &context,
            4,
            DescribeLogDirsRequest { topics: None },
        );
        let names: Vec<String> = sizes(&every).into_iter().map(|(name, ..)| name).collect();
        assert!(
            names.contains(&"__consumer_offsets".to_string()),
            "{names:?}"
        );
        assert_eq!(names.iter().filter(|name| *name == "orders").count(), 2);
    }
}
