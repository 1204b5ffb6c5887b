//! Prometheus metrics: one registry, typed handles, and the request middleware.
//!
//! Label values are always from closed sets (route *templates*, methods, statuses,
//! enums below): never user names, paths or anything a client chooses, so the number
//! of series is bounded. Handles that the hot path uses are resolved once at start,
//! so recording is an atomic add; only the per-request family needs a map lookup.
//!
//! Served in the OpenMetrics text format (which Prometheus scrapes) on the separate
//! `server.metrics_listen` listener, never on the public one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode};
use portcullis_oidc::OidcError;
use portcullis_session::store::AnyStore;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::AppState;

/// The `route` label of requests no route matched (scanners, typos): one series for
/// all of them.
pub const UNMATCHED: &str = "unmatched";

/// Latency buckets of local work (requests, the session store), in seconds.
const LOCAL_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// Latency buckets of provider calls (network round trips), in seconds.
const PROVIDER_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A `&'static str` label value; the enums below turn into these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Name(&'static str);

impl EncodeLabelValue for Name {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.0, encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HttpLabels {
    route: Arc<str>,
    method: Name,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DecisionLabels {
    decision: Name,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LoginLabels {
    outcome: Name,
    reason: Name,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: Name,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StoreLabels {
    store: Name,
    op: Name,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    call: Name,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VersionLabels {
    version: Name,
}

/// What an auth endpoint answered. `/oauth2/auth` records one per request; a future
/// forward-auth endpoint records the same with [`Metrics::auth_decision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// 2xx: the user passes.
    Allowed,
    /// 401: no usable session.
    Unauthenticated,
    /// 403: signed in, refused by policy.
    Denied,
    /// Anything else (503 while the store is down, timeouts).
    Error,
}

impl Decision {
    const ALL: [Decision; 4] = [
        Decision::Allowed,
        Decision::Unauthenticated,
        Decision::Denied,
        Decision::Error,
    ];

    /// The decision an auth endpoint's status stands for.
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            s if s.is_success() => Decision::Allowed,
            StatusCode::UNAUTHORIZED => Decision::Unauthenticated,
            StatusCode::FORBIDDEN => Decision::Denied,
            _ => Decision::Error,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Unauthenticated => "unauthenticated",
            Decision::Denied => "denied",
            Decision::Error => "error",
        }
    }
}

/// Why a login failed (the `reason` label of `portcullis_logins_total{outcome="failed"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// The callback's state matched no login cookie (another browser, a replay).
    StateMismatch,
    /// The login attempt outlived `cookie.csrf_expire`.
    Expired,
    /// The callback lacked its code or state.
    InvalidRequest,
    /// The provider failed, refused the code, or its answer did not verify.
    ProviderError,
    /// The provider says the email is not verified.
    EmailUnverified,
    /// The user, or authz, refused access.
    Denied,
    /// The ID token lacks the username claim.
    NoIdentity,
    /// The session could not be stored.
    StoreError,
    /// Everything else (no randomness, a session too large for cookies…).
    Internal,
}

impl LoginFailure {
    const ALL: [LoginFailure; 9] = [
        LoginFailure::StateMismatch,
        LoginFailure::Expired,
        LoginFailure::InvalidRequest,
        LoginFailure::ProviderError,
        LoginFailure::EmailUnverified,
        LoginFailure::Denied,
        LoginFailure::NoIdentity,
        LoginFailure::StoreError,
        LoginFailure::Internal,
    ];

    fn label(self) -> &'static str {
        match self {
            LoginFailure::StateMismatch => "state_mismatch",
            LoginFailure::Expired => "expired",
            LoginFailure::InvalidRequest => "invalid_request",
            LoginFailure::ProviderError => "provider_error",
            LoginFailure::EmailUnverified => "email_unverified",
            LoginFailure::Denied => "denied",
            LoginFailure::NoIdentity => "no_identity",
            LoginFailure::StoreError => "store_error",
            LoginFailure::Internal => "internal",
        }
    }

    /// The failure a code-exchange error stands for.
    pub fn from_oidc(e: &OidcError) -> Self {
        match e {
            OidcError::EmailNotVerified => LoginFailure::EmailUnverified,
            OidcError::Config(_) => LoginFailure::Internal,
            _ => LoginFailure::ProviderError,
        }
    }
}

/// How a refresh ended for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// This request called the provider and got new tokens.
    Refreshed,
    /// Another request's (or replica's) refresh served this one.
    Joined,
    /// The provider refused the refresh token: the session ended.
    InvalidGrant,
    /// The provider could not be used; the session stays while its token is valid.
    ProviderError,
}

