//! Bad input from the network: each case gets a defined answer (an error code, or that one
//! connection closed) while the broker keeps serving everyone else.
//!
//! Requests are built byte by byte here and in `riffle_integration_tests::wire`, from the Kafka
//! schemas, never with `riffle-protocol`: the tests must catch codec bugs, not mirror them.

use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;

use riffle_integration_tests::Broker;
use riffle_integration_tests::clients::{
    CLIENT_TIMEOUT, create_topic, future_producer, read_to_end,
};
use riffle_integration_tests::wire::{
    RawConnection, RequestHeaderVersion, RequestWriter, ResponseReader, api_key, api_versions,
    error_code, read_api_version_ranges,
};

#[test]
fn unsupported_api_versions_version_answers_error_35_and_keeps_the_connection() {
    // Proves KIP-511 handling: ApiVersions v99 (sent as a new client would, header v2 and a v3
    // body) gets a v0 answer with response header v0, error 35 and the ApiVersions range, and the
    // same connection then gets a normal ApiVersions v0 answer.
    let broker = Broker::start();
    let mut connection = RawConnection::connect(&broker.bootstrap());
    let correlation_id = connection.next_correlation_id();
    let mut frame = RequestWriter::new();
    frame
        .header(
            RequestHeaderVersion::V2,
            api_key::API_VERSIONS,
            99,
            correlation_id,
        )
        .compact_string("riffle-it") // client_software_name
        .compact_string("0.0.0") // client_software_version
        .empty_tagged_fields();
    connection
        .send_frame(&frame.into_bytes())
        .expect("send ApiVersions v99");
    let response = connection
        .read_frame()
        .expect("an answer to ApiVersions v99, not a closed connection (KIP-511)");
    let mut reader = ResponseReader::new(&response);
    // Response header v0: the correlation id and nothing else, even for flexible requests.
    assert_eq!(reader.i32("correlation_id"), correlation_id);
    assert_eq!(
        reader.i16("error_code"),
        error_code::UNSUPPORTED_VERSION,
        "ApiVersions v99 must answer UNSUPPORTED_VERSION"
    );
    let ranges = read_api_version_ranges(&mut reader);
    let own = ranges
        .iter()
        .find(|range| range.api_key == api_key::API_VERSIONS)
        .unwrap_or_else(|| panic!("the error answer must list ApiVersions (18): {ranges:?}"));
    // A client falls back to a version inside this range, so it must start at v0.
    assert!(
        own.min_version == 0 && own.max_version < 99,
        "ApiVersions range in the error answer: {own:?}"
    );
    assert_eq!(
        reader.remaining(),
        0,
        "an UNSUPPORTED_VERSION answer is a v0 body: nothing may follow the api_keys array"
    );

    let ranges = api_versions(&mut connection);
    assert!(
        ranges
            .iter()
            .any(|range| range.api_key == api_key::API_VERSIONS)
    );
}

#[test]
fn api_versions_advertises_every_supported_api() {
    // Proves ApiVersions v0 lists every API the broker implements, with Produce covering v3
    // and Fetch covering v4 (the versions the raw tests in this file send).
    let broker = Broker::start();
    let ranges = api_versions(&mut RawConnection::connect(&broker.bootstrap()));
    // (api key, name, a version that must be inside the advertised range)
    let required: [(i16, &str, Option<i16>); 13] = [
        (0, "Produce", Some(3)),
        (1, "Fetch", Some(4)),
        (2, "ListOffsets", None),
        (3, "Metadata", Some(4)),
        (18, "ApiVersions", Some(0)),
        (19, "CreateTopics", None),
        (20, "DeleteTopics", None),
        (21, "DeleteRecords", None),
        (22, "InitProducerId", None),
        (32, "DescribeConfigs", None),
        (37, "CreatePartitions", None),
        (44, "IncrementalAlterConfigs", None),
        (60, "DescribeCluster", None),
    ];
    for (key, name, version) in required {
        let range = ranges
            .iter()
            .find(|range| range.api_key == key)
            .unwrap_or_else(|| panic!("{name} ({key}) is not advertised: {ranges:?}"));
        assert!(range.min_version <= range.max_version, "{name}: {range:?}");
        if let Some(version) = version {
            assert!(
                range.min_version <= version && version <= range.max_version,
                "{name} must accept v{version}: {range:?}"
            );
        }
    }
}

