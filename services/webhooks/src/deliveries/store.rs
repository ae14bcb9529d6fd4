//! The `deliveries` and `attempts` tables: what the dispatcher claims and records
//! (crate::delivery), and what an endpoint's owner reads and replays (the delivery log).
//!
//! A delivery is claimed by moving its `next_attempt_at` forward by a lease and counting
//! the attempt, in one statement that skips rows another replica holds (`FOR UPDATE SKIP
//! LOCKED`). If the process dies mid-attempt, the lease runs out and the delivery is
//! claimed again, by whichever replica is up: at-least-once, with the same `webhook-id`.

use std::time::Duration;

use events::{Envelope, Namespace, outbox, webhook::EndpointDisabled};
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// A delivery claimed for an attempt, with what sending it needs.
#[derive(Debug, Clone, FromRow)]
pub struct Claimed {
    pub id: i64,
    /// This attempt's number (1 for the first).
    pub attempt: i32,
    /// Attempts made before the last replay: the retry schedule counts from there.
    pub replay_base: i32,
    pub endpoint_id: Uuid,
    pub url: String,
    pub enabled: bool,
    pub secret: Vec<u8>,
    /// The secret before the last rotation, while its overlap lasts.
    pub previous_secret: Option<Vec<u8>>,
    pub message_id: Uuid,
    pub occurred_at: OffsetDateTime,
    pub body: String,
}

/// Claims up to `limit` due deliveries: at most `per_endpoint` of any one endpoint, none
/// of the endpoints in `busy` (this process has as many attempts to them as allowed).
///
/// Endpoints are visited in random order and each one's due deliveries are read from its
/// own index range (`deliveries_due`: endpoint, time, pending only), so a busy endpoint's
/// backlog is never scanned and no endpoint keeps the others waiting: with more
/// backed-up endpoints than free slots, each claim serves a different random few.
pub async fn claim(
    pool: &PgPool,
    busy: &[Uuid],
    limit: i64,
    per_endpoint: i64,
    lease: Duration,
) -> Result<Vec<Claimed>, sqlx::Error> {
    sqlx::query_as(
        "WITH picked AS (
             SELECT due.id
             FROM (SELECT id FROM endpoints WHERE enabled AND NOT (id = ANY($1))
                   ORDER BY random()) e
             CROSS JOIN LATERAL (
                 SELECT id FROM deliveries
                 WHERE endpoint_id = e.id AND state = 'pending' AND next_attempt_at <= now()
                 ORDER BY next_attempt_at LIMIT $3
                 FOR UPDATE SKIP LOCKED
             ) due
             LIMIT $2
         )
         UPDATE deliveries d SET
             attempts = d.attempts + 1,
             next_attempt_at = now() + $4 * interval '1 second',
             updated_at = now()
         FROM picked, endpoints e, messages m
         WHERE d.id = picked.id AND e.id = d.endpoint_id AND m.id = d.message_id
         RETURNING d.id, d.attempts AS attempt, d.replay_base, d.endpoint_id, e.url, e.enabled,
             e.secret,
             CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END
                 AS previous_secret,
             m.id AS message_id, m.occurred_at, m.body",
    )
    .bind(busy)
    .bind(limit)
    .bind(per_endpoint)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// What became of one attempt.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub delivery_id: i64,
    pub endpoint_id: Uuid,
    pub attempt: i32,
    pub started_at: OffsetDateTime,
    pub duration: Duration,
    /// The response's status, if one came.
    pub status: Option<u16>,
    /// Why it was not a success (a timeout, a refused address, a non-2xx status).
    pub error: Option<String>,
    /// The start of the response body.
    pub response: Option<String>,
    pub next: Next,
}

/// What happens to the delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// A 2xx: done.
    Delivered,
    /// Failed; try again after this pause.
    RetryIn(Duration),
    /// Failed for the last time (attempts exhausted, or the endpoint is disabled).
    GiveUp,
    /// The endpoint answered 410 Gone: it is disabled, with every delivery pending to it.
    Gone,
}

