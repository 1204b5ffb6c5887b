//! Listeners, proxy trust, the Redis store, upstreams, headers, logging and pages.

use std::net::SocketAddr;

use super::ctx::Ctx;
use super::duration::{human, parse_go};
use super::emit::{Table, list, s};
use super::input::Setting;

/// An oauth2-proxy listen address (`[http://]host:port`, `:port`) as a socket address.
fn listen_addr(addr: &str) -> Result<String, &'static str> {
    let lower = addr.to_ascii_lowercase();
    if lower.starts_with("unix://") || lower.starts_with("fd:") {
        return Err("Portcullis listens on TCP only (no unix sockets or inherited descriptors)");
    }
    let bare = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
        .unwrap_or(&lower);
    let bare = match bare.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None if bare.starts_with(':') => format!("0.0.0.0{bare}"),
        None => bare.to_owned(),
    };
    bare.parse::<SocketAddr>()
        .map(|a| a.to_string())
        .map_err(|_| "not an address:port Portcullis can listen on")
}

fn set_listen(c: &mut Ctx, key: &str, x: &Setting, why: &[&str]) {
    match listen_addr(&x.text()) {
        Ok(a) => c.out.set("server", key, s(&a), &x.origin.to_string(), why),
        Err(e) => c.out.untranslated(&x.origin.to_string(), e),
    }
}

/// `http_address`, `https_address` with TLS, `metrics_address`, proxy trust.
pub(crate) fn server(c: &mut Ctx) {
    let http = c.take("http_address");
    let https = c.take("https_address");
    let cert = c.take("tls_cert_file").filter(|x| !x.text().is_empty());
    let key = c.take("tls_key_file").filter(|x| !x.text().is_empty());
    if let (Some(cert), Some(key)) = (&cert, &key) {
        match &https {
            Some(h) => set_listen(c, "listen", h, &["HTTPS (tls_cert_file is set)."]),
            None => c.out.set(
                "server",
                "listen",
                s("0.0.0.0:443"),
                "oauth2-proxy's default https_address \":443\"",
                &[],
            ),
        }
        c.out.set(
            "server",
            "tls_cert_file",
            s(&cert.text()),
            &cert.origin.to_string(),
            &[],
        );
        c.out.set(
            "server",
            "tls_key_file",
            s(&key.text()),
            &key.origin.to_string(),
            &[],
        );
        if let Some(h) = http.filter(|h| !h.text().is_empty()) {
            c.out.untranslated(&h.origin.to_string(), "Portcullis has one listener: with TLS it serves HTTPS only (redirect HTTP at the load balancer)");
        }
    } else {
        for x in cert.iter().chain(key.iter()) {
            c.out.untranslated(
                &x.origin.to_string(),
                "TLS needs both tls_cert_file and tls_key_file",
            );
        }
        if let Some(h) = &http {
            set_listen(c, "listen", h, &[]);
        } else {
            c.out.set(
                "server",
                "listen",
                s("127.0.0.1:4180"),
                "oauth2-proxy's default http_address",
                &[],
            );
        }
        if let Some(h) = https {
            c.out.note(
                "server",
                &format!(
                    "{}: unused without TLS files, as in oauth2-proxy.",
                    h.origin
                ),
            );
        }
    }
    if let Some(m) = c.take("metrics_address").filter(|x| !x.text().is_empty()) {
        set_listen(c, "metrics_listen", &m, &["Prometheus /metrics only."]);
    }
    let (reverse, rp) = c.take_flag("reverse_proxy", false);
    match c.take("trusted_proxy_ips") {
        Some(t) if reverse => c.out.set("server", "trusted_proxies", list(t.list()), &t.origin.to_string(), &[
            "Only these peers' X-Forwarded-*, X-Original-URL and X-Auth-Request-Redirect are believed.",
        ]),
        Some(t) => c.out.note("server", &format!("{}: unused without --reverse-proxy, as in oauth2-proxy.", t.origin)),
        None if reverse => c.out.untranslated(
            &rp.map_or_else(String::new, |r| r.origin.to_string()),
            "trusted_proxies cannot be inferred: oauth2-proxy then believed forwarded headers from every peer; list the proxies in front of Portcullis in server.trusted_proxies (empty trusts nobody)",
        ),
        None => {}
    }
}