#[tokio::test]
async fn corrupted_crc_is_rejected_with_corrupt_message() {
    // Proves the broker checks the CRC-32C of every batch: a valid hand-built batch is stored,
    // the same batch with one value byte flipped gets CORRUPT_MESSAGE (2) and is not stored,
    // the connection keeps working, and another client reads exactly the valid batches back.
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "crc", 1, &[]).await;
    let values: [&[u8]; 3] = [b"first", b"second", b"third"];
    let batch = record_batch(&values);
    let mut corrupted = batch.clone();
    // The last byte is the last record's header count; the one before is its value's last byte.
    let flipped = corrupted.len() - 2;
    corrupted[flipped] ^= 0xff;

    let mut connection = RawConnection::connect(&bootstrap);
    assert_eq!(
        produce_v3(&mut connection, "crc", &batch),
        (error_code::NONE, 0)
    );
    let (error, _) = produce_v3(&mut connection, "crc", &corrupted);
    assert_eq!(
        error,
        error_code::CORRUPT_MESSAGE,
        "a flipped byte must fail the CRC check"
    );
    assert_eq!(
        produce_v3(&mut connection, "crc", &batch),
        (error_code::NONE, 3),
        "the corrupted batch must not take offsets"
    );

    let stored: Vec<Vec<u8>> = read_to_end(&bootstrap, "crc", 0)
        .iter()
        .map(|message| {
            rdkafka::Message::payload(message)
                .unwrap_or_default()
                .to_vec()
        })
        .collect();
    let expected: Vec<Vec<u8>> = values.iter().chain(&values).map(|v| v.to_vec()).collect();
    assert_eq!(stored, expected, "exactly the two valid batches are stored");
}

/// gzip's codec bits in a batch's attributes.
const GZIP: i16 = 1;

#[tokio::test]
async fn compressed_batches_that_do_not_inflate_to_records_are_refused() {
    // Proves the broker inflates a compressed batch to check it, as Kafka does: a batch that
    // says gzip, with a valid CRC, whose payload is not gzip (found from outside: it was
    // stored, and every consumer then failed on it), and gzip of records that do not frame
    // (count too high), both get CORRUPT_MESSAGE and take no offsets; a good gzip batch lands.
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "gz", 1, &[]).await;
    let values: [&[u8]; 2] = [b"first", b"second"];
    let records = plain_records(&values);
    let not_gzip = batch_of(GZIP, 2, &records);
    let miscounted = batch_of(GZIP, 3, &gzip(&[&records]));
    let good = batch_of(GZIP, 2, &gzip(&[&records]));

    let mut connection = RawConnection::connect(&bootstrap);
    for (what, batch) in [
        ("not gzip", &not_gzip),
        ("records_count 3 of 2", &miscounted),
    ] {
        assert_eq!(
            produce_v3(&mut connection, "gz", batch).0,
            error_code::CORRUPT_MESSAGE,
            "{what}"
        );
    }
    assert_eq!(
        produce_v3(&mut connection, "gz", &good),
        (error_code::NONE, 0)
    );
    let stored: Vec<Vec<u8>> = read_to_end(&bootstrap, "gz", 0)
        .iter()
        .map(|message| {
            rdkafka::Message::payload(message)
                .unwrap_or_default()
                .to_vec()
        })
        .collect();
    assert_eq!(stored, [b"first".to_vec(), b"second".to_vec()]);
}