impl Next {
    fn state(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::RetryIn(_) => "pending",
            Self::GiveUp | Self::Gone => "failed",
        }
    }
}

/// Records a batch of attempts in one transaction: the attempt log, each delivery's new
/// state, and each endpoint's health. Endpoints that answered 410, or whose last retry
/// failed after `disable_after` of failures without a success, are disabled, and that is
/// announced (`webhook.endpoint_disabled`, through the outbox under `namespace`, for the
/// owner's notification); returns those (for the log).
///
/// A delivery is updated only if no later attempt of it was claimed meanwhile (its
/// lease ran out and another replica took it): the later attempt's record wins.
pub async fn record(
    pool: &PgPool,
    batch: &[Recorded],
    disable_after: Duration,
    namespace: &Namespace,
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let ids: Vec<i64> = batch.iter().map(|r| r.delivery_id).collect();
    let attempts: Vec<i32> = batch.iter().map(|r| r.attempt).collect();
    let statuses: Vec<Option<i32>> = batch.iter().map(|r| r.status.map(i32::from)).collect();
    let errors: Vec<Option<String>> = batch.iter().map(|r| r.error.clone()).collect();
    sqlx::query(
        "INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, status, error, response)
         SELECT * FROM UNNEST($1::bigint[], $2::int[], $3::timestamptz[], $4::int[], $5::int[],
                              $6::text[], $7::text[])
         ON CONFLICT DO NOTHING",
    )
    .bind(&ids)
    .bind(&attempts)
    .bind(batch.iter().map(|r| r.started_at).collect::<Vec<_>>())
    .bind(
        batch
            .iter()
            .map(|r| i32::try_from(r.duration.as_millis()).unwrap_or(i32::MAX))
            .collect::<Vec<_>>(),
    )
    .bind(&statuses)
    .bind(&errors)
    .bind(batch.iter().map(|r| r.response.clone()).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE deliveries d SET
             state = u.state,
             next_attempt_at = CASE WHEN u.state = 'pending'
                 THEN now() + u.pause * interval '1 second' END,
             last_status = u.status,
             last_error = u.error,
             updated_at = now()
         FROM UNNEST($1::bigint[], $2::int[], $3::text[], $4::float8[], $5::int[], $6::text[])
             AS u(id, attempt, state, pause, status, error)
         WHERE d.id = u.id AND d.attempts = u.attempt",
    )
    .bind(&ids)
    .bind(&attempts)
    .bind(batch.iter().map(|r| r.next.state()).collect::<Vec<_>>())
    .bind(
        batch
            .iter()
            .map(|r| match r.next {
                Next::RetryIn(pause) => pause.as_secs_f64(),
                _ => 0.0,
            })
            .collect::<Vec<_>>(),
    )
    .bind(&statuses)
    .bind(&errors)
    .execute(&mut *tx)
    .await?;

    let endpoints_where = |wanted: fn(Next) -> bool| -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = batch
            .iter()
            .filter(|r| wanted(r.next))
            .map(|r| r.endpoint_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    // Failures first, then successes: an endpoint with both in one batch is working.
    let failed = endpoints_where(|n| !matches!(n, Next::Delivered));
    sqlx::query(
        "UPDATE endpoints SET failing_since = now() WHERE id = ANY($1) AND failing_since IS NULL",
    )
    .bind(&failed)
    .execute(&mut *tx)
    .await?;
    let delivered = endpoints_where(|n| n == Next::Delivered);
    sqlx::query(
        "UPDATE endpoints SET failing_since = NULL WHERE id = ANY($1) AND failing_since IS NOT NULL",
    )
    .bind(&delivered)
    .execute(&mut *tx)
    .await?;

    let mut disabled: Vec<(Uuid, String)> = Vec::new();
    let gone = endpoints_where(|n| n == Next::Gone);
    let reason = "the endpoint answered 410 Gone";
    for id in disable(&mut tx, &gone, None, reason, namespace).await? {
        disabled.push((id, reason.to_owned()));
    }
    let exhausted = endpoints_where(|n| n == Next::GiveUp);
    let reason = format!(
        "deliveries failed for more than {} hours without a success",
        disable_after.as_secs() / 3600
    );
    for id in disable(&mut tx, &exhausted, Some(disable_after), &reason, namespace).await? {
        disabled.push((id, reason.clone()));
    }
    tx.commit().await?;
    Ok(disabled)
}

/// Disables the enabled endpoints among `ids` (those failing for longer than
/// `failing_for`, if given), fails their pending deliveries and announces each; returns
/// which.
async fn disable(
    conn: &mut PgConnection,
    ids: &[Uuid],
    failing_for: Option<Duration>,
    reason: &str,
    namespace: &Namespace,
) -> Result<Vec<Uuid>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let disabled: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
        "UPDATE endpoints SET enabled = false, disabled_reason = $3, updated_at = now()
         WHERE id = ANY($1) AND enabled
           AND ($2::float8 IS NULL OR failing_since < now() - $2 * interval '1 second')
         RETURNING id, owner_id, url",
    )
    .bind(ids)
    .bind(failing_for.map(|d| d.as_secs_f64()))
    .bind(reason)
    .fetch_all(&mut *conn)
    .await?;
    for (endpoint_id, owner_id, url) in &disabled {
        fail_pending(conn, *endpoint_id, reason).await?;
        let event = EndpointDisabled {
            endpoint_id: *endpoint_id,
            owner_id: *owner_id,
            url: url.clone(),
            reason: reason.to_owned(),
        };
        outbox::enqueue(conn, namespace, &Envelope::new(event)).await?;
    }
    Ok(disabled.into_iter().map(|(id, _, _)| id).collect())
}

