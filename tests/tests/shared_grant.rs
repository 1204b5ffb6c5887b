//! One provider grant per user, against the test provider with Dex's rule (a new
//! authorization-code grant for a (user, client) revokes the refresh token issued
//! before it): a user signed in on two devices stays signed in on both with the Redis
//! store, the provider sees one refresh per expiry, sign-out ends one device, and the
//! refresh cadence is bounded by the token's own lifetime.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use portcullis_e2e::browser::Browser;
use portcullis_e2e::client::Agent;
use portcullis_e2e::idp::{Idp, IdpOptions};
use portcullis_e2e::jwt::{claim, exp, now};
use portcullis_e2e::kubectl::{Running, approve_in_chromium, run};
use portcullis_e2e::process::{Replica, cli};
use portcullis_e2e::redis::Redis;
use portcullis_e2e::stack::Clusters;
use reqwest::StatusCode;

fn idp_opts(ttl: u64) -> IdpOptions {
    IdpOptions {
        id_token_ttl: Some(ttl),
        ..Default::default()
    }
}

fn redis_store(redis: &Redis) -> String {
    format!(
        "[session]\nstore = \"redis\"\n[redis]\nurl = \"{}\"\n",
        redis.url()
    )
}

/// One `/oauth2/auth` with the agent's cookies (not stored back: a script's view).
async fn auth(agent: &Agent, base: &str) -> (StatusCode, Option<String>) {
    let r = agent
        .http
        .get(format!("{base}/oauth2/auth"))
        .header("cookie", agent.site.header())
        .send()
        .await
        .unwrap();
    let bearer = r
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status(), bearer)
}

fn stat(stats: &serde_json::Value, path: &[&str]) -> u64 {
    let mut v = stats;
    for p in path {
        v = &v[*p];
    }
    v.as_u64().unwrap_or(0)
}

/// Whether the exec plugin hands out an unexpired token of alice's (a refresh
/// through Portcullis when due).
async fn cli_signed_in(home: &std::path::Path, server: &str) -> bool {
    let (status, out, err) = run(home, &["kubectl-credential", "--server", server]).await;
    let credential: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    let token = credential["status"]["token"].as_str().unwrap_or_default();
    let ok = status == 0 && exp(token) > now() && claim(token, "email") == "alice@example.test";
    if !ok {
        println!("kubectl-credential: {status} {err}");
    }
    ok
}

async fn sign_in_browser(s: &Clusters, browser: &Browser) {
    browser.goto(&s.url("c1", "/")).await;
    browser.find("#login").await;
    browser.type_into("#login", "alice@example.test").await;
    browser.type_into("#password", "alice-password").await;
    browser.click("#submit").await;
    browser.find("#user").await;
}

