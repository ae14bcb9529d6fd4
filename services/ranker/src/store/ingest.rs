//! The ingest script (`ingest.lua`): one part of a batch, applied all or nothing.
//!
//! Its input is positional (Lua reads `KEYS[i]` and `ARGV[i]`), so the layout is defined
//! once, by [`IngestArgs`]: the type that writes the arguments documents each position,
//! the script's header points to it, and a unit test pins it, computing each section's
//! position the way the script does.
//!
//! Marks live in buckets of time (Redis' clock, so every replica agrees): the ids seen in
//! bucket `b = ⌊now / event TTL⌋` are the members of one set `seen:{b}`, and the views
//! counted in `b = ⌊now / window⌋` are fields of one hash `views:{b}` whose values are
//! `{millis}:{event id}`. A lookup reads the current and the previous bucket, so an id is
//! remembered for at least the TTL (at most twice it), and a view repeats while it is
//! younger than the window, exactly. A part thus costs a few commands of thousands of
//! arguments (SMISMEMBER, HMGET, SADD, HSET) instead of a key per event, most of them
//! straight from ARGV.
//!
//! The increments were summed assuming every counting event is new, so the script refuses
//! rather than apply them in part: when a landmark moved or a counting event was already
//! seen (or is a repeated view) it writes nothing and says which ([`Applied`]).

use redis::{ScriptInvocation, ToRedisArgs, Value};
use uuid::Uuid;

pub const SCRIPT: &str = include_str!("ingest.lua");

/// A part of a batch, ready for [`crate::store::Store::apply`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prepared {
    pub events: Vec<Mark>,
    /// (index into the part's sets, video, the summed increment of its counting events),
    /// grouped by set (consecutive entries of one set are sent under its index once).
    pub increments: Vec<(usize, Uuid, f64)>,
    /// Counter fields (`v:{video}` views, `w:{video}` watch seconds) and summed amounts.
    pub counters: Vec<(String, i64)>,
}

/// One event of a part: what marks it seen, and whether it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub id: String,
    /// `{viewer}:{video}` for a counting view, else empty.
    pub view_key: String,
    /// False for an event that is only marked seen (a repeated view).
    pub counts: bool,
}

/// What applying a part did.
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

impl Applied {
    /// The script's reply: `{accepted}`, `{-1, key…}` or `{-2, event index…}`.
    pub fn from_reply(reply: Vec<Value>) -> redis::RedisResult<Self> {
        match reply.first() {
            Some(Value::Int(-1)) => Ok(Self::Stale(redis::from_redis_value(Value::Array(
                reply[1..].to_vec(),
            ))?)),
            Some(Value::Int(-2)) => Ok(Self::Refused(redis::from_redis_value(Value::Array(
                reply[1..].to_vec(),
            ))?)),
            Some(Value::Int(n)) if *n >= 0 => Ok(Self::Accepted(*n)),
            other => Err(redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "ingest script",
                format!("{other:?}"),
            ))),
        }
    }
}

