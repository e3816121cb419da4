//! Log compaction end to end: a `cleanup.policy=compact` topic with 4 KiB segments keeps the
//! latest value of every key, loses superseded values and, after `delete.retention.ms`,
//! tombstoned keys, while its files shrink.
//!
//! The cleaner never touches the active (last) segment, so the test makes sure every record it
//! judges lives in sealed segments: after the keyed updates and tombstones it appends records
//! of one extra "sentinel" key until the active segment holds nothing else, and keeps
//! appending sentinel bursts while it waits, so the log always has dirty data for the cleaner
//! to take (as Kafka, a cleaner may skip a log whose dirty part is small, and removes an
//! expired tombstone only in a later pass).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use riffle_integration_tests::Broker;
use riffle_integration_tests::clients::{create_topic, future_producer, read_to_end};

const TOPIC: &str = "compacted";
/// Keys 0..KEY_COUNT get UPDATE_COUNT values each.
const KEY_COUNT: usize = 50;
const UPDATE_COUNT: usize = 40;
/// Every TOMBSTONE_STRIDE-th key is deleted with a tombstone after its updates.
const TOMBSTONE_STRIDE: usize = 5;
const SEGMENT_BYTES: usize = 4096;
const DELETE_RETENTION: Duration = Duration::from_millis(2000);
/// The key whose records push everything else out of the active segment.
const SENTINEL_KEY: &str = "sentinel";
/// Sentinel records appended after the tombstones: 40 x 200 bytes is two segments' worth.
const SENTINEL_ROLL_COUNT: usize = 40;
/// Sentinel records appended before each look at the log while waiting.
const SENTINEL_BURST_COUNT: usize = 8;
/// How long the cleaner may take to reach the fully compacted state.
const COMPACTION_TIMEOUT: Duration = Duration::from_secs(40);
/// Pause between looks at the log.
const LOOK_INTERVAL: Duration = Duration::from_millis(300);

#[tokio::test]
async fn compaction_keeps_latest_values_and_expires_tombstones() {
    // Proves the log cleaner on a compacted topic: of 50 keys x 40 updates, every live key's
    // latest value stays and every superseded value in a sealed segment goes; a deleted key's
    // tombstone is the last thing a consumer sees of it and stays for at least
    // delete.retention.ms (2 s), after which the key disappears entirely; and the partition's
    // files shrink to under a quarter of their size.
    let broker = Broker::start_with(&["--log-cleaner-backoff-ms", "200"]);
    let bootstrap = broker.bootstrap();
    let segment_bytes = SEGMENT_BYTES.to_string();
    let delete_retention_ms = DELETE_RETENTION.as_millis().to_string();
    create_topic(
        &bootstrap,
        TOPIC,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", &segment_bytes),
            ("delete.retention.ms", &delete_retention_ms),
        ],
    )
    .await;
    let producer = future_producer(&bootstrap, &[("acks", "all"), ("linger.ms", "5")]);
    let partition_dir = broker.data_dir().join(format!("{TOPIC}-0"));
    let tombstones_sent_at = produce_history(&producer).await;
    // The cleaner runs while we produce, so the files never hold the whole history at
    // once; the keys and values sent are a lower bound of what they would hold uncompacted.
    let bytes_before = history_payload_bytes();
    println!(
        "produced {} updates, {} tombstones; {bytes_before} bytes of keys and values; {} log bytes now",
        KEY_COUNT * UPDATE_COUNT,
        deleted_keys().count(),
        log_bytes(&partition_dir)
    );
    let look = wait_for_compaction(&broker, &producer, &partition_dir, tombstones_sent_at).await;
    println!("compacted: {}", look.summary());
    assert!(
        look.log_bytes < bytes_before / 4,
        "the partition's log files hold {} bytes, not under a quarter of the {bytes_before} \
         bytes of keys and values produced",
        look.log_bytes
    );
}

/// Sends every update, then the tombstones, then sentinel records until the keyed records
/// are all in sealed segments. Returns when the tombstones started to be sent.
async fn produce_history(producer: &FutureProducer) -> Instant {
    let updates = (0..UPDATE_COUNT)
        .flat_map(|version| (0..KEY_COUNT).map(move |key| (key, version)))
        .map(|(key, version)| send(producer, &key_name(key), Some(&value_of(key, version))))
        .collect();
    settle(updates).await;
    let tombstones_sent_at = Instant::now();
    let tombstones = deleted_keys()
        .map(|key| send(producer, &key_name(key), None))
        .collect();
    settle(tombstones).await;
    // One at a time, so each is its own batch and the segments roll at the configured size.
    for _ in 0..SENTINEL_ROLL_COUNT {
        settle(vec![send(producer, SENTINEL_KEY, Some(&sentinel_value()))]).await;
    }
    tombstones_sent_at
}

