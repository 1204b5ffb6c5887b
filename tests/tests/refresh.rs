//! Refresh that never logs anyone out, against the real provider configured like Dex
//! (short token lifetimes, refresh tokens rotated on every use), with the cookie store
//! and with the Redis store across replicas.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use portcullis_e2e::client::Agent;
use portcullis_e2e::dashboard::Dashboard;
use portcullis_e2e::idp::{CLIENT_ID, Idp, IdpOptions};
use portcullis_e2e::jwt::{exp, now};
use portcullis_e2e::portcullis_server::{Options, Portcullis};
use portcullis_e2e::process::{Replica, cli};
use portcullis_e2e::redis::Redis;
use reqwest::StatusCode;

async fn idp(ttl: u64) -> Option<Idp> {
    Idp::start(IdpOptions {
        id_token_ttl: Some(ttl),
        ..Default::default()
    })
    .await
}

/// What one `/oauth2/auth` answered.
struct Answer {
    status: StatusCode,
    bearer: Option<String>,
    set_cookie: bool,
}

async fn auth(agent: &Agent, base: &str) -> Answer {
    let r = agent
        .http
        .get(format!("{base}/oauth2/auth"))
        .header("cookie", agent.site.header())
        .send()
        .await
        .unwrap();
    Answer {
        status: r.status(),
        bearer: r
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned()),
        set_cookie: r.headers().get("set-cookie").is_some(),
    }
}

