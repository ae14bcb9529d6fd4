//! Email verification and password reset: links mailed over SMTP (lettre) whose tokens
//! prove that whoever follows them reads the account's mailbox.
//!
//! * `POST /auth/password/forgot {email}`: always 202 with the same body. The request
//!   only records "a reset mail to this address" in `mail_outbox`; whether an account has
//!   the address is found out later, by the [`sender`], off the request. So the answer and
//!   the work done before it are the same for every address, account or not: nothing to
//!   enumerate, not even by timing ([`routes`] says what remains).
//! * `POST /auth/password/reset {token, password}`: a new password, and every session of
//!   the account ends (refresh-token families revoked, live access tokens denylisted);
//!   the address counts as verified, since the mail reached it.
//! * `POST /auth/email/verify {token}`: the address is verified.
//! * `POST /user/email/verification` (signed in): another verification mail.
//!   Registration, and a change of address, send one without being asked.
//!
//! Tokens ([`tokens`]) are 256-bit random values, stored only as SHA-256, valid for
//! `EMAIL_TOKEN_TTL_SECS` (30 minutes) from when the mail was sent, usable once, and bound
//! to the address they were sent to. Unverified accounts may watch and comment but not
//! upload while `UPLOAD_REQUIRES_VERIFIED_EMAIL` is on ([`gate`], enforced at the
//! gateway's ForwardAuth hop).

pub mod gate;
pub mod message;
pub(crate) mod routes;
pub mod sender;
pub mod tokens;

use std::{fmt, time::Duration};

use lettre::message::Mailbox;
use platform::{
    config::{ConfigError, secs, var},
    rate_limit::{self, Rate},
    retention::Prune,
};

pub use routes::routes;
pub use sender::Sender;

/// What a mailed link is for. Stored as text (`purpose` columns, CHECKed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Prove the account's address (sent on registration, on a change of address, and
    /// when asked).
    Verify,
    /// Choose a new password without the old one.
    Reset,
}

impl Purpose {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Reset => "reset",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Verify, Self::Reset]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// `SMTP_URL`, kept as given; shown with its password masked.
#[derive(Clone)]
pub struct SmtpUrl(pub String);

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&platform::config::shown("SMTP_URL", &self.0))
    }
}

#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `SMTP_URL`: where mail is handed over, as lettre reads it: `smtp://host:port`
    /// (plain, for a local relay or catcher), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS), `smtps://user:pass@host:465` (TLS from the start). Default: the local
    /// stack's sink (deploy/local/smtp_sink.py) on 127.0.0.1:2525.
    pub smtp_url: SmtpUrl,
    /// `SMTP_TIMEOUT_SECS`: the most one delivery may take before it counts as failed.
    pub smtp_timeout: Duration,
    /// `MAIL_FROM`: the sender, `Name <address>`.
    pub from: Mailbox,
    /// `PUBLIC_URL`: where users reach the web app; links are `{PUBLIC_URL}/verify-email?
    /// token=…` and `{PUBLIC_URL}/reset-password?token=…`.
    pub public_url: String,
    /// `EMAIL_TOKEN_TTL_SECS`: how long a mailed link works.
    pub token_ttl: Duration,
    /// `UPLOAD_REQUIRES_VERIFIED_EMAIL`: refuse upload creation (tus `POST /video/upload`)
    /// to accounts whose address is not verified ([`gate`]).
    pub upload_requires_verified_email: bool,
    /// `RATE_LIMIT_MAIL_ADDRESS`: mails asked for per address (forgot) or per account
    /// (resend); over it, forgot still answers 202 but sends nothing.
    pub address_rate: Option<Rate>,
    /// `RATE_LIMIT_MAIL_IP`: mail requests (forgot, resend) per client IP; over it, 429.
    pub ip_rate: Option<Rate>,
}

impl MailConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let smtp_url: String = var("SMTP_URL", "smtp://127.0.0.1:2525")?;
        // Refused at start-up rather than at the first mail.
        sender::transport(&smtp_url, Duration::from_secs(1)).map_err(|e| ConfigError {
            name: "SMTP_URL".into(),
            value: smtp_url.clone(),
            reason: e.to_string(),
        })?;
        let from: String = var("MAIL_FROM", "Kino <no-reply@kino.localhost>")?;
        let from = from.parse::<Mailbox>().map_err(|e| ConfigError {
            name: "MAIL_FROM".into(),
            value: from.clone(),
            reason: e.to_string(),
        })?;
        let public_url: String = var("PUBLIC_URL", "http://localhost:8080")?;
        if !(public_url.starts_with("https://") || public_url.starts_with("http://")) {
            return Err(ConfigError {
                name: "PUBLIC_URL".into(),
                value: public_url,
                reason: "must be an http(s) URL".into(),
            });
        }
        let token_ttl = secs("EMAIL_TOKEN_TTL_SECS", "1800")?;
        if token_ttl < Duration::from_secs(1) {
            return Err(ConfigError {
                name: "EMAIL_TOKEN_TTL_SECS".into(),
                value: token_ttl.as_secs_f64().to_string(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            smtp_url: SmtpUrl(smtp_url),
            smtp_timeout: secs("SMTP_TIMEOUT_SECS", "10")?,
            from,
            public_url: public_url.trim_end_matches('/').to_owned(),
            token_ttl,
            upload_requires_verified_email: var("UPLOAD_REQUIRES_VERIFIED_EMAIL", "true")?,
            // A person asking again because a mail is slow, not a script filling an inbox.
            address_rate: rate_limit::rate("RATE_LIMIT_MAIL_ADDRESS", "5/1h")?,
            ip_rate: rate_limit::rate("RATE_LIMIT_MAIL_IP", "30/1h")?,
        })
    }
}

/// Tokens are deleted a day after they expired (used or not): by then a link could not
/// work either way, and the rows say nothing anyone needs.
pub fn prunes() -> Vec<Prune> {
    vec![Prune {
        what: "expired email tokens",
        sql: "DELETE FROM email_tokens WHERE ctid IN (
                  SELECT ctid FROM email_tokens
                  WHERE expires_at < now() - $1 * interval '1 second' LIMIT $2)",
        retention: Duration::from_secs(86_400),
    }]
}