/// Looks at the log until it is compacted, checking the invariants at every look and
/// appending a sentinel burst between looks; panics after [`COMPACTION_TIMEOUT`].
async fn wait_for_compaction(
    broker: &Broker,
    producer: &FutureProducer,
    partition_dir: &Path,
    tombstones_sent_at: Instant,
) -> Look {
    let deadline = Instant::now() + COMPACTION_TIMEOUT;
    loop {
        let look = Look::take(&broker.bootstrap(), partition_dir);
        look.assert_invariants(tombstones_sent_at.elapsed());
        if look.is_compacted() {
            return look;
        }
        assert!(
            Instant::now() < deadline,
            "the log was not compacted within {COMPACTION_TIMEOUT:?}: {}\n{}",
            look.summary(),
            broker.log_tail()
        );
        let burst = (0..SENTINEL_BURST_COUNT)
            .map(|_| send(producer, SENTINEL_KEY, Some(&sentinel_value())))
            .collect();
        settle(burst).await;
        tokio::time::sleep(LOOK_INTERVAL).await;
    }
}

/// One read of the whole partition from offset 0, with what the data directory held.
struct Look {
    /// Every record of the numbered keys (not the sentinel), in offset order: offset, key
    /// number and value (`None` for a tombstone).
    keyed: Vec<(i64, usize, Option<String>)>,
    /// The base offset of the active segment when the look was taken.
    active_base_offset: i64,
    /// The total size of the partition's `.log` files.
    log_bytes: u64,
}

impl Look {
    fn take(bootstrap: &str, partition_dir: &Path) -> Look {
        let keyed = read_to_end(bootstrap, TOPIC, 0)
            .iter()
            .filter(|message| message.key() != Some(SENTINEL_KEY.as_bytes()))
            .map(|message| (message.offset(), key_number(message), payload_text(message)))
            .collect();
        Look {
            keyed,
            active_base_offset: active_base_offset(partition_dir),
            log_bytes: log_bytes(partition_dir),
        }
    }

    /// What must hold at every moment, compacted or not.
    fn assert_invariants(&self, since_tombstones: Duration) {
        let by_key = self.by_key();
        for (offset, key, _) in &self.keyed {
            assert!(
                *offset < self.active_base_offset,
                "key {key} at offset {offset} is in the active segment (base {}); the test \
                 needs every keyed record sealed",
                self.active_base_offset
            );
        }
        for key in 0..KEY_COUNT {
            let values = by_key.get(&key).map(Vec::as_slice).unwrap_or_default();
            let versions: Vec<usize> = values
                .iter()
                .flatten()
                .map(|value| version_of(value))
                .collect();
            assert!(
                versions.windows(2).all(|pair| pair[0] < pair[1]),
                "key {key}: values out of order {versions:?}"
            );
            if is_deleted(key) {
                assert!(
                    values.last().is_none_or(Option::is_none),
                    "key {key} was deleted, but its last record is {:?}: compaction resurrected it",
                    values.last()
                );
                assert!(
                    !values.is_empty() || since_tombstones >= DELETE_RETENTION,
                    "key {key}'s tombstone is gone {since_tombstones:?} after it was sent, before \
                     delete.retention.ms ({DELETE_RETENTION:?})"
                );
            } else {
                let latest = value_of(key, UPDATE_COUNT - 1);
                assert_eq!(
                    values.last(),
                    Some(&Some(latest)),
                    "key {key}'s latest value must always be readable"
                );
            }
        }
    }

    /// Every live key once (its latest value), no deleted key at all.
    fn is_compacted(&self) -> bool {
        let by_key = self.by_key();
        (0..KEY_COUNT).all(|key| {
            let count = by_key.get(&key).map_or(0, Vec::len);
            count == usize::from(!is_deleted(key))
        })
    }

    fn by_key(&self) -> BTreeMap<usize, Vec<Option<String>>> {
        let mut by_key: BTreeMap<usize, Vec<Option<String>>> = BTreeMap::new();
        for (_, key, value) in &self.keyed {
            by_key.entry(*key).or_default().push(value.clone());
        }
        by_key
    }