/// A session stays usable across several ID-token lifetimes without a new login, and
/// the upstream always receives an unexpired token.
#[tokio::test]
async fn session_survives_several_token_lifetimes() {
    let Some(idp) = idp(4).await else { return };
    let p = Portcullis::start(Options::new(&idp.issuer).with("[session]\nrefresh_before = \"2s\""))
        .await;
    let mut agent = Agent::new();
    agent.sign_in(&p.public_url, "alice").await;
    let mut tokens = HashSet::new();
    let until = std::time::Instant::now() + Duration::from_secs(13);
    while std::time::Instant::now() < until {
        let r = agent.get(&format!("{}/oauth2/auth", p.public_url)).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let bearer = r.headers()["authorization"].to_str().unwrap().to_owned();
        assert!(
            exp(&bearer) > now(),
            "the upstream never gets an expired token"
        );
        tokens.insert(bearer);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let stats = idp.stats().await;
    assert_eq!(stats["authorization_code_grants"], 1, "one login: {stats}");
    assert!(stats["refresh_grants"].as_u64().unwrap() >= 3, "{stats}");
    assert!(
        tokens.len() >= 4,
        "several token lifetimes: {}",
        tokens.len()
    );
}

/// 50 concurrent requests for one session right at expiry, cookie store, one
/// process: all 202 with valid tokens, and the provider saw exactly one refresh. A
/// request replaying the pre-refresh cookie afterwards is still served.
#[tokio::test]
async fn fifty_concurrent_requests_one_refresh_cookie_store() {
    let Some(idp) = idp(9).await else { return };
    let p = Portcullis::start(Options::new(&idp.issuer).with("[session]\nrefresh_before = \"6s\""))
        .await;
    let dashboard = Dashboard::start("c1", &idp.issuer, CLIENT_ID).await;
    let mut agent = Agent::new();
    agent.sign_in(&p.public_url, "alice").await;
    let before = idp.refreshes().await;
    // Inside the refresh window: a third of the token's lifetime (3 s), less than
    // refresh_before.
    tokio::time::sleep(Duration::from_millis(6500)).await;

    let answers = futures(50, |_| {
        let agent = agent.clone();
        let base = p.public_url.clone();
        async move { auth(&agent, &base).await }
    })
    .await;
    let tokens = check_all_fresh(&answers, &dashboard).await;
    assert_eq!(
        idp.refreshes().await - before,
        1,
        "exactly one refresh for 50 requests"
    );
    assert_eq!(tokens.len(), 1, "everyone got the refreshed token");
    assert!(
        answers.iter().all(|a| a.set_cookie),
        "each answer carries the new session cookie"
    );

    // The browser's old cookie (say a request already in flight) is served within the
    // grace window instead of replaying the rotated refresh token.
    let late = auth(&agent, &p.public_url).await;
    assert_eq!(late.status, StatusCode::ACCEPTED);
    assert!(late.set_cookie);
    assert_eq!(idp.refreshes().await - before, 1);
    println!(
        "cookie store: 50 requests, 1 process, {} refresh(es) at the provider, 0 failures",
        1
    );
}

/// The same across 3 Portcullis processes sharing Redis: one refresh in total. The
/// replicas run each kind of runtime `server.worker_threads` chooses: one thread
/// (single-threaded runtime), two, and one per CPU.
#[tokio::test]
async fn fifty_concurrent_requests_three_replicas_redis() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let Some(idp) = idp(9).await else { return };
    let dashboard = Dashboard::start("c1", &idp.issuer, CLIENT_ID).await;
    let opts = Options::new(&idp.issuer).with(&format!(
        "[session]\nstore = \"redis\"\nrefresh_before = \"6s\"\n[redis]\nurl = \"{}\"",
        redis.url()
    ));
    let mut replicas = Vec::new();
    for threads in [1, 2, 0] {
        let opts = opts
            .clone()
            .with(&format!("[server]\nworker_threads = {threads}"));
        replicas.push(Replica::start(&opts).await);
    }
    let mut agent = Agent::new();
    let landing = agent.sign_in(&replicas[0].public_url(), "alice").await;
    assert_eq!(landing.status, StatusCode::FOUND, "{}", landing.body);
    let cookie_before = agent.site.header();
    let before = idp.refreshes().await;
    tokio::time::sleep(Duration::from_millis(6500)).await; // a third of 9 s left

    let bases: Vec<String> = replicas.iter().map(Replica::public_url).collect();
    let answers = futures(50, |i| {
        let agent = agent.clone();
        let base = bases[i % bases.len()].clone();
        async move { auth(&agent, &base).await }
    })
    .await;
    let tokens = check_all_fresh(&answers, &dashboard).await;
    let refreshes = idp.refreshes().await - before;
    assert_eq!(refreshes, 1, "exactly one refresh across 3 replicas");
    assert_eq!(tokens.len(), 1);
    assert!(
        answers.iter().all(|a| !a.set_cookie),
        "a Redis ticket does not change"
    );
    assert_eq!(agent.site.header(), cookie_before);
    println!(
        "redis store: 50 requests over 3 processes, {refreshes} refresh(es) at the provider, 0 failures"
    );
}

/// Runs `n` futures concurrently and collects their results in order.
async fn futures<F, Fut, T>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Every answer is a 202 with an unexpired token the dashboard verifies; returns the
/// distinct tokens.
async fn check_all_fresh(answers: &[Answer], dashboard: &Dashboard) -> HashSet<String> {
    let mut tokens = HashSet::new();
    for a in answers {
        assert_eq!(a.status, StatusCode::ACCEPTED);
        let b = a.bearer.clone().unwrap();
        assert!(exp(&b) > now() + 5, "refreshed, not the near-expiry token");
        tokens.insert(b);
    }
    for t in &tokens {
        assert_eq!(dashboard.verify(t).await["verified"], true);
    }
    tokens
}