/// Whether the browser reaches the c1 dashboard as alice with a token the dashboard
/// verified (signature and `exp`), without a login.
async fn signed_in(s: &Clusters, browser: &Browser) -> bool {
    browser.goto(&s.url("c1", "/")).await;
    for _ in 0..50 {
        if browser.has("#user").await {
            return browser.text("#user").await == "alice@example.test"
                && browser.text("#verified").await == "yes";
        }
        if browser.has("#login").await {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "neither the dashboard nor the login form: {}",
        browser.url().await
    );
}

/// Two Chromium profiles sign in as the same user one after the other through nginx
/// `auth_request` (and, with Redis, kubectl through the first one's consent page).
/// With the Redis store all three stay signed in for three ID-token lifetimes without
/// a login, the provider issued one grant per browser login, the dashboard verified every token it got, and no
/// refresh was refused. With the cookie store the first device's refresh token was
/// revoked by the second sign-in, so it is signed out at its first refresh: what the
/// README's store comparison says.
#[tokio::test]
async fn two_browsers_same_user_redis_keeps_both_cookie_store_loses_the_first() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let ttl = 6;
    for store in ["redis", "cookie"] {
        let extra = if store == "redis" {
            redis_store(&redis)
        } else {
            String::new()
        };
        let Some(s) = Clusters::start_with(idp_opts(ttl), &extra).await else {
            return;
        };
        let Some(laptop) = Browser::start().await else {
            return;
        };
        let Some(desktop) = Browser::start().await else {
            return;
        };
        sign_in_browser(&s, &laptop).await;
        sign_in_browser(&s, &desktop).await;
        // With Redis, kubectl signs in too, approved in the laptop's browser: a third
        // session on the same grant, no new login at the provider.
        let cli_home = portcullis_e2e::nginx::tempdir("shared-grant-cli");
        let server = format!("http://{}", s.portcullis.addr);
        if store == "redis" {
            let mut cli =
                Running::spawn(&cli_home, &["login", "--server", &server, "--no-browser"]);
            let url = cli.line_with("/oauth2/cli/authorize?").await;
            let url = url.trim().replacen(&server, &s.portcullis.public_url, 1);
            approve_in_chromium(&laptop, &url, "alice", "Signed in. You can close").await;
            let (ok, said) = cli.finish().await;
            assert!(ok, "{said}");
        }
        let stats = s.idp.stats().await;
        assert_eq!(stat(&stats, &["authorization_code_grants"]), 2, "{stats}");
        assert_eq!(
            stat(&stats, &["refresh_tokens_replaced"]),
            1,
            "Dex's rule: {stats}"
        );

        let until = Instant::now() + Duration::from_secs(3 * ttl + 1);
        let (mut laptop_ok, mut desktop_ok, mut cli_ok, mut rounds) = (true, true, true, 0);
        while Instant::now() < until {
            laptop_ok &= signed_in(&s, &laptop).await;
            desktop_ok &= signed_in(&s, &desktop).await;
            if store == "redis" {
                cli_ok &= cli_signed_in(&cli_home, &server).await;
            }
            rounds += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let stats = s.idp.stats().await;
        let cli = if store == "redis" {
            cli_ok.to_string()
        } else {
            "(not with the cookie store)".to_owned()
        };
        let refreshes = stat(&stats, &["refresh_grants"]);
        let refused = stat(&stats, &["refresh_failures"]);
        println!(
            "{store} store, two browsers as alice over {}s ({rounds} rounds, {ttl}s tokens): \
             laptop signed in: {laptop_ok}, desktop signed in: {desktop_ok}, kubectl signed in: {cli}, \
             refreshes at the provider: {refreshes}, refused: {refused}",
            3 * ttl + 1
        );
        if store == "redis" {
            assert!(laptop_ok && desktop_ok, "both devices stay signed in");
            assert!(cli_ok, "and kubectl with them");
            assert_eq!(
                stat(&stats, &["authorization_code_grants"]),
                2,
                "one provider grant per browser login; kubectl's joined one: {stats}"
            );
            assert_eq!(refused, 0, "{stats}");
            assert!(
                (2..=5).contains(&refreshes),
                "one refresh per token lifetime for the user, not per browser: {stats}"
            );
        } else {
            assert!(!laptop_ok, "the cookie store cannot share the grant");
            assert!(desktop_ok, "the latest sign-in keeps working");
            assert!(refused >= 1, "{stats}");
        }
        laptop.quit().await;
        desktop.quit().await;
    }
}

/// Three replicas behind round-robin, two devices of one user, 20 parallel requests
/// per device at each expiry: the provider saw one refresh per expiry for the user;
/// every answer was 202 with an unexpired token.
#[tokio::test]
async fn three_replicas_two_devices_one_refresh_per_expiry() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let ttl = 9;
    let Some(idp) = Idp::start(idp_opts(ttl)).await else {
        return;
    };
    let opts =
        portcullis_e2e::portcullis_server::Options::new(&idp.issuer).with(&redis_store(&redis));
    let mut replicas = Vec::new();
    for threads in [1, 2, 0] {
        let o = opts
            .clone()
            .with(&format!("[server]\nworker_threads = {threads}"));
        replicas.push(Replica::start(&o).await);
    }
    let bases: Vec<String> = replicas.iter().map(Replica::public_url).collect();
    let mut laptop = Agent::new();
    let mut desktop = Agent::new();
    assert_eq!(
        laptop.sign_in(&bases[0], "alice").await.status,
        StatusCode::FOUND
    );
    assert_eq!(
        desktop.sign_in(&bases[1], "alice").await.status,
        StatusCode::FOUND
    );
    let start = idp.refreshes().await;
    let mut per_expiry = Vec::new();
    for _ in 0..2 {
        // Until the user's token is within a third of its lifetime of expiry.
        let (_, bearer) = auth(&laptop, &bases[2]).await;
        let due = exp(&bearer.unwrap()).saturating_sub(ttl / 3);
        while now() < due {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = idp.refreshes().await;
        let mut tasks = Vec::new();
        for i in 0..40 {
            let agent = if i % 2 == 0 {
                laptop.clone()
            } else {
                desktop.clone()
            };
            let base = bases[i % bases.len()].clone();
            tasks.push(tokio::spawn(async move { auth(&agent, &base).await }));
        }
        for t in tasks {
            let (status, bearer) = t.await.unwrap();
            assert_eq!(status, StatusCode::ACCEPTED);
            assert!(exp(&bearer.unwrap()) > now(), "never an expired token");
        }
        per_expiry.push(idp.refreshes().await - before);
    }
    let stats = idp.stats().await;
    println!(
        "redis store, 3 replicas, 2 devices of alice, 20 parallel requests per device at \
         each of 2 expiries: refreshes per expiry {per_expiry:?} (total {}), refused {}",
        idp.refreshes().await - start,
        stat(&stats, &["refresh_failures"])
    );
    assert_eq!(
        per_expiry,
        [1, 1],
        "one refresh per expiry, not one per device: {stats}"
    );
    assert_eq!(stat(&stats, &["refresh_failures"]), 0, "{stats}");
}

/// Sign-out on one device leaves the other signed in (and on the shared grant, which
/// still refreshes); `sessions revoke --user` ends both on the next request.
#[tokio::test]
async fn sign_out_ends_one_device_revoke_user_ends_all() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let ttl = 6;
    let Some(idp) = Idp::start(idp_opts(ttl)).await else {
        return;
    };
    let opts =
        portcullis_e2e::portcullis_server::Options::new(&idp.issuer).with(&redis_store(&redis));
    let replicas = [Replica::start(&opts).await, Replica::start(&opts).await];
    let (a, b) = (replicas[0].public_url(), replicas[1].public_url());
    let mut laptop = Agent::new();
    let mut desktop = Agent::new();
    let mut phone = Agent::new();
    laptop.sign_in(&a, "alice").await;
    desktop.sign_in(&b, "alice").await;
    phone.sign_in(&a, "alice").await;
    laptop.get(&format!("{b}/oauth2/sign_out")).await;
    assert_eq!(auth(&laptop, &a).await.0, StatusCode::UNAUTHORIZED);
    // The others outlive a refresh of the grant after the sign-out.
    tokio::time::sleep(Duration::from_secs(ttl - ttl / 3 + 1)).await;
    for (agent, base) in [(&desktop, &a), (&phone, &b)] {
        let (status, bearer) = auth(agent, base).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert!(exp(&bearer.unwrap()) > now());
    }
    let config = &replicas[0].config;
    let (_, out, _) = cli(
        &["sessions", "list", "--user", "alice@example.test"],
        config,
    )
    .await;
    assert!(out.contains("2 session(s) for alice@example.test"), "{out}");
    let (code, out, err) = cli(
        &["sessions", "revoke", "--user", "alice@example.test"],
        config,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked 2 session(s)"), "{out}");
    for base in [&a, &b] {
        assert_eq!(auth(&desktop, base).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(auth(&phone, base).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(idp.stats().await["refresh_failures"], 0);
}

/// 10 s tokens and the default `refresh_before` (60 s): one browser asks every 200 ms
/// for 30 s, and the provider saw at most one refresh per token (refreshed when a third
/// of its lifetime is left, not on every request). Then sign-out while requests with
/// the old cookie are still in flight leaves the browser signed out (cookie store: the
/// replica that signed the session out refuses it, and hands out no new cookie).
#[tokio::test]
async fn refresh_cadence_follows_short_tokens_and_sign_out_wins() {
    let ttl = 10;
    let Some(idp) = Idp::start(idp_opts(ttl)).await else {
        return;
    };
    let opts = portcullis_e2e::portcullis_server::Options::new(&idp.issuer);
    let log = portcullis_e2e::nginx::tempdir("cadence").join("portcullis.log");
    let replica = Replica::start_logging(&opts, "info", Some(&log)).await;
    let base = replica.public_url();
    let mut agent = Agent::new();
    agent.sign_in(&base, "alice").await;
    let start = idp.refreshes().await;
    let until = Instant::now() + Duration::from_secs(30);
    let mut requests = 0;
    while Instant::now() < until {
        let r = agent.get(&format!("{base}/oauth2/auth")).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let bearer = r.headers()["authorization"].to_str().unwrap().to_owned();
        assert!(exp(&bearer) > now());
        requests += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refreshes = idp.refreshes().await - start;
    // A token serves until a third of its lifetime is left: 30 s / (10 s - 3 s).
    let most = 30 / (ttl - ttl / 3) + 1;
    println!(
        "10 s tokens, default refresh_before: {requests} requests in 30 s, {refreshes} refreshes (at most {most})"
    );
    assert!(refreshes >= 3 && refreshes <= most, "{refreshes} refreshes");

    // Sign out while a dashboard's background requests still carry the old cookie.
    let cookie = agent.site.header();
    let http = agent.http.clone();
    let url = format!("{base}/oauth2/auth");
    let background = tokio::spawn(async move {
        let mut after_sign_out = Vec::new();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(3) {
            let r = http
                .get(&url)
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            after_sign_out.push((
                t0.elapsed(),
                r.status(),
                r.headers().contains_key("set-cookie"),
            ));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        after_sign_out
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    agent.get(&format!("{base}/oauth2/sign_out")).await;
    let signed_out_at = Duration::from_millis(700);
    let answers = background.await.unwrap();
    let late: Vec<_> = answers
        .iter()
        .filter(|(t, ..)| *t > signed_out_at)
        .collect();
    assert!(!late.is_empty());
    assert!(
        late.iter().all(|(_, s, _)| *s == StatusCode::UNAUTHORIZED),
        "after sign-out the old cookie is refused, and no new session cookie is handed out: {late:?}"
    );
    assert_eq!(auth(&agent, &base).await.0, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_millis(200)).await; // the log is written in batches
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        logged
            .matches("live less than session.refresh_before")
            .count(),
        1,
        "warned once that the tokens are shorter than refresh_before"
    );
}
