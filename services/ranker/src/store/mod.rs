//! The ranker's Redis state, changed only through Lua scripts so that each change is
//! atomic:
//!
//! * `{p}trending:{window}:{scope}`: the sorted sets (events::interaction::trending_key);
//! * `{p}trending:t0`: each sorted set's landmark `t0` (a hash, field = the set's key);
//! * `{p}seen:{bucket}`: a set of the ids of events applied in a bucket of
//!   `EVENT_DEDUPE_SECS` (each bucket expires after two);
//! * `{p}views:{bucket}`: a hash, `{viewer}:{video}` → `{millis}:{event id}`, of the views
//!   that counted in a bucket of `VIEW_DEDUPE_SECS` (each bucket expires after two);
//! * `{p}counters:pending` / `:flushing` / `:flushing-id`: accepted views and watch
//!   seconds not yet reported to the catalogue (see crate::counters).
//!
//! A batch is applied by one script ([`INGEST`]): it checks that every event that counts is
//! new, then marks each event seen, records the counted views and adds the batch's summed
//! increments and counters, all or nothing. If the process dies after the script and
//! before the batch is acknowledged, the redelivered events find their marks and add
//! nothing; if it dies before, nothing was written. The script
//! also checks the `t0` the increments were computed against, so a concurrent rebase
//! (here or in another replica) can never mix landmarks: a stale batch writes nothing and
//! is recomputed.
//!
//! The scripts build key names from the prefix and are meant for one Redis server (not a
//! cluster, where every key a script touches has to be declared and share a slot).

use redis::{Script, Value, aio::ConnectionManager};
use uuid::Uuid;