#[tokio::test]
async fn a_gzip_bomb_is_refused_without_growing_the_broker() {
    // Proves decompression is streamed in bounded memory: a batch under 1 MiB that inflates
    // to 800 MiB (one record with a huge value: 800 concatenated gzip members of 1 MiB of
    // zeros) is refused with CORRUPT_MESSAGE, the broker's peak resident memory grows by
    // far less than the bomb, and it keeps serving.
    let mut broker = Broker::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "bomb", 1, &[]).await;
    let mut connection = RawConnection::connect(&bootstrap);
    assert_eq!(
        produce_v3(&mut connection, "bomb", &record_batch(&[b"warm-up"])),
        (error_code::NONE, 0)
    );
    let peak_before_bytes = peak_resident_bytes(&broker);

    const MEMBERS_COUNT: usize = 800;
    const MEMBER_BYTES: usize = 1024 * 1024;
    let value_bytes = MEMBERS_COUNT * MEMBER_BYTES;
    let mut prefix = RequestWriter::new();
    let record_bytes = 1 + 1 + 1 + 1 + 5 + value_bytes + 1; // attributes .. value, headers
    prefix
        .varint(varint_len(record_bytes))
        .i8(0) // attributes
        .varlong(0) // timestamp delta
        .varint(0) // offset delta
        .varint(-1) // null key
        .varint(varint_len(value_bytes));
    let zeros = vec![0u8; MEMBER_BYTES];
    let member = gzip(&[&zeros]);
    let mut payload = gzip(&[&prefix.into_bytes()]);
    for _ in 0..MEMBERS_COUNT {
        payload.extend_from_slice(&member);
    }
    assert!(
        payload.len() < 1024 * 1024,
        "the bomb is {} bytes",
        payload.len()
    );
    let bomb = batch_of(GZIP, 1, &payload);
    assert_eq!(
        produce_v3(&mut connection, "bomb", &bomb).0,
        error_code::CORRUPT_MESSAGE
    );
    let growth_bytes = peak_resident_bytes(&broker).saturating_sub(peak_before_bytes);
    assert!(
        growth_bytes < 64 * 1024 * 1024,
        "peak resident memory grew by {growth_bytes} bytes for a {value_bytes}-byte bomb"
    );
    assert_eq!(
        produce_v3(&mut connection, "bomb", &record_batch(&[b"after"])),
        (error_code::NONE, 1),
        "the bomb took no offsets"
    );
    broker.assert_running();
}

/// gzip members, one per piece, concatenated: a valid multi-member gzip stream.
fn gzip(pieces: &[&[u8]]) -> Vec<u8> {
    use std::io::Write;
    let mut output = Vec::new();
    for piece in pieces {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(piece).expect("gzip to memory");
        output.extend(encoder.finish().expect("gzip to memory"));
    }
    output
}

/// The broker's peak resident set size (VmHWM), in bytes.
fn peak_resident_bytes(broker: &Broker) -> u64 {
    let pid = broker.pid().expect("the broker runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc status");
    kib * 1024
}

#[tokio::test]
async fn batch_above_max_message_bytes_is_rejected_with_message_too_large() {
    // Proves the topic's max.message.bytes (set by CreateTopics) is enforced by the broker: a
    // 10 KB message gets MESSAGE_TOO_LARGE (10) both from a raw Produce and through librdkafka,
    // whose own limit is left high so the broker is the one refusing; small messages pass.
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "small", 1, &[("max.message.bytes", "1024")]).await;
    let large_value = vec![b'L'; 10 * 1024];

    let mut connection = RawConnection::connect(&bootstrap);
    assert_eq!(
        produce_v3(&mut connection, "small", &record_batch(&[b"tiny"])),
        (error_code::NONE, 0)
    );
    let (error, _) = produce_v3(&mut connection, "small", &record_batch(&[&large_value]));
    assert_eq!(error, error_code::MESSAGE_TOO_LARGE, "raw 10 KB batch");

    let producer = future_producer(
        &bootstrap,
        &[
            ("message.max.bytes", "1000000"),
            ("compression.type", "none"),
        ],
    );
    producer
        .send(
            FutureRecord::<(), _>::to("small").payload("fits"),
            CLIENT_TIMEOUT,
        )
        .await
        .unwrap_or_else(|(error, _)| panic!("a small message must be accepted: {error}"));
    let (error, _) = producer
        .send(
            FutureRecord::<(), _>::to("small").payload(&large_value),
            CLIENT_TIMEOUT,
        )
        .await
        .expect_err("a 10 KB message must be refused by a topic with max.message.bytes=1024");
    assert_eq!(
        error,
        KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)
    );
}