/// The ingest script's input, field by field in the order the script reads it. Positions
/// are 1-based, as in Lua; K is the number of sets, N of events, V of counting views, G of
/// increment groups, C of counter fields.
#[derive(Debug, Clone, Copy)]
pub struct IngestArgs<'a> {
    /// `KEYS[1]`: the landmark hash (`{p}trending:t0`; field = a set's key, value = its t0).
    pub t0_hash: &'a str,
    /// `KEYS[2]`: the hash of counters not yet reported (`{p}counters:pending`).
    pub pending_counters: &'a str,
    /// `KEYS[3 ..= 2 + K]`: the sorted sets the part adds to. "Set index `s`" below is
    /// 1-based and names `KEYS[2 + s]`, i.e. `sets[s - 1]`.
    pub sets: &'a [String],
    /// `ARGV[1]`: the key prefix, which the dedupe buckets' names (`{p}seen:{b}`,
    /// `{p}views:{b}`) start with; the script picks `b` from Redis' clock.
    pub prefix: &'a str,
    /// `ARGV[2]`: seconds an event id is remembered (a `seen:` bucket); sent as at least 1.
    pub event_ttl_secs: u64,
    /// `ARGV[3]`: seconds within which a viewer's view of a video repeats (a `views:`
    /// bucket); sent as at least 1.
    pub view_window_secs: u64,
    /// `ARGV[4]` = K, then `ARGV[5 ..= 4 + K]`: the t0 (as stored) that each set's
    /// increments were computed against, `landmarks[i]` for `sets[i]`. A set whose stored
    /// t0 differs makes the part stale; a set without one gets this one.
    pub landmarks: &'a [String],
    /// Everything after, from `ARGV[5 + K]`, in sections that each start with their count:
    /// * N, then the N event ids (`events[i].id`);
    /// * one string of N flags, `1` for an event that counts and `0` for one that is only
    ///   marked seen (`events[i].counts`);
    /// * V, then the V counting views' `{viewer}:{video}` keys, then their V event indices
    ///   (0-based, into `events`);
    /// * G, then per group of one set's increments: its set index, the group's length,
    ///   then per video: the video id, its summed increment;
    /// * C, then per counter field: the field, its summed amount.
    pub batch: &'a Prepared,
}

/// Where [`IngestArgs::write`] puts the arguments: the script invocation, or a test's record.
pub trait Args {
    fn key(&mut self, key: &str);
    fn arg<T: ToRedisArgs>(&mut self, arg: T);
}

impl Args for ScriptInvocation<'_> {
    fn key(&mut self, key: &str) {
        ScriptInvocation::key(self, key);
    }

    fn arg<T: ToRedisArgs>(&mut self, arg: T) {
        ScriptInvocation::arg(self, arg);
    }
}

