//! When a failed delivery is tried again: a fixed list of growing pauses, each with
//! jitter, so that the retries of many deliveries that failed together (an endpoint that
//! was down) do not all arrive at the same second when it comes back.

use std::{fmt, str::FromStr, time::Duration};

/// The pauses before the 2nd, 3rd, … attempt. After the last one fails the delivery is
/// given up (state `failed`; it can still be replayed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

/// Each pause is drawn from ±this fraction around its nominal value.
const JITTER: f64 = 0.2;

impl Default for RetrySchedule {
    /// 8 attempts: at once, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, so the
    /// last comes about 28 hours after the event (the issue asks for at least 24).
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Self(vec![
            Duration::from_secs(5),
            minutes(5),
            minutes(30),
            minutes(120),
            minutes(300),
            minutes(600),
            minutes(600),
        ])
    }
}

impl RetrySchedule {
    /// How many attempts a delivery gets in all.
    pub fn attempts(&self) -> i32 {
        self.0.len() as i32 + 1
    }

    /// The pause after attempt number `attempt` (1-based) failed, jittered by `unit` (a
    /// number in [0, 1)); `None` when that was the last attempt.
    pub fn pause_after(&self, attempt: i32, unit: f64) -> Option<Duration> {
        let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
        let nominal = self.0.get(index)?;
        let factor = 1.0 + JITTER * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Some(nominal.mul_f64(factor))
    }

    /// The nominal total: how long after the first attempt the last one comes.
    pub fn span(&self) -> Duration {
        self.0.iter().sum()
    }
}

impl fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|d| format_pause(*d)).collect();
        f.write_str(&parts.join(","))
    }
}

fn format_pause(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_millis() != 0 {
        format!("{}ms", d.as_millis())
    } else if secs != 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs != 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

impl FromStr for RetrySchedule {
    type Err = String;

    /// `500ms,5s,5m,2h`: a comma-separated list of numbers with a unit (ms, s, m, h).
    /// An empty list means a single attempt.
    fn from_str(s: &str) -> Result<Self, String> {
        let pauses = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                let split = p
                    .find(|c: char| !c.is_ascii_digit())
                    .ok_or_else(|| format!("{p:?} has no unit (ms, s, m or h)"))?;
                let (number, unit) = p.split_at(split);
                let n: u64 = number
                    .parse()
                    .map_err(|_| format!("{p:?} does not start with a number"))?;
                let unit_millis = match unit {
                    "ms" => 1,
                    "s" => 1_000,
                    "m" => 60_000,
                    "h" => 3_600_000,
                    other => return Err(format!("unknown unit {other:?} in {p:?}")),
                };
                Ok(Duration::from_millis(n.saturating_mul(unit_millis)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if pauses.len() > 50 {
            return Err("at most 50 retries".into());
        }
        Ok(Self(pauses))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_retries_for_more_than_a_day_and_round_trips() {
        let schedule = RetrySchedule::default();
        assert!(schedule.span() >= Duration::from_secs(24 * 3600));
        assert_eq!(schedule.to_string(), "5s,5m,30m,2h,5h,10h,10h");
        assert_eq!(schedule.to_string().parse::<RetrySchedule>(), Ok(schedule));
    }

    #[test]
    fn pauses_grow_are_jittered_within_a_fifth_and_end() {
        let schedule: RetrySchedule = "100ms,1s,2m".parse().unwrap();
        assert_eq!(schedule.attempts(), 4);
        assert_eq!(
            schedule.pause_after(1, 0.5),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            schedule.pause_after(2, 0.0),
            Some(Duration::from_millis(800))
        );
        assert_eq!(
            schedule.pause_after(2, 1.0),
            Some(Duration::from_millis(1200))
        );
        assert_eq!(schedule.pause_after(3, 0.5), Some(Duration::from_secs(120)));
        assert_eq!(schedule.pause_after(4, 0.5), None);
        assert_eq!(schedule.pause_after(0, 0.5), None);
    }

    #[test]
    fn malformed_schedules_are_refused() {
        for bad in ["5", "5x", "s", "-1s", "1.5s"] {
            assert!(bad.parse::<RetrySchedule>().is_err(), "{bad}");
        }
        assert_eq!("".parse::<RetrySchedule>().unwrap().attempts(), 1);
    }
}
