//! The ranker's configuration; every variable has a local default.

use std::time::Duration;

use events::trending::Window;
use platform::config::{self, ConfigError, HttpConfig, secs, var, var_opt};

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub redis_url: String,
    /// `REDIS_PREFIX`: namespace of every Redis key (media reads the same keys).
    pub redis_prefix: String,
    pub mongodb_uri: String,
    pub mongodb_database: String,
    pub amqp_url: String,
    /// `QUEUE_PREFIX`: prepended to the ranker's queue names and to the interaction
    /// routing keys it binds (see events::interaction); media must use the same.
    pub queue_prefix: String,
    /// `QUEUE_EXPIRES_SECS`: when set, the broker deletes the ranker's queues after being
    /// unused that long (throw-away stacks only); unset, queues under a `QUEUE_PREFIX`
    /// expire after events::queue::PREFIXED_QUEUE_EXPIRY.
    pub queue_expires: Option<Duration>,
    pub scoring: Scoring,
    pub ingest: Ingest,
    pub roles: Roles,
}

/// `RANKER_ROLES`: which consumers this process runs, comma-separated: `rank`
/// (interactions into the trending sets, view counters, rebasing) and `archive` (raw events
/// into MongoDB). Both by default. They consume separate queues, so a deployment may run
/// them as separate processes: the archive then scales, and falls behind, on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub rank: bool,
    pub archive: bool,
}

impl Default for Roles {
    fn default() -> Self {
        Self {
            rank: true,
            archive: true,
        }
    }
}

impl std::str::FromStr for Roles {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut roles = Self {
            rank: false,
            archive: false,
        };
        for role in s.split(',').map(str::trim) {
            match role {
                "rank" => roles.rank = true,
                "archive" => roles.archive = true,
                other => return Err(format!("unknown role {other:?} (rank, archive)")),
            }
        }
        Ok(roles)
    }
}

/// How interactions become scores.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Scoring {
    pub weights: Weights,
    /// Half-life of each window's decay, in seconds.
    pub half_lives: HalfLives,
}

/// Points per interaction (`WEIGHT_*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub view: f64,
    pub like: f64,
    pub comment: f64,
    pub share: f64,
    /// Points per started [`Weights::watch_unit_secs`] of watch time.
    pub watch: f64,
    pub watch_unit_secs: u32,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            view: 1.0,
            like: 5.0,
            comment: 8.0,
            share: 10.0,
            watch: 1.0,
            watch_unit_secs: 10,
        }
    }
}

/// `HALF_LIFE_{HOUR,DAY,WEEK}_SECS`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HalfLives {
    pub hour: f64,
    pub day: f64,
    pub week: f64,
}

impl Default for HalfLives {
    fn default() -> Self {
        Self {
            hour: 3600.0,
            day: 86_400.0,
            week: 604_800.0,
        }
    }
}

impl HalfLives {
    pub fn of(&self, window: Window) -> f64 {
        match window {
            Window::Hour => self.hour,
            Window::Day => self.day,
            Window::Week => self.week,
        }
    }
}

/// How the ranker consumes and maintains the sorted sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ingest {
    /// `RANKER_BATCH_SIZE`: events per batch, summed together; a pack of events
    /// (events::pack) counts as the events it holds.
    pub batch_size: u16,
    /// `RANKER_SCRIPT_WRITES`: a batch is written as Redis scripts of about this many
    /// writes each (a mark per event, a ZINCRBY per sorted set and distinct video), split
    /// by video, so that one script holds Redis (single-threaded, and shared with media's
    /// pub/sub) for about a hundred milliseconds at most.
    pub script_writes: u16,
    /// `RANKER_PREFETCH`: messages the broker may send ahead of the acknowledgements, for
    /// each of the ranker's queues. Media sends interactions in packs (up to
    /// `INTERACTION_PACK_SIZE` events per message), so a few messages make a batch; with two
    /// batches in hand, this should hold two full batches of packs.
    pub prefetch: u16,
    /// `RANKER_BATCH_WAIT_MILLIS`: how long a batch waits to fill once it has one event.
    pub batch_wait: Duration,
    /// `VIEW_DEDUPE_SECS`: a viewer's repeated views of a video count once this long.
    pub view_dedupe: Duration,
    /// `EVENT_DEDUPE_SECS`: how long an applied event id is remembered (a redelivery or a
    /// re-publish within this is dropped).
    pub event_dedupe: Duration,
    /// `REBASE_CHECK_SECS`: how often the sorted sets are checked for rebasing.
    pub rebase_check: Duration,
    /// `REBASE_AFTER_HALF_LIVES`: a key is rebased once its `t0` is this many half-lives
    /// old (its new increments are then 2^this times those at `t0`).
    pub rebase_after_half_lives: f64,
    /// `TRENDING_PRUNE_BELOW`: members whose rebased score falls below this are removed
    /// (a view decayed by ~10 half-lives by default; `-inf` keeps everything).
    pub prune_below: f64,
    /// `COUNTER_FLUSH_MILLIS`: how often accepted views/watch time go to the catalogue.
    pub counter_flush: Duration,
    /// `ARCHIVE_BATCH_SIZE`: events per MongoDB insert.
    pub archive_batch_size: u16,
}

impl Ingest {
    /// How a consumer of the ranker's queues fills batches of up to `max_events`.
    pub fn batching(&self, max_events: u16) -> events::consumer::Batching {
        events::consumer::Batching {
            max_events: usize::from(max_events),
            max_wait: self.batch_wait,
            prefetch: self.prefetch,
            // Both consumers' writes are idempotent and commutative (marks + sums in
            // one script; unordered inserts by id): the next batch is prepared while
            // the previous one is written.
            in_flight: 2,
        }
    }
}

