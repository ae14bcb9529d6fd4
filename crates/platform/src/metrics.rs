//! Prometheus metrics through the `metrics` facade.
//!
//! One recorder per process, installed on first use. Each service exposes it at `/metrics`.
//! HTTP metrics are labelled by the *route template* (`/video/{id}`), never the raw path, so
//! the number of series stays bounded whatever clients send.

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
/// Messages waiting in a queue a service consumes (`queue` label), as the broker reported
/// it moments ago: what the dashboard's queue panel and the transcoder's autoscaling read.
pub const QUEUE_MESSAGES_READY: &str = "queue_messages_ready";
/// Consumers attached to that queue (all replicas), from the same report.
pub const QUEUE_CONSUMERS: &str = "queue_consumers";
/// Open WebSocket connections of this process (media's subscriptions count theirs here).
pub const WEBSOCKET_CONNECTIONS: &str = "websocket_connections";

/// Transcodes take seconds to an hour; the latency buckets would put them all in `+Inf`.
const TRANSCODE_BUCKETS: &[f64] = &[
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];
pub const TRANSCODE_DURATION: &str = "transcode_duration_seconds";

/// Latency buckets from 1 ms to 10 s: ForwardAuth answers in well under a millisecond of
/// work, uploads and slow queries take seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide handle, installing the recorder the first time.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        // A full-name matcher wins over a suffix matcher, whatever the order here.
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .expect("static bucket list is not empty")
            .set_buckets_for_metric(Matcher::Full(TRANSCODE_DURATION.into()), TRANSCODE_BUCKETS)
            .expect("static bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a test harness); ours still renders.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Renders the Prometheus text exposition format.
pub fn render() -> String {
    handle().render()
}

/// Records one finished HTTP request.
pub fn record_http(method: &str, route: &str, status: u16, elapsed: Duration) {
    handle(); // the recorder must exist before the first sample, or it is lost
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels[..2]).record(elapsed.as_secs_f64());
}

/// Reports a consumed queue's depth and consumer count (see [`QUEUE_MESSAGES_READY`]).
pub fn record_queue_depth(queue: &str, messages_ready: u32, consumers: u32) {
    handle();
    let labels = [("queue", queue.to_owned())];
    metrics::gauge!(QUEUE_MESSAGES_READY, &labels).set(f64::from(messages_ready));
    metrics::gauge!(QUEUE_CONSUMERS, &labels).set(f64::from(consumers));
}

/// Makes [`WEBSOCKET_CONNECTIONS`] appear on `/metrics` (at its current value, 0 at start)
/// before the first client connects, so dashboards show 0 rather than "no data".
pub fn register_websocket_connections() {
    handle();
    metrics::gauge!(WEBSOCKET_CONNECTIONS).increment(0.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcode_durations_get_minute_scale_buckets() {
        metrics_helper_record_transcode();
        let text = render();
        assert!(
            text.contains(&format!("{TRANSCODE_DURATION}_bucket{{le=\"3600\"}}")),
            "{text}"
        );
        assert!(
            !text.contains(&format!("{TRANSCODE_DURATION}_bucket{{le=\"0.001\"}}")),
            "{text}"
        );
    }

    fn metrics_helper_record_transcode() {
        handle();
        metrics::histogram!(TRANSCODE_DURATION).record(42.0);
    }
}
