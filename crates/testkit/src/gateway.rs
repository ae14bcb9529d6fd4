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
    ///
    /// Caddy takes a port number, not a listener, so the port is free when chosen and may
    /// be taken before Caddy binds it: by any listener bound to port 0 meanwhile (every
    /// test's services bind so), since the kernel hands out the same range. Caddy then
    /// exits, while a connect to the port still succeeds, to the stranger, whose answers
    /// (a 404 for every gateway path) fail the test far from the cause. So the gateway is
    /// only handed out once the listening socket is Caddy's own, and a Caddy that lost
    /// the race is started again on another port.
    pub async fn start(upstreams: Upstreams) -> Self {
        for _ in 0..5 {
            if let Some(gateway) = Self::try_start(&upstreams).await {
                return gateway;
            }
        }
        panic!("caddy lost its port to another listener five times in a row");
    }

    /// One attempt: `None` when Caddy could not listen on the port it was given.
    async fn try_start(upstreams: &Upstreams) -> Option<Self> {
        let port = crate::free_port();
        let upstream = |address: &Option<String>| {
            // The discard port: nothing listens there.
            address.clone().unwrap_or_else(|| "127.0.0.1:9".to_owned())
        };
        let mut child = Command::new(caddy())
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(caddyfile())
            .env("KINO_GATEWAY_PORT", port.to_string())
            .env("KINO_AUTH_UPSTREAM", upstream(&upstreams.auth))
            .env("KINO_MEDIA_UPSTREAM", upstream(&upstreams.media))
            .env("KINO_VIDEO_UPSTREAM", upstream(&upstreams.video))
            .env("KINO_WEBHOOKS_UPSTREAM", upstream(&upstreams.webhooks))
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
        let pid = child.id().expect("a running child has a pid");
        for _ in 0..200 {
            if listens(pid, port) {
                return Some(Self {
                    base: format!("http://127.0.0.1:{port}"),
                    _child: child,
                });
            }
            if let Ok(Some(_)) = child.try_wait() {
                // Most likely the port was taken (Caddy's log is not kept); the next
                // attempt tells a lost race from a Caddy that cannot start at all.
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("caddy did not listen on {port} within 10 s");
    }
}

/// Whether process `pid` holds a listening TCP socket on `port` (IPv4 or IPv6): the
/// kernel's socket tables (/proc/net/tcp*) give the listening sockets' inodes, and the
/// process's descriptors (/proc/PID/fd) link to the sockets it holds.
fn listens(pid: u32, port: u16) -> bool {
    const LISTEN: &str = "0A";
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
                    let columns: Vec<&str> = line.split_whitespace().collect();
                    let local_port = columns.get(1)?.rsplit(':').next()?;
                    let listening = u16::from_str_radix(local_port, 16).ok()? == port
                        && *columns.get(3)? == LISTEN;
                    if !listening {
                        return None;
                    }
                    Some(format!("socket:[{}]", columns.get(9)?))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    if inodes.is_empty() {
        return false;
    }
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| {
            inodes
                .iter()
                .any(|inode| target.as_os_str() == inode.as_str())
        })
}
