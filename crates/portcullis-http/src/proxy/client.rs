//! The HTTP client for upstreams.

use std::time::Duration;

use axum::body::Body;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The HTTP client for upstreams: pooled keep-alive connections, HTTP/1.1 (and HTTP/2
/// over TLS when the upstream offers it), rustls with the webpki roots for `https`.
#[derive(Clone)]
pub struct UpstreamClient {
    pub(crate) inner: Option<Client<Connector, Body>>,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient").finish_non_exhaustive()
    }
}

impl Default for UpstreamClient {
    fn default() -> Self {
        Self::new()
    }
}

impl UpstreamClient {
    /// A client; `None` inside only if rustls refuses the ring provider (then every
    /// proxied request answers 502 and says why in the log).
    pub fn new() -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map(|b| {
                b.https_or_http()
                    .enable_http1()
                    .enable_http2()
                    .wrap_connector(http)
            });
        match https {
            Ok(connector) => Self {
                inner: Some(
                    Client::builder(TokioExecutor::new())
                        .pool_idle_timeout(Duration::from_secs(60))
                        .build(connector),
                ),
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot build the upstream TLS client");
                Self { inner: None }
            }
        }
    }
}
