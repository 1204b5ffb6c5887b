//! The login flow against the real OpenID provider, over HTTP: start → provider form →
//! callback → `/oauth2/auth`, and every way a request must be refused.

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
