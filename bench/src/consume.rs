//! Consume throughput (scenario 3): read topics from their start with `assign()` until a
//! known number of messages has arrived.
//!
//! assign() rather than subscribe() so the figure is the fetch path alone, without a
//! group join (and its 3 s initial rebalance delay) inside the timed window.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::produce::Throughput;

/// A consume run gives up when no message arrives for this long.
const IDLE_TIMEOUT_S: u64 = 30;

#[derive(clap::Args, Debug, Clone)]
pub struct ConsumeArgs {
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Topic to read (all of its partitions, from the start).
    #[arg(long)]
    pub topic: String,
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Stop after this many messages (the count produce wrote).
    #[arg(long)]
    pub messages: u64,
    /// subscribe() with a fresh group instead of assign().
    #[arg(long)]
    pub group: bool,
}

/// Topics and partition counts to read, and how many messages they hold together.
#[derive(Clone, Debug)]
pub struct ConsumeSpec {
    pub topics: Vec<(String, i32)>,
    pub messages: u64,
}

pub fn run_cli(args: ConsumeArgs) -> Result<()> {
    let spec = ConsumeSpec {
        topics: vec![(args.topic.clone(), args.partitions)],
        messages: args.messages,
    };
    let result = if args.group {
        let (result, join) = run_group(&args.bootstrap, &spec)?;
        println!(
            "group join to first message: {:.0} ms",
            join.as_secs_f64() * 1000.0
        );
        result
    } else {
        run(&args.bootstrap, &spec)?
    };
    println!(
        "consume topic={} messages={}: {:.0} msg/s, {:.1} MB/s in {:.2} s",
        args.topic,
        result.messages,
        result.messages_per_s(),
        result.mb_per_s(),
        result.elapsed.as_secs_f64()
    );
    Ok(())
}

/// The consumer settings; librdkafka's defaults otherwise, the same for broker and ceiling.
pub fn consumer_config(bootstrap: &str, group_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest");
    config
}

/// A group consume: subscribe() with a fresh group id, so the figure includes the join.
/// Returns the throughput timed from subscribe() (join included: timed from the first
/// message it would count librdkafka's prefetch during the join as free), and the time
/// to the first message (the join, with the broker's initial rebalance delay).
pub fn run_group(bootstrap: &str, spec: &ConsumeSpec) -> Result<(Throughput, Duration)> {
    let group_id = format!("riffle-bench-group-{}", crate::topic::run_suffix());
    let consumer: BaseConsumer = consumer_config(bootstrap, &group_id)
        .create()
        .context("cannot create the consumer")?;
    let topics: Vec<&str> = spec
        .topics
        .iter()
        .map(|(topic, _)| topic.as_str())
        .collect();
    let subscribed = Instant::now();
    consumer.subscribe(&topics).context("subscribe failed")?;
    let mut first_message: Option<Instant> = None;
    let mut last_message = Instant::now();
    let mut messages = 0u64;
    let mut value_bytes_total = 0u64;
    while messages < spec.messages {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                first_message.get_or_insert_with(Instant::now);
                messages += 1;
                value_bytes_total += message.payload_len() as u64;
                last_message = Instant::now();
            }
            Some(Err(error)) => return Err(error).context("consume failed"),
            None if last_message.elapsed() > Duration::from_secs(IDLE_TIMEOUT_S) => {
                bail!("stalled after {messages} of {} messages", spec.messages)
            }
            None => {}
        }
    }
    let first_message = first_message.unwrap_or(subscribed);
    let throughput = Throughput {
        messages,
        value_bytes_total,
        elapsed: subscribed.elapsed(),
    };
    Ok((throughput, first_message - subscribed))
}

pub fn run(bootstrap: &str, spec: &ConsumeSpec) -> Result<Throughput> {
    let consumer: BaseConsumer = consumer_config(bootstrap, "riffle-bench-assign")
        .create()
        .context("cannot create the consumer")?;
    let mut assignment = TopicPartitionList::new();
    for (topic, partitions) in &spec.topics {
        for partition in 0..*partitions {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .context("cannot build the assignment")?;
        }
    }
    consumer.assign(&assignment).context("assign failed")?;
    let started = Instant::now();
    let mut last_message = Instant::now();
    let mut messages = 0u64;
    let mut value_bytes_total = 0u64;
    while messages < spec.messages {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                messages += 1;
                value_bytes_total += message.payload_len() as u64;
                last_message = Instant::now();
            }
            Some(Err(error)) => return Err(error).context("consume failed"),
            None if last_message.elapsed() > Duration::from_secs(IDLE_TIMEOUT_S) => {
                bail!("stalled after {messages} of {} messages", spec.messages)
            }
            None => {}
        }
    }
    Ok(Throughput {
        messages,
        value_bytes_total,
        elapsed: started.elapsed(),
    })
}

/// After the read_committed check has its records, how long it goes on polling to be
/// sure no more arrive.
const READ_COMMITTED_QUIET_MS: u64 = 500;

/// Reads every partition of `topic` from the start with `isolation.level=read_committed`
/// and fails unless exactly `expected` records arrive: fewer (a stall of
/// [`IDLE_TIMEOUT_S`]) or more (within [`READ_COMMITTED_QUIET_MS`] of the last expected
/// one). Not timed: it proves a transactional run's records became visible as committed.
pub fn check_read_committed(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: u64,
) -> Result<()> {
    let mut config = consumer_config(bootstrap, "riffle-bench-read-committed");
    config.set("isolation.level", "read_committed");
    let consumer: BaseConsumer = config.create().context("cannot create the consumer")?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .context("cannot build the assignment")?;
    }
    consumer.assign(&assignment).context("assign failed")?;
    let mut received = 0u64;
    let mut last_message = Instant::now();
    let mut quiet_since: Option<Instant> = None;
    loop {
        if let Some(quiet_since) = quiet_since
            && quiet_since.elapsed() >= Duration::from_millis(READ_COMMITTED_QUIET_MS)
        {
            break;
        }
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(_)) => {
                received += 1;
                last_message = Instant::now();
            }
            Some(Err(error)) => return Err(error).context("read_committed consume failed"),
            None if last_message.elapsed() > Duration::from_secs(IDLE_TIMEOUT_S) => break,
            None => {}
        }
        if received >= expected {
            quiet_since.get_or_insert_with(Instant::now);
        }
    }
    if received != expected {
        bail!(
            "a read_committed consumer of {topic} read {received} records, not the {expected} produced"
        );
    }
    Ok(())
}
