//! The settings the HTTP face runs with: plain, already-validated values built by
//! `portcullis-config` (which alone knows file formats and environment names). What
//! sessions are and how they refresh is `portcullis_core::SessionSettings`; policy and
//! redirect settings are the core's types, held here because the face applies them.
//! Imports nothing of this crate.

use std::time::Duration;

use ipnet::IpNet;

use portcullis_core::authz::{AuthzSettings, Policy};
use portcullis_core::redirect::RedirectSettings;

/// Everything the HTTP face needs besides keys, sessions and the provider.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Peers whose forwarded headers (`X-Forwarded-*`, `X-Original-URL`,
    /// `X-Auth-Request-Redirect`) are believed. Empty: nobody's.
    pub trusted_proxies: Vec<IpNet>,
    /// Session and CSRF cookie attributes.
    pub cookie: CookieSettings,
    /// Where users may be sent after sign-in and sign-out.
    pub redirect: RedirectSettings,
    /// Who may pass once signed in.
    pub authz: AuthzSettings,
    /// Scheme, host and port of the auth host (`https://auth.example.com`), from
    /// `oidc.redirect_url`: where forward-auth sends browsers to sign in.
    pub auth_origin: String,
    /// Sign-in page and templates.
    pub pages: PageSettings,
    /// Reverse-proxy mode: empty means Portcullis answers only `/oauth2/*`.
    pub upstreams: Vec<UpstreamSettings>,
    /// The Kubernetes clusters kubectl signs in to (`[[clusters]]`).
    pub clusters: Vec<ClusterSettings>,
    /// Limits of the `/oauth2/*`, `/ping` and `/ready` routes.
    pub limits: LimitSettings,
}

/// Bounds on requests, so a slow dependency or a flood cannot pile up work.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// Requests handled at once; more are refused at once with 503 (load shedding),
    /// rather than queued behind a slow store or provider.
    pub max_concurrent_requests: usize,
    /// Time to answer one request of the auth routes; later means 503.
    pub request_timeout: Duration,
    /// Largest request body of the auth routes (they take none).
    pub max_body_bytes: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_concurrent_requests: 1024,
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 64 * 1024,
        }
    }
}

/// `SameSite` attribute values (RFC 6265bis §4.1.2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Sent on top-level navigations from other sites: what SSO across sub-domains needs.
    Lax,
    /// Never sent cross-site.
    Strict,
    /// Always sent; requires `Secure`.
    None,
}

/// Cookie attributes.
#[derive(Debug, Clone)]
pub struct CookieSettings {
    /// Base name; chunks are `NAME_0…`, CSRF cookies `NAME_csrf_<id>`.
    pub name: String,
    /// Parent domains (`.example.com`); the longest one matching the request host is
    /// used, none matching means a host-only cookie.
    pub domains: Vec<String>,
    /// `Secure` attribute. Only the loopback demo turns it off.
    pub secure: bool,
    /// `SameSite` of the session cookie.
    pub same_site: SameSite,
    /// How long a login attempt (its CSRF cookie) stays valid.
    pub csrf_lifetime: Duration,
    /// Largest value per cookie before splitting into chunks.
    pub chunk_size: usize,
}

/// Pages people see.
#[derive(Debug, Clone, Default)]
pub struct PageSettings {
    /// Send people straight to the provider instead of showing the sign-in page.
    pub skip_sign_in_page: bool,
    /// A directory whose `sign_in.html` / `error.html` replace the built-in templates.
    pub templates_dir: Option<std::path::PathBuf>,
}

/// One upstream of the reverse-proxy mode.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// Path prefix (matched on whole segments); the longest matching prefix wins.
    pub path: String,
    /// Base URL: `http(s)://host:port[/base]`; the request path is appended.
    pub url: url::Url,
    /// Policy for this upstream, ANDed with the global one.
    pub policy: Policy,
    /// Bound on connecting and on waiting for the response headers (bodies and
    /// WebSockets stream for as long as they last).
    pub timeout: Duration,
}

/// One Kubernetes API server that trusts our ID tokens (`--oidc-client-id` = ours).
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// Its kubeconfig name.
    pub name: String,
    /// The API server's URL.
    pub server: String,
    /// Its CA, PEM; `None`: the system's roots.
    pub certificate_authority: Option<String>,
    /// Shown to users.
    pub description: String,
    /// Who may use it.
    pub policy: Policy,
}
