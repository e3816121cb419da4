//! Fetch sessions (KIP-227) against a real riffle process: kafka-python (which opens them;
//! librdkafka does not) consuming many partitions while they are written, and raw Fetch v7
//! requests showing that incremental responses leave unchanged partitions out and that a
//! wrong epoch or an unknown session id is refused with its error.

use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};

use riffle_integration_tests::clients::{CLIENT_TIMEOUT, create_topic, future_producer};
use riffle_integration_tests::wire::{
    RawConnection, SessionFetch, SessionFetchResponse, error_code, fetch_in_session,
};
use riffle_integration_tests::{Broker, run_python};

/// The raw test's topic has this many partitions.
const RAW_PARTITIONS: i32 = 8;

/// How long the raw incremental fetches may wait for data that will not come.
const QUIET_WAIT_MS: i32 = 200;

#[test]
fn kafka_python_reads_64_partitions_exactly_once_through_incremental_sessions() {
    // Proves the sessions with the client that uses them: kafka-python consumes 64
    // partitions while a producer writes to 8 random ones at a time; every record arrives
    // once and in order per partition, the consumer's fetcher reports incremental responses
    // and no refusal, and the broker's own log shows incremental responses that read all 64
    // partitions and sent only some.
    let broker = Broker::start_with(&["--log-level", "info,riffle_server::fetch_session=debug"]);
    let output = run_python(
        &broker,
        "fetch_sessions.py",
        &[
            "--topic",
            "many-partitions",
            "--partitions",
            "64",
            // Small fetches of 1 KB records, so max_bytes cuts responses short and the
            // session's read order rotates.
            "--fetch-max-bytes",
            "20000",
            "--value-bytes",
            "1000",
        ],
    );
    assert!(output.contains("exactly once, in order"), "{output}");
    let log = std::fs::read_to_string(broker.log_path()).expect("read the broker log");
    let incremental: Vec<(usize, usize)> = log
        .lines()
        .filter(|line| line.contains("incremental fetch response"))
        .filter_map(|line| Some((field(line, "read_count")?, field(line, "changed_count")?)))
        .collect();
    assert!(
        incremental.len() >= 10,
        "{} incremental responses in the broker log\n{}",
        incremental.len(),
        broker.log_tail()
    );
    assert!(
        incremental
            .iter()
            .any(|&(read, changed)| read == 64 && changed < 64),
        "no incremental response left a partition out: {incremental:?}"
    );
}

