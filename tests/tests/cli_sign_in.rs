//! kubectl sign-in through Portcullis, the server half, driven over HTTP as the CLI
//! would drive it (RFC 8252 loopback redirect with PKCE): the consent page, the
//! one-time code, the token endpoint's code and refresh grants, the CLI session on the
//! user's shared grant (browser and CLI both stay signed in), `/oauth2/clusters`, and
//! every hostile input the endpoints must refuse.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::Engine as _;
use portcullis_e2e::client::{Agent, absolute, enc};
use portcullis_e2e::idp::{Idp, IdpOptions};
use portcullis_e2e::jwt::{exp, now};
use portcullis_e2e::kubectl::csrf_of;
use portcullis_e2e::portcullis_server::{Options, Portcullis};
use portcullis_e2e::redis::Redis;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CALLBACK: &str = "http://127.0.0.1:41234/callback";
const CLUSTERS: &str = "[[clusters]]\nname = \"c1\"\nserver = \"https://c1.example.test:6443\"\n\
    description = \"the first cluster\"\n\
    [[clusters]]\nname = \"c2\"\nserver = \"https://c2.example.test:6443\"\n\
    allowed_groups = [\"platform-admins\"]\n";

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier))
}

fn authorize_url(base: &str, redirect_uri: &str, challenge: &str, state: &str) -> String {
    format!(
        "{base}/oauth2/cli/authorize?redirect_uri={}&code_challenge={}&code_challenge_method=S256&state={}&client_host=laptop-1",
        enc(redirect_uri),
        enc(challenge),
        enc(state)
    )
}

async fn stack(redis: &Redis, ttl: u64) -> Option<(Idp, Portcullis)> {
    let idp = Idp::start(IdpOptions {
        id_token_ttl: Some(ttl),
        ..Default::default()
    })
    .await?;
    let p = Portcullis::start(Options::new(&idp.issuer).with(&format!(
        "[session]\nstore = \"redis\"\n[redis]\nurl = \"{}\"\n{CLUSTERS}",
        redis.url()
    )))
    .await;
    Some((idp, p))
}

/// Runs the browser half: the consent page as `agent`, approved; the loopback
/// redirect's query.
async fn approve(agent: &mut Agent, base: &str, redirect_uri: &str) -> url::Url {
    let page = agent
        .get(&authorize_url(
            base,
            redirect_uri,
            &challenge(VERIFIER),
            "st-1",
        ))
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    let body = page.text().await.unwrap();
    let r = agent
        .post_form(
            &format!("{base}/oauth2/cli/authorize"),
            &format!("csrf={}&decision=approve", enc(&csrf_of(&body))),
            true,
        )
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap()
}

