//! Real `kubectl` driven by the kubeconfig `portcullis login` wrote, against two
//! stand-in API servers that authenticate tokens as kube-apiserver's OIDC
//! authenticator does: both contexts get alice's identity; after the token lifetime
//! kubectl still works without a login, the provider having seen refreshes only
//! through Portcullis; 20 parallel kubectl calls at expiry make one refresh; a revoked
//! session makes the next kubectl call fail with the command to run, and
//! `portcullis login --device` signs it in again. Every browser part is headless
//! Chromium.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use portcullis_e2e::apiserver::ApiServer;
use portcullis_e2e::browser::Browser;
use portcullis_e2e::idp::{CLIENT_ID, Idp, IdpOptions};
use portcullis_e2e::jwt::now;
use portcullis_e2e::kubectl::{Running, approve_in_chromium};
use portcullis_e2e::portcullis_server::{Options, Portcullis};
use portcullis_e2e::redis::Redis;
use tokio::process::Command;

fn kubectl() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("kubectl"))
            .find(|p| p.is_file())
    });
    portcullis_e2e::require(
        "kubectl",
        found.is_some(),
        "apt-get install kubernetes-client (or any kubectl >= 1.22 on PATH)",
    )
    .then_some(found)
    .flatten()
}

/// `kubectl --context <context> get --raw /whoami` with `home` as `$HOME`.
async fn whoami(kubectl: &Path, home: &Path, context: &str) -> (bool, serde_json::Value, String) {
    let out = Command::new(kubectl)
        .args(["--kubeconfig"])
        .arg(home.join(".kube/config"))
        .args(["--context", context, "get", "--raw", "/whoami"])
        .env("HOME", home)
        .env_remove("KUBECONFIG")
        .output()
        .await
        .unwrap();
    let body = serde_json::from_slice(&out.stdout).unwrap_or_default();
    (
        out.status.success(),
        body,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn kubectl_signs_in_through_portcullis_on_two_clusters() {
    let Some(kubectl) = kubectl() else { return };
    let Some(redis) = Redis::start().await else {
        return;
    };
    let ttl = 12;
    let Some(idp) = Idp::start(IdpOptions {
        id_token_ttl: Some(ttl),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let c1 = ApiServer::start("c1", &idp.issuer, CLIENT_ID).await;
    let c2 = ApiServer::start("c2", &idp.issuer, CLIENT_ID).await;
    let p = Portcullis::start(Options::new(&idp.issuer).with(&format!(
        "[session]\nstore = \"redis\"\n[redis]\nurl = \"{}\"\n\
         [[clusters]]\nname = \"c1\"\nserver = \"{}\"\ncertificate_authority = \"{}\"\n\
         [[clusters]]\nname = \"c2\"\nserver = \"{}\"\ncertificate_authority = \"{}\"\n",
        redis.url(),
        c1.url(),
        c1.ca_file.display(),
        c2.url(),
        c2.ca_file.display()
    )))
    .await;
    let server = format!("http://{}", p.addr);
    let home = portcullis_e2e::nginx::tempdir("kubectl-real");
    let Some(browser) = Browser::start().await else {
        return;
    };
    // The browser part in Chromium: our sign-in page, the provider, the consent page,
    // the redirect to the CLI's loopback listener.
    let started = std::time::Instant::now();
    let mut cli = Running::spawn(&home, &["login", "--server", &server, "--no-browser"]);
    let url = cli.line_with("/oauth2/cli/authorize?").await;
    let url = url.trim().replacen(&server, &p.public_url, 1);
    approve_in_chromium(&browser, &url, "alice", "Signed in. You can close").await;
    let (ok, said) = cli.finish().await;
    assert!(ok, "{said}");
    assert!(said.contains("Signed in as alice@example.test"), "{said}");
    assert!(said.contains("Configured contexts c1, c2"), "{said}");
    println!(
        "portcullis login, URL printed to kubeconfig written (Chromium, provider login included): {} ms",
        started.elapsed().as_millis()
    );

    for (context, api) in [("c1", &c1), ("c2", &c2)] {
        let (ok, who, err) = whoami(&kubectl, &home, context).await;
        assert!(
            ok,
            "kubectl --context {context}: {err} (api server: {})",
            api.stats().await
        );
        assert_eq!(who["cluster"], context);
        assert_eq!(who["username"], "alice@example.test");
        assert!(
            who["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g == "platform-admins")
        );
        assert_eq!(api.stats().await["refused"], 0);
    }

    // What the README promises: `kubectl get pods` on both clusters.
    for context in ["c1", "c2"] {
        let out = Command::new(&kubectl)
            .args(["--kubeconfig"])
            .arg(home.join(".kube/config"))
            .args(["--context", context, "get", "pods"])
            .env("HOME", &home)
            .env_remove("KUBECONFIG")
            .output()
            .await
            .unwrap();
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "kubectl get pods: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            printed.contains("NAME") && printed.contains(&format!("dashboard-{context}")),
            "{printed}"
        );
    }

    // Past the first token's lifetime kubectl keeps working, with no login.
    let code_grants = idp.stats().await["authorization_code_grants"].clone();
    let until = now() + ttl + 2;
    while now() < until {
        let (ok, who, err) = whoami(&kubectl, &home, "c1").await;
        assert!(ok, "{err}");
        assert!(
            who["exp"].as_u64().unwrap() > now(),
            "never an expired token"
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let stats = idp.stats().await;
    assert_eq!(
        stats["authorization_code_grants"], code_grants,
        "no new login"
    );
    assert!(stats["refresh_grants"].as_u64().unwrap() >= 1, "{stats}");

    // 20 parallel kubectl calls as the token comes due: one refresh.
    let (_, who, _) = whoami(&kubectl, &home, "c2").await;
    let due = who["exp"].as_u64().unwrap().saturating_sub(ttl / 3);
    while now() < due {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = idp.refreshes().await;
    let mut calls = Vec::new();
    for i in 0..20 {
        let (kubectl, home) = (kubectl.clone(), home.clone());
        let context = if i % 2 == 0 { "c1" } else { "c2" };
        calls.push(tokio::spawn(async move {
            whoami(&kubectl, &home, context).await
        }));
    }
    for c in calls {
        let (ok, who, err) = c.await.unwrap();
        assert!(ok, "{err}");
        assert_eq!(who["username"], "alice@example.test");
    }
    let refreshes = idp.refreshes().await - before;
    println!(
        "real kubectl, 20 parallel calls over two contexts at expiry: {refreshes} refresh(es) at the provider"
    );
    assert_eq!(refreshes, 1);
    assert_eq!(c1.stats().await["expired"], 0);
    assert_eq!(c2.stats().await["expired"], 0);

    // Revoked: the next kubectl call fails, naming the command to run.
    let store = match p.state.sessions.store() {
        portcullis_session::store::AnyStore::Redis(r) => r.clone(),
        _ => unreachable!(),
    };
    store.revoke_user("alice@example.test").await.unwrap();
    // The plugin serves its cached token until it comes due; wait for that.
    let (_, who, _) = whoami(&kubectl, &home, "c1").await;
    let due = who["exp"].as_u64().unwrap_or(0).saturating_sub(ttl / 3);
    while now() < due {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (ok, _, err) = whoami(&kubectl, &home, "c1").await;
    assert!(!ok);
    assert!(err.contains("portcullis login --server"), "{err}");

    // Signed in again without a local browser: `--device`, approved in Chromium.
    let mut device = Running::spawn(&home, &["login", "--device", "--server", &server]);
    let line = device.line_with("/oauth2/device?user_code=").await;
    let url = line
        .trim()
        .trim_start_matches("(or open ")
        .trim_end_matches(')')
        .to_owned();
    assert!(url.starts_with(&p.public_url), "{url}");
    approve_in_chromium(&browser, &url, "alice", "Device signed in").await;
    let (ok, said) = device.finish().await;
    assert!(ok, "{said}");
    assert!(said.contains("Signed in as alice@example.test"), "{said}");
    let (ok, who, err) = whoami(&kubectl, &home, "c2").await;
    assert!(ok, "{err}");
    assert_eq!(who["username"], "alice@example.test");
    browser.quit().await;
}
