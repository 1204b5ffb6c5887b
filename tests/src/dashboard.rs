//! The stand-in dashboard (`tests/idp/dashboard.mjs`): shows who it believes you are,
//! from the bearer token it verifies against the provider's JWKS with `jose`.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::repo_root;

/// A running dashboard; killed on drop.
#[derive(Debug)]
pub struct Dashboard {
    /// Its port on 127.0.0.1.
    pub port: u16,
    _child: Child,
}

impl Dashboard {
    /// Starts a dashboard named `name` that trusts `issuer`.
    pub async fn start(name: &str, issuer: &str, client_id: &str) -> Self {
        let mut child = Command::new("node")
            .arg(repo_root().join("tests/idp/dashboard.mjs"))
            .args([
                "--port",
                "0",
                "--name",
                name,
                "--issuer",
                issuer,
                "--client-id",
                client_id,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("dashboard starts")
            .unwrap()
            .expect("port line");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        Self {
            port: v["port"].as_u64().unwrap() as u16,
            _child: child,
        }
    }

    /// Asks the dashboard to verify `token` directly (not through any proxy).
    pub async fn verify(&self, authorization: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/whoami.json", self.port))
            .header("authorization", authorization)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}
