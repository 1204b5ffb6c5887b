//! What reaches an upstream: URI rewriting and header hygiene.

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Uri};

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
