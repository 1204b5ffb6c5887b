//! Meaning kept: whitelist entries and skip-auth regexes against oracles of
//! oauth2-proxy's matching, email domains failing closed, durations, listeners, Redis
//! and bearer settings, odd inputs.

use super::super::policy::{anchor_regex, whitelist_entry};
use super::super::*;
use super::{args, flagged, get, run, strs, table, untranslated};

/// oauth2-proxy's `IsEndpointAllowed` (pkg/util/util.go), as an oracle.
fn oauth2_proxy_admits(entries: &[&str], url: &str) -> bool {
    let u = url::Url::parse(url).unwrap();
    let host = u.host_str().unwrap();
    let port = url.split("//").nth(1).and_then(|rest| {
        let authority = rest.split('/').next().unwrap();
        authority.rsplit_once(':').map(|(_, p)| p.to_owned())
    });
    entries.iter().any(|e| {
        let (ah, ap) = match e.rfind(':') {
            Some(i) if e[i + 1..] == *"*" || e[i + 1..].bytes().all(|b| b.is_ascii_digit()) => {
                (&e[..i], &e[i + 1..])
            }
            _ => (*e, ""),
        };
        let host_ok = host == ah.trim_start_matches('.')
            || ah.strip_prefix("*.").is_some_and(|p| host == p)
            || ah.starts_with('.') && host.ends_with(ah)
            || ah
                .strip_prefix('*')
                .is_some_and(|p| p.starts_with('.') && host.ends_with(p));
        host_ok && (ap == "*" || port.as_deref() == Some(ap) || ap.is_empty() && port.is_none())
    })
}

#[test]
fn whitelist_domains_keep_their_meaning() {
    let cases: &[(&str, &[&str])] = &[
        (".example.com", &["example.com", ".example.com"]),
        ("*.example.com", &["example.com", ".example.com"]),
        ("example.com", &["example.com"]),
        ("example.com:8080", &["example.com:8080"]),
        (".example.com:*", &["example.com:*", ".example.com:*"]),
        ("example.com:", &["example.com"]),
    ];
    let urls = [
        "https://example.com/",
        "https://a.example.com/x",
        "https://a.b.example.com/",
        "https://badexample.com/",
        "https://example.com.evil.com/",
        "https://example.com:8080/",
        "https://a.example.com:8443/",
        "http://example.com/",
        "https://other.com/",
    ];
    for (entry, want) in cases {
        let got = whitelist_entry(entry).unwrap();
        assert_eq!(&got, want, "{entry}");
        let w = portcullis_core::redirect::Whitelist::parse(&got).unwrap();
        for url in urls {
            let ours = portcullis_core::redirect::validate_redirect(url, &w).is_ok();
            assert_eq!(ours, oauth2_proxy_admits(&[entry], url), "{entry} vs {url}");
        }
    }
    // The one difference: an explicit default port is the scheme's default port to
    // Portcullis (the same origin); oauth2-proxy wanted no port written at all.
    let w = portcullis_core::redirect::Whitelist::parse(whitelist_entry("example.com").unwrap())
        .unwrap();
    assert!(portcullis_core::redirect::validate_redirect("https://example.com:443/", &w).is_ok());
    assert!(!oauth2_proxy_admits(
        &["example.com"],
        "https://example.com:443/"
    ));
    for bad in ["[::1]:8080", "https://example.com", "example.com/path"] {
        assert!(whitelist_entry(bad).is_err(), "{bad}");
    }
    // Hostile entries never break out of the TOML string.
    let t = run(
        None,
        &[],
        &["--whitelist-domain=a.com\"]\n[server]\nlisten = \"0.0.0.0:1\""],
    );
    assert!(
        table(&t)
            .get("server")
            .and_then(|s| s.get("listen"))
            .and_then(|l| l.as_str())
            != Some("0.0.0.0:1")
    );
}

#[test]
fn skip_auth_regexes_admit_what_they_admitted() {
    let paths = [
        "/",
        "/healthz",
        "/healthz/x",
        "/a/healthz",
        "/static/app.js",
        "/x/static/y",
        "/staticx",
        "/api/v1/ping",
        "/style.css",
        "/css/style.css",
        "/metrics",
    ];
    for re in [
        "^/healthz$",
        "^/static/",
        "/static/",
        "healthz",
        "\\.css$",
        "^/api/v[0-9]+/",
        ".*\\.css$",
        ".+/ping$",
        "^/(healthz|metrics)$",
        "/static/.*\\.js",
    ] {
        let ours = anchor_regex(re).unwrap_or_else(|e| panic!("{re}: {e}"));
        let rules = vec![portcullis_core::authz::SkipRule::parse(&ours).unwrap()];
        let theirs = regex::Regex::new(re).unwrap();
        for p in paths {
            assert_eq!(
                portcullis_core::authz::skip_auth(&rules, "GET", p),
                theirs.is_match(p),
                "{re} (as {ours}) on {p}"
            );
        }
    }
    for re in ["^/a|^/b", "(?i)/static", "^.*"] {
        assert!(anchor_regex(re).is_err(), "{re}");
    }
    let t = run(
        None,
        &[],
        &[
            "--skip-auth-route=GET=^/probe",
            "--skip-auth-route=^/metrics",
            "--skip-auth-route=POST!=^/x",
            "--skip-auth-regex=^/a|^/b",
            "--skip-auth-preflight",
        ],
    );
    let v = table(&t);
    assert_eq!(
        strs(get(&v, "authz.skip_auth")),
        ["GET /probe.*", "/metrics.*", "OPTIONS /.*"]
    );
    assert_eq!(flagged(&t).len(), 2, "{:?}", t.untranslated);
}

