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

pub mod client;
pub mod headers;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use http::header::{self, HeaderName};
use http::{HeaderValue, StatusCode};
use hyper_util::rt::TokioIo;
use portcullis_core::Lookup;
use portcullis_core::authz;
use portcullis_oidc::provider::unix_now;

use crate::answer::{
    append_set_cookies, session_set_cookies, sign_in_location, sign_in_or_401, unavailable,
};
use crate::cookies::RequestCookies;
use crate::pages;
use crate::request::{self, Ctx};
use crate::settings::UpstreamSettings;
use crate::state::AppState;
use headers::{
    is_websocket_upgrade, strip_hop_by_hop, strip_injected, strip_session_cookies, upstream_uri,
};

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

/// The handler for every path that is not one of our own.
pub async fn proxy(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let ctx = Ctx::new(&state, &parts);
    let path = parts.uri.path();
    let Some(upstream) = route(&state.settings.upstreams, path) else {
        return pages::error_page(
            &state.templates,
            StatusCode::NOT_FOUND,
            "Not found",
            "No application is served at this address.",
            &ctx.request_id,
            None,
        );
    };
    let skip = authz::skip_auth(&state.settings.authz.skip_auth, parts.method.as_str(), path);
    let (set_cookies, identity_headers) = if skip {
        (Vec::new(), http::HeaderMap::new())
    } else {
        let cookies = RequestCookies::parse(&parts.headers);
        let lookup = request::authenticate(&state, &parts.headers, &cookies, unix_now()).await;
        let set_cookies = session_set_cookies(&state, &parts, &cookies, &lookup);
        match &lookup {
            Lookup::Valid(loaded) => {
                let identity = &loaded.prepared.identity;
                if let Err(denial) =
                    authz::check_all(identity, &[&state.settings.authz.policy, &upstream.policy])
                {
                    tracing::info!(request_id = %ctx.request_id, user = %identity.user, reason = denial.reason(), "proxy: denied by policy");
                    let mut r = pages::denied_page(&state.templates, denial, &ctx.request_id);
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
                let rd = sign_in_target(&state, &ctx, &parts);
                let location = sign_in_location(&state, "", &rd);
                let mut r =
                    sign_in_or_401(&state, &parts.headers, other, &ctx.request_id, &location);
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

/// The `rd` of a sign-in started here. On the auth host (`oidc.redirect_url`'s),
/// the path and query: the callback resolves it there. On any other site this
/// Portcullis serves, the absolute URL, or the callback on the auth host would send
/// the user to the auth host's copy of the path instead of back to the site. Host
/// and scheme come from `X-Forwarded-Host/-Proto` only from trusted proxies (else
/// `Host`, and the auth host's scheme: one listener serves both); `/oauth2/start`
/// still checks the URL against the redirect whitelist.
fn sign_in_target(state: &AppState, ctx: &Ctx, parts: &http::request::Parts) -> String {
    let pq = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let auth_origin = &state.settings.auth_origin;
    let default_scheme = auth_origin.split_once("://").map_or("http", |(s, _)| s);
    let Some(host) = ctx.fwd.original_host(&parts.headers) else {
        return pq.to_owned();
    };
    let scheme = ctx.fwd.scheme(&parts.headers, default_scheme);
    let absolute = format!("{scheme}://{host}{pq}");
    match url::Url::parse(&absolute) {
        Ok(u) if u.origin().ascii_serialization() != *auth_origin => absolute,
        _ => pq.to_owned(),
    }
}

async fn forward(
    state: &AppState,
    upstream: &UpstreamSettings,
    mut request: Request,
    ctx: &Ctx,
    peer: Option<std::net::IpAddr>,
    identity: &http::HeaderMap,
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
    strip_injected(headers, &state.sessions.settings().headers.token);
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
                &state.templates,
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
        &state.templates,
        StatusCode::BAD_GATEWAY,
        "Upstream unavailable",
        "The application behind this address cannot be reached right now.",
        &ctx.request_id,
        None,
    )
}

#[cfg(test)]
mod tests;
