//! Redis, one server or a cluster, behind one connection type: [`Redis`].
//!
//! `REDIS_URL` names one server (`redis://host:6379`), the default, or a Redis Cluster:
//! several seed nodes separated by commas (`redis://a:7000,redis://b:7000`), or a single
//! seed with `REDIS_CLUSTER=true` (a Kubernetes Service in front of the cluster). Both
//! kinds connect lazily and reconnect by themselves, so a service starts without Redis and
//! recovers when it comes back, without a restart.
//!
//! What a cluster asks of the callers (and what Kino's keys do about it):
//! * every key one script or one pipeline touches shares a hash slot: keys carry a hash
//!   tag (`{…}`), e.g. the ranker's per-window state `{trending.day}` and the rate
//!   limiter's `{rl:action:subject}`. Plain multi-key commands (MGET, DEL, KEYS) are split
//!   per slot by the client, so they need none;
//! * pub/sub is sharded ([`Redis::publish_command`]): `SPUBLISH` reaches only the shard
//!   that owns the channel's slot, where the subscribers `SSUBSCRIBE`d, instead of
//!   crossing every node as `PUBLISH` does.

use std::{sync::OnceLock, time::Duration};

pub use redis::aio::ConnectionManager;
use redis::{
    Cmd, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisFuture, RedisResult, Value,
    aio::{ConnectionLike, ConnectionManagerConfig},
    cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig},
    cluster_async::ClusterConnection,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where Redis is, parsed from `REDIS_URL` (and `REDIS_CLUSTER`).
#[derive(Debug, Clone)]
pub enum Target {
    Server(ConnectionInfo),
    /// Seed nodes: the client learns the rest of the cluster from them.
    Cluster(Vec<ConnectionInfo>),
}

impl Target {
    /// A comma-separated list is a cluster's seed nodes; one URL is a server unless
    /// `cluster` says it is a cluster's seed.
    pub fn parse(url: &str, cluster: bool) -> RedisResult<Self> {
        let nodes = url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(IntoConnectionInfo::into_connection_info)
            .collect::<RedisResult<Vec<_>>>()?;
        match nodes.len() {
            0 => Err((redis::ErrorKind::InvalidClientConfig, "REDIS_URL is empty").into()),
            1 if !cluster => Ok(Self::Server(nodes.into_iter().next().unwrap())),
            _ => Ok(Self::Cluster(nodes)),
        }
    }

    /// `url` as the services read it: `REDIS_CLUSTER=true` (read once) marks a single URL
    /// as a cluster's seed.
    pub fn from_url(url: &str) -> RedisResult<Self> {
        static CLUSTER: OnceLock<bool> = OnceLock::new();
        let cluster = *CLUSTER.get_or_init(|| {
            std::env::var("REDIS_CLUSTER")
                .is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes" | "on"))
        });
        Self::parse(url, cluster)
    }

    /// A cluster client for these seeds (the one place its settings are chosen).
    /// `resp3` is for push messages (sharded pub/sub).
    pub fn cluster_client(
        nodes: &[ConnectionInfo],
        resp3: bool,
    ) -> RedisResult<ClusterClientBuilder> {
        let mut builder = ClusterClient::builder(nodes.to_vec())
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            // A failover takes a few seconds (the cluster's node timeout plus an
            // election): commands are retried across it, with waits up to a second.
            .retries(8)
            .min_retry_wait(50)
            .max_retry_wait(1000);
        if resp3 {
            builder = builder.use_protocol(redis::ProtocolVersion::RESP3);
        }
        Ok(builder)
    }
}

