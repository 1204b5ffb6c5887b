//! Schema → settings, collecting every problem (oauth2-proxy's `pkg/validation` habit):
//! an operator fixing a config wants the whole list, not one error per restart.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use portcullis_http::authz::{Policy, SkipRule};
use portcullis_http::redirect::{Whitelist, validate_redirect};
use portcullis_http::settings::{
    AuthzSettings, BearerSettings, ClaimSettings, CookieSettings, ExtraIssuer, HeaderSettings,
    HttpSettings, LimitSettings, PageSettings, RedirectSettings, SameSite, TokenFormat,
    UpstreamSettings,
};
use portcullis_oidc::OidcSettings;
use portcullis_session::Key;
use portcullis_session::chunk::DEFAULT_CHUNK_SIZE;
use portcullis_session::store::{RedisSettings, Topology};

use crate::schema::Config;

/// One configuration problem: the key and what is wrong. Never contains secret values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path.
    pub key: String,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The configured session store.
#[derive(Debug, Clone)]
pub enum StoreChoice {
    /// Sessions sealed into cookies.
    Cookie,
    /// Sessions in Redis.
    Redis(RedisSettings),
}

/// The certificate and key files of the HTTPS listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// How the binary serves: listeners, TLS, connection limits and shutdown.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// The Prometheus listener, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// HTTPS on the main listener, if configured.
    pub tls: Option<TlsFiles>,
    /// Largest request head in bytes (HTTP/1 buffer, HTTP/2 header list).
    pub max_header_bytes: usize,
    /// After SIGTERM, how long `/ready` answers 503 before the listener closes.
    pub shutdown_delay: Duration,
    /// How long in-flight requests may take to finish after that.
    pub shutdown_timeout: Duration,
    /// Runtime threads: 0 one per usable CPU, 1 single-threaded, N that many.
    pub worker_threads: usize,
}

/// Most `server.worker_threads`.
pub const MAX_WORKER_THREADS: usize = 256;

/// Smallest `server.max_header_bytes`: hyper's smallest HTTP/1 read buffer.
pub const MIN_HEADER_BYTES: usize = 8 * 1024;
/// Largest `server.max_header_bytes`.
pub const MAX_HEADER_BYTES: usize = 1024 * 1024;

/// Everything the binary needs, validated.
#[derive(Debug)]
pub struct Settings {
    /// Main listener.
    pub listen: SocketAddr,
    /// The HTTP service's settings.
    pub http: HttpSettings,
    /// The relying party's settings.
    pub oidc: OidcSettings,
    /// Cookie keys, sealing key first.
    pub keys: Vec<Key>,
    /// Where sessions live.
    pub store: StoreChoice,
    /// Log filter.
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Listeners, TLS, limits and shutdown.
    pub serving: ServeSettings,
}

/// Keys printed in our documentation: never acceptable in a running deployment.
const PUBLISHED_KEYS: &[&str] = &["REPLACEwithTheOutputOfPortcullisSecret00000="];

struct Errors(Vec<ConfigError>);

impl Errors {
    fn push(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(ConfigError {
            key: key.to_owned(),
            message: message.into(),
        });
    }
}

fn positive(errors: &mut Errors, key: &str, d: Duration, min: Duration) {
    if d < min {
        errors.push(key, format!("must be at least {}s", min.as_secs()));
    }
}

