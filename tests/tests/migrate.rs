//! `portcullis config from-oauth2-proxy` end to end: oauth2-proxy configurations (a
//! config file, the Dex guide's flags with an env file, the Helm chart's layout with
//! the process environment and Redis) are translated by the real binary, the output is
//! checked with `portcullis config check` (failing without the variables it names,
//! passing with them), and Portcullis is run from it behind real nginx: the browser
//! login through `auth_request` reaches the dashboards with a verified token.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use portcullis_e2e::client::Agent;
use portcullis_e2e::dashboard::Dashboard;
use portcullis_e2e::idp::{CLIENT_ID, CLIENT_SECRET, Idp, IdpOptions};
use portcullis_e2e::nginx::{Nginx, Site, tempdir};
use portcullis_e2e::process::binary;
use reqwest::StatusCode;
use tokio::process::{Child, Command};

/// An oauth2-proxy cookie secret in its usual form (URL-safe base64 of 32 bytes).
const OLD_COOKIE_SECRET: &str = "OQINaROshtE9TcZkNAm-5Zs2Pv3xaWytBmc5W7sPX7w=";

/// One oauth2-proxy configuration and how the translator is called on it.
struct Case {
    /// `--config FILE` content, if any.
    file: Option<String>,
    /// `--env-file` content, if any.
    env_file: Option<String>,
    /// Variables in the translator's own process environment.
    process_env: Vec<(String, String)>,
    /// oauth2-proxy flags (after `--`).
    flags: Vec<String>,
    /// Variables the output must name (and that the test then sets).
    expect_env: &'static [&'static str],
    /// Paths on the dashboard and whether they pass without a session (skip-auth
    /// rules translated).
    open_paths: &'static [(&'static str, bool)],
    /// A user the translated policy must refuse (403, never a login loop).
    refused: Option<(&'static str, &'static str)>,
}

/// Everything but Portcullis: the provider, two dashboards.
struct World {
    idp: Idp,
    dashboards: Vec<Dashboard>,
}

