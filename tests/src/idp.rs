//! The test OpenID provider (`tests/idp/idp.mjs`).

use std::process::Stdio;

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
    /// Extra clients, `ID:SECRET:` (no redirect URI: any is accepted).
    pub clients: Vec<String>,
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
            .stderr(if std::env::var_os("IDP_LOGS").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        for c in &opts.clients {
            cmd.arg("--client").arg(c);
        }
        if let Some(ttl) = opts.id_token_ttl {
            cmd.arg("--id-token-ttl").arg(ttl.to_string());
        }
        let (child, v) = crate::node::start(cmd, "provider").await;
        Some(Self {
            issuer: v["issuer"].as_str().expect("issuer").to_owned(),
            port: v["port"].as_u64().expect("port") as u16,
            child,
        })
    }

    /// An ID token for `user` (`alice` → alice@example.test) issued to `client_id`
    /// through a real authorization-code flow with PKCE, as kubelogin would do it.
    pub async fn id_token(&self, client_id: &str, client_secret: &str, user: &str) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        let meta: serde_json::Value =
            reqwest::get(format!("{}/.well-known/openid-configuration", self.issuer))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let verifier = b64.encode([7u8; 32]);
        let challenge = b64.encode(sha2::Sha256::digest(verifier.as_bytes()));
        let redirect = "http://127.0.0.1:9/oauth2/callback";
        let mut auth = url::Url::parse(meta["authorization_endpoint"].as_str().unwrap()).unwrap();
        auth.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid email profile groups")
            .append_pair("redirect_uri", redirect)
            .append_pair("state", "state-0123456789")
            .append_pair("nonce", "nonce-0123456789")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let mut agent = crate::client::Agent::new();
        let form = agent.follow_to_form(auth.to_string()).await;
        let callback = agent
            .submit_login(
                &form,
                &format!("{user}@example.test"),
                &format!("{user}-password"),
            )
            .await;
        let code = url::Url::parse(&callback)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("code in the callback");
        let tokens: serde_json::Value = agent
            .http
            .post(meta["token_endpoint"].as_str().unwrap())
            .basic_auth(client_id, Some(client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens["id_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no id_token: {tokens}"))
            .to_owned()
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
