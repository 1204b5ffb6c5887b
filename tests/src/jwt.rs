//! What tests read off tokens they received: the clock, and a JWT's claims.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The claims of a JWT, given alone or as a `Bearer <jwt>` header value (null when
/// it is not one). The signature is not checked: the stand-in dashboards and API
/// servers do that.
pub fn claims(token: &str) -> serde_json::Value {
    let jwt = token.trim_start_matches("Bearer ");
    jwt.split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// The `exp` claim of a JWT (0 when it is not one).
pub fn exp(token: &str) -> u64 {
    claims(token)["exp"].as_u64().unwrap_or(0)
}

/// A string claim of a JWT (empty when absent).
pub fn claim(token: &str, name: &str) -> String {
    claims(token)[name].as_str().unwrap_or_default().to_owned()
}