/// Validates the whole configuration, returning every problem found.
pub fn validate(c: &Config) -> Result<Settings, Vec<ConfigError>> {
    let mut e = Errors(Vec::new());

    let listen = c
        .server
        .listen
        .parse::<SocketAddr>()
        .map_err(|_| {
            e.push(
                "server.listen",
                format!("{:?} is not an address:port", c.server.listen),
            )
        })
        .ok();
    let mut trusted_proxies = Vec::new();
    for p in &c.server.trusted_proxies {
        match p
            .parse::<IpNet>()
            .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from))
        {
            Ok(net) => trusted_proxies.push(net),
            Err(_) => e.push(
                "server.trusted_proxies",
                format!("{p:?} is not a CIDR or IP address"),
            ),
        }
    }

    let serving = serving(&mut e, &c.server, listen);

    // --- oidc
    let o = &c.oidc;
    check_url(&mut e, "oidc.issuer_url", &o.issuer_url);
    check_url(&mut e, "oidc.redirect_url", &o.redirect_url);
    if o.client_id.is_empty() {
        e.push("oidc.client_id", "is required");
    }
    let client_secret = match (o.client_secret.is_empty(), o.client_secret_file.is_empty()) {
        (false, false) => {
            e.push(
                "oidc.client_secret",
                "set either client_secret or client_secret_file, not both",
            );
            None
        }
        (true, true) => {
            e.push(
                "oidc.client_secret",
                "is required (or oidc.client_secret_file)",
            );
            None
        }
        (false, true) => Some(o.client_secret.clone()),
        (true, false) => match std::fs::read_to_string(&o.client_secret_file) {
            Ok(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Ok(_) => {
                e.push("oidc.client_secret_file", "file is empty");
                None
            }
            Err(err) => {
                e.push(
                    "oidc.client_secret_file",
                    format!("cannot read {:?}: {err}", o.client_secret_file),
                );
                None
            }
        },
    };
    let scopes = o.scopes.to_vec();
    if !scopes.iter().any(|s| s == "openid") {
        e.push("oidc.scopes", "must include openid");
    }
    if o.username_claim.is_empty() {
        e.push("oidc.username_claim", "must not be empty");
    }
    if o.groups_claim.is_empty() {
        e.push("oidc.groups_claim", "must not be empty");
    }
    positive(&mut e, "oidc.timeout", o.timeout, Duration::from_secs(1));

    // --- cookie
    let ck = &c.cookie;
    if ck.name.is_empty()
        || !ck
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        e.push(
            "cookie.name",
            "must be non-empty and use only letters, digits, '_' and '-'",
        );
    }
    let mut keys = Vec::new();
    if ck.secrets.is_empty() {
        e.push(
            "cookie.secrets",
            "at least one secret is required; generate one with `portcullis secret` or `openssl rand -base64 32`",
        );
    }
    for (i, s) in ck.secrets.iter().enumerate() {
        if PUBLISHED_KEYS.contains(&s.trim()) {
            e.push(
                &format!("cookie.secrets[{i}]"),
                "is the published example key: anyone could forge sessions; generate one with `portcullis secret`",
            );
            continue;
        }
        match Key::from_base64(s) {
            Ok(k) => keys.push(k),
            Err(err) => e.push(&format!("cookie.secrets[{i}]"), err.to_string()),
        }
    }
    for d in &ck.domains {
        let bare = d.trim_start_matches('.');
        if bare.is_empty()
            || !bare.contains('.') && bare != "localhost"
            || !bare
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            || bare.ends_with('.')
        {
            e.push(
                "cookie.domains",
                format!("{d:?} is not a domain like .example.com"),
            );
        }
    }
    let same_site = match ck.samesite.to_ascii_lowercase().as_str() {
        "lax" => Some(SameSite::Lax),
        "strict" => Some(SameSite::Strict),
        "none" => Some(SameSite::None),
        other => {
            e.push(
                "cookie.samesite",
                format!("{other:?} is not lax, strict or none"),
            );
            None
        }
    };
    if same_site == Some(SameSite::None) && !ck.secure {
        e.push(
            "cookie.samesite",
            "none requires cookie.secure = true (browsers drop it otherwise)",
        );
    }
    positive(
        &mut e,
        "cookie.csrf_expire",
        ck.csrf_expire,
        Duration::from_secs(60),
    );
    positive(
        &mut e,
        "session.lifetime",
        c.session.lifetime,
        Duration::from_secs(60),
    );

    // --- session store
    let store = match c.session.store.as_str() {
        "cookie" => Some(StoreChoice::Cookie),
        "redis" => redis_topology(&mut e, &c.redis).map(|topology| {
            StoreChoice::Redis(RedisSettings {
                topology,
                key_prefix: c.redis.key_prefix.clone(),
                timeout: c.redis.timeout,
            })
        }),
        other => {
            e.push("session.store", format!("{other:?} is not cookie or redis"));
            None
        }
    };
    positive(
        &mut e,
        "session.refresh_grace",
        c.session.refresh_grace,
        Duration::from_secs(1),
    );
    positive(
        &mut e,
        "session.refresh_wait",
        c.session.refresh_wait,
        Duration::from_secs(1),
    );
    positive(
        &mut e,
        "redis.timeout",
        c.redis.timeout,
        Duration::from_millis(100),
    );
    if c.session.refresh_before >= c.session.lifetime {
        e.push(
            "session.refresh_before",
            "must be shorter than session.lifetime",
        );
    }

    // --- redirect
    let whitelist = match Whitelist::parse(&c.redirect.whitelist_domains) {
        Ok(w) => Some(w),
        Err(errs) => {
            for err in errs {
                e.push("redirect.whitelist_domains", err.to_string());
            }
            None
        }
    };
    if let Some(Err(err)) = whitelist
        .as_ref()
        .map(|w| validate_redirect(&c.redirect.default, w))
    {
        e.push(
            "redirect.default",
            format!(
                "{:?} is not an acceptable target: {err}",
                c.redirect.default
            ),
        );
    }

    // --- headers
    if http::HeaderName::try_from(c.headers.token.as_str()).is_err() {
        e.push(
            "headers.token",
            format!("{:?} is not a valid header name", c.headers.token),
        );
    }
    let log_format = match c.log.format.as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            e.push("log.format", format!("{other:?} is not text or json"));
            LogFormat::Text
        }
    };

    // --- authz, pages, bearer, upstreams
    let mut skip_auth = Vec::new();
    for rule in &c.authz.skip_auth {
        match SkipRule::parse(rule) {
            Ok(r) => skip_auth.push(r),
            Err(err) => e.push("authz.skip_auth", err),
        }
    }
    check_emails(&mut e, "authz.allowed_emails", &c.authz.allowed_emails);
    let templates_dir = (!c.pages.templates_dir.is_empty()).then(|| {
        let dir = std::path::PathBuf::from(&c.pages.templates_dir);
        if !dir.is_dir() {
            e.push(
                "pages.templates_dir",
                format!("{:?} is not a directory", c.pages.templates_dir),
            );
        }
        dir
    });
    if let Err(err) = portcullis_http::pages::Templates::load(templates_dir.as_deref()) {
        e.push("pages.templates_dir", err);
    }
    let mut extra_issuers = Vec::new();
    for (i, x) in c.bearer.extra_issuers.iter().enumerate() {
        let key = format!("bearer.extra_issuers[{i}]");
        check_url(&mut e, &format!("{key}.issuer_url"), &x.issuer_url);
        if x.issuer_url == o.issuer_url {
            e.push(
                &format!("{key}.issuer_url"),
                "is the main issuer; list its audiences in bearer.audiences",
            );
        }
        if x.audiences.iter().all(|a| a.is_empty()) {
            e.push(&format!("{key}.audiences"), "needs at least one audience");
        }
        extra_issuers.push(ExtraIssuer {
            issuer_url: x.issuer_url.clone(),
            audiences: x.audiences.clone(),
        });
    }
    let mut audiences: Vec<String> = c.bearer.audiences.clone();
    if audiences.is_empty() {
        audiences.push(o.client_id.clone());
    }
    let auth_origin = url::Url::parse(&o.redirect_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let mut upstreams = Vec::new();
    for (i, u) in c.upstreams.iter().enumerate() {
        let key = format!("upstreams[{i}]");
        if !u.path.starts_with('/') || u.path.contains(['?', '#', '%']) {
            e.push(
                &format!("{key}.path"),
                format!("{:?} must be a plain path prefix starting with '/'", u.path),
            );
        }
        if u.path.starts_with("/oauth2") || u.path == "/ping" || u.path == "/ready" {
            e.push(
                &format!("{key}.path"),
                format!("{:?} is reserved for Portcullis itself", u.path),
            );
        }
        if c.upstreams[..i].iter().any(|p| p.path == u.path) {
            e.push(
                &format!("{key}.path"),
                format!("{:?} is listed twice", u.path),
            );
        }
        let url = match url::Url::parse(&u.url) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some()
                    && url.query().is_none()
                    && url.username().is_empty()
                    && url.password().is_none() =>
            {
                Some(url)
            }
            _ => {
                e.push(
                    &format!("{key}.url"),
                    format!(
                        "{:?} is not an http(s)://host[:port][/base] URL (no query, no credentials)",
                        u.url
                    ),
                );
                None
            }
        };
        check_emails(&mut e, &format!("{key}.allowed_emails"), &u.allowed_emails);
        positive(
            &mut e,
            &format!("{key}.timeout"),
            u.timeout,
            Duration::from_secs(1),
        );
        if let Some(url) = url {
            upstreams.push(UpstreamSettings {
                path: u.path.trim_end_matches('/').to_owned(),
                url,
                policy: Policy::from_lists(
                    &u.allowed_groups,
                    &u.allowed_emails,
                    &u.allowed_email_domains,
                ),
                timeout: u.timeout,
            });
        }
    }

    let token_format = match c.headers.token_format.as_str() {
        "bearer" => Some(TokenFormat::Bearer),
        "raw" => Some(TokenFormat::Raw),
        other => {
            e.push(
                "headers.token_format",
                format!("{other:?} is not bearer or raw"),
            );
            None
        }
    };

    match (
        e.0.is_empty(),
        listen,
        client_secret,
        same_site,
        whitelist,
        token_format,
        store,
    ) {
        (
            true,
            Some(listen),
            Some(client_secret),
            Some(same_site),
            Some(whitelist),
            Some(token_format),
            Some(store),
        ) => Ok(Settings {
            listen,
            http: HttpSettings {
                trusted_proxies,
                cookie: CookieSettings {
                    name: ck.name.clone(),
                    domains: ck.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
                    secure: ck.secure,
                    same_site,
                    csrf_lifetime: ck.csrf_expire,
                    chunk_size: DEFAULT_CHUNK_SIZE,
                },
                redirect: RedirectSettings {
                    whitelist,
                    default: c.redirect.default.clone(),
                },
                authz: AuthzSettings {
                    policy: Policy::from_lists(
                        &c.authz.allowed_groups,
                        &c.authz.allowed_emails,
                        &c.authz.allowed_email_domains,
                    ),
                    skip_auth,
                },
                headers: HeaderSettings {
                    token: c.headers.token.clone(),
                    token_format,
                },
                claims: ClaimSettings {
                    username: o.username_claim.clone(),
                    groups: o.groups_claim.clone(),
                },
                session_lifetime: c.session.lifetime,
                refresh_before: c.session.refresh_before,
                refresh_grace: c.session.refresh_grace,
                refresh_wait: c.session.refresh_wait,
                auth_origin,
                pages: PageSettings {
                    skip_sign_in_page: c.pages.skip_sign_in_page,
                    templates_dir,
                },
                bearer: BearerSettings {
                    enabled: c.bearer.enabled,
                    issuer_url: o.issuer_url.clone(),
                    audiences,
                    extra_issuers,
                },
                upstreams,
                limits: LimitSettings {
                    max_concurrent_requests: c.server.max_concurrent_requests,
                    request_timeout: c.server.request_timeout,
                    ..LimitSettings::default()
                },
            },
            oidc: OidcSettings {
                issuer_url: o.issuer_url.clone(),
                client_id: o.client_id.clone(),
                client_secret,
                redirect_url: o.redirect_url.clone(),
                scopes,
                timeout: o.timeout,
                allow_unverified_email: o.allow_unverified_email,
            },
            keys,
            store,
            log_level: c.log.level.clone(),
            log_format,
            serving,
        }),
        _ => Err(e.0),
    }
}

