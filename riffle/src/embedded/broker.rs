//! [`Broker`]: a broker with stream processors running inside it.
//!
//! A user program builds it from a [`BrokerConfig`] (the flags of `riffle serve`), adds
//! topologies and runs it. Start-up is `riffle serve`'s (see [`crate::cli`]); then each
//! topology's [`Runner`] runs over an [`EmbeddedBackend`]. Stopping is ordered: the runners
//! first (each flushes its outputs and commits a last time), then the server, which flushes
//! the logs and marks a clean stop.

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use riffle_processor::observe::{AppHandle, RuntimeKind};
use riffle_processor::runtime::{Runner, RuntimeConfig, RuntimeStatus};
use riffle_processor::{StoreRegistry, Topology};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinError, JoinHandle};
use tracing::{error, info};

use super::backend::{EmbeddedBackend, EmbeddedConfig};
use crate::cli;
use riffle_server::cluster::Cluster;
use riffle_server::config::BrokerConfig;
use riffle_server::startup::{self, OpenError};

/// A broker with stream processors: see [`Broker::builder`].
pub struct Broker;

impl Broker {
    /// Starts describing a broker with `config`; add topologies, then `run` or `start`.
    pub fn builder(config: BrokerConfig) -> BrokerBuilder {
        BrokerBuilder {
            config,
            processors: Vec::new(),
            embedded: EmbeddedConfig::default(),
            announce: true,
        }
    }
}

/// The broker's settings and the topologies it will run.
pub struct BrokerBuilder {
    config: BrokerConfig,
    processors: Vec<(Topology, RuntimeConfig)>,
    embedded: EmbeddedConfig,
    /// Whether starting prints the listening lines on stdout.
    announce: bool,
}

impl BrokerBuilder {
    /// Runs `topology` with the default [`RuntimeConfig`].
    pub fn processor(self, topology: Topology) -> Self {
        self.processor_with(topology, RuntimeConfig::default())
    }

    /// Runs `topology` paced by `config`.
    pub fn processor_with(mut self, topology: Topology, config: RuntimeConfig) -> Self {
        self.processors.push((topology, config));
        self
    }

    /// Group timings and read/write limits of every embedded runtime.
    pub fn embedded_config(mut self, config: EmbeddedConfig) -> Self {
        self.embedded = config;
        self
    }

    /// Starts without printing the listening lines, for a program whose stdout is its own
    /// (the addresses stay on [`RunningBroker::listeners`] and in the log).
    pub fn quiet(mut self) -> Self {
        self.announce = false;
        self
    }

    /// Runs until Ctrl-C or SIGTERM, like `riffle serve`: sets up logging and the tokio
    /// runtime, prints `riffle listening on ADDR` as the first line of stdout, serves
    /// clients and runs every topology; then stops the runners and the server in order.
    /// A topology that fails stops the broker, with a failing exit code.
    pub fn run(self) -> ExitCode {
        cli::init_logging(&self.config.log_level);
        cli::block_on(async move {
            // Listen for SIGTERM before announcing, as `riffle serve` does.
            let stop = cli::stop_signal().map_err(RunError::StopSignal)?;
            let mut running = self.start().await?;
            let failure = tokio::select! {
                () = stop => None,
                failure = running.failed() => Some(failure),
            };
            let stopped = running.shutdown().await;
            match failure {
                Some(message) => Err(RunError::ProcessorFailed(message)),
                None => Ok(stopped?),
            }
        })
    }

