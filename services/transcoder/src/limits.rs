//! How long a job may run: its `TRANSCODE_TIMEOUT`, and the point at shutdown where a
//! job still running is handed back to the queue.
//!
//! * **Timeout.** A job that hangs or crawls (a pathological source, a stuck encoder)
//!   would hold its worker and its delivery forever. Each job gets a limit derived from
//!   its source's duration (ffprobe's): `floor + factor × duration`, at most `max`. Past
//!   it ffmpeg is killed and the attempt fails like any other (retried with backoff,
//!   given up after `TRANSCODE_MAX_ATTEMPTS`). `max` must stay below the broker's
//!   `consumer_timeout` (README), or the broker takes the job back first.
//! * **Hand-back.** On SIGTERM a job keeps running: most finish within the grace period.
//!   One still running [`handback_after`] the signal cannot finish in time: it is stopped
//!   (ffmpeg killed, scratch removed) and nacked with requeue, so another worker starts
//!   it at once rather than when this process is gone. The margin leaves time to do that
//!   before the grace period (and the orchestrator's patience) ends.

use std::time::Duration;

/// The most a hand-back may need: kill ffmpeg, remove the scratch files, nack, close.
const HANDBACK_MARGIN: Duration = Duration::from_secs(5);

/// How long after the shutdown signal a job still running is handed back: the grace
/// period less a margin (at most a quarter of it, so short grace periods keep most of
/// their time for finishing).
pub fn handback_after(grace: Duration) -> Duration {
    grace.saturating_sub(HANDBACK_MARGIN.min(grace / 4))
}

/// `TRANSCODE_TIMEOUT_FLOOR_SECS`, `TRANSCODE_TIMEOUT_FACTOR`, `TRANSCODE_TIMEOUT_MAX_SECS`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeout {
    /// Time every job gets whatever its length (download, start-up, uploads).
    pub floor: Duration,
    /// Seconds allowed per second of source (finite, ≥ 0: checked by `Config::from_env`).
    pub factor: f64,
    /// The cap.
    pub max: Duration,
}

impl Default for Timeout {
    /// 5 minutes plus 4× the source's duration, at most 6 hours: a whole ladder from
    /// 1080p at the `veryfast` preset runs near real time on a few cores, so this only
    /// trips for jobs that are stuck.
    fn default() -> Self {
        Self {
            floor: Duration::from_secs(300),
            factor: 4.0,
            max: Duration::from_secs(6 * 3600),
        }
    }
}

impl Timeout {
    /// The `TRANSCODE_TIMEOUT` of a job whose source lasts `duration` seconds (finite,
    /// positive: ffmpeg::parse_probe guarantees it).
    pub fn for_source(&self, duration: f64) -> Duration {
        let scaled =
            Duration::try_from_secs_f64(self.factor * duration.max(0.0)).unwrap_or(self.max);
        self.floor.saturating_add(scaled).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_grows_with_the_source_from_a_floor_up_to_a_cap() {
        let timeout = Timeout::default();
        assert_eq!(timeout.for_source(0.0), Duration::from_secs(300));
        assert_eq!(timeout.for_source(60.0), Duration::from_secs(300 + 240));
        assert_eq!(
            timeout.for_source(3600.0),
            Duration::from_secs(300 + 4 * 3600)
        );
        assert_eq!(timeout.for_source(86_400.0), Duration::from_secs(6 * 3600));
        assert_eq!(timeout.for_source(f64::MAX), Duration::from_secs(6 * 3600));
        let fractional = Timeout {
            floor: Duration::from_millis(500),
            factor: 0.5,
            max: Duration::from_secs(60),
        }
        .for_source(3.0);
        assert_eq!(fractional, Duration::from_secs(2));
    }

    #[test]
    fn a_job_is_handed_back_early_enough_to_settle_within_the_grace() {
        assert_eq!(
            handback_after(Duration::from_secs(120)),
            Duration::from_secs(115)
        );
        assert_eq!(
            handback_after(Duration::from_secs(30)),
            Duration::from_secs(25)
        );
        // Short grace periods keep three quarters of their time for finishing.
        assert_eq!(
            handback_after(Duration::from_secs(4)),
            Duration::from_secs(3)
        );
        assert_eq!(handback_after(Duration::ZERO), Duration::ZERO);
    }
}