/// The `[server]` keys about serving. File contents are checked for PEM markers only
/// (the binary parses them at start and names the file if that fails).
fn serving(e: &mut Errors, s: &crate::schema::Server, listen: Option<SocketAddr>) -> ServeSettings {
    let metrics_listen = match s.metrics_listen.trim() {
        "" => None,
        text => match text.parse::<SocketAddr>() {
            Ok(addr) if Some(addr) == listen => {
                e.push(
                    "server.metrics_listen",
                    "must differ from server.listen (metrics are never served on the public listener)",
                );
                None
            }
            Ok(addr) => Some(addr),
            Err(_) => {
                e.push(
                    "server.metrics_listen",
                    format!("{text:?} is not an address:port (or \"\" for no metrics listener)"),
                );
                None
            }
        },
    };
    let pem = |e: &mut Errors, key: &str, path: &str, marker: &str| -> Option<PathBuf> {
        match std::fs::read_to_string(path) {
            Ok(text) if text.contains(marker) => Some(PathBuf::from(path)),
            Ok(_) => {
                e.push(
                    key,
                    format!("{path:?} is not a PEM file with a {marker:?} block"),
                );
                None
            }
            Err(err) => {
                e.push(key, format!("cannot read {path:?}: {err}"));
                None
            }
        }
    };
    let tls = match (s.tls_cert_file.is_empty(), s.tls_key_file.is_empty()) {
        (true, true) => None,
        (false, true) => {
            e.push(
                "server.tls_key_file",
                "is required when server.tls_cert_file is set (set both for HTTPS, neither for HTTP)",
            );
            None
        }
        (true, false) => {
            e.push(
                "server.tls_cert_file",
                "is required when server.tls_key_file is set (set both for HTTPS, neither for HTTP)",
            );
            None
        }
        (false, false) => {
            let cert = pem(
                e,
                "server.tls_cert_file",
                &s.tls_cert_file,
                "-----BEGIN CERTIFICATE-----",
            );
            let key = pem(
                e,
                "server.tls_key_file",
                &s.tls_key_file,
                "PRIVATE KEY-----",
            );
            cert.zip(key).map(|(cert, key)| TlsFiles { cert, key })
        }
    };
    if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&s.max_header_bytes) {
        e.push(
            "server.max_header_bytes",
            format!("must be between {MIN_HEADER_BYTES} and {MAX_HEADER_BYTES}"),
        );
    }
    if s.max_concurrent_requests == 0 {
        e.push("server.max_concurrent_requests", "must be at least 1");
    }
    if s.worker_threads > MAX_WORKER_THREADS {
        e.push(
            "server.worker_threads",
            format!("must be at most {MAX_WORKER_THREADS} (0: one per CPU)"),
        );
    }
    positive(
        e,
        "server.request_timeout",
        s.request_timeout,
        Duration::from_secs(1),
    );
    positive(
        e,
        "server.shutdown_timeout",
        s.shutdown_timeout,
        Duration::from_secs(1),
    );
    if s.shutdown_delay > Duration::from_secs(300) {
        e.push("server.shutdown_delay", "must be at most 300s");
    }
    ServeSettings {
        metrics_listen,
        tls,
        max_header_bytes: s.max_header_bytes,
        shutdown_delay: s.shutdown_delay,
        shutdown_timeout: s.shutdown_timeout,
        worker_threads: s.worker_threads,
    }
}

