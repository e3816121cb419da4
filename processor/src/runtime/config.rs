//! How a runtime is configured: its pace and its processing guarantee.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// What a crash, a rebalance or a failed write may do to a topology's results.
///
/// Both guarantees keep state consistent with the committed input position: a task that
/// restarts anywhere restores its stores to exactly what its last commit covers. They
/// differ in what readers of the output topics see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ProcessingGuarantee {
    /// Outputs are written as they are produced and the input offsets committed after
    /// them. After a crash the input since the last commit is processed again, so outputs
    /// written after that commit appear twice (with the same values).
    #[default]
    AtLeastOnce,
    /// Kafka Streams' `exactly_once_v2` (KIP-447): each commit is one transaction holding
    /// the outputs, changelog and repartition records written since the previous commit
    /// and the input offsets. Readers with `isolation.level=read_committed` see every
    /// result exactly once, at commit time; a crash or failed write aborts the open
    /// transaction, and the tasks go back to their last commit.
    ExactlyOnce,
}

impl ProcessingGuarantee {
    /// The name used by [`FromStr`] and [`fmt::Display`]: `at-least-once`, `exactly-once`.
    pub fn name(self) -> &'static str {
        match self {
            ProcessingGuarantee::AtLeastOnce => "at-least-once",
            ProcessingGuarantee::ExactlyOnce => "exactly-once",
        }
    }
}

impl fmt::Display for ProcessingGuarantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A processing guarantee name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown processing guarantee '{0}' (expected at-least-once or exactly-once)")]
pub struct UnknownGuarantee(pub String);

impl FromStr for ProcessingGuarantee {
    type Err = UnknownGuarantee;

    /// Parses `at-least-once` or `exactly-once`, and Kafka Streams' spellings
    /// `at_least_once` and `exactly_once_v2`, so a config copied from Kafka Streams works.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "at-least-once" | "at_least_once" => Ok(ProcessingGuarantee::AtLeastOnce),
            "exactly-once" | "exactly_once_v2" => Ok(ProcessingGuarantee::ExactlyOnce),
            other => Err(UnknownGuarantee(other.to_string())),
        }
    }
}

/// How a runtime paces itself, and what it guarantees.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// How often progress is committed (Kafka Streams' `commit.interval.ms`). Under
    /// at-least-once, shorter means fewer repeated outputs after a crash, at the cost of
    /// more flushes; under exactly-once it is also the latency read_committed readers see,
    /// since outputs become visible only when their transaction commits.
    pub commit_interval: Duration,
    /// Longest wait for new records in one poll.
    pub poll_timeout: Duration,
    /// Records processed between two polls at most, so group duties keep running.
    pub max_records_per_round: usize,
    /// How often to log a warning while the runner waits at start-up for its source
    /// topics to exist. It waits until they do (or until it is stopped): a co-located
    /// topology must not take its broker down because nobody produced yet.
    pub source_topics_warning_interval: Duration,
    /// At-least-once (the default) or exactly-once; see [`ProcessingGuarantee`].
    pub processing_guarantee: ProcessingGuarantee,
    /// A name for this instance of the application, stable across its restarts and unique
    /// among its instances (a host name, a pod name). Under exactly-once the instance's
    /// producer has the transactional id `<application id>-<instance id>`: a restarted
    /// instance with the same id fences its previous incarnation and aborts that one's
    /// open transaction at once.
    ///
    /// The remote runtime's `run_remote` also makes it the group consumer's
    /// `group.instance.id` (static membership), as the embedded runtime does with its node.
    ///
    /// `None`: the embedded runtime uses `node-<node id>` (one instance per broker); the
    /// remote runtime picks a random id at each start, so after a crash the dead
    /// instance's open transaction holds back read_committed readers of the partitions it
    /// wrote (including the tasks' next owner) until the transaction timeout (10 s) aborts
    /// it. Give every instance its own id: two running with the same one fence each
    /// other's producer over and over (and, with `run_remote`, each other's group
    /// membership).
    pub instance_id: Option<String>,
    /// Where persistent stores and their checkpoints live (Kafka Streams' `state.dir`):
    /// the instance keeps `<state_dir>/<application id>/`, locked so a second instance of
    /// the application cannot share it. With it, a restart restores only the changelog
    /// tail past each task's checkpoint (nothing after a clean stop).
    ///
    /// `None`: every store is kept in memory and restored from its whole changelog at each
    /// start, and a broker that drops commit metadata stops the runtime with an error
    /// (there is no local checkpoint to fall back on). The co-located runtime sets it to
    /// a folder of the broker's data directory.
    pub state_dir: Option<PathBuf>,
    /// Most bytes of changelog records one restore read returns: restoring needs about
    /// this much memory per task being restored, whatever the changelog's size.
    pub restore_chunk_bytes: usize,
    /// Bytes of store writes buffered in memory (persistent stores write to disk at
    /// commit) past which the runtime commits early, so memory stays bounded when the
    /// commit interval is long and input fast.
    pub max_pending_store_bytes: usize,
    /// Bytes of record cache over every store of the instance (Kafka Streams'
    /// `statestore.cache.max.bytes`; 10 MiB by default, as there): updates to a key of an
    /// aggregate's store coalesce in the cache and leave it, written to the store and its
    /// changelog and forwarded downstream, at each commit or when the cache evicts them.
    /// With `Emit::OnUpdate` a hot key then produces one update per commit (or eviction)
    /// instead of one per record. 0 turns the cache off: one update per record.
    pub cache_max_bytes: usize,
    /// Threads that process tasks (Kafka Streams' `num.stream.threads`): each round, the
    /// instance's tasks are dealt round-robin by task id to this many threads, which
    /// process them at once; polling, sending and committing stay shared. More threads
    /// help once an instance has several tasks (input partitions); at least 1.
    pub threads: usize,
    /// Warm copies kept of each task's stores on other instances (Kafka Streams'
    /// `num.standby.replicas`; 0 by default, as there). An instance holding a standby
    /// reads the task's changelogs as the active instance commits (after its own commits,
    /// at most once a second), into persistent stores
    /// with checkpoints, so taking the task over after the active instance dies restores
    /// only the tail since the standby's last catch-up. Needs
    /// [`RuntimeConfig::state_dir`]; the remote runtime only (a co-located runtime
    /// has one instance per broker, and its stores restore from the local log).
    pub standby_replicas: usize,
    /// The remote runtime's rebalance protocol: `true` (the default) is KIP-429's
    /// incremental cooperative rebalancing (`cooperative-sticky`), where a joining or
    /// leaving instance moves only the tasks that change owner and every other task keeps
    /// running; `false` is the eager `range` protocol, where every rebalance stops every
    /// task. A topology with a sub-topology reading several topics (a join) needs them
    /// co-partitioned on one instance, which only `range` guarantees: it always runs
    /// eager.
    pub cooperative_rebalancing: bool,
}