#[test]
fn email_domains_and_fail_closed() {
    let t = run(
        None,
        &[],
        &["--email-domain=*", "--email-domain=example.com"],
    );
    assert!(
        get(&table(&t), "authz.allowed_email_domains").is_none(),
        "`*` admits everyone"
    );
    assert!(!t.toml.contains(ctx::NOBODY));
    let t = run(
        None,
        &[],
        &["--email-domain=.example.com", "--email-domain=Example.org"],
    );
    let v = table(&t);
    assert_eq!(
        strs(get(&v, "authz.allowed_email_domains")),
        ["example.org"]
    );
    assert_eq!(
        strs(get(&v, "authz.allowed_emails")),
        [ctx::NOBODY],
        "sub-domain addresses cannot be said: nobody"
    );
    let t = run(None, &[], &["--authenticated-emails-file=/etc/emails"]);
    assert_eq!(strs(get(&table(&t), "authz.allowed_emails")), [ctx::NOBODY]);
    let t = run(None, &[], &["--email-domain=*", "--github-org=acme"]);
    assert_eq!(strs(get(&table(&t), "authz.allowed_emails")), [ctx::NOBODY]);
    let t = run(
        None,
        &[],
        &[
            "--email-domain=*",
            "--allowed-group=admins",
            "--allowed-group=dev",
        ],
    );
    assert_eq!(
        strs(get(&table(&t), "authz.allowed_groups")),
        ["admins", "dev"]
    );
}

#[test]
fn sessions_cookies_redis_listeners() {
    let t = run(
        None,
        &[],
        &[
            "--cookie-expire=12h30m",
            "--cookie-refresh=1h",
            "--cookie-csrf-expire=5m",
            "--cookie-samesite=Strict",
            "--session-store-type=redis",
            "--redis-connection-url=redis://redis.auth:6379/2",
            "--http-address=http://:4180",
            "--reverse-proxy",
            "--trusted-proxy-ip=10.0.0.0/8",
            "--skip-jwt-bearer-tokens",
            "--extra-jwt-issuers=https://ci.example=ci,https://ci.example=ci2",
            "--client-id=portcullis",
            "--oidc-extra-audience=kubectl",
            "--upstream=http://app:8080/api/",
            "--upstream-timeout=45s",
            "--cookie-name=_portcullis",
        ],
    );
    let v = table(&t);
    assert_eq!(get(&v, "session.lifetime").unwrap().as_str(), Some("750m"));
    assert_eq!(get(&v, "cookie.csrf_expire").unwrap().as_str(), Some("5m"));
    assert_eq!(get(&v, "cookie.samesite").unwrap().as_str(), Some("strict"));
    assert_eq!(get(&v, "session.store").unwrap().as_str(), Some("redis"));
    assert_eq!(
        get(&v, "redis.url").unwrap().as_str(),
        Some("redis://redis.auth:6379/2")
    );
    assert_eq!(
        get(&v, "server.listen").unwrap().as_str(),
        Some("0.0.0.0:4180")
    );
    assert_eq!(strs(get(&v, "server.trusted_proxies")), ["10.0.0.0/8"]);
    assert_eq!(get(&v, "bearer.enabled").unwrap().as_bool(), Some(true));
    assert_eq!(strs(get(&v, "bearer.audiences")), ["portcullis", "kubectl"]);
    let x = &get(&v, "bearer.extra_issuers").unwrap().as_array().unwrap()[0];
    assert_eq!(strs(x.get("audiences")), ["ci", "ci2"]);
    let up = &v["upstreams"].as_array().unwrap()[0];
    assert_eq!(
        (
            up["path"].as_str(),
            up["url"].as_str(),
            up["timeout"].as_str()
        ),
        (Some("/api"), Some("http://app:8080"), Some("45s"))
    );
    assert!(t.toml.contains("no periodic refresh"));
    for zero in [
        "--cookie-expire=0",
        "--cookie-expire=30s",
        "--cookie-expire=7d",
    ] {
        let t = run(None, &[], &[zero]);
        assert!(
            untranslated(&t).iter().any(|u| u == "--cookie-expire"),
            "{zero}"
        );
    }
    // TLS: HTTPS on the https address; a separate HTTP listener cannot be kept.
    let t = run(
        None,
        &[],
        &[
            "--tls-cert-file=/c.pem",
            "--tls-key-file=/k.pem",
            "--https-address=:8443",
            "--http-address=:8080",
        ],
    );
    let v = table(&t);
    assert_eq!(
        get(&v, "server.listen").unwrap().as_str(),
        Some("0.0.0.0:8443")
    );
    assert_eq!(flagged(&t), ["--http-address"]);
    let t = run(
        None,
        &[],
        &[
            "--session-store-type=redis",
            "--redis-use-cluster",
            "--redis-cluster-connection-urls=redis://r0:6379,redis://r1:6379",
        ],
    );
    assert_eq!(
        strs(get(&table(&t), "redis.nodes")),
        ["redis://r0:6379", "redis://r1:6379"]
    );
    assert_eq!(
        get(&table(&t), "redis.mode").unwrap().as_str(),
        Some("cluster")
    );
}

