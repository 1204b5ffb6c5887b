//! The HTTP calls to Portcullis: the token endpoint, the cluster list, logout.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the token endpoint answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokens {
    /// The ID token the API servers verify.
    pub id_token: String,
    /// Its expiry (unix seconds).
    pub expires_at: u64,
    /// The CLI credential for later refreshes.
    pub refresh_token: String,
    /// Whose it is.
    #[serde(default)]
    pub user: String,
}

/// One cluster as `/oauth2/clusters` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Cluster {
    /// Its kubeconfig name.
    pub name: String,
    /// The API server's URL.
    pub server: String,
    /// Shown to users.
    #[serde(default)]
    pub description: String,
    /// Its CA (base64 of the PEM), if set.
    #[serde(default)]
    pub certificate_authority_data: Option<String>,
}

/// Why a call failed.
#[derive(Debug)]
pub enum Failure {
    /// The server refused the credential or code (`invalid_grant`): sign in again.
    Refused(String),
    /// Anything else (network, server error): try again later.
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused(m) | Failure::Other(m) => f.write_str(m),
        }
    }
}

/// A client of one Portcullis server.
pub struct Server {
    base: String,
    http: reqwest::Client,
}

impl Server {
    /// A client of `base` (`https://auth.example.com`).
    pub fn new(base: &str) -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("portcullis-kubectl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let base = base.trim_end_matches('/').to_owned();
        url::Url::parse(&base).map_err(|_| format!("{base:?} is not a URL"))?;
        Ok(Self { base, http })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<Tokens, Failure> {
        let r = self
            .http
            .post(format!("{}/oauth2/cli/token", self.base))
            .form(form)
            .send()
            .await
            .map_err(|e| Failure::Other(format!("cannot reach {}: {e}", self.base)))?;
        let status = r.status();
        let body: serde_json::Value = r
            .json()
            .await
            .map_err(|e| Failure::Other(format!("unexpected answer from {}: {e}", self.base)))?;
        if status.is_success() {
            return serde_json::from_value(body)
                .map_err(|e| Failure::Other(format!("unexpected token answer: {e}")));
        }
        let description = body["error_description"]
            .as_str()
            .unwrap_or("refused")
            .to_owned();
        if body["error"] == "invalid_grant" {
            Err(Failure::Refused(description))
        } else {
            Err(Failure::Other(format!("{status}: {description}")))
        }
    }

    /// Redeems the one-time code of a sign-in.
    pub async fn redeem(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<Tokens, Failure> {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
        ])
        .await
    }

    /// The current ID token of the CLI session (refreshed by the server when due).
    pub async fn refresh(&self, credential: &str) -> Result<Tokens, Failure> {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", credential),
        ])
        .await
    }

    /// The clusters the user may use.
    pub async fn clusters(&self, credential: &str) -> Result<Vec<Cluster>, Failure> {
        let r = self
            .http
            .get(format!("{}/oauth2/clusters", self.base))
            .bearer_auth(credential)
            .send()
            .await
            .map_err(|e| Failure::Other(format!("cannot reach {}: {e}", self.base)))?;
        if !r.status().is_success() {
            return Err(Failure::Other(format!("listing clusters: {}", r.status())));
        }
        let body: serde_json::Value = r
            .json()
            .await
            .map_err(|e| Failure::Other(format!("unexpected cluster list: {e}")))?;
        serde_json::from_value(body["clusters"].clone())
            .map_err(|e| Failure::Other(format!("unexpected cluster list: {e}")))
    }

    /// Ends the CLI session on the server.
    pub async fn logout(&self, credential: &str) -> Result<(), Failure> {
        let r = self
            .http
            .post(format!("{}/oauth2/cli/logout", self.base))
            .bearer_auth(credential)
            .send()
            .await
            .map_err(|e| Failure::Other(format!("cannot reach {}: {e}", self.base)))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(Failure::Other(format!("logout: {}", r.status())))
        }
    }
}
