//! Calling another service's gRPC API.
//!
//! * [`balanced_channel`]: one channel over every address the upstream's name resolves to,
//!   re-resolved every [`RESOLVE_INTERVAL`]. gRPC keeps one long-lived HTTP/2 connection per
//!   address and multiplexes calls on it, so a plain Kubernetes Service (one virtual IP)
//!   would pin every call of a media replica to whichever upstream replica it connected to
//!   first. Pointed at a headless Service, whose name resolves to every ready pod, calls
//!   are spread over all of them (power of two choices), and pods that come or go are
//!   picked up. Connections are reused for the life of the process.
//! * [`call`]: one call with a deadline (the whole call, retries included; passed on to
//!   the server as `grpc-timeout`) and, for calls that only read, bounded retries of
//!   UNAVAILABLE (a replica going away, a connection refused), with a short backoff.

use std::{
    collections::HashSet,
    future::Future,
    net::SocketAddr,
    time::{Duration, Instant},
};

use backon::{ExponentialBuilder, Retryable};
use http::Uri;
use tonic::{
    Code, Request, Status,
    transport::{Channel, Endpoint, channel::Change},
};

use crate::metrics;

/// How often an upstream's name is resolved again.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How calls to one upstream are made.
#[derive(Debug, Clone, Copy)]
pub struct CallPolicy {
    /// The most one call may take, retries included.
    pub deadline: Duration,
    /// Retries of an UNAVAILABLE answer, for calls that only read.
    pub retries: usize,
}

/// A channel balancing calls over every address of `url`'s host (see the module docs).
/// Must be called inside a Tokio runtime: a task keeps the addresses current for as long
/// as the channel (or a clone) lives. Calls made before the first resolution wait for it
/// (within their deadline).
pub fn balanced_channel(url: &str) -> anyhow::Result<Channel> {
    let uri: Uri = url
        .parse()
        .map_err(|e| anyhow::anyhow!("{url:?} is not a URL: {e}"))?;
    let host = uri
        .host()
        .ok_or_else(|| anyhow::anyhow!("{url:?} has no host"))?
        .trim_matches(|c| c == '[' || c == ']')
        .to_owned();
    let port = uri
        .port_u16()
        .ok_or_else(|| anyhow::anyhow!("{url:?} has no port"))?;
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(16);
    tokio::spawn(async move {
        let mut known = HashSet::new();
        loop {
            match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(found) => {
                    let found: HashSet<SocketAddr> = found.collect();
                    for gone in known.difference(&found) {
                        tracing::info!(upstream = %uri, addr = %gone, "gRPC upstream left");
                        if changes.send(Change::Remove(*gone)).await.is_err() {
                            return;
                        }
                    }
                    for new in found.difference(&known) {
                        tracing::info!(upstream = %uri, addr = %new, "gRPC upstream joined");
                        let endpoint = endpoint(&uri, *new);
                        if changes.send(Change::Insert(*new, endpoint)).await.is_err() {
                            return;
                        }
                    }
                    known = found;
                }
                // Keep the addresses known so far: a resolver hiccup is not an outage.
                Err(e) => {
                    tracing::warn!(upstream = %uri, error = %e, "cannot resolve gRPC upstream")
                }
            }
            tokio::select! {
                () = changes.closed() => return, // every clone of the channel is gone
                () = tokio::time::sleep(RESOLVE_INTERVAL) => {}
            }
        }
    });
    Ok(channel)
}

/// One connection's settings. The `:authority` stays the configured name (a mesh routes
/// and authorises by it), whichever address is dialled.
fn endpoint(uri: &Uri, addr: SocketAddr) -> Endpoint {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a socket address makes a valid URI")
        .origin(uri.clone())
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
}

/// Makes one call of `service`/`method` under `policy`: `attempt` is given the time left
/// and sends the request once (see [`request`]). Retries happen only when `idempotent`.
pub async fn call<T, F, Fut>(
    service: &'static str,
    method: &'static str,
    policy: CallPolicy,
    idempotent: bool,
    mut attempt: F,
) -> Result<T, Status>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, Status>>,
{
    let started = Instant::now();
    let deadline = started + policy.deadline;
    let retries = if idempotent { policy.retries } else { 0 };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(10))
        .with_max_delay(Duration::from_millis(100))
        .with_max_times(retries)
        .with_jitter();
    let once = || attempt(deadline.saturating_duration_since(Instant::now()));
    let retried = once
        .retry(backoff)
        .when(|status: &Status| status.code() == Code::Unavailable);
    let result = match tokio::time::timeout(policy.deadline, retried).await {
        Ok(result) => result.map(tonic::Response::into_inner),
        Err(_) => Err(Status::deadline_exceeded(format!(
            "{service}/{method}: no answer within {:?}",
            policy.deadline
        ))),
    };
    let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
    metrics::record_client(service, method, code, started.elapsed());
    result
}

/// A request carrying `message` and the time left (`grpc-timeout`), so the server gives
/// up when the caller has.
pub fn request<T>(message: T, time_left: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(time_left);
    request
}
