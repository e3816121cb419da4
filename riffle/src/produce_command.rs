//! `riffle produce TOPIC`: one record per line of standard input, as
//! `kafka-console-producer.sh` and `kcat -P` write them.
//!
//! Lines are read as bytes (a final `\n` or `\r\n` is not part of the record) and gathered
//! into one v2 record batch per partition, built with `riffle_protocol`'s
//! [`RecordBatchBuilder`]. A batch is sent when [`BATCH_MAX_RECORDS`] or
//! [`BATCH_MAX_BYTES`] is reached, or as soon as no more input is waiting, so lines typed at
//! a terminal go out one by one and a file goes out in large batches. Each Produce request
//! goes to the leaders of its partitions (from Metadata). Partitions: `--partition` for
//! all; otherwise Kafka's default partitioner for keyed records (murmur2 of the key, as the
//! Java client), and records without a key take turns, one batch per partition.
//!
//! Output: a summary line; with `--format json`, one line per record instead:
//! `{"topic":"orders","partition":0,"offset":42}` (the offset is `null` with `--acks 0`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use serde::Serialize;

use riffle_protocol::record::{Compression, RecordBatchBuilder};

use crate::admin_client::records::{Acks, TopicPartitionKey};
use crate::admin_client::routing::{Brokers, partition_leaders};
use crate::cli_support::arguments::key_value;
use crate::cli_support::{CommandError, OutputFormat, finish};
use crate::client_config::ConnectionArgs;
use crate::topics_command::existing_topic;
use riffle_server::cluster::now_ms;

/// The most records one batch holds.
pub const BATCH_MAX_RECORDS: usize = 10_000;
/// The most record bytes (keys, values, headers, before compression) one batch holds; well
/// under Kafka's default `max.message.bytes` (1 MiB) once framed.
pub const BATCH_MAX_BYTES: usize = 512 * 1024;
/// The longest line read; a longer one is an error, not a memory blow-up.
pub const LINE_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// How much input is read ahead: what is buffered when a batch fills goes into the next.
pub const INPUT_BUFFER_BYTES: usize = 1024 * 1024;
/// How long the broker may take to acknowledge a Produce request (its `timeout_ms`).
pub const PRODUCE_TIMEOUT: Duration = Duration::from_secs(30);

/// `riffle produce`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    echo 'hello' | riffle produce orders\n  \
    printf 'user-1:clicked\\nuser-2:left\\n' | riffle produce orders --key-separator : \
    --header source=web")]
pub struct ProduceArgs {
    /// The broker to ask and how to connect.
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// The topic to write to; it must exist.
    pub topic: String,
    /// Split each line at the first SEP into key and value (a line without SEP is an
    /// error). Without it, each line is a value with a null key.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// A header on every record, NAME=VALUE; repeatable.
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = key_value)]
    pub headers: Vec<(String, String)>,
    /// Write every record to this partition. Without it, a keyed record goes where Kafka's
    /// default partitioner puts it (murmur2 of the key) and unkeyed records take turns.
    #[arg(long, value_name = "N")]
    pub partition: Option<i32>,
    /// What the broker confirms before answering: `all` (every in-sync replica has the
    /// records), `1` (the leader has them) or `0` (no answer at all: errors go unseen).
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    pub acks: Acks,
    /// Compress batches: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none", value_parser = parse_compression)]
    pub compression: Compression,
    /// `text`: a summary line; `json`: one line per record with its partition and offset.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

fn parse_acks(text: &str) -> Result<Acks, String> {
    match text {
        "all" | "-1" => Ok(Acks::All),
        "1" => Ok(Acks::Leader),
        "0" => Ok(Acks::None),
        _ => Err(format!("'{text}' is not all, -1, 1 or 0")),
    }
}

fn parse_compression(text: &str) -> Result<Compression, String> {
    [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ]
    .into_iter()
    .find(|codec| codec.name() == text)
    .ok_or_else(|| format!("'{text}' is not none, gzip, snappy, lz4 or zstd"))
}

