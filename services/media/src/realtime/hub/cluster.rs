//! The hub's subscriber on a Redis Cluster: sharded pub/sub.
//!
//! A cluster's `PUBLISH` is broadcast over the cluster bus to every node, so every node
//! pays for every message whoever listens. Sharded pub/sub keeps a channel on the shard
//! that owns its slot: the hub `SSUBSCRIBE`s there and publishers `SPUBLISH` there, and a
//! message crosses only that shard (its primary and replicas).
//!
//! The cluster client (RESP3) keeps one connection per node and delivers push messages
//! into one queue, which this task drains exactly as the single-server task drains its
//! pub/sub connection. What differs is a lost node: the client reconnects and
//! re-subscribes by itself, but messages published meanwhile are gone, so on a
//! disconnection every channel is marked not ready, re-`SSUBSCRIBE`d (retried until its
//! shard answers, e.g. once a replica has been promoted), and then told [`Event::Gap`].
//! What the client's own re-subscription delivers before that is dropped
//! (`dispatch_payload` delivers only on ready channels): it may come in any order, and
//! the resync the gap starts replays it from storage.

use std::{sync::Weak, time::Duration};

use redis::{ConnectionInfo, PushInfo, PushKind, Value, cluster_async::ClusterConnection};
use tokio::sync::mpsc;

use super::{Command, Inner, RECONNECT_PAUSE, dispatch_payload, mark_ready};

/// How often channels that could not be (re)subscribed are tried again.
const RESUBSCRIBE_EVERY: Duration = Duration::from_millis(500);

pub(super) async fn run(
    nodes: Vec<ConnectionInfo>,
    hub: Weak<Inner>,
    mut queue: mpsc::UnboundedReceiver<Command>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(shutdown);
    let (pushes_in, mut pushes) = mpsc::unbounded_channel::<PushInfo>();
    let client = match platform::redis::Target::cluster_client(&nodes, true)
        .and_then(|builder| builder.push_sender(pushes_in).build())
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "realtime hub: bad Redis Cluster configuration");
            return;
        }
    };
    let mut conn = loop {
        tokio::select! {
            connected = client.get_async_connection() => match connected {
                Ok(conn) => break conn,
                Err(e) => tracing::warn!(error = %e, "realtime hub: cannot reach the Redis Cluster; retrying"),
            },
            () = &mut shutdown => return,
        }
        tokio::select! {
            () = tokio::time::sleep(RECONNECT_PAUSE) => {}
            () = &mut shutdown => return,
        }
    };
    // Channels subscribed before the connection existed, and after a node was lost: those
    // whose subscription is not confirmed, with whether their subscribers get a gap.
    let mut pending: Vec<(String, u64, bool)> = Vec::new();
    // Commands queued while connecting are superseded by the table itself.
    while queue.try_recv().is_ok() {}
    pending.extend(table(&hub).into_iter().map(|(c, g)| (c, g, false)));
    let mut retry = tokio::time::interval(RESUBSCRIBE_EVERY);
    loop {
        tokio::select! {
            command = queue.recv() => match command {
                None => return, // the hub is gone
                Some(Command::Subscribe { channel, generation }) => {
                    pending.retain(|(c, _, _)| *c != channel);
                    pending.push((channel, generation, false));
                    resubscribe(&mut conn, &hub, &mut pending).await;
                }
                Some(Command::Unsubscribe { channel }) => {
                    pending.retain(|(c, _, _)| *c != channel);
                    if let Some(prefix) = prefix(&hub)
                        && let Err(e) = conn.sunsubscribe(format!("{prefix}{channel}")).await
                    {
                        tracing::debug!(error = %e, channel, "realtime hub: SUNSUBSCRIBE failed");
                    }
                }
            },
            push = pushes.recv() => {
                let Some(push) = push else { return };
                let Some(inner) = hub.upgrade() else { return };
                match push.kind {
                    PushKind::SMessage | PushKind::Message => {
                        if let [Value::BulkString(channel), Value::BulkString(payload), ..] =
                            push.data.as_slice()
                        {
                            dispatch_payload(&inner, &String::from_utf8_lossy(channel), payload);
                        }
                    }
                    PushKind::Disconnection => {
                        tracing::warn!("realtime hub: a Redis Cluster node was lost; re-subscribing");
                        let channels = inner.channels.lock().unwrap();
                        pending.clear();
                        for (channel, slot) in channels.iter() {
                            slot.ready.send_replace(false);
                            pending.push((channel.clone(), slot.generation, true));
                        }
                    }
                    _ => {}
                }
            }
            _ = retry.tick(), if !pending.is_empty() => {
                resubscribe(&mut conn, &hub, &mut pending).await;
            }
            () = &mut shutdown => return,
        }
    }
}

/// `SSUBSCRIBE`s every pending channel (one at a time: channels of different slots live on
/// different shards); each confirmed one is marked ready (after a gap, if it had one).
/// Those that fail stay pending for the next round.
async fn resubscribe(
    conn: &mut ClusterConnection,
    hub: &Weak<Inner>,
    pending: &mut Vec<(String, u64, bool)>,
) {
    let Some(prefix) = prefix(hub) else { return };
    let mut failed = Vec::new();
    for (channel, generation, gap) in pending.drain(..) {
        match conn.ssubscribe(format!("{prefix}{channel}")).await {
            Ok(()) => mark_ready(hub, &channel, generation, gap),
            Err(e) => {
                tracing::debug!(error = %e, channel, "realtime hub: SSUBSCRIBE failed; will retry");
                failed.push((channel, generation, gap));
            }
        }
    }
    *pending = failed;
}

fn prefix(hub: &Weak<Inner>) -> Option<String> {
    hub.upgrade().map(|inner| inner.prefix.clone())
}

fn table(hub: &Weak<Inner>) -> Vec<(String, u64)> {
    let Some(inner) = hub.upgrade() else {
        return Vec::new();
    };
    let channels = inner.channels.lock().unwrap();
    channels
        .iter()
        .map(|(name, slot)| (name.clone(), slot.generation))
        .collect()
}
