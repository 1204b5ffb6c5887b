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
use portcullis_core::observe::{
    self, AuditEvent, Observer, Outcome, ProviderCall, RefreshOutcome, StoreOp,
};
use portcullis_oidc::OidcError;
use portcullis_session::store::AnyStore;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

mod labels;

use labels::{
    AuditLabels, CallLabels, DecisionLabels, HttpLabels, LoginLabels, Name, OutcomeLabels,
    RouteLabels, StoreLabels, VersionLabels,
};
pub use labels::{Decision, LoginFailure};

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
    /// Audit events by event and outcome, in `AuditEvent::ALL` × `Outcome::ALL` order.
    audit: Vec<Counter>,
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
                outcome: Name(o.as_str()),
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
                op: Name(op.as_str()),
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
                call: Name(call.as_str()),
            };
            Timed {
                duration: provider_durations.get_or_create_owned(&labels),
                errors: provider_errors.get_or_create_owned(&labels),
            }
        });

        let audit_family = Family::<AuditLabels, Counter>::default();
        registry.register(
            "portcullis_audit_events",
            "Audit events (log target portcullis::audit), by event and outcome",
            audit_family.clone(),
        );
        let audit = AuditEvent::ALL
            .iter()
            .flat_map(|e| Outcome::ALL.iter().map(move |o| (*e, *o)))
            .map(|(e, o)| {
                audit_family.get_or_create_owned(&AuditLabels {
                    event: Name(e.as_str()),
                    outcome: Name(o.as_str()),
                })
            })
            .collect();

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
            audit,
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
        observe::store(self, op, call).await
    }

    /// Times a provider call. Refusals (`invalid_grant`, a bad code, an unverified
    /// email) are the provider answering, not failing, and are not counted as errors.
    pub async fn provider<T>(
        &self,
        call: ProviderCall,
        fut: impl Future<Output = Result<T, OidcError>>,
    ) -> Result<T, OidcError> {
        observe::provider(self, call, fut).await
    }

    /// Records a provider call timed elsewhere (the key-set refetch inside
    /// ID-token verification).
    pub fn provider_observed(&self, call: ProviderCall, started: Instant, failed: bool) {
        if let Some(i) = ProviderCall::ALL.iter().position(|c| *c == call) {
            self.provider[i].record(started, failed);
        }
    }

    /// Records one answered request.
    pub(crate) fn request(
        &self,
        route: Option<&str>,
        method: &Method,
        status: StatusCode,
        elapsed: std::time::Duration,
    ) {
        let route = route.unwrap_or(UNMATCHED);
        let method = method_label(method);
        let code = status.as_u16();
        let elapsed = elapsed.as_secs_f64();
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
pub async fn serve_metrics(State(metrics): State<Arc<Metrics>>) -> Response {
    match metrics.encode() {
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
pub fn router(metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(serve_metrics))
        .with_state(metrics)
}

impl Observer for Metrics {
    fn store_op(&self, op: StoreOp, started: Instant, failed: bool) {
        if let Some(i) = StoreOp::ALL.iter().position(|o| *o == op) {
            self.store[i].record(started, failed);
        }
    }

    fn provider_call(&self, call: ProviderCall, started: Instant, failed: bool) {
        self.provider_observed(call, started, failed);
    }

    fn refresh(&self, outcome: RefreshOutcome) {
        Metrics::refresh(self, outcome);
    }

    fn audit(&self, event: AuditEvent, outcome: Outcome) {
        let e = AuditEvent::ALL.iter().position(|x| *x == event);
        let o = Outcome::ALL.iter().position(|x| *x == outcome);
        if let (Some(e), Some(o)) = (e, o)
            && let Some(counter) = self.audit.get(e * Outcome::ALL.len() + o)
        {
            counter.inc();
        }
    }
}

#[cfg(test)]
mod tests;
