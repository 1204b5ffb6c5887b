//! The test OpenID provider (`tests/idp/idp.mjs`).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::repo_root;

/// Client id and secret registered at the test provider.
pub const CLIENT_ID: &str = "portcullis";
/// The client's secret.
pub const CLIENT_SECRET: &str = "portcullis-secret";

/// Options for starting the provider.
#[derive(Debug, Clone, Default)]
pub struct IdpOptions {
    /// Port to listen on (0 = ephemeral).
    pub port: u16,
    /// ID and access token lifetime in seconds (default 300).
    pub id_token_ttl: Option<u64>,
}

/// A running provider; killed on drop.
#[derive(Debug)]
pub struct Idp {
    /// Its issuer URL (`http://127.0.0.1:PORT`).
    pub issuer: String,
    /// Its port.
    pub port: u16,
    child: Child,
}

/// Whether the provider's npm dependencies are installed.
pub fn available() -> bool {
    repo_root()
        .join("tests/idp/node_modules/oidc-provider")
        .exists()
}

impl Idp {
    /// Starts the provider and waits for its `{"issuer":…}` line. `None` (skip) when
    /// its modules are missing outside CI.
    pub async fn start(opts: IdpOptions) -> Option<Self> {
        if !crate::require(
            "tests/idp node modules",
            available(),
            "run `npm ci` in tests/idp",
        ) {
            return None;
        }
        let mut cmd = Command::new("node");
        cmd.arg(repo_root().join("tests/idp/idp.mjs"))
            .arg("--port")
            .arg(opts.port.to_string())
            .arg("--host")
            .arg("127.0.0.1")
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("IDP_LOGS").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true);
        if let Some(ttl) = opts.id_token_ttl {
            cmd.arg("--id-token-ttl").arg(ttl.to_string());
        }
        let mut child = cmd.spawn().expect("node runs");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("provider starts within 20 s")
            .expect("provider stdout readable")
            .expect("provider printed its issuer line");
        let v: serde_json::Value = serde_json::from_str(&line).expect("issuer line is JSON");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(Self {
            issuer: v["issuer"].as_str().expect("issuer").to_owned(),
            port: v["port"].as_u64().expect("port") as u16,
            child,
        })
    }

    /// `GET /_test/stats`.
    pub async fn stats(&self) -> serde_json::Value {
        reqwest::get(format!("{}/_test/stats", self.issuer))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `POST /_test/rotate-keys`: new signing key for new tokens.
    pub async fn rotate_keys(&self) -> serde_json::Value {
        reqwest::Client::new()
            .post(format!("{}/_test/rotate-keys", self.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `POST /_test/user`: changes a user while the provider runs (e.g. disables it).
    pub async fn set_user(&self, change: serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/_test/user", self.issuer))
            .json(&change)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "{}",
            r.text().await.unwrap_or_default()
        );
    }

    /// Number of successful refresh grants so far.
    pub async fn refreshes(&self) -> u64 {
        self.stats().await["refresh_grants"].as_u64().unwrap_or(0)
    }

    /// Stops the provider now.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
