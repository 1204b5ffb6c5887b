//! One module per endpoint group, plus what they share.

pub mod auth;
pub mod forward_auth;
pub mod info;
pub mod login;
pub mod sign_out;

use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use portcullis_oidc::provider::unix_now;

use crate::AppState;
use crate::cookies::{CookieWriter, RequestCookies};
use crate::forwarded::Forwarded;
use crate::redirect::validate_redirect;
use crate::request_id::RequestId;
use crate::session::Lookup;

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

/// The `Set-Cookie` headers a session lookup calls for: the refreshed session (cookie
/// store), or the removal of a session that is over. Nothing in the common case, and
/// then no per-request work either.
pub(crate) fn session_set_cookies(
    state: &AppState,
    parts: &Parts,
    cookies: &RequestCookies<'_>,
    lookup: &Lookup,
) -> Vec<HeaderValue> {
    let refreshed = match lookup {
        Lookup::Valid(l) => l
            .set_cookie
            .as_deref()
            .map(|c| (c, l.prepared.state.expires_at)),
        _ => None,
    };
    if refreshed.is_none() && !lookup.clears_cookie() {
        return Vec::new();
    }
    let ctx = Ctx::new(state, parts);
    let writer = CookieWriter::new(&state.settings.cookie, ctx.host.as_deref());
    match refreshed {
        Some((value, expires_at)) => writer
            .session(value, expires_at.saturating_sub(unix_now()), cookies)
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "refreshed session too large for cookies");
                Vec::new()
            }),
        None => writer.clear_session(cookies),
    }
}

/// Appends `Set-Cookie` headers.
pub(crate) fn append_set_cookies(
    response: &mut Response,
    cookies: impl IntoIterator<Item = HeaderValue>,
) {
    for c in cookies {
        response.headers_mut().append(http::header::SET_COOKIE, c);
    }
}

/// A 302 to `location`, never cached.
pub(crate) fn redirect(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(http::header::LOCATION, v);
    }
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}
