//! Helpers for the server's unit tests and, behind the `testing` feature, those of the
//! `riffle-broker` crate: clusters over temporary data directories, ACLs, a serving broker.

use std::path::Path;

use clap::Parser;

use crate::cluster::Cluster;

/// The flags of `riffle serve`, parsed the way the binary parses them.
#[derive(Parser)]
struct TestArgs {
    #[command(flatten)]
    config: crate::config::BrokerConfig,
}

/// A cluster over a fresh temporary data directory with the default flags. Keep the
/// directory alive as long as the cluster.
pub fn test_cluster() -> (tempfile::TempDir, Cluster) {
    let dir = tempfile::Builder::new()
        .prefix("riffle-handler-test-")
        .tempdir()
        .expect("create a temp dir");
    let cluster = open_test_cluster(dir.path());
    (dir, cluster)
}

/// Opens (or reopens, as after a restart) a cluster on `data_dir` with the default flags.
pub fn open_test_cluster(data_dir: &Path) -> Cluster {
    Cluster::open(test_config(data_dir, &[]), ("127.0.0.1".into(), 9092)).expect("open a cluster")
}

/// The default flags with `--data-dir data_dir`, then `flags`. The HTTP listener takes a
/// free port unless `flags` say otherwise, so tests running at once never clash on 9644.
pub fn test_config(data_dir: &Path, flags: &[&str]) -> crate::config::BrokerConfig {
    let data_dir = data_dir.to_str().expect("temp dir paths are UTF-8");
    let http_listen: &[&str] = if flags.contains(&"--http-listen") {
        &[]
    } else {
        &["--http-listen", "127.0.0.1:0"]
    };
    let args = ["test", "--data-dir", data_dir]
        .into_iter()
        .chain(http_listen.iter().copied())
        .chain(flags.iter().copied());
    TestArgs::parse_from(args).config
}

/// A cluster with `--authorizer acl` and `flags`, over a fresh temporary data directory.
pub fn acl_cluster(flags: &[&str]) -> (tempfile::TempDir, Cluster) {
    let dir = tempfile::Builder::new()
        .prefix("riffle-acl-test-")
        .tempdir()
        .expect("create a temp dir");
    let flags: Vec<&str> = ["--authorizer", "acl"]
        .into_iter()
        .chain(flags.iter().copied())
        .collect();
    let config = test_config(dir.path(), &flags);
    let cluster = Cluster::open(config, ("127.0.0.1".into(), 9092)).expect("open a cluster");
    (dir, cluster)
}

/// The context of a request from `principal` (`User:alice`) at 127.0.0.1.
pub fn context_of(cluster: &Cluster, principal: &str) -> crate::handler::RequestContext {
    crate::handler::RequestContext {
        principal: crate::security::Principal::parse(principal).expect("a principal"),
        ..crate::handler::RequestContext::internal(cluster)
    }
}

/// Stores one allow ACL: `pattern` is `type:pattern-type:name`, such as
/// `topic:literal:orders`, `group:prefixed:app-` or `cluster:literal:kafka-cluster`.
pub fn allow(
    cluster: &Cluster,
    pattern: &str,
    principal: &str,
    operation: crate::security::acl::AclOperation,
) {
    use crate::security::acl::{AclBinding, AclFields, AclPermission, PatternType, ResourceType};
    let mut parts = pattern.splitn(3, ':');
    let resource_type = match parts.next() {
        Some("topic") => ResourceType::Topic,
        Some("group") => ResourceType::Group,
        Some("cluster") => ResourceType::Cluster,
        _ => ResourceType::TransactionalId,
    };
    let pattern_type = match parts.next() {
        Some("prefixed") => PatternType::Prefixed,
        _ => PatternType::Literal,
    };
    let binding = AclBinding::from_fields(&AclFields {
        resource_type: resource_type.code(),
        resource_name: parts.next().unwrap_or_default(),
        pattern_type: pattern_type.code(),
        principal,
        host: "*",
        operation: operation.code(),
        permission: AclPermission::Allow.code(),
    })
    .expect("a valid ACL");
    cluster.create_acls(&[binding]).expect("store the ACL");
}

/// A broker serving on real sockets from a test that blocks (the admin client's tests): its
/// own tokio runtime runs the listeners; dropping it stops them.
pub struct ServingBroker {
    /// Dropping it stops the server loop. Fields drop in order: the signal first, then the
    /// runtime with its tasks, then the cluster, and the directory last.
    _stop: tokio::sync::oneshot::Sender<()>,
    /// Runs the server.
    _runtime: tokio::runtime::Runtime,
    /// The topics, credentials and ACLs.
    pub cluster: std::sync::Arc<Cluster>,
    /// Each listener's bound address, by listener name.
    addresses: std::collections::BTreeMap<String, std::net::SocketAddr>,
    /// Holds the data directory until the broker is gone.
    _dir: tempfile::TempDir,
}

impl ServingBroker {
    /// Starts a broker with `flags` (after `--data-dir`) on a two-thread runtime.
    pub fn start(flags: &[&str]) -> ServingBroker {
        let dir = tempfile::Builder::new()
            .prefix("riffle-serving-test-")
            .tempdir()
            .expect("create a temp dir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let opened = runtime
            .block_on(crate::startup::open(test_config(dir.path(), flags)))
            .expect("the broker starts");
        let addresses = opened
            .listeners
            .iter()
            .map(|bound| (bound.listener.name.clone(), bound.local_address))
            .collect();
        let cluster = opened.cluster;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(crate::server::run(
            opened.listeners,
            cluster.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        ServingBroker {
            _stop: stop,
            _runtime: runtime,
            cluster,
            addresses,
            _dir: dir,
        }
    }

    /// `127.0.0.1:<port>` of the listener named `listener`.
    pub fn bootstrap(&self, listener: &str) -> String {
        self.addresses[listener].to_string()
    }

    /// Stores `user`'s SCRAM credential for `mechanism`, as AlterUserScramCredentials does.
    pub fn add_user(&self, user: &str, password: &str, mechanism: crate::security::ScramMechanism) {
        use crate::security::credentials::{CredentialChange, ScramCredential};
        let credential = ScramCredential::from_password(mechanism, password, vec![7; 16], 4096);
        self.cluster
            .alter_scram_credentials(vec![CredentialChange::Set {
                user: user.to_string(),
                mechanism,
                credential,
            }])
            .expect("store the credential");
    }
}