    fn summary(&self) -> String {
        let by_key = self.by_key();
        let superseded: usize = by_key
            .values()
            .map(|values| values.len().saturating_sub(1))
            .sum();
        let deleted_present: BTreeSet<usize> = by_key
            .keys()
            .copied()
            .filter(|key| is_deleted(*key))
            .collect();
        format!(
            "{} keyed records, {superseded} superseded, deleted keys still present {:?}, \
             active segment base {}, {} log bytes",
            self.keyed.len(),
            deleted_present,
            self.active_base_offset,
            self.log_bytes
        )
    }
}

/// The bytes of every key and value in the update history.
fn history_payload_bytes() -> u64 {
    let per_key = |key: usize| {
        (0..UPDATE_COUNT).map(move |version| key_name(key).len() + value_of(key, version).len())
    };
    let total: usize = (0..KEY_COUNT).flat_map(per_key).sum();
    u64::try_from(total).unwrap_or(u64::MAX)
}

fn key_name(key: usize) -> String {
    format!("key-{key:03}")
}

/// The value of update `version` of `key`; the padding makes superseded data worth removing.
fn value_of(key: usize, version: usize) -> String {
    format!("key-{key:03}-v{version:02}-{}", "x".repeat(60))
}

fn version_of(value: &str) -> usize {
    value
        .get(9..11)
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("unexpected value {value:?}"))
}

fn sentinel_value() -> String {
    format!("sentinel-{}", "s".repeat(200))
}

fn is_deleted(key: usize) -> bool {
    key.is_multiple_of(TOMBSTONE_STRIDE)
}

fn deleted_keys() -> impl Iterator<Item = usize> {
    (0..KEY_COUNT).filter(|key| is_deleted(*key))
}

fn key_number(message: &OwnedMessage) -> usize {
    let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
    key.strip_prefix("key-")
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("unexpected key {key:?} at offset {}", message.offset()))
}

fn payload_text(message: &OwnedMessage) -> Option<String> {
    message
        .payload()
        .map(|payload| String::from_utf8_lossy(payload).into_owned())
}

/// Hands one record to librdkafka; `None` sends a tombstone (a null value).
fn send(producer: &FutureProducer, key: &str, value: Option<&str>) -> DeliveryFuture {
    let record = FutureRecord::<str, str>::to(TOPIC).partition(0).key(key);
    let record = match value {
        Some(value) => record.payload(value),
        None => record,
    };
    producer
        .send_result(record)
        .unwrap_or_else(|(error, _)| panic!("librdkafka refused a record for {key}: {error}"))
}

/// Waits for every delivery report and panics on any failure.
async fn settle(in_flight: Vec<DeliveryFuture>) {
    for future in in_flight {
        // message.timeout.ms (30 s) bounds every report; this only guards against a lost one.
        let report = tokio::time::timeout(Duration::from_secs(60), future)
            .await
            .expect("no delivery report within 60 s")
            .expect("the delivery report channel was dropped");
        if let Err((error, message)) = report {
            panic!(
                "a record for key {:?} was not delivered: {error}",
                message.key()
            );
        }
    }
}

/// The base offset of the newest `<20 digits>.log` file in the partition directory.
fn active_base_offset(partition_dir: &Path) -> i64 {
    segment_logs(partition_dir)
        .map(|(base_offset, _)| base_offset)
        .max()
        .unwrap_or_else(|| panic!("no segment in {}", partition_dir.display()))
}

/// The total size of the partition's segment `.log` files.
fn log_bytes(partition_dir: &Path) -> u64 {
    segment_logs(partition_dir).map(|(_, bytes)| bytes).sum()
}

/// (base offset, size) of each `<20 digits>.log` file; the cleaner's temporary files and the
/// indexes do not match.
fn segment_logs(partition_dir: &Path) -> impl Iterator<Item = (i64, u64)> {
    let entries = fs::read_dir(partition_dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", partition_dir.display()));
    entries.filter_map(|entry| {
        let entry = entry.ok()?;
        let name = entry.file_name().into_string().ok()?;
        let stem = name.strip_suffix(".log")?;
        if stem.len() != 20 || !stem.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        // A file the cleaner just replaced may vanish between listing and stat.
        let bytes = entry.metadata().ok()?.len();
        Some((stem.parse().ok()?, bytes))
    })
}
