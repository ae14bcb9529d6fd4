//! Prometheus metrics through the `metrics` facade.
//!
//! One recorder per process, installed on first use. Each service exposes it at `/metrics`.
//! HTTP metrics are labelled by the *route template* (`/video/{id}`), never the raw path, so
//! the number of series stays bounded whatever clients send.

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_DURATION: &str = "http_request_duration_seconds";

/// Latency buckets from 1 ms to 10 s: ForwardAuth answers in well under a millisecond of
/// work, uploads and slow queries take seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide handle, installing the recorder the first time.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
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
