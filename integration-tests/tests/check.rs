//! `riffle check` on the real binary: it refuses a running broker's directory, passes what a
//! real client produced, names the file and offset of a flipped byte, and `--repair` cuts the
//! log there so the broker serves the batches before it.

use std::os::unix::fs::FileExt;
use std::path::Path;

use riffle_integration_tests::Broker;
use riffle_integration_tests::clients::{create_topic, future_producer, read_to_end, send_plain};
use riffle_integration_tests::riffle_cli::riffle_check;

/// The batch after the first in a `.log` file: its position, base offset and size in bytes.
fn second_batch(log_file: &Path) -> (u64, i64, u64) {
    let file = std::fs::File::open(log_file).expect("open segment");
    let read_at = |position: u64, bytes: &mut [u8]| {
        file.read_exact_at(bytes, position).expect("read segment");
    };
    let mut length = [0; 4];
    read_at(8, &mut length);
    let position = 12 + u64::from(u32::from_be_bytes(length));
    let mut base_offset = [0; 8];
    read_at(position, &mut base_offset);
    read_at(position + 8, &mut length);
    let size_bytes = 12 + u64::from(u32::from_be_bytes(length));
    (position, i64::from_be_bytes(base_offset), size_bytes)
}

fn flip_byte(path: &Path, position: u64) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open for flip");
    let mut byte = [0];
    file.read_exact_at(&mut byte, position).expect("read byte");
    file.write_all_at(&[!byte[0]], position)
        .expect("write byte");
}

#[tokio::test]
async fn riffle_check_refuses_a_running_broker_finds_a_flipped_byte_and_repairs_it() {
    // Proves the check exits 2 naming the broker while one runs, 0 on what rdkafka produced,
    // 1 naming the segment, position and offset of a flipped byte (text and JSON), and that
    // --repair (exit 3) leaves a log the broker serves up to the bad batch.
    let mut broker = Broker::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "scrubbed", 1, &[]).await;
    let producer = future_producer(&bootstrap, &[("linger.ms", "0")]);
    send_plain(&producer, "scrubbed", "value", 20).await;
    drop(producer);
    let data_dir = broker.data_dir();

    let running = riffle_check(&data_dir, &[]);
    assert_eq!(running.code, Some(2), "a running broker's directory");
    assert!(
        running.stderr.contains("stop the broker"),
        "{}",
        running.stderr
    );

    broker.stop();
    let clean = riffle_check(&data_dir, &[]);
    assert_eq!(clean.code, Some(0), "a cleanly stopped broker's directory");
    assert!(
        clean
            .stdout
            .contains("scrubbed-0: 1 segment, 20 batches, 20 records"),
        "{}",
        clean.stdout
    );
    assert!(
        clean.stdout.contains("no problems found"),
        "{}",
        clean.stdout
    );

    let log_file = data_dir.join("scrubbed-0/00000000000000000000.log");
    let (position, base_offset, size_bytes) = second_batch(&log_file);
    flip_byte(&log_file, position + size_bytes - 1);
    let corrupt = riffle_check(&data_dir, &["--topic", "scrubbed"]);
    assert_eq!(corrupt.code, Some(1), "a flipped byte");
    let expected = format!(
        "{}: position {position}, offset {base_offset}: CRC-32C mismatch",
        log_file.display()
    );
    assert!(corrupt.stdout.contains(&expected), "{}", corrupt.stdout);
    let json = riffle_check(&data_dir, &["--topic", "scrubbed", "--format", "json"]);
    assert_eq!(json.code, Some(1));
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON output");
    let problem = &document["partitions"][0]["problems"][0];
    assert_eq!(problem["kind"], "crc_mismatch");
    assert_eq!(problem["offset"], base_offset);
    assert_eq!(problem["position"], position);

    let repaired = riffle_check(&data_dir, &["--repair"]);
    assert_eq!(repaired.code, Some(3), "every problem repaired");
    assert!(
        repaired.stdout.contains("truncated at position"),
        "{}",
        repaired.stdout
    );
    assert_eq!(
        riffle_check(&data_dir, &[]).code,
        Some(0),
        "clean after repair"
    );

    broker.restart();
    let messages = read_to_end(&broker.bootstrap(), "scrubbed", 0);
    let offsets: Vec<i64> = messages
        .iter()
        .map(rdkafka::message::Message::offset)
        .collect();
    assert_eq!(offsets, (0..base_offset).collect::<Vec<_>>());
}
