//! `deploy/local/up` as a developer runs it: it starts every service and the gateway,
//! serves the platform, and Ctrl-C (SIGINT) or SIGTERM stops everything it started and
//! exits 0.
//!
//! The script runs on its own ports and stores (`KINO_PORT_BASE`, `KINO_DATABASE_PREFIX`,
//! the test's queue, Redis, MongoDB and S3 names) with the workspace's debug binaries
//! (`KINO_BIN_DIR`, next to this test's executable), so it runs beside the suite and beside
//! a platform already up.

use std::{
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use e2e::local_up::{self, LocalUp};
use serde_json::json;
use testkit::TestEnv;

fn open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

async fn stops_with_exit_0_on(signal: &str) {
    let env = TestEnv::with_databases("up", local_up::DATABASES);
    // No web app: the gateway's default root, as when web/ was never built.
    let mut up = LocalUp::start(&env, std::path::Path::new("/nonexistent/kino-web")).await;
    let base = up.base;

    // The platform answers through the gateway, on this stack's stores.
    let gateway = up.url("");
    let client = reqwest::Client::new();
    for prefix in ["auth", "media", "video"] {
        let response = client
            .get(format!("{gateway}/{prefix}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{prefix}");
    }
    let registered = client
        .post(format!("{gateway}/auth/register"))
        .json(&json!({
            "username": "upper", "email": "upper@example.com", "password": "correct horse battery"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);

    let status = up.stop_with(signal).await;
    assert_eq!(status.code(), Some(0), "up after SIG{signal}");
    let still_open: Vec<u16> = (base..base + 8).filter(|port| open(*port)).collect();
    assert!(
        still_open.is_empty(),
        "ports still served after up ended: {still_open:?}"
    );
}

#[tokio::test]
async fn ctrl_c_stops_everything_up_started_and_exits_0() {
    stops_with_exit_0_on("INT").await;
}

#[tokio::test]
async fn sigterm_stops_everything_up_started_and_exits_0() {
    stops_with_exit_0_on("TERM").await;
}
