//! The `portcullis` command line, run as a user would.

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn portcullis() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    // The test's own environment must not leak configuration in.
    for (k, _) in std::env::vars() {
        if k.starts_with("PORTCULLIS_") {
            c.env_remove(k);
        }
    }
    c
}

/// `config check` prints every problem it finds and exits with status 2.
#[test]
fn config_check_reports_every_problem() {
    let dir = std::env::temp_dir().join(format!("portcullis-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        r#"
        [server]
        listen = "not-an-address"
        trusted_proxies = ["10.0.0.0/33"]
        [oidc]
        issuer_url = "ftp://dex"
        client_id = "portcullis"
        client_secret = "very-secret-value"
        [cookie]
        secrets = ["dG9vIHNob3J0"]
        samesite = "sometimes"
        [redirect]
        whitelist_domains = ["*.example.com"]
        "#,
    )
    .unwrap();
    let out = portcullis()
        .args(["config", "check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    for key in [
        "server.listen",
        "server.trusted_proxies",
        "oidc.issuer_url",
        "oidc.redirect_url",
        "cookie.secrets[0]",
        "cookie.samesite",
        "redirect.whitelist_domains",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
    assert!(!err.contains("very-secret-value"), "secrets never printed");
}

/// Environment and `--set` complete a file; the example configuration is valid as
/// shipped.
#[test]
fn config_check_layers_and_example() {
    let secret = String::from_utf8(portcullis().arg("secret").output().unwrap().stdout).unwrap();
    let out = portcullis()
        .args([
            "config",
            "check",
            "--set",
            "oidc.issuer_url=https://dex.example.com",
        ])
        .args([
            "--set",
            "oidc.redirect_url=https://auth.example.com/oauth2/callback",
        ])
        .args(["--set", "oidc.client_id=portcullis"])
        .env("PORTCULLIS_OIDC__CLIENT_SECRET", "x")
        .env(
            "PORTCULLIS_COOKIE__SECRETS",
            format!("[\"{}\"]", secret.trim()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/portcullis.example.toml"
    );
    // As shipped, it carries the published placeholder key, which is refused…
    let out = portcullis()
        .args(["config", "check", "--config", example])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("published example key"), "{err}");
    // …and with a real key from the environment (a single key, not a list) it is valid.
    let out = portcullis()
        .args(["config", "check", "--config", example])
        .env("PORTCULLIS_COOKIE__SECRETS", secret.trim())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "example config: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = portcullis()
        .args(["config", "check", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
