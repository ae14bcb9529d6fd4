//! The dispatcher: claims due deliveries from PostgreSQL, sends them, records what came
//! of each.
//!
//! * **Nothing acknowledged is lost.** A delivery exists as a row before its event is
//!   acknowledged to RabbitMQ (crate::ingest); it is claimed with a lease
//!   (crate::deliveries::store::claim), and if this process dies before recording the
//!   attempt, the lease runs out and the delivery is claimed again. At-least-once, with
//!   the same `webhook-id`, which is what receivers deduplicate by.
//! * **One slow endpoint never holds up the others.** At most `WEBHOOK_CONCURRENCY`
//!   attempts are in flight in a process, and at most `WEBHOOK_ENDPOINT_CONCURRENCY` of
//!   them to one endpoint: an endpoint at its limit is left out of the next claims, so
//!   the free slots go to other endpoints. An attempt never takes longer than
//!   `WEBHOOK_TIMEOUT_SECS`. Deliveries queue in PostgreSQL, not in memory, and not in
//!   the platform's RabbitMQ queues: an endpoint that is down for a day costs rows here
//!   and nothing anywhere else.
//! * **Recording is batched.** Attempts end in a channel; one task writes them (the
//!   attempt log, the delivery's state, the endpoint's health) a batch per transaction,
//!   so throughput is not one commit per delivery.
//! * **Shutdown drains.** No new claims; attempts in flight finish (within the grace
//!   period) and are recorded before the process exits.

pub mod guard;
pub mod schedule;
pub mod send;
pub mod signature;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use events::{Namespace, outbox::Relay};
use platform::{Shutdown, postgres::Postgres};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use uuid::Uuid;

use crate::{
    config::DeliveryConfig,
    deliveries::store::{self, Claimed, Recorded},
};

/// Most deliveries claimed by one statement.
const CLAIM_BATCH: usize = 256;
/// Most attempts recorded by one transaction.
const RECORD_BATCH: usize = 512;

/// A handle on the dispatcher: cheap to clone, for waking it when deliveries are due.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    db: Postgres,
    config: DeliveryConfig,
    /// Where `webhook.endpoint_disabled` goes (the outbox, under `QUEUE_PREFIX`), and the
    /// relay to wake once it is committed.
    namespace: Namespace,
    relay: Relay,
    client: reqwest::Client,
    wake: Notify,
    /// Attempts in flight in this process.
    slots: Arc<Semaphore>,
    /// Attempts in flight per endpoint.
    endpoints: Mutex<HashMap<Uuid, Arc<Semaphore>>>,
}

