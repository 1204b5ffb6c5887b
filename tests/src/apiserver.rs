//! The stand-in Kubernetes API server (`tests/idp/apiserver.mjs`): authenticates bearer
//! tokens as kube-apiserver's OIDC authenticator does and answers the identity it saw.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::repo_root;

/// A running stand-in API server; killed on drop.
#[derive(Debug)]
pub struct ApiServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its certificate (self-signed, for `IP:127.0.0.1`), PEM file: the cluster's CA.
    pub ca_file: PathBuf,
    _child: Child,
}

/// A self-signed certificate for 127.0.0.1 in `dir`: (cert, key).
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=stand-in API server",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "openssl makes the stand-in API server's certificate (apt-get install openssl)"
    );
    (cert, key)
}

impl ApiServer {
    /// Starts an API server named `name` trusting ID tokens of `issuer` for `client_id`.
    pub async fn start(name: &str, issuer: &str, client_id: &str) -> Self {
        let dir = crate::nginx::tempdir(&format!("apiserver-{name}"));
        let (cert, key) = certificate(&dir);
        let mut cmd = Command::new("node");
        cmd.arg(repo_root().join("tests/idp/apiserver.mjs"))
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
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
        let (child, v) = crate::node::start(cmd, "API server").await;
        Self {
            port: u16::try_from(v["port"].as_u64().expect("port")).expect("port"),
            ca_file: cert,
            _child: child,
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// What it counted.
    pub async fn stats(&self) -> serde_json::Value {
        crate::client::http_insecure()
            .get(format!("{}/_test/stats", self.url()))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("json")
    }
}
