//! Reading request cookies and writing `Set-Cookie` headers for sessions and logins.
//!
//! Cookie attributes follow RFC 6265 §4.1.2: `HttpOnly` always, `Secure` and `SameSite`
//! from configuration, `Domain` set to the configured parent domain matching the request
//! host, so one sign-in covers every sub-domain (every cluster's dashboard).

use cookie::Cookie;
use http::{HeaderMap, HeaderValue};
use portcullis_session::chunk;

use crate::settings::{CookieSettings, SameSite};

/// Most cookies we look at in one request; the rest are ignored.
const MAX_COOKIES: usize = 128;

/// A header value as text when it is all visible ASCII or tabs: the rule of
/// `HeaderValue::to_str`, checked a block of bytes at a time (that one stops at the
/// first bad byte, so it cannot be vectorised; on every request's few-KB session
/// cookie it was the largest cost of this parser).
fn visible_ascii(bytes: &[u8]) -> Option<&str> {
    let bad = |b: u8| (b < 0x20 && b != b'\t') | (b >= 0x7f);
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        if block.iter().fold(false, |any, &b| any | bad(b)) {
            return None;
        }
    }
    if blocks.remainder().iter().any(|&b| bad(b)) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// The cookies a request carried, borrowed from its `Cookie` headers.
#[derive(Debug, Default)]
pub struct RequestCookies<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> RequestCookies<'a> {
    /// Parses every `Cookie` header (HTTP/2 may send several). Malformed pairs are
    /// skipped, never an error.
    pub fn parse(headers: &'a HeaderMap) -> Self {
        let mut pairs = Vec::new();
        for value in headers.get_all(http::header::COOKIE) {
            let Some(value) = visible_ascii(value.as_bytes()) else {
                continue;
            };
            for pair in value.split(';') {
                if pairs.len() >= MAX_COOKIES {
                    break;
                }
                if let Some((name, val)) = pair.trim().split_once('=') {
                    let val = val.trim().trim_matches('"');
                    if !name.is_empty() {
                        pairs.push((name.trim(), val));
                    }
                }
            }
        }
        Self { pairs }
    }

    /// The first cookie called `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// Every cookie name present.
    pub fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.pairs.iter().map(|(n, _)| *n)
    }
}

/// Builds `Set-Cookie` values for one response.
#[derive(Debug)]
pub struct CookieWriter<'s> {
    settings: &'s CookieSettings,
    domain: Option<String>,
}

impl<'s> CookieWriter<'s> {
    /// A writer for a request to `host`: picks the longest configured domain that
    /// `host` is inside, or none (a host-only cookie).
    pub fn new(settings: &'s CookieSettings, host: Option<&str>) -> Self {
        let domain = host.and_then(|h| {
            settings
                .domains
                .iter()
                .filter(|d| domain_matches(h, d))
                .max_by_key(|d| d.len())
                .map(|d| d.trim_start_matches('.').to_owned())
        });
        Self { settings, domain }
    }

    fn base<'c>(
        &self,
        name: String,
        value: String,
        same_site: SameSite,
    ) -> cookie::CookieBuilder<'c> {
        let mut builder = Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .secure(self.settings.secure || same_site == SameSite::None)
            .same_site(match same_site {
                SameSite::Lax => cookie::SameSite::Lax,
                SameSite::Strict => cookie::SameSite::Strict,
                SameSite::None => cookie::SameSite::None,
            });
        if let Some(d) = &self.domain {
            builder = builder.domain(d.clone());
        }
        builder
    }

    fn header(cookie: Cookie<'_>) -> Option<HeaderValue> {
        HeaderValue::from_str(&cookie.encoded().to_string()).ok()
    }

    /// Writes a sealed session value, split into chunks when needed, and expires any
    /// chunk of a previous, longer value that the request still carries.
    pub fn session(
        &self,
        sealed: &str,
        max_age_secs: u64,
        present: &RequestCookies<'_>,
    ) -> Result<Vec<HeaderValue>, chunk::ChunkError> {
        let name = &self.settings.name;
        let parts = chunk::split(name, sealed, self.settings.chunk_size)?;
        let written: Vec<String> = parts.iter().map(|(n, _)| n.clone()).collect();
        let max_age =
            cookie::time::Duration::seconds(i64::try_from(max_age_secs).unwrap_or(i64::MAX));
        let mut out: Vec<HeaderValue> = parts
            .into_iter()
            .filter_map(|(n, v)| {
                Self::header(
                    self.base(n, v, self.settings.same_site)
                        .max_age(max_age)
                        .build(),
                )
            })
            .collect();
        for stale in chunk::stale_names(name, present.names(), &written) {
            out.extend(self.removal(stale));
        }
        Ok(out)
    }

    /// Expires every session cookie (plain and chunks) the request carries, and the
    /// plain name even if absent (a cookie set under another path is still covered).
    pub fn clear_session(&self, present: &RequestCookies<'_>) -> Vec<HeaderValue> {
        let name = &self.settings.name;
        let mut names: Vec<String> = chunk::stale_names(name, present.names(), &[]);
        if !names.iter().any(|n| n == name) {
            names.push(name.clone());
        }
        names.into_iter().filter_map(|n| self.removal(n)).collect()
    }

    /// The per-login-attempt CSRF cookie. Always `SameSite=Lax` (or `None` when so
    /// configured): the callback is a cross-site navigation from the provider, which a
    /// `Strict` cookie would not survive.
    pub fn csrf(&self, name: String, sealed: String) -> Option<HeaderValue> {
        let same_site = match self.settings.same_site {
            SameSite::None => SameSite::None,
            _ => SameSite::Lax,
        };
        let max_age = cookie::time::Duration::seconds(
            i64::try_from(self.settings.csrf_lifetime.as_secs()).unwrap_or(i64::MAX),
        );
        Self::header(self.base(name, sealed, same_site).max_age(max_age).build())
    }

    /// A `Set-Cookie` that deletes cookie `name` (same `Domain` and `Path` as written).
    pub fn removal(&self, name: String) -> Option<HeaderValue> {
        let mut c = self
            .base(name, String::new(), self.settings.same_site)
            .build();
        c.make_removal();
        Self::header(c)
    }
}

