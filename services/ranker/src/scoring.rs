//! The scoring math: weights and forward decay.
//!
//! A decayed score at time `now` is `Σ wᵢ · exp(-λ (now - tᵢ))` with `λ = ln 2 / half-life`:
//! every contribution halves per half-life. Rewriting every score as time passes is
//! impossible at scale, so we store the *forward-decayed* sum instead (Cormode et al.,
//! "Forward Decay", 2009): relative to a fixed landmark `t0`, an event adds
//! `w · exp(λ (t - t0))` once (a ZINCRBY), and the stored sum `S` satisfies
//! `score(now) = S · exp(-λ (now - t0))`. The factor is the same for every member of a
//! sorted set, so the stored sums rank exactly like the decayed scores.
//!
//! New increments grow like `exp(λ (t - t0))`, so the landmark has to move before they
//! leave f64's range: a *rebase* multiplies every stored sum by `exp(-λ (t1 - t0))` and
//! sets `t0 = t1`, which keeps the order and the ratios (a common positive factor) and
//! makes later increments small again. Each sorted set has its own `t0` (see
//! events::trending::t0_key), so sets are rebased one at a time.
//!
//! Event times are taken at millisecond resolution ([`event_time`]), the resolution the
//! archive stores, so an offline recomputation from the archive gives the same numbers.

use events::{interaction::Action, trending::Window};
use time::OffsetDateTime;

use crate::config::{Scoring, Weights};

/// Unix seconds at millisecond resolution.
pub fn event_time(at: OffsetDateTime) -> f64 {
    let millis = at.unix_timestamp_nanos().div_euclid(1_000_000);
    millis as f64 / 1000.0
}

/// The decay rate of a half-life: `ln 2 / half_life`.
pub fn lambda(half_life_secs: f64) -> f64 {
    std::f64::consts::LN_2 / half_life_secs
}

/// What one interaction is worth (points) and when it counts (unix seconds): retractions
/// are worth minus what they retract, at the time of what they retract.
pub fn points(action: &Action, occurred_at: OffsetDateTime, weights: &Weights) -> (f64, f64) {
    let at = event_time(occurred_at);
    match action {
        Action::View => (weights.view, at),
        Action::Like => (weights.like, at),
        Action::Unlike { liked_at } => (-weights.like, event_time(*liked_at)),
        Action::Comment => (weights.comment, at),
        Action::Uncomment { commented_at } => (-weights.comment, event_time(*commented_at)),
        Action::Share => (weights.share, at),
        Action::Watch { seconds } => {
            let units = seconds.div_ceil(weights.watch_unit_secs);
            (weights.watch * f64::from(units), at)
        }
    }
}

/// What a contribution of `points` at time `t` adds to a sorted set whose landmark is `t0`.
pub fn increment(points: f64, t: f64, t0: f64, lambda: f64) -> f64 {
    points * (lambda * (t - t0)).exp()
}

/// The decayed score at `now` of a stored forward-decayed sum with landmark `t0`.
pub fn decayed(stored: f64, t0: f64, now: f64, lambda: f64) -> f64 {
    stored * (-lambda * (now - t0)).exp()
}

/// What every stored sum is multiplied by when the landmark moves from `t0` to `t1`.
pub fn rebase_factor(t0: f64, t1: f64, lambda: f64) -> f64 {
    (-lambda * (t1 - t0)).exp()
}

impl Scoring {
    pub fn lambda(&self, window: Window) -> f64 {
        lambda(self.half_lives.of(window))
    }
}

