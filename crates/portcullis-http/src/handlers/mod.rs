//! One module per endpoint group, plus what they share.

pub mod auth;
pub mod info;
pub mod login;
pub mod sign_out;

use http::request::Parts;

use crate::AppState;
use crate::forwarded::Forwarded;
use crate::redirect::validate_redirect;
use crate::request_id::RequestId;

/// Per-request facts every handler needs.
pub(crate) struct Ctx {
    pub fwd: Forwarded,
    pub host: Option<String>,
    pub request_id: String,
}

impl Ctx {
    pub(crate) fn new(state: &AppState, parts: &Parts) -> Self {
        let fwd = Forwarded::from_parts(parts, &state.settings.trusted_proxies);
        Self {
            host: fwd.host(&parts.headers),
            request_id: parts
                .extensions
                .get::<RequestId>()
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default(),
            fwd,
        }
    }
}

/// The first value of query parameter `name`.
pub(crate) fn query_param(parts: &Parts, name: &str) -> Option<String> {
    let query = parts.uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Validates a redirect target, falling back to the configured default (and logging
/// why) when it is missing or rejected. `at` names the endpoint for the log.
pub(crate) fn safe_redirect(
    state: &AppState,
    raw: Option<&str>,
    request_id: &str,
    at: &'static str,
) -> String {
    let default = &state.settings.redirect.default;
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return default.clone();
    };
    match validate_redirect(raw, &state.settings.redirect.whitelist) {
        Ok(target) => target.into_string(),
        Err(reason) => {
            // The rejected value is attacker-controlled: log its length, not its text.
            tracing::warn!(request_id, at, reason = %reason, len = raw.len(), "rejected redirect target; using the default");
            default.clone()
        }
    }
}
