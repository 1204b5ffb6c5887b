//! `/oauth2/userinfo`, `/ping`, `/ready` and the landing page.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use portcullis_oidc::provider::unix_now;

use portcullis_core::Lookup;

use crate::answer::{append_set_cookies, session_set_cookies};
use crate::cookies::RequestCookies;
use crate::pages::escape;
use crate::request::{self, session_cookie};
use crate::state::AppState;

/// The signed-in identity as JSON, or 401.
pub async fn userinfo(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let cookies = RequestCookies::parse(&parts.headers);
    let lookup = request::authenticate(&state, &parts.headers, &cookies, unix_now()).await;
    let mut response = match &lookup {
        Lookup::Valid(loaded) => Json(&loaded.prepared.identity).into_response(),
        Lookup::StoreDown(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"error": "session store unavailable"})),
        )
            .into_response(),
        _ => (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": "unauthenticated"})),
        )
            .into_response(),
    };
    append_set_cookies(
        &mut response,
        session_set_cookies(&state, &parts, &cookies, &lookup),
    );
    response
}

/// Unknown paths under `/oauth2/`.
pub async fn not_found(State(state): State<Arc<AppState>>) -> Response {
    crate::pages::error_page(
        &state.templates,
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page.",
        &request::request_id(),
        None,
    )
}

/// Where load balancers ask whether the process is alive.
pub const PING: &str = "/ping";

/// Liveness: the process answers. Never touches sessions or the provider.
pub async fn ping() -> &'static str {
    "OK"
}

/// Readiness: the provider has been discovered and the session store answers.
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    if state.sessions.provider().get().is_none() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "provider not discovered yet",
        )
            .into_response();
    }
    if let Err(e) = state.sessions.ping().await {
        tracing::warn!(error = %e, "not ready: session store unavailable");
        return (StatusCode::SERVICE_UNAVAILABLE, "session store unavailable").into_response();
    }
    (StatusCode::OK, "OK").into_response()
}

/// The default post-login target on the auth host: who you are, and links.
pub async fn root(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let cookies = RequestCookies::parse(&parts.headers);
    let body = match state
        .sessions
        .load(session_cookie(&state, &cookies).as_deref(), unix_now())
        .await
    {
        Lookup::Valid(loaded) => format!(
            r#"<p>Signed in as <strong id="user">{}</strong>.</p><p><a href="/oauth2/sign_out">Sign out</a></p>"#,
            escape(&loaded.prepared.identity.user)
        ),
        _ => r#"<p>You are not signed in.</p><p><a href="/oauth2/start?rd=%2F">Sign in</a></p>"#
            .to_owned(),
    };
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Portcullis</title></head><body><main><h1>Portcullis</h1>{body}</main></body></html>"#
    ))
    .into_response()
}
