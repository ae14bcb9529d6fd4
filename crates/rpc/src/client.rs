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
    balanced_with(url, RESOLVE_INTERVAL, |host, port| async move {
        Ok(tokio::net::lookup_host((host.as_str(), port))
            .await?
            .collect())
    })
}

/// [`balanced_channel`] with the resolver and its interval given (tests use their own).
fn balanced_with<R, Fut>(url: &str, every: Duration, resolve: R) -> anyhow::Result<Channel>
where
    R: Fn(String, u16) -> Fut + Send + 'static,
    Fut: Future<Output = std::io::Result<HashSet<SocketAddr>>> + Send,
{
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
            match resolve(host.clone(), port).await {
                Ok(found) => {
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
                () = tokio::time::sleep(every) => {}
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
        .initial_connection_window_size(crate::server::CONNECTION_WINDOW)
        .initial_stream_window_size(crate::server::STREAM_WINDOW)
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
    let late = || {
        Status::deadline_exceeded(format!(
            "{service}/{method}: no answer within {:?}",
            policy.deadline
        ))
    };
    let result = match tokio::time::timeout(policy.deadline, retried).await {
        // tonic ends a request at its own `grpc-timeout` too, as CANCELLED; past the
        // deadline that is this deadline's doing.
        Ok(Err(status)) if status.code() == Code::Cancelled && Instant::now() >= deadline => {
            Err(late())
        }
        Ok(result) => result.map(tonic::Response::into_inner),
        Err(_) => Err(late()),
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tonic_health::{
        ServingStatus,
        pb::{
            HealthCheckRequest, health_check_response::ServingStatus as Answer,
            health_client::HealthClient,
        },
    };

    use super::*;

    /// A gRPC server on loopback whose health service answers `who` with `status`: two of
    /// them tell apart which one a call reached.
    async fn server(status: ServingStatus) -> SocketAddr {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_service_status("who", status).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _reporter = reporter; // dropping it would end the health service's watch
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
        });
        addr
    }

    async fn who(channel: &Channel, calls: usize) -> (usize, usize) {
        let (mut a, mut b) = (0, 0);
        for _ in 0..calls {
            let request = HealthCheckRequest {
                service: "who".into(),
            };
            let answer = HealthClient::new(channel.clone())
                .check(request)
                .await
                .unwrap();
            match answer.into_inner().status() {
                Answer::Serving => a += 1,
                _ => b += 1,
            }
        }
        (a, b)
    }

    #[tokio::test]
    async fn calls_spread_over_every_address_and_follow_the_name_as_it_changes() {
        let a = server(ServingStatus::Serving).await;
        let b = server(ServingStatus::NotServing).await;
        // The name's addresses, as a headless Service's DNS would give them.
        let addresses = Arc::new(Mutex::new(HashSet::from([a, b])));
        let resolved = addresses.clone();
        let channel = balanced_with(
            "http://replicas:1",
            Duration::from_millis(50),
            move |host, port| {
                assert_eq!((host.as_str(), port), ("replicas", 1));
                let found = resolved.lock().unwrap().clone();
                async move { Ok(found) }
            },
        )
        .unwrap();

        let (to_a, to_b) = who(&channel, 200).await;
        assert!(
            to_a >= 40 && to_b >= 40,
            "200 calls: {to_a} to a, {to_b} to b"
        );

        // A replica goes away: after the next resolution, every call reaches the other.
        *addresses.lock().unwrap() = HashSet::from([b]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(who(&channel, 50).await, (0, 50));

        // And comes back.
        *addresses.lock().unwrap() = HashSet::from([a, b]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (to_a, _) = who(&channel, 100).await;
        assert!(to_a >= 10, "a is back: {to_a} of 100");
    }

    #[tokio::test]
    async fn unavailable_is_retried_within_the_deadline_and_the_deadline_holds() {
        // Nothing listens here: every attempt is UNAVAILABLE at once.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let channel = balanced_channel(&format!("http://{closed}")).unwrap();
        let policy = CallPolicy {
            deadline: Duration::from_secs(2),
            retries: 2,
        };
        let attempts = std::sync::atomic::AtomicUsize::new(0);
        let refused = |idempotent| {
            let channel = channel.clone();
            let attempts = &attempts;
            async move {
                call("test", "Check", policy, idempotent, |left| {
                    attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let mut client = HealthClient::new(channel.clone());
                    let request = request(HealthCheckRequest::default(), left);
                    async move { client.check(request).await }
                })
                .await
            }
        };
        let status = refused(true).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status}");
        assert_eq!(attempts.swap(0, std::sync::atomic::Ordering::SeqCst), 3);
        let status = refused(false).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status}");
        assert_eq!(
            attempts.swap(0, std::sync::atomic::Ordering::SeqCst),
            1,
            "no retry"
        );

        // A server that never answers: the deadline ends the call, retries or not.
        let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = hole.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = hole.accept().await {
                held.push(socket);
            }
        });
        let channel = balanced_channel(&format!("http://{addr}")).unwrap();
        let policy = CallPolicy {
            deadline: Duration::from_millis(200),
            retries: 2,
        };
        let started = Instant::now();
        let status = call("test", "Check", policy, true, |left| {
            let mut client = HealthClient::new(channel.clone());
            let request = request(HealthCheckRequest::default(), left);
            async move { client.check(request).await }
        })
        .await
        .unwrap_err();
        let took = started.elapsed();
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
        assert!(
            took >= Duration::from_millis(190) && took < Duration::from_millis(600),
            "{took:?}"
        );
    }
}