async fn run(
    args: &[&str],
    env: &[(String, String)],
    clear_oauth2_env: bool,
) -> (i32, String, String) {
    let mut cmd = Command::new(binary());
    cmd.args(args).envs(env.iter().cloned());
    if clear_oauth2_env {
        for (k, _) in std::env::vars()
            .filter(|(k, _)| k.starts_with("OAUTH2_PROXY_") || k.starts_with("PORTCULLIS_"))
        {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `portcullis serve` from `config`, killed on drop.
async fn serve(config: &Path, port: u16, env: &[(String, String)]) -> Child {
    let child = Command::new(binary())
        .args(["serve", "--config"])
        .arg(config)
        .envs(env.iter().cloned())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = portcullis_e2e::client::http();
    let url = format!("http://127.0.0.1:{port}/ready");
    portcullis_e2e::eventually(
        "translated Portcullis ready",
        Duration::from_secs(30),
        || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.get(url)
                    .send()
                    .await
                    .ok()?
                    .status()
                    .is_success()
                    .then_some(())
            }
        },
    )
    .await;
    child
}

/// Translates `case`, checks it, runs it behind nginx and signs in through it.
async fn translate_and_sign_in(
    w: &World,
    dir: &Path,
    case: Case,
    nginx_port: u16,
    port: u16,
) -> String {
    let out = dir.join("portcullis.toml");
    let mut args: Vec<String> = vec![
        "config".into(),
        "from-oauth2-proxy".into(),
        "-o".into(),
        out.display().to_string(),
    ];
    for (name, content, flag) in [
        ("oauth2-proxy.cfg", &case.file, "--config"),
        ("oauth2-proxy.env", &case.env_file, "--env-file"),
    ] {
        if let Some(text) = content {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            args.extend([flag.to_owned(), path.display().to_string()]);
        }
    }
    args.push("--".into());
    args.extend(case.flags.iter().cloned());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = run(&argv, &case.process_env, true).await;
    assert_eq!(code, 0, "everything translates: {stderr}");
    assert!(stderr.contains("Every setting was translated"), "{stderr}");
    assert!(stdout.is_empty(), "-o writes the file only");
    let toml = std::fs::read_to_string(&out).unwrap();
    for secret in [CLIENT_SECRET, OLD_COOKIE_SECRET] {
        assert!(
            !toml.contains(secret) && !stderr.contains(secret),
            "a secret leaked:\n{toml}\n{stderr}"
        );
    }
    for var in case.expect_env {
        assert!(
            stderr.contains(var) && toml.contains(var),
            "{var} is named:\n{stderr}"
        );
    }

    // What the output tells the operator to set: the client secret (from where it came)
    // and a new cookie key from `portcullis secret`.
    let (_, key, _) = run(&["secret"], &[], true).await;
    let mut env = Vec::new();
    for var in case.expect_env {
        let value = match *var {
            "PORTCULLIS_OIDC__CLIENT_SECRET" => CLIENT_SECRET.to_owned(),
            "PORTCULLIS_COOKIE__SECRETS" => format!("[\"{}\"]", key.trim()),
            other => panic!("unexpected variable {other}"),
        };
        env.push(((*var).to_owned(), value));
    }
    let check = ["config", "check", "--config", out.to_str().unwrap()];
    let (code, _, stderr) = run(&check, &[], true).await;
    assert_eq!(
        code, 2,
        "without the named variables the check fails: {stderr}"
    );
    let (code, stdout, stderr) = run(&check, &env, true).await;
    assert_eq!(
        (code, stdout.trim()),
        (0, "configuration OK"),
        "{stderr}\n{toml}"
    );

    let _portcullis = serve(&out, port, &env).await;
    let sites: Vec<Site> = w
        .dashboards
        .iter()
        .zip(["c1", "c2"])
        .map(|(d, name)| Site {
            host: format!("dashboard.{name}.example.test"),
            upstream_port: d.port,
        })
        .collect();
    let nginx = Nginx::start(nginx_port, port, &sites).await.unwrap();

    for (path, open) in case.open_paths {
        let r = Agent::new()
            .get(&format!(
                "http://dashboard.c1.example.test:{nginx_port}{path}"
            ))
            .await;
        let status = if *open {
            StatusCode::OK
        } else {
            StatusCode::FOUND
        };
        assert_eq!(r.status(), status, "{path} without a session");
    }

    // The nginx auth_request login, as in nginx_auth_request.rs.
    let c1 = format!("http://dashboard.c1.example.test:{nginx_port}/whoami.json?x=1");
    let mut agent = Agent::new();
    let r = agent.get(&c1).await;
    assert_eq!(
        r.status(),
        StatusCode::FOUND,
        "nginx log: {}",
        nginx.error_log()
    );
    let to_idp = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(to_idp.starts_with(&w.idp.issuer), "{to_idp}");
    let form = agent.follow_to_form(to_idp).await;
    let callback = agent
        .submit_login(&form, "alice@example.test", "alice-password")
        .await;
    assert!(
        callback.starts_with(&format!(
            "http://auth.example.test:{nginx_port}/oauth2/callback"
        )),
        "{callback}"
    );
    let landing = agent.finish_login(&callback).await;
    assert_eq!(landing.status, StatusCode::FOUND, "{}", landing.body);
    assert_eq!(
        landing.location.as_deref(),
        Some(c1.as_str()),
        "back to the dashboard (whitelist translated)"
    );
    let r = agent.get(&c1).await;
    assert_eq!(r.status(), StatusCode::OK);
    let who: serde_json::Value = r.json().await.unwrap();
    assert_eq!(who["verified"], true, "{who}");
    assert_eq!(who["headers"]["user"], "alice@example.test");
    // The second cluster shares the session (cookie domain translated).
    let r = agent
        .get(&format!(
            "http://dashboard.c2.example.test:{nginx_port}/whoami.json"
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    if let Some((user, password)) = case.refused {
        let mut agent = Agent::new();
        let r = agent.get(&c1).await;
        let form = agent
            .follow_to_form(r.headers()["location"].to_str().unwrap().to_owned())
            .await;
        let callback = agent.submit_login(&form, user, password).await;
        assert_eq!(
            agent.finish_login(&callback).await.status,
            StatusCode::FORBIDDEN,
            "{user}"
        );
        assert_eq!(agent.get(&c1).await.status(), StatusCode::FORBIDDEN);
    }
    toml
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn translated_configurations_sign_in_through_nginx() {
    let Some(idp) = Idp::start(IdpOptions::default()).await else {
        return;
    };
    if !portcullis_e2e::require(
        "nginx",
        portcullis_e2e::nginx::binary().is_some(),
        "apt-get install nginx",
    ) {
        return;
    }
    let mut dashboards = Vec::new();
    for name in ["c1", "c2"] {
        dashboards.push(Dashboard::start(name, &idp.issuer, CLIENT_ID).await);
    }
    let w = World { idp, dashboards };
    let issuer = w.idp.issuer.clone();

    // 1. A config file: the client secret in a file, the cookie secret inline, the
    //    auth_request-only placeholder upstream, `.parent:*` whitelist.
    let (nginx_port, port) = (portcullis_e2e::free_port(), portcullis_e2e::free_port());
    let dir = tempdir("migrate-file");
    let secret_file = dir.join("client-secret");
    std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
    let file = format!(
        r#"
provider = "oidc"
oidc_issuer_url = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret_file = "{secret}"
redirect_url = "http://auth.example.test:{nginx_port}/oauth2/callback"
http_address = "127.0.0.1:{port}"
reverse_proxy = true
trusted_proxy_ips = ["127.0.0.1/32"]
cookie_secret = "{OLD_COOKIE_SECRET}"
cookie_secure = false
cookie_domains = [".example.test"]
cookie_expire = "12h"
cookie_refresh = "1h"
whitelist_domains = [".example.test:*"]
email_domains = ["example.test"]
upstreams = ["file:///dev/null"]
set_xauthrequest = true
set_authorization_header = true
skip_auth_regex = ["^/healthz$", "/static/"]
"#,
        secret = secret_file.display()
    );
    let toml = translate_and_sign_in(
        &w,
        &dir,
        Case {
            file: Some(file),
            env_file: None,
            process_env: Vec::new(),
            flags: Vec::new(),
            expect_env: &["PORTCULLIS_COOKIE__SECRETS"],
            refused: None,
            open_paths: &[
                ("/healthz", true),
                ("/healthz/x", false),
                ("/a/static/x.js", true),
                ("/staticx", false),
            ],
        },
        nginx_port,
        port,
    )
    .await;
    assert!(
        toml.contains("whitelist_domains = [\"example.test:*\", \".example.test:*\"]"),
        "{toml}"
    );
    assert!(toml.contains("client_secret_file = "), "{toml}");

    // 2. The Dex guide's flags, secrets in an env file; `*.parent` whitelist; a group
    //    restriction that bob does not pass.
    let (nginx_port, port) = (portcullis_e2e::free_port(), portcullis_e2e::free_port());
    let dir = tempdir("migrate-flags");
    let flags = vec![
        "--provider".to_owned(),
        "oidc".into(),
        "--provider-display-name".into(),
        "My OIDC Provider".into(),
        "--client-id".into(),
        CLIENT_ID.into(),
        format!("--redirect-url=http://auth.example.test:{nginx_port}/oauth2/callback"),
        "--oidc-issuer-url".into(),
        issuer.clone(),
        "--cookie-secure=false".into(),
        "--email-domain".into(),
        "*".into(),
        "--whitelist-domain=*.example.test:*".into(),
        "--cookie-domain=.example.test".into(),
        format!("--http-address=http://127.0.0.1:{port}"),
        "--reverse-proxy".into(),
        "--trusted-proxy-ip=127.0.0.1".into(),
        "--allowed-group=platform-admins".into(),
    ];
    let env_file = format!(
        "OAUTH2_PROXY_CLIENT_SECRET={CLIENT_SECRET}\nexport OAUTH2_PROXY_COOKIE_SECRET=\"{OLD_COOKIE_SECRET}\"\n"
    );
    translate_and_sign_in(
        &w,
        &dir,
        Case {
            file: None,
            env_file: Some(env_file),
            process_env: Vec::new(),
            flags,
            expect_env: &[
                "PORTCULLIS_OIDC__CLIENT_SECRET",
                "PORTCULLIS_COOKIE__SECRETS",
            ],
            refused: Some(("bob@example.test", "bob-password")),
            open_paths: &[("/healthz", false)],
        },
        nginx_port,
        port,
    )
    .await;

    // 3. The Helm chart's layout: flags naming the config file, the Secret's values in
    //    the process environment, Redis sessions.
    let Some(redis) = portcullis_e2e::redis::Redis::start().await else {
        return;
    };
    let (nginx_port, port) = (portcullis_e2e::free_port(), portcullis_e2e::free_port());
    let dir = tempdir("migrate-helm");
    let cfg = dir.join("oauth2_proxy.cfg");
    std::fs::write(&cfg, format!(
        "email_domains = [ \"*\" ]\nupstreams = [ \"file:///dev/null\" ]\nprovider = \"oidc\"\noidc_issuer_url = \"{issuer}\"\nredirect_url = \"http://auth.example.test:{nginx_port}/oauth2/callback\"\ncookie_secure = false\ncookie_domains = [\".example.test\"]\nwhitelist_domains = [\".example.test:*\"]\n"
    )).unwrap();
    let toml = translate_and_sign_in(
        &w,
        &dir,
        Case {
            file: None,
            env_file: None,
            process_env: vec![
                ("OAUTH2_PROXY_CLIENT_ID".into(), CLIENT_ID.into()),
                ("OAUTH2_PROXY_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
                (
                    "OAUTH2_PROXY_COOKIE_SECRET".into(),
                    OLD_COOKIE_SECRET.into(),
                ),
                ("OAUTH2_PROXY_SESSION_STORE_TYPE".into(), "redis".into()),
                ("OAUTH2_PROXY_REDIS_CONNECTION_URL".into(), redis.url()),
            ],
            flags: strings(&[
                &format!("--http-address=127.0.0.1:{port}"),
                &format!(
                    "--metrics-address=127.0.0.1:{}",
                    portcullis_e2e::free_port()
                ),
                &format!("--config={}", cfg.display()),
                "--reverse-proxy",
                "--trusted-proxy-ip=127.0.0.1/32",
            ]),
            expect_env: &[
                "PORTCULLIS_OIDC__CLIENT_SECRET",
                "PORTCULLIS_COOKIE__SECRETS",
            ],
            refused: None,
            open_paths: &[("/healthz", false)],
        },
        nginx_port,
        port,
    )
    .await;
    assert!(
        toml.contains("store = \"redis\"") && toml.contains(&redis.url()),
        "{toml}"
    );
}

/// Untranslatable settings make the command exit 2 and list them on stderr; a
/// restriction that cannot be translated leaves a file that admits nobody (and that
/// still passes `config check`, so the operator reads the list).
#[tokio::test]
async fn untranslatable_settings_exit_2_and_fail_closed() {
    let dir = tempdir("migrate-untranslatable");
    let out: PathBuf = dir.join("p.toml");
    let (code, _, stderr) = run(
        &[
            "config",
            "from-oauth2-proxy",
            "--no-env",
            "-o",
            out.to_str().unwrap(),
            "--",
            "--provider=oidc",
            "--oidc-issuer-url=https://dex.example.com",
            "--client-id=x",
            "--redirect-url=https://auth.example.com/oauth2/callback",
            "--email-domain=.example.com",
            "--pass-access-token",
            "--cookie-secert=S3CRET-typo",
        ],
        &[("OAUTH2_PROXY_CLIENT_SECRET".into(), "S3CRET-client".into())],
        true,
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    for what in [
        "--pass-access-token",
        "--cookie-secert",
        "--email-domain entry \".example.com\"",
    ] {
        assert!(stderr.contains(what), "{what} listed: {stderr}");
    }
    let toml = std::fs::read_to_string(&out).unwrap();
    assert!(!toml.contains("S3CRET") && !stderr.contains("S3CRET"));
    assert!(toml.contains("nobody@admits-nobody.invalid"), "{toml}");
    let (code, _, stderr) = run(
        &[
            "config",
            "from-oauth2-proxy",
            "--config",
            "/nonexistent.cfg",
        ],
        &[],
        true,
    )
    .await;
    assert_eq!(code, 1, "{stderr}");
}