/// Settles every pending delivery to `endpoint` as failed (it was disabled).
pub async fn fail_pending(
    conn: &mut PgConnection,
    endpoint: Uuid,
    why: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE deliveries SET state = 'failed', next_attempt_at = NULL, last_error = $2,
             updated_at = now()
         WHERE endpoint_id = $1 AND state = 'pending'",
    )
    .bind(endpoint)
    .bind(why)
    .execute(conn)
    .await?
    .rows_affected())
}

/// One line of an endpoint's delivery log.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct DeliveryView {
    pub id: i64,
    /// The `webhook-id` it is sent with (the event's id).
    pub message_id: Uuid,
    pub event_type: String,
    /// pending, delivered or failed.
    pub state: String,
    pub attempts: i32,
    /// The last attempt's HTTP status, error, duration and response excerpt.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<i32>,
    pub last_response: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

const VIEW: &str = "SELECT d.id, d.message_id, m.event_type, d.state, d.attempts, d.last_status,
        d.last_error, a.duration_ms AS last_duration_ms, a.response AS last_response,
        d.next_attempt_at, d.created_at, d.updated_at
    FROM deliveries d
    JOIN endpoints e ON e.id = d.endpoint_id
    JOIN messages m ON m.id = d.message_id
    LEFT JOIN LATERAL (SELECT duration_ms, response FROM attempts
                       WHERE delivery_id = d.id ORDER BY attempt DESC LIMIT 1) a ON true";

/// A page of `endpoint`'s log, newest first, if `owner` owns it (`None` otherwise).
pub async fn list(
    pool: &PgPool,
    owner: Uuid,
    endpoint: Uuid,
    state: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<DeliveryView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{VIEW} WHERE e.owner_id = $1 AND d.endpoint_id = $2
             AND ($3::text IS NULL OR d.state = $3) AND ($4::bigint IS NULL OR d.id < $4)
         ORDER BY d.id DESC LIMIT $5"
    ))
    .bind(owner)
    .bind(endpoint)
    .bind(state)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn get(
    pool: &PgPool,
    owner: Uuid,
    endpoint: Uuid,
    id: i64,
) -> Result<Option<DeliveryView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{VIEW} WHERE e.owner_id = $1 AND d.endpoint_id = $2 AND d.id = $3"
    ))
    .bind(owner)
    .bind(endpoint)
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct AttemptView {
    pub attempt: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub duration_ms: i32,
    pub status: Option<i32>,
    pub error: Option<String>,
    pub response: Option<String>,
}

