//! What the remote runtime's tests share: one processor instance run in the test process, a
//! remote runner on a tokio task, with its stores and status, stopped cleanly or killed.
//!
//! Each test file builds its own runner (its topology, config and rdkafka settings) and
//! hands it to [`Instance::spawn`]; it may add its own methods in an `impl Instance` block.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use riffle_processor::runtime::remote::RemoteBackend;
use riffle_processor::runtime::{Runner, RuntimeError, RuntimeStatus};
use riffle_processor::{KeyValueStoreHandle, StoreRegistry};
use riffle_storage::MutexRecover;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One processor instance: a runner on a tokio task, with its stores and status.
pub struct Instance {
    stores: StoreRegistry,
    status: Arc<Mutex<RuntimeStatus>>,
    /// The runner's result, once it returned.
    ended: Arc<Mutex<Option<String>>>,
    shutdown: oneshot::Sender<()>,
    handle: JoinHandle<Result<(), RuntimeError>>,
    /// How long [`Instance::stop`] waits for the runner's final commit.
    stop_timeout: Duration,
}

impl Instance {
    /// Runs `runner` on a tokio task until [`Instance::stop`] or [`Instance::kill`].
    pub fn spawn(runner: Runner<RemoteBackend>, stop_timeout: Duration) -> Instance {
        // The runtime's log, with RUST_LOG=riffle_processor=info for example.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let (stores, status) = (runner.stores(), runner.status());
        let (shutdown, stop) = oneshot::channel::<()>();
        let ended = Arc::new(Mutex::new(None));
        let ended_by_runner = ended.clone();
        let handle = tokio::spawn(async move {
            let result = runner
                .run_until(async move {
                    let _ = stop.await;
                })
                .await;
            *ended_by_runner.lock_or_recover() = Some(format!("{result:?}"));
            result
        });
        Instance {
            stores,
            status,
            ended,
            shutdown,
            handle,
            stop_timeout,
        }
    }

    /// Fails the test if the runner stopped on its own.
    pub fn assert_running(&self) {
        let ended = self.ended.lock_or_recover();
        if let Some(outcome) = ended.as_ref() {
            panic!("a runner stopped before the test stopped it: {outcome}");
        }
    }

    /// The runner's status; fails the test if the runner stopped on its own.
    pub fn status(&self) -> RuntimeStatus {
        self.assert_running();
        self.status.lock_or_recover().clone()
    }

    /// The counts in the store `handle` names, across this instance's tasks.
    pub fn totals(&self, handle: &KeyValueStoreHandle<String, i64>) -> BTreeMap<String, i64> {
        let view = self.stores.key_value(handle);
        view.all().expect("readable totals").into_iter().collect()
    }

    /// A clean stop: final commit, leave the group; the runner must not have failed.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let result = tokio::time::timeout(self.stop_timeout, self.handle)
            .await
            .expect("the runner stops within the timeout")
            .expect("the runner task did not panic");
        result.expect("the runner ran without error");
    }

    /// A crash: the runner is dropped where it stands, without its final commit.
    pub async fn kill(self) {
        if self.handle.is_finished() {
            let result = self.handle.await.expect("the runner task did not panic");
            panic!("the runner had stopped before the kill: {result:?}");
        }
        self.handle.abort();
        let _ = self.handle.await;
    }
}