impl IngestArgs<'_> {
    /// Writes KEYS and ARGV in the documented order.
    pub fn write(&self, out: &mut impl Args) {
        assert_eq!(
            self.sets.len(),
            self.landmarks.len(),
            "one landmark per set"
        );
        let batch = self.batch;
        out.key(self.t0_hash);
        out.key(self.pending_counters);
        for set in self.sets {
            out.key(set);
        }
        out.arg(self.prefix);
        out.arg(self.event_ttl_secs.max(1));
        out.arg(self.view_window_secs.max(1));
        out.arg(self.sets.len());
        for t0 in self.landmarks {
            out.arg(t0);
        }
        out.arg(batch.events.len());
        for e in &batch.events {
            out.arg(&e.id);
        }
        let flags: String = (batch.events.iter())
            .map(|e| if e.counts { '1' } else { '0' })
            .collect();
        out.arg(flags);
        let views = || {
            (batch.events.iter().enumerate()).filter(|(_, e)| e.counts && !e.view_key.is_empty())
        };
        out.arg(views().count());
        for (_, e) in views() {
            out.arg(&e.view_key);
        }
        for (i, _) in views() {
            out.arg(i);
        }
        // The increments come grouped by set (see `ingest::prepare`); each group names its
        // set once.
        let groups: Vec<&[(usize, Uuid, f64)]> =
            batch.increments.chunk_by(|a, b| a.0 == b.0).collect();
        out.arg(groups.len());
        let mut buffer = Uuid::encode_buffer();
        for group in groups {
            out.arg(group[0].0 + 1);
            out.arg(group.len());
            for (_, video, inc) in group {
                let video: &str = video.hyphenated().encode_lower(&mut buffer);
                out.arg(video);
                out.arg(crate::scoring::format_f64(*inc));
            }
        }
        out.arg(batch.counters.len());
        for (field, amount) in &batch.counters {
            out.arg(field);
            out.arg(amount);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorded {
        keys: Vec<String>,
        argv: Vec<String>,
    }

    impl Args for Recorded {
        fn key(&mut self, key: &str) {
            self.keys.push(key.to_owned());
        }

        fn arg<T: ToRedisArgs>(&mut self, arg: T) {
            for bytes in arg.to_redis_args() {
                self.argv.push(String::from_utf8(bytes).unwrap());
            }
        }
    }

    fn mark(id: &str, view_key: &str, counts: bool) -> Mark {
        Mark {
            id: id.into(),
            view_key: view_key.into(),
            counts,
        }
    }

    #[test]
    fn arguments_are_where_the_script_reads_them() {
        let (a, b) = (Uuid::from_u128(0xa), Uuid::from_u128(0xb));
        let batch = Prepared {
            events: vec![
                mark("e0", "u:a", true),
                mark("e1", "u:b", false), // a repeated view: marked, not counted
                mark("e2", "", true),
                mark("e3", "w:a", true),
            ],
            increments: vec![(0, a, 1.5), (0, b, 2.0), (1, a, 0.25)],
            counters: vec![(format!("v:{a}"), 2)],
        };
        let sets = ["s:hour".to_owned(), "s:day".to_owned()];
        let landmarks = ["100.5".to_owned(), "200".to_owned()];
        let mut out = Recorded::default();
        IngestArgs {
            t0_hash: "p:trending:t0",
            pending_counters: "p:counters:pending",
            sets: &sets,
            prefix: "p:",
            event_ttl_secs: 0, // sent as 1
            view_window_secs: 1800,
            landmarks: &landmarks,
            batch: &batch,
        }
        .write(&mut out);

        assert_eq!(
            out.keys,
            ["p:trending:t0", "p:counters:pending", "s:hour", "s:day"]
        );
        let (a, b) = (a.to_string(), b.to_string());
        #[rustfmt::skip]
        let expected = [
            "p:", "1", "1800",
            "2", "100.5", "200",
            "4", "e0", "e1", "e2", "e3",
            "1011",
            "2", "u:a", "w:a", "0", "3",
            "2",
            "1", "2", &a, "1.5", &b, "2.0",
            "2", "1", &a, "0.25",
            "1", &format!("v:{a}"), "2",
        ];
        assert_eq!(out.argv, expected);

        // The positions as ingest.lua computes them (1-based).
        let argv = |i: usize| out.argv[i - 1].as_str();
        let key = |i: usize| out.keys[i - 1].as_str();
        let k: usize = argv(4).parse().unwrap();
        assert_eq!(key(2 + k), "s:day", "set index K is KEYS[2 + K]");
        assert_eq!(argv(4 + k), "200", "set K's landmark is ARGV[4 + K]");
        let n: usize = argv(5 + k).parse().unwrap();
        let ids = 6 + k;
        assert_eq!(argv(ids), "e0");
        assert_eq!(argv(ids + n), "1011", "flags");
        let v: usize = argv(ids + n + 1).parse().unwrap();
        let view_keys = ids + n + 2;
        let view_events = view_keys + v;
        assert_eq!((argv(view_keys), argv(view_events)), ("u:a", "0"));
        let groups = view_events + v;
        assert_eq!(argv(groups), "2");
        assert_eq!(argv(groups + 1), "1", "first group's set index");
        let counters = groups + 1 + (2 + 2 * 2) + (2 + 2);
        assert_eq!(argv(counters), "1");
        assert_eq!(out.argv.len(), counters + 2);
    }

    #[test]
    fn replies_decode() {
        assert_eq!(
            Applied::from_reply(vec![Value::Int(3)]).unwrap(),
            Applied::Accepted(3)
        );
        assert_eq!(
            Applied::from_reply(vec![Value::Int(-2), Value::Int(0), Value::Int(5)]).unwrap(),
            Applied::Refused(vec![0, 5])
        );
        assert_eq!(
            Applied::from_reply(vec![Value::Int(-1), Value::BulkString(b"s:day".to_vec())])
                .unwrap(),
            Applied::Stale(vec!["s:day".into()])
        );
        assert!(Applied::from_reply(Vec::new()).is_err());
    }
}
