//! The transactional outbox.
//!
//! A service that must publish an event *because* of a database write inserts the event
//! into its `outbox` table in the same transaction as the write ([`enqueue`], or
//! [`enqueue_to`] for a message whose [`Route`] is not its type's own, such as work for a
//! queue). Either both
//! commit or neither does. The [`Relay`] then publishes outbox rows with publisher confirms
//! and deletes each row only after the broker confirmed it. A crash between publish and
//! delete re-publishes the same event (same id) later: delivery is at-least-once, and
//! consumers drop duplicates by event id.
//!
//! The table (each service's migrations create it):
//! `outbox (id uuid PK, exchange text, routing_key text, payload jsonb, created_at, attempts, last_error)`.

use std::{sync::Arc, time::Duration};

use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;

use crate::{Envelope, Event, Namespace, Publisher, Route};

/// Adds `envelope` to the outbox inside the caller's transaction, for its type's own
/// exchange under `namespace`'s routing key ([`Namespace::route`]).
pub async fn enqueue<T: Event>(
    conn: &mut PgConnection,
    namespace: &Namespace,
    envelope: &Envelope<T>,
) -> Result<(), sqlx::Error> {
    enqueue_to(conn, &namespace.route::<T>(), envelope).await
}

/// Adds `envelope` to the outbox inside the caller's transaction, to be published on
/// `route` (a prefixed routing key, or a queue through the default exchange). The row's
/// id is the event's, so the relay publishes it under that id however often it retries.
pub async fn enqueue_to<T: Serialize>(
    conn: &mut PgConnection,
    route: &Route,
    envelope: &Envelope<T>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO outbox (id, exchange, routing_key, payload) VALUES ($1, $2, $3, $4)")
        .bind(envelope.id)
        .bind(&route.exchange)
        .bind(&route.routing_key)
        .bind(sqlx::types::Json(envelope))
        .execute(conn)
        .await?;
    Ok(())
}

/// Publishes outbox rows in creation order. Wake it with [`Relay::notify`] after a commit
/// for low latency; it also polls, so rows left by a crash or another replica go out too.
#[derive(Clone)]
pub struct Relay {
    wake: Arc<Notify>,
}

impl Relay {
    /// Starts the relay task; it stops on shutdown.
    pub fn spawn(pool: PgPool, publisher: Arc<Publisher>, shutdown: &platform::Shutdown) -> Self {
        let wake = Arc::new(Notify::new());
        let relay = Self { wake: wake.clone() };
        let shutdown = shutdown.triggered();
        tokio::spawn(async move {
            tokio::pin!(shutdown);
            loop {
                let published = match publish_batch(&pool, &publisher).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = %e, "outbox relay: will retry");
                        0
                    }
                };
                if published > 0 {
                    continue; // there may be more
                }
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = &mut shutdown => return,
                }
            }
        });
        relay
    }

    pub fn notify(&self) {
        self.wake.notify_one();
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: uuid::Uuid,
    exchange: String,
    routing_key: String,
    payload: sqlx::types::Json<serde_json::Value>,
}

/// Publishes up to 100 rows. `FOR UPDATE SKIP LOCKED` lets several replicas relay the same
/// table without publishing a row twice at the same time.
async fn publish_batch(pool: &PgPool, publisher: &Publisher) -> Result<usize, crate::Error> {
    let mut tx = pool.begin().await.map_err(crate::Error::Outbox)?;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, exchange, routing_key, payload FROM outbox
         ORDER BY created_at, id LIMIT 100 FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(crate::Error::Outbox)?;
    let mut published = 0;
    for row in &rows {
        let payload = serde_json::to_vec(&row.payload.0)?;
        if let Err(e) = publisher
            .publish_raw(
                &row.exchange,
                &row.routing_key,
                &row.id.to_string(),
                &payload,
            )
            .await
        {
            sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1")
                .bind(row.id)
                .bind(e.to_string())
                .execute(&mut *tx)
                .await
                .map_err(crate::Error::Outbox)?;
            tx.commit().await.map_err(crate::Error::Outbox)?;
            return Err(e);
        }
        sqlx::query("DELETE FROM outbox WHERE id = $1")
            .bind(row.id)
            .execute(&mut *tx)
            .await
            .map_err(crate::Error::Outbox)?;
        published += 1;
    }
    tx.commit().await.map_err(crate::Error::Outbox)?;
    Ok(published)
}
