//! Forward-auth (`/oauth2/forward_auth`) behind real Caddy running the
//! `deploy/caddy` snippet, each test once with Debian's Caddy 2.6.2 and once with
//! Caddy 2.11.7 (`debian_2_6`, `current_2_11`): a browser signs in through Caddy and
//! lands on the app with identity headers; scripts get a 401; smuggled identity
//! headers never reach the app, and a client's X-Original-URL does not pick a
//! `skip_auth` path. And, talking to Portcullis directly: forwarded headers from an
//! untrusted peer are ignored, Envoy-style path suffixes, policy parameters.

#![allow(clippy::unwrap_used)]

use portcullis_e2e::browser::Browser;
use portcullis_e2e::caddy::{Build, Caddy};
use portcullis_e2e::client::{Agent, http};
use portcullis_e2e::dashboard::Dashboard;
use portcullis_e2e::free_port;
use portcullis_e2e::idp::{CLIENT_ID, Idp, IdpOptions};
use portcullis_e2e::portcullis_server::{Options, Portcullis};
use reqwest::StatusCode;

struct Stack {
    idp: Idp,
    _app: Dashboard,
    _p: Portcullis,
    caddy: Caddy,
    app_url: String,
}

/// Caddy on one port serving `auth.example.test` (→ Portcullis) and
/// `app.example.test` (forward_auth → the dashboard).
async fn stack(build: Build, extra: &str) -> Option<Stack> {
    let idp = Idp::start(IdpOptions::default()).await?;
    let app = Dashboard::start("app", &idp.issuer, CLIENT_ID).await;
    let caddy_port = free_port();
    let p = Portcullis::start(
        Options {
            public_port: Some(caddy_port),
            ..Options::new(&idp.issuer)
        }
        .with(&format!(
            "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n{extra}"
        )),
    )
    .await;
    let sites = format!(
        r#"
http://auth.example.test:{caddy_port} {{
	reverse_proxy 127.0.0.1:{pport}
}}

http://app.example.test:{caddy_port} {{
	import portcullis
	reverse_proxy 127.0.0.1:{app}
}}
"#,
        pport = p.addr.port(),
        app = app.port,
    );
    let caddy = Caddy::start(build, caddy_port, p.addr.port(), &sites).await?;
    Some(Stack {
        app_url: format!("http://app.example.test:{caddy_port}"),
        idp,
        _app: app,
        _p: p,
        caddy,
    })
}

/// Runs a Caddy test once per [`Build`], as `<test>::debian_2_6` and
/// `<test>::current_2_11`.
macro_rules! each_caddy {
    ($test:ident) => {
        mod $test {
            use super::*;
            #[tokio::test]
            async fn debian_2_6() {
                super::$test(Build::Debian).await;
            }
            #[tokio::test]
            async fn current_2_11() {
                super::$test(Build::Current).await;
            }
        }
    };
}

each_caddy!(caddy_forward_auth_browser_login);
each_caddy!(caddy_forward_auth_contract);

async fn caddy_forward_auth_browser_login(build: Build) {
    let Some(s) = stack(build, "").await else {
        return;
    };
    let Some(browser) = Browser::start().await else {
        return;
    };
    let target = format!("{}/whoami?tab=pods", s.app_url);
    browser.goto(&target).await;
    // Caddy passed our 302 on: the sign-in page on the auth host, through Caddy.
    browser.find("#sign-in").await;
    let url = browser.url().await;
    assert!(
        url.starts_with(&format!(
            "http://auth.example.test:{}/oauth2/sign_in?rd=",
            s.caddy.port
        )),
        "{url}\n{}",
        s.caddy.log()
    );
    browser.click("#sign-in").await;
    browser.find("#login").await;
    assert!(browser.url().await.starts_with(&s.idp.issuer));
    browser.type_into("#login", "alice@example.test").await;
    browser.type_into("#password", "alice-password").await;
    browser.click("#submit").await;
    // Back at the original URL, served by the app with the identity Caddy copied.
    browser.find("#user").await;
    assert_eq!(browser.url().await, target);
    assert_eq!(browser.text("#user").await, "alice@example.test");
    assert_eq!(browser.text("#verified").await, "yes");
    assert_eq!(browser.text("#hdr-email").await, "alice@example.test");
    assert_eq!(
        browser.text("#hdr-groups").await,
        "platform-admins,developers"
    );
    browser.quit().await;
}

