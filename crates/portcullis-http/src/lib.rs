//! The HTTP face: the `/oauth2/*` endpoints that nginx `auth_request`, other proxies
//! and browsers talk to. Each handler reads the request, asks the decision core
//! (`portcullis-core`), and writes the answer.
//!
//! Owns: routing and the tower stack, cookies on the wire, forwarded-header trust,
//! pages, the reverse proxy, metrics, and the mapping from outcomes to statuses.
//! Does not own: the decision (`portcullis-core`), sealing (`portcullis-session`),
//! provider protocol (`portcullis-oidc`), configuration formats
//! (`portcullis-config`), sockets and signals (`portcullis`).
//!
//! # Layout (dependencies point down this list; none points back up)
//! - [`handlers`]: one module per endpoint group; [`proxy`]: every other path in
//!   reverse-proxy mode.
//! - [`answer`]: the answers handlers share (redirects, 401 JSON, 503 page,
//!   `Set-Cookie` of a lookup, policy errors).
//! - [`request`]: per-request facts (forwarded trust, host, request id) and the
//!   one call into the core's session lookup.
//! - [`edge`]: the one layer every request passes through (shedding, request id,
//!   span, metrics, access line).
//! - [`state`]: the shared [`AppState`].
//! - [`cookies`], [`forwarded`], [`pages`], [`metrics`], [`request_id`],
//!   [`settings`]: leaves.

pub mod ablation;
pub mod access;
pub mod answer;
pub mod cli_pages;
pub mod cli_templates;
pub mod cookies;
pub mod edge;
pub mod forwarded;
pub mod handlers;
pub mod hot;
pub mod metrics;
pub mod pages;
pub mod proxy;
pub mod request;
pub mod request_id;
pub mod settings;
pub mod state;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get};
use http::StatusCode;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use metrics::Metrics;
pub use settings::HttpSettings;
pub use state::AppState;

/// The auth routes: `/oauth2/*`, `/ping`, `/ready` and the landing page, with their
/// own limits: a time limit (503 when exceeded) and a body limit (they take no
/// bodies). Kept apart from the service-wide layers of [`app`] so that the proxy's
/// streaming and WebSocket traffic does not inherit them.
pub fn auth_routes(state: &AppState) -> Router<Arc<AppState>> {
    let limits = &state.settings.limits;
    let router = Router::new()
        .route(
            handlers::forward_auth::PATH,
            any(handlers::forward_auth::forward_auth),
        )
        .route(
            "/oauth2/forward_auth/{*original}",
            any(handlers::forward_auth::forward_auth),
        )
        .route("/oauth2/sign_in", get(handlers::login::sign_in))
        .route("/oauth2/start", get(handlers::login::start))
        .route("/oauth2/callback", get(handlers::login::callback))
        .route(
            "/oauth2/sign_out",
            get(handlers::sign_out::sign_out).post(handlers::sign_out::sign_out),
        )
        .route("/oauth2/userinfo", get(handlers::info::userinfo))
        .route("/oauth2/clusters", get(handlers::cli::clusters))
        .route(
            "/oauth2/cli/authorize",
            get(handlers::cli::authorize).post(handlers::cli::approve),
        )
        .route(
            "/oauth2/device/code",
            axum::routing::post(handlers::device::start),
        )
        .route(
            "/oauth2/device",
            get(handlers::device::page).post(handlers::device::submit),
        )
        .route("/oauth2/kubeconfig", get(handlers::kubeconfig::page))
        .route(
            "/oauth2/cli/token",
            axum::routing::post(handlers::cli::token),
        )
        .route(
            "/oauth2/cli/logout",
            axum::routing::post(handlers::cli::logout),
        )
        .route("/ready", get(handlers::info::ready))
        // Our namespace stays ours in proxy mode too.
        .route("/oauth2/{*rest}", any(handlers::info::not_found));
    // Without upstreams, "/" is a small landing page showing who is signed in; with
    // them, it belongs to an upstream.
    let router = if state.settings.upstreams.is_empty() {
        router.route("/", get(handlers::info::root))
    } else {
        router
    };
    let router = if ablation::ablation().no_timeout {
        router.layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
    } else {
        router.layer(
            ServiceBuilder::new()
                .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    limits.request_timeout,
                )),
        )
    };
    router
        // The hot path, added after (so outside) those two layers: it never reads a
        // body, and every wait on it has its own bound (`redis.timeout`,
        // `session.refresh_wait`, `oidc.timeout`), so a timer per request of every
        // dashboard would only cost (about 0.6 µs, measured).
        .route(handlers::auth::PATH, any(handlers::auth::auth))
        // Waits on nothing at all.
        .route(handlers::info::PING, get(handlers::info::ping))
}

/// The service as a `Router`, for tests to call in-process (the binary serves
/// [`hot::service`]: this router, with the two hot routes dispatched before it).
///
/// Layers, outermost first: [`edge`] (load shedding at `max_concurrent_requests`,
/// the request id, the request's context, sensitive headers, caught panics,
/// metrics and the access line) → routes (with [`auth_routes`]' own limits; in proxy mode, every other path falls
/// back to [`proxy::proxy`], which streams and so has no request timeout or body
/// limit of ours).
///
/// `Router::layer` applies layers per route, after routing: so `MatchedPath` is
/// known to them, and the in-flight count is shared by all the routes' copies.
pub fn app(state: Arc<AppState>) -> Router {
    let edge = (!ablation::ablation().no_edge).then(|| edge::EdgeLayer::new(Arc::clone(&state)));
    app_with_edge(state, edge)
}

/// [`app`] with `edge` (or none), shared with [`hot`]'s direct routes.
pub(crate) fn app_with_edge(state: Arc<AppState>, edge: Option<edge::EdgeLayer>) -> Router {
    let routes = auth_routes(&state);
    let routes = if state.settings.upstreams.is_empty() {
        routes
    } else {
        routes.fallback(proxy::proxy)
    };
    // One `Router::layer` call: every `.layer()` on a Router boxes the routes again,
    // and each box is a clone and an allocation per request.
    match edge {
        Some(edge) => routes.layer(edge).with_state(state),
        None => routes.with_state(state),
    }
}
