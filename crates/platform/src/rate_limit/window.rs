//! The sliding-window arithmetic, kept pure so it can be tested without Redis (the script,
//! `sliding.lua`, does the same comparison atomically on the counts it holds).
//!
//! A *sliding window counter*: each subject keeps the count of the current fixed window
//! and of the one before it, and the estimate of "events in the last `window`" is
//! `prev × (1 − elapsed/window) + cur`. Compared with a plain fixed window it has no
//! boundary burst (a fixed window lets 2× the limit through around a window's end), and
//! compared with an exact sliding log it costs two integers per subject instead of one
//! entry per event. The estimate assumes the previous window's events were spread evenly;
//! that is the approximation, and it errs by at most the previous window's clumping.

use std::time::Duration;

/// What the script saw, after its decision: the counts and the position in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub prev: u64,
    pub cur: u64,
    /// Milliseconds since the current fixed window began.
    pub elapsed_ms: u64,
}

/// The estimated number of events in the sliding window that ends now.
pub fn estimate(counts: Counts, window_ms: u64) -> f64 {
    let remaining = window_ms.saturating_sub(counts.elapsed_ms) as f64;
    counts.prev as f64 * remaining / window_ms as f64 + counts.cur as f64
}

/// Whether one more event fits under `max`.
pub fn admits(counts: Counts, window_ms: u64, max: u64) -> bool {
    estimate(counts, window_ms) + 1.0 <= max as f64
}

/// How long until one more event fits, for a refused one (`Retry-After`). Assumes nothing
/// else is admitted meanwhile; never zero, so a client that obeys does not spin.
pub fn retry_after(counts: Counts, window_ms: u64, max: u64) -> Duration {
    let w = window_ms as f64;
    let (prev, cur, elapsed) = (
        counts.prev as f64,
        counts.cur as f64,
        counts.elapsed_ms.min(window_ms) as f64,
    );
    let max = max as f64;
    let wait_ms = if admits(counts, window_ms, max as u64) {
        0.0
    } else if cur + 1.0 <= max {
        // This window's events fit; wait until the previous window's weight has shrunk
        // enough: prev × (w − e)/w ≤ max − 1 − cur.
        let until = w * (1.0 - (max - 1.0 - cur) / prev);
        (until - elapsed).max(0.0)
    } else {
        // This window is full by itself: in the next one it is the previous window, and
        // its weight must shrink until one more fits: cur × (w − e)/w ≤ max − 1.
        let into_next = w * (1.0 - (max - 1.0) / cur).max(0.0);
        (w - elapsed) + into_next
    };
    Duration::from_millis(wait_ms.ceil() as u64).max(Duration::from_millis(1))
}

/// Whole seconds for a `Retry-After` header or a GraphQL `retryAfter`: rounded up, at
/// least 1 (a retry before that would be refused again).
pub fn whole_secs(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    fn counts(prev: u64, cur: u64, elapsed_ms: u64) -> Counts {
        Counts {
            prev,
            cur,
            elapsed_ms,
        }
    }

    #[test]
    fn the_previous_window_weighs_by_its_overlap() {
        assert_eq!(estimate(counts(10, 0, 0), MIN), 10.0);
        assert_eq!(estimate(counts(10, 2, MIN / 2), MIN), 7.0);
        assert_eq!(estimate(counts(10, 2, MIN), MIN), 2.0);
    }

    #[test]
    fn admits_up_to_the_limit_and_no_further() {
        assert!(admits(counts(0, 4, 10), MIN, 5));
        assert!(!admits(counts(0, 5, 10), MIN, 5));
        // Half the previous window still overlaps: 10 × ½ + 0 = 5, one more makes 6.
        assert!(!admits(counts(10, 0, MIN / 2), MIN, 5));
        assert!(admits(counts(10, 0, MIN / 2 + MIN / 10), MIN, 5));
    }

    #[test]
    fn no_burst_at_a_window_boundary() {
        // A fixed window would let 5 more through right after a full window ended.
        assert!(!admits(counts(5, 0, 1), MIN, 5));
    }

    #[test]
    fn retry_after_is_when_the_next_event_fits() {
        // Full current window, nothing before: wait for the end of this window and then
        // for its weight to drop from 5 to 4 (a fifth of the next window).
        let c = counts(0, 5, 15_000);
        let wait = retry_after(c, MIN, 5);
        assert_eq!(wait, Duration::from_millis(45_000 + 12_000));
        // Checked: at that moment the event fits, a moment earlier it does not.
        let then = counts(5, 0, 12_000);
        assert!(admits(then, MIN, 5));
        assert!(!admits(counts(5, 0, 11_999), MIN, 5));

        // The previous window is the problem: 10 × (1 − e/w) + 1 + 1 ≤ 5 at e = 0.7 w.
        let c = counts(10, 1, 30_000);
        assert_eq!(retry_after(c, MIN, 5), Duration::from_millis(12_000));
        assert!(admits(counts(10, 1, 42_000), MIN, 5));
    }

    #[test]
    fn one_per_window_waits_until_the_event_has_slid_out() {
        let wait = retry_after(counts(0, 1, 10_000), MIN, 1);
        assert_eq!(wait, Duration::from_millis(50_000 + MIN));
    }

    #[test]
    fn retry_after_is_never_zero() {
        assert_eq!(
            retry_after(counts(0, 0, 0), MIN, 5),
            Duration::from_millis(1)
        );
        assert_eq!(whole_secs(Duration::from_millis(1)), 1);
        assert_eq!(whole_secs(Duration::from_millis(1001)), 2);
        assert_eq!(whole_secs(Duration::from_secs(57)), 57);
    }
}
