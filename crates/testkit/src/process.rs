//! A service binary run as a child process (for what only a real process shows: signals,
//! exit codes). It is told to listen on port 0 and the address is read from its JSON log,
//! or on a fixed address, so a restarted process is found where its clients (a gateway,
//! another service) already look.

use std::{net::SocketAddr, process::Stdio, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

pub struct ServiceProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl ServiceProcess {
    /// Starts `binary` with `env` (plus `BIND_ADDR=127.0.0.1:0`) and waits for its
    /// "listening" log line.
    pub async fn start(binary: &str, env: &[(&str, String)]) -> Self {
        Self::start_on(binary, env, "127.0.0.1:0").await
    }

    /// Starts `binary` with `env` listening on `bind` (`BIND_ADDR`) and waits for its
    /// "listening" log line. A gRPC port (`GRPC_BIND_ADDR`), if the service has one, is any
    /// free port unless `env` says otherwise.
    pub async fn start_on(binary: &str, env: &[(&str, String)], bind: &str) -> Self {
        let mut child = Command::new(binary)
            .env("GRPC_BIND_ADDR", "127.0.0.1:0")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("BIND_ADDR", bind)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {binary}: {e}"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let Ok(log) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if log["message"] != "listening" {
                    continue;
                }
                if let Some(addr) = log["addr"].as_str() {
                    return addr.parse().unwrap();
                }
                let (ip, port) = (
                    log["address"].as_str().unwrap(),
                    log["port"].as_u64().unwrap(),
                );
                return SocketAddr::new(ip.parse().unwrap(), port as u16);
            }
            panic!("{binary} exited before listening");
        })
        .await
        .unwrap_or_else(|_| panic!("{binary} did not log 'listening' within 30 s"));
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, addr }
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("child is running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-s", signal, &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -s {signal} {pid}");
    }
}