impl Dispatcher {
    pub fn new(db: Postgres, config: DeliveryConfig, namespace: Namespace, relay: Relay) -> Self {
        let client = send::client(&config);
        Self {
            inner: Arc::new(Inner {
                db,
                namespace,
                relay,
                slots: Arc::new(Semaphore::new(config.concurrency)),
                config,
                client,
                wake: Notify::new(),
                endpoints: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Deliveries may be due now (new ones, a replay, a slot came free): claim at once
    /// instead of at the next poll.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// How long a claimed delivery is this process's: an attempt may wait up to about one
    /// timeout for its endpoint's slot, then take one timeout; past the lease another
    /// replica may claim it again.
    fn lease(&self) -> Duration {
        self.inner.config.timeout * 2 + Duration::from_secs(10)
    }

    /// Starts claiming and recording until shutdown.
    pub fn spawn(&self, shutdown: &Shutdown) {
        let (results, recorder) = mpsc::channel(RECORD_BATCH * 4);
        let this = self.clone();
        let stop = shutdown.clone();
        shutdown.spawn(async move { this.claim_loop(results, stop).await });
        let this = self.clone();
        shutdown.spawn(async move { this.record_loop(recorder).await });
    }

    async fn claim_loop(self, results: mpsc::Sender<Recorded>, shutdown: Shutdown) {
        let inner = &self.inner;
        // Quietly wait for the database's set-up (its own task reports progress).
        while inner.db.migrated().is_err() {
            tokio::select! {
                () = shutdown.triggered() => return,
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
        loop {
            let free = inner.slots.available_permits().min(CLAIM_BATCH);
            let claimed = if free == 0 {
                Ok(Vec::new())
            } else {
                store::claim(
                    inner.db.pool(),
                    &self.busy_endpoints(),
                    free as i64,
                    inner.config.endpoint_concurrency as i64,
                    self.lease(),
                )
                .await
            };
            let pause = match claimed {
                Ok(rows) if !rows.is_empty() => {
                    for row in rows {
                        self.start(row, results.clone());
                    }
                    continue;
                }
                Ok(_) => inner.config.poll,
                Err(e) => {
                    tracing::warn!(error = %e, "webhooks: claiming deliveries failed");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = shutdown.triggered() => break,
                () = inner.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
        // Let the attempts in flight finish: they hold every slot not free.
        let _ = inner
            .slots
            .acquire_many(inner.config.concurrency as u32)
            .await;
    }

    /// Endpoints with as many attempts in flight or waiting for a slot in this process as
    /// allowed (and the per-endpoint map trimmed of idle entries, so it does not grow
    /// without bound). An attempt holds its endpoint's semaphore from the moment it is
    /// started, so a semaphore's other holders are the attempts started and not finished.
    fn busy_endpoints(&self) -> Vec<Uuid> {
        let limit = self.inner.config.endpoint_concurrency;
        let mut endpoints = self.inner.endpoints.lock().unwrap();
        endpoints.retain(|_, slots| Arc::strong_count(slots) > 1);
        endpoints
            .iter()
            // The map's own reference plus one per attempt started.
            .filter(|(_, slots)| Arc::strong_count(slots) > limit)
            .map(|(id, _)| *id)
            .collect()
    }

    fn endpoint_slots(&self, endpoint: Uuid) -> Arc<Semaphore> {
        let limit = self.inner.config.endpoint_concurrency;
        self.inner
            .endpoints
            .lock()
            .unwrap()
            .entry(endpoint)
            .or_insert_with(|| Arc::new(Semaphore::new(limit)))
            .clone()
    }

    /// Runs one attempt as a task of its own, holding one of the process's slots.
    fn start(&self, claimed: Claimed, results: mpsc::Sender<Recorded>) {
        let Ok(slot) = self.inner.slots.clone().try_acquire_owned() else {
            // Cannot happen (claims never exceed the free slots, and only this loop takes
            // them); should it, the lease runs out and the delivery is claimed again.
            return;
        };
        let endpoint = self.endpoint_slots(claimed.endpoint_id);
        let this = self.clone();
        tokio::spawn(async move {
            let recorded = this.attempt(claimed, endpoint, slot).await;
            // The recorder outlives the claim loop, so this only fails at exit, when the
            // lease covers the delivery.
            let _ = results.send(recorded).await;
        });
    }

    async fn attempt(
        &self,
        claimed: Claimed,
        endpoint: Arc<Semaphore>,
        _slot: OwnedSemaphorePermit,
    ) -> Recorded {
        let _endpoint_slot = endpoint.acquire_owned().await;
        let recorded = send::attempt(&self.inner.client, &self.inner.config, &claimed).await;
        // A slot is free once this returns; the claim loop may find more due work now.
        self.wake();
        recorded
    }

    /// Writes attempts' outcomes as they come, a batch per transaction, until every
    /// sender is gone (the claim loop and its attempts have finished).
    async fn record_loop(self, mut results: mpsc::Receiver<Recorded>) {
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while results.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            loop {
                match store::record(
                    self.inner.db.pool(),
                    &batch,
                    self.inner.config.disable_after,
                    &self.inner.namespace,
                )
                .await
                {
                    Ok(disabled) => {
                        if !disabled.is_empty() {
                            self.inner.relay.notify();
                        }
                        for (endpoint, reason) in disabled {
                            tracing::warn!(%endpoint, reason, "webhooks: endpoint disabled");
                            ::metrics::counter!("webhook_endpoints_disabled_total").increment(1);
                        }
                        break;
                    }
                    Err(e) => {
                        // Unrecorded attempts are retried when their leases run out, so
                        // keep trying for a while but never block forever.
                        tracing::warn!(error = %e, "webhooks: recording attempts failed");
                        if results.is_closed() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            batch.clear();
        }
    }
}
