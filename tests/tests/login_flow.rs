//! The login flow against the real OpenID provider, over HTTP: start → provider form →
//! callback → `/oauth2/auth`, and every way a request must be refused.

#![allow(clippy::unwrap_used)]

use portcullis_e2e::client::Agent;
use portcullis_e2e::dashboard::Dashboard;
use portcullis_e2e::idp::{CLIENT_ID, Idp, IdpOptions};
use portcullis_e2e::portcullis_server::{Options, Portcullis};
use reqwest::StatusCode;

async fn stack(extra: &str) -> Option<(Idp, Portcullis)> {
    let idp = Idp::start(IdpOptions::default()).await?;
    let p = Portcullis::start(Options::new(&idp.issuer).with(extra)).await;
    Some((idp, p))
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A full login as alice ends at the requested dashboard URL, and `/oauth2/auth` then
/// answers 202 with a bearer token the provider's JWKS verifies and the identity
/// headers.
#[tokio::test]
async fn login_then_auth_202_with_verified_bearer() {
    let Some((idp, p)) = stack("").await else {
        return;
    };
    let dashboard = Dashboard::start("c1", &idp.issuer, CLIENT_ID).await;
    let mut agent = Agent::new();
    let rd = "http://dashboard.c1.example.test:8080/#/workloads?namespace=default";
    let start = format!("{}/oauth2/start?rd={}", p.public_url, urlencode(rd));
    let landing = agent
        .login(&start, "alice@example.test", "alice-password")
        .await;
    assert_eq!(landing.status, StatusCode::FOUND, "{}", landing.body);
    assert_eq!(landing.location.as_deref(), Some(rd));
    assert!(
        agent.site.get("_portcullis").is_some(),
        "session cookie set: {:?}",
        agent.site.names()
    );
    assert!(
        !agent.site.names().iter().any(|n| n.contains("_csrf_")),
        "the login attempt's cookie is cleared"
    );

    let r = agent.get(&format!("{}/oauth2/auth", p.public_url)).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        header(&r, "x-auth-request-user").as_deref(),
        Some("alice@example.test")
    );
    assert_eq!(
        header(&r, "x-auth-request-email").as_deref(),
        Some("alice@example.test")
    );
    assert_eq!(
        header(&r, "x-auth-request-groups").as_deref(),
        Some("platform-admins,developers")
    );
    assert_eq!(
        header(&r, "x-auth-request-preferred-username").as_deref(),
        Some("alice")
    );
    let bearer = header(&r, "authorization").expect("bearer token");
    assert!(bearer.starts_with("Bearer "), "{bearer}");
    assert!(
        r.headers().get("location").is_none(),
        "never a redirect on /oauth2/auth"
    );

    // Independent verification (jose, the provider's JWKS, iss and aud).
    let v = dashboard.verify(&bearer).await;
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["claims"]["email"], "alice@example.test");

    // userinfo agrees.
    let r = agent
        .get(&format!("{}/oauth2/userinfo", p.public_url))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let u: serde_json::Value = r.json().await.unwrap();
    assert_eq!(u["user"], "alice@example.test");
    assert_eq!(
        u["groups"],
        serde_json::json!(["platform-admins", "developers"])
    );
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn auth_status(agent: &mut Agent, p: &Portcullis) -> StatusCode {
    agent
        .get(&format!("{}/oauth2/auth", p.public_url))
        .await
        .status()
}

