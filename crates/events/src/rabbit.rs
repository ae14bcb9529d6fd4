//! A RabbitMQ connection that is made on first use and remade after it breaks.
//!
//! lapin's connection does not reconnect by itself once its socket dies. [`Rabbit`] keeps the
//! current connection and replaces it when it is no longer connected, declaring the topology
//! on every new connection. Channels are cheap; callers take a fresh one per consumer or
//! publisher and take another after an error.
//!
//! `AMQP_URL` may name several nodes of one cluster, comma-separated. A new connection
//! goes to the node after the one that failed, trying each once before giving up, so when
//! a node is lost its clients move to the others (quorum queues keep their messages there:
//! crate::queue).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;

use crate::{Error, topology};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Rabbit {
    /// One URL per node.
    urls: Vec<String>,
    /// The node to try first next time.
    next: AtomicUsize,
    name: String,
    current: Mutex<Option<Arc<Connection>>>,
}

impl Rabbit {
    /// Does not connect: the first [`Rabbit::channel`] or [`Rabbit::check`] does. `url`
    /// is one AMQP URL or several, comma-separated (the nodes of a cluster).
    pub fn new(url: impl Into<String>, name: impl Into<String>) -> Arc<Self> {
        let urls = url
            .into()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        Arc::new(Self {
            urls,
            next: AtomicUsize::new(0),
            name: name.into(),
            current: Mutex::new(None),
        })
    }

    /// The live connection, reconnecting if needed.
    pub async fn connection(&self) -> Result<Arc<Connection>, Error> {
        let mut current = self.current.lock().await;
        if let Some(conn) = current.as_ref() {
            if conn.status().connected() {
                return Ok(conn.clone());
            }
            tracing::warn!("RabbitMQ connection lost; reconnecting");
        }
        let conn = self.connect_any().await?;
        let channel = conn.create_channel().await?;
        topology::declare(&channel).await?;
        channel.close(200, "topology declared".into()).await.ok();
        tracing::info!("connected to RabbitMQ");
        let conn = Arc::new(conn);
        *current = Some(conn.clone());
        Ok(conn)
    }

    /// Connects to the first node that answers, starting after the last one that failed.
    async fn connect_any(&self) -> Result<Connection, Error> {
        let first = self.next.load(Ordering::Relaxed);
        let mut last_error = None;
        for i in 0..self.urls.len().max(1) {
            let node = (first + i) % self.urls.len().max(1);
            let url = self.urls.get(node).map_or("", String::as_str);
            let props =
                ConnectionProperties::default().with_connection_name(self.name.clone().into());
            let connected = tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(url, props))
                .await
                .map_err(|_| Error::Timeout(CONNECT_TIMEOUT))
                .and_then(|c| c.map_err(Error::from));
            match connected {
                Ok(conn) => {
                    // Next time (this one broke), start with the node after it.
                    self.next.store(node + 1, Ordering::Relaxed);
                    return Ok(conn);
                }
                Err(e) => {
                    if self.urls.len() > 1 {
                        tracing::warn!(node, error = %e, "RabbitMQ node unreachable; trying the next");
                    }
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// A new channel on the live connection.
    pub async fn channel(&self) -> Result<Channel, Error> {
        Ok(self.connection().await?.create_channel().await?)
    }

    /// Closes the connection (graceful shutdown). Gives up after [`CLOSE_TIMEOUT`]: lapin
    /// can wait forever for the broker's close-ok when one of the connection's channels was
    /// itself closing (seen here: a ranker that never exited on SIGTERM), and a process
    /// that is stopping must stop; the broker notices the dropped socket either way.
    pub async fn close(&self) {
        let Ok(mut current) = tokio::time::timeout(CLOSE_TIMEOUT, self.current.lock()).await else {
            tracing::warn!("RabbitMQ connection busy; not closed gracefully");
            return;
        };
        if let Some(conn) = current.take() {
            let closed = conn.close(200, "shutting down".into());
            if tokio::time::timeout(CLOSE_TIMEOUT, closed).await.is_err() {
                tracing::warn!("RabbitMQ did not confirm the close; dropping the connection");
            }
        }
    }
}

/// Readiness: connected, or able to connect now.
impl platform::health::Check for Rabbit {
    async fn check(&self) -> Result<(), String> {
        self.connection().await.map(drop).map_err(|e| e.to_string())
    }
}