/// Formats an f64 so that parsing it back (Rust, Redis, Lua's `tonumber`) gives the same
/// value: Rust's shortest round-trip representation.
pub fn format_f64(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    format!("{value:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::Duration;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
    }

    #[test]
    fn weights_apply_per_action() {
        let w = Weights::default();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert_eq!(points(&Action::View, now, &w).0, 1.0);
        assert_eq!(points(&Action::Like, now, &w).0, 5.0);
        assert_eq!(points(&Action::Comment, now, &w).0, 8.0);
        assert_eq!(points(&Action::Share, now, &w).0, 10.0);
        // Per *started* 10 s.
        assert_eq!(points(&Action::Watch { seconds: 1 }, now, &w).0, 1.0);
        assert_eq!(points(&Action::Watch { seconds: 10 }, now, &w).0, 1.0);
        assert_eq!(points(&Action::Watch { seconds: 11 }, now, &w).0, 2.0);
        assert_eq!(points(&Action::Watch { seconds: 95 }, now, &w).0, 10.0);
        let custom = Weights {
            like: 7.5,
            watch: 2.0,
            watch_unit_secs: 30,
            ..w
        };
        assert_eq!(points(&Action::Like, now, &custom).0, 7.5);
        assert_eq!(points(&Action::Watch { seconds: 61 }, now, &custom).0, 6.0);
    }

    #[test]
    fn a_retraction_cancels_the_original_exactly() {
        let w = Weights::default();
        let liked = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let later = liked + Duration::hours(5);
        let (p, t) = points(&Action::Like, liked, &w);
        let (q, u) = points(&Action::Unlike { liked_at: liked }, later, &w);
        let l = lambda(3600.0);
        let t0 = 1_799_990_000.0;
        assert_eq!(increment(p, t, t0, l) + increment(q, u, t0, l), 0.0);
    }

    #[test]
    fn event_times_are_whole_milliseconds() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_800_000_000_123_456_789).unwrap();
        assert_eq!(event_time(at), 1_800_000_000.123);
        let before_epoch = OffsetDateTime::from_unix_timestamp_nanos(-1_500_000).unwrap();
        assert_eq!(event_time(before_epoch), -0.002);
    }

    #[test]
    fn formatted_floats_round_trip() {
        for v in [0.1, 1.0 / 3.0, 1e300, -2.5e-300, 123_456_789.123_456_78] {
            assert_eq!(format_f64(v).parse::<f64>().unwrap(), v);
        }
        assert_eq!(format_f64(f64::NEG_INFINITY), "-inf");
    }

    proptest! {
        /// A contribution's decayed value halves with every half-life that passes.
        #[test]
        fn decay_halves_per_half_life(
            half_life in 1.0f64..1e7,
            points in 0.1f64..1e4,
            // Ages in half-lives since the landmark, as rebasing keeps them (a set is
            // rebased after `REBASE_AFTER_HALF_LIVES`, 32 by default): far beyond, the
            // forward-decayed increment 2^age overflows f64, which is why rebasing exists.
            age_half_lives in 0.0f64..64.0,
            halvings in 1u32..20,
        ) {
            let l = lambda(half_life);
            let t0 = 1.7e9;
            let t = t0 + age_half_lives * half_life;
            let stored = increment(points, t, t0, l);
            let at_event = decayed(stored, t0, t, l);
            prop_assert!(close(at_event, points, 1e-12));
            let later = decayed(stored, t0, t + f64::from(halvings) * half_life, l);
            prop_assert!(close(later, points / 2f64.powi(halvings as i32), 1e-9));
        }

        /// Rebasing multiplies every score by one positive factor: order and ratios stay,
        /// and the decayed value of every score is unchanged.
        #[test]
        fn rebasing_keeps_order_ratios_and_values(
            half_life in 1.0f64..1e6,
            // Ages and the shift in half-lives, within what rebasing keeps (see above).
            events in prop::collection::vec((0usize..8, 0.5f64..20.0, 0.0f64..48.0), 1..60),
            shift_half_lives in 0.0f64..64.0,
        ) {
            let l = lambda(half_life);
            let t0 = 1.7e9;
            let mut scores = [0.0f64; 8];
            for &(member, points, age_half_lives) in &events {
                scores[member] += increment(points, t0 + age_half_lives * half_life, t0, l);
            }
            let t1 = t0 + shift_half_lives * half_life;
            let factor = rebase_factor(t0, t1, l);
            let rebased: Vec<f64> = scores.iter().map(|s| s * factor).collect();
            let now = t1 + 10.0;
            for i in 0..8 {
                prop_assert!(close(decayed(rebased[i], t1, now, l), decayed(scores[i], t0, now, l), 1e-9));
                for j in 0..8 {
                    if scores[i] > 0.0 && scores[j] > 0.0 && rebased[i] > 0.0 && rebased[j] > 0.0 {
                        prop_assert_eq!(scores[i] < scores[j], rebased[i] < rebased[j]);
                        prop_assert!(close(scores[i] / scores[j], rebased[i] / rebased[j], 1e-12));
                    }
                }
            }
            // Increments after the rebase match what they would have been before it,
            // scaled by the same factor.
            let late = increment(3.0, t1 + 7.0, t1, l);
            prop_assert!(close(late, increment(3.0, t1 + 7.0, t0, l) * factor, 1e-9));
        }

        /// Scores are linear in the weights: doubling every weight doubles every score.
        #[test]
        fn weights_scale_scores(k in 0.1f64..10.0, seconds in 1u32..10_000) {
            let w = Weights::default();
            let scaled = Weights {
                view: w.view * k, like: w.like * k, comment: w.comment * k,
                share: w.share * k, watch: w.watch * k, ..w
            };
            let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
            for action in [Action::View, Action::Like, Action::Comment, Action::Share, Action::Watch { seconds }] {
                let (a, _) = points(&action, now, &w);
                let (b, _) = points(&action, now, &scaled);
                prop_assert!(close(b, a * k, 1e-12));
            }
        }
    }
}