/// Runs `riffle produce`, reading standard input.
pub fn run(args: ProduceArgs) -> ExitCode {
    let result = args
        .connection
        .connect_brokers()
        .map_err(CommandError::from)
        .and_then(|mut brokers| {
            let stdin = std::io::stdin().lock();
            produce(&mut brokers, &args, stdin, &mut std::io::stdout().lock())
        });
    finish(result)
}

/// One record read from a line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LineRecord {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    timestamp_ms: i64,
}

/// Where the records go and how far the run has come.
struct Producer<'a> {
    args: &'a ProduceArgs,
    /// Each partition's leader, from Metadata.
    leaders: BTreeMap<i32, i32>,
    /// The partition count.
    partition_count: i32,
    /// The partition the next unkeyed batch goes to.
    next_unkeyed_partition: i32,
    /// Records sent, per partition.
    sent: BTreeMap<i32, u64>,
}

/// Reads `input` to its end and produces its lines; returns the summary to print.
/// JSON lines are written to `output` as batches are acknowledged.
fn produce(
    brokers: &mut Brokers,
    args: &ProduceArgs,
    input: impl Read,
    output: &mut impl Write,
) -> Result<String, CommandError> {
    let metadata = brokers.metadata(Some(std::slice::from_ref(&args.topic)))?;
    let partition_count =
        i32::try_from(existing_topic(&metadata, &args.topic)?.partitions.len()).unwrap_or(i32::MAX);
    let mut leaders = BTreeMap::new();
    for (partition, leader) in partition_leaders(&metadata, &args.topic) {
        match leader {
            Ok(leader) => leaders.insert(partition, leader),
            Err(code) if args.partition.is_none_or(|asked| asked == partition) => {
                return Err(CommandError::Partition {
                    what: format!("finding the leader of {}-{partition}", args.topic),
                    code,
                    message: None,
                });
            }
            Err(_) => None,
        };
    }
    if let Some(partition) = args.partition.filter(|p| !(0..partition_count).contains(p)) {
        return Err(CommandError::InvalidArgument(format!(
            "--partition {partition}: topic '{}' has partitions 0 to {}",
            args.topic,
            partition_count - 1
        )));
    }
    let mut producer = Producer {
        args,
        leaders,
        partition_count,
        next_unkeyed_partition: 0,
        sent: BTreeMap::new(),
    };
    let mut reader = BufReader::with_capacity(INPUT_BUFFER_BYTES, input);
    let mut line_number: u64 = 0;
    let mut pending: Vec<LineRecord> = Vec::new();
    let mut pending_bytes = 0;
    while let Some(line) = read_line(&mut reader, line_number + 1)? {
        line_number += 1;
        let record = split_line(line, args.key_separator.as_deref(), line_number)?;
        pending_bytes += record.value.len() + record.key.as_ref().map_or(0, Vec::len);
        pending.push(record);
        // An empty buffer means the next line may not have been written yet: send now.
        let waiting = !reader.buffer().is_empty();
        if !waiting || pending.len() >= BATCH_MAX_RECORDS || pending_bytes >= BATCH_MAX_BYTES {
            producer.send(brokers, std::mem::take(&mut pending), output)?;
            pending_bytes = 0;
        }
    }
    producer.send(brokers, pending, output)?;
    Ok(producer.summary())
}

/// The next line without its `\n` or `\r\n`, or `None` at the end of input.
fn read_line(
    reader: &mut BufReader<impl Read>,
    line_number: u64,
) -> Result<Option<Vec<u8>>, CommandError> {
    let mut line = Vec::new();
    let read = reader
        .by_ref()
        .take(LINE_MAX_BYTES + 1)
        .read_until(b'\n', &mut line)
        .map_err(CommandError::Stdin)?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    } else if u64::try_from(line.len()).unwrap_or(u64::MAX) > LINE_MAX_BYTES {
        return Err(CommandError::InvalidArgument(format!(
            "line {line_number} is longer than {LINE_MAX_BYTES} bytes"
        )));
    }
    Ok(Some(line))
}