    /// Starts the broker and its processors on the current tokio runtime (multi-threaded:
    /// handlers use `block_in_place`) and returns at once. Prints the listening lines as
    /// `riffle serve` does (`riffle listening on ADDR`, one per listener, and the HTTP
    /// listener's), unless [`BrokerBuilder::quiet`].
    ///
    /// # Errors
    /// When the address cannot be bound, the data directory cannot be opened, or two
    /// topologies share an application id.
    pub async fn start(self) -> Result<RunningBroker, StartError> {
        check_unique_application_ids(&self.processors)?;
        let state_dir = self
            .config
            .data_dir
            .join(riffle_storage::format::PROCESSOR_STATE_DIR_NAME);
        let opened = startup::open(self.config).await?;
        // Ready before the listening lines: whoever reads them may probe /readyz at once.
        opened.mark_serving();
        if self.announce {
            startup::announce(&opened);
        }
        let listener_addresses = opened
            .listener_addresses()
            .into_iter()
            .map(|(name, address)| ListenerAddress { name, address })
            .collect();
        let http_address = opened.http_address();
        let (bound, cluster) = (opened.bound, opened.cluster.clone());
        let (stop_runners, runners_stopped) = watch::channel(false);
        let (failure_sender, failures) = mpsc::channel(self.processors.len().max(1));
        let mut processors = Vec::new();
        let mut runners = Vec::new();
        let embedded = embedded_for(self.embedded, &cluster);
        for (topology, mut config) in self.processors {
            // One instance per broker: the node id names it unless the program did.
            let node_instance = || format!("node-{}", cluster.node_id);
            config.instance_id.get_or_insert_with(node_instance);
            // State lives with the broker's data, locked by the data directory's own lock
            // as well as its own.
            config.state_dir.get_or_insert_with(|| state_dir.clone());
            let backend = EmbeddedBackend::new(cluster.clone(), embedded.clone());
            let runner = Runner::new(topology.clone(), backend, config);
            processors.push(Processor {
                application_id: topology.application_id().to_string(),
                stores: runner.stores(),
                status: runner.status(),
                app: runner.app_handle(RuntimeKind::CoLocated),
            });
            let stop = runners_stopped.clone();
            runners.push(spawn_runner(runner, topology, stop, failure_sender.clone()));
        }
        let apps = processors.iter().map(|processor| processor.app.clone());
        super::apps::install(opened.http.as_ref(), &cluster, apps.collect());
        let (stop_server, server_stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(opened.serve(async {
            let _ = server_stopped.await;
        }));
        Ok(RunningBroker {
            address: bound,
            listeners: listener_addresses,
            http_address,
            cluster,
            processors,
            failures,
            stop_runners,
            runners,
            stop_server,
            server,
        })
    }
}

/// Why [`BrokerBuilder::start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Two topologies share an application id; each runs as one static member of its
    /// group, so one per broker.
    #[error("the application id '{0}' is registered twice")]
    DuplicateApplicationId(String),
    /// The broker could not bind its listeners or open its data directory.
    #[error(transparent)]
    Open(#[from] OpenError),
}

/// Why [`RunningBroker::shutdown`] did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    /// A processor's task panicked.
    #[error("a processor task panicked: {0}")]
    ProcessorPanicked(#[source] JoinError),
    /// The server's task panicked.
    #[error("the server task panicked: {0}")]
    ServerPanicked(#[source] JoinError),
}

/// Why [`BrokerBuilder::run`] stopped with an error; `cli::block_on` prints it.
#[derive(Debug, thiserror::Error)]
enum RunError {
    /// The SIGTERM handler could not be installed.
    #[error("cannot listen for SIGTERM: {0}")]
    StopSignal(#[source] io::Error),
    /// The broker did not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// A processor's failure, as [`RunningBroker::failed`] words it.
    #[error("{0}")]
    ProcessorFailed(String),
    /// The broker did not stop cleanly.
    #[error(transparent)]
    Shutdown(#[from] ShutdownError),
}

/// The embedded config with this node's static member id, unless one was set.
fn embedded_for(mut config: EmbeddedConfig, cluster: &Cluster) -> EmbeddedConfig {
    if config.group_instance_id.is_none() {
        config.group_instance_id = Some(format!("riffle-embedded-node-{}", cluster.node_id));
    }
    config
}

/// One application id per broker: each runs as one static member of its group.
fn check_unique_application_ids(
    processors: &[(Topology, RuntimeConfig)],
) -> Result<(), StartError> {
    let mut seen = std::collections::BTreeSet::new();
    for (topology, _) in processors {
        let application_id = topology.application_id();
        if !seen.insert(application_id) {
            return Err(StartError::DuplicateApplicationId(
                application_id.to_string(),
            ));
        }
    }
    Ok(())
}

/// Runs one topology until the stop signal; a failure is logged and reported.
fn spawn_runner(
    runner: Runner<EmbeddedBackend>,
    topology: Topology,
    mut stop: watch::Receiver<bool>,
    failures: mpsc::Sender<String>,
) -> JoinHandle<()> {
    let application_id = topology.application_id().to_string();
    info!(application = %application_id, "topology:\n{}", topology.describe());
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        if let Err(error) = runner.run_until(stopped).await {
            error!(application = %application_id, %error, "processor stopped");
            let _ = failures.try_send(format!("processor '{application_id}' failed: {error}"));
        }
    })
}

/// A topology running in the broker.
pub struct Processor {
    /// Its application id: also its consumer group.
    pub application_id: String,
    /// Its tasks' stores, for interactive queries.
    pub stores: StoreRegistry,
    /// Its tasks, counters and commits.
    pub status: Arc<Mutex<RuntimeStatus>>,
    /// Its summary, stores by name as JSON, and metrics: what `/apps` and `/metrics` show.
    pub app: AppHandle,
}

/// A Kafka listener of a running broker: its name (`PLAINTEXT`, `SASL_SSL`, ...) and the
/// address it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerAddress {
    pub name: String,
    pub address: SocketAddr,
}

/// A started broker: its address, its processors, and [`RunningBroker::shutdown`].
pub struct RunningBroker {
    address: SocketAddr,
    listeners: Vec<ListenerAddress>,
    /// The HTTP listener's address (metrics and health), unless `--http-listen none`.
    http_address: Option<SocketAddr>,
    cluster: Arc<Cluster>,
    processors: Vec<Processor>,
    /// Messages of processors that failed; one slot per processor.
    failures: mpsc::Receiver<String>,
    stop_runners: watch::Sender<bool>,
    runners: Vec<JoinHandle<()>>,
    stop_server: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

impl RunningBroker {
    /// The address the broker listens on (its first listener's, the real port when the
    /// config asked for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Every Kafka listener, in the order of `--listeners`.
    pub fn listeners(&self) -> &[ListenerAddress] {
        &self.listeners
    }

