//! Login throttling in Redis: fixed windows per account (failed attempts) and per client IP
//! (all attempts). Counters live in Redis so every replica sees the same numbers.
//!
//! Per-account limits stop password guessing against one user; per-IP limits stop one
//! client spraying many accounts. The IP is the TCP peer, or the address a trusted proxy
//! put in `X-Forwarded-For` (see [`super::client_ip`]).

use std::net::IpAddr;

use platform::redis::Redis;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `LOGIN_ACCOUNT_FAILURES`: failed logins per account per window.
    pub account_failures: u32,
    /// `LOGIN_IP_ATTEMPTS`: login attempts per client IP per window.
    pub ip_attempts: u32,
    /// `LOGIN_WINDOW_SECS`.
    pub window_secs: u64,
}

#[derive(Clone)]
pub struct Throttle {
    redis: Redis,
    prefix: String,
    limits: Limits,
}

impl Throttle {
    pub fn new(redis: Redis, prefix: &str, limits: Limits) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            limits,
        }
    }

    fn account_key(&self, login: &str) -> String {
        format!("{}login:account:{}", self.prefix, login.to_lowercase())
    }

    fn ip_key(&self, ip: IpAddr) -> String {
        format!("{}login:ip:{ip}", self.prefix)
    }

    /// Counts this attempt against the IP and refuses it if the IP or the account is over
    /// its limit. Runs before the password is checked, so a throttled attempt costs no hash.
    pub async fn admit(&self, login: &str, ip: IpAddr) -> Result<(), ApiError> {
        let (ip_key, account_key) = (self.ip_key(ip), self.account_key(login));
        let window = self.limits.window_secs as i64;
        // INCR + EXPIRE NX in one round trip: the window starts with the first attempt.
        // The IP's and the account's keys are read by two requests sent together: on a
        // Redis Cluster they live in different slots, and nothing needs them atomic.
        let (mut ip_conn, mut account_conn) = (self.redis.clone(), self.redis.clone());
        let mut ip = redis::pipe();
        ip.atomic()
            .incr(&ip_key, 1)
            .cmd("EXPIRE")
            .arg(&ip_key)
            .arg(window)
            .arg("NX")
            .ignore()
            .ttl(&ip_key);
        let mut account = redis::pipe();
        account.get(&account_key).ttl(&account_key);
        let ((ip_count, ip_ttl), (account_count, account_ttl)): ((u32, i64), (Option<u32>, i64)) =
            tokio::try_join!(
                ip.query_async(&mut ip_conn),
                account.query_async(&mut account_conn)
            )?;
        if ip_count > self.limits.ip_attempts {
            return Err(ApiError::Throttled(ip_ttl.max(1) as u64));
        }
        if account_count.unwrap_or(0) >= self.limits.account_failures {
            return Err(ApiError::Throttled(account_ttl.max(1) as u64));
        }
        Ok(())
    }

    /// Records a failed attempt against the account.
    pub async fn failed(&self, login: &str) -> Result<(), ApiError> {
        let mut conn = self.redis.clone();
        let key = self.account_key(login);
        let () = redis::pipe()
            .atomic()
            .incr(&key, 1)
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(self.limits.window_secs as i64)
            .arg("NX")
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// A successful login clears the account's failures.
    pub async fn succeeded(&self, login: &str) -> Result<(), ApiError> {
        let mut conn = self.redis.clone();
        let () = redis::cmd("DEL")
            .arg(self.account_key(login))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}
