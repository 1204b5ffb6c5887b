//! The configuration file schema. Every field is documented here and in
//! `config/portcullis.example.toml`; unknown keys are errors (a typo must not silently
//! fall back to a default).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listener and proxy trust.
    pub server: Server,
    /// The OpenID Connect provider and this client.
    pub oidc: Oidc,
    /// Session and CSRF cookies.
    pub cookie: Cookie,
    /// Session lifetime, store and refresh.
    pub session: Session,
    /// The Redis session store.
    pub redis: Redis,
    /// Redirect targets.
    pub redirect: Redirect,
    /// Global authorization.
    pub authz: Authz,
    /// Response headers of `/oauth2/auth`.
    pub headers: Headers,
    /// Sign-in and error pages.
    pub pages: Pages,
    /// Bearer-token authentication.
    pub bearer: Bearer,
    /// Reverse-proxy mode: upstreams by path prefix.
    pub upstreams: Vec<Upstream>,
    /// The Kubernetes clusters kubectl signs in to through Portcullis.
    pub clusters: Vec<Cluster>,
    /// Logging.
    pub log: Log,
}

/// `[server]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    /// Address to listen on.
    pub listen: String,
    /// CIDRs (or single addresses) of proxies whose forwarded headers are believed.
    pub trusted_proxies: Vec<String>,
    /// Address of the Prometheus `/metrics` listener; empty: no metrics listener.
    pub metrics_listen: String,
    /// PEM certificate chain for HTTPS on `listen`; empty: plain HTTP.
    pub tls_cert_file: String,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: String,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// Requests handled at once; more are answered 503 at once.
    pub max_concurrent_requests: usize,
    /// Threads serving requests. 0: one per CPU the process may use (cgroup quotas
    /// included); 1: a single-threaded runtime, the least CPU per request.
    pub worker_threads: usize,
    /// Time limit of one request to `/oauth2/*`, `/ping` and `/ready`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// After SIGTERM: how long `/ready` answers 503 before the listener closes.
    #[serde(with = "humantime_serde")]
    pub shutdown_delay: Duration,
    /// After the listener closes: how long in-flight requests may take to finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:4180".into(),
            trusted_proxies: Vec::new(),
            metrics_listen: String::new(),
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
            max_header_bytes: 16 * 1024,
            max_concurrent_requests: 1024,
            worker_threads: 0,
            request_timeout: Duration::from_secs(30),
            shutdown_delay: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// Scopes as a space-separated string or a list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Scopes {
    /// `"openid email"`
    Text(String),
    /// `["openid", "email"]`
    List(Vec<String>),
}

impl Scopes {
    /// The individual scopes.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Scopes::Text(s) => s.split_whitespace().map(str::to_owned).collect(),
            Scopes::List(l) => l
                .iter()
                .flat_map(|s| s.split_whitespace())
                .map(str::to_owned)
                .collect(),
        }
    }
}

/// Accepts a string, or a number or boolean as its text: environment values are read
/// as TOML, so `PORTCULLIS_OIDC__CLIENT_SECRET=12345` must not become a type error.
fn string_like<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        S(String),
        I(i64),
        F(f64),
        B(bool),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::S(s) => s,
        Raw::I(i) => i.to_string(),
        Raw::F(f) => f.to_string(),
        Raw::B(b) => b.to_string(),
    })
}

/// Accepts one string or a list of strings.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::One(s) => vec![s],
        Raw::Many(v) => v,
    })
}

/// `[oidc]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Oidc {
    /// Issuer URL, exactly as in the provider's `iss` (Dex: its `issuer`).
    pub issuer_url: String,
    /// Client id registered at the provider.
    #[serde(deserialize_with = "string_like")]
    pub client_id: String,
    /// Client secret (prefer `client_secret_file` or the environment).
    #[serde(deserialize_with = "string_like")]
    pub client_secret: String,
    /// File whose content (trimmed) is the client secret.
    pub client_secret_file: String,
    /// `https://auth.example.com/oauth2/callback`, registered at the provider.
    pub redirect_url: String,
    /// Scopes requested at login.
    pub scopes: Scopes,
    /// Claim naming the user (`X-Auth-Request-User`).
    pub username_claim: String,
    /// Claim listing groups.
    pub groups_claim: String,
    /// Accept ID tokens with `email_verified: false`.
    pub allow_unverified_email: bool,
    /// Timeout of each provider call.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for Oidc {
    fn default() -> Self {
        Self {
            issuer_url: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            client_secret_file: String::new(),
            redirect_url: String::new(),
            scopes: Scopes::Text("openid email profile groups offline_access".into()),
            username_claim: "email".into(),
            groups_claim: "groups".into(),
            allow_unverified_email: false,
            timeout: Duration::from_secs(10),
        }
    }
}

/// `[cookie]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cookie {
    /// Base cookie name.
    pub name: String,
    /// Base64 32-byte keys; the first seals, all open. A single string is one key.
    #[serde(deserialize_with = "one_or_many")]
    pub secrets: Vec<String>,
    /// Parent domains such as `.example.com`.
    pub domains: Vec<String>,
    /// The `Secure` attribute.
    pub secure: bool,
    /// `lax`, `strict` or `none`.
    pub samesite: String,
    /// Lifetime of a login attempt (the CSRF cookie).
    #[serde(with = "humantime_serde")]
    pub csrf_expire: Duration,
}

impl Default for Cookie {
    fn default() -> Self {
        Self {
            name: "_portcullis".into(),
            secrets: Vec::new(),
            domains: Vec::new(),
            secure: true,
            samesite: "lax".into(),
            csrf_expire: Duration::from_secs(15 * 60),
        }
    }
}