fn query(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn token(agent: &Agent, base: &str, body: &str) -> (StatusCode, serde_json::Value) {
    let r = agent
        .post_form(&format!("{base}/oauth2/cli/token"), body, false)
        .await;
    let status = r.status();
    (status, r.json().await.unwrap())
}

fn code_body(code: &str, verifier: &str, redirect_uri: &str) -> String {
    format!(
        "grant_type=authorization_code&code={}&code_verifier={}&redirect_uri={}",
        enc(code),
        enc(verifier),
        enc(redirect_uri)
    )
}

/// Without a browser session the authorize request signs the user in first and
/// comes back to itself; with one: consent, code, token, refresh. The CLI session and
/// the browser session share the user's grant: after several token lifetimes both
/// still work, the provider saw one code grant, and no refresh was refused.
#[tokio::test]
async fn cli_sign_in_shares_the_browser_grant() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let ttl = 6;
    let Some((idp, p)) = stack(&redis, ttl).await else {
        return;
    };
    let base = &p.public_url;
    let mut browser = Agent::new();
    let authorize = authorize_url(base, CALLBACK, &challenge(VERIFIER), "st-1");
    let r = browser.get(&authorize).await;
    assert_eq!(r.status(), StatusCode::FOUND, "to the sign-in first");
    let sign_in = absolute(&authorize, r.headers()["location"].to_str().unwrap());
    assert!(sign_in.contains("/oauth2/sign_in?rd="), "{sign_in}");
    let landing = browser
        .login(
            &sign_in.replace("/oauth2/sign_in?", "/oauth2/start?"),
            "alice@example.test",
            "alice-password",
        )
        .await;
    assert_eq!(landing.status, StatusCode::FOUND);
    let back = landing.location.unwrap();
    assert!(
        back.contains("/oauth2/cli/authorize?"),
        "back to the request: {back}"
    );

    let page = browser.get(&absolute(base, &back)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:*"),
        "{csp}"
    );
    let body = page.text().await.unwrap();
    assert!(body.contains("alice@example.test") && body.contains("laptop-1"));
    assert!(
        body.contains("<li>c1</li>") && body.contains("<li>c2</li>"),
        "{body}"
    );

    let loopback = approve(&mut browser, base, CALLBACK).await;
    assert_eq!(
        loopback.origin().ascii_serialization(),
        "http://127.0.0.1:41234"
    );
    assert_eq!(query(&loopback, "state").as_deref(), Some("st-1"));
    let code = query(&loopback, "code").unwrap();

    let cli = Agent::new();
    let (status, issued) = token(&cli, base, &code_body(&code, VERIFIER, CALLBACK)).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let id_token = issued["id_token"].as_str().unwrap().to_owned();
    let credential = issued["refresh_token"].as_str().unwrap().to_owned();
    assert!(exp(&id_token) > now());
    assert_eq!(issued["user"], "alice@example.test");
    assert!(!credential.contains('.'), "an opaque credential, not a JWT");

    // The code is single use.
    let (status, again) = token(&cli, base, &code_body(&code, VERIFIER, CALLBACK)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(again["error"], "invalid_grant");

    // The CLI lists its clusters with its credential.
    let listed: serde_json::Value = cli
        .http
        .get(format!("{base}/oauth2/clusters"))
        .bearer_auth(&credential)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["c1", "c2"]);

    // `sessions list` shows the browser and the CLI session, with the CLI's host.
    let store = match p.state.sessions.store() {
        portcullis_session::store::AnyStore::Redis(r) => r.clone(),
        _ => unreachable!(),
    };
    let sessions = store.list_user("alice@example.test").await.unwrap();
    // Both may have been created in the same second, so their order is not fixed.
    let mut kinds: Vec<(&str, &str, bool)> = sessions
        .iter()
        .map(|s| (s.kind.as_str(), s.client.as_str(), s.last_used.is_some()))
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, [("browser", "", false), ("cli", "laptop-1", true)]);

    // Several token lifetimes: the CLI refreshes through Portcullis, the browser keeps
    // working, the provider refreshes the one grant.
    let refresh = format!(
        "grant_type=refresh_token&refresh_token={}",
        enc(&credential)
    );
    let until = std::time::Instant::now() + Duration::from_secs(3 * ttl);
    let mut cli_tokens = std::collections::HashSet::new();
    while std::time::Instant::now() < until {
        let (status, t) = token(&cli, base, &refresh).await;
        assert_eq!(status, StatusCode::OK, "{t}");
        let jwt = t["id_token"].as_str().unwrap().to_owned();
        assert!(exp(&jwt) > now(), "never an expired token");
        cli_tokens.insert(jwt);
        let r = browser.get(&format!("{base}/oauth2/auth")).await;
        assert_eq!(
            r.status(),
            StatusCode::ACCEPTED,
            "the browser stays signed in"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let stats = idp.stats().await;
    println!(
        "browser + CLI session of alice over {}s ({ttl}s tokens): {} distinct CLI tokens, \
         code grants {}, refreshes {}, refused {}",
        3 * ttl,
        cli_tokens.len(),
        stats["authorization_code_grants"],
        stats["refresh_grants"],
        stats["refresh_failures"]
    );
    assert!(cli_tokens.len() >= 3, "the CLI got refreshed tokens");
    assert_eq!(stats["authorization_code_grants"], 1, "{stats}");
    assert_eq!(stats["refresh_failures"], 0, "{stats}");

    // Signing the browser out leaves the CLI signed in (its own session), and
    // revoking the user ends it with a clear answer.
    browser.get(&format!("{base}/oauth2/sign_out")).await;
    assert_eq!(token(&cli, base, &refresh).await.0, StatusCode::OK);
    assert_eq!(store.revoke_user("alice@example.test").await.unwrap(), 1);
    let (status, refused) = token(&cli, base, &refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"], "invalid_grant");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("portcullis login"),
        "{refused}"
    );
}

/// Everything the CLI endpoints must refuse.
#[tokio::test]
async fn hostile_cli_requests_are_refused() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let Some((_idp, p)) = stack(&redis, 300).await else {
        return;
    };
    let base = &p.public_url;
    let mut alice = Agent::new();
    alice.sign_in(base, "alice").await;
    let good = challenge(VERIFIER);

    // Authorization requests: non-loopback redirects, no PKCE, plain PKCE, no state.
    for (redirect_uri, chal, method, state) in [
        ("http://evil.example:41234/cb", good.as_str(), "S256", "s"),
        ("http://localhost:41234/cb", good.as_str(), "S256", "s"),
        ("https://127.0.0.1:41234/cb", good.as_str(), "S256", "s"),
        ("http://127.0.0.1/cb", good.as_str(), "S256", "s"),
        ("http://127.0.0.1:41234/cb#x", good.as_str(), "S256", "s"),
        (
            "http://127.0.0.1:41234@evil.example/cb",
            good.as_str(),
            "S256",
            "s",
        ),
        (CALLBACK, "", "S256", "s"),
        (CALLBACK, VERIFIER, "plain", "s"),
        (CALLBACK, good.as_str(), "S256", ""),
    ] {
        let url = format!(
            "{base}/oauth2/cli/authorize?redirect_uri={}&code_challenge={}&code_challenge_method={method}&state={}",
            enc(redirect_uri),
            enc(chal),
            enc(state)
        );
        let r = alice.get(&url).await;
        assert_eq!(
            r.status(),
            StatusCode::BAD_REQUEST,
            "{redirect_uri} {chal} {method} {state:?}"
        );
        assert!(r.headers().get("location").is_none());
    }

    // Consent: no CSRF token, a forged one, and another user's.
    let form = format!("{base}/oauth2/cli/authorize");
    for body in ["decision=approve", "csrf=AAAA&decision=approve"] {
        let r = alice.post_form(&form, body, true).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{body}");
    }
    let mut bob = Agent::new();
    bob.sign_in(base, "bob").await;
    let bobs_page = bob
        .get(&authorize_url(base, CALLBACK, &good, "s"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !bobs_page.contains("<li>c2</li>"),
        "c2 is for platform-admins only"
    );
    let bobs = csrf_of(&bobs_page);
    let r = alice
        .post_form(
            &form,
            &format!("csrf={}&decision=approve", enc(&bobs)),
            true,
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "bob's form is not alice's"
    );
    let r = bob
        .post_form(
            &form,
            &format!("csrf={}&decision=approve", enc(&bobs)),
            false,
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no session, no approval");
    // Denied: back to the CLI with access_denied, no code.
    let r = bob
        .post_form(&form, &format!("csrf={}&decision=deny", enc(&bobs)), true)
        .await;
    let denied = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(query(&denied, "error").as_deref(), Some("access_denied"));
    assert!(query(&denied, "code").is_none());

    // Token endpoint: wrong verifier, other redirect URI, garbage code, unknown grant.
    let cli = Agent::new();
    let code = query(&approve(&mut alice, base, CALLBACK).await, "code").unwrap();
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX";
    let (status, e) = token(&cli, base, &code_body(&code, wrong, CALLBACK)).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, _) = token(&cli, base, &code_body(&code, VERIFIER, CALLBACK)).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a failed attempt used the code up"
    );
    let code = query(&approve(&mut alice, base, CALLBACK).await, "code").unwrap();
    let other = "http://127.0.0.1:41235/callback";
    let (status, _) = token(&cli, base, &code_body(&code, VERIFIER, other)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "bound to its redirect URI");
    for body in [
        code_body("garbage", VERIFIER, CALLBACK),
        code_body(&"A".repeat(43), VERIFIER, CALLBACK),
        "grant_type=password&username=alice".to_owned(),
        "grant_type=refresh_token&refresh_token=garbage".to_owned(),
        "%%%".to_owned(),
    ] {
        let (status, e) = token(&cli, base, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {e}");
        assert!(e["error"].is_string());
    }

    // Clusters: nobody gets none; bob only those his groups allow.
    let r = cli
        .http
        .get(format!("{base}/oauth2/clusters"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let listed: serde_json::Value = bob
        .get(&format!("{base}/oauth2/clusters"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["clusters"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["clusters"][0]["name"], "c1");
}

/// `/oauth2/kubeconfig`: signs the user in first; lists their clusters (only those
/// their groups allow) with the commands to run; the download is a kubeconfig real
/// kubectl reads, holding exec entries and no token.
#[tokio::test]
async fn the_kubeconfig_page_and_download() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let Some((_idp, p)) = stack(&redis, 300).await else {
        return;
    };
    let base = &p.public_url;
    let mut nobody = Agent::new();
    let r = nobody.get(&format!("{base}/oauth2/kubeconfig")).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("rd=%2Foauth2%2Fkubeconfig"),
        "back here after sign-in"
    );

    let mut bob = Agent::new();
    bob.sign_in(base, "bob").await;
    let page = bob.get(&format!("{base}/oauth2/kubeconfig")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let body = page.text().await.unwrap();
    assert!(body.contains("bob@example.test"), "{body}");
    assert!(
        body.contains("<code>c1</code>: the first cluster"),
        "{body}"
    );
    assert!(
        !body.contains("<code>c2</code>"),
        "c2 needs platform-admins: {body}"
    );
    // minijinja's HTML escaping writes `/` as `&#x2f;`; browsers show `/`.
    assert!(
        body.contains(&format!(
            "portcullis login --server {}",
            base.replace('/', "&#x2f;")
        )),
        "{body}"
    );
    assert!(body.contains("kubectl --context c1 get pods"));

    let mut alice = Agent::new();
    alice.sign_in(base, "alice").await;
    let download = alice
        .get(&format!("{base}/oauth2/kubeconfig?download=1"))
        .await;
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.headers()["content-type"], "application/yaml");
    assert!(
        download.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let yaml = download.text().await.unwrap();
    assert!(!yaml.contains("eyJ"), "no token in it: {yaml}");
    let file = portcullis_e2e::nginx::tempdir("kubeconfig-download").join("config");
    std::fs::write(&file, &yaml).unwrap();
    let Some(kubectl) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("kubectl"))
            .find(|p| p.is_file())
    }) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "kubectl is required in CI"
        );
        return;
    };
    let out = tokio::process::Command::new(kubectl)
        .args(["config", "view", "-o", "json", "--kubeconfig"])
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let contexts: Vec<&str> = view["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(contexts, ["c1", "c2"]);
    let exec = &view["users"][0]["user"]["exec"];
    assert_eq!(exec["command"], "portcullis");
    assert_eq!(exec["args"][0], "kubectl-credential");
    assert_eq!(exec["args"][2], base.as_str());
}
