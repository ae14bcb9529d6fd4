//! One attempt: the signed POST, its outcome, and what happens next.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand_core::{OsRng, RngCore};
use reqwest::{StatusCode, header::CONTENT_TYPE, redirect};
use time::OffsetDateTime;

use super::{
    guard,
    signature::{self, Secret},
};
use crate::{
    config::DeliveryConfig,
    deliveries::store::{Claimed, Next, Recorded},
    endpoints::url::EndpointUrl,
};

/// How much of a response body is read before the connection is dropped: receivers
/// answer with a status, and a huge or endless body must not cost memory or time.
const READ_CAP: usize = 64 * 1024;
/// How much of it is kept in the delivery log.
const EXCERPT: usize = 1024;

/// The HTTP client every attempt of this process uses: no redirects (a 3xx is a failed
/// attempt, never followed: it could point inward), the address guard as its resolver,
/// and connections kept for reuse up to the per-endpoint concurrency.
pub fn client(config: &DeliveryConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .dns_resolver(guard::resolver(config.allow_private))
        .connect_timeout(config.timeout)
        .pool_max_idle_per_host(config.endpoint_concurrency)
        .user_agent(concat!("Kino-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the webhook HTTP client builds")
}

/// Makes one attempt of `claimed` and says what came of it.
pub async fn attempt(
    client: &reqwest::Client,
    config: &DeliveryConfig,
    claimed: &Claimed,
) -> Recorded {
    let started_at = OffsetDateTime::now_utc();
    let started = Instant::now();
    let outcome = if claimed.enabled {
        post(client, config, claimed).await
    } else {
        Err(Failure::permanent("the endpoint is disabled"))
    };
    let duration = started.elapsed();
    let (status, error, response, next) = match outcome {
        Ok(answer) if answer.status.is_success() => {
            (Some(answer.status), None, answer.excerpt, Next::Delivered)
        }
        Ok(answer) if answer.status == StatusCode::GONE => (
            Some(answer.status),
            Some("410 Gone: the endpoint asked not to be sent to any more".to_owned()),
            answer.excerpt,
            Next::Gone,
        ),
        Ok(answer) => {
            let error = format!("the endpoint answered {}", answer.status);
            let next = retry(config, claimed);
            (Some(answer.status), Some(error), answer.excerpt, next)
        }
        Err(failure) => {
            let next = if failure.permanent {
                Next::GiveUp
            } else {
                retry(config, claimed)
            };
            (None, Some(failure.why), None, next)
        }
    };
    metrics(claimed, next, duration);
    Recorded {
        delivery_id: claimed.id,
        endpoint_id: claimed.endpoint_id,
        attempt: claimed.attempt,
        started_at,
        duration,
        status: status.map(|s| s.as_u16()),
        error,
        response,
        next,
    }
}

/// The next attempt's pause by the schedule, jittered; give up after the last.
fn retry(config: &DeliveryConfig, claimed: &Claimed) -> Next {
    let unit = f64::from(OsRng.next_u32()) / f64::from(u32::MAX);
    match config
        .schedule
        .pause_after(claimed.attempt - claimed.replay_base, unit)
    {
        Some(pause) => Next::RetryIn(pause),
        None => Next::GiveUp,
    }
}

fn metrics(claimed: &Claimed, next: Next, duration: Duration) {
    let outcome = match next {
        Next::Delivered => "delivered",
        Next::RetryIn(_) => "retry",
        Next::GiveUp => "failed",
        Next::Gone => "gone",
    };
    ::metrics::counter!("webhook_attempts_total", "outcome" => outcome).increment(1);
    ::metrics::histogram!("webhook_attempt_duration_seconds").record(duration.as_secs_f64());
    if next == Next::Delivered {
        // From the event to its delivery: what a receiver waits (retries included).
        let waited = OffsetDateTime::now_utc() - claimed.occurred_at;
        ::metrics::histogram!("webhook_event_to_delivery_seconds")
            .record(waited.as_seconds_f64().max(0.0));
    }
}

/// What an endpoint answered.
struct Answer {
    status: StatusCode,
    excerpt: Option<String>,
}

/// Why no answer came.
struct Failure {
    why: String,
    /// Retrying cannot help (the URL cannot be sent to at all).
    permanent: bool,
}

impl Failure {
    fn permanent(why: impl Into<String>) -> Self {
        Self {
            why: why.into(),
            permanent: true,
        }
    }

    fn transient(why: impl Into<String>) -> Self {
        Self {
            why: why.into(),
            permanent: false,
        }
    }
}

async fn post(
    client: &reqwest::Client,
    config: &DeliveryConfig,
    claimed: &Claimed,
) -> Result<Answer, Failure> {
    let url = EndpointUrl::stored(&claimed.url).map_err(Failure::permanent)?;
    guard::check_literal(&url, config.allow_private)
        .map_err(|why| Failure::permanent(format!("the URL {why}")))?;
    let id = claimed.message_id.to_string();
    let timestamp = OffsetDateTime::now_utc().unix_timestamp();
    let current = Secret::from_bytes(claimed.secret.clone());
    let previous = claimed.previous_secret.clone().map(Secret::from_bytes);
    let secrets: Vec<&Secret> = std::iter::once(&current).chain(previous.as_ref()).collect();
    let signature = signature::header(&secrets, &id, timestamp, claimed.body.as_bytes());
    let exchange = async {
        let mut response = client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(claimed.body.clone())
            .send()
            .await
            .map_err(|e| Failure::transient(describe(&e)))?;
        let status = response.status();
        // The status is the answer; the body is read only for the log, up to a cap, and
        // a body that fails midway still leaves the status.
        let mut body = BytesMut::new();
        while body.len() < READ_CAP {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        Ok(Answer {
            status,
            excerpt: excerpt(&body),
        })
    };
    tokio::time::timeout(config.timeout, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(Failure::transient(format!(
                "no answer within {} s",
                config.timeout.as_secs_f64()
            )))
        })
}

/// A reqwest error with its causes, as one line (the address guard's reason is a cause).
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The start of a body as text, cut at a character boundary; `None` when empty.
fn excerpt(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT)]);
    let mut text = text.into_owned();
    // A multi-byte character cut by the cap shows as one replacement character at the
    // end; strip NULs, which PostgreSQL text cannot hold.
    text.retain(|c| c != '\0');
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_capped_text_without_nuls() {
        assert_eq!(excerpt(b""), None);
        assert_eq!(excerpt(b"ok\0"), Some("ok".to_owned()));
        let long = vec![b'a'; EXCERPT * 3];
        assert_eq!(excerpt(&long).unwrap().len(), EXCERPT);
        let cut = "é".repeat(EXCERPT);
        assert!(excerpt(cut.as_bytes()).unwrap().chars().count() <= EXCERPT / 2 + 1);
    }
}
