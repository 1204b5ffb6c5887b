//! The settings the HTTP service runs with: plain, already-validated values built by
//! `portcullis-config` (which alone knows file formats and environment names).

use std::time::Duration;

use ipnet::IpNet;

use crate::authz::{Policy, SkipRule};
use crate::redirect::Whitelist;

/// Everything the service needs besides keys and the provider.
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
    /// Names of the headers `/oauth2/auth` answers with.
    pub headers: HeaderSettings,
    /// Which ID-token claims name the user and their groups.
    pub claims: ClaimSettings,
    /// Absolute session lifetime: a user signs in again after this, whatever refreshes do.
    pub session_lifetime: Duration,
    /// Refresh the ID token when it expires within this (or has expired).
    pub refresh_before: Duration,
    /// How long a refresh's result is kept for requests still carrying the
    /// pre-refresh cookie (they are served the new session instead of replaying the
    /// rotated refresh token).
    pub refresh_grace: Duration,
    /// How long a request waits for another replica's refresh before giving up (and
    /// serving the current token while it is valid).
    pub refresh_wait: Duration,
    /// Scheme, host and port of the auth host (`https://auth.example.com`), from
    /// `oidc.redirect_url`: where forward-auth sends browsers to sign in.
    pub auth_origin: String,
    /// Sign-in page and templates.
    pub pages: PageSettings,
    /// Bearer-token authentication.
    pub bearer: BearerSettings,
    /// Reverse-proxy mode: empty means Portcullis answers only `/oauth2/*`.
    pub upstreams: Vec<UpstreamSettings>,
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

/// Redirect policy.
#[derive(Debug, Clone)]
pub struct RedirectSettings {
    /// Hosts absolute `rd` URLs may point to.
    pub whitelist: Whitelist,
    /// Where to go when `rd` is missing or rejected (a path on the auth host).
    pub default: String,
}

/// Global authorization. An open policy admits everyone who signs in.
#[derive(Debug, Clone, Default)]
pub struct AuthzSettings {
    /// Checked on every request, ANDed with per-request and per-upstream policy.
    pub policy: Policy,
    /// Requests that need no sign-in (method + decoded path).
    pub skip_auth: Vec<SkipRule>,
}

/// Pages people see.
#[derive(Debug, Clone, Default)]
pub struct PageSettings {
    /// Send people straight to the provider instead of showing the sign-in page.
    pub skip_sign_in_page: bool,
    /// A directory whose `sign_in.html` / `error.html` replace the built-in templates.
    pub templates_dir: Option<std::path::PathBuf>,
}

/// Bearer tokens (`Authorization: Bearer <JWT>`) accepted instead of a session cookie.
#[derive(Debug, Clone, Default)]
pub struct BearerSettings {
    /// Off by default: only sessions pass.
    pub enabled: bool,
    /// The configured provider's issuer (`oidc.issuer_url`).
    pub issuer_url: String,
    /// Audiences accepted for tokens of the configured issuer (default: its client id).
    pub audiences: Vec<String>,
    /// Other issuers, each with its own audiences.
    pub extra_issuers: Vec<ExtraIssuer>,
}

/// An issuer besides the configured provider whose tokens are accepted as bearer
/// tokens (e.g. a CI system's OIDC issuer).
#[derive(Debug, Clone)]
pub struct ExtraIssuer {
    /// The issuer URL (`iss`), discovered like the main one.
    pub issuer_url: String,
    /// Accepted audiences.
    pub audiences: Vec<String>,
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

/// How the ID token is written into its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    /// `Bearer <id_token>`: what the Dashboard and the Kubernetes API server take.
    Bearer,
    /// The token alone: for consumers that add the scheme themselves (Headlamp's
    /// `-proxy-auth-token-header`).
    Raw,
}

/// Response headers of `/oauth2/auth`.
#[derive(Debug, Clone)]
pub struct HeaderSettings {
    /// The header that carries the ID token (default `Authorization`).
    pub token: String,
    /// Its value format.
    pub token_format: TokenFormat,
}

/// Claim names.
#[derive(Debug, Clone)]
pub struct ClaimSettings {
    /// The claim that names the user (`X-Auth-Request-User`); Kubernetes'
    /// `--oidc-username-claim` should match.
    pub username: String,
    /// The claim with group names; Kubernetes' `--oidc-groups-claim` should match.
    pub groups: String,
}