/// No cookie, a garbage cookie, a cookie sealed with an unknown key, a tampered
/// cookie, a session past its lifetime and one whose ID token expired: all 401,
/// never 500 and never a redirect.
#[tokio::test]
async fn refused_sessions_are_401() {
    use portcullis_session::{Key, Keyring, SessionState};
    // The head limit (431 above server.max_header_bytes) is tested in operations.rs;
    // here the 70 KB cookie must reach the session code.
    let Some((_idp, p)) = stack("[server]\nmax_header_bytes = 131072").await else {
        return;
    };
    let mut agent = Agent::new();
    assert_eq!(
        auth_status(&mut agent, &p).await,
        StatusCode::UNAUTHORIZED,
        "no cookie"
    );

    let landing = agent.sign_in(&p.public_url, "bob").await;
    assert_eq!(landing.status, StatusCode::FOUND);
    assert_eq!(auth_status(&mut agent, &p).await, StatusCode::ACCEPTED);
    let good = agent.site.get("_portcullis").unwrap().to_owned();

    let cases: Vec<(&str, String)> = vec![
        ("garbage", "not-a-session".into()),
        ("empty", String::new()),
        ("huge", "A".repeat(70_000)),
        ("truncated", good[..good.len() / 2].to_owned()),
        ("tampered", {
            let mut b = good.clone().into_bytes();
            let i = b.len() / 2;
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            String::from_utf8(b).unwrap()
        }),
        ("unknown key", {
            let other = Keyring::new(&[Key::generate().unwrap()]).unwrap();
            let session: SessionState = p.keyring().open_json("_portcullis", &good).unwrap();
            other.seal_json("_portcullis", &session).unwrap()
        }),
        ("session past its lifetime", {
            let mut session: SessionState = p.keyring().open_json("_portcullis", &good).unwrap();
            session.expires_at = 1_000;
            p.keyring().seal_json("_portcullis", &session).unwrap()
        }),
        ("expired ID token, no refresh token", {
            let mut session: SessionState = p.keyring().open_json("_portcullis", &good).unwrap();
            session.id_token_expires_at = 1_000;
            // Without a refresh token it cannot be renewed.
            session.refresh_token = None;
            p.keyring().seal_json("_portcullis", &session).unwrap()
        }),
        ("sealed for another cookie name", {
            let session: SessionState = p.keyring().open_json("_portcullis", &good).unwrap();
            p.keyring()
                .seal_json("_portcullis_csrf_x", &session)
                .unwrap()
        }),
    ];
    for (what, value) in cases {
        let mut a = Agent::new();
        a.site.set("_portcullis", &value);
        let r = a.get(&format!("{}/oauth2/auth", p.public_url)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert!(
            r.headers().get("authorization").is_none(),
            "{what}: no token leaks"
        );
        let r = a.get(&format!("{}/oauth2/userinfo", p.public_url)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what} (userinfo)");
    }

    // Rotation: a Portcullis with a new key first and the old one second still opens
    // the session; one without the old key does not.
    let rotated = Portcullis::start(Options {
        keys: vec![Key::generate().unwrap(), p.keys[0].clone()],
        ..Options::new(&_idp.issuer)
    })
    .await;
    assert_eq!(
        auth_status(&mut agent, &rotated).await,
        StatusCode::ACCEPTED,
        "previous key still opens"
    );
    let dropped = Portcullis::start(Options::new(&_idp.issuer)).await;
    assert_eq!(
        auth_status(&mut agent, &dropped).await,
        StatusCode::UNAUTHORIZED,
        "removed key no longer opens"
    );
}

/// `authz.allowed_groups`: eve (contractors) signs in, sees a 403 page, and
/// `/oauth2/auth` answers 403 (not 401, which would loop through the login); alice
/// passes. `authz.allowed_email_domains` likewise.
#[tokio::test]
async fn policy_denies_with_403() {
    let Some((idp, p)) = stack("[authz]\nallowed_groups = [\"developers\"]").await else {
        return;
    };
    let mut eve = Agent::new();
    let landing = eve.sign_in(&p.public_url, "eve").await;
    assert_eq!(landing.status, StatusCode::FORBIDDEN);
    assert!(
        landing.body.contains("Access denied") && landing.body.contains("request-id"),
        "{}",
        landing.body
    );
    assert_eq!(auth_status(&mut eve, &p).await, StatusCode::FORBIDDEN);

    let mut alice = Agent::new();
    alice.sign_in(&p.public_url, "alice").await;
    assert_eq!(auth_status(&mut alice, &p).await, StatusCode::ACCEPTED);

    let domains = Portcullis::start(
        Options::new(&idp.issuer).with("[authz]\nallowed_email_domains = [\"corp.example\"]"),
    )
    .await;
    assert_eq!(
        auth_status(&mut alice, &domains).await,
        StatusCode::UNAUTHORIZED,
        "other keys"
    );
    let same_key = Portcullis::start(Options {
        keys: p.keys.clone(),
        ..Options::new(&idp.issuer).with("[authz]\nallowed_email_domains = [\"corp.example\"]")
    })
    .await;
    assert_eq!(
        auth_status(&mut alice, &same_key).await,
        StatusCode::FORBIDDEN,
        "wrong email domain"
    );
}

/// A provider-side `email_verified: false` is refused at the callback.
#[tokio::test]
async fn unverified_email_is_refused() {
    let Some((_idp, p)) = stack("").await else {
        return;
    };
    let mut mallory = Agent::new();
    let landing = mallory.sign_in(&p.public_url, "mallory").await;
    assert_eq!(landing.status, StatusCode::FORBIDDEN, "{}", landing.body);
    assert!(mallory.site.get("_portcullis").is_none());
    assert_eq!(
        auth_status(&mut mallory, &p).await,
        StatusCode::UNAUTHORIZED
    );
}

/// A user in 150 groups has a 10 KB ID token: the session is split over chunk
/// cookies, joined on read, and a later, shorter session clears the stale chunks.
#[tokio::test]
async fn large_sessions_are_chunked() {
    let Some((_idp, p)) = stack("").await else {
        return;
    };
    let mut agent = Agent::new();
    agent.sign_in(&p.public_url, "grace").await;
    let names = agent.site.names();
    assert!(
        names.contains(&"_portcullis_0".to_owned()) && names.contains(&"_portcullis_2".to_owned()),
        "{names:?}"
    );
    assert!(!names.contains(&"_portcullis".to_owned()));
    let r = agent.get(&format!("{}/oauth2/auth", p.public_url)).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        header(&r, "x-auth-request-groups")
            .unwrap()
            .split(',')
            .count(),
        150
    );
    for (name, _) in names.iter().map(|n| (n, ())) {
        assert!(
            agent.site.get(name).unwrap().len() <= 3800,
            "chunk {name} fits a cookie"
        );
    }

    // Sign in again as bob in the same browser: one plain cookie, chunks expired.
    agent.sign_in(&p.public_url, "bob").await;
    let names = agent.site.names();
    assert!(names.contains(&"_portcullis".to_owned()), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("_portcullis_")),
        "stale chunks cleared: {names:?}"
    );
    let r = agent.get(&format!("{}/oauth2/auth", p.public_url)).await;
    assert_eq!(
        header(&r, "x-auth-request-user").as_deref(),
        Some("bob@example.test")
    );
}

