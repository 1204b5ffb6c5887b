//! Through real nginx running `deploy/nginx/snippets`: an unauthenticated request ends
//! at the provider's login form; after login the dashboard receives a bearer token
//! that verifies against the provider's JWKS; a second cluster needs no new login.

#![allow(clippy::unwrap_used)]

use portcullis_e2e::client::{Agent, absolute};
use portcullis_e2e::stack::Clusters;
use reqwest::StatusCode;

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn nginx_auth_request_end_to_end() {
    let Some(s) = Clusters::start("").await else {
        return;
    };
    let port = s.nginx.port;
    let c1 = s.url("c1", "/whoami.json?x=1&y=2");
    let mut agent = Agent::new();

    // Unauthenticated: nginx asks Portcullis, gets 401, and sends the browser to the
    // provider's login (through /oauth2/start, proxied by nginx).
    let r = agent
        .get_with(
            &c1,
            &[
                ("x-auth-request-user", "mallory"),
                ("authorization", "Bearer forged"),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::FOUND,
        "nginx log: {}",
        s.nginx.error_log()
    );
    let to_idp = location(&r);
    assert!(
        to_idp.starts_with(&s.idp.issuer),
        "ends at the provider: {to_idp}"
    );
    let form = agent.follow_to_form(to_idp).await;
    let html = agent
        .http
        .get(&form)
        .header("cookie", agent.idp.header_for(&form))
        .send()
        .await
        .unwrap();
    assert!(html.text().await.unwrap().contains("Log in to Example IdP"));

    // Login; the callback goes through nginx on auth.example.test and returns to the
    // original URL, query string intact.
    let callback = agent
        .submit_login(&form, "alice@example.test", "alice-password")
        .await;
    assert!(
        callback.starts_with(&format!("http://auth.example.test:{port}/oauth2/callback")),
        "{callback}"
    );
    let landing = agent.finish_login(&callback).await;
    assert_eq!(landing.status, StatusCode::FOUND, "{}", landing.body);
    assert_eq!(landing.location.as_deref(), Some(c1.as_str()));

    // The dashboard sees a verified bearer token and the identity headers, and never
    // the client's forged ones.
    let r = agent
        .get_with(
            &c1,
            &[
                ("x-auth-request-user", "mallory"),
                ("authorization", "Bearer forged"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let who: serde_json::Value = r.json().await.unwrap();
    assert_eq!(who["cluster"], "c1");
    assert_eq!(who["verified"], true, "{who}");
    assert_eq!(who["claims"]["email"], "alice@example.test");
    assert_eq!(who["headers"]["user"], "alice@example.test");
    assert_eq!(who["headers"]["groups"], "platform-admins,developers");
    assert_eq!(who["path"], "/whoami.json?x=1&y=2");

    // Cluster c2: same parent-domain session, no login.
    let c2 = s.url("c2", "/whoami.json");
    let r = agent.get(&c2).await;
    assert_eq!(r.status(), StatusCode::OK);
    let who: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (who["cluster"].as_str(), who["verified"].as_bool()),
        (Some("c2"), Some(true))
    );

    // Sign-out on the dashboard host ends access to both.
    let r = agent
        .get(&format!(
            "http://dashboard.c1.example.test:{port}/oauth2/sign_out?rd={}",
            url::form_urlencoded::byte_serialize(c2.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(location(&r), c2);
    for url in [&c1, &c2] {
        let r = agent.get(url).await;
        assert_eq!(r.status(), StatusCode::FOUND, "{url} needs a login again");
        assert!(absolute(url, &location(&r)).starts_with(&s.idp.issuer));
    }
}

/// A user in 150 groups (10 KB ID token, chunked session cookies) passes through
/// nginx with the documented buffer settings.
#[tokio::test]
async fn nginx_large_tokens() {
    let Some(s) = Clusters::start("").await else {
        return;
    };
    let c1 = s.url("c1", "/whoami.json");
    let mut agent = Agent::new();
    let r = agent.get(&c1).await;
    let form = agent.follow_to_form(location(&r)).await;
    let callback = agent
        .submit_login(&form, "grace@example.test", "grace-password")
        .await;
    agent.finish_login(&callback).await;
    let r = agent.get(&c1).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "nginx log: {}",
        s.nginx.error_log()
    );
    let who: serde_json::Value = r.json().await.unwrap();
    assert_eq!(who["verified"], true);
    assert_eq!(who["claims"]["groups"].as_array().unwrap().len(), 150);
}

/// A policy denial is a 403 from nginx, not a login loop.
#[tokio::test]
async fn nginx_denied_user_gets_403() {
    let Some(s) = Clusters::start("[authz]\nallowed_groups = [\"platform-admins\"]").await else {
        return;
    };
    let c1 = s.url("c1", "/");
    let mut agent = Agent::new();
    let r = agent.get(&c1).await;
    let form = agent.follow_to_form(location(&r)).await;
    let callback = agent
        .submit_login(&form, "bob@example.test", "bob-password")
        .await;
    assert_eq!(
        agent.finish_login(&callback).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(agent.get(&c1).await.status(), StatusCode::FORBIDDEN);
}

/// A refresh during nginx's auth subrequest reaches the browser: the deploy snippets
/// pass Portcullis' `Set-Cookie` on, so the browser holds the new session (cookie
/// store) and the dashboard gets the fresh token.
#[tokio::test]
async fn nginx_carries_refreshed_cookie_to_the_browser() {
    let idp = portcullis_e2e::idp::IdpOptions {
        id_token_ttl: Some(9),
        ..Default::default()
    };
    let Some(s) = Clusters::start_with(idp, "[session]\nrefresh_before = \"6s\"").await else {
        return;
    };
    let c1 = s.url("c1", "/whoami.json");
    let mut agent = Agent::new();
    let r = agent.get(&c1).await;
    let form = agent.follow_to_form(location(&r)).await;
    let callback = agent
        .submit_login(&form, "alice@example.test", "alice-password")
        .await;
    agent.finish_login(&callback).await;
    let first = agent
        .get(&c1)
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let before = agent.site.get("_portcullis").unwrap().to_owned();
    let refreshes = s.idp.refreshes().await;

    tokio::time::sleep(std::time::Duration::from_millis(6500)).await; // refresh due (a third of 9 s left)
    let r = agent.get(&c1).await;
    assert_eq!(r.status(), StatusCode::OK);
    let who: serde_json::Value = r.json().await.unwrap();
    assert_eq!(who["verified"], true);
    assert!(
        who["claims"]["exp"].as_u64() > first["claims"]["exp"].as_u64(),
        "a fresh token upstream"
    );
    assert_eq!(s.idp.refreshes().await - refreshes, 1);
    let after = agent.site.get("_portcullis").unwrap();
    assert_ne!(
        after, before,
        "the browser received the refreshed session cookie through nginx"
    );
}
