//! Schema → settings, collecting every problem (oauth2-proxy's `pkg/validation` habit):
//! an operator fixing a config wants the whole list, not one error per restart.

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use portcullis_core::SessionSettings;
use portcullis_core::authz::{AuthzSettings, Policy, SkipRule, email_domain};
use portcullis_core::bearer::{BearerSettings, ExtraIssuer};
use portcullis_core::identity::{ClaimSettings, HeaderSettings, TokenFormat};
use portcullis_core::redirect::{RedirectSettings, Whitelist, validate_redirect};
use portcullis_core::refresh::RefreshSettings;
use portcullis_http::settings::{
    CookieSettings, HttpSettings, LimitSettings, PageSettings, SameSite, UpstreamSettings,
};
use portcullis_oidc::OidcSettings;
use portcullis_session::Key;
use portcullis_session::chunk::DEFAULT_CHUNK_SIZE;
use portcullis_session::store::RedisSettings;

use crate::schema::Config;

mod clusters;
mod redis;
mod report;
mod serving;
mod settings;

use redis::redis_topology;
pub use report::ConfigError;
use report::{Errors, positive};
use serving::serving;
pub use settings::{
    LogFormat, MAX_HEADER_BYTES, MIN_HEADER_BYTES, ServeSettings, Settings, StoreChoice, TlsFiles,
};

/// Keys printed in our documentation: never acceptable in a running deployment.
const PUBLISHED_KEYS: &[&str] = &["REPLACEwithTheOutputOfPortcullisSecret00000="];

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

    let clusters = clusters::clusters(&mut e, &c.clusters);

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
                auth_origin,
                pages: PageSettings {
                    skip_sign_in_page: c.pages.skip_sign_in_page,
                    templates_dir,
                },
                upstreams,
                clusters,
                limits: LimitSettings {
                    max_concurrent_requests: c.server.max_concurrent_requests,
                    request_timeout: c.server.request_timeout,
                    ..LimitSettings::default()
                },
            },
            sessions: SessionSettings {
                claims: ClaimSettings {
                    username: o.username_claim.clone(),
                    groups: o.groups_claim.clone(),
                },
                headers: HeaderSettings {
                    token: c.headers.token.clone(),
                    token_format,
                },
                lifetime: c.session.lifetime,
                refresh: RefreshSettings {
                    before: c.session.refresh_before,
                    grace: c.session.refresh_grace,
                    wait: c.session.refresh_wait,
                },
                bearer: BearerSettings {
                    enabled: c.bearer.enabled,
                    issuer_url: o.issuer_url.clone(),
                    audiences,
                    extra_issuers,
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

/// Email list entries must have exactly one `@` with text on both sides.
fn check_emails(e: &mut Errors, key: &str, emails: &[String]) {
    for m in emails {
        if email_domain(m).is_none() {
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
mod tests;