fn redis_url_ok(u: &str) -> bool {
    url::Url::parse(u)
        .is_ok_and(|u| matches!(u.scheme(), "redis" | "rediss") && u.host_str().is_some())
}

/// The Redis deployment. URLs are never echoed: they may carry passwords.
fn redis_topology(e: &mut Errors, r: &crate::schema::Redis) -> Option<Topology> {
    match r.mode.as_str() {
        "standalone" => {
            if redis_url_ok(&r.url) {
                Some(Topology::Standalone(r.url.clone()))
            } else {
                e.push(
                    "redis.url",
                    "must be a redis:// or rediss:// URL when session.store = \"redis\"",
                );
                None
            }
        }
        "sentinel" | "cluster" => {
            let mut ok = true;
            if r.nodes.is_empty() || !r.nodes.iter().all(|n| redis_url_ok(n)) {
                e.push(
                    "redis.nodes",
                    format!("{} mode needs redis:// or rediss:// node URLs", r.mode),
                );
                ok = false;
            }
            if r.mode == "cluster" {
                return ok.then(|| Topology::Cluster(r.nodes.clone()));
            }
            if r.sentinel_master.is_empty() {
                e.push("redis.sentinel_master", "is required in sentinel mode");
                ok = false;
            }
            if !r.url.is_empty() && !redis_url_ok(&r.url) {
                e.push(
                    "redis.url",
                    "must be a redis:// or rediss:// URL (credentials for the master)",
                );
                ok = false;
            }
            ok.then(|| Topology::Sentinel {
                sentinels: r.nodes.clone(),
                master: r.sentinel_master.clone(),
                auth: (!r.url.is_empty()).then(|| r.url.clone()),
            })
        }
        other => {
            e.push(
                "redis.mode",
                format!("{other:?} is not standalone, sentinel or cluster"),
            );
            None
        }
    }
}

