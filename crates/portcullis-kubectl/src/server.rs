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

/// What `POST /oauth2/device/code` answers.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceStart {
    /// What we poll with.
    pub device_code: String,
    /// What the user types.
    pub user_code: String,
    /// Where they type it.
    pub verification_uri: String,
    /// The same, with the code filled in.
    #[serde(default)]
    pub verification_uri_complete: String,
    /// Seconds until the codes expire.
    pub expires_in: u64,
    /// Seconds between polls.
    #[serde(default = "default_interval")]
    pub interval: u64,
}

fn default_interval() -> u64 {
    5
}

/// Why a call failed.
#[derive(Debug)]
pub enum Failure {
    /// The server refused the credential or code (`invalid_grant`): sign in again.
    Refused(String),
    /// Anything else (network, server error): try again later.
    Other(String),
    /// Device flow: not approved yet (`authorization_pending`), or polling too fast
    /// (`slow_down`, `true`).
    Wait {
        /// Whether the server asked us to slow down.
        slow_down: bool,
    },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused(m) | Failure::Other(m) => f.write_str(m),
            Failure::Wait { .. } => f.write_str("waiting for approval"),
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
        match body["error"].as_str() {
            Some("authorization_pending") => return Err(Failure::Wait { slow_down: false }),
            Some("slow_down") => return Err(Failure::Wait { slow_down: true }),
            _ => {}
        }
        if matches!(
            body["error"].as_str(),
            Some("invalid_grant" | "access_denied" | "expired_token")
        ) {
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

    /// Starts a device authorization (RFC 8628).
    pub async fn start_device(&self, client_host: &str) -> Result<DeviceStart, Failure> {
        let r = self
            .http
            .post(format!("{}/oauth2/device/code", self.base))
            .form(&[("client_host", client_host)])
            .send()
            .await
            .map_err(|e| Failure::Other(format!("cannot reach {}: {e}", self.base)))?;
        let status = r.status();
        let body: serde_json::Value = r
            .json()
            .await
            .map_err(|e| Failure::Other(format!("unexpected answer from {}: {e}", self.base)))?;
        if !status.is_success() {
            let description = body["error_description"].as_str().unwrap_or("refused");
            return Err(Failure::Other(format!("{status}: {description}")));
        }
        serde_json::from_value(body)
            .map_err(|e| Failure::Other(format!("unexpected device answer: {e}")))
    }

    /// One poll of the device code grant.
    pub async fn poll_device(&self, device_code: &str) -> Result<Tokens, Failure> {
        self.token(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
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

    /// The clusters the user may use, and the user's groups.
    pub async fn clusters(&self, credential: &str) -> Result<(Vec<Cluster>, Vec<String>), Failure> {
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
        let clusters = serde_json::from_value(body["clusters"].clone())
            .map_err(|e| Failure::Other(format!("unexpected cluster list: {e}")))?;
        let groups = serde_json::from_value(body["groups"].clone()).unwrap_or_default();
        Ok((clusters, groups))
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
