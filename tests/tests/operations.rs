//! Operations: `/metrics` after real flows, graceful drain on SIGTERM, TLS with ALPN,
//! and request-head limits. The metrics and SIGTERM tests run the real binary.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use portcullis_e2e::client::{self, Agent};
use portcullis_e2e::idp::{Idp, IdpOptions};
use portcullis_e2e::portcullis_server::{Options, Portcullis};
use portcullis_e2e::process::Replica;
use portcullis_e2e::redis::Redis;
use reqwest::{StatusCode, Version};

/// The value of one series (`name{labels}` exactly as exposed), 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

async fn scrape(port: u16) -> String {
    let r = client::http()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    r.text().await.unwrap()
}

#[tokio::test]
async fn metrics_move_with_logins_refreshes_and_denials() {
    let Some(idp) = Idp::start(IdpOptions {
        // Long enough that a loaded machine never refreshes on the first request
        // after sign-in; the second one, 7.5 s later (within a third of the token's
        // lifetime of its expiry), always refreshes (and its new token is again far
        // from expiry).
        id_token_ttl: Some(10),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let metrics_port = portcullis_e2e::free_port();
    let opts = Options::new(&idp.issuer).with(&format!(
        "[server]\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n\
         [session]\nrefresh_before = \"5s\"\n\
         [authz]\nallowed_groups = [\"platform-admins\"]"
    ));
    let replica = Replica::start(&opts).await;
    let base = replica.public_url();
    let auth = format!("{base}/oauth2/auth");
    let before = scrape(metrics_port).await;

    // alice is admitted; her session is refreshed once its token is due.
    let mut alice = Agent::new();
    assert_eq!(
        alice.sign_in(&base, "alice").await.status,
        StatusCode::FOUND
    );
    assert_eq!(alice.get(&auth).await.status(), StatusCode::ACCEPTED);
    let first = alice.site.get("_portcullis").unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(7500)).await;
    assert_eq!(alice.get(&auth).await.status(), StatusCode::ACCEPTED);
    assert_ne!(alice.site.get("_portcullis").unwrap(), first, "refreshed");
    // New signing keys: bob's ID token has an unknown `kid`, so the key set is refetched.
    idp.rotate_keys().await;
    // Refetches are rate-limited to one per 10 s after the last fetch (discovery).
    tokio::time::sleep(Duration::from_secs(10)).await;
    // bob signs in but policy refuses him.
    let mut bob = Agent::new();
    assert_eq!(
        bob.sign_in(&base, "bob").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(bob.get(&auth).await.status(), StatusCode::FORBIDDEN);
    // Nobody; and a path no route matches, carrying a user name.
    let mut anon = Agent::new();
    assert_eq!(anon.get(&auth).await.status(), StatusCode::UNAUTHORIZED);
    let r = anon
        .get(&format!("{base}/alice@example.test/nope?u=bob"))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let after = scrape(metrics_port).await;
    let delta = |series: &str| value(&after, series) - value(&before, series);
    for (series, want) in [
        (
            r#"portcullis_logins_total{outcome="started",reason="none"}"#,
            2.0,
        ),
        (
            r#"portcullis_logins_total{outcome="completed",reason="none"}"#,
            1.0,
        ),
        (
            r#"portcullis_logins_total{outcome="failed",reason="denied"}"#,
            1.0,
        ),
        (
            r#"portcullis_auth_decisions_total{decision="allowed"}"#,
            2.0,
        ),
        (r#"portcullis_auth_decisions_total{decision="denied"}"#, 1.0),
        (
            r#"portcullis_auth_decisions_total{decision="unauthenticated"}"#,
            1.0,
        ),
        (r#"portcullis_auth_decisions_total{decision="error"}"#, 0.0),
        (r#"portcullis_refreshes_total{outcome="refreshed"}"#, 1.0),
        (
            r#"portcullis_refreshes_total{outcome="invalid_grant"}"#,
            0.0,
        ),
        (
            r#"portcullis_provider_request_duration_seconds_count{call="token"}"#,
            2.0,
        ),
        (
            r#"portcullis_provider_request_duration_seconds_count{call="refresh"}"#,
            1.0,
        ),
        (r#"portcullis_provider_errors_total{call="token"}"#, 0.0),
        (
            r#"portcullis_provider_request_duration_seconds_count{call="jwks"}"#,
            1.0,
        ),
        (
            r#"portcullis_session_store_duration_seconds_count{store="cookie",op="create"}"#,
            2.0,
        ),
        (
            r#"portcullis_http_requests_total{route="/oauth2/auth",method="GET",status="202"}"#,
            2.0,
        ),
        (
            r#"portcullis_http_requests_total{route="/oauth2/auth",method="GET",status="403"}"#,
            1.0,
        ),
        (
            r#"portcullis_http_requests_total{route="/oauth2/callback",method="GET",status="302"}"#,
            1.0,
        ),
        (
            r#"portcullis_http_requests_total{route="unmatched",method="GET",status="404"}"#,
            1.0,
        ),
        (
            r#"portcullis_http_request_duration_seconds_count{route="/oauth2/auth"}"#,
            4.0,
        ),
    ] {
        assert_eq!(delta(series), want, "{series}\n{after}");
    }
    assert_eq!(
        value(
            &after,
            r#"portcullis_provider_request_duration_seconds_count{call="discovery"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            &format!(
                r#"portcullis_build_info{{version="{}"}}"#,
                env!("CARGO_PKG_VERSION")
            )
        ),
        1.0
    );
    // Bounded labels: no user, email or request path in any label value.
    for line in after.lines().filter(|l| !l.starts_with('#')) {
        let labels = line.split_once('{').map_or("", |(_, rest)| rest);
        for needle in ["alice", "bob", "example.test", "@", "nope"] {
            assert!(!labels.contains(needle), "{needle:?} in a label: {line}");
        }
    }
    println!("--- /metrics sample ---");
    for line in after.lines().filter(|l| {
        l.contains("decision=") || l.contains("logins_total") || l.contains("refreshes_total")
    }) {
        println!("{line}");
    }
}

#[tokio::test]
async fn sigterm_drains_and_finishes_a_request_waiting_on_redis() {
    let Some(idp) = Idp::start(IdpOptions::default()).await else {
        return;
    };
    let Some(redis) = Redis::start().await else {
        return;
    };
    let opts = Options::new(&idp.issuer).with(&format!(
        "[server]\nshutdown_delay = \"2s\"\nshutdown_timeout = \"20s\"\n\
         [session]\nstore = \"redis\"\n\
         [redis]\nurl = \"{}\"\ntimeout = \"20s\"",
        redis.url()
    ));
    let replica = Replica::start(&opts).await;
    let base = replica.public_url();
    let mut alice = Agent::new();
    assert_eq!(
        alice.sign_in(&base, "alice").await.status,
        StatusCode::FOUND
    );
    let auth = format!("{base}/oauth2/auth");
    assert_eq!(alice.get(&auth).await.status(), StatusCode::ACCEPTED);

    // Redis hangs: the next /oauth2/auth waits on its session load.
    redis.pause().await;
    let slow = tokio::spawn({
        let mut alice = alice.clone();
        async move { alice.get(&auth).await.status() }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!slow.is_finished(), "the request waits on Redis");

    replica.send_term().await;
    let http = client::http();
    let port = replica.port;
    let get = |path: &'static str| {
        let http = http.clone();
        async move {
            http.get(format!("http://127.0.0.1:{port}{path}"))
                .send()
                .await
                .map(|r| r.status())
        }
    };
    portcullis_e2e::eventually("/ready answers 503", Duration::from_secs(2), || async {
        (get("/ready").await.ok() == Some(StatusCode::SERVICE_UNAVAILABLE)).then_some(())
    })
    .await;
    assert_eq!(
        get("/ping").await.unwrap(),
        StatusCode::OK,
        "liveness stays"
    );
    // After shutdown_delay the listener closes; the request is still in flight.
    portcullis_e2e::eventually("listener closed", Duration::from_secs(6), || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
            .then_some(())
    })
    .await;
    assert!(!slow.is_finished(), "still waiting on Redis");
    redis.unpause().await;
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), slow)
            .await
            .unwrap()
            .unwrap(),
        StatusCode::ACCEPTED,
        "the in-flight request completes"
    );
    assert_eq!(replica.wait(Duration::from_secs(10)).await, Some(0));
}

/// A CA and a certificate for `auth.example.test` signed by it: (CA PEM, cert PEM, key PEM).
fn test_pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Portcullis test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["auth.example.test".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

#[tokio::test]
async fn tls_offers_http2_and_http1_through_alpn() {
    let (ca, cert, key) = test_pki();
    let dir = portcullis_e2e::nginx::tempdir("tls");
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    // No provider is needed for /ping; discovery just keeps retrying.
    let p = Portcullis::start_unready(Options::new("http://127.0.0.1:9").with(&format!(
        "[server]\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    )))
    .await;
    portcullis_oidc::http_client::install_crypto_provider();
    let client = |http1: bool| {
        let b = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
            .resolve("auth.example.test", p.addr)
            .no_proxy();
        if http1 { b.http1_only() } else { b }.build().unwrap()
    };
    let url = format!("https://auth.example.test:{}/ping", p.addr.port());
    let r = client(false).get(&url).send().await.unwrap();
    assert_eq!((r.status(), r.version()), (StatusCode::OK, Version::HTTP_2));
    let r = client(true).get(&url).send().await.unwrap();
    assert_eq!(
        (r.status(), r.version()),
        (StatusCode::OK, Version::HTTP_11)
    );
    // Plain HTTP on the TLS port is refused, not served.
    let plain = client::http()
        .get(format!("http://127.0.0.1:{}/ping", p.addr.port()))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
    // An untrusting client fails the handshake; the server keeps serving.
    let untrusting = reqwest::Client::builder()
        .tls_certs_only([])
        .resolve("auth.example.test", p.addr)
        .build()
        .unwrap();
    assert!(untrusting.get(&url).send().await.is_err());
    let r = client(false).get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn oversized_request_heads_are_refused_cleanly() {
    let p = Portcullis::start_unready(
        Options::new("http://127.0.0.1:9").with("[server]\nmax_header_bytes = 16384"),
    )
    .await;
    let url = format!("http://127.0.0.1:{}/ping", p.addr.port());
    let http1 = client::http();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();
    let fits = "a".repeat(8 * 1024);
    let too_big = "a".repeat(20 * 1024);
    let r = http1.get(&url).header("x-big", &fits).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http1
        .get(&url)
        .header("x-big", &too_big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let r = h2.get(&url).header("x-big", &fits).send().await.unwrap();
    assert_eq!((r.status(), r.version()), (StatusCode::OK, Version::HTTP_2));
    // HTTP/2: a 431 answer or a refused stream, depending on where h2 notices.
    match h2.get(&url).header("x-big", &too_big).send().await {
        Ok(r) => assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        Err(e) => eprintln!("h2 refused the oversized head: {e}"),
    }
    // Still serving, on both protocols.
    assert_eq!(
        http1.get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(h2.get(&url).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn access_log_line_carries_route_user_status_latency_and_trusted_request_id() {
    let Some(idp) = Idp::start(IdpOptions::default()).await else {
        return;
    };
    let opts = Options::new(&idp.issuer).with("[server]\ntrusted_proxies = [\"127.0.0.1/32\"]");
    let log = portcullis_e2e::nginx::tempdir("access-log").join("portcullis.log");
    let replica = Replica::start_logging(&opts, "info", Some(&log)).await;
    let base = replica.public_url();
    let mut alice = Agent::new();
    assert_eq!(
        alice.sign_in(&base, "alice").await.status,
        StatusCode::FOUND
    );
    let r = alice
        .get_with(
            &format!("{base}/oauth2/auth"),
            &[("x-request-id", "nginx-req-4711")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.headers()["x-request-id"], "nginx-req-4711", "echoed");
    assert_eq!(replica.terminate().await, Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("nginx-req-4711") && l.contains("finished processing request"))
        .unwrap_or_else(|| panic!("no access line for the request in:\n{text}"));
    for part in [
        "route=/oauth2/auth",
        "user=\"alice@example.test\"",
        "status=202",
        "latency_us=",
        "method=GET",
    ] {
        assert!(line.contains(part), "{part:?} missing from: {line}");
    }
    // Other lines of a request carry its id too (the log formatter reads the
    // request's context): the sign-in's audit line.
    let sign_in = text
        .lines()
        .find(|l| l.contains("audit event=\"sign_in\""))
        .unwrap_or_else(|| panic!("no sign-in audit line in:\n{text}"));
    assert!(
        sign_in.contains(" INFO request{request_id=\""),
        "no request id on: {sign_in}"
    );

    // From a peer that is not a trusted proxy, the client's id is replaced.
    let p = Portcullis::start_unready(Options::new("http://127.0.0.1:9")).await;
    let r = client::http()
        .get(format!("http://127.0.0.1:{}/ping", p.addr.port()))
        .header("x-request-id", "client-chosen")
        .send()
        .await
        .unwrap();
    let echoed = r.headers()["x-request-id"].to_str().unwrap();
    assert!(!echoed.is_empty() && echoed != "client-chosen", "{echoed}");
}

#[tokio::test]
async fn access_lines_can_be_filtered_out_alone() {
    let Some(idp) = Idp::start(IdpOptions::default()).await else {
        return;
    };
    let opts = Options::new(&idp.issuer);
    let log = portcullis_e2e::nginx::tempdir("no-access-log").join("portcullis.log");
    let replica = Replica::start_logging(&opts, "info,portcullis::access=off", Some(&log)).await;
    let base = replica.public_url();
    let mut alice = Agent::new();
    assert_eq!(
        alice.sign_in(&base, "alice").await.status,
        StatusCode::FOUND
    );
    let r = alice.get(&format!("{base}/oauth2/auth")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(replica.terminate().await, Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("finished processing request"),
        "no access line:\n{text}"
    );
    assert!(
        text.contains("login completed"),
        "other info lines stay:\n{text}"
    );
}