#[tokio::test]
async fn unknown_topic_with_auto_create_off_reports_unknown_topic_or_partition() {
    // Proves --auto-create-topics false: Produce to a missing topic gets
    // UNKNOWN_TOPIC_OR_PARTITION (3), Metadata asking to auto-create it gets the same error and
    // does not create it, while a topic created explicitly still works.
    let broker = Broker::start_with(&["--auto-create-topics", "false"]);
    let bootstrap = broker.bootstrap();
    let mut connection = RawConnection::connect(&bootstrap);
    let (error, _) = produce_v3(&mut connection, "no-such-topic", &record_batch(&[b"lost"]));
    assert_eq!(
        error,
        error_code::UNKNOWN_TOPIC_OR_PARTITION,
        "Produce to a missing topic"
    );
    for attempt in ["first", "second"] {
        assert_eq!(
            metadata_v4_topic_error(&mut connection, "no-such-topic"),
            error_code::UNKNOWN_TOPIC_OR_PARTITION,
            "{attempt} Metadata v4 (allow_auto_topic_creation=true) for a missing topic"
        );
    }

    create_topic(&bootstrap, "explicit", 1, &[]).await;
    assert_eq!(
        produce_v3(&mut connection, "explicit", &record_batch(&[b"kept"])),
        (error_code::NONE, 0)
    );
    assert_eq!(
        metadata_v4_topic_error(&mut connection, "explicit"),
        error_code::NONE
    );
}

#[test]
fn malformed_frames_close_only_their_own_connection() {
    // Proves a request that cannot be decoded closes that one connection: an already-open
    // client keeps getting answers and the process stays up.
    let mut broker = Broker::start();
    let mut bystander = RawConnection::connect(&broker.bootstrap());
    api_versions(&mut bystander);

    let mut truncated_metadata = RequestWriter::new();
    truncated_metadata
        .header(RequestHeaderVersion::V1, api_key::METADATA, 4, 1)
        .array_len(1)
        .i16(50) // a 50-byte topic name ...
        .raw(b"abc"); // ... of which the frame holds 3
    let cases: [(&str, Vec<u8>); 3] = [
        (
            "a Metadata v4 body whose topic name runs past the end of the frame",
            truncated_metadata.into_bytes(),
        ),
        (
            "an unknown api key with a garbage version",
            vec![0x7e, 0x7e, 0x7e, 0x7e, 0, 0, 0, 1, 0xff, 0xff],
        ),
        ("a frame too short to hold a request header", vec![0, 3]),
    ];
    for (what, payload) in cases {
        let mut victim = RawConnection::connect(&broker.bootstrap());
        victim
            .send_frame(&payload)
            .expect("send the malformed frame");
        victim.expect_closed(what);
        assert_still_serving(&mut broker, &mut bystander, what);
    }
}

#[test]
fn oversized_frames_close_only_their_own_connection() {
    // Proves the length prefix is checked before anything is allocated or read: a 2 GB and a
    // negative length each close that connection at once, while another client keeps working.
    let mut broker = Broker::start();
    let mut bystander = RawConnection::connect(&broker.bootstrap());
    api_versions(&mut bystander);
    let header = [0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff]; // ApiVersions v0, null client id
    for (what, length) in [
        ("a 2 GB length prefix", i32::MAX),
        ("a negative length prefix", -1),
    ] {
        let mut victim = RawConnection::connect(&broker.bootstrap());
        let mut bytes = length.to_be_bytes().to_vec();
        bytes.extend_from_slice(&header);
        // The broker may close before reading everything; a failed write is fine.
        let _ = victim.send_raw(&bytes);
        victim.expect_closed(what);
        assert_still_serving(&mut broker, &mut bystander, what);
    }
}