#[test]
fn incremental_fetches_send_only_what_changed_and_refuse_bad_sessions() {
    // Proves the session protocol byte by byte with Fetch v7: a full fetch opens a session
    // and lists all 8 partitions; an incremental one that moves every fetch offset lists
    // none (and waits, since nothing is new); after one partition gets a record, an
    // incremental fetch naming no partitions lists just that one; a repeated epoch gets
    // INVALID_FETCH_SESSION_EPOCH and the session survives it, also on another connection;
    // an unknown id gets FETCH_SESSION_ID_NOT_FOUND; epoch -1 closes the session.
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime for the clients");
    runtime.block_on(create_topic(&bootstrap, "sessions", RAW_PARTITIONS, &[]));
    let producer = runtime.block_on(async { future_producer(&bootstrap, &[("acks", "all")]) });
    for partition in 0..RAW_PARTITIONS {
        runtime.block_on(produce_one(&producer, "sessions", partition));
    }
    let mut connection = RawConnection::connect(&bootstrap);
    let every_partition: Vec<i32> = (0..RAW_PARTITIONS).collect();

    let full = fetch_in_session(&mut connection, &fetch(0, 0, &every_partition, 0));
    assert_eq!(full.error_code, error_code::NONE);
    assert_ne!(full.session_id, 0, "the full fetch opened no session");
    assert_eq!(full.partition_indexes(), every_partition);
    assert!(
        full.partitions
            .iter()
            .all(|data| data.high_watermark == 1 && data.record_bytes > 0),
        "{full:?}"
    );
    let session_id = full.session_id;

    let started = Instant::now();
    let moved = fetch_in_session(&mut connection, &fetch(session_id, 1, &every_partition, 1));
    assert_served(&moved, session_id, &[]);
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "an incremental fetch with nothing new answered after {:?}, without waiting",
        started.elapsed()
    );

    runtime.block_on(produce_one(&producer, "sessions", 3));
    let news = fetch_in_session(&mut connection, &fetch(session_id, 2, &[], 0));
    assert_served(&news, session_id, &[3]);
    assert_eq!(news.partitions[0].high_watermark, 2);
    assert!(news.partitions[0].record_bytes > 0, "{news:?}");

    let repeated = fetch_in_session(&mut connection, &fetch(session_id, 2, &[], 0));
    assert_refused(&repeated, error_code::INVALID_FETCH_SESSION_EPOCH);
    let mut forget = fetch(session_id, 3, &[3], 2);
    forget.forgotten = vec![0];
    let mut other_connection = RawConnection::connect(&bootstrap);
    let continued = fetch_in_session(&mut other_connection, &forget);
    assert_served(&continued, session_id, &[]);

    let unknown_id = if session_id == i32::MAX {
        1
    } else {
        session_id + 1
    };
    let unknown = fetch_in_session(&mut connection, &fetch(unknown_id, 1, &[], 0));
    assert_refused(&unknown, error_code::FETCH_SESSION_ID_NOT_FOUND);

    let closing = fetch_in_session(&mut connection, &fetch(session_id, -1, &[5], 1));
    assert_eq!((closing.error_code, closing.session_id), (0, 0));
    assert_eq!(closing.partition_indexes(), vec![5]);
    let closed = fetch_in_session(&mut connection, &fetch(session_id, 4, &[], 0));
    assert_refused(&closed, error_code::FETCH_SESSION_ID_NOT_FOUND);
}

/// A Fetch v7 of topic "sessions" in session `session_id` at `session_epoch`, naming
/// `partitions` at `fetch_offset`.
fn fetch(
    session_id: i32,
    session_epoch: i32,
    partitions: &[i32],
    fetch_offset: i64,
) -> SessionFetch {
    SessionFetch {
        session_id,
        session_epoch,
        max_wait_ms: QUIET_WAIT_MS,
        topic: "sessions".into(),
        partitions: partitions
            .iter()
            .map(|&partition| (partition, fetch_offset))
            .collect(),
        forgotten: Vec::new(),
    }
}

/// Checks an answer served in `session_id` lists exactly `partitions`, without errors.
fn assert_served(response: &SessionFetchResponse, session_id: i32, partitions: &[i32]) {
    assert_eq!(
        (response.error_code, response.session_id),
        (error_code::NONE, session_id),
        "{response:?}"
    );
    assert_eq!(response.partition_indexes(), partitions, "{response:?}");
    assert!(
        response
            .partitions
            .iter()
            .all(|data| data.error_code == error_code::NONE),
        "{response:?}"
    );
}

/// Checks a request was refused as a whole with `code`: no session, no partitions.
fn assert_refused(response: &SessionFetchResponse, code: i16) {
    assert_eq!(
        (response.error_code, response.session_id),
        (code, 0),
        "{response:?}"
    );
    assert!(response.partitions.is_empty(), "{response:?}");
}

/// Writes one record to `topic`/`partition` and waits for its acknowledgement.
async fn produce_one(producer: &FutureProducer, topic: &str, partition: i32) {
    let value = format!("record for partition {partition}");
    producer
        .send(
            FutureRecord::<(), _>::to(topic)
                .partition(partition)
                .payload(&value),
            CLIENT_TIMEOUT,
        )
        .await
        .unwrap_or_else(|(error, _)| panic!("{value} not delivered: {error}"));
}

/// The number after `name=` in a log line.
fn field(line: &str, name: &str) -> Option<usize> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    let digits: String = line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