/// Starting a sign-in clears the existing session first (no session fixation).
#[tokio::test]
async fn sign_in_clears_previous_session_and_sign_out_ends_it() {
    let Some((_idp, p)) = stack("").await else {
        return;
    };
    let mut agent = Agent::new();
    agent.sign_in(&p.public_url, "alice").await;
    assert_eq!(auth_status(&mut agent, &p).await, StatusCode::ACCEPTED);
    let r = agent.get(&format!("{}/oauth2/start", p.public_url)).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let cleared = r.headers().get_all("set-cookie").iter().any(|v| {
        v.to_str().unwrap().starts_with("_portcullis=;")
            && v.to_str().unwrap().contains("Max-Age=0")
    });
    assert!(cleared, "start expires the old session cookie");
    assert_eq!(auth_status(&mut agent, &p).await, StatusCode::UNAUTHORIZED);

    agent.sign_in(&p.public_url, "alice").await;
    assert_eq!(auth_status(&mut agent, &p).await, StatusCode::ACCEPTED);
    let r = agent
        .get(&format!("{}/oauth2/sign_out", p.public_url))
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(auth_status(&mut agent, &p).await, StatusCode::UNAUTHORIZED);
}

/// The provider down at start-up: Portcullis runs, `/ping` is 200, `/ready` and
/// logins are 503; once the provider appears, it becomes ready without a restart.
#[tokio::test]
async fn starts_unready_and_recovers_when_the_provider_appears() {
    if !portcullis_e2e::require(
        "tests/idp node modules",
        portcullis_e2e::idp::available(),
        "npm ci",
    ) {
        return;
    }
    let port = portcullis_e2e::free_port();
    let p = Portcullis::start_unready(Options::new(&format!("http://127.0.0.1:{port}"))).await;
    let mut agent = Agent::new();
    assert_eq!(
        agent.get(&format!("{}/ping", p.public_url)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        agent.get(&format!("{}/ready", p.public_url)).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let r = agent.get(&format!("{}/oauth2/start", p.public_url)).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(header(&r, "x-request-id").is_some());

    let idp = Idp::start(IdpOptions {
        port,
        ..Default::default()
    })
    .await
    .unwrap();
    let url = format!("{}/ready", p.public_url);
    portcullis_e2e::eventually("ready", std::time::Duration::from_secs(40), || {
        let mut a = agent.clone();
        let url = url.clone();
        async move { (a.get(&url).await.status() == StatusCode::OK).then_some(()) }
    })
    .await;
    let landing = agent.sign_in(&p.public_url, "bob").await;
    assert_eq!(landing.status, StatusCode::FOUND);
    drop(idp);
}

/// The provider rotates its signing key: the next login's ID token has an unknown
/// `kid`, Portcullis refetches the JWKS and the login succeeds.
#[tokio::test]
async fn jwks_is_refetched_on_unknown_kid() {
    let Some((idp, p)) = stack("").await else {
        return;
    };
    let mut agent = Agent::new();
    agent.sign_in(&p.public_url, "bob").await;
    let rotated = idp.rotate_keys().await;
    assert!(rotated["kid"].is_string(), "{rotated}");
    // The refetch is rate-limited to one per 10 s after the last fetch.
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    let landing = agent.sign_in(&p.public_url, "alice").await;
    assert_eq!(landing.status, StatusCode::FOUND, "{}", landing.body);
    let r = agent.get(&format!("{}/oauth2/auth", p.public_url)).await;
    assert_eq!(
        header(&r, "x-auth-request-user").as_deref(),
        Some("alice@example.test")
    );
}

/// `headers.token` and `headers.token_format`: Headlamp-style raw token in a custom
/// header, read by the same session.
#[tokio::test]
async fn token_header_is_configurable() {
    let Some((idp, p)) = stack("").await else {
        return;
    };
    let mut agent = Agent::new();
    agent.sign_in(&p.public_url, "bob").await;
    let headlamp = Portcullis::start(Options {
        keys: p.keys.clone(),
        ..Options::new(&idp.issuer)
            .with("[headers]\ntoken = \"X-Forwarded-Id-Token\"\ntoken_format = \"raw\"")
    })
    .await;
    let r = agent
        .get(&format!("{}/oauth2/auth", headlamp.public_url))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(r.headers().get("authorization").is_none());
    let raw = header(&r, "x-forwarded-id-token").unwrap();
    assert_eq!(raw.split('.').count(), 3, "a bare JWT, no scheme");
    let dashboard = Dashboard::start("c1", &idp.issuer, CLIENT_ID).await;
    assert_eq!(
        dashboard.verify(&format!("Bearer {raw}")).await["verified"],
        true
    );
}

/// Every application on the parent domain sends its cookies to us too. One holding
/// text that is not ASCII (UTF-8, or Latin-1 as some servers write it) must not hide
/// the session cookie beside it: it did, and every request was a 401 (a login loop).
#[tokio::test]
async fn foreign_cookies_that_are_not_ascii_do_not_hide_the_session() {
    let Some((_idp, p)) = stack("").await else {
        return;
    };
    let mut agent = Agent::new();
    let landing = agent.sign_in(&p.public_url, "bob").await;
    assert_eq!(landing.status, StatusCode::FOUND);
    let session = agent.site.get("_portcullis").unwrap().to_owned();
    for foreign in [&b"lang=Jos\xc3\xa9"[..], b"lang=Jos\xe9", b"n\xe4me=1"] {
        let mut value = foreign.to_vec();
        value.extend_from_slice(format!("; _portcullis={session}").as_bytes());
        let r = agent
            .http
            .get(format!("{}/oauth2/auth", p.public_url))
            .header(
                reqwest::header::COOKIE,
                reqwest::header::HeaderValue::from_bytes(&value).unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::ACCEPTED,
            "{}",
            String::from_utf8_lossy(foreign)
        );
    }
}