#[test]
fn odd_inputs() {
    let err = translate(&Sources {
        file: Some("cookie_secret = S3CRET-unquoted\n".into()),
        ..Sources::default()
    })
    .unwrap_err();
    assert!(
        !err.to_string().contains("S3CRET") && err.to_string().contains("line 1"),
        "{err}"
    );
    assert_eq!(
        translate(&Sources {
            args: args(&["--client-id"]),
            ..Sources::default()
        })
        .unwrap_err(),
        InputError::MissingValue("client-id".into())
    );
    let t = run(
        Some("cookie_expire = 5\nemail_domains = [1]\n"),
        &[("OAUTH2_PROXY_COOKIE_SECURE", "yes")],
        &["--cookie-refresh=soon", "--", "x"],
    );
    let got = untranslated(&t);
    for want in [
        "config file `cookie_expire`",
        "config file `email_domains`",
        "OAUTH2_PROXY_COOKIE_SECURE",
        "--cookie-refresh",
        "a positional argument",
    ] {
        assert!(got.iter().any(|g| g == want), "{want} not in {got:?}");
    }
    table(&t);
    // Defaults given explicitly need nothing.
    let t = run(
        None,
        &[],
        &[
            "--provider=oidc",
            "--pass-host-header=true",
            "--cookie-path=/",
            "--approval-prompt=force",
        ],
    );
    assert!(
        !untranslated(&t).iter().any(|u| u.starts_with("--pass")
            || u.starts_with("--cookie")
            || u.starts_with("--approval")),
        "{:?}",
        t.untranslated
    );
    let t = run(
        None,
        &[],
        &[
            "--cookie-path=/app",
            "--pass-access-token",
            "--trusted-ip=10.0.0.1",
            "--http-address=unix:///tmp/s",
        ],
    );
    assert_eq!(
        untranslated(&t)
            .iter()
            .filter(|u| u.starts_with("--"))
            .count(),
        4,
        "{:?}",
        t.untranslated
    );
    let t = run(
        None,
        &[],
        &[
            "--redirect-url=/oauth2/callback",
            "--cookie-domain=com",
            "--cookie-domain=.ok.example",
            "--cookie-expire=1m",
        ],
    );
    let got = flagged(&t);
    assert_eq!(
        got,
        [
            "--redirect-url",
            "--cookie-domain entry \"com\"",
            "--cookie-expire",
        ],
        "{:?}",
        t.untranslated
    );
    assert_eq!(strs(get(&table(&t), "cookie.domains")), [".ok.example"]);
    let t = run(None, &[], &["--session-store-type=redis"]);
    assert!(
        untranslated(&t)
            .iter()
            .any(|u| u == "redis_connection_url (not set)")
    );
    let t = run(
        None,
        &[("OAUTH2_PROXY_REDIS_PASSWORD", "S3CRET-master")],
        &[
            "--session-store-type=redis",
            "--redis-use-sentinel",
            "--redis-sentinel-master-name=mymaster",
            "--redis-sentinel-connection-urls=redis://s0:26379,redis://s1:26379",
        ],
    );
    let v = table(&t);
    assert_eq!(get(&v, "redis.mode").unwrap().as_str(), Some("sentinel"));
    assert_eq!(
        get(&v, "redis.sentinel_master").unwrap().as_str(),
        Some("mymaster")
    );
    assert_eq!(
        strs(get(&v, "redis.nodes")),
        ["redis://s0:26379", "redis://s1:26379"]
    );
    assert_eq!(
        t.env.last().map(|e| e.var.as_str()),
        Some("PORTCULLIS_REDIS__URL")
    );
    assert!(!format!("{t:?}").contains("S3CRET"));
    let t = run(
        Some("email_domains = []\n"),
        &[("OAUTH2_PROXY_CLIENT_ID", "")],
        &[],
    );
    let got = untranslated(&t);
    assert!(
        got.iter().any(|u| u == "email_domains (not set)")
            && got.iter().any(|u| u == "client_id (not set)"),
        "{got:?}"
    );
}
