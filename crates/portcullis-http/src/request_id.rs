//! Request ids: accepted from trusted proxies, generated otherwise, echoed in the
//! response and recorded on the request's tracing span.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use http::HeaderValue;

/// The header carrying the id both ways.
pub const HEADER: &str = "x-request-id";

/// The id of the current request, as a request extension for handlers.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A process-unique id: a random per-process prefix and a counter (no syscall per
/// request, unique across replicas with overwhelming probability).
fn generate() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 6];
        // On failure fall back to the process id: still useful, less unique.
        if getrandom::getrandom(&mut bytes).is_err() {
            bytes[..4].copy_from_slice(&std::process::id().to_le_bytes());
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{n:08x}")
}

/// Accepts an inbound id only from trusted proxies and only if it is short and plain.
fn inbound(headers: &http::HeaderMap, trusted: bool) -> Option<String> {
    if !trusted {
        return None;
    }
    let value = headers.get(HEADER)?.to_str().ok()?;
    (!value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)))
    .then(|| value.to_owned())
}

/// The id of a request: its trusted proxy's, else a new one.
pub fn assign(headers: &http::HeaderMap, trusted: bool) -> RequestId {
    RequestId(Arc::from(
        inbound(headers, trusted).unwrap_or_else(generate),
    ))
}

impl RequestId {
    /// The id as a header value (it is plain ASCII by construction).
    pub fn header_value(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&self.0).ok()
    }
}
