//! Request ids: accepted from trusted proxies, generated otherwise, echoed in the
//! response and recorded on the request's tracing span.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use http::HeaderValue;

/// The header carrying the id both ways.
pub const HEADER: &str = "x-request-id";

/// [`HEADER`] parsed once: a `&str` name is parsed again on every lookup.
pub(crate) const HEADER_NAME: http::HeaderName = http::HeaderName::from_static(HEADER);

/// The id of a request (handlers read it from the request's context:
/// `crate::request::request_id`).
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lower-case hex digits.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// A process-unique id, `<12 hex digits>-<8 or more hex digits>`: a random
/// per-process prefix and a counter (no syscall per request, unique across replicas
/// with overwhelming probability). Written into a stack buffer: no formatting
/// machinery and one allocation (the `Arc`) on the path of every request.
fn generate() -> Arc<str> {
    static PREFIX: OnceLock<[u8; 12]> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 6];
        // On failure fall back to the process id: still useful, less unique.
        if getrandom::getrandom(&mut bytes).is_err() {
            bytes[..4].copy_from_slice(&std::process::id().to_le_bytes());
        }
        let mut hex = [0u8; 12];
        for (i, b) in bytes.iter().enumerate() {
            hex[2 * i] = HEX[usize::from(b >> 4)];
            hex[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        hex
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // 12 + 1 + up to 16 digits; at least 8 counter digits, as before.
    let mut buf = [0u8; 29];
    buf[..12].copy_from_slice(prefix);
    buf[12] = b'-';
    let digits = (16 - (n.leading_zeros() / 4) as usize).max(8);
    for i in 0..digits {
        let shift = 4 * (digits - 1 - i);
        buf[13 + i] = HEX[((n >> shift) & 0xf) as usize];
    }
    // ASCII by construction.
    Arc::from(std::str::from_utf8(&buf[..13 + digits]).unwrap_or("request"))
}

/// Accepts an inbound id only from trusted proxies and only if it is short and plain.
fn inbound(headers: &http::HeaderMap, trusted: bool) -> Option<Arc<str>> {
    if !trusted {
        return None;
    }
    let value = headers.get(HEADER_NAME)?.to_str().ok()?;
    (!value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)))
    .then(|| Arc::from(value))
}

/// The id of a request: its trusted proxy's, else a new one.
pub fn assign(headers: &http::HeaderMap, trusted: bool) -> RequestId {
    RequestId(inbound(headers, trusted).unwrap_or_else(generate))
}

impl RequestId {
    /// The id as a header value (it is plain ASCII by construction).
    pub fn header_value(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&self.0).ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn generated_ids_are_prefix_dash_counter_in_hex() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        let (pa, na) = a.split_once('-').unwrap();
        let (pb, nb) = b.split_once('-').unwrap();
        assert_eq!(pa, pb, "one prefix per process");
        assert_eq!(pa.len(), 12);
        assert!(na.len() >= 8 && nb.len() >= 8);
        let (na, nb) = (
            u64::from_str_radix(na, 16).unwrap(),
            u64::from_str_radix(nb, 16).unwrap(),
        );
        assert!(nb > na);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-'));
    }
}
