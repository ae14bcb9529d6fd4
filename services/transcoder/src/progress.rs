//! Progress: parsing ffmpeg's `-progress` output and publishing `video.progress` at most
//! once per interval, never going backwards within an attempt.

use std::{sync::Arc, time::Duration};

use events::{
    Envelope, Namespace, Publisher,
    video::{ProgressStage, VideoProgress},
};
use tokio::{sync::watch, task::JoinHandle};
use uuid::Uuid;

/// One `-progress` block (ffmpeg writes `key=value` lines, each block ending in
/// `progress=continue` or `progress=end`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds of output written.
    pub out_time: f64,
    /// Encoding speed relative to real time.
    pub speed: Option<f64>,
    pub end: bool,
}

#[derive(Debug, Default)]
pub struct Parser {
    out_time: f64,
    speed: Option<f64>,
}

impl Parser {
    /// Feeds one line; returns a sample when a block ends.
    pub fn line(&mut self, line: &str) -> Option<Sample> {
        let (key, value) = line.trim().split_once('=')?;
        match key {
            // `out_time_ms` is microseconds too (a historical misnomer); prefer `_us`.
            "out_time_us" | "out_time_ms" => {
                if let Ok(us) = value.parse::<i64>() {
                    self.out_time = (us.max(0) as f64) / 1e6;
                }
            }
            "speed" => self.speed = value.trim_end_matches('x').trim().parse().ok(),
            "progress" => {
                return Some(Sample {
                    out_time: self.out_time,
                    speed: self.speed.filter(|s| *s > 0.0),
                    end: value == "end",
                });
            }
            _ => {}
        }
        None
    }
}

/// Share of the job done when ffmpeg has written `out_time` of `duration`: encoding is the
/// first 90 %, uploading the outputs the rest.
pub const ENCODING_SHARE: f64 = 90.0;

pub fn encoding_percent(out_time: f64, duration: f64) -> f64 {
    if duration <= 0.0 {
        return 0.0;
    }
    (out_time / duration).clamp(0.0, 1.0) * ENCODING_SHARE
}

/// Seconds left at the current speed.
pub fn eta(out_time: f64, duration: f64, speed: Option<f64>) -> Option<f64> {
    let speed = speed.filter(|s| *s > 0.0)?;
    Some(((duration - out_time).max(0.0) / speed).max(0.0))
}

/// Publishes the latest progress at most once per interval, in a task of its own so a slow
/// broker never stalls the reading of ffmpeg's output. The last value is always published
/// (on [`Reporter::finish`]).
pub struct Reporter {
    video_id: Uuid,
    owner_id: Uuid,
    tx: watch::Sender<Option<VideoProgress>>,
    task: JoinHandle<()>,
    last_percent: f64,
}

impl Reporter {
    pub fn start(
        publisher: Arc<Publisher>,
        namespace: Namespace,
        video_id: Uuid,
        owner_id: Uuid,
        interval: Duration,
    ) -> Self {
        let (tx, mut rx) = watch::channel::<Option<VideoProgress>>(None);
        let task = tokio::spawn(async move {
            // `changed` still yields a value sent just before the sender was dropped.
            while rx.changed().await.is_ok() {
                let Some(progress) = rx.borrow_and_update().clone() else {
                    continue;
                };
                if let Err(error) = publisher
                    .publish(&namespace, &Envelope::new(progress))
                    .await
                {
                    tracing::warn!(%error, "progress event not published");
                }
                tokio::time::sleep(interval).await;
            }
        });
        Self {
            video_id,
            owner_id,
            tx,
            task,
            last_percent: 0.0,
        }
    }

    pub fn update(
        &mut self,
        stage: ProgressStage,
        percent: f64,
        speed: Option<f64>,
        eta_seconds: Option<f64>,
    ) {
        // Never backwards, even if a stage's estimate wobbles.
        self.last_percent = percent.clamp(self.last_percent, 100.0);
        self.tx.send_replace(Some(VideoProgress::new(
            self.video_id,
            self.owner_id,
            stage,
            (self.last_percent * 10.0).round() / 10.0,
            speed,
            eta_seconds,
        )));
    }

    /// Publishes what is pending and stops.
    pub async fn finish(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_become_samples() {
        let mut parser = Parser::default();
        let text = "frame=10\nfps=0.0\nout_time_us=2500000\nout_time_ms=2500000\nspeed=1.52x\nprogress=continue\n\
                    out_time_us=4000000\nspeed=N/A\nprogress=end\n";
        let samples: Vec<Sample> = text.lines().filter_map(|l| parser.line(l)).collect();
        assert_eq!(
            samples,
            [
                Sample {
                    out_time: 2.5,
                    speed: Some(1.52),
                    end: false
                },
                Sample {
                    out_time: 4.0,
                    speed: None,
                    end: true
                },
            ]
        );
    }

    #[test]
    fn negative_or_garbage_times_do_not_move_progress_backwards() {
        let mut parser = Parser::default();
        parser.line("out_time_us=3000000");
        parser.line("out_time_us=N/A");
        let sample = parser.line("progress=continue").unwrap();
        assert_eq!(sample.out_time, 3.0);
        parser.line("out_time_us=-5");
        assert_eq!(parser.line("progress=continue").unwrap().out_time, 0.0);
    }

    #[test]
    fn percent_and_eta() {
        assert_eq!(encoding_percent(5.0, 10.0), 45.0);
        assert_eq!(encoding_percent(12.0, 10.0), 90.0);
        assert_eq!(encoding_percent(1.0, 0.0), 0.0);
        assert_eq!(eta(4.0, 10.0, Some(2.0)), Some(3.0));
        assert_eq!(eta(4.0, 10.0, None), None);
    }
}
