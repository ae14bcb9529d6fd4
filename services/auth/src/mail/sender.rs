//! Sending mail: requests go into `mail_outbox` in the transaction of the request that
//! asks for a mail ([`enqueue`]); a background task on every replica takes due rows one at
//! a time and hands each to the SMTP server (`SMTP_URL`).
//!
//! Why not send inline: the request would wait on the SMTP server (a slow server would
//! slow the API, and how long a forgot request took would tell whether a mail was sent,
//! i.e. whether the account exists), and a mail asked for by a request that then failed,
//! or lost when the server was down, could not be told apart. With the outbox a request
//! answers after one INSERT, and a mail goes out at least once however often the SMTP
//! server or this process fails in between.
//!
//! Invariants:
//!
//! * A row is claimed by moving its `next_attempt_at` past the delivery timeout plus the
//!   backoff before anything is sent, so replicas never work on the same row at once, and
//!   a row whose sender died is retried once that time has passed.
//! * The token is minted at delivery, and each attempt mints a new one; a row holds no
//!   secret. The link's lifetime runs from the attempt that delivered it.
//! * A row is resolved at delivery: a reset for an address no account has, a
//!   verification for an address the account no longer has or has verified, is deleted
//!   without a mail.
//! * A row is deleted once the SMTP server accepted the message, at once when the server
//!   refused it for good (a 5xx answer) or the address cannot be mailed, or after
//!   [`MAX_ATTEMPTS`] failures (each logged as an error): a mail stays worth sending for
//!   about twenty minutes, not for days.

use std::{sync::Arc, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor, message::Mailbox,
    transport::smtp::Error as SmtpError,
};
use platform::Shutdown;
use sqlx::{FromRow, PgConnection, PgPool};
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{MailConfig, Purpose, message, tokens};

/// Failed deliveries before a mail is given up.
pub const MAX_ATTEMPTS: i32 = 12;
/// The longest pause between two attempts (the n-th failure waits 2^(n-1) s up to this,
/// plus the delivery deadline).
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often due rows are looked for without a wake-up (another replica's requests,
/// retries coming due).
const POLL: Duration = Duration::from_secs(1);

pub type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// The SMTP transport for `url` (lettre's URL syntax, see [`MailConfig::smtp_url`]).
pub fn transport(url: &str, timeout: Duration) -> Result<Transport, SmtpError> {
    Ok(Transport::from_url(url)?.timeout(Some(timeout)).build())
}

/// Records that a mail of `purpose` should go to `email` (and, for a verification,
/// whose address it is). Call it in the transaction of the request, then
/// [`Sender::notify`] after the commit.
pub async fn enqueue(
    conn: &mut PgConnection,
    purpose: Purpose,
    email: &str,
    user_id: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO mail_outbox (id, purpose, email, user_id) VALUES ($1, $2, $3, $4)")
        .bind(Uuid::now_v7())
        .bind(purpose.as_str())
        .bind(email)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The handle to the background sender: wakes it when a request enqueued a mail.
#[derive(Clone)]
pub struct Sender {
    wake: Arc<Notify>,
}

impl Sender {
    /// Starts the sender; it stops when `shutdown` fires, after finishing the delivery
    /// it is in (at most the SMTP timeout), and `shutdown` waits for it
    /// ([`Shutdown::spawn`]).
    pub fn spawn(pool: PgPool, config: MailConfig, shutdown: &Shutdown) -> Self {
        let wake = Arc::new(Notify::new());
        let sender = Self { wake: wake.clone() };
        let transport = transport(&config.smtp_url.0, config.smtp_timeout)
            .expect("SMTP_URL was checked when the configuration was read");
        let stop = shutdown.triggered();
        let stopping = shutdown.clone();
        let worker = Worker {
            pool,
            config,
            transport,
        };
        shutdown.spawn(async move {
            tokio::pin!(stop);
            // A delivery is never cut off (it is bounded by the SMTP timeout): shutdown is
            // noticed between deliveries.
            while !stopping.is_triggered() {
                match worker.deliver_next().await {
                    Ok(true) => continue, // there may be more
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "mail sender: database error, will retry"),
                }
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                    () = &mut stop => return,
                }
            }
        });
        sender
    }

    pub fn notify(&self) {
        self.wake.notify_one();
    }
}

struct Worker {
    pool: PgPool,
    config: MailConfig,
    transport: Transport,
}

#[derive(FromRow)]
struct Claimed {
    id: Uuid,
    purpose: String,
    email: String,
    user_id: Option<Uuid>,
    attempts: i32,
}

/// Why a delivery failed, and whether trying again could help.
enum Failure {
    Transient(String),
    Permanent(String),
}

/// Who the mail goes to, once resolved.
#[derive(FromRow)]
struct Recipient {
    id: Uuid,
    username: String,
    email: String,
}

