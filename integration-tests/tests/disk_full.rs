//! A full disk: the broker runs on a small tmpfs the test mounts (in a user and mount
//! namespace, so no root is needed where unprivileged namespaces are allowed), with a
//! filler file taking part of it. Producing until the disk is full gets
//! KAFKA_STORAGE_ERROR, never a crash; every acknowledged record stays readable; and once
//! the filler is removed, writes are accepted again at the next offset.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

use riffle_integration_tests::clients::{
    CLIENT_TIMEOUT, create_topic, future_producer, read_to_end,
};
use riffle_integration_tests::{Broker, broker_binary};

/// The tmpfs the data directory lives on.
const FILESYSTEM_BYTES: u64 = 48 * 1024 * 1024;
/// Taken by the filler file, and given back when the test removes it.
const FILLER_BYTES: u64 = 16 * 1024 * 1024;
/// One record's value; the disk fills after a few hundred of them.
const VALUE_BYTES: usize = 3000;
/// More records than the filesystem can hold.
const MAX_RECORDS_COUNT: usize = (FILESYSTEM_BYTES as usize) / VALUE_BYTES + 100;

#[tokio::test]
async fn a_full_disk_refuses_writes_keeps_serving_reads_and_recovers_when_space_is_freed() {
    let scripts = tempfile::tempdir().expect("a temp dir for the wrapper");
    let wrapper = write_wrapper(scripts.path());
    let mut broker = Broker::builder().binary(&wrapper).start();
    let bootstrap = broker.bootstrap();
    let filler = proc_root_path(&broker, &broker.data_dir().join(".filler"));
    assert!(
        filler.exists(),
        "the wrapper did not make {}; broker log:\n{}",
        filler.display(),
        broker.log_tail()
    );

    create_topic(&bootstrap, "events", 1, &[("segment.bytes", "262144")]).await;
    let producer = future_producer(
        &bootstrap,
        &[("acks", "all"), ("retries", "0"), ("linger.ms", "0")],
    );
    let mut acknowledged = 0i64;
    let refusal = loop {
        assert!(
            (acknowledged as usize) < MAX_RECORDS_COUNT,
            "{acknowledged} records of {VALUE_BYTES} bytes fit a {FILESYSTEM_BYTES}-byte disk"
        );
        match send(&producer, acknowledged).await {
            Ok(offset) => {
                assert_eq!(offset, acknowledged, "acknowledged at the wrong offset");
                acknowledged += 1;
            }
            Err(error) => break error,
        }
    };
    assert_eq!(
        refusal.rdkafka_error_code(),
        Some(RDKafkaErrorCode::KafkaStorageError),
        "a full disk must refuse with KAFKA_STORAGE_ERROR, got {refusal}; broker log:\n{}",
        broker.log_tail()
    );
    assert!(
        acknowledged > 0,
        "nothing was written before the disk filled"
    );
    broker.assert_running();
    // Still full: refused again, not crashed.
    let again = send(&producer, acknowledged)
        .await
        .expect_err("accepted on a full disk");
    assert_eq!(
        again.rdkafka_error_code(),
        Some(RDKafkaErrorCode::KafkaStorageError)
    );
    assert_readable(&bootstrap, acknowledged);

    std::fs::remove_file(&filler)
        .unwrap_or_else(|error| panic!("cannot remove {}: {error}", filler.display()));
    let offset = send(&producer, acknowledged)
        .await
        .unwrap_or_else(|error| panic!("refused after space was freed: {error}"));
    assert_eq!(offset, acknowledged, "the first write after the full disk");
    assert_readable(&bootstrap, acknowledged + 1);
    broker.assert_running();
}

async fn send(producer: &FutureProducer, index: i64) -> Result<i64, KafkaError> {
    let value = value_of(index);
    producer
        .send(
            FutureRecord::<(), _>::to("events")
                .partition(0)
                .payload(&value),
            CLIENT_TIMEOUT,
        )
        .await
        .map(|delivery| delivery.offset)
        .map_err(|(error, _)| error)
}

fn value_of(index: i64) -> Vec<u8> {
    let mut value = format!("record {index} ").into_bytes();
    value.resize(VALUE_BYTES, b'.');
    value
}

/// Every acknowledged record, in order, with its value: nothing lost or torn.
fn assert_readable(bootstrap: &str, count: i64) {
    let messages = read_to_end(bootstrap, "events", 0);
    assert_eq!(messages.len() as i64, count, "records readable");
    for (index, message) in messages.iter().enumerate() {
        let index = index as i64;
        assert_eq!(message.offset(), index);
        assert!(
            message.payload() == Some(&value_of(index)[..]),
            "record {index} changed"
        );
    }
}

/// Writes a script that takes `riffle serve`'s arguments, mounts a tmpfs on the data
/// directory in new user and mount namespaces, puts the filler on it and runs the broker
/// there.
fn write_wrapper(dir: &Path) -> PathBuf {
    let script = dir.join("riffle-on-a-small-disk");
    let text = format!(
        r#"#!/bin/sh
# the data directory is the argument after --data-dir
data=""; previous=""
for argument in "$@"; do
    [ "$previous" = "--data-dir" ] && data="$argument"
    previous="$argument"
done
[ -n "$data" ] || {{ echo "no --data-dir in $*" >&2; exit 2; }}
exec unshare --user --map-root-user --mount sh -c '
    mount -t tmpfs -o size={filesystem} tmpfs "$0" || {{
        echo "cannot mount a tmpfs in a user namespace; this test needs unprivileged user namespaces or root" >&2
        exit 3
    }}
    dd if=/dev/zero of="$0/.filler" bs=1048576 count={filler_mib} 2>/dev/null || exit 4
    exec "$@"
' "$data" "{riffle}" "$@"
"#,
        filesystem = FILESYSTEM_BYTES,
        filler_mib = FILLER_BYTES / (1024 * 1024),
        riffle = broker_binary().display(),
    );
    std::fs::write(&script, text).expect("write the wrapper");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .expect("make the wrapper executable");
    script
}

/// `path` as seen inside the broker's mount namespace, through /proc.
fn proc_root_path(broker: &Broker, path: &Path) -> PathBuf {
    let pid = broker.pid().expect("the broker runs");
    let relative = path.strip_prefix("/").expect("an absolute path");
    Path::new("/proc")
        .join(pid.to_string())
        .join("root")
        .join(relative)
}
