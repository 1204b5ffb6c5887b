//! The shared state every handler reads: built once by the binary (or a test); there
//! is no global configuration.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use portcullis_core::{SessionSettings, Sessions};
use portcullis_session::Keyring;
use portcullis_session::store::AnyStore;

use crate::metrics::Metrics;
use crate::pages::Templates;
use crate::proxy::client::UpstreamClient;
use crate::settings::HttpSettings;

/// Shared state of the service: the face's settings, the cookie keys, the sessions
/// (the decision core), metrics and pages.
#[derive(Debug)]
pub struct AppState {
    /// Validated settings of the HTTP face.
    pub settings: HttpSettings,
    /// Cookie keys: the first seals, all open (CSRF cookies, and what stores seal).
    pub keyring: Arc<Keyring>,
    /// The decision core: the store, prepared sessions, refresh, provider, bearer.
    pub sessions: Sessions,
    /// Prometheus metrics (served on `server.metrics_listen`); the core reports to
    /// them through `portcullis_core::observe::Observer`.
    pub metrics: Arc<Metrics>,
    /// Set at shutdown: `/ready` answers 503 so load balancers stop sending traffic
    /// while in-flight requests finish.
    pub draining: AtomicBool,
    /// Client for the reverse-proxy mode's upstreams.
    pub upstream_client: UpstreamClient,
    /// Sign-in and error page templates.
    pub templates: Templates,
}

impl AppState {
    /// State from its parts, with empty caches and slots.
    pub fn new(
        settings: HttpSettings,
        sessions: SessionSettings,
        keyring: Arc<Keyring>,
        store: AnyStore,
    ) -> Self {
        let metrics = Arc::new(Metrics::for_store(&store));
        Self {
            sessions: Sessions::new(sessions, store, Arc::clone(&metrics) as _),
            metrics,
            upstream_client: UpstreamClient::new(),
            // Checked by `config check` / settings validation; a failure here falls
            // back to the built-in pages rather than refusing to start.
            templates: Templates::load(settings.pages.templates_dir.as_deref()).unwrap_or_else(
                |e| {
                    tracing::error!(error = %e, "custom templates failed to load; using the built-in pages");
                    Templates::default()
                },
            ),
            draining: AtomicBool::new(false),
            settings,
            keyring,
        }
    }
}