/// A line as a record: key and value split at `separator`, or all value.
fn split_line(
    line: Vec<u8>,
    separator: Option<&str>,
    line_number: u64,
) -> Result<LineRecord, CommandError> {
    let timestamp_ms = now_ms();
    let Some(separator) = separator.map(str::as_bytes).filter(|s| !s.is_empty()) else {
        return Ok(LineRecord {
            key: None,
            value: line,
            timestamp_ms,
        });
    };
    let position = line
        .windows(separator.len())
        .position(|window| window == separator)
        .ok_or_else(|| {
            CommandError::InvalidArgument(format!(
                "line {line_number} has no key separator '{}'",
                String::from_utf8_lossy(separator)
            ))
        })?;
    Ok(LineRecord {
        key: Some(line[..position].to_vec()),
        value: line[position + separator.len()..].to_vec(),
        timestamp_ms,
    })
}

/// One acknowledged record, as `--format json` prints it.
#[derive(Serialize)]
struct ProducedRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: Option<i64>,
}

impl Producer<'_> {
    /// Sends `records`: one batch per partition, one request per leader.
    fn send(
        &mut self,
        brokers: &mut Brokers,
        records: Vec<LineRecord>,
        output: &mut impl Write,
    ) -> Result<(), CommandError> {
        if records.is_empty() {
            return Ok(());
        }
        let by_partition = self.partition_records(records);
        let mut by_leader: BTreeMap<i32, Vec<(TopicPartitionKey, Bytes, usize)>> = BTreeMap::new();
        for (partition, records) in &by_partition {
            let batch = self.build_batch(records)?;
            let leader = self.leaders.get(partition).copied().unwrap_or(-1);
            let key = (self.args.topic.clone(), *partition);
            by_leader
                .entry(leader)
                .or_default()
                .push((key, batch, records.len()));
        }
        for (leader, batches) in by_leader {
            let counts: BTreeMap<i32, usize> = batches
                .iter()
                .map(|((_, partition), _, count)| (*partition, *count))
                .collect();
            let request = batches
                .into_iter()
                .map(|(key, batch, _)| (key, batch))
                .collect();
            let acknowledged =
                brokers
                    .broker(leader)?
                    .produce(self.args.acks, PRODUCE_TIMEOUT, request)?;
            for (partition, count) in counts {
                let base_offset = match &acknowledged {
                    None => None,
                    Some(outcomes) => Some(self.base_offset(outcomes, partition)?),
                };
                self.report(partition, count, base_offset, output)?;
            }
        }
        Ok(())
    }

    /// The records of each partition, in input order.
    fn partition_records(&mut self, records: Vec<LineRecord>) -> BTreeMap<i32, Vec<LineRecord>> {
        let unkeyed_partition = self.next_unkeyed_partition;
        self.next_unkeyed_partition = (unkeyed_partition + 1) % self.partition_count.max(1);
        let mut by_partition: BTreeMap<i32, Vec<LineRecord>> = BTreeMap::new();
        for record in records {
            let partition = match (self.args.partition, &record.key) {
                (Some(partition), _) => partition,
                (None, Some(key)) => {
                    riffle_processor::murmur2_partition(key, self.partition_count.max(1))
                }
                (None, None) => unkeyed_partition,
            };
            by_partition.entry(partition).or_default().push(record);
        }
        by_partition
    }

    /// One v2 batch of `records` with the headers of `--header`.
    fn build_batch(&self, records: &[LineRecord]) -> Result<Bytes, CommandError> {
        let headers: Vec<(&str, Option<&[u8]>)> = self
            .args
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), Some(value.as_bytes())))
            .collect();
        let mut builder = RecordBatchBuilder::new(self.args.compression);
        for record in records {
            builder.append(
                record.timestamp_ms,
                record.key.as_deref(),
                Some(&record.value),
                &headers,
            );
        }
        builder.build().map_err(|error| {
            CommandError::InvalidArgument(format!("cannot build a batch: {error}"))
        })
    }

    /// The partition's base offset from the broker's answer, or its error.
    fn base_offset(
        &self,
        outcomes: &BTreeMap<TopicPartitionKey, crate::admin_client::records::PartitionResult<i64>>,
        partition: i32,
    ) -> Result<i64, CommandError> {
        let what = format!("producing to {}-{partition}", self.args.topic);
        match outcomes.get(&(self.args.topic.clone(), partition)) {
            Some(Ok(base_offset)) => Ok(*base_offset),
            Some(Err((code, message))) => Err(CommandError::Partition {
                what,
                code: *code,
                message: message.clone(),
            }),
            None => Err(CommandError::InvalidArgument(format!(
                "{what}: the broker's answer does not mention the partition"
            ))),
        }
    }

    /// Counts `count` acknowledged records and, for JSON, prints one line each.
    fn report(
        &mut self,
        partition: i32,
        count: usize,
        base_offset: Option<i64>,
        output: &mut impl Write,
    ) -> Result<(), CommandError> {
        *self.sent.entry(partition).or_default() += u64::try_from(count).unwrap_or(u64::MAX);
        if self.args.format != OutputFormat::Json {
            return Ok(());
        }
        for index in 0..count {
            let offset = base_offset.map(|base| base + i64::try_from(index).unwrap_or(i64::MAX));
            let line = serde_json::to_string(&ProducedRecord {
                topic: &self.args.topic,
                partition,
                offset,
            })
            .unwrap_or_default();
            writeln!(output, "{line}").map_err(CommandError::Stdout)?;
        }
        Ok(())
    }

    /// The closing line of a text run; nothing for JSON, whose lines say it all.
    fn summary(&self) -> String {
        if self.args.format == OutputFormat::Json {
            return String::new();
        }
        let total: u64 = self.sent.values().sum();
        let partitions: Vec<String> = self.sent.keys().map(ToString::to_string).collect();
        let acknowledged = match self.args.acks {
            Acks::None => " (acks=0: not confirmed)",
            _ => "",
        };
        match total {
            0 => "No input: nothing produced.\n".to_owned(),
            _ => format!(
                "Produced {total} record{} to topic '{}' (partition{} {}){acknowledged}.\n",
                plural(total),
                self.args.topic,
                plural(u64::try_from(partitions.len()).unwrap_or(u64::MAX)),
                partitions.join(", ")
            ),
        }
    }
}

