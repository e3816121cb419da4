//! One application, two kinds of instance: a topology embedded in the broker and the same
//! topology as a remote (rdkafka) instance share one consumer group. Proves the embedded
//! member speaks the standard consumer protocol (range assignment, subscriptions,
//! assignments) well enough for librdkafka to join it, and that tasks and their state end
//! up split between the two.

use std::time::{Duration, Instant};

use clap::Parser;
use riffle_broker::config::BrokerConfig;
use riffle_broker::embedded::Broker;
use riffle_processor::runtime::remote::RemoteBackend;
use riffle_processor::runtime::{Runner, RuntimeConfig};
use riffle_processor::{StreamsBuilder, StringSerde, Topology};
use riffle_protocol::api::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};
use riffle_protocol::record::{Compression, RecordBatchBuilder};
use riffle_server::cluster::Validation;
use riffle_storage::MutexRecover;

const APPLICATION_ID: &str = "mixed-word-count";
const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: BrokerConfig,
}

fn word_count() -> (Topology, riffle_processor::KeyValueStoreHandle<String, i64>) {
    let builder = StreamsBuilder::new(APPLICATION_ID);
    let counts = builder
        .stream("words", StringSerde, StringSerde)
        .group_by_key()
        .count("counts");
    let store = counts.store();
    (builder.build().expect("a valid topology"), store)
}

/// Appends one record per word to `partition` of `words` through the Produce path.
async fn produce(running: &riffle_broker::embedded::RunningBroker, partition: i32, words: &[&str]) {
    let mut batch = RecordBatchBuilder::new(Compression::None);
    for (index, word) in (0i64..).zip(words) {
        batch.append(1_000 + index, Some(word.as_bytes()), Some(b"x"), &[]);
    }
    let request = ProduceRequest {
        acks: -1,
        timeout_ms: 5_000,
        topic_data: vec![TopicProduceData {
            name: "words".into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(batch.build().expect("a valid batch")),
            }],
        }],
        ..Default::default()
    };
    riffle_server::handler::produce::handle(
        running.cluster(),
        &riffle_server::handler::RequestContext::internal(running.cluster()),
        9,
        request,
    )
    .await
    .expect("acks=all gets a response");
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_embedded_and_a_remote_instance_split_one_application() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let data_dir = dir.path().to_str().expect("a UTF-8 path");
    let flags = ["test", "--listen", "127.0.0.1:0", "--data-dir", data_dir];
    let flags = flags.into_iter().chain(["--http-listen", "127.0.0.1:0"]);
    let flags = flags
        .into_iter()
        .chain(["--group-initial-rebalance-delay-ms", "0"]);
    let config = Args::parse_from(flags).config;
    let (topology, store) = word_count();
    let running = Broker::builder(config)
        .processor(topology)
        .start()
        .await
        .expect("the broker starts");
    let created = running
        .cluster()
        .create_topic("words", 2, Default::default(), Validation::Apply);
    created.expect("the topic is created");
    let embedded = running.processors()[0].status.clone();
    wait_until("the embedded instance runs both tasks", || {
        embedded.lock_or_recover().tasks.len() == 2
    })
    .await;

    let bootstrap = running.address().to_string();
    let backend = RemoteBackend::new(&bootstrap, &[]).expect("rdkafka clients");
    let runtime_config = RuntimeConfig {
        commit_interval: Duration::from_millis(200),
        ..RuntimeConfig::default()
    };
    let (topology, _) = word_count();
    let runner = Runner::new(topology, backend, runtime_config);
    let (remote_status, remote_stores) = (runner.status(), runner.stores());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let remote = tokio::spawn(runner.run_until(async {
        let _ = stopped.await;
    }));
    wait_until("each instance runs one task", || {
        embedded.lock_or_recover().tasks.len() == 1
            && remote_status.lock_or_recover().tasks.len() == 1
    })
    .await;

    produce(&running, 0, &["apple", "pear", "apple"]).await;
    produce(&running, 1, &["plum", "plum", "plum"]).await;
    let embedded_stores = running
        .stores(APPLICATION_ID)
        .expect("the embedded application");
    let count = |word: &str| {
        let word = word.to_string();
        let local = embedded_stores
            .key_value(&store)
            .get(&word)
            .expect("readable");
        let remote = remote_stores
            .key_value(&store)
            .get(&word)
            .expect("readable");
        assert!(
            local.is_none() || remote.is_none(),
            "{word} is counted by both instances"
        );
        local.or(remote)
    };
    wait_until("both partitions are counted", || {
        count("apple") == Some(2) && count("pear") == Some(1) && count("plum") == Some(3)
    })
    .await;

    let _ = stop.send(());
    let finished = tokio::time::timeout(DEADLINE, remote).await;
    finished
        .expect("the remote instance stops")
        .expect("no panic")
        .expect("a clean stop");
    running.shutdown().await.expect("a clean shutdown");
}
