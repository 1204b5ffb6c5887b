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

/// Where `localhost` names go: IPv4 loopback first (what listeners bind most often),
/// then IPv6's; port 0 keeps the URL's port.
const LOOPBACK: [std::net::SocketAddr; 2] = [
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0),
    std::net::SocketAddr::new(std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), 0),
];

/// Whether `host` is `localhost` or a name under it (`auth.portcullis.localhost`),
/// in any case, with or without the root's trailing dot.
fn is_localhost(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
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
        let base = base.trim_end_matches('/').to_owned();
        let url = url::Url::parse(&base).map_err(|_| format!("{base:?} is not a URL"))?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("portcullis-kubectl/", env!("CARGO_PKG_VERSION")));
        if let Some(host) = url.host_str().filter(|h| is_localhost(h)) {
            // RFC 6761 §6.3: `localhost` and every name under it are loopback, but
            // glibc (without nss-myhostname) and others only know `localhost` itself
            // from /etc/hosts. The demo's `auth.portcullis.localhost` must work anyway.
            builder = builder.resolve_to_addrs(host, &LOOPBACK);
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Self { base, http })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Posts `form` to `path`; the status and the JSON body.
    async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<(reqwest::StatusCode, serde_json::Value), Failure> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .map_err(|e| Failure::Other(format!("cannot reach {}: {e}", self.base)))?;
        let status = r.status();
        let body = r
            .json()
            .await
            .map_err(|e| Failure::Other(format!("unexpected answer from {}: {e}", self.base)))?;
        Ok((status, body))
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<Tokens, Failure> {
        let (status, body) = self.post_form("/oauth2/cli/token", form).await?;
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
        let (status, body) = self
            .post_form("/oauth2/device/code", &[("client_host", client_host)])
            .await?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn localhost_names() {
        for yes in [
            "localhost",
            "LocalHost",
            "localhost.",
            "auth.portcullis.localhost",
            "Dashboard.C1.Portcullis.LOCALHOST.",
        ] {
            assert!(is_localhost(yes), "{yes}");
        }
        for no in [
            "example.com",
            "localhost.example.com",
            "notlocalhost",
            "auth.localhost.test",
            "127.0.0.1",
            "",
        ] {
            assert!(!is_localhost(no), "{no}");
        }
    }

    /// A name under `localhost` reaches a listener on 127.0.0.1 whatever the system
    /// resolver knows (glibc here knows only `localhost` from /etc/hosts), with the
    /// name in the Host header.
    #[tokio::test]
    async fn names_under_localhost_reach_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let answer = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client hung up");
                head.extend_from_slice(&buf[..n]);
            }
            let body = r#"{"clusters":[{"name":"c1","server":"https://127.0.0.1:6443"}]}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(reply.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&head).into_owned()
        });
        let server = Server::new(&format!("http://auth.portcullis.localhost:{port}/")).unwrap();
        let (clusters, _groups) = server.clusters("credential").await.unwrap();
        assert_eq!(clusters[0].name, "c1");
        let head = answer.await.unwrap().to_ascii_lowercase();
        assert!(head.starts_with("get /oauth2/clusters "), "{head}");
        assert!(
            head.contains(&format!("\r\nhost: auth.portcullis.localhost:{port}\r\n")),
            "{head}"
        );
    }
}