/// Applies a batch. KEYS: `t0 hash`, `pending counters`, then the K sorted sets the batch
/// touches. ARGV: prefix, event TTL, view window (seconds), K, the K expected `t0`s
/// (strings, as stored); N, the N event ids, their flags as one string of N characters
/// (`1` counts, `0` is only to be marked seen); V, the V counting views' `{viewer}:{video}` keys, the V views' event
/// indices (0-based); G, then per group of one set's increments: set index 1..K, count,
/// then per video: video, summed increment;
/// C, then per counter field: field, summed amount.
///
/// Returns `{accepted}` having written everything; `{-1, key…}` when a landmark moved, or
/// `{-2, event index…}` (0-based) when counting events were already seen or are repeated
/// views, having written nothing in either case. The increments were summed assuming
/// every counting event is new, so the script refuses rather than apply them in part.
///
/// Marks live in buckets of time (Redis' clock, so every replica agrees): the ids seen in
/// bucket `b = ⌊now / event TTL⌋` are the members of one set `seen:{b}`, and the views
/// counted in `b = ⌊now / window⌋` are fields of one hash `views:{b}` whose values are
/// `{millis}:{event id}`. A lookup reads the current and the previous bucket, so an id is
/// remembered for at least the TTL (at most twice it), and a view repeats while it is
/// younger than the window, exactly. A batch thus costs a few commands of thousands of
/// arguments (SMISMEMBER, HMGET, SADD, HSET) instead of a key per event, most of them
/// straight from ARGV.
const INGEST: &str = r#"
local prefix = ARGV[1]
local event_ttl = tonumber(ARGV[2])
local window_ms = tonumber(ARGV[3]) * 1000
local k = tonumber(ARGV[4])
local stale = {}
local fresh = {}
for i = 1, k, 1000 do
  local last = math.min(i + 999, k)
  local current = redis.call('HMGET', KEYS[1], unpack(KEYS, 2 + i, 2 + last))
  for j = 1, #current do
    local at = i + j - 1
    if current[j] == false then
      fresh[#fresh + 1] = at
    elseif current[j] ~= ARGV[4 + at] then
      stale[#stale + 1] = KEYS[2 + at]
    end
  end
end
if #stale > 0 then
  table.insert(stale, 1, -1)
  return stale
end

local n = tonumber(ARGV[5 + k])
local ids = 6 + k
local flags = ARGV[ids + n]
local v = tonumber(ARGV[ids + n + 1])
local view_keys = ids + n + 2
local view_events = view_keys + v
local time = redis.call('TIME')
local now_s = tonumber(time[1])
local now_ms = now_s * 1000 + math.floor(tonumber(time[2]) / 1000)
local seen_bucket = math.floor(now_s / event_ttl)
local seen_now = prefix .. 'seen:' .. seen_bucket
local seen_before = prefix .. 'seen:' .. (seen_bucket - 1)
local view_bucket = math.floor(now_ms / window_ms)
local views_now = prefix .. 'views:' .. view_bucket
local views_before = prefix .. 'views:' .. (view_bucket - 1)

local refused = {-2}
for i = 0, n - 1, 1000 do
  local last = math.min(i + 999, n - 1)
  local here = redis.call('SMISMEMBER', seen_now, unpack(ARGV, ids + i, ids + last))
  local before = redis.call('SMISMEMBER', seen_before, unpack(ARGV, ids + i, ids + last))
  for j = 1, #here do
    if (here[j] == 1 or before[j] == 1) and string.byte(flags, i + j) == 49 then
      refused[#refused + 1] = i + j - 1
    end
  end
end
for i = 0, v - 1, 1000 do
  local last = math.min(i + 999, v - 1)
  local here = redis.call('HMGET', views_now, unpack(ARGV, view_keys + i, view_keys + last))
  local before = redis.call('HMGET', views_before, unpack(ARGV, view_keys + i, view_keys + last))
  for j = 1, #here do
    local repeated = here[j] ~= false
    if not repeated and before[j] ~= false then
      repeated = tonumber(string.match(before[j], '^%d+')) + window_ms > now_ms
    end
    if repeated then
      refused[#refused + 1] = tonumber(ARGV[view_events + i + j - 1])
    end
  end
end
if #refused > 1 then
  return refused
end

for _, i in ipairs(fresh) do
  redis.call('HSET', KEYS[1], KEYS[2 + i], ARGV[4 + i])
end
for i = 0, n - 1, 1000 do
  redis.call('SADD', seen_now, unpack(ARGV, ids + i, ids + math.min(i + 999, n - 1)))
end
redis.call('EXPIREAT', seen_now, (seen_bucket + 2) * event_ttl)
if v > 0 then
  local fields = {}
  for i = 0, v - 1 do
    fields[#fields + 1] = ARGV[view_keys + i]
    fields[#fields + 1] = now_ms .. ':' .. ARGV[ids + tonumber(ARGV[view_events + i])]
    if #fields >= 2000 or i == v - 1 then
      redis.call('HSET', views_now, unpack(fields))
      fields = {}
    end
  end
  redis.call('PEXPIREAT', views_now, (view_bucket + 2) * window_ms)
end
local accepted = 0
for i = 1, n do
  if string.byte(flags, i) == 49 then
    accepted = accepted + 1
  end
end
local a = view_events + v
local groups = tonumber(ARGV[a])
a = a + 1
for _ = 1, groups do
  local set = KEYS[2 + tonumber(ARGV[a])]
  local count = tonumber(ARGV[a + 1])
  a = a + 2
  for _ = 1, count do
    redis.call('ZINCRBY', set, ARGV[a + 1], ARGV[a])
    a = a + 2
  end
end
local c = tonumber(ARGV[a])
a = a + 1
for _ = 1, c do
  redis.call('HINCRBY', KEYS[2], ARGV[a], ARGV[a + 1])
  a = a + 2
end
return {accepted}
"#;

/// Rebases one sorted set. KEYS: t0 hash, the set. ARGV: expected old t0, new t0, factor,
/// prune floor. Every score is multiplied by the factor (formatted with 17 significant
/// digits: Lua's default conversion would keep 14), members below the floor are removed,
/// and the new t0 stored. Returns 1, or 0 when the old t0 was not the expected one.
const REBASE: &str = r#"
local current = redis.call('HGET', KEYS[1], KEYS[2])
if current ~= ARGV[1] then
  return 0
end
local factor = tonumber(ARGV[3])
local members = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
local args = {}
for i = 1, #members, 2 do
  args[#args + 1] = string.format('%.17g', tonumber(members[i + 1]) * factor)
  args[#args + 1] = members[i]
  if #args >= 2000 then
    redis.call('ZADD', KEYS[2], unpack(args))
    args = {}
  end
end
if #args > 0 then
  redis.call('ZADD', KEYS[2], unpack(args))
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
redis.call('HSET', KEYS[1], KEYS[2], ARGV[2])
return 1
"#;

/// Takes the pending counters for reporting. KEYS: pending, flushing, flushing-id.
/// ARGV: a fresh report id. A report already taken and not yet confirmed (a crash, or
/// another replica) is returned again with its id, so it is published under the same id.
/// Returns `{id, field, value, …}` or `{}` when there is nothing to report.
const TAKE_COUNTERS: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 0 then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    return {}
  end
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('SET', KEYS[3], ARGV[1])
end
local out = redis.call('HGETALL', KEYS[2])
table.insert(out, 1, redis.call('GET', KEYS[3]))
return out
"#;

/// Forgets a report once published. KEYS: flushing, flushing-id. ARGV: its id.
const DONE_COUNTERS: &str = r#"
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
end
return 1
"#;

#[derive(Clone)]
pub struct Store {
    pub redis: ConnectionManager,
    pub prefix: String,
    ingest: Script,
    rebase: Script,
    take_counters: Script,
    done_counters: Script,
}

/// A batch, ready for [`Store::apply`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prepared {
    pub events: Vec<Mark>,
    /// (index into the batch's keys, video, the summed increment of its counting events),
    /// grouped by set (consecutive entries of one set are sent under its name once).
    pub increments: Vec<(usize, Uuid, f64)>,
    /// Counter fields (`v:{video}` views, `w:{video}` watch seconds) and summed amounts.
    pub counters: Vec<(String, i64)>,
}

/// One event of a batch: what marks it seen, and whether it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub id: String,
    /// `{viewer}:{video}` for a counting view, else empty.
    pub view_key: String,
    /// False for an event that is only marked seen (a repeated view).
    pub counts: bool,
}

/// What applying a batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// This many events counted (nothing was refused).
    Accepted(i64),
    /// These sets' landmarks moved since they were read: nothing was written.
    Stale(Vec<String>),
    /// These events (indices into [`Prepared::events`]) were already seen, or are views
    /// repeated within the dedupe window: nothing was written.
    Refused(Vec<usize>),
}

impl Store {
    pub fn new(redis: ConnectionManager, prefix: &str) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            ingest: Script::new(INGEST),
            rebase: Script::new(REBASE),
            take_counters: Script::new(TAKE_COUNTERS),
            done_counters: Script::new(DONE_COUNTERS),
        }
    }

    pub fn t0_key(&self) -> String {
        events::interaction::t0_key(&self.prefix)
    }

    fn counter_keys(&self) -> [String; 3] {
        [
            format!("{}counters:pending", self.prefix),
            format!("{}counters:flushing", self.prefix),
            format!("{}counters:flushing-id", self.prefix),
        ]
    }

    /// The stored landmarks of `keys` (None where a set has none yet), as stored.
    pub async fn landmarks(&self, keys: &[String]) -> redis::RedisResult<Vec<Option<String>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.redis.clone();
        redis::cmd("HMGET")
            .arg(self.t0_key())
            .arg(keys)
            .query_async(&mut conn)
            .await
    }

    /// Applies a batch atomically; `landmarks[i]` is the t0 `keys[i]`'s increments were
    /// computed against (a set without one gets it).
    pub async fn apply(
        &self,
        keys: &[String],
        landmarks: &[String],
        batch: &Prepared,
        event_ttl_secs: u64,
        view_window_secs: u64,
    ) -> redis::RedisResult<Applied> {
        let [pending, _, _] = self.counter_keys();
        let mut invocation = self.ingest.prepare_invoke();
        invocation.key(self.t0_key()).key(pending);
        for key in keys {
            invocation.key(key);
        }
        invocation
            .arg(&self.prefix)
            .arg(event_ttl_secs.max(1))
            .arg(view_window_secs.max(1))
            .arg(keys.len());
        for t0 in landmarks {
            invocation.arg(t0);
        }
        invocation.arg(batch.events.len());
        for e in &batch.events {
            invocation.arg(&e.id);
        }
        let flags: String = (batch.events.iter())
            .map(|e| if e.counts { '1' } else { '0' })
            .collect();
        invocation.arg(flags);
        let views = || {
            (batch.events.iter().enumerate()).filter(|(_, e)| e.counts && !e.view_key.is_empty())
        };
        invocation.arg(views().count());
        for (_, e) in views() {
            invocation.arg(&e.view_key);
        }
        for (i, _) in views() {
            invocation.arg(i);
        }
        // The increments come grouped by set (see `ingest::prepare`); each group names its
        // set once.
        let groups: Vec<&[(usize, Uuid, f64)]> =
            batch.increments.chunk_by(|a, b| a.0 == b.0).collect();
        invocation.arg(groups.len());
        let mut buffer = Uuid::encode_buffer();
        for group in groups {
            invocation.arg(group[0].0 + 1).arg(group.len());
            for (_, video, inc) in group {
                let video: &str = video.hyphenated().encode_lower(&mut buffer);
                invocation.arg(video).arg(crate::scoring::format_f64(*inc));
            }
        }
        invocation.arg(batch.counters.len());
        for (field, amount) in &batch.counters {
            invocation.arg(field).arg(amount);
        }
        let mut conn = self.redis.clone();
        let reply: Vec<Value> = invocation.invoke_async(&mut conn).await?;
        match reply.first() {
            Some(Value::Int(-1)) => Ok(Applied::Stale(redis::from_redis_value(Value::Array(
                reply[1..].to_vec(),
            ))?)),
            Some(Value::Int(-2)) => Ok(Applied::Refused(redis::from_redis_value(Value::Array(
                reply[1..].to_vec(),
            ))?)),
            Some(Value::Int(n)) if *n >= 0 => Ok(Applied::Accepted(*n)),
            other => Err(redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "ingest script",
                format!("{other:?}"),
            ))),
        }
    }

    /// Tells media's replicas that the trending sets changed, so `trendingChanged`
    /// subscribers get the new top lists (see `events::interaction::trending_moved_channel`).
    /// Best effort: the sets are already written, and media re-reads them periodically anyway.
    pub async fn announce_trending_moved(&self) {
        let at = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as i64;
        let mut conn = self.redis.clone();
        let published: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(events::interaction::trending_moved_channel(&self.prefix))
            .arg(events::interaction::trending_moved_message(at))
            .query_async(&mut conn)
            .await;
        if let Err(e) = published {
            tracing::debug!(error = %e, "trending change not announced");
        }
    }

    /// Rebases `key` from `old_t0` to `new_t0`; false if its landmark was not `old_t0`.
    pub async fn rebase(
        &self,
        key: &str,
        old_t0: &str,
        new_t0: &str,
        factor: f64,
        prune_below: f64,
    ) -> redis::RedisResult<bool> {
        let mut conn = self.redis.clone();
        let done: i64 = self
            .rebase
            .key(self.t0_key())
            .key(key)
            .arg(old_t0)
            .arg(new_t0)
            .arg(crate::scoring::format_f64(factor))
            .arg(crate::scoring::format_f64(prune_below))
            .invoke_async(&mut conn)
            .await?;
        Ok(done == 1)
    }

    /// Every sorted set with a landmark, and the landmark (as stored).
    pub async fn all_landmarks(&self) -> redis::RedisResult<Vec<(String, String)>> {
        let mut conn = self.redis.clone();
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        loop {
            let (next, page): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
                .arg(self.t0_key())
                .arg(cursor)
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

    /// Takes the pending counters: `(report id, [(field, value)])`, or None.
    pub async fn take_counters(
        &self,
        fresh_id: &str,
    ) -> redis::RedisResult<Option<(String, Vec<(String, i64)>)>> {
        let [pending, flushing, flushing_id] = self.counter_keys();
        let mut conn = self.redis.clone();
        let reply: Vec<String> = self
            .take_counters
            .key(pending)
            .key(flushing)
            .key(flushing_id)
            .arg(fresh_id)
            .invoke_async(&mut conn)
            .await?;
        let mut items = reply.into_iter();
        let Some(id) = items.next() else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        while let (Some(field), Some(value)) = (items.next(), items.next()) {
            fields.push((field, value.parse().unwrap_or(0)));
        }
        Ok(Some((id, fields)))
    }

    pub async fn done_counters(&self, id: &str) -> redis::RedisResult<()> {
        let [_, flushing, flushing_id] = self.counter_keys();
        let mut conn = self.redis.clone();
        let _: i64 = self
            .done_counters
            .key(flushing)
            .key(flushing_id)
            .arg(id)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }
}
