//! The HTTP service: the `/oauth2/*` endpoints that nginx `auth_request` and browsers
//! talk to, and the policy around them.
//!
//! Owns: routing and the tower stack, cookies on the wire, the redirect validator,
//! forwarded-header trust, authorization, and the mapping from failures to statuses.
//! Does not own: sealing (`portcullis-session`), provider protocol (`portcullis-oidc`),
//! configuration formats (`portcullis-config`), sockets and signals (`portcullis`).
//!
//! # Layout
//! - [`handlers`]: one function per endpoint.
//! - [`session`]: finding, opening and refreshing the session a request carries.
//! - [`refresh`]: single-flight refresh within a process and across replicas.
//! - [`cookies`]: `Cookie` parsing and `Set-Cookie` writing (domains, chunks, CSRF).
//! - [`redirect`]: the ONE validator for `rd` targets.
//! - [`forwarded`]: forwarded headers, believed only from trusted proxies.
//! - [`authz`], [`identity`]: who the user is and whether they may pass.
//! - [`provider`]: the provider handle discovered in the background.
//! - [`pages`], [`request_id`], [`settings`].

pub mod authz;
pub mod bearer;
pub mod cookies;
pub mod forwarded;
pub mod handlers;
pub mod identity;
pub mod pages;
pub mod provider;
pub mod proxy;
pub mod redirect;
pub mod refresh;
pub mod request_id;
pub mod session;
pub mod settings;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get};
use portcullis_session::Keyring;
use portcullis_session::store::AnyStore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::trace::TraceLayer;

pub use provider::ProviderSlot;
pub use settings::HttpSettings;

/// Shared state of the service: settings, keys and the provider handle. Built once by
/// the binary (or a test) and passed to [`app`]; there is no global configuration.
#[derive(Debug)]
pub struct AppState {
    /// Validated settings.
    pub settings: HttpSettings,
    /// Cookie keys: the first seals, all open (CSRF cookies, and what stores seal).
    pub keyring: Arc<Keyring>,
    /// Where sessions live.
    pub store: AnyStore,
    /// Per-process refresh single flight.
    pub refresher: refresh::Refresher,
    /// Prepared cookie-store sessions by cookie value (skips decrypt and parse).
    pub prepared: session::PreparedCache,
    /// The provider, once discovered.
    pub provider: ProviderSlot,
    /// Bearer-token issuers and verified tokens.
    pub bearer: bearer::Bearer,
    /// Client for the reverse-proxy mode's upstreams.
    pub upstream_client: proxy::UpstreamClient,
    /// Sign-in and error page templates.
    pub templates: pages::Templates,
}

impl AppState {
    /// State from its parts, with empty caches and slots.
    pub fn new(settings: HttpSettings, keyring: Arc<Keyring>, store: AnyStore) -> Self {
        Self {
            bearer: bearer::Bearer::new(&settings.bearer),
            upstream_client: proxy::UpstreamClient::new(),
            // Checked by `config check` / settings validation; a failure here falls
            // back to the built-in pages rather than refusing to start.
            templates: pages::Templates::load(settings.pages.templates_dir.as_deref())
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "custom templates failed to load; using the built-in pages");
                    pages::Templates::default()
                }),
            settings,
            keyring,
            store,
            refresher: Default::default(),
            prepared: Default::default(),
            provider: ProviderSlot::default(),
        }
    }
}

/// The service as a `Router`, for the binary to serve and for tests to call in-process.
///
/// Layers, outermost first: catch panics (a bug answers 500, never kills the
/// connection task) → mark `Cookie`/`Authorization`/`Set-Cookie` sensitive so no trace
/// layer prints them → one span per request with an access-log line at the end →
/// request id (inside the span, so it is recorded on it) → routes.
pub fn app(state: Arc<AppState>) -> Router {
    let router = Router::new()
        .route("/oauth2/auth", any(handlers::auth::auth))
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
        .route("/ping", get(handlers::info::ping))
        .route("/ready", get(handlers::info::ready))
        // Our namespace stays ours in proxy mode too.
        .route("/oauth2/{*rest}", any(handlers::info::not_found));
    // Reverse-proxy mode: every other path goes to an upstream; otherwise "/" is a
    // small landing page showing who is signed in.
    let router = if state.settings.upstreams.is_empty() {
        router.route("/", get(handlers::info::root))
    } else {
        router.fallback(proxy::proxy)
    };
    router
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_id::layer,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &http::Request<_>| {
                    // The path only: queries carry authorization codes and `rd` values.
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id = tracing::field::Empty,
                    )
                })
                .on_request(())
                .on_response(
                    tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO),
                )
                // 5xx are expected at times (503 while not ready or while Redis is down,
                // 502 when the provider is) and already in the access line: warn.
                .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::WARN)),
        )
        .layer(SetSensitiveHeadersLayer::new([
            http::header::COOKIE,
            http::header::AUTHORIZATION,
            http::header::SET_COOKIE,
        ]))
        .layer(CatchPanicLayer::new())
        .with_state(state)
}
