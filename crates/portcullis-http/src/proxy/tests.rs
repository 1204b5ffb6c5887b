#![allow(clippy::unwrap_used)]
use super::headers::*;
use super::*;
use crate::answer::is_api_request;
use http::{HeaderMap, Uri};
use portcullis_core::authz::Policy;
use std::time::Duration;

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
