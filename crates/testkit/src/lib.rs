//! Helpers for Kino's tests. Tests talk to the real stores; this crate only gives each test
//! its own slice of them ([`TestEnv`]), a way to take one dependency away and bring it back
//! ([`Gate`]), and small conveniences for polling and for child processes.

pub mod cluster;
pub mod env;
pub mod gate;
pub mod gateway;
pub mod ops;
pub mod process;

use std::{future::Future, time::Duration};

pub use env::TestEnv;
pub use gate::Gate;

/// A TCP port on 127.0.0.1 that was free a moment ago, for a process that takes a port
/// number rather than a listener (Caddy, a service restarted on the same address). Another
/// process could take it in between; that shows up as a failed start.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// TCP ports on 127.0.0.1 below Linux's ephemeral range (32768 and up by default), free a
/// moment ago, for processes that must keep their ports across restarts (a service a test
/// kills and starts again). [`free_port`]'s ports come from the ephemeral range, where
/// every outgoing connection of the suite also takes its local port: one of those can
/// take a restarted service's port while it is down. Here only another test picking the
/// same number could, one chance in thousands.
pub fn stable_ports(n: usize) -> Vec<u16> {
    let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
    let mut ports = Vec::with_capacity(n);
    for _ in 0..n * 200 {
        if ports.len() == n {
            break;
        }
        let port = 20_000 + (rand_u64() % 11_500) as u16;
        if !ports.contains(&port) && free(port) {
            ports.push(port);
        }
    }
    assert_eq!(ports.len(), n, "free ports below the ephemeral range");
    ports
}

/// A random number, without a dependency for it: UUIDv4s are random.
fn rand_u64() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Replaces the `host:port` of a URL like `scheme://user:pw@host:port/path?query`.
pub fn with_authority(url: &str, authority: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("URL has a scheme");
    let (userinfo, hostpart) = match rest.split_once('@') {
        Some((user, host)) if !user.contains('/') => (format!("{user}@"), host),
        _ => (String::new(), rest),
    };
    let tail_at = hostpart.find(['/', '?']).unwrap_or(hostpart.len());
    format!("{scheme}://{userinfo}{authority}{}", &hostpart[tail_at..])
}

/// The `host:port` of a URL, with `default_port` when it has none.
pub fn authority(url: &str, default_port: u16) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest
        .split_once('@')
        .filter(|(u, _)| !u.contains('/'))
        .map_or(rest, |(_, h)| h);
    let host = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:{default_port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_authority("postgres://postgres@127.0.0.1:5432/db_1", "127.0.0.1:40000"),
            "postgres://postgres@127.0.0.1:40000/db_1"
        );
        assert_eq!(
            with_authority("mongodb://127.0.0.1:27017/?directConnection=true", "h:1"),
            "mongodb://h:1/?directConnection=true"
        );
        assert_eq!(with_authority("http://127.0.0.1:9000", "h:2"), "http://h:2");
        assert_eq!(
            authority("amqp://guest:guest@127.0.0.1:5672/%2f", 5672),
            "127.0.0.1:5672"
        );
        assert_eq!(authority("redis://localhost", 6379), "localhost:6379");
    }
}
