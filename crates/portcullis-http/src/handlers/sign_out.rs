//! `/oauth2/sign_out?rd=`: ends the session and leaves for a validated target.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use portcullis_core::audit::{AuditEvent, Event, Outcome};

use crate::answer::safe_redirect;
use crate::cookies::{CookieWriter, RequestCookies};
use crate::request::{Ctx, query_param, session_cookie};
use crate::state::AppState;

/// The handler (GET and POST).
pub async fn sign_out(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let ctx = Ctx::new(&state, &parts);
    let raw = query_param(&parts, "rd");
    let rd = safe_redirect(&state, raw.as_deref(), &ctx.request_id, "sign_out");
    let cookies = RequestCookies::parse(&parts.headers);
    if let Some(value) = session_cookie(&state, &cookies) {
        // Server-side sessions end here too; an outage leaves it to the store's TTL,
        // and the cookie is cleared either way.
        let ended = match state.sessions.end(&value).await {
            Ok(known) => known,
            Err(e) => {
                tracing::warn!(request_id = %ctx.request_id, error = %e, "could not delete the session from the store");
                None
            }
        };
        let mut event = Event::new(AuditEvent::SignOut, Outcome::Success).kind("browser");
        if let Some(p) = &ended {
            event = event.user(&p.identity.user).session(&p.state.id);
        }
        event.emit(&**state.sessions.observer());
    }
    let writer = CookieWriter::new(&state.settings.cookie, ctx.host.as_deref());
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&rd) {
        headers.insert(http::header::LOCATION, v);
    }
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    for c in writer.clear_session(&cookies) {
        headers.append(http::header::SET_COOKIE, c);
    }
    tracing::info!(request_id = %ctx.request_id, "signed out");
    response
}
