//! The live-update metrics (on `/metrics`), in one place so their names stay consistent:
//!
//! | metric | kind | meaning |
//! |---|---|---|
//! | `websocket_connections` | gauge | open WebSocket connections (the name every service uses, platform::metrics) |
//! | `media_realtime_subscriptions` | gauge | running subscriptions (a connection may run several) |
//! | `media_realtime_channels` | gauge | channels this replica is subscribed to on Redis |
//! | `media_realtime_fanout_total` | counter | messages handed to local subscribers (one per subscriber) |
//! | `media_realtime_deliveries_total` | counter | `next` messages written to clients |
//! | `media_realtime_payloads_total{how}` | counter | memoised `next` payloads: `executed` (selection run and serialised) or `shared` (taken from the event's memo) |
//! | `media_realtime_dropped_total` | counter | messages a lagging subscriber never saw |
//! | `media_realtime_resyncs_total` | counter | `RESYNC`s sent (lag or a Redis reconnect) |
//! | `media_realtime_undecodable_total` | counter | hub messages that did not decode (dropped) |
//! | `media_realtime_delivery_latency_seconds` | histogram | publish → written to the client's socket |
//! | `media_realtime_closed_total{code}` | counter | connections closed by the server, by close code |

pub fn connection_opened() {
    metrics::gauge!(platform::metrics::WEBSOCKET_CONNECTIONS).increment(1.0);
}

pub fn connection_closed() {
    metrics::gauge!(platform::metrics::WEBSOCKET_CONNECTIONS).decrement(1.0);
}

pub fn subscription_started() {
    metrics::gauge!("media_realtime_subscriptions").increment(1.0);
}

pub fn subscription_ended() {
    metrics::gauge!("media_realtime_subscriptions").decrement(1.0);
}

pub fn channel_opened() {
    metrics::gauge!("media_realtime_channels").increment(1.0);
}

pub fn channel_closed() {
    metrics::gauge!("media_realtime_channels").decrement(1.0);
}

pub fn fanned_out(receivers: usize) {
    metrics::counter!("media_realtime_fanout_total").increment(receivers as u64);
}

pub fn delivered(latency_seconds: Option<f64>) {
    metrics::counter!("media_realtime_deliveries_total").increment(1);
    if let Some(latency) = latency_seconds {
        metrics::histogram!("media_realtime_delivery_latency_seconds").record(latency.max(0.0));
    }
}

pub fn lagged(missed: u64) {
    metrics::counter!("media_realtime_dropped_total").increment(missed);
}

pub fn resync() {
    metrics::counter!("media_realtime_resyncs_total").increment(1);
}

pub fn undecodable() {
    metrics::counter!("media_realtime_undecodable_total").increment(1);
}

pub fn closed(code: u16) {
    metrics::counter!("media_realtime_closed_total", "code" => code.to_string()).increment(1);
}

pub fn payload(how: &'static str) {
    metrics::counter!("media_realtime_payloads_total", "how" => how).increment(1);
}

/// Keeps `media_realtime_subscriptions` right however the stream ends.
/// (Every subscription resolver wraps its stream in it.)
pub fn counted<S: futures::Stream>(inner: S) -> impl futures::Stream<Item = S::Item> {
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            subscription_ended();
        }
    }
    subscription_started();
    let guard = Guard;
    futures::StreamExt::map(inner, move |item| {
        let _ = &guard;
        item
    })
}
