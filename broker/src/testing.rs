//! Helpers for the broker's unit tests: clusters over temporary data directories.

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
pub(crate) fn test_cluster() -> (tempfile::TempDir, Cluster) {
    let dir = tempfile::Builder::new()
        .prefix("riffle-handler-test-")
        .tempdir()
        .expect("create a temp dir");
    let cluster = open_test_cluster(dir.path());
    (dir, cluster)
}

/// Opens (or reopens, as after a restart) a cluster on `data_dir` with the default flags.
pub(crate) fn open_test_cluster(data_dir: &Path) -> Cluster {
    Cluster::open(test_config(data_dir, &[]), ("127.0.0.1".into(), 9092)).expect("open a cluster")
}

/// The default flags with `--data-dir data_dir`, then `flags`.
pub(crate) fn test_config(data_dir: &Path, flags: &[&str]) -> crate::config::BrokerConfig {
    let data_dir = data_dir.to_str().expect("temp dir paths are UTF-8");
    let args = ["test", "--data-dir", data_dir]
        .into_iter()
        .chain(flags.iter().copied());
    TestArgs::parse_from(args).config
}