/// `[session]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Session {
    /// Absolute session lifetime.
    #[serde(with = "humantime_serde")]
    pub lifetime: Duration,
    /// `cookie` (the session sealed in the cookie) or `redis`.
    pub store: String,
    /// Refresh the ID token when it expires within this.
    #[serde(with = "humantime_serde")]
    pub refresh_before: Duration,
    /// How long a refresh result serves requests still carrying the old cookie.
    #[serde(with = "humantime_serde")]
    pub refresh_grace: Duration,
    /// How long a request waits for another replica's refresh.
    #[serde(with = "humantime_serde")]
    pub refresh_wait: Duration,
}

impl Default for Session {
    fn default() -> Self {
        Self {
            lifetime: Duration::from_secs(12 * 3600),
            store: "cookie".into(),
            refresh_before: Duration::from_secs(60),
            refresh_grace: Duration::from_secs(60),
            refresh_wait: Duration::from_secs(15),
        }
    }
}

/// `[redis]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Redis {
    /// `standalone`, `sentinel` or `cluster`.
    pub mode: String,
    /// Standalone: `redis://[:password@]host:6379/0`, or `rediss://…` for TLS.
    /// Sentinel: optional, its credentials and database are used for the master.
    pub url: String,
    /// Sentinel: the sentinels' addresses. Cluster: seed nodes.
    pub nodes: Vec<String>,
    /// Sentinel: the monitored master's name.
    pub sentinel_master: String,
    /// Prefix of every key.
    pub key_prefix: String,
    /// Bound on connecting and on each command.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for Redis {
    fn default() -> Self {
        Self {
            mode: "standalone".into(),
            url: String::new(),
            nodes: Vec::new(),
            sentinel_master: String::new(),
            key_prefix: "portcullis:".into(),
            timeout: Duration::from_secs(2),
        }
    }
}

/// `[redirect]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Redirect {
    /// `host`, `.parent`, `host:port`, `host:*` entries.
    pub whitelist_domains: Vec<String>,
    /// Target when `rd` is missing or rejected.
    pub default: String,
}

impl Default for Redirect {
    fn default() -> Self {
        Self {
            whitelist_domains: Vec::new(),
            default: "/".into(),
        }
    }
}

/// `[authz]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Authz {
    /// Groups admitted (any of).
    pub allowed_groups: Vec<String>,
    /// Email addresses admitted (any of).
    pub allowed_emails: Vec<String>,
    /// Email domains admitted (any of).
    pub allowed_email_domains: Vec<String>,
    /// Requests that need no sign-in: `"[METHOD ]/path-regex"`, matched on the whole
    /// decoded path.
    pub skip_auth: Vec<String>,
}

/// `[pages]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pages {
    /// Go straight to the provider instead of showing the sign-in page.
    pub skip_sign_in_page: bool,
    /// Directory with `sign_in.html` and/or `error.html` overriding the built-in ones.
    pub templates_dir: String,
}

/// `[bearer]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bearer {
    /// Accept `Authorization: Bearer <JWT>` without a session cookie.
    pub enabled: bool,
    /// Audiences accepted for the main issuer's tokens (default: `oidc.client_id`).
    pub audiences: Vec<String>,
    /// Further issuers and their audiences.
    pub extra_issuers: Vec<ExtraIssuer>,
}

/// `[[bearer.extra_issuers]]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExtraIssuer {
    /// Issuer URL (`iss`).
    pub issuer_url: String,
    /// Accepted audiences (at least one).
    #[serde(deserialize_with = "one_or_many")]
    pub audiences: Vec<String>,
}

/// `[[clusters]]`: one Kubernetes API server whose `--oidc-client-id` is ours.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    /// The context and cluster name in kubeconfig (`[a-z0-9-]`, unique).
    pub name: String,
    /// The API server's URL (`https://…`).
    pub server: String,
    /// Its CA: a PEM file's path, or the PEM itself (`-----BEGIN CERTIFICATE-----…`).
    pub certificate_authority: String,
    /// Shown to users.
    pub description: String,
    /// Groups that may use it (any of; empty: every signed-in user).
    pub allowed_groups: Vec<String>,
}

/// `[[upstreams]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Upstream {
    /// Path prefix routed to this upstream (whole segments).
    pub path: String,
    /// `http(s)://host:port[/base]`.
    pub url: String,
    /// Groups admitted here (any of), on top of `[authz]`.
    pub allowed_groups: Vec<String>,
    /// Email addresses admitted here (any of), on top of `[authz]`.
    pub allowed_emails: Vec<String>,
    /// Email domains admitted here (any of), on top of `[authz]`.
    pub allowed_email_domains: Vec<String>,
    /// Bound on connecting and on waiting for the response headers.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for Upstream {
    fn default() -> Self {
        Self {
            path: "/".into(),
            url: String::new(),
            allowed_groups: Vec::new(),
            allowed_emails: Vec::new(),
            allowed_email_domains: Vec::new(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// `[headers]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Headers {
    /// Header carrying the ID token.
    pub token: String,
    /// `bearer` (`Bearer <id_token>`, what the Dashboard and the API server take) or
    /// `raw` (the token alone, e.g. Headlamp's `-proxy-auth-token-header`).
    pub token_format: String,
}

impl Default for Headers {
    fn default() -> Self {
        Self {
            token: "Authorization".into(),
            token_format: "bearer".into(),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// A `tracing` filter (`info`, `portcullis_http=debug,info`…); `RUST_LOG` overrides.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
        }
    }
}
