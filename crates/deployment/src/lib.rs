//! Checks that keep Kino's deployment files valid and in step with each other, run with the
//! real tools (docker-compose, kubectl kustomize, kubernetes-validate, the CRD validators of
//! the @kubernetes-models npm packages, caddy adapt). No Docker engine or cluster runs here,
//! so this is what stands between an edit and a deployment that fails.
//!
//! Each module returns the problems it found as readable strings; an empty list is a pass.
//! The tests in `tests/deployment.rs` run every check over the repository's files and feed
//! deliberately broken copies to the same checks, so each check is shown to fail.
//!
//! deploy/local/deps installs the tools (pinned); [`tools`] says where they are.

pub mod compose;
pub mod dashboard;
pub mod gateway;
pub mod kubernetes;
pub mod tools;

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// Kino's deployable services: every `services/<name>` with a `src/main.rs`. Each must
/// appear in the Dockerfile's SERVICES, docker-compose.yml, Prometheus' targets and
/// k8s/base, so a new service cannot be forgotten in one of them.
pub fn kino_services(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("services"))
        .expect("services/ exists")
        .flatten()
        .filter(|entry| entry.path().join("src/main.rs").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Parses every YAML document in `text` into JSON values (empty documents skipped).
pub fn yaml_documents(text: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    use serde::Deserialize as _;
    let mut docs = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = serde_json::Value::deserialize(document)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// One YAML document (a file holding exactly one).
pub fn yaml(text: &str) -> anyhow::Result<serde_json::Value> {
    Ok(serde_yaml_ng::from_str(text)?)
}

/// A fresh scratch directory for one check (left in the temp dir for inspection).
pub fn scratch_dir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "kino-deployment-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// The port of a `host:port` or `scheme://host:port/path` address.
pub fn port_of(address: &str) -> Option<u16> {
    let rest = address.split_once("://").map_or(address, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    authority.rsplit_once(':')?.1.parse().ok()
}

/// The host of a `host:port` or `scheme://host:port/path` address.
pub fn host_of(address: &str) -> Option<&str> {
    let rest = address.split_once("://").map_or(address, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    Some(
        authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(port_of("http://auth:8081/user/token_verify"), Some(8081));
        assert_eq!(port_of("0.0.0.0:8083"), Some(8083));
        assert_eq!(port_of("http://auth/x"), None);
        assert_eq!(
            host_of("http://auth.kino.svc.cluster.local:8081/x"),
            Some("auth.kino.svc.cluster.local")
        );
        assert_eq!(host_of("media:8082"), Some("media"));
    }

    #[test]
    fn every_service_directory_counts() {
        let services = kino_services(&repo_root());
        for name in ["auth", "media", "video", "transcoder", "ranker"] {
            assert!(services.contains(&name.to_owned()), "{services:?}");
        }
    }
}
