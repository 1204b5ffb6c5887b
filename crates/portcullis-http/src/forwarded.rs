//! Forwarded headers, believed only from configured proxies.
//!
//! A client that reaches Portcullis directly could otherwise claim any host or original
//! URL (oauth2-proxy advisories). Every read of `X-Forwarded-*`, `X-Original-URL` or
//! `X-Auth-Request-Redirect` goes through [`Forwarded`].

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use http::HeaderMap;
use http::request::Parts;
use ipnet::IpNet;

/// The peer of one request and whether its forwarded headers count.
#[derive(Debug, Clone, Copy)]
pub struct Forwarded {
    /// Whether the direct peer is a configured trusted proxy.
    pub trusted: bool,
}

impl Forwarded {
    /// Decides trust from the socket peer (missing peer information means untrusted).
    pub fn from_parts(parts: &Parts, trusted_proxies: &[IpNet]) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Self {
            trusted: peer.is_some_and(|ip| is_trusted(ip, trusted_proxies)),
        }
    }

    /// A forwarded header's value, or `None` when the peer is not trusted or the value
    /// is not visible ASCII. Only the first value counts (the nearest proxy's view is
    /// what a trusted proxy sets; proxies append for the *For* chain, not for these).
    pub fn header<'a>(&self, headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
        if !self.trusted {
            return None;
        }
        let value = headers.get(name)?.to_str().ok()?;
        let first = value.split(',').next()?.trim();
        (!first.is_empty()).then_some(first)
    }

    /// The host the user asked for, lower-cased, without port: `X-Forwarded-Host` from a
    /// trusted proxy, else `Host`.
    pub fn host(&self, headers: &HeaderMap) -> Option<String> {
        let raw = self
            .header(headers, "x-forwarded-host")
            .or_else(|| headers.get(http::header::HOST)?.to_str().ok())?;
        Some(strip_port(raw).to_ascii_lowercase())
    }
}

