//! Records as the runtimes hand them to tasks and take them back: bytes, not types.

use std::sync::Arc;

/// Record headers, in order: name and optional value.
pub type Headers = Arc<Vec<(String, Option<Vec<u8>>)>>;

/// Empty headers, shared: records without headers (changelogs) allocate none.
pub(crate) fn no_headers() -> Headers {
    static EMPTY: std::sync::LazyLock<Headers> = std::sync::LazyLock::new(Headers::default);
    EMPTY.clone()
}

/// `headers` as a record's [`Headers`]; none shares one empty list, so the runtimes'
/// readers allocate nothing for the usual record without headers.
pub fn headers_of(headers: Vec<(String, Option<Vec<u8>>)>) -> Headers {
    if headers.is_empty() {
        no_headers()
    } else {
        Arc::new(headers)
    }
}

/// A topic and one of its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic name.
    pub topic: String,
    /// The partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A record read from a topic partition, before any serde ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRecord {
    /// The topic it was read from.
    pub topic: String,
    /// The partition it was read from.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// Its timestamp (create or log-append time, as the topic says).
    pub timestamp_ms: i64,
    /// Key bytes; `None` is a null key.
    pub key: Option<Vec<u8>>,
    /// Value bytes; `None` is a null value (a tombstone on a table topic).
    pub value: Option<Vec<u8>>,
    /// Headers, as sent.
    pub headers: Headers,
}

/// Where an output record goes within its topic.
#[derive(Clone)]
pub enum OutputPartition {
    /// This partition: changelogs (the task's own partition) and explicit partitioners.
    Exactly(i32),
    /// Kafka's default for keyed records: murmur2 of the key bytes, so that data written by a
    /// topology is partitioned like data written by the Java client; keyless records go
    /// wherever the runtime spreads them.
    ByKey,
    /// A user partitioner, given the topic's partition count.
    Custom(Arc<dyn Fn(i32) -> i32 + Send + Sync>),
}

impl std::fmt::Debug for OutputPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputPartition::Exactly(partition) => write!(f, "Exactly({partition})"),
            OutputPartition::ByKey => write!(f, "ByKey"),
            OutputPartition::Custom(_) => write!(f, "Custom"),
        }
    }
}

/// What an output record is for; runtimes treat them alike, the test driver routes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// A user sink (`to(topic)`).
    Sink,
    /// A state store's changelog.
    Changelog,
    /// An internal repartition topic, read back by a later sub-topology.
    Repartition,
}

/// A record a task wants written, with its key and value serialized.
#[derive(Debug, Clone)]
pub struct OutputRecord {
    /// Destination topic.
    pub topic: String,
    /// Destination partition, or how to pick it.
    pub partition: OutputPartition,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes; `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    /// The record timestamp (the store's timestamp, for changelogs).
    pub timestamp_ms: i64,
    /// Headers to send.
    pub headers: Headers,
    /// Sink, changelog or repartition.
    pub kind: OutputKind,
}

impl OutputRecord {
    /// The partition of a topic with `partition_count` partitions this record goes to, or
    /// `None` for a keyless `ByKey` record, which the runtime places itself.
    ///
    /// # Panics
    /// If `partition_count` is not positive: the runtime looked it up wrong.
    pub fn resolve_partition(&self, partition_count: i32) -> Option<i32> {
        assert!(partition_count > 0, "a topic has at least one partition");
        match &self.partition {
            OutputPartition::Exactly(partition) => Some(*partition),
            OutputPartition::ByKey => self
                .key
                .as_deref()
                .map(|key| murmur2_partition(key, partition_count)),
            OutputPartition::Custom(partitioner) => {
                Some(partitioner(partition_count).rem_euclid(partition_count))
            }
        }
    }
}

/// Kafka's default partitioner for keyed records: `toPositive(murmur2(key)) % partitions`.
pub fn murmur2_partition(key: &[u8], partition_count: i32) -> i32 {
    let positive = murmur2(key) & 0x7fff_ffff;
    positive % partition_count
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), seed 0x9747b28c.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Kafka mixes in the length as a Java int; keys are far below 2 GiB.
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut h = SEED ^ length;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from Kafka's own UtilsTest, so our partitions match the Java client's.
    #[test]
    fn murmur2_matches_kafka() {
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(murmur2(b"abc"), 479_470_107);
    }
}