    /// The HTTP listener's address (`/metrics`, `/healthz`, `/readyz`), unless the
    /// config says `--http-listen none`.
    pub fn http_address(&self) -> Option<SocketAddr> {
        self.http_address
    }

    /// The broker's topics, logs and groups, for a host program that administers them in
    /// process (creating a topic, say).
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Every running topology, in the order they were added.
    pub fn processors(&self) -> &[Processor] {
        &self.processors
    }

    /// The stores of the topology with `application_id`.
    pub fn stores(&self, application_id: &str) -> Option<StoreRegistry> {
        self.processors
            .iter()
            .find(|processor| processor.application_id == application_id)
            .map(|processor| processor.stores.clone())
    }

    /// Waits until a processor fails, and returns its message. Once no processor is left
    /// that could fail (there were none), it waits for ever: a broker without topologies
    /// serves until it is stopped.
    pub async fn failed(&mut self) -> String {
        match self.failures.recv().await {
            Some(message) => message,
            None => std::future::pending().await,
        }
    }

    /// Stops the processors (each commits a last time and leaves its group), then the
    /// server (connections drain, logs are flushed).
    ///
    /// # Errors
    /// When a task panicked (the server's, if both did).
    pub async fn shutdown(self) -> Result<(), ShutdownError> {
        let _ = self.stop_runners.send(true);
        let mut result = Ok(());
        for runner in self.runners {
            if let Err(error) = runner.await {
                result = Err(ShutdownError::ProcessorPanicked(error));
            }
        }
        let _ = self.stop_server.send(());
        if let Err(error) = self.server.await {
            result = Err(ShutdownError::ServerPanicked(error));
        }
        info!("broker and processors stopped");
        result
    }
}

#[cfg(test)]
mod tests {
    use riffle_processor::{StreamsBuilder, StringSerde};
    use riffle_storage::MutexRecover;

    use super::*;
    use riffle_server::cluster::Validation;
    use riffle_server::testing::test_config;

    /// A broker on a free port whose groups start without the initial rebalance delay.
    const SERVE_FLAGS: &[&str] = &[
        "--listen",
        "127.0.0.1:0",
        "--group-initial-rebalance-delay-ms",
        "0",
    ];

    fn counting_topology(application_id: &str) -> Topology {
        let builder = StreamsBuilder::new(application_id);
        builder
            .stream("words", StringSerde, StringSerde)
            .group_by_key()
            .count("counts");
        builder.build().unwrap()
    }

    /// Creates the topologies' source topic, `words`.
    fn create_words(running: &RunningBroker, partitions: i32) {
        let created = running.cluster().create_topic(
            "words",
            partitions,
            Default::default(),
            Validation::Apply,
        );
        created.unwrap();
    }

