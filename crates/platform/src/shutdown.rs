//! Graceful shutdown.
//!
//! A [`Shutdown`] is a cancellation token that SIGTERM or SIGINT triggers (and tests can
//! trigger by hand). Servers stop accepting when it fires and drain what is in flight;
//! consumers stop taking new deliveries and finish (and acknowledge) the ones they hold.
//! [`Shutdown::drain`] bounds how long the draining may take.

use std::{future::Future, time::Duration};

use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
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
    async fn drain_cuts_off_work_that_overruns_the_grace_period() {
        let shutdown = Shutdown::new();
        shutdown.trigger();
        let out = shutdown
            .drain(Duration::from_secs(1), std::future::pending::<()>())
            .await;
        assert_eq!(out, None);
    }
}
