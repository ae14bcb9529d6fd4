//! Users' tastes: what each signed-in user liked, commented on and watched, decayed.
//!
//! Per (user, video) a *signal* holds a decayed score: the sum of the weights of the
//! user's interactions with the video, each multiplied by `2^(-age / half-life)`. It is
//! stored as a value at a time `(score, at)`; adding weight `w` at time `t` first decays
//! the stored value to `t` (or decays `w` back to `at` when the event is older), so the
//! order events arrive in does not matter and nothing ever overflows. Retractions (an
//! unlike, a deleted comment) carry the time of what they retract and subtract its
//! weight from that time, cancelling it exactly.
//!
//! A user's *taste vector* is the mean of the embeddings of their videos weighted by the
//! signals' current scores, scaled to unit length. Videos they viewed or watched are also
//! remembered, to leave them out of their recommendations.
//!
//! Signals live in PostgreSQL (`user_signals`) and, for serving, in memory ([`Tastes`]),
//! loaded at start.

use std::{
    collections::{HashMap, HashSet},
    sync::RwLock,
};

use events::interaction::Action;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{config::TasteConfig, embed::DIMENSIONS, index::Index};

/// A decayed score as of `at` (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Score {
    pub value: f64,
    pub at: f64,
}

impl Score {
    /// The score with `weight` added at time `t`.
    pub fn add(self, weight: f64, t: f64, lambda: f64) -> Self {
        if self.value == 0.0 || t >= self.at {
            Self {
                value: self.value * (-lambda * (t - self.at)).exp() + weight,
                at: t,
            }
        } else {
            Self {
                value: self.value + weight * (-lambda * (self.at - t)).exp(),
                at: self.at,
            }
        }
    }

    /// The value at time `now`.
    pub fn at(self, now: f64, lambda: f64) -> f64 {
        self.value * (-lambda * (now - self.at).max(0.0)).exp()
    }
}

/// The decay rate of a half-life: `ln 2 / half-life`.
pub fn lambda(config: &TasteConfig) -> f64 {
    std::f64::consts::LN_2 / config.half_life.as_secs_f64().max(1e-3)
}

/// Unix seconds, with fractions.
pub fn unix(t: OffsetDateTime) -> f64 {
    t.unix_timestamp_nanos() as f64 / 1e9
}

/// What an interaction does to a user's signal for the video.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effect {
    /// Weight to add (negative for a retraction), and when it counts from.
    pub weight: f64,
    pub at: f64,
    /// The user has seen the video.
    pub watched: bool,
}

/// The effect of `action` taken at `occurred_at`; None if it says nothing about taste.
pub fn effect(
    action: &Action,
    occurred_at: OffsetDateTime,
    config: &TasteConfig,
) -> Option<Effect> {
    let at = unix(occurred_at);
    let effect = |weight, at, watched| {
        Some(Effect {
            weight,
            at,
            watched,
        })
    };
    match action {
        Action::Like => effect(config.like, at, false),
        Action::Unlike { liked_at } => effect(-config.like, unix(*liked_at), false),
        Action::Comment => effect(config.comment, at, false),
        Action::Uncomment { commented_at } => effect(-config.comment, unix(*commented_at), false),
        Action::Watch { seconds } => {
            effect(config.watch_minute * f64::from(*seconds) / 60.0, at, true)
        }
        Action::View => effect(0.0, at, true),
        Action::Share => None,
    }
}

/// One user's signals.
#[derive(Debug, Default, Clone)]
pub struct User {
    pub scores: HashMap<Uuid, Score>,
    pub watched: HashSet<Uuid>,
}

/// Every user's signals, in memory.
pub struct Tastes {
    users: RwLock<HashMap<Uuid, User>>,
    lambda: f64,
}

impl Tastes {
    pub fn new(config: &TasteConfig) -> Self {
        Self {
            users: RwLock::new(HashMap::new()),
            lambda: lambda(config),
        }
    }

    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    /// The stored signal of (user, video), if any.
    pub fn get(&self, user: Uuid, video: Uuid) -> Option<(Score, bool)> {
        let users = self.users.read().unwrap();
        let u = users.get(&user)?;
        let score = u.scores.get(&video).copied();
        let watched = u.watched.contains(&video);
        (score.is_some() || watched).then(|| (score.unwrap_or_default(), watched))
    }