/// Whether `host` is the domain or inside it (`.example.com` covers `example.com` and
/// `a.example.com`, never `badexample.com`).
fn domain_matches(host: &str, domain: &str) -> bool {
    let bare = domain.trim_start_matches('.');
    if bare.is_empty() {
        return false;
    }
    host.eq_ignore_ascii_case(bare)
        || (host.len() > bare.len()
            && host.as_bytes()[host.len() - bare.len() - 1] == b'.'
            && host[host.len() - bare.len()..].eq_ignore_ascii_case(bare))
}

/// The CSRF cookie name of the login attempt with this `state`. A prefix of the state
/// keeps concurrent attempts (several tabs) in separate cookies.
pub fn csrf_cookie_name(base: &str, state: &str) -> Option<String> {
    let id: String = state.chars().take(12).collect();
    (id.len() == 12
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| format!("{base}_csrf_{id}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    fn settings() -> CookieSettings {
        CookieSettings {
            name: "_p".into(),
            domains: vec![".example.com".into(), ".c1.example.com".into()],
            secure: true,
            same_site: SameSite::Lax,
            csrf_lifetime: Duration::from_secs(900),
            chunk_size: 10,
        }
    }

    #[test]
    fn domain_choice() {
        let s = settings();
        assert_eq!(
            CookieWriter::new(&s, Some("a.c1.example.com"))
                .domain
                .as_deref(),
            Some("c1.example.com")
        );
        assert_eq!(
            CookieWriter::new(&s, Some("auth.example.com"))
                .domain
                .as_deref(),
            Some("example.com")
        );
        assert_eq!(CookieWriter::new(&s, Some("badexample.com")).domain, None);
        assert_eq!(CookieWriter::new(&s, None).domain, None);
    }

    #[test]
    fn session_chunks_and_stale_removal() {
        let s = settings();
        let w = CookieWriter::new(&s, Some("auth.example.com"));
        let mut headers = HeaderMap::new();
        headers.insert(
            "cookie",
            "_p_0=a; _p_1=b; _p_2=c; _p_3=d; other=1".parse().unwrap(),
        );
        let present = RequestCookies::parse(&headers);
        let out = w.session(&"x".repeat(25), 60, &present).unwrap();
        let text: Vec<String> = out.iter().map(|h| h.to_str().unwrap().to_owned()).collect();
        assert!(text[0].starts_with("_p_0=xxxxxxxxxx;"), "{text:?}");
        assert!(
            text[0].contains("HttpOnly")
                && text[0].contains("Secure")
                && text[0].contains("Domain=example.com")
        );
        assert!(text[0].contains("SameSite=Lax") && text[0].contains("Max-Age=60"));
        assert_eq!(
            text.len(),
            4,
            "three chunks plus removal of the stale _p_3: {text:?}"
        );
        assert!(text[3].starts_with("_p_3=;") && text[3].contains("Max-Age=0"));
    }

    #[test]
    fn parse_is_lenient() {
        let mut headers = HeaderMap::new();
        headers.append("cookie", "a=1; junk; =x; b=\"2\"".parse().unwrap());
        headers.append("cookie", "c=3".parse().unwrap());
        let c = RequestCookies::parse(&headers);
        assert_eq!(
            (c.get("a"), c.get("b"), c.get("c"), c.get("junk")),
            (Some("1"), Some("2"), Some("3"), None)
        );
    }

    #[test]
    fn header_text_follows_the_rule_of_to_str() {
        for b in 0..=255u8 {
            let bytes = [b'a'; 40]
                .iter()
                .copied()
                .chain([b])
                .chain([b'z'; 3])
                .collect::<Vec<u8>>();
            // At every offset within a block and in the remainder.
            for at in [0usize, 31, 32, 40, 43] {
                let mut bytes = bytes.clone();
                bytes.insert(at.min(bytes.len()), b);
                let Ok(value) = HeaderValue::from_bytes(&bytes) else {
                    continue;
                };
                assert_eq!(
                    visible_ascii(value.as_bytes()),
                    value.to_str().ok(),
                    "byte {b:#04x} at {at}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn header_text_agrees_with_to_str(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                proptest::prop_assert_eq!(visible_ascii(value.as_bytes()), value.to_str().ok());
            }
        }
    }

    #[test]
    fn csrf_names() {
        assert_eq!(
            csrf_cookie_name("_p", "abcdefghijklmnop").as_deref(),
            Some("_p_csrf_abcdefghijkl")
        );
        assert_eq!(csrf_cookie_name("_p", "short"), None);
        assert_eq!(csrf_cookie_name("_p", "abc;efghijklmnop"), None);
    }
}
