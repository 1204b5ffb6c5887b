//! Reverse-proxy mode: Portcullis in front of an app, routing by path prefix to the
//! configured `[[upstreams]]`, streaming bodies both ways and tunnelling WebSockets.
//!
//! What reaches an upstream is decided here and nowhere else:
//! - hop-by-hop headers (RFC 9110 §7.6.1: `Connection` and every header it names,
//!   `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`,
//!   `Proxy-Authenticate`, `Proxy-Authorization`) are dropped, except the `Upgrade`
//!   handshake of a WebSocket;
//! - every inbound copy of a header we set — identity, token, `X-Forwarded-*`,
//!   `Forwarded`, `X-Original-*`, `X-Real-Ip` — is dropped first, compared after
//!   lower-casing and folding `_` to `-` (`X_Auth_Request_Email` included);
//! - our own session cookies are removed from `Cookie`: the upstream has no use for
//!   them and must not be able to leak them;
//! - then `X-Forwarded-For/-Proto/-Host` and the identity headers are set.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis_oidc::provider::unix_now;

use crate::AppState;
use crate::authz::{self, Policy};
use crate::cookies::RequestCookies;
use crate::handlers::{Ctx, append_set_cookies, session_set_cookies};
use crate::pages;
use crate::session::{self, Lookup};
use crate::settings::UpstreamSettings;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The HTTP client for upstreams: pooled keep-alive connections, HTTP/1.1 (and HTTP/2
/// over TLS when the upstream offers it), rustls with the webpki roots for `https`.
#[derive(Clone)]
pub struct UpstreamClient {
    inner: Option<Client<Connector, Body>>,
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

/// The upstream for a path: the longest prefix that matches on whole segments.
pub fn route<'a>(upstreams: &'a [UpstreamSettings], path: &str) -> Option<&'a UpstreamSettings> {
    upstreams
        .iter()
        .filter(|u| {
            u.path.is_empty()
                || path == u.path
                || path
                    .strip_prefix(u.path.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|u| u.path.len())
}

/// Whether a request comes from a script rather than a page navigation: such
/// requests get a 401 with a JSON body, never a redirect to an HTML sign-in page.
pub fn is_api_request(headers: &HeaderMap) -> bool {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let accept = get("accept").to_ascii_lowercase();
    get("x-requested-with").eq_ignore_ascii_case("xmlhttprequest")
        || (accept.contains("application/json") && !accept.contains("text/html"))
        || matches!(get("sec-fetch-mode"), m if !m.is_empty() && m != "navigate")
}

/// The 401 for scripts.
pub fn unauthenticated_json(request_id: &str, sign_in: &str, bearer: bool) -> Response {
    let body = serde_json::json!({
        "error": "unauthenticated",
        "message": "sign-in required",
        "sign_in": sign_in,
        "request_id": request_id,
    });
    let mut r = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    let headers = r.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if bearer {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// The 503 page for a lookup that could not be decided (store down, bearer issuer
/// not discovered yet): never "signed out", so never a sign-in loop.
pub(crate) fn unavailable(state: &AppState, lookup: &Lookup, request_id: &str) -> Response {
    let message = match lookup {
        Lookup::StoreDown(e) => {
            tracing::warn!(request_id, error = %e, "session store unavailable");
            "Sessions cannot be checked right now. Please try again in a moment."
        }
        _ => {
            tracing::warn!(
                request_id,
                reason = lookup.reason(),
                "authentication unavailable"
            );
            "The token issuer has not been reached yet. Please try again in a moment."
        }
    };
    pages::error_page(
        state,
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        message,
        request_id,
        None,
    )
}

/// The sign-in location for a target (`rd`): the sign-in page, or the provider
/// directly when `pages.skip_sign_in_page` is set. `origin` is empty for a path on
/// the current host.
pub fn sign_in_location(state: &AppState, origin: &str, rd: &str) -> String {
    let endpoint = if state.settings.pages.skip_sign_in_page {
        "/oauth2/start"
    } else {
        "/oauth2/sign_in"
    };
    let rd: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    format!("{origin}{endpoint}?rd={rd}")
}

/// The handler for every path that is not one of our own.
pub async fn proxy(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let ctx = Ctx::new(&state, &parts);
    let path = parts.uri.path();
    let Some(upstream) = route(&state.settings.upstreams, path) else {
        return pages::error_page(
            &state,
            StatusCode::NOT_FOUND,
            "Not found",
            "No application is served at this address.",
            &ctx.request_id,
            None,
        );
    };
    let skip = authz::skip_auth(&state.settings.authz.skip_auth, parts.method.as_str(), path);
    let (set_cookies, identity_headers) = if skip {
        (Vec::new(), Vec::new())
    } else {
        let cookies = RequestCookies::parse(&parts.headers);
        let lookup = session::authenticate(&state, &parts.headers, &cookies, unix_now()).await;
        let set_cookies = session_set_cookies(&state, &parts, &cookies, &lookup);
        match &lookup {
            Lookup::Valid(loaded) => {
                let identity = &loaded.prepared.identity;
                if let Err(denial) =
                    authz::check_all(identity, &[&state.settings.authz.policy, &upstream.policy])
                {
                    tracing::info!(request_id = %ctx.request_id, user = %identity.user, reason = denial.reason(), "proxy: denied by policy");
                    let mut r = pages::denied_page(&state, denial, &ctx.request_id);
                    append_set_cookies(&mut r, set_cookies);
                    return r;
                }
                (set_cookies, loaded.prepared.headers.clone())
            }
            Lookup::StoreDown(_) | Lookup::BearerUnavailable => {
                return unavailable(&state, &lookup, &ctx.request_id);
            }
            other => {
                tracing::debug!(request_id = %ctx.request_id, reason = other.reason(), "proxy: unauthenticated");
                let rd = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
                let location = sign_in_location(&state, "", rd);
                let mut r = if is_api_request(&parts.headers)
                    || matches!(other, Lookup::BadBearer(_))
                {
                    unauthenticated_json(&ctx.request_id, &location, state.settings.bearer.enabled)
                } else {
                    crate::handlers::redirect(&location)
                };
                append_set_cookies(&mut r, set_cookies);
                return r;
            }
        }
    };
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip());
    let request = Request::from_parts(parts, body);
    let mut response = forward(&state, upstream, request, &ctx, peer, &identity_headers).await;
    append_set_cookies(&mut response, set_cookies);
    response
}

async fn forward(
    state: &AppState,
    upstream: &UpstreamSettings,
    mut request: Request,
    ctx: &Ctx,
    peer: Option<std::net::IpAddr>,
    identity: &[(HeaderName, HeaderValue)],
) -> Response {
    let Some(client) = state.upstream_client.inner.as_ref() else {
        return bad_gateway(state, ctx, "no upstream client");
    };
    let websocket = is_websocket_upgrade(request.headers());
    let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut request));
    let (mut parts, body) = request.into_parts();
    let Some(uri) = upstream_uri(&upstream.url, &parts.uri) else {
        return bad_gateway(state, ctx, "upstream URI");
    };
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    let original_host = parts.headers.get(header::HOST).cloned();
    let headers = &mut parts.headers;
    let inbound_xff = ctx
        .fwd
        .header(headers, "x-forwarded-for")
        .map(str::to_owned);
    let proto = ctx
        .fwd
        .header(headers, "x-forwarded-proto")
        .filter(|p| matches!(*p, "http" | "https"))
        .unwrap_or("http")
        .to_owned();
    let fwd_host = ctx
        .fwd
        .header(headers, "x-forwarded-host")
        .map(str::to_owned)
        .or_else(|| {
            original_host
                .as_ref()
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        });
    strip_hop_by_hop(headers);
    strip_injected(headers, &state.settings.headers.token);
    strip_session_cookies(headers, &state.settings.cookie.name);
    if websocket {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    let xff = match (inbound_xff, peer) {
        (Some(chain), Some(ip)) => Some(format!("{chain}, {ip}")),
        (None, Some(ip)) => Some(ip.to_string()),
        (chain, None) => chain,
    };
    let mut put = |name: &'static str, value: Option<String>| {
        if let Some(v) = value.and_then(|v| HeaderValue::try_from(v).ok()) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    put("x-forwarded-for", xff);
    put("x-forwarded-proto", Some(proto));
    put("x-forwarded-host", fwd_host);
    for (name, value) in identity {
        headers.insert(name.clone(), value.clone());
    }
    let outbound = http::Request::from_parts(parts, body);
    let sent = tokio::time::timeout(upstream.timeout, client.request(outbound)).await;
    let mut response = match sent {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!(request_id = %ctx.request_id, upstream = %upstream.url, error = %portcullis_oidc::provider::error_chain(&e), "proxy: upstream request failed");
            return bad_gateway(state, ctx, "upstream unreachable");
        }
        Err(_) => {
            tracing::warn!(request_id = %ctx.request_id, upstream = %upstream.url, timeout_ms = upstream.timeout.as_millis() as u64, "proxy: upstream timed out");
            return pages::error_page(
                state,
                StatusCode::GATEWAY_TIMEOUT,
                "Upstream timed out",
                "The application did not answer in time.",
                &ctx.request_id,
                None,
            );
        }
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return bad_gateway(state, ctx, "unexpected 101");
        };
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        let request_id = ctx.request_id.clone();
        tokio::spawn(async move {
            match tokio::try_join!(client_upgrade, upstream_upgrade) {
                Ok((client, upstream)) => {
                    let mut client = TokioIo::new(client);
                    let mut upstream = TokioIo::new(upstream);
                    match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                        Ok((up, down)) => {
                            tracing::debug!(request_id, up, down, "proxy: websocket closed")
                        }
                        Err(e) => {
                            tracing::debug!(request_id, error = %e, "proxy: websocket ended")
                        }
                    }
                }
                Err(e) => tracing::warn!(request_id, error = %e, "proxy: websocket upgrade failed"),
            }
        });
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, Body::empty());
    }
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, Body::new(body))
}