impl RefreshOutcome {
    const ALL: [RefreshOutcome; 4] = [
        RefreshOutcome::Refreshed,
        RefreshOutcome::Joined,
        RefreshOutcome::InvalidGrant,
        RefreshOutcome::ProviderError,
    ];

    fn label(self) -> &'static str {
        match self {
            RefreshOutcome::Refreshed => "refreshed",
            RefreshOutcome::Joined => "joined",
            RefreshOutcome::InvalidGrant => "invalid_grant",
            RefreshOutcome::ProviderError => "provider_error",
        }
    }
}

/// A session-store operation (the `op` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// Open a session.
    Load,
    /// Write a new session.
    Create,
    /// Write a refreshed session.
    Update,
    /// Delete a session.
    Delete,
    /// Readiness check.
    Ping,
    /// Take the cross-replica refresh lock.
    Lock,
}

impl StoreOp {
    const ALL: [StoreOp; 6] = [
        StoreOp::Load,
        StoreOp::Create,
        StoreOp::Update,
        StoreOp::Delete,
        StoreOp::Ping,
        StoreOp::Lock,
    ];

    fn label(self) -> &'static str {
        match self {
            StoreOp::Load => "load",
            StoreOp::Create => "create",
            StoreOp::Update => "update",
            StoreOp::Delete => "delete",
            StoreOp::Ping => "ping",
            StoreOp::Lock => "lock",
        }
    }
}

/// A call to the provider (the `call` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderCall {
    /// Discovery (metadata and the first key set).
    Discovery,
    /// A key-set refetch (unknown `kid`).
    Jwks,
    /// The code exchange at sign-in (including ID-token verification).
    Token,
    /// A refresh-token grant.
    Refresh,
}

impl ProviderCall {
    const ALL: [ProviderCall; 4] = [
        ProviderCall::Discovery,
        ProviderCall::Jwks,
        ProviderCall::Token,
        ProviderCall::Refresh,
    ];

    fn label(self) -> &'static str {
        match self {
            ProviderCall::Discovery => "discovery",
            ProviderCall::Jwks => "jwks",
            ProviderCall::Token => "token",
            ProviderCall::Refresh => "refresh",
        }
    }
}

/// A timed operation's pre-resolved handles.
#[derive(Debug, Clone)]
struct Timed {
    duration: Histogram,
    errors: Counter,
}

impl Timed {
    fn record(&self, started: Instant, failed: bool) {
        self.duration.observe(started.elapsed().as_secs_f64());
        if failed {
            self.errors.inc();
        }
    }
}

/// A route template's interned label and its latency histogram.
type RouteEntry = (Arc<str>, Histogram);

static NEXT_METRICS_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// One (route, method, status) combination's handles, cached per thread.
struct HotEntry {
    metrics: u64,
    route: Arc<str>,
    method: &'static str,
    status: u16,
    counter: Counter,
    histogram: Histogram,
}

/// Most threads see a handful of combinations (`/oauth2/auth` GET 202 and 401…):
/// looking them up here takes no shared lock, where the families' maps take a
/// read lock and hash the labels on every request.
const HOT_ENTRIES: usize = 64;