impl Worker {
    /// Claims and delivers one due row; `false` when none was due.
    async fn deliver_next(&self) -> Result<bool, sqlx::Error> {
        // The lease: the retry time if this attempt fails, set before sending.
        let claimed: Option<Claimed> = sqlx::query_as(
            "UPDATE mail_outbox SET attempts = attempts + 1,
                 next_attempt_at = now() + ($1 + least(power(2, attempts), $2)) * interval '1 second'
             WHERE id = (SELECT id FROM mail_outbox WHERE next_attempt_at <= now()
                         ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING id, purpose, email::text AS email, user_id, attempts",
        )
        .bind(self.deadline().as_secs_f64())
        .bind(MAX_BACKOFF.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = claimed else {
            return Ok(false);
        };
        let Some(purpose) = Purpose::parse(&row.purpose) else {
            // The column's CHECK allows no other value.
            return self.finish(&row).await.map(|()| true);
        };
        let Some(recipient) = self.resolve(&row, purpose).await? else {
            // No account for this reset, or nothing left to verify: no mail.
            tracing::debug!(mail = %row.id, purpose = purpose.as_str(), "mail not needed");
            return self.finish(&row).await.map(|()| true);
        };
        let expires_at = OffsetDateTime::now_utc() + self.config.token_ttl;
        let mut conn = self.pool.acquire().await?;
        let token = tokens::mint(
            &mut conn,
            recipient.id,
            purpose,
            &recipient.email,
            expires_at,
        )
        .await?;
        drop(conn);
        match self.send(&recipient, purpose, &token).await {
            Ok(()) => {
                tracing::info!(mail = %row.id, user = %recipient.id, purpose = purpose.as_str(), "mail sent");
                self.finish(&row).await?;
            }
            Err(Failure::Permanent(error)) => {
                tracing::error!(mail = %row.id, user = %recipient.id, purpose = purpose.as_str(),
                    %error, "mail refused for good: not retried");
                self.finish(&row).await?;
            }
            Err(Failure::Transient(error)) if row.attempts >= MAX_ATTEMPTS => {
                tracing::error!(mail = %row.id, user = %recipient.id, purpose = purpose.as_str(),
                    attempts = row.attempts, %error, "mail could not be sent: giving up");
                self.finish(&row).await?;
            }
            Err(Failure::Transient(error)) => {
                tracing::warn!(mail = %row.id, purpose = purpose.as_str(), attempts = row.attempts,
                    %error, "mail could not be sent: will retry");
                sqlx::query("UPDATE mail_outbox SET last_error = $2 WHERE id = $1")
                    .bind(row.id)
                    .bind(error)
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(true)
    }

    async fn resolve(
        &self,
        row: &Claimed,
        purpose: Purpose,
    ) -> Result<Option<Recipient>, sqlx::Error> {
        match purpose {
            Purpose::Reset => {
                sqlx::query_as(
                    "SELECT id, username::text AS username, email::text AS email FROM users
                     WHERE email = $1::citext",
                )
                .bind(&row.email)
                .fetch_optional(&self.pool)
                .await
            }
            Purpose::Verify => {
                sqlx::query_as(
                    "SELECT id, username::text AS username, email::text AS email FROM users
                     WHERE id = $1 AND email = $2::citext AND email_verified_at IS NULL",
                )
                .bind(row.user_id)
                .bind(&row.email)
                .fetch_optional(&self.pool)
                .await
            }
        }
    }

    async fn send(&self, to: &Recipient, purpose: Purpose, token: &str) -> Result<(), Failure> {
        let address = to
            .email
            .parse()
            .map_err(|e| Failure::Permanent(format!("the address cannot be mailed: {e}")))?;
        let link = message::link(&self.config.public_url, purpose, token);
        let mail = message::build(
            &self.config.from,
            Mailbox::new(None, address),
            purpose,
            &to.username,
            &link,
            self.config.token_ttl,
        )
        .map_err(|e| Failure::Permanent(e.to_string()))?;
        let deadline = self.deadline();
        match tokio::time::timeout(deadline, self.transport.send(mail)).await {
            Ok(Ok(_)) => Ok(()),
            // A 5xx answer (no such mailbox, message refused) will not change on a retry.
            Ok(Err(e)) if e.is_permanent() => Err(Failure::Permanent(e.to_string())),
            Ok(Err(e)) => Err(Failure::Transient(e.to_string())),
            Err(_) => Err(Failure::Transient(format!("no answer within {deadline:?}"))),
        }
    }

    /// The most one delivery takes: lettre's timeout covers each SMTP command (connect,
    /// EHLO, STARTTLS, DATA…); this bounds the whole conversation. A claim outlasts it.
    fn deadline(&self) -> Duration {
        self.config.smtp_timeout * 3
    }

    async fn finish(&self, row: &Claimed) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM mail_outbox WHERE id = $1")
            .bind(row.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
