//! Reverse-proxy mode for several sites behind one central auth host: one Portcullis
//! serves `c1.example.test` and `c2.example.test` (`[[upstreams]]` to the stand-in
//! dashboard) and `auth.example.test`, where `oidc.redirect_url` points. A user who
//! starts on c1 comes back to c1, on the exact URL (issue 15, item 7); the host and
//! scheme come from forwarded headers only from trusted proxies, and the redirect
//! whitelist still decides.

#![allow(clippy::unwrap_used)]

use portcullis_e2e::browser::Browser;
use portcullis_e2e::client::{Agent, http};
use portcullis_e2e::dashboard::Dashboard;
use portcullis_e2e::idp::{CLIENT_ID, Idp, IdpOptions};
use portcullis_e2e::portcullis_server::{Options, Portcullis};
use reqwest::StatusCode;

/// Portcullis proxying `/` to the dashboard, its auth host `auth.example.test`
/// (the test default), with `extra` TOML.
async fn portcullis(idp: &Idp, app: &Dashboard, extra: &str) -> Portcullis {
    Portcullis::start(Options::new(&idp.issuer).with(&format!(
        "[[upstreams]]\npath = \"/\"\nurl = \"http://127.0.0.1:{}\"\n{extra}",
        app.port
    )))
    .await
}

fn site(p: &Portcullis, name: &str) -> String {
    format!("http://{name}.example.test:{}", p.addr.port())
}

fn rd(url: &str) -> String {
    url::form_urlencoded::byte_serialize(url.as_bytes()).collect()
}

/// GET as a browser navigation (no session), with extra headers; the Location.
async fn sign_in_redirect(url: &str, headers: &[(&str, &str)]) -> String {
    let mut req = http().get(url).header("accept", "text/html");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND, "{url}");
    r.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn browser_returns_to_the_site_it_started_on() {
    let Some(idp) = Idp::start(IdpOptions::default()).await else {
        return;
    };
    let app = Dashboard::start("app", &idp.issuer, CLIENT_ID).await;
    let p = portcullis(&idp, &app, "").await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    let c1 = site(&p, "c1");
    let target = format!("{c1}/whoami?tab=pods&ns=a%2Cb");
    browser.goto(&target).await;
    browser.find("#sign-in").await;
    assert_eq!(
        browser.url().await,
        format!("{c1}/oauth2/sign_in?rd={}", rd(&target))
    );
    browser.click("#sign-in").await;
    browser.find("#login").await;
    assert!(browser.url().await.starts_with(&idp.issuer));
    browser.type_into("#login", "alice@example.test").await;
    browser.type_into("#password", "alice-password").await;
    browser.click("#submit").await;
    // The callback ran on the auth host, and sent the browser back to c1.
    browser.find("#user").await;
    assert_eq!(browser.url().await, target);
    assert_eq!(browser.text("#user").await, "alice@example.test");
    assert_eq!(browser.text("#verified").await, "yes");
    // The session (cookie domain .example.test) covers the other site too.
    let c2 = format!("{}/whoami", site(&p, "c2"));
    browser.goto(&c2).await;
    browser.find("#user").await;
    assert_eq!(browser.url().await, c2);
    assert_eq!(browser.text("#user").await, "alice@example.test");
    browser.quit().await;
}

#[tokio::test]
async fn sign_in_target_per_host() {
    let Some(idp) = Idp::start(IdpOptions::default()).await else {
        return;
    };
    let app = Dashboard::start("app", &idp.issuer, CLIENT_ID).await;
    let p = portcullis(&idp, &app, "").await;
    let (c1, c2) = (site(&p, "c1"), site(&p, "c2"));

    // Another site: the absolute URL, so the auth host's callback can send the user
    // back; a login started there lands on it.
    let target = format!("{c2}/x/y?z=1,2");
    let location = sign_in_redirect(&target, &[]).await;
    assert_eq!(location, format!("/oauth2/sign_in?rd={}", rd(&target)));
    let mut agent = Agent::new();
    let landing = agent
        .login(
            &format!("{c2}/oauth2/start?rd={}", rd(&target)),
            "alice@example.test",
            "alice-password",
        )
        .await;
    assert_eq!(landing.status, StatusCode::FOUND, "{}", landing.body);
    assert_eq!(landing.location.as_deref(), Some(target.as_str()));

    // The auth host itself: the path and query, as before.
    let location = sign_in_redirect(&format!("{}/x/y?z=1", p.public_url), &[]).await;
    assert_eq!(location, "/oauth2/sign_in?rd=%2Fx%2Fy%3Fz%3D1");

    // Not from a trusted proxy: X-Forwarded-Host/-Proto are ignored.
    let location = sign_in_redirect(
        &format!("{c1}/p"),
        &[
            ("x-forwarded-host", "evil.example.test"),
            ("x-forwarded-proto", "https"),
        ],
    )
    .await;
    assert_eq!(
        location,
        format!("/oauth2/sign_in?rd={}", rd(&format!("{c1}/p")))
    );

    // A host off the redirect whitelist gets an rd that /oauth2/start refuses: the
    // login lands on the default target, not there.
    let host = format!("elsewhere.test:{}", p.addr.port());
    let off_list = format!("http://{host}/p");
    let location = sign_in_redirect(
        &format!("http://127.0.0.1:{}/p", p.addr.port()),
        &[("host", &host)],
    )
    .await;
    assert_eq!(location, format!("/oauth2/sign_in?rd={}", rd(&off_list)));
    let mut agent = Agent::new();
    let landing = agent
        .login(
            &format!("{}/oauth2/start?rd={}", p.public_url, rd(&off_list)),
            "alice@example.test",
            "alice-password",
        )
        .await;
    assert_eq!(landing.location.as_deref(), Some("/"), "{}", landing.body);

    // Behind a trusted proxy: its X-Forwarded-Host/-Proto name the site.
    let q = portcullis(&idp, &app, "[server]\ntrusted_proxies = [\"127.0.0.1\"]").await;
    let location = sign_in_redirect(
        &format!("http://127.0.0.1:{}/p?q", q.addr.port()),
        &[
            ("x-forwarded-host", "c3.example.test"),
            ("x-forwarded-proto", "https"),
        ],
    )
    .await;
    assert_eq!(
        location,
        format!("/oauth2/sign_in?rd={}", rd("https://c3.example.test/p?q"))
    );
}