thread_local! {
    static HOT: std::cell::RefCell<Vec<HotEntry>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The registry and every handle the service records through.
pub struct Metrics {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Interned route labels by template, so a request clones an `Arc` instead of
    /// allocating its label (a handful of entries: one per route template).
    routes: RwLock<HashMap<Box<str>, RouteEntry>>,
    /// Tells this registry's entries apart in the per-thread cache of [`HOT`].
    id: u64,
    decisions: [Counter; 4],
    login_started: Counter,
    login_completed: Counter,
    login_failed: [Counter; 9],
    refreshes: [Counter; 4],
    store: [Timed; 6],
    provider: [Timed; 4],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    /// Metrics of a cookie-store process.
    fn default() -> Self {
        Self::new("cookie")
    }
}

fn local_histogram() -> Histogram {
    Histogram::new(LOCAL_BUCKETS)
}

fn provider_histogram() -> Histogram {
    Histogram::new(PROVIDER_BUCKETS)
}

impl Metrics {
    /// Metrics for a process whose session store is `store` (`cookie` or `redis`:
    /// the `store` label, fixed for the process).
    pub fn new(store: &'static str) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "portcullis_http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let durations = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            local_histogram,
        );
        registry.register(
            "portcullis_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            durations.clone(),
        );

        let decisions_family = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "portcullis_auth_decisions",
            "Answers of the auth endpoint: allowed, unauthenticated, denied or error",
            decisions_family.clone(),
        );
        let decisions = Decision::ALL.map(|d| {
            decisions_family.get_or_create_owned(&DecisionLabels {
                decision: Name(d.label()),
            })
        });

        let logins = Family::<LoginLabels, Counter>::default();
        registry.register(
            "portcullis_logins",
            "Sign-ins started, completed and failed (with a bounded reason)",
            logins.clone(),
        );
        let login = |outcome: &'static str, reason: &'static str| {
            logins.get_or_create_owned(&LoginLabels {
                outcome: Name(outcome),
                reason: Name(reason),
            })
        };
        let login_started = login("started", "none");
        let login_completed = login("completed", "none");
        let login_failed = LoginFailure::ALL.map(|f| login("failed", f.label()));

        let refresh_family = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "portcullis_refreshes",
            "Token refreshes per request: refreshed, joined (served by another's refresh), invalid_grant, provider_error",
            refresh_family.clone(),
        );
        let refreshes = RefreshOutcome::ALL.map(|o| {
            refresh_family.get_or_create_owned(&OutcomeLabels {
                outcome: Name(o.label()),
            })
        });

        let store_durations =
            Family::<StoreLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                local_histogram,
            );
        registry.register(
            "portcullis_session_store_duration_seconds",
            "Time of session-store operations",
            store_durations.clone(),
        );
        let store_errors = Family::<StoreLabels, Counter>::default();
        registry.register(
            "portcullis_session_store_errors",
            "Failed session-store operations",
            store_errors.clone(),
        );
        let store_handles = StoreOp::ALL.map(|op| {
            let labels = StoreLabels {
                store: Name(store),
                op: Name(op.label()),
            };
            Timed {
                duration: store_durations.get_or_create_owned(&labels),
                errors: store_errors.get_or_create_owned(&labels),
            }
        });

        let provider_durations =
            Family::<CallLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                provider_histogram,
            );
        registry.register(
            "portcullis_provider_request_duration_seconds",
            "Time of calls to the OpenID provider",
            provider_durations.clone(),
        );
        let provider_errors = Family::<CallLabels, Counter>::default();
        registry.register(
            "portcullis_provider_errors",
            "Calls to the OpenID provider that failed (unreachable, or an answer that did not verify); refusals are not errors",
            provider_errors.clone(),
        );
        let provider = ProviderCall::ALL.map(|call| {
            let labels = CallLabels {
                call: Name(call.label()),
            };
            Timed {
                duration: provider_durations.get_or_create_owned(&labels),
                errors: provider_errors.get_or_create_owned(&labels),
            }
        });

        registry.register(
            "portcullis_build",
            "Build information (always 1)",
            Info::new(VersionLabels {
                version: Name(env!("CARGO_PKG_VERSION")),
            }),
        );

        Self {
            registry,
            requests,
            durations,
            routes: RwLock::new(HashMap::new()),
            id: NEXT_METRICS_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            decisions,
            login_started,
            login_completed,
            login_failed,
            refreshes,
            store: store_handles,
            provider,
        }
    }

    /// Metrics labelled with the kind of `store`.
    pub fn for_store(store: &AnyStore) -> Self {
        Self::new(match store {
            AnyStore::Cookie(_) => "cookie",
            AnyStore::Redis(_) => "redis",
        })
    }

    /// Records one answer of an auth endpoint.
    pub fn auth_decision(&self, decision: Decision) {
        let i = Decision::ALL
            .iter()
            .position(|d| *d == decision)
            .unwrap_or(3);
        self.decisions[i].inc();
    }

    /// A login was started (`/oauth2/start` sent the browser to the provider).
    pub fn login_started(&self) {
        self.login_started.inc();
    }

    /// A login completed: the session was created and the user admitted.
    pub fn login_completed(&self) {
        self.login_completed.inc();
    }

    /// A login failed for `reason`.
    pub fn login_failed(&self, reason: LoginFailure) {
        if let Some(i) = LoginFailure::ALL.iter().position(|f| *f == reason) {
            self.login_failed[i].inc();
        }
    }

    /// Records how a refresh ended for one request.
    pub fn refresh(&self, outcome: RefreshOutcome) {
        if let Some(i) = RefreshOutcome::ALL.iter().position(|o| *o == outcome) {
            self.refreshes[i].inc();
        }
    }

    /// Times a session-store operation and counts it as failed when it errs
    /// (`Ok(None)`, "no such session", is an answer, not an error).
    pub async fn store<T, E>(
        &self,
        op: StoreOp,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let started = Instant::now();
        let result = call.await;
        if let Some(i) = StoreOp::ALL.iter().position(|o| *o == op) {
            self.store[i].record(started, result.is_err());
        }
        result
    }

    /// Times a provider call. Refusals (`invalid_grant`, a bad code, an unverified
    /// email) are the provider answering, not failing, and are not counted as errors.
    pub async fn provider<T>(
        &self,
        call: ProviderCall,
        fut: impl Future<Output = Result<T, OidcError>>,
    ) -> Result<T, OidcError> {
        let started = Instant::now();
        let result = fut.await;
        let failed = matches!(
            &result,
            Err(e) if !matches!(e, OidcError::Rejected { .. } | OidcError::EmailNotVerified)
        );
        self.provider_observed(call, started, failed);
        result
    }

    /// Records a provider call timed elsewhere (the key-set refetch inside
    /// ID-token verification).
    pub fn provider_observed(&self, call: ProviderCall, started: Instant, failed: bool) {
        if let Some(i) = ProviderCall::ALL.iter().position(|c| *c == call) {
            self.provider[i].record(started, failed);
        }
    }

    /// A callback recording key-set refetches, for
    /// `Provider::observe_jwks_fetches` (the handles are shared, not copied).
    pub fn jwks_observer(&self) -> portcullis_oidc::provider::JwksObserver {
        let jwks = self.provider[1].clone();
        Box::new(move |started, failed| jwks.record(started, failed))
    }

    /// Records one answered request.
    pub(crate) fn request(
        &self,
        route: Option<&str>,
        method: &Method,
        status: StatusCode,
        started: Instant,
    ) {
        let route = route.unwrap_or(UNMATCHED);
        let method = method_label(method);
        let code = status.as_u16();
        let elapsed = started.elapsed().as_secs_f64();
        let hit = HOT.with(|hot| {
            let hot = hot.borrow();
            let entry = hot.iter().find(|e| {
                e.metrics == self.id
                    && e.status == code
                    && std::ptr::eq(e.method, method)
                    && &*e.route == route
            });
            entry.map(|e| {
                e.histogram.observe(elapsed);
                e.counter.inc();
            })
        });
        if hit.is_some() {
            return;
        }
        let known = match self.routes.read() {
            Ok(routes) => routes.get(route).cloned(),
            Err(poisoned) => poisoned.into_inner().get(route).cloned(),
        };
        let (label, histogram) = match known {
            Some(k) => k,
            None => {
                let label: Arc<str> = Arc::from(route);
                let histogram = self.durations.get_or_create_owned(&RouteLabels {
                    route: Arc::clone(&label),
                });
                let mut routes = match self.routes.write() {
                    Ok(r) => r,
                    Err(poisoned) => poisoned.into_inner(),
                };
                routes
                    .entry(Box::from(route))
                    .or_insert((label, histogram))
                    .clone()
            }
        };
        histogram.observe(elapsed);
        let counter = self.requests.get_or_create_owned(&HttpLabels {
            route: Arc::clone(&label),
            method: Name(method),
            status: code,
        });
        counter.inc();
        HOT.with(|hot| {
            let mut hot = hot.borrow_mut();
            if hot.len() < HOT_ENTRIES {
                hot.push(HotEntry {
                    metrics: self.id,
                    route: label,
                    method,
                    status: code,
                    counter,
                    histogram,
                });
            }
        });
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(8 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Standard methods by name; anything else is "other" (a client may invent methods).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// `GET /metrics` on the metrics listener.
pub async fn serve_metrics(State(state): State<Arc<AppState>>) -> Response {
    match state.metrics.encode() {
        Ok(body) => (
            [(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The metrics listener's router: `/metrics` only.
pub fn router(state: Arc<AppState>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(serve_metrics))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn families_are_named_by_convention_and_start_at_zero() {
        let m = Metrics::new("redis");
        m.auth_decision(Decision::from_status(StatusCode::ACCEPTED));
        m.auth_decision(Decision::from_status(StatusCode::FORBIDDEN));
        m.auth_decision(Decision::from_status(StatusCode::SERVICE_UNAVAILABLE));
        m.login_failed(LoginFailure::StateMismatch);
        m.refresh(RefreshOutcome::Joined);
        m.request(
            Some("/oauth2/auth"),
            &Method::GET,
            StatusCode::ACCEPTED,
            Instant::now(),
        );
        m.request(
            None,
            &Method::from_bytes(b"BREW").unwrap(),
            StatusCode::NOT_FOUND,
            Instant::now(),
        );
        let text = m.encode().unwrap();
        for line in [
            r#"portcullis_auth_decisions_total{decision="allowed"} 1"#,
            r#"portcullis_auth_decisions_total{decision="denied"} 1"#,
            r#"portcullis_auth_decisions_total{decision="error"} 1"#,
            r#"portcullis_auth_decisions_total{decision="unauthenticated"} 0"#,
            r#"portcullis_logins_total{outcome="failed",reason="state_mismatch"} 1"#,
            r#"portcullis_logins_total{outcome="started",reason="none"} 0"#,
            r#"portcullis_refreshes_total{outcome="joined"} 1"#,
            r#"portcullis_http_requests_total{route="/oauth2/auth",method="GET",status="202"} 1"#,
            r#"portcullis_http_requests_total{route="unmatched",method="other",status="404"} 1"#,
            r#"portcullis_http_request_duration_seconds_count{route="/oauth2/auth"} 1"#,
            r#"portcullis_session_store_errors_total{store="redis",op="load"} 0"#,
            r#"portcullis_provider_errors_total{call="refresh"} 0"#,
            r#"portcullis_build_info{version=""#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[tokio::test]
    async fn store_and_provider_timing_counts_errors_not_answers() {
        let m = Metrics::new("cookie");
        let _ = m
            .store(StoreOp::Load, async { Ok::<_, ()>(None::<u8>) })
            .await;
        let _ = m.store(StoreOp::Load, async { Err::<u8, _>(()) }).await;
        let _ = m
            .provider(ProviderCall::Refresh, async {
                Err::<(), _>(OidcError::Rejected {
                    error: "invalid_grant".into(),
                    status: 400,
                })
            })
            .await;
        let _ = m
            .provider(ProviderCall::Token, async {
                Err::<(), _>(OidcError::Unavailable("down".into()))
            })
            .await;
        let text = m.encode().unwrap();
        for line in [
            r#"portcullis_session_store_duration_seconds_count{store="cookie",op="load"} 2"#,
            r#"portcullis_session_store_errors_total{store="cookie",op="load"} 1"#,
            r#"portcullis_provider_request_duration_seconds_count{call="refresh"} 1"#,
            r#"portcullis_provider_errors_total{call="refresh"} 0"#,
            r#"portcullis_provider_errors_total{call="token"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
