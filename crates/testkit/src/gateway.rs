//! The local gateway (Caddy with deploy/local/Caddyfile) in front of a test's services, so
//! end-to-end tests go through the same routing, header handling and ForwardAuth hop that
//! users of the local stack get.

use std::{path::PathBuf, process::Stdio, time::Duration};

use tokio::process::{Child, Command};

pub struct Gateway {
    pub base: String,
    _child: Child,
}

#[derive(Default)]
pub struct Upstreams {
    pub auth: Option<String>,
    pub media: Option<String>,
    pub video: Option<String>,
    pub webhooks: Option<String>,
}

fn caddy() -> PathBuf {
    std::env::var_os("KINO_CADDY")
        .map_or_else(|| "/var/tmp/kino/venv/bin/caddy".into(), PathBuf::from)
}

fn caddyfile() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local/Caddyfile")
}

impl Gateway {
    /// Starts Caddy routing to `upstreams` (`host:port` each) on a free port.
    pub async fn start(upstreams: Upstreams) -> Self {
        // Caddy takes a port number, not a listener.
        let port = crate::free_port();
        let unused = "127.0.0.1:9".to_owned(); // discard port: nothing listens there
        let mut child = Command::new(caddy())
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(caddyfile())
            .env("KINO_GATEWAY_PORT", port.to_string())
            .env(
                "KINO_AUTH_UPSTREAM",
                upstreams.auth.unwrap_or_else(|| unused.clone()),
            )
            .env(
                "KINO_MEDIA_UPSTREAM",
                upstreams.media.unwrap_or_else(|| unused.clone()),
            )
            .env(
                "KINO_VIDEO_UPSTREAM",
                upstreams.video.unwrap_or_else(|| unused.clone()),
            )
            .env(
                "KINO_WEBHOOKS_UPSTREAM",
                upstreams.webhooks.unwrap_or(unused),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "start caddy ({}): {e}; run deploy/local/deps",
                    caddy().display()
                )
            });
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self {
                    base,
                    _child: child,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("caddy exited at start: {status}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("caddy did not listen on {port} within 5 s");
    }
}