/// `portcullis sessions revoke` takes effect on the next request in every process.
#[tokio::test]
async fn revocation_from_the_cli_reaches_every_replica() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let Some(idp) = idp(300).await else { return };
    let opts = Options::new(&idp.issuer).with(&format!(
        "[session]\nstore = \"redis\"\n[redis]\nurl = \"{}\"",
        redis.url()
    ));
    let replicas = [Replica::start(&opts).await, Replica::start(&opts).await];
    let mut laptop = Agent::new();
    let mut phone = Agent::new();
    let mut bob = Agent::new();
    laptop.sign_in(&replicas[0].public_url(), "alice").await;
    phone.sign_in(&replicas[1].public_url(), "alice").await;
    bob.sign_in(&replicas[0].public_url(), "bob").await;
    for r in &replicas {
        for a in [&laptop, &phone, &bob] {
            assert_eq!(auth(a, &r.public_url()).await.status, StatusCode::ACCEPTED);
        }
    }

    let config = &replicas[0].config;
    let (code, out, err) = cli(
        &["sessions", "list", "--user", "alice@example.test"],
        config,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 session(s) for alice@example.test"), "{out}");

    let (code, out, err) = cli(
        &["sessions", "revoke", "--user", "alice@example.test"],
        config,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked 2 session(s)"), "{out}");
    for r in &replicas {
        assert_eq!(
            auth(&laptop, &r.public_url()).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            auth(&phone, &r.public_url()).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            auth(&bob, &r.public_url()).await.status,
            StatusCode::ACCEPTED,
            "bob untouched"
        );
    }

    // By id.
    let (_, out, _) = cli(&["sessions", "list", "--user", "bob@example.test"], config).await;
    let id = out
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let (code, out, _) = cli(&["sessions", "revoke", "--id", &id], config).await;
    assert_eq!(code, 0);
    assert!(out.contains(&format!("revoked session {id}")), "{out}");
    for r in &replicas {
        assert_eq!(
            auth(&bob, &r.public_url()).await.status,
            StatusCode::UNAUTHORIZED
        );
    }

    // Sign-out deletes the server-side session too.
    let mut carol = Agent::new();
    carol.sign_in(&replicas[0].public_url(), "alice").await;
    carol
        .get(&format!("{}/oauth2/sign_out", replicas[1].public_url()))
        .await;
    let (_, out, _) = cli(
        &["sessions", "list", "--user", "alice@example.test"],
        config,
    )
    .await;
    assert!(out.contains("0 session(s)"), "{out}");
}

/// `redis-cli` against the test server; its output, trimmed.
async fn redis_cli(redis: &Redis, args: &[&str]) -> String {
    let out = tokio::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string()])
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "redis-cli {args:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A Redis session is prepared once per cookie, but what Redis holds is read on every
/// request: stored bytes that no longer open are a 401 on the very next request (not
/// the prepared copy), and the original bytes put back work again.
#[tokio::test]
async fn the_stored_session_is_read_on_every_request() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let Some(idp) = idp(300).await else { return };
    let p = Portcullis::start(Options::new(&idp.issuer).with(&format!(
        "[session]\nstore = \"redis\"\n[redis]\nurl = \"{}\"",
        redis.url()
    )))
    .await;
    let mut agent = Agent::new();
    agent.sign_in(&p.public_url, "alice").await;
    let first = auth(&agent, &p.public_url).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let again = auth(&agent, &p.public_url).await;
    assert_eq!(
        again.bearer, first.bearer,
        "served from the prepared session"
    );

    let key = redis_cli(&redis, &["--scan", "--pattern", "portcullis:s:*"]).await;
    assert_eq!(key.lines().count(), 1, "one session: {key}");
    let sealed = redis_cli(&redis, &["hget", &key, "d"]).await;
    redis_cli(&redis, &["hset", &key, "d", "not-a-sealed-session"]).await;
    let tampered = auth(&agent, &p.public_url).await;
    assert_eq!(tampered.status, StatusCode::UNAUTHORIZED);
    assert!(tampered.bearer.is_none());

    redis_cli(&redis, &["hset", &key, "d", &sealed]).await;
    let restored = auth(&agent, &p.public_url).await;
    assert_eq!(restored.status, StatusCode::ACCEPTED);
    assert_eq!(restored.bearer, first.bearer);
}