async fn caddy_forward_auth_contract(build: Build) {
    let Some(s) = stack(build, "[authz]\nskip_auth = [\"GET /public\"]").await else {
        return;
    };
    let app = &s.app_url;
    let client = http();

    // A browser without a session: 302 to sign-in with the full original URL as rd.
    let r = client
        .get(format!("{app}/x/y?z=1"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND, "{}", s.caddy.log());
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let want_rd: String =
        url::form_urlencoded::byte_serialize(format!("{app}/x/y?z=1").as_bytes()).collect();
    assert_eq!(
        location,
        format!(
            "http://auth.example.test:{}/oauth2/sign_in?rd={want_rd}",
            s.caddy.port
        )
    );
    // A script: 401 JSON, no redirect.
    let r = client
        .get(format!("{app}/api"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("location").is_none());

    // skip_auth is decided on Caddy's X-Forwarded-Uri: a client's X-Original-URL,
    // which Caddy passes on to Portcullis, naming a skipped path opens nothing else.
    portcullis_e2e::client::assert_original_url_opens_nothing(&client, app).await;

    // Sign in through Caddy's auth host, then smuggle identity headers.
    let mut bob = Agent::new();
    let auth_base = format!("http://auth.example.test:{}", s.caddy.port);
    let landing = bob.sign_in(&auth_base, "bob").await;
    assert_eq!(landing.status, StatusCode::FOUND, "{}", landing.body);
    let r = bob
        .get_with(
            &format!("{app}/headers.json"),
            &[
                ("x-auth-request-email", "mallory@evil.test"),
                ("x_auth_request_email", "mallory@evil.test"),
                ("X-Auth-Request-Groups", "platform-admins"),
                ("x_auth_request_groups", "platform-admins"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let seen: serde_json::Value = r.json().await.unwrap();
    let raw = seen["raw_headers"].as_array().unwrap();
    assert!(
        raw.iter().all(|p| {
            let v = p[1].as_str().unwrap();
            !v.contains("evil.test") && v != "platform-admins"
        }),
        "a smuggled header reached the app: {raw:?}"
    );
    assert_eq!(seen["headers"]["email"], "bob@example.test");
    assert_eq!(seen["headers"]["groups"], "developers");
    assert_eq!(seen["verified"], true);
}

/// Directly against Portcullis (no proxy in between): the peer is not trusted, so its
/// `X-Forwarded-*` headers are ignored; Envoy's path-suffix form; policy parameters.
#[tokio::test]
async fn forward_auth_trust_and_policy() {
    let Some(idp) = Idp::start(IdpOptions::default()).await else {
        return;
    };
    let p = Portcullis::start(Options::new(&idp.issuer)).await;
    let client = http();
    let fa = format!("{}/oauth2/forward_auth", p.public_url);

    // Untrusted peer: X-Forwarded-Uri/-Host are ignored; the sign-in carries no rd
    // built from them.
    let r = client
        .get(&fa)
        .header("x-forwarded-uri", "/steal?x=1")
        .header("x-forwarded-host", "evil.example.test")
        .header("x-forwarded-proto", "https")
        .header("x-original-url", "https://evil.example.test/steal")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(
        !location.contains("steal") && !location.contains("evil"),
        "{location}"
    );
    assert!(location.ends_with("/oauth2/sign_in?rd="), "{location}");

    // Trusted peer: the same headers build the rd.
    let q = Portcullis::start(
        Options::new(&idp.issuer).with("[server]\ntrusted_proxies = [\"127.0.0.1\"]"),
    )
    .await;
    let r = client
        .get(format!("{}/oauth2/forward_auth", q.public_url))
        .header("x-forwarded-uri", "/pods?ns=a,b")
        .header("x-forwarded-host", "dash.example.test")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("rd=https%3A%2F%2Fdash.example.test%2Fpods%3Fns%3Da%2Cb"),
        "{:?}",
        r.headers()["location"]
    );

    // A proxy that appends the app's query to ours (Caddy without the "?"): that
    // echo is not policy, so no 400.
    let r = client
        .get(format!("{}/oauth2/forward_auth?tab=pods", q.public_url))
        .header("x-forwarded-uri", "/ui?tab=pods")
        .header("x-forwarded-host", "dash.example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    // The same query without the echo is an unknown policy parameter.
    let r = client
        .get(format!("{}/oauth2/forward_auth?tab=pods", q.public_url))
        .header("x-forwarded-uri", "/ui")
        .header("x-forwarded-host", "dash.example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Envoy ext_authz: the original path after our prefix, original Host.
    let r = client
        .get(format!("{}/oauth2/forward_auth/ui/pods?ns=x", p.public_url))
        .header("host", "dash.example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("rd=http%3A%2F%2Fdash.example.test%2Fui%2Fpods%3Fns%3Dx"),
        "{:?}",
        r.headers()["location"]
    );

    // Policy parameters on forward-auth and on /oauth2/auth (bob: developers).
    let mut bob = Agent::new();
    bob.sign_in(&p.public_url, "bob").await;
    for (endpoint, ok) in [("forward_auth", 200), ("auth", 202)] {
        let url = |q: &str| format!("{}/oauth2/{endpoint}{q}", p.public_url);
        let table: &[(&str, u16)] = &[
            ("", ok),
            ("?allowed_groups=developers", ok),
            ("?allowed_groups=platform-admins", 403),
            ("?allowed_groups=platform-admins,developers", ok),
            ("?allowed_emails=bob@example.test", ok),
            ("?allowed_emails=alice@example.test", 403),
            (
                "?allowed_email_domains=example.test&allowed_groups=developers",
                ok,
            ),
            (
                "?allowed_email_domains=other.test&allowed_groups=developers",
                403,
            ),
            ("?allowed_groups=", 403),
            ("?allowed_group=developers", 400),
        ];
        for (query, want) in table {
            let r = bob.get(&url(query)).await;
            assert_eq!(r.status().as_u16(), *want, "{endpoint}{query}");
        }
    }
}
