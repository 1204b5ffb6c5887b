//! Ablation switches for `bench/run.sh` only: `PORTCULLIS_BENCH_ABLATE` (a comma list)
//! removes one piece of the serving stack, so one benchmark run can say what each
//! piece costs per request. Read once at start-up; with the variable unset (always,
//! outside the benchmark) nothing changes and nothing is paid per request. Never a
//! setting: a binary serving users with pieces removed would lose request ids,
//! metrics, timeouts.
//!
//! - `http1`: hyper's HTTP/1 connection builder instead of the auto (HTTP/1 + h2c)
//!   one, when TLS is off;
//! - `no-header-timeout`: no header-read timeout at all;
//! - `tokio-header-timer`: the header-read timeout as hyper-util's `TokioTimer` keeps
//!   it (a timer-wheel entry per request head) instead of one per connection;
//! - `no-timeout`: no request timeout layer on the routes that have one;
//! - `no-edge`: no edge layer (request id, context, metrics, access line, shedding);
//! - `no-metrics`: the edge layer without its per-request metrics;
//! - `no-hot`: `/oauth2/auth` and `/ping` through axum's router like every other
//!   route, instead of [`crate::hot`]'s direct dispatch.

use std::sync::OnceLock;

/// Which pieces are removed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ablation {
    /// HTTP/1-only connections.
    pub http1: bool,
    /// No header-read timeout.
    pub no_header_timeout: bool,
    /// The header-read timeout with a timer per request head.
    pub tokio_header_timer: bool,
    /// No request timeout layer.
    pub no_timeout: bool,
    /// No edge layer.
    pub no_edge: bool,
    /// No per-request metrics.
    pub no_metrics: bool,
    /// The hot routes through axum's router too ([`crate::hot`]).
    pub no_hot: bool,
}

/// The switches of this process (from `PORTCULLIS_BENCH_ABLATE`, read once).
pub fn ablation() -> Ablation {
    static ABLATION: OnceLock<Ablation> = OnceLock::new();
    *ABLATION.get_or_init(|| {
        let raw = std::env::var("PORTCULLIS_BENCH_ABLATE").unwrap_or_default();
        let mut a = Ablation::default();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "http1" => a.http1 = true,
                "no-header-timeout" => a.no_header_timeout = true,
                "tokio-header-timer" => a.tokio_header_timer = true,
                "no-timeout" => a.no_timeout = true,
                "no-edge" => a.no_edge = true,
                "no-metrics" => a.no_metrics = true,
                "no-hot" => a.no_hot = true,
                other => tracing::warn!(item = other, "unknown PORTCULLIS_BENCH_ABLATE item"),
            }
        }
        if !raw.is_empty() {
            tracing::warn!(?a, "benchmark ablation in effect: not for serving users");
        }
        a
    })
}
