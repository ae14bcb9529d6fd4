//! Logs: one JSON object per line on stdout (what log collectors expect), filtered by
//! `RUST_LOG` (default `info`). `LOG_FORMAT=pretty` gives human-readable lines for a terminal.

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber. Safe to call more than once (tests start several
/// services in one process); only the first call wins.
pub fn init(service: &'static str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let pretty = std::env::var("LOG_FORMAT").is_ok_and(|f| f == "pretty");
    let result = if pretty {
        fmt().with_env_filter(filter).with_target(false).try_init()
    } else {
        fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .try_init()
    };
    if result.is_ok() {
        tracing::info!(
            service,
            version = env!("CARGO_PKG_VERSION"),
            "logging initialised"
        );
    }
}