fn bad_gateway(state: &AppState, ctx: &Ctx, what: &str) -> Response {
    tracing::debug!(request_id = %ctx.request_id, what, "proxy: 502");
    pages::error_page(
        state,
        StatusCode::BAD_GATEWAY,
        "Upstream unavailable",
        "The application behind this address cannot be reached right now.",
        &ctx.request_id,
        None,
    )
}

/// The upstream's URL for a request URI: base URL + request path and query.
pub fn upstream_uri(base: &url::Url, uri: &Uri) -> Option<Uri> {
    let pq = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let base_path = base.path().trim_end_matches('/');
    let authority = match base.port() {
        Some(p) => format!("{}:{p}", base.host_str()?),
        None => base.host_str()?.to_owned(),
    };
    format!("{}://{authority}{base_path}{pq}", base.scheme())
        .parse()
        .ok()
}

/// Whether a request asks for a WebSocket (RFC 6455 §4.1).
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        })
    });
    connection_upgrade
        && headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(name);
    }
}

/// Header names we set, or that upstreams commonly believe: an inbound copy of any
/// of them, in any case and with `_` for `-`, is dropped.
fn is_injected(normalized: &str, token_header: &str) -> bool {
    const PREFIXES: &[&str] = &["x-auth-request-", "x-forwarded-", "x-original-"];
    const EXACT: &[&str] = &["forwarded", "x-real-ip", "x-access-token", "x-id-token"];
    normalized == token_header
        || PREFIXES.iter().any(|p| normalized.starts_with(p))
        || EXACT.contains(&normalized)
}

