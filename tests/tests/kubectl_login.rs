//! The command-line half, run as users run it: the real `portcullis login` binary
//! (loopback listener, PKCE) with the browser part done by an HTTP agent signed in
//! as alice, the kubeconfig it writes, the `kubectl-credential` exec plugin (its
//! cache, its file lock: 20 parallel calls at expiry make one refresh), its own
//! sign-in when the call is interactive (one browser tab a minute at most), and
//! `portcullis logout`.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use portcullis_e2e::client::Agent;
use portcullis_e2e::idp::{Idp, IdpOptions};
use portcullis_e2e::jwt::{exp, now};
use portcullis_e2e::kubectl::{Running, approve_as, login, run};
use portcullis_e2e::portcullis_server::{Options, Portcullis};
use portcullis_e2e::redis::Redis;
use reqwest::StatusCode;

const CLUSTERS: &str = "[[clusters]]\nname = \"c1\"\nserver = \"https://c1.example.test:6443\"\n\
    certificate_authority = \"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"\n\
    [[clusters]]\nname = \"c2\"\nserver = \"https://c2.example.test:6443\"\n";

#[tokio::test]
async fn login_writes_kubeconfig_and_the_plugin_refreshes_once_for_parallel_calls() {
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
    let p = Portcullis::start(Options::new(&idp.issuer).with(&format!(
        "[session]\nstore = \"redis\"\n[redis]\nurl = \"{}\"\n{CLUSTERS}",
        redis.url()
    )))
    .await;
    let server = format!("http://{}", p.addr);
    let home = portcullis_e2e::nginx::tempdir("kubectl-home");
    let mut browser = Agent::new();
    browser.sign_in(&p.public_url, "alice").await;

    let t0 = std::time::Instant::now();
    let said = login(&home, &server, &p.public_url, &mut browser).await;
    let login_time = t0.elapsed();
    assert!(
        said.contains("Signed in as alice@example.test (groups: ")
            && said.contains("platform-admins"),
        "{said}"
    );
    assert!(said.contains("Configured contexts c1, c2"), "{said}");

    let kubeconfig = std::fs::read_to_string(home.join(".kube/config")).unwrap();
    for want in [
        "name: c1",
        "name: c2",
        "server: https://c1.example.test:6443",
        "certificate-authority-data:",
        "kubectl-credential",
        "apiVersion: client.authentication.k8s.io/v1",
        "interactiveMode: IfAvailable",
        "portcullis@127.0.0.1",
    ] {
        assert!(kubeconfig.contains(want), "{want} missing in\n{kubeconfig}");
    }
    assert!(!kubeconfig.contains("eyJ"), "no token in kubeconfig");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home.join(".kube/config")), 0o600);
    let cache_dir = home.join(".kube/cache/portcullis");
    assert_eq!(mode(&cache_dir), 0o700);

    // The plugin, as kubectl runs it.
    let (code, out, err) = run(&home, &["kubectl-credential", "--server", &server]).await;
    assert_eq!(code, 0, "{err}");
    let cred: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cred["kind"], "ExecCredential");
    let token = cred["status"]["token"].as_str().unwrap().to_owned();
    assert!(exp(&token) > now());
    let t1 = std::time::Instant::now();
    for _ in 0..10 {
        run(&home, &["kubectl-credential", "--server", &server]).await;
    }
    let per_call = t1.elapsed() / 10;

    // At expiry, 20 parallel kubectl calls: one refresh at the provider.
    let due = exp(&token).saturating_sub((ttl / 3).min(30));
    while now() < due {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = idp.refreshes().await;
    let mut calls = Vec::new();
    for _ in 0..20 {
        let home = home.clone();
        let server = server.clone();
        calls.push(tokio::spawn(async move {
            run(&home, &["kubectl-credential", "--server", &server]).await
        }));
    }
    let mut tokens = std::collections::HashSet::new();
    for c in calls {
        let (code, out, err) = c.await.unwrap();
        assert_eq!(code, 0, "{err}");
        let cred: serde_json::Value = serde_json::from_str(&out).unwrap();
        let t = cred["status"]["token"].as_str().unwrap().to_owned();
        assert!(exp(&t) > now(), "never an expired token");
        tokens.insert(t);
    }
    let refreshes = idp.refreshes().await - before;
    println!(
        "portcullis login: {login_time:?} from start to kubeconfig; kubectl-credential from its cache: {per_call:?} per call (debug build, process start included); 20 parallel calls at expiry: {refreshes} refresh(es) at the provider, {} distinct token(s)",
        tokens.len()
    );
    assert_eq!(refreshes, 1, "one refresh for 20 parallel kubectl calls");
    assert_eq!(tokens.len(), 1);
    // The browser session survived the CLI's refresh (one grant for both).
    assert_eq!(
        browser
            .get(&format!("{}/oauth2/auth", p.public_url))
            .await
            .status(),
        StatusCode::ACCEPTED
    );

    // A cache file others can read is refused, and says what to do.
    let cache_file = std::fs::read_dir(&cache_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    assert_eq!(mode(&cache_file), 0o600);
    std::fs::set_permissions(&cache_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = run(&home, &["kubectl-credential", "--server", &server]).await;
    assert_ne!(code, 0);
    assert!(err.contains("readable by others"), "{err}");
    std::fs::set_permissions(&cache_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Logout ends the CLI session on the server (its credential is refused there);
    // the plugin then names the command.
    let cached: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache_file).unwrap()).unwrap();
    let credential = cached["refresh_token"].as_str().unwrap().to_owned();
    let (code, _, err) = run(&home, &["logout", "--server", &server]).await;
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("did not confirm"), "{err}");
    let refused = browser
        .http
        .post(format!("{server}/oauth2/cli/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &credential),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        StatusCode::BAD_REQUEST,
        "ended on the server"
    );
    let (code, _, err) = run(&home, &["kubectl-credential", "--server", &server]).await;
    assert_ne!(code, 0);
    assert!(err.contains("portcullis login --server"), "{err}");
    assert!(
        !home.join("opened").exists(),
        "not interactive: no browser opened"
    );

    // Interactive (kubectl passes a terminal): the plugin signs in again itself, in
    // the browser `$BROWSER` names; a second try within the minute opens nothing.
    let opener = home.join("open-browser");
    std::fs::write(
        &opener,
        format!(
            "#!/bin/sh\necho \"$1\" >> {}\n",
            home.join("opened").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    let interactive = r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":true}}"#;
    let env = [
        ("KUBERNETES_EXEC_INFO", interactive),
        ("BROWSER", opener.to_str().unwrap()),
    ];
    let plugin = Running::spawn_with(&home, &["kubectl-credential", "--server", &server], &env);
    let opened = portcullis_e2e::eventually("the browser opened", Duration::from_secs(20), || {
        let path = home.join("opened");
        async move { std::fs::read_to_string(path).ok().filter(|t| !t.is_empty()) }
    })
    .await;
    let url = opened.trim().replacen(&server, &p.public_url, 1);
    approve_as(&mut browser, &url, &p.public_url).await;
    let (ok, out, err) = plugin.finish_output().await;
    assert!(ok, "{err}");
    assert!(err.contains("signing in again"), "{err}");
    let cred: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(exp(cred["status"]["token"].as_str().unwrap()) > now());
    let (code, _, _) = run(&home, &["logout", "--server", &server]).await;
    assert_eq!(code, 0);
    let again = Running::spawn_with(&home, &["kubectl-credential", "--server", &server], &env);
    let (ok, _, err) = again.finish_output().await;
    assert!(!ok);
    assert!(err.contains("less than a minute ago"), "{err}");
    assert_eq!(
        std::fs::read_to_string(home.join("opened"))
            .unwrap()
            .lines()
            .count(),
        1,
        "one browser tab a minute, never a storm"
    );
    assert_eq!(
        browser
            .get(&format!("{}/oauth2/auth", p.public_url))
            .await
            .status(),
        StatusCode::ACCEPTED,
        "the browser stays signed in"
    );
}
