//! The login flow's defences against the real OpenID provider, over HTTP: hostile
//! redirects never leave the whitelist, forged or replayed state is refused, and
//! parallel logins in one browser do not clobber each other.

#![allow(clippy::unwrap_used)]

use portcullis_e2e::client::Agent;
use portcullis_e2e::idp::{Idp, IdpOptions};
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

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Hostile `rd` values never produce a `Location` outside the whitelist — at start
/// (remembered through the login and re-checked at the callback) and at sign-out.
#[tokio::test]
async fn hostile_redirects_never_leave_the_whitelist() {
    let Some((_idp, p)) = stack("").await else {
        return;
    };
    let hostile = [
        "https://evil.com/",
        "//evil.com",
        "/\\evil.com",
        "\\/evil.com",
        "/%09/evil.com",
        "/%2f%2fevil.com",
        "/./\\evil.com",
        "/../evil.com",
        "https://dashboard.example.test@evil.com/",
        "https://evil.com/.example.test",
        "https://evil.com?.example.test",
        "https://badexample.test/",
        "https://example.test.evil.com/",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "http:evil.com",
        "https:/\\evil.com",
        "\thttps://evil.com",
        "https://evil.com\r\nSet-Cookie: x=y",
        "https://exämple.example.test/",
        "https://0x7f.1/",
        "ftp://dashboard.c1.example.test/",
    ];
    let mut agent = Agent::new();
    for rd in hostile {
        let r = agent
            .get(&format!(
                "{}/oauth2/sign_out?rd={}",
                p.public_url,
                urlencode(rd)
            ))
            .await;
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(
            header(&r, "location").as_deref(),
            Some("/"),
            "sign_out rd={rd:?}"
        );
    }
    for rd in hostile {
        let landing = agent
            .login(
                &format!("{}/oauth2/start?rd={}", p.public_url, urlencode(rd)),
                "bob@example.test",
                "bob-password",
            )
            .await;
        assert_eq!(landing.status, StatusCode::FOUND, "rd={rd:?}");
        assert_eq!(landing.location.as_deref(), Some("/"), "callback rd={rd:?}");
    }
    // Untrusted peers cannot pick the target through X-Auth-Request-Redirect either.
    let r = agent
        .get_with(
            &format!("{}/oauth2/start", p.public_url),
            &[(
                "x-auth-request-redirect",
                "https://dashboard.c1.example.test/from-header",
            )],
        )
        .await;
    let form = agent.follow_to_form(header(&r, "location").unwrap()).await;
    let callback = agent
        .submit_login(&form, "bob@example.test", "bob-password")
        .await;
    assert_eq!(
        agent.finish_login(&callback).await.location.as_deref(),
        Some("/")
    );

    // Whitelisted targets pass unchanged.
    for rd in [
        "/",
        "/path?x=%2F",
        "http://dashboard.c2.example.test:8443/#/pods",
    ] {
        let r = agent
            .get(&format!(
                "{}/oauth2/sign_out?rd={}",
                p.public_url,
                urlencode(rd)
            ))
            .await;
        assert_eq!(header(&r, "location").as_deref(), Some(rd));
    }
}

/// The callback refuses a missing or foreign login cookie and a replayed code; two
/// logins in parallel (two tabs) both complete, in either order.
#[tokio::test]
async fn csrf_and_parallel_logins() {
    let Some((_idp, p)) = stack("").await else {
        return;
    };
    let start = format!("{}/oauth2/start?rd=%2Fone", p.public_url);
    let mut agent = Agent::new();

    // Tab 1 and tab 2 start; tab 2 finishes first, then tab 1.
    let form1 = agent.begin_login(&start).await;
    let form2 = agent
        .begin_login(&format!("{}/oauth2/start?rd=%2Ftwo", p.public_url))
        .await;
    let csrf: Vec<String> = agent
        .site
        .names()
        .into_iter()
        .filter(|n| n.contains("_csrf_"))
        .collect();
    assert_eq!(csrf.len(), 2, "one cookie per attempt: {csrf:?}");
    let cb2 = agent
        .submit_login(&form2, "bob@example.test", "bob-password")
        .await;
    let cb1 = agent
        .submit_login(&form1, "bob@example.test", "bob-password")
        .await;
    assert_eq!(
        agent.finish_login(&cb2).await.location.as_deref(),
        Some("/two")
    );
    assert_eq!(
        agent.finish_login(&cb1).await.location.as_deref(),
        Some("/one")
    );

    // Replaying a callback: its login cookie is gone → 400, and the session stays.
    let replay = agent.finish_login(&cb1).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(replay.body.contains("Sign in again"));

    // A callback reached in another browser (no login cookie) → 400.
    let mut other = Agent::new();
    let form = other.begin_login(&start).await;
    let cb = other
        .submit_login(&form, "bob@example.test", "bob-password")
        .await;
    let mut thief = Agent::new();
    assert_eq!(
        thief.finish_login(&cb).await.status,
        StatusCode::BAD_REQUEST
    );
    assert!(thief.site.get("_portcullis").is_none());

    // A state that does not match the cookie → 400.
    let mut agent3 = Agent::new();
    let form = agent3.begin_login(&start).await;
    let cb = agent3
        .submit_login(&form, "bob@example.test", "bob-password")
        .await;
    let mut url = url::Url::parse(&cb).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                format!("{}x", &v[..v.len() - 1])
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    assert_eq!(
        agent3.finish_login(url.as_str()).await.status,
        StatusCode::BAD_REQUEST
    );

    // Provider-reported errors are shown, not trusted.
    let r = agent3
        .get(&format!(
            "{}/oauth2/callback?error=access_denied&state=abc",
            p.public_url
        ))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