/// Drops every inbound copy of the headers Portcullis sets (see [`is_injected`]).
pub fn strip_injected(headers: &mut HeaderMap, token_header: &str) {
    let token = normalize(token_header);
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| is_injected(&normalize(k.as_str()), &token))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// Removes our session, chunk and CSRF cookies from `Cookie`, keeping the app's own.
pub fn strip_session_cookies(headers: &mut HeaderMap, base: &str) {
    let prefix = format!("{base}_");
    let mut kept: Vec<&str> = Vec::new();
    let mut changed = false;
    let values: Vec<HeaderValue> = headers.get_all(header::COOKIE).iter().cloned().collect();
    for v in &values {
        let Ok(text) = v.to_str() else {
            changed = true;
            continue;
        };
        for pair in text.split(';') {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let name = pair.split_once('=').map_or(pair, |(n, _)| n).trim();
            if name == base || name.starts_with(&prefix) {
                changed = true;
            } else {
                kept.push(pair);
            }
        }
    }
    if !changed && values.len() <= 1 {
        return;
    }
    let joined = kept.join("; ");
    headers.remove(header::COOKIE);
    if let Ok(v) = HeaderValue::from_str(&joined)
        && !joined.is_empty()
    {
        headers.insert(header::COOKIE, v);
    }
}

