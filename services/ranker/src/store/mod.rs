//! The ranker's Redis state, changed only through Lua scripts so that each change is
//! atomic. Its landmarks, dedupe marks and counters live in *shards* ([`Shard`]), each
//! under one hash tag `{t}` and so in one Redis Cluster slot, and a script only ever
//! touches one shard (and the sorted sets of its windows):
//!
//! * on a Redis Cluster, one shard per trending window, `{p}{trending.{window}}`, the tag
//!   of the window's sorted sets too (events::trending::shard): the three windows' scripts
//!   run on three primaries at once;
//! * on a single server, one shard for all three, `{p}{trending}`: an event is marked once,
//!   not once per window, and a part of a batch is one script (three scripts marking each
//!   event three times cost a third of the throughput: bench/RESULTS.md, 2026-12-07).
//!
//! A shard holds:
//!
//! * `{t}:t0`: the landmark `t0` of each sorted set of its windows (a hash, field = the
//!   set's key; the sets are `{p}{trending.{window}}:{scope}`, events::trending);
//! * `{t}:seen:{bucket}`: a set of the ids of events applied to its windows in a bucket of
//!   `EVENT_DEDUPE_SECS` (each bucket expires after two);
//! * `{t}:views:{bucket}`: a hash, `{viewer}:{video}` → `{millis}:{event id}`, of the views
//!   that counted there in a bucket of `VIEW_DEDUPE_SECS` (each expires after two);
//! * in the shard of the [`COUNTER_WINDOW`] only, `{t}:counters:pending` / `:flushing` /
//!   `:flushing-id`: accepted views and watch seconds not yet reported to the catalogue
//!   (see crate::counters).
//!
//! A batch is applied in parts (crate::ingest splits it by video, so that no script holds
//! Redis for long), each part by one call of the ingest script ([`ingest`]) per shard: it
//! checks that every event of the part that counts is new to the shard, then marks each
//! event seen there, records the counted views and adds the part's summed increments to
//! the shard's sets (and, in the counter shard, its counters), all or nothing. A part's
//! shard is atomic, the batch is not: it is acknowledged only once every part was applied
//! to every shard. If the process dies in between, the redelivered events find their marks
//! where they were applied and add nothing there (they are refused, marked without
//! counting, and the rest recomputed), while shards and parts not yet applied are applied
//! then, and a script that had not run wrote nothing. The script also checks the `t0` the
//! increments were computed against, so a concurrent rebase (here or in another replica)
//! can never mix landmarks: a stale part writes nothing and is recomputed.
//!
//! Moving a deployment from a server to a cluster moves the sorted sets (their names do
//! not change) but not the shards' state: the trending lists start again from empty
//! landmarks, which is why the sets should go too (`unsharded.lua` is the move from the
//! layout before shards, on a server).

mod ingest;

use events::trending::{Window, shard};
use ingest::IngestArgs;
pub use ingest::{Applied, Mark, Prepared};
use platform::redis::Redis;
use redis::{Script, Value};

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

/// The window whose shard also holds the view counters: a part's counters are added by
/// that shard's script, in the same atomic step as its marks, so they count once.
pub const COUNTER_WINDOW: Window = Window::Hour;

/// Where some windows keep their ranker state: keys under one hash tag (see the module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// `{p}{trending.{window}}` (a cluster's shard of one window) or `{p}{trending}` (a
    /// server's one shard).
    pub tag: String,
    pub windows: Vec<Window>,
}

impl Shard {
    /// The shards of `prefix`'s state: one per window on a cluster, one on a server.
    pub fn layout(prefix: &str, cluster: bool) -> Vec<Shard> {
        if cluster {
            (Window::ALL.iter())
                .map(|&w| Shard {
                    tag: shard(prefix, w),
                    windows: vec![w],
                })
                .collect()
        } else {
            vec![Shard {
                tag: format!("{prefix}{{trending}}"),
                windows: Window::ALL.to_vec(),
            }]
        }
    }

    /// The hash of the landmarks of this shard's sorted sets.
    pub fn t0_key(&self) -> String {
        format!("{}:t0", self.tag)
    }

    /// What this shard's dedupe buckets' names start with (`{t}:seen:…`, `{t}:views:…`).
    pub fn marks_prefix(&self) -> String {
        format!("{}:", self.tag)
    }

    /// Whether this shard's scripts add the view counters.
    pub fn has_counters(&self) -> bool {
        self.windows.contains(&COUNTER_WINDOW)
    }

    /// Counter keys: pending, flushing, flushing id. Only the counter shard's hold
    /// anything; another shard's pending key is named to its script only because every
    /// key a script is given must share the shard's slot.
    fn counter_keys(&self) -> [String; 3] {
        [
            format!("{}:counters:pending", self.tag),
            format!("{}:counters:flushing", self.tag),
            format!("{}:counters:flushing-id", self.tag),
        ]
    }
}

#[derive(Clone)]
pub struct Store {
    pub redis: Redis,
    pub prefix: String,
    pub shards: Vec<Shard>,
    ingest: Script,
    rebase: Script,
    take_counters: Script,
    done_counters: Script,
}