    /// Waits until the first processor runs at least `count` tasks; fails with `what`.
    async fn wait_for_tasks(running: &RunningBroker, count: usize, what: &str) {
        let status = running.processors()[0].status.clone();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while status.lock_or_recover().tasks.len() < count {
            assert!(std::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn start_serves_runs_topologies_and_shuts_down_in_order() {
        // Proves `start` binds a real port, exposes each topology's stores by application
        // id, runs its tasks once the source topic exists, and `shutdown` stops runners and
        // server cleanly; the handle knows every listener's bound address.
        let dir = tempfile::tempdir().unwrap();
        let running = Broker::builder(test_config(dir.path(), SERVE_FLAGS))
            .processor(counting_topology("counter"))
            .quiet()
            .start()
            .await
            .unwrap();
        assert_ne!(running.address().port(), 0);
        assert_eq!(
            running.listeners(),
            [ListenerAddress {
                name: "PLAINTEXT".into(),
                address: running.address(),
            }]
        );
        assert!(running.stores("counter").is_some());
        assert!(running.stores("other").is_none());
        tokio::net::TcpStream::connect(running.address())
            .await
            .unwrap();
        // The runner waits for its source topic, then joins and takes both partitions.
        create_words(&running, 2);
        wait_for_tasks(&running, 2, "no tasks").await;
        running.shutdown().await.unwrap();
        let reopened = Cluster::open(test_config(dir.path(), &[]), ("127.0.0.1".into(), 9092));
        assert!(reopened.is_ok());
    }

    /// `GET path` on `address`; the status code.
    async fn http_status(address: SocketAddr, path: &str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn embedded_brokers_serve_http_on_their_own_ports_until_shutdown() {
        // Proves the embedded broker honours --http-listen: two at once on port 0 get
        // ports of their own and are ready; after shutdown the listener is gone; with
        // `none` there is no listener.
        let (first_dir, second_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = Broker::builder(test_config(first_dir.path(), SERVE_FLAGS));
        let first = first.start().await.unwrap();
        let second = Broker::builder(test_config(second_dir.path(), SERVE_FLAGS));
        let second = second.start().await.unwrap();
        let first_http = first.http_address().expect("an HTTP listener");
        let second_http = second.http_address().expect("an HTTP listener");
        assert_ne!(first_http.port(), second_http.port());
        assert_eq!(http_status(first_http, "/readyz").await, 200);
        assert_eq!(http_status(second_http, "/metrics").await, 200);
        first.shutdown().await.unwrap();
        second.shutdown().await.unwrap();
        // The aborted accept task drops its socket at its next poll: soon, not at once.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while tokio::net::TcpStream::connect(first_http).await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "still listening");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }

        let dir = tempfile::tempdir().unwrap();
        let flags = ["--listen", "127.0.0.1:0", "--http-listen", "none"];
        let running = Broker::builder(test_config(dir.path(), &flags));
        let running = running.start().await.unwrap();
        assert_eq!(running.http_address(), None);
        running.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn one_application_id_per_broker() {
        // Proves two topologies with one application id are refused before anything starts.
        let dir = tempfile::tempdir().unwrap();
        let error = Broker::builder(test_config(dir.path(), &["--listen", "127.0.0.1:0"]))
            .processor(counting_topology("same"))
            .processor(counting_topology("same"))
            .start()
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&error, StartError::DuplicateApplicationId(id) if id == "same"),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "the application id 'same' is registered twice"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_host_program_reads_the_counts_from_the_running_topology() {
        // Proves a user program can serve current state without another database: words
        // produced through the Produce path are counted by the co-located topology, and the
        // count is read with a point query on its store, through `RunningBroker::stores`.
        use riffle_protocol::api::produce::{
            PartitionProduceData, ProduceRequest, TopicProduceData,
        };
        use riffle_protocol::record::{Compression, RecordBatchBuilder};

        let dir = tempfile::tempdir().unwrap();
        let builder = StreamsBuilder::new("word-counter");
        let counts = builder
            .stream("words", StringSerde, StringSerde)
            .group_by_key()
            .count("counts");
        let handle = counts.store();
        let running = Broker::builder(test_config(dir.path(), SERVE_FLAGS))
            .processor(builder.build().unwrap())
            .start()
            .await
            .unwrap();
        create_words(&running, 1);
        let mut batch = RecordBatchBuilder::new(Compression::None);
        for (timestamp_ms, word) in [(1_000, "apple"), (2_000, "pear"), (3_000, "apple")] {
            batch.append(timestamp_ms, Some(word.as_bytes()), Some(b"x"), &[]);
        }
        let request = ProduceRequest {
            acks: -1,
            timeout_ms: 5_000,
            topic_data: vec![TopicProduceData {
                name: "words".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(batch.build().unwrap()),
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
        .unwrap();
        let stores = running.stores("word-counter").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let view = stores.key_value(&handle);
            if view.get(&"apple".to_string()).unwrap() == Some(2) {
                assert_eq!(view.get(&"pear".to_string()).unwrap(), Some(1));
                assert_eq!(view.all().unwrap().len(), 2);
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the counts never reached the store"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        running.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_topology_waits_for_its_source_topic_instead_of_stopping_the_broker() {
        // Proves a co-located topology whose input does not exist yet keeps waiting (with
        // warnings) past the warning interval, and starts once the topic appears.
        let dir = tempfile::tempdir().unwrap();
        let config = RuntimeConfig {
            source_topics_warning_interval: std::time::Duration::from_millis(100),
            ..RuntimeConfig::default()
        };
        let mut running = Broker::builder(test_config(dir.path(), SERVE_FLAGS))
            .processor_with(counting_topology("late-input"), config)
            .start()
            .await
            .unwrap();
        let no_failure = tokio::time::timeout(std::time::Duration::from_secs(1), running.failed());
        assert!(
            no_failure.await.is_err(),
            "the topology gave up on its missing input"
        );
        create_words(&running, 1);
        wait_for_tasks(&running, 1, "no task after the topic appeared").await;
        running.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_broker_without_topologies_does_not_report_a_failure() {
        // Proves `failed` (what `Broker::run` waits on beside the stop signal) does not
        // return when there is no processor to fail, so such a broker keeps serving.
        let dir = tempfile::tempdir().unwrap();
        let mut running = Broker::builder(test_config(dir.path(), SERVE_FLAGS))
            .start()
            .await
            .unwrap();
        let no_failure =
            tokio::time::timeout(std::time::Duration::from_millis(300), running.failed());
        assert!(
            no_failure.await.is_err(),
            "failed() returned without a failure"
        );
        running.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_topology_is_refused_like_a_client_without_acls_for_its_principal() {
        // Proves co-located topologies are authorized as --processor-principal: with the
        // authorizer on and no ACL for it, the topology fails and says which principal was
        // refused; with ACLs for its group, its input and its internal topics, it runs.
        let dir = tempfile::tempdir().unwrap();
        let flags: Vec<&str> = SERVE_FLAGS
            .iter()
            .copied()
            .chain([
                "--authorizer",
                "acl",
                "--processor-principal",
                "User:streams",
            ])
            .collect();
        let mut running = Broker::builder(test_config(dir.path(), &flags))
            .processor(counting_topology("counter"))
            .start()
            .await
            .unwrap();
        create_words(&running, 1);
        let failure = tokio::time::timeout(std::time::Duration::from_secs(20), running.failed())
            .await
            .expect("the topology is refused");
        assert!(failure.contains("TOPIC_AUTHORIZATION_FAILED"), "{failure}");
        assert!(failure.contains("User:streams"), "{failure}");
        // The ACLs are kept in the metadata log, so the next start has them.
        use riffle_server::security::acl::AclOperation::{All, Create, Read};
        let cluster = running.cluster();
        let streams = "User:streams";
        riffle_server::testing::allow(cluster, "group:literal:counter", streams, Read);
        riffle_server::testing::allow(cluster, "topic:literal:words", streams, Read);
        riffle_server::testing::allow(cluster, "topic:prefixed:counter-", streams, All);
        riffle_server::testing::allow(cluster, "cluster:literal:kafka-cluster", streams, Create);
        running.shutdown().await.unwrap();

        let mut running = Broker::builder(test_config(dir.path(), &flags))
            .processor(counting_topology("counter"))
            .start()
            .await
            .unwrap();
        let status = running.processors()[0].status.clone();
        let started = async {
            while status.lock_or_recover().tasks.is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            () = started => {}
            failure = running.failed() => panic!("refused with the ACLs: {failure}"),
            () = tokio::time::sleep(std::time::Duration::from_secs(20)) => panic!("no task"),
        }
        running.shutdown().await.unwrap();
    }
}
