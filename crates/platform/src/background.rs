//! The loops every service runs in the background, written once:
//!
//! * [`until_ready`]: try a start-up step (create a database, a bucket, indexes, declare
//!   a queue, load an index) until it succeeds, backing off between attempts, and give up
//!   quietly when shutdown comes first. Services start while their stores are down and
//!   finish setting up when the stores return; readiness reports the difference.
//! * [`every`]: run a periodic task (a sweep, a flush, a rebase) every interval until
//!   shutdown. A tick is never cut off by shutdown: shutdown is noticed between ticks, so
//!   a tick that started finishes and what it wrote stays consistent.
//! * [`reconnecting`]: run a session over a connection (consuming a queue) until
//!   shutdown, starting a new one after a pause whenever one ends; the session itself
//!   notices shutdown and settles what it holds before returning.
//!
//! All three take the one [`Shutdown`] a service was given, by reference. Backoff comes from
//! `backon`; failures are logged at `warn` with `what` naming the step.

use std::{fmt::Display, future::Future, time::Duration};

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::Shutdown;

/// How long to wait between attempts of a start-up step.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The first pause; each next one doubles, up to `max`.
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    /// 100 ms doubling to 5 s: quick when a store is a moment late, gentle when it is down.
    pub const STORE: Self = Self {
        first: Duration::from_millis(100),
        max: Duration::from_secs(5),
    };

    /// The same pause every time.
    pub const fn fixed(pause: Duration) -> Self {
        Self {
            first: pause,
            max: pause,
        }
    }

    fn pauses(self) -> impl Iterator<Item = Duration> {
        ExponentialBuilder::new()
            .with_min_delay(self.first)
            .with_max_delay(self.max)
            .without_max_times()
            .build()
    }
}

/// Runs `attempt` until it succeeds, pausing by `backoff` after each failure (logged as
/// "`what`: not ready, will retry"). `None` when shutdown was triggered first.
pub async fn until_ready<T, E, F, Fut>(
    what: &str,
    backoff: Backoff,
    shutdown: &Shutdown,
    mut attempt: F,
) -> Option<T>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let stop = shutdown.triggered();
    tokio::pin!(stop);
    let mut pauses = backoff.pauses();
    loop {
        tokio::select! {
            biased;
            () = &mut stop => return None,
            outcome = attempt() => match outcome {
                Ok(value) => return Some(value),
                Err(error) => tracing::warn!(%error, "{what}: not ready, will retry"),
            },
        }
        let pause = pauses.next().unwrap_or(backoff.max);
        tokio::select! {
            () = &mut stop => return None,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// When the first tick of [`every`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstTick {
    /// At once, then every interval (upkeep that should also run at start).
    Now,
    /// After one interval (work that only accumulates while running).
    AfterInterval,
}

/// Runs `tick` every `interval` (measured from the end of one tick to the start of the
/// next, so slow ticks never pile up) until shutdown is triggered.
pub async fn every<F, Fut>(interval: Duration, first: FirstTick, shutdown: &Shutdown, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let stop = shutdown.triggered();
    tokio::pin!(stop);
    if first == FirstTick::AfterInterval {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
    loop {
        tick().await;
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Runs `session` until shutdown, again and again: when one ends (its connection broke,
/// logged at `warn` as "`what`: reconnecting" when it ended in an error), the next starts
/// after `pause`, unless shutdown came first.
///
/// Shutdown never drops a running session: the session watches `shutdown` itself, stops
/// taking work when it fires, settles what it holds (a consumer acknowledges the
/// deliveries it is handling) and returns. Cutting it off instead would throw away work in
/// flight that the grace period exists to finish; the grace period bounds it from outside
/// ([`Shutdown::drain`] around [`Shutdown::finished`], as `http::serve` does).
pub async fn reconnecting<E, F, Fut>(
    what: &str,
    pause: Duration,
    shutdown: &Shutdown,
    mut session: F,
) where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let stop = shutdown.triggered();
    tokio::pin!(stop);
    loop {
        if let Err(error) = session().await {
            tracing::warn!(%error, "{what}: reconnecting");
        }
        tokio::select! {
            biased;
            () = &mut stop => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn until_ready_retries_with_backoff_until_success() {
        let shutdown = Shutdown::new();
        let tries = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let out = until_ready("step", Backoff::STORE, &shutdown, || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0..=2 => Err("not yet"),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(out, Some(3));
        // 100 + 200 + 400 ms of pauses (the paused clock rounds each sleep up to a ms).
        let waited = started.elapsed();
        assert!(
            (Duration::from_millis(700)..Duration::from_millis(710)).contains(&waited),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn until_ready_gives_up_on_shutdown() {
        let shutdown = Shutdown::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            trigger.trigger();
        });
        let out: Option<()> =
            until_ready("step", Backoff::STORE, &shutdown, || async { Err("down") }).await;
        assert_eq!(out, None);
    }

    #[tokio::test(start_paused = true)]
    async fn every_ticks_until_shutdown_and_finishes_a_started_tick() {
        let shutdown = Shutdown::new();
        let ticks = Arc::new(AtomicU32::new(0));
        let (counted, stop) = (ticks.clone(), shutdown.clone());
        let task = tokio::spawn(async move {
            every(Duration::from_secs(1), FirstTick::Now, &stop, || {
                let counted = counted.clone();
                let stop = stop.clone();
                async move {
                    if counted.fetch_add(1, Ordering::SeqCst) == 2 {
                        stop.trigger(); // shutdown during a tick: the tick still ends
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            })
            .await;
        });
        task.await.unwrap();
        assert_eq!(ticks.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn reconnecting_starts_a_new_session_after_each_and_lets_the_last_settle() {
        let shutdown = Shutdown::new();
        let sessions = Arc::new(AtomicU32::new(0));
        let settled = Arc::new(AtomicU32::new(0));
        let (counted, done, stop) = (sessions.clone(), settled.clone(), shutdown.clone());
        let task = tokio::spawn(async move {
            reconnecting("session", Duration::from_secs(1), &stop, || {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                let (done, stop) = (done.clone(), stop.clone());
                async move {
                    if n < 2 {
                        return Err("broken"); // ends at once, like a lost connection
                    }
                    // Runs until shutdown, then takes a while to settle what it holds:
                    // shutdown must not cut that off.
                    stop.triggered().await;
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    done.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })
            .await;
        });
        tokio::time::sleep(Duration::from_secs(10)).await;
        shutdown.trigger();
        task.await.unwrap();
        assert_eq!(
            sessions.load(Ordering::SeqCst),
            3,
            "no session after shutdown"
        );
        assert_eq!(
            settled.load(Ordering::SeqCst),
            1,
            "the last session settled"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn every_can_wait_one_interval_first() {
        let shutdown = Shutdown::new();
        let ticks = Arc::new(AtomicU32::new(0));
        let (counted, stop) = (ticks.clone(), shutdown.clone());
        let task = tokio::spawn(async move {
            every(
                Duration::from_secs(1),
                FirstTick::AfterInterval,
                &stop,
                || {
                    counted.fetch_add(1, Ordering::SeqCst);
                    async {}
                },
            )
            .await;
        });
        tokio::time::sleep(Duration::from_millis(2500)).await;
        shutdown.trigger();
        task.await.unwrap();
        assert_eq!(ticks.load(Ordering::SeqCst), 2);
    }
}