#[test]
fn unadvertised_versions_of_known_apis_close_only_their_own_connection() {
    // Proves a known API at a version we do not advertise (Produce v2, Fetch v3: both predate
    // record batch v2) is not answered but closes that one connection, as Kafka does for every
    // API but ApiVersions; the broker logs why, and another client keeps getting answers.
    let mut broker = Broker::start();
    let mut bystander = RawConnection::connect(&broker.bootstrap());
    let ranges = api_versions(&mut bystander);
    let mut produce_v2 = RequestWriter::new();
    produce_v2
        .header(RequestHeaderVersion::V1, api_key::PRODUCE, 2, 1)
        .i16(-1) // acks
        .i32(10_000) // timeout_ms
        .array_len(0); // topic_data
    let mut fetch_v3 = RequestWriter::new();
    fetch_v3
        .header(RequestHeaderVersion::V1, api_key::FETCH, 3, 1)
        .i32(-1) // replica_id
        .i32(500) // max_wait_ms
        .i32(1) // min_bytes
        .i32(1 << 20) // max_bytes
        .array_len(0); // topics
    let cases = [
        ("Produce v2", api_key::PRODUCE, 2, produce_v2),
        ("Fetch v3", api_key::FETCH, 3, fetch_v3),
    ];
    for (what, key, version, frame) in cases {
        let advertised = ranges.iter().find(|range| range.api_key == key);
        assert!(
            advertised.is_some_and(|range| version < range.min_version),
            "the test needs {what} to be below the advertised range: {advertised:?}"
        );
        let mut victim = RawConnection::connect(&broker.bootstrap());
        victim.send_frame(&frame.into_bytes()).expect("send");
        victim.expect_closed(what);
        assert_still_serving(&mut broker, &mut bystander, what);
        let logged = format!("unsupported api key {key} version {version}");
        assert!(
            wait_for_log_line(&broker, &logged),
            "no broker log line containing {logged:?} after {what}\n{}",
            broker.log_tail()
        );
    }
}

