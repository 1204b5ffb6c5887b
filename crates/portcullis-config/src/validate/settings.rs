//! The validated settings the binary runs with, and the error type of validation.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use portcullis_core::SessionSettings;
use portcullis_http::settings::HttpSettings;
use portcullis_oidc::OidcSettings;
use portcullis_session::Key;
use portcullis_session::store::RedisSettings;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The configured session store.
#[derive(Debug, Clone)]
pub enum StoreChoice {
    /// Sessions sealed into cookies.
    Cookie,
    /// Sessions in Redis.
    Redis(RedisSettings),
}

/// The certificate and key files of the HTTPS listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// How the binary serves: listeners, TLS, connection limits and shutdown.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// The Prometheus listener, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// HTTPS on the main listener, if configured.
    pub tls: Option<TlsFiles>,
    /// Largest request head in bytes (HTTP/1 buffer, HTTP/2 header list).
    pub max_header_bytes: usize,
    /// After SIGTERM, how long `/ready` answers 503 before the listener closes.
    pub shutdown_delay: Duration,
    /// How long in-flight requests may take to finish after that.
    pub shutdown_timeout: Duration,
    /// Runtime threads: 0 one per usable CPU, 1 single-threaded, N that many.
    pub worker_threads: usize,
}

/// Most `server.worker_threads`.
pub const MAX_WORKER_THREADS: usize = 256;

/// Smallest `server.max_header_bytes`: hyper's smallest HTTP/1 read buffer.
pub const MIN_HEADER_BYTES: usize = 8 * 1024;
/// Largest `server.max_header_bytes`.
pub const MAX_HEADER_BYTES: usize = 1024 * 1024;

/// Everything the binary needs, validated.
#[derive(Debug)]
pub struct Settings {
    /// Main listener.
    pub listen: SocketAddr,
    /// The HTTP face's settings.
    pub http: HttpSettings,
    /// What sessions are, how long they last and how they refresh (the core's).
    pub sessions: SessionSettings,
    /// The relying party's settings.
    pub oidc: OidcSettings,
    /// Cookie keys, sealing key first.
    pub keys: Vec<Key>,
    /// Where sessions live.
    pub store: StoreChoice,
    /// Log filter.
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Listeners, TLS, limits and shutdown.
    pub serving: ServeSettings,
}