/// Redis stopped: clear 503s (not 401s: no login loop) and `/ready` fails; Redis back:
/// the same session works again without restarting Portcullis.
#[tokio::test]
async fn redis_outage_is_a_503_and_recovers() {
    let Some(mut redis) = Redis::start().await else {
        return;
    };
    let Some(idp) = idp(300).await else { return };
    let p = Portcullis::start(Options::new(&idp.issuer).with(&format!(
        "[session]\nstore = \"redis\"\n[redis]\nurl = \"{}\"\ntimeout = \"500ms\"",
        redis.url()
    )))
    .await;
    let mut agent = Agent::new();
    agent.sign_in(&p.public_url, "alice").await;
    assert_eq!(
        auth(&agent, &p.public_url).await.status,
        StatusCode::ACCEPTED
    );

    redis.stop().await;
    assert_eq!(
        auth(&agent, &p.public_url).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        agent.get(&format!("{}/ready", p.public_url)).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        agent
            .get(&format!("{}/oauth2/userinfo", p.public_url))
            .await
            .status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(
        agent.site.get("_portcullis").is_some(),
        "the cookie is kept through the outage"
    );

    redis.resume().await;
    let base = p.public_url.clone();
    let a = agent.clone();
    portcullis_e2e::eventually("service resumes", Duration::from_secs(20), || {
        let a = a.clone();
        let base = base.clone();
        async move { (auth(&a, &base).await.status == StatusCode::ACCEPTED).then_some(()) }
    })
    .await;
    assert_eq!(
        agent.get(&format!("{}/ready", p.public_url)).await.status(),
        StatusCode::OK
    );
}

/// Provider stopped: existing sessions keep working while their ID token is valid
/// (refresh attempts fail quietly), then 401; a new login gets a clear error page.
#[tokio::test]
async fn provider_outage_keeps_sessions_until_their_token_expires() {
    let Some(idp) = idp(6).await else { return };
    let p = Portcullis::start(
        Options::new(&idp.issuer)
            .with("[session]\nrefresh_before = \"3s\"\n[oidc]\ntimeout = \"1s\""),
    )
    .await;
    let mut agent = Agent::new();
    agent.sign_in(&p.public_url, "alice").await;
    let first = auth(&agent, &p.public_url).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let token = first.bearer.unwrap();
    idp.stop().await;

    // Refresh due (a third of 6 s left), provider down.
    tokio::time::sleep(Duration::from_millis(4300)).await;
    let during = auth(&agent, &p.public_url).await;
    assert_eq!(
        during.status,
        StatusCode::ACCEPTED,
        "still valid: keeps working"
    );
    assert_eq!(during.bearer.as_deref(), Some(token.as_str()));

    let mut newcomer = Agent::new();
    let r = newcomer
        .get(&format!("{}/oauth2/start", p.public_url))
        .await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_GATEWAY,
        "new logins: a clear error"
    );
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Identity provider unavailable")
    );

    let wait = exp(&token).saturating_sub(now()) + 1;
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let after = auth(&agent, &p.public_url).await;
    assert_eq!(
        after.status,
        StatusCode::UNAUTHORIZED,
        "never an expired token"
    );
    assert!(!after.set_cookie, "the session is not deleted by an outage");
}

/// The provider refuses the refresh token (the user was disabled): the session ends —
/// 401 and the cookie is expired — instead of serving a token that cannot be renewed.
#[tokio::test]
async fn refused_refresh_ends_the_session() {
    let Some(idp) = idp(6).await else { return };
    let p = Portcullis::start(Options::new(&idp.issuer).with("[session]\nrefresh_before = \"3s\""))
        .await;
    let mut agent = Agent::new();
    agent.sign_in(&p.public_url, "bob").await;
    assert_eq!(
        auth(&agent, &p.public_url).await.status,
        StatusCode::ACCEPTED
    );
    idp.set_user(serde_json::json!({"email": "bob@example.test", "disabled": true}))
        .await;
    tokio::time::sleep(Duration::from_millis(4300)).await; // a third of 6 s left
    let r = agent.get(&format!("{}/oauth2/auth", p.public_url)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        agent.site.get("_portcullis").is_none(),
        "the session cookie is expired"
    );
    assert!(idp.stats().await["refresh_failures"].as_u64().unwrap() >= 1);
}
