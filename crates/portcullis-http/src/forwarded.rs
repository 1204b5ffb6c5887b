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