/// A multiplexed connection shared by the whole service. Cheap to clone. Commands,
/// pipelines and scripts go through it the same way on a server and on a cluster (it is a
/// [`ConnectionLike`]).
#[derive(Clone)]
pub enum Redis {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Redis {
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// The command that publishes to the subscribers of the pub/sub layout in use:
    /// `PUBLISH` on a server, sharded `SPUBLISH` on a cluster.
    pub fn publish_command(&self) -> &'static str {
        if self.is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    /// Every key matching `pattern`, on every primary of a cluster. Scans a keyspace, so
    /// it is for tests and maintenance, not request paths.
    pub async fn keys(&self, pattern: &str) -> RedisResult<Vec<String>> {
        let mut conn = self.clone();
        if self.is_cluster() {
            // KEYS is sent to every primary and the answers combined.
            return redis::cmd("KEYS").arg(pattern).query_async(&mut conn).await;
        }
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        loop {
            let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            out.extend(page);
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
    }
}

/// Whether `e` says Redis (or one shard of it) cannot answer right now, as opposed to a
/// command being wrong: the connection failed, timed out or dropped, the server is still
/// loading its data, or a cluster is moving a slot or failing over (MOVED/ASK past the
/// client's retries, TRYAGAIN, CLUSTERDOWN, MASTERDOWN, a write reaching a replica). APIs
/// answer these as "unavailable, retry", not as an internal error.
pub fn is_unavailable(e: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind as S};
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    S::BusyLoading
                        | S::Moved
                        | S::Ask
                        | S::TryAgain
                        | S::ClusterDown
                        | S::MasterDown
                        | S::ReadOnly
                )
        )
}

/// Connects (lazily) to what `url` names: see [`Target::from_url`].
pub fn connect(url: &str) -> RedisResult<Redis> {
    connect_to(Target::from_url(url)?)
}

/// Connects (lazily) to `target`.
pub fn connect_to(target: Target) -> RedisResult<Redis> {
    match target {
        Target::Server(info) => {
            let client = redis::Client::open(info)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_secs(1));
            Ok(Redis::Server(ConnectionManager::new_lazy_with_config(
                client, config,
            )?))
        }
        Target::Cluster(nodes) => {
            let client = Target::cluster_client(&nodes, false)?.build()?;
            let config = ClusterConfig::new()
                .set_connection_timeout(CONNECT_TIMEOUT)
                .set_response_timeout(RESPONSE_TIMEOUT);
            Ok(Redis::Cluster(
                client.get_pending_async_connection_with_config(config),
            ))
        }
    }
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Server(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Server(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Server(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

impl crate::health::Check for Redis {
    /// A PING round trip (to every primary of a cluster).
    async fn check(&self) -> Result<(), String> {
        let mut conn = self.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_a_cluster_and_one_url_a_server() {
        assert!(matches!(
            Target::parse("redis://127.0.0.1:6379", false).unwrap(),
            Target::Server(_)
        ));
        assert!(matches!(
            Target::parse("redis://127.0.0.1:6379", true).unwrap(),
            Target::Cluster(n) if n.len() == 1
        ));
        assert!(matches!(
            Target::parse("redis://a:7000, redis://b:7001,", false).unwrap(),
            Target::Cluster(n) if n.len() == 2
        ));
        assert!(Target::parse(" , ", false).is_err());
        assert!(Target::parse("http://nope", false).is_err());
    }

    #[test]
    fn an_outage_or_a_failover_is_unavailable_and_a_wrong_command_is_not() {
        use redis::{ErrorKind, RedisError, ServerErrorKind as S};
        let io = |kind| RedisError::from(std::io::Error::from(kind));
        assert!(is_unavailable(&io(std::io::ErrorKind::ConnectionRefused)));
        assert!(is_unavailable(&io(std::io::ErrorKind::ConnectionReset)));
        assert!(is_unavailable(&io(std::io::ErrorKind::TimedOut)));
        for kind in [
            S::ClusterDown,
            S::TryAgain,
            S::MasterDown,
            S::BusyLoading,
            S::ReadOnly,
        ] {
            let e = RedisError::from((ErrorKind::Server(kind), "from the server"));
            assert!(is_unavailable(&e), "{kind:?}");
        }
        for kind in [S::ResponseError, S::NoScript, S::CrossSlot, S::ExecAbort] {
            let e = RedisError::from((ErrorKind::Server(kind), "from the server"));
            assert!(!is_unavailable(&e), "{kind:?}");
        }
        let parse = RedisError::from((ErrorKind::UnexpectedReturnType, "a bad reply"));
        assert!(!is_unavailable(&parse));
    }
}
