//! Abuse limits shared by every service: "at most N events per period, per subject", where
//! a subject is a user or a client IP, counted in Redis so every replica sees the same
//! numbers.
//!
//! * One atomic script call per check ([`Limiter::check`]): the script reads the subject's
//!   counts, decides, and counts the event only if it is admitted, so concurrent requests
//!   on any number of replicas can never overshoot the limit.
//! * Each check touches one key, the subject's (`<REDIS_PREFIX>{rl:<action>:<subject>}`):
//!   the braces are a Redis Cluster hash tag, so the script's keys always live in one slot.
//!   A request limited both per user and per IP makes two checks, one per subject; the
//!   first may count an event the second then refuses (at most one per refusal), the
//!   price of never touching two subjects' keys in one script.
//! * A sliding window counter ([`window`]): smooth, no 2× burst at a window boundary as a
//!   fixed window has, and two integers per subject instead of a log of every event.
//!   Time is Redis's own (`TIME` in the script), so replicas' clocks need not agree.
//! * A limit that cannot be checked (Redis down) is an error for the caller to report as
//!   "unavailable", never a silent pass: the limits exist for the moment someone pushes.
//! * IPv6 clients are counted per /64: one host usually holds a whole /64 and could
//!   otherwise take a fresh address per request.

pub mod window;

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr},
    str::FromStr,
    time::Duration,
};

use redis::Script;
use uuid::Uuid;

use crate::{
    config::{ConfigError, var},
    redis::Redis,
};

/// "At most `max` events per `window`" (`20/1h`, `30/1m`, `5/10s`, `100/3600`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub max: u32,
    pub window: Duration,
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (max, period) = s
            .trim()
            .split_once('/')
            .ok_or("expected <count>/<period>, e.g. 30/1m, or off")?;
        let max: u32 = max
            .trim()
            .parse()
            .map_err(|_| format!("{max:?} is not a count"))?;
        if max == 0 {
            return Err("a count of 0 would refuse everything; use a count ≥ 1".into());
        }
        let period = period.trim();
        let split = period
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(period.len());
        let (number, unit) = period.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("{period:?} is not a period"))?;
        let unit_secs = match unit {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            other => return Err(format!("unknown unit {other:?} (s, m, h, d)")),
        };
        if number == 0 {
            return Err("the period must be at least 1 s".into());
        }
        Ok(Self {
            max,
            window: Duration::from_secs(number * unit_secs),
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.max, self.window.as_secs())
    }
}

/// A limit variable: a [`Rate`], or `off` (no limit).
pub fn rate(name: &str, default: &str) -> Result<Option<Rate>, ConfigError> {
    let value: String = var(name, default)?;
    if value.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|reason| ConfigError {
        name: name.to_owned(),
        value,
        reason,
    })
}

/// Who is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    User(Uuid),
    Ip(IpAddr),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(id) => write!(f, "user:{id}"),
            Self::Ip(ip) => match crate::client_ip::canonical(*ip) {
                IpAddr::V4(v4) => write!(f, "ip:{v4}"),
                IpAddr::V6(v6) => {
                    let net = u128::from(v6) & (u128::MAX << 64);
                    write!(f, "ip:{}/64", Ipv6Addr::from(net))
                }
            },
        }
    }
}

/// The answer to one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Counted.
    Allowed,
    /// Not counted; one more event fits after this long.
    Limited { retry_after: Duration },
}

impl Decision {
    /// `Retry-After` in whole seconds, for a refused event.
    pub fn retry_after_secs(self) -> Option<u64> {
        match self {
            Self::Allowed => None,
            Self::Limited { retry_after } => Some(window::whole_secs(retry_after)),
        }
    }
}

/// Checks and counts events against limits. Cheap to clone.
#[derive(Clone)]
pub struct Limiter {
    redis: Redis,
    prefix: String,
    script: std::sync::Arc<Script>,
}

impl Limiter {
    /// Keys go under `prefix` (the service's `REDIS_PREFIX`).
    pub fn new(redis: Redis, prefix: &str) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            script: std::sync::Arc::new(Script::new(include_str!("sliding.lua"))),
        }
    }

    /// The subject's key for `action`: one hash tag per (action, subject).
    pub fn key(&self, action: &str, subject: Subject) -> String {
        format!("{}{{rl:{action}:{subject}}}", self.prefix)
    }

    /// Counts one `action` by `subject` if `rate` allows it. `None` is no limit.
    pub async fn check(
        &self,
        action: &str,
        subject: Subject,
        rate: Option<Rate>,
    ) -> redis::RedisResult<Decision> {
        let Some(rate) = rate else {
            return Ok(Decision::Allowed);
        };
        let window_ms = rate.window.as_millis() as u64;
        let mut conn = self.redis.clone();
        // EVALSHA, falling back to EVAL once after a script cache flush.
        let (allowed, prev, cur, elapsed_ms): (u8, u64, u64, u64) = self
            .script
            .key(self.key(action, subject))
            .arg(window_ms)
            .arg(rate.max)
            .invoke_async(&mut conn)
            .await?;
        if allowed == 1 {
            return Ok(Decision::Allowed);
        }
        let counts = window::Counts {
            prev,
            cur,
            elapsed_ms,
        };
        Ok(Decision::Limited {
            retry_after: window::retry_after(counts, window_ms, u64::from(rate.max)),
        })
    }

    /// Checks each (subject, rate) in turn and stops at the first refusal.
    pub async fn check_all(
        &self,
        action: &str,
        checks: &[(Subject, Option<Rate>)],
    ) -> redis::RedisResult<Decision> {
        for &(subject, rate) in checks {
            let decision = self.check(action, subject, rate).await?;
            if decision != Decision::Allowed {
                return Ok(decision);
            }
        }
        Ok(Decision::Allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_units() {
        let r: Rate = "30/1m".parse().unwrap();
        assert_eq!((r.max, r.window), (30, Duration::from_secs(60)));
        let r: Rate = " 20 / 3600 ".parse().unwrap();
        assert_eq!((r.max, r.window), (20, Duration::from_secs(3600)));
        assert_eq!(
            "5/2h".parse::<Rate>().unwrap().window,
            Duration::from_secs(7200)
        );
        assert_eq!(
            "5/1d".parse::<Rate>().unwrap().window,
            Duration::from_secs(86_400)
        );
        for bad in ["30", "0/1m", "x/1m", "5/0s", "5/1w", "5/", "-1/1m"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn subjects_key_per_host() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(Subject::Ip(a).to_string(), "ip:2001:db8:1:2::/64");
        assert_eq!(Subject::Ip(a).to_string(), Subject::Ip(b).to_string());
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
        assert_eq!(Subject::Ip(mapped).to_string(), "ip:198.51.100.7");
        let id = Uuid::nil();
        assert_eq!(
            Subject::User(id).to_string(),
            "user:00000000-0000-0000-0000-000000000000"
        );
    }
}