    /// Sets (user, video)'s signal (after it was stored).
    pub fn set(&self, user: Uuid, video: Uuid, score: Score, watched: bool) {
        let mut users = self.users.write().unwrap();
        let u = users.entry(user).or_default();
        u.scores.insert(video, score);
        if watched {
            u.watched.insert(video);
        }
    }

    /// Forgets a video everywhere (deleted).
    pub fn forget_video(&self, video: Uuid) {
        let mut users = self.users.write().unwrap();
        for u in users.values_mut() {
            u.scores.remove(&video);
            u.watched.remove(&video);
        }
    }

    /// A copy of `user`'s signals.
    pub fn user(&self, user: Uuid) -> Option<User> {
        self.users.read().unwrap().get(&user).cloned()
    }

    /// `user`'s taste vector now, with the videos they have seen; None when nothing they
    /// did has a positive score on an embedded video (a new user).
    pub fn taste(&self, user: Uuid, index: &Index, now: f64) -> (Option<Vec<f32>>, HashSet<Uuid>) {
        let Some(u) = self.user(user) else {
            return (None, HashSet::new());
        };
        let mut sum = vec![0f64; DIMENSIONS];
        let mut any = false;
        let weights: HashMap<Uuid, f64> = u
            .scores
            .iter()
            .map(|(v, s)| (*v, s.at(now, self.lambda)))
            .filter(|(_, w)| *w > 1e-9)
            .collect();
        for (video, vector) in index.vectors(weights.keys().copied()) {
            let w = weights[&video];
            for (s, x) in sum.iter_mut().zip(vector.iter()) {
                *s += w * f64::from(*x);
            }
            any = true;
        }
        if !any {
            return (None, u.watched);
        }
        let mut taste: Vec<f32> = sum.into_iter().map(|x| x as f32).collect();
        let taste = crate::embed::normalize(&mut taste).then_some(taste);
        // The liked and commented videos are not recommended back either.
        let mut seen = u.watched;
        seen.extend(weights.keys());
        (taste, seen)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const DAY: f64 = 86_400.0;

    fn config() -> TasteConfig {
        TasteConfig {
            half_life: std::time::Duration::from_secs(86_400),
            ..TasteConfig::default()
        }
    }

    #[test]
    fn a_score_halves_every_half_life() {
        let l = lambda(&config());
        let s = Score::default().add(4.0, 1000.0, l);
        assert!((s.at(1000.0 + DAY, l) - 2.0).abs() < 1e-9);
        assert!((s.at(1000.0 + 2.0 * DAY, l) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_retraction_cancels_what_it_retracts_whenever_it_arrives() {
        let l = lambda(&config());
        let like_at = 5000.0;
        let s = Score::default()
            .add(3.0, like_at, l)
            .add(1.0, like_at + DAY, l) // something else later
            .add(-3.0, like_at, l); // the unlike, carrying the like's time
        assert!((s.at(like_at + DAY, l) - 1.0).abs() < 1e-9);
    }

    proptest! {
        /// Adding weights in any order gives the same value at any later time.
        #[test]
        fn order_does_not_matter(events in prop::collection::vec((0.0f64..10.0, 0.0f64..(30.0 * DAY)), 1..20)) {
            let l = lambda(&config());
            let forward = events.iter().fold(Score::default(), |s, (w, t)| s.add(*w, *t, l));
            let backward = events.iter().rev().fold(Score::default(), |s, (w, t)| s.add(*w, *t, l));
            let now = 40.0 * DAY;
            let expected: f64 = events.iter().map(|(w, t)| w * (-l * (now - t)).exp()).sum();
            prop_assert!((forward.at(now, l) - expected).abs() <= 1e-9 * expected.max(1.0));
            prop_assert!((backward.at(now, l) - expected).abs() <= 1e-9 * expected.max(1.0));
        }
    }

    #[test]
    fn likes_comments_and_watch_time_weigh_views_only_mark_as_seen() {
        let c = TasteConfig::default();
        let now = OffsetDateTime::now_utc();
        assert_eq!(effect(&Action::Like, now, &c).unwrap().weight, c.like);
        let watch = effect(&Action::Watch { seconds: 120 }, now, &c).unwrap();
        assert_eq!(watch.weight, 2.0 * c.watch_minute);
        assert!(watch.watched);
        let view = effect(&Action::View, now, &c).unwrap();
        assert_eq!((view.weight, view.watched), (0.0, true));
        assert!(effect(&Action::Share, now, &c).is_none());
        let unlike = effect(&Action::Unlike { liked_at: now }, now, &c).unwrap();
        assert_eq!(unlike.weight, -c.like);
    }
}
