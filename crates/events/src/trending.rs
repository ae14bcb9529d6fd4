//! The ranker-to-media contract: what the ranker writes to Redis and publishes there, and
//! what media reads. Both sides import this module; neither spells a key, a channel or a
//! message by hand.
//!
//! * **The sorted sets.** `{prefix}{trending.{window}}:{scope}` ([`trending_key`]) per
//!   [`Window`] and [`Scope`]; members are video ids, scores forward-decayed sums relative
//!   to the set's own landmark `t0` (kept by the ranker, beside its other state). Each
//!   window is one Redis Cluster slot ([`shard`]). Only their order (and
//!   ratios) mean something. The ranker is their only writer; media only reads them.
//! * **The announcements.** After each batch it applies, the ranker announces on
//!   [`trending_moved_channel`] that the sets changed ([`trending_moved_message`]). The
//!   sets are the truth; an announcement only says "read them again", so one that is lost
//!   costs a refresh interval, never a wrong list.
//! * **The hub's wire format.** That channel belongs to media's real-time hub: every hub
//!   channel is `{prefix}rt:{name}` on Redis ([`hub_prefix`]) and carries [`Wire`]
//!   envelopes, `{"at": micros, "event": {"type": …, …}}`. Media decodes every channel's
//!   messages with [`Wire`]; an announcement is a [`Wire`] of [`Announcement`], whose `type`
//!   tags must be variants of media's hub event enum (media's tests decode
//!   [`trending_moved_message`] to check that they are).

use serde::{Deserialize, Serialize};

/// A trending window: a decayed score whose half-life is configured per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    Hour,
    Day,
    Week,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::Hour, Window::Day, Window::Week];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
        }
    }
}

/// Which videos a sorted set ranks. A channel (one uploader's videos) has no set: its
/// ranking is the global one restricted to its videos, which media reads by scoring them
/// in the global set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Global,
    Category(String),
}

/// What every sorted set of one window starts with: `{prefix}{trending.{window}}`. The
/// braces are a Redis Cluster hash tag: a window's sorted sets (and, on a cluster, the
/// ranker's landmarks and dedupe marks for them) share one slot, so one script can update
/// them atomically; the three windows are three slots. The tags' slots (hour 4135, week 6340, day 11994)
/// fall in different thirds of the 16,384, so a cluster whose slots are split evenly over
/// three primaries (as `redis-cli --cluster create` and the operators split them) puts
/// each window on its own primary. (On a single server the braces are only characters.)
pub fn shard(prefix: &str, window: Window) -> String {
    format!("{prefix}{{trending.{}}}", window.as_str())
}

/// The Redis key of a trending sorted set: `{prefix}{trending.{window}}:{scope}` with
/// scope `global` or `category:{name}` (see [`shard`]). Members are video ids; scores are
/// forward-decayed sums relative to the key's own `t0` (the ranker's), so only their
/// order (and ratios) mean something.
pub fn trending_key(prefix: &str, window: Window, scope: &Scope) -> String {
    let shard = shard(prefix, window);
    match scope {
        Scope::Global => format!("{shard}:global"),
        Scope::Category(c) => format!("{shard}:category:{c}"),
    }
}

/// The window of a trending key of `prefix` (as [`trending_key`] writes it).
pub fn window_of(prefix: &str, key: &str) -> Option<Window> {
    let rest = key.strip_prefix(prefix)?.strip_prefix("{trending.")?;
    let (window, _) = rest.split_once('}')?;
    Window::ALL.into_iter().find(|w| w.as_str() == window)
}

/// What precedes a hub channel's name on Redis under `prefix` (`REDIS_PREFIX`).
pub fn hub_prefix(prefix: &str) -> String {
    format!("{prefix}rt:")
}

/// The hub channel (its name without [`hub_prefix`]) of the ranker's announcements: one
/// channel for all windows.
pub const TRENDING_CHANNEL: &str = "trending";

/// The Redis pub/sub channel on which the ranker announces that it changed the trending
/// sets. It is a channel of media's real-time hub, so every media replica with
/// `trendingChanged` subscribers hears it through its one hub connection.
pub fn trending_moved_channel(prefix: &str) -> String {
    format!("{}{TRENDING_CHANNEL}", hub_prefix(prefix))
}

/// What travels on a hub channel: the event and when it was published (Unix
/// microseconds, the start of the delivery latency media measures).
#[derive(Debug, Serialize, Deserialize)]
pub struct Wire<E> {
    pub at: i64,
    pub event: E,
}

/// The hub events other services than media publish. Each variant is also a variant of
/// media's hub event enum, with the same tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Announcement {
    /// The trending sets changed: re-read the top lists. Carries no data.
    TrendingMoved,
}

/// The announcement on [`trending_moved_channel`], published at `published_at_micros`.
pub fn trending_moved_message(published_at_micros: i64) -> String {
    serde_json::to_string(&Wire {
        at: published_at_micros,
        event: Announcement::TrendingMoved,
    })
    .expect("announcements serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_window_and_scope() {
        assert_eq!(
            trending_key("kino:", Window::Day, &Scope::Global),
            "kino:{trending.day}:global"
        );
        assert_eq!(
            trending_key("", Window::Hour, &Scope::Category("music".into())),
            "{trending.hour}:category:music"
        );
        let week = trending_key("kino:", Window::Week, &Scope::Category("a:b".into()));
        assert_eq!(window_of("kino:", &week), Some(Window::Week));
        assert_eq!(window_of("other:", &week), None);
        // Everything of one window hashes by the tag alone (the prefix is outside it).
        assert_eq!(shard("kino:", Window::Day), "kino:{trending.day}");
    }

    /// Redis Cluster's key slot: CRC16 (XMODEM) of the hash tag, mod 16384.
    fn slot(tag: &str) -> u16 {
        let mut crc: u16 = 0;
        for byte in tag.bytes() {
            crc ^= u16::from(byte) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 {
                    (crc << 1) ^ 0x1021
                } else {
                    crc << 1
                };
            }
        }
        crc % 16384
    }

    #[test]
    fn the_windows_land_on_three_primaries_of_an_evenly_split_cluster() {
        assert_eq!(slot("123456789"), 0x31C3, "the CRC16 Redis documents");
        let thirds: Vec<u16> = Window::ALL
            .iter()
            .map(|w| {
                let key = shard("", *w);
                let tag = &key[1..key.len() - 1];
                slot(tag) / (16384 / 3 + 1)
            })
            .collect();
        assert_eq!(thirds, [0, 2, 1], "hour, day, week");
    }

    #[test]
    fn announcements_are_hub_envelopes_on_a_hub_channel() {
        assert_eq!(trending_moved_channel("kino:"), "kino:rt:trending");
        assert_eq!(
            trending_moved_message(5),
            r#"{"at":5,"event":{"type":"trending_moved"}}"#
        );
        let back: Wire<Announcement> = serde_json::from_str(&trending_moved_message(7)).unwrap();
        assert_eq!((back.at, back.event), (7, Announcement::TrendingMoved));
    }
}
