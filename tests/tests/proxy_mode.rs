//! Reverse-proxy mode end to end: Portcullis in front of the stand-in dashboard
//! (a real Node HTTP server with a WebSocket echo), with the real test provider.
//!
//! - headless Chromium: sign-in page → provider → the upstream's page with a
//!   verified bearer token → a WebSocket echo through Portcullis → sign-out;
//! - over HTTP: header smuggling, hop-by-hop headers, our cookies never reaching
//!   the upstream, streamed bodies, 401 JSON for scripts, per-route policy,
//!   skip-auth routes, upstream down.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use portcullis_e2e::browser::Browser;
use portcullis_e2e::client::{Agent, http};
use portcullis_e2e::dashboard::Dashboard;
use portcullis_e2e::idp::{CLIENT_ID, Idp, IdpOptions};
use portcullis_e2e::portcullis_server::{Options, Portcullis};
use portcullis_e2e::{eventually, free_port};
use reqwest::StatusCode;

struct Stack {
    idp: Idp,
    _app: Dashboard,
    _p: Portcullis,
    base: String,
}

/// Portcullis on `app.example.test:PORT` proxying to the dashboard; `extra` TOML on top.
async fn stack(extra: &str) -> Option<Stack> {
    let idp = Idp::start(IdpOptions::default()).await?;
    let app = Dashboard::start("app", &idp.issuer, CLIENT_ID).await;
    let port = free_port();
    let base = format!("http://app.example.test:{port}");
    let opts = Options {
        port,
        ..Options::new(&idp.issuer)
    }
    .with(&format!(
        r#"
        [oidc]
        redirect_url = "{base}/oauth2/callback"
        [[upstreams]]
        path = "/"
        url = "http://127.0.0.1:{app}"
        [[upstreams]]
        path = "/admin"
        url = "http://127.0.0.1:{app}"
        allowed_groups = ["platform-admins"]
        [[upstreams]]
        path = "/down"
        url = "http://127.0.0.1:{closed}"
        timeout = "2s"
        {extra}
        "#,
        app = app.port,
        closed = free_port(),
    ));
    let p = Portcullis::start(opts).await;
    Some(Stack {
        idp,
        _app: app,
        _p: p,
        base,
    })
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn proxy_mode_http_contract() {
    let Some(s) = stack(
        r#"
        [authz]
        skip_auth = ["GET /public/.*"]
        "#,
    )
    .await
    else {
        return;
    };
    let base = &s.base;
    let client = http();

    // Unauthenticated browser navigation: to the sign-in page, with the path and
    // query as `rd`.
    let r = client
        .get(format!("{base}/whoami?x=1"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(location(&r), "/oauth2/sign_in?rd=%2Fwhoami%3Fx%3D1");
    // Scripts get a 401 with a JSON body, never a redirect.
    for (name, value) in [
        ("accept", "application/json"),
        ("x-requested-with", "XMLHttpRequest"),
        ("sec-fetch-mode", "cors"),
    ] {
        let r = client
            .get(format!("{base}/api/things"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name}: {value}");
        assert!(r.headers().get("location").is_none());
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "unauthenticated");
        assert!(!body["request_id"].as_str().unwrap().is_empty());
    }
    // The sign-in page links to the provider redirect with the same `rd`.
    let r = client
        .get(format!("{base}/oauth2/sign_in?rd=%2Fwhoami%3Fx%3D1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("id=\"sign-in\""), "{page}");
    assert!(
        page.contains("oauth2&#x2f;start?rd=%2Fwhoami%3Fx%3D1"),
        "{page}"
    );
    // …and refuses to link onwards to a foreign `rd`.
    let page = client
        .get(format!("{base}/oauth2/sign_in?rd=https://evil.test/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("evil"), "{page}");

    // Skip-auth routes: the decoded path only, never the query or a fragment.
    let r = client
        .get(format!("{base}/public/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "skip-auth route");
    for path in [
        "/admin?x=/public/a",
        "/x%23/public/a",
        "/public/../whoami",
        "/public/%2e%2e/whoami",
    ] {
        let r = client
            .get(format!("{base}{path}"))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FOUND, "{path} needs sign-in");
    }
    let r = client
        .post(format!("{base}/public/app.js"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "method is part of the rule"
    );

    // Sign in as bob through the proxy host.
    let mut bob = Agent::new();
    let landing = bob.sign_in(base, "bob").await;
    assert_eq!(landing.status, StatusCode::FOUND, "{}", landing.body);

    // Header smuggling: none of these reaches the upstream.
    let smuggled = [
        "X-Auth-Request-Email",
        "X_Auth_Request_Email",
        "x-auth-request-user",
        "X-Auth-Request-Groups",
        "x-forwarded-email",
        "X_Forwarded_Email",
        "X-Forwarded-User",
        "X-Forwarded-Groups",
        "X-Forwarded-Preferred-Username",
        "X-Forwarded-Uri",
        "X-Original-URL",
        "Forwarded",
        "X-Real-Ip",
    ];
    let mut req = bob
        .http
        .get(format!("{base}/headers.json"))
        .header("cookie", format!("{}; app_pref=dark", bob.site.header()))
        .header("x-forwarded-for", "6.6.6.6")
        .header("connection", "keep-alive, X-Hop-Secret")
        .header("x-hop-secret", "hop")
        .header("x-app-header", "kept");
    for name in smuggled {
        req = req.header(name, "mallory@evil.test");
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let seen: serde_json::Value = r.json().await.unwrap();
    let raw: Vec<(String, String)> = seen["raw_headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let values = |name: &str| -> Vec<String> {
        raw.iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    };
    assert!(
        raw.iter().all(|(_, v)| !v.contains("evil.test")),
        "a smuggled header reached the upstream: {raw:?}"
    );
    assert!(
        raw.iter().all(|(n, _)| !n.contains('_')),
        "underscore variants reached the upstream: {raw:?}"
    );
    assert_eq!(values("x-auth-request-email"), vec!["bob@example.test"]);
    assert_eq!(values("x-auth-request-user"), vec!["bob@example.test"]);
    assert_eq!(values("x-auth-request-groups"), vec!["developers"]);
    assert_eq!(
        seen["verified"], true,
        "the upstream verified the bearer token"
    );
    assert_eq!(seen["claims"]["email"], "bob@example.test");
    // Untrusted client: its X-Forwarded-For is replaced by the peer.
    assert_eq!(values("x-forwarded-for"), vec!["127.0.0.1"]);
    assert_eq!(values("x-forwarded-proto"), vec!["http"]);
    assert_eq!(
        values("x-forwarded-host"),
        vec![base.trim_start_matches("http://").to_owned()]
    );
    // Hop-by-hop headers, and those `Connection` names, stop here.
    assert!(values("x-hop-secret").is_empty(), "{raw:?}");
    assert_eq!(values("x-app-header"), vec!["kept"]);
    // Our cookies never reach the upstream; the app's own do.
    assert_eq!(values("cookie"), vec!["app_pref=dark"]);

    // Streaming request and response bodies: 8 MiB up, digest back.
    let body: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let digest = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let r = bob
        .http
        .post(format!("{base}/upload"))
        .header("cookie", bob.site.header())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["bytes"], 8 * 1024 * 1024);
    assert_eq!(v["sha256"], digest);

    // Per-route policy: /admin needs platform-admins; bob gets a 403 page.
    let r = bob.get(&format!("{base}/admin/panel")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Access denied") && page.contains("request-id"),
        "{page}"
    );
    let mut alice = Agent::new();
    alice.sign_in(base, "alice").await;
    let r = alice.get(&format!("{base}/admin/whoami?format=json")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["headers"]["email"],
        "alice@example.test"
    );

    // Upstream down: a 502 page with the request id, promptly.
    let started = std::time::Instant::now();
    let r = bob.get(&format!("{base}/down/x")).await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert!(started.elapsed() < Duration::from_secs(10));
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(r.text().await.unwrap().contains(&rid));

    // Our namespace is not proxied.
    let r = bob.get(&format!("{base}/oauth2/nope")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    drop(s.idp);
}

#[tokio::test]
async fn browser_proxy_mode_login_websocket_sign_out() {
    let Some(s) = stack("").await else {
        return;
    };
    let Some(browser) = Browser::start().await else {
        return;
    };
    let base = &s.base;

    // The upstream page needs a sign-in: the sign-in page first.
    browser.goto(&format!("{base}/ws.html")).await;
    browser.find("#sign-in").await;
    assert!(
        browser
            .url()
            .await
            .contains("/oauth2/sign_in?rd=%2Fws.html"),
        "{}",
        browser.url().await
    );
    assert!(!browser.text("#request-id").await.is_empty());
    assert_eq!(browser.text("main h1").await, "Sign in");
    assert!(browser.source().await.contains("<html lang=\"en\">"));
    browser.click("#sign-in").await;
    browser.find("#login").await;
    assert!(browser.url().await.starts_with(&s.idp.issuer));
    browser.type_into("#login", "alice@example.test").await;
    browser.type_into("#password", "alice-password").await;
    browser.click("#submit").await;

    // Back on the upstream's page, whose script opens a WebSocket through Portcullis.
    browser.find("#ws-status").await;
    assert_eq!(browser.url().await, format!("{base}/ws.html"));
    eventually("websocket echo", Duration::from_secs(15), || async {
        (browser.text("#ws-status").await == "echoed").then_some(())
    })
    .await;
    let log = browser.text("#ws-log").await;
    assert!(
        log.contains("hello alice@example.test"),
        "the upgrade request carried the identity: {log}"
    );
    assert!(log.contains("echo:ping-42"), "{log}");

    // A page served by the upstream with the bearer token it verified.
    browser.goto(&format!("{base}/whoami")).await;
    browser.find("#user").await;
    assert_eq!(browser.text("#user").await, "alice@example.test");
    assert_eq!(browser.text("#verified").await, "yes");

    // An error page of ours, rendered by the browser: request id, language, a main
    // landmark and a heading; no external resources (the CSP forbids them).
    browser.goto(&format!("{base}/oauth2/nope")).await;
    browser.find("main h1").await;
    assert_eq!(browser.text("main h1").await, "Not found");
    assert!(!browser.text("#request-id").await.is_empty());
    let source = browser.source().await;
    assert!(source.contains("<html lang=\"en\">"), "{source}");
    assert!(
        !source.contains("src=") && !source.contains("<link"),
        "{source}"
    );

    // Sign out; the upstream asks for a sign-in again.
    browser
        .goto(&format!("{base}/oauth2/sign_out?rd=%2Fwhoami"))
        .await;
    browser.find("#sign-in").await;
    assert!(browser.url().await.contains("/oauth2/sign_in"));
    browser.quit().await;
}
