//! The HTTP client used for every provider call.
//!
//! One `reqwest::Client` (connection pooling) with rustls on the `ring` provider (no
//! OpenSSL, no aws-lc), redirects disabled (a provider endpoint that redirects is a
//! misconfiguration, and following redirects with credentials is a risk), and a bounded
//! timeout on every call.

use std::sync::Once;
use std::time::Duration;

static CRYPTO: Once = Once::new();

/// How long an idle pooled connection may be reused. Below the keep-alive timeouts
/// servers commonly close idle connections at (Node's 5 s, nginx's 75 s, Go's
/// `IdleTimeout`): a connection the server is closing at the moment we reuse it fails
/// the request with a reset. The pool checks this on checkout, so an older one is
/// never reused; provider calls are rare enough that reconnecting costs nothing.
const POOL_IDLE: Duration = Duration::from_secs(4);

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
        .pool_idle_timeout(POOL_IDLE)
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// GETs `url` and says whether it answered with a success status within `timeout`.
/// A connection-level failure (refused, reset, closed before an answer) is tried once
/// more on a fresh connection, since GET is idempotent and a pooled connection can die
/// under us; a timeout is not retried (the provider is slow, and waiting twice as long
/// would only delay the answer). The failure's reason is logged at `warn`.
pub async fn probe(client: &reqwest::Client, url: &str, timeout: Duration) -> bool {
    let mut retried = false;
    loop {
        match client.get(url).timeout(timeout).send().await {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) => {
                tracing::warn!(
                    status = r.status().as_u16(),
                    "provider probe: not a success"
                );
                return false;
            }
            Err(e) if !retried && !e.is_timeout() && (e.is_connect() || e.is_request()) => {
                tracing::debug!(error = %error_text(&e), "provider probe failed; retrying once");
                retried = true;
            }
            Err(e) => {
                tracing::warn!(error = %error_text(&e), "provider probe failed");
                return false;
            }
        }
    }
}

/// A reqwest error with its sources, for a log line (reqwest's own text omits them).
/// URLs carry no secrets here: the probe's is the public discovery document.
fn error_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server that answers its connections in turn: `None` closes the connection
    /// after reading the request, without an answer (what a server closing an idle
    /// keep-alive connection looks like to the client that just reused it).
    async fn server(answers: Vec<Option<&'static str>>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            for answer in answers {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                if let Some(status) = answer {
                    let reply = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                }
            }
        });
        format!("http://{addr}/.well-known/openid-configuration")
    }

    fn client() -> reqwest::Client {
        build(Duration::from_secs(2)).expect("client")
    }

    #[tokio::test]
    async fn a_connection_closed_without_an_answer_is_retried_once() {
        let url = server(vec![None, Some("200 OK")]).await;
        assert!(probe(&client(), &url, Duration::from_secs(2)).await);
    }

    #[tokio::test]
    async fn two_failures_in_a_row_mean_down() {
        let url = server(vec![None, None, Some("200 OK")]).await;
        assert!(!probe(&client(), &url, Duration::from_secs(2)).await);
    }

    #[tokio::test]
    async fn an_error_status_is_down_without_a_retry() {
        let url = server(vec![Some("503 Service Unavailable"), Some("200 OK")]).await;
        assert!(!probe(&client(), &url, Duration::from_secs(2)).await);
    }

    #[tokio::test]
    async fn nothing_listening_is_down() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let url = format!("http://{addr}/");
        assert!(!probe(&client(), &url, Duration::from_secs(2)).await);
    }
}
