//! The `[server]` keys about serving.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::report::{Errors, positive};
use super::settings::{
    MAX_HEADER_BYTES, MAX_WORKER_THREADS, MIN_HEADER_BYTES, ServeSettings, TlsFiles,
};

/// The `[server]` keys about serving. File contents are checked for PEM markers only
/// (the binary parses them at start and names the file if that fails).
pub(super) fn serving(
    e: &mut Errors,
    s: &crate::schema::Server,
    listen: Option<SocketAddr>,
) -> ServeSettings {
    let metrics_listen = match s.metrics_listen.trim() {
        "" => None,
        text => match text.parse::<SocketAddr>() {
            Ok(addr) if Some(addr) == listen => {
                e.push(
                    "server.metrics_listen",
                    "must differ from server.listen (metrics are never served on the public listener)",
                );
                None
            }
            Ok(addr) => Some(addr),
            Err(_) => {
                e.push(
                    "server.metrics_listen",
                    format!("{text:?} is not an address:port (or \"\" for no metrics listener)"),
                );
                None
            }
        },
    };
    let pem = |e: &mut Errors, key: &str, path: &str, marker: &str| -> Option<PathBuf> {
        match std::fs::read_to_string(path) {
            Ok(text) if text.contains(marker) => Some(PathBuf::from(path)),
            Ok(_) => {
                e.push(
                    key,
                    format!("{path:?} is not a PEM file with a {marker:?} block"),
                );
                None
            }
            Err(err) => {
                e.push(key, format!("cannot read {path:?}: {err}"));
                None
            }
        }
    };
    let tls = match (s.tls_cert_file.is_empty(), s.tls_key_file.is_empty()) {
        (true, true) => None,
        (false, true) => {
            e.push(
                "server.tls_key_file",
                "is required when server.tls_cert_file is set (set both for HTTPS, neither for HTTP)",
            );
            None
        }
        (true, false) => {
            e.push(
                "server.tls_cert_file",
                "is required when server.tls_key_file is set (set both for HTTPS, neither for HTTP)",
            );
            None
        }
        (false, false) => {
            let cert = pem(
                e,
                "server.tls_cert_file",
                &s.tls_cert_file,
                "-----BEGIN CERTIFICATE-----",
            );
            let key = pem(
                e,
                "server.tls_key_file",
                &s.tls_key_file,
                "PRIVATE KEY-----",
            );
            cert.zip(key).map(|(cert, key)| TlsFiles { cert, key })
        }
    };
    if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&s.max_header_bytes) {
        e.push(
            "server.max_header_bytes",
            format!("must be between {MIN_HEADER_BYTES} and {MAX_HEADER_BYTES}"),
        );
    }
    if s.max_concurrent_requests == 0 {
        e.push("server.max_concurrent_requests", "must be at least 1");
    }
    if s.worker_threads > MAX_WORKER_THREADS {
        e.push(
            "server.worker_threads",
            format!("must be at most {MAX_WORKER_THREADS} (0: one per CPU)"),
        );
    }
    positive(
        e,
        "server.request_timeout",
        s.request_timeout,
        Duration::from_secs(1),
    );
    positive(
        e,
        "server.shutdown_timeout",
        s.shutdown_timeout,
        Duration::from_secs(1),
    );
    if s.shutdown_delay > Duration::from_secs(300) {
        e.push("server.shutdown_delay", "must be at most 300s");
    }
    ServeSettings {
        metrics_listen,
        tls,
        max_header_bytes: s.max_header_bytes,
        shutdown_delay: s.shutdown_delay,
        shutdown_timeout: s.shutdown_timeout,
        worker_threads: s.worker_threads,
    }
}
