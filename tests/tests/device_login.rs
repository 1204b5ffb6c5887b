//! Device authorization (RFC 8628) served by Portcullis, against the real binary with
//! Redis and the Dex-like provider, driven over HTTP: codes and their form, the
//! polling answers (`slow_down`, `authorization_pending`, `access_denied`,
//! `expired_token`), the approval page's sign-in, CSRF and wrong-code limit, a code
//! used once, and the audit trail's lines for all of it (no device code in the log).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use portcullis_e2e::client::{Agent, absolute, enc};
use portcullis_e2e::idp::{Idp, IdpOptions};
use portcullis_e2e::kubectl::csrf_of;
use portcullis_e2e::portcullis_server::Options;
use portcullis_e2e::process::Replica;
use portcullis_e2e::redis::Redis;
use reqwest::StatusCode;
use serde_json::Value;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn start(agent: &Agent, base: &str, host: &str) -> (Value, Instant) {
    let r = agent
        .post_form(
            &format!("{base}/oauth2/device/code"),
            &format!("client_host={}", enc(host)),
            false,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    (r.json().await.unwrap(), Instant::now())
}

async fn poll(agent: &Agent, base: &str, device_code: &str) -> (StatusCode, Value) {
    let r = agent
        .post_form(
            &format!("{base}/oauth2/cli/token"),
            &format!("grant_type={}&device_code={}", enc(GRANT), enc(device_code)),
            false,
        )
        .await;
    (r.status(), r.json().await.unwrap())
}

/// Waits until `secs` have passed since `since` (the polling interval).
async fn after(since: Instant, secs: u64) {
    let at = since + Duration::from_secs(secs) + Duration::from_millis(200);
    tokio::time::sleep_until(at.into()).await;
}

/// The entry form, then a code typed into it: the response.
async fn enter(agent: &mut Agent, base: &str, code: &str) -> reqwest::Response {
    let page = agent.get(&format!("{base}/oauth2/device")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_of(&page.text().await.unwrap());
    agent
        .post_form(
            &format!("{base}/oauth2/device"),
            &format!("csrf={}&step=enter&user_code={}", enc(&csrf), enc(code)),
            true,
        )
        .await
}

/// Types `code` and decides: the final page's status and body.
async fn decide(agent: &mut Agent, base: &str, code: &str, decision: &str) -> (StatusCode, String) {
    let confirm = enter(agent, base, code).await;
    assert_eq!(confirm.status(), StatusCode::OK);
    let body = confirm.text().await.unwrap();
    assert!(
        body.contains("ssh-box-1"),
        "the client's host is shown: {body}"
    );
    let r = agent
        .post_form(
            &format!("{base}/oauth2/device"),
            &format!(
                "csrf={}&step=decide&decision={decision}",
                enc(&csrf_of(&body))
            ),
            true,
        )
        .await;
    (r.status(), r.text().await.unwrap())
}

#[tokio::test]
async fn device_authorization_and_its_defences() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let Some(idp) = Idp::start(IdpOptions {
        id_token_ttl: Some(30),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let opts = Options::new(&idp.issuer).with(&format!(
        "[session]\nstore = \"redis\"\n[redis]\nurl = \"{}\"\n[log]\nformat = \"json\"\n\
         [[clusters]]\nname = \"c1\"\nserver = \"https://c1.example.test:6443\"\n",
        redis.url()
    ));
    let log = portcullis_e2e::nginx::tempdir("device").join("portcullis.log");
    let replica = Replica::start_logging(&opts, "warn,portcullis::audit=info", Some(&log)).await;
    let base = replica.public_url();
    let cli = Agent::new();

    // The codes: a 43-character device code, an eight-letter user code of the
    // unambiguous alphabet, the page to type it on, ten minutes, five seconds.
    let (started, t0) = start(&cli, &base, "ssh-box-1").await;
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    assert_eq!(device_code.len(), 43);
    let shape_ok = user_code.len() == 9
        && user_code.char_indices().all(|(i, c)| {
            if i == 4 {
                c == '-'
            } else {
                "BCDFGHJKLMNPQRSTVWXZ".contains(c)
            }
        });
    assert!(shape_ok, "{user_code}");
    assert_eq!(started["verification_uri"], format!("{base}/oauth2/device"));
    assert_eq!(
        started["verification_uri_complete"],
        format!("{base}/oauth2/device?user_code={user_code}")
    );
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["interval"], 5);

    // Polling before the interval: slow down (and the interval grows by five).
    let (status, answer) = poll(&cli, &base, &device_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"], "slow_down", "{answer}");
    let (status, answer) = poll(&cli, &base, "x".repeat(43).as_str()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer["error"], "expired_token",
        "an unknown device code: {answer}"
    );
    let (_, answer) = poll(&cli, &base, "short").await;
    assert_eq!(answer["error"], "invalid_grant");

    // The page signs the user in first, and comes back with the code filled in.
    let mut alice = Agent::new();
    let complete = started["verification_uri_complete"].as_str().unwrap();
    let lower = user_code.to_ascii_lowercase().replace('-', "");
    let page_url = format!("{base}/oauth2/device?user_code={lower}");
    let r = alice.get(&page_url).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let sign_in = absolute(&page_url, r.headers()["location"].to_str().unwrap());
    assert!(sign_in.contains("/oauth2/sign_in?rd="), "{sign_in}");
    let landing = alice
        .login(
            &sign_in.replace("/oauth2/sign_in?", "/oauth2/start?"),
            "alice@example.test",
            "alice-password",
        )
        .await;
    let back = landing.location.unwrap();
    assert!(back.contains("/oauth2/device?user_code="), "{back}");
    let page = alice.get(&absolute(&base, &back)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let body = page.text().await.unwrap();
    assert!(
        body.contains(&format!("value=\"{user_code}\"")),
        "typed leniently, shown normalised: {body}"
    );
    assert!(complete.ends_with(&user_code));

    // CSRF: no token, and another session's token, are refused.
    let r = alice
        .post_form(
            &format!("{base}/oauth2/device"),
            &format!("step=enter&user_code={}", enc(&user_code)),
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let mut bob = Agent::new();
    bob.sign_in(&base, "bob").await;
    let bob_page = bob.get(&format!("{base}/oauth2/device")).await;
    let bob_csrf = csrf_of(&bob_page.text().await.unwrap());
    let r = alice
        .post_form(
            &format!("{base}/oauth2/device"),
            &format!(
                "csrf={}&step=enter&user_code={}",
                enc(&bob_csrf),
                enc(&user_code)
            ),
            true,
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "bob's form is not alice's"
    );
    let r = Agent::new()
        .post_form(
            &format!("{base}/oauth2/device"),
            &format!("csrf={}&step=decide&decision=approve", enc(&bob_csrf)),
            false,
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no session, no decision");

    // Guessing: five wrong codes, then even the right one is refused for this session.
    for guess in [
        "BBBB-BBBB",
        "CCCC-CCCC",
        "not a code",
        "DDDD-DDDD",
        "FFFF-FFFF",
    ] {
        let r = enter(&mut bob, &base, guess).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{guess}");
        assert!(r.text().await.unwrap().contains("id=\"error\""));
    }
    let r = enter(&mut bob, &base, &user_code).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);

    // Not yet approved: pending (polled at the interval, now ten seconds).
    after(t0, 10).await;
    let (_, answer) = poll(&cli, &base, &device_code).await;
    assert_eq!(answer["error"], "authorization_pending", "{answer}");
    let polled = Instant::now();

    // Alice approves; the next poll gets her CLI session, once.
    let (status, done) = decide(&mut alice, &base, &user_code, "approve").await;
    assert_eq!(status, StatusCode::OK);
    assert!(done.contains("Device signed in"), "{done}");
    after(polled, 10).await;
    let (status, issued) = poll(&cli, &base, &device_code).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    assert_eq!(issued["user"], "alice@example.test");
    let credential = issued["refresh_token"].as_str().unwrap().to_owned();
    let listed: Value = cli
        .http
        .get(format!("{base}/oauth2/clusters"))
        .bearer_auth(&credential)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["clusters"][0]["name"], "c1");
    let (_, again) = poll(&cli, &base, &device_code).await;
    assert_eq!(
        again["error"], "expired_token",
        "a device code is used once"
    );
    let r = enter(&mut alice, &base, &user_code).await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "a user code is entered once"
    );

    // Denied: the CLI is told so.
    let (denied, t1) = start(&cli, &base, "ssh-box-1").await;
    let (status, done) = decide(
        &mut alice,
        &base,
        denied["user_code"].as_str().unwrap(),
        "deny",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(done.contains("Sign-in denied"));
    after(t1, 5).await;
    let (_, answer) = poll(&cli, &base, denied["device_code"].as_str().unwrap()).await;
    assert_eq!(answer["error"], "access_denied");

    // The audit trail: one JSON line per act, on its own target, no device code.
    replica.terminate().await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(&device_code), "the device code is a secret");
    assert!(
        !text.contains(&credential),
        "the CLI credential is a secret"
    );
    let audit: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "portcullis::audit")
        .collect();
    let has = |event: &str, outcome: &str, user: &str| {
        audit.iter().any(|v| {
            v["event"] == event
                && v["outcome"] == outcome
                && (user.is_empty() || v["user"] == user)
                && v["request_id"].as_str().is_some_and(|r| !r.is_empty())
                && v["client_addr"] == "127.0.0.1"
        })
    };
    assert!(has("sign_in", "success", "alice@example.test"), "{audit:?}");
    assert!(
        has("device_code_entry", "refused", "bob@example.test"),
        "{audit:?}"
    );
    assert!(
        has("device_decision", "success", "alice@example.test"),
        "{audit:?}"
    );
    assert!(
        has("device_decision", "refused", "alice@example.test"),
        "{audit:?}"
    );
    assert!(
        has("cli_token", "success", "alice@example.test"),
        "{audit:?}"
    );
    assert!(audit.iter().all(|v| {
        v["session"]
            .as_str()
            .is_some_and(|s| s.is_empty() || s.len() == 16)
    }));
}