/// The URL with its password (if any, or `placeholder` when non-empty) shown as
/// `<placeholder>`, the username set to `username` when given; and whether the URL
/// itself held a password. An unparsable URL is never echoed.
fn redact(url: &str, username: Option<&str>, placeholder: &str) -> (String, bool) {
    let Ok(mut u) = url::Url::parse(url) else {
        return ("<an unparsable URL>".into(), true);
    };
    let had = u.password().is_some();
    if !had && placeholder.is_empty() && username.is_none() {
        return (url.to_owned(), false);
    }
    if let Some(name) = username {
        let _ = u.set_username(name);
    }
    if !had && placeholder.is_empty() {
        return (u.to_string(), false);
    }
    let _ = u.set_password(Some("PASSWORD"));
    let shown = if placeholder.is_empty() {
        "password"
    } else {
        placeholder
    };
    (
        u.to_string()
            .replacen(":PASSWORD@", &format!(":<{shown}>@"), 1),
        had,
    )
}

/// `session_store_type = redis` and the `redis_*` options.
pub(crate) fn redis(c: &mut Ctx) {
    let url = c
        .take("redis_connection_url")
        .filter(|x| !x.text().is_empty());
    let user = c
        .take("redis_username")
        .filter(|x| !x.text().is_empty())
        .map(|x| x.text());
    let password = c.take("redis_password").filter(|x| !x.text().is_empty());
    let sentinel_password = c
        .take("redis_sentinel_password")
        .filter(|x| !x.text().is_empty());
    let (sentinel, sm) = c.take_flag("redis_use_sentinel", false);
    let (cluster, cm) = c.take_flag("redis_use_cluster", false);
    let sentinels = c.take("redis_sentinel_connection_urls");
    let seeds = c.take("redis_cluster_connection_urls");
    let master = c.take("redis_sentinel_master_name");
    let pw = if password.is_some() {
        "redis password"
    } else {
        ""
    };
    if sentinel {
        let origin = sm.map_or_else(String::new, |m| m.origin.to_string());
        c.out.set("redis", "mode", s("sentinel"), &origin, &[]);
        if let Some(m) = master {
            c.out.set(
                "redis",
                "sentinel_master",
                s(&m.text()),
                &m.origin.to_string(),
                &[],
            );
        }
        let placeholder = if sentinel_password.is_some() {
            "sentinel password"
        } else {
            ""
        };
        nodes(c, sentinels.as_ref(), user.as_deref(), placeholder);
        if password.is_some() || user.is_some() {
            c.out.need_env("PORTCULLIS_REDIS__URL", &format!(
                "redis://{}:<redis password>@<master name>/0 (the master's credentials: the value of the source's redis password)",
                user.as_deref().unwrap_or("")
            ));
        }
    } else if cluster {
        let origin = cm.map_or_else(String::new, |m| m.origin.to_string());
        c.out.set("redis", "mode", s("cluster"), &origin, &[]);
        nodes(c, seeds.as_ref(), user.as_deref(), pw);
    } else if url.is_none() && c.redis_store {
        c.out.untranslated(
            "redis_connection_url (not set)",
            "the Redis store needs redis.url (oauth2-proxy's connection URL)",
        );
    } else if let Some(u) = url {
        let (text, had) = redact(&u.text(), user.as_deref(), pw);
        if had || password.is_some() {
            c.out.note(
                "redis",
                &format!("url: holds a password ({}), not written here.", u.origin),
            );
            c.out.need_env(
                "PORTCULLIS_REDIS__URL",
                &format!("{text} (the password from the source)"),
            );
        } else {
            c.out
                .set("redis", "url", s(&text), &u.origin.to_string(), &[]);
        }
    }
    if let Some(x) = c.take("redis_ca_path").filter(|x| !x.text().is_empty()) {
        c.out.untranslated(&x.origin.to_string(), "no Redis CA setting: rediss:// is verified against the system roots; set SSL_CERT_FILE to a bundle holding your CA");
    }
}

fn nodes(c: &mut Ctx, urls: Option<&Setting>, user: Option<&str>, placeholder: &str) {
    let Some(urls) = urls else {
        return;
    };
    let redacted: Vec<(String, bool)> = urls
        .list()
        .iter()
        .map(|u| redact(u, user, placeholder))
        .collect();
    if redacted.iter().any(|(_, had)| *had) || !placeholder.is_empty() {
        let shown: Vec<String> = redacted.into_iter().map(|(t, _)| t).collect();
        c.out.note(
            "redis",
            &format!(
                "nodes: hold a password ({}), not written here.",
                urls.origin
            ),
        );
        c.out.need_env(
            "PORTCULLIS_REDIS__NODES",
            &format!("'{}' (the passwords from the source)", list(shown)),
        );
    } else {
        c.out.set(
            "redis",
            "nodes",
            list(redacted.into_iter().map(|(t, _)| t)),
            &urls.origin.to_string(),
            &[],
        );
    }
}

