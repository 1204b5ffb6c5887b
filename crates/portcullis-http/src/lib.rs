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
//! - [`edge`]: the one layer every request passes through (shedding, request id,
//!   span, metrics, access line).
//! - [`session`]: finding, opening and refreshing the session a request carries.
//! - [`refresh`]: single-flight refresh within a process and across replicas.
//! - [`cookies`]: `Cookie` parsing and `Set-Cookie` writing (domains, chunks, CSRF).
//! - [`redirect`]: the ONE validator for `rd` targets.
//! - [`forwarded`]: forwarded headers, believed only from trusted proxies.
//! - [`authz`], [`identity`]: who the user is and whether they may pass.
//! - [`provider`]: the provider handle discovered in the background.
//! - [`metrics`]: the Prometheus registry, typed handles and the request middleware.
//! - [`pages`], [`request_id`], [`settings`].

pub mod authz;
pub mod bearer;
pub mod cookies;
pub mod edge;
pub mod forwarded;
pub mod handlers;
pub mod identity;
pub mod metrics;
pub mod pages;
pub mod provider;
pub mod proxy;
pub mod redirect;
pub mod refresh;
pub mod request_id;
pub mod session;
pub mod settings;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::routing::{any, get};
use http::StatusCode;
use portcullis_session::Keyring;
use portcullis_session::store::AnyStore;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use metrics::Metrics;
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
    /// Prepared sessions by cookie value (skips decrypt and parse; see `PreparedCache`).
    pub prepared: session::PreparedCache,
    /// The provider, once discovered.
    pub provider: ProviderSlot,
    /// Prometheus metrics (served on `server.metrics_listen`).
    pub metrics: Metrics,
    /// Set at shutdown: `/ready` answers 503 so load balancers stop sending traffic
    /// while in-flight requests finish.
    pub draining: AtomicBool,
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
            metrics: Metrics::for_store(&store),
            draining: AtomicBool::new(false),
            settings,
            keyring,
            store,
            refresher: Default::default(),
            prepared: Default::default(),
            provider: ProviderSlot::default(),
        }
    }
}

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
        .route("/ping", get(handlers::info::ping))
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
    router
        .layer(
            ServiceBuilder::new()
                .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    limits.request_timeout,
                )),
        )
        // The hot path, added after (so outside) those two layers: it never reads a
        // body, and every wait on it has its own bound (`redis.timeout`,
        // `session.refresh_wait`, `oidc.timeout`), so a timer per request of every
        // dashboard would only cost (about 0.6 µs, measured).
        .route("/oauth2/auth", any(handlers::auth::auth))
}

/// The service as a `Router`, for the binary to serve and for tests to call in-process.
///
/// Layers, outermost first: [`edge`] (load shedding at `max_concurrent_requests`,
/// the request id, the request's span, sensitive headers, caught panics, metrics
/// and the access line) → routes (with [`auth_routes`]' own limits; in proxy mode, every other path falls
/// back to [`proxy::proxy`], which streams and so has no request timeout or body
/// limit of ours).
///
/// `Router::layer` applies layers per route, after routing: so `MatchedPath` is
/// known to them, and the in-flight count is shared by all the routes' copies.
pub fn app(state: Arc<AppState>) -> Router {
    let routes = auth_routes(&state);
    let routes = if state.settings.upstreams.is_empty() {
        routes
    } else {
        routes.fallback(proxy::proxy)
    };
    // One `Router::layer` call: every `.layer()` on a Router boxes the routes again,
    // and each box is a clone and an allocation per request.
    routes
        .layer(edge::EdgeLayer::new(Arc::clone(&state)))
        .with_state(state)
}
