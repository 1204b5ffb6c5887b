//! What tests read off tokens they received: the clock, and a JWT's `exp`.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The `exp` claim of a JWT, given alone or as a `Bearer <jwt>` header value. The
/// signature is not checked: the stand-in dashboards and API servers do that.
pub fn exp(token: &str) -> u64 {
    let jwt = token.trim_start_matches("Bearer ");
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["exp"].as_u64().unwrap()
}