/// "s" unless `count` is 1.
pub fn plural(count: u64) -> &'static str {
    if count == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_into_key_and_value_at_the_first_separator() {
        // Proves the key ends at the first separator, the value keeps later ones, a
        // multi-byte separator works, and a line without it is an error naming the line.
        let record = split_line(b"user-1:a:b".to_vec(), Some(":"), 1).expect("split");
        assert_eq!(record.key.as_deref(), Some(&b"user-1"[..]));
        assert_eq!(record.value, b"a:b");
        let record = split_line(b"k=>v".to_vec(), Some("=>"), 1).expect("split");
        assert_eq!(
            (record.key.as_deref(), record.value.as_slice()),
            (Some(&b"k"[..]), &b"v"[..])
        );
        let record = split_line(b"no key".to_vec(), None, 1).expect("value only");
        assert_eq!((record.key, record.value), (None, b"no key".to_vec()));
        let error = split_line(b"no key".to_vec(), Some(":"), 7).expect_err("no separator");
        assert_eq!(error.to_string(), "line 7 has no key separator ':'");
    }

    #[test]
    fn lines_drop_their_line_ending_only() {
        // Proves "\n" and "\r\n" end lines, a last line without one still counts, and
        // empty lines are empty records.
        let mut reader = BufReader::new(&b"one\r\n\ntwo\r\nthree"[..]);
        let mut lines = Vec::new();
        while let Some(line) = read_line(&mut reader, 1).expect("read") {
            lines.push(String::from_utf8(line).expect("utf-8"));
        }
        assert_eq!(lines, ["one", "", "two", "three"]);
    }

    #[test]
    fn options_parse_kafka_spellings() {
        // Proves acks and codec names as Kafka's tools spell them, and clear refusals.
        assert_eq!(parse_acks("all"), Ok(Acks::All));
        assert_eq!(parse_acks("-1"), Ok(Acks::All));
        assert_eq!(parse_acks("0"), Ok(Acks::None));
        assert!(parse_acks("2").is_err());
        assert_eq!(parse_compression("zstd"), Ok(Compression::Zstd));
        assert!(parse_compression("brotli").is_err());
    }
}
