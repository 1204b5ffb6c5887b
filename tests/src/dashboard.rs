//! The stand-in dashboard (`tests/idp/dashboard.mjs`): shows who it believes you are,
//! from the bearer token it verifies against the provider's JWKS with `jose`.

use std::process::Stdio;

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
        let mut cmd = Command::new("node");
        cmd.arg(repo_root().join("tests/idp/dashboard.mjs"))
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
            .stderr(Stdio::null());
        let (child, v) = crate::node::start(cmd, "dashboard").await;
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
