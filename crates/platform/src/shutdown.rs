//! Graceful shutdown.
//!
//! A [`Shutdown`] is a cancellation token that SIGTERM or SIGINT triggers (and tests can
//! trigger by hand). Servers stop accepting when it fires and drain what is in flight;
//! consumers stop taking new deliveries and finish (and acknowledge) the ones they hold.
//! [`Shutdown::drain`] bounds how long the draining may take.
//!
//! Background work that holds something the process must settle before it exits (a
//! consumer's unacknowledged deliveries) is started with [`Shutdown::spawn`]: the same
//! `Shutdown` then knows it, and [`Shutdown::finished`] resolves once all of it returned.
//! `platform::http::serve` waits for that after the server stopped, inside the same grace
//! period, so every service's `run` returns (and the process exits 0) only once its
//! consumers drained, or the grace ran out. One mechanism for every service: a consumer
//! cannot be forgotten by a service's `run`.

use std::{future::Future, time::Duration};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    /// Work that must end before the service does (shared by every clone).
    work: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// A token that fires on the first SIGTERM or SIGINT.
    pub fn on_signals() -> Self {
        let shutdown = Self::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received: draining");
            trigger.trigger();
        });
        shutdown
    }

    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Whether shutdown has been triggered (for loops that check between steps).
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once shutdown has been triggered.
    pub fn triggered(&self) -> impl Future<Output = ()> + Send + 'static {
        self.token.clone().cancelled_owned()
    }

    /// Spawns background work that watches this shutdown itself and must be waited for
    /// before the process exits (see the module doc). It should return soon after shutdown
    /// fires, once it has settled what it holds; [`Shutdown::finished`] waits for it.
    pub fn spawn<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.work.spawn(work)
    }

    /// Resolves once every task started with [`Shutdown::spawn`] has returned (at once if
    /// there is none). Unbounded: wrap it in [`Shutdown::drain`].
    pub async fn finished(&self) {
        // A closed tracker still accepts tasks (a consumer started late); `wait` then
        // waits for those too.
        self.work.close();
        self.work.wait().await;
    }

    /// Runs `work` (which should itself stop when shutdown triggers), but once shutdown has
    /// been triggered gives it at most `grace` to finish. Returns `None` if it was cut off.
    pub async fn drain<T>(&self, grace: Duration, work: impl Future<Output = T>) -> Option<T> {
        tokio::pin!(work);
        tokio::select! {
            out = &mut work => return Some(out),
            () = self.token.cancelled() => {}
        }
        match tokio::time::timeout(grace, work).await {
            Ok(out) => Some(out),
            Err(_) => {
                tracing::warn!(
                    ?grace,
                    "in-flight work did not finish within the grace period"
                );
                None
            }
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_work_that_finishes_in_time() {
        let shutdown = Shutdown::new();
        shutdown.trigger();
        let out = shutdown
            .drain(Duration::from_secs(5), async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                7
            })
            .await;
        assert_eq!(out, Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn finished_waits_for_spawned_work_to_settle_after_shutdown() {
        let shutdown = Shutdown::new();
        let settled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (stop, done) = (shutdown.clone(), settled.clone());
        shutdown.spawn(async move {
            stop.triggered().await;
            tokio::time::sleep(Duration::from_secs(2)).await; // settling what it holds
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        shutdown.trigger();
        let out = shutdown
            .drain(Duration::from_secs(5), shutdown.finished())
            .await;
        assert_eq!(out, Some(()));
        assert!(settled.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn drain_cuts_off_work_that_overruns_the_grace_period() {
        let shutdown = Shutdown::new();
        shutdown.trigger();
        let out = shutdown
            .drain(Duration::from_secs(1), std::future::pending::<()>())
            .await;
        assert_eq!(out, None);
    }
}
