//! `deploy/local/up` as a developer runs it: it starts every service and the gateway,
//! serves the platform, and Ctrl-C (SIGINT) or SIGTERM stops everything it started and
//! exits 0.
//!
//! The script runs on its own ports and stores (`KINO_PORT_BASE`, `KINO_DATABASE_PREFIX`,
//! the test's queue, Redis, MongoDB and S3 names) with the workspace's debug binaries
//! (`KINO_BIN_DIR`, next to this test's executable), so it runs beside the suite and beside
//! a platform already up.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde_json::json;
use testkit::TestEnv;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Seven consecutive free ports (the gateway's, then the six services').
fn free_ports() -> u16 {
    (0..200)
        .map(|_| 20_000 + (uuid::Uuid::now_v7().as_u128() % 40_000) as u16)
        .find(|base| (*base..base + 7).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()))
        .expect("seven consecutive free ports")
}

fn open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// `<target>/<profile>`: this test runs from its `deps/`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_owned()
}

async fn stops_with_exit_0_on(signal: &str) {
    let env = TestEnv::with_databases("up", &["auth", "media", "video", "recommender"]);
    // TestEnv names the databases `<its database>_<suffix>` and drops them at the end.
    let database = env.database_url.rsplit('/').next().unwrap().to_owned();
    let base = free_ports();
    let state = std::env::temp_dir().join(format!("kino-up-{}", env.id));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut up = tokio::process::Command::new("bash")
        .arg(root.join("deploy/local/up"))
        .env_remove("KINO_GATEWAY_PORT")
        .env("KINO_PORT_BASE", base.to_string())
        .env("KINO_DATABASE_PREFIX", format!("{database}_"))
        .env("KINO_BIN_DIR", bin_dir())
        .env("KINO_STATE_DIR", &state)
        .env("QUEUE_PREFIX", &env.queue_prefix)
        .env("REDIS_PREFIX", &env.redis_prefix)
        .env("MONGODB_DATABASE", &env.mongodb_database)
        .env("S3_BUCKET", &env.s3.bucket)
        .env("TRANSCODE_WORK_DIR", state.join("transcode"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(up.stdout.take().unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(180), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("Kino is up") {
                return;
            }
        }
        panic!("up exited before the platform was up");
    })
    .await
    .expect("up within 180 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    // The platform answers through the gateway, on this stack's stores.
    let gateway = format!("http://127.0.0.1:{base}");
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

    let pid = up.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-s", signal, &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(90), up.wait())
        .await
        .expect("up exits within 90 s of the signal")
        .unwrap();
    assert_eq!(status.code(), Some(0), "up after SIG{signal}");
    let still_open: Vec<u16> = (base..base + 7).filter(|port| open(*port)).collect();
    assert!(
        still_open.is_empty(),
        "ports still served after up ended: {still_open:?}"
    );
    std::fs::remove_dir_all(&state).ok();
}

#[tokio::test]
async fn ctrl_c_stops_everything_up_started_and_exits_0() {
    stops_with_exit_0_on("INT").await;
}

#[tokio::test]
async fn sigterm_stops_everything_up_started_and_exits_0() {
    stops_with_exit_0_on("TERM").await;
}