impl Default for Ingest {
    fn default() -> Self {
        Self {
            batch_size: 60_000,
            script_writes: 30_000,
            prefetch: 1_500,
            batch_wait: Duration::from_millis(20),
            view_dedupe: Duration::from_secs(1800),
            event_dedupe: Duration::from_secs(3600),
            rebase_check: Duration::from_secs(60),
            rebase_after_half_lives: 32.0,
            prune_below: 0.001,
            counter_flush: Duration::from_secs(1),
            archive_batch_size: 1000,
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let (mongodb_uri, mongodb_database) = config::mongodb()?;
        let w = Weights::default();
        let h = HalfLives::default();
        let i = Ingest::default();
        let millis = |name: &str, default: Duration| -> Result<Duration, ConfigError> {
            Ok(Duration::from_millis(var(
                name,
                &default.as_millis().to_string(),
            )?))
        };
        let seconds =
            |name: &str, default: Duration| secs(name, &default.as_secs_f64().to_string());
        Ok(Self {
            http: HttpConfig::from_env("0.0.0.0:8085")?,
            redis_url: config::redis_url()?,
            redis_prefix: var("REDIS_PREFIX", "kino:")?,
            mongodb_uri,
            mongodb_database,
            amqp_url: config::amqp_url()?,
            queue_prefix: var("QUEUE_PREFIX", "")?,
            queue_expires: var_opt::<f64>("QUEUE_EXPIRES_SECS")?.map(Duration::from_secs_f64),
            scoring: Scoring {
                weights: Weights {
                    view: var("WEIGHT_VIEW", &w.view.to_string())?,
                    like: var("WEIGHT_LIKE", &w.like.to_string())?,
                    comment: var("WEIGHT_COMMENT", &w.comment.to_string())?,
                    share: var("WEIGHT_SHARE", &w.share.to_string())?,
                    watch: var("WEIGHT_WATCH", &w.watch.to_string())?,
                    watch_unit_secs: positive(
                        "WATCH_UNIT_SECS",
                        var("WATCH_UNIT_SECS", &w.watch_unit_secs.to_string())?,
                    )?,
                },
                half_lives: HalfLives {
                    hour: positive(
                        "HALF_LIFE_HOUR_SECS",
                        var("HALF_LIFE_HOUR_SECS", &h.hour.to_string())?,
                    )?,
                    day: positive(
                        "HALF_LIFE_DAY_SECS",
                        var("HALF_LIFE_DAY_SECS", &h.day.to_string())?,
                    )?,
                    week: positive(
                        "HALF_LIFE_WEEK_SECS",
                        var("HALF_LIFE_WEEK_SECS", &h.week.to_string())?,
                    )?,
                },
            },
            ingest: Ingest {
                batch_size: var("RANKER_BATCH_SIZE", &i.batch_size.to_string())?,
                script_writes: positive(
                    "RANKER_SCRIPT_WRITES",
                    var("RANKER_SCRIPT_WRITES", &i.script_writes.to_string())?,
                )?,
                prefetch: var("RANKER_PREFETCH", &i.prefetch.to_string())?,
                batch_wait: millis("RANKER_BATCH_WAIT_MILLIS", i.batch_wait)?,
                view_dedupe: seconds("VIEW_DEDUPE_SECS", i.view_dedupe)?,
                event_dedupe: seconds("EVENT_DEDUPE_SECS", i.event_dedupe)?,
                rebase_check: seconds("REBASE_CHECK_SECS", i.rebase_check)?,
                rebase_after_half_lives: positive(
                    "REBASE_AFTER_HALF_LIVES",
                    var(
                        "REBASE_AFTER_HALF_LIVES",
                        &i.rebase_after_half_lives.to_string(),
                    )?,
                )?,
                prune_below: var("TRENDING_PRUNE_BELOW", &i.prune_below.to_string())?,
                counter_flush: millis("COUNTER_FLUSH_MILLIS", i.counter_flush)?,
                archive_batch_size: var("ARCHIVE_BATCH_SIZE", &i.archive_batch_size.to_string())?,
            },
            roles: var("RANKER_ROLES", "rank,archive")?,
        })
    }

    /// A queue spec for one of the ranker's own queues, bound to every interaction.
    pub fn queue(&self, name: &str) -> events::consumer::QueueSpec {
        events::Namespace::new(&self.queue_prefix)
            .expiring(self.queue_expires)
            .queue(name)
            .bind(
                events::topology::INTERACTIONS,
                &events::interaction::binding(&self.queue_prefix),
            )
    }
}

/// Refuses zero and negative values where they make no sense (a half-life, a unit).
fn positive<T: PartialOrd + Default + ToString>(name: &str, value: T) -> Result<T, ConfigError> {
    if value > T::default() {
        Ok(value)
    } else {
        Err(ConfigError {
            name: name.to_owned(),
            value: value.to_string(),
            reason: "must be positive".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Roles;

    #[test]
    fn roles_parse_from_a_list_and_refuse_unknown_ones() {
        let both: Roles = "rank,archive".parse().unwrap();
        assert_eq!(both, Roles::default());
        let archive: Roles = " archive ".parse().unwrap();
        assert!(archive.archive && !archive.rank);
        assert!("rank,search".parse::<Roles>().is_err());
        assert!("".parse::<Roles>().is_err());
    }
}
