//! The answers handlers share: redirects, the `Set-Cookie` a lookup calls for, the
//! 401 for scripts, the 503 page for undecidable lookups, and policy errors. What a
//! core outcome means on the wire is decided here or in the handler, nowhere else.

use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use portcullis_core::Lookup;
use portcullis_core::authz::PolicyError;
use portcullis_core::redirect::validate_redirect;
use portcullis_oidc::provider::unix_now;

use crate::cookies::{CookieWriter, RequestCookies};
use crate::pages;
use crate::request::Ctx;
use crate::state::AppState;

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
        response.headers_mut().append(header::SET_COOKIE, c);
    }
}

/// A 302 to `location`, never cached.
pub(crate) fn redirect(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A policy query the endpoint cannot honour: a 400 (which nginx turns into a 500),
/// never a silent "allow": the Ingress is misconfigured and must be fixed.
pub(crate) fn bad_policy(e: &PolicyError) -> Response {
    // The line carries the request id: the log formatter writes the request's.
    tracing::warn!(error = %e, "policy parameters refused");
    (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
}

/// Whether a request comes from a script rather than a page navigation: such
/// requests get a 401 with a JSON body, never a redirect to an HTML sign-in page.
pub fn is_api_request(headers: &HeaderMap) -> bool {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let accept = get("accept").to_ascii_lowercase();
    get("x-requested-with").eq_ignore_ascii_case("xmlhttprequest")
        || (accept.contains("application/json") && !accept.contains("text/html"))
        || matches!(get("sec-fetch-mode"), m if !m.is_empty() && m != "navigate")
}

/// The 401 for scripts.
pub fn unauthenticated_json(request_id: &str, sign_in: &str, bearer: bool) -> Response {
    let body = serde_json::json!({
        "error": "unauthenticated",
        "message": "sign-in required",
        "sign_in": sign_in,
        "request_id": request_id,
    });
    let mut r = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    let headers = r.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if bearer {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// The 503 page for a lookup that could not be decided (store down, bearer issuer
/// not discovered yet): never "signed out", so never a sign-in loop.
pub(crate) fn unavailable(state: &AppState, lookup: &Lookup, request_id: &str) -> Response {
    let message = match lookup {
        Lookup::StoreDown(e) => {
            tracing::warn!(request_id, error = %e, "session store unavailable");
            "Sessions cannot be checked right now. Please try again in a moment."
        }
        _ => {
            tracing::warn!(
                request_id,
                reason = lookup.reason(),
                "authentication unavailable"
            );
            "The token issuer has not been reached yet. Please try again in a moment."
        }
    };
    pages::error_page(
        &state.templates,
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        message,
        request_id,
        None,
    )
}

/// The answer to a request without a usable session where a browser can be sent to
/// sign in (forward-auth, proxy mode): a 401 JSON body for scripts and for a rejected
/// bearer token (a sign-in would not help them), else a 302 to `location`.
pub(crate) fn sign_in_or_401(
    state: &AppState,
    headers: &HeaderMap,
    lookup: &Lookup,
    request_id: &str,
    location: &str,
) -> Response {
    if is_api_request(headers) || matches!(lookup, Lookup::BadBearer(_)) {
        unauthenticated_json(
            request_id,
            location,
            state.sessions.settings().bearer.enabled,
        )
    } else {
        redirect(location)
    }
}

/// The sign-in location for a target (`rd`): the sign-in page, or the provider
/// directly when `pages.skip_sign_in_page` is set. `origin` is empty for a path on
/// the current host.
pub fn sign_in_location(state: &AppState, origin: &str, rd: &str) -> String {
    let endpoint = if state.settings.pages.skip_sign_in_page {
        "/oauth2/start"
    } else {
        "/oauth2/sign_in"
    };
    let rd: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    format!("{origin}{endpoint}?rd={rd}")
}

/// The browser session of a page that needs one (the kubectl consent, device and
/// kubeconfig pages), or the answer to send instead: 503 when sessions cannot be
/// checked, else the sign-in, which comes back to this very URL.
pub(crate) async fn page_session(
    state: &AppState,
    parts: &Parts,
    request_id: &str,
) -> Result<Box<portcullis_core::sessions::Loaded>, Response> {
    let cookies = RequestCookies::parse(&parts.headers);
    let lookup = state
        .sessions
        .load(
            crate::request::session_cookie(state, &cookies).as_deref(),
            unix_now(),
        )
        .await;
    match lookup {
        Lookup::Valid(loaded) => Ok(loaded),
        other @ (Lookup::StoreDown(_) | Lookup::BearerUnavailable) => {
            Err(unavailable(state, &other, request_id))
        }
        _ => {
            let here = parts
                .uri
                .path_and_query()
                .map_or(parts.uri.path(), |p| p.as_str());
            Err(redirect(&sign_in_location(state, "", here)))
        }
    }
}
