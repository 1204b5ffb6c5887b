//! `/oauth2/forward_auth`: for proxies that pass our answer straight to the client
//! (Traefik ForwardAuth, Caddy `forward_auth`, Envoy `ext_authz` over HTTP).
//!
//! Unlike `/oauth2/auth` (nginx, which wants only 2xx/401/403), the answer here is
//! what the user gets: 200 with the identity headers (the proxy copies them to the
//! upstream request), a 302 to the sign-in page with the original URL as `rd` for a
//! browser, a 401 JSON body for a script, a 403 page when policy refuses.
//!
//! The original request comes from `X-Forwarded-Method/-Proto/-Host/-Uri` (Traefik,
//! Caddy), believed only from `server.trusted_proxies`; or, for Envoy, which calls
//! `/oauth2/forward_auth/<original path>` with the original method and `Host`,
//! from the path suffix. Policy query parameters work as on `/oauth2/auth`, except
//! with a path suffix (there the query is the original request's).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use portcullis_oidc::provider::unix_now;

use portcullis_core::Lookup;
use portcullis_core::authz::{self, Policy};

use crate::answer::{
    append_set_cookies, bad_policy, session_set_cookies, sign_in_location, sign_in_or_401,
    unavailable,
};
use crate::cookies::RequestCookies;
use crate::forwarded::Prefer;
use crate::metrics::Decision;
use crate::pages;
use crate::request::{self, Ctx};
use crate::state::AppState;

/// The endpoint's path; anything after it is Envoy's original path.
pub const PATH: &str = "/oauth2/forward_auth";

/// The handler.
pub async fn forward_auth(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let ctx = Ctx::new(&state, &parts);
    let suffix = parts
        .uri
        .path()
        .strip_prefix(PATH)
        .filter(|s| s.starts_with('/'))
        .map(|s| match parts.uri.query() {
            Some(q) => format!("{s}?{q}"),
            None => s.to_owned(),
        });
    let original = ctx.fwd.original(
        &parts.method,
        &parts.headers,
        suffix.as_deref(),
        "http",
        // Traefik and Caddy set X-Forwarded-Uri themselves but pass a client's
        // X-Original-URL on: that one must not pick the path policy sees.
        Prefer::ForwardedUri,
    );
    // Caddy's `forward_auth` (with `uri /oauth2/forward_auth`, no `?`) appends the
    // original request's query to ours: that query is the app's, not policy.
    let echoed = original
        .as_ref()
        .is_some_and(|o| o.path_and_query.split_once('?').map(|(_, q)| q) == parts.uri.query());
    let policy = if suffix.is_some() || echoed {
        Policy::default()
    } else {
        match Policy::from_query(parts.uri.query(), &[]) {
            Ok(p) => p,
            Err(e) => return bad_policy(&e),
        }
    };
    if let Some(o) = &original
        && authz::skip_auth(&state.settings.authz.skip_auth, &o.method, o.path())
    {
        return StatusCode::OK.into_response();
    }
    let cookies = RequestCookies::parse(&parts.headers);
    let lookup = request::authenticate(&state, &parts.headers, &cookies, unix_now()).await;
    let mut response = match &lookup {
        Lookup::Valid(loaded) => {
            let identity = &loaded.prepared.identity;
            match authz::check_all(identity, &[&state.settings.authz.policy, &policy]) {
                Ok(()) => {
                    let mut r = StatusCode::OK.into_response();
                    let headers = r.headers_mut();
                    for (name, value) in &loaded.prepared.headers {
                        headers.insert(name.clone(), value.clone());
                    }
                    r
                }
                Err(denial) => {
                    tracing::info!(request_id = %ctx.request_id, user = %identity.user, reason = denial.reason(), "forward_auth: denied by policy");
                    pages::denied_page(&state.templates, denial, &ctx.request_id)
                }
            }
        }
        Lookup::StoreDown(_) | Lookup::BearerUnavailable => {
            unavailable(&state, &lookup, &ctx.request_id)
        }
        other => {
            tracing::debug!(request_id = %ctx.request_id, reason = other.reason(), "forward_auth: unauthenticated");
            // `rd` is the original URL; /oauth2/start validates it like any other.
            let rd = original.as_ref().and_then(|o| o.url()).unwrap_or_default();
            let location = sign_in_location(&state, &state.settings.auth_origin, &rd);
            sign_in_or_401(&state, &parts.headers, other, &ctx.request_id, &location)
        }
    };
    append_set_cookies(
        &mut response,
        session_set_cookies(&state, &parts, &cookies, &lookup),
    );
    let decision = match response.status() {
        StatusCode::FOUND => Decision::Unauthenticated,
        status => Decision::from_status(status),
    };
    state.metrics.auth_decision(decision);
    response
}