/// `upstreams` → `[[upstreams]]`: the URL's path is the route (oauth2-proxy forwards
/// the request path unchanged), `upstream_timeout` each one's timeout.
pub(crate) fn upstreams(c: &mut Ctx) {
    let timeout = c.take("upstream_timeout");
    let Some(ups) = c.take("upstreams") else {
        return;
    };
    for (i, raw) in ups.list().iter().enumerate() {
        // A URL with '@' may carry credentials: named by position only.
        let what = if raw.contains('@') {
            format!("{} entry #{}", ups.origin, i + 1)
        } else {
            format!("{} entry {raw:?}", ups.origin)
        };
        let Ok(u) = url::Url::parse(raw) else {
            c.out.untranslated(&what, "not a URL");
            continue;
        };
        // The usual "no upstream" of auth_request / forward-auth deployments.
        if raw == "file:///dev/null" || u.scheme() == "static" {
            c.out.note("server", &format!(
                "{what}: a placeholder upstream (nginx auth_request / forward-auth mode): Portcullis without [[upstreams]] answers /oauth2/*, /ping and /ready only."
            ));
            continue;
        }
        if !u.username().is_empty() || u.password().is_some() {
            c.out.untranslated(&what, "credentials in an upstream URL are not sent by Portcullis: the app must not need them");
            continue;
        }
        if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
            c.out.untranslated(
                &what,
                "Portcullis proxies to http(s) upstreams only (no file://, static:// or unix://)",
            );
            continue;
        }
        let path = match u.path().trim_end_matches('/') {
            "" => "/".to_owned(),
            p => p.to_owned(),
        };
        let mut base = u.clone();
        base.set_path("");
        base.set_fragment(None);
        base.set_query(None);
        let mut t = Table::default();
        t.comment("Requests under `path` go to `url` with their path unchanged, as in oauth2-proxy. The app receives X-Auth-Request-User/-Email/-Groups/-Preferred-Username and the ID token in Authorization, not oauth2-proxy's X-Forwarded-User/-Email/-Groups.");
        t.set("path", s(&path), &ups.origin.to_string());
        t.set(
            "url",
            s(base.as_str().trim_end_matches('/')),
            &ups.origin.to_string(),
        );
        if let Some(d) = timeout.as_ref().and_then(|x| parse_go(&x.text())) {
            t.set(
                "timeout",
                s(&human(d)),
                &timeout
                    .as_ref()
                    .map_or_else(String::new, |x| x.origin.to_string()),
            );
        }
        c.out.table("upstreams", t);
    }
}

/// The `set_*` / `pass_*` header options: Portcullis always sends its identity headers
/// and the ID token, never the access token.
pub(crate) fn headers(c: &mut Ctx) {
    for (cfg, what) in [
        (
            "set_xauthrequest",
            "X-Auth-Request-User/-Email/-Groups/-Preferred-Username are always on /oauth2/auth's 202 (nginx passes what auth_request_set / auth-response-headers name).",
        ),
        (
            "set_authorization_header",
            "Authorization: Bearer <id_token> is always on the 202 (headers.token / headers.token_format change the name and form).",
        ),
        (
            "pass_authorization_header",
            "in upstream mode the ID token is always sent to the app.",
        ),
        (
            "pass_user_headers",
            "in upstream mode the X-Auth-Request-* identity headers are always sent to the app.",
        ),
        (
            "skip_auth_strip_headers",
            "client-sent copies of the identity and token headers are always dropped.",
        ),
    ] {
        if let Some(x) = c.take(cfg) {
            c.out.note("headers", &format!("{}: {what}", x.origin));
        }
    }
    if let (true, Some(x)) = c.take_flag("pass_access_token", false) {
        c.out.untranslated(&x.origin.to_string(), "Portcullis forwards the ID token only (what the Kubernetes API server verifies); the access token is never sent on");
    }
}

/// Logging switches and the sign-in page.
pub(crate) fn log_and_pages(c: &mut Ctx) {
    if let (false, Some(x)) = c.take_flag("request_logging", true) {
        c.out.set(
            "log",
            "level",
            s("info,portcullis::access=off"),
            &x.origin.to_string(),
            &["No access line per request."],
        );
    }
    for cfg in ["standard_logging", "auth_logging"] {
        if let Some(x) = c.take(cfg) {
            c.out.note("log", &format!("{}: Portcullis logs at log.level (RUST_LOG overrides); sign-ins and refusals are logged at info.", x.origin));
        }
    }
    if let (v, Some(x)) = c.take_flag("skip_provider_button", false) {
        c.out.set(
            "pages",
            "skip_sign_in_page",
            toml::Value::Boolean(v),
            &x.origin.to_string(),
            &[],
        );
    }
    if let Some(x) = c
        .take("custom_templates_dir")
        .filter(|x| !x.text().is_empty())
    {
        c.out.untranslated(&x.origin.to_string(), "oauth2-proxy's Go templates are not read: write sign_in.html / error.html in Jinja2 syntax and set pages.templates_dir");
    }
}