/// The policy of an upstream ANDed with the global one, for callers outside this
/// module (forward-auth does not route, so it has only the global one).
pub fn policies<'a>(
    state: &'a AppState,
    upstream: Option<&'a UpstreamSettings>,
) -> Vec<&'a Policy> {
    let mut v = vec![&state.settings.authz.policy];
    if let Some(u) = upstream {
        v.push(&u.policy);
    }
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn up(path: &str) -> UpstreamSettings {
        UpstreamSettings {
            path: path.trim_end_matches('/').into(),
            url: "http://127.0.0.1:1/base/".parse().unwrap(),
            policy: Policy::default(),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn routing_by_whole_segments() {
        let ups = vec![up("/"), up("/api"), up("/api/v2")];
        let r = |p: &str| route(&ups, p).map(|u| u.path.clone());
        assert_eq!(r("/"), Some("".into()));
        assert_eq!(r("/x"), Some("".into()));
        assert_eq!(r("/api"), Some("/api".into()));
        assert_eq!(r("/api/x"), Some("/api".into()));
        assert_eq!(r("/apix"), Some("".into()));
        assert_eq!(r("/api/v2/y"), Some("/api/v2".into()));
        assert_eq!(r("/api/v22"), Some("/api".into()));
        let only_api = vec![up("/api")];
        assert_eq!(route(&only_api, "/other").map(|u| u.path.clone()), None);
    }

    #[test]
    fn upstream_uris() {
        let base: url::Url = "http://127.0.0.1:9000/base/".parse().unwrap();
        let uri: Uri = "/a/b?c=d".parse().unwrap();
        assert_eq!(
            upstream_uri(&base, &uri).unwrap().to_string(),
            "http://127.0.0.1:9000/base/a/b?c=d"
        );
        let base: url::Url = "https://app.internal".parse().unwrap();
        assert_eq!(
            upstream_uri(&base, &uri).unwrap().to_string(),
            "https://app.internal/a/b?c=d"
        );
    }

    #[test]
    fn strips_every_variant_of_injected_headers() {
        let mut h = HeaderMap::new();
        for name in [
            "x-auth-request-email",
            "X_Auth_Request_Email",
            "x_auth_request_user",
            "x-forwarded-email",
            "X_Forwarded_Email",
            "x-forwarded-user",
            "x-forwarded-for",
            "x-forwarded-uri",
            "forwarded",
            "x-real-ip",
            "x-original-url",
            "x-forwarded-id-token",
            "X_Forwarded_Id_Token",
            "authorization",
        ] {
            h.append(
                HeaderName::try_from(name).unwrap(),
                "smuggled".parse().unwrap(),
            );
        }
        h.insert("x-app", "kept".parse().unwrap());
        h.insert("accept", "text/html".parse().unwrap());
        strip_injected(&mut h, "Authorization");
        let mut left: Vec<_> = h.keys().map(|k| k.as_str().to_owned()).collect();
        left.sort();
        assert_eq!(left, vec!["accept", "x-app"]);
        // A custom token header is stripped in every spelling; Authorization then stays.
        let mut h = HeaderMap::new();
        h.insert("x_forwarded_id_token", "s".parse().unwrap());
        h.insert("x-id-token", "s".parse().unwrap());
        h.insert("authorization", "Basic x".parse().unwrap());
        strip_injected(&mut h, "X-Id-Token");
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("authorization"));
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert("connection", "keep-alive, X-Secret-Hop".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("x-secret-hop", "1".parse().unwrap());
        h.insert("te", "trailers".parse().unwrap());
        h.insert("transfer-encoding", "chunked".parse().unwrap());
        h.insert("upgrade", "h2c".parse().unwrap());
        h.insert("proxy-authorization", "Basic x".parse().unwrap());
        h.insert("x-end-to-end", "1".parse().unwrap());
        strip_hop_by_hop(&mut h);
        let left: Vec<_> = h.keys().map(|k| k.as_str().to_owned()).collect();
        assert_eq!(left, vec!["x-end-to-end"]);
    }

    #[test]
    fn session_cookies_never_reach_upstreams() {
        let mut h = HeaderMap::new();
        h.append(
            "cookie",
            "_portcullis=abc; app=1; _portcullis_0=x; _portcullis_csrf_q=y"
                .parse()
                .unwrap(),
        );
        h.append("cookie", "other=2; _portcullisX=keep".parse().unwrap());
        strip_session_cookies(&mut h, "_portcullis");
        assert_eq!(
            h.get("cookie").unwrap(),
            "app=1; other=2; _portcullisX=keep"
        );
        let mut h = HeaderMap::new();
        h.insert("cookie", "_portcullis=abc".parse().unwrap());
        strip_session_cookies(&mut h, "_portcullis");
        assert!(h.get("cookie").is_none());
    }

    #[test]
    fn api_request_detection() {
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(HeaderName::try_from(*k).unwrap(), v.parse().unwrap());
            }
            m
        };
        assert!(is_api_request(&h(&[("accept", "application/json")])));
        assert!(is_api_request(&h(&[(
            "x-requested-with",
            "XMLHttpRequest"
        )])));
        assert!(is_api_request(&h(&[("sec-fetch-mode", "cors")])));
        assert!(is_api_request(&h(&[("sec-fetch-mode", "websocket")])));
        assert!(!is_api_request(&h(&[("sec-fetch-mode", "navigate")])));
        assert!(!is_api_request(&h(&[(
            "accept",
            "text/html,application/xhtml+xml,application/json;q=0.9"
        )])));
        assert!(!is_api_request(&h(&[("accept", "*/*")])));
        assert!(!is_api_request(&h(&[])));
    }

    #[test]
    fn websocket_detection() {
        let mut h = HeaderMap::new();
        h.insert("connection", "keep-alive, Upgrade".parse().unwrap());
        h.insert("upgrade", "websocket".parse().unwrap());
        assert!(is_websocket_upgrade(&h));
        h.insert("upgrade", "h2c".parse().unwrap());
        assert!(!is_websocket_upgrade(&h));
    }
}
