//! The HTTP client used for every provider call.
//!
//! One `reqwest::Client` (connection pooling) with rustls on the `ring` provider (no
//! OpenSSL, no aws-lc), redirects disabled (a provider endpoint that redirects is a
//! misconfiguration, and following redirects with credentials is a risk), and a bounded
//! timeout on every call.

use std::sync::Once;
use std::time::Duration;

static CRYPTO: Once = Once::new();

/// Installs rustls' `ring` provider as the process default, once. reqwest is built with
/// `rustls-no-provider`, so a client built before this would panic.
pub fn install_crypto_provider() {
    CRYPTO.call_once(|| {
        // An error means another provider was installed first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Builds the provider client.
pub fn build(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A transport failure talking to the provider (connection, timeout, body read).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The request could not be sent or its response read.
    #[error("provider request failed: {0}")]
    Request(#[source] reqwest::Error),
    /// The response could not be rebuilt as an `http::Response` (invalid header).
    #[error("provider response was malformed")]
    Response,
}

impl TransportError {
    /// Whether the call ran out of time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, TransportError::Request(e) if e.is_timeout())
    }
}

/// Sends an `openidconnect` request with reqwest; the bridge that lets the library use
/// our client (see `AsyncHttpClient` in oauth2).
pub async fn send(
    client: reqwest::Client,
    request: http::Request<Vec<u8>>,
) -> Result<http::Response<Vec<u8>>, TransportError> {
    let (parts, body) = request.into_parts();
    let mut builder = client
        .request(parts.method, parts.uri.to_string())
        .body(body);
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let response = builder.send().await.map_err(TransportError::Request)?;
    let mut out = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        out = out.header(name, value);
    }
    let bytes = response.bytes().await.map_err(TransportError::Request)?;
    out.body(bytes.to_vec())
        .map_err(|_| TransportError::Response)
}
