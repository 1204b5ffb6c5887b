//! `/oauth2/auth`: the nginx `auth_request` endpoint.
//!
//! Answers only 202 (allowed, identity in headers), 401 (no usable session) or 403
//! (signed in, refused by policy). Never a redirect: nginx treats anything but
//! 2xx/401/403 as an error.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use portcullis_core::Lookup;
use portcullis_core::authz::{self, Policy};
use portcullis_oidc::provider::unix_now;

use crate::answer::{append_set_cookies, bad_policy, session_set_cookies};
use crate::cookies::RequestCookies;
use crate::forwarded::Forwarded;
use crate::metrics::Decision;
use crate::request;
use crate::state::AppState;

/// Where nginx `auth_request` asks.
pub const PATH: &str = "/oauth2/auth";

/// The handler.
pub async fn auth(State(state): State<Arc<AppState>>, request: Request) -> Response {
    // Taken apart, not extracted as `Parts`: that extractor clones the headers.
    let (parts, _body) = request.into_parts();
    let policy = match Policy::from_query(parts.uri.query(), &[]) {
        Ok(p) => p,
        Err(e) => return bad_policy(&e),
    };
    if !state.settings.authz.skip_auth.is_empty() {
        let fwd = Forwarded::from_parts(&parts, &state.settings.trusted_proxies);
        if let Some(original) = fwd.original(
            &parts.method,
            &parts.headers,
            None,
            "http",
            crate::forwarded::Prefer::OriginalUrl,
        ) && authz::skip_auth(
            &state.settings.authz.skip_auth,
            &original.method,
            original.path(),
        ) {
            return StatusCode::ACCEPTED.into_response();
        }
    }
    let cookies = RequestCookies::parse(&parts.headers);
    let lookup = request::authenticate(&state, &parts.headers, &cookies, unix_now()).await;
    let mut response = match &lookup {
        Lookup::Valid(loaded) => {
            match authz::check_all(
                &loaded.prepared.identity,
                &[&state.settings.authz.policy, &policy],
            ) {
                Ok(()) => {
                    let mut r = StatusCode::ACCEPTED.into_response();
                    // The answer has no headers yet: the prepared map is all of them.
                    *r.headers_mut() = loaded.prepared.headers.clone();
                    r
                }
                Err(denial) => {
                    tracing::info!(user = %loaded.prepared.identity.user, reason = denial.reason(), "auth: denied by policy");
                    let fwd = Forwarded::from_parts(&parts, &state.settings.trusted_proxies);
                    let host = fwd
                        .original(
                            &parts.method,
                            &parts.headers,
                            None,
                            "http",
                            crate::forwarded::Prefer::OriginalUrl,
                        )
                        .and_then(|o| o.host)
                        .unwrap_or_default();
                    portcullis_core::audit::Event::new(
                        portcullis_core::audit::AuditEvent::PolicyDenial,
                        portcullis_core::audit::Outcome::Refused,
                    )
                    .user(&loaded.prepared.identity.user)
                    .session(&loaded.prepared.state.id)
                    .kind("browser")
                    .host(&host)
                    .detail(denial.reason())
                    .emit(&**state.sessions.observer());
                    StatusCode::FORBIDDEN.into_response()
                }
            }
        }
        Lookup::Missing => StatusCode::UNAUTHORIZED.into_response(),
        Lookup::StoreDown(e) => {
            // A 5xx, not a 401: the user is not logged out, so no login loop; nginx
            // shows an error page until the store is back.
            tracing::warn!(error = %e, "auth: session store unavailable");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Lookup::BearerUnavailable => {
            tracing::warn!("auth: bearer token issuer not discovered yet");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Lookup::BadBearer(reason) => {
            tracing::info!(reason = %reason, "auth: bearer token rejected");
            StatusCode::UNAUTHORIZED.into_response()
        }
        other @ Lookup::Undecodable(_) => {
            // Bad input (tampering, an old key, truncation by a proxy): worth a line.
            tracing::info!(reason = other.reason(), "auth: session cookie rejected");
            StatusCode::UNAUTHORIZED.into_response()
        }
        other => {
            tracing::debug!(reason = other.reason(), "auth: unauthenticated");
            StatusCode::UNAUTHORIZED.into_response()
        }
    };
    append_set_cookies(
        &mut response,
        session_set_cookies(&state, &parts, &cookies, &lookup),
    );
    state
        .metrics
        .auth_decision(Decision::from_status(response.status()));
    response
}