/// Default [`RuntimeConfig::restore_chunk_bytes`]: 4 MiB.
pub const DEFAULT_RESTORE_CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// Default [`RuntimeConfig::max_pending_store_bytes`]: 64 MiB.
pub const DEFAULT_MAX_PENDING_STORE_BYTES: usize = 64 * 1024 * 1024;

/// Default [`RuntimeConfig::cache_max_bytes`]: 10 MiB, Kafka Streams' default.
pub const DEFAULT_CACHE_MAX_BYTES: usize = 10 * 1024 * 1024;

impl RuntimeConfig {
    /// The defaults for `guarantee`. Exactly-once commits every 100 ms, as Kafka Streams
    /// does with `exactly_once_v2`: read_committed readers see outputs only once their
    /// transaction commits, so the commit interval is their latency. At-least-once commits
    /// every second.
    pub fn for_guarantee(guarantee: ProcessingGuarantee) -> RuntimeConfig {
        let commit_interval = match guarantee {
            ProcessingGuarantee::AtLeastOnce => Duration::from_millis(1_000),
            ProcessingGuarantee::ExactlyOnce => Duration::from_millis(100),
        };
        RuntimeConfig {
            commit_interval,
            poll_timeout: Duration::from_millis(100),
            max_records_per_round: 10_000,
            source_topics_warning_interval: Duration::from_secs(30),
            processing_guarantee: guarantee,
            instance_id: None,
            state_dir: None,
            restore_chunk_bytes: DEFAULT_RESTORE_CHUNK_BYTES,
            max_pending_store_bytes: DEFAULT_MAX_PENDING_STORE_BYTES,
            cache_max_bytes: DEFAULT_CACHE_MAX_BYTES,
            threads: 1,
            standby_replicas: 0,
            cooperative_rebalancing: true,
        }
    }
}

impl Default for RuntimeConfig {
    /// At-least-once, committing every second.
    fn default() -> Self {
        RuntimeConfig::for_guarantee(ProcessingGuarantee::AtLeastOnce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both guarantees parse from our names and Kafka Streams' and print back as ours;
    /// anything else is refused with the text it got.
    #[test]
    fn guarantee_names_round_trip() {
        for guarantee in [
            ProcessingGuarantee::AtLeastOnce,
            ProcessingGuarantee::ExactlyOnce,
        ] {
            assert_eq!(guarantee.to_string().parse(), Ok(guarantee));
        }
        assert_eq!(
            "exactly_once_v2".parse(),
            Ok(ProcessingGuarantee::ExactlyOnce)
        );
        assert_eq!(
            "at_least_once".parse(),
            Ok(ProcessingGuarantee::AtLeastOnce)
        );
        let refused = "exactly_once".parse::<ProcessingGuarantee>();
        assert_eq!(refused, Err(UnknownGuarantee("exactly_once".to_string())));
    }

    /// The default stays at-least-once; the exactly-once defaults commit ten times as often.
    #[test]
    fn defaults_per_guarantee() {
        let default = RuntimeConfig::default();
        assert_eq!(
            default.processing_guarantee,
            ProcessingGuarantee::AtLeastOnce
        );
        assert_eq!(default.commit_interval, Duration::from_secs(1));
        let exactly_once = RuntimeConfig::for_guarantee(ProcessingGuarantee::ExactlyOnce);
        assert_eq!(exactly_once.commit_interval, Duration::from_millis(100));
        assert_eq!(exactly_once.instance_id, None);
    }
}
