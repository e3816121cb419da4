//! Crash recovery reports its progress: after a SIGKILL, the restarted broker logs a line
//! per tenth of the data it scans, ending at 100%, and then serves every record.

use std::fs;

use riffle_integration_tests::Broker;
use riffle_integration_tests::riffle_cli::riffle_client;

/// Partitions filled equally, so each holds about a tenth of the data to scan.
const PARTITION_COUNT: usize = 10;
/// Records per partition, 100 bytes each: large enough that the internal topics' few bytes
/// do not move the tenths much.
const RECORDS_PER_PARTITION: usize = 2_000;

#[test]
fn recovery_after_a_crash_logs_each_tenth_of_the_data() {
    // Proves the start-up after a SIGKILL logs "recovering logs after an unclean stop: N%"
    // lines in increasing order up to 100%, that a clean restart logs none, and that the
    // records are all there afterwards.
    let mut broker = Broker::start();
    let partitions = PARTITION_COUNT.to_string();
    let created = riffle_client(
        &broker,
        &["topics", "create", "bulk", "--partitions", &partitions],
        None,
    );
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let line = format!("{}\n", "x".repeat(99));
    let input = line.repeat(RECORDS_PER_PARTITION);
    for partition in 0..PARTITION_COUNT {
        let partition = partition.to_string();
        let produced = riffle_client(
            &broker,
            &["produce", "bulk", "--partition", &partition],
            Some(input.as_bytes()),
        );
        assert_eq!(produced.code, Some(0), "{}", produced.stderr);
    }

    broker.kill();
    broker.restart();
    let log = fs::read_to_string(broker.log_path()).expect("the broker log");
    let percents: Vec<u64> = log
        .lines()
        .filter_map(|line| line.split("recovering logs after an unclean stop: ").nth(1))
        .filter_map(|rest| rest.split('%').next()?.parse().ok())
        .collect();
    assert!(
        percents.len() >= 5,
        "about one line per tenth: {percents:?}\n{log}"
    );
    assert!(
        percents.windows(2).all(|pair| pair[0] < pair[1]),
        "{percents:?}"
    );
    assert_eq!(percents.last(), Some(&100), "{percents:?}");

    let read = riffle_client(
        &broker,
        &["consume", "bulk", "--from-beginning", "--exit-at-end"],
        None,
    );
    assert_eq!(read.code, Some(0), "{}", read.stderr);
    assert_eq!(
        read.stdout.lines().count(),
        PARTITION_COUNT * RECORDS_PER_PARTITION
    );

    broker.stop();
    broker.restart();
    let log = fs::read_to_string(broker.log_path()).expect("the broker log");
    let runs: Vec<&str> = log
        .split("recovering logs after an unclean stop: 100%")
        .collect();
    assert_eq!(runs.len(), 2, "only the start after the crash recovers");
}