pub async fn attempts(pool: &PgPool, delivery: i64) -> Result<Vec<AttemptView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT attempt, started_at, duration_ms, status, error, response FROM attempts
         WHERE delivery_id = $1 ORDER BY attempt",
    )
    .bind(delivery)
    .fetch_all(pool)
    .await
}

/// Why a replay did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplayRefused {
    /// No such endpoint or delivery of this owner's.
    NotFound,
    /// The endpoint is disabled: enable it first.
    Disabled,
    /// The delivery is still pending (an attempt is due or in flight).
    Pending,
}

/// Makes a settled delivery due again now, keeping its `webhook-id`; the retry schedule
/// starts over from it.
pub async fn replay(
    pool: &PgPool,
    owner: Uuid,
    endpoint: Uuid,
    id: i64,
) -> Result<Result<(), ReplayRefused>, sqlx::Error> {
    let Some(enabled) = enabled(pool, owner, endpoint).await? else {
        return Ok(Err(ReplayRefused::NotFound));
    };
    if !enabled {
        return Ok(Err(ReplayRefused::Disabled));
    }
    let state: Option<String> = sqlx::query_scalar(
        "WITH target AS (SELECT id, state FROM deliveries WHERE id = $1 AND endpoint_id = $2),
         replayed AS (
             UPDATE deliveries d SET state = 'pending', next_attempt_at = now(),
                 replay_base = d.attempts, updated_at = now()
             FROM target WHERE d.id = target.id AND target.state <> 'pending'
         )
         SELECT state FROM target",
    )
    .bind(id)
    .bind(endpoint)
    .fetch_optional(pool)
    .await?;
    Ok(match state.as_deref() {
        None => Err(ReplayRefused::NotFound),
        Some("pending") => Err(ReplayRefused::Pending),
        Some(_) => Ok(()),
    })
}

/// Makes every failed delivery to `endpoint` created since `since` due again; how many.
pub async fn replay_failed(
    pool: &PgPool,
    owner: Uuid,
    endpoint: Uuid,
    since: OffsetDateTime,
) -> Result<Result<u64, ReplayRefused>, sqlx::Error> {
    match enabled(pool, owner, endpoint).await? {
        None => return Ok(Err(ReplayRefused::NotFound)),
        Some(false) => return Ok(Err(ReplayRefused::Disabled)),
        Some(true) => {}
    }
    let replayed = sqlx::query(
        "UPDATE deliveries SET state = 'pending', next_attempt_at = now(),
             replay_base = attempts, updated_at = now()
         WHERE endpoint_id = $1 AND state = 'failed' AND created_at >= $2",
    )
    .bind(endpoint)
    .bind(since)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(Ok(replayed))
}

/// Whether `owner`'s `endpoint` is enabled; `None` if it is not theirs or not there.
async fn enabled(pool: &PgPool, owner: Uuid, endpoint: Uuid) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar("SELECT enabled FROM endpoints WHERE owner_id = $1 AND id = $2")
        .bind(owner)
        .bind(endpoint)
        .fetch_optional(pool)
        .await
}

/// How many deliveries are pending, per endpoint (the most backed-up first): the queue
/// depth reported on `/metrics`.
pub async fn pending_by_endpoint(pool: &PgPool, top: i64) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT endpoint_id, count(*) FROM deliveries WHERE state = 'pending'
         GROUP BY endpoint_id ORDER BY count(*) DESC LIMIT $1",
    )
    .bind(top)
    .fetch_all(pool)
    .await
}
