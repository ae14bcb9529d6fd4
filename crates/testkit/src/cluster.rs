//! The local clusters' levers (deploy/local/cluster.sh), for the failover tests: stop, kill
//! and restart a Redis Cluster node or a RabbitMQ node.

use std::path::PathBuf;

/// Runs one function of deploy/local/cluster.sh (e.g. `kill_redis_node 7002`), blocking
/// until it returns; panics if it fails.
pub fn run(function: &str) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = format!(
        "source {0}/deploy/local/lib.sh && source {0}/deploy/local/cluster.sh && {function}",
        root.display()
    );
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .status()
        .expect("bash");
    assert!(status.success(), "{function} failed");
}