impl Store {
    pub fn new(redis: Redis, prefix: &str) -> Self {
        Self {
            shards: Shard::layout(prefix, redis.is_cluster()),
            redis,
            prefix: prefix.to_owned(),
            ingest: Script::new(ingest::SCRIPT),
            rebase: Script::new(REBASE),
            take_counters: Script::new(TAKE_COUNTERS),
            done_counters: Script::new(DONE_COUNTERS),
        }
    }

    /// The shard that holds `window`'s state.
    pub fn shard_of(&self, window: Window) -> &Shard {
        (self.shards.iter())
            .find(|s| s.windows.contains(&window))
            .expect("every window has a shard")
    }

    /// The stored landmarks of `keys`, all sets of `shard` (None where a set has none
    /// yet), as stored.
    pub async fn landmarks(
        &self,
        shard: &Shard,
        keys: &[String],
    ) -> redis::RedisResult<Vec<Option<String>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.redis.clone();
        redis::cmd("HMGET")
            .arg(shard.t0_key())
            .arg(keys)
            .query_async(&mut conn)
            .await
    }

    /// Applies one part of a batch to `shard` atomically: `keys` are sets of its windows,
    /// `landmarks[i]` is the t0 `keys[i]`'s increments were computed against (a set without
    /// one gets it), and `batch` carries counters only for the counter shard.
    pub async fn apply(
        &self,
        shard: &Shard,
        keys: &[String],
        landmarks: &[String],
        batch: &Prepared,
        event_ttl_secs: u64,
        view_window_secs: u64,
    ) -> redis::RedisResult<Applied> {
        debug_assert!(shard.has_counters() || batch.counters.is_empty());
        let [pending, _, _] = shard.counter_keys();
        let mut invocation = self.ingest.prepare_invoke();
        IngestArgs {
            t0_hash: &shard.t0_key(),
            pending_counters: &pending,
            sets: keys,
            prefix: &shard.marks_prefix(),
            event_ttl_secs,
            view_window_secs,
            landmarks,
            batch,
        }
        .write(&mut invocation);
        let mut conn = self.redis.clone();
        let reply: Vec<Value> = invocation.invoke_async(&mut conn).await?;
        Applied::from_reply(reply)
    }

    /// Tells media's replicas that the trending sets changed, so `trendingChanged`
    /// subscribers get the new top lists (see `events::trending::trending_moved_channel`).
    /// Best effort: the sets are already written, and media re-reads them periodically anyway.
    pub async fn announce_trending_moved(&self) {
        let at = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as i64;
        let mut conn = self.redis.clone();
        let published: redis::RedisResult<i64> = redis::cmd(self.redis.publish_command())
            .arg(events::trending::trending_moved_channel(&self.prefix))
            .arg(events::trending::trending_moved_message(at))
            .query_async(&mut conn)
            .await;
        if let Err(e) = published {
            tracing::debug!(error = %e, "trending change not announced");
        }
    }

    /// Rebases `key` (a set of `window`) from `old_t0` to `new_t0`; false if its landmark
    /// was not `old_t0`.
    pub async fn rebase(
        &self,
        window: Window,
        key: &str,
        old_t0: &str,
        new_t0: &str,
        factor: f64,
        prune_below: f64,
    ) -> redis::RedisResult<bool> {
        let mut conn = self.redis.clone();
        let done: i64 = self
            .rebase
            .key(self.shard_of(window).t0_key())
            .key(key)
            .arg(old_t0)
            .arg(new_t0)
            .arg(crate::scoring::format_f64(factor))
            .arg(crate::scoring::format_f64(prune_below))
            .invoke_async(&mut conn)
            .await?;
        Ok(done == 1)
    }

    /// Every sorted set with a landmark: its window, its key and the landmark (as stored).
    pub async fn all_landmarks(&self) -> redis::RedisResult<Vec<(Window, String, String)>> {
        let mut conn = self.redis.clone();
        let mut out = Vec::new();
        for shard in &self.shards {
            let mut cursor: u64 = 0;
            loop {
                let (next, page): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
                    .arg(shard.t0_key())
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await?;
                out.extend(page.into_iter().filter_map(|(key, t0)| {
                    let window = events::trending::window_of(&self.prefix, &key)?;
                    Some((window, key, t0))
                }));
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(out)
    }

    /// Moves a single server's state from the layout before the window shards, if any is
    /// left (see `unsharded.lua`); returns how many sorted sets moved. A cluster never had
    /// it.
    pub async fn upgrade_unsharded(&self) -> redis::RedisResult<i64> {
        if self.redis.is_cluster() {
            return Ok(0);
        }
        let mut conn = self.redis.clone();
        Script::new(include_str!("unsharded.lua"))
            .arg(&self.prefix)
            .arg(&self.shards[0].tag)
            .invoke_async(&mut conn)
            .await
    }

    /// Takes the pending counters: `(report id, [(field, value)])`, or None.
    pub async fn take_counters(
        &self,
        fresh_id: &str,
    ) -> redis::RedisResult<Option<(String, Vec<(String, i64)>)>> {
        let [pending, flushing, flushing_id] = self.shard_of(COUNTER_WINDOW).counter_keys();
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
        let [_, flushing, flushing_id] = self.shard_of(COUNTER_WINDOW).counter_keys();
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