/// Whether a line of the broker log contains `text` within a few seconds: the broker writes
/// its log asynchronously to the test reading it.
fn wait_for_log_line(broker: &Broker, text: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(broker.log_path()).unwrap_or_default();
        if log.lines().any(|line| line.contains(text)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fixed CreateTime for hand-built batches.
const BASE_TIMESTAMP_MS: i64 = 1_600_000_000_000;

/// Builds a magic-v2 record batch holding one record per value (keys `k0`, `k1`, ...), no
/// compression, no producer id, with its CRC-32C over `attributes` to the end.
fn record_batch(values: &[&[u8]]) -> Vec<u8> {
    let count = i32::try_from(values.len()).expect("a small batch");
    batch_of(0, count, &plain_records(values))
}

/// The records of [`record_batch`], as they follow the batch header uncompressed.
fn plain_records(values: &[&[u8]]) -> Vec<u8> {
    let count = i32::try_from(values.len()).expect("a small batch");
    let mut records = RequestWriter::new();
    for (delta, value) in (0..count).zip(values) {
        let key = format!("k{delta}");
        let mut record = RequestWriter::new();
        record
            .i8(0) // attributes
            .varlong(i64::from(delta)) // timestamp delta
            .varint(delta) // offset delta
            .varint(varint_len(key.len()))
            .raw(key.as_bytes())
            .varint(varint_len(value.len()))
            .raw(value)
            .varint(0); // header count
        let record = record.into_bytes();
        records.varint(varint_len(record.len())).raw(&record);
    }
    records.into_bytes()
}

/// A magic-v2 batch of `count` records whose bytes after the header are `payload`, as
/// `attributes` (the codec bits) says, with a valid CRC-32C whatever the payload is.
fn batch_of(attributes: i16, count: i32, payload: &[u8]) -> Vec<u8> {
    let mut after_crc = RequestWriter::new();
    after_crc
        .i16(attributes)
        .i32(count - 1) // last_offset_delta
        .i64(BASE_TIMESTAMP_MS) // base_timestamp
        .i64(BASE_TIMESTAMP_MS + i64::from(count - 1)) // max_timestamp
        .i64(-1) // producer_id
        .i16(-1) // producer_epoch
        .i32(-1) // base_sequence
        .i32(count)
        .raw(payload);
    let after_crc = after_crc.into_bytes();
    let mut batch = RequestWriter::new();
    batch
        .i64(0) // base_offset
        // batch_length: partition_leader_epoch (4) + magic (1) + crc (4) + the rest.
        .i32(i32::try_from(9 + after_crc.len()).expect("a small batch"))
        .i32(-1) // partition_leader_epoch
        .i8(2) // magic
        .u32(crc32c::crc32c(&after_crc))
        .raw(&after_crc);
    batch.into_bytes()
}

fn varint_len(length: usize) -> i32 {
    i32::try_from(length).expect("a small record")
}

/// Sends Produce v3 (acks=all) of `batch` to partition 0 of `topic`; returns the partition's
/// error code and base offset.
fn produce_v3(connection: &mut RawConnection, topic: &str, batch: &[u8]) -> (i16, i64) {
    let mut body = RequestWriter::new();
    body.nullable_string(None) // transactional_id
        .i16(-1) // acks: all
        .i32(10_000) // timeout_ms
        .array_len(1)
        .string(topic)
        .array_len(1)
        .i32(0) // partition index
        .bytes(batch);
    let response = connection.request(api_key::PRODUCE, 3, &body.into_bytes());
    let mut reader = ResponseReader::new(&response);
    assert_eq!(
        reader.array_len("responses length"),
        Some(1),
        "Produce v3: one topic"
    );
    assert_eq!(reader.string("topic name"), topic);
    assert_eq!(
        reader.array_len("partitions length"),
        Some(1),
        "Produce v3: one partition"
    );
    assert_eq!(reader.i32("partition index"), 0);
    let error = reader.i16("error_code");
    let base_offset = reader.i64("base_offset");
    reader.i64("log_append_time_ms");
    reader.i32("throttle_time_ms");
    assert_eq!(
        reader.remaining(),
        0,
        "Produce v3 response has trailing bytes"
    );
    (error, base_offset)
}

/// Sends Metadata v4 for `topic` with allow_auto_topic_creation=true; returns the topic error.
fn metadata_v4_topic_error(connection: &mut RawConnection, topic: &str) -> i16 {
    let mut body = RequestWriter::new();
    body.array_len(1).string(topic).bool(true);
    let response = connection.request(api_key::METADATA, 4, &body.into_bytes());
    let mut reader = ResponseReader::new(&response);
    reader.i32("throttle_time_ms");
    for _ in 0..reader.array_len("brokers length").unwrap_or(0) {
        reader.i32("node_id");
        reader.string("host");
        reader.i32("port");
        reader.nullable_string("rack");
    }
    reader.nullable_string("cluster_id");
    reader.i32("controller_id");
    assert_eq!(
        reader.array_len("topics length"),
        Some(1),
        "Metadata v4: one topic asked"
    );
    let error = reader.i16("topic error_code");
    assert_eq!(reader.string("topic name"), topic);
    error
}

/// The bystander connection still gets answers and the broker process is still running.
fn assert_still_serving(broker: &mut Broker, bystander: &mut RawConnection, after: &str) {
    broker.assert_running();
    let ranges = api_versions(bystander);
    assert!(
        ranges
            .iter()
            .any(|range| range.api_key == api_key::API_VERSIONS),
        "the bystander connection got a bad ApiVersions answer after {after}"
    );
}