/// Email list entries must have exactly one `@` with text on both sides.
fn check_emails(e: &mut Errors, key: &str, emails: &[String]) {
    for m in emails {
        if portcullis_http::authz::email_domain(m).is_none() {
            e.push(key, format!("{m:?} is not an address with exactly one '@'"));
        }
    }
}

fn check_url(e: &mut Errors, key: &str, value: &str) {
    if value.is_empty() {
        e.push(key, "is required");
        return;
    }
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
        _ => e.push(key, format!("{value:?} is not an http(s) URL")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::schema::Scopes;

    fn good() -> Config {
        let mut c = Config::default();
        c.oidc.issuer_url = "https://dex.example.com".into();
        c.oidc.client_id = "portcullis".into();
        c.oidc.client_secret = "s3cret".into();
        c.oidc.redirect_url = "https://auth.example.com/oauth2/callback".into();
        c.cookie.secrets = vec![Key::from_bytes([1; 32]).to_base64()];
        c.cookie.domains = vec![".example.com".into()];
        c.redirect.whitelist_domains = vec![".example.com".into()];
        c
    }

    #[test]
    fn good_config_validates() {
        let s = validate(&good()).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:4180");
        assert_eq!(
            s.oidc.scopes,
            ["openid", "email", "profile", "groups", "offline_access"]
        );
        assert_eq!(s.keys.len(), 1);
    }

    #[test]
    fn every_problem_is_reported() {
        let mut c = good();
        c.server.listen = "nope".into();
        c.server.trusted_proxies = vec!["10.0.0.0/8".into(), "bad".into()];
        c.oidc.issuer_url = String::new();
        c.oidc.client_secret_file = "/x".into();
        c.oidc.scopes = Scopes::Text("email".into());
        c.cookie.secrets = vec!["short".into()];
        c.cookie.samesite = "sometimes".into();
        c.redirect.whitelist_domains = vec!["*.example.com".into(), "https://x.com".into()];
        c.headers.token = "bad header".into();
        let errors = validate(&c).unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "server.listen",
            "server.trusted_proxies",
            "oidc.issuer_url",
            "oidc.client_secret",
            "oidc.scopes",
            "cookie.secrets[0]",
            "cookie.samesite",
            "redirect.whitelist_domains",
            "headers.token",
        ] {
            assert!(keys.contains(&k), "missing {k} in {errors:?}");
        }
        assert_eq!(
            keys.iter()
                .filter(|k| **k == "redirect.whitelist_domains")
                .count(),
            2
        );
        assert!(!format!("{errors:?}").contains("s3cret"));
    }

    #[test]
    fn published_key_is_refused_and_strings_are_lenient() {
        let mut c = good();
        c.cookie.secrets = vec!["REPLACEwithTheOutputOfPortcullisSecret00000=".into()];
        let errors = validate(&c).unwrap_err();
        assert!(
            errors[0].message.contains("published example key"),
            "{errors:?}"
        );

        let parsed: Config =
            toml::from_str("[oidc]\nclient_secret = 12345\n[cookie]\nsecrets = \"abc\"").unwrap();
        assert_eq!(parsed.oidc.client_secret, "12345");
        assert_eq!(parsed.cookie.secrets, ["abc"]);
    }

    #[test]
    fn redis_topologies() {
        let mut c = good();
        c.session.store = "redis".into();
        assert!(
            validate(&c)
                .unwrap_err()
                .iter()
                .any(|e| e.key == "redis.url")
        );
        c.redis.url = "redis://:pw@r:6379/0".into();
        assert!(validate(&c).is_ok());
        c.redis.mode = "sentinel".into();
        let keys: Vec<String> = validate(&c)
            .unwrap_err()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, ["redis.nodes", "redis.sentinel_master"]);
        c.redis.nodes = vec!["redis://s1:26379".into()];
        c.redis.sentinel_master = "mymaster".into();
        assert!(validate(&c).is_ok());
        c.redis.mode = "cluster".into();
        c.redis.nodes = vec!["http://n1".into()];
        let errors = validate(&c).unwrap_err();
        assert_eq!(errors[0].key, "redis.nodes");
        c.redis.mode = "ring".into();
        assert!(
            validate(&c)
                .unwrap_err()
                .iter()
                .any(|e| e.key == "redis.mode")
        );
        assert!(
            !format!("{:?}", validate(&c)).contains("pw"),
            "passwords never echoed"
        );
    }

    #[test]
    fn serving_defaults() {
        let s = validate(&good()).unwrap();
        assert!(s.serving.metrics_listen.is_none());
        assert!(s.serving.tls.is_none());
        assert_eq!(s.serving.max_header_bytes, 16384);
        assert_eq!(s.serving.shutdown_delay, Duration::from_secs(5));
        assert_eq!(s.serving.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(s.http.limits.max_concurrent_requests, 1024);
        assert_eq!(s.http.limits.request_timeout, Duration::from_secs(30));
        assert_eq!(s.http.limits.max_body_bytes, 64 * 1024);
    }

    fn error_keys(c: &Config) -> Vec<String> {
        validate(c)
            .unwrap_err()
            .into_iter()
            .map(|e| e.key)
            .collect()
    }

    #[test]
    fn metrics_listen_is_an_address_apart_from_listen() {
        let mut c = good();
        c.server.metrics_listen = "0.0.0.0:9090".into();
        let s = validate(&c).unwrap();
        assert_eq!(s.serving.metrics_listen.unwrap().port(), 9090);
        c.server.metrics_listen = "localhost:9090".into();
        assert_eq!(error_keys(&c), ["server.metrics_listen"]);
        c.server.metrics_listen = c.server.listen.clone();
        let errors = validate(&c).unwrap_err();
        assert!(errors[0].message.contains("must differ"), "{errors:?}");
    }

    #[test]
    fn tls_files_come_in_pairs_and_are_pem() {
        let dir = std::env::temp_dir().join(format!("portcullis-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let mut c = good();
        c.server.tls_cert_file = cert.display().to_string();
        assert_eq!(error_keys(&c), ["server.tls_key_file"]);
        c.server.tls_cert_file = String::new();
        c.server.tls_key_file = key.display().to_string();
        assert_eq!(error_keys(&c), ["server.tls_cert_file"]);
        c.server.tls_cert_file = cert.display().to_string();
        let tls = validate(&c).unwrap().serving.tls.unwrap();
        assert_eq!((tls.cert, tls.key), (cert.clone(), key.clone()));
        // Swapped files: each lacks the block it should have.
        c.server.tls_cert_file = key.display().to_string();
        c.server.tls_key_file = cert.display().to_string();
        assert_eq!(
            error_keys(&c),
            ["server.tls_cert_file", "server.tls_key_file"]
        );
        c.server.tls_cert_file = dir.join("missing.pem").display().to_string();
        let errors = validate(&c).unwrap_err();
        assert!(errors[0].message.contains("cannot read"), "{errors:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn limits_and_shutdown_bounds() {
        let mut c = good();
        c.server.max_header_bytes = 4096;
        c.server.max_concurrent_requests = 0;
        c.server.request_timeout = Duration::from_millis(10);
        c.server.shutdown_timeout = Duration::ZERO;
        c.server.shutdown_delay = Duration::from_secs(3600);
        c.server.worker_threads = MAX_WORKER_THREADS + 1;
        assert_eq!(
            error_keys(&c),
            [
                "server.max_header_bytes",
                "server.max_concurrent_requests",
                "server.worker_threads",
                "server.request_timeout",
                "server.shutdown_timeout",
                "server.shutdown_delay",
            ]
        );
        c.server.max_header_bytes = MAX_HEADER_BYTES + 1;
        c.server.max_concurrent_requests = 1;
        c.server.request_timeout = Duration::from_secs(1);
        c.server.shutdown_timeout = Duration::from_secs(1);
        c.server.shutdown_delay = Duration::ZERO;
        c.server.worker_threads = 1;
        assert_eq!(error_keys(&c), ["server.max_header_bytes"]);
        c.server.max_header_bytes = MIN_HEADER_BYTES;
        let s = validate(&c).unwrap();
        assert_eq!(s.serving.shutdown_delay, Duration::ZERO);
        assert_eq!(s.serving.worker_threads, 1);
        assert_eq!(s.http.limits.max_concurrent_requests, 1);
        // Durations are read in the humantime form, as every other duration.
        let parsed: Config = toml::from_str(
            "[server]\nrequest_timeout = \"2s\"\nshutdown_delay = \"250ms\"\nshutdown_timeout = \"1m\"",
        )
        .unwrap();
        assert_eq!(parsed.server.request_timeout, Duration::from_secs(2));
        assert_eq!(parsed.server.shutdown_delay, Duration::from_millis(250));
        assert_eq!(parsed.server.shutdown_timeout, Duration::from_secs(60));
    }

    #[test]
    fn samesite_none_needs_secure() {
        let mut c = good();
        c.cookie.samesite = "none".into();
        c.cookie.secure = false;
        assert!(
            validate(&c)
                .unwrap_err()
                .iter()
                .any(|e| e.key == "cookie.samesite")
        );
    }
}