/// The request a proxy is asking about (forward-auth) or that `auth_request` guards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    /// Its method (upper case).
    pub method: String,
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]` as the browser used it, if known.
    pub host: Option<String>,
    /// Path and query, still percent-encoded as sent.
    pub path_and_query: String,
}

impl Original {
    /// The path alone (no query).
    pub fn path(&self) -> &str {
        self.path_and_query
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
    }

    /// The absolute URL, when the host is known.
    pub fn url(&self) -> Option<String> {
        self.host
            .as_ref()
            .map(|h| format!("{}://{}{}", self.scheme, h, self.path_and_query))
    }
}

/// Which header names the original URL when a request carries both kinds: the one
/// the calling proxy sets itself, so a client's copy of the other one, passed on
/// untouched, cannot steer the decision (e.g. name a `skip_auth` path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefer {
    /// nginx `auth_request` (`/oauth2/auth`): `X-Original-URL`.
    OriginalUrl,
    /// Traefik ForwardAuth, Caddy `forward_auth` (`/oauth2/forward_auth`):
    /// `X-Forwarded-Uri`.
    ForwardedUri,
}

impl Forwarded {
    /// Reconstructs the original request from the headers proxies send, believed only
    /// from trusted peers:
    /// - nginx / ingress-nginx: `X-Original-URL` (absolute) and `X-Original-Method`;
    /// - Traefik ForwardAuth, Caddy `forward_auth`: `X-Forwarded-Method`,
    ///   `-Proto`, `-Host`, `-Uri`.
    ///
    /// `prefer` says which of the two wins when both are present. Otherwise
    /// (untrusted peer, or Envoy `ext_authz`, which sends the original
    /// method, `Host` and path with our path prefix in front): the request's own
    /// method and `Host`, and `suffix` (the path after the endpoint's prefix) when
    /// given. `None` when nothing identifies a path.
    pub fn original(
        &self,
        method: &http::Method,
        headers: &HeaderMap,
        suffix: Option<&str>,
        scheme: &str,
        prefer: Prefer,
    ) -> Option<Original> {
        let found = match prefer {
            Prefer::OriginalUrl => self
                .by_original_url(headers)
                .or_else(|| self.by_forwarded_uri(method, headers, scheme)),
            Prefer::ForwardedUri => self
                .by_forwarded_uri(method, headers, scheme)
                .or_else(|| self.by_original_url(headers)),
        };
        if found.is_some() {
            return found;
        }
        let suffix = suffix?;
        Some(Original {
            method: method.to_string(),
            scheme: self.scheme(headers, scheme),
            host: self.original_host(headers),
            path_and_query: if suffix.starts_with('/') {
                suffix.to_owned()
            } else {
                format!("/{suffix}")
            },
        })
    }

    fn method_header(&self, headers: &HeaderMap, name: &str) -> Option<String> {
        self.header(headers, name)
            .filter(|m| m.bytes().all(|b| b.is_ascii_alphabetic()))
            .map(str::to_ascii_uppercase)
    }

    /// nginx's `X-Original-URL` (absolute) and `X-Original-Method`.
    fn by_original_url(&self, headers: &HeaderMap) -> Option<Original> {
        let raw = self.header_raw(headers, "x-original-url")?;
        let url = url::Url::parse(raw).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        let host = url.host_str()?;
        let host = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        let mut pq = url.path().to_owned();
        if let Some(q) = url.query() {
            pq.push('?');
            pq.push_str(q);
        }
        Some(Original {
            method: self
                .method_header(headers, "x-original-method")
                .unwrap_or_else(|| "GET".into()),
            scheme: url.scheme().to_owned(),
            host: Some(host),
            path_and_query: pq,
        })
    }

    /// Traefik's and Caddy's `X-Forwarded-Uri` with `-Method`, `-Host`, `-Proto`.
    fn by_forwarded_uri(
        &self,
        method: &http::Method,
        headers: &HeaderMap,
        scheme: &str,
    ) -> Option<Original> {
        let uri = self
            .header_raw(headers, "x-forwarded-uri")
            .filter(|u| u.starts_with('/'))?;
        Some(Original {
            method: self
                .method_header(headers, "x-forwarded-method")
                .unwrap_or_else(|| method.to_string()),
            scheme: self.scheme(headers, scheme),
            host: self.original_host(headers),
            path_and_query: uri.to_owned(),
        })
    }

    /// `X-Forwarded-Host` from a trusted proxy, else `Host` (with port, as sent).
    pub fn original_host(&self, headers: &HeaderMap) -> Option<String> {
        self.header(headers, "x-forwarded-host")
            .or_else(|| headers.get(http::header::HOST)?.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned)
    }

    /// `X-Forwarded-Proto` from a trusted proxy when `http`/`https`, else `default`.
    pub fn scheme(&self, headers: &HeaderMap, default: &str) -> String {
        match self.header(headers, "x-forwarded-proto") {
            Some(p) if p.eq_ignore_ascii_case("https") => "https",
            Some(p) if p.eq_ignore_ascii_case("http") => "http",
            _ => default,
        }
        .to_owned()
    }

    /// A forwarded header's whole value (URIs may contain commas), trusted peers only.
    pub fn header_raw<'a>(&self, headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
        if !self.trusted {
            return None;
        }
        headers
            .get(name)?
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
}

/// Whether `ip` is inside one of the configured networks. IPv4-mapped IPv6 peers are
/// compared as IPv4.
pub fn is_trusted(ip: IpAddr, nets: &[IpNet]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    nets.iter().any(|n| n.contains(&ip))
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // IPv6 literal: keep up to the closing bracket.
        return host
            .split_once(']')
            .map(|(h, _)| &host[..h.len() + 1])
            .unwrap_or(host);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn trust_and_hosts() {
        let nets: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        assert!(is_trusted("10.1.2.3".parse().unwrap(), &nets));
        assert!(is_trusted("::ffff:10.1.2.3".parse().unwrap(), &nets));
        assert!(is_trusted("::1".parse().unwrap(), &nets));
        assert!(!is_trusted("11.0.0.1".parse().unwrap(), &nets));
        assert_eq!(strip_port("a.example.com:8080"), "a.example.com");
        assert_eq!(strip_port("a.example.com"), "a.example.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
    }

    #[test]
    fn original_request_sources() {
        let m = http::Method::GET;
        let mut h = HeaderMap::new();
        h.insert("host", "auth.example.com".parse().unwrap());
        h.insert(
            "x-original-url",
            "https://dash.example.com:8443/a/b?c=d,e".parse().unwrap(),
        );
        h.insert("x-original-method", "post".parse().unwrap());
        let t = Forwarded { trusted: true };
        let u = Forwarded { trusted: false };
        let o = t
            .original(&m, &h, None, "http", Prefer::OriginalUrl)
            .unwrap();
        assert_eq!(o.method, "POST");
        assert_eq!(o.url().unwrap(), "https://dash.example.com:8443/a/b?c=d,e");
        assert_eq!(o.path(), "/a/b");
        // Untrusted: nothing but the suffix counts.
        assert_eq!(u.original(&m, &h, None, "http", Prefer::OriginalUrl), None);
        let o = u
            .original(&m, &h, Some("/x?y"), "http", Prefer::OriginalUrl)
            .unwrap();
        assert_eq!(o.url().unwrap(), "http://auth.example.com/x?y");

        let mut h = HeaderMap::new();
        h.insert("host", "auth.example.com".parse().unwrap());
        h.insert("x-forwarded-host", "app.example.com".parse().unwrap());
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        h.insert("x-forwarded-uri", "/p?q=1,2".parse().unwrap());
        h.insert("x-forwarded-method", "DELETE".parse().unwrap());
        let o = t
            .original(&m, &h, None, "http", Prefer::OriginalUrl)
            .unwrap();
        assert_eq!(o.method, "DELETE");
        assert_eq!(o.url().unwrap(), "https://app.example.com/p?q=1,2");
        // The same headers from an untrusted peer are ignored.
        assert_eq!(u.original(&m, &h, None, "http", Prefer::OriginalUrl), None);
        let o = u
            .original(&m, &h, Some("p"), "http", Prefer::OriginalUrl)
            .unwrap();
        assert_eq!(o.url().unwrap(), "http://auth.example.com/p");
        assert_eq!(o.method, "GET");
    }

    /// A client's `X-Original-URL`, passed on by Traefik or Caddy, loses to the
    /// `X-Forwarded-Uri` the proxy sets; nginx's `X-Original-URL` wins over a
    /// client's `X-Forwarded-Uri` that nginx passed on.
    #[test]
    fn the_callers_own_header_wins() {
        let m = http::Method::GET;
        let t = Forwarded { trusted: true };
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-host", "app.example.com".parse().unwrap());
        h.insert("x-forwarded-uri", "/private".parse().unwrap());
        h.insert(
            "x-original-url",
            "https://app.example.com/public".parse().unwrap(),
        );
        let fa = t
            .original(&m, &h, None, "http", Prefer::ForwardedUri)
            .unwrap();
        assert_eq!(fa.path(), "/private");
        let nginx = t
            .original(&m, &h, None, "http", Prefer::OriginalUrl)
            .unwrap();
        assert_eq!(nginx.path(), "/public");
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "auth.example.com".parse().unwrap());
        headers.insert("x-forwarded-host", "evil.com".parse().unwrap());
        let untrusted = Forwarded { trusted: false };
        let trusted = Forwarded { trusted: true };
        assert_eq!(
            untrusted.host(&headers).as_deref(),
            Some("auth.example.com")
        );
        assert_eq!(trusted.host(&headers).as_deref(), Some("evil.com"));
        assert_eq!(untrusted.header(&headers, "x-forwarded-host"), None);
    }
}
