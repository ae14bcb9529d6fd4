//! `deploy/local/up` as a developer runs it, started by a test: every service as a process
//! (the workspace's debug binaries, `KINO_BIN_DIR`) and the gateway, on the test's own
//! ports and stores (`KINO_PORT_BASE`, `KINO_DATABASE_PREFIX`, the [`TestEnv`]'s queue,
//! Redis, MongoDB and S3 names), so it runs beside the suite and beside a platform already
//! up. Used by the `local_up` tests (signals) and the `web` tests (the browser app).

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use testkit::TestEnv;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The databases `up` uses, named `<the test's database>_<name>` by [`TestEnv`].
pub const DATABASES: &[&str] = &["auth", "media", "video", "recommender", "webhooks"];

pub struct LocalUp {
    child: tokio::process::Child,
    /// The gateway's port; the seven services listen on the next seven.
    pub base: u16,
    /// `KINO_STATE_DIR` of this run (logs, pid files), removed on drop.
    pub state: PathBuf,
}

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `<target>/<profile>`: tests run from its `deps/`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_owned()
}

/// A port base for `up` with `replicas` of each service: eight consecutive free ports (the
/// gateway's, then the seven services'), and base+1001 and base+1006 (auth's and the
/// recommender's gRPC) free too; with two replicas, the second's (each + 100, gRPC + 200)
/// as well. All below Linux's ephemeral range (32768 and up by default), where the rest of
/// the suite's listeners on port 0 and its outgoing connections land: a base picked there
/// was sometimes taken by another test between this check and `up` binding it.
fn free_ports(replicas: u16) -> u16 {
    let free = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
    let all_free = |base: u16| {
        (0..replicas).all(|r| {
            (base + 100 * r + u16::from(r > 0)..base + 100 * r + 8).all(free)
                && free(base + 1001 + 100 * (r + u16::from(replicas > 1)))
                && free(base + 1006 + 100 * (r + u16::from(replicas > 1)))
        }) && free(base + 1001)
            && free(base + 1006)
    };
    (0..200)
        .map(|_| 20_000 + (uuid::Uuid::now_v7().as_u128() % 11_500) as u16)
        .find(|base| all_free(*base))
        .expect("free ports for every replica")
}

impl LocalUp {
    /// Runs `deploy/local/up` until it prints that Kino is up (180 s at most). `web_root` is
    /// the app the gateway serves (`KINO_WEB_ROOT`); tests always pass one, so `up` never
    /// builds web/ itself while other tests read it (deploy/local/test builds it first).
    pub async fn start(env: &TestEnv, web_root: &Path) -> Self {
        Self::start_with(env, web_root, false).await
    }

    /// `deploy/local/up --cluster`: every service twice, on the local Redis Cluster and
    /// RabbitMQ cluster (replica 2 on the ports + 100; see [`LocalUp::pid`]).
    pub async fn start_cluster(env: &TestEnv, web_root: &Path) -> Self {
        Self::start_with(env, web_root, true).await
    }

    async fn start_with(env: &TestEnv, web_root: &Path, cluster: bool) -> Self {
        let database = env.database_url.rsplit('/').next().unwrap().to_owned();
        let base = free_ports(if cluster { 2 } else { 1 });
        let state = std::env::temp_dir().join(format!("kino-up-{}", env.id));
        let mut command = tokio::process::Command::new("bash");
        command.arg(repo_root().join("deploy/local/up"));
        if cluster {
            command.arg("--cluster");
        }
        let mut child = command
            .env_remove("KINO_GATEWAY_PORT")
            .env("KINO_PORT_BASE", base.to_string())
            .env("KINO_DATABASE_PREFIX", format!("{database}_"))
            .env("KINO_BIN_DIR", bin_dir())
            .env("KINO_STATE_DIR", &state)
            .env("KINO_WEB_ROOT", web_root)
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
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
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
        // Keep reading, so `up` never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, base, state }
    }

    /// The pid of a process `up` started (`auth`, `media-2`, `gateway`...), from its pid
    /// file.
    pub fn pid(&self, name: &str) -> u32 {
        let file = self.state.join("run").join(format!("{name}.pid"));
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .parse()
            .unwrap()
    }

    /// The gateway's URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.base)
    }

    /// Sends `signal` (a name such as `TERM`) to `up` and waits (90 s at most) for it to end.
    pub async fn stop_with(&mut self, signal: &str) -> ExitStatus {
        let pid = self.child.id().expect("up still running").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-s", signal, &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(90), self.child.wait())
            .await
            .expect("up exits within 90 s of the signal")
            .unwrap()
    }
}

impl Drop for LocalUp {
    fn drop(&mut self) {
        // A test that failed half-way still stops what `up` started: SIGTERM is its clean
        // exit (the child is killed on drop only after that, if it is still there).
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-s", "TERM", &pid.to_string()])
                .status();
            for _ in 0..100 {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        std::fs::remove_dir_all(&self.state).ok();
    }
}
